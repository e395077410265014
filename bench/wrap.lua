-- bench/wrap.lua — issue 17's row: n luv one-shot timers (0 ms) whose
-- callbacks are awaited by luaweave tasks through task.wrap, against the
-- same timers on bare luv callbacks (bare), and by hand: a coroutine
-- per timer, resumed by its callback (coro).  Both on luv's loop, driven by
-- uv.run().   lua5.4 bench/wrap.lua wrap|bare|coro|spawn [W8] n
-- The -seq modes (by hand, not in make bench) await the n timers one after
-- another in one task / one coroutine / one callback chain: the cost of an
-- await without the cost of a task per timer.
-- Prints "time <s>" (wall, uv.hrtime around the work) and "answer <n>".
local uv = require "luv"
local mode, n = arg[1], tonumber(arg[3] or arg[2]) -- run.sh adds "W8 n"
local function clock() return uv.hrtime() * 1e-9 end

local function after(ms, cb)
  local t = uv.new_timer()
  t:start(ms, 0, function() t:close(); cb(1) end)
end

local count, t0 = 0, clock()
if mode == "bare" then
  for _ = 1, n do after(0, function(x) count = count + x end) end
elseif mode == "wrap" then
  local task = require "luaweave.task"
  local sleep = task.wrap(after, 2)
  local function body() local x = sleep(0); count = count + x end
  for _ = 1, n do task.spawn(body) end
elseif mode == "coro" then -- by hand: a coroutine per timer, resumed by it
  local function body()
    local co = coroutine.running()
    after(0, function(x) assert(coroutine.resume(co, x)) end)
    local x = coroutine.yield()
    count = count + x
  end
  for _ = 1, n do assert(coroutine.resume(coroutine.create(body))) end
elseif mode == "spawn" then -- the tasks alone: spawned, one wait each
  local task = require "luaweave.task"
  local function body() task.wait(); count = count + 1 end
  for _ = 1, n do task.spawn(body) end
elseif mode == "bare-seq" then -- each callback starts the next timer
  local function again(x)
    count = count + x
    if count < n then after(0, again) end
  end
  after(0, again)
elseif mode == "coro-seq" then
  local co = coroutine.create(function()
    local me = coroutine.running()
    for _ = 1, n do
      after(0, function(x) assert(coroutine.resume(me, x)) end)
      count = count + coroutine.yield()
    end
  end)
  assert(coroutine.resume(co))
elseif mode == "wrap-seq" then
  local task = require "luaweave.task"
  local sleep = task.wrap(after, 2)
  task.spawn(function() for _ = 1, n do count = count + sleep(0) end end)
else
  error("usage: wrap.lua wrap|bare|coro|spawn|bare-seq|coro-seq|wrap-seq n")
end
uv.run()
print(string.format("time %.9f", clock() - t0))
print(string.format("answer %.0f", count))
