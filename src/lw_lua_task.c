/*
** lw_lua_task.c — the `task` Lua library (require "luaweave.task", a
** global in the CLI) and lw.run: argument checking and error messages on
** top of the scheduler.
*/
#include "lw_sched.h"
#include "lw_compat.h"
#include "lw_luv.h"

#include <limits.h>
#include <math.h>

/* the scheduler, from the box every task function holds as its upvalue
   (no registry lookup per call); the slow path says why there is none */
static lw_sched *sched(lua_State *L) {
  lw_sched *S = *(lw_sched **)lua_touserdata(L, lua_upvalueindex(1));
  if (S == NULL || lws_gone(S)) return lw_sched_check(L);
  return S;
}

/* the function or thread at index 1, with a bad-argument error otherwise */
static void check_target(lua_State *L, int arg, const char *fname) {
  int t = lua_type(L, arg);
  if (t != LUA_TFUNCTION && t != LUA_TTHREAD)
    luaL_error(L, "bad argument #%d to '%s' (function or thread expected, got %s)",
               arg, fname, lua_isnone(L, arg) ? "no value" : luaL_typename(L, arg));
}

/* level: where errors are positioned (LW_TASK_LEVEL for task.wait) */
static double opt_seconds(lua_State *L, int arg, const char *fname, int level) {
  if (lua_isnoneornil(L, arg)) return 0;
  if (!lua_isnumber(L, arg)) /* a numeric string too, as Lua's own library */
    lw_errorat(L, level, "bad argument #%d to '%s' (number expected, got %s)", arg,
               fname, luaL_typename(L, arg));
  return (double)lua_tonumber(L, arg);
}

/* a spawn, defer or delay of the thread at idx failed with e: say why,
   at the caller's line, as coroutine.resume would; the main thread is
   never a task (arg: its position as the caller sees it) */
static int cannot(lua_State *L, lw_sched *S, int idx, int e, const char *fname,
                  int arg) {
  lua_State *co = lua_tothread(L, idx);
  if (e == LW_ESTATE && co != NULL && lw_store_ismain(lws_store(S), co))
    return luaL_error(L, "bad argument #%d to '%s' (the main thread cannot be a task)",
                      arg, fname);
  if (e == LW_ESTATE && co != NULL)
    return luaL_error(L, "task.%s: cannot resume %s coroutine", fname,
                      lws_unresumable(S, L, co, 1) == 1 ? "dead" : "non-suspended");
  return luaL_error(L, "task.%s: %s", fname, lw_strerror(e));
}

static int t_spawn(lua_State *L) {
  lw_sched *S = sched(L);
  int e;
  check_target(L, 1, "spawn");
  if ((e = lw_sched_spawn(S, L, lua_gettop(L) - 1)) != LW_OK)
    return cannot(L, S, 1, e, "spawn", 1);
  return 1;
}

static int t_defer(lua_State *L) {
  lw_sched *S = sched(L);
  int e;
  check_target(L, 1, "defer");
  if ((e = lw_sched_defer(S, L, lua_gettop(L) - 1)) != LW_OK)
    return cannot(L, S, 1, e, "defer", 1);
  return 1;
}

static int t_delay(lua_State *L) {
  lw_sched *S = sched(L);
  int e;
  double sec = opt_seconds(L, 1, "delay", 1);
  check_target(L, 2, "delay");
  lua_remove(L, 1);
  if ((e = lw_sched_delay(S, L, sec, lua_gettop(L) - 1)) != LW_OK)
    return cannot(L, S, 1, e, "delay", 2);
  return 1;
}

static int t_wait(lua_State *L) {
  lw_sched *S = sched(L);
  double sec = opt_seconds(L, 1, "wait", LW_TASK_LEVEL);
  lua_settop(L, 0);
  return lw_sched_wait(S, L, sec);
}

static int t_cancel(lua_State *L) {
  lw_sched *S = sched(L);
  lua_State *co = lua_tothread(L, 1);
  int e;
  if (co == NULL)
    return luaL_error(L, "bad argument #1 to 'cancel' (thread expected, got %s)",
                      lua_isnone(L, 1) ? "no value" : luaL_typename(L, 1));
  e = lw_sched_cancel_from(S, co, L);
  if (e == LW_ESTATE)
    return luaL_error(L, "bad argument #1 to 'cancel' (the main thread cannot be cancelled)");
  if (e == LW_EMEM) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  return 0;
}

