#!/bin/sh
# TAP: examples/http.lua served to curl over 127.0.0.1: answers, keep-alive,
# concurrent clients, and the server ends by itself on /quit.
#   LUAWEAVE_BUILD  the build directory (default: build)
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
T=$(mktemp -d "${TMPDIR:-/tmp}/lwhttp.XXXXXX") || exit 2
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT INT TERM
echo "1..9"
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
C="curl -s --max-time 20"

printf 'static file\nsecond line\n' >"$T/file.txt"
"$B/luaweave" examples/http.lua 0 "$T/file.txt" >"$T/out" 2>"$T/err" &
pid=$!
i=0
while [ $i -lt 200 ] && ! grep -q '^listening ' "$T/out"; do sleep 0.1; i=$((i + 1)); done
port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/out")
check "the server prints the port it listens on" [ -n "$port" ]
U="http://127.0.0.1:$port"

$C -i "$U/json" | tr -d '\r' >"$T/json"
check "GET /json: 200, application/json, the body" \
  sh -c 'head -1 "$1" | grep -q "^HTTP/1.1 200 OK$" && grep -q "^Content-Type: application/json$" "$1" &&
    tail -1 "$1" | grep -q "^{\"ok\":true,\"requests\":[0-9]*,\"path\":\"/json\"}$"' - "$T/json"

$C -o "$T/got" "$U/file"
check "GET /file: the file, byte for byte" cmp -s "$T/file.txt" "$T/got"

$C -v "$U/json" "$U/file" >"$T/two" 2>"$T/two.v"
check "keep-alive: two requests on one connection" \
  sh -c 'grep -q "Re-using existing connection" "$1" && [ "$(grep -c "^< HTTP/1.1 200" "$1")" = 2 ] &&
    grep -q "second line" "$2"' - "$T/two.v" "$T/two"

check "an unknown path: 404" sh -c '[ "$($1 -o /dev/null -w "%{http_code}" "$2/nope")" = 404 ]' - "$C" "$U"

$C -I "$U/file" | tr -d '\r' >"$T/head"
check "HEAD: the length, no body" \
  sh -c 'grep -q "^Content-Length: 24$" "$1" && [ "$(tail -1 "$1")" = "" ]' - "$T/head"

seq 1 40 | xargs -P 8 -I{} $C -o /dev/null -w "%{http_code}\n" "$U/json?{}" >"$T/many"
check "40 requests from 8 clients at once: all answered 200" \
  sh -c '[ "$(grep -c "^200$" "$1")" = 40 ]' - "$T/many"

check "GET /quit answers" sh -c '[ "$($1 "$2/quit")" = bye ]' - "$C" "$U"
i=0
while [ $i -lt 200 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
rc=1
if ! kill -0 $pid 2>/dev/null; then wait $pid; rc=$?; pid=; fi
check "the server then ends by itself: exit 0, nothing on stderr (exit $rc)" \
  sh -c '[ "$1" = 0 ] && [ ! -s "$2" ]' - $rc "$T/err"
[ -s "$T/err" ] && sed 's/^/# /' "$T/err"
exit 0
