#!/bin/sh
# TAP: the reuse storm (tests/storm.c) at a small size on one Lua version,
# so that it cannot rot: 200,000 lifecycles (a second or two), a fresh
# seed each run, printed so that a failure can be replayed with
# `STORM_SEED=<seed> STORM_N=<n> make storm`.
#   LUAWEAVE_BUILD  the build directory (default: build)
#   LUAWEAVE_V      the Lua version: 5.1 5.2 5.3 5.4 (default) or jit
#   STORM_N, STORM_SEED  size and seed
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
N=${STORM_N:-200000}
T=$(mktemp -d "${TMPDIR:-/tmp}/lwstorm.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM

echo "1..8"
. tests/tap.inc
build_prog storm
timeout 300 "$B/tests/storm" -n "$N" >"$T/out" 2>&1
rc=$?
sed 's/^/# /' "$T/out" | grep -v '^# storm: *[0-9]*%' | head -40
seed=$(sed -n 's/^storm: .*, seed \([0-9]*\), .*/\1/p' "$T/out")
check "the storm runs to its report ($N lifecycles, seed $seed)" has '^storm: seed .*: '
check "no result reached another life (stale results: 0)" has '^stale results: *0$'
check "no other check failed (failures: 0)" has '^failures: *0$'
check "addresses were reused, so the storm tested something" lacks 'no address was reused'
check "the heap is flat from 10% to the end" lacks 'heap grew'
check "the RSS is flat from 10% to the end" lacks 'RSS grew'
check "exit 0: lua_close frees everything (exit $rc)" [ "$rc" = 0 ]
exit $F
