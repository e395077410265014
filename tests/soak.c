/*
** soak.c — the scheduler soak: a Lua state runs a steady population of
** tasks for a given time, the host steps it by hand on the real clock and
** completes async C operations from its own loop, and the process must
** not grow, fail or hand a task a result that is not its own.
**
**   soak [-t SECONDS] [-s SEED] [-p POPULATION]
**        (or SOAK_SECONDS, SOAK_SEED; default 600 s, a fresh seed, 1000)
**
** Inside the state a generator task keeps POPULATION supervisors alive;
** each supervisor starts children (task.spawn, task.defer, task.delay
** with small random deadlines) and checks what task.await, task.any,
** lw.result and lw.take say of them: several returned values with a nil
** among them, errors, cancels, values of async operations, values passed
** by task.spawn(co, ...) to a yielded child.  Every child has a serial
** nobody else has and ends with values or an error that name it, so a
** result of another task is caught.  Some errors go unawaited on purpose:
** the error callback checks that the thread it is told of holds that very
** error.  The host spawns supervisors from C too, and completes the async
** operations (resolve, reject, or through a push function) when they are
** due, also those of tasks cancelled meanwhile.
**
** Reports every tenth of the time (at most every minute): operations, the
** heap (a counting allocator), the RSS now and at its peak.  The RSS at
** the end must be at most 1.2 times the RSS after warm-up (a tenth of the
** time, 1 to 60 s; half of it for runs under 10 s), both read after
** malloc_trim, in runs of 30 s or more.  At the end the generator stops, the host drains the
** scheduler: every task must end, nothing may stay tracked, and lua_close
** must free every block.  Exit 0 when all held, 1 otherwise.
*/
#include "harden.h"

#define MAXMSG 20     /* failure messages printed */
#define RSS_MIN_SECONDS 30 /* shorter runs: no RSS check (see main) */

typedef struct op {
  lw_async *op;
  lua_Integer serial;
  int how;            /* 0 resolve, 1 reject */
  double due;
} op;

static struct {
  hh_heap heap;
  lua_State *L, *X;   /* X: never resumed, for checks inside callbacks */
  lw_sched *S;
  int stats;          /* registry ref: the Lua side's counters */
  int super;          /* registry ref: the supervisor function */
  op *ops;            /* outstanding async operations */
  size_t nops, capops;
  unsigned long long resumptions, steps, host_spawns, resolved, rejected,
    completed_cb, expected_errors, failures, invariant_runs;
} G;

static void failure(const char *fmt, ...) {
  va_list ap;
  if (G.failures++ < MAXMSG) {
    fprintf(stderr, "soak: FAIL ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
}

/* ------------------------------------------------------------------ */
/* what Lua calls                                                      */

static int l_fail(lua_State *L) {
  failure("%s", lua_tostring(L, 1) ? lua_tostring(L, 1) : "(no message)");
  return 0;
}

static int l_rnd(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)hh_below((unsigned)luaL_checkinteger(L, 1)) + 1);
  return 1;
}

/* later(serial, how, seconds): an async C operation the host completes
   `seconds` from now: resolved with (serial, "async", serial + 1), or
   (how 1) rejected with "R<serial>" */
static int l_later(lua_State *L) {
  lua_Integer serial = luaL_checkinteger(L, 1);
  int how = (int)luaL_checkinteger(L, 2);
  double due = lw_sched_now(G.S) + luaL_checknumber(L, 3);
  lw_async *a;
  op *o;
  if (G.nops == G.capops) {
    size_t ncap = G.capops ? G.capops * 2 : 256;
    op *n = (op *)realloc(G.ops, ncap * sizeof *n);
    if (n == NULL) return luaL_error(L, "soak: out of memory");
    G.ops = n;
    G.capops = ncap;
  }
  a = lw_async_begin(L);
  o = &G.ops[G.nops++];
  o->op = a;
  o->serial = serial;
  o->how = how;
  o->due = due;
  return lw_async_yield(L, a);
}

