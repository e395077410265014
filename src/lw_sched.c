/*
** lw_sched.c — the scheduler's core: the run queue, anchors, task
** records, resuming, spawn/defer/delay, wait and stepping.  It knows no
** event loop: a driver (lw_loop.c) or the host steps it.  The other
** concepts live beside it (lw_sched.h lists them).
**
** Tasks are Lua threads tracked in the result store.  A task that waits
** for something (a timer, another task, an async operation, its turn in
** the deferred queue) is anchored in one Lua table, by a slot number
** that its queue or heap entry carries: O(1), no hashing, and the entry
** knows what to unanchor.  A task suspended by a plain coroutine.yield is
** anchored by nobody: if no one else holds it, the GC may take it.
**
** Every suspension and every resumption gives the task a new ticket (a
** counter kept, with the task's state, in the store's record of its
** thread: one probe finds both).  An entry whose ticket
** is no longer the task's is stale and skipped: a task woken early (by
** task.spawn, say) is never resumed a second time by the timer it was
** waiting on.  Tickets are 32 bits; a stale entry would have to outlive
** 2^32 suspensions of its own task to be mistaken.
**
** Order: task.spawn resumes now, nested in its caller.  A step first
** drains what was deferred before it (outside any step), then runs the
** timers that were due when it began, by deadline with FIFO ties (a
** sequence number), then drains the deferred queue in FIFO order,
** including what is deferred while it drains.  Awaiters and completed
** async operations are woken through the deferred queue.
*/
#include "lw_sched.h"
#include "lw_compat.h"

#include <math.h>
#include <time.h>

const char lws_async_mark = 'A';

/* ------------------------------------------------------------------ */
/* memory and the deferred queue                                       */

void *lws_alloc(lw_sched *S, void *p, size_t osize, size_t nsize) {
  return S->f(S->ud, p, osize, nsize); /* not through S->s: see sched_gc */
}

/* move the ring into ncap (>= qlen) slots, unwrapped */
static int q_resize(lw_sched *S, size_t ncap) {
  size_t i;
  lw_ent *nq = (lw_ent *)lws_alloc(S, NULL, 0, ncap * sizeof(lw_ent));
  if (nq == NULL) return LW_EMEM;
  for (i = 0; i < S->qlen; i++) nq[i] = S->q[(S->qhead + i) % S->qcap];
  if (S->q) lws_alloc(S, S->q, S->qcap * sizeof(lw_ent), 0);
  S->q = nq;
  S->qcap = ncap;
  S->qhead = 0;
  return LW_OK;
}

int lws_qpush(lw_sched *S, const lw_ent *e) {
  if (S->qlen == S->qcap && q_resize(S, S->qcap ? S->qcap * 2 : 64) != LW_OK)
    return LW_EMEM;
  S->q[(S->qhead + S->qlen) % S->qcap] = *e;
  S->qlen++;
  if (S->notify) S->notify(S);
  return LW_OK;
}

static lw_ent q_pop(lw_sched *S) {
  lw_ent e = S->q[S->qhead];
  S->qhead = (S->qhead + 1) % S->qcap;
  S->qlen--;
  return e;
}

/* room for one more entry in the deferred queue */
int lws_qreserve(lw_sched *S) {
  if (S->qlen < S->qcap) return LW_OK;
  return q_resize(S, S->qcap ? S->qcap * 2 : 64);
}

/* a timer due at `due`; zero: set with no delay */
int lws_tpush(lw_sched *S, double due, const lw_ent *e, int zero) {
  if (lw_timerq_push(&S->tq, due, e, zero) != LW_OK) return LW_EMEM;
  if (S->notify) S->notify(S);
  return LW_OK;
}

/* give back what a burst of work left behind: between steps, a queue
   used to a quarter or less shrinks (keeping room to double); if memory
   runs out, the bigger one stays */
static void shrink(lw_sched *S) {
  size_t ncap;
  for (ncap = S->qcap; ncap > 64 && S->qlen * 4 < ncap; ncap /= 2) {}
  if (ncap < S->qcap) (void)q_resize(S, ncap);
  lw_timerq_shrink(&S->tq);
}