/* the threads at 1..n, checked; timeout < 0: none */
static int await_common(lua_State *L, const char *fname, int isany,
                        double timeout) {
  lw_sched *S = sched(L);
  int i, n = lua_gettop(L);
  if (n == 0)
    return lw_errorat(L, LW_TASK_LEVEL,
                      "bad argument #1 to '%s' (thread expected, got no value)", fname);
  for (i = 1; i <= n; i++)
    if (lua_type(L, i) != LUA_TTHREAD)
      return lw_errorat(L, LW_TASK_LEVEL,
                        "bad argument #%d to '%s' (thread expected, got %s)", i,
                        fname, luaL_typename(L, i));
  return lw_sched_await_for(S, L, 1, n, isany, timeout);
}

/* a timeout in seconds at arg (nil or false: none, -1; false because
   task.await(coroutine.running()) passes 5.2+'s ismain); NaN and
   negatives time out at once, infinity never */
static double opt_timeout(lua_State *L, int arg, const char *fname) {
  if (lua_isnoneornil(L, arg) ||
      (lua_type(L, arg) == LUA_TBOOLEAN && !lua_toboolean(L, arg)))
    return -1;
  if (!lua_isnumber(L, arg))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "bad argument #%d to '%s' (number expected, got %s)", arg,
                      fname, luaL_typename(L, arg));
  {
    double sec = (double)lua_tonumber(L, arg);
    return sec >= 0 ? sec : 0; /* not -1, "none": NaN and negatives time out at once */
  }
}

static int t_await(lua_State *L) {
  double timeout = opt_timeout(L, 2, "await");
  lua_settop(L, lua_gettop(L) > 0 ? 1 : 0);
  return await_common(L, "await", 0, timeout);
}

/* the timeout field of the options table at arg */
static double opts_timeout(lua_State *L, int arg) {
  double sec;
  lua_getfield(L, arg, "timeout");
  if (lua_isnil(L, -1)) sec = -1;
  else if (!lua_isnumber(L, -1))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "bad argument #%d to 'any' (timeout: number expected, got %s)",
                      arg, luaL_typename(L, -1));
  else {
    sec = (double)lua_tonumber(L, -1);
    if (!(sec >= 0)) sec = 0;
  }
  lua_pop(L, 1);
  return sec;
}

/* task.any(co1, co2, ..., opts?) or task.any(list, opts?): opts is
   {timeout = sec} */
