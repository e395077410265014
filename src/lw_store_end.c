/*
** lw_store_end.c — the store's ways to end a thread's life: cancel,
** coroutine.close (lw_close), reset, and recording a failure.  Each
** records the end and tells the one end path (lw_store.h, onend).
*/
#include "lw_store.h"
#include "lw_compat.h"

int lw_cancel(lw_store *s, lua_State *co, lua_State *from) {
  lw_rec *r;
  int e = lwst_check(s, co), st;
  lua_Debug ar;
  if (e != LW_OK) return e;
  if (co == from || lw_store_ismain(s, co) ||
      (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar)))
    return LW_ESTATE; /* running, normal or main: it cannot be stopped here */
  if ((r = lw_store_track(s, co)) == NULL) return LW_EMEM;
  lwst_validate(s, co, r, 0);
  if (r->status == LW_RETURNED || r->status == LW_FAILED ||
      r->status == LW_CANCELLED)
    return LW_OK; /* already over: nothing to stop */
  lwst_rec_reset(s, co, r, LW_CANCELLED);
  st = lua_status(co);
  if (st == LUA_OK) {
    lua_settop(co, 0); /* never started: dropping the function kills it */
  } else if (st == LUA_YIELD && lw_co_canreset()) {
    /* runs pending to-be-closed variables; one that raises fails co with
       its error, as coroutine.close reports it, instead of losing it */
    lua_State *prev = s->closing; /* a __close may cancel another */
    int rs;
    s->closing = co;
    rs = lw_co_reset(co, from);
    s->closing = prev;
    if (rs != LUA_OK) {
      luaL_checkstack(from, 4, "cancel");
      lua_xmove(co, from, 1);
      lua_settop(co, 0);
      lw_store_setfailure(s, co, from);
      return LW_OK;
    }
    lua_settop(co, 0);
  }
  /* the record keeps the stack height cancel leaves, and marks a yield
     left as it was with nres 1 (rec_valid); looked up again, since
     closing may have run Lua code */
  if ((r = lwst_find(s, co)) != NULL && r->status != 0) {
    unsigned kept = st == LUA_YIELD && !lw_co_canreset();
    lwst_rec_reset(s, co, r, LW_CANCELLED);
    if (lwst_counts_set(s, co, r, kept, (unsigned)lua_gettop(co) + kept) != LW_OK)
      return LW_EMEM; /* a stack too tall to note: it reads pending */
  }
  lwst_ended(s, co, from); /* also when a __close untracked it: it ended */
  return LW_OK;
}

int lw_reset(lw_store *s, lua_State *co, lua_State *from) {
  lw_rec *r;
  int e = lwst_check(s, co), was, st;
  lua_Debug ar;
  if (e != LW_OK) return e;
  if (!lw_co_canreset()) return LW_ENOTSUP;
  if (co == from || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar)))
    return LW_ESTATE;
  r = lwst_lookup(s, co);
  was = r ? (int)r->status : LW_UNTRACKED;
  if (was != LW_PENDING && was != LW_YIELDED) {
    /* untracked first, so that the old result can never reach the new
       life, whatever the reset runs */
    if (r != NULL) lw_untrack(s, co);
    return lw_co_reset(co, from);
  }
  /* a life that had not ended ends here: its awaiters hear "cancelled"
     (or the error of a to-be-closed variable), then it is forgotten */
  st = lw_co_reset(co, from); /* may run code and collect: r moves */
  if ((r = lwst_find(s, co)) != NULL && r->status != 0) {
    lwst_rec_reset(s, co, r, LW_CANCELLED);
    if (lwst_counts_set(s, co, r, 0, (unsigned)lua_gettop(co)) == LW_OK)
      lwst_ended(s, co, from);
    if ((r = lwst_find(s, co)) != NULL && r->status != 0) lw_untrack(s, co);
  }
  return st;
}

void lw_store_setfailure(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *r;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->vref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3); /* may raise: the record is then stale, and dropped */
  lua_pop(L, 2);
  if ((r = lwst_find(s, co)) == NULL || r->status == 0) {
    lwst_clear_vals(s, co); /* untracked by a __gc meanwhile */
    return;
  }
  lwst_rec_reset(s, co, r, LW_FAILED);
  r->vals = 1;
  r->nres = 1;
  lwst_ended(s, co, L);
}

int lw_close(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *r;
  int e = lwst_check(s, co), st, was;
  lua_Debug ar;
  if (e != LW_OK) return e;
  if (!lw_co_canreset()) return LW_ENOTSUP;
  if (co == L || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar)))
    return LW_ESTATE;
  luaL_checkstack(L, 4, "too many results");
  r = lwst_lookup(s, co);
  was = r ? (int)r->status : LW_UNTRACKED;
  if (was == LW_FAILED && r->vals) {
    lua_pushboolean(L, 0); /* closed before: already dead and empty */
    lwst_push_vals(s, co, L);
    return 2;
  }
  st = lw_co_reset(co, L); /* may run code and collect: r moves */
  if (st == LUA_OK) {
    lua_settop(co, 0);
    if (was != LW_UNTRACKED && was != LW_RETURNED && was != LW_CANCELLED &&
        (r = lwst_find(s, co)) != NULL && r->status != 0) {
      lwst_rec_reset(s, co, r, LW_CANCELLED);
      lwst_ended(s, co, L);
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  lua_settop(co, 0);
  if (was != LW_UNTRACKED && (r = lwst_find(s, co)) != NULL && r->status != 0) {
    lua_pushvalue(L, -1);
    lw_store_setfailure(s, co, L);
  }
  return 2;
}


