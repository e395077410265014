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
  local function kept_kb(forget, nvals)
    local base = heap()
    for i = 1, 20000 do
      local co = lw.track(coroutine.create(function()
        local me = coroutine.running()
        local v = {me = me, i, i, i, i, i, i, i, i}
        if nvals == 1 then return v end
        return v, me, i
      end))
      assert(lw.resume(co))
      forget(co)
    end
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