void lws_raise_mem(lua_State *L) {
  lw_sync_running(L); /* L may have resumed tasks before this */
  lua_pushliteral(L, "not enough memory");
  lua_error(L);
}

/* Anchors are slots of one Lua table's array part.  The free slots are a
   stack of numbers kept in C (not luaL_ref's list inside the table): one
   raw set anchors, one raw set of nil frees, and the stack always has
   room for every slot, so freeing never allocates. */

/* anchor the value on L's top (popped); may raise a memory error */
int lws_anchor(lw_sched *S, lua_State *L) {
  int ref, fresh = S->nafree == 0;
  if (fresh && S->alen == S->afreecap) {
    size_t ncap = S->afreecap ? S->afreecap * 2 : 64;
    int *nf = (int *)lws_alloc(S, S->afree, S->afreecap * sizeof(int),
                                 ncap * sizeof(int));
    if (nf == NULL || ncap > (size_t)0x7fffffff) lws_raise_mem(L);
    S->afree = nf;
    S->afreecap = ncap;
  }
  ref = fresh ? (int)S->alen + 1 : S->afree[S->nafree - 1];
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aref);
  lua_pushvalue(L, -2);
  lua_rawseti(L, -2, ref); /* a fresh slot may allocate: then no change */
  lua_pop(L, 2);
  if (fresh) S->alen++;
  else S->nafree--;
  return ref;
}

/* free an anchor slot, dropping its value */
void lws_anchor_free(lw_sched *S, lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aref);
  lua_pushnil(L);
  lua_rawseti(L, -2, ref);
  lua_pop(L, 1);
  S->afree[S->nafree++] = ref;
}

/* push the anchored value and free its slot */
void lws_unanchor(lw_sched *S, lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aref);
  lua_rawgeti(L, -1, ref);
  lua_pushnil(L);
  lua_rawseti(L, -3, ref);
  lua_replace(L, -2);
  S->afree[S->nafree++] = ref;
}

/* ------------------------------------------------------------------ */
/* task records                                                        */

lw_rec *lws_task_rec(lw_sched *S, lua_State *co) {
  lw_rec *r = lw_store_find(S->s, co);
  return (r != NULL && r->task != 0) ? r : NULL;
}

/* give the record r (current) a task state and a fresh ticket */
void lws_task_put(lw_sched *S, lw_rec *r, int state) {
  if (r->task == T_ASYNC) lws_async_left(S, r->ticket); /* woken early */
  if (r->task == T_AWAIT) S->nwaiting--;
  else if (r->task == 0) lw_store_tasks_add(S->s, 1);
  r->task = (unsigned)state;
  r->ticket = ++S->ticket;
  if (state == T_AWAIT) S->nwaiting++;
}

/* task_put on co's record, made if need be (a thread the store does not
   track gets a record of the scheduler's only); NULL when memory runs out */
lw_rec *lws_task_set(lw_sched *S, lua_State *co, int state) {
  lw_rec *r;
  if (lw_map_insert(&S->s->map, co, &r) < 0) return NULL;
  lws_task_put(S, r, state);
  return r;
}

/* the running task L's record, tracked (NULL when memory runs out): the
   one its resumption found, if the map has not moved since */
lw_rec *lws_running_rec(lw_sched *S, lua_State *L) {
  if (L == S->runco && S->s->map.gen == S->rungen && S->runrec->status != 0)
    return S->runrec;
  return lw_store_track(S->s, L);
}

/* r (current) is no task any more; the record goes if the store has none */
void lws_task_end(lw_sched *S, lua_State *co, lw_rec *r) {
  if (r->task == 0) return;
  if (r->task == T_ASYNC) lws_async_left(S, r->ticket); /* cancelled */
  if (r->task == T_AWAIT) S->nwaiting--;
  r->task = 0;
  r->cancel = 0;
  lw_store_tasks_add(S->s, -1);
  lw_store_release(S->s, co, r);
}

void lws_task_drop(lw_sched *S, lua_State *co) {
  lw_rec *r = lw_store_find(S->s, co);
  if (r != NULL) lws_task_end(S, co, r);
}

/* ------------------------------------------------------------------ */
/* resuming                                                            */

