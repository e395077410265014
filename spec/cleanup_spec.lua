-- Cleanup on cancel before Lua 5.4 (issue 18): a cancelled task suspended
-- in task.wait, await, any or exit is resumed once with the error
-- "cancelled" raised at that point, so that pcall-based cleanup runs; its
-- end is recorded as cancelled whatever the cleanup does.  5.4 closes the
-- task instead (its to-be-closed variables run); 5.1 cannot suspend inside
-- a pcall, so there the cancelled wait raises outside any.
local lw = require "luaweave"
local task = require "luaweave.task"

local is54 = _VERSION == "Lua 5.4"
local is51 = _VERSION == "Lua 5.1" and type(jit) ~= "table"

describe("cleanup on cancel", function()
  if is54 then
    pending("5.4 closes a cancelled task instead: its to-be-closed variables run (group_spec, reentrancy_spec)")
    return
  end

  -- spawn body as a task, let it suspend, cancel it: what body logged,
  -- then its status and what an await of it gives
  local function cancelled_log(body)
    local log = {}
    lw.run(function()
      local t = task.spawn(body, log)
      task.wait()
      task.cancel(t)
      log[#log + 1] = lw.status(t)
      local ok, err = task.await(t)
      log[#log + 1] = tostring(ok) .. " " .. tostring(err)
      task.wait()
    end)
    return log
  end

  it("raises 'cancelled' at the wait, unreported, and the task stays cancelled", function()
    local reported = {}
    task.onerror(function(_, err) reported[#reported + 1] = tostring(err) end)
    local log = cancelled_log(function(log)
      task.wait(10)
      log[#log + 1] = "after"
    end)
    task.onerror(nil)
    assert.are.same({ "cancelled", "false cancelled" }, log)
    assert.are.same({}, reported)
  end)

  if is51 then return end -- 5.1 cannot yield inside a pcall

  it("runs the code after a pcall'ed wait, and stays cancelled", function()
    local log = cancelled_log(function(log)
      local ok, err = pcall(task.wait, 10)
      log[#log + 1] = tostring(ok) .. " " .. tostring(err)
      return "not a result"
    end)
    assert.are.same({ "false cancelled", "cancelled", "false cancelled" }, log)
  end)

  it("releases a semaphore and closes a channel in cleanup", function()
    local sem, ch = task.semaphore(1), task.channel(1)
    local got
    lw.run(function()
      local holder = task.spawn(function()
        sem:acquire()
        local ok = pcall(task.await, task.delay(10, function() end))
        sem:release()   -- cleanup: the permit goes back
        ch:close()
        return ok
      end)
      task.wait()
      task.cancel(holder)
      got = { sem:acquire(0), ch:recv(0) }
      sem:release()
    end)
    assert.is_true(got[1])
    assert.is_nil(got[2])
  end)

  it("cancels a group's children with cleanup, and a cleanup that waits again stays cancelled", function()
    local cleaned = 0
    lw.run(function()
      local g = task.group()
      for _ = 1, 3 do
        g:spawn(function()
          local ok = pcall(task.wait, 10)
          if not ok then cleaned = cleaned + 1 end
          task.wait(10) -- a cleanup that waits: never resumed
        end)
      end
      local last = g:spawn(function() pcall(task.any, { task.delay(10, function() end) }) cleaned = cleaned + 1 end)
      task.wait()
      g:cancel()
      assert.are.equal("cancelled", lw.status(last))
    end)
    assert.are.equal(4, cleaned)
  end)
end)
