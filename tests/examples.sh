#!/bin/sh
# TAP: `make examples` builds every C example (warnings are errors) against
# the static library, each runs and says it saw what it should; the CLI
# example fans out and reports, with the documented exit status.
#   LUAWEAVE_BUILD  the build directory (default: build)
#   LUAWEAVE_V      the Lua version: 5.1 5.2 5.3 5.4 (default) or jit
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
T=$(mktemp -d "${TMPDIR:-/tmp}/lwexamples.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM

names=$(ls examples/*.c | sed 's|examples/\(.*\)\.c|\1|')
echo "1..$(( $(echo $names | wc -w) * 2 + 3 ))"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

make -s --no-print-directory LUA=$V B=$B examples >"$T/build.log" 2>&1
for e in $names; do
  if [ -x "$B/examples/$e" ]; then
    ok "examples/$e.c builds ($V)"
    "$B/examples/$e" >"$T/$e.out" 2>"$T/$e.err"
    rc=$?
    check "examples/$e runs: exit 0, says ok, nothing on stderr (exit $rc)" \
      sh -c '[ "$1" = 0 ] && [ "$(tail -1 "$2")" = ok ] && [ ! -s "$3" ]' - $rc "$T/$e.out" "$T/$e.err"
    [ $rc = 0 ] || sed 's/^/# /' "$T/$e.out" "$T/$e.err"
  else
    nok "examples/$e.c builds ($V)"
    sed 's/^/# /' "$T/build.log" | head -20
    nok "examples/$e runs # not built"
  fi
done

# the CLI example: every file read in its own task, reported in order
printf 'abc' >"$T/three"
out=$("$B/luaweave" examples/fanout.lua "$T/three" examples/fanout.lua 2>&1); rc=$?
size=$(wc -c <examples/fanout.lua | tr -d ' ')
check "fanout.lua reads every file and exits 0 (exit $rc)" \
  [ $rc = 0 -a "$out" = "$(printf '%s: 3 bytes\nexamples/fanout.lua: %s bytes' "$T/three" "$size")" ]
out=$("$B/luaweave" examples/fanout.lua "$T/missing" "$T/three" 2>"$T/err"); rc=$?
check "fanout.lua reports a missing file and exits 1 (exit $rc)" \
  sh -c '[ "$1" = 1 ] && echo "$2" | grep -q "missing: no such file" && echo "$2" | grep -q "three: 3 bytes"' - $rc "$out"
check "fanout.lua: a missing file is a result, not a task error (stderr empty)" [ ! -s "$T/err" ]
exit $F
