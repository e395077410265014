#!/bin/sh
# bench/run.sh — luaweave's benchmark driver (issue 5).
#
#   sh bench/run.sh            every workload, every installed implementation
#                              (raw, lwc: C; lw: the CLI; simple, plain:
#                              Lua-only schedulers; cqueues, luv: peers),
#                              BENCH_RUNS (3) runs each: median time, max RSS,
#                              tables, bench/results/latest.csv and *.png
#   sh bench/run.sh --smoke    every workload and implementation at size 1000,
#                              once, checking each answer; TAP on stdout
#
# Environment: BENCH_SIZES (sizes for every workload on Lua 5.4, e.g.
# "10000 100000"), BENCH_FULL=1 (the issue's full sizes, up to 10M: about
# an hour and 12 GB), BENCH_W1..BENCH_W5 (one workload's sizes),
# BENCH_OTHER (size on the other Lua versions, 100000), BENCH_LUAS
# ("5.4 5.1 5.2 5.3 jit"), BENCH_RUNS (3), BENCH_TIMEOUT (600 s a run),
# BENCH_BIN (where make put raw and lwc: build/bench).
#
# Times are each implementation's own clock around the work: wall time for
# raw, lwc, lw, cqueues and luv, but CPU time (os.clock) for plain, which
# has no other clock.  On a loaded machine these differ, so every row also
# gets cpu_s, the process's user+sys time from /usr/bin/time (start-up and
# setup included), and cpu_ratio, the same ratio on that common basis.
set -u
cd "$(dirname "$0")/.." || exit 2

MODE=bench
[ "${1:-}" = "--smoke" ] && MODE=smoke
BIN=${BENCH_BIN:-build/bench}
OUT=bench/results
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lwbench.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
LUAS=${BENCH_LUAS:-"5.4 5.1 5.2 5.3 jit"}
TIMEOUT=${BENCH_TIMEOUT:-600}

if [ "$MODE" = smoke ]; then
  RUNS=1
  W1S=1000 W2S=1000 W3S=1000 W4S=1000 W5S=1000 OTHER=1000
else
  RUNS=${BENCH_RUNS:-3}
  if [ "${BENCH_FULL:-0}" = 1 ]; then
    W1S="10000 100000 1000000 10000000" W2S="100000 1000000"
    W3S="1000 100000 1000000 10000000" W4S="1000000 10000000"
    W5S="100000 1000000"
  else
    W1S="10000 100000 1000000" W2S="100000 1000000"
    W3S="1000 100000 1000000" W4S="100000 1000000" W5S="100000 1000000"
  fi
  if [ -n "${BENCH_SIZES:-}" ]; then
    W1S=$BENCH_SIZES W2S=$BENCH_SIZES W3S=$BENCH_SIZES W4S=$BENCH_SIZES
    W5S=$BENCH_SIZES
  fi
  W1S=${BENCH_W1:-$W1S} W2S=${BENCH_W2:-$W2S} W3S=${BENCH_W3:-$W3S}
  W4S=${BENCH_W4:-$W4S} W5S=${BENCH_W5:-$W5S}
  OTHER=${BENCH_OTHER:-100000}
fi

say() { [ "$MODE" = smoke ] && echo "# $*" || echo "$*"; }

# ---------------------------------------------------------------- deps
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ "$MODE" = bench ]; then
  missing=
  for p in lua-cqueues lua-luv lua-copas gnuplot-nox time; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
  done
  if [ -n "$missing" ] && command -v apt-get >/dev/null; then
    say "installing:$missing"
    as_root apt-get install -y -q $missing >/dev/null ||
      say "apt-get failed: what is missing is skipped"
  fi
fi
TIME=/usr/bin/time
[ -x "$TIME" ] || TIME=

# ---------------------------------------------------------------- what runs
# lines "lua impl command..." ; the workload and size are appended
interp() { [ "$1" = jit ] && echo luajit || echo "lua$1"; }
builddir() { [ "$1" = 5.4 ] && echo build || echo "build/$1"; }
has_mod() { "$(interp "$1")" -e "require '$2'" >/dev/null 2>&1; }

