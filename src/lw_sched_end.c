/*
** lw_sched_end.c — the one end path.  However a task or tracked thread
** ends (a recorded resumption, cancel, coroutine.close, a reset, an end
** found by validation), lws_ended runs: it wakes the thread's awaiters
** and reports an error nobody awaited.  Also task.cancel and error
** messages.
*/
#include "lw_sched.h"
#include "lw_compat.h"

#include <stdio.h>

/* ------------------------------------------------------------------ */
/* errors                                                              */

/* arg 1's __tostring, when it has one that gives a string */
static int tostring_protected(lua_State *L) {
  return luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING;
}

/* The rule of lua.c (5.4), on every version and for the CLI's main
   chunk and tasks alike; not the global tostring, which a script may have
   replaced, and which gives "nil" or an address */
void lw_sched_errmsg(lua_State *L) {
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushstring(L, lua_tostring(L, -1));
    lua_remove(L, -2);
    return;
  }
  lua_pushcfunction(L, tostring_protected);
  lua_insert(L, -2);
  /* protected: a __tostring that raises (or yields) costs its message */
  if (lua_pcall(L, 1, 1, 0) != LUA_OK || lua_type(L, -1) != LUA_TSTRING) {
    lua_pop(L, 1);
    lua_pushfstring(L, "(error object is a %s value)", lua_typename(L, t));
  }
}

/* W is the running thread: errors (memory only) are raised there */
static void report(lw_sched *S, lua_State *co, lua_State *W) {
  lua_State *T = W;
  int top = lua_gettop(T);
  luaL_checkstack(T, 8, "report");
  S->nerrors++;
  if (lw_result(S->s, co, T) == 2) {
    lw_sched_errmsg(T);
    lw_traceback(T, co, lua_tostring(T, -1));
  } else {
    lw_traceback(T, co, "task failed");
  }
  if (S->onerror) S->onerror(S->onerror_ud, co, lua_tostring(T, -1));
  else fprintf(stderr, "luaweave: %s\n", lua_tostring(T, -1));
  lua_settop(T, top);
}

/* co ended; failed: by an error */
void lws_ended(lw_sched *S, lua_State *co, int failed, lua_State *W) {
  int woke = lws_wake(S, co, W);
  if (failed && !woke && co != S->main) report(S, co, W);
}

void lws_cancel(lw_sched *S, lua_State *co, lua_State *W) {
  lws_task_drop(S, co);
  if (lw_cancel(S->s, co, W) == LW_EMEM) lws_raise_mem(W);
  /* failed: a to-be-closed variable raised while it closed */
  lws_ended(S, co, lw_status(S->s, co) == LW_FAILED, W);
}

/* Lua refused to run co at all ("C stack overflow": resumes nested too
   deep) and left its message on co's top.  A task is not retried later
   (its arguments are gone): it fails with that message, as if it had
   raised it, so that it is reported or handed to its awaiters.  A
   yielded co that this Lua cannot close (before 5.4) is cancelled and the
   message reported.  1 if co is now failed. */
int lws_refused(lw_sched *S, lua_State *co, lua_State *W) {
  luaL_checkstack(W, 4, "resume");
  lua_xmove(co, W, 1);
  if (lw_cancel(S->s, co, W) == LW_EMEM) lws_raise_mem(W); /* never run: dead */
  if (lw_co_status(W, co) == LW_CO_DEAD && lua_gettop(co) == 0) {
    lw_store_setfailure(S->s, co, W); /* pops the message */
    return 1;
  }
  lws_report_msg(S, co, lua_tostring(W, -1));
  lua_pop(W, 1);
  return 0;
}

/* report to the error callback that co could not be resumed */
void lws_report_msg(lw_sched *S, lua_State *co, const char *msg) {
  S->nerrors++;
  if (S->onerror) S->onerror(S->onerror_ud, co, msg);
  else fprintf(stderr, "luaweave: %s\n", msg);
}

/* cancel co; W is the running thread (memory errors are raised there) */
int lw_sched_cancel_from(lw_sched *S, lua_State *co, lua_State *W) {
  lw_rec *r;
  lua_Debug ar;
  if (S == NULL || co == NULL || LWS_GONE(S)) return LW_EINVAL;
  if (lw_universe(co) != S->s->universe) return LW_EUNIVERSE;
  if (lw_store_ismain(S->s, co)) return LW_ESTATE; /* never a task */
  /* co == W first: in an error handler LuaJIT's status of the running
     thread is LUA_ERRERR, not LUA_OK */
  if (co == W || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar))) {
    /* running or normal: stop it when it next yields */
    if ((r = lws_task_rec(S, co)) == NULL) {
      if (lw_track(S->s, co) == LW_EMEM) return LW_EMEM;
      if ((r = lws_task_set(S, co, T_RUNNING)) == NULL) return LW_EMEM;
    }
    r->cancel = 1;
    return LW_OK;
  }
  if (lw_co_status(W, co) == LW_CO_DEAD || lws_isover(S, co)) return LW_OK;
  lws_cancel(S, co, W);
  lws_purge_timers(S, W);
  return LW_OK;
}

typedef struct cancel_args { lw_sched *S; lua_State *co; int rc; } cancel_args;

static int cancel_protected(lua_State *L) {
  cancel_args *a = (cancel_args *)lua_touserdata(L, 1);
  a->rc = lw_sched_cancel_from(a->S, a->co, L);
  return 0;
}

int lw_sched_cancel(lw_sched *S, lua_State *co) {
  cancel_args a;
  int e;
  if (S == NULL || co == NULL || LWS_GONE(S)) return LW_EINVAL;
  if (S->stepping || lua_status(S->T) != LUA_OK)
    return LW_EBUSY; /* from inside a step: use task.cancel */
  a.S = S;
  a.co = co;
  a.rc = LW_OK;
  e = lws_protect(S, cancel_protected, &a);
  return e != LW_OK ? e : a.rc;
}

