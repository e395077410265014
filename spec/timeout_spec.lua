-- Timeouts on task.await / task.any, task.any of a list, task.all.
-- Deterministic: orders and counts only; the clock only as a hang guard.
local lw = require "luaweave"
local task = require "luaweave.task"

local pack = function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

-- a thread that suspends plainly until resumed by hand
local function parked()
  local co = coroutine.create(function(...) return coroutine.yield(...) end)
  coroutine.resume(co)
  return co
end

describe("timeouts", function()
  it("await(co, sec) gives nil, 'timeout' and leaves co running", function()
    lw.run(function()
      local gate = false
      local t = task.spawn(function()
        while not gate do task.wait() end
        return "done"
      end)
      local r = pack(task.await(t, 0))
      assert.are.same({ n = 2, nil, "timeout" }, r)
      assert.are.equal("yielded", lw.status(t))
      gate = true
      r = pack(task.await(t, 60)) -- 60: a hang guard only
      assert.are.same({ n = 2, true, "done" }, r)
    end)
  end)

  it("await(co, sec) gives co's result when co ends first", function()
    lw.run(function()
      local t = task.defer(function() return 1, nil, 3 end)
      assert.are.same({ n = 4, true, 1, nil, 3 }, pack(task.await(t, 60)))
      local f = task.defer(function() error("boom", 0) end)
      assert.are.same({ n = 2, false, "boom" }, pack(task.await(f, 60)))
    end)
  end)

  it("a deadline tied with the target's timer loses to it (FIFO ties)", function()
    lw.run(function()
      local t = task.delay(0, function() return "first" end)
      assert.are.same({ n = 2, true, "first" }, pack(task.await(t, 0)))
      local u = task.delay(0.01, function() return "first" end)
      assert.are.same({ n = 2, true, "first" }, pack(task.await(u, 0.01)))
    end)
  end)

  it("an ended thread is answered at once, even with a zero timeout", function()
    lw.run(function()
      local t = task.spawn(function() return "x" end)
      assert.are.same({ n = 2, true, "x" }, pack(task.await(t, 0)))
    end)
  end)

  it("nil, infinite and huge timeouts wait for the end; NaN and negatives time out", function()
    lw.run(function()
      for _, sec in ipairs({ 1 / 0, 1e300 }) do
        local t = task.delay(0, function() return sec end)
        assert.are.same({ n = 2, true, sec }, pack(task.await(t, sec)))
      end
      local p = parked()
      for _, sec in ipairs({ -1, 0 / 0, -1 / 0 }) do
        assert.are.same({ n = 2, nil, "timeout" }, pack(task.await(p, sec)))
      end
    end)
  end)

  it("takes a numeric string for seconds wherever it takes a number, as Lua's own functions do", function()
    lw.run(function()
      local p = parked()
      local timeout = { n = 2, nil, "timeout" }
      assert.is_number(task.wait("0"))
      assert.are.same(timeout, pack(task.await(p, "0")))
      assert.are.same(timeout, pack(task.await(p, " 0x0 ")))
      assert.are.same(timeout, pack(task.any(p, { timeout = "0" })))
      assert.are.same(timeout, pack(task.all({ p }, "0")))
      assert.are.same(timeout, pack(task.channel():recv("0")))
      assert.are.same(timeout, pack(task.semaphore(0):acquire("0")))
      assert.are.same(timeout, pack(task.event():wait("0")))
      local g = task.group()
      g:spawn(function() task.wait(600) end)
      assert.are.same(timeout, pack(g:wait("0")))
      g:cancel()
      local ran = 0
      local d1 = task.delay("0", function() ran = ran + 1 end)
      local h = task.group()
      h:delay("0.0", function() ran = ran + 1 end)
      assert.is_true(h:wait(600))
      task.await(d1)
      assert.are.equal(2, ran)
      local ok, err = pcall(task.wait, "soon")
      assert.is_false(ok)
      assert.matches("bad argument #1 to 'wait' %(number expected, got string%)", err)
      ok, err = pcall(task.channel().recv, task.channel(), "soon")
      assert.matches("bad argument #1 to 'recv' %(number expected, got string%)", err)
    end)
  end)

  it("checks the timeout's type", function()
    lw.run(function()
      local p = parked()
      local ok, err = pcall(task.await, p, "soon")
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'await' %(number expected, got string%)", err)
      ok, err = pcall(task.any, p, { timeout = "x" })
      assert.is_false(ok)
      assert.matches("timeout: number expected, got string", err)
    end)
  end)

  it("a timed-out wait leaves nothing behind in the target's waiter list", function()
    local weak = setmetatable({}, { __mode = "k" })
    local p = parked() -- never ends: its waiter list would keep every waiter
    lw.run(function()
      for i = 1, 3 do
        local w = task.spawn(function()
          assert.are.same({ n = 2, nil, "timeout" }, pack(task.await(p, 0)))
          assert.are.same({ n = 2, nil, "timeout" }, pack(task.any(p, p, { timeout = 0 })))
        end)
        weak[w] = true
      end
      task.wait(); task.wait(); task.wait()
      collectgarbage(); collectgarbage()
      assert.are.equal(nil, next(weak))
    end)
    assert.are.equal("suspended", coroutine.status(p))
  end)

  it("a waiter woken by its target then times out of nothing", function()
    lw.run(function()
      local t = task.defer(function() return 1 end)
      assert.are.same({ n = 2, true, 1 }, pack(task.await(t, 0.001)))
      -- the stale deadline fires later and must not resume us
      local n = 0
      for _ = 1, 3 do task.wait(0.002); n = n + 1 end
      assert.are.equal(3, n)
    end)
  end)

  it("a waiter cancelled while it waits with a deadline stays cancelled", function()
    lw.run(function()
      local p = parked()
      local resumed = false
      local w = task.spawn(function() task.await(p, 0); resumed = true end)
      task.cancel(w)
      task.wait(); task.wait()
      assert.is_false(resumed)
      assert.are.equal("cancelled", lw.status(w))
    end)
  end)

  it("any(..., {timeout}) gives the first to end, or nil, 'timeout'", function()
    lw.run(function()
      local p = parked()
      local t = task.defer(function() return "t" end)
      local r = pack(task.any(p, t, { timeout = 60 }))
      assert.are.equal(t, r[1])
      assert.are.same({ true, "t" }, { r[2], r[3] })
      assert.are.same({ n = 2, nil, "timeout" }, pack(task.any(p, { timeout = 0 })))
    end)
  end)

  it("any accepts a list, with options after it", function()
    lw.run(function()
      local p = parked()
      local t = task.defer(function() return "t" end)
      local r = pack(task.any({ p, t }))
      assert.are.equal(t, r[1])
      assert.are.same({ n = 2, nil, "timeout" }, pack(task.any({ p }, { timeout = 0 })))
      local ok, err = pcall(task.any, {})
      assert.is_false(ok)
      assert.matches("empty list", err)
      ok, err = pcall(task.any, { p, 1 })
      assert.is_false(ok)
      assert.matches("list item 2: thread expected, got number", err)
    end)
  end)

  it("all(list) gives every result in list order, as table.pack(task.await(co))", function()
    lw.run(function()
      local a = task.delay(0.002, function() return "a", nil end)
      local b = task.defer(function() error({ "b" }) end)
      local c = task.spawn(function() return end)
      local rs = task.all({ a, b, c, a })
      assert.are.equal(4, #rs)
      assert.are.same({ n = 3, true, "a", nil }, rs[1])
      assert.are.same({ n = 2, false, { "b" } }, rs[2])
      assert.are.same({ n = 1, true }, rs[3])
      assert.are.same(rs[1], rs[4])
      assert.are.same({}, task.all({}))
    end)
  end)

  it("all(list, sec) gives nil, 'timeout' and leaves the threads running", function()
    lw.run(function()
      local gate = false
      local a = task.defer(function() return 1 end)
      local b = task.spawn(function() while not gate do task.wait() end return 2 end)
      assert.are.same({ n = 2, nil, "timeout" }, pack(task.all({ a, b }, 0)))
      gate = true
      local rs = task.all({ a, b }, 60) -- a hang guard
      assert.are.same({ n = 2, true, 1 }, rs[1])
      assert.are.same({ n = 2, true, 2 }, rs[2])
    end)
  end)

  it("all hears a failure of a later thread while it waits for an earlier one", function()
    local errors = 0
    lw.run(function()
      task.onerror(function() errors = errors + 1 end)
      local a = task.delay(0.002, function() return "a" end)
      local b = task.defer(function() error("b", 0) end)
      local rs = task.all({ a, b })
      assert.are.same({ n = 2, false, "b" }, rs[2])
      task.onerror(nil)
    end)
    assert.are.equal(0, errors)
  end)

  it("all and any take lists of 100000 threads on every version (no stack use per thread)", function()
    local n = 100000
    lw.run(function()
      local list = {}
      for i = 1, n do list[i] = task.spawn(function() task.wait(); return i end) end
      local rs = task.all(list, 600) -- a hang guard
      assert.are.equal(n, #rs)
      for i = 1, n, 9973 do assert.are.same({ n = 2, true, i }, rs[i]) end
      assert.are.same({ n = 2, true, n }, rs[n])
      -- those that ended before the call, and a thread listed twice
      list[n + 1] = list[1]
      rs = task.all(list)
      assert.are.same({ n = 2, true, 1 }, rs[n + 1])
      assert.are_not.equal(rs[1], rs[n + 1])
      -- a timeout unregisters them all; the threads run on
      local gate = task.event()
      list = {}
      for i = 1, n do list[i] = task.spawn(function() gate:wait(); return i end) end
      assert.are.same({ n = 2, nil, "timeout" }, pack(task.all(list, 0)))
      assert.are.same({ n = 2, nil, "timeout" }, pack(task.any(list, { timeout = 0 })))
      gate:set()
      local r = pack(task.any(list, { timeout = 600 }))
      assert.are.equal(true, r[2])
      assert.are.equal(r[1], list[r[3]])
      assert.are.equal(n, #task.all(list, 600))
    end)
  end)

  it("await(co, sec) of a plain coroutine returns when a raw coroutine.resume ends it, as the untimed await", function()
    lw.run(function()
      local results = {}
      local function plain()
        local p = coroutine.create(function() coroutine.yield(); return "done" end)
        coroutine.resume(p)
        return p
      end
      local p1, p2 = plain(), plain()
      local timed = task.spawn(function() results.timed = pack(task.await(p1, 600)) end)
      local untimed = task.spawn(function() results.untimed = pack(task.await(p2)) end)
      -- a pending timer, as in a program that also waits for something else
      local other = task.spawn(function() task.wait(600) end)
      task.spawn(function() task.wait(); coroutine.resume(p1); coroutine.resume(p2) end)
      for _ = 1, 5 do task.wait() end
      -- by now, not in 600 seconds (no timing: the step that ended it)
      local outside = { n = 2, false, "thread ended outside luaweave: its result is unknown" }
      assert.are.same(outside, results.timed)
      task.cancel(timed)
      -- the untimed one hears of it once nothing else can run
      task.cancel(other)
      task.await(untimed)
      assert.are.same(outside, results.untimed)
    end)
  end)

  it("all checks its arguments", function()
    lw.run(function()
      local ok, err = pcall(task.all, 1)
      assert.matches("bad argument #1 to 'all' %(table expected, got number%)", err)
      ok, err = pcall(task.all, { coroutine.create(function() end), "x" })
      assert.matches("list item 2: thread expected, got string", err)
      ok, err = pcall(task.all, {}, "soon")
      assert.is_false(ok)
      assert.matches("bad argument #2 to 'all' %(number expected, got string%)", err)
    end)
  end)
end)