: >"$TMP/impls"
for v in $LUAS; do
  li=$(interp "$v")
  if ! command -v "$li" >/dev/null; then say "skip Lua $v: $li not installed"; continue; fi
  if [ "$v" = 5.4 ]; then
    for x in raw lwc; do
      [ -x "$BIN/$x" ] || say "skip $x: $BIN/$x not built (make bench builds it)"
    done
    [ -x "$BIN/raw" ] && echo "$v raw $BIN/raw fresh" >>"$TMP/impls" &&
      echo "$v raw-recycle $BIN/raw recycle" >>"$TMP/impls"
    [ -x "$BIN/lwc" ] && echo "$v lwc $BIN/lwc" >>"$TMP/impls"
  fi
  bd=$(builddir "$v")
  if [ -x "$bd/luaweave" ]; then echo "$v lw $bd/luaweave bench/lw.lua" >>"$TMP/impls"
  else say "skip luaweave on Lua $v: $bd/luaweave not built (make LUA=$v)"; fi
  echo "$v simple $li bench/simple.lua" >>"$TMP/impls"
  echo "$v plain $li bench/plain.lua" >>"$TMP/impls"
  if has_mod "$v" cqueues; then echo "$v cqueues $li bench/cq.lua" >>"$TMP/impls"
  else say "skip cqueues on Lua $v: not installed (Debian lua-cqueues)"; fi
  if has_mod "$v" luv; then echo "$v luv $li bench/luv.lua" >>"$TMP/impls"
  else say "skip luv on Lua $v: not installed (Debian lua-luv)"; fi
  if has_mod "$v" copas; then
    say "skip copas on Lua $v: Debian's copas $(dpkg-query -W -f '${Version}' lua-copas 2>/dev/null) has no sleep, wakeup or timers (only sockets), so W1-W5 cannot be written on it"
  else say "skip copas on Lua $v: not installed for it (Debian lua-copas)"; fi
done

# W8 (issue 17): n luv timers awaited by tasks through task.wrap ("lw"),
# against the same timers on bare luv callbacks and on coroutines resumed
# by hand (bench/wrap.lua), wherever luv and luaweave.so are there
: >"$TMP/wraps"
for v in $LUAS; do
  li=$(interp "$v") bd=$(builddir "$v")
  command -v "$li" >/dev/null && [ -f "$bd/luaweave.so" ] && has_mod "$v" luv || continue
  for m in bare coro; do echo "$v luv-$m env LUA_CPATH=$bd/?.so;; $li bench/wrap.lua $m" >>"$TMP/wraps"; done
  echo "$v lw env LUA_CPATH=$bd/?.so;; $li bench/wrap.lua wrap" >>"$TMP/wraps"
done
W8S=${BENCH_W8:-100000}
[ "$MODE" = smoke ] && W8S=1000

# W9 (issue 18): n round trips between two tasks over task.channel (lw,
# bench/pingpong.lua), against cqueues' condition variables (cq-cond) and
# two plain coroutines (coro: the floor), on Lua 5.4 and LuaJIT
: >"$TMP/pongs"
for v in 5.4 jit; do
  case " $LUAS " in *" $v "*) ;; *) continue ;; esac
  li=$(interp "$v") bd=$(builddir "$v")
  command -v "$li" >/dev/null || continue
  [ -f "$bd/luaweave.so" ] && echo "$v lw env LUA_CPATH=$bd/?.so;; $li bench/pingpong.lua lw" >>"$TMP/pongs"
  has_mod "$v" cqueues && echo "$v cq-cond $li bench/pingpong.lua cq" >>"$TMP/pongs"
  echo "$v coro $li bench/pingpong.lua coro" >>"$TMP/pongs"
done
W9S=${BENCH_W9:-100000}
[ "$MODE" = smoke ] && W9S=1000

expect() { # workload n -> the right answer
  case $1 in
    W1) echo $(( $2 / 10 * 10 )) ;;
    W2) echo $(( $2 * ($2 + 1) / 2 )) ;;
    *) echo "$2" ;;
  esac
}

# ---------------------------------------------------------------- running
# raw.csv: workload,lua,impl,size,metric,run,value,rss,cpu (value: s or ns;
# cpu: the process's user+sys seconds, empty without /usr/bin/time)
: >"$TMP/raw.csv"
: >"$TMP/tap"
t=0 fails=0
tap() { t=$((t + 1)); echo "$1 $t - $2" >>"$TMP/tap"; [ "$MODE" = smoke ] && echo "$1 $t - $2"; }

