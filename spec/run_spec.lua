-- lw.run: a main function that fails ends the run at once, as the CLI
-- ends its main chunk, even while a server listens or a timer is far off.
local helper = require "spec.io_helper"

describe("lw.run", function()
  it("raises the main function's error at once while a server listens", function()
    -- in a child interpreter: before the fix the run never ended (the
    -- child's timeout 60 is the hang guard, exit 124)
    local out, status = helper.child("", [[
local lw = require "luaweave"
local task = require "luaweave.task"
local net = require "luaweave.net"
local later = false
local ok, err = pcall(lw.run, function()
  assert(net.listen("127.0.0.1", 0, function() end))
  task.delay(30, function() later = true end)
  task.wait()
  error("boom", 0)
end)
print(ok, err, later)
]])
    assert.are.equal(0, status, out)
    assert.matches("^false\tboom\tfalse\n", out)
  end)

  it("the next run starts clean, and a main that returns still waits for the rest", function()
    local lw = require "luaweave"
    local task = require "luaweave.task"
    local ran = {}
    assert.is_false(pcall(lw.run, function()
      task.defer(function() ran[#ran + 1] = "dropped" end)
      error("x")
    end))
    lw.run(function()
      task.delay(0, function() ran[#ran + 1] = "after main" end)
    end)
    assert.are.equal("after main", table.concat(ran, " "))
  end)
end)
