-- bench/lw.lua — W1–W5 on luaweave through its CLI:
--   build/luaweave bench/lw.lua W n      (`task` is a global there)
-- Prints "time <s>" (the timed part) and "answer <n>" (checked).
local W, n = arg[1], tonumber(arg[2])
local clock = task.clock
local function done(t0, answer)
  print(string.format("time %.9f", clock() - t0))
  print(string.format("answer %.0f", answer))
end

local work = {}

-- 10 batches; each spawns n/10 tasks that wait once, count, and the last
-- resumes the batch's parent (this main chunk, itself a task)
function work.W1()
  local per, count = math.floor(n / 10), 0
  local t0 = clock()
  for _ = 1, 10 do
    local parent, left = coroutine.running(), per
    local function body()
      task.wait(0)
      count = count + 1
      left = left - 1
      if left == 0 then task.spawn(parent) end
    end
    for _ = 1, per do task.spawn(body) end
    coroutine.yield()
  end
  done(t0, count)
end

function work.W2()
  local function body(i) return "x", i, true end
  local ths, sum = {}, 0
  local t0 = clock()
  for i = 1, n do ths[i] = task.spawn(body, i) end
  for i = 1, n do
    local _, _, v = task.await(ths[i])
    sum = sum + v
  end
  done(t0, sum)
end

-- the store from Lua: ns per operation with n threads tracked
function work.W3()
  local lw = require "luaweave"
  local yield = coroutine.yield
  local function body() while true do yield(1) end end
  local cos, ok = {}, 0
  for i = 1, n do cos[i] = coroutine.create(body) end
  local total = 0
  local function timed(name, f)
    local t0 = clock()
    for i = 1, n do if f(cos[i]) then ok = ok + 1 end end
    local d = clock() - t0
    total = total + d
    print(string.format("metric %s %.2f", name, d * 1e9 / n))
  end
  timed("track", function(co) return lw.track(co) == co end)
  timed("resume_record", function(co) return lw.resume(co) == true end)
  timed("lookup", function(co) return lw.status(co) == "yielded" end)
  timed("result", function(co) return lw.result(co) == true end)
  timed("take", function(co) return lw.take(co) == true end)
  for i = 1, n do lw.track(cos[i]) end
  timed("untrack", function(co) lw.untrack(co) return true end)
  print(string.format("time %.9f", total))
  -- exact: a single failed operation of the 6n makes it differ from n
  print(string.format("answer %.17g", ok / 6))
end

-- short-lived tasks (every task is tracked); nobody asks for their results
function work.W4()
  local count = 0
  local function body(i) count = count + 1 return i end
  local t0 = clock()
  for i = 1, n do task.spawn(body, i) end
  done(t0, count)
end

-- the answer counts the timers that fired in deadline order: creating
-- them took span seconds, so timer i is due between t0 + d_i and
-- t0 + span + d_i; one that fires after a timer with d > d_i + span is
-- out of order (a check no load can fail)
function work.W5()
  local count, late, maxd, span, x, t0 = 0, 0, -1, nil, 42, clock()
  local function body(d)
    count = count + 1
    if d < maxd - span then late = late + 1 end
    if d > maxd then maxd = d end
    if count == n then done(t0, count - late) end
  end
  for _ = 1, n do
    x = (x * 16807) % 2147483647
    task.delay((x % 50001) * 1e-6, body, (x % 50001) * 1e-6)
  end
  span = clock() - t0
end

if not work[W] then print("skip unknown workload") return end
work[W]()
