# bench/bench.mk — included by the Makefile.  `make bench`: the side-by-side
# benchmarks (bench/run.sh, docs/performance.md); `make bench-smoke`: each
# workload and implementation at size 1000, answers checked, TAP output.
.PHONY: bench bench-smoke bench-bins bench-luas

BENCH_CFLAGS = $(filter-out -fPIC,$(CFLAGS_ALL))

$(B)/bench/raw: bench/raw.c bench/common.h
	@mkdir -p $(B)/bench
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(LUA_LIBS) -lm $(LDFLAGS)

$(B)/bench/lwc: bench/lwc.c bench/common.h include/luaweave.h $(B)/libluaweave.a
	@mkdir -p $(B)/bench
	$(CC) $(BENCH_CFLAGS) $< -o $@ $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

bench-bins: all $(B)/bench/raw $(B)/bench/lwc

# the CLI for every other installed Lua version (Lua-level rows)
bench-luas:
	@for v in 5.1 5.2 5.3 jit; do \
	  p=lua$$v; [ $$v = jit ] && p=luajit; \
	  if pkg-config --exists $$p; then $(MAKE) --no-print-directory -s LUA=$$v all || exit 1; fi; \
	done

bench: bench-bins bench-luas
	@BENCH_BIN=$(B)/bench sh bench/run.sh

bench-smoke: bench-bins
	@BENCH_BIN=$(B)/bench sh bench/run.sh --smoke
