/*
** lw_sched_life.c — a scheduler's life: opening it on a Lua state,
** finding it again, and what happens to it at lua_close; its invariants.
*/
#include "lw_sched.h"
#include "lw_compat.h"

#include <string.h>
#include <time.h>

static const char SCHED_KEY = 'K';

/* The scheduler lives in its box, a userdata in the registry: Lua frees
   it at the very end of lua_close, after every finalizer (see store_gc
   in lw_store.c for why nothing of ours may run then). */

/* ------------------------------------------------------------------ */
/* opening                                                             */

/* The state is closing: stop, let go of everything but the struct,
   which a host's finalizer that runs after ours may still reach (every
   public function then answers LW_EINVAL); Lua frees it with the box.
   Outstanding async tokens go stale first, so that a driver finishing
   its requests (close_own) completes them harmlessly. */
static void sched_close(lw_sched *S) {
  S->closed = 1;
  S->self = NULL;
  /* lua_close finalizes in an order we do not choose: if the store went
     first it has cleared S->s; if it is still there, stop listening */
  if (S->s != NULL && S->s->backref == &S->s) {
    S->s->backref = NULL;
    lw_store_setonend(S->s, NULL, NULL);
    S->s->onresume = NULL;
  }
  lws_async_orphan(S);
  if (S->driver_free) S->driver_free(S);
  S->driver_free = NULL;
  if (S->q) lws_alloc(S, S->q, S->qcap * sizeof(lw_ent), 0);
  S->q = NULL;
  S->qlen = S->qcap = S->qhead = 0;
  lw_timerq_free(&S->tq);
  if (S->afree) lws_alloc(S, S->afree, S->afreecap * sizeof(int), 0);
  S->afree = NULL;
  S->nafree = S->alen = S->afreecap = 0;
  S->nwaiting = S->nasync = 0;
  S->T = NULL; /* lw_sched_state answers NULL */
}

static int sched_gc(lua_State *L) {
  lw_sched *S = (lw_sched *)lua_touserdata(L, 1);
  if (S->f != NULL && !S->closed) sched_close(S); /* f NULL: never opened */
  return 0;
}

/* the store closes first (a scheduler made while lua_close runs, which
   Lua 5.4 never finalizes): close the scheduler with it */
static void sched_onclose(void *ud) {
  lw_sched *S = (lw_sched *)ud;
  if (!S->closed) sched_close(S);
}

typedef struct sopening {
  lw_sched tmp; /* the scheduler until its box exists (refs for cleanup) */
  lw_sched *S;  /* then: the box */
} sopening;

static int open_protected(lua_State *L) {
  sopening *o = (sopening *)lua_touserdata(L, 1);
  lw_sched *S = &o->tmp, *b;
  b = (lw_sched *)lua_newuserdata(L, sizeof(lw_sched)); /* the box: first,
                                  since the completion function needs b */
  memset(b, 0, sizeof *b); /* f NULL: not opened (sched_gc) */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sched_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  S->T = lua_newthread(L);
  S->tref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->aref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->wref = luaL_ref(L, LUA_REGISTRYINDEX);
  lws_new_hold_table(L);
  S->yref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->eref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, LWS_POOL_MAX, 0); /* sized now: recycling never allocates */
  S->pref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, b);
  lua_pushcclosure(L, lws_complete_protected, 1);
  S->cref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (LW_YIELD_UNSURE || !LW_SUSPEND_WRAPPED) { /* yielded_plainly, own_suspension */
    if (lw_pushyield(L)) S->yieldfn = lua_tocfunction(L, -1);
    lua_pop(L, 1);
  }
#if LW_SUSPEND_WRAPPED && defined(LW_LUAJIT)
  lws_wrapper_envs(S, L);
#endif
  lw_rawsetp(L, LUA_REGISTRYINDEX, &SCHED_KEY); /* pops the box */
  *b = *S; /* nothing fails from here on: the box is the scheduler */
  b->self = b;
  lw_timerq_init(&b->tq, b->f, b->ud);
  b->s->backref = &b->s;
  lw_store_setonend(b->s, lws_onend, b); /* the one end path */
  b->s->onresume = lws_onresume;
  lw_store_onclose(b->s, sched_onclose, b);
  o->S = b;
  return 0;
}

void lw_sched_pushbox(lua_State *L) {
  lw_rawgetp(L, LUA_REGISTRYINDEX, &SCHED_KEY);
}

/* the scheduler of L's state in *S (NULL: none); -1 if memory ran out
   looking (LuaJIT); 1 if it is gone: lua_close has finalized its box
   (a finalizer that runs later must not make another, which would leak) */
