#!/bin/sh
# TAP: the fuzzer's seed corpus and every regression input, replayed on
# this Lua version without libFuzzer (fuzz/replay.c): each input runs its
# operations against luaweave and the model and must agree to the end.
#   LUAWEAVE_BUILD  the build directory (default: build)
#   LUAWEAVE_V      the Lua version (default 5.4)
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
R=$B/fuzz/replay
files=$(ls fuzz/regress/* fuzz/corpus/* 2>/dev/null)
echo "1..$(( $(echo $files | wc -w) + 1 ))"
n=1
if [ -x "$R" ]; then echo "ok 1 - fuzz/replay built ($V)"; else echo "not ok 1 - fuzz/replay built ($V)"; fi
for f in $files; do
  n=$((n + 1))
  if out=$("$R" "$f" 2>&1); then
    echo "ok $n - $f agrees with the model ($V)"
  else
    echo "not ok $n - $f agrees with the model ($V)"
    echo "$out" | head -8 | sed 's/^/# /'
  fi
done