/* ------------------------------------------------------------------ */
/* the Lua side                                                        */

/* the chunk, in pieces (C99 promises string literals of 4095 bytes) */
static const char *const chunk[] = {
  "local task, lw, fail, later, rnd, stats, POP = ...\n"
  "local spawn, defer, delay, wait = task.spawn, task.defer, task.delay, task.wait\n"
  "local await, any, cancel = task.await, task.any, task.cancel\n"
  "local select, error, tostring, yield = select, error, tostring, coroutine.yield\n"
  "local unpack = table.unpack or unpack\n"
  "local serial = 0\n"
  "local function new() serial = serial + 1; return serial end\n"
  "local function ms(n) return 0.001 * (rnd(n + 1) - 1) end\n"
  "local function count(...) return select('#', ...), ... end\n"
  /* start f by one of the three ways, with a small random deadline */
  "local function start(f, ...)\n"
  "  stats.spawns = stats.spawns + 1\n"
  "  local r = rnd(3)\n"
  "  if r == 1 then return spawn(f, ...) elseif r == 2 then return defer(f, ...) end\n"
  "  return delay(ms(5), f, ...)\n"
  "end\n"
  ,
  /* a child; kinds: 0 returns at once, 1 waits then returns, 2 fails, 3
     waits then fails, 4 async resolved, 5 async rejected, 6 yields until
     resumed with its serial, 7 waits a few cycles, 8 waits (too) long,
     9 async that takes (too) long.  Returns are four values, a nil among
     them; 8 and 9 are only ever cancelled. */
  "local function child(s, k, a)\n"
  "  if k == 1 then wait(a)\n"
  "  elseif k == 2 then stats.errors = stats.errors + 1; error('E' .. s, 0)\n"
  "  elseif k == 3 then wait(a); stats.errors = stats.errors + 1; error('E' .. s, 0)\n"
  "  elseif k == 4 or k == 9 then\n"
  "    stats.asyncs = stats.asyncs + 1\n"
  "    local x, y, z, extra = later(s, 0, k == 9 and 1 or a)\n"
  "    if x ~= s or y ~= 'async' or z ~= s + 1 or extra ~= nil then\n"
  "      fail('stale: async of ' .. s .. ' gave ' .. tostring(x) .. ' ' .. tostring(z))\n"
  "    end\n"
  "  elseif k == 5 then stats.asyncs = stats.asyncs + 1; later(s, 1, a)\n"
  "    fail('a rejected async returned')\n"
  "  elseif k == 6 then\n"
  "    local n, v = count(yield())\n"
  "    if n ~= 1 or v ~= s then fail('stale: child ' .. s .. ' resumed with ' .. tostring(v)) end\n"
  "  elseif k == 7 then for i = 1, rnd(3) do wait() end\n"
  "  elseif k == 8 then wait(1000)\n"
  "  end\n"
  "  return s, nil, 'v', s * 2\n"
  "end\n"
  ,
  /* is (n values: ok, ...) what child s of kind k ends with? */
  "local function good(s, k, cancelled, n, ok, a, b, c, d)\n"
  "  if cancelled then return n == 2 and ok == false and a == 'cancelled' end\n"
  "  if k == 2 or k == 3 then return n == 2 and ok == false and a == 'E' .. s end\n"
  "  if k == 5 then return n == 2 and ok == false and a == 'R' .. s end\n"
  "  return n == 5 and ok == true and a == s and b == nil and c == 'v' and d == s * 2\n"
  "end\n"
  "local function check(s, k, cancelled, ...)\n"
  "  stats.checks = stats.checks + 1\n"
  "  if not good(s, k, cancelled, select('#', ...), ...) then\n"
  "    local ok, a = ...\n"
  "    fail(('task %d (kind %d%s) ended with %d values: %s %s'):format(s, k,\n"
  "      cancelled and ', cancelled' or '', select('#', ...), tostring(ok), tostring(a)))\n"
  "  end\n"
  "end\n"
  /* after an await: the store says the same, status included */
  "local function recheck(c, s, k, cancelled)\n"
  "  local st = lw.status(c)\n"
  "  local want = cancelled and 'cancelled' or (k == 2 or k == 3 or k == 5) and 'failed' or 'returned'\n"
  "  if st ~= want then fail('task ' .. s .. ' reads ' .. st .. ', not ' .. want) end\n"
  "  if rnd(2) == 1 then check(s, k, cancelled, lw.result(c))\n"
  "  else check(s, k, cancelled, lw.take(c))\n"
  "    if lw.status(c) ~= 'untracked' then fail('tracked after take') end end\n"
  "end\n"
  ,
  "local ENDS = {0, 1, 2, 3, 4, 5, 7}\n"
  "local function anykind() return ENDS[rnd(#ENDS)] end\n"
  "local function raced(list, ss, ks, who, ...)\n"
  "  local hit\n"
  "  for i = 1, #list do if list[i] == who then hit = i end end\n"
  "  if not hit then fail('stale: task.any returned a stranger'); return end\n"
  "  check(ss[hit], ks[hit], false, ...)\n"
  "  for i = 1, #list do\n"
  "    if i ~= hit then check(ss[i], ks[i], false, await(list[i])) end\n"
  "  end\n"
  "end\n"
  ,
  /* a supervisor: one pattern of starting, awaiting and checking */
  "local live = 0\n"
  "local function supervise(depth)\n"
  "  live = live + 1\n"
  "  local p = rnd(depth > 0 and 6 or 7)\n"
  "  if p == 1 then\n" /* await one child */
  "    local s, k = new(), anykind()\n"
  "    local c = start(child, s, k, ms(5))\n"
  "    if rnd(3) == 1 then wait(ms(3)) end\n"
  "    stats.awaits = stats.awaits + 1\n"
  "    check(s, k, false, await(c))\n"
  "    recheck(c, s, k, false)\n"
  "  elseif p == 2 then\n" /* race several */
  "    local list, ss, ks = {}, {}, {}\n"
  "    for i = 1, 1 + rnd(3) do\n"
  "      ss[i], ks[i] = new(), anykind()\n"
  "      list[i] = start(child, ss[i], ks[i], ms(5))\n"
  "    end\n"
  "    stats.anys = stats.anys + 1\n"
  "    raced(list, ss, ks, any(unpack(list)))\n"
  ,
  "  elseif p == 3 then\n" /* cancel one that cannot end by itself */
  "    local s, k = new(), ({6, 8, 9})[rnd(3)]\n"
  "    local c = spawn(child, s, k, 0)\n"
  "    stats.spawns = stats.spawns + 1\n"
  "    if rnd(2) == 1 then wait(ms(3)) end\n"
  "    cancel(c)\n"
  "    stats.cancels = stats.cancels + 1\n"
  "    check(s, k, true, await(c))\n"
  "    recheck(c, s, k, true)\n"
  "  elseif p == 4 then\n" /* a yielded child resumed with its serial; */
  "    local s = new()\n"       /* or, resumed before its start, given it */
  "    local c = start(child, s, 6, 0)\n"
  "    if rnd(2) == 1 then wait() end\n"
  "    if rnd(2) == 1 then spawn(c, s) else defer(c, s) end\n"
  "    check(s, 6, false, await(c))\n"
  "  elseif p == 5 then\n" /* an error nobody awaits: the callback's */
  "    start(child, new(), 2 + 1 * (rnd(2) - 1), ms(5))\n"
  "    wait(ms(5))\n"
  ,
  "  elseif p == 6 then\n" /* plain waiting */
  "    local t = ms(8)\n"
  "    local e = wait(t)\n"
  "    if type(e) ~= 'number' or e < t then fail('wait(' .. t .. ') gave ' .. tostring(e)) end\n"
  "  else\n" /* fan out to sub-supervisors and await them all */
  "    local list = {}\n"
  "    for i = 1, 1 + rnd(4) do list[i] = start(supervise, depth + 1) end\n"
  "    for i = 1, #list do\n"
  "      local ok = await(list[i])\n"
  "      if not ok then fail('a supervisor failed') end\n"
  "    end\n"
  "  end\n"
  "  live = live - 1\n"
  "end\n"
  ,
  /* the generator: keeps the population up until told to stop */
  "local function generate()\n"
  "  while not stats.stop do\n"
  "    while live < POP do spawn(supervise, 0) end\n"
  "    wait()\n"
  "  end\n"
  "end\n"
  "return generate, supervise, function() return live end\n",
  NULL
};

