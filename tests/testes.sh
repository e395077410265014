#!/bin/sh
# Lua's own stand-alone interpreter tests (testes/main.lua of the lua/lua
# repository: tag v5.4.4 for Lua 5.4, v5.3.6 for 5.3) run with luaweave
# as the interpreter under test.  The repository holds no copy: the file
# is looked for at $LUAWEAVE_TESTES/<version>/main.lua, else at
# build/testes/<version>/main.lua (docs/cli.md says how to get it).
# Without it, or on another Lua version, the tests are skipped, and say
# why.  The checks that cannot hold for luaweave (docs/cli.md lists each
# with its reason) are taken out of a copy, and that they were found is
# itself a test: an upstream file that changed fails here.  Prints TAP.
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
LW="$(cd "$B" 2>/dev/null && pwd)/luaweave"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
echo "1..2"

case $V in
  5.3|5.4) ;;
  *)
    echo "ok 1 # SKIP Lua's testes/main.lua is run on 5.3 and 5.4 only (this is $V)"
    echo "ok 2 # SKIP Lua's testes/main.lua is run on 5.3 and 5.4 only (this is $V)"
    exit 0 ;;
esac
src=${LUAWEAVE_TESTES:+$LUAWEAVE_TESTES/$V/main.lua}
[ -n "$src" ] && [ -f "$src" ] || src=build/testes/$V/main.lua
if [ ! -f "$src" ]; then
  why="no $src (nor \$LUAWEAVE_TESTES/$V/main.lua): see docs/cli.md"
  echo "ok 1 # SKIP $why"
  echo "ok 2 # SKIP $why"
  exit 0
fi

# the documented exceptions (docs/cli.md): one line of main.lua is not
# run (-h), and the Ctrl-C block's shell line that races (its `echo $!`
# against the script's first print) is replaced by one that prints the
# pid before the interpreter starts (sh -c 'echo $$; exec ...'): the same
# checks, without the race
want=2
cat >"$T/x.awk" <<'AWK'
$0 == "NoRun(\"unrecognized option '-h'\", \"lua -h\")" {
  print "-- luaweave: not run (docs/cli.md): " $0; n++; next }
$0 == "    local shellprg = string.format('%s -e \"%s\" & echo $!', progname, luaprg)" {
  print "-- luaweave: without the race (docs/cli.md): " $0
  print "    local shellprg = string.format([[sh -c 'echo $$; exec \"$0\" \"$@\"' %s -e \"%s\" &]], progname, luaprg)"
  n++; next }
{ print }
END { print n + 0 > "/dev/stderr" }
AWK
awk -f "$T/x.awk" "$src" >"$T/main.lua" 2>"$T/n"
if [ "$(cat "$T/n")" = "$want" ]; then
  echo "ok 1 - the $want documented exceptions are in $src"
else
  echo "not ok 1 - the $want documented exceptions are in $src (found $(cat "$T/n"))"
fi

# main.lua runs the interpreter that runs it (arg[-1]) through
# os.execute; it ends with "OK".  A hang guard, far above its few seconds.
(cd "$T" && env -u LUA_INIT -u LUA_INIT_5_3 -u LUA_INIT_5_4 \
  timeout -k 10 300 "$LW" main.lua) >"$T/out" 2>&1 </dev/null
rc=$?
# (its Ctrl-C block ran: "done (with N kills)")
if [ $rc = 0 ] && tail -1 "$T/out" | grep -q '^OK$' &&
   grep -q '^done (with [0-9]* kills)$' "$T/out"; then
  echo "ok 2 - Lua $V's testes/main.lua passes with luaweave as lua"
else
  echo "not ok 2 - Lua $V's testes/main.lua passes with luaweave as lua (exit $rc)"
  tail -8 "$T/out" | sed 's/^/#   /'
fi
