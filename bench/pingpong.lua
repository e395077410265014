-- bench/pingpong.lua — issue 18's row W9: n round trips of a message
-- between two tasks (2n messages), on luaweave's task.channel (lw), on
-- cqueues' condition variables (cq-cond: a shared slot, a condition per
-- direction), and on two plain coroutines resumed in turn by a loop
-- (coro: the floor, no scheduler at all).
--   lua5.4 bench/pingpong.lua lw|cq|coro [W9] n
-- Prints "time <s>" (wall: task.clock, cqueues.monotime; os.clock for
-- coro, which has no other clock) and "answer <n>" (round trips made).
local mode, n = arg[1], tonumber(arg[3] or arg[2]) -- run.sh adds "W9 n"

local function done(t0, now, trips)
  print(string.format("time %.9f", now - t0))
  print(string.format("answer %d", trips))
end

if mode == "lw" then
  local lw = require "luaweave"
  local task = require "luaweave.task"
  local trips, t0 = 0, task.clock()
  lw.run(function()
    local ping, pong = task.channel(), task.channel() -- unbuffered
    local echo = task.spawn(function()
      for _ = 1, n do pong:send(ping:recv()) end
    end)
    for i = 1, n do
      ping:send(i)
      if pong:recv() == i then trips = trips + 1 end
    end
    task.await(echo)
  end)
  done(t0, task.clock(), trips)
elseif mode == "cq" then
  local cqueues = require "cqueues"
  local condition = require "cqueues.condition"
  local cq, clock = cqueues.new(), cqueues.monotime
  local ping, pong -- the slots: a value waits there for the other side
  local cping, cpong = condition.new(), condition.new()
  local trips, t0 = 0, clock()
  cq:wrap(function() -- the echo, first: it waits before the first ping
    for _ = 1, n do
      while ping == nil do cping:wait() end
      pong, ping = ping, nil
      cpong:signal()
    end
  end)
  cq:wrap(function()
    for i = 1, n do
      ping = i
      cping:signal()
      while pong == nil do cpong:wait() end
      if pong == i then trips = trips + 1 end
      pong = nil
    end
  end)
  assert(cq:loop())
  done(t0, clock(), trips)
elseif mode == "coro" then
  local yield = coroutine.yield
  local echo = coroutine.wrap(function(v) while true do v = yield(v) end end)
  local trips, t0 = 0, os.clock()
  for i = 1, n do
    if echo(i) == i then trips = trips + 1 end
  end
  done(t0, os.clock(), trips)
else
  error("usage: pingpong.lua lw|cq|coro [W9] n")
end
