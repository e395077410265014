#!/bin/sh
# TAP: a short soak (tests/soak.c) on one Lua version, so that it cannot
# rot: 3 seconds of the scheduler under a steady random load, a fresh
# seed each run, printed so that a failure can be replayed with
# `SOAK_SEED=<seed> SOAK_SECONDS=<s> make soak`.
#   LUAWEAVE_BUILD  the build directory (default: build)
#   LUAWEAVE_V      the Lua version: 5.1 5.2 5.3 5.4 (default) or jit
#   SOAK_SECONDS, SOAK_SEED  length and seed
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
S=${SOAK_SECONDS:-3}
T=$(mktemp -d "${TMPDIR:-/tmp}/lwsoak.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM

echo "1..7"
. tests/tap.inc
build_prog soak
timeout $((S + 120)) "$B/tests/soak" -t "$S" >"$T/out" 2>&1
rc=$?
sed 's/^/# /' "$T/out" | head -40
seed=$(sed -n 's/^soak: .*, seed \([0-9]*\), .*/\1/p' "$T/out")
check "the soak runs to its report (${S} s, seed $seed)" has '^soak: seed .*: '
check "tasks ran" lacks 'nothing ran'
check "no check failed: results, invariants, errors (failures: 0)" has '^failures: *0$'
if has 'RSS check not made'; then
  n=$((n + 1)); echo "ok $n - the RSS at the end is within 1.2 times the RSS after warm-up # SKIP a ${S} s run has no steady state: make soak (600 s) checks it"
else
  check "the RSS at the end is within 1.2 times the RSS after warm-up" lacks 'RSS grew'
fi
check "the drain ends every task and leaves nothing tracked" lacks 'the drain left\|still tracked'
check "exit 0: lua_close frees everything (exit $rc)" [ "$rc" = 0 ]
exit $F
