#!/bin/sh
# Mutation testing (make mutate): each mutation of tests/mutations.txt is
# applied, alone, to a scratch copy of the tree, built for Lua 5.4, and
# run against the deterministic suites, in order, until one fails (the
# mutant is killed) or all pass (it survived).  The tree itself is never
# modified: an interrupted run leaves at most a directory in $TMPDIR.
#
# One line per mutant, then "N mutants, N killed, N survived".  Exit 1
# if a mutant survived or the list has an error (a search text that no
# longer matches src/, a mutant that does not build), 2 if the unmutated
# tree fails its suites.
#
#   MUTATE_ONLY="a b"   only the mutations of these names
#   MUTATE_ALL=1        run every suite on each mutant and list all that
#                       kill it (slower; to learn which tests catch what)
#   MUTATE_TIMEOUT=s    a suite running longer is a hang: the mutant is
#                       killed by timeout (default 60 s)
#   MUTATE_KEEP=1       keep the scratch tree (its path is printed)
#   MUTATE_LIST=file    another list (default tests/mutations.txt)
#   MUTATE_LUA=5.1      another Lua version (5.1 5.2 5.3 jit; default 5.4):
#                       a mutant equivalent on 5.4 may not be elsewhere
#
# The suites: the C tests (build/tests/test_*), the fuzzer's replay of
# its corpus, the busted specs, and tests/cli.sh, hostile.sh, docs.sh,
# examples.sh.  Not the random ones (storm, soak: make storm, make soak)
# and not package.sh (installation, unchanged by a mutant of src/).
# the whole script is one compound command, read before it runs: editing
# this file during a run cannot change the run
{
cd "$(dirname "$0")/.." || exit 2
LIST=${MUTATE_LIST:-tests/mutations.txt}
TMO=${MUTATE_TIMEOUT:-60}
V=${MUTATE_LUA:-5.4}
if [ "$V" = jit ]; then LUA=luajit PC=luajit; else LUA=lua$V PC=lua$V; fi
command -v $LUA >/dev/null && pkg-config --exists $PC ||
  { echo "mutate: needs Lua $V (sh tests/deps.sh)"; exit 2; }
# the list is read by Lua 5.4's interpreter, whatever version is tested
command -v lua5.4 >/dev/null || { echo "mutate: needs lua5.4"; exit 2; }
[ -x /usr/bin/busted ] || { echo "mutate: needs busted (sh tests/deps.sh)"; exit 2; }

W=$(mktemp -d "${TMPDIR:-/tmp}/lwmutate.XXXXXX") || exit 2
if [ -n "$MUTATE_KEEP" ]; then echo "mutate: scratch tree $W"
else trap 'rm -rf "$W"' EXIT; trap 'exit 130' INT TERM; fi
tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C "$W" || exit 2
# the list parses (a search text that no longer matches is reported below,
# as an error of its mutant)
lua5.4 tests/mutate.lua names $LIST >"$W/names" || { echo "mutate: fix $LIST"; exit 1; }

# warnings stay warnings: a mutant may leave a variable unused
MK="make -s --no-print-directory -C $W LUA=$V B=build WARN=-std=c99"
build() { $MK all tests-c >"$W/build.log" 2>&1; }

SUITES="test_map test_timerq test_store test_sched test_mutants fuzz test_oom spec cli hostile docs examples"

# run_suite NAME: 0 passed, 1 failed, 124 timed out; output in $W/out
run_suite() {
  case $1 in
    test_*)
      [ -x "$W/build/tests/$1" ] || return 0
      (cd "$W" && CMOCKA_MESSAGE_OUTPUT=TAP timeout -k 5 "$TMO" "build/tests/$1") ;;
    spec)
      (cd "$W" && LUA_CPATH="build/?.so;;" LUAWEAVE_BUILD=build LUAWEAVE_LUA=$LUA \
        timeout -k 5 "$TMO" $LUA /usr/bin/busted -o TAP spec) ;;
    *)
      (cd "$W" && LUAWEAVE_BUILD=build LUAWEAVE_LUA=$LUA LUAWEAVE_V=$V \
        timeout -k 5 "$TMO" sh "tests/$1.sh") ;;
  esac >"$W/out" 2>&1
  rc=$?
  [ $rc = 124 ] || [ $rc = 137 ] && return 124
  [ $rc != 0 ] && return 1
  grep '^not ok' "$W/out" | grep -qv '# SKIP' && return 1
  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$W/out" | head -1)
  seen=$(grep -c '^\(not \)\{0,1\}ok ' "$W/out")
  [ -n "$plan" ] && [ "$plan" != "$seen" ] && return 1
  return 0
}

