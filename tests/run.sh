#!/bin/sh
# Run every suite on every installed Lua version and end with one line
# "N passed, N failed, N skipped".  Usage: tests/run.sh [--sanitize]
#   --sanitize   the C tests only, built with ASan+UBSan
# Every suite declares how many tests it holds and runs under a timeout;
# tests/tally.inc says what fails a suite.  A failure prints the command
# that repeats it.  Timeouts (seconds) can be scaled: TEST_TIMEOUT_SCALE=3
# (slow machines) or 0.05 (to see a hang fail fast).
cd "$(dirname "$0")/.." || exit 2
sh tests/deps.sh || exit 2
MODE=${1:-all}
PASS=0 FAIL=0 SKIP=0
LOG=build/test-logs
mkdir -p "$LOG"
. tests/tally.inc
unset LWT_FILTER CMOCKA_TEST_FILTER

# timeouts, generous: a normal run takes a tenth of them or less; ASan
# builds run the C tests several times slower.  After the timeout, TERM
# to the suite's process group, KILL GRACE seconds later.
to() { awk -v s="$1" -v x="${TEST_TIMEOUT_SCALE:-1}" 'BEGIN { t = int(s * x + 0.5); print (t > 0 ? t : 1) }'; }
TO_BUILD=$(to 1800) TO_C=$(to 600) TO_SPEC=$(to 900) TO_SH=$(to 1200) TO_BENCH=$(to 1200)
GRACE=30
[ "$MODE" = --sanitize ] && TO_C=$(to 1800)

# run_to SECONDS LOG command...: the command under a timeout, stdout and
# stderr to LOG; sets RC, T_TIME and TALLY_TIMEOUT
run_to() {
  r_to=$1 r_log=$2
  shift 2
  r_s=$(date +%s)
  timeout -k $GRACE "$r_to" "$@" >"$r_log" 2>&1 </dev/null
  RC=$?
  T_TIME="$(($(date +%s) - r_s)) s" TALLY_TIMEOUT=$r_to
}

for v in 5.1 5.2 5.3 5.4 jit; do
  if [ $v = jit ]; then pc=luajit; bin=luajit; else pc=lua$v; bin=lua$v; fi
  pkg-config --exists $pc 2>/dev/null && command -v $bin >/dev/null || continue
  if [ "$MODE" = --sanitize ]; then
    B=build/san/$v
    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
    timeout -k $GRACE $TO_BUILD make -j2 -s LUA=$v B=$B OPT="-O1 -g" CFLAGS="$SAN" LDFLAGS="$SAN" tests-c \
      >$LOG/build-san-$v.log 2>&1 </dev/null ||
      { echo "FAIL build (sanitize, $v): see $LOG/build-san-$v.log"; FAIL=$((FAIL + 1)); continue; }
  else
    B=build/$v; [ $v = 5.4 ] && B=build
    timeout -k $GRACE $TO_BUILD make -j2 -s LUA=$v all tests-c >$LOG/build-$v.log 2>&1 </dev/null ||
      { echo "FAIL build ($v): see $LOG/build-$v.log"; FAIL=$((FAIL + 1)); continue; }
  fi
  # C tests: the plan is the binary's test array; --list names its tests
  # a small quarantine: the reuse tests need freed addresses to come back
  CENV="CMOCKA_MESSAGE_OUTPUT=TAP ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=4"
  for t in "$B"/tests/test_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    timeout -k 5 60 "$t" --list >"$LOG/$name-$v.list" 2>/dev/null </dev/null ||
      : >"$LOG/$name-$v.list"
    n=$(grep -c . "$LOG/$name-$v.list")
    [ "$n" = 0 ] && n=
    run_to $TO_C "$LOG/$name-$v.tap" env $CENV "$t"
    tally "$name ($v)" "$LOG/$name-$v.tap" $RC "$n" "$CENV $t %s" "$LOG/$name-$v.list"
  done
  [ "$MODE" = --sanitize ] && continue
  # busted: the tests `busted --list` finds (each spec file must show up)
  # are the declared count; busted prints its plan at the end
  timeout -k 5 120 env "LUA_CPATH=$B/?.so;;" LUAWEAVE_BUILD="$B" LUAWEAVE_LUA=$bin \
    $bin /usr/bin/busted --list spec >"$LOG/spec-$v.list" 2>&1 </dev/null
  lrc=$?
  lost=
  for f in spec/*_spec.lua; do grep -q "^$f:[0-9]*: " "$LOG/spec-$v.list" || lost="$lost $f"; done
  if [ $lrc != 0 ] || [ -n "$lost" ]; then
    echo "FAIL spec list ($v): busted --list exit $lrc${lost:+, no test listed in$lost}: see $LOG/spec-$v.list"
    FAIL=$((FAIL + 1))
  fi
  n=$(grep -c '^spec/.*:[0-9]*: ' "$LOG/spec-$v.list")
  run_to $TO_SPEC "$LOG/spec-$v.tap" env "LUA_CPATH=$B/?.so;;" LUAWEAVE_BUILD="$B" LUAWEAVE_LUA=$bin \
    $bin /usr/bin/busted -o TAP spec
  tally "spec ($v)" "$LOG/spec-$v.tap" $RC "$n" \
    "LUA_CPATH='$B/?.so;;' LUAWEAVE_BUILD=$B LUAWEAVE_LUA=$bin $bin /usr/bin/busted -o TAP --filter %s spec" \
    "$LOG/spec-$v.list"
  # shell suites: each prints its plan before its first result
  for t in tests/*.sh; do
    s=$(basename $t .sh)
    case $s in run|deps|runner) continue;; esac
    run_to $TO_SH "$LOG/$s-$v.tap" env LUAWEAVE_BUILD="$B" LUAWEAVE_LUA=$bin LUAWEAVE_V=$v sh "$t"
    tally "$s ($v)" "$LOG/$s-$v.tap" $RC "" "LUAWEAVE_BUILD=$B LUAWEAVE_LUA=$bin LUAWEAVE_V=$v sh $t"
  done
done
if [ "$MODE" != --sanitize ]; then
  # the benchmarks at size 1000, once: every workload and implementation
  # still computes the right answer (issue 5; speed is make bench's)
  run_to $TO_BENCH "$LOG/bench-smoke.tap" make -s bench-smoke
  tally "bench-smoke" "$LOG/bench-smoke.tap" $RC "" "make bench-smoke"
  # the runner's own judgement, on fabricated logs
  run_to 300 "$LOG/runner.tap" sh tests/runner.sh
  tally "runner" "$LOG/runner.tap" $RC "" "sh tests/runner.sh"
fi
echo "$PASS passed, $FAIL failed, $SKIP skipped"
[ "$FAIL" = 0 ]