static int find_sched(lua_State *L, lw_sched **S) {
  void *b;
  *S = NULL;
  if (lw_registry_udata(L, &SCHED_KEY, &b) != 0) return -1;
  if (b == NULL) return 0;
  *S = ((lw_sched *)b)->self;
  return *S == NULL;
}

lw_sched *lw_sched_get(lua_State *L) {
  lw_sched *S;
  if (L == NULL || find_sched(L, &S) != 0) return NULL;
  return S;
}

lw_sched *lw_sched_open(lua_State *L) {
  lw_store *s;
  lw_sched *S;
  sopening o;
  int st;
  if (L == NULL || find_sched(L, &S) != 0) return NULL;
  if (S != NULL) return S;
  if ((s = lw_store_open(L)) == NULL) return NULL;
  memset(&o, 0, sizeof o);
  S = &o.tmp;
  S->s = s;
  S->f = s->f;
  S->ud = s->ud;
  lw_timerq_init(&S->tq, S->f, S->ud);
  S->tref = S->aref = S->wref = S->yref = S->eref = S->cref = S->pref =
      LUA_NOREF;
  S->clock = lws_default_clock;
  st = lw_cpcall(L, open_protected, &o);
  if (st != LUA_OK) {
    if (st > 0) lua_pop(L, 1);
    lw_unref(L, LUA_NOREF, S->tref);
    lw_unref(L, LUA_NOREF, S->aref);
    lw_unref(L, LUA_NOREF, S->wref);
    lw_unref(L, LUA_NOREF, S->yref);
    lw_unref(L, LUA_NOREF, S->eref);
    lw_unref(L, LUA_NOREF, S->cref);
    lw_unref(L, LUA_NOREF, S->pref);
    return NULL;
  }
  return o.S;
}

lw_sched *lw_sched_check(lua_State *L) {
  lw_sched *S;
  int found = find_sched(L, &S);
  if (found == 1 || (S != NULL && LWS_GONE(S)))
    luaL_error(L, "luaweave: the Lua state is closing");
  if (found < 0 || (S == NULL && (S = lw_sched_open(L)) == NULL)) lws_raise_mem(L);
  return S;
}

int lw_sched_check_invariants(lw_sched *S) {
  size_t i = 0, nw = 0, nt = 0;
  lw_slot *sl;
  int e;
  if (S == NULL) return __LINE__;
  if ((e = lw_store_check(S->s)) != 0) return e;
  if ((e = lw_timerq_check(&S->tq)) != 0) return e;
  i = 0;
  while ((sl = lw_map_next(&S->s->map, &i)) != NULL) {
    if (sl->rec.task > T_ASYNC) return __LINE__;
    if (sl->rec.task == 0 && sl->rec.cancel) return __LINE__;
    if (sl->rec.task != 0) nt++;
    if (sl->rec.task == T_AWAIT) nw++;
  }
  if (nw != S->nwaiting || nt != lw_store_ntasks(S->s)) return __LINE__;
  if (S->qlen > S->qcap) return __LINE__;
  if (S->nafree > S->alen || S->alen > S->afreecap) return __LINE__;
  return lws_pool_check(S);
}

/* ------------------------------------------------------------------ */
/* settings and counters                                               */

void lw_sched_onend(lw_sched *S, lw_end_fn fn, void *ud) {
  if (S == NULL) return;
  S->onend = fn;
  S->onend_ud = ud;
}

size_t lw_sched_ready(const lw_sched *S) { return S ? S->qlen + lw_sched_ntimers(S) : 0; }
size_t lw_sched_waiting(const lw_sched *S) { return S ? S->nwaiting : 0; }
size_t lw_sched_async(const lw_sched *S) { return S ? S->nasync : 0; }
size_t lw_sched_errors(const lw_sched *S) { return S ? S->nerrors : 0; }

int lw_sched_exited(const lw_sched *S, int *code) {
  if (S == NULL || !S->exited) return 0;
  if (code) *code = S->exitcode;
  return 1;
}

void lw_sched_onerror(lw_sched *S, lw_error_fn fn, void *ud) {
  if (S == NULL) return;
  S->onerror = fn;
  S->onerror_ud = ud;
}

double lws_default_clock(void *ud) {
  struct timespec ts;
  (void)ud;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void lw_sched_setclock(lw_sched *S, lw_clock_fn fn, void *ud) {
  if (S == NULL) return;
  S->clock = fn ? fn : lws_default_clock;
  S->clock_ud = ud;
}

double lw_sched_now(lw_sched *S) {
  return S ? S->clock(S->clock_ud) : 0;
}

lua_State *lw_sched_state(lw_sched *S) { return S ? S->T : NULL; }

