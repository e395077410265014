/*
** bench/raw.c — the floor: the work of W1–W5 with bare lua_newthread and
** lua_resume, no store, no scheduler.  `raw fresh W n` creates a thread
** per task; `raw recycle W n` reuses finished threads after
** lua_resetthread/lua_closethread (Lua 5.4 only): the only way a
** scheduler can beat the fresh floor.
**
** Each task runs the same Lua body as in every other implementation:
** wait once (here a plain yield: the C loop is the run queue), count.
*/
#include "common.h"
#include "../src/lw_key.h" /* the map's hash, for W3's probe floor */

static int recycle;

#if LUA_VERSION_NUM >= 504
static void reset(lua_State *co, lua_State *L) {
#if LUA_VERSION_RELEASE_NUM >= 50406
  lua_closethread(co, L);
#else
  (void)L;
  lua_resetthread(co);
#endif
}
#else
static void reset(lua_State *co, lua_State *L) { (void)co; (void)L; }
#endif

/* the thread for task i of the table at index t: a fresh one, or (when
   recycling) the one already in slot i, reset after its last task.
   Pushes nothing: the table holds it. */
static lua_State *task_thread(lua_State *L, int t, long i) {
  lua_State *co;
  if (recycle) {
    lua_rawgeti(L, t, (lua_Integer)i);
    co = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (co != NULL) {
      reset(co, L);
      return co;
    }
  }
  co = lua_newthread(L);
  lua_rawseti(L, t, (lua_Integer)i);
  return co;
}

static void must(lua_State *co, int st) {
  if (st != LUA_OK && st != LUA_YIELD) {
    fprintf(stderr, "task failed: %s\n", lua_tostring(co, -1));
    exit(2);
  }
}

/* W1: 10 batches of n/10 tasks; each waits once, then counts */
static void w1(lua_State *L, long n) {
  long per = n / 10, b, i;
  int nres, t;
  double t0;
  load_fn(L, "local yield, n = coroutine.yield, 0 "
             "count = function() return n end "
             "return function() yield() n = n + 1 end");
  lua_newtable(L);
  t = lua_gettop(L);
  t0 = now_s();
  for (b = 0; b < 10; b++) {
    if (!recycle) {
      lua_newtable(L);
      lua_replace(L, t);
    }
    for (i = 1; i <= per; i++) {
      lua_State *co = task_thread(L, t, i);
      lua_pushvalue(L, t - 1);
      lua_xmove(L, co, 1);
      must(co, RESUME(co, L, 0, &nres));
    }
    for (i = 1; i <= per; i++) {
      lua_State *co;
      lua_rawgeti(L, t, (lua_Integer)i);
      co = lua_tothread(L, -1);
      lua_pop(L, 1);
      must(co, RESUME(co, L, 0, &nres));
    }
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %ld\n", get_count(L, "count"));
}

/* W2: n tasks return 3 values; then read each, sum the second */
static void w2(lua_State *L, long n) {
  long i;
  int nres, t;
  double t0, sum = 0;
  load_fn(L, "return function(i) return 'x', i, true end");
  lua_createtable(L, (int)n, 0);
  t = lua_gettop(L);
  t0 = now_s();
  for (i = 1; i <= n; i++) {
    lua_State *co = lua_newthread(L);
    lua_rawseti(L, t, (lua_Integer)i);
    lua_pushvalue(L, t - 1);
    lua_pushinteger(L, (lua_Integer)i);
    lua_xmove(L, co, 2);
    must(co, RESUME(co, L, 1, &nres));
  }
  for (i = 1; i <= n; i++) {
    lua_State *co;
    lua_rawgeti(L, t, (lua_Integer)i);
    co = lua_tothread(L, -1);
    sum += lua_tonumber(co, -2);
    lua_pop(L, 1);
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %.0f\n", sum);
}

/* W3's lookup floor: a bare open-addressing table of the n thread
   addresses (the map's hash, linear probing, a load of 1/2: the middle of
   lw_map.c's 1/8..3/4), looked up in W3's shuffled order.  One cache miss
   per lookup at 1M threads: no store can do better.  Adds the lookups
   that found their thread to *ok. */
static double probe_ns(lua_State **co, long n, long *ok) {
  size_t cap = 16, mask, h;
  const void **tab;
  long i;
  double t0, d;
  while (cap < (size_t)n * 2) cap *= 2;
  mask = cap - 1;
  if ((tab = calloc(cap, sizeof *tab)) == NULL) exit(2);
  for (i = 0; i < n; i++) {
    for (h = lw_key_home(co[i], mask); tab[h] != NULL; h = (h + 1) & mask) {}
    tab[h] = co[i];
  }
  shuffle(co, n);
  t0 = now_s();
  for (i = 0; i < n; i++) {
    for (h = lw_key_home(co[i], mask); tab[h] != NULL; h = (h + 1) & mask)
      if (tab[h] == co[i]) {
        (*ok)++;
        break;
      }
  }
  d = now_s() - t0;
  free(tab);
  return d * 1e9 / (double)n;
}

/* W3 floor: ns per bare resume that yields one value, and per lookup
   (probe_ns); the answer counts the resumes that yielded 1 and the
   lookups that found their thread, halved: n when all did */
static void w3(lua_State *L, long n) {
  long i, ok = 0;
  int nres, t;
  double t0, t1;
  lua_State **cos = malloc(sizeof *cos * (size_t)(n > 0 ? n : 1));
  if (cos == NULL) exit(2);
  load_fn(L, "local yield = coroutine.yield "
             "return function() while true do yield(1) end end");
  lua_createtable(L, (int)n, 0);
  t = lua_gettop(L);
  for (i = 1; i <= n; i++) {
    lua_State *co = lua_newthread(L);
    lua_rawseti(L, t, (lua_Integer)i);
    lua_pushvalue(L, t - 1);
    lua_xmove(L, co, 1);
  }
  t0 = now_s();
  for (i = 1; i <= n; i++) {
    lua_State *co;
    lua_rawgeti(L, t, (lua_Integer)i);
    co = lua_tothread(L, -1);
    lua_pop(L, 1);
    /* the answer: resumptions that yielded the one value 1 */
    if (RESUME(co, L, 0, &nres) == LUA_YIELD && nres == 1 && lua_tonumber(co, -1) == 1)
      ok++;
    lua_pop(co, nres);
  }
  t1 = now_s();
  printf("metric resume %.2f\n", (t1 - t0) * 1e9 / (double)n);
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, t, (lua_Integer)i);
    cos[i - 1] = lua_tothread(L, -1);
    lua_pop(L, 1);
  }
  printf("metric probe %.2f\n", probe_ns(cos, n, &ok));
  free(cos);
  printf("time %.9f\n", t1 - t0);
  printf("answer %.17g\n", (double)ok / 2);
}

