/*
** bench/lwc.c — W1–W5 through luaweave's C API: tasks spawned, delayed
** and stepped from C (lw_sched_*), the store used directly (lw_track,
** lw_resume, lw_status, lw_result, lw_take, lw_untrack).
*/
#include "common.h"
#include <luaweave.h>

static lw_sched *sched(lua_State *L) {
  lw_sched *S;
  lw_preload(L);
  S = lw_sched_open(L);
  if (S == NULL) exit(2);
  return S;
}

static void run(lw_sched *S) {
  int st = lw_sched_run(S);
  if (st != LW_OK) {
    fprintf(stderr, "lw_sched_run: %s\n", lw_strerror(st));
    exit(2);
  }
}

/* W1: 10 batches of n/10 tasks spawned from C; each waits once, counts;
   the C loop is the batch's parent: it runs the scheduler until the
   batch is done */
static void w1(lua_State *L, long n) {
  lw_sched *S = sched(L);
  long per = n / 10, b, i;
  double t0;
  load_fn(L, "local wait, n = require('luaweave.task').wait, 0 "
             "count = function() return n end "
             "return function() wait(0) n = n + 1 end");
  t0 = now_s();
  for (b = 0; b < 10; b++) {
    for (i = 0; i < per; i++) {
      lua_pushvalue(L, -1);
      if (lw_sched_spawn(S, L, 0) != LW_OK) exit(2);
      lua_pop(L, 1);
    }
    run(S);
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %ld\n", get_count(L, "count"));
}

/* W2: n tasks return 3 values, kept in a table; then each result is read
   (lw_result: what task.await returns) and the second value summed */
static void w2(lua_State *L, long n) {
  lw_sched *S = sched(L);
  lw_store *s = lw_store_get(L);
  long i;
  int t;
  double t0, sum = 0;
  load_fn(L, "return function(i) return 'x', i, true end");
  lua_createtable(L, (int)n, 0);
  t = lua_gettop(L);
  t0 = now_s();
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, t - 1);
    lua_pushinteger(L, (lua_Integer)i);
    if (lw_sched_spawn(S, L, 1) != LW_OK) exit(2);
    lua_rawseti(L, t, (lua_Integer)i);
  }
  run(S);
  for (i = 1; i <= n; i++) {
    lua_State *co;
    lua_rawgeti(L, t, (lua_Integer)i);
    co = lua_tothread(L, -1);
    if (lw_result(s, co, L) != 4) exit(3);
    sum += lua_tonumber(L, -2);
    lua_pop(L, 5);
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %.0f\n", sum);
}

/* W3: ns per store operation with n threads tracked */
#define TIMED(name, body)                                           \
  do {                                                              \
    double t0_ = now_s(), d_;                                       \
    for (i = 0; i < n; i++) { body; }                               \
    d_ = now_s() - t0_;                                             \
    total += d_;                                                    \
    printf("metric %s %.2f\n", name, d_ * 1e9 / (double)n);         \
  } while (0)