run_one() { # lua impl workload n cmd...
  v=$1 impl=$2 w=$3 n=$4
  shift 4
  r=1
  while [ "$r" -le "$RUNS" ]; do
    if [ -n "$TIME" ]; then
      timeout "$TIMEOUT" "$TIME" -f '%M %U %S' -o "$TMP/rss" "$@" "$w" "$n" >"$TMP/out" 2>"$TMP/err"
    else
      timeout "$TIMEOUT" "$@" "$w" "$n" >"$TMP/out" 2>"$TMP/err"
    fi
    st=$?
    if grep -q '^skip' "$TMP/out"; then
      [ "$r" = 1 ] && tap ok "$w lua$v $impl # SKIP $(sed -n 's/^skip //p' "$TMP/out" | head -1)"
      return
    fi
    ans=$(sed -n 's/^answer //p' "$TMP/out")
    want=$(expect "$w" "$n")
    if [ "$st" != 0 ] || [ "$ans" != "$want" ]; then
      why="exit $st"
      [ "$st" = 124 ] && why="timeout ${TIMEOUT}s"
      tap "not ok" "$w lua$v $impl n=$n: answer '$ans', want $want ($why) $(tail -c 200 "$TMP/err" | tr '\n' ' ')"
      fails=$((fails + 1))
      return
    fi
    rss=$(tail -n 1 "$TMP/rss" 2>/dev/null | awk '{ print $1 + 0 }')
    cpu=$(tail -n 1 "$TMP/rss" 2>/dev/null | awk '{ printf "%.2f", $2 + $3 }')
    [ -n "$rss" ] || rss=0
    [ -n "$cpu" ] || cpu=
    tm=$(sed -n 's/^time //p' "$TMP/out")
    echo "$w,$v,$impl,$n,total,$r,$tm,$rss,$cpu" >>"$TMP/raw.csv"
    sed -n 's/^metric //p' "$TMP/out" | while read -r m val; do
      echo "$w,$v,$impl,$n,$m,$r,$val,$rss,$cpu" >>"$TMP/raw.csv"
    done
    r=$((r + 1))
  done
  tap ok "$w lua$v $impl n=$n answer $ans"
}

start=$(date +%s)
# the plan, up front: in smoke mode one size per workload, so one test per
# workload and implementation (a run that stops early comes out short)
[ "$MODE" = smoke ] && echo "1..$(( $(wc -l <"$TMP/impls") * 5 + $(wc -l <"$TMP/wraps") + $(wc -l <"$TMP/pongs") + $(sh bench/net.sh --count) ))"
for w in W1 W2 W3 W4 W5; do
  eval "sizes=\$${w}S"
  say "running $w ($sizes on Lua 5.4, $OTHER elsewhere)..."
  while read -r v impl cmd; do
    if [ "$v" = 5.4 ]; then ss=$sizes; else ss=$OTHER; fi
    for n in $ss; do
      # shellcheck disable=SC2086
      run_one "$v" "$impl" "$w" "$n" $cmd
    done
  done <"$TMP/impls"
done

say "running W8 ($W8S on Lua 5.4, $OTHER elsewhere)..."
set -f # the LUA_CPATH words hold '?'
while read -r v impl cmd; do
  if [ "$v" = 5.4 ]; then ss=$W8S; else ss=$OTHER; fi
  [ "$MODE" = smoke ] && ss=$W8S
  for n in $ss; do
    # shellcheck disable=SC2086
    run_one "$v" "$impl" W8 "$n" $cmd
  done
done <"$TMP/wraps"
say "running W9 ($W9S)..."
while read -r v impl cmd; do
  # shellcheck disable=SC2086
  run_one "$v" "$impl" W9 "$W9S" $cmd
done <"$TMP/pongs"
set +f

