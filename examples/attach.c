/*
** attach.c — an embedding host that owns its uv_loop_t and runs it.
**
** luaweave is attached to the host's loop (lw_sched_attach): it steps
** before every poll, keeps the loop alive exactly while it has work, and
** does its I/O (luaweave.fs) on that loop.  A host timer starts a task from
** C, from the host's own callback.  When uv_run returns, every task is
** done; the host detaches before closing its loop.
**
** Build:  make examples   (then build/examples/attach)
** Prints what the tasks did; exits 0 only if it is what it should be.
*/
#include <stdio.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <uv.h>

#include "luaweave.h"

static const char script[] =
  "task = require 'luaweave.task'\n"
  "local fs = require('luaweave').fs\n"
  "log = {}\n"
  "function from_host(s) log[#log + 1] = 'from host ' .. s end\n"
  "task.spawn(function()\n"
  "  assert(fs.writefile(path, 'written on the host loop'))\n"
  "  local data = fs.readfile(path)  -- only this task waits\n"
  "  log[#log + 1] = data\n"
  "end)\n"
  "task.spawn(function() task.wait(0.1); log[#log + 1] = 'waited' end)\n";

/* the host's own timer: spawn a task from C, as any host callback may */
static void host_tick(uv_timer_t *t) {
  lw_sched *S = (lw_sched *)t->data;
  lua_State *T = lw_sched_state(S);
  lua_getglobal(T, "from_host");
  lua_pushliteral(T, "hello");
  /* spawn may raise a memory error: a real host calls it protected */
  if (lw_sched_spawn(S, T, 1) == LW_OK) lua_pop(T, 1); /* the thread */
}

int main(void) {
  /* in any order: on a loaded machine the file's round trip through
     libuv's thread pool can outlast the host's 50 ms timer, or the wait */
  const char *want = "from host hello, waited, written on the host loop";
  char path[64];
  uv_loop_t loop;
  uv_timer_t tick;
  lua_State *L;
  lw_sched *S;
  const char *got;
  int ok;
  snprintf(path, sizeof path, "/tmp/luaweave-attach-%ld.txt", (long)uv_os_getpid());
  if (uv_loop_init(&loop) != 0 || (L = luaL_newstate()) == NULL) return 1;
  luaL_openlibs(L);
  lw_preload(L);
  S = lw_sched_open(L);
  if (S == NULL || lw_sched_attach(S, &loop) != LW_OK) return 1;
  lua_pushstring(L, path);
  lua_setglobal(L, "path");
  if (luaL_dostring(L, script) != 0) {
    printf("error: %s\n", lua_tostring(L, -1));
    return 1;
  }
  uv_timer_init(&loop, &tick);
  tick.data = S;
  uv_timer_start(&tick, host_tick, 50, 0);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns when nothing is left to do */
  ok = lw_sched_ready(S) == 0 && lw_sched_async(S) == 0 &&
       lw_sched_errors(S) == 0 && lw_sched_detach(S) == LW_OK;
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT); /* let the close finish */
  ok = ok && uv_loop_close(&loop) == 0;
  got = luaL_dostring(L, "table.sort(log) return table.concat(log, ', ')") == 0
            ? lua_tostring(L, -1) : NULL;
  ok = ok && got != NULL && strcmp(got, want) == 0;
  printf("%s\n%s\n", got ? got : "(nothing)", ok ? "ok" : "FAIL");
  lua_close(L);
  remove(path);
  return ok ? 0 : 1;
}
