return 1, "two", nil
