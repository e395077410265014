#!/bin/sh
# TAP: a luv-driven plain Lua script (examples/luv.lua: uv.run() runs the
# loop, luaweave tasks on it) on this pass's Lua version; Debian's lua-luv
# serves 5.1-5.4, and LuaJIT through 5.1's module.
#   LUAWEAVE_BUILD  the build directory (default: build)
#   LUAWEAVE_LUA    the interpreter (default: lua5.4)
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
L=${LUAWEAVE_LUA:-lua5.4}
echo "1..2"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
T=$(mktemp -d "${TMPDIR:-/tmp}/lwluv.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM
LUA_CPATH="$B/?.so;;" timeout 120 $L examples/luv.lua / examples/luv.lua "$T/none" >"$T/out" 2>"$T/err"
rc=$?
check "examples/luv.lua ($L) exits 0, nothing on stderr (exit $rc)" sh -c '[ "$1" = 0 ] && [ ! -s "$2" ]' - $rc "$T/err"
sort "$T/out" >"$T/sorted"
printf '%s\n' "$T/none: ENOENT: no such file or directory: $T/none" "/: directory" \
  "examples/luv.lua: file" "luv ticked meanwhile" | sort >"$T/want"
check "examples/luv.lua: every task's stat, and luv's own timer ticked meanwhile" cmp -s "$T/sorted" "$T/want"
cmp -s "$T/sorted" "$T/want" || sed 's/^/# /' "$T/out" "$T/err"
exit $F