/* 5.1 and 5.2 cannot tell beforehand whether a task may yield: a wait,
   await or async operation can be registered and its yield then fail
   ("attempt to yield across ...", caught by a pcall).  A co that later
   yields from coroutine.yield has yielded plainly, whatever it registered
   before, and that registration must not resume it. */
static int yielded_plainly(lw_sched *S, lua_State *co) {
  return LW_YIELD_UNSURE && S->yieldfn != NULL && lw_co_cfunc(co) == S->yieldfn;
}

/* A waiting entry (a wait's timer, an await's wake or deadline, an async
   completion) resumes co only at the suspension it was made for.  A co
   resumed behind luaweave's back (a raw coroutine.resume) ended its wait
   there; when it has yielded again at a yield of its own, luaweave's
   values (a number, the async mark) must not reach that yield.  Where
   LW_SUSPEND_WRAPPED, the suspension is a yield made by a wrapper
   (lw_lua_task.c, lw_sched_async.c); elsewhere the task functions yield
   from their own C functions, never from coroutine.yield.  May allocate
   (a stack slot).

   It runs at every resumption, so it reads no names or line numbers
   (lua_getinfo "S" copies the chunk name).  5.1-5.3: the wrappers yield
   through a C function of their own (lw_compat.c, one per kind), the
   one co yielded from.  LuaJIT: they yield with coroutine.yield, so the
   wrapper's frame (level 1, below the yield; level 0 is looked at too)
   is what tells: its environment is a table of its kind that only the
   wrappers have (lws_setwrapperenv), found at no cost through S->wenv. */
#if LW_SUSPEND_WRAPPED
#if defined(LW_LUAJIT)
static const char wenv_key[2] = {'t', 'a'};

/* push the environment of wrappers of kind async, made if missing.
   May raise (memory). */
static void push_wenv(lua_State *L, int async) {
  lw_rawgetp(L, LUA_REGISTRYINDEX, &wenv_key[async]);
  if (lua_istable(L, -1)) return;
  lua_pop(L, 1);
  lua_createtable(L, 0, 0);
  lua_pushvalue(L, -1);
  lw_rawsetp(L, LUA_REGISTRYINDEX, &wenv_key[async]);
}

void lws_wrapper_envs(lw_sched *S, lua_State *L) {
  int i;
  for (i = 0; i <= 1; i++) {
    push_wenv(L, i);
    S->wenv[i] = lua_topointer(L, -1);
    lua_pop(L, 1);
  }
}

static int in_wrapper(lw_sched *S, lua_State *co, int async) {
  lua_Debug ar;
  const void *env;
  int level;
  if (!lua_checkstack(co, 2)) return 0;
  for (level = 1; level >= 0; level--) {
    if (!lua_getstack(co, level, &ar) || !lua_getinfo(co, "f", &ar)) continue;
    lua_getfenv(co, -1);
    env = lua_topointer(co, -1);
    lua_pop(co, 2);
    if (env == S->wenv[0] || (async && env == S->wenv[1])) return 1;
  }
  return 0;
}
#else
static int in_wrapper(lw_sched *S, lua_State *co, int async) {
  lua_CFunction f = lw_co_cfunc(co);
  (void)S;
  return f != NULL && (f == lw_suspender(0) || (async && f == lw_suspender(1)));
}
#endif

void lws_setwrapperenv(lua_State *L, int async) {
#if defined(LW_LUAJIT)
  push_wenv(L, async);
  lua_setfenv(L, -2);
#else
  (void)L;
  (void)async;
#endif
}
#endif

static int own_suspension(lw_sched *S, lua_State *co) {
#if LW_SUSPEND_WRAPPED
  return in_wrapper(S, co, 1);
#else
  lua_CFunction f = lw_co_cfunc(co);
  return f != NULL && f != S->yieldfn;
#endif
}

/* lw_sched_resume with r co's record at the current gen, or NULL (then
   it is looked up, or made) */
