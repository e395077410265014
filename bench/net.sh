#!/bin/sh
# bench/net.sh — W6 and W7 (issue 16), run by bench/run.sh:
#   W6  a keep-alive HTTP server under wrk over 127.0.0.1: requests/s and
#       p99 latency
#   W7  TCP echo throughput over 127.0.0.1, 64 KiB writes: MB/s
# on luaweave.net (lw, bench/net_lw.lua), luv callbacks (luv,
# bench/net_luv.lua) and cqueues sockets (cqueues, bench/net_cq.lua), side
# by side, on Lua 5.4 and LuaJIT.
#
#   sh bench/net.sh bench    BENCH_RUNS (3) runs of each, medians: a table
#                            and bench/results/net.csv
#   sh bench/net.sh smoke    each once, briefly, answers checked
#   sh bench/net.sh --count  how many results smoke and bench print
# Results are lines "ok|what" or "not ok|what" (run.sh numbers them as
# TAP); every other line is the report.  Environment: NET_LUAS ("5.4 jit"),
# NET_SECONDS (wrk's duration, 5), NET_CONNS (wrk's connections, 32),
# NET_BYTES (W7's total, 256 MiB), BENCH_RUNS.
set -u
cd "$(dirname "$0")/.." || exit 2
LUAS=${NET_LUAS:-"5.4 jit"}
IMPLS="lw luv cqueues"
if [ "${1:-}" = --count ]; then
  set -- $LUAS
  echo $(($# * 3 * 2))
  exit 0
fi
MODE=${1:-bench}
if [ "$MODE" = smoke ]; then
  RUNS=1 SECS=1 BYTES=$((64 * 1024 * 64))
else
  RUNS=${BENCH_RUNS:-3} SECS=${NET_SECONDS:-5} BYTES=${NET_BYTES:-$((256 * 1024 * 1024))}
fi
CONNS=${NET_CONNS:-32}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lwnet.XXXXXX") || exit 2
spid=
trap '[ -n "$spid" ] && kill $spid 2>/dev/null; rm -rf "$TMP"' EXIT INT TERM

interp() { [ "$1" = jit ] && echo luajit || echo "lua$1"; }
builddir() { [ "$1" = 5.4 ] && echo build || echo "build/$1"; }

# cmd LUA IMPL: the command that runs IMPL's program, or "skip REASON"
cmd() {
  li=$(interp "$1") bd=$(builddir "$1")
  command -v "$li" >/dev/null || { echo "skip $li not installed"; return; }
  case $2 in
    lw) [ -x "$bd/luaweave" ] && echo "$bd/luaweave bench/net_lw.lua" ||
          echo "skip $bd/luaweave not built (make LUA=$1)" ;;
    luv) "$li" -e 'require "luv"' 2>/dev/null && echo "$li bench/net_luv.lua" ||
          echo "skip luv not installed for $li (Debian lua-luv)" ;;
    cqueues) "$li" -e 'require "cqueues"' 2>/dev/null && echo "$li bench/net_cq.lua" ||
          echo "skip cqueues not installed for $li (Debian lua-cqueues)" ;;
  esac
}

# http_once CMD...: serve, drive with wrk, /quit; sets REQS (requests/s),
# P99 (ms) and WHY (empty when every request was answered 2xx and the
# server ended by itself)
http_once() {
  REQS= P99= WHY=
  : >"$TMP/srv"
  "$@" http >"$TMP/srv" 2>"$TMP/srv.err" &
  spid=$!
  i=0
  while [ $i -lt 300 ] && ! grep -q "^listening " "$TMP/srv"; do sleep 0.1; i=$((i + 1)); done
  port=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$TMP/srv")
  if [ -z "$port" ]; then
    WHY="no port after 30 s: stderr '$(head -c 200 "$TMP/srv.err" | tr '\n' ' ')', $(ps -o stat=,etime=,time=,wchan= -p $spid 2>/dev/null | tr -s ' ')"
  else
    wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 30s --latency "http://127.0.0.1:$port/" >"$TMP/wrk" 2>&1
    REQS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMP/wrk")
    P99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); v += 0
      if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
      printf "%.3f", v }' "$TMP/wrk")
    grep -q 'Socket errors' "$TMP/wrk" && WHY="$(grep 'Socket errors' "$TMP/wrk")"
    grep -q 'Non-2xx' "$TMP/wrk" && WHY="$WHY $(grep 'Non-2xx' "$TMP/wrk")"
    [ -n "$REQS" ] && [ -n "$P99" ] || WHY="$WHY no figures from wrk: $(head -c 200 "$TMP/wrk" | tr '\n' ' ')"
    curl -s --max-time 10 "http://127.0.0.1:$port/quit" >/dev/null
  fi
  i=0
  while [ $i -lt 100 ] && kill -0 $spid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
  if kill -0 $spid 2>/dev/null; then
    WHY="$WHY the server did not end after /quit"
    kill $spid 2>/dev/null
    wait $spid 2>/dev/null
  else
    wait $spid || WHY="$WHY the server exited $?: $(head -c 200 "$TMP/srv.err" | tr '\n' ' ')"
  fi
  spid=
}