/* ------------------------------------------------------------------ */
/* the host                                                            */

static int push_resolved(lua_State *T, void *ud) {
  op *o = (op *)ud;
  lua_pushinteger(T, o->serial);
  lua_pushliteral(T, "async");
  lua_pushinteger(T, o->serial + 1);
  return 3;
}

static int push_rejected(lua_State *T, void *ud) {
  op *o = (op *)ud;
  char buf[40];
  snprintf(buf, sizeof buf, "R%lld", (long long)o->serial);
  lua_pushstring(T, buf);
  return -1;
}

/* complete one operation by one of the three ways a host can */
static void complete_one(op *o) {
  lua_State *T = lw_sched_state(G.S);
  int e;
  if (hh_one_in(3)) {
    e = lw_async_complete(o->op, o->how ? push_rejected : push_resolved, o);
    G.completed_cb++;
  } else if (o->how == 0) {
    push_resolved(T, o);
    e = lw_async_resolve(o->op, 3);
  } else {
    push_rejected(T, o);
    e = lw_async_reject(o->op);
  }
  if (o->how) G.rejected++;
  else G.resolved++;
  if (e != LW_OK) failure("completing the async operation of %lld: %d",
                          (long long)o->serial, e);
}

/* complete what is due; an operation is taken out of the list before it
   is completed */
