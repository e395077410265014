-- The luaweave demo: run with `make run` (or build/luaweave examples/demo.lua).
-- Spawns thousands of tasks that wait, await each other and report; keeps
-- every result in the store; shows that a dropped thread's result goes away.
local lw = require "luaweave"

local N = tonumber(arg and arg[1]) or 5000
local t0 = task.clock()

-- workers: each waits a little, then returns its number and its square
local workers = {}
for i = 1, N do
  workers[i] = task.spawn(function(n)
    task.wait(0.001 + (n % 10) / 1000)    -- 1 to 10 ms
    if n % 1000 == 0 then
      task.wait(0.05)  -- by now its collector awaits it: the error goes there
      error("worker " .. n .. " gives up", 0)
    end
    return n, n * n
  end, i)
end
print(("spawned %d workers; store holds %d threads"):format(N, lw.count()))

-- collectors: each awaits a slice of the workers and sums what they returned
local collectors = {}
local slice = math.ceil(N / 10)
for c = 1, 10 do
  collectors[c] = task.defer(function()
    local sum, failed = 0, 0
    for i = (c - 1) * slice + 1, math.min(c * slice, N) do
      local ok, n, sq = task.await(workers[i])
      if ok then sum = sum + sq else failed = failed + 1 end
    end
    return sum, failed
  end)
end

-- the first worker to end, whichever it is
local first, ok, n = task.any(workers[N], workers[1], workers[2])
print(("first of three to end: worker %s (ok=%s)"):format(n, tostring(ok)))

local total, failures = 0, 0
for c = 1, 10 do
  local ok2, sum, failed = task.await(collectors[c])
  total, failures = total + sum, failures + failed
end
print(("sum of squares: %d; failed workers: %d"):format(total, failures))
print(("worker 1000 status: %s, result: %s"):format(lw.status(workers[1000]),
  select(2, lw.result(workers[1000]))))
print(("store holds %d threads while referenced"):format(lw.count()))

-- drop every reference: the store forgets them with the GC, not before
workers, collectors, first = nil, nil, nil
collectgarbage(); collectgarbage()
print(("store holds %d threads after dropping them"):format(lw.count()))
print(("done in %.1f ms"):format((task.clock() - t0) * 1000))
