#!/bin/sh
# TAP: luaweave tasks inside Neovim (issue 17).  `nvim --headless -u NONE`
# loads the LuaJIT build (build/jit/luaweave.so) and runs tasks on the
# editor's loop: task.wait, a task.wrap'ped vim.loop.fs_stat and luv
# timer, while a vim.defer_fn fires in between; uv.run() in a task is
# refused (the editor's loop runs it); an error in a task is
# reported and the editor goes on; examples/neovim.lua runs.  Tasks run
# from the editor's event queue (vim.schedule), not in a libuv callback:
# the editor API works in a task after task.wait and after an awaited
# vim.schedule (it aborted Neovim when tasks were stepped from a prepare
# handle), vim.in_fast_event() is false there, a vim.schedule from a
# timer-resumed task runs at once (not after 'updatetime'), task.exit
# raises (no run to end), vim.wait drives tasks, and :qa with a step
# request pending exits cleanly; if vim.schedule refuses the request,
# that is reported once and the tasks are stepped from the prepare
# handle.  Neovim
# embeds LuaJIT: the suite runs in the jit pass (1..0 in the others).
# Skipped, with the reason, only if nvim cannot be installed.
#   LUAWEAVE_V  the Lua version of this pass (default 5.4)
cd "$(dirname "$0")/.." || exit 2
V=${LUAWEAVE_V:-5.4}
if [ "$V" != jit ]; then
  echo "1..0 # Neovim runs LuaJIT: this suite runs in the jit pass"
  exit 0
fi
echo "1..12"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
skip_all() { while [ $n -lt 12 ]; do n=$((n + 1)); echo "ok $n # SKIP $1"; done; exit 0; }

if ! command -v nvim >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq neovim >/dev/null 2>&1
  command -v nvim >/dev/null 2>&1 || skip_all "nvim is not installed and apt-get install neovim failed"
fi
make -s --no-print-directory LUA=jit >/dev/null 2>&1
[ -f build/jit/luaweave.so ] || { nok "build/jit/luaweave.so builds"; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/lwnvim.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM

cat >"$T/test.lua" <<'LUA'
local out = assert(io.open(os.getenv("LW_OUT"), "w"))
local uv = vim.uv or vim.loop
local lw = require "luaweave"
local task = require "luaweave.task"
local log = {}
local function say(s) log[#log + 1] = s end
local stat = task.wrap(uv.fs_stat, 2)
local sleep = task.wrap(function(ms, cb)
  local t = uv.new_timer()
  t:start(ms, 0, function() t:close(); cb("slept") end)
end, 2)
local deferred = false
vim.defer_fn(function() deferred = true; say("defer_fn") end, 0)
local function finish(code)
  out:write(table.concat(log, ", "), "\n")
  out:close()
  vim.cmd(code == 0 and "qa!" or "cquit " .. code)
end
vim.defer_fn(function() say("hang guard"); finish(3) end, 60000)
local bad = task.spawn(function() task.wait(); error("task boom") end)
local main = task.spawn(function()
  say("start")
  while not deferred do task.wait(0.001) end  -- the editor runs meanwhile
  say("waited")
  local err, st = stat("/")
  say("stat " .. tostring(err) .. " " .. st.type)
  say(sleep(1))
  -- the editor's loop runs this task: it cannot run that loop again
  local _, why = pcall(uv.run)
  say(tostring(why):match("uv%.run: called from a task that the running loop") and "uv.run refused" or tostring(why))
  task.wait(); task.wait()
  say("bad " .. lw.status(bad))
  vim.schedule(function() finish(0) end)
end)
say("spawned " .. lw.status(main))
LUA

LUA_CPATH="build/jit/?.so;;" LW_OUT="$T/out" timeout -k 5 120 nvim --headless -u NONE \
  -c "luafile $T/test.lua" >"$T/stdout" 2>"$T/stderr" </dev/null
rc=$?
got=$(cat "$T/out" 2>/dev/null)
want="start, spawned yielded, defer_fn, waited, stat nil directory, slept, uv.run refused, bad failed"
check "nvim exits 0 after the tasks end (exit $rc)" [ $rc = 0 ]
check "spawn returns to the editor; tasks wait, await wrapped fs_stat and a luv timer while defer_fn fires" \
  [ "$got" = "$want" ]
[ "$got" = "$want" ] || { echo "# got:  $got"; echo "# want: $want"; sed 's/^/# /' "$T/stderr" | head; }
check "a task's error is reported with its traceback, and the editor goes on" \
  sh -c 'grep -q "luaweave: .*task boom" "$1" && grep -q "stack traceback" "$1"' - "$T/stderr"

LUA_CPATH="build/jit/?.so;;" timeout -k 5 120 nvim --headless -u NONE \
  -c "luafile examples/neovim.lua" >"$T/ex.out" 2>"$T/ex.err" </dev/null
rc=$?
check "examples/neovim.lua exits 0 (exit $rc)" [ $rc = 0 ]
check "examples/neovim.lua prints what it awaited, nothing on stderr" \
  sh -c '[ "$(cat "$1")" = "cwd is a directory" ] && [ ! -s "$2" ]' - "$T/ex.out" "$T/ex.err"

# 'updatetime' at 600 s: a vim.schedule that waits for it meets the
# deadline, a luv timer (a defer_fn would itself wait in the queue that
# is not processed)
cat >"$T/api.lua" <<'LUA'
local out = assert(io.open(os.getenv("LW_OUT"), "w"))
local task = require "luaweave.task"
local log = {}
local function say(s) log[#log + 1] = s end
local function finish(code)
  out:write(table.concat(log, ", "), "\n")
  out:close()
  vim.cmd(code == 0 and "qa!" or "cquit " .. code)
end
local deadline = (vim.uv or vim.loop).new_timer()
deadline:start(20000, 0, function()
  say("deadline"); out:write(table.concat(log, ", "), "\n"); out:close(); os.exit(3)
end)
deadline:unref()
local woke = false
task.spawn(function() task.wait(0.001); woke = true end)
say(vim.wait(10000, function() return woke end, 1) and "vim.wait drove a task" or "vim.wait timed out")
local scheduler = task.wrap(vim.schedule, 1)  -- nio's and plenary's idiom
task.spawn(function()
  task.wait(0.001)
  say("fast " .. tostring(vim.in_fast_event()))
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "after wait" })
  say(vim.api.nvim_buf_get_lines(0, 0, -1, false)[1])
  scheduler()
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "after scheduler" })
  say(vim.api.nvim_buf_get_lines(0, 0, -1, false)[1])
  say(vim.trim(vim.fn.system("echo system")))
  local ok, err = pcall(task.exit, 0)  -- Neovim's loop has no run to end
  say(ok and "task.exit returned" or tostring(err):match("task%.exit: no run to end") or tostring(err))
  task.wait(0.001)
  vim.schedule(function() say("scheduled"); finish(0) end)
