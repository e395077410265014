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
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
has() { grep -q "$1" "$T/out"; }
lacks() { ! grep -q "$1" "$T/out"; }

if make -s --no-print-directory LUA=$V B=$B "$B/tests/soak" >"$T/build.log" 2>&1; then
  ok "tests/soak.c builds ($V)"
else
  nok "tests/soak.c builds ($V)"
  sed 's/^/# /' "$T/build.log" | head -20
  exit 1
fi
timeout $((S + 120)) "$B/tests/soak" -t "$S" >"$T/out" 2>&1
rc=$?
sed 's/^/# /' "$T/out" | head -40
seed=$(sed -n 's/^soak: .*, seed \([0-9]*\), .*/\1/p' "$T/out")
check "the soak runs to its report (${S} s, seed $seed)" has '^soak: seed .*: '
check "tasks ran" lacks 'nothing ran'
check "no check failed: results, invariants, errors (failures: 0)" has '^failures: *0$'
check "the RSS at the end is within 1.2 times the RSS after warm-up" lacks 'RSS grew'
check "the drain ends every task and leaves nothing tracked" lacks 'the drain left\|still tracked'
check "exit 0: lua_close frees everything (exit $rc)" [ "$rc" = 0 ]
exit $F
