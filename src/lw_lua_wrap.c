/*
** lw_lua_wrap.c — task.wrap(fn, argc): any callback API, awaitable.
**
** The wrapped function calls fn with a callback in position argc and
** suspends its task on an async token (lw_sched_async.c) until the
** callback runs.  The callback is a C closure over a small userdata, the
** token's only owner, which moves through four states:
**   BEFORE  fn has not returned yet: a call here (a synchronous callback)
**           parks its values in a table; the task never suspends;
**   ASYNC   the task is suspended on the token: a call completes it;
**   DONE    called: any further call raises "called more than once";
**   GONE    collected (while ASYNC the token is completed with an error,
**           so a callback that will never run fails its task instead of
**           leaving it, and a scheduler counting it, waiting forever).
** A collected callback can still be called: lua_close runs every
** finalizer before freeing anything, and luv's loop finalizer runs the
** requests still in flight, calling their callbacks after ours ran.  Its
** task and scheduler may be gone by then, so a GONE call is a silent
** no-op, never an error (luv would exit the process on one).
** A call after the task was cancelled consumes the token and the values
** are discarded (lw_async_complete's contract): no resume, no leak.
** The token is taken only after fn returned, so an error raised by fn
** leaves nothing outstanding.
*/
#include "lw_sched.h"
#include "lw_compat.h"
#include "lw_luv.h"

#include <string.h>

enum { CB_BEFORE, CB_ASYNC, CB_DONE, CB_GONE };

typedef struct wcb {
  int state;
  lw_async *op;         /* while CB_ASYNC */
} wcb;

static const char WCB_META[] = "luaweave.wrap.callback";

typedef struct moving {
  lua_State *from;
  int n;
} moving;

/* the callback's arguments, from its own thread onto the scheduler's
   (run protected by lw_async_complete) */
static int push_moved(lua_State *T, void *ud) {
  moving *m = (moving *)ud;
  luaL_checkstack(T, m->n, "task.wrap: too many callback values");
  lua_xmove(m->from, T, m->n);
  return m->n;
}

static int push_collected(lua_State *T, void *ud) {
  (void)ud;
  lua_pushliteral(T, "task.wrap: the callback was collected without being called");
  return -1;
}

/* __gc: a token still out can never be completed by anyone now.  Raises
   no Lua error (the completion runs its push protected). */
static int wcb_gc(lua_State *L) {
  wcb *c = (wcb *)lua_touserdata(L, 1);
  int was;
  if (c == NULL) return 0;
  was = c->state;
  c->state = CB_GONE;
  if (was == CB_ASYNC) lw_async_complete(c->op, push_collected, NULL);
  return 0;
}

/* the callback handed to fn: upvalue 1 its wcb, upvalue 2 the table that
   parks synchronous values (nil until then: most callbacks run later).
   Raises on a second call, or when memory runs out. */
static int wrap_callback(lua_State *L) {
  wcb *c = (wcb *)lua_touserdata(L, lua_upvalueindex(1));
  int i, n = lua_gettop(L);
  if (c->state == CB_GONE) return 0;
  if (c->state == CB_DONE)
    return luaL_error(L, "task.wrap: callback called more than once");
  if (c->state == CB_BEFORE) {
    c->state = CB_DONE;
    lua_createtable(L, n, 1);
    lua_insert(L, 1);
    for (i = n; i >= 1; i--) lua_rawseti(L, 1, i);
    lua_pushinteger(L, n);
    lua_setfield(L, 1, "n");
    lua_replace(L, lua_upvalueindex(2));
    return 0;
  } else {
    moving m;
    lw_sched *S = lw_async_sched(c->op); /* NULL: the state is closing */
    c->state = CB_DONE;
    /* the values straight onto the scheduler's thread when there is room
       (no protected push needed); else pushed protected, which fails the
       task if memory runs out */
    if (S != NULL && lua_checkstack(S->T, n + 4)) {
      lua_xmove(L, S->T, n);
      lw_async_resolve(c->op, n);
      return 0;
    }
    m.from = L;
    m.n = n;
    /* LW_ESTALE: the state is closing; LW_EMEM: the task is dropped (its
       awaiters see a deadlock); neither is the caller's to handle */
    lw_async_complete(c->op, push_moved, &m);
    return 0;
  }
}

