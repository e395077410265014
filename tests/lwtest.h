/*
** lwtest.h — shared helpers of the C tests: a counting allocator that can
** fail on purpose, and Lua states with luaweave opened.
*/
#ifndef LWTEST_H
#define LWTEST_H

#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "luaweave.h"
#include "lw_compat.h"
#include "lw_sched.h"

/* The counting allocator: live blocks and bytes, and a countdown that
   makes the Nth allocation (not free) from now fail. */
typedef struct lwt_heap {
  long blocks;
  long bytes;
  long fail_in;   /* 0: never fail; n: the nth allocation fails */
  long allocs;    /* allocations seen */
  long failures;  /* allocations refused */
  int sticky;     /* after the nth, every allocation fails (Lua 5.4
                     retries a failed one after an emergency GC) */
} lwt_heap;

static inline void *lwt_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  lwt_heap *h = (lwt_heap *)ud;
  if (nsize == 0) {
    if (p != NULL) {
      h->blocks--;
      h->bytes -= (long)osize;
      free(p);
    }
    return NULL;
  }
  h->allocs++;
  /* Lua assumes a shrinking realloc never fails: only growth may fail */
  if ((p == NULL || nsize > osize) && h->fail_in > 0) {
    if (h->sticky && h->fail_in == 1) {
      h->failures++;
      return NULL;
    }
    if (--h->fail_in == 0) {
      h->failures++;
      return NULL;
    }
  }
  {
    void *q = realloc(p, nsize);
    if (q == NULL) return NULL;
    if (p == NULL) h->blocks++;
    h->bytes += (long)nsize - (p ? (long)osize : 0);
    return q;
  }
}

static inline int lwt_panic(lua_State *L) {
  fail_msg("Lua panic: %s", lua_tostring(L, -1));
  return 0;
}

/* a state on the counting allocator, standard libraries and the luaweave
   modules in package.preload */
static inline lua_State *lwt_state(lwt_heap *h) {
  lua_State *L;
  memset(h, 0, sizeof *h);
  L = lua_newstate(lwt_alloc, h);
  assert_non_null(L);
  lua_atpanic(L, lwt_panic);
  luaL_openlibs(L);
  lw_preload(L);
  return L;
}

/* run Lua code, failing the test on error */
static inline void lwt_do(lua_State *L, const char *code) {
  if (luaL_dostring(L, code) != 0)
    fail_msg("Lua error: %s", lua_tostring(L, -1));
}

/* push a new thread holding the function compiled from code */
static inline lua_State *lwt_thread(lua_State *L, const char *code) {
  lua_State *co = lua_newthread(L);
  if (luaL_loadstring(co, code) != 0)
    fail_msg("compile error: %s", lua_tostring(co, -1));
  return co;
}

/* main() of every test file: lwt_main(group, tests, argc, argv).
     test_x              every test
     test_x NAME         only the test NAME (a cmocka pattern: * and ?)
     test_x --list       the names of the tests, one a line
   LWT_FILTER=NAME in the environment does the same as NAME.  An unknown
   NAME is an error (exit 2), not a run of no test. */
#define lwt_main(group, tests, argc, argv) \
  lwt_main_(group, tests, sizeof(tests) / sizeof((tests)[0]), argc, argv)

static inline int lwt_main_(const char *group, const struct CMUnitTest *tests,
                            size_t n, int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : getenv("LWT_FILTER");
  size_t i;
  if (argc > 2 || (only != NULL && strcmp(only, "-h") == 0)) {
    fprintf(stderr, "usage: %s [--list | NAME]\n", argv[0]);
    return 2;
  }
  if (only != NULL && strcmp(only, "--list") == 0) {
    for (i = 0; i < n; i++) printf("%s\n", tests[i].name);
    return 0;
  }
  if (only != NULL && *only != '\0') {
    if (strpbrk(only, "*?") == NULL) {
      for (i = 0; i < n && strcmp(tests[i].name, only) != 0; i++) {}
      if (i == n) {
        fprintf(stderr, "%s: no test named %s; %s --list names them\n",
                argv[0], only, argv[0]);
        return 2;
      }
    }
    cmocka_set_test_filter(only);
  }
  return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

#endif