end)
LUA
LUA_CPATH="build/jit/?.so;;" LW_OUT="$T/api.out" timeout -k 5 60 nvim --headless -u NONE \
  -c "set updatetime=600000" -c "luafile $T/api.lua" >"$T/api.stdout" 2>"$T/api.err" </dev/null
rc=$?
got=$(cat "$T/api.out" 2>/dev/null)
check "the editor API in a task does not abort Neovim (exit $rc)" [ $rc = 0 ]
check "vim.in_fast_event() is false in a task; nvim_buf_set_lines works after task.wait and after an awaited vim.schedule" \
  sh -c 'case "$1" in *"fast false, after wait, after scheduler, system"*) exit 0;; esac; exit 1' - "$got"
check "task.exit in a task raises 'no run to end', the task goes on" \
  sh -c 'case "$1" in *", system, task.exit: no run to end, scheduled") exit 0;; esac; exit 1' - "$got"
check "a vim.schedule from a timer-resumed task runs before 'updatetime' (600 s) and the 20 s deadline" \
  sh -c 'case "$1" in *", scheduled") exit 0;; esac; exit 1' - "$got"
check "vim.wait in plugin code drives tasks" \
  sh -c 'case "$1" in "vim.wait drove a task, "*) exit 0;; esac; exit 1' - "$got"
[ "$got" = "vim.wait drove a task, fast false, after wait, after scheduler, system, task.exit: no run to end, scheduled" ] ||
  { echo "# got: $got"; sed 's/^/# /' "$T/api.err" | head; }

# tasks always ready: a step request is pending when :qa comes
cat >"$T/qa.lua" <<'LUA'
local task = require "luaweave.task"
task.spawn(function() while true do task.wait() end end)
vim.defer_fn(function() vim.cmd("qa!") end, 20)
LUA
LUA_CPATH="build/jit/?.so;;" timeout -k 5 60 nvim --headless -u NONE \
  -c "luafile $T/qa.lua" >"$T/qa.out" 2>"$T/qa.err" </dev/null
rc=$?
check ":qa with tasks ready (a step request pending) exits 0, nothing on stderr (exit $rc)" \
  sh -c '[ "$1" = 0 ] && [ ! -s "$2" ]' - $rc "$T/qa.err"

# a vim.schedule that always raises: the tasks still run (a fast context:
# the task ends the editor with os.exit), the error is said once
cat >"$T/refuse.lua" <<'LUA'
local task = require "luaweave.task"
vim.schedule = function() error("schedule refused") end
task.spawn(function()
  task.wait(0.001); task.wait(0.001); task.wait()
  io.stderr:write("task ran\n")
  os.exit(0)
end)
LUA
# (a request failing at every turn floods stderr: at most 512 KiB of it)
(ulimit -f 1024; LUA_CPATH="build/jit/?.so;;" exec timeout -k 5 60 nvim --headless -u NONE \
  -c "luafile $T/refuse.lua" >"$T/refuse.out" 2>"$T/refuse.err" </dev/null)
rc=$?
check "vim.schedule refusing the step request: reported once, the tasks run on (exit $rc)" \
  sh -c '[ "$1" = 0 ] && grep -q "^task ran" "$2" && [ "$(grep -c "luaweave: .*schedule refused" "$2")" = 1 ]' - $rc "$T/refuse.err"
exit $F
