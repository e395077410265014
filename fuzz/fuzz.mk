# fuzz/fuzz.mk — the differential fuzzer (included by the Makefile).
#   make fuzz [FUZZ_SECONDS=60] [LUA=5.4]   libFuzzer + ASan + UBSan
#   tests-c also builds $(B)/fuzz/replay, which replays fuzz/corpus and
#   fuzz/regress in make test on every Lua version (tests/fuzz.sh)
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_B := build/fuzz/$(LUA)
FUZZ_SAN := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRC := fuzz/fuzz_lw.c fuzz/fuzz_sync.c $(LIB_SRC)

.PHONY: fuzz fuzz-bin
$(FUZZ_B)/fuzz_lw: $(FUZZ_SRC) $(HDRS)
	@sh tests/deps.sh fuzz
	@mkdir -p $(FUZZ_B)
	$(FUZZ_CC) $(WARN) -g -O1 $(FUZZ_SAN) -D_POSIX_C_SOURCE=200809L \
	  -Iinclude -Isrc $(LUADEF) $(LUA_CFLAGS) $(UV_CFLAGS) $(FUZZ_SRC) -o $@ \
	  $(LUA_LIBS) $(UV_LIBS) -lm

fuzz-bin: $(FUZZ_B)/fuzz_lw

# new inputs go to build/ (first directory); the seeds stay as they are
fuzz: $(FUZZ_B)/fuzz_lw
	@mkdir -p $(FUZZ_B)/corpus $(FUZZ_B)/crashes
	$(FUZZ_B)/fuzz_lw fuzz/regress/*
	$(FUZZ_B)/fuzz_lw -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_B)/crashes/ $(FUZZ_B)/corpus fuzz/corpus

$(B)/fuzz/replay: fuzz/replay.c fuzz/fuzz_lw.c fuzz/fuzz_sync.c $(B)/libluaweave.a $(HDRS)
	@mkdir -p $(B)/fuzz
	$(CC) $(CFLAGS_ALL) fuzz/replay.c fuzz/fuzz_lw.c fuzz/fuzz_sync.c -o $@ $(B)/libluaweave.a \
	  $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

tests-c: $(B)/fuzz/replay
