#!/bin/sh
# TAP: examples/http.lua under wrk (Debian) over 127.0.0.1 with keep-alive:
# every request answered (no socket error, no non-2xx answer), and neither
# descriptors nor memory grow from a first run to a second one.  Nothing
# here judges speed (make bench's W6 does): the bounds are counts, and the
# waits are hang guards only.
#   LUAWEAVE_BUILD  the build directory (default: build)
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
T=$(mktemp -d "${TMPDIR:-/tmp}/lwwrk.XXXXXX") || exit 2
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$T"' EXIT INT TERM
echo "1..9"
. tests/io_http.inc
CONNS=16
# --timeout: a slow answer on a loaded machine is not an error here
WRK="wrk -t1 -c$CONNS --timeout 30s"

fds() { ls "/proc/$pid/fd" 2>/dev/null | wc -l; }
rss() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' "/proc/$pid/status" 2>/dev/null; }
base=$(fds)
# after wrk leaves, the server sees each connection end: wait (a hang
# guard of 30 s) until its descriptors are back to the count before wrk
settle() {
  i=0
  while [ $i -lt 300 ] && [ "$(fds)" -gt "$base" ]; do sleep 0.1; i=$((i + 1)); done
  fds
}
# wrk_ok LOG: requests were answered, none with an error or non-2xx
wrk_ok() {
  grep -q '^ *[1-9][0-9]* requests in' "$1" && ! grep -q 'Socket errors' "$1" &&
    ! grep -q 'Non-2xx' "$1"
}
reqs() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$1"; }

$WRK -d3s "$U/json" >"$T/w1" 2>&1
check "wrk run 1 on /json: $(reqs "$T/w1") requests, all answered 2xx, no socket error" wrk_ok "$T/w1"
f1=$(settle) r1=$(rss)
check "run 1: descriptors back to $base after the clients left ($f1)" [ "$f1" = "$base" ]

$WRK -d3s "$U/json" >"$T/w2" 2>&1
check "wrk run 2 on /json: $(reqs "$T/w2") requests, all answered 2xx, no socket error" wrk_ok "$T/w2"
f2=$(settle) r2=$(rss)
check "run 2: descriptors back to $base ($f2)" [ "$f2" = "$base" ]
# generous: the collector's timing moves RSS some; a leak of a stream or
# buffer per request (100 000s of them) would be many megabytes
check "RSS does not grow from run 1 to run 2 (${r1} KiB, ${r2} KiB; bound +25% +2 MiB)" \
  sh -c '[ -n "$1" ] && [ -n "$2" ] && [ "$2" -le $(($1 + $1 / 4 + 2048)) ]' - "$r1" "$r2"

curl -s --max-time 20 "$U/stats" >"$T/stats"
sreq=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$T/stats")
scon=$(sed -n 's/.*"connections":\([0-9]*\).*/\1/p' "$T/stats")
want=$(($(reqs "$T/w1") + $(reqs "$T/w2")))
# wrk counts the answers it read; the server also counts requests wrk
# sent and stopped waiting for at the end of its time
# connections: wrk's, a few reconnections, curl's; without keep-alive
# there would be one per request
check "keep-alive: the server counted >= $want requests ($sreq) on <= $((4 * CONNS)) connections ($scon)" \
  sh -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" -ge "$3" ] && [ "$2" -le "$4" ]' - "$sreq" "$scon" "$want" $((4 * CONNS))

$WRK -d2s "$U/file" >"$T/w3" 2>&1
check "wrk on /file (fs.readfile per request): $(reqs "$T/w3") requests, all 2xx" wrk_ok "$T/w3"

quit_ends curl -s --max-time 20
for w in w1 w2 w3; do grep -qi 'error\|non-2xx' "$T/$w" && sed 's/^/# /' "$T/$w"; done
exit 0
