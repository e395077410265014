-- The luaweave module: the thread-result store from Lua.
local lw = require "luaweave"

local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end
local is54 = _VERSION == "Lua 5.4"
local ephemerons = _VERSION ~= "Lua 5.1" -- LuaJIT reports 5.1 too

local function same(a, b)
  assert.are.equal(a.n, b.n)
  for i = 1, a.n do assert.are.equal(a[i], b[i]) end
end

describe("luaweave store", function()
  after_each(function() lw.uninstall() end)

  it("tracks and reports every status transition", function()
    local co = coroutine.create(function(a)
      local b = coroutine.yield(a + 1)
      return b
    end)
    assert.are.equal("untracked", lw.status(co))
    assert.are.equal(co, lw.track(co))
    assert.are.equal("pending", lw.status(co))
    same(pack(lw.result(co)), pack(nil))
    same(pack(lw.resume(co, 1)), pack(true, 2))
    assert.are.equal("yielded", lw.status(co))
    same(pack(lw.result(co)), pack(true, 2))
    same(pack(lw.resume(co, "x")), pack(true, "x"))
    assert.are.equal("returned", lw.status(co))
    same(pack(lw.take(co)), pack(true, "x"))
    assert.are.equal("untracked", lw.status(co))
  end)

  it("reports failed with the error object kept as raised", function()
    local objs = { "s", 42, { code = 1 }, true, false, print, io.stdout,
                   coroutine.create(function() end) }
    for _, obj in ipairs(objs) do
      local co = lw.track(coroutine.create(function() error(obj, 0) end))
      local r = pack(lw.resume(co))
      assert.are.equal(false, r[1])
      assert.are.equal(obj, r[2])
      assert.are.equal("failed", lw.status(co))
      local again = pack(lw.result(co))
      assert.are.equal(2, again.n)
      assert.are.equal(false, again[1])
      assert.are.equal(obj, again[2]) -- same identity
    end
    local co = lw.track(coroutine.create(function() error(nil) end))
    same(pack(lw.resume(co)), pack(false, nil))
    same(pack(lw.result(co)), pack(false, nil))
  end)

  it("gives exactly coroutine.resume's results for 0, 1, 300 and nil-holed values", function()
    local shapes = {
      {}, { 1 }, { nil }, { 1, nil, 3, nil, n = 4 }, { nil, nil, n = 2 },
    }
    local big = { n = 300 }
    for i = 1, 300 do big[i] = (i % 7 == 0) and nil or i end
    shapes[#shapes + 1] = big
    for _, shape in ipairs(shapes) do
      local n = shape.n or #shape
      local body = function() coroutine.yield(unpack(shape, 1, n)); return unpack(shape, 1, n) end
      local plain, tracked = coroutine.create(body), lw.track(coroutine.create(body))
      for _ = 1, 2 do
        local a, b = pack(coroutine.resume(plain)), pack(lw.resume(tracked))
        same(a, b)
        same(b, pack(lw.result(tracked)))
      end
    end
  end)

  it("gives coroutine.resume's errors for dead, running and normal threads and does not record them", function()
    local co = lw.track(coroutine.create(function() return 1 end))
    lw.resume(co)
    local plain = coroutine.create(function() return 1 end)
    coroutine.resume(plain)
    same(pack(lw.resume(co)), pack(coroutine.resume(plain)))
    assert.are.equal("returned", lw.status(co))
    same(pack(lw.result(co)), pack(true, 1))

    local inner
    local outer = lw.track(coroutine.create(function()
      local self = coroutine.running()
      local a = pack(lw.resume(self))
      local b = pack(coroutine.resume(self))
      inner = coroutine.create(function(o)
        return pack(lw.resume(o)), pack(coroutine.resume(o))
      end)
      local _, c, d = coroutine.resume(inner, self)
      return a, b, c, d
    end))
    local _, a, b, c, d = lw.resume(outer)
    same(a, b)
    same(c, d)
    assert.are.equal(false, a[1])
    assert.are.equal(false, c[1])
  end)

  it("reads running while a recorded resumption is under way", function()
    local seen
    local co
    co = lw.track(coroutine.create(function() seen = lw.status(co) end))
    lw.resume(co)
    assert.are.equal("running", seen)
  end)

  it("raises the documented errors", function()
    local names = { "track", "untrack", "status", "result", "take", "key", "resume" }
    local bad = { 1, "s", {}, print, true }
    for _, name in ipairs(names) do
      for _, v in ipairs(bad) do
        local ok, err = pcall(lw[name], v)
        assert.is_false(ok)
        assert.are.equal(("bad argument #1 to '%s' (thread expected, got %s)"):format(name, type(v)), err)
      end
      local ok, err = pcall(lw[name], nil)
      assert.is_false(ok)
      assert.are.equal(("bad argument #1 to '%s' (thread expected, got nil)"):format(name), err)
      ok, err = pcall(lw[name])
      assert.is_false(ok)
      assert.are.equal(("bad argument #1 to '%s' (thread expected, got no value)"):format(name), err)
    end
    local co = coroutine.create(function() end)
    local ok, err = pcall(lw.result, co)
    assert.is_false(ok)
    assert.truthy(err:find("not tracked", 1, true))
    ok, err = pcall(lw.take, co)
    assert.is_false(ok)
    assert.truthy(err:find("not tracked", 1, true))
  end)

  it("gives a stable integer key per live thread", function()
    local a, b = coroutine.create(function() end), coroutine.create(function() end)
    assert.are.equal(lw.key(a), lw.key(a))
    assert.are_not.equal(lw.key(a), lw.key(b))
    assert.are.equal("number", type(lw.key(a)))
    assert.are.equal(math.floor(lw.key(a)), lw.key(a))
  end)

  it("never keeps a tracked thread alive", function()
    local base
    -- in a function of its own, so that no dead register of this one keeps
    -- the kept threads for the heap check (5.2 marks the whole frame)
    local function churn()
      local kept = {} -- every 2000th stays referenced: those must stay tracked
      for i = 1, 20000 do
        local co = lw.track(coroutine.create(function(x) coroutine.yield(x, {}) return x end))
        lw.resume(co, i)
        if i % 2 == 0 then lw.resume(co) end
        if i % 2000 == 0 then kept[#kept + 1] = co end
      end
      local early = lw.count() >= base + #kept -- not forgotten early by itself
      collectgarbage(); collectgarbage()
      local freed = lw.count() == base + #kept -- the others are freed
      local wrong = 0
      for k, co in ipairs(kept) do
        local ok, v = lw.result(co)
        if lw.status(co) ~= "returned" or not ok or v ~= k * 2000 then wrong = wrong + 1 end
      end
      return early, freed, wrong
    end
    -- a first round grows the store's map and values table to what the
    -- rounds need (the GC empties them; they shrink later, not then): the
    -- heap is compared between rounds, not with what earlier tests left
    collectgarbage(); collectgarbage()
    base = lw.count()
    churn()
    collectgarbage(); collectgarbage()
    local mem = collectgarbage("count")
    local early, freed, wrong = churn()
    collectgarbage(); collectgarbage()
    assert.is_true(early)
    assert.is_true(freed)
    assert.are.equal(0, wrong)
    assert.are.equal(base, lw.count())
    assert.is_true(collectgarbage("count") < mem + 256)
  end)

  it("frees threads whose results refer to themselves (ephemerons), or on take", function()
    collectgarbage(); collectgarbage()
    local base = lw.count()
    local cos = {}
    for i = 1, 1000 do
      local co = lw.track(coroutine.create(function() return coroutine.running(), { coroutine.running() } end))
      lw.resume(co)
      if not ephemerons then cos[i] = co end
    end
    if not ephemerons then
      -- documented limit: take/untrack is what frees them on 5.1 and LuaJIT
      for i, co in ipairs(cos) do
        if i % 2 == 0 then lw.take(co) else lw.untrack(co) end
      end
      cos = nil
    end
    collectgarbage(); collectgarbage()
    assert.are.equal(base, lw.count())
  end)

  it("never hands a result to another thread when addresses are reused", function()
    local seen, reused, stale = {}, 0, 0
    math.randomseed(7)
    for i = 1, 200000 do
      local co = coroutine.create(function(x) return x end)
      local k = lw.key(co)
      if seen[k] then reused = reused + 1 end
      seen[k] = true
      if lw.status(co) ~= "untracked" then stale = stale + 1 end
      lw.track(co)
      lw.resume(co, i)
      local ok, v = lw.result(co)
      if not ok or v ~= i then stale = stale + 1 end
      if math.random(1000) == 1 then collectgarbage() end
    end
    assert.are.equal(0, stale)
    assert.is_true(reused > 1000, "addresses were reused " .. reused .. " times")
  end)

  describe("install", function()
    it("makes coroutine.resume record tracked threads, untracked ones behave as before", function()
      local orig = coroutine.resume
      lw.install()
      assert.are_not.equal(orig, coroutine.resume)
      local co = lw.track(coroutine.create(function() coroutine.yield(1, nil) return 2 end))
      same(pack(coroutine.resume(co)), pack(true, 1, nil))
      same(pack(lw.result(co)), pack(true, 1, nil))
      same(pack(coroutine.resume(co)), pack(true, 2))
      assert.are.equal("returned", lw.status(co))
      local u = coroutine.create(function(...) return ... end)
      same(pack(coroutine.resume(u, 1, nil)), pack(true, 1, nil))
      assert.are.equal("untracked", lw.status(u))
      same(pack(coroutine.resume(u)), pack(false, "cannot resume dead coroutine"))
      lw.uninstall()
      assert.are.equal(orig, coroutine.resume)
    end)

    it("makes coroutine.wrap record and keeps its error position", function()
      lw.install()
      local self
      local f = coroutine.wrap(function()
        self = lw.track(coroutine.running())
        coroutine.yield(5)
        error("boom")
      end)
      assert.are.equal(5, f())
      same(pack(lw.result(self)), pack(true, 5))
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.truthy(err:find("store_spec.lua:%d+: boom"))
      assert.are.equal("failed", lw.status(self))
      local _, e = lw.result(self)
      assert.truthy(e:find("boom", 1, true))
    end)

    it("is harmless twice, and uninstall restores the exact originals", function()
      local r, w, c = coroutine.resume, coroutine.wrap, coroutine.close
      lw.uninstall()
      assert.are.equal(r, coroutine.resume)
      lw.install(); lw.install()
      lw.uninstall()
      assert.is_true(rawequal(r, coroutine.resume))
      assert.is_true(rawequal(w, coroutine.wrap))
      assert.is_true(rawequal(c, coroutine.close))
    end)

    if is54 then
      it("makes coroutine.close cancel a suspended tracked thread", function()
        lw.install()
        local closed = false
        local co = lw.track(coroutine.create(load([[
          local flag = ...
          local x <close> = setmetatable({}, { __close = function() flag() end })
          coroutine.yield()
        ]])))
        coroutine.resume(co, function() closed = true end)
        assert.is_true(coroutine.close(co))
        assert.is_true(closed)
        assert.are.equal("cancelled", lw.status(co))
        same(pack(lw.result(co)), pack(false, "cancelled"))
        local f = lw.track(coroutine.create(function() error("e", 0) end))
        coroutine.resume(f)
        same(pack(coroutine.close(f)), pack(false, "e"))
        same(pack(lw.result(f)), pack(false, "e"))
      end)
    end
  end)

  it("survives a raw coroutine.resume of a tracked yielded thread", function()
    local co = lw.track(coroutine.create(function()
      local a, b = coroutine.yield(1, 2, 3)
      local c = coroutine.yield(a + b)
      return c
    end))
    same(pack(lw.resume(co)), pack(true, 1, 2, 3))
    same(pack(coroutine.resume(co, 10, 20)), pack(true, 30))
    local st = lw.status(co)
    assert.is_true(st == "pending" or st == "yielded")
    if st == "yielded" then same(pack(lw.result(co)), pack(true, 30)) end
    same(pack(lw.resume(co, "z")), pack(true, "z"))
    same(pack(lw.result(co)), pack(true, "z"))
  end)

  -- issue 13 item 5: a finalizer that raises while luaweave files the
  -- returned values (the GC runs during that allocation) must neither
  -- lose the values nor read "not enough memory": lw.resume raises the
  -- __gc error as this Lua gives it, after recording.  The finalizers
  -- raise only while `armed`, i.e. inside lw.resume.  In a child
  -- interpreter: a GC that steps at every allocation is slow on a big heap.
  it("keeps returned values when a __gc raises while they are filed", function()
    local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
      local lw = require "luaweave"
      local junk
      local armed, fired, raised, bad = false, 0, 0, {}
      local function bomb()
        local f = function() if armed then fired = fired + 1; error("gc boom", 0) end end
        if newproxy then
          local p = newproxy(true); getmetatable(p).__gc = f
        else
          setmetatable({}, { __gc = f })
        end
      end
      collectgarbage("setpause", 0)
      -- at least 20000 rounds, more until a finalizer fired (and raised,
      -- where it can) inside filing: on LuaJIT one run in six met none in
      -- 20000, the heap's layout (ASLR) deciding
      local function enough(i)
        if i < 20000 then return false end
        if _VERSION == "Lua 5.2" then return true end -- not asserted there (below)
        return fired > 0 and (raised > 0 or _VERSION == "Lua 5.4") or i >= 400000
      end
      local i = 0
      while not enough(i) do
        i = i + 1
        collectgarbage("setstepmul", 100 + (i % 10) * 100)
        -- a string of changing size shifts the collector's debt, so that the
        -- filing meets each phase of a cycle whatever the heap's layout (a
        -- module that allocated once more at load moved every hit elsewhere)
        junk = string.rep("x", 16 + (i * 7) % 200)
        local co = lw.track(coroutine.create(function() return "a", i, nil, "d" end))
        bomb(); bomb(); bomb()
        armed = true
        local ok, r1, r2, r3, r4, r5 = pcall(lw.resume, co)
        armed = false
        local failed = ok and r1 == false and tostring(r2):find("gc boom", 1, true)
        if failed then -- it ran inside co: co failed with it, as in Lua
          local _, e = lw.result(co)
          if lw.status(co) ~= "failed" or e ~= r2 then bad[#bad + 1] = "failed " .. tostring(e) end
        elseif ok then
          if not (r1 == true and r2 == "a" and r3 == i and r4 == nil and r5 == "d") then
            bad[#bad + 1] = "results " .. tostring(r2)
          end
        elseif tostring(r1):find("gc boom", 1, true) then
          raised = raised + 1
        else
          bad[#bad + 1] = tostring(r1)
        end
        local n = select("#", lw.result(co))
        local t1, t2, t3, t4, t5 = lw.result(co)
        if not failed and (lw.status(co) ~= "returned" or n ~= 5 or t1 ~= true or
           t2 ~= "a" or t3 ~= i or t4 ~= nil or t5 ~= "d") then
          bad[#bad + 1] = lw.status(co) .. " " .. tostring(t2)
        end
        lw.untrack(co)
      end
      print(("fired=%d raised=%d bad=%d %s"):format(fired, raised, #bad, bad[1] or ""))
    ]])
    f:close()
    local p = assert(io.popen(lua .. " " .. path .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    local fired, raised, bad = out:match("fired=(%d+) raised=(%d+) bad=(%d+)")
    assert.truthy(fired, out)
    assert.are.equal("0", bad, out)
    if is54 then assert.are.equal("0", raised, out) end -- 5.4 warns instead
    -- 5.2 ends its cycles in other allocations than filing's (measured)
    if _VERSION ~= "Lua 5.2" then assert.is_true(tonumber(fired) > 0, out) end
    -- and where it fires inside filing, lw.resume raises it (5.1, 5.3, LuaJIT)
    if not is54 and _VERSION ~= "Lua 5.2" then assert.is_true(tonumber(raised) > 0, out) end
  end)

  -- issue 13 item 8: the main thread is never tracked, resumed or made a
  -- task; the error names the caller's line.  Lua 5.1 (and LuaJIT) give
  -- a script no handle on the main thread: the C tests cover them.
  it("refuses the main thread with a clear error at the caller's line", function()
    local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write([[
      local lw = require "luaweave"
      local task = require "luaweave.task"
      local unpack = table.unpack or unpack
      local main = coroutine.running()
      if type(main) ~= "thread" then print("nomain") return end
      local function try(name, f, ...)
        local args = { ... }
        local ok, err = pcall(function() return f(unpack(args)) end)
        print(name, ok, err)
      end
      try("track", lw.track, main)
      try("resume", lw.resume, main)
      try("spawn", task.spawn, main)
      try("defer", task.defer, main)
      try("delay", task.delay, 1, main)
      try("cancel", task.cancel, main)
      print("status", lw.status(main), lw.count())
      lw.install() -- coroutine.resume keeps Lua's own answer
      print("coresume", coroutine.resume(main))
      print("done")
    ]])
    f:close()
    local p = assert(io.popen(lua .. " " .. path .. " 2>&1"))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    if out:find("^nomain") then return end
    for _, name in ipairs { "track", "resume", "spawn", "defer", "delay", "cancel" } do
      local line = out:match("\n?" .. name .. "\tfalse\t([^\n]*)")
      assert.truthy(line, out)
      assert.truthy(line:find(":%d+: bad argument #%d to '" .. name .. "' %(the main thread cannot be "), line)
    end
    assert.truthy(out:find("status\tuntracked\t0", 1, true), out)
    assert.truthy(out:find("coresume\tfalse\tcannot resume non%-suspended coroutine"), out)
    assert.truthy(out:find("done", 1, true), out)
  end)
end)
