print("hello", 1 + 1)