# echo_once CMD...: sets MBS (MB/s) and WHY (empty when every byte came back)
echo_once() {
  MBS= WHY=
  timeout 300 "$@" echo "$BYTES" >"$TMP/echo" 2>"$TMP/echo.err"
  st=$?
  got=$(sed -n 's/^answer //p' "$TMP/echo") tm=$(sed -n 's/^time //p' "$TMP/echo")
  if [ "$st" != 0 ] || [ "$got" != "$BYTES" ] || [ -z "$tm" ]; then
    WHY="exit $st, echoed '$got' of $BYTES: $(tail -c 200 "$TMP/echo.err" | tr '\n' ' ')"
  else
    MBS=$(awk -v b="$BYTES" -v t="$tm" 'BEGIN { printf "%.1f", b / 1e6 / t }')
  fi
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

: >"$TMP/csv"
have_wrk=1
command -v wrk >/dev/null || have_wrk=
for w in W6 W7; do
  for v in $LUAS; do
    for im in $IMPLS; do
      c=$(cmd "$v" "$im")
      what="$w lua$v $im"
      case $c in skip*) echo "ok|$what # SKIP ${c#skip }"; continue ;; esac
      if [ $w = W6 ] && [ -z "$have_wrk" ]; then echo "ok|$what # SKIP wrk not installed (Debian wrk)"; continue; fi
      r=1 bad=
      : >"$TMP/a" ; : >"$TMP/b"
      while [ $r -le "$RUNS" ]; do
        # shellcheck disable=SC2086
        if [ $w = W6 ]; then
          http_once $c
          # seen twice on the loaded machine: a server (LuaJIT) not listening
          # after 30 s; a second start tells a slow start from a broken one
          case $WHY in "no port"*) echo "note: $what: $WHY; started again"; http_once $c ;; esac
          echo "$REQS" >>"$TMP/a"; echo "$P99" >>"$TMP/b"
        else echo_once $c; echo "$MBS" >>"$TMP/a"; fi
        [ -n "$WHY" ] && { bad=$WHY; break; }
        r=$((r + 1))
      done
      if [ -n "$bad" ]; then echo "not ok|$what: $bad"; continue; fi
      a=$(median <"$TMP/a") b=$(median <"$TMP/b")
      echo "$w,$v,$im,$a,$b" >>"$TMP/csv"
      if [ $w = W6 ]; then echo "ok|$what: $a requests/s, p99 $b ms, every request answered 2xx"
      else echo "ok|$what: $a MB/s, all $BYTES bytes echoed"; fi
    done
  done
done
[ "$MODE" = smoke ] && exit 0

mkdir -p bench/results
{ echo "workload,lua,impl,value,p99_ms"; cat "$TMP/csv"; } >bench/results/net.csv
# ratio: this row / luaweave's on the same Lua (> 1: the row is ahead)
echo
echo "W6 HTTP keep-alive server under wrk (-t1 -c$CONNS -d${SECS}s, 127.0.0.1), medians of $RUNS runs"
printf '%-5s %-8s %12s %10s %12s\n' lua impl requests/s p99_ms ratio_req/s
awk -F, '$1 == "W6" { if ($3 == "lw") ref[$2] = $4; row[NR] = $0 }
  END { for (i = 1; i <= NR; i++) if (i in row) { split(row[i], f, ",")
    printf "%-5s %-8s %12.0f %10s %12s\n", f[2], f[3], f[4], f[5],
      (ref[f[2]] > 0) ? sprintf("%.2f", f[4] / ref[f[2]]) : "" } }' "$TMP/csv"
echo
echo "W7 TCP echo, client and server in one process, 64 KiB writes, $BYTES bytes, medians of $RUNS runs"
printf '%-5s %-8s %10s %8s\n' lua impl MB/s ratio
awk -F, '$1 == "W7" { if ($3 == "lw") ref[$2] = $4; row[NR] = $0 }
  END { for (i = 1; i <= NR; i++) if (i in row) { split(row[i], f, ",")
    printf "%-5s %-8s %10s %8s\n", f[2], f[3], f[4],
      (ref[f[2]] > 0) ? sprintf("%.2f", f[4] / ref[f[2]]) : "" } }' "$TMP/csv"
echo "wrote bench/results/net.csv"
