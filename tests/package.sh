#!/bin/sh
# TAP: what a user of a released luaweave does.  `make install` into a
# DESTDIR (layout, soname, uninstall), into a prefix of its own (a host
# built with pkg-config against the installed copy, the CLI and the module
# used from there), `luarocks make` offline into a local tree, the man
# page lint-clean, and the version the same everywhere.
#   LUAWEAVE_BUILD  build directory (default: build)
#   LUAWEAVE_V      Lua version: 5.1 5.2 5.3 5.4 (default) or jit
cd "$(dirname "$0")/.." || exit 2
B=${LUAWEAVE_BUILD:-build}
V=${LUAWEAVE_V:-5.4}
CC=${CC:-cc}
if [ "$V" = jit ]; then PC=luajit; LUAV=5.1; LUABIN=luajit; else PC=lua$V; LUAV=$V; LUABIN=lua$V; fi
VERSION=$(sed -n 's/^#define LW_VERSION "\(.*\)"/\1/p' include/luaweave.h)

T=$(mktemp -d "${TMPDIR:-/tmp}/lwpackage.XXXXXX") || exit 2
trap 'rm -rf "$T"' EXIT INT TERM

echo "1..14"
n=0 F=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
nok() { n=$((n + 1)); F=1; echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else nok "$d"; fi; }
mk() { make -s --no-print-directory LUA=$V B=$B "$@"; }

# 1-3: DESTDIR install: every file where it belongs, a versioned soname,
# and uninstall leaves nothing but directories
D=$T/stage
mk install DESTDIR="$D" PREFIX=/usr/local >"$T/install.log" 2>&1
P=$D/usr/local
files="bin/luaweave include/luaweave.h lib/libluaweave.a lib/libluaweave.so
  lib/libluaweave.so.0 lib/libluaweave.so.$VERSION lib/lua/$LUAV/luaweave.so
  lib/pkgconfig/luaweave.pc share/man/man1/luaweave.1"