static int t_any(lua_State *L) {
  double timeout = -1;
  int n = lua_gettop(L), i, len;
  if (n >= 1 && lua_istable(L, 1)) {
    if (n >= 2 && !lua_isnil(L, 2)) {
      if (!lua_istable(L, 2))
        return lw_errorat(L, LW_TASK_LEVEL,
                          "bad argument #2 to 'any' (table expected, got %s)",
                          luaL_typename(L, 2));
      timeout = opts_timeout(L, 2);
    }
    lua_settop(L, 1);
    len = (int)lw_rawlen(L, 1);
    if (len == 0)
      return lw_errorat(L, LW_TASK_LEVEL, "bad argument #1 to 'any' (empty list)");
    for (i = 1; i <= len; i++) {
      lua_rawgeti(L, 1, i);
      if (lua_type(L, -1) != LUA_TTHREAD)
        return lw_errorat(L, LW_TASK_LEVEL,
                          "bad argument #1 to 'any' (list item %d: thread expected, got %s)",
                          i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
    return lw_sched_any_list(sched(L), L, 1, timeout);
  } else if (n >= 2 && lua_istable(L, n)) {
    timeout = opts_timeout(L, n);
    lua_settop(L, n - 1);
  }
  return await_common(L, "any", 1, timeout);
}

/* awaitall(list, failfast, sec): task.all's and group:wait's wait (the
   Lua sides checked the list's items); see lw_sched_await_all */
static int t_awaitall(lua_State *L) {
  double timeout = -1;
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_isnumber(L, 3)) {
    timeout = (double)lua_tonumber(L, 3);
    if (!(timeout >= 0)) timeout = 0; /* NaN and negatives: at once */
  }
  lua_settop(L, 2);
  return lw_sched_await_all(sched(L), L, 1, lua_toboolean(L, 2), timeout);
}

static int t_exit(lua_State *L) {
  lw_sched *S = sched(L);
  int code = 0;
  if (!lua_isnoneornil(L, 1)) {
    if (lua_type(L, 1) == LUA_TBOOLEAN) {
      code = lua_toboolean(L, 1) ? 0 : 1;
    } else if (lua_type(L, 1) == LUA_TNUMBER) {
      /* not lua_tointeger: 5.3+ makes 1.5 a 0, success, and an int
         cannot hold 2^40 */
      lua_Number x = lua_tonumber(L, 1);
      if (!(x >= INT_MIN && x <= INT_MAX) || x != floor(x))
        return lw_errorat(L, LW_TASK_LEVEL,
                          "bad argument #1 to 'exit' (number has no "
                             "integer representation)");
      code = (int)x;
    } else
      return lw_errorat(L, LW_TASK_LEVEL,
                        "bad argument #1 to 'exit' (number expected, got %s)",
                        luaL_typename(L, 1));
  }
  if (lws_hosted_shared(S))
    /* stopping the scheduler there would freeze every other task of the
       state for good (other plugins' in Neovim), and nobody reads a code */
    return lw_errorat(L, LW_TASK_LEVEL,
                      "task.exit: no run to end: the tasks run on luv's loop "
                      "(uv.run, Neovim); end them with task.cancel, or run "
                      "them under lw.run");
  lua_settop(L, 0);
  return lw_sched_exit(S, L, code);
}

/* task.exitcode(): the code task.exit gave when it stopped the last
   lw.run; nil when that run ended otherwise (or none ran).  lw.run itself
   returns f's results, and nothing after task.exit */
static int t_exitcode(lua_State *L) {
  lw_sched *S = sched(L);
  if (S->runexited) lua_pushinteger(L, S->runexit);
  else lua_pushnil(L);
  return 1;
}

/* task.onerror(fn): fn(co, err, report) receives the errors of tasks
   nobody awaited, instead of the default report; nil restores it */
static int t_onerror(lua_State *L) {
  (void)sched(L);
  if (!lua_isnoneornil(L, 1) && !lua_isfunction(L, 1))
    return luaL_error(L, "bad argument #1 to 'onerror' (function or nil expected, got %s)",
                      luaL_typename(L, 1));
  lua_settop(L, 1);
  lws_setonerror(L);
  return 0;
}

static int t_clock(lua_State *L) {
  lua_pushnumber(L, (lua_Number)lw_sched_now(sched(L)));
  return 1;
}

/* lw.run's main task failed: stop the loop at once, as the CLI does, so
   that a listening server or a far timer cannot hold its error back.  A
   host's own end callback is still told first.  Raises no Lua error */
typedef struct run_end {
  lw_sched *S; lua_State *co; int failed; lw_end_fn prev; void *prev_ud;
} run_end;
static void run_onend(void *ud, lua_State *co, int status) {
  run_end *e = (run_end *)ud;
  if (e->prev != NULL) e->prev(e->prev_ud, co, status);
  if (co != e->co || status != LW_FAILED || lws_isexited(e->S)) return;
  e->failed = 1;
  lws_setexited(e->S, 1);
}

/* lw.run(f, ...): f as the main task, until no task can run any more, or
   until f fails.  May raise */
int lw_lua_run(lua_State *L) {
  lw_sched *S = lw_sched_check(L);
  lua_State *co;
  int rc, n;
  run_end e;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lws_main(S) != NULL || lws_stepping(S))
    return luaL_error(L, "run: the scheduler is already running");
  lws_setexited(S, 0);
  S->runexited = 0;
  co = lua_newthread(L);
  lua_insert(L, 1);                /* keep co referenced at index 1 */
  if (!lua_checkstack(co, lua_gettop(L) - 1)) /* lua_xmove does not grow it */
    return luaL_error(L, "run: too many arguments");
  lua_xmove(L, co, lua_gettop(L) - 1);
  lws_setmain(S, co);
  e.S = S, e.co = co, e.failed = 0, e.prev = S->onend, e.prev_ud = S->onend_ud;
  lw_sched_onend(S, run_onend, &e);
  rc = lw_sched_resume(S, co, L, lua_gettop(co) - 1);
  lw_sync_running(L); /* L ran other threads; what follows may raise */
  if (rc != LW_EMEM && !e.failed) rc = lw_sched_run(S);
  lw_sync_running(L);
  lw_sched_onend(S, e.prev, e.prev_ud);
  lws_setmain(S, NULL);
  if (rc == LW_EMEM) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  lua_settop(L, 1);
  /* the run is over (unless it goes on in a running loop): none of its
     tasks may wait in a channel, event or semaphore for the next run;
     a deadlock's message names them first */
  if (e.failed || (rc == LW_OK && lws_isover(S, co))) lw_sync_abandon(L);
  if (e.failed) { /* what else is queued or timed goes, as after task.exit */
    lw_sched_clear(S, L);
    lws_setexited(S, 0);
    rc = LW_OK;
  }
  if (rc == LW_EBUSY) /* in a luv callback under uv.run, or a host's loop */
    return luaL_error(L, "run: the event loop is running already and libuv "
                      "cannot run it inside itself (f goes on as a task)");
  if (rc == LW_EEXITED || rc == LW_EDEADLOCK) {
    n = lw_push_waiters(L, S); /* before the clear forgets them */
    lw_sync_abandon(L);
    lw_sched_clear(S, L); /* the next run starts clean */
    lws_setexited(S, 0);
    if (rc == LW_EEXITED) {
      S->runexited = 1;
      S->runexit = S->exitcode;
      return 0;
    }
    return luaL_error(L, "deadlock: %d thread%s waiting%s", n ? n : 1,
                      n > 1 ? "s" : "", lua_tostring(L, -1));
  }
  if (rc == LW_EMEM) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  n = lw_status(lws_store(S), co);
  if (n == LW_RETURNED || n == LW_FAILED || n == LW_CANCELLED) {
    int k = lw_take(lws_store(S), co, L);
    if (lua_toboolean(L, 2)) return k - 1;
    lua_settop(L, 3);
    return lua_error(L);
  }
  n = lw_push_waiters(L, S);
  lw_sync_abandon(L);
  return luaL_error(L, "deadlock: %d thread%s waiting%s", n ? n : 1,
                    n > 1 ? "s" : "", lua_tostring(L, -1));
}

