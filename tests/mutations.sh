#!/bin/sh
# TAP: the mutation list of make mutate (tests/mutations.txt) still fits
# src/: it parses, and every search text occurs exactly once in its file.
# A change of src/ that breaks one goes red here, in make test, and the
# mutation is updated with the code.  (The mutants themselves run in
# make mutate: minutes, not part of make test.)
#   LUAWEAVE_LUA  the Lua interpreter to read the list with (default lua5.4)
cd "$(dirname "$0")/.." || exit 2
LUA=${LUAWEAVE_LUA:-lua5.4}
echo "1..2"
if names=$($LUA tests/mutate.lua names tests/mutations.txt 2>&1); then
  echo "ok 1 - tests/mutations.txt parses ($(echo "$names" | wc -l) mutations)"
else
  echo "not ok 1 - tests/mutations.txt parses"
  echo "$names" | sed 's/^/# /'
fi
if out=$($LUA tests/mutate.lua check tests/mutations.txt . 2>&1); then
  echo "ok 2 - every search text of tests/mutations.txt occurs once in src/"
else
  echo "not ok 2 - every search text of tests/mutations.txt occurs once in src/"
  echo "$out" | sed 's/^/# /'
fi
