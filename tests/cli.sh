#!/bin/sh
# The luaweave command line: exit status, stdout and stderr of small
# scripts.  Prints TAP.  LUAWEAVE_BUILD: the build dir (default build).
B=${LUAWEAVE_BUILD:-build}
LW="$B/luaweave"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0 failed=0

. "$(dirname "$0")/cli.inc"
# the plan, up front: one test per check line of this file (none is in a
# loop or an if), so that a run that stops early comes out short
echo "1..$(grep -c '^check\(_not_jit\|_54\|_not_51\|_yield_pcall\)\? ' "$0")"

check "-v prints the version" 0 '^luaweave [0-9]+\.[0-9]+\.[0-9]+' "" -- "$LW" -v
check "--version too" 0 '^luaweave ' "" -- "$LW" --version
check "-h prints usage" 0 'usage: .*script' "" -- "$LW" -h
check "--help too" 0 'task' "" -- "$LW" --help
check "--help names the environment and exit status, like luaweave(1)" 0 'LUA_CPATH' "" -- "$LW" --help
check "unknown option: usage on stderr, exit 1" 1 "" "unrecognized option '-x'" -- "$LW" -x
check "-e without argument" 1 "" "needs argument" -- "$LW" -e
check "-e runs a statement" 0 '^hi	3$' "" -- "$LW" -e 'print("hi", 1 + 2)'
check "-e runs as a task" 0 '^waited	true$' "" -- "$LW" -e 'print("waited", task.wait(0.01) >= 0.01)'
check "-l requires into a global" 0 '^table$' "" -- "$LW" -l string -e 'print(type(string))'
script mod.lua <<'EOF'
return { answer = 42 }
EOF
check "-l loads a module from LUA_PATH" 0 '^42$' "" -- env LUA_PATH="$T/?.lua;;" "$LW" -l mod -e 'print(mod.answer)'

