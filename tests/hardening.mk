# tests/hardening.mk — included by the Makefile.  The long-running checks
# of the hardening work (docs/reliability.md):
#   make storm   the reuse storm: STORM_N lifecycles (default 10 million),
#                seed STORM_SEED (default: a fresh one, printed)
#   make soak    the scheduler soak: SOAK_SECONDS (default 600), seed
#                SOAK_SEED
# Small runs of both are TAP checks of `make test` (tests/storm.sh,
# tests/soak.sh).
.PHONY: storm soak

HARD_DEPS = tests/harden.h $(B)/libluaweave.a $(HDRS)

# no test framework: each program prints a report and exits 1 on any
# failure
$(B)/tests/storm: tests/storm.c $(HARD_DEPS)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) -Itests $< -o $@ $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

storm: $(B)/tests/storm
	$(B)/tests/storm $(if $(STORM_N),-n $(STORM_N)) $(if $(STORM_SEED),-s $(STORM_SEED))

$(B)/tests/soak: tests/soak.c $(HARD_DEPS)
	@mkdir -p $(B)/tests
	$(CC) $(CFLAGS_ALL) -Itests $< -o $@ $(B)/libluaweave.a $(LUA_LIBS) $(UV_LIBS) -lm $(LDFLAGS)

soak: $(B)/tests/soak
	$(B)/tests/soak $(if $(SOAK_SECONDS),-t $(SOAK_SECONDS)) $(if $(SOAK_SEED),-s $(SOAK_SEED))

# make mutate: every mutation of tests/mutations.txt applied alone to a
# scratch copy of the tree and run against the deterministic suites on
# Lua 5.4; lists the survivors, exits 1 if any (tests/mutate)
.PHONY: mutate
mutate:
	@sh tests/mutate