static int resume_rec(lw_sched *S, lua_State *co, lw_rec *r, lua_State *from,
                      int nargs) {
  int st, n, tracked;
  if (r == NULL || r->status == 0) r = lw_store_track(S->s, co);
  if (r == NULL) {
    lua_pop(co, nargs);
    return LW_EMEM;
  }
  /* an awaiter resumed out of turn (task.spawn of it): its
     registrations go stale; a target that never ends, or ended behind
     luaweave's back, would keep them, and with them both threads, until
     a sweep that nothing else may ask for: at the step's end */
  if (r->task == T_AWAIT) S->wsweep = 1;
  lws_task_put(S, r, T_RUNNING);
  {
    /* what co's own task.wait etc. will want: its record, while the map
       stays put (tasks nest: spawn inside a task) */
    lua_State *oco = S->runco;
    lw_rec *orec = S->runrec;
    unsigned long ogen = S->rungen;
    S->runco = co;
    S->runrec = r;
    S->rungen = S->s->map.gen;
    st = lw_store_resume(S->s, co, r, from, nargs, &n, &r);
    S->runco = oco;
    S->runrec = orec;
    S->rungen = ogen;
  }
  if (st < 0) {
    if (st != LW_EMEM) lua_pop(co, nargs);
    if (r != NULL) lws_task_end(S, co, r);
    return st;
  }
  if (st == LUA_YIELD) {
    /* cancelled while it ran: whatever it yields for (a plain yield, a
       wait, an await, an async operation), it never runs again; its
       entries go stale with its record */
    if (r != NULL && r->cancel) {
      lws_cancel(S, co, from);
      lws_unwind(S, co, from);
    } else if (r != NULL) {
      /* a plain yield: someone else resumes it, or nobody.
         yielded_plainly may allocate, and so move r */
      unsigned long g = S->s->map.gen;
      if (r->task == T_RUNNING ||
          (yielded_plainly(S, co) && (r = lw_store_refind(S->s, co, r, g)) != NULL))
        lws_task_end(S, co, r);
    }
    return st;
  }
  /* the end was recorded, and its awaiters woken, by the store's end
     path (lws_onend) */
  tracked = r != NULL && r->status != 0;
  if (r != NULL) lws_task_end(S, co, r);
  if (tracked && st != LUA_OK && lw_status(S->s, co) != LW_FAILED)
    lws_refused(S, co, from);
  /* a task untracked before it returned (by itself, by a __gc) leaves
     its results where lua_resume put them; nobody reads a task's results
     from its stack, and there they would make it look suspended (a
     later spawn would call them) */
  if (!tracked && st == LUA_OK && co != from) lua_settop(co, 0);
  return st;
}

int lw_sched_resume(lw_sched *S, lua_State *co, lua_State *from, int nargs) {
  return resume_rec(S, co, NULL, from, nargs);
}

/* the record of the entry's task if its ticket is still good (else the
   entry is stale): NULL */
static lw_rec *ent_live(lw_sched *S, const lw_ent *e) {
  lw_rec *r = lw_store_find(S->s, e->co);
  if (r != NULL && r->ticket == e->ticket &&
      (e->kind == K_TIMEOUT ? r->task == T_AWAIT
                            : (r->task == T_READY || r->task == T_WAIT ||
                               r->task == T_ASYNC)))
    return r;
  return NULL;
}

/* drop stale timers (a cancelled or woken task's): every one, when the
   heap has doubled since the last sweep (lw_timerq.c), and always those
   in front, so that the next deadline, run and deadlock see only live
   ones; W is the running thread */
typedef struct purging { lw_sched *S; lua_State *W; } purging;

static int purge_keep(void *ud, const lw_ent *e) {
  return ent_live(((purging *)ud)->S, e) != NULL;
}

static void purge_drop(void *ud, const lw_ent *e) {
  purging *p = (purging *)ud;
  lws_unanchor(p->S, p->W, e->ref);
  lua_pop(p->W, 1);
}

void lws_purge_timers(lw_sched *S, lua_State *W) {
  lw_timer *p;
  purging pu;
  pu.S = S;
  pu.W = W;
  lw_timerq_sweep(&S->tq, purge_keep, purge_drop, &pu);
  while ((p = lw_timerq_peek(&S->tq)) != NULL && ent_live(S, &p->e) == NULL) {
    lw_timer t = lw_timerq_pop(&S->tq);
    purge_drop(&pu, &t.e);
  }
}

/* co has not started: its function (and perhaps arguments) wait on its
   stack */
