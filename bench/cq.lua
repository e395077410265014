-- bench/cq.lua — W1, W2, W4, W5 on cqueues (Debian lua-cqueues).
--   lua5.4 bench/cq.lua W n
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local promise = require "cqueues.promise"
local W, n = arg[1], tonumber(arg[2])
local clock, sleep = cqueues.monotime, cqueues.sleep
local cq = cqueues.new()

local function done(t0, answer)
  print(string.format("time %.9f", clock() - t0))
  print(string.format("answer %.0f", answer))
end

local work = {}

function work.W1()
  local per, count = math.floor(n / 10), 0
  local t0 = clock()
  for _ = 1, 10 do
    local cond, left = condition.new(), per
    local function body()
      sleep(0)
      count = count + 1
      left = left - 1
      if left == 0 then cond:signal() end
    end
    for _ = 1, per do cq:wrap(body) end
    cond:wait()
  end
  done(t0, count)
end

function work.W2()
  local function body(i) return "x", i, true end
  local ps, sum = {}, 0
  local t0 = clock()
  for i = 1, n do ps[i] = promise.new(body, i) end
  for i = 1, n do
    local _, v = ps[i]:get()
    sum = sum + v
  end
  done(t0, sum)
end

-- wrapped threads start at the controller's next step: hand it the CPU
-- every 1024 so that they stay short-lived; the count is read after the
-- loop has run them all
local after
function work.W4()
  local count = 0
  local function body(i) count = count + 1 return i end
  local t0 = clock()
  for i = 1, n do
    cq:wrap(body, i)
    if i % 1024 == 0 then sleep(0) end
  end
  after = function() done(t0, count) end
end

-- the count only: cqueues promises no order among timers due in one step
function work.W5()
  local count, x, t0 = 0, 42, clock()
  local function body(d)
    sleep(d)
    count = count + 1
    if count == n then done(t0, count) end
  end
  for _ = 1, n do
    x = (x * 16807) % 2147483647
    cq:wrap(body, (x % 50001) * 1e-6)
  end
end

if not work[W] then print("skip cqueues: " .. W .. " not written for it") return end
cq:wrap(work[W])
assert(cq:loop())
if after then after() end