script args.lua <<'EOF'
print(arg[0], arg[1], arg[2], #arg, arg[-1] ~= nil, select("#", ...), ...)
EOF
printf 'print(...)\n' >"$T/args2.lua"
check "arg and ... as lua sets them" 0 "args.lua	a	b	2	true	2	a	b" "" -- "$LW" "$T/args.lua" a b
check "- reads the script from stdin" 0 '^from stdin$' "" -- sh -c "echo 'print(\"from stdin\")' | $LW -"

script main.lua <<'EOF'
local lw = require "luaweave"
assert(type(task) == "table" and task == require "luaweave.task")
local co = coroutine.running()
print("main is a task", lw.status(co))
local t = task.spawn(function() task.wait(0.01) return "child" end)
print(task.await(t))
EOF
check "main chunk runs as a task" 0 'main is a task	running' "" -- "$LW" "$T/main.lua"
check "await in the main chunk" 0 '^true	child$' "" -- "$LW" "$T/main.lua"

check "task.exit(3) exits 3" 3 "" "" -- "$LW" -e 'task.exit(3) print("not reached")'
check "task.exit() exits 0, nothing else runs" 0 "" "" -- "$LW" -e 'task.delay(0, function() print("no") end) task.exit()'
check "task.exit from a deferred task" 7 '^a$' "" -- "$LW" -e 'task.defer(function() print("a") task.exit(7) end) task.wait(1) print("no")'

script boom.lua <<'EOF'
local function f() error("boom here") end
f()
EOF
check "uncaught error: exit 1, message and traceback" 1 "" 'boom\.lua:1: boom here' -- "$LW" "$T/boom.lua"
check "uncaught error has a traceback" 1 "" 'stack traceback' -- "$LW" "$T/boom.lua"
check "non-string error object" 1 "" 'error object is a table value' -- "$LW" -e 'error({})'

script taskerr.lua <<'EOF'
task.spawn(function() error("in a task") end)
print("main goes on")
EOF
check "unawaited task error: reported, main finishes, exit 1" 1 '^main goes on$' 'in a task' -- "$LW" "$T/taskerr.lua"
check "unawaited task error comes with a traceback" 1 '*' 'stack traceback' -- "$LW" "$T/taskerr.lua"
script bgerr.lua <<'EOF'
local function deep() error("boom") end
task.spawn(function() task.wait(0) deep() end)
EOF
ln -s "$(cd "$(dirname "$LW")" && pwd)/$(basename "$LW")" "$T/mylua"
check "a task's error report is named by the program, as the main chunk's" 1 "" \
  '^[^ ]*mylua: [^ ]*bgerr\.lua:1: boom$' -- "$T/mylua" "$T/bgerr.lua"
check "a task's error report has the task's frames: the function the user called" 1 "" \
  "^	[^ ]*bgerr\\.lua:1: in (function|upvalue|local) 'deep'$" -- "$LW" "$T/bgerr.lua"
check "a task's error report has the frame that called it" 1 "" \
  "^	[^ ]*bgerr\\.lua:2: in function <[^ ]*bgerr\\.lua:2>$" -- "$LW" "$T/bgerr.lua"
check "a task's error report has no frame of luaweave's insides" 0 '^0$' "" -- \
  sh -c "\"$LW\" \"$T/bgerr.lua\" 2>&1 | grep -c 'luaweave\\.task\\|xpcall\\|\\[C\\]: in ?'; true"

script awaited.lua <<'EOF'
local t = task.delay(0.01, function() error("caught", 0) end)
print(task.await(t))
EOF
check "awaited task error goes to the awaiter: exit 0" 0 '^false	caught$' "" -- "$LW" "$T/awaited.lua"

script dead.lua <<'EOF'
local a = task.spawn(function() coroutine.yield() end)
local b = task.spawn(function() task.await(a) end)
task.await(b)
EOF
check "deadlock: exit 1, says deadlock and how many wait" 1 "" 'deadlock: 2 threads waiting' -- "$LW" "$T/dead.lua"

# --- the end of the run: what is left, who ended it ----------------------
script leftover.lua <<'EOF'
local ch = task.channel()
task.spawn(function() print("got", ch:recv()) end)
local ev = task.event()
task.spawn(function() ev:wait() end)
print("main done")
EOF
check "tasks left waiting on what never comes: deadlock, exit 1" 1 '^main done$' \
  '^[^ ]*luaweave: deadlock: 2 tasks wait forever, and nothing is left to wake them:$' -- "$LW" "$T/leftover.lua"
check "the deadlock names the task on the channel and where it waits" 1 '*' \
  "^	thread: 0x[0-9a-fA-F]+ waits (on a channel|in a channel's 'recv') at [^ ]*leftover\\.lua:2$" -- "$LW" "$T/leftover.lua"
check "the deadlock names the task on the event and where it waits" 1 '*' \
  "^	thread: 0x[0-9a-fA-F]+ waits (on an event|in an event's 'wait') at [^ ]*leftover\\.lua:4$" -- "$LW" "$T/leftover.lua"
check "a task left awaiting one that yielded plainly: both said" 1 "" \
  "waits in 'await' of a task \\(thread: 0x[0-9a-fA-F]+\\) at \\(command line\\):1, which waits in coroutine.yield\\(\\) at \\(command line\\):1 \\(nothing resumes it\\)$" -- \
  "$LW" -e 'local a = task.spawn(function() coroutine.yield() end) task.spawn(function() task.await(a) end)'
check "a task waiting on a timer is not stuck: it wakes the one on the channel" 0 '^got	late$' "" -- \
  "$LW" -e 'local ch = task.channel() task.spawn(function() print("got", ch:recv()) end)
    task.delay(0.01, function() ch:send("late") end)'
check "the main chunk cancelled by a task: said so, exit 1" 1 "" \
  '^[^ ]*luaweave: the main chunk was cancelled \(task.cancel\) by a task at \(command line\):1$' -- \
  "$LW" -e 'local m = coroutine.running() task.defer(function() task.cancel(m) end) task.wait(10) print("no")'
check "the main chunk cancelled while it runs: said at its next wait, and where (5.4 too), exit 1" 1 "" \
  '^[^ ]*luaweave: the main chunk was cancelled \(task.cancel\) while it waited at \(command line\):1$' -- \
  "$LW" -e 'local m = coroutine.running() task.spawn(function() task.cancel(m) end) task.wait(10) print("no")'
check "task.exit wins over an earlier reported task error: its code" 0 "" '\(command line\):1: early' -- \
  "$LW" -e 'task.spawn(function() error("early") end) task.wait(0) task.exit(0)'
check "-h says task.exit wins over a reported task error" 0 'task.exit \(it wins over a task error' "" -- "$LW" -h
check "task.exit(3) after a reported task error: 3" 3 "" '\(command line\):1: early' -- \
  "$LW" -e 'task.spawn(function() error("early") end) task.wait(0) task.exit(3)'
check "awaiting a never-started coroutine: said so" 1 "" \
  "in 'await' of a coroutine \\(thread: 0x[0-9a-fA-F]+\\) at \\(command line\\):1, which was never started \\(nothing resumes it\\)" -- \
  "$LW" -e 'task.await(coroutine.create(function() end))'

check "syntax error: exit 1" 1 "" "unexpected symbol|expected" -- "$LW" -e 'x = = 1'
check "missing script: exit 1" 1 "" "cannot open" -- "$LW" "$T/nope.lua"

script timers.lua <<'EOF'
-- due 0.24 s apart: only a stall that long between the two calls (none
-- seen even with every core busy) could swap them; the exact order under
-- any load is test_sched's (a fake clock) and task_spec's (bounds)
task.delay(0.25, function() print("late") end)
task.delay(0.01, function() print("early") end)
EOF
check "pending timers run before exit" 0 'early' "" -- "$LW" "$T/timers.lua"
check "timers run in deadline order" 0 '^late$' "" -- sh -c "$LW $T/timers.lua | tail -1"

check "task.delay(math.huge) does not hang" 0 '^fired$' "" -- "$LW" -e 'task.delay(math.huge, function() print("fired") end)'
check "task.wait(0/0) does not hang" 0 '^number$' "" -- "$LW" -e 'print(type(task.wait(0/0)))'

# --- errors are never held back or swallowed (issue 15) ----------------------
check "main-chunk error while a task loops forever: reported at once, exit 1" 1 "" \
  '\(command line\):1: attempt to index .*nil_value' -- \
  "$LW" -e 'task.spawn(function() while true do task.wait(0.001) end end) print(nil_value.port)'
check "a later task.exit(0) does not swallow a main-chunk error" 1 "" '\(command line\):1: late' -- \
  "$LW" -e 'task.delay(0, function() task.exit(0) end) error("late")'
check "a main-chunk error after a wait, other tasks busy: exit 1" 1 '^a$' 'stack traceback' -- \
  "$LW" -e 'task.spawn(function() while true do task.wait(0.001) end end) task.wait(0.01) print("a") error("b")'
check "the first failing -e ends the run: later ones never run" 1 '^1$' '\(command line\):1: two' -- \
  "$LW" -e 'print(1)' -e 'error("two")' -e 'print(3)'

# --- LUA_INIT, -E, -W, -v -----------------------------------------------------
V=${LUAWEAVE_V:-5.4}
case $V in
  5.1|5.2) ARG_INIT='^no arg$' ARG_E='^nil	nil$' ARG_I='^x$' ;;
  # LuaJIT's arg with no script: every word below 0, nothing at 0
  jit) ARG_INIT='^3\.2$' ARG_E='^0	print\(arg and #arg, arg and arg\[-1\]\)$' ARG_I='^100$' ;;
  *) ARG_INIT='^3\.2$' ARG_E='^2	nil$' ARG_I='^100$' ;;
