/*
** frame.c — a game-style frame loop that steps the scheduler.
**
** Each frame the host calls lw_sched_step once, then sleeps until the
** next deadline (lw_sched_next), never past its next frame.  Tasks wait
** in seconds (task.wait, task.delay) or one frame at a time (task.wait()).
** No event loop runs: the host owns time.
**
** Build:  make examples   (then build/examples/frame)
** Prints what the tasks did; exits 0 only if it is what it should be.
*/
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "luaweave.h"

static const char script[] =
  "local task = require 'luaweave.task'\n"
  "log = {}\n"
  "task.spawn(function()\n"
  "  for i = 1, 3 do task.wait(0.05); log[#log + 1] = 'timed ' .. i end\n"
  "end)\n"
  "task.delay(0.075, function() log[#log + 1] = 'delayed' end)\n"
  "task.spawn(function()\n"
  "  for _ = 1, 5 do task.wait() end  -- one frame each\n"
  "  log[#log + 1] = 'five frames'\n"
  "end)\n";

static void sleep_seconds(double sec) {
  struct timespec ts;
  ts.tv_sec = (time_t)sec;
  ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
  nanosleep(&ts, NULL);
}

int main(void) {
  const char *want = "five frames, timed 1, delayed, timed 2, timed 3";
  const double frame = 1.0 / 60;
  lua_State *L = luaL_newstate();
  lw_sched *S;
  const char *got;
  int ok = 1, frames = 0;
  if (L == NULL) return 1;
  luaL_openlibs(L);
  lw_preload(L);
  S = lw_sched_open(L);
  if (S == NULL || luaL_dostring(L, script) != 0) return 1;
  for (;;) {
    double d;
    if (lw_sched_step(S) < 0) {
      ok = 0;
      break;
    }
    frames++;
    /* ...the game's own update and render go here... */
    if (lw_sched_ready(S) == 0) break; /* nothing will ever run again */
    d = lw_sched_next(S);
    sleep_seconds(d < 0 || d > frame ? frame : d);
  }
  got = luaL_dostring(L, "return table.concat(log, ', ')") == 0
            ? lua_tostring(L, -1) : NULL;
  ok = ok && lw_sched_errors(S) == 0 && got != NULL && strcmp(got, want) == 0;
  printf("%s (%d frames)\n%s\n", got ? got : "(nothing)", frames, ok ? "ok" : "FAIL");
  lua_close(L);
  return ok ? 0 : 1;
}
