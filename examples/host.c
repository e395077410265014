/*
** host.c — a C host of luaweave: the three ways to drive a scheduler, and
** an async C function completed from the host's own libuv callbacks.
**
**   run     lw_sched_run: luaweave runs its own libuv loop until no task
**           can run any more.
**   attach  the host owns a uv_loop_t and runs it; luaweave is attached to
**           it (lw_sched_attach), and a host timer callback completes
**           the async function sleep_ms; then lw_sched_detach.
**   step    a game-style frame loop: lw_sched_step once a frame, then sleep
**           lw_sched_next() seconds (capped) until nothing is left.
**
** sleep_ms(ms [, err]) is a lua_CFunction that suspends its task with
** lw_async_begin/lw_async_yield and starts a uv_timer on lw_sched_loop(S):
** the attached host loop, or luaweave's own.  The timer callback completes
** it: with lw_async_resolve (the values pushed on lw_sched_state(S)), or
** with lw_async_complete and a push function that rejects when err was
** given (the task then raises err).
**
** Build (Lua 5.4; see tests/examples.sh for the other versions):
**   cc -std=c99 -D_POSIX_C_SOURCE=200809L -Iinclude examples/host.c \
**      build/libluaweave.a $(pkg-config --cflags --libs lua5.4 libuv) -lm
** Prints what happens; exits 0 only if every mode gave the expected result.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "luaweave.h"

/* ------------------------------------------------------------------ */
/* the async C function                                                */

typedef struct sleeper {
  uv_timer_t timer;     /* first: the handle's address is the sleeper's */
  lw_async *op;
  int ms;
  char err[64];         /* non-empty: reject with this */
} sleeper;

static void sleeper_closed(uv_handle_t *h) { free(h); }

static int push_outcome(lua_State *T, void *ud) {
  sleeper *s = (sleeper *)ud;
  if (s->err[0]) {
    lua_pushstring(T, s->err);
    return -1; /* reject: sleep_ms raises err in its task */
  }
  lua_pushinteger(T, s->ms);
  return 1;
}

/* a host callback: runs in whichever loop the timer is on */
static void sleeper_fired(uv_timer_t *t) {
  sleeper *s = (sleeper *)t->data;
  lw_sched *S = lw_async_sched(s->op);
  if (s->err[0]) {
    if (lw_async_complete(s->op, push_outcome, s) != LW_OK)
      fprintf(stderr, "host: could not complete sleep_ms\n");
  } else {
    /* the plain way: push the values on the scheduler's state, resolve */
    lua_pushinteger(lw_sched_state(S), s->ms);
    lw_async_resolve(s->op, 1);
  }
  uv_close((uv_handle_t *)t, sleeper_closed);
}

static int l_sleep_ms(lua_State *L) {
  int ms = (int)luaL_checkinteger(L, 1);
  const char *err = luaL_optstring(L, 2, NULL);
  lw_sched *S = lw_sched_get(L);
  uv_loop_t *loop = S ? lw_sched_loop(S) : NULL;
  lw_async *op;
  sleeper *s;
  if (loop == NULL) return luaL_error(L, "sleep_ms: no event loop");
  op = lw_async_begin(L); /* raises outside a task */
  s = (sleeper *)calloc(1, sizeof *s);
  if (s == NULL) { /* the token must be consumed: reject it */
    lua_pushliteral(lw_sched_state(S), "sleep_ms: out of memory");
    lw_async_reject(op);
    return lw_async_yield(L, op);
  }
  s->op = op;
  s->ms = ms < 0 ? 0 : ms;
  if (err) snprintf(s->err, sizeof s->err, "%s", err);
  uv_timer_init(loop, &s->timer);
  s->timer.data = s;
  uv_timer_start(&s->timer, sleeper_fired, (uint64_t)s->ms, 0);
  return lw_async_yield(L, op);
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int errors_seen;

static void on_error(void *ud, lua_State *co, const char *msg) {
  (void)ud;
  (void)co;
  errors_seen++;
  printf("  task error: %s\n", msg);
}

/* a Lua state with luaweave, `task` and sleep_ms */
static lua_State *new_state(lw_sched **S) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  lw_preload(L);
  lw_async_wrap(L, l_sleep_ms); /* so that a rejection raises */
  lua_setglobal(L, "sleep_ms");
  *S = lw_sched_open(L);
  if (*S == NULL) {
    lua_close(L);
    return NULL;
  }
  lw_sched_onerror(*S, on_error, NULL);
  return L;
}

