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

/* Where a failed task is closed at its end (5.4: close_failed), its
   stack, and so its traceback, is gone by the time its report is made or
   a group raises its error: the traceback is taken before, and kept
   here, in a weak-keyed table under this address, [co] = traceback */
static const char FAILTRACE_KEY = 'T';

/* push the traceback kept for co, or nil */
void lws_push_failtrace(lua_State *L, lua_State *co) {
  lw_rawgetp(L, LUA_REGISTRYINDEX, &FAILTRACE_KEY);
  if (!lua_istable(L, -1)) return; /* nil */
  lws_push_thread(L, co);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

/* keep co's traceback (or forget an older one: with tb 0), before a
   close wipes its stack; may raise a memory error */
static void keep_failtrace(lua_State *co, lua_State *W, int tb) {
  luaL_checkstack(W, 24, "report");
  lws_push_weakreg(W, &FAILTRACE_KEY);
  lws_push_thread(W, co);
  if (tb) lw_traceback(W, co, NULL);
  else lua_pushnil(W);
  lua_rawset(W, -3);
  lua_pop(W, 1);
}

/* push co's error message with a traceback onto W (memory errors are
   raised there).  Made when co fails, while its stack is as the error
   left it, or from the traceback kept before its close */
static void push_report(lw_sched *S, lua_State *co, lua_State *W) {
  /* 24: luaL_traceback of 5.4.4 uses more than the slots it checks */
  luaL_checkstack(W, 24, "report");
  if (lw_result(S->s, co, W) == 2) {
    int top;
    lw_sched_errmsg(W);
    top = lua_gettop(W);
    lws_push_failtrace(W, co);
    if (lua_isstring(W, -1)) {
      lua_pushliteral(W, "\n");
      lua_insert(W, -2);
      lua_pushvalue(W, top);
      lua_insert(W, -3);
      lua_concat(W, 3);
    } else {
      lua_pop(W, 1);
      lw_traceback(W, co, lua_tostring(W, -1));
    }
    lua_replace(W, top - 1);
    lua_settop(W, top - 1);
  } else {
    lw_traceback(W, co, "task failed");
  }
}

static void deliver(lw_sched *S, lua_State *co, const char *msg) {
  S->nerrors++;
  if (S->onerror) S->onerror(S->onerror_ud, co, msg);
  else fprintf(stderr, "luaweave: %s\n", msg);
}

/* task.onerror's handler lives in the registry under this address: it
   outlives lw_sched_clear, as the C callback does */
static const char ONERROR_KEY = 'O';

void lws_setonerror(lua_State *L) { /* pops a function or nil */
  lw_rawsetp(L, LUA_REGISTRYINDEX, &ONERROR_KEY);
}

/* deliver co's report (on W's top, popped) to task.onerror's handler as
   fn(co, err, report), or else as deliver does.  The handler runs
   protected: if it raises, its error is delivered instead, so that an
   error is never lost.  May raise a memory error. */
static void deliver_top(lw_sched *S, lua_State *co, lua_State *W) {
  int top = lua_gettop(W), n;
  luaL_checkstack(W, 8, "report");
  lw_rawgetp(W, LUA_REGISTRYINDEX, &ONERROR_KEY);
  if (!lua_isfunction(W, -1)) {
    deliver(S, co, lua_tostring(W, top));
    lua_settop(W, top - 1);
    return;
  }
  lws_push_thread(W, co);
  /* the error object itself while co's result still holds it (else the
     report's message: co was untracked meanwhile) */
  n = lw_result(S->s, co, W);
  if (n == 2 && !lua_toboolean(W, -2)) {
    lua_remove(W, -2);
  } else {
    if (n > 0) lua_pop(W, n);
    lua_pushvalue(W, top);
  }
  lua_pushvalue(W, top);
  if (lua_pcall(W, 3, 0, 0) != LUA_OK) {
    /* the task's error first, then the handler's: neither hides the
       other */
    deliver(S, co, lua_tostring(W, top));
    lw_sched_errmsg(W);
    lua_pushfstring(W, "task.onerror: %s", lua_tostring(W, -1));
    deliver(S, co, lua_tostring(W, -1));
  }
  lua_settop(W, top - 1);
}

/* ------------------------------------------------------------------ */
/* the end path                                                        */

/* Errors of tasks the scheduler ran are reported at the end of the step
   in which they failed unless someone awaited the task by then: a task
   that fails before its spawner reaches task.await is handled.  The
   pending ones wait in one table: [1..n] the threads in failure order,
   [thread] = its report (message and traceback) while still unhandled. */

static void pend_add(lw_sched *S, lua_State *co, lua_State *W) {
  luaL_checkstack(W, 4, "report");
  lua_rawgeti(W, LUA_REGISTRYINDEX, S->eref);
  lws_push_thread(W, co);
  lua_rawget(W, -2);
  if (lua_toboolean(W, -1)) { /* pending already */
    lua_pop(W, 2);
    return;
  }
  lua_pop(W, 1);
  lws_push_thread(W, co);
  push_report(S, co, W);
  lua_rawset(W, -3);
  lws_push_thread(W, co);
  lua_rawseti(W, -2, (int)S->npend + 1);
  lua_pop(W, 1);
  S->npend++;
}

void lws_handled(lw_sched *S, lua_State *co, lua_State *W) {
  if (S->npend == 0 || !lua_checkstack(W, 3)) return;
  lua_rawgeti(W, LUA_REGISTRYINDEX, S->eref);
  lws_push_thread(W, co);
  lua_pushnil(W); /* only ever clears a field: never allocates */
  lua_rawset(W, -3);
  lua_pop(W, 1);
}

void lws_flush_errors(lw_sched *S, lua_State *W) {
  size_t i, n = S->npend;
  if (n == 0) return;
  luaL_checkstack(W, 4, "report");
  S->npend = 0; /* a memory error below loses the rest, never repeats one */
  for (i = 1; i <= n; i++) {
    lua_State *co;
    lua_rawgeti(W, LUA_REGISTRYINDEX, S->eref);
    lua_rawgeti(W, -1, (int)i);          /* eref, co */
    co = lua_tothread(W, -1);
    lua_pushvalue(W, -1);
    lua_rawget(W, -3);                   /* eref, co, report or nil */
    lua_insert(W, -2);
    lua_pushnil(W);
    lua_rawset(W, -4);                   /* [co] = nil */
    lua_pushnil(W);
    lua_rawseti(W, -3, (int)i);
    if (co != NULL && lua_type(W, -1) == LUA_TSTRING) {
      deliver_top(S, co, W);
      lua_pop(W, 1);
    } else {
      lua_pop(W, 2);
    }
  }
}

/* ------------------------------------------------------------------ */
/* end guards                                                          */

/* guard functions by thread: GUARD[co] = {[key] = fn}, in a registry
   table with weak keys (a thread nobody holds cannot end by a path that
   would call its guards) */
static const char GUARD_KEY = 'G';

/* guard(co, key, fn|nil) */
static int l_guard(lua_State *L) {
  lw_sched *S = *(lw_sched **)lua_touserdata(L, lua_upvalueindex(1));
  luaL_checktype(L, 1, LUA_TTHREAD);
  luaL_checkany(L, 2);
  lua_settop(L, 3);
  lws_push_weakreg(L, &GUARD_KEY);
  lua_pushvalue(L, 1);
  lua_rawget(L, 4);
  if (!lua_istable(L, -1)) {
    if (lua_isnil(L, 3)) return 0;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, 4);
    if (S != NULL && !LWS_GONE(S)) S->guards++;
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  lua_pushnil(L);
  if (lua_next(L, -2)) return 0;
  /* the thread's last guard went: so does its list, and with the count
     back to 0 the end path is as cheap as before any guard */
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  lua_rawset(L, 4);
  if (S != NULL && !LWS_GONE(S) && S->guards > 0) S->guards--;
  return 0;
}

void lws_pushguard(lua_State *L) { lua_pushcclosure(L, l_guard, 1); }

/* co ended: call its guards, each once, protected (a guard's error is
   reported as co's).  W is the running thread; may raise a memory
   error */
static void run_guard(lw_sched *S, lua_State *co, lua_State *W) {
  int top = lua_gettop(W);
  luaL_checkstack(W, 8, "guard");
  lw_rawgetp(W, LUA_REGISTRYINDEX, &GUARD_KEY);
  if (lua_istable(W, -1)) {
    lws_push_thread(W, co);
    lua_rawget(W, -2);
    if (lua_istable(W, -1)) {
      lws_push_thread(W, co);
      lua_pushnil(W);
      lua_rawset(W, -4); /* detached: a guard that sets another makes a new list */
      if (S->guards > 0) S->guards--;
      lua_pushnil(W);
      while (lua_next(W, -2)) { /* guards, key, fn */
        lws_push_thread(W, co);
        if (lua_pcall(W, 1, 0, 0) != LUA_OK) {
          lw_sched_errmsg(W);
          deliver(S, co, lua_tostring(W, -1));
          lua_pop(W, 1);
        }
      }
    }
  }
  lua_settop(W, top);
}

/* A task that failed is over: its to-be-closed variables (5.4) run now,
   with its error, as lua(1) closes a failed chunk's, once its report
   (which needs its frames) is made.  Through the store's close, which
   keeps the error (or the one a __close raised instead, which is also
   reported) as the task's result; its end was told already, so the
   store tells nobody again.  May raise a memory error. */
static void close_failed(lw_sched *S, lua_State *co, lua_State *W) {
  void (*onend)(void *, lua_State *, lua_State *);
  int n, top = lua_gettop(W);
  luaL_checkstack(W, 4, "close");
  lua_pushvalue(co, -1); /* the error, to tell a __close's from it */
  lua_xmove(co, W, 1);
  onend = lw_store_setonend(S->s, NULL, NULL);
  n = lw_close(S->s, co, W); /* false, err */
  lw_store_setonend(S->s, onend, S);
  if (n == 2 && !lua_rawequal(W, -1, top + 1)) {
    lw_sched_errmsg(W);
    lws_report_msg(S, co, lua_tostring(W, -1));
  }
  lua_settop(W, top);
}

/* co's end is recorded; report: a task the scheduler ran (or cancelled)
   that failed is reported unless awaited by the end of the step */
static void end_now(lw_sched *S, lua_State *co, lua_State *W, int report_it) {
  int woke, st, failed;
  if (S->guards) run_guard(S, co, W);
  failed = report_it && co != S->main && lw_status(S->s, co) == LW_FAILED;
  /* closed before its awaiters are told: a __close that raises replaces
     the error they get, whether or not the task yielded before failing */
  if (failed && lw_co_canreset()) {
    int closing = lua_status(co) > LUA_YIELD && lua_gettop(co) > 0;
    keep_failtrace(co, W, closing);
    if (closing) close_failed(S, co, W);
  }
  woke = lws_wake(S, co, W);
  if (failed) {
    if (woke) lws_handled(S, co, W);
    else pend_add(S, co, W);
  }
  if (S->onend != NULL && (st = lw_status(S->s, co)) > 0)
    S->onend(S->onend_ud, co, st);
}

typedef struct ending { lw_sched *S; lua_State *co; int report; } ending;

static int end_protected(lua_State *L) {
  ending *a = (ending *)lua_touserdata(L, 1);
  end_now(a->S, a->co, L, a->report);
  return 0;
}

/* The store recorded co's end (lw_store.h, onend), by whatever entry:
   the scheduler's own resumption, lw.resume, an installed
   coroutine.resume or close, lw_cancel, lw_reset.  Runs protected: the
   store's entries raise no error for this.  If memory runs out, the
   awaiters are found by the next sweep (lws_sweep) instead. */
void lws_onend(void *ud, lua_State *co, lua_State *L) {
  lw_sched *S = (lw_sched *)ud;
  ending a;
  lw_rec *r;
  int st;
  if (LWS_GONE(S)) return;
  /* a task ended by another path than the scheduler's own resumption
     (lw.resume, an installed coroutine.resume or close, lw_cancel,
     lw_reset) ends its suspension with it: its wait's timer, a queued
     start or a wake must not resume it, nor its await count as waiting
     (a false deadlock).  The scheduler's own resumption does this itself
     (resume_rec).  Never allocates. */
  if (co != S->runco && (r = lws_task_rec(S, co)) != NULL) {
    if (r->task == T_AWAIT) S->wsweep = 1; /* its registrations go stale */
    lws_task_end(S, co, r);
  }
  a.report = co == S->runco || co == S->cancelling;
  if (S->wlists == 0 && S->onend == NULL && S->npend == 0 && !S->guards &&
      !(a.report && lw_status(S->s, co) == LW_FAILED))
    return; /* nobody to tell: the common case costs this test */
  if (a.report && L != NULL) {
    /* the scheduler's own resumption or cancel, where memory errors are
       raised in the running thread L as everywhere in the scheduler; no
       protected call, which would cost C stack at Lua's nesting limit */
    end_now(S, co, L, 1);
    return;
  }
  if (L == NULL || lua_status(L) != LUA_OK) {
    /* no running thread given (or one in an error state): the
       scheduler's own, unless a step is using it */
    if (S->stepping || lua_status(S->T) != LUA_OK) {
      S->wsweep = 1;
      return;
    }
    L = S->T;
  }
  a.S = S;
  a.co = co;
  st = lw_cpcall(L, end_protected, &a);
  if (st != LUA_OK) {
    if (st > 0) lua_pop(L, 1);
    S->wsweep = 1;
    if (a.report && lw_status(S->s, co) == LW_FAILED)
      lws_report_msg(S, co, "task failed (no memory to report its error)");
  }
}

/* The store is about to resume the task co (lw_store.h, onresume).  If
   that is not the scheduler's own resumption (lw.resume, an installed
   coroutine.resume: an early wake), the task's wait, await, async
   operation or queued start is over: its entries go stale with its task
   state, and its registrations are swept at the step's end.  Never
   allocates. */
void lws_onresume(void *ud, lua_State *co) {
  lw_sched *S = (lw_sched *)ud;
  lw_rec *r;
  if (LWS_GONE(S) || co == S->runco) return;
  if ((r = lws_task_rec(S, co)) == NULL || r->task == T_RUNNING) return;
  if (r->task == T_AWAIT) S->wsweep = 1;
  lws_task_end(S, co, r);
}

/* co ended by the scheduler's own cancel: W is the running thread */
void lws_cancel(lw_sched *S, lua_State *co, lua_State *W) {
  lua_State *prev = S->cancelling;
  lw_rec *r = lws_task_rec(S, co);
  int e;
  if (S->precancel != NULL) S->precancel(S->precancel_ud, co);
  if (r != NULL && r->task == T_AWAIT)
    S->wsweep = 1; /* its registrations go stale: drop them at the step's end */
  lws_task_drop(S, co);
  S->cancelling = co;
  e = lw_cancel(S->s, co, W); /* records the end: lws_onend runs */
  S->cancelling = prev;
  if (e == LW_EMEM) lws_raise_mem(W);
}

/* Lua refused to run co at all ("C stack overflow": resumes nested too
   deep) and left its message on co's top.  A task is not retried later
   (its arguments are gone): it fails with that message, as if it had
   raised it, so that it is reported or handed to its awaiters.  A
   yielded co that this Lua cannot close (before 5.4) is cancelled and the
   message reported.  W is the running thread. */
void lws_refused(lw_sched *S, lua_State *co, lua_State *W) {
  lua_State *prev = S->cancelling;
  void (*onend)(void *, lua_State *, lua_State *);
  int e;
  luaL_checkstack(W, 4, "resume");
  lua_xmove(co, W, 1);
  onend = lw_store_setonend(S->s, NULL, NULL); /* one end, told once, below */
  e = lw_cancel(S->s, co, W); /* never run: dead */
  lw_store_setonend(S->s, onend, S);
  if (e == LW_EMEM) lws_raise_mem(W);
  S->cancelling = co; /* it is reported as the scheduler's */
  if (lw_co_status(W, co) == LW_CO_DEAD && lua_gettop(co) == 0) {
    lw_store_setfailure(S->s, co, W); /* pops the message; the end path */
  } else {
    lws_report_msg(S, co, lua_tostring(W, -1));
    lua_pop(W, 1);
    lws_onend(S, co, W); /* cancelled */
  }
  S->cancelling = prev;
}

/* report to the error callback that co could not be resumed */
void lws_report_msg(lw_sched *S, lua_State *co, const char *msg) {
  deliver(S, co, msg);
}

void lws_report_loose(lw_sched *S, lua_State *W) {
  int top = lua_gettop(W);
  luaL_checkstack(W, 6, "report");
  lw_rawgetp(W, LUA_REGISTRYINDEX, &ONERROR_KEY);
  if (lua_isfunction(W, -1)) {
    lua_pushnil(W); /* not a task */
    lua_pushvalue(W, top - 1);
    lua_pushvalue(W, top);
    if (lua_pcall(W, 3, 0, 0) == LUA_OK) {
      lua_settop(W, top - 2);
      return;
    }
    /* the handler failed: both errors are told, the first one first */
    deliver(S, W, lua_tostring(W, top));
    lw_sched_errmsg(W);
    lua_pushfstring(W, "task.onerror: %s", lua_tostring(W, -1));
    deliver(S, W, lua_tostring(W, -1));
  } else {
    deliver(S, W, lua_tostring(W, top));
  }
  lua_settop(W, top - 2);
}

/* cancel co; W is the running thread (memory errors are raised there) */
int lw_sched_cancel_from(lw_sched *S, lua_State *co, lua_State *W) {
  lw_rec *r;
  lua_Debug ar;
  if (S == NULL || co == NULL || LWS_GONE(S)) return LW_EINVAL;
  if (lw_universe(co) != lw_store_universe(S->s)) return LW_EUNIVERSE;
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
  lws_unwind(S, co, W); /* cleanup before 5.4 (lw_sched.c) */
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

