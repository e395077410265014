-- task.wrap(fn, argc): a callback API made awaitable (no luv needed).
local lw = require "luaweave"
local task = require "luaweave.task"

local pack = function(...) return { n = select("#", ...), ... } end

describe("task.wrap", function()
  it("returns what the callback receives, counts and nils kept", function()
    local got
    lw.run(function()
      local later = task.wrap(function(a, b, cb) task.delay(0, cb, nil, a + b, nil) end, 3)
      got = pack(later(2, 3))
    end)
    assert.are.equal(3, got.n)
    assert.is_nil(got[1]); assert.are.equal(5, got[2]); assert.is_nil(got[3])
  end)

  it("puts the callback at position argc: extra arguments dropped, missing ones nil", function()
    local seen
    lw.run(function()
      local f = task.wrap(function(...) seen = pack(...); (select(3, ...))("ok") end, 3)
      assert.are.equal("ok", f("a", nil, "dropped", "too"))
    end)
    assert.are.equal(3, seen.n)
    assert.are.equal("a", seen[1]); assert.is_nil(seen[2])
    assert.are.equal("function", type(seen[3]))
  end)

  it("takes up to 250 arguments: the stack grows to hold them, missing ones nil", function()
    local unpack = table.unpack or unpack
    for _, argc in ipairs({ 33, 40, 250 }) do
      local got, all = nil, nil
      local f = task.wrap(function(...)
        local cb = select(argc, ...)
        cb(select("#", ...), (select(argc - 1, ...)), ...)
      end, argc)
      lw.run(function() got = pack(f("first")) end)
      assert.are.equal(argc + 2, got.n)
      assert.are.equal(argc, got[1]); assert.is_nil(got[2]); assert.are.equal("first", got[3])
      lw.run(function()
        local args = {}
        for i = 1, argc - 1 do args[i] = i end
        all = pack(f(unpack(args)))
      end)
      assert.are.equal(argc - 1, all[2])
    end
  end)

  it("does not suspend when the callback runs before fn returns", function()
    local log = {}
    lw.run(function()
      task.defer(function() log[#log + 1] = "deferred" end)
      local f = task.wrap(function(cb) cb("now", nil) end, 1)
      local r = pack(f())
      log[#log + 1] = r[1] .. " " .. r.n
    end)
    assert.are.equal("now 2, deferred", table.concat(log, ", "))
  end)

  it("suspends until the callback runs, while other tasks run", function()
    local log, cb = {}, nil
    lw.run(function()
      local f = task.wrap(function(k) cb = k end, 1)
      local t = task.spawn(function() local v = f(); log[#log + 1] = "got " .. v end)
      log[#log + 1] = "spawned"
      task.wait(); task.wait()
      log[#log + 1] = "calling"
      cb("v")
      task.await(t)
    end)
    assert.are.equal("spawned, calling, got v", table.concat(log, ", "))
  end)

  it("a second call of the callback raises and never resumes the task twice", function()
    local resumed, err2, err3 = 0, nil, nil
    lw.run(function()
      local f = task.wrap(function(cb)
        task.delay(0, function()
          cb(1)
          local _; _, err2 = pcall(cb, 2)
        end)
      end, 1)
      local t = task.spawn(function() f(); resumed = resumed + 1 end)
      local g = task.wrap(function(cb) cb(1); local _; _, err3 = pcall(cb, 2) end, 1)
      g()
      task.await(t)
      task.wait(); task.wait()
    end)
    assert.are.equal(1, resumed)
    assert.matches("task.wrap: callback called more than once", err2, 1, true)
    assert.matches("task.wrap: callback called more than once", err3, 1, true)
  end)

  it("a callback that is never called and is collected fails its task", function()
    local ok, err
    lw.run(function()
      local never = task.wrap(function(cb) end, 1)
      ok, err = task.await(task.spawn(never)) -- (5.1 cannot yield in a pcall)
    end)
    assert.is_false(ok)
    assert.matches("collected without being called", err, 1, true)
  end)

  it("a callback called after its task was cancelled is ignored", function()
    local cb, after, st
    lw.run(function()
      local f = task.wrap(function(k) cb = k end, 1)
      local t = task.spawn(function() f(); after = "resumed" end)
      task.cancel(t)
      st = lw.status(t)
      assert.has_no.errors(function() cb("late") end)
      task.wait(); task.wait()
      assert.has_error(function() cb("again") end, nil)
    end)
    assert.are.equal("cancelled", st)
    assert.is_nil(after)
  end)

  it("an error raised by fn reaches the caller and leaves nothing waiting", function()
    local ok, err
    lw.run(function()
      local f = task.wrap(function(cb) error("fn broke", 0) end, 1)
      ok, err = pcall(f)
    end)
    assert.is_false(ok)
    assert.are.equal("fn broke", err)
  end)

  it("many tasks each get their own callback's values", function()
    local sum, n = 0, 200
    lw.run(function()
      local echo = task.wrap(function(x, cb) task.delay(0, cb, x) end, 2)
      local ts = {}
      for i = 1, n do ts[i] = task.spawn(function() local v = echo(i); sum = sum + v end) end
      for i = 1, n do task.await(ts[i]) end
    end)
    assert.are.equal(n * (n + 1) / 2, sum)
  end)

  it("raises outside a task", function()
    local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("local task = require 'luaweave.task'\n",
            "print(pcall(task.wrap(function(cb) cb(1) end, 1)))\n")
    f:close()
    local p = assert(io.popen(lua .. " " .. path .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.matches("false\t[^\n]*:2: task.wrap: wrapped function called outside a task", out)
    assert.is_nil(out:find("luaweave.async", 1, true))
  end)

  it("takes a callable table as fn", function()
    local got
    local callable = setmetatable({}, { __call = function(self, x, cb) cb(self, x) end })
    lw.run(function() got = pack(task.wrap(callable, 2)("x")) end)
    assert.are.same({ n = 2, callable, "x" }, got)
  end)

  it("checks its arguments", function()
    assert.has_error(function() task.wrap({}, 1) end)
    assert.has_error(function() task.wrap(setmetatable({}, { __index = {} }), 1) end)
    assert.has_error(function() task.wrap(1, 1) end)
    assert.has_error(function() task.wrap(print, 0) end)
    assert.has_error(function() task.wrap(print, 1.5) end)
    assert.has_error(function() task.wrap(print) end)
    assert.are.equal("function", type(task.wrap(print, 250)))
  end)
end)
