#!/bin/sh
# Hostile scripts through the command line: each must end with the
# documented exit status and a clear message on stderr, and none may hang
# past the work it was given (every run is cut at 60 s: a failure).
# Prints TAP.  LUAWEAVE_BUILD: the build dir (default build);
# LUAWEAVE_V: the Lua version (5.1 5.2 5.3 5.4 jit; default 5.4).
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
LW="$B/luaweave"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0 failed=0

. "$(dirname "$0")/cli.inc"
# the plan, up front: 82 checks on every version, the nested spawns (three
# checks where Lua has a C-call limit, one on LuaJIT), one more on 5.4
# (to-be-closed variables).
# Adding a check means adding it here: a run that stops early, or a block
# that no longer runs, then comes out short
case $V in jit) echo 1..83 ;; 5.4) echo 1..86 ;; *) echo 1..85 ;; esac

# newproxy where only userdata have __gc (5.1, LuaJIT)
GC='local function gcobj(f)
  if newproxy then
    local p = newproxy(true); getmetatable(p).__gc = f; return p
  end
  return setmetatable({}, { __gc = f })
end'

# --- durations: NaN, negative, infinite and absurd are 0 (guide) -------

script delays.lua <<'EOF'
local t0 = task.clock()
for _, d in ipairs({ math.huge, -math.huge, 0 / 0, -1, 1e300, 2 ^ 31 + 1 }) do
  task.delay(d, function() io.write("fired ", tostring(d), "\n") end)
end
task.wait(0.01)
print("waited", task.clock() - t0 < 60) -- a real wait of d would hang
EOF
check "task.delay(math.huge, f) fires at once" 0 '^fired inf$' "" -- "$LW" "$T/delays.lua"
check "task.delay(NaN / negative / -inf / absurd) fire at once" 0 '^fired -inf$' "" -- "$LW" "$T/delays.lua"
check "six bad delays, six runs, no hang" 0 '^waited	true$' "" -- \
  sh -c "$LW $T/delays.lua | grep -c '^fired' | grep -qx 6 && echo 'waited	true'"

script waits.lua <<'EOF'
local t0 = task.clock()
for _, d in ipairs({ 0 / 0, -1, math.huge, -math.huge, 1e300, 2 ^ 31 + 1 }) do
  local e = task.wait(d)
  assert(type(e) == "number" and e == e and e >= 0 and e < 60, tostring(e))
end
print("all waits returned", task.clock() - t0 < 60)
EOF
check "task.wait(0/0), (-1), (math.huge)...: a number back, no hang" 0 '^all waits returned	true$' "" -- "$LW" "$T/waits.lua"
check "task.wait(NaN) in the main chunk" 0 '^number$' "" -- "$LW" -e 'print(type(task.wait(0/0)))'
check "task.wait(-1)" 0 '^number$' "" -- "$LW" -e 'print(type(task.wait(-1)))'
check "task.wait('x'): bad argument, exit 1" 1 "" "bad argument #1 to 'wait' \(number expected, got string\)" -- "$LW" -e 'task.wait("x")'
check "task.wait({}): bad argument" 1 "" "bad argument #1 to 'wait' \(number expected, got table\)" -- "$LW" -e 'task.wait({})'
check "task.delay('x', f): bad argument" 1 "" "bad argument #1 to 'delay' \(number expected, got string\)" -- "$LW" -e 'task.delay("x", print)'
check "task.delay(1, 'x'): bad argument #2" 1 "" "bad argument #2 to 'delay'" -- "$LW" -e 'task.delay(1, "x")'
check "task.wait('x') in a task: reported, main goes on" 1 '^main on$' "bad argument #1 to 'wait'" -- \
  "$LW" -e 'task.spawn(function() task.wait("x") end) print("main on")'

# --- a million pending cancels -------------------------------------------

script million.lua <<'EOF'
local N, ts = 1000000, {}
for i = 1, N do
  if i % 2 == 0 then
    ts[i] = task.delay(1000, function() error("delayed task ran " .. i) end)
  else
    ts[i] = task.defer(function() error("deferred task ran " .. i) end)
  end