static int fresh(lua_State *co) {
  lua_Debug ar;
  return lua_status(co) == LUA_OK && lua_gettop(co) >= 1 &&
         !lua_getstack(co, 0, &ar) && lua_type(co, 1) == LUA_TFUNCTION;
}

static int run_entry(lw_sched *S, const lw_ent *e) {
  lua_State *T = S->T, *co = e->co;
  int top = lua_gettop(T), n = 0, i, st;
  unsigned long gen;
  lw_rec *r;
  luaL_checkstack(T, 7, "step"); /* before the entry is taken apart */
  lws_unanchor(S, T, e->ref);
  if (e->kind == K_AWAITED && S->nyheld > 0) { /* {w, target, isany, ...} */
    lua_rawgeti(T, top + 1, 3);
    if (lua_toboolean(T, -1)) {
      lua_rawgeti(T, top + 1, 2);
      lws_any_hold(S, T, lua_tothread(T, -1), -1);
    }
    lua_settop(T, top + 1);
  }
  if ((r = ent_live(S, e)) == NULL) {
    lua_settop(T, top);
    return 0;
  }
  gen = S->s->map.gen; /* what follows may allocate, and so move r */
  if (e->kind >= K_WAIT && !own_suspension(S, co)) {
    /* a coroutine no task drives (see yielded_plainly), or one resumed
       behind luaweave's back that yielded elsewhere (own_suspension) */
    if ((r = lw_store_refind(S->s, co, r, gen)) != NULL) lws_task_end(S, co, r);
    lua_settop(T, top);
    return 0;
  }
  if (e->kind <= K_FARGS && e->kind != K_ARGS && !fresh(co)) {
    /* a start, but someone resumed the thread directly meanwhile: that
       was its start */
    if ((r = lw_store_refind(S->s, co, r, gen)) != NULL) lws_task_end(S, co, r);
    lua_settop(T, top);
    return 0;
  }
  switch (e->kind) {
    case K_START:
      n = lua_gettop(co) - 1;
      break;
    case K_ARGS: /* {co, n, args...} */
    case K_FARGS:
      lua_rawgeti(T, -1, 2);
      n = (int)lua_tointeger(T, -1);
      lua_pop(T, 1);
      luaL_checkstack(T, n, "too many arguments");
      for (i = 1; i <= n; i++) lua_rawgeti(T, top + 1, i + 2);
      lws_drop_start_args(co);
      if (!lua_checkstack(co, n)) lws_raise_mem(T);
      lua_xmove(T, co, n);
      break;
    case K_WAIT:
      /* the step's own reading: a wait's timer runs only once due <=
         stepnow, so this is at least what was asked for, and a step of
         many waits reads the clock once, not once per task (what the
         waiting task sees is the loop's time, as libuv's uv_now) */
      lua_pushnumber(co, S->stepnow - e->t0);
      n = 1;
      break;
    case K_AWAITED: { /* {w, target, isany, n, result...} */
      int isany;
      lua_rawgeti(T, top + 1, 3);
      isany = lua_toboolean(T, -1);
      lua_rawgeti(T, top + 1, 4);
      n = (int)lua_tointeger(T, -1);
      lua_pop(T, 2);
      luaL_checkstack(T, n + 1, "too many results");
      if (isany) lua_rawgeti(T, top + 1, 2);
      for (i = 1; i <= n; i++) lua_rawgeti(T, top + 1, 4 + i);
      if (isany) n++;
      if (!lua_checkstack(co, n)) lws_raise_mem(T);
      lua_xmove(T, co, n);
      break;
    }
    case K_ASYNC: /* {co, n, ok, values...} -> mark, ok, values... */
      lua_rawgeti(T, top + 1, 2);
      n = (int)lua_tointeger(T, -1) + 2;
      lua_pop(T, 1);
      luaL_checkstack(T, n, "too many results");
      lua_pushlightuserdata(T, (void *)&lws_async_mark);
      for (i = 2; i <= n; i++) lua_rawgeti(T, top + 1, i + 1);
      if (!lua_checkstack(co, n)) lws_raise_mem(T);
      lua_xmove(T, co, n);
      break;
    case K_TIMEOUT: /* {co, targets...} -> nil, "timeout" */
      luaL_checkstack(T, 8, "timeout");
      if (!lua_checkstack(co, 2)) lws_raise_mem(T);
      lua_pushnil(T);
      lua_pushliteral(T, "timeout"); /* may raise: co still awaits */
      if ((r = lw_store_refind(S->s, co, r, gen)) == NULL) {
        lua_settop(T, top);
        return 0;
      }
      /* from here nothing allocates: co's registrations go stale, and
         go, before it runs */
      lws_task_put(S, r, T_READY);
      gen = S->s->map.gen;
      lws_unregister(S, T, top + 1, 2);
      lua_xmove(T, co, 2);
      n = 2;
      break;
  }
  /* keep the anchored value (co, or a pack holding it) on T while co
     runs: nothing else may hold co, and the GC would free it mid-run */
  lua_settop(T, top + 1);
  st = resume_rec(S, co, lw_store_refind(S->s, co, r, gen), T, n);
  lua_settop(T, top);
  if (st == LW_EMEM) lws_raise_mem(T);
  return 1;
}

