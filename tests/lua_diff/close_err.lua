local x <close> = setmetatable({}, { __close = function(_, e) print("closing with", e) end })
error("fails with x open")