end
for i = N, 1, -1 do task.cancel(ts[i]) end
for i = 1, N, 99999 do task.cancel(ts[i]) end -- again: harmless
local lw = require "luaweave"
print("cancelled", lw.status(ts[1]), lw.status(ts[N]))
EOF
check "a million pending tasks cancelled: ends at once, none runs" 0 '^cancelled	cancelled	cancelled$' "" -- "$LW" "$T/million.lua"

script waiting.lua <<'EOF'
local N, ts = 100000, {}
local blocker = task.delay(1000, function() end)
for i = 1, N do
  if i % 2 == 0 then
    ts[i] = task.spawn(function() task.wait(1000); error("woke " .. i) end)
  else
    ts[i] = task.spawn(function() task.await(blocker); error("woke " .. i) end)
  end
end
for i = 1, N do task.cancel(ts[i]) end
task.cancel(blocker)
print("done")
EOF
check "100000 waiting and awaiting tasks cancelled: ends at once" 0 '^done$' "" -- "$LW" "$T/waiting.lua"

# --- recursion ------------------------------------------------------------

check "deep recursion in a task: stack overflow reported, exit 1" 1 '^main on$' 'stack overflow' -- \
  "$LW" -e 'local function f(n) return 1 + f(n + 1) end task.spawn(f, 1) print("main on")'
check "deep recursion in a task has a traceback" 1 '*' 'stack traceback' -- \
  "$LW" -e 'local function f(n) return 1 + f(n + 1) end task.spawn(f, 1)'
check "deep recursion in the main chunk: exit 1" 1 "" 'stack overflow' -- \
  "$LW" -e 'local function f(n) return 1 + f(n + 1) end f(1)'
check "deep metamethod recursion in a task" 1 '^main on$' 'stack overflow' -- \
  "$LW" -e 'local t = setmetatable({}, {__index = function(t, k) return t[k] end})
task.spawn(function() return t.x end) print("main on")'
check "awaited stack overflow goes to the awaiter: exit 0" 0 'false	.*stack overflow' "" -- \
  "$LW" -e 'local function f(n) return 1 + f(n + 1) end print(task.await(task.defer(f, 1)))'

script nested.lua <<'EOF'
local lw = require "luaweave"
local limit = tonumber(arg[1]) -- none: until Lua refuses
local depth, threads = 0, {}
local function f(n)
  depth = n
  if not limit or n < limit then threads[n + 1] = task.spawn(f, n + 1) end
end
threads[1] = task.spawn(f, 1)
local deepest = threads[depth + 1] or threads[depth]
print("depth", depth, lw.status(deepest))
print("await", task.await(deepest))
EOF
if [ "$V" = jit ]; then # LuaJIT counts no nested C calls: 300 levels run
  check "300 nested task.spawn run (LuaJIT)" 0 '^depth	300	returned$' "" -- "$LW" "$T/nested.lua" 300
else # Lua's C-call limit refuses the deepest: it fails with a message
  check "spawns nested past Lua's C limit: the deepest fails; awaited in its step, not reported" 0 '	failed$' '' -- "$LW" "$T/nested.lua"
  check "and its awaiter gets the message" 0 '^await	false	C stack overflow$' '' -- "$LW" "$T/nested.lua"
  check "unawaited, it is reported" 1 '	failed$' 'C stack overflow' -- "$LW" -e 'arg = {}' -e "$(sed '/^print("await"/d' "$T/nested.lua")"
fi

# --- error objects that are not strings -------------------------------------

for where in main spawn defer; do
  case $where in
    main) pre="" post="" ;;
    spawn) pre="task.spawn(function() " post=" end)" ;;
    defer) pre="task.defer(function() " post=" end)" ;;
  esac
  check "$where: error() says nil" 1 "" '\(error object is a nil value\)' -- "$LW" -e "${pre}error()${post}"
  check "$where: error({})" 1 "" '\(error object is a table value\)' -- "$LW" -e "${pre}error({})${post}"
  check "$where: error(table with __tostring) prints it" 1 "" ': my message$' -- \
    "$LW" -e "${pre}error(setmetatable({}, {__tostring = function() return 'my message' end}))${post}"
  check "$where: a __tostring that raises" 1 "" '\(error object is a table value\)' -- \
    "$LW" -e "${pre}error(setmetatable({}, {__tostring = function() error('in tostring') end}))${post}"
  check "$where: a __tostring that returns a table" 1 "" '\(error object is a table value\)' -- \
    "$LW" -e "${pre}error(setmetatable({}, {__tostring = function() return {} end}))${post}"
  check "$where: a __tostring that returns a number" 1 "" '\(error object is a table value\)' -- \
    "$LW" -e "${pre}error(setmetatable({}, {__tostring = function() return 42 end}))${post}"
  check "$where: a __tostring that yields" 1 "" '\(error object is a table value\)' -- \
    "$LW" -e "${pre}error(setmetatable({}, {__tostring = function() coroutine.yield() return 'y' end}))${post}"
  check "$where: error(true)" 1 "" '\(error object is a boolean value\)' -- "$LW" -e "${pre}error(true)${post}"
  check "$where: error(42) prints the number" 1 "" ': 42$' -- "$LW" -e "${pre}error(42)${post}"