static void complete_due(double now) {
  size_t i = 0;
  while (i < G.nops) {
    op o = G.ops[i];
    if (o.due > now) {
      i++;
      continue;
    }
    G.ops[i] = G.ops[--G.nops];
    complete_one(&o);
  }
}

/* the earliest due time of an outstanding operation, or -1 */
static double next_due(void) {
  double d = -1;
  size_t i;
  for (i = 0; i < G.nops; i++)
    if (d < 0 || G.ops[i].due < d) d = G.ops[i].due;
  return d;
}

/* a supervisor started from C, outside any step */
static void host_spawn(void) {
  lua_State *L = G.L;
  int e;
  lua_rawgeti(L, LUA_REGISTRYINDEX, G.super);
  lua_pushinteger(L, 0);
  e = hh_one_in(2) ? lw_sched_spawn(G.S, L, 1) : lw_sched_defer(G.S, L, 1);
  if (e != LW_OK) failure("spawning from the host: %d", e);
  lua_pop(L, 1);
  G.host_spawns++;
}

/* the error callback: only the planned errors, each told of the thread
   that holds exactly that error */
static void on_error(void *ud, lua_State *co, const char *msg) {
  lua_State *X = G.X;
  char want[40];
  size_t i = 1;
  int n;
  (void)ud;
  if (msg == NULL || (msg[0] != 'E' && msg[0] != 'R') || msg[1] < '1' ||
      msg[1] > '9') {
    failure("unexpected task error: %.300s", msg ? msg : "(null)");
    return;
  }
  while (msg[i] >= '0' && msg[i] <= '9' && i < sizeof want - 1) i++;
  memcpy(want, msg, i);
  want[i] = 0;
  G.expected_errors++;
  n = lw_result(lw_store_get(G.L), co, X);
  if (n != 2 || lua_toboolean(X, 1) || lua_type(X, 2) != LUA_TSTRING ||
      strcmp(lua_tostring(X, 2), want) != 0)
    failure("stale: the error callback names %s, the thread holds %s", want,
            n == 2 && lua_tostring(X, 2) ? lua_tostring(X, 2) : "another result");
  lua_settop(X, 0);
}

