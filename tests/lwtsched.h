/*
** lwtsched.h — the harness of the scheduler's C tests (test_sched.c,
** test_end.c, test_mutants.c): a state on the counting allocator with
** luaweave's scheduler on a fake clock, errors counted, and a Lua log
** (L(...) appends a line, flush() returns and clears it).
*/
#ifndef LWTSCHED_H
#define LWTSCHED_H

#include <stdio.h>
#include "lwtest.h"

static lwt_heap heap;
static lua_State *L;
static lw_sched *S;
static double clk;            /* the fake clock, in seconds */
static int nerr;              /* error callback calls */
static char lasterr[512];     /* the last error it got */

static inline double lwt_fake_clock(void *ud) { return *(double *)ud; }

static inline void lwt_on_error(void *ud, lua_State *co, const char *msg) {
  (void)ud;
  (void)co;
  nerr++;
  snprintf(lasterr, sizeof lasterr, "%s", msg ? msg : "(null)");
}

static const char lwt_prelude[] =
  "task = require 'luaweave.task'\n"
  "lw = require 'luaweave'\n"
  "log = {}\n"
  "function L(...)\n"
  "  local t = {}\n"
  "  for i = 1, select('#', ...) do t[i] = tostring((select(i, ...))) end\n"
  "  log[#log + 1] = table.concat(t, ',')\n"
  "end\n"
  "function flush() local s = table.concat(log, ' '); log = {}; return s end\n";

/* a new state and scheduler, the clock at 0, the prelude run */
static inline void lwt_open(void) {
  L = lwt_state(&heap);
  S = lw_sched_open(L);
  assert_non_null(S);
  assert_ptr_equal(S, lw_sched_get(L));
  clk = 0;
  nerr = 0;
  lasterr[0] = 0;
  lw_sched_setclock(S, lwt_fake_clock, &clk);
  lw_sched_onerror(S, lwt_on_error, NULL);
  lwt_do(L, lwt_prelude);
  assert_int_equal(0, lw_sched_check_invariants(S));
}

/* sound to the end, and lua_close frees every block */
static inline void close_all(void) {
  assert_int_equal(0, lw_sched_check_invariants(S));
  lua_close(L);
  assert_int_equal(0, heap.blocks); /* scheduler and store included */
  L = NULL;
  S = NULL;
}

/* one step, checked; the number of resumptions it made */
static inline int step(void) {
  int n = lw_sched_step(S);
  assert_int_equal(0, lw_sched_check_invariants(S));
  return n;
}

static inline void expect_log(const char *want) {
  lua_getglobal(L, "flush");
  lua_call(L, 0, 1);
  assert_string_equal(want, lua_tostring(L, -1));
  lua_pop(L, 1);
}

/* the thread in global name (the global keeps it) */
static inline lua_State *global_thread(const char *name) {
  lua_State *co;
  lua_getglobal(L, name);
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  assert_non_null(co);
  return co;
}

#endif
