-- luaweave.signal: signals this process sends itself (kill), USR1/USR2.
local lw = require "luaweave"
local task = require "luaweave.task"
local signal = require "luaweave.signal"
local helper = require "spec.io_helper"

local pid = io.open("/proc/self/stat"):read("*a"):match("^%d+")
local function kill(sig) os.execute("kill -" .. sig .. " " .. pid) end

-- wait in the loop until cond() holds (a hang guard: 2000 turns)
local function until_(cond)
  for _ = 1, 2000 do
    if cond() then return true end
    task.wait(0.01)
  end
  return false
end

describe("luaweave.signal", function()
  it("wait suspends a task until the signal comes", function()
    local order = {}
    lw.run(function()
      local w = task.spawn(function()
        order[#order + 1] = "waiting"
        local name = signal.wait("USR2")
        order[#order + 1] = name
      end)
      order[#order + 1] = "main"
      kill("USR2")
      task.await(w)
    end)
    assert.are.same({ "waiting", "main", "USR2" }, order)
  end)

  it("a handler task runs at each signal, and keeps no run alive", function()
    local got, h = {}
    lw.run(function()
      h = signal.handle("SIGUSR1", function(name) got[#got + 1] = name end)
      kill("USR1")
      assert.is_true(until_(function() return #got == 1 end))
      kill("USR1")
      assert.is_true(until_(function() return #got == 2 end))
    end)
    assert.are.same({ "USR1", "USR1" }, got)
    -- the run ended with the handler still installed: cancel removes it
    lw.run(function() task.cancel(h) end)
  end)

  it("cancel of a waiting task ends its wait, and the run", function()
    local st
    lw.run(function()
      local w = task.spawn(function() signal.wait("USR2") end)
      task.cancel(w)
      st = lw.status(w)
    end)
    assert.are.equal("cancelled", st)
  end)

  it("closes what waits at lua_close", function()
    local out, status = helper.child("", [[
      local lw = require "luaweave"
      local task = require "luaweave.task"
      local signal = require "luaweave.signal"
      lw.run(function()
        task.spawn(function() signal.wait("USR2") end)
        signal.handle("USR1", print)
        task.exit()
      end)
      print("done")
    ]])
    assert.are.equal(0, status, out)
    assert.matches("done", out)
  end)

  it("raises bad argument at the caller's line", function()
    local m = {}
    lw.run(function()
      m[1] = select(2, pcall(function() signal.wait("NOPE") end))
      m[2] = select(2, pcall(function() signal.handle({}, print) end))
      m[3] = select(2, pcall(function() signal.handle("INT") end))
    end)
    assert.matches("io_signal_spec.lua:%d+: bad argument #1 to 'wait' %(signal name or number expected%)", m[1])
    assert.matches("io_signal_spec.lua:%d+: bad argument #1 to 'handle' %(signal name or number expected%)", m[2])
    assert.matches("io_signal_spec.lua:%d+: bad argument #2 to 'handle' %(function expected%)", m[3])
  end)
end)
