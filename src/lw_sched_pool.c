/*
** lw_sched_pool.c — thread recycling: dead tasks' threads, reset and
** kept for new work (Lua 5.4).
*/
#include "lw_sched.h"
#include "lw_compat.h"

/* a thread for new work, pushed onto L: a recycled one if the pool has
   any (lw_sched_recycle), else a new one; may raise a memory error */
lua_State *lws_new_thread(lw_sched *S, lua_State *L) {
  lua_State *co;
  if (S->npool == 0 || !lua_checkstack(L, 3)) return lua_newthread(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->pref);
  lua_rawgeti(L, -1, (int)S->npool);
  lua_pushnil(L);
  lua_rawseti(L, -3, (int)S->npool--); /* storing nil never allocates */
  lua_remove(L, -2);
  co = lua_tothread(L, -1);
  /* a new thread inherits its creator's hook; so does a recycled one */
  lua_sethook(co, lua_gethook(L), lua_gethookmask(L), lua_gethookcount(L));
  return co;
}


int lw_sched_recycle(lw_sched *S, lua_State *co) {
  int e;
  if (S == NULL || co == NULL || LWS_GONE(S)) return LW_EINVAL;
  if ((e = lw_status(S->s, co)) < 0) return e;
  if (!lw_co_canreset()) return LW_ENOTSUP;
  if (co == S->T || co == S->main || lws_task_rec(S, co) != NULL)
    return LW_EBUSY;
  if (lw_co_status(S->T, co) != LW_CO_DEAD) return LW_ESTATE;
  if ((e = lws_awaited(S, co)) != 0) return e > 0 ? LW_EBUSY : LW_EMEM;
  if (S->nyheld > 0) { /* a woken task.any waiter will be handed co */
    int held;
    if (!lua_checkstack(S->T, 3)) return LW_EMEM;
    lua_rawgeti(S->T, LUA_REGISTRYINDEX, S->yref);
    lws_push_thread(S->T, co);
    lua_rawget(S->T, -2);
    held = !lua_isnil(S->T, -1);
    lua_pop(S->T, 2);
    if (held) return LW_EBUSY;
  }
  /* dead: no to-be-closed variable is pending, the reset cannot fail;
     lw_reset untracks co first, so its old result cannot reach its next
     life, and every queue entry of its old life holds a stale ticket */
  lw_reset(S->s, co, S->T);
  lua_settop(co, 0);
  if (S->npool < LWS_POOL_MAX && lua_checkstack(S->T, 2)) {
    /* the pool's array was sized when it was made: no allocation */
    lua_rawgeti(S->T, LUA_REGISTRYINDEX, S->pref);
    lws_push_thread(S->T, co);
    lua_rawseti(S->T, -2, (int)++S->npool);
    lua_pop(S->T, 1);
  }
  return LW_OK;
}

/* the thread at pool slot i, or NULL */
static lua_State *pooled(lw_sched *S, size_t i) {
  lua_State *co;
  lua_rawgeti(S->T, LUA_REGISTRYINDEX, S->pref);
  lua_rawgeti(S->T, -1, (int)i);
  co = lua_tothread(S->T, -1);
  lua_pop(S->T, 2);
  return co;
}

/* slots 1..npool hold reset, untracked threads that are no task; the
   next slot is empty */
int lws_pool_check(lw_sched *S) {
  size_t i;
  if (S->npool > LWS_POOL_MAX) return __LINE__;
  if (!lua_checkstack(S->T, 2)) return 0; /* cannot look: nothing to say */
  for (i = 1; i <= S->npool; i++) {
    lua_State *co = pooled(S, i);
    if (co == NULL || lua_gettop(co) != 0 || lua_status(co) != LUA_OK ||
        lws_task_rec(S, co) != NULL || lw_status(S->s, co) != LW_UNTRACKED)
      return __LINE__;
  }
  return pooled(S, S->npool + 1) == NULL ? 0 : __LINE__;
}