esac
check "LUA_INIT runs first, with arg as lua $V has it" 0 "$ARG_INIT" "" -- \
  env LUA_INIT='X = arg and tonumber(arg[1]) or "no arg"' "$LW" -e 'print(X)' "$T/args2.lua" 3.2
printf 'x = (x or 10) print(x) x = x + 1\n' >"$T/init.lua"
check "LUA_INIT=@file runs the file" 0 '^11$' "" -- env LUA_INIT="@$T/init.lua" "$LW" -e 'print(x)'
check "an error in LUA_INIT: named LUA_INIT, exit 1" 1 "" 'LUA_INIT:1: msg' -- \
  env -u LUA_INIT_5_1 -u LUA_INIT_5_2 -u LUA_INIT_5_3 -u LUA_INIT_5_4 LUA_INIT="error('msg')" "$LW" -e 'print(1)'
check "-E: LUA_INIT is not run" 0 '^nil$' "" -- env LUA_INIT='X = 1' "$LW" -E -e 'print(X)'
# -E gives the paths the interpreter's own library has with no LUA_PATH
# (lua5.1 has no -E: its paths with the variables unset); LuaJIT's were
# its header's upstream ones (/usr/local/share/luajit-...), not Debian's
case $V in jit) INTERP=luajit ;; *) INTERP=lua$V ;; esac
PATHS='print(package.path) print(package.cpath)'
if [ "$V" = 5.1 ]; then WANT=$(env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_1 -u LUA_CPATH_5_1 lua5.1 -e "$PATHS")
else WANT=$($INTERP -E -e "$PATHS"); fi
printf '%s\n' "$WANT" >"$T/paths.want"
check "-E: package.path and cpath are $INTERP's defaults, whatever LUA_PATH says" 0 '^same$' "" -- \
  sh -c 'env LUA_PATH="$1/?.lua" LUA_CPATH="$1/?.so" LUA_PATH_5_4=x LUA_CPATH_5_4=y "$2" -E -e "$3" | cmp -s - "$1/paths.want" && echo same' - "$T" "$LW" "$PATHS"
