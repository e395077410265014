#!/bin/sh
# The differential test (issue 15): every case of tests/lua_diff/cases
# runs under lua(1) of the version (LUAWEAVE_LUA: lua5.x or luajit) and
# under luaweave built for it (LUAWEAVE_BUILD); stdout, stderr and the
# exit status must be the same, once the program name (lua(1)'s or
# luaweave's, which begins error messages) is normalized to "lua".
# Prints TAP.
#
# Differences on purpose, each with its reason (docs/cli.md, "Differences
# from lua(1) on purpose", lists them too):
#   - The cases leave out -v, -h/--help and the usage text (luaweave's
#     own), coroutine.isyieldable()/coroutine.running() at the top level
#     and a top-level coroutine.yield() (the main chunk is a task), and
#     tasks running after the script (lua(1) has none).
#   - On 5.1 and LuaJIT the comparison drops the traceback lines of
#     lua.c's own C frame below the main chunk (5.1's "[C]: ?", LuaJIT's
#     "[C]: at 0x..."): there luaweave's main chunk is the bottom of its
#     task's coroutine.  On 5.2+ luaweave runs it under a C function
#     with lua.c's message handler, whose "[C]: in ?" is compared.
#   - A case marked "!V" is not compared on version V, for the reason
#     given on the line above it in the cases file.
B=${LUAWEAVE_BUILD:-build}
LUA_BIN=${LUAWEAVE_LUA:-lua5.4}
LW="$(cd "$B" 2>/dev/null && pwd)/luaweave"
D="$(cd "$(dirname "$0")/lua_diff" && pwd)"
CASES="$D/cases"
PLAN=$(grep -Evc '^(#|[[:space:]]*$)' "$CASES")
echo "1..$PLAN"
T=$(mktemp -d "${TMPDIR:-/tmp}/lwdiff.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT
# LUAC OUT IN: compile IN to bytecode
case $LUA_BIN in
  luajit*) LUAC_FN='LUAC() { luajit -b "$2" "$1"; }' V=jit ;;
  *) LUAC_FN="LUAC() { luac${LUA_BIN#lua} -o \"\$1\" \"\$2\"; }" V=${LUA_BIN#lua} ;;
esac
n=0 failed=0

# run WHO CMD: the case's command with $LUA = WHO, in a fresh directory;
# $T/WHO.out, .err (normalized), .st
run() {
  who=$1 lua=$2 cmd=$3
  rm -rf "$T/w" && mkdir "$T/w" || exit 2
  (cd "$T/w" && LUA=$lua D=$D LWD_PROG=$lua \
    timeout -k 10 60 sh -c "$LUAC_FN; $cmd" \
    >"$T/$who.rawout" 2>"$T/$who.raw" </dev/null)
  echo $? >"$T/$who.st"
  norm "$lua" <"$T/$who.rawout" >"$T/$who.out"
  norm "$lua" <"$T/$who.raw" >"$T/$who.err"
}

# norm PROG: the program name that begins messages made "lua"; lua.c's
# C frame of 5.1 and LuaJIT dropped (both where a traceback is printed
# and where a __close prints the message it got)
norm() {
  awk -v p="$1" '
    index($0, p ": ") == 1 { $0 = "lua: " substr($0, length(p) + 3) }
    /^\t\[C\]: (\?|at 0x[0-9a-f]+)$/ { next }
    { print }'
}

if ! command -v "$LUA_BIN" >/dev/null 2>&1 || [ ! -x "$LW" ]; then
  i=0
  while [ $i -lt $PLAN ]; do
    i=$((i + 1))
    echo "ok $i # SKIP no $LUA_BIN or no $LW"
  done
  exit 0
fi

while IFS= read -r l; do
  case $l in "#"* | "") continue ;; esac
  set -- ${l%%|*}
  name=$1 not=${2#!}
  cmd=${l#*|}
  n=$((n + 1))
  case ",$not," in *",$V,"*)
    echo "ok $n - $name # SKIP a difference on purpose on $V (tests/lua_diff/cases)"
    continue ;;
  esac
  run lua "$LUA_BIN" "$cmd"
  run lw "$LW" "$cmd"
  why=
  cmp -s "$T/lua.out" "$T/lw.out" || why="$why stdout"
  cmp -s "$T/lua.err" "$T/lw.err" || why="$why stderr"
  cmp -s "$T/lua.st" "$T/lw.st" || why="$why status($(cat "$T/lua.st") vs $(cat "$T/lw.st"))"
  if [ -z "$why" ]; then
    echo "ok $n - $name"
  else
    failed=$((failed + 1))
    echo "not ok $n - $name: differs in$why"
    echo "#   $cmd"
    for f in out err; do
      diff "$T/lua.$f" "$T/lw.$f" | head -20 | sed "s/^/#   $f: /"
    done
  fi
done <"$CASES"
[ "$n" = "$PLAN" ] || echo "# ran $n of $PLAN"
[ "$failed" = 0 ]