static double counter(const char *name) {
  double v;
  lua_rawgeti(G.L, LUA_REGISTRYINDEX, G.stats);
  lua_getfield(G.L, -1, name);
  v = (double)lua_tonumber(G.L, -1);
  lua_pop(G.L, 2);
  return v;
}

static int live(int ref) {
  int n;
  lua_rawgeti(G.L, LUA_REGISTRYINDEX, ref);
  lua_call(G.L, 0, 1);
  n = (int)lua_tointeger(G.L, -1);
  lua_pop(G.L, 1);
  return n;
}

static void check_invariants(void) {
  int e = lw_sched_check_invariants(G.S);
  G.invariant_runs++;
  if (e != 0) failure("lw_sched_check_invariants: line %d", e);
}

static void nap(double seconds) {
  struct timespec ts;
  if (seconds <= 0) return;
  if (seconds > 0.001) seconds = 0.001; /* stay responsive to the host's ops */
  ts.tv_sec = 0;
  ts.tv_nsec = (long)(seconds * 1e9);
  nanosleep(&ts, NULL);
}

/* one turn of the host loop: complete what is due, step, sleep if idle */
static void turn(void) {
  double now = lw_sched_now(G.S), d, due;
  int n;
  complete_due(now);
  n = lw_sched_step(G.S);
  if (n < 0) failure("lw_sched_step: %d", n);
  else G.resumptions += (unsigned long long)n;
  if (++G.steps % 256 == 0) check_invariants();
  d = lw_sched_next(G.S);
  if (d != 0) {
    due = next_due();
    if (due >= 0 && (d < 0 || due - now < d)) d = due - now;
    nap(d < 0 ? 0.001 : d);
  }
}

/* the heap that is in use: after a full collection (the heap at a
   random moment also holds the garbage of the current GC cycle) */
static long long live_heap(void) {
  lua_gc(G.L, LUA_GCCOLLECT, 0);
  return G.heap.bytes;
}

static void report(double t, int liveref) {
  printf("soak: %6.0f s  resumptions %llu  spawns %.0f  awaits %.0f  anys %.0f  "
         "cancels %.0f  errors %.0f  async %.0f  checks %.0f  supervisors %d  "
         "in use %lld KiB  RSS %ld KiB  peak %ld KiB  failures %llu\n", t,
         G.resumptions, counter("spawns") + (double)G.host_spawns, counter("awaits"),
         counter("anys"), counter("cancels"), counter("errors"), counter("asyncs"),
         counter("checks"), live(liveref), live_heap() / 1024, hh_rss_kb(),
         hh_maxrss_kb(), G.failures);
  fflush(stdout);
}

static int panic(lua_State *L) {
  fprintf(stderr, "soak: Lua panic: %s\n", lua_tostring(L, -1));
  exit(3);
  return 0;
}

/* load the chunk; returns the registry ref of the live-count function
   and spawns the generator */
