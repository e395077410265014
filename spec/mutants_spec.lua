-- Specs that kill mutants: each catches a deliberate bug of
-- tests/mutations.txt (named in its describe) that the other suites let
-- through (make mutate, docs/reliability.md).  Deterministic: no
-- wall-clock time; memory is measured with collectgarbage("count").
local lw = require "luaweave"

-- the heap (KB) after a full collection
local function heap()
  collectgarbage()
  collectgarbage()
  return collectgarbage("count")
end

describe("mutant store-untrack-keeps-vals:", function()
  -- 20,000 threads whose returned values refer back to them: on 5.1 and
  -- LuaJIT (no ephemerons) a value left in the values table keeps its
  -- thread, and so itself, alive for good (29 MB here instead of 1.3)
  -- (all 20,000 returned before the first is forgotten, as the issue
  -- measured it: the values table grows to hold them all)
  local function kept_kb(forget, nvals)
    local base = heap()
    local cos = {}
    for i = 1, 20000 do
      cos[i] = lw.track(coroutine.create(function()
        local me = coroutine.running()
        local v = {me = me, i, i, i, i, i, i, i, i}
        if nvals == 1 then return v end
        return v, me, i
      end))
      assert(lw.resume(cos[i]))
    end
    for i = 1, #cos do forget(cos[i]) end
    cos = nil
    return heap() - base
  end

  for _, nvals in ipairs({1, 3}) do
    it("lw.take frees what a self-referencing thread returned (" .. nvals .. " values)", function()
      local kb = kept_kb(function(co) assert(lw.take(co)) end, nvals)
      assert.is_true(kb < 6000, ("%.0f KB still allocated"):format(kb))
      assert.are.equal(0, lw.count())
    end)
    it("lw.untrack frees what a self-referencing thread returned (" .. nvals .. " values)", function()
      local kb = kept_kb(function(co) lw.untrack(co) end, nvals)
      assert.is_true(kb < 6000, ("%.0f KB still allocated"):format(kb))
      assert.are.equal(0, lw.count())
    end)
  end

  -- on every version: the values go at once, while the thread lives
  for _, how in ipairs({"take", "untrack"}) do
    for _, nvals in ipairs({1, 2}) do
      it("lw." .. how .. " drops the values of a thread that is still alive (" .. nvals .. ")", function()
        local weak = setmetatable({}, {__mode = "v"})
        local co = lw.track(coroutine.create(function()
          local v = {}
          weak[1] = v
          if nvals == 1 then return v end
          return v, "second"
        end))
        assert(lw.resume(co))
        assert.are.equal("returned", lw.status(co))
        lw[how](co)
        heap()
        assert.is_nil(weak[1])
        assert.are.equal("dead", coroutine.status(co)) -- co is still here
        assert.are.equal("untracked", lw.status(co))
        lw.track(co)
        assert.are.equal(1, select("#", lw.result(co)))
        assert.is_nil(lw.result(co))
        lw.untrack(co)
      end)
    end
  end
end)

local task = require "luaweave.task"

describe("mutant sched-unresumable-normal:", function()
  it("task.spawn of a coroutine that is resuming another raises", function()
    local got
    lw.run(function()
      local outer
      outer = coroutine.create(function()
        local inner = coroutine.create(function()
          return pcall(task.spawn, outer, "x")
        end)
        return coroutine.resume(inner)
      end)
      got = { coroutine.resume(outer) }
    end)
    assert.are.equal(true, got[1])
    assert.are.equal(true, got[2])
    assert.are.equal(false, got[3])
    assert.truthy(tostring(got[4]):find("cannot resume non-suspended coroutine", 1, true), got[4])
  end)
end)

describe("mutant await-compact-tail:", function()
  -- 16 task.any waiters on a long-lived x, each woken by its other
  -- target: their registrations on x go stale, and the 17th compacts the
  -- list; nothing of the 16 may stay in it (it would keep their threads)
  it("compacting a waiter list keeps no copy of what it moved or dropped", function()
    local weak = setmetatable({}, { __mode = "k" })
    local left
    lw.run(function()
      local x = task.spawn(function() coroutine.yield() end) -- never ends
      local function waiter()
        local y = task.spawn(function() task.wait() end)
        return task.spawn(function() task.any(x, y) end)
      end
      for _ = 1, 16 do weak[waiter()] = true end
      task.wait(); task.wait()
      waiter() -- the 17th registration on x: compaction
      task.wait(); task.wait()
      collectgarbage(); collectgarbage()
      left = 0
      for _ in pairs(weak) do left = left + 1 end
      task.cancel(x)
    end)
    assert.are.equal(0, left)
  end)
end)

describe("mutant end-cancel-dead:", function()
  it("task.cancel of a dead coroutine nobody tracks leaves it untracked", function()
    local base = lw.count()
    local u = coroutine.create(function() return 1 end)
    assert(coroutine.resume(u))
    task.cancel(u)
    assert.are.equal("untracked", lw.status(u))
    local f = coroutine.create(function() error("x", 0) end)
    assert(not coroutine.resume(f))
    task.cancel(f)
    assert.are.equal("untracked", lw.status(f))
    assert.are.equal(base, lw.count())
  end)
end)
