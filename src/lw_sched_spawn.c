/*
** lw_sched_spawn.c — starting work: task.spawn (now, nested in the
** caller), task.defer (after this cycle's spawned work) and task.delay
** (after a time), of a function or of a suspended thread.
*/
#include "lw_sched.h"
#include "lw_compat.h"

/* co is about to be resumed with arguments of its own.  If a start is
   still pending on it (f and the start's arguments wait on its stack; the
   spawn, defer or delay entry goes stale with this resumption), drop the
   start's arguments so that f gets these, as a coroutine's first resume
   gives them: left there, Lua would call the last of them */
void lws_drop_start_args(lua_State *co) {
  lua_Debug ar;
  if (lua_status(co) == LUA_OK && lua_gettop(co) > 1 &&
      !lua_getstack(co, 0, &ar))
    lua_settop(co, 1);
}

/* the thread to run f_or_co with nargs arguments (all popped from L):
   a new thread holding f and the arguments (K_START), or co itself with
   a pack of the arguments on L's top (K_ARGS).  *kind says which. */
/* packed: a function's arguments go into a pack, not onto the new
   thread (a deferred start): a thread resumed directly before its start
   (coroutine.resume(t, ...)) then calls f with that resume's arguments,
   as a coroutine's first resume does, instead of calling an argument */
static lua_State *prepare(lw_sched *S, lua_State *L, int nargs, int *kind,
                          int packed) {
  int fidx = lua_gettop(L) - nargs;
  lua_State *co;
  if (lua_type(L, fidx) == LUA_TFUNCTION) {
    co = lws_new_thread(S, L);
    if (!packed || nargs == 0) {
      /* lua_xmove does not grow co's stack: a fresh thread has room for
         about 40 values */
      if (!lua_checkstack(co, nargs + 1))
        luaL_error(L, "too many arguments to start a task");
      lua_insert(L, fidx);
      lua_xmove(L, co, nargs + 1); /* f and its arguments */
      *kind = K_START;
      return co;
    }
    lua_pushvalue(L, fidx);
    lua_xmove(L, co, 1);  /* f alone */
    lua_replace(L, fidx); /* the thread where f was */
    *kind = K_FARGS;
  } else {
    co = lua_tothread(L, fidx);
    *kind = K_ARGS;
  }
  /* pack {co, n, args...} in place of co and the arguments */
  lua_createtable(L, nargs + 2, 0);
  lua_insert(L, fidx);
  lua_pushinteger(L, nargs);
  lua_rawseti(L, fidx, 2);
  while (nargs > 0) lua_rawseti(L, fidx, 2 + nargs--);
  lua_rawseti(L, fidx, 1);
  return co;
}

static int valid_target(lua_State *L, int nargs) {
  int t = lua_type(L, lua_gettop(L) - nargs);
  return nargs >= 0 && lua_gettop(L) > nargs &&
         (t == LUA_TFUNCTION || t == LUA_TTHREAD);
}

/* why co cannot be spawned (now: 1) or deferred (0) from L: 0 it can,
   1 dead (returned, failed, cancelled), 2 running or resuming another
   (a task may defer itself: it suspends before its turn) */
int lws_unresumable(lw_sched *S, lua_State *L, lua_State *co, int now) {
  lua_Debug ar;
  int st = lw_status(S->s, co);
  if (lw_co_status(L, co) == LW_CO_DEAD || st == LW_RETURNED ||
      st == LW_FAILED || st == LW_CANCELLED)
    return 1;
  if (now && (co == L || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar))))
    return 2;
  return 0;
}