missing=
for f in $files; do [ -e "$P/$f" ] || missing="$missing $f"; done
check "make install DESTDIR puts every file under PREFIX${missing:+ (missing:$missing)}" [ -z "$missing" ]
soname=$(readelf -d "$P/lib/libluaweave.so.$VERSION" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
check "libluaweave.so.$VERSION has soname libluaweave.so.0 (got '$soname')" [ "$soname" = libluaweave.so.0 ]
mk uninstall DESTDIR="$D" PREFIX=/usr/local >>"$T/install.log" 2>&1
left=$(find "$D" ! -type d | sed "s|$D||")
check "make uninstall removes every file${left:+ (left:$left)}" [ -z "$left" ]

# 4-7: an installed prefix: pkg-config builds a host against it, which
# runs with the installed shared library; the installed CLI and module work
I=$T/prefix
mk install PREFIX="$I" >>"$T/install.log" 2>&1
export PKG_CONFIG_PATH="$I/lib/pkgconfig"
check "pkg-config knows luaweave $VERSION" [ "$(pkg-config --modversion luaweave 2>/dev/null)" = "$VERSION" ]
if $CC -std=c99 -Wall -Wextra -pedantic -Werror -D_POSIX_C_SOURCE=200809L \
     examples/attach.c -o "$T/host" $(pkg-config --cflags --libs luaweave) -lm \
     >"$T/cc.log" 2>&1 &&
   LD_LIBRARY_PATH="$I/lib" ldd "$T/host" | grep -q "$I/lib/libluaweave.so.0" &&
   LD_LIBRARY_PATH="$I/lib" "$T/host" >"$T/host.out" 2>&1; then
  ok "a host built with \$(pkg-config --cflags --libs luaweave) runs on the installed libluaweave.so.0"
else
  nok "a host built with \$(pkg-config --cflags --libs luaweave) runs on the installed libluaweave.so.0"
  sed 's/^/# /' "$T/cc.log" "$T/host.out" 2>/dev/null | head -20
fi
out=$("$I/bin/luaweave" -e 'print(task.await(task.spawn(function() return 6 * 7 end)))' 2>&1)
check "the installed CLI runs a task (got '$out')" [ "$out" = "$(printf 'true\t42')" ]
out=$(LUA_CPATH="$I/lib/lua/$LUAV/?.so" $LUABIN -e \
  'local lw = require "luaweave"; print(lw.run(function() return lw.version end))' 2>&1)
check "the installed module loads from lib/lua/$LUAV (got '$out')" [ "$out" = "$VERSION" ]

# 8-9: luarocks make, offline, into a local tree, from a copy of the sources
if [ "$V" = jit ]; then
  ok "luarocks make # SKIP the rockspec builds for PUC Lua (LuaJIT: make install)"
  ok "require from the luarocks tree # SKIP as above"
else
  mkdir -p "$T/rock" && cp -r src include luaweave-scm-1.rockspec "$T/rock/"
  (cd "$T/rock" && HOME=$T luarocks --lua-version=$V --tree="$T/tree" make \
     luaweave-scm-1.rockspec) >"$T/rock.log" 2>&1
  check "luarocks --lua-version=$V make luaweave-scm-1.rockspec installs into a local tree" \
    [ -f "$T/tree/lib/lua/$V/luaweave.so" ]
  [ -f "$T/tree/lib/lua/$V/luaweave.so" ] || sed 's/^/# /' "$T/rock.log" | tail -15
  out=$(LUA_CPATH="$T/tree/lib/lua/$V/?.so" $LUABIN -e '
    local lw = require "luaweave"; local task = require "luaweave.task"
    print(lw.version, lw.run(function()
      return task.await(task.delay(0.01, function() return "rock" end)) end))' 2>&1)
  check "luaweave and luaweave.task load from the tree and run (got '$out')" \
    [ "$out" = "$(printf '%s\ttrue\trock' "$VERSION")" ]
fi

# 10: the man page is lint-clean
lint=$( { mandoc -T lint -W warning man/luaweave.1; groff -ww -mdoc -z man/luaweave.1; } 2>&1)
check "man/luaweave.1: mandoc -T lint and groff -ww report nothing" [ -z "$lint" ]
[ -z "$lint" ] || echo "$lint" | sed 's/^/# /'

# 11-12: one version everywhere
v_cli=$("$B/luaweave" -v | sed -n 's/^luaweave \([^ ]*\).*/\1/p')
v_pc=$(sed -n 's/^Version: //p' "$I/lib/pkgconfig/luaweave.pc")
v_rock=$(sed -n 's/^luaweave \([0-9][^ ]*\) keeps.*/\1/p' luaweave-scm-1.rockspec)
v_log=$(sed -n 's/^## \([0-9][^ ]*\).*/\1/p' CHANGELOG.md | head -1)
v_man=$(grep -c "^.Dt LUAWEAVE 1" man/luaweave.1)
check "luaweave.h $VERSION = luaweave -v ($v_cli) = luaweave.pc ($v_pc) = rockspec ($v_rock) = CHANGELOG ($v_log)" \
  [ "$v_cli" = "$VERSION" -a "$v_pc" = "$VERSION" -a "$v_rock" = "$VERSION" -a "$v_log" = "$VERSION" -a "$v_man" = 1 ]
h=$(sed -n 's/^#define LW_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' include/luaweave.h | paste -sd. -)
check "LW_VERSION_MAJOR.MINOR.PATCH ($h) = LW_VERSION ($VERSION)" [ "$h" = "$VERSION" ]

# 13-14: the shared library exports the public face and nothing else; the
# rockspec builds the same sources as the Makefile
pub=$(grep -o '^LW_API [^(]*(' include/luaweave.h | sed 's/.*[ *]\([a-z_0-9]*\)($/\1/' | sort)
exp=$(nm -D --defined-only "$B/libluaweave.so" | awk '$2 == "T" || $2 == "D" || $2 == "B" || $2 == "R" {print $3}' | sort)
extra=$(printf '%s\n' "$exp" | grep -vxF "$pub")
check "libluaweave.so exports only luaweave.h's $(echo "$pub" | wc -l) functions${extra:+ (also: $(echo $extra))}" \
  [ -z "$extra" -a "$(echo "$pub" | wc -l)" -gt 40 -a "$pub" = "$exp" ]
mk=$(sed -n '/^LIB_SRC :=/,/[^\\]$/p' Makefile | grep -o 'src/[a-z_]*\.c' | sort)
rs=$(grep -o '"src/[a-z_]*\.c"' luaweave-scm-1.rockspec | tr -d '"' | sort)
check "the rockspec's sources are the Makefile's LIB_SRC" [ -n "$mk" -a "$mk" = "$rs" ]
exit $F