static const luaL_Reg task_funcs[] = {
  {"spawn", t_spawn}, {"defer", t_defer},   {"delay", t_delay},
  {"wait", t_wait},   {"cancel", t_cancel}, {"await", t_await},
  {"any", t_any},     {"exit", t_exit},     {"clock", t_clock},
  {"wrap", lw_task_wrap},
  {"onerror", t_onerror}, {"exitcode", t_exitcode},
  {"_awaitall", t_awaitall}, /* moved to the shared table (add_all) */
  {NULL, NULL}
};

#if LW_SUSPEND_WRAPPED
/* The functions that suspend return LW_SUSPEND_MARK, and this wrapper
   suspends the task for them (see lws_suspend() in lw_sched.c) and
   suspends it again while it is cancelled: before 5.4 a cancelled task
   cannot be closed, and a raw coroutine.resume would otherwise bring it
   back to life.  "... == mark" reads the first result only; "return ..."
   keeps their number, none included.  Each C function is called through
   a local of its own name: 5.1 and LuaJIT name a C function in a
   traceback by the local it was called through ('exit', not 'f'). */
static void wrap_suspending(lua_State *L, int t) {
  static const char code[] =
    "local mark, yield, cancelled, t, cmark, error = ...\n"
    "local function again(...)\n"
    "  if ... == cmark then error('cancelled', 0) elseif cancelled() then return again(yield()) end\n"
    "  return ...\n"
    "end\n"
    "local function after(...)\n"
    "  if ... == mark then return again(yield()) end\n"
    "  return ...\n"
    "end\n"
    "local wait, await, any, exit, _awaitall = t.wait, t.await, t.any, t.exit, t._awaitall\n"
    "t.wait = function(...) return after(wait(...)) end\n"
    "t.await = function(...) return after(await(...)) end\n"
    "t.any = function(...) return after(any(...)) end\n"
    "t.exit = function(...) return after(exit(...)) end\n"
    "t._awaitall = function(...) return after(_awaitall(...)) end\n";
  t = lw_absindex(L, t);
  if (luaL_loadbuffer(L, code, sizeof code - 1, "=luaweave.task") != 0)
    lua_error(L);
  lws_setwrapperenv(L, 0); /* hence error as a local */
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK); /* interns it */
  if (!lw_pushsuspender(L, 0))
    luaL_error(L, "luaweave.task: LuaJIT needs the coroutine library");
  lw_sched_pushbox(L);
  lws_pushcancelled(L);
  lua_pushvalue(L, t);
  lua_pushlightuserdata(L, (void *)&LW_CANCEL_MARK); /* interns it */
  lua_getglobal(L, "error");
  lua_call(L, 6, 0);
}
#endif