int lws_error_at_caller(lua_State *L, const char *msg) {
  lua_Debug ar;
  int level;
  for (level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar)) break;
    if (ar.currentline <= 0) continue; /* C, or a tail call's trace */
    if (strncmp(ar.source, "=luaweave", 9) == 0) continue;
    lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
    return lua_error(L);
  }
  lua_pushstring(L, msg);
  return lua_error(L);
}

/* the wrapped function's upvalues: fn, argc, the callback's metatable,
   the scheduler's box; first the mark where LW_SUSPEND_WRAPPED
   (lw_async_yield's) */
#if LW_SUSPEND_WRAPPED
#define UP_FN 2
#else
#define UP_FN 1
#endif

/* the wrapped function, a C closure called straight from the task (no
   Lua layer where the C function can yield itself).  May raise (fn's
   errors, memory, outside a task). */
static int wrap_call(lua_State *L) {
  int argc = (int)lua_tointeger(L, lua_upvalueindex(UP_FN + 1)), n, i;
  lw_sched *S = (lw_sched *)lua_touserdata(L, lua_upvalueindex(UP_FN + 3));
  wcb *c;
  if (!lw_yieldable(L))
    return lws_error_at_caller(L, "task.wrap: wrapped function called outside a task");
  /* fn, the arguments, the callback twice and its two upvalues */
  luaL_checkstack(L, argc + 5, "task.wrap: too many arguments");
  lua_settop(L, argc - 1);         /* a1 .. a(argc-1) */
  lua_pushvalue(L, lua_upvalueindex(UP_FN));
  lua_insert(L, 1);
#if LUA_VERSION_NUM >= 504
  c = (wcb *)lua_newuserdatauv(L, sizeof *c, 0);
#else
  c = (wcb *)lua_newuserdata(L, sizeof *c);
#endif
  c->state = CB_BEFORE;
  c->op = NULL;
  lua_pushvalue(L, lua_upvalueindex(UP_FN + 2));
  lua_setmetatable(L, -2);
  lua_pushnil(L);                  /* the parked values, made if needed */
  lua_pushcclosure(L, wrap_callback, 2);
  lua_pushvalue(L, -1);
  lua_insert(L, 1);                /* keeps c reachable while fn runs */
  lua_call(L, argc, 0);            /* fn(a1 .. a(argc-1), cb) */
  if (c->state == CB_DONE) {       /* called back before returning */
    lua_getupvalue(L, 1, 2);
    lua_getfield(L, 2, "n");
    n = (int)lua_tointeger(L, -1);
    luaL_checkstack(L, n, "task.wrap: too many callback values");
    for (i = 1; i <= n; i++) lua_rawgeti(L, 2, i);
    return n;
  }
  /* the box says NULL once its scheduler closes: then the lookup
     raises the state's own error */
  if (S == NULL || (S = S->self) == NULL || LWS_GONE(S)) S = lw_sched_check(L);
  c->op = lws_async_begin(S, L);
  c->state = CB_ASYNC;
  lua_settop(L, 0); /* the callback must not be kept alive by this frame */
#if LW_SUSPEND_WRAPPED
  return lw_async_yield(L, c->op);
#else
  return lws_async_yieldk(L);
#endif
}

/* task.wrap(fn, argc) */
int lw_task_wrap(lua_State *L) {
  lua_Number argc;
  if (!lua_isfunction(L, 1)) { /* or callable: a table with __call, say */
    if (!luaL_getmetafield(L, 1, "__call")) luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_pop(L, 1);
  }
  argc = luaL_checknumber(L, 2);
  if (!(argc >= 1 && argc <= 250 && argc == (lua_Number)(int)argc))
    return luaL_argerror(L, 2, "an integer from 1 to 250 expected");
#if LW_SUSPEND_WRAPPED
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
#endif
  lua_pushvalue(L, 1);
  lua_pushinteger(L, (lua_Integer)argc);
  if (luaL_newmetatable(L, WCB_META)) {
    lua_pushcfunction(L, wcb_gc);
    lua_setfield(L, -2, "__gc");
  }
  lw_sched_check(L);
  lw_sched_pushbox(L);
  lua_pushcclosure(L, wrap_call, UP_FN + 3);
#if LW_SUSPEND_WRAPPED
  lws_async_suspending(L);
#endif
  return 1;
}
