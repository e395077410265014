/*
** bench/common.h — what the C benchmark programs share: a monotonic
** clock, the deadline generator every implementation uses for W5, the
** output protocol, and resume/reset across Lua versions.
**
** Protocol (read by bench/run.sh): a program runs one workload at one
** size and prints "answer <integer>" (what it computed, checked by the
** driver), "time <seconds>" (the timed part only, no start-up), and for
** W3 "metric <name> <value>" lines.  "skip <reason>" means: not here.
*/
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void sleep_s(double s) {
  struct timespec ts;
  if (s <= 0) return;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

/* Park-Miller: products stay below 2^53, so Lua 5.1's doubles agree */
static inline double next_deadline(long *x) {
  *x = (long)(((long long)*x * 16807) % 2147483647);
  return (double)(*x % 50001) * 1e-6; /* [0, 50 ms] */
}

/* lua_resume with 5.4's signature: *nres values on co's top */
#if LUA_VERSION_NUM >= 504
#define RESUME(co, from, n, nres) lua_resume(co, from, n, nres)
#else
static inline int bench_nres(lua_State *co, int st, int *nres) {
  *nres = st == LUA_YIELD || st == 0 ? lua_gettop(co) : 1;
  return st;
}
#if LUA_VERSION_NUM >= 502
#define RESUME(co, from, n, nres) bench_nres(co, lua_resume(co, from, n), nres)
#else
#define RESUME(co, from, n, nres) \
  ((void)(from), bench_nres(co, lua_resume(co, n), nres))
#endif
#endif

/* W3's lookup order: the same shuffle everywhere (no two lookups in a
   row touch neighbouring memory) */
static inline void shuffle(lua_State **a, long n) {
  long i, x = 7;
  for (i = n - 1; i > 0; i--) {
    long j;
    lua_State *tmp;
    x = (long)(((long long)x * 16807) % 2147483647);
    j = x % (i + 1);
    tmp = a[i];
    a[i] = a[j];
    a[j] = tmp;
  }
}

static inline lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "no memory\n");
    exit(2);
  }
  luaL_openlibs(L);
  return L;
}

/* run a chunk that returns one function; leave it on L's top */
static inline void load_fn(lua_State *L, const char *src) {
  if (luaL_loadstring(L, src) != 0 || lua_pcall(L, 0, 1, 0) != 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    exit(2);
  }
}

static inline long get_count(lua_State *L, const char *global) {
  long n;
  lua_getglobal(L, global);
  lua_call(L, 0, 1);
  n = (long)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return n;
}

#endif