# issue 16's W6 (HTTP under wrk) and W7 (TCP echo): bench/net.sh, its
# results numbered here, its report printed with the others
say "running issue 16's W6, W7 (bench/net.sh)..."
sh bench/net.sh "$MODE" >"$TMP/net"
: >"$TMP/net.txt"
while IFS= read -r l; do
  case $l in
    "ok|"*) tap ok "${l#ok|}" ;;
    "not ok|"*) tap "not ok" "${l#not ok|}"; fails=$((fails + 1)) ;;
    *) echo "$l" >>"$TMP/net.txt" ;;
  esac
done <"$TMP/net"

if [ "$MODE" = smoke ]; then
  [ "$fails" = 0 ] || exit 1
  exit 0
fi

# ---------------------------------------------------------------- report
mkdir -p "$OUT"
# medians; ratio = this row / luaweave's (the CLI for Lua rows, the C API
# for the C rows raw, raw-recycle, lwc)
sort -t, -k1,1 -k2,2 -k3,3 -k4,4n -k5,5 -k7,7g "$TMP/raw.csv" | awk -F, '
  { k = $1 "," $2 "," $3 "," $4 "," $5; v[k, ++c[k]] = $7; r[k, c[k]] = $8
    u[k, c[k]] = $9
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k } }
  END { for (i = 1; i <= nk; i++) { k = order[i]; m = int((c[k] + 1) / 2)
          # RSS: the median of the runs, sorted apart
          n = c[k]; for (a = 1; a <= n; a++) rs[a] = r[k, a] + 0
          for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++)
            if (rs[b] < rs[a]) { x = rs[a]; rs[a] = rs[b]; rs[b] = x }
          # CPU time: likewise
          for (a = 1; a <= n; a++) us[a] = u[k, a]
          for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++)
            if (us[b] + 0 < us[a] + 0) { x = us[a]; us[a] = us[b]; us[b] = x }
          print k "," v[k, m] "," rs[m] "," us[m] } }' >"$TMP/med.csv"
awk -F, '
  { key[NR] = $0; w = $1; lua = $2; im = $3; n = $4; m = $5
    c = (im == "raw" || im == "raw-recycle" || im == "lwc")
    if (im == "lw") { ref[w, lua, n, m, 0] = $6; cref[w, lua, n, m, 0] = $8 }
    if (im == "lwc") { ref[w, lua, n, m, 1] = $6; cref[w, lua, n, m, 1] = $8 }
    if (im == "lwc" && m == "resume_record") ref[w, lua, n, "resume", 1] = $6 }
  END { print "workload,lua,impl,size,metric,median_s,per_thread,maxrss_kib,ratio_to_luaweave,cpu_s,cpu_ratio"
    for (i = 1; i <= NR; i++) { split(key[i], f, ",")
      c = (f[3] == "raw" || f[3] == "raw-recycle" || f[3] == "lwc")
      rv = ref[f[1], f[2], f[4], f[5], c]
      if (f[5] == "total") { s = f[6]; per = f[6] * 1e9 / f[4] }
      else { s = ""; per = f[6] }
      ratio = (rv > 0 && f[5] != "bytes_per_thread") ? sprintf("%.2f", f[6] / rv) : ""
      cr = cref[f[1], f[2], f[4], f[5], c]
      cratio = (f[5] == "total" && f[8] != "" && cr > 0) ? sprintf("%.2f", f[8] / cr) : ""
      printf "%s,%s,%s,%s,%s,%s,%.1f,%s,%s,%s,%s\n", f[1], f[2], f[3], f[4], f[5], s, per, f[7], ratio, f[8], cratio } }' \
  "$TMP/med.csv" >"$OUT/latest.csv"

