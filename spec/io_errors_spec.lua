-- Errors raised by luaweave's async C functions (lw_async_wrap) name the
-- user's call and line, as Lua's own functions' errors do.
local lw = require "luaweave"
local task = require "luaweave.task"
local net = require "luaweave.net"

local here = debug.getinfo(1, "S").short_src
local function line() return debug.getinfo(2, "l").currentline end
local function err(f, ...) return select(2, pcall(f, ...)) end

describe("async errors", function()
  it("name the function and the line the user called (fs)", function()
    local e1, e2, l1, l2
    lw.run(function()
      l1, e1 = line(), err(function() lw.fs.readfile() end)
      l2, e2 = line(), err(function() local rf = lw.fs.writefile; rf("x", {}) end)
    end)
    assert.are.equal(here .. ":" .. l1 .. ": bad argument #1 to 'readfile' (string expected, got no value)", e1)
    assert.are.equal(here .. ":" .. l2 .. ": bad argument #2 to 'rf' (string expected, got table)", e2)
  end)

  it("say where a wrapped function was called outside a task", function()
    local l, e = line(), err(function() lw.fs.readfile("/nonexistent") end)
    assert.are.equal(here .. ":" .. l .. ": async function called outside a task (cannot yield)", e)
  end)

  it("count a method's self as Lua does, and name bad self", function()
    local e = {}
    local l
    lw.run(function()
      local srv = assert(net.listen("127.0.0.1", 0, function(s) s:close() end))
      local c = assert(net.connect("127.0.0.1", srv:port()))
      l = line()
      e[1] = err(function() c:read("x") end)
      e[2] = err(function() c.read(c, "x") end)
      e[3] = err(function() c.read(5) end)
      e[4] = err(function() local s = { read = c.read }; s:read() end)
      c:close()
      srv:close()
    end)
    assert.are.equal(here .. ":" .. l + 1 .. ": bad argument #1 to 'read' (number expected)", e[1])
    assert.are.equal(here .. ":" .. l + 2 .. ": bad argument #2 to 'read' (number expected)", e[2])
    assert.are.equal(here .. ":" .. l + 3 .. ": bad argument #1 to 'read' (stream expected, got number)", e[3])
    assert.are.equal(here .. ":" .. l + 4 .. ": calling 'read' on bad self (stream expected, got table)", e[4])
  end)

  -- a tail call leaves no frame of the caller: the name comes from where
  -- the function is kept (a module, a metatable's methods), self counted
  it("name a tail-called function and its argument", function()
    local e = {}
    local l
    lw.run(function()
      local srv = assert(net.listen("127.0.0.1", 0, function(s) s:close() end))
      local c = assert(net.connect("127.0.0.1", srv:port()))
      local function rd() return c:read(-1) end
      e[1] = err(rd)
      e[2] = err(function() return c:write({}) end)
      e[3] = err(function() return net.connect({}, 80) end)
      l = line()
      e[5] = err(function() local s = rd(); return s end)
      c:close()
      srv:close()
    end)
    assert.are.equal("bad argument #1 to 'read' (count out of range)", e[1])
    assert.are.equal("bad argument #1 to 'write' (string expected)", e[2])
    assert.are.equal("bad argument #1 to 'luaweave.net.connect' (string expected)", e[3])
    -- LuaJIT names the function that made the tail call, with self
    -- counted, as it does for its own functions (string.rep's included)
    local rd = jit and "#2 to 'rd'" or "#1 to 'read'"
    assert.are.equal(here .. ":" .. l + 1 .. ": bad argument " .. rd .. " (count out of range)", e[5])
  end)

  it("name task.wrap's callers", function()
    local e, l, v
    lw.run(function() v = task.wrap(function(cb) cb(1) end, 1)() end)
    assert.are.equal(1, v)
    local w = task.wrap(function(cb) cb(1) end, 1)
    l, e = line(), err(function() w() end)
    assert.are.equal(here .. ":" .. l .. ": task.wrap: wrapped function called outside a task", e)
  end)

  it("leave errors the function passes on untouched", function()
    local e1, e2, e3
    lw.run(function()
      e1 = err(task.wrap(function(cb) error("plain", 0) end, 1))
      e2 = err(task.wrap(function(cb) error({ "table" }) end, 1))
      e3 = err(task.wrap(function(cb) error("positioned") end, 1))
    end)
    assert.are.equal("plain", e1)
    assert.are.same({ "table" }, e2)
    assert.matches("^" .. here:gsub("%p", "%%%0") .. ":%d+: positioned$", e3)
  end)

  it("reach the caller of a function called without a name", function()
    local e
    lw.run(function() e = err(net.connect, {}, 80) end)
    -- called from pcall (C): no line, and the name a loaded module gives it
    assert.are.equal("bad argument #1 to 'luaweave.net.connect' (string expected)", e)
  end)
end)