check "-Ex: unrecognized" 1 "" "unrecognized option '-Ex'" -- "$LW" -Ex
check "a bad argument to task.exit: the traceback names it (5.1-5.3, LuaJIT: not 'f')" 1 "" \
  "^	\[C\]: in (function|upvalue) '(luaweave\.task\.)?exit'$" -- "$LW" -e 'task.exit("bad")'
check "-vv: unrecognized, as lua(1)" 1 "" "unrecognized option '-vv'" -- "$LW" -vv
check "-l needs an argument" 1 "" "'-l' needs argument" -- "$LW" -l
check "-v names the Lua it runs on" 0 '(Lua|LuaJIT)' "" -- "$LW" -v
check "-W is accepted" 0 '^ok$' "" -- "$LW" -W -e 'print("ok")'

# --- messages name the user's code ------------------------------------------
check "-l of a missing module: lua's message" 1 "" "module 'nosuchmod' not found" -- "$LW" -l nosuchmod
check "-l of a missing module: no frame of luaweave's insides" 0 "" "" -- \
  sh -c "! $LW -l nosuchmod 2>&1 | grep 'luaweave:[0-9]'"
check "-l g=mod sets global g" 0 '^table	nil$' "" -- "$LW" -l 'str=string' -e 'print(type(str), rawget(_G, "str=string"))'
check "-e error: chunk (command line), its line" 1 "" '^[^ ]*luaweave: \(command line\):2: two' -- "$LW" -e 'local x = 1
error("two")'
check "-e traceback: no frame of luaweave's insides" 0 "" "" -- \
  sh -c "! $LW -e 'local function f() error(1) end f()' 2>&1 | grep 'luaweave:[0-9]'"
