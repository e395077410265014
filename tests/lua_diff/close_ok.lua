do
  local x <close> = setmetatable({}, { __close = function(_, e) print("closed", e) end })
  print("in block")
end
print("after")
