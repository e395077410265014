local ok, e = pcall(error, "first")
print(ok, e)
error(e, 0)
