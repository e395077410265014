-- luaweave.process: children of this process only (sh, cat, sleep); every
-- test ends by itself.
local lw = require "luaweave"
local task = require "luaweave.task"
local process = require "luaweave.process"

local function tmpname() local p = os.tmpname(); os.remove(p); return p end

local helper = require "spec.io_helper"
local function child(code)
  return helper.child("local lw = require 'luaweave'\nlocal task = require 'luaweave.task'\n" ..
  "local process = require 'luaweave.process'\n", code)
end

local alive = helper.alive

describe("luaweave.process", function()
  it("exec returns the exit code, stdout and stderr", function()
    local r
    lw.run(function() r = { process.exec("sh", { "-c", "echo out; echo err >&2; exit 3" }) } end)
    assert.are.same({ 3, "out\n", "err\n" }, r)
  end)

  it("exec collects more than a pipe holds, from both pipes", function()
    local code, out, err
    lw.run(function()
      code, out, err = process.exec("sh", { "-c", "head -c 300000 /dev/zero; head -c 200000 /dev/zero >&2" })
    end)
    assert.are.equal(0, code)
    assert.are.equal(300000, #out)
    assert.are.equal(200000, #err)
  end)

  it("exec and spawn fail as io does", function()
    local r1, r2
    lw.run(function()
      r1 = { process.exec("luaweave-no-such-command", {}) }
      r2 = { process.spawn("luaweave-no-such-command") }
    end)
    assert.is_nil(r1[1])
    assert.are.equal("ENOENT", r1[3])
    assert.is_nil(r2[1])
    assert.are.equal("ENOENT", r2[3])
  end)

  it("spawns in cwd, with env", function()
    local dir, env
    lw.run(function()
      dir = select(2, process.exec("pwd", {}, { cwd = "/" }))
      env = select(2, process.exec("sh", { "-c", "echo $LW_A-$LW_B" }, { env = { LW_A = "a", LW_B = 2 } }))
    end)
    assert.are.equal("/\n", dir)
    assert.are.equal("a-2\n", env)
  end)

  it("pipes stdin and stdout as streams, and wait returns the code", function()
    local out, code, sig
    lw.run(function()
      local p = assert(process.spawn("cat", {}, { stdin = "pipe", stdout = "pipe" }))
      assert.is_nil(p.stderr)
      assert.is_number(p.pid)
      p.stdin:write("one\n", "two\n")
      p.stdin:shutdown()
      out = p.stdout:readall()
      code, sig = p:wait()
    end)
    assert.are.equal("one\ntwo\n", out)
    assert.are.equal(0, code)
    assert.is_nil(sig)
  end)

  it("a read from a child suspends only its task", function()
    local order = {}
    lw.run(function()
      local p = assert(process.spawn("sh", { "-c", "read x; echo got $x" },
        { stdin = "pipe", stdout = "pipe" }))
      local reader = task.spawn(function()
        order[#order + 1] = "reading"
        local line = p.stdout:readline()
        order[#order + 1] = line
      end)
      order[#order + 1] = "main"
      p.stdin:write("hi\n")
      task.await(reader)
      p:wait()
    end)
    assert.are.same({ "reading", "main", "got hi" }, order)
  end)

  it("kill sends a signal, and wait names it", function()
    local ok, code, sig, again
    lw.run(function()
      local p = assert(process.spawn("sleep", { "30" }))
      ok = p:kill("TERM")
      code, sig = p:wait()
      again = select(3, p:kill())
    end)
    assert.is_true(ok)
    assert.are.equal("TERM", sig)
    assert.are.equal("ESRCH", again)
  end)

  it("wait answers every waiter, and again after the end", function()
    local r = {}
    lw.run(function()
      local p = assert(process.spawn("sh", { "-c", "read x; exit 7" }, { stdin = "pipe" }))
      local w1 = task.spawn(function() return p:wait() end)
      local w2 = task.spawn(function() return p:wait() end)
      local w3 = task.spawn(function() return p:wait() end)
      task.cancel(w3) -- a cancelled waiter does not disturb the others
      p.stdin:write("go\n")
      r[1] = { task.await(w1) }
      r[2] = { task.await(w2) }
      r[3] = { p:wait() }
      r[4] = { p:wait() }
      local q = assert(process.spawn("sleep", { "30" }))
      q:kill("KILL")
      r[5] = { q:wait() }
      r[6] = { q:wait() }
    end)
    assert.are.same({ true, 7, nil }, r[1])
    assert.are.same({ true, 7, nil }, r[2])
    assert.are.same({ 7, nil }, r[3])
    assert.are.same({ 7, nil }, r[4])
    assert.are.same({ 0, "KILL" }, r[5])
    assert.are.same({ 0, "KILL" }, r[6])
  end)

  it("kill(0) probes: true while the child lives, ESRCH after", function()
    local r = {}
    lw.run(function()
      local p = assert(process.spawn("sleep", { "30" }))
      r[1] = { p:kill(0) }
      p:kill("KILL")
      p:wait()
      r[2] = { p:kill(0) }
    end)
    assert.are.same({ true }, r[1])
    assert.is_nil(r[2][1])
    assert.are.equal("ESRCH", r[2][3])
  end)

  it("cancel of a waiting task kills nothing and keeps no run alive", function()
    local pid
    lw.run(function()
      local p = assert(process.spawn("sleep", { "30" }))
      pid = p.pid
      local w = task.spawn(function() p:wait() end)
      task.cancel(w)
      -- the child runs on; a new waiter may wait
      assert.is_true(alive(pid))
      local w2 = task.spawn(function() return p:wait() end)
      p:kill("KILL")
      assert.are.same({ true, 0, "KILL" }, { task.await(w2) })
    end)
    local out, status = child([[
      local p = assert(process.spawn("sleep", { "30" }))
      print("pid=" .. p.pid)
      lw.run(function()
        local w = task.spawn(function() p:wait() end)
        task.cancel(w)
      end)
      print("run returned", p:kill("KILL"))
    ]])
    assert.are.equal(0, status, out)
    assert.matches("run returned\ttrue", out)
  end)

  it("cancel of a task in exec kills its child and reaps it", function()
    local mark = tmpname()
    local pid, gone
    lw.run(function()
      local t = task.spawn(function()
        process.exec("sh", { "-c", "echo $$ > " .. mark .. "; exec sleep 300" })
        error("never")
      end)
      while not pid do
        task.wait(0.01)
        local f = io.open(mark)
        if f then pid = tonumber(f:read("*a")); f:close() end
      end
      task.cancel(t)
      -- killed and reaped (kill -0 still sees a zombie); 20 s: a hang guard
      for _ = 1, 2000 do
        gone = not alive(pid)
        if gone then break end
        task.wait(0.01)
      end
      if not gone then os.execute("kill -9 " .. pid) end
    end)
    os.remove(mark)
    assert.is_true(gone)
  end)

  it("raises bad argument at the caller's line", function()
    local msgs = {}
    lw.run(function()
      msgs[1] = select(2, pcall(function() process.spawn("x", 5) end))
      msgs[2] = select(2, pcall(function() process.exec("x", {}, { stdout = "file" }) end))
      msgs[3] = select(2, pcall(function() process.exec("x", {}, { stdout = "pipe" }) end))
      local p = assert(process.spawn("true"))
      msgs[4] = select(2, pcall(function() p:kill("NOPE") end))
      p:wait()
    end)
    assert.matches("io_process_spec.lua:%d+: bad argument #2 to 'spawn' %(table expected%)", msgs[1])
    assert.matches("io_process_spec.lua:%d+: bad argument #3 to 'exec' %(stdout: \"inherit\", \"ignore\" or \"pipe\" expected%)", msgs[2])
    assert.matches("io_process_spec.lua:%d+: bad argument #3 to 'exec'", msgs[3])
    assert.matches("io_process_spec.lua:%d+: bad argument #1 to 'kill' %(signal name or number expected%)", msgs[4])
  end)

  it("a process collected or open at lua_close closes its handles", function()
    local out, status = child([[
      lw.run(function()
        local p = process.spawn("cat", {}, { stdin = "pipe", stdout = "pipe" })
        task.spawn(function() p.stdout:read() end)
        local q = process.spawn("sleep", { "30" })
        task.spawn(function() q:wait() end)
        task.wait(0.01)
        q:kill("KILL")
        p = nil
        collectgarbage(); collectgarbage()
        task.exit()
      end)
      print("done")
    ]])
    assert.are.equal(0, status, out)
    assert.matches("done", out)
  end)
end)