static int open_state(int population) {
  lua_State *L;
  int liveref, i;
  G.L = L = lua_newstate(hh_alloc, &G.heap);
  if (L == NULL) exit(2);
  lua_atpanic(L, panic);
  luaL_openlibs(L);
  lw_preload(L);
  G.S = lw_sched_open(L);
  if (G.S == NULL) exit(2);
  lw_sched_onerror(G.S, on_error, NULL);
  G.X = lua_newthread(L);
  luaL_ref(L, LUA_REGISTRYINDEX);
  {
    luaL_Buffer b;
    size_t len;
    const char *code;
    luaL_buffinit(L, &b);
    for (i = 0; chunk[i] != NULL; i++) luaL_addstring(&b, chunk[i]);
    luaL_pushresult(&b);
    code = lua_tolstring(L, -1, &len);
    if (luaL_loadbuffer(L, code, len, "=soak") != 0) {
      fprintf(stderr, "soak: %s\n", lua_tostring(L, -1));
      exit(2);
    }
    lua_remove(L, -2);
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaweave.task");
  lua_call(L, 1, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaweave");
  lua_call(L, 1, 1);
  lua_pushcfunction(L, l_fail);
  lw_async_wrap(L, l_later);
  lua_pushcfunction(L, l_rnd);
  lua_newtable(L);
  lua_pushvalue(L, -1);
  G.stats = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushinteger(L, population);
  lua_call(L, 7, 3);
  liveref = luaL_ref(L, LUA_REGISTRYINDEX);
  G.super = luaL_ref(L, LUA_REGISTRYINDEX);
  /* the counters start at 0 */
  {
    static const char *const names[] = {"spawns", "awaits", "anys", "cancels",
                                        "errors", "asyncs", "checks", NULL};
    int i;
    lua_rawgeti(L, LUA_REGISTRYINDEX, G.stats);
    for (i = 0; names[i]; i++) {
      lua_pushinteger(L, 0);
      lua_setfield(L, -2, names[i]);
    }
    lua_pop(L, 1);
  }
  /* the generator: anchored by the scheduler while it waits */
  if ((i = lw_sched_spawn(G.S, L, 0)) != LW_OK) {
    fprintf(stderr, "soak: cannot spawn the generator: %d (%s)\n", i, luaL_typename(L, -1));
    exit(2);
  }
  lua_pop(L, 1);
  return liveref;
}

int main(int argc, char **argv) {
  double seconds = (double)hh_num(hh_opt(argc, argv, "-t", "SOAK_SECONDS"), 600);
  int population = (int)hh_num(hh_opt(argc, argv, "-p", "SOAK_POP"), 1000);
  const char *seed_s = hh_opt(argc, argv, "-s", "SOAK_SEED");
  uint64_t seed = seed_s ? (uint64_t)hh_num(seed_s, 0) : hh_fresh_seed();
  double warm = seconds / 10, every = seconds / 10, t0, t, next_report, end;
  long rss_start = 0, rss_end, raw_start = 0, raw_end, max_end;
  long long heap_start = 0, heap_end;
  int liveref, warmed = 0, ok = 1, guard;
  /* the heap's high-water mark (live tasks plus a GC cycle's garbage)
     takes a while to settle: a short run warms up for half its time */
  if (seconds < 10) warm = seconds / 2;
  else if (warm < 1) warm = 1;
  if (warm > 60) warm = 60;
  if (every < 1) every = 1;
  if (every > 60) every = 60;
  hh_seed(seed);
  liveref = open_state(population);
  printf("soak: %s, seed %llu, %.0f s, %d supervisors, warm-up %.0f s\n", HH_LUA,
         (unsigned long long)seed, seconds, population, warm);
  fflush(stdout);
  t0 = hh_now();
  next_report = t0 + every;
  end = t0 + seconds;
  while ((t = hh_now()) < end) {
    turn();
    if (G.steps % 64 == 0) host_spawn();
    if (!warmed && t >= t0 + warm) {
      warmed = 1;
      heap_start = live_heap();
      raw_start = hh_rss_kb();
      hh_trim();
      rss_start = hh_rss_kb();
      printf("soak: warmed up: RSS %ld KiB (%ld KiB before malloc_trim), "
             "heap in use %lld KiB\n", rss_start, raw_start, heap_start / 1024);
    }
    if (t >= next_report) {
      report(t - t0, liveref);
      next_report += every;
    }
  }
  max_end = hh_maxrss_kb();
  heap_end = live_heap();
  raw_end = hh_rss_kb();
  hh_trim();
  rss_end = hh_rss_kb();
  if (!warmed) {
    rss_start = rss_end;
    raw_start = raw_end;
    heap_start = heap_end;
  }
  /* stop the generator; every task must come to an end */
  lua_rawgeti(G.L, LUA_REGISTRYINDEX, G.stats);
  lua_pushboolean(G.L, 1);
  lua_setfield(G.L, -2, "stop");
  lua_pop(G.L, 1);
  for (guard = 0; (lw_sched_ready(G.S) > 0 || G.nops > 0) && guard < 200000; guard++)
    turn();
  check_invariants();
  report(hh_now() - t0, liveref);
  printf("duration:          %.1f s (and %.1f s to drain)\n", seconds,
         hh_now() - end);
  printf("operations:        %llu resumptions in %llu steps; %.0f spawns "
         "(%llu from the host), %.0f awaits, %.0f anys, %.0f cancels, "
         "%.0f errors raised (%llu reported unawaited), %.0f async "
         "operations (%llu resolved, %llu rejected, %llu through a push "
         "function), %.0f results checked\n", G.resumptions, G.steps,
         counter("spawns") + (double)G.host_spawns, G.host_spawns,
         counter("awaits"), counter("anys"), counter("cancels"), counter("errors"),
         G.expected_errors, counter("asyncs"), G.resolved, G.rejected,
         G.completed_cb, counter("checks"));
  printf("RSS:               %ld KiB after warm-up, %ld KiB at the end "
         "(x%.2f), after malloc_trim; before it %ld and %ld KiB; "
         "peak %ld KiB\n", rss_start, rss_end,
         rss_start > 0 ? (double)rss_end / (double)rss_start : 0, raw_start,
         raw_end, max_end);
  printf("heap in use:       %lld KiB after warm-up, %lld KiB at the end, "
         "peak of the heap %lld KiB\n", heap_start / 1024, heap_end / 1024,
         G.heap.peak / 1024);
  printf("invariant checks:  %llu\n", G.invariant_runs);
  printf("failures:          %llu\n", G.failures);
  ok = G.failures == 0;
  if (G.resumptions == 0) {
    printf("soak: FAIL nothing ran\n");
    ok = 0;
  }
  /* the host completes async operations by the wall clock, so how much
     is in flight depends on the machine's load; a run shorter than
     RSS_MIN_SECONDS never settles (a 3 s run on a loaded machine was
     still growing its population at the end of its warm-up).  Leaks
     there are the counting allocator's to find, at lua_close */
  if (seconds < RSS_MIN_SECONDS) {
    printf("soak: RSS check not made: a run under %d s has no steady state\n",
           RSS_MIN_SECONDS);
  } else if (rss_end * 5 > rss_start * 6) {
    printf("soak: FAIL the RSS grew by more than 20%%\n");
    ok = 0;
  }
  if (lw_sched_ready(G.S) || lw_sched_waiting(G.S) || lw_sched_async(G.S) ||
      G.nops || live(liveref)) {
    printf("soak: FAIL the drain left %lu ready, %lu waiting, %lu async, "
           "%d supervisors\n", (unsigned long)lw_sched_ready(G.S),
           (unsigned long)lw_sched_waiting(G.S),
           (unsigned long)lw_sched_async(G.S), live(liveref));
    ok = 0;
  }
  lua_gc(G.L, LUA_GCCOLLECT, 0);
  lua_gc(G.L, LUA_GCCOLLECT, 0);
  if (lw_store_count(lw_store_get(G.L)) != 0 || G.S->s->ntasks != 0) {
    printf("soak: FAIL %lu threads still tracked, %lu task records, after "
           "the drain\n", (unsigned long)lw_store_count(lw_store_get(G.L)),
           (unsigned long)G.S->s->ntasks);
    ok = 0;
  }
  lua_close(G.L);
  if (G.heap.blocks != 0) {
    printf("soak: FAIL lua_close left %lld blocks\n", G.heap.blocks);
    ok = 0;
  }
  free(G.ops);
  printf("soak: seed %llu: %s\n", (unsigned long long)seed, ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
