#!/bin/sh
# TAP: every code sample in README.md and docs/ is run.
#   lua   run by the CLI as the main task (tests/docrun.lua), its
#         "expr --> values" comments checked; exit 0, stderr empty
#   c     a whole program (it has main) is compiled and run: exit 0;
#         an excerpt must appear verbatim in an examples/*.c file, which
#         tests/examples.sh builds and runs
#   sh    `make X` names a real target; `build/luaweave ...` runs when its
#         files exist (else it is a placeholder, skipped)
#   LUAWEAVE_BUILD, LUAWEAVE_V as for the other suites
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
CC=${CC:-cc}
if [ "$V" = jit ]; then PC=luajit; else PC=lua$V; fi
T=$(mktemp -d "${TMPDIR:-/tmp}/lwdocs.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM

# split the fenced blocks: $T/<k>.<lang>, and "k lang file:line" in $T/list
k=0
for f in README.md docs/*.md docs/examples/*.md; do
  [ -f "$f" ] || continue
  awk -v dir="$T" -v f="$f" -v k0=$k '
    /^```[a-z]+$/ && !inb { inb = 1; k0++; lang = substr($0, 4);
      out = dir "/" k0 "." lang; print k0, lang, f ":" NR >> (dir "/list"); next }
    /^```$/ && inb { inb = 0; close(out); next }
    inb { print > out }
    END { print k0 > (dir "/count") }' "$f"
  k=$(cat "$T/count")
done

echo "1..$(( $(wc -l <"$T/list") + 1 ))"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }

while read -r i lang where; do
  b="$T/$i.$lang"
  case $lang in
  lua)
    LUA_CPATH="$B/?.so;;" "$B/luaweave" tests/docrun.lua "$b" >"$T/out" 2>"$T/err"
    rc=$?
    if [ $rc = 0 ] && [ ! -s "$T/err" ]; then
      ok "$where (lua): runs, $(sed -n 's/^docrun: .*: \([0-9]*\) documented.*/\1/p' "$T/out") results as documented"
    else
      nok "$where (lua): exit $rc"; sed 's/^/# /' "$T/out" "$T/err" | head -20
    fi ;;
  c)
    if grep -q "int main" "$b"; then
      if $CC -std=c99 -Wall -Wextra -pedantic -Werror -D_POSIX_C_SOURCE=200809L -x c "$b" -x none \
           -Iinclude -o "$T/prog" "$B/libluaweave.a" $(pkg-config --cflags --libs $PC libuv) -lm \
           >"$T/cc.log" 2>&1 && "$T/prog" >"$T/out" 2>&1; then
        ok "$where (c): a whole program, compiled and run"
      else
        nok "$where (c): does not build or run"; sed 's/^/# /' "$T/cc.log" "$T/out" | cut -c1-200 | head -20
      fi
    else
      found=
      for e in examples/*.c; do
        if LC_ALL=C awk -v blk="$b" 'BEGIN { while ((getline l < blk) > 0) want = want l "\n" }
             { all = all $0 "\n" } END { exit index(all, want) ? 0 : 1 }' "$e"; then
          found=$e; break
        fi
      done
      if [ -n "$found" ]; then ok "$where (c): an excerpt of $found, verbatim"
      else nok "$where (c): an excerpt found in no examples/*.c file"; sed 's/^/# /' "$b"; fi
    fi ;;
  sh)
    bad=
    while read -r line; do
      cmd=${line%%#*}
      # VAR=value settings before the command are the environment
      cmd=$(echo "$cmd" | sed -E 's/^ *([A-Z_][A-Z0-9_]*=("[^"]*"|[^ "]*) +)*//')
      set -- $cmd
      [ $# = 0 ] && continue
      case $1 in
      make) make -n "${2:-all}" >/dev/null 2>&1 || bad="$bad [$cmd]" ;;
      build/luaweave)
        shift; run=1
        for a in "$@"; do [ -e "$a" ] || run=0; done
        if [ $run = 1 ]; then "$B/luaweave" "$@" >/dev/null 2>&1 || bad="$bad [$cmd]"; fi ;;
      *) bad="$bad [unknown: $cmd]" ;;
      esac
    done <"$b"
    if [ -z "$bad" ]; then ok "$where (sh): every command is real"
    else nok "$where (sh):$bad"; fi ;;
  *) nok "$where: a $lang block, which no test runs" ;;
  esac
done <"$T/list"

# the reference names every public function of luaweave.h
missing=
for f in $(grep -o '\b\(lw_[a-z_]*\|luaopen_[a-z_]*\)(' include/luaweave.h | tr -d '(' | sort -u); do
  grep -q "$f" docs/api.md || missing="$missing $f"
done
if [ -z "$missing" ]; then ok "docs/api.md names every function of luaweave.h"
else nok "docs/api.md lacks:$missing"; fi
exit $F