printf 'error(setmetatable({}, { __tostring = function() return "custom" end }))\n' >"$T/tostr.lua"
check "an error object with __tostring: its message, no traceback (as lua.c)" 1 "" '^[^ ]*luaweave: custom$' -- "$LW" "$T/tostr.lua"

# --- arg as lua(1) builds it --------------------------------------------------
check "arg for an -e only run (as lua $V)" 0 "$ARG_E" "" -- "$LW" -e 'print(arg and #arg, arg and arg[-1])'
check "the script's ... (from arg on 5.3+, as lua $V)" 0 "$ARG_I" "" -- \
  sh -c "echo 'print(...)' | $LW -e 'if arg then arg[1] = 100 end' - x"
check "arg for a script on stdin: arg[0] is -" 0 '^-	a	2$' "" -- sh -c "echo 'print(arg[0], arg[1], #arg)' | $LW - a b"
check "arg after --: the script and its words" 0 '^a	b$' "" -- "$LW" -- "$T/args2.lua" a b
check "coroutine.yield() at top level: said in words, exit 1" 1 "" 'outside any coroutine' -- \
  "$LW" -e 'coroutine.yield()'
# the main chunk parked for good with nothing else alive: what it waits on
check "main waits on a channel for ever: said so, exit 1" 1 "" \
  "^[^ ]*luaweave: the main chunk waits forever (on a channel|in a channel's 'recv') at \\(command line\\):1: no other task is left to wake it$" -- \
  "$LW" -e 'local c = task.channel() c:recv()'
check "main waits on an event for ever: said so, exit 1" 1 "" \
  "the main chunk waits forever (on an event|in an event's 'wait') at \\(command line\\):1: no other task" -- \
  "$LW" -e 'task.event():wait()'
check "main waits on a semaphore for ever: said so, exit 1" 1 "" \
  "the main chunk waits forever (on a semaphore|in a semaphore's 'acquire') at \\(command line\\):1: no other task" -- \
  "$LW" -e 'task.semaphore(0):acquire()'
check "main awaits a task that never ends: names it and where it is stuck" 1 "" \
  "waits forever in 'await' of a task \(thread: 0x[0-9a-fA-F]+\) at \(command line\):1, which waits in coroutine.yield\(\) at \(command line\):1 \(nothing resumes it\)" -- \
  "$LW" -e 'local t = task.spawn(function() coroutine.yield() end) task.await(t)'

# --- Ctrl-C (as lua.c: "interrupted!" raised where the code is) -----------------
# ctrlc.sh LW CODE [twice]: run CODE in the background, wait for its first line
# ("ready", flushed), send SIGINT, print the rest and "exit N".  No race:
# the signal goes only after the code said it is where it should be.
# With "twice": then read one more line, print it, send a second SIGINT.
# (Not under timeout(1): it sends a signal it gets to the child and to
# its process group, a second Ctrl-C.  A watchdog kills a hang instead.)
cat >"$T/ctrlc.sh" <<'EOS'
fifo=$(mktemp -u) && mkfifo "$fifo" || exit 2
"$1" -e "$2" >"$fifo" &
pid=$!
(sleep 60; kill -KILL $pid 2>/dev/null) >/dev/null 2>&1 &
dog=$!
exec 3<"$fifo"
rm -f "$fifo"
read -r first <&3
[ "$first" = ready ] || echo "first line: $first"
kill -INT $pid
if [ "$3" = twice ]; then
  read -r second <&3
  echo "$second"
  kill -INT $pid
fi
cat <&3
wait $pid
st=$?
kill $dog 2>/dev/null
echo "exit $st"
EOS
# LuaJIT runs no hook inside compiled code: luajit(1) cannot interrupt a
# busy loop either (a second Ctrl-C ends it)
check_not_jit() {
  if [ "$V" = jit ]; then
    n=$((n + 1))
    echo "ok $n # SKIP $1: LuaJIT runs no hook in compiled loops"
  else
    check "$@"
  fi
}
check_not_jit "Ctrl-C in a busy loop: pcall catches interrupted!, the script goes on" 0 '^42$' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'print(pcall(function() io.stdout:write("ready\n") io.stdout:flush()
    while true do end end)) print(42)'
