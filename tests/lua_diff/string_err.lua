local ok, e = pcall(string.format, "%d", "x")
print(ok, e)
