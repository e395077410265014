local co = coroutine.wrap(function(a)
  local b = coroutine.yield(a + 1)
  return b * 2
end)
print(co(1), co(10))
print(pcall(coroutine.wrap(function() error("in a coroutine") end)))
