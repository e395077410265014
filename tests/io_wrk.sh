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
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
CONNS=16
# --timeout: a slow answer on a loaded machine is not an error here
WRK="wrk -t1 -c$CONNS --timeout 30s"

printf 'static file\nsecond line\n' >"$T/file.txt"
"$B/luaweave" examples/http.lua 0 "$T/file.txt" >"$T/out" 2>"$T/err" &
pid=$!
i=0
while [ $i -lt 200 ] && ! grep -q '^listening ' "$T/out"; do sleep 0.1; i=$((i + 1)); done
port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$T/out")
check "the server prints the port it listens on" [ -n "$port" ]
U="http://127.0.0.1:$port"

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

curl -s --max-time 20 "$U/quit" >/dev/null
i=0
while [ $i -lt 300 ] && kill -0 $pid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
rc=1
if ! kill -0 $pid 2>/dev/null; then wait $pid; rc=$?; pid=; fi
check "/quit: the server ends by itself, exit 0, nothing on stderr (exit $rc)" \
  sh -c '[ "$1" = 0 ] && [ ! -s "$2" ]' - $rc "$T/err"
for w in w1 w2 w3; do grep -qi 'error\|non-2xx' "$T/$w" && sed 's/^/# /' "$T/$w"; done
[ -s "$T/err" ] && sed 's/^/# /' "$T/err"
exit 0
