#!/bin/sh
# Install from Debian's packages whatever the build and tests need and the
# machine lacks.  Run by tests/run.sh; safe to run again.
#   tests/deps.sh fuzz   also clang and libFuzzer (make fuzz)
need=""
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
command -v cc >/dev/null 2>&1 || need="$need gcc"
for v in 5.1 5.2 5.3 5.4; do
  pkg=liblua$v-dev; [ $v = 5.1 ] && pkg=liblua5.1-0-dev
  have_pc lua$v || need="$need $pkg"
  command -v lua$v >/dev/null 2>&1 || need="$need lua$v"
done
have_pc luajit || need="$need libluajit-5.1-dev"
command -v luajit >/dev/null 2>&1 || need="$need luajit"
have_pc libuv || need="$need libuv1-dev"
have_pc cmocka || need="$need libcmocka-dev"
command -v busted >/dev/null 2>&1 || need="$need lua-busted"
# make bench-smoke (part of make test): the peers it checks, and GNU time
for p in lua-cqueues lua-luv lua-copas time; do
  dpkg -s $p >/dev/null 2>&1 || need="$need $p"
done
# tests/io_http.sh, tests/io_wrk.sh: real HTTP clients against examples/http.lua
# (wrk: also make bench's W6)
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
# packaging checks: luarocks make, the man page's lint
command -v luarocks >/dev/null 2>&1 || need="$need luarocks"
command -v mandoc >/dev/null 2>&1 || need="$need mandoc"
command -v groff >/dev/null 2>&1 || need="$need groff-base"
# the interactive prompt's tests drive it in a terminal (tests/repl.sh);
# its line editing is built in when readline's headers are there
command -v tmux >/dev/null 2>&1 || need="$need tmux"
[ -f /usr/include/readline/readline.h ] || need="$need libreadline-dev"
if [ "$1" = fuzz ]; then
  command -v clang >/dev/null 2>&1 || need="$need clang"
  ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a \
    >/dev/null 2>&1 || need="$need libclang-rt-dev"
fi
if [ -n "$need" ]; then
  echo "deps: installing$need"
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq >/dev/null 2>&1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null 2>&1 ||
    { echo "deps: apt-get install$need failed" >&2; exit 1; }
fi
