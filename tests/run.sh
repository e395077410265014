#!/bin/sh
# Run every suite on every installed Lua version and end with one line
# "N passed, N failed".  Usage: tests/run.sh [--sanitize]
#   --sanitize   the C tests only, built with ASan+UBSan
cd "$(dirname "$0")/.." || exit 2
sh tests/deps.sh || exit 2
MODE=${1:-all}
PASS=0 FAIL=0
LOG=build/test-logs
mkdir -p "$LOG"

# count TAP lines of a run; a crash or a short run counts as failure
tally() { # name logfile exitcode
  ok=$(grep -c '^ok ' "$2"); nok=$(grep '^not ok ' "$2" | grep -vc '# SKIP')
  skip=$(grep '^not ok ' "$2" | grep -c '# SKIP')
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$2" | head -1)
  miss=0
  [ -n "$plan" ] && [ "$plan" -gt $((ok + nok + skip)) ] && miss=$((plan - ok - nok - skip))
  [ "$3" != 0 ] && [ $((nok + miss)) = 0 ] && miss=1
  PASS=$((PASS + ok)); FAIL=$((FAIL + nok + miss))
  if [ $((nok + miss)) != 0 ]; then
    echo "FAIL $1 ($nok failed, $miss missing, exit $3): see $2"
    grep -A8 '^not ok' "$2" | head -40
  else
    echo "ok   $1 ($ok)"
  fi
}

for v in 5.1 5.2 5.3 5.4 jit; do
  if [ $v = jit ]; then pc=luajit; bin=luajit; else pc=lua$v; bin=lua$v; fi
  pkg-config --exists $pc 2>/dev/null && command -v $bin >/dev/null || continue
  if [ "$MODE" = --sanitize ]; then
    B=build/san/$v
    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
    make -s LUA=$v B=$B OPT="-O1 -g" CFLAGS="$SAN" LDFLAGS="$SAN" tests-c >$LOG/build-san-$v.log 2>&1 ||
      { echo "FAIL build (sanitize, $v): see $LOG/build-san-$v.log"; FAIL=$((FAIL + 1)); continue; }
  else
    B=build/$v; [ $v = 5.4 ] && B=build
    make -s LUA=$v all tests-c >$LOG/build-$v.log 2>&1 ||
      { echo "FAIL build ($v): see $LOG/build-$v.log"; FAIL=$((FAIL + 1)); continue; }
  fi
  for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    # a small quarantine: the reuse tests need freed addresses to come back
    CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=4 \
      "$t" >"$LOG/$name-$v.tap" 2>&1
    tally "$name ($v)" "$LOG/$name-$v.tap" $?
  done
  [ "$MODE" = --sanitize ] && continue
  LUA_CPATH="$B/?.so;;" LUAWEAVE_BUILD="$B" LUAWEAVE_LUA=$bin \
    $bin /usr/bin/busted -o TAP spec >"$LOG/spec-$v.tap" 2>&1
  tally "spec ($v)" "$LOG/spec-$v.tap" $?
  for t in tests/*.sh; do
    case $t in tests/run.sh|tests/deps.sh) continue;; esac
    LUAWEAVE_BUILD="$B" LUAWEAVE_LUA=$bin LUAWEAVE_V=$v sh "$t" >"$LOG/$(basename $t .sh)-$v.tap" 2>&1
    tally "$(basename $t .sh) ($v)" "$LOG/$(basename $t .sh)-$v.tap" $?
  done
done
# the benchmarks at size 1000, once: every workload and implementation
# still computes the right answer (issue 5; speed is make bench's)
if [ "$MODE" != --sanitize ]; then
  make -s bench-smoke >"$LOG/bench-smoke.tap" 2>&1
  tally "bench-smoke" "$LOG/bench-smoke.tap" $?
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
