-- task.onerror(fn): fn(co, err, report) receives unhandled task errors.
local lw = require "luaweave"
local task = require "luaweave.task"

-- run Lua code in a child interpreter (the one running this spec), with
-- stderr; returns its output
local function child(code)
  local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("local lw = require 'luaweave'\nlocal task = require 'luaweave.task'\n", code)
  f:close()
  local p = assert(io.popen(lua .. " " .. path .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out
end

describe("task.onerror", function()
  after_each(function() task.onerror(nil) end)

  it("receives the thread, the error object itself and a traceback", function()
    local got = {}
    local e = setmetatable({}, { __tostring = function() return "custom" end })
    local t
    lw.run(function()
      task.onerror(function(co, err, report) got[#got + 1] = { co, err, report } end)
      t = task.spawn(function() task.wait(); error(e) end)
      task.wait(); task.wait()
    end)
    assert.are.equal(1, #got)
    assert.are.equal(t, got[1][1])
    assert.are.equal(e, got[1][2])
    assert.matches("^custom\nstack traceback:", got[1][3])
  end)

  it("is not called for an error someone awaited", function()
    local n = 0
    lw.run(function()
      task.onerror(function() n = n + 1 end)
      local t = task.defer(function() error("x", 0) end)
      assert.are.same({ false, "x" }, { task.await(t) })
      task.spawn(function() error("y", 0) end)
      task.wait()
    end)
    assert.are.equal(1, n)
  end)

  it("nil restores the default report; a non-function is refused", function()
    local out = child([[
      task.onerror(function() io.stderr:write("handled\n") end)
      lw.run(function() task.spawn(function() error("one", 0) end) end)
      task.onerror(nil)
      pcall(lw.run, function() task.spawn(function() error("two", 0) end) end)
    ]])
    assert.matches("handled\n", out)
    assert.is_nil(out:match("one"))
    assert.matches("luaweave: two", out)
    assert.has_error(function() task.onerror(1) end,
      "bad argument #1 to 'onerror' (function or nil expected, got number)")
  end)

  it("an error in the handler is reported, with the handler's message", function()
    local out = child([[
      task.onerror(function(co, err) error("handler saw " .. err, 0) end)
      lw.run(function() task.spawn(function() error("boom", 0) end) end)
      print("after")
    ]])
    assert.matches("luaweave: task.onerror: handler saw boom", out)
    assert.matches("after", out)
  end)

  it("a handler that raises hides not the task's error: both are reported, the task's first", function()
    local out = child([[
      task.onerror(function() error("handler broke", 0) end)
      lw.run(function() task.spawn(function() error("task broke", 0) end) end)
    ]])
    local a = out:find("luaweave: task broke\nstack traceback:", 1)
    local b = out:find("luaweave: task.onerror: handler broke", 1, true)
    assert.is_truthy(a, out)
    assert.is_truthy(b, out)
    assert.is_true(a < b)
  end)

  it("the default report carries the failed task's traceback on every version", function()
    local out = child([[
      local function deep() error("deep broke") end
      lw.run(function() task.spawn(function() task.wait(); deep() end) end)
    ]])
    assert.matches("deep broke\nstack traceback:\n.-in %a+ 'deep'", out)
  end)
end)
