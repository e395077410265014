/*
** async.c — an async C function completed from a libuv callback.
**
** sleep_ms(ms [, err]) suspends only its calling task: it takes a token
** with lw_async_begin, starts a uv_timer on the scheduler's loop and
** returns lw_async_yield.  The timer callback completes the token: with
** lw_async_resolve after pushing the values on lw_sched_state(S), or with
** lw_async_complete and a push function (run protected) that rejects
** when err was given, so that sleep_ms raises err in its task.
**
** Build:  make examples   (then build/examples/async)
** Prints what the tasks did; exits 0 only if it is what it should be.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "luaweave.h"

typedef struct sleeper {
  uv_timer_t timer;
  lw_async *op;
  int ms;
  char err[64]; /* non-empty: reject with this */
} sleeper;

static void sleeper_closed(uv_handle_t *h) { free(h->data); }

static int push_outcome(lua_State *T, void *ud) {
  sleeper *s = (sleeper *)ud;
  if (s->err[0]) {
    lua_pushstring(T, s->err);
    return -1; /* reject: sleep_ms raises err in its task */
  }
  lua_pushinteger(T, s->ms);
  return 1;
}

static void sleeper_fired(uv_timer_t *t) {
  sleeper *s = (sleeper *)t->data;
  lw_sched *S = lw_async_sched(s->op);
  if (s->err[0]) {
    if (lw_async_complete(s->op, push_outcome, s) != LW_OK)
      fprintf(stderr, "async: could not complete sleep_ms\n");
  } else {
    lua_pushinteger(lw_sched_state(S), s->ms); /* the values, then resolve */
    lw_async_resolve(s->op, 1);
  }
  uv_close((uv_handle_t *)t, sleeper_closed);
}

static int l_sleep_ms(lua_State *L) {
  int ms = (int)luaL_checkinteger(L, 1);
  const char *err = luaL_optstring(L, 2, NULL);
  lw_sched *S = lw_sched_get(L);
  lw_async *op = lw_async_begin(L); /* raises outside a task */
  sleeper *s = (sleeper *)calloc(1, sizeof *s);
  if (s == NULL) { /* a token must be consumed: reject it */
    lua_pushliteral(lw_sched_state(S), "sleep_ms: out of memory");
    lw_async_reject(op);
    return lw_async_yield(L, op);
  }
  s->op = op;
  s->ms = ms < 0 ? 0 : ms;
  if (err) snprintf(s->err, sizeof s->err, "%s", err);
  uv_timer_init(lw_sched_loop(S), &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, sleeper_fired, (uint64_t)s->ms, 0);
  return lw_async_yield(L, op);
}

/* The order of the log is the program's, not the timers': the sleeper
   starts only after the failing task was awaited, and the main task logs
   before it awaits the sleeper, so no load can reorder it. */
static const char script[] =
  "local task = require 'luaweave.task'\n"
  "local log = {}\n"
  "task.spawn(function() log[#log + 1] = 'other task runs' end)\n"
  "local failing = task.spawn(function() sleep_ms(10, 'boom') end)\n"
  "local ok, err = task.await(failing)\n"
  "log[#log + 1] = 'awaited ' .. tostring(ok) .. ' ' .. tostring(err)\n"
  "local sleeper = task.spawn(function()\n"
  "  local ms = sleep_ms(30)  -- only this task waits\n"
  "  log[#log + 1] = 'slept ' .. ms\n"
  "end)\n"
  "log[#log + 1] = 'main runs meanwhile'\n"
  "task.await(sleeper)\n"
  "return table.concat(log, ', ')\n";

int main(void) {
  const char *want =
      "other task runs, awaited false boom, main runs meanwhile, slept 30";
  lua_State *L = luaL_newstate();
  const char *got;
  int ok;
  if (L == NULL) return 1;
  luaL_openlibs(L);
  lw_preload(L);
  lw_async_wrap(L, l_sleep_ms); /* so that a rejection raises */
  lua_setglobal(L, "sleep_ms");
  /* lw.run(f): f is the main task on luaweave's own libuv loop */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaweave");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "run");
  if (luaL_loadstring(L, script) != 0 || lua_pcall(L, 1, 1, 0) != 0) {
    printf("error: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  got = lua_tostring(L, -1);
  ok = got != NULL && strcmp(got, want) == 0;
  printf("%s\n%s\n", got ? got : "(nothing)", ok ? "ok" : "FAIL");
  lua_close(L);
  return ok ? 0 : 1;
}