check_not_jit "Ctrl-C in a busy loop: the error is interrupted!" 0 'interrupted!' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'print(pcall(function() io.stdout:write("ready\n") io.stdout:flush()
    while true do end end))'
check_not_jit "Ctrl-C uncaught: interrupted! and a traceback, exit 1" 0 '^exit 1$' 'interrupted!.*|stack traceback' -- \
  sh "$T/ctrlc.sh" "$LW" 'io.stdout:write("ready\n") io.stdout:flush() while true do end'
# a busy loop in a plain coroutine the task resumed (a hook is per
# thread: the one armed must be the coroutine's)
check_not_jit "Ctrl-C in a busy coroutine.wrap: interrupted! where it runs, exit 1" 0 '^exit 1$' \
  '^[^ ]*luaweave: \(command line\):[0-9]+: interrupted!$' -- \
  sh "$T/ctrlc.sh" "$LW" 'coroutine.wrap(function() io.stdout:write("ready\n") io.stdout:flush()
    while true do end end)() print("not reached")'
check_not_jit "Ctrl-C in a busy coroutine two wraps deep: a traceback" 0 '^exit 1$' '^stack traceback:$' -- \
  sh "$T/ctrlc.sh" "$LW" 'coroutine.wrap(function() coroutine.wrap(function()
    io.stdout:write("ready\n") io.stdout:flush() while true do end end)() end)()'
check_not_jit "Ctrl-C in a busy coroutine.resume: it returns false, interrupted!" 0 '^false	interrupted!$' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'print(coroutine.resume(coroutine.create(function()
    io.stdout:write("ready\n") io.stdout:flush() while true do end end)))'
check "Ctrl-C while the main chunk waits in the loop: interrupted!, exit 1" 0 '^exit 1$' 'interrupted!' -- \
  sh "$T/ctrlc.sh" "$LW" 'io.stdout:write("ready\n") io.stdout:flush() task.wait(100) os.exit(3)'
# --- lua.c's message handler, run in the failing task at the error -------
# (5.2+ and LuaJIT: a protected call there can yield; 5.1 makes the
# message once the task stopped)
check_not_51() {
  if [ "$V" = 5.1 ]; then
    n=$((n + 1))
    echo "ok $n # SKIP $1: 5.1 runs no message handler in a task"
  else
    check "$@"
  fi
}
# --- Ctrl-C where a task waits in the loop: raised at its wait -------------
# (5.1: a pcall cannot hold a task.wait, which yields; the wait there is
# only ever unwound, reported as interrupted!)
check_yield_pcall() {
  if [ "$V" = 5.1 ]; then
    n=$((n + 1))
    echo "ok $n # SKIP $1: 5.1's pcall cannot yield"
  else
    check "$@"
  fi
}
check_yield_pcall "Ctrl-C while the main chunk is in pcall(task.wait): caught, the chunk goes on" 0 \
  '^false	([^ ]*: )?interrupted!$' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'print(pcall(function() io.stdout:write("ready\n") io.stdout:flush()
    task.wait(100) end)) io.stdout:write("after\n")'
check_yield_pcall "Ctrl-C while the main chunk is in pcall(task.await): caught" 0 '^after$' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'local t = task.spawn(function() task.wait(100) end)
    print(pcall(function() io.stdout:write("ready\n") io.stdout:flush() task.await(t) end))
    task.cancel(t) io.stdout:write("after\n")'
cat >"$T/intrf.sh" <<'EOS'
sh "$(dirname "$0")/ctrlc.sh" "$1" 'local function f() io.stdout:write("ready\n") io.stdout:flush()
  task.wait(100) end f()'