# run_all: the suites in order; KILLERS gets the one that failed (all of
# them with MUTATE_ALL), TIMEDOUT 1 if the first failure was a hang
run_all() {
  KILLERS= TIMEDOUT=0
  for s in $SUITES; do
    run_suite $s
    case $? in
      0) continue ;;
      124) [ -z "$KILLERS" ] && TIMEDOUT=1; KILLERS="$KILLERS $s(timeout)" ;;
      *) KILLERS="$KILLERS $s" ;;
    esac
    [ -n "$MUTATE_ALL" ] || break
  done
}

START=$(date +%s)
echo "mutate: Lua $V, building the unmutated tree in $W"
build || { echo "mutate: the unmutated tree does not build:"; tail -20 "$W/build.log"; exit 2; }
run_all
if [ -n "$KILLERS" ]; then
  echo "mutate: the unmutated tree fails:$KILLERS"
  grep -B2 -A8 '^not ok' "$W/out" | head -30
  exit 2
fi
echo "mutate: suites green in $(($(date +%s) - START)) s: $SUITES"

N=0 K=0 SV=0 TO=0 ERR=0 SURVIVORS=
TAB=$(printf '\t')
while IFS="$TAB" read -r name file; do
  if [ -n "$MUTATE_ONLY" ]; then
    case " $MUTATE_ONLY " in *" $name "*) ;; *) continue ;; esac
  fi
  N=$((N + 1))
  t0=$(date +%s)
  cp "$W/$file" "$W/orig.c"
  if ! lua5.4 tests/mutate.lua apply $LIST "$name" "$W" 2>"$W/out"; then
    ERR=$((ERR + 1)); echo "ERROR     $name: $(cat "$W/out")"
  elif ! build; then
    ERR=$((ERR + 1)); echo "ERROR     $name: does not build ($file)"
    sed 's/^/    /' "$W/build.log" | grep -m3 'error'
  else
    run_all
    dt=$(($(date +%s) - t0))
    if [ -z "$KILLERS" ]; then
      SV=$((SV + 1)); SURVIVORS="$SURVIVORS $name"
      echo "SURVIVED  $name ($file, ${dt} s)"
    elif [ $TIMEDOUT = 1 ]; then
      K=$((K + 1)); TO=$((TO + 1))
      echo "timeout   $name: killed by a hang in$KILLERS (${dt} s)"
    else
      K=$((K + 1))
      echo "killed    $name: by$KILLERS (${dt} s)"
    fi
  fi
  # restore, and make sure the next build compiles the file again
  cp "$W/orig.c" "$W/$file"
  rm -f "$W/build/obj/$(basename "$file" .c).o"
  case $file in *.h) rm -rf "$W/build/obj" ;; esac
done <"$W/names"

echo "mutate: $(($(date +%s) - START)) s, list $LIST, commit $(git rev-parse --short HEAD 2>/dev/null)"
[ $TO -gt 0 ] && echo "mutate: $TO of the killed were killed by a timeout (a hang)"
[ $ERR -gt 0 ] && echo "mutate: $ERR errors in the list (fix $LIST)"
[ -n "$SURVIVORS" ] && echo "survivors:$SURVIVORS"
echo "$N mutants, $K killed, $SV survived"
[ $SV = 0 ] && [ $ERR = 0 ]
exit
}
