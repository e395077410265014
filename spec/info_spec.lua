-- task.info(co) and task.list(): what a task waits on, since when, until
-- when, its group, and where.
local lw = require "luaweave"
local task = require "luaweave.task"

local function has(list, x)
  for i = 1, #list do if list[i] == x then return true end end
  return false
end

describe("task.info", function()
  it("says what each task waits on", function()
    lw.run(function()
      local p = coroutine.create(function() coroutine.yield() end)
      coroutine.resume(p)
      local t0 = task.clock()
      local timer = task.spawn(function() task.wait(30) end)
      local awaiting = task.spawn(function() task.await(timer, 20) end)
      local awaiting2 = task.spawn(function() task.await(timer) end)
      local ch = task.channel()
      local inch = task.spawn(function() ch:recv(10) end)
      local ev = task.event()
      local inev = task.spawn(function() ev:wait() end)
      local sem = task.semaphore(0)
      local insem = task.spawn(function() sem:acquire() end)
      local plain = task.spawn(function() coroutine.yield() end)
      local ready = task.defer(function() end)
      local g = task.group()
      local kid = g:spawn(function() task.wait(30) end)

      local i = task.info(timer)
      assert.are.equal("timer", i.waiting)
      assert.are.equal("yielded", i.status)
      assert.is_true(i.since >= t0 and i.deadline >= i.since + 30)
      assert.matches("stack traceback:", i.traceback)
      i = task.info(awaiting)
      assert.are.equal("await", i.waiting)
      assert.is_true(i.deadline >= i.since + 20)
      assert.are.equal("await", task.info(awaiting2).waiting)
      assert.is_nil(task.info(awaiting2).deadline)
      i = task.info(inch)
      assert.are.equal("channel", i.waiting)
      assert.is_true(i.deadline >= i.since + 10)
      assert.are.equal("event", task.info(inev).waiting)
      assert.are.equal("semaphore", task.info(insem).waiting)
      assert.are.equal("yield", task.info(plain).waiting)
      assert.are.equal("ready", task.info(ready).waiting)
      -- a task.delay'ed task waits for its timer, from the delay call on
      local delayed = task.delay(25, function() end)
      i = task.info(delayed)
      assert.are.equal("timer", i.waiting)
      assert.is_true(i.since >= t0 and i.deadline >= i.since + 25)
      task.cancel(delayed)
      assert.are.equal("running", task.info(coroutine.running()).waiting)
      -- its status as lw.status has it (was "untracked": a name missing)
      assert.are.equal("running", task.info(coroutine.running()).status)
      assert.are.equal(lw.status(coroutine.running()), task.info(coroutine.running()).status)
      assert.are.equal(g, task.info(kid).group)
      assert.is_nil(task.info(timer).group)

      local all = task.list()
      for _, co in ipairs({ timer, awaiting, awaiting2, inch, inev, insem, ready, kid }) do
        assert.is_true(has(all, co))
      end
      assert.is_false(has(all, p)) -- not a task

      for _, co in ipairs({ timer, inch, inev, insem, plain, kid }) do task.cancel(co) end
      assert.are.equal("cancelled", task.info(timer).status)
      assert.is_nil(task.info(timer).waiting)
      assert.is_false(has(task.list(), timer))
    end)
  end)

  it("gives the deadline of the current wait, not of a stale earlier one", function()
    lw.run(function()
      -- a live timer in front keeps the stale one from being purged
      local front = task.spawn(function() task.wait(2) end)
      local x = task.defer(function() end)
      local w = task.spawn(function() task.await(x, 5); task.wait(30) end)
      task.wait() -- x ends, w is woken and waits 30: its await's deadline is stale
      local i = task.info(w)
      assert.are.equal("timer", i.waiting)
      assert.is_true(i.deadline - i.since > 20)
      task.cancel(w)
      task.cancel(front)
    end)
  end)

  it("the deadlock error of lw.run names the waiting tasks and where they wait", function()
    local p = lw.track(coroutine.create(function() coroutine.yield() end))
    lw.resume(p)
    local a
    local ok, err = pcall(lw.run, function()
      a = task.spawn(function()
        task.await(p) -- the line below names this one
      end)
      task.await(a)
    end)
    assert.is_false(ok)
    assert.matches("deadlock: 2 threads waiting: ", err, 1, true)
    assert.truthy(err:find(tostring(a) .. " awaits at " .. debug.getinfo(1, "S").short_src, 1, true), err)
  end)

  it("the deadlock error names the tasks waiting in primitives, each method and the user's line", function()
    local r, s, w, line
    local ok, err = pcall(lw.run, function()
      local ch, ch2, sem, ev = task.channel(), task.channel(), task.semaphore(0), task.event()
      line = debug.getinfo(1, "l").currentline
      r = task.spawn(function() ch:recv() end)
      s = task.spawn(function() ch2:send(1) end)
      w = task.spawn(function() sem:acquire() end)
      -- 5.1 cannot yield across pcall: elsewhere, the wait inside pcall
      -- is still the event's, at the pcall's line
      if not jit and _VERSION ~= "Lua 5.1" then
        w = task.spawn(function() pcall(ev.wait, ev) end)
      else
        w = task.spawn(function() ev:wait() end)
      end
      task.await(r) -- only an await makes a deadlock: a run ends when f
      -- returns and nothing else can run
    end)
    assert.is_false(ok)
    local src = debug.getinfo(1, "S").short_src
    local function named(co, what, l)
      local text = tostring(co) .. " in " .. what .. " at " .. src .. ":" .. (line + l)
      assert.truthy(err:find(text, 1, true), err)
    end
    named(r, "a channel's 'recv'", 1)
    assert.matches("deadlock: 5 threads waiting: ", err, 1, true)
    assert.is_nil(err:find(" at ?", 1, true))
    assert.truthy(err:find(" in a channel's 'send' at " .. src .. ":" .. (line + 2), 1, true), err)
    assert.truthy(err:find(" in a semaphore's 'acquire' at " .. src .. ":" .. (line + 3), 1, true), err)
    named(w, "an event's 'wait'", (not jit and _VERSION ~= "Lua 5.1") and 7 or 9)
  end)

  it("checks its argument", function()
    assert.has_error(function() task.info(1) end,
      "bad argument #1 to 'info' (thread expected, got number)")
  end)
end)