echo
echo "luaweave benchmarks: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), $RUNS runs each, medians"
echo "ratio = this row's time / luaweave's (CLI for Lua rows, C API for raw/lwc rows): > 1 means luaweave is faster"
echo "cpu_s, cpu_ratio: the process's user+sys seconds (start-up included) and the same ratio on them; plain times itself in CPU seconds, the others in wall time"
for w in W1 W2 W3 W4 W5 W8 W9; do
  echo
  case $w in
    W8) echo "W8 task.wrap on luv: n luv timers, awaited by tasks (lw), on bare callbacks (luv-bare), on coroutines by hand (luv-coro)" ;;
    W9) echo "W9 ping-pong: n round trips (2n messages) between two tasks over task.channel (lw), cqueues condition variables (cq-cond), two plain coroutines (coro; CPU time)" ;;
    W1) echo "W1 lots_of_threads: 10 batches of n/10 tasks, each task.wait(0) once" ;;
    W2) echo "W2 spawn + await: n tasks return 3 values, await each, sum one" ;;
    W3) echo "W3 store operations: ns per operation with n threads tracked (bytes_per_thread: bytes)" ;;
    W4) echo "W4 churn: n tracked short-lived threads, results dropped" ;;
    W5) echo "W5 timers: n delays with deadlines in [0, 50 ms]" ;;
  esac
  if [ "$w" = W3 ]; then
    printf '%-5s %-12s %10s %-16s %10s %8s\n' lua impl size operation ns/op ratio
    awk -F, -v w=$w '$1 == w { printf "%-5s %-12s %10s %-16s %10s %8s\n", $2, $3, $4, $5, $7, $9 }' "$OUT/latest.csv"
    # issue 19's W3 target: the C API's lookup against the bare probe
    awk -F, '$1 == "W3" && $2 == "5.4" && $3 == "lwc" && $5 == "lookup" { l[$4] = $7 }
             $1 == "W3" && $2 == "5.4" && $3 == "raw" && $5 == "probe" { p[$4] = $7 }
             END { for (k in l) if (p[k] > 0)
                     printf "lookup / probe floor at %s: %.2f (lw_status %s ns, bare probe %s ns)\n", k, l[k] / p[k], l[k], p[k] }' \
      "$OUT/latest.csv" | sort -t' ' -k5n
  else
    printf '%-5s %-12s %10s %10s %10s %12s %8s %8s %9s\n' lua impl size median_s ns/thread maxRSS_KiB ratio cpu_s cpu_ratio
    awk -F, -v w=$w '$1 == w && $5 == "total" { printf "%-5s %-12s %10s %10.4f %10s %12s %8s %8s %9s\n", $2, $3, $4, $6, $7, $8, $9, $10, $11 }' "$OUT/latest.csv"
  fi
done

cat "$TMP/net.txt"

# ---------------------------------------------------------------- plots
if command -v gnuplot >/dev/null; then
  plot() { # file title ylabel filter-awk column
    out=$1 title=$2 ylab=$3 filt=$4 col=$5
    files=
    for im in $(awk -F, "NR > 1 && $filt { print \$3 }" "$OUT/latest.csv" | sort -u); do
      awk -F, -v im="$im" "NR > 1 && \$3 == im && $filt { print \$4, \$$col }" \
        "$OUT/latest.csv" >"$TMP/$im.dat"
      files="$files $im"
    done
    [ -n "$files" ] || return
    {
      echo "set terminal pngcairo size 800,500 noenhanced" 2>/dev/null
      echo "set output '$OUT/$out'"
      echo "set title '$title'; set xlabel 'threads'; set ylabel '$ylab'"
      echo "set logscale x; set key left top; set grid"
      printf "plot"
      sep=
      for im in $files; do
        printf "%s '%s' using 1:2 with linespoints title '%s'" "$sep" "$TMP/$im.dat" "$im"
        sep=,
      done
      echo
    } >"$TMP/plot.gp"
    gnuplot "$TMP/plot.gp" 2>/dev/null ||
      { sed -i 's/pngcairo/png/' "$TMP/plot.gp"; gnuplot "$TMP/plot.gp"; }
  }
  plot w1.png "W1 lots_of_threads, Lua 5.4: time per thread" "ns per thread" '$1 == "W1" && $2 == "5.4" && $5 == "total"' 7
  plot w3.png "W3 lookup (lw_status / lw.status / t[co]), Lua 5.4" "ns per lookup" '$1 == "W3" && $2 == "5.4" && $5 == "lookup"' 7
  plot w4.png "W4 churn, Lua 5.4: max RSS" "max RSS (KiB)" '$1 == "W4" && $2 == "5.4" && $5 == "total"' 8
  echo
  echo "wrote $OUT/latest.csv and $OUT/w1.png $OUT/w3.png $OUT/w4.png"
else
  echo "gnuplot not installed: no plots"
fi
echo "$(($(date +%s) - start)) s"
[ "$fails" = 0 ] || { echo "$fails failed runs:"; grep '^not ok' "$TMP/tap"; exit 1; }
