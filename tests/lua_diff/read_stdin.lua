local n = 0
for l in io.lines() do n = n + 1 print(n, l) end
print("lines", n)