int lw_sched_spawn(lw_sched *S, lua_State *L, int nargs) {
  lua_State *co;
  int st;
  if (S == NULL || L == NULL || LWS_GONE(S) || !valid_target(L, nargs))
    return LW_EINVAL;
  if (lw_universe(L) != lw_store_universe(S->s)) return LW_EUNIVERSE;
  if (lw_store_ismain(S->s, lua_tothread(L, -(nargs + 1)))) return LW_ESTATE;
  if (lua_type(L, -(nargs + 1)) == LUA_TFUNCTION) {
    int kind;
    co = prepare(S, L, nargs, &kind, 0);
    /* the new thread is on L's top, f and args on co */
    nargs = lua_gettop(co) - 1;
  } else {
    co = lua_tothread(L, -(nargs + 1));
    if (lws_unresumable(S, L, co, 1) != 0) return LW_ESTATE;
    if (!lua_checkstack(co, nargs + 1))
      luaL_error(L, "too many arguments to resume");
    lws_drop_start_args(co);
    lua_xmove(L, co, nargs); /* the thread stays on L's top */
  }
  st = lw_sched_resume(S, co, L, nargs);
  if (st == LW_EMEM) lws_raise_mem(L);
  if (st == LW_ESTATE) {
    int dead = lw_co_status(L, co) == LW_CO_DEAD ||
               lw_status(S->s, co) == LW_CANCELLED;
    lws_report_msg(S, co, dead ? "cannot resume dead coroutine"
                           : "cannot resume non-suspended coroutine");
  }
  /* a spawn from outside any task and step is a step of its own: its
     failure is reported now, unless someone awaited it meanwhile */
  if (!S->stepping && S->runco == NULL) lws_flush_errors(S, L);
  return LW_OK;
}

/* queue f_or_co to start or resume after `seconds` (< 0: deferred) */
static int schedule(lw_sched *S, lua_State *L, double seconds, int nargs) {
  lua_State *co;
  lw_rec *r;
  lw_ent e;
  int kind, e2;
  if (S == NULL || L == NULL || LWS_GONE(S) || !valid_target(L, nargs))
    return LW_EINVAL;
  if (lw_universe(L) != lw_store_universe(S->s)) return LW_EUNIVERSE;
  if (lw_store_ismain(S->s, lua_tothread(L, -(nargs + 1)))) return LW_ESTATE;
  if (lua_type(L, -(nargs + 1)) == LUA_TTHREAD &&
      lws_unresumable(S, L, lua_tothread(L, -(nargs + 1)), 0) != 0)
    return LW_ESTATE;
  co = prepare(S, L, nargs, &kind, 1);
  /* L's top: the new thread (K_START) or the pack (K_ARGS, K_FARGS) */
  if ((r = lw_store_track(S->s, co)) == NULL) lws_raise_mem(L);
  lws_task_put(S, r, T_READY);
  e.co = co;
  e.ticket = r->ticket;
  if (kind == K_START) {
    lua_pushvalue(L, -1); /* keep the thread for the caller */
  } else {
    lws_push_thread(L, co);   /* the caller gets the thread */
    lua_insert(L, -2);
  }
  e.kind = kind;
  e.t0 = seconds < 0 ? 0 : lw_sched_now(S); /* a delay's since (task.info) */
  e.ref = lws_anchor(S, L);
  if (seconds < 0) e2 = lws_qpush(S, &e);
  else e2 = lws_tpush(S, e.t0 + seconds, &e, seconds == 0);
  if (e2 != LW_OK) {
    lws_unanchor(S, L, e.ref);
    lua_pop(L, 1);
    lws_task_drop(S, co);
    lws_raise_mem(L);
  }
  return LW_OK;
}

int lw_sched_defer(lw_sched *S, lua_State *L, int nargs) {
  return schedule(S, L, -1, nargs);
}

/* NaN, negative, infinite and absurd durations are 0 */
double lws_sane_seconds(double sec) {
  if (!(sec > 0) || sec > 2147483647.0) return 0;
  return sec;
}

int lw_sched_delay(lw_sched *S, lua_State *L, double seconds, int nargs) {
  return schedule(S, L, lws_sane_seconds(seconds), nargs);
}