done
check "a replaced global tostring is not used" 1 "" '\(error object is a table value\)' -- \
  "$LW" -e 'tostring = function() error("hostile tostring") end task.spawn(function() error({}) end)'

# --- many arguments (a new thread has room for about 40) -----------------

script args.lua <<'EOF'
print(select("#", ...), #arg)
EOF
check "a script given 300 arguments gets them all" 0 '^300	300$' "" -- "$LW" "$T/args.lua" $(seq 1 300)
script manyargs.lua <<'EOF'
local unpack = table.unpack or unpack
local t = {}
for i = 1, 5000 do t[i] = i end
local function count(...) print(select("#", ...), (select(5000, ...))) end
task.spawn(count, unpack(t))
task.defer(count, unpack(t))
task.delay(0, count, unpack(t))
local co = coroutine.create(function() count(coroutine.yield()) end)
coroutine.resume(co)
task.defer(co, unpack(t))
EOF
check "task.spawn/defer/delay with 5000 arguments" 0 '^5000	5000$' "" -- "$LW" "$T/manyargs.lua"
check "... all four of them" 0 '^4$' "" -- sh -c "$LW $T/manyargs.lua | grep -c '^5000	5000$'"

# --- task.exit --------------------------------------------------------------

check "task.exit(n) from a deferred task" 5 '^a$' "" -- \
  "$LW" -e 'task.defer(function() print("a") task.exit(5) print("no") end) task.defer(function() print("no") end)'
check "task.exit(n) from a delayed task, other timers never run" 6 '^a$' "" -- \
  "$LW" -e 'task.delay(0.01, function() print("a") task.exit(6) end) task.delay(0.02, function() print("no") end)'
check "task.exit inside pcall stops the task" 4 '^before$' "" -- \
  "$LW" -e 'print("before") pcall(task.exit, 4) print("no")'
script gcexit.lua <<EOF
$GC
task.defer(function()
  gcobj(function() task.exit(9) end)
  collectgarbage(); collectgarbage()
  print("same task runs on until it yields")
  task.wait()
  print("no")
end)
task.defer(function() task.wait(); print("no") end)
EOF
case $V in
  5.1|5.2) # they cannot tell that a finalizer cannot yield: the yield raises
    check "task.exit from a __gc metamethod: the code, and the failed yield" 9 \
      "" 'attempt to yield across' -- "$LW" "$T/gcexit.lua" ;;
  *) check "task.exit from a __gc metamethod: the code, nothing else after a yield" 9 \
      '^same task runs on until it yields$' "" -- "$LW" "$T/gcexit.lua" ;;
esac
script gcexit2.lua <<EOF
$GC
keep = gcobj(function() task.exit(9) end)
print("end of main")
EOF
check "task.exit from a __gc that runs while the state closes: no effect" 0 '^end of main$' '*' -- "$LW" "$T/gcexit2.lua"
check "task.exit(true) is 0" 0 "" "" -- "$LW" -e 'task.exit(true)'
check "task.exit(false) is 1" 1 "" "" -- "$LW" -e 'task.exit(false)'
check "task.exit(nil) is 0" 0 "" "" -- "$LW" -e 'task.exit(nil) print("no")'
check "task.exit(3.0) is 3" 3 "" "" -- "$LW" -e 'task.exit(3.0)'
check "task.exit(4, 5): extra arguments ignored" 4 "" "" -- "$LW" -e 'task.exit(4, 5)'
check "task.exit(-1): the low 8 bits, as exit(3)" 255 "" "" -- "$LW" -e 'task.exit(-1)'
check "task.exit(256): the low 8 bits, as exit(3)" 0 "" "" -- "$LW" -e 'task.exit(256)'
for bad in 1.5 '0/0' 'math.huge' '2^40'; do
  check "task.exit($bad): no integer, exit 1" 1 "" "bad argument #1 to 'exit' \(number has no integer representation\)" -- \
    "$LW" -e "task.exit($bad)"