/* W4: n short-lived threads, results dropped */
static void w4(lua_State *L, long n) {
  long i;
  int nres;
  double t0;
  lua_State *keep = NULL;
  load_fn(L, "local n = 0 count = function() return n end "
             "return function(i) n = n + 1 return i end");
  t0 = now_s();
  for (i = 1; i <= n; i++) {
    lua_State *co;
    if (recycle && keep != NULL) {
      reset(keep, L);
      co = keep;
    } else {
      co = lua_newthread(L);
      if (recycle) { /* one thread, anchored by L's stack */
        keep = co;
      } else {
        lua_pop(L, 1); /* nothing holds it: the GC's */
      }
    }
    lua_pushvalue(L, recycle ? -2 : -1);
    lua_pushinteger(L, (lua_Integer)i);
    lua_xmove(L, co, 2);
    must(co, RESUME(co, L, 1, &nres));
    lua_pop(co, nres);
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %ld\n", get_count(L, "count"));
}

/* W5: n timers with deadlines in [0, 50 ms], a binary heap in C */
typedef struct timer { double due; long i; } timer;

static void heap_push(timer *h, long *len, timer v) {
  long i = (*len)++;
  while (i > 0 && h[(i - 1) / 2].due > v.due) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = v;
}

static timer heap_pop(timer *h, long *len) {
  timer top = h[0], last = h[--*len];
  long i = 0;
  for (;;) {
    long c = 2 * i + 1;
    if (c >= *len) break;
    if (c + 1 < *len && h[c + 1].due < h[c].due) c++;
    if (last.due <= h[c].due) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
  return top;
}

static void w5(lua_State *L, long n) {
  long i, len = 0, x = 42, late = 0;
  double last = 0;
  int nres, t;
  double t0;
  timer *h = malloc(sizeof *h * (size_t)(n > 0 ? n : 1));
  if (h == NULL) exit(2);
  load_fn(L, "local n = 0 count = function() return n end "
             "return function() n = n + 1 end");
  lua_createtable(L, (int)n, 0);
  t = lua_gettop(L);
  t0 = now_s();
  for (i = 1; i <= n; i++) {
    timer v;
    lua_State *co = lua_newthread(L);
    lua_rawseti(L, t, (lua_Integer)i);
    lua_pushvalue(L, t - 1);
    lua_xmove(L, co, 1);
    v.due = t0 + next_deadline(&x);
    v.i = i;
    heap_push(h, &len, v);
  }
  while (len > 0) {
    timer v = heap_pop(h, &len);
    lua_State *co;
    double now = now_s();
    if (v.due < last) late++; /* the answer: timers run in deadline order */
    last = v.due;
    if (v.due > now) sleep_s(v.due - now);
    lua_rawgeti(L, t, (lua_Integer)v.i);
    co = lua_tothread(L, -1);
    lua_pop(L, 1);
    must(co, RESUME(co, L, 0, &nres));
    lua_pushnil(L);
    lua_rawseti(L, t, (lua_Integer)v.i); /* done: the GC's */
  }
  printf("time %.9f\n", now_s() - t0);
  printf("answer %ld\n", get_count(L, "count") - late);
  free(h);
}

int main(int argc, char **argv) {
  lua_State *L;
  long n;
  if (argc != 4) {
    fprintf(stderr, "usage: raw fresh|recycle W1..W5 n\n");
    return 2;
  }
  recycle = strcmp(argv[1], "recycle") == 0;
  n = atol(argv[3]);
  if (recycle && LUA_VERSION_NUM < 504) {
    printf("skip lua_resetthread needs Lua 5.4\n");
    return 0;
  }
  L = new_state();
  if (strcmp(argv[2], "W1") == 0) w1(L, n);
  else if (strcmp(argv[2], "W2") == 0 && !recycle) w2(L, n);
  else if (strcmp(argv[2], "W3") == 0 && !recycle) w3(L, n);
  else if (strcmp(argv[2], "W4") == 0) w4(L, n);
  else if (strcmp(argv[2], "W5") == 0 && !recycle) w5(L, n);
  else printf("skip nothing to recycle in %s\n", argv[2]);
  lua_close(L);
  return 0;
}
