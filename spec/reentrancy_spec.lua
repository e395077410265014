-- Re-entrancy: finalizers and to-be-closed variables that call back into
-- the store and the scheduler while they are mid-operation; cancel in
-- every relation to the running task; pcall and coroutine.wrap nesting
-- inside tasks; install/uninstall out of order; error objects whose
-- __tostring fails.
local lw = require "luaweave"
local task = require "luaweave.task"

local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end
local is54 = _VERSION == "Lua 5.4"
local isjit = type(jit) == "table"
local is51 = _VERSION == "Lua 5.1" and not isjit
-- Lua 5.1 cannot yield across pcall; 5.2+ and LuaJIT can
local yielding_pcall = not is51

local function same(want, got)
  assert.are.equal(want.n, got.n)
  for i = 1, want.n do assert.are.equal(want[i], got[i]) end
end

-- an object whose finalizer is f: only userdata have __gc on 5.1/LuaJIT.
-- Made in a function of its own so that no stack slot keeps it.
local function arm(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = function() f() end
  else
    setmetatable({}, { __gc = function() f() end })
  end
end

local function full_gc() collectgarbage(); collectgarbage() end

-- collect at every step (pause 0, step x10) until the returned function,
-- which the test's finally also runs, puts the collector back
local function eager_gc()
  local pause = collectgarbage("setpause", 0)
  local stepmul = collectgarbage("setstepmul", 1000)
  local function restore()
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
  end
  finally(restore)
  return restore
end

local function logger()
  local log = {}
  return log, function(...)
    local t = {}
    for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
    log[#log + 1] = table.concat(t, " ")
  end
end

-- run Lua code in a child interpreter (the one running this spec), with
-- stderr; returns its output and exit status
local function child(code)
  local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("local lw = require 'luaweave'\nlocal task = require 'luaweave.task'\n", code)
  f:close()
  local p = assert(io.popen(lua .. " " .. path .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  local status = tonumber(out:match("exit=(%d+)%s*$"))
  return out, status
end

describe("finalizers calling back", function()
  it("can take, untrack, track and resume during collectgarbage in a task", function()
    local got
    lw.run(function()
      local done = lw.track(coroutine.create(function() return "done", nil end))
      lw.resume(done)
      local pend = lw.track(coroutine.create(function() end))
      local fresh = coroutine.create(function() coroutine.yield(1) end)
      arm(function()
        got = {
          take = pack(lw.take(done)), done = lw.status(done),
          untrack = pack(lw.untrack(pend)), pend = lw.status(pend),
          track = lw.track(fresh) == fresh, resume = pack(lw.resume(fresh)),
        }
      end)
      full_gc()
      assert.is_table(got, "the finalizer ran")
      same(pack(true, "done", nil), got.take)
      assert.are.equal("untracked", got.done)
      same(pack(), got.untrack)
      assert.are.equal("untracked", got.pend)
      assert.is_true(got.track)
      same(pack(true, 1), got.resume)
      assert.are.equal("yielded", lw.status(fresh))
      same(pack(true, 1), pack(lw.result(fresh)))
    end)
  end)

  it("can spawn, defer and cancel tasks while a task runs", function()
    local log, add = logger()
    lw.run(function()
      local victim = task.delay(0.01, function() add("victim ran") end)
      local waiter = task.spawn(function() add("waiter", task.await(victim)) end)
      arm(function()
        task.cancel(victim)
        task.spawn(function() add("spawned in gc") end)
        task.defer(function() add("deferred in gc") end)
      end)
      full_gc()
      add("main after gc", lw.status(victim), lw.status(waiter))
      task.wait(0.03)
      add("end", lw.status(victim), lw.status(waiter))
    end)
    assert.are.same({
      "spawned in gc", "main after gc cancelled yielded",
      "waiter false cancelled", "deferred in gc", "end cancelled returned",
    }, log)
  end)

  it("can take or untrack the coroutine lw.resume is running", function()
    local co, inside
    co = lw.track(coroutine.create(function()
      arm(function() inside = pack(lw.take(co)) end)
      full_gc()
      coroutine.yield("y")
      return "r"
    end))
    same(pack(true, "y"), pack(lw.resume(co)))
    same(pack(nil), inside) -- running: nothing recorded yet
    assert.are.equal("untracked", lw.status(co))
    lw.track(co)
    same(pack(true, "r"), pack(lw.resume(co)))
    assert.are.equal("returned", lw.status(co))
    same(pack(true, "r"), pack(lw.result(co)))
  end)

  it("never corrupt results recorded while they churn the store", function()
    -- collect at every step while luaweave records; luassert is slow
    -- under that, so the checks are plain until the GC is itself again
    local restore = eager_gc()
    math.randomseed(11)
    local cos, untracked, extra, bad = {}, {}, {}, {}
    for i = 1, 300 do
      cos[i] = lw.track(coroutine.create(function(x)
        for _ = 1, 3 do
          arm(function()
            local j = math.random(#cos)
            if math.random(4) == 1 then
              lw.untrack(cos[j]); untracked[j] = true
            else
              extra[#extra + 1] = lw.track(coroutine.create(function() end))
            end
          end)
        end
        local t = { x }
        coroutine.yield(x, t)
        return x, nil, t, "end"
      end))
      local r = pack(lw.resume(cos[i], i))
      if not (r.n == 3 and r[1] == true and r[2] == i and r[3][1] == i) then bad[#bad + 1] = "yield " .. i end
    end
    for i = 1, #cos do
      if not untracked[i] then
        local r = pack(lw.resume(cos[i]))
        if not (r.n == 5 and r[1] == true and r[2] == i and r[3] == nil and r[4][1] == i and r[5] == "end") then
          bad[#bad + 1] = "return " .. i
        end
      end
    end
    full_gc()
    for i = 1, #cos do
      if untracked[i] then
        if lw.status(cos[i]) ~= "untracked" then bad[#bad + 1] = "untracked " .. i end
      else
        local r = pack(lw.result(cos[i]))
        if not (r.n == 5 and r[2] == i and r[4][1] == i and lw.status(cos[i]) == "returned") then
          bad[#bad + 1] = "result " .. i
        end
      end
    end
    restore()
    assert.are.same({}, bad)
    assert.is_true(next(untracked) ~= nil and #extra > 0, "finalizers ran")
  end)

  it("can untrack a coroutine while luaweave files the values it returned", function()
    -- lw_resume moves a returned thread's values into the store; a
    -- finalizer run by that move which untracks the thread must leave
    -- lw.resume's results intact
    local restore = eager_gc()
    local bad, current = {}, nil
    for i = 1, 3000 do
      local co
      co = lw.track(coroutine.create(function()
        arm(function() lw.untrack(co) end)
        arm(function() if current then lw.untrack(current) end end)
        return i, "b", "c"
      end))
      current = co
      local r = pack(lw.resume(co))
      current = nil
      if not (r.n == 4 and r[1] == true and r[2] == i and r[3] == "b" and r[4] == "c") then
        bad[#bad + 1] = i
      end
    end
    restore()
    assert.are.same({}, bad)
  end)

  it("can untrack a returned coroutine while its end is told to awaiting tasks", function()
    -- with tasks awaiting (outside lw.run), a returned thread's end runs
    -- the end path after its values are filed; a finalizer run there
    -- which untracks the thread must still leave lw.resume its values
    -- (5.1 read them from below the dead thread's stack, and crashed).
    -- In a fresh interpreter, whose small heap has 5.1 run a finalizer
    -- there within a few thousand ends (the collection step its end path
    -- makes after the values are filed); rounds go on until one did, the
    -- bound only guarding against a hang
    local out, status = child([[
      local pack = function(...) return { n = select("#", ...), ... } end
      local function arm(f) -- a finalizer f, as the file's arm
        local mt = { __gc = function() f() end }
        if newproxy then debug.setmetatable(newproxy(false), mt)
        else setmetatable({}, mt) end
      end
      local parked = lw.track(coroutine.create(function() coroutine.yield() end))
      lw.resume(parked)
      for _ = 1, 50 do task.spawn(function() task.await(parked) end) end
      local bad, current, hits = 0, nil, 0
      collectgarbage("setpause", 0)
      collectgarbage("setstepmul", 1000)
      local junk
      for round = 1, 40 do
        -- whether the collector ever steps inside that end path hangs on
        -- the heap's layout (one run in seven met none in 40 rounds): the
        -- step size and a string of changing size move the debt each round
        collectgarbage("setstepmul", 200 + (round % 8) * 200)
        for i = 1, 3000 do
          junk = string.rep("x", 16 + (i * 7 + round) % 200)
          local co
          co = lw.track(coroutine.create(function()
            arm(function() lw.untrack(co) end)
            arm(function()
              local c = current
              if c and lw.status(c) == "returned" then hits = hits + 1 end
              if c then lw.untrack(c) end
            end)
            return i, "b", "c"
          end))
          current = co
          local r = pack(lw.resume(co))
          current = nil
          if not (r.n == 4 and r[1] == true and r[2] == i and r[3] == "b" and r[4] == "c") then
            bad = bad + 1
          end
        end
        if hits > 0 then break end
      end
      print("bad=" .. bad .. " hits=" .. (hits > 0 and "some" or "none"))
    ]])
    assert.are.equal(0, status, out)
    assert.is_truthy(out:find("bad=0 ", 1, true), out)
    if is51 then assert.is_truthy(out:find("hits=some", 1, true), out) end
  end)

  it("can cancel a target while task.await registers for it", function()
    -- registering an awaiter allocates; a finalizer run by that which
    -- ends the target must not leave the awaiter waiting for good
    local restore = eager_gc()
    local n, done = 3000, 0
    lw.run(function()
      for _ = 1, n do
        local target = task.delay(1000, function() end)
        arm(function() task.cancel(target) end)
        task.spawn(function()
          local ok, err = task.await(target)
          if ok == false and err == "cancelled" then done = done + 1 end
        end)
      end
      full_gc() -- the finalizers not run yet cancel the rest
    end)
    restore()
    assert.are.equal(n, done)
  end)

  it("never wake an awaiter twice, nor a cancelled one, while a target's awaiters wake", function()
    local pause = collectgarbage("setpause", 0)
    finally(function() collectgarbage("setpause", pause) end)
    math.randomseed(5)
    local woke, cancelled, waiters, late, wrong = {}, {}, {}, {}, {}
    lw.run(function()
      local target = task.delay(0.01, function()
        for _ = 1, 100 do
          arm(function()
            local i = math.random(#waiters)
            if lw.status(waiters[i]) ~= "returned" then
              task.cancel(waiters[i]); cancelled[i] = true
            end
            late[#late + 1] = task.spawn(function() return task.await(waiters[i]) end)
          end)
        end
        return "tv"
      end)
      for i = 1, 200 do
        waiters[i] = task.spawn(function()
          local r = pack(task.await(target))
          woke[i] = (woke[i] or 0) + 1
          for _ = 1, 10 do local _ = { i } end -- garbage: more collections
          -- asserted after lw.run: a task's error only reaches stderr
          if not (r.n == 2 and r[1] == true and r[2] == "tv") then wrong[#wrong + 1] = i end
        end)
      end
      task.wait(0.05)
    end)
    assert.are.same({}, wrong)
    local nwoke = 0
    for i = 1, 200 do
      if cancelled[i] and lw.status(waiters[i]) == "cancelled" then
        assert.is_nil(woke[i])
      else
        assert.are.equal(1, woke[i])
        assert.are.equal("returned", lw.status(waiters[i]))
        nwoke = nwoke + 1
      end
    end
    assert.is_true(nwoke > 0)
  end)

  it("can spawn tasks that wait, await and read files", function()
    -- LuaJIT took a task's yield from C while a finalizer ran for a yield
    -- out of a hook, and crashed when the task was resumed
    local fs = require("luaweave").fs
    local path = os.tmpname()
    local f = assert(io.open(path, "w")); f:write("data"); f:close()
    local got = {}
    lw.run(function()
      local target = task.delay(0.005, function() return "t" end)
      for i = 1, 20 do
        arm(function()
          task.spawn(function()
            local waited = task.wait(0)
            local ok, v = task.await(target)
            local text = fs.readfile(path)
            got[#got + 1] = table.concat({ type(waited), tostring(ok), v, text }, " ")
          end)
        end)
      end
      full_gc()
      task.wait(0.02)
    end)
    os.remove(path)
    assert.are.equal(20, #got)
    for i = 1, 20 do assert.are.equal("number true t data", got[i]) end
  end)
end)

describe("to-be-closed variables calling back", function()
  if not is54 then
    pending("to-be-closed variables are Lua 5.4 only")
    return
  end

  it("can cancel, spawn, take and untrack while task.cancel closes them", function()
    local log, add = logger()
    local body = load([[
      local task, lw, add, other = ...
      local self = coroutine.running()
      local x <close> = setmetatable({}, { __close = function(_, err)
        add("closing", err, lw.status(self))
        task.cancel(self)  -- cancelling what is being cancelled
        task.cancel(other) -- and another task, mid-cancel
        local s = task.spawn(function() add("spawned in close"); return "sv" end)
        add("spawned", lw.status(s))
        add("take other", lw.take(other))
        add("other", lw.status(other))
      end })
      task.wait(10)
      add("never")
    ]])
    lw.run(function()
      local other = task.delay(5, function() add("other never") end)
      local t = task.spawn(body, task, lw, add, other)
      local w = task.spawn(function() add("waiter", task.await(t)) end)
      task.cancel(t)
      add("after cancel", lw.status(t), coroutine.status(t))
      task.wait()
      add("end", lw.status(w))
    end)
    assert.are.same({
      "closing nil cancelled", "spawned in close", "spawned returned",
      "take other false cancelled", "other untracked",
      "after cancel cancelled dead", "waiter false cancelled", "end returned",
    }, log)
  end)

  it("make a cancelled task failed when one raises, for its awaiters too", function()
    local got
    lw.run(function()
      local t = task.spawn(load([[
        local task = ...
        local x <close> = setmetatable({}, { __close = function() error("close failed", 0) end })
        task.wait(10)
      ]]), task)
      local w = task.spawn(function() got = pack(task.await(t)) end)
      task.cancel(t)
      assert.are.equal("failed", lw.status(t))
      same(pack(false, "close failed"), pack(lw.result(t)))
      task.wait()
      assert.are.equal("returned", lw.status(w))
    end)
    same(pack(false, "close failed"), got)
  end)

  it("give a failed task's awaiter the error its raising __close put instead, yielded or not", function()
    -- the scheduler closes a task that failed in its resumption before it
    -- wakes the awaiters: both get the __close's error (one awaiter used to
    -- get the first error when the task had yielded before failing)
    local got = {}
    lw.run(function()
      for _, yield in ipairs({ false, true }) do
        local t = task.spawn(load([[
          local task, yield = ...
          local x <close> = setmetatable({}, { __close = function() error("close failed", 0) end })
          if yield then task.wait() end
          error("task failed", 0)
        ]]), task, yield)
        got[#got + 1] = pack(task.await(t))
        got[#got + 1] = pack(lw.result(t))
      end
    end)
    for i = 1, 4 do same(pack(false, "close failed"), got[i]) end
  end)

  it("report a raising __close of an unawaited cancelled task", function()
    local out = child([[
      lw.run(function()
        local t = task.spawn(load("local task = ... " ..
          "local x <close> = setmetatable({}, { __close = function() error('close failed', 0) end }) " ..
          "task.wait(10)"), task)
        task.cancel(t)
        print("main on", lw.status(t))
      end)
    ]])
    assert.truthy(out:find("luaweave: close failed", 1, true), out)
    assert.truthy(out:find("main on\tfailed", 1, true), out)
  end)

  it("cannot wait inside a __close run by task.cancel; the cancel completes", function()
    local log, add = logger()
    lw.run(function()
      local t = task.spawn(load([[
        local task, add = ...
        local x <close> = setmetatable({}, { __close = function()
          local ok, err = pcall(task.wait, 0.01)
          add("wait in close", ok, tostring(err):find("cannot yield", 1, true) ~= nil)
        end })
        task.wait(10)
      ]]), task, add)
      task.cancel(t)
      add("after cancel", lw.status(t))
      task.wait(0.03)
    end)
    assert.are.same({ "wait in close false true", "after cancel cancelled" }, log)
  end)

  it("see their task untracked by the __close: its awaiters then get one nil", function()
    local got
    lw.run(function()
      local t = task.spawn(load([[
        local task, lw = ...
        local self = coroutine.running()
        local x <close> = setmetatable({}, { __close = function() lw.untrack(self) end })
        task.wait(10)
      ]]), task, lw)
      task.spawn(function() got = pack(task.await(t)) end)
      task.cancel(t)
      assert.are.equal("untracked", lw.status(t))
      task.wait()
    end)
    same(pack(nil), got)
  end)

  it("can spawn and untrack their coroutine while an installed coroutine.close runs", function()
    local log, add = logger()
    lw.install()
    finally(function() lw.uninstall() end)
    lw.run(function()
      local co = lw.track(coroutine.create(load([[
        local task, lw, add = ...
        local self = coroutine.running()
        local x <close> = setmetatable({}, { __close = function()
          task.spawn(function() add("spawned in close") end)
          lw.untrack(self)
        end })
        coroutine.yield("y")
      ]])))
      add("resume", coroutine.resume(co, task, lw, add))
      add("close", coroutine.close(co))
      add("status", lw.status(co), coroutine.status(co))
    end)
    assert.are.same({ "resume true y", "spawned in close", "close true", "status untracked dead" }, log)
  end)
end)

describe("cancel", function()
  it("of a task while it awaits: it never runs, its target goes on", function()
    local log, add = logger()
    lw.run(function()
      local target = task.delay(0.01, function() add("target ran"); return "tv" end)
      local a = task.spawn(function() add("a woke", task.await(target)) end)
      task.cancel(a)
      add("a", lw.status(a))
      local b = task.spawn(function() add("b woke", task.await(target)) end)
      task.await(b) -- not a wait of 0.03 s: under load both timers fall due
                    -- in one step, and this ran before b woke
      add("target", lw.status(target), "b", lw.status(b))
    end)
    assert.are.same({ "a cancelled", "target ran", "b woke true tv", "target returned b returned" }, log)
  end)

  it("of a task while it is awaited: await and any learn it at once", function()
    local log, add = logger()
    lw.run(function()
      local t = task.delay(1, function() add("never") end)
      local other = task.delay(2, function() add("never") end)
      task.spawn(function() add("await", task.await(t)) end)
      task.spawn(function()
        local r = pack(task.any(other, t))
        add("any", r[1] == t, r[2], r[3])
      end)
      task.cancel(t)
      task.cancel(other)
      task.wait()
    end)
    assert.are.same({ "await false cancelled", "any true false cancelled" }, log)
  end)

  it("from inside itself stops it at its next yield; awaiters learn then", function()
    local log, add = logger()
    lw.run(function()
      local t = task.spawn(function()
        task.wait()
        task.cancel(coroutine.running())
        add("runs on to its yield", lw.status(coroutine.running()))
        task.wait()
        add("never")
      end)
      task.spawn(function() add("awaiter", task.await(t)) end)
      task.wait(); task.wait(); task.wait()
      add("end", lw.status(t))
    end)
    assert.are.same({ "runs on to its yield running", "awaiter false cancelled", "end cancelled" }, log)
  end)

  it("from its own xpcall error handler", function()
    local log, add = logger()
    lw.run(function()
      local t
      t = task.spawn(function()
        task.wait()
        local r = pack(xpcall(function() error("inner", 0) end, function(m)
          add("handler", m)
          task.cancel(t)
          return "handled"
        end))
        add("xpcall", r[1], r[2], lw.status(t))
        task.wait(0.01)
        add("never")
        return "never"
      end)
      task.spawn(function() add("awaiter", task.await(t)) end)
      task.wait(0.03)
      add("end", lw.status(t))
    end)
    assert.are.same({
      "handler inner", "xpcall false handled running", "awaiter false cancelled", "end cancelled",
    }, log)
  end)

  it("from its own error handler of a task that then returns: it returned", function()
    lw.run(function()
      local t = task.spawn(function()
        xpcall(error, function() task.cancel(coroutine.running()) end, "x")
        return "finished"
      end)
      assert.are.equal("returned", lw.status(t))
      same(pack(true, "finished"), pack(task.await(t)))
    end)
  end)

  it("of a million queued tasks is quick and none of them runs", function()
    local ran = 0
    lw.run(function()
      local ts = {}
      for i = 1, 200000 do
        local f = function() ran = ran + 1 end
        ts[i] = (i % 2 == 0) and task.delay(1000, f) or task.defer(f)
      end
      for i = #ts, 1, -1 do task.cancel(ts[i]) end
    end)
    assert.are.equal(0, ran)
  end)
end)

describe("pcall and coroutine.wrap inside tasks", function()
  it("task.wait inside pcall: yields where Lua can, raises where it cannot", function()
    local got
    lw.run(function()
      local t = task.spawn(function() got = pack(pcall(task.wait, 0.001)) end)
      task.wait(0.02)
      assert.are.equal("returned", lw.status(t))
    end)
    if yielding_pcall then
      assert.are.equal(true, got[1])
      assert.are.equal("number", type(got[2]))
    else
      assert.are.equal(false, got[1])
      assert.truthy(got[2]:find("attempt to yield across", 1, true))
    end
  end)

  it("a wait or await whose yield failed never wakes the task's later plain yield", function()
    local log, add = logger()
    local ts = {}
    lw.run(function()
      local blocker = task.delay(0.01, function() return "b" end)
      local cmp = function(f) return function(a, b) f(); return a < b end end
      local attempts = {
        function() return pcall(task.wait, 0.01) end,
        function() return pcall(task.await, blocker) end,
        function() return pcall(table.sort, { 3, 2, 1 }, cmp(function() task.wait(0.01) end)) end,
        function() return pcall(table.sort, { 3, 2, 1 }, cmp(function() task.await(blocker) end)) end,
      }
      for i, try in ipairs(attempts) do
        ts[i] = task.spawn(function()
          try()
          local v = coroutine.yield("plain")
          add("woken", i, v)
        end)
      end
      task.wait(0.05)
      for i = 1, #ts do add(i, lw.status(ts[i])) end
    end)
    assert.are.same({ "1 yielded", "2 yielded", "3 yielded", "4 yielded" }, log)
  end)

  it("task.wait in a coroutine.wrap inside a task suspends the generator only", function()
    local log, add = logger()
    lw.run(function()
      local t = task.spawn(function()
        local gen = coroutine.wrap(function()
          add("gen start")
          task.wait(0.001)
          add("gen resumed by the scheduler")
          coroutine.yield("y2")
          return "done"
        end)
        add("gen returned", select("#", gen()))
        task.wait(0.02)
        add("gen again", gen())
      end)
      task.await(t) -- not a wait of 0.05 s, which load can make come first
      add("t", lw.status(t))
    end)
    assert.are.same({
      "gen start", "gen returned 0", "gen resumed by the scheduler", "gen again done", "t returned",
    }, log)
  end)

  it("a generator whose wait failed is resumed by its owner only", function()
    local log, add = logger()
    lw.run(function()
      local gen = coroutine.create(function()
        add("wait ok", (pcall(task.wait, 0.01)))
        add("gen got", coroutine.yield("g"))
      end)
      coroutine.resume(gen)
      task.wait(0.03)
      add("owner", coroutine.resume(gen, "owner"))
    end)
    local got = {}
    for _, l in ipairs(log) do if l:find("^gen got") then got[#got + 1] = l end end
    assert.are.same({ "gen got owner" }, got)
    assert.are.equal("owner true", log[#log])
  end)

  it("errors caught inside a task stay there; yields across pcall keep values", function()
    local got
    lw.run(function()
      local t = task.spawn(function()
        local a = pack(pcall(error, { code = 1 }))
        local b = pack(pcall(function() return coroutine.wrap(function() error({ "in wrap" }) end)() end))
        local c = yielding_pcall and pack(pcall(function(x) task.wait(); return x, nil end, "v")) or pack(true, "v", nil)
        return a[1], a[2].code, b[1], b[2][1], c[1], c[2], c[3], c.n
      end)
      got = pack(task.await(t))
    end)
    same(pack(true, false, 1, false, "in wrap", true, "v", nil, 3), got)
  end)

  it("lw.resume nested too deep gives coroutine.resume's error, no crash", function()
    if isjit then
      pending("LuaJIT has no C-call limit: nesting stops at the C stack")
      return
    end
    local failure
    local function f(n)
      local co = lw.track(coroutine.create(f))
      local r = pack(lw.resume(co, n + 1))
      if not r[1] and not failure then failure = { n = n, r = r, status = lw.status(co) } end
    end
    f(1)
    assert.is_table(failure)
    assert.are.equal(2, failure.r.n)
    assert.are.equal(false, failure.r[1])
    assert.are.equal("string", type(failure.r[2]))
    assert.truthy(failure.r[2]:find("stack overflow", 1, true), failure.r[2])
    assert.truthy(failure.n > 100)
  end)
end)

describe("many arguments", function()
  it("lw.run hands all of them to its main task", function()
    local t = {}
    for i = 1, 5000 do t[i] = i end
    same(pack(5000, 5000), pack(lw.run(function(...) return select("#", ...), (select(5000, ...)) end, unpack(t))))
  end)
end)

describe("install and uninstall out of order", function()
  after_each(function() lw.uninstall() end)

  it("uninstall without install does nothing", function()
    local r, w = coroutine.resume, coroutine.wrap
    same(pack(), pack(lw.uninstall()))
    same(pack(), pack(lw.uninstall()))
    assert.is_true(rawequal(r, coroutine.resume))
    assert.is_true(rawequal(w, coroutine.wrap))
  end)

  it("install twice, then one uninstall restores the originals", function()
    local r, w = coroutine.resume, coroutine.wrap
    lw.install()
    local installed = coroutine.resume
    lw.install()
    assert.is_true(rawequal(installed, coroutine.resume))
    assert.is_false(rawequal(r, coroutine.resume))
    lw.uninstall()
    assert.is_true(rawequal(r, coroutine.resume))
    assert.is_true(rawequal(w, coroutine.wrap))
  end)

  it("install from a finalizer during lw.resume, used at once in a task", function()
    local r = coroutine.resume
    local co = lw.track(coroutine.create(function()
      arm(function() lw.install(); lw.install() end)
      full_gc()
      return "x"
    end))
    same(pack(true, "x"), pack(lw.resume(co)))
    assert.is_false(rawequal(r, coroutine.resume))
    lw.run(function()
      local inner = lw.track(coroutine.create(function() coroutine.yield(1); return 2 end))
      same(pack(true, 1), pack(coroutine.resume(inner)))
      same(pack(true, 1), pack(lw.result(inner)))
      same(pack(true, 2), pack(coroutine.resume(inner)))
      assert.are.equal("returned", lw.status(inner))
    end)
    lw.uninstall()
    assert.is_true(rawequal(r, coroutine.resume))
  end)
end)

describe("error objects whose __tostring fails", function()
  local function bad()
    return setmetatable({}, { __tostring = function() error("tostring called") end })
  end

  it("come back untouched from lw.result, lw.take, task.await and lw.run", function()
    local e = bad()
    local co = lw.track(coroutine.create(function() error(e) end))
    local r = pack(lw.resume(co))
    assert.are.equal(false, r[1])
    assert.is_true(rawequal(e, r[2]))
    assert.is_true(rawequal(e, select(2, lw.result(co))))
    assert.is_true(rawequal(e, select(2, lw.take(co))))
    lw.run(function()
      local t = task.defer(function() error(e) end)
      local ok, got = task.await(t)
      assert.is_false(ok)
      assert.is_true(rawequal(e, got))
    end)
    local ok, got = pcall(lw.run, function() task.wait(); error(e) end)
    assert.is_false(ok)
    assert.is_true(rawequal(e, got))
  end)

  it("are reported by type when the reporter cannot print them", function()
    local out = child([[
      local function bad(ts) return setmetatable({}, { __tostring = ts }) end
      lw.run(function()
        task.spawn(function() error(bad(function() error("tostring called") end)) end)
        task.defer(function() error(bad(function() return {} end)) end)
        task.delay(0, function() error(bad(function() return "readable" end)) end)
        print("main on")
      end)
      print("run returned")
    ]])
    local _, n = out:gsub("luaweave: %(error object is a table value%)", "")
    assert.are.equal(2, n, out)
    assert.truthy(out:find("luaweave: readable", 1, true), out)
    assert.truthy(out:find("main on", 1, true), out)
    assert.truthy(out:find("run returned", 1, true), out)
    assert.is_nil(out:find("tostring called", 1, true), out)
  end)
end)
