/*
** lw_sched_host.c — thin accessors for the command line
** (lw_sched_host.h says why they are not public).  Each reads or sets
** one thing of the scheduler, so that a change inside the scheduler
** changes this file, not the CLI.
*/
#include "lw_sched_host.h"
#include "lw_sched.h"

lw_sched *lw_host_sched(lua_State *L) { return lw_sched_check(L); }

int lw_host_resume(lw_sched *S, lua_State *co, lua_State *from, int nargs) {
  return lw_sched_resume(S, co, from, nargs);
}

static int flush_protected(lua_State *L) {
  lws_flush_errors((lw_sched *)lua_touserdata(L, 1), L);
  return 0;
}

int lw_host_flush(lw_sched *S) {
  if (S->npend == 0 || lws_stepping(S) || S->runco != NULL) return LW_OK;
  return lws_protect(S, flush_protected, S);
}

void lw_host_errmsg(lua_State *L) { lw_sched_errmsg(L); }

lw_store *lw_host_store(lw_sched *S) { return lws_store(S); }

void lw_host_stop(lw_sched *S, int on) { lws_setexited(S, on); }

int lw_host_stopped(const lw_sched *S) { return lws_isexited(S); }

void lw_host_setmain(lw_sched *S, lua_State *co) { lws_setmain(S, co); }

void lw_host_onprecancel(lw_sched *S, void (*fn)(void *ud, lua_State *co),
                         void *ud) {
  S->precancel = fn;
  S->precancel_ud = ud;
}

int lw_host_parked(lw_sched *S, lua_State *co) {
  return lws_task_rec(S, co) != NULL;
}

/* The waiter lists are keyed by target (lw_sched_await.c): a search over
   them all, for a message made once, when the CLI reports its end */
int lw_host_awaited(lw_sched *S, lua_State *L, lua_State *co) {
  lw_rec *r = lws_task_rec(S, co);
  int n, i;
  if (r == NULL || r->task != T_AWAIT) return 0;
  luaL_checkstack(L, 5, "awaited");
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->wref);
  lua_pushnil(L);
  while (lua_next(L, -2)) { /* wref, target, list */
    n = (int)lw_rawlen(L, -1);
    for (i = 1; i + 2 <= n; i += 3) { /* {waiter, ticket, isany} */
      lua_State *w;
      unsigned ticket;
      lua_rawgeti(L, -1, i);
      w = lua_tothread(L, -1);
      lua_rawgeti(L, -2, i + 1);
      ticket = (unsigned)lua_tointeger(L, -1);
      lua_pop(L, 2);
      if (w == co && ticket == r->ticket) {
        lua_pop(L, 1);
        lua_remove(L, -2); /* the target */
        return 1;
      }
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

lua_State *lw_host_own(const lw_sched *S) { return S->T; }

lua_State *lw_host_running(const lw_sched *S) { return S->runco; }