/* ------------------------------------------------------------------ */
/* suspending the running task                                         */

/* Where LW_SUSPEND_WRAPPED (lw_compat.h), the task functions return
   LW_SUSPEND_MARK and a Lua wrapper (lw_lua_task.c) suspends the task,
   and suspends it again if it is resumed while cancelled.  (LuaJIT also
   takes a lua_yield made while a __gc finalizer runs for a yield out of
   a hook, and the task crashes when resumed: its wrapper yields with
   coroutine.yield, which has no such path.) */
const char LW_SUSPEND_MARK = 'Y';
const char LW_CANCEL_MARK = 'C';

/* co, a task lws_cancel just ended, is resumed once (raw: its end is
   recorded) with LW_CANCEL_MARK when suspended in a task wrapper, which
   raises "cancelled" at that point; whatever its cleanup does then
   (returns, fails, yields again), its record is put back as cancel left
   it: dead or yielded, its stack emptied.  W is the running thread.
   Raises no Lua error. */
void lws_unwind(lw_sched *S, lua_State *co, lua_State *W) {
#if LW_SUSPEND_WRAPPED
  lw_rec *r;
  int n = 0, st;
  if (LWS_GONE(S) || co == W || lua_status(co) != LUA_YIELD ||
      !in_wrapper(S, co, 0) || !lua_checkstack(co, 1))
    return; /* not in task.wait/await/any/exit */
  lua_settop(co, 0);
  lua_pushlightuserdata(co, (void *)&LW_CANCEL_MARK);
  st = lw_co_resume(co, W, 1, &n);
  lua_settop(co, 0);
  r = lw_store_find(S->s, co);
  if (r != NULL && r->status == LW_CANCELLED)
    lwst_counts_set(S->s, co, r, st == LUA_YIELD, st == LUA_YIELD);
#else
  (void)S;
  (void)co;
  (void)W;
#endif
}

/* the wrappers' question: is the running task cancelled?  The record is
   read as it is: a cancelled task resumed behind luaweave's back is
   running, which validation would take for a new life */
static int l_cancelled(lua_State *L) {
  lw_sched *S = *(lw_sched **)lua_touserdata(L, lua_upvalueindex(1));
  lw_rec *r = (S != NULL && !LWS_GONE(S)) ? lw_store_find(S->s, L) : NULL;
  lua_pushboolean(L, r != NULL && r->status == LW_CANCELLED);
  return 1;
}

void lws_pushcancelled(lua_State *L) {
  lua_pushcclosure(L, l_cancelled, 1);
}

int lws_suspend(lua_State *L) {
#if LW_SUSPEND_WRAPPED
  lua_settop(L, 0);
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK); /* interned at open */
  return 1;
#else
  return lua_yield(L, 0);
#endif
}

/* A wait's deadline, rounded up so that due - t0 is at least what was
   asked: K_WAIT reports stepnow - t0 once due <= stepnow, and rounding
   is monotonic, so the task never sees less than it asked for (now + s
   may round down: 13437.29004699601 + 0.007 is 0.0069999999996 later) */
static double wait_due(double now, double seconds) {
  double due = now + seconds;
  while (due - now < seconds) due = nextafter(due, HUGE_VAL);
  return due;
}

