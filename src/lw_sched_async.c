/*
** lw_sched_async.c — async operations: a C function suspends its task
** with a token, and the host completes it later.
*/
#include "lw_sched.h"
#include "lw_compat.h"

/* ------------------------------------------------------------------ */
/* async operations                                                    */

struct lw_async {
  lw_sched *S;
  lua_State *co;
  unsigned ticket;
  int ref; /* anchors co while the operation is outstanding */
};

lw_async *lw_async_begin(lua_State *L) {
  lw_sched *S = lw_sched_check(L);
  lw_async *op;
  lw_rec *r;
  int ref;
  if (!lw_yieldable(L)) {
    luaL_error(L, "async function called outside a task (cannot yield)");
    return NULL;
  }
  if (lw_track(S->s, L) == LW_EMEM) lws_raise_mem(L);
  lua_pushthread(L);
  ref = lws_anchor(S, L);
  op = (lw_async *)lws_alloc(S, NULL, 0, sizeof *op);
  if (op == NULL || (r = lws_task_set(S, L, T_ASYNC)) == NULL) {
    if (op) lws_alloc(S, op, sizeof *op, 0);
    lws_unanchor(S, L, ref);
    lws_raise_mem(L);
    return NULL;
  }
  op->S = S;
  op->co = L;
  op->ticket = r->ticket;
  op->ref = ref;
  S->nasync++;
  return op;
}

int lw_async_yield(lua_State *L, lw_async *op) {
  (void)op;
#if LW_SUSPEND_WRAPPED
  /* called through lw_async_wrap's wrapper (it gave f the mark as
     upvalue 1): the wrapper yields, see lws_suspend() */
  if (lua_touserdata(L, lua_upvalueindex(1)) == (void *)&LW_SUSPEND_MARK)
    return lws_suspend(L);
#endif
  return lua_yield(L, 0);
}

lw_sched *lw_async_sched(lw_async *op) { return op ? op->S : NULL; }

typedef struct complete_args {
  lw_async *op;
  int ok, n, rc;
  lw_push_fn push;
  void *ud;
} complete_args;

/* build the pack {co, n, ok, values...} in the op's anchor slot and queue
   the task; runs protected on the scheduler's thread */
int lws_complete_protected(lua_State *T) {
  lw_sched *S0 = (lw_sched *)lua_touserdata(T, lua_upvalueindex(1));
  complete_args *a = (complete_args *)S0->completing;
  lw_async *op = a->op;
  lw_sched *S = op->S;
  int i, n = a->n, base;
  lw_rec *r;
  lw_ent e;
  if (a->push != NULL) {
    n = a->push(T, a->ud);
    if (n < 0) { /* rejected: the error object is on top */
      a->ok = 0;
      n = 1;
    }
    a->n = n;
  }
  base = lua_gettop(T) - n; /* the values are base+1 .. base+n */
  lua_createtable(T, n + 3, 0);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(T, base + i);
    lua_rawseti(T, -2, i + 3);
  }
  lua_pushboolean(T, a->ok);
  lua_rawseti(T, -2, 3);
  lua_pushinteger(T, n);
  lua_rawseti(T, -2, 2);
  lws_push_thread(T, op->co);
  lua_rawseti(T, -2, 1);
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->aref);
  lua_insert(T, -2);
  lua_rawseti(T, -2, op->ref); /* the pack replaces the thread: no growth */
  r = lws_task_rec(S, op->co);
  if (r == NULL || r->ticket != op->ticket || r->task != T_ASYNC) {
    /* the push ran code (a __gc, say) that moved the task on */
    lws_anchor_free(S, T, op->ref);
    return 0;
  }
  r->task = T_READY; /* the ticket stays the op's */
  e.co = op->co;
  e.ticket = op->ticket;
  e.kind = K_ASYNC;
  e.t0 = 0;
  e.ref = op->ref;
  a->rc = lws_qpush(S, &e);
  return 0;
}