static int run_code(lua_State *L, const char *code) {
  if (luaL_dostring(L, code) != 0) {
    printf("  Lua error: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* compare table.concat(log, " ") with want */
static int check_log(lua_State *L, const char *mode, const char *want) {
  const char *got;
  int ok;
  if (!run_code(L, "return table.concat(log, ' ')")) return 0;
  got = lua_tostring(L, -1);
  ok = got != NULL && strcmp(got, want) == 0;
  printf("  log:      %s\n", got ? got : "(none)");
  if (!ok) printf("  expected: %s\n", want);
  lua_pop(L, 1);
  printf("%s %s\n", ok ? "ok" : "FAIL", mode);
  return ok;
}

static const char prelude[] =
  "task = require 'luaweave.task'\n"
  "log = {}\n"
  "function say(s) log[#log + 1] = s; print('  ' .. s) end\n";

/* ------------------------------------------------------------------ */
/* (a) lw_sched_run: luaweave's own loop                               */

static int mode_run(void) {
  lw_sched *S;
  lua_State *L = new_state(&S);
  int rc, ok;
  printf("== run: lw_sched_run on luaweave's own loop\n");
  if (L == NULL) return 0;
  ok = run_code(L, prelude) && run_code(L,
    "task.spawn(function() say('spawned'); say('slept ' .. sleep_ms(120)) end)\n"
    "task.delay(0.04, function() say('delayed') end)\n"
    "task.defer(function() say('deferred') end)\n"
    "local failing = task.spawn(function() sleep_ms(5, 'boom') end)\n"
    "task.spawn(function()\n"
    "  local ok, err = task.await(failing)\n"
    "  say('awaited ' .. tostring(ok) .. ' ' .. tostring(err))\n"
    "end)\n");
  rc = lw_sched_run(S);
  printf("  lw_sched_run -> %d\n", rc);
  ok = ok && rc == LW_OK && errors_seen == 0 &&
       check_log(L, "run", "spawned deferred awaited false boom delayed slept 120");
  lua_close(L);
  return ok;
}

/* ------------------------------------------------------------------ */
/* (b) attached to the host's loop                                     */

static lw_sched *host_S;

/* a host timer that starts a task from C, from its own callback */
static void host_tick(uv_timer_t *t) {
  lua_State *T = lw_sched_state(host_S);
  (void)t;
  printf("  host timer: spawning a task from C\n");
  lua_getglobal(T, "from_host");
  lua_pushliteral(T, "hello");
  /* spawn may raise a memory error: a real host calls it protected */
  if (lw_sched_spawn(host_S, T, 1) == LW_OK) lua_pop(T, 1); /* the thread */
}

static int mode_attach(void) {
  uv_loop_t loop;
  uv_timer_t tick;
  lw_sched *S;
  lua_State *L;
  int ok, rc;
  printf("== attach: the host runs its own uv_loop_t\n");
  if (uv_loop_init(&loop) != 0) return 0;
  L = new_state(&S);
  if (L == NULL) return 0;
  host_S = S;
  ok = lw_sched_attach(S, &loop) == LW_OK;
  ok = ok && lw_sched_loop(S) == &loop; /* sleep_ms times on the host loop */
  ok = ok && run_code(L, prelude) && run_code(L,
    "function from_host(s)\n"
    "  say('from host ' .. s)\n"
    "  say('host slept ' .. sleep_ms(30))\n"
    "end\n"
    "task.spawn(function()\n"
    "  for i = 1, 3 do sleep_ms(10); say('tick ' .. i) end\n"
    "end)\n"
    "task.spawn(function() task.wait(0.13); say('waited') end)\n");
  uv_timer_init(&loop, &tick);
  uv_timer_start(&tick, host_tick, 60, 0);
  rc = uv_run(&loop, UV_RUN_DEFAULT); /* returns when nothing is left */
  printf("  uv_run -> %d, ready %lu, async %lu\n", rc,
         (unsigned long)lw_sched_ready(S), (unsigned long)lw_sched_async(S));
  ok = ok && lw_sched_ready(S) == 0 && lw_sched_async(S) == 0;
  ok = ok && lw_sched_detach(S) == LW_OK;
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the closes finish */
  ok = ok && uv_loop_close(&loop) == 0;
  ok = ok && errors_seen == 0 &&
       check_log(L, "attach", "tick 1 tick 2 tick 3 from host hello "
                              "host slept 30 waited");
  lua_close(L);
  return ok;
}

/* ------------------------------------------------------------------ */
/* (c) stepped from a frame loop                                       */

static void sleep_seconds(double sec) {
  struct timespec ts;
  ts.tv_sec = (time_t)sec;
  ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

static int mode_step(void) {
  lw_sched *S;
  lua_State *L = new_state(&S);
  int ok, frames = 0, resumed = 0, n;
  const double cap = 1.0 / 60; /* never sleep past the next frame */
  printf("== step: a frame loop calls lw_sched_step\n");
  if (L == NULL) return 0;
  ok = run_code(L, prelude) && run_code(L,
    "task.spawn(function()\n"
    "  for i = 1, 3 do task.wait(0.05); say('frame task ' .. i) end\n"
    "end)\n"
    "task.delay(0.075, function() say('delayed') end)\n"
    "task.spawn(function() say('io ' .. sleep_ms(125)) end)\n"
    "task.spawn(function() local n = 0\n"
    "  repeat n = n + 1; task.wait() until n == 5\n" /* one per frame */
    "  say('per-frame 5')\n"
    "end)\n");
  for (;;) {
    double d;
    n = lw_sched_step(S);
    if (n < 0) {
      printf("  lw_sched_step -> %d\n", n);
      ok = 0;
      break;
    }
    resumed += n;
    frames++;
    if (lw_sched_ready(S) == 0 && lw_sched_async(S) == 0) break;
    d = lw_sched_next(S);
    if (d < 0 || d > cap) d = cap;
    sleep_seconds(d);
  }
  printf("  %d frames, %d resumptions, %lu waiting\n", frames, resumed,
         (unsigned long)lw_sched_waiting(S));
  ok = ok && errors_seen == 0 && lw_sched_waiting(S) == 0 &&
       check_log(L, "step", "per-frame 5 frame task 1 delayed frame task 2 "
                            "io 125 frame task 3");
  lua_close(L);
  return ok;
}

int main(void) {
  int a = mode_run();
  int b = mode_attach();
  int c = mode_step();
  printf("%s\n", a && b && c ? "all modes ok" : "some mode FAILED");
  return a && b && c ? 0 : 1;
}
