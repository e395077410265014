local x <close> = setmetatable({}, { __close = function() error("close fails") end })
error("first error")
