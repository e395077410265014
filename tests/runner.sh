#!/bin/sh
# TAP: the runner's judgement (tests/tally.inc) on fabricated logs: a
# suite that vanishes, stops half-way, hangs, miscounts or skips must be
# reported as such, so that `make test` cannot stay green around it.
cd "$(dirname "$0")/.." || exit 2
T=$(mktemp -d "${TMPDIR:-/tmp}/lwrunner.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM
echo "1..17"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }

# judge NAME EXIT DECLARED REPEAT: tally the log in $T/log with fresh
# totals; "PASS FAIL SKIP" in $T/sum, tally's report in $T/out
judge() {
  (PASS=0 FAIL=0 SKIP=0; . tests/tally.inc
   tally "$1" "$T/log" "$2" "$3" "$4" "$T/list" >"$T/out"; echo "$PASS $FAIL $SKIP" >"$T/sum")
}
# expect DESCRIPTION "PASS FAIL SKIP" [PATTERN]: the totals, and PATTERN
# (grep -E) in the report
expect() {
  got=$(cat "$T/sum")
  if [ "$got" = "$2" ] && { [ -z "${3:-}" ] || grep -Eq -- "$3" "$T/out"; }; then ok "$1"
  else nok "$1 (totals '$got', want '$2'${3:+, report /$3/})"; sed 's/^/# /' "$T/out"; fi
}
log() { printf '%s\n' "$@" >"$T/log"; }
printf '%s\n' test_a test_b test_c >"$T/list"

log 1..3 "ok 1 - test_a" "ok 2 - test_b" "ok 3 - test_c"
judge "c (5.4)" 0 3 "build/tests/test_x %s"
expect "a full run passes" "3 0 0" '^ok   c \(5\.4\) \(3 passed, 0 skipped'

log 1..3 "ok 1 - test_a"
judge "c (5.4)" 0 3 "build/tests/test_x %s"
expect "a C test that exits 0 half-way fails: 2 missing, names where" "1 2 0" \
  '^FAIL c \(5\.4\) \(0 failed, 2 missing.*ran 1 of 3 declared'
grep -q 'stopped in or after test 2 of 3: test_b' "$T/out" && grep -q "repeat: build/tests/test_x 'test_b'$" "$T/out" &&
  grep -q 'repeat: build/tests/test_x$' "$T/out" &&
  ok "... and names the test it stopped in and the command" || nok "... names the test and the command"

: >"$T/log"
judge "spec (5.1)" 0 307 "lua5.1 busted --filter %s spec"
expect "a spec whose first test calls os.exit(0) fails: all 307 missing" "0 307 0" \
  'no plan 1\.\.N.*ran 0 of 307 declared'
grep -q 'repeat: lua5.1 busted spec$' "$T/out" && ok "... and says how to repeat the suite" ||
  nok "... says how to repeat the suite"

log "ok 1 - a" "ok 2 - b" "1..2"
judge "spec (5.4)" 0 2 ""
expect "busted's plan at the end, equal to the listed count, passes" "2 0 0" '^ok   spec'
judge "spec (5.4)" 0 3 ""
expect "busted running fewer tests than --list lists fails" "2 1 0" 'plan 1\.\.2, but 3 declared'

log 1..4 "ok 1 - a" "ok 2 - b"
judge "sh (5.2)" 1 "" "sh tests/x.sh"
expect "a shell suite that dies half-way fails" "2 2 0" 'exit 1.*ran 2 of 4 declared'

log 1..2 "ok 1 - a" "ok 2 - b"
judge "sh (5.2)" 124 "" ""
expect "a suite cut by its timeout fails, even with every result" "2 1 0" 'timed out'
judge "sh (5.2)" 137 "" ""
expect "a suite killed after the grace period fails" "2 1 0" 'timed out'
judge "sh (5.2)" 3 "" ""
expect "a non-zero exit fails" "2 1 0" 'exit 3'

log "ok 1 - a" "ok 2 - b" 1..2
judge "sh (jit)" 0 "" ""
expect "a shell suite must declare its count up front" "2 1 0" 'plan comes after results'

log "ok 1 - a" "ok 2 - b"
judge "sh (jit)" 0 "" ""
expect "no plan at all fails" "2 1 0" 'no plan'

log 1..1 "ok 1 - a" "ok 2 - b"
judge "sh (jit)" 0 "" ""
expect "more results than declared fails" "2 1 0" 'ran 2 of 1'

log 1..3 "ok 1 - a" "ok 2 - # SKIP to-be-closed variables are Lua 5.4 only" "ok 3 - c # SKIP no luv"
judge "spec (5.1)" 0 "" ""
expect "skips are counted as skipped, not passed" "1 0 2" '^  skip spec \(5\.1\): # SKIP to-be-closed variables are Lua 5\.4 only$'
grep -q '^  skip spec (5.1): c # SKIP no luv$' "$T/out" && ok "... each one listed with its reason" ||
  nok "... each one listed with its reason"

log 1..2 "ok 1 - a" "not ok 2 - task any-thing (fast) is 100% it's"
judge "spec (5.3)" 0 2 "lua5.3 busted --filter %s spec"
expect "a failure prints the busted command that repeats it" "1 1 0" \
  "repeat: lua5.3 busted --filter 'task any%-thing %\(fast%\) is 100%% it'\\\\''s' spec"
exit $F
