# luaweave — see README.md.  `make` builds for Lua 5.4 into build/;
# `make LUA=5.1|5.2|5.3|jit` builds the same names under build/$(LUA)/.

LUA ?= 5.4
ifeq ($(LUA),5.4)
  B ?= build
else
  B ?= build/$(LUA)
endif
ifeq ($(LUA),jit)
  LUAPC := luajit
  LUABIN := luajit
  LUADEF := -DLW_LUAJIT
else
  LUAPC := lua$(LUA)
  LUABIN := lua$(LUA)
  LUADEF :=
endif

CC ?= cc
WARN := -std=c99 -Wall -Wextra -pedantic -Werror
OPT ?= -O2 -g
LUA_CFLAGS := $(shell pkg-config --cflags $(LUAPC) 2>/dev/null)
LUA_LIBS := $(shell pkg-config --libs $(LUAPC) 2>/dev/null)
UV_CFLAGS := $(shell pkg-config --cflags libuv 2>/dev/null)
UV_LIBS := $(shell pkg-config --libs libuv 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
CFLAGS_ALL = $(WARN) $(OPT) -fPIC -fvisibility=hidden -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc \
  $(LUADEF) $(LUA_CFLAGS) $(UV_CFLAGS) $(CFLAGS)

LIB_SRC := src/lw_compat.c src/lw_error.c src/lw_map.c src/lw_store.c src/lw_store_cvals.c \
  src/lw_store_life.c src/lw_store_end.c src/lw_handle.c \
  src/lw_timerq.c \
  src/lw_sched.c src/lw_sched_spawn.c src/lw_sched_end.c src/lw_sched_await.c src/lw_sched_async.c \
  src/lw_sched_pool.c src/lw_sched_life.c src/lw_sched_host.c \
  src/lw_loop.c src/lw_lua.c src/lw_lua_task.c src/lw_lua_wrap.c src/lw_luv.c \
  src/lw_lua_sync.c src/lw_lua_group.c src/lw_lua_info.c src/lw_fs.c \
  src/lw_io.c src/lw_stream.c src/lw_net.c src/lw_process.c \
  src/lw_stdio.c src/lw_signal.c src/lw_fs_ops.c src/lw_udp.c
LIB_OBJ := $(patsubst src/%.c,$(B)/obj/%.o,$(LIB_SRC))
HDRS := $(wildcard include/*.h src/*.h)

# installation (GNU conventions); the Lua module goes where this Lua
# version looks for C modules (LuaJIT shares 5.1's)
PREFIX ?= /usr/local
DESTDIR ?=
bindir = $(PREFIX)/bin
includedir = $(PREFIX)/include
libdir = $(PREFIX)/lib
mandir = $(PREFIX)/share/man
LUAV := $(if $(filter jit,$(LUA)),5.1,$(LUA))
cmoddir = $(libdir)/lua/$(LUAV)
# the version lives in luaweave.h only
VERSION := $(shell sed -n 's/^\#define LW_VERSION "\(.*\)"/\1/p' include/luaweave.h)
SOMAJOR := $(shell sed -n 's/^\#define LW_VERSION_MAJOR \([0-9]*\)/\1/p' include/luaweave.h)

.PHONY: all test sanitize valgrind run clean tests-c install uninstall examples help
all: $(B)/luaweave.so $(B)/libluaweave.a $(B)/libluaweave.so $(B)/luaweave

help:
	@echo 'make [LUA=5.1|5.2|5.3|5.4|jit]   build the CLI, module and C libraries into $(B)/'
	@echo 'make test        every suite on every installed Lua version (installs deps);'
	@echo '                 ends with "N passed, N failed, N skipped"'
	@echo 'make run         build and run the demo (examples/demo.lua)'
	@echo 'make sanitize    the C tests under ASan+UBSan on every Lua version'
	@echo 'make valgrind    the C tests and the demo under valgrind'
	@echo 'make fuzz        the differential fuzzer [FUZZ_SECONDS=60]'
	@echo 'make mutate      mutation testing of src/ against the deterministic suites'
	@echo 'make bench       the benchmarks side by side (docs/performance.md)'
	@echo 'make storm|soak  the long reliability runs (docs/reliability.md)'
	@echo 'make examples    build the C examples into $(B)/examples/'
	@echo 'make install [PREFIX=/usr/local] [DESTDIR=]   and make uninstall'
	@echo 'make clean       remove build/'
$(B)/obj/%.o: src/%.c $(HDRS) | $(B)/obj
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/obj:
	mkdir -p $@

# the module: Lua's symbols come from the interpreter that loads it
$(B)/luaweave.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(UV_LIBS) -lm $(LDFLAGS)

$(B)/libluaweave.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

CLI_SRC := src/lw_cli.c src/lw_cli_run.c src/lw_cli_repl.c
CLI_OBJ := $(patsubst src/%.c,$(B)/obj/%.o,$(CLI_SRC))
# the prompt's line editing: Debian's readline when its headers are there
# (libreadline-dev), else none; READLINE=no builds without it
READLINE ?= $(shell test -f /usr/include/readline/readline.h && echo yes)
ifeq ($(READLINE),yes)
  CLI_DEFS := -DLW_READLINE
  CLI_LIBS := -lreadline
endif

$(B)/obj/lw_cli_repl.o: src/lw_cli_repl.c $(HDRS) | $(B)/obj
	$(CC) $(CFLAGS_ALL) $(CLI_DEFS) -c $< -o $@

$(B)/luaweave: $(CLI_OBJ) $(B)/libluaweave.a
	$(CC) -o $@ $(CLI_OBJ) $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) $(CLI_LIBS) -lm $(LDFLAGS)

$(B)/libluaweave.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,libluaweave.so.$(SOMAJOR) -o $@ $^ $(LUA_LIBS) $(UV_LIBS) $(LDFLAGS)

install: all
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(includedir) \
	  $(DESTDIR)$(libdir)/pkgconfig $(DESTDIR)$(cmoddir) $(DESTDIR)$(mandir)/man1
	install -m 755 $(B)/luaweave $(DESTDIR)$(bindir)/luaweave
	install -m 644 include/luaweave.h $(DESTDIR)$(includedir)/luaweave.h
	install -m 644 $(B)/libluaweave.a $(DESTDIR)$(libdir)/libluaweave.a
	install -m 755 $(B)/libluaweave.so $(DESTDIR)$(libdir)/libluaweave.so.$(VERSION)
	ln -sf libluaweave.so.$(VERSION) $(DESTDIR)$(libdir)/libluaweave.so.$(SOMAJOR)
	ln -sf libluaweave.so.$(SOMAJOR) $(DESTDIR)$(libdir)/libluaweave.so
	install -m 755 $(B)/luaweave.so $(DESTDIR)$(cmoddir)/luaweave.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' \
	  -e 's|@LUAPC@|$(LUAPC)|' -e 's|@LUAV@|$(LUAV)|' luaweave.pc.in \
	  >$(DESTDIR)$(libdir)/pkgconfig/luaweave.pc
	install -m 644 man/luaweave.1 $(DESTDIR)$(mandir)/man1/luaweave.1

uninstall:
	rm -f $(DESTDIR)$(bindir)/luaweave $(DESTDIR)$(includedir)/luaweave.h \
	  $(DESTDIR)$(libdir)/libluaweave.a $(DESTDIR)$(libdir)/libluaweave.so \
	  $(DESTDIR)$(libdir)/libluaweave.so.$(SOMAJOR) \
	  $(DESTDIR)$(libdir)/libluaweave.so.$(VERSION) \
	  $(DESTDIR)$(cmoddir)/luaweave.so $(DESTDIR)$(libdir)/pkgconfig/luaweave.pc \
	  $(DESTDIR)$(mandir)/man1/luaweave.1

# examples: programs a user would write, so only the public header
EX_SRC := $(wildcard examples/*.c)
EX_BIN := $(patsubst examples/%.c,$(B)/examples/%,$(EX_SRC))

$(B)/examples/%: examples/%.c include/luaweave.h $(B)/libluaweave.a
	@mkdir -p $(B)/examples
	$(CC) $(WARN) $(OPT) -D_POSIX_C_SOURCE=200809L -Iinclude $(LUA_CFLAGS) \
	  $(UV_CFLAGS) $(CFLAGS) $< -o $@ $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

examples: $(EX_BIN)

# C tests: one binary per file in tests/test_*.c
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))

$(B)/tests/%: tests/%.c tests/lwtest.h tests/lwtsched.h $(B)/libluaweave.a $(HDRS)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) -Itests $< -o $@ $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) $(CMOCKA_LIBS) -lm $(TEST_LDFLAGS) $(LDFLAGS)

tests-c: $(TEST_BIN)

# the allocation sweeps also fail luaweave's own malloc (and libuv's)
$(B)/tests/test_oom: TEST_LDFLAGS = -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free

test:
	@sh tests/run.sh

sanitize:
	@sh tests/run.sh --sanitize

# the C tests and the demo under valgrind, on one Lua version
valgrind: all tests-c
	@for t in $(TEST_BIN); do \
	  echo "valgrind $$t"; \
	  LWT_SWEEP_STRIDE=7 timeout -k 30 3600 valgrind -q --leak-check=full --error-exitcode=9 $$t >/dev/null || exit 1; \
	done
	@timeout -k 30 1800 valgrind -q --leak-check=full --error-exitcode=9 $(B)/luaweave examples/demo.lua >/dev/null
	@echo "valgrind: clean"

# the demo; installs what the build needs first (a fresh machine works)
run:
	@sh tests/deps.sh
	@$(MAKE) --no-print-directory -s LUA=$(LUA) all
	$(B)/luaweave examples/demo.lua

clean:
	rm -rf build

# suites kept in their own directories: benchmarks and fuzzing
-include bench/bench.mk
-include fuzz/fuzz.mk
-include tests/hardening.mk
