-- One loop with luv (lw_luv.c): each case runs in a child interpreter
-- (the one running this spec), so that luv stays out of the other specs'
-- state.  Debian's luv serves every version here, LuaJIT through 5.1's.
local function child(code)
  local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen("timeout 60 " .. lua .. " " .. path .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

-- a task that waits, awaits a wrapped fs_stat and a wrapped luv timer,
-- while a bare luv timer fires in between: the log says in what order
local body = [[
local log = {}
local function say(s) log[#log + 1] = s end
local stat = task.wrap(uv.fs_stat, 2)
local sleep = task.wrap(function(ms, cb)
  local t = uv.new_timer()
  t:start(ms, 0, function() t:close(); cb("slept") end)
end, 2)
local function job()
  say("start")
  task.wait(0.05)
  say("waited")
  local err, st = stat("/")
  say("stat " .. tostring(err) .. " " .. st.type)
  say(sleep(1))
end
local bare = uv.new_timer()
bare:start(1, 0, function() bare:close(); say("luv timer") end)
]]

local expected = "start, luv timer, waited, stat nil directory, slept"

describe("luv and luaweave share one loop", function()
  it("luv first, uv.run() drives the tasks", function()
    local out, rc = child("local uv = require 'luv'\nlocal task = require 'luaweave.task'\n"
      .. body .. "task.spawn(job)\nuv.run()\nprint(table.concat(log, ', '))\n")
    assert.are.equal(expected .. "\nexit=0\n", out)
    assert.are.equal(0, rc)
  end)

  it("luaweave first, then require 'luv', uv.run() drives the tasks", function()
    local out = child("local task = require 'luaweave.task'\nlocal uv = require 'luv'\n"
      .. body .. "task.spawn(job)\nuv.run()\nprint(table.concat(log, ', '))\n")
    assert.are.equal(expected .. "\nexit=0\n", out)
  end)

  it("lw.run drives luv: luv callbacks run while tasks wait", function()
    local out = child("local lw = require 'luaweave'\nlocal uv = require 'luv'\n"
      .. "local task = require 'luaweave.task'\n"
      .. body .. "lw.run(job)\nprint(table.concat(log, ', '))\n")
    assert.are.equal(expected .. "\nexit=0\n", out)
  end)

  it("lw.run finds luv loaded behind luaweave's back (not through require)", function()
    local out = child([[
local lw = require 'luaweave'
local task = require 'luaweave.task'
local path
for t in package.cpath:gmatch("[^;]+") do
  local p = t:gsub("%?", "luv")
  local f = io.open(p)
  if f then f:close(); path = p; break end
end
local uv = assert(package.loadlib(path, "luaopen_luv"))()
]] .. body .. "lw.run(job)\nprint(table.concat(log, ', '))\n")
    assert.are.equal(expected .. "\nexit=0\n", out)
  end)

  it("lw.run before luv is loaded moves over to luv's loop", function()
    local out = child("local lw = require 'luaweave'\nlocal task = require 'luaweave.task'\n"
      .. "local uv\nlw.run(function()\n  task.wait()\n  uv = require 'luv'\n"
      .. body:gsub("\n", "\n  ") .. "job()\n  print(table.concat(log, ', '))\nend)\n")
    assert.are.equal(expected .. "\nexit=0\n", out)
  end)

  it("an error in a luv callback run by lw.run is reported like a task error", function()
    local out, rc = child([[
local lw = require 'luaweave'
local uv = require 'luv'
local task = require 'luaweave.task'
lw.run(function()
  local t = uv.new_timer()
  t:start(1, 0, function() t:close(); error("boom in luv") end)
  task.wait(0.05)
  print("task went on")
end)
print("host alive")
]])
    assert.matches("luaweave: [^\n]*boom in luv\nstack traceback:", out)
    assert.matches("task went on\n", out, 1, true)
    assert.matches("host alive\n", out, 1, true)
    assert.are.equal(0, rc)
  end)

  it("task.onerror gets errors of luv callbacks under lw.run: (nil, the error object, its report)", function()
    local out, rc = child([[
local lw = require 'luaweave'
local uv = require 'luv'
local task = require 'luaweave.task'
local E = {code = 42}
task.onerror(function(co, err, report)
  print(co, err == E and "the object" or tostring(err), (report:match("^[^\n]*")),
        report:find("stack traceback:", 1, true) ~= nil)
end)
lw.run(function()
  local t = uv.new_timer()
  t:start(1, 0, function() t:close(); error(E) end)
  task.wait(0.05)
end)
task.onerror(function() error("handler broke") end)
lw.run(function()
  local t = uv.new_timer()
  t:start(1, 0, function() t:close(); error("second") end)
  task.wait(0.05)
end)
]])
    assert.matches("nil\tthe object\t%(error object is a table value%)\ttrue\n", out)
    -- a handler that raises: the callback's error, then the handler's
    assert.matches("luaweave: [^\n]*second\nstack traceback:.*luaweave: task.onerror: [^\n]*handler broke", out)
    assert.are.equal(0, rc)
  end)

  it("luaweave first and no luv installed: require 'luv' fails with Lua's own message layout", function()
    local build = os.getenv("LUAWEAVE_BUILD") or "build"
    local out = child("package.cpath = '" .. build .. "/?.so'\n"
      .. "package.path = '/nonexistent/?.lua'\n"
      .. "require 'luaweave.task'\nprint(select(2, pcall(require, 'luv')))\n")
    assert.matches("module 'luv' not found:\n\tno field package.preload%['luv'%]\n"
      .. "\tno file '/nonexistent/luv.lua'\n\tno file '[^\n]*/luv.so'", out)
  end)

  it("uv.walk while luaweave shares the loop raises at the caller's line instead of aborting (luv asserts on foreign handles)", function()
    for _, order in ipairs { "local task = require 'luaweave.task'\nlocal uv = require 'luv'\n",
                             "local uv = require 'luv'\nlocal task = require 'luaweave.task'\n" } do
      local out, rc = child(order .. "task.spawn(function() task.wait(0.001) end)\n"
        .. "print(pcall(uv.walk, function() end))\n")
      assert.matches("^false\t[^\n]*:4: uv.walk: not available while luaweave shares luv's loop", out)
      assert.are.equal(0, rc)
    end
  end)

  it("the script's own uv.run('once') loop finishes a task in task.wait (a due timer keeps the loop alive for the step)", function()
    local out, rc = child([[
local uv = require 'luv'
local task = require 'luaweave.task'
local done = false
task.spawn(function() task.wait(0.005); done = true end)
local turns = 0
while uv.run("once") and turns < 10000 do turns = turns + 1 end
print("done", done)
]])
    assert.are.equal("done\ttrue\nexit=0\n", out)
    assert.are.equal(0, rc)
  end)

  it("task.exit under the script's own uv.run raises at its line (no run to end) and the other tasks go on", function()
    local out, rc = child([[
local uv = require 'luv'
local task = require 'luaweave.task'
task.spawn(function() task.wait(0.001); print(pcall(task.exit, 3)) end)
task.spawn(function() for i = 1, 3 do task.wait(0.002) end print("other done") end)
uv.run()
print("exitcode", task.exitcode())
]])
    assert.matches("^false\t[^\n]*task.exit: no run to end: the tasks run on luv's loop", out)
    assert.matches("\nother done\nexitcode\tnil\nexit=0\n$", out)
    assert.are.equal(0, rc)
  end)

  -- the CLI's main chunk is a task, suspended while the loop runs
  local function cli(code)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(code)
    f:close()
    local p = assert(io.popen((os.getenv("LUAWEAVE_BUILD") or "build")
      .. "/luaweave " .. path .. " 2>&1; echo \"exit=$?\""))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    return out
  end

  it("the CLI: an error in a luv callback is a task error (reported, exit 1)", function()
    local out = cli("local uv = require 'luv'\nlocal t = uv.new_timer()\n"
      .. "t:start(1, 0, function() t:close(); error('boom in luv') end)\n"
      .. "task.wait(0.05)\nprint('main went on')\n")
    assert.matches("luaweave: [^\n]*boom in luv\nstack traceback:", out)
    assert.matches("main went on\n", out, 1, true)
    assert.matches("exit=1\n$", out)
  end)

  it("the CLI: luv never calls back on the suspended main chunk's thread", function()
    local out = cli("local main = coroutine.running()\nlocal uv = require 'luv'\n"
      .. "local t, same = uv.new_timer(), nil\n"
      .. "t:start(1, 0, function() t:close(); same = coroutine.running() == main end)\n"
      .. "task.wait(0.05)\nprint('on the main chunk thread: ' .. tostring(same))\n")
    assert.are.equal("on the main chunk thread: false\nexit=0\n", out)
  end)

  -- luv calls back on the thread that required it; a coroutine (a task:
  -- in the CLI every main chunk is one) may be collected while luv's
  -- handles live on, and luv called back on freed memory at exit (a
  -- crash in a new-user trial): luaweave gives luv a thread of its own
  it("luv required from a coroutine calls back on luaweave's thread, not on that coroutine", function()
    local out, rc = child("local task = require 'luaweave.task'\n"
      .. "local co = coroutine.create(function() return require 'luv' end)\n"
      .. "local _, uv = assert(coroutine.resume(co))\n"
      .. "local t, on = uv.new_timer(), nil\n"
      .. "t:start(0, 0, function() on = coroutine.running(); t:close() end)\n"
      .. "uv.run()\nprint(on ~= nil and on ~= co)\n")
    assert.are.equal("true\nexit=0\n", out)
    assert.are.equal(0, rc)
  end)

  it("the CLI: a luv handle left running when the main chunk ends: exit 0, no callback on its thread", function()
    local out = cli("local uv = require 'luv'\n"
      .. "local t = uv.new_timer()\n"
      .. "t:start(1, 1, function() local x = {} for i = 1, 2000 do x[i] = {i} end end)\n"
      .. "task.wait(0.02)\ncollectgarbage()\nprint('ends')\n")
    assert.are.equal("ends\nexit=0\n", out)
  end)

  -- a luv-style script's uv.run() inside a task while lw.run or the CLI
  -- runs the loop: the task waits until the loop has nothing else to do
  local inner_run = [[
local bg = task.spawn(function() for i = 1, 3 do task.wait(0.001); print("bg " .. i) end end)
local e, st = stat("/"); print("stat: " .. st.type)
local t = uv.new_timer(); t:start(5, 0, function() t:close(); print("timer") end)
print("uv.run -> " .. tostring(uv.run()), lw.status(bg))
]]
  local function lines_then(out, last)
    local got = {}
    for l in out:gmatch("[^\n]+") do got[#got + 1] = l end
    assert.are.equal(last, table.concat(got, "\n", #got - 1))
    local rest = {}
    for i = 1, #got - 2 do rest[#rest + 1] = got[i] end
    table.sort(rest)
    assert.are.equal("bg 1, bg 2, bg 3, stat: directory, timer", table.concat(rest, ", "))
  end

  it("the CLI: uv.run() in the main chunk runs the loop, the tasks with it", function()
    local out = cli("local uv = require 'luv'\nlocal lw = require 'luaweave'\n"
      .. "local stat = task.wrap(uv.fs_stat, 2)\n" .. inner_run)
    lines_then(out, "uv.run -> false\treturned\nexit=0")
  end)

  it("uv.run() in a task under lw.run waits for the loop and the other tasks", function()
    local out = child("local uv = require 'luv'\nlocal lw = require 'luaweave'\n"
      .. "local task = require 'luaweave.task'\nlocal stat = task.wrap(uv.fs_stat, 2)\n"
      .. "lw.run(function()\n" .. inner_run .. "end)\n")
    lines_then(out, "uv.run -> false\treturned\nexit=0")
  end)

  it("uv.run('once') and ('nowait') in a task under lw.run let one turn pass", function()
    local out = child([[
local uv = require 'luv'
local lw = require 'luaweave'
local task = require 'luaweave.task'
lw.run(function()
  task.wait() -- (before its first suspension, uv.run is luv's own: see neovim.md)
  local fired = false
  local t = uv.new_timer()
  t:start(0, 0, function() t:close(); fired = true end)
  while not fired do assert(type(uv.run("nowait")) == "boolean") end
  t = uv.new_timer()
  fired = false
  t:start(1, 0, function() t:close(); fired = true end)
  local first = uv.run("once")
  print("once", type(first), fired, uv.run("once"), uv.run("nowait"))
  print(pcall(uv.run, "sometimes"))
end)
]])
    assert.matches("^once\tboolean\ttrue\tfalse\tfalse\nfalse\t[^\n]*:15: bad argument #1 to 'run'"
      .. " %(invalid option 'sometimes'%)\nexit=0\n$", out)
    -- "once" waited a turn for the 1 ms timer (fired), then the loop was
    -- empty.  What the first
    -- "once" returns depends on when the timer fell due: at the turn's
    -- start it closes in that turn (false), after the poll libuv runs it
    -- again at the turn's end and the handle is still closing (true).
  end)

  it("uv.run() in a task that the script's own uv.run runs raises, nothing spins", function()
    local out = child("local uv = require 'luv'\nlocal task = require 'luaweave.task'\n"
      .. "task.spawn(function() for i = 1, 3 do task.wait(0.001) end print('other done') end)\n"
      .. "task.spawn(function() task.wait(0.001); print(pcall(uv.run)) end)\nuv.run()\n")
    assert.matches("^false\t[^\n]*:4: uv.run: called from a task that the running loop is running "
      .. "%(uv.run or the host's loop%): it runs already; wait with task.wait or task.await "
      .. "instead\nother done\nexit=0\n$", out)
  end)

  it("lw.run inside a luv callback under uv.run says why it cannot run", function()
    local out = child([[
local uv = require 'luv'
local lw = require 'luaweave'
local task = require 'luaweave.task'
local log = {}
local t = uv.new_timer()
t:start(1, 0, function()
  t:close()
  print(pcall(lw.run, function() task.wait(0.01); log[#log + 1] = "f ended" end))
end)
uv.run()
print(table.concat(log, ","))
]])
    assert.are.equal("false\trun: the event loop is running already and libuv cannot run"
      .. " it inside itself (f goes on as a task)\nf ended\nexit=0\n", out)
  end)

  it("luv's own handler is back once lw.run returns", function()
    local out, rc = child([[
local lw = require 'luaweave'
local uv = require 'luv'
lw.run(function() end)
local t = uv.new_timer()
t:start(1, 0, function() t:close(); error("after run") end)
uv.run()
print("not reached")
]])
    assert.matches("after run", out, 1, true)
    assert.is_nil(out:find("not reached", 1, true))
    assert.are_not.equal(0, rc)
  end)

  -- lua_close with a wrapped uv.fs_stat in flight: the callback is
  -- finalized first, then luv's loop finalizer runs the request and calls
  -- it (on 5.1/LuaJIT after luaweave.so would have been unloaded)
  local pending = "local uv = require 'luv'\nlocal task = require 'luaweave.task'\n"
    .. "local stat = task.wrap(uv.fs_stat, 2)\n"
    .. "task.spawn(function() print('got', stat('.')) end)\n"

  it("a wrapped request pending when the state closes: its late callback does nothing", function()
    local out = child(pending .. "print('main ends')\n")
    assert.are.equal("main ends\nexit=0\n", out)
  end)

  it("the same when lw.run ended with task.exit", function()
    local out = child(pending:gsub("\ntask%.spawn", "\nlocal lw = require 'luaweave'\n"
      .. "lw.run(function()\ntask.spawn", 1)
      .. "task.exit(3)\nend)\nprint('script ends')\n")
    assert.are.equal("script ends\nexit=0\n", out)
  end)

  it("the CLI: task.exit(3) with a wrapped request pending exits 3", function()
    local out = cli("local uv = require 'luv'\nlocal stat = task.wrap(uv.fs_stat, 2)\n"
      .. "task.spawn(function() print('got', stat('.')) end)\ntask.exit(3)\n")
    assert.are.equal("exit=3\n", out)
  end)

  it("a task cancelled while awaiting a wrapped luv call is not resumed", function()
    local out = child([[
local uv = require 'luv'
local lw = require 'luaweave'
local task = require 'luaweave.task'
local stat = task.wrap(uv.fs_stat, 2)
local t = task.spawn(function() stat("/"); print("resumed") end)
task.cancel(t)
uv.run()
print(lw.status(t))
]])
    assert.are.equal("cancelled\nexit=0\n", out)
  end)
end)
