-- luaweave.net's UDP sockets and IPv6 TCP: 127.0.0.1 and ::1 only.
local lw = require "luaweave"
local task = require "luaweave.task"
local net = require "luaweave.net"

describe("luaweave.net UDP", function()
  it("sends and receives datagrams, with the sender's address", function()
    local r = {}
    lw.run(function()
      local a, b = net.udp(), net.udp()
      assert(a:bind("127.0.0.1", 0))
      assert(b:bind("127.0.0.1", 0))
      local pa, pb = a:port(), b:port()
      local t = task.spawn(function() return a:recv() end)
      assert(b:send("ping", "127.0.0.1", pa))
      r.ping = { select(2, task.await(t)) }
      assert(a:send("", "127.0.0.1", pb))
      r.empty = { b:recv() }
      r.pa, r.pb = pa, pb
      a:close()
      b:close()
    end)
    assert.are.same({ "ping", "127.0.0.1", r.pb }, r.ping)
    assert.are.same({ "", "127.0.0.1", r.pa }, r.empty)
  end)

  it("keeps datagrams that come while no task receives, in order", function()
    local got = {}
    lw.run(function()
      local a, b = net.udp(), net.udp()
      assert(a:bind("127.0.0.1", 0))
      for i = 1, 3 do assert(b:send("d" .. i, "127.0.0.1", a:port())) end
      for i = 1, 3 do got[i] = a:recv() end
      a:close()
      b:close()
    end)
    assert.are.same({ "d1", "d2", "d3" }, got)
  end)

  it("works over IPv6 (::1)", function()
    local got, host
    lw.run(function()
      local a, b = net.udp(), net.udp()
      assert(a:bind("::1", 0))
      assert(b:bind("::1", 0))
      assert(b:send("six", "::1", a:port()))
      got, host = a:recv()
      a:close()
      b:close()
    end)
    assert.are.equal("six", got)
    assert.are.equal("::1", host)
  end)

  it("cancel of a task in recv closes the socket; a receive is one task's", function()
    local r = {}
    lw.run(function()
      local a = net.udp()
      assert(a:bind("127.0.0.1", 0))
      local t = task.spawn(function() a:recv(); error("never") end)
      r.busy = select(3, a:recv())
      task.cancel(t)
      r.closed = select(2, pcall(function() a:recv() end))
      r.str = tostring(a)
    end)
    assert.are.equal("EBUSY", r.busy)
    assert.matches("io_udp_spec.lua:%d+: attempt to use a closed socket", r.closed)
    assert.are.equal("udp socket (closed)", r.str)
  end)

  it("sends to a host name, looked up first; a close during the lookup answers ECANCELED", function()
    local r = {}
    lw.run(function()
      local a, b = net.udp(), net.udp()
      assert(a:bind("127.0.0.1", 0))
      r.sent = { b:send("by name", "localhost", a:port()) }
      r.got = { a:recv() }
      local c = net.udp()
      local t = task.spawn(function() return c:send("y", "localhost", a:port()) end)
      c:close() -- while the lookup runs
      r.closed = { select(2, task.await(t)) }
      a:close()
      b:close()
    end)
    assert.are.same({ true }, r.sent)
    assert.are.same({ "by name", "127.0.0.1" }, { r.got[1], r.got[2] })
    assert.are.same({ nil, "operation canceled", "ECANCELED" }, r.closed)
  end)

  it("raises bad argument at the caller's line", function()
    local m = {}
    lw.run(function()
      local a = net.udp()
      m[1] = select(2, pcall(function() a:send({}, "127.0.0.1", 1) end))
      m[2] = select(2, pcall(function() a:send("x", {}, 1) end))
      m[3] = select(2, pcall(function() a:bind("127.0.0.1", 70000) end))
      a:close()
    end)
    assert.matches("io_udp_spec.lua:%d+: bad argument #1 to 'send' %(string expected%)", m[1])
    assert.matches("io_udp_spec.lua:%d+: bad argument #2 to 'send' %(string expected%)", m[2])
    assert.matches("io_udp_spec.lua:%d+: bad argument #2 to 'bind' %(port out of range%)", m[3])
  end)
end)

describe("luaweave.net TCP over IPv6", function()
  it("listens on and connects to ::1", function()
    local line
    lw.run(function()
      local srv = assert(net.listen("::1", 0, function(s)
        s:write(s:readline(), "!\n")
        s:close()
      end))
      local c = assert(net.connect("::1", srv:port()))
      c:write("v6\n")
      line = c:readline()
      c:close()
      srv:close()
    end)
    assert.are.equal("v6!", line)
  end)
end)
