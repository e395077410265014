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
C="curl -s --max-time 20"
. tests/io_http.inc

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

quit_ends $C
check "GET /quit answers" [ "$(cat "$T/quit")" = bye ]
exit 0