static int complete(lw_async *op, int ok, int n, lw_push_fn push, void *ud) {
  lw_sched *S;
  lua_State *T;
  lw_rec *r;
  complete_args a;
  int e;
  if (op == NULL) return LW_EINVAL;
  S = op->S;
  T = S->T;
  if (LWS_GONE(S)) {
    lws_alloc(S, op, sizeof *op, 0);
    return LW_EINVAL;
  }
  if (n < 0 || lua_gettop(T) < n) return LW_EINVAL;
  r = lws_task_rec(S, op->co);
  if (r == NULL || r->ticket != op->ticket || r->task != T_ASYNC) {
    /* its task moved on (cancelled, woken): drop the outcome */
    lua_pop(T, n);
    lws_anchor_free(S, T, op->ref);
    S->nasync--;
    lws_alloc(S, op, sizeof *op, 0);
    return LW_OK;
  }
  a.op = op;
  a.ok = ok;
  a.n = n;
  a.rc = LW_OK;
  a.push = push;
  a.ud = ud;
  if (!lua_checkstack(T, 3)) {
    lua_pop(T, n);
    e = LW_EMEM;
  } else {
    /* below the values, the preallocated function; the arguments go
       through S, since pushing a light userdata may allocate (LuaJIT) */
    lua_rawgeti(T, LUA_REGISTRYINDEX, S->cref);
    lua_insert(T, -(n + 1));
    S->completing = &a;
    if (lua_pcall(T, n, 0, 0) != LUA_OK) {
      lua_pop(T, 1); /* the error object */
      e = LW_EMEM;
    } else {
      e = a.rc;
    }
  }
  if (e != LW_OK) {
    /* no memory to hand the outcome over: the task cannot be resumed */
    lws_anchor_free(S, T, op->ref);
    lws_task_drop(S, op->co);
  }
  S->nasync--;
  lws_alloc(S, op, sizeof *op, 0);
  return e;
}

int lw_async_resolve(lw_async *op, int nvalues) {
  return complete(op, 1, nvalues, NULL, NULL);
}

int lw_async_reject(lw_async *op) { return complete(op, 0, 1, NULL, NULL); }

int lw_async_complete(lw_async *op, lw_push_fn push, void *ud) {
  if (push == NULL) return LW_EINVAL;
  return complete(op, 1, 0, push, ud);
}

/* the wrapper's second half: after a suspension the values are
   (mark, ok, ...): pass ... on, or raise; a C function that returned
   without suspending passes its results through untouched */
static int async_finish(lua_State *L) {
  if (lua_touserdata(L, 1) != (void *)&lws_async_mark) return lua_gettop(L);
  if (lua_toboolean(L, 2)) return lua_gettop(L) - 2;
  lua_settop(L, 3);
  return lua_error(L);
}

void lw_async_wrap(lua_State *L, lua_CFunction f) {
  /* a Lua-level wrapper so that rejections raise on every Lua version:
     the C function's yield returns (ok, ...) into async_finish */
#if LW_SUSPEND_WRAPPED
  /* ... and where LW_SUSPEND_WRAPPED the wrapper does the yield, and
     yields again while the task is cancelled (see lws_suspend()) */
  static const char code[] =
    "local f, finish, mark, yield, cancelled = ...\n"
    "local function again(...)\n"
    "  if cancelled() then return again(yield()) end\n"
    "  return finish(...)\n"
    "end\n"
    "local function after(...)\n"
    "  if ... == mark then return again(yield()) end\n"
    "  return finish(...)\n"
    "end\n"
    "return function(...) return after(f(...)) end\n";
#else
  static const char code[] =
    "local f, finish = ...\n"
    "return function(...) return finish(f(...)) end\n";
#endif
  if (luaL_loadbuffer(L, code, sizeof code - 1, "=luaweave.async") != 0)
    lua_error(L);
#if LW_SUSPEND_WRAPPED
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
  lua_pushcclosure(L, f, 1);
  lua_pushcfunction(L, async_finish);
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
  if (!lw_pushsuspender(L))
    luaL_error(L, "lw_async_wrap: LuaJIT needs the coroutine library");
  lw_sched_check(L);
  lw_sched_pushbox(L);
  lws_pushcancelled(L);
  lua_call(L, 5, 1);
#else
  lua_pushcfunction(L, f);
  lua_pushcfunction(L, async_finish);
  lua_call(L, 2, 1);
#endif
}
