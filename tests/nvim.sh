#!/bin/sh
# TAP: luaweave tasks inside Neovim (issue 17).  `nvim --headless -u NONE`
# loads the LuaJIT build (build/jit/luaweave.so) and runs tasks on the
# editor's loop: task.wait, a task.wrap'ped vim.loop.fs_stat and luv
# timer, while a vim.defer_fn fires in between; uv.run() in a task is
# refused (the editor's loop runs it); an error in a task is
# reported and the editor goes on; examples/neovim.lua runs.  Neovim
# embeds LuaJIT: the suite runs in the jit pass (1..0 in the others).
# Skipped, with the reason, only if nvim cannot be installed.
#   LUAWEAVE_V  the Lua version of this pass (default 5.4)
cd "$(dirname "$0")/.." || exit 2
V=${LUAWEAVE_V:-5.4}
if [ "$V" != jit ]; then
  echo "1..0 # Neovim runs LuaJIT: this suite runs in the jit pass"
  exit 0
fi
echo "1..5"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
skip_all() { while [ $n -lt 5 ]; do n=$((n + 1)); echo "ok $n # SKIP $1"; done; exit 0; }

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

LUA_CPATH="build/jit/?.so;;" LW_OUT="$T/out" timeout 120 nvim --headless -u NONE \
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

LUA_CPATH="build/jit/?.so;;" timeout 120 nvim --headless -u NONE \
  -c "luafile examples/neovim.lua" >"$T/ex.out" 2>"$T/ex.err" </dev/null
rc=$?
check "examples/neovim.lua exits 0 (exit $rc)" [ $rc = 0 ]
check "examples/neovim.lua prints what it awaited, nothing on stderr" \
  sh -c '[ "$(cat "$1")" = "cwd is a directory" ] && [ ! -s "$2" ]' - "$T/ex.out" "$T/ex.err"
exit $F
