local x <close> = setmetatable({}, { __close = function() print("closed at exit") end })
os.exit(0, true)
