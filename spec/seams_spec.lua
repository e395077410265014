-- Issue 13: every way a thread ends wakes its awaiters; deferred starts
-- resumed directly; spawns of dead threads; waiter lists stay bounded.
local lw = require "luaweave"
local task = require "luaweave.task"
local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end
local function same(want, got)
  assert.are.equal(want.n, got.n)
  for i = 1, want.n do assert.are.equal(want[i], got[i]) end
end

-- run f as lw.run's main task; its results, packed
local function run(f) return pack(lw.run(f)) end

describe("the one end path", function()
  -- the awaiter must wake in the cycle the target ends, not when nothing
  -- else is left to run (a ticker keeps the scheduler busy meanwhile),
  -- unless the end was out of luaweave's sight (raw)
  local function awaited_end(ender, raw)
    local ticks
    local r = run(function()
      local t = lw.track(coroutine.create(function() coroutine.yield() return "fin", nil end))
      local n = 0
      task.spawn(function() for _ = 1, 5 do task.wait(); n = n + 1 end end)
      lw.resume(t)
      task.defer(function() ender(t) end)
      local r = pack(task.await(t))
      ticks = n
      return unpack(r, 1, r.n)
    end)
    if raw then assert.are.equal(5, ticks) else assert.is_true(ticks < 2, ticks) end
    return r
  end

  it("wakes an awaiter when lw.resume runs the target to its end", function()
    same(pack(true, "fin", nil), awaited_end(function(t) lw.resume(t) end))
  end)

  it("wakes an awaiter when an installed coroutine.resume ends the target", function()
    lw.install()
    finally(function() lw.uninstall() end)
    same(pack(true, "fin", nil), awaited_end(function(t) coroutine.resume(t) end))
  end)

  it("wakes an awaiter when an installed coroutine.wrap ends the target", function()
    lw.install()
    finally(function() lw.uninstall() end)
    same(pack(true, 7), run(function()
      local t
      local f = coroutine.wrap(function() t = coroutine.running(); lw.track(t); coroutine.yield() return 7 end)
      f()
      task.defer(f)
      return task.await(t)
    end))
  end)

  it("wakes an awaiter, once nothing else runs, when a raw resume ends the target", function()
    same(pack(false, "thread ended outside luaweave: its result is unknown"),
      awaited_end(function(t) coroutine.resume(t) end, true))
  end)

  it("wakes an awaiter when a task fails through lw.resume, and reports nothing", function()
    same(pack(false, "boom"), run(function()
      local t = lw.track(coroutine.create(function() coroutine.yield() error("boom", 0) end))
      lw.resume(t)
      task.defer(function() lw.resume(t) end)
      return task.await(t)
    end))
  end)

  if coroutine.close then
    it("wakes an awaiter when coroutine.close ends the target (5.4), installed or not", function()
      -- uninstalled, a close looks like a raw resume to the end
      same(pack(false, "thread ended outside luaweave: its result is unknown"),
        awaited_end(function(t) coroutine.close(t) end, true))
      lw.install()
      finally(function() lw.uninstall() end)
      same(pack(false, "cancelled"), awaited_end(function(t) coroutine.close(t) end))
    end)
  end

  it("wakes task.any's waiter by the target that ended outside the scheduler", function()
    local got = run(function()
      local t = lw.track(coroutine.create(function() coroutine.yield() return 1 end))
      local never = task.spawn(function() coroutine.yield() end)
      lw.resume(t)
      task.defer(function() lw.resume(t) end)
      local who, ok, v = task.any(never, t)
      return who == t, ok, v
    end)
    same(pack(true, true, 1), got)
  end)
end)