int lw_sched_wait(lw_sched *S, lua_State *L, double seconds) {
  lw_rec *r;
  lw_ent e;
  double now;
  seconds = lws_sane_seconds(seconds);
  /* a wait for the next step, inside a step, is timed from the step's
     reading (the loop's time: K_WAIT reports stepnow - t0), so a step of
     such waits reads the clock once; a wait with a deadline reads it now,
     so that the deadline is what was asked for */
  now = (seconds == 0 && S->stepping) ? S->stepnow : lw_sched_now(S);
  if (!lw_yieldable(L))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "task.wait: not in a task (cannot yield here)");
  lua_pushthread(L);
  e.ref = lws_anchor(S, L);
  if ((r = lws_running_rec(S, L)) == NULL) {
    lws_unanchor(S, L, e.ref);
    lws_raise_mem(L);
  }
  lws_task_put(S, r, T_WAIT);
  e.co = L;
  e.ticket = r->ticket;
  e.kind = K_WAIT;
  e.t0 = now;
  if (lws_tpush(S, wait_due(now, seconds), &e, seconds == 0) != LW_OK) {
    lws_unanchor(S, L, e.ref);
    lws_task_put(S, r, T_RUNNING); /* t_push allocates outside Lua: r holds */
    lws_raise_mem(L);
  }
  return lws_suspend(L);
}

int lw_sched_exit(lw_sched *S, lua_State *L, int code) {
  S->exited = 1;
  S->exitcode = code;
  if (lw_yieldable(L)) return lws_suspend(L); /* and never come back */
  return 0;
}

/* run f(S-side args) protected on the scheduler's thread */
int lws_protect(lw_sched *S, lua_CFunction f, void *ud) {
  int st = lw_cpcall(S->T, f, ud);
  if (st != LUA_OK) {
    if (st > 0) lua_pop(S->T, 1);
    return LW_EMEM;
  }
  return LW_OK;
}

/* ------------------------------------------------------------------ */
/* stepping                                                            */

/* budget: the deferred entries one step may take (its due timers run
   whatever it is); what is left runs in the next step, after that step's
   due timers.  So a chain of task.defers, each deferring the next, holds
   back neither timers nor the driver's I/O poll between steps. */
typedef struct step_args { lw_sched *S; int count; long budget; } step_args;

/* the next deferred entry, while the step's budget lasts */
static int q_take(lw_sched *S, step_args *a, lw_ent *e) {
  if (S->exited || S->qlen == 0 || a->budget <= 0) return 0;
  a->budget--;
  *e = q_pop(S);
  return 1;
}

/* the count goes out through the arguments: lua_cpcall (5.1) returns no
   results */
static int step_protected(lua_State *L) {
  step_args *a = (step_args *)lua_touserdata(L, 1);
  lw_sched *S = a->S;
  double now = S->stepnow = lw_sched_now(S);
  unsigned long long seq0 = S->tq.seq;
  lw_ent e;
  lw_timer *p;
  /* work deferred outside any step (by the main chunk, by the host, or
     left over by the last step's budget) belongs to the cycle that is
     ending: it runs before the timers */
  while (q_take(S, a, &e)) a->count += run_entry(S, &e);
  while (!S->exited && (p = lw_timerq_peek(&S->tq)) != NULL && p->due <= now &&
         p->seq < seq0) {
    lw_timer t = lw_timerq_pop(&S->tq);
    a->count += run_entry(S, &t.e);
  }
  for (;;) {
    while (q_take(S, a, &e)) a->count += run_entry(S, &e);
    lws_purge_timers(S, L);
    /* a plain coroutine someone awaits may have ended under a raw
       resume: its awaiters run in this step, timed or not */
    if (!S->exited && S->wlists > 0) {
      lws_sweep_plain(S, L);
      if (S->qlen > 0 && a->budget > 0) continue;
    }
    /* an end the scheduler did not hear of (a raw lua_resume, a memory
       error on the end path), or awaiters gone stale: look at the
       awaited threads, when told to or when nothing else could run */
    if (S->exited || !(S->wsweep || (lws_idle(S) && S->wlists > 0))) break;
    lws_sweep(S, L);
    if (S->qlen == 0 || a->budget <= 0) break;
  }
  lws_flush_errors(S, L);
  return 0;
}