EOS
check "Ctrl-C uncaught at a wait: the traceback names the user's function" 0 '^exit 1$' \
  "^	\\(command line\\):2: in (local|function) 'f'$" -- sh "$T/intrf.sh" "$LW"
check "Ctrl-C uncaught at a wait: no frame of luaweave's insides" 0 '^0$' "" -- \
  sh -c "sh \"$T/intrf.sh\" \"$LW\" 2>&1 | grep -c 'luaweave\.task:\|xpcall\|yield'; true"
check_yield_pcall "Ctrl-C after the script, a task waits: it gets interrupted! and catches it" 0 \
  '^false	([^ ]*: )?interrupted!$' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'task.defer(function() print(pcall(function()
    io.stdout:write("ready\n") io.stdout:flush() task.wait(100) end)) end)'
check_yield_pcall "Ctrl-C after the script: the second one ends the process" 0 '^exit 130$' "" -- \
  sh "$T/ctrlc.sh" "$LW" 'task.defer(function() print(pcall(function()
    io.stdout:write("ready\n") io.stdout:flush() task.wait(100) end)) io.stdout:flush() task.wait(100) end)' twice
script getinfo4.lua <<'EOF'
local m = setmetatable({}, {__tostring = function()
  return "the error is at line " .. debug.getinfo(4).currentline
end})
task.wait(0)
error(m)
EOF
check_not_51 "a __tostring sees the error's frames (as Lua's own testes/main.lua asks)" 1 "" \
  '^[^ ]*luaweave: the error is at line 5$' -- "$LW" "$T/getinfo4.lua"
if [ "$V" = jit ]; then last='^	\(command line\):1: in main chunk$'; else last='^	\[C\]: in \?$'; fi
check_not_51 "the traceback ends as lua.c's (its last frame below the main chunk)" 0 "$last" "" -- \
  sh -c "\"$LW\" -e 'local function f() task.wait(0) error(\"x\") end f()' 2>&1 | tail -1"
# --- <close> variables of what fails (5.4) -------------------------------
check_54() {
  if [ "$V" != 5.4 ]; then
    n=$((n + 1))
    echo "ok $n # SKIP $1: to-be-closed variables are Lua 5.4's"
  else
    check "$@"
  fi
}
script tbc.lua <<'EOF'
local closed = {}
local function closer(name)
  return setmetatable({}, { __close = function(_, e)
    closed[name] = true
    print(name .. " closed", e)
  end })
end
local t = task.spawn(function()
  local x <close> = closer("awaited")
  task.wait(0)
  error("a fails", 0)
end)
print("await", task.await(t))
print("closed before the awaiter resumed", closed.awaited)
task.spawn(function()
  local x <close> = closer("unawaited")
  error("u fails", 0)
end)
task.wait(0.01)
local r = task.spawn(function()
  local x <close> = setmetatable({}, { __close = function() error("close fails", 0) end })
  error("r fails", 0)
end)
print("raised", select(2, task.await(r)))
local y <close> = closer("main")
error("main fails", 0)
EOF
check_54 "a failed task's <close> runs with its error, before its awaiter resumes" 1 '^closed before the awaiter resumed	true$' "*" -- "$LW" "$T/tbc.lua"
check_54 "an unawaited failed task's <close> runs; its error is reported" 1 '^unawaited closed	u fails$' '^[^ ]*luaweave: u fails$' -- "$LW" "$T/tbc.lua"
check_54 "a task's __close that raises: its error replaces the task's, and is reported" 1 '^raised	close fails$' '^[^ ]*luaweave: close fails$' -- "$LW" "$T/tbc.lua"
check_54 "a failed main chunk's <close> runs, then the report" 1 '^main closed	main fails$' '^[^ ]*luaweave: main fails$' -- "$LW" "$T/tbc.lua"
check_54 "the main chunk's __close gets the message with its traceback, as lua.c's" 1 '^stack traceback:$' '*' -- "$LW" "$T/tbc.lua"
[ "$failed" = 0 ]
