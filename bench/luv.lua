-- bench/luv.lua — W1 and W5 as coroutines on luv timers (Debian
-- lua-luv): what a user of luv writes by hand.   lua5.4 bench/luv.lua W n
local uv = require "luv"
local W, n = arg[1], tonumber(arg[2])
local create, resume, running, yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield
local function clock() return uv.hrtime() * 1e-9 end

local function check(ok, err) if not ok then error(err, 0) end end

-- suspend the calling coroutine for ms milliseconds on a one-shot timer
local function sleep_ms(ms)
  local co, t = running(), uv.new_timer()
  t:start(ms, 0, function()
    t:close()
    check(resume(co))
  end)
  return yield()
end

local function done(t0, answer)
  print(string.format("time %.9f", clock() - t0))
  print(string.format("answer %.0f", answer))
end

local work = {}

function work.W1()
  local per, count = math.floor(n / 10), 0
  local t0 = clock()
  for _ = 1, 10 do
    local parent, left = running(), per
    local function body()
      sleep_ms(0)
      count = count + 1
      left = left - 1
      if left == 0 then check(resume(parent)) end
    end
    for _ = 1, per do check(resume(create(body))) end
    yield()
  end
  done(t0, count)
end

-- the answer counts the timers that fired in deadline order: every timer
-- starts before uv.run, on the loop's cached time, so due = that + ms
function work.W5()
  local count, late, maxms, x, t0 = 0, 0, -1, 42, clock()
  local function body(ms)
    sleep_ms(ms)
    count = count + 1
    if ms < maxms then late = late + 1 end
    if ms > maxms then maxms = ms end
    if count == n then done(t0, count - late) end
  end
  for _ = 1, n do
    x = (x * 16807) % 2147483647
    check(resume(create(body), math.floor((x % 50001) / 1000)))
  end
end

if not work[W] then print("skip luv: " .. W .. " needs a scheduler luv does not have") return end
check(resume(create(work[W])))
uv.run()