describe("deferred starts", function()
  it("a thread of task.defer(f, args) resumed directly calls f with the resume's arguments", function()
    local calls = {}
    local got = run(function()
      local t = task.defer(function(...) calls[#calls + 1] = table.concat({ ... }, ",") return ... end, "x", "y")
      local r = pack(coroutine.resume(t, "p", "q"))
      task.wait()
      return unpack(r, 1, r.n)
    end)
    same(pack(true, "p", "q"), got)
    assert.are.same({ "p,q" }, calls) -- the deferred start never runs it again
  end)

  it("a thread of task.delay(0, f, args) too; undisturbed, f gets args", function()
    local got = run(function()
      local a = task.delay(0, function(x, y) return x .. y end, "x", "y")
      local b = task.delay(0, function(x, y) return x .. y end, "x", "y")
      local r = pack(coroutine.resume(a, "p", "q"))
      return r[2], select(2, task.await(b))
    end)
    same(pack("pq", "xy"), got)
  end)
end)

describe("spawning what cannot run", function()
  local function dead()
    local d = coroutine.create(function() end)
    coroutine.resume(d)
    return d
  end

  for _, name in ipairs({ "spawn", "defer", "delay" }) do
    it("task." .. name .. " of a dead thread raises at the caller's line", function()
      local ok, err = pcall(lw.run, function()
        local d = dead()
        if name == "delay" then task.delay(0, d) else task[name](d) end
      end)
      assert.is_false(ok)
      assert.truthy(err:find("seams_spec.lua:%d+: task%." .. name .. ": cannot resume dead coroutine"))
    end)
  end

  it("task.spawn of a cancelled or running thread raises; task.defer of itself does not", function()
    local got = run(function()
      local t = task.delay(10, function() end)
      task.cancel(t)
      local a = pack(pcall(task.spawn, t))
      local b = pack(pcall(task.spawn, coroutine.running()))
      local c = pcall(task.defer, coroutine.running())
      return a[2], b[2], c
    end)
    same(pack("task.spawn: cannot resume dead coroutine",
      "task.spawn: cannot resume non-suspended coroutine", true), got)
  end)
end)

describe("waiter lists", function()
  it("stay bounded: task.any(longlived, quick) in a loop does not grow the heap", function()
    local before, after
    run(function()
      local longlived = task.spawn(function() coroutine.yield() end)
      local function round() task.any(longlived, task.defer(function() end)) end
      for _ = 1, 2000 do round() end
      collectgarbage(); collectgarbage()
      before = collectgarbage("count")
      for _ = 1, 20000 do round() end
      collectgarbage(); collectgarbage()
      after = collectgarbage("count")
      task.cancel(longlived)
    end)
    assert.is_true(after < before + 64, ("heap grew from %.0f to %.0f KiB"):format(before, after))
  end)

  it("let a cancelled awaiter and its unreferenced, never-ending target go", function()
    local gone = setmetatable({}, { __mode = "k" })
    run(function()
      for _ = 1, 100 do
        local target = lw.track(coroutine.create(function() end))
        local w = task.spawn(function() task.await(target) end)
        gone[target], gone[w] = true, true
        target = nil
        task.cancel(w)
      end
      task.wait()
    end)
    collectgarbage(); collectgarbage()
    assert.is_nil(next(gone))
  end)
end)

describe("a cancelled task", function()
  -- before 5.4 Lua cannot close it: a raw resume must not bring it back
  -- (in task.wait/await/any it is unwound at the cancel, and dead)
  for _, how in ipairs({ "wait", "await", "any", "readfile" }) do
    it("suspended in " .. how .. " never runs again when resumed raw", function()
      local ran = false
      local got = run(function()
        local other = task.spawn(function() coroutine.yield() end)
        local t = task.spawn(function()
          if how == "wait" then task.wait(10)
          elseif how == "await" then task.await(other)
          elseif how == "any" then task.any(other, other)
          else lw.fs.readfile("spec/seams_spec.lua") end
          ran = true
        end)
        task.cancel(t)
        local r = pack(coroutine.resume(t, "x"))
        coroutine.resume(t)
        task.cancel(other)
        return r[1], lw.status(t)
      end)
      assert.is_false(ran)
      if coroutine.close or how ~= "readfile" then
        -- closed (5.4), or unwound: "cancelled" raised at the wait (cleanup_spec)
        same(pack(false, "cancelled"), got)
      else
        same(pack(true, "cancelled"), got) -- an async call: suspended again at once
      end
    end)
  end
end)

describe("a task untracked before it returns", function()
  it("is dead, and spawning it again raises", function()
    local got = run(function()
      local t = task.spawn(function() lw.untrack(coroutine.running()); return "a", "b" end)
      return lw.status(t), coroutine.status(t), pcall(task.spawn, t)
    end)
    same(pack("untracked", "dead", false, "task.spawn: cannot resume dead coroutine"), got)
  end)
end)

describe("a task woken early from outside the scheduler", function()
  it("by an installed coroutine.resume is never resumed again by its wait's timer", function()
    lw.install()
    finally(function() lw.uninstall() end)
    local got = run(function()
      local t = task.spawn(function() task.wait(0.05); coroutine.yield(); return "late" end)
      coroutine.resume(t, "early") -- ends the wait: t yields plainly
      task.wait(0.1)               -- its timer, had it stayed, fell due first
      return lw.status(t), coroutine.status(t)
    end)
    same(pack("yielded", "suspended"), got)
  end)

  -- a plain coroutine (no task) waits; the user resumes it by hand with a
  -- raw coroutine.resume (lw.install not active) and it yields at its own
  -- coroutine.yield: the wait ended there, and neither its timer nor the
  -- wrapped call's completion may resume it at that yield later
  local function raw_early(suspend)
    local seen = {}
    local co = coroutine.create(function()
      seen[#seen + 1] = pack(suspend())
      seen[#seen + 1] = pack(coroutine.yield("mine"))
      return "end"
    end)
    local got = run(function()
      coroutine.resume(co)                       -- starts: co waits
      local r = pack(coroutine.resume(co, "user-value"))
      task.wait(0.1)                             -- the wait fell due first
      return coroutine.status(co), #seen, r[2], seen[1][1],
             select(2, coroutine.resume(co, "again")), seen[2] and seen[2][1]
    end)
    same(pack("suspended", 1, "mine", "user-value", "end", "again"), got)
  end

  it("by a raw coroutine.resume: its task.wait's timer never resumes its own yield", function()
    raw_early(function() return task.wait(0.005) end)
  end)

  it("by a raw coroutine.resume: a task.wrap'ped call's completion never resumes its own yield", function()
    local later = task.wrap(function(cb) task.delay(0.005, cb, "done") end, 1)
    raw_early(function() return later() end)
  end)

  it("by a raw coroutine.resume: its task.await's wake never resumes its own yield", function()
    local target
    raw_early(function()
      target = task.delay(0.005, function() return "t" end)
      return task.await(target)
    end)
  end)
end)
