-- luaweave.stdio: a child interpreter's stdin and stdout, piped by
-- luaweave.process (or /dev/null).
local lw = require "luaweave"
local process = require "luaweave.process"
local helper = require "spec.io_helper"

local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"

local function script(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("local lw = require 'luaweave'\nlocal task = require 'luaweave.task'\n",
    "local stdio = require 'luaweave.stdio'\n", code)
  f:close()
  return path
end

describe("luaweave.stdio", function()
  it("a line read from stdin suspends only its task", function()
    local path = script([[
      lw.run(function()
        local reader = task.spawn(function() return stdio.stdin:readline() end)
        stdio.stdout:write("ready\n") -- the reader waits; this task runs on
        local _, line = task.await(reader)
        stdio.stdout:write("got ", line, "\n")
      end)
    ]])
    local r = {}
    lw.run(function()
      local p = assert(process.spawn(lua, { path }, { stdin = "pipe", stdout = "pipe" }))
      r[1] = p.stdout:readline()
      p.stdin:write("hello\n")
      r[2] = p.stdout:readline()
      r[3] = p:wait()
    end)
    os.remove(path)
    assert.are.same({ "ready", "got hello", 0 }, r)
  end)

  it("closing a stdio stream leaves the descriptor to Lua's io", function()
    local out, status = helper.child("", [[
      local lw = require "luaweave"
      local stdio = require "luaweave.stdio"
      lw.run(function()
        stdio.stdout:write("stream\n")
        stdio.stdout:close()
      end)
      io.write("io\n")
    ]])
    assert.are.equal(0, status, out)
    assert.matches("stream\nio\n", out)
  end)

  it("gives nil for what libuv cannot poll (a device, a file)", function()
    local path = script("print(stdio.stdin == nil, stdio.stdout ~= nil)\n")
    local p = assert(io.popen(lua .. " " .. path .. " < /dev/null"))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.are.equal("true\ttrue\n", out)
  end)
end)
