-- The task library and lw.run, on luaweave's own libuv loop.
local lw = require "luaweave"
local task = require "luaweave.task"

local pack = function(...) return { n = select("#", ...), ... } end
local function same(a, b)
  assert.are.equal(b.n, a.n)
  for i = 1, a.n do assert.are.equal(b[i], a[i]) end
end

describe("task", function()
  it("spawn runs now until the first yield and returns the thread", function()
    lw.run(function()
      local log = {}
      local t = task.spawn(function(x) log[#log + 1] = x; task.wait(); log[#log + 1] = "later" end, "now")
      assert.are.equal("thread", type(t))
      same(pack(unpack and unpack(log) or table.unpack(log)), pack("now"))
      task.wait(); task.wait()
      assert.are.equal("later", log[2])
      assert.are.equal("returned", lw.status(t))
    end)
  end)

  it("defer runs after the spawned work of this cycle, FIFO", function()
    local log = {}
    lw.run(function()
      task.defer(function() log[#log + 1] = "d1" end)
      task.defer(function(a, b) log[#log + 1] = a .. b end, "d", "2")
      task.spawn(function() log[#log + 1] = "s" end)
      log[#log + 1] = "main"
    end)
    assert.are.equal("s main d1 d2", table.concat(log, " "))
  end)

  it("runs timers in deadline order with FIFO ties, not before their time", function()
    -- each timer is due in [lo, hi]: the clock around its task.delay, plus
    -- its delay.  Asserted after lw.run (a task's error only reaches
    -- stderr), and only what no load can change: unloaded, the bounds are
    -- microseconds apart and this is the order a b1 b2 c
    local fired, early = {}, {}
    lw.run(function()
      local function at(d, name)
        local tm = { name = name, lo = task.clock() + d }
        task.delay(d, function()
          if task.clock() < tm.lo - 1e-9 then early[#early + 1] = name end
          fired[#fired + 1] = tm
        end)
        tm.hi = task.clock() + d
      end
      at(0.03, "c"); at(0.01, "a"); at(0.02, "b1"); at(0.02, "b2")
    end)
    assert.are.same({}, early)
    local names = {}
    for i, tm in ipairs(fired) do
      names[tm.name] = i
      for j = i + 1, #fired do -- none fired after a timer surely due later
        assert.is_true(fired[j].hi >= tm.lo, tm.name .. " fired before " .. fired[j].name)
      end
    end
    assert.are.equal(4, #fired)
    assert.is_true(names.b1 < names.b2) -- ties: FIFO
  end)

  it("wait returns the elapsed time; bad durations are 0", function()
    lw.run(function()
      local t0 = task.clock()
      local e = task.wait(0.02)
      assert.is_true(e >= 0.02)
      assert.is_true(task.clock() - t0 >= 0.02)
      for _, d in ipairs({ 0 / 0, -1, math.huge, -math.huge, 1e300 }) do
        local r = task.wait(d)
        assert.are.equal("number", type(r))
        -- returned at all: a real wait of d would hang (the runner's timeout)
        assert.is_true(r >= 0 and r < 60)
      end
      assert.are.equal("number", type(task.wait()))
    end)
  end)

  it("wait() resumes in the next cycle, after this cycle's deferred work", function()
    local log = {}
    lw.run(function()
      task.spawn(function() task.wait(); log[#log + 1] = "waited" end)
      task.defer(function() log[#log + 1] = "deferred" end)
    end)
    assert.are.equal("deferred waited", table.concat(log, " "))
  end)

  it("cancels queued, waiting, awaiting and yielded tasks for good", function()
    local ran = {}
    lw.run(function()
      local q = task.defer(function() ran.q = true end)
      local w = task.spawn(function() task.wait(0.01); ran.w = true end)
      local blocker = task.delay(0.05, function() end)
      local a = task.spawn(function() task.await(blocker); ran.a = true end)
      local y = task.spawn(function() coroutine.yield(); ran.y = true end)
      for _, t in ipairs({ q, w, a, y }) do task.cancel(t) end
      for _, t in ipairs({ q, w, a, y }) do
        assert.are.equal("cancelled", lw.status(t))
        same(pack(task.await(t)), pack(false, "cancelled"))
      end
      assert.has_error(function() task.spawn(y) end) -- a dead coroutine: never run
      task.wait(0.08)
    end)
    assert.are.same({}, ran)
  end)

  it("cancel of dead, unknown and running threads is harmless", function()
    lw.run(function()
      local d = task.spawn(function() return 1 end)
      task.cancel(d)
      assert.are.equal("returned", lw.status(d))
      task.cancel(coroutine.create(function() end))
      local t = task.spawn(function()
        task.cancel(coroutine.running())
        coroutine.yield()
        error("resumed after cancel")
      end)
      task.wait()
      assert.are.equal("cancelled", lw.status(t))
    end)
  end)

  it("forgets a cancel mark when its thread is freed (no inheritance by address)", function()
    local ran = 0
    lw.run(function()
      for _ = 1, 3000 do
        local co = coroutine.create(function()
          task.cancel(coroutine.running()) -- marked; it yields to a plain resume
          coroutine.yield()
        end)
        coroutine.resume(co)
      end
      collectgarbage(); collectgarbage()
      for _ = 1, 3000 do
        task.defer(function() task.wait(); ran = ran + 1 end)
      end
      task.wait(); task.wait()
    end)
    assert.are.equal(3000, ran)
  end)

  if _VERSION == "Lua 5.4" then
    it("closes the to-be-closed variables of a cancelled task", function()
      local closed = false
      lw.run(function()
        local body = load([[
          local flag, task = ...
          local x <close> = setmetatable({}, { __close = function() flag() end })
          task.wait(10)
        ]])
        local t = task.spawn(body, function() closed = true end, task)
        task.cancel(t)
      end)
      assert.is_true(closed)
    end)
  end

  it("await gives results, errors and cancellations without consuming them", function()
    lw.run(function()
      local r = task.delay(0.01, function() return 1, nil, 3 end)
      local f = task.delay(0.02, function() error({ code = 7 }) end)
      same(pack(task.await(r)), pack(true, 1, nil, 3))
      same(pack(task.await(r)), pack(true, 1, nil, 3))
      same(pack(lw.result(r)), pack(true, 1, nil, 3))
      local ok, e = task.await(f)
      assert.is_false(ok)
      assert.are.equal(7, e.code)
      local done = task.spawn(function() return "at once" end)
      same(pack(task.await(done)), pack(true, "at once"))
    end)
  end)

  it("refuses to await the running thread", function()
    lw.run(function()
      local ok, err = pcall(task.await, coroutine.running())
      assert.is_false(ok)
      assert.truthy(tostring(err):find("running", 1, true))
    end)
  end)

  it("any returns the first thread to end, then its result", function()
    lw.run(function()
      local fast = task.delay(0.01, function() return "fast" end)
      -- ends after fast whatever the load (two delays could swap)
      local slow = task.spawn(function() task.await(fast); task.wait(0.01); return "slow" end)
      same(pack(task.any(slow, fast)), pack(fast, true, "fast"))
      same(pack(task.any(slow, fast)), pack(fast, true, "fast"))
    end)
  end)

  it("any of one thread returns that thread too, waiting or ended", function()
    lw.run(function()
      local one = task.delay(0.01, function() return 1, 2 end)
      same(pack(task.any(one)), pack(one, true, 1, 2))
      same(pack(task.any(one)), pack(one, true, 1, 2))
    end)
  end)

  it("resumes a plainly yielded task with spawn, defer or coroutine.resume", function()
    lw.install() -- so that the plain coroutine.resume is recorded too
    finally(function() lw.uninstall() end)
    lw.run(function()
      local got = {}
      local t = task.spawn(function()
        for i = 1, 3 do got[i] = coroutine.yield() end
      end)
      task.spawn(t, "a")
      task.defer(t, "b")
      task.wait()
      coroutine.resume(t, "c")
      same(pack(got[1], got[2], got[3]), pack("a", "b", "c"))
      assert.are.equal("returned", lw.status(t))
    end)
  end)

  it("raises bad argument errors", function()
    lw.run(function()
      for _, name in ipairs({ "spawn", "defer" }) do
        local ok, err = pcall(task[name], 42)
        assert.is_false(ok)
        assert.truthy(err:find("bad argument #1 to '" .. name .. "'", 1, true))
      end
      local ok, err = pcall(task.delay, 1, "x")
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #2 to 'delay'", 1, true))
      ok, err = pcall(task.await, 1)
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #1 to 'await'", 1, true))
      ok, err = pcall(task.any, coroutine.running(), 42)
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #2 to 'any'", 1, true))
      ok, err = pcall(task.cancel, "x")
      assert.is_false(ok)
      assert.truthy(err:find("bad argument #1 to 'cancel'", 1, true))
    end)
  end)

  it("lw.run returns the main task's results or raises its error", function()
    same(pack(lw.run(function(...) return ... end, 1, nil, 3, nil)), pack(1, nil, 3, nil))
    local obj = {}
    local ok, err = pcall(lw.run, function() task.wait(); error(obj) end)
    assert.is_false(ok)
    assert.are.equal(obj, err)
  end)

  -- LuaJIT before its fix #1066 kept the last thread a C function ran as
  -- the running one when a Lua pcall caught that function's error; the
  -- next trace exit (the side exit in hot) then wrote to the wrong stack
  it("lw.run that raises leaves the interpreter on the right thread", function()
    local function hot(k)
      local s = 0
      for j = 1, 200 do
        if j == k then s = s + 0.5 else s = s + 1 end
      end
      return s
    end
    local n = 0
    for i = 1, 100 do
      local ok = pcall(lw.run, function() task.spawn(function() end); error("x") end)
      if not ok then n = n + 1 end
      hot(150 + i % 40)
    end
    assert.are.equal(100, n)
  end)

  it("lw.run stops with a deadlock error", function()
    local ok, err = pcall(lw.run, function()
      local never = task.spawn(function() coroutine.yield() end)
      task.await(never)
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("deadlock: 1 thread waiting", 1, true))
  end)

  it("task.exit stops everything", function()
    local log = {}
    lw.run(function()
      task.delay(0, function() log[#log + 1] = "timer" end)
      task.defer(function() log[#log + 1] = "deferred"; task.exit(0); log[#log + 1] = "after exit" end)
      task.defer(function() log[#log + 1] = "second" end)
    end)
    assert.are.equal("deferred", table.concat(log, " "))
  end)

  it("task.exitcode gives the code task.exit stopped the last lw.run with", function()
    local got = { n = select("#", lw.run(function()
      task.defer(function() task.exit(3) end)
      return "f's result"
    end)) }
    assert.are.equal(0, got.n)
    assert.are.equal(3, task.exitcode())
    lw.run(function() task.exit(false) end)
    assert.are.equal(1, task.exitcode())
    assert.are.equal("r", lw.run(function() return "r" end))
    assert.is_nil(task.exitcode()) -- that run ended otherwise
    assert.has_error(function() lw.run(function() error("boom") end) end)
    assert.is_nil(task.exitcode())
  end)

  it("runs a due timer during a long chain of task.defers (bounded steps)", function()
    local n, at = 0, nil
    lw.run(function()
      task.delay(0, function() at = n end)
      local function chain() n = n + 1; if n < 100000 then task.defer(chain) end end
      task.defer(chain)
    end)
    assert.are.equal(100000, n)
    assert.is_true(at ~= nil and at < n, "the timer ran before the chain ended")
  end)

  it("reads and writes files while other tasks run", function()
    local path = os.tmpname()
    local data = {}
    for i = 1, 1024 * 1024 / 16 do data[i] = string.char(i % 256, 0, 255, 10) .. "0123456789ab" end
    data = table.concat(data)
    lw.run(function()
      local ticks, running = 0, true
      task.spawn(function() while running do ticks = ticks + 1; task.wait() end end)
      assert.is_true(lw.fs.writefile(path, data))
      local back = lw.fs.readfile(path)
      running = false
      assert.are.equal(#data, #back)
      assert.is_true(back == data)
      assert.is_true(ticks > 0)
      local none, msg = lw.fs.readfile(path .. ".missing")
      assert.is_nil(none)
      assert.truthy(msg:find("no such file", 1, true))
    end)
    os.remove(path)
  end)
end)