int lw_sched_step(lw_sched *S) {
  return lw_sched_step_budget(S, LW_STEP_BUDGET);
}

int lw_sched_step_budget(lw_sched *S, int budget) {
  step_args a;
  int st;
  if (S == NULL || LWS_GONE(S) || budget < 1) return LW_EINVAL;
  if (S->exited) return LW_EEXITED;
  if (S->stepping) return LW_EBUSY;
  if (S->poll) S->poll(S->poll_ud);
  a.S = S;
  a.count = 0;
  a.budget = budget;
  S->stepping = 1;
  st = lws_protect(S, step_protected, &a);
  S->stepping = 0;
  shrink(S);
  lua_settop(S->T, 0);
  return st != LW_OK ? LW_EMEM : a.count;
}

double lw_sched_next(lw_sched *S) {
  double d;
  if (S == NULL || LWS_GONE(S) || S->exited) return -1;
  if (S->qlen > 0) return 0;
  /* outstanding I/O on luaweave's own loop is polled at each step: a
     frame loop must step again soon, whatever the next timer says */
  if (S->nasync > 0 && S->poll != NULL) {
    if (lw_sched_ntimers(S) == 0) return 0.01;
    d = lw_timerq_peek(&S->tq)->due - lw_sched_now(S);
    return d > 0.01 ? 0.01 : d > 0 ? d : 0;
  }
  if (lw_sched_ntimers(S) > 0) {
    d = lw_timerq_peek(&S->tq)->due - lw_sched_now(S);
    return d > 0 ? d : 0;
  }
  return -1;
}

/* no thread is a task any more.  Removal pulls later slots back into
   the hole, never forward past it, so re-reading slot i after a removal
   visits everything (a slot seen twice is only cleared twice). */
static void tasks_clear(lw_sched *S) {
  lw_map *m = &S->s->map;
  size_t i = 0;
  while (i < lw_map_capacity(m)) {
    lw_slot *sl = &m->slots[i];
    if (sl->key != NULL && sl->rec.task != 0) {
      sl->rec.task = 0;
      sl->rec.cancel = 0;
      lw_store_tasks_add(S->s, -1);
      if (sl->rec.status == 0) {
        lw_map_remove_rec(m, &sl->rec);
        continue;
      }
    }
    i++;
  }
  S->nwaiting = 0;
}

void lw_sched_clear(lw_sched *S, lua_State *W) {
  while (S->qlen > 0) {
    lw_ent e = q_pop(S);
    lws_unanchor(S, W, e.ref);
    lua_pop(W, 1);
  }
  while (lw_sched_ntimers(S) > 0) {
    lw_timer t = lw_timerq_pop(&S->tq);
    lws_unanchor(S, W, t.e.ref);
    lua_pop(W, 1);
  }
  lua_newtable(W); /* forget every waiter list */
  lua_rawseti(W, LUA_REGISTRYINDEX, S->wref);
  S->wlists = 0;
  lws_new_hold_table(W); /* and what the dropped task.any entries held */
  lua_rawseti(W, LUA_REGISTRYINDEX, S->yref);
  S->nyheld = 0;
  lua_newtable(W); /* errors pending a report were flushed by the step */
  lua_rawseti(W, LUA_REGISTRYINDEX, S->eref);
  S->npend = 0;
  S->wsweep = 0;
  tasks_clear(S);
}

/* nothing queued, no timer, no async operation out */
int lws_idle(const lw_sched *S) {
  return S->qlen == 0 && lw_sched_ntimers(S) == 0 && S->nasync == 0;
}

int lws_stuck(const lw_sched *S) { return lws_idle(S) && S->nwaiting > 0; }

static int sweep_protected(lua_State *L) {
  lws_sweep((lw_sched *)lua_touserdata(L, 1), L);
  return 0;
}

size_t lw_sched_deadlocked(lw_sched *S) {
  if (S == NULL || LWS_GONE(S) || !lws_stuck(S)) return 0;
  if (!S->stepping && lua_status(S->T) == LUA_OK)
    (void)lws_protect(S, sweep_protected, S); /* out of memory: as it is */
  return lws_stuck(S) ? S->nwaiting : 0;
}