static void w3(lua_State *L, long n) {
  lw_store *s = lw_store_open(L);
  lua_State **co = malloc(sizeof *co * (size_t)(n > 0 ? n : 1));
  long i, ok = 0;
  int t, nres, base;
  double total = 0, kb0, kb1;
  if (s == NULL || co == NULL) exit(2);
  load_fn(L, "local yield = coroutine.yield "
             "return function() while true do yield(1) end end");
  lua_createtable(L, (int)n, 0);
  t = lua_gettop(L);
  for (i = 0; i < n; i++) {
    co[i] = lua_newthread(L);
    lua_rawseti(L, t, (lua_Integer)i + 1);
    lua_pushvalue(L, t - 1);
    lua_xmove(L, co[i], 1);
  }
  shuffle(co, n);
  base = lua_gettop(L);
  lua_gc(L, LUA_GCCOLLECT, 0);
  kb0 = lua_gc(L, LUA_GCCOUNT, 0) * 1024.0 + lua_gc(L, LUA_GCCOUNTB, 0);
  TIMED("track", if (lw_track(s, co[i]) == LW_OK) ok++);
  lua_gc(L, LUA_GCCOLLECT, 0);
  kb1 = lua_gc(L, LUA_GCCOUNT, 0) * 1024.0 + lua_gc(L, LUA_GCCOUNTB, 0);
  printf("metric bytes_per_thread %.1f\n",
         ((double)lw_store_bytes(s) + (kb1 - kb0)) / (double)lw_store_count(s));
  TIMED("resume_record", if (lw_resume(s, co[i], L, 0, &nres) == LUA_YIELD) ok++);
  TIMED("lookup", if (lw_status(s, co[i]) == LW_YIELDED) ok++);
  TIMED("result", if (lw_result(s, co[i], L) == 2) ok++; lua_settop(L, base));
  TIMED("take", if (lw_take(s, co[i], L) == 2) ok++; lua_settop(L, base));
  for (i = 0; i < n; i++) lw_track(s, co[i]);
  TIMED("untrack", if (lw_untrack(s, co[i]) == LW_OK) ok++);
  printf("time %.9f\n", total);
  /* exact: a single failed operation of the 6n makes it differ from n */
  printf("answer %.17g\n", (double)ok / 6);
  free(co);
}

/* W4: n tracked short-lived threads; their results are never asked for */
static void w4(lua_State *L, long n) {
  lw_store *s = lw_store_open(L);
  long i;
  int nres;
  double t0;
  if (s == NULL) exit(2);
  load_fn(L, "local n = 0 count = function() return n end "
             "return function(i) n = n + 1 return i end");
  t0 = now_s();
  for (i = 1; i <= n; i++) {
    lua_State *co = lua_newthread(L);
    lua_pushvalue(L, -2);
    lua_pushinteger(L, (lua_Integer)i);
    lua_xmove(L, co, 2);
    if (lw_track(s, co) != LW_OK || lw_resume(s, co, L, 1, &nres) != LUA_OK)
      exit(3);
    lua_pop(L, 1); /* the thread and its result are the GC's now */
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %ld\n", get_count(L, "count"));
}

/* W5: n lw_sched_delay with deadlines in [0, 50 ms]; the answer counts
   the timers that fired in deadline order (as in bench/lw.lua: creating
   them took span seconds, timer i is due in [t0 + d_i, t0 + span + d_i]) */
static void w5(lua_State *L, long n) {
  lw_sched *S = sched(L);
  long i, x = 42;
  double t0;
  load_fn(L, "local n, late, maxd = 0, 0, -1 "
             "count = function() return n - late end "
             "return function(d) n = n + 1 "
             "if d < maxd - span then late = late + 1 end "
             "if d > maxd then maxd = d end end");
  t0 = now_s();
  for (i = 0; i < n; i++) {
    lua_pushvalue(L, -1);
    lua_pushnumber(L, next_deadline(&x));
    if (lw_sched_delay(S, L, lua_tonumber(L, -1), 1) != LW_OK) exit(2);
    lua_pop(L, 1);
  }
  lua_pushnumber(L, now_s() - t0);
  lua_setglobal(L, "span");
  run(S);
  printf("time %.9f\n", now_s() - t0);
  printf("answer %ld\n", get_count(L, "count"));
}

int main(int argc, char **argv) {
  lua_State *L;
  long n;
  if (argc != 3) {
    fprintf(stderr, "usage: lwc W1..W5 n\n");
    return 2;
  }
  n = atol(argv[2]);
  L = new_state();
  if (strcmp(argv[1], "W1") == 0) w1(L, n);
  else if (strcmp(argv[1], "W2") == 0) w2(L, n);
  else if (strcmp(argv[1], "W3") == 0) w3(L, n);
  else if (strcmp(argv[1], "W4") == 0) w4(L, n);
  else if (strcmp(argv[1], "W5") == 0) w5(L, n);
  else printf("skip unknown workload\n");
  lua_close(L);
  return 0;
}
