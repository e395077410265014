-- luaweave.fs: files under a fresh temporary directory only.
local lw = require "luaweave"
local task = require "luaweave.task"
local fs = require "luaweave.fs"

-- a fresh directory for one test, and its removal
local function tmpdir()
  local dir
  lw.run(function() dir = assert(fs.mkdtemp(os.tmpname():gsub("[^/]*$", "") .. "lwfsXXXXXX")) end)
  return dir
end
local function rmtree(dir) os.execute("rm -rf '" .. dir .. "'") end

describe("luaweave.fs", function()
  it("is lw.fs and more: readfile and writefile as before", function()
    local dir, got = tmpdir()
    lw.run(function()
      assert(fs.writefile(dir .. "/a", "abc"))
      got = lw.fs.readfile(dir .. "/a")
    end)
    rmtree(dir)
    assert.are.equal("abc", got)
  end)

  it("opens, writes, reads in order, appends, closes", function()
    local dir, r = tmpdir(), {}
    lw.run(function()
      local f = assert(fs.open(dir .. "/f", "w"))
      r[1] = f:write("hello ", 42, "\n")
      r[2] = f:close()
      f = assert(fs.open(dir .. "/f", "a"))
      f:write("more")
      f:close()
      f = assert(fs.open(dir .. "/f"))
      r[3] = f:read(5)
      r[4] = f:read()
      r[5] = f:read()
      f:close()
      r[6] = select(2, pcall(function() f:read() end))
    end)
    rmtree(dir)
    assert.is_true(r[1])
    assert.is_true(r[2])
    assert.are.equal("hello", r[3])
    assert.are.equal(" 42\nmore", r[4])
    assert.is_nil(r[5])
    assert.matches("io_fs_spec.lua:%d+: attempt to use a closed file", r[6])
  end)

  it("streams a big file in chunks", function()
    local dir, sizes = tmpdir(), {}
    lw.run(function()
      assert(fs.writefile(dir .. "/big", string.rep("x", 200000)))
      local f = assert(fs.open(dir .. "/big"))
      if _VERSION == "Lua 5.1" and not jit then -- no yield from a for iterator
        local chunk = f:read(65536)
        while chunk do sizes[#sizes + 1] = #chunk; chunk = f:read(65536) end
      else
        for chunk in f:chunks(65536) do sizes[#sizes + 1] = #chunk end
      end
      f:close()
    end)
    rmtree(dir)
    assert.are.same({ 65536, 65536, 65536, 3392 }, sizes)
  end)

  it("stat, readdir, mkdir, rename, remove", function()
    local dir, r = tmpdir(), {}
    lw.run(function()
      assert(fs.writefile(dir .. "/b", "12345"))
      assert(fs.mkdir(dir .. "/sub"))
      r.st = fs.stat(dir .. "/b")
      r.dst = fs.stat(dir .. "/sub")
      r.again = { fs.mkdir(dir .. "/sub") }
      r.ls1 = fs.readdir(dir)
      assert(fs.rename(dir .. "/b", dir .. "/c"))
      r.ls2 = fs.readdir(dir)
      r.rm = { fs.remove(dir .. "/sub"), fs.remove(dir .. "/c") }
      r.ls3 = fs.readdir(dir)
      r.gone = { fs.stat(dir .. "/c") }
    end)
    rmtree(dir)
    assert.are.equal("file", r.st.type)
    assert.are.equal(5, r.st.size)
    assert.is_number(r.st.mtime)
    assert.are.equal("directory", r.dst.type)
    assert.is_nil(r.again[1])
    assert.are.equal("EEXIST", r.again[3])
    assert.are.same({ "b", "sub" }, r.ls1)
    assert.are.same({ "c", "sub" }, r.ls2)
    assert.are.same({ true, true }, r.rm)
    assert.are.same({}, r.ls3)
    assert.is_nil(r.gone[1])
    assert.matches("/c: ", r.gone[2])
    assert.are.equal("ENOENT", r.gone[3])
  end)

  it("every call's failure is nil, \"path: message\", code", function()
    local dir, r = tmpdir(), {}
    local none = dir .. "/none/x"
    lw.run(function()
      r.readfile = { fs.readfile(none) }
      r.writefile = { fs.writefile(none, "data") }
      r.lwreadfile = { lw.fs.readfile(none) }
      r.open = { fs.open(none) }
      r.stat = { fs.stat(none) }
      r.readdir = { fs.readdir(none) }
      r.mkdir = { fs.mkdir(none) }
      r.remove = { fs.remove(none) }
      r.rename = { fs.rename(none, dir .. "/y") }
      r.mkdtemp = { fs.mkdtemp(none .. "XXXXXX") }
    end)
    rmtree(dir)
    for name, v in pairs(r) do
      assert.is_nil(v[1], name)
      assert.matches("^" .. none:gsub("%p", "%%%0") .. ".*: ", v[2], 1, name)
      assert.are.equal("ENOENT", v[3], name)
    end
  end)

  it("suspends only the calling task", function()
    local dir, order = tmpdir(), {}
    lw.run(function()
      local t = task.spawn(function()
        order[#order + 1] = "stat"
        local st = fs.stat(dir)
        order[#order + 1] = st.type
      end)
      order[#order + 1] = "main"
      task.await(t)
    end)
    rmtree(dir)
    assert.are.same({ "stat", "main", "directory" }, order)
  end)

  it("cancel of a task in a read leaves the file usable", function()
    local dir, got = tmpdir()
    lw.run(function()
      assert(fs.writefile(dir .. "/f", "data"))
      local f = assert(fs.open(dir .. "/f"))
      local t = task.spawn(function() f:read(); error("never") end)
      task.cancel(t)
      -- the request may still run: EBUSY until it ended (a hang guard)
      for _ = 1, 1000 do
        local s, _, code = f:read()
        if code ~= "EBUSY" then got = s; break end
        task.wait(0.01)
      end
      f:close()
    end)
    rmtree(dir)
    assert.is_true(got == "data" or got == nil) -- nil: the cancelled read had moved on
  end)

  it("raises bad argument at the caller's line", function()
    local m = {}
    lw.run(function()
      m[1] = select(2, pcall(function() fs.open("x", "q") end))
      m[2] = select(2, pcall(function() fs.stat() end))
      m[3] = select(2, pcall(function() fs.rename("a", {}) end))
    end)
    assert.matches("io_fs_spec.lua:%d+: bad argument #2 to 'open' %(invalid mode%)", m[1])
    assert.matches("io_fs_spec.lua:%d+: bad argument #1 to 'stat' %(string expected%)", m[2])
    assert.matches("io_fs_spec.lua:%d+: bad argument #2 to 'rename' %(string expected%)", m[3])
  end)
end)
