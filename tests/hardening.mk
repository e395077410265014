# tests/hardening.mk — included by the Makefile.  The long-running checks
# of the hardening work (docs/reliability.md):
#   make storm   the reuse storm: STORM_N lifecycles (default 10 million),
#                seed STORM_SEED (default: a fresh one, printed)
# A small run is a TAP check of `make test` (tests/storm.sh).
.PHONY: storm

HARD_DEPS = tests/harden.h $(B)/libluaweave.a $(HDRS)

# no test framework: the program prints a report and exits 1 on any
# failure
$(B)/tests/storm: tests/storm.c $(HARD_DEPS)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) -Itests $< -o $@ $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

storm: $(B)/tests/storm
	$(B)/tests/storm $(if $(STORM_N),-n $(STORM_N)) $(if $(STORM_SEED),-s $(STORM_SEED))
