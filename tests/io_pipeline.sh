#!/bin/sh
# TAP: examples/pipeline.lua streams a file through two child processes
# (sort | gzip) with luaweave.process and luaweave.fs, and checks itself.
#   LUAWEAVE_BUILD  the build directory (default: build)
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
T=$(mktemp -d "${TMPDIR:-/tmp}/lwpipe.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM
echo "1..3"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }

# 30,000 lines in no order (more than a pipe holds, several reads)
awk 'BEGIN { for (i = 0; i < 30000; i++) print (i * 7919) % 30011, "line" }' >"$T/in"
out=$(timeout 120 "$B/luaweave" examples/pipeline.lua "$T/in" "$T/out.gz" 2>&1); rc=$?
check "pipeline.lua exits 0 and says ok (exit $rc)" \
  sh -c '[ "$1" = 0 ] && printf "%s\n" "$2" | grep -q "^ok [0-9]* bytes sorted"' - "$rc" "$out"
sort "$T/in" >"$T/sorted"
check "its output is sort's, gzipped" sh -c 'gzip -dc "$1" | cmp -s - "$2"' - "$T/out.gz" "$T/sorted"
out=$(timeout 60 "$B/luaweave" examples/pipeline.lua "$T/none" "$T/x.gz" 2>&1); rc=$?
check "a missing input fails with its name (exit $rc)" \
  sh -c '[ "$1" = 1 ] && printf "%s\n" "$2" | grep -q "none: no such file or directory"' - "$rc" "$out"