done
check "task.exit('3'): bad argument" 1 "" "bad argument #1 to 'exit' \(number expected, got string\)" -- "$LW" -e 'task.exit("3")'
check "task.exit({}): bad argument" 1 "" "bad argument #1 to 'exit' \(number expected, got table\)" -- "$LW" -e 'task.exit({})'
check "task.exit(1.5) in a task: reported, exit 1" 1 '^main on$' "bad argument #1 to 'exit'" -- \
  "$LW" -e 'task.spawn(function() task.exit(1.5) end) print("main on")'

# --- scripts that do not load or that stop at once ----------------------------

check "syntax error in -e: exit 1, where" 1 "" "\(command line\):1: unexpected symbol near '='" -- "$LW" -e 'x = = 1'
printf 'local x =\nprint(x\n' >"$T/syntax.lua"
check "syntax error in a file: exit 1, file and line" 1 "" "syntax\.lua:3: '\)' expected" -- "$LW" "$T/syntax.lua"
check "syntax error in the script: the -e before it ran (lua(1) loads the script after them)" 1 '^no$' 'syntax\.lua:3:' -- "$LW" -e 'print("no")' "$T/syntax.lua"
printf '\033Lua\377\377garbage' >"$T/binary.lua"
check "a corrupt binary chunk: exit 1" 1 "" 'binary\.lua' -- "$LW" "$T/binary.lua"
check "missing script: exit 1" 1 "" "cannot open .*nope\.lua" -- "$LW" "$T/nope.lua"
check "a directory as the script: exit 1" 1 "" "$T" -- "$LW" "$T"
check "error() at top level: exit 1, says nil" 1 "" '\(error object is a nil value\)' -- "$LW" -e 'error()'
check "error('msg', 0) at top level: the message" 1 "" ': msg$' -- "$LW" -e 'error("msg", 0)'
check "coroutine.yield() at top level: the main task never resumes, said in words" 1 '^before$' 'coroutine.yield\(\) outside any coroutine' -- \
  "$LW" -e 'print("before") coroutine.yield() print("no")'
check "a yield across a C call: the Lua error, exit 1" 1 "" 'attempt to yield across' -- \
  "$LW" -e 'table.sort({3, 2, 1}, function(a, b) coroutine.yield() return a < b end)'
check "task.wait inside a C call: an error, exit 1" 1 "" 'yield' -- \
  "$LW" -e 'table.sort({3, 2, 1}, function(a, b) task.wait() return a < b end)'
check "awaiting oneself: an error, exit 1" 1 "" 'cannot await the running thread' -- "$LW" -e 'task.await(coroutine.running())'
check "task.spawn of a dead coroutine: raised at the caller's line, exit 1" 1 "" '^[^ ]*luaweave: \(command line\):1: task.spawn: cannot resume dead coroutine' -- \
  "$LW" -e 'local co = coroutine.create(function() end) coroutine.resume(co) task.spawn(co) print("main on")'

# --- cancel ---------------------------------------------------------------

check "a task cancelling itself stops at its next yield" 0 '^before$' "" -- \
  "$LW" -e 'task.spawn(function() task.cancel(coroutine.running()) print("before") task.wait() print("no") end)'
if [ "$V" = 5.4 ]; then
  script closefail.lua <<'EOF'
local t = task.spawn(function()
  local x <close> = setmetatable({}, { __close = function() error("close failed", 0) end })
  task.wait(10)
end)
task.cancel(t)
print(require("luaweave").status(t))
EOF
  check "cancel: a to-be-closed variable that raises is reported, exit 1" 1 '^failed$' 'close failed' -- "$LW" "$T/closefail.lua"
fi

[ "$failed" = 0 ]
