error(setmetatable({}, { __tostring = function() return "a custom error" end }))