/* task.all(list, sec?): one wait for every thread of the list, each
   registered once (lw_sched_await_all), so that every one of them is
   awaited all along (a failure is heard, not reported) and the cost is
   linear; shared.awaitall is that wait, for group:wait too */
static void add_all(lua_State *L, int t, int shared) {
  static const char code[] =
    "local t, shared = ...\n"
    "local awaitall, type, error, tonumber = t._awaitall, type, error, tonumber\n"
    "t._awaitall = nil\n"
    "shared.awaitall = awaitall\n"
    "function t.all(list, sec)\n"
    "  if type(list) ~= 'table' then\n"
    "    error(\"bad argument #1 to 'all' (table expected, got \" .. type(list) .. ')', 2)\n"
    "  end\n"
    "  if sec ~= nil and tonumber(sec) == nil then\n"
    "    error(\"bad argument #2 to 'all' (number expected, got \" .. type(sec) .. ')', 2)\n"
    "  end\n"
    "  local n = #list\n"
    "  for i = 1, n do\n"
    "    local co = list[i]\n"
    "    if type(co) ~= 'thread' then\n"
    "      error(\"bad argument #1 to 'all' (list item \" .. i ..\n"
    "            ': thread expected, got ' .. type(co) .. ')', 2)\n"
    "    end\n"
    "  end\n"
    "  local got, why = awaitall(list, false, sec)\n"
    "  if got == nil then return nil, why end\n"
    "  -- each index its own table, a thread listed twice included\n"
    "  local out, seen = {}, {}\n"
    "  for i = 1, n do\n"
    "    local co = list[i]\n"
    "    local r = got[co]\n"
    "    if seen[co] then\n"
    "      local c = { n = r.n }\n"
    "      for j = 1, r.n do c[j] = r[j] end\n"
    "      r = c\n"
    "    end\n"
    "    seen[co] = true\n"
    "    out[i] = r\n"
    "  end\n"
    "  return out\n"
    "end\n";
  t = lw_absindex(L, t);
  shared = lw_absindex(L, shared);
  if (luaL_loadbuffer(L, code, sizeof code - 1, "=luaweave.task") != 0)
    lua_error(L);
  lua_pushvalue(L, t);
  lua_pushvalue(L, shared);
  lua_call(L, 2, 0);
}

int luaopen_luaweave_task(lua_State *L) {
  lw_sched_check(L);
  lua_createtable(L, 0, 9);
  lw_sched_pushbox(L);
  lw_setfuncs(L, task_funcs, 1);
  lw_luv_share(L);
#if LW_SUSPEND_WRAPPED
  wrap_suspending(L, -1);
#endif
  lua_newtable(L); /* what the Lua sides share */
  add_all(L, -2, -1);
  lw_sync_open(L, -2, -1);
  lw_group_open(L, -2, -1);
  lw_info_open(L, -2, -1);
  lua_pop(L, 1);
  return 1;
}
