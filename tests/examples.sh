#!/bin/sh
# TAP: build examples/host.c against the static library and run it.
#   LUAWEAVE_BUILD  the build directory holding libluaweave.a (default: build)
#   LUAWEAVE_V      the Lua version: 5.1 5.2 5.3 5.4 (default) or jit
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
CC=${CC:-cc}
if [ "$V" = jit ]; then PC=luajit; DEF=-DLW_LUAJIT; else PC=lua$V; DEF=; fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/lwexamples.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM

echo "1..6"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { # description, then a command that must succeed
  d=$1; shift
  if "$@"; then ok "$d"; else nok "$d"; fi
}

# 1: it builds, warning-free
if [ -f "$B/libluaweave.a" ] &&
   $CC -std=c99 -Wall -Wextra -pedantic -Werror -D_POSIX_C_SOURCE=200809L \
     $DEF -Iinclude $(pkg-config --cflags $PC libuv) examples/host.c \
     -o "$TMP/host" "$B/libluaweave.a" $(pkg-config --libs $PC libuv) -lm \
     >"$TMP/cc.log" 2>&1; then
  ok "examples/host.c builds against $B/libluaweave.a ($PC)"
else
  nok "examples/host.c builds against $B/libluaweave.a ($PC)"
  sed 's/^/# /' "$TMP/cc.log" 2>/dev/null | head -20
  for d in "exits 0" "run mode" "attach mode" "step mode" "no task errors"; do
    nok "$d # not built"
  done
  exit 1
fi

# 2: it runs and says every mode worked
"$TMP/host" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "host exits 0 (got $rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/# /' "$TMP/out" "$TMP/err"

# 3-5: each driver gave its expected result, in order
has() { grep -qx "$1" "$TMP/out"; }
check "lw_sched_run on luaweave's own loop" has "ok run"
check "lw_sched_attach on the host's loop, completed by a host timer" has "ok attach"
check "lw_sched_step from a frame loop" has "ok step"

# 6: nothing was reported as a task error, and nothing went to stderr
check "no task errors, empty stderr" \
  sh -c '! grep -q "task error\|FAIL" "$1" && [ ! -s "$2" ]' - "$TMP/out" "$TMP/err"
exit $F
