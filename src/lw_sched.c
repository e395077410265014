/*
** lw_sched.c — the scheduler: run queue, timers, waiters, cancel, errors,
** exit.  It knows no event loop: a driver (lw_loop.c) or the host steps it.
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
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char SCHED_KEY = 'K';

#define POOL_MAX 256 /* recycled threads kept for reuse; more go to the GC */

/* the state is closing: the scheduler, or the store under it, is gone */
#define GONE(S) ((S)->closed || (S)->s == NULL)
static const char ASYNC_MARK = 'A'; /* first value of an async resumption */

typedef struct sbox { lw_sched *S; } sbox;

/* entry kinds: what a task is resumed with */
enum { K_START, K_ARGS, K_WAIT, K_AWAITED, K_ASYNC };

/* task states, in the record's task field (0: not a task) */
enum { T_READY = 1, T_RUNNING, T_WAIT, T_AWAIT, T_ASYNC };

/* ------------------------------------------------------------------ */
/* memory and small structures                                         */

static void *sched_alloc(lw_sched *S, void *p, size_t osize, size_t nsize) {
  return S->f(S->ud, p, osize, nsize); /* not through S->s: see sched_gc */
}

/* move the ring into ncap (>= qlen) slots, unwrapped */
static int q_resize(lw_sched *S, size_t ncap) {
  size_t i;
  lw_ent *nq = (lw_ent *)sched_alloc(S, NULL, 0, ncap * sizeof(lw_ent));
  if (nq == NULL) return LW_EMEM;
  for (i = 0; i < S->qlen; i++) nq[i] = S->q[(S->qhead + i) % S->qcap];
  if (S->q) sched_alloc(S, S->q, S->qcap * sizeof(lw_ent), 0);
  S->q = nq;
  S->qcap = ncap;
  S->qhead = 0;
  return LW_OK;
}

static int q_push(lw_sched *S, const lw_ent *e) {
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

static int t_before(const lw_timer *a, const lw_timer *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static int h_push(lw_sched *S, double due, const lw_ent *e) {
  size_t i;
  lw_timer t;
  if (S->hlen == S->hcap) {
    size_t ncap = S->hcap ? S->hcap * 2 : 64;
    lw_timer *nh = (lw_timer *)sched_alloc(S, S->heap, S->hcap * sizeof(lw_timer),
                                           ncap * sizeof(lw_timer));
    if (nh == NULL) return LW_EMEM;
    S->heap = nh;
    S->hcap = ncap;
  }
  t.due = due;
  t.seq = S->seq++;
  t.e = *e;
  /* sift the hole up, then fill it once */
  for (i = S->hlen++; i > 0 && t_before(&t, &S->heap[(i - 1) / 2]);
       i = (i - 1) / 2)
    S->heap[i] = S->heap[(i - 1) / 2];
  S->heap[i] = t;
  if (S->notify) S->notify(S);
  return LW_OK;
}

/* Zero-delay timers (task.wait(0), task.wait(), task.delay(0)) are due
   "now" when set, so they arrive in (due, seq) order: a FIFO keeps them
   sorted at O(1), and the earliest timer is the earlier of its head and
   the heap's top.  A clock that steps back (a host's) sends a timer to
   the heap instead, so the FIFO stays sorted. */

/* move the FIFO into ncap (a power of 2, >= zlen) slots, unwrapped */
static int z_resize(lw_sched *S, size_t ncap) {
  size_t i;
  lw_timer *nz = (lw_timer *)sched_alloc(S, NULL, 0, ncap * sizeof(lw_timer));
  if (nz == NULL) return LW_EMEM;
  for (i = 0; i < S->zlen; i++) nz[i] = S->zq[(S->zhead + i) & (S->zcap - 1)];
  if (S->zq) sched_alloc(S, S->zq, S->zcap * sizeof(lw_timer), 0);
  S->zq = nz;
  S->zcap = ncap;
  S->zhead = 0;
  return LW_OK;
}

static int z_push(lw_sched *S, double due, const lw_ent *e) {
  lw_timer *t;
  if (S->zlen == S->zcap && z_resize(S, S->zcap ? S->zcap * 2 : 64) != LW_OK)
    return LW_EMEM;
  t = &S->zq[(S->zhead + S->zlen++) & (S->zcap - 1)];
  t->due = due;
  t->seq = S->seq++;
  t->e = *e;
  if (S->notify) S->notify(S);
  return LW_OK;
}

/* a timer due at `due`; zero: set with no delay */
static int t_push(lw_sched *S, double due, const lw_ent *e, int zero) {
  if (zero && (S->zlen == 0 ||
               S->zq[(S->zhead + S->zlen - 1) & (S->zcap - 1)].due <= due))
    return z_push(S, due, e);
  return h_push(S, due, e);
}

/* the earliest timer, or NULL */
static lw_timer *t_peek(lw_sched *S) {
  lw_timer *z = S->zlen ? &S->zq[S->zhead] : NULL;
  if (S->hlen == 0) return z;
  return (z != NULL && t_before(z, &S->heap[0])) ? z : &S->heap[0];
}

/* give back what a burst of work left behind: between steps, a queue,
   FIFO or heap used to a quarter or less shrinks (keeping room to
   double); if memory runs out, the bigger one stays */
static void shrink(lw_sched *S) {
  size_t ncap;
  for (ncap = S->qcap; ncap > 64 && S->qlen * 4 < ncap; ncap /= 2) {}
  if (ncap < S->qcap) (void)q_resize(S, ncap);
  for (ncap = S->zcap; ncap > 64 && S->zlen * 4 < ncap; ncap /= 2) {}
  if (ncap < S->zcap) (void)z_resize(S, ncap);
  for (ncap = S->hcap; ncap > 64 && S->hlen * 4 < ncap; ncap /= 2) {}
  if (ncap < S->hcap) {
    lw_timer *nh = (lw_timer *)sched_alloc(S, S->heap, S->hcap * sizeof(lw_timer),
                                           ncap * sizeof(lw_timer));
    if (nh != NULL) {
      S->heap = nh;
      S->hcap = ncap;
    }
  }
}

/* move the timer at i down to its place among the first n: sift the
   hole down, then fill it once */
static void h_down(lw_sched *S, size_t i, size_t n) {
  lw_timer t = S->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && t_before(&S->heap[c + 1], &S->heap[c])) c++;
    if (!t_before(&S->heap[c], &t)) break;
    S->heap[i] = S->heap[c];
    i = c;
  }
  S->heap[i] = t;
}

static lw_timer h_pop(lw_sched *S) {
  lw_timer top = S->heap[0];
  size_t n = --S->hlen;
  if (S->hswept > n) S->hswept = n;
  if (n > 0) {
    S->heap[0] = S->heap[n];
    h_down(S, 0, n);
  }
  return top;
}

/* take the earliest timer (there is one) */
static lw_timer t_pop(lw_sched *S) {
  lw_timer t;
  if (S->zlen == 0 || (S->hlen > 0 && t_before(&S->heap[0], &S->zq[S->zhead])))
    return h_pop(S);
  t = S->zq[S->zhead];
  S->zhead = (S->zhead + 1) & (S->zcap - 1);
  S->zlen--;
  return t;
}

static void raise_mem(lua_State *L) {
  lw_sync_running(L); /* L may have resumed tasks before this */
  lua_pushliteral(L, "not enough memory");
  lua_error(L);
}

/* Anchors are slots of one Lua table's array part.  The free slots are a
   stack of numbers kept in C (not luaL_ref's list inside the table): one
   raw set anchors, one raw set of nil frees, and the stack always has
   room for every slot, so freeing never allocates. */

/* anchor the value on L's top (popped); may raise a memory error */
static int anchor(lw_sched *S, lua_State *L) {
  int ref, fresh = S->nafree == 0;
  if (fresh && S->alen == S->afreecap) {
    size_t ncap = S->afreecap ? S->afreecap * 2 : 64;
    int *nf = (int *)sched_alloc(S, S->afree, S->afreecap * sizeof(int),
                                 ncap * sizeof(int));
    if (nf == NULL || ncap > (size_t)0x7fffffff) raise_mem(L);
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
static void anchor_free(lw_sched *S, lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aref);
  lua_pushnil(L);
  lua_rawseti(L, -2, ref);
  lua_pop(L, 1);
  S->afree[S->nafree++] = ref;
}

/* push the anchored value and free its slot */
static void unanchor(lw_sched *S, lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->aref);
  lua_rawgeti(L, -1, ref);
  lua_pushnil(L);
  lua_rawseti(L, -3, ref);
  lua_replace(L, -2);
  S->afree[S->nafree++] = ref;
}

static void push_thread(lua_State *L, lua_State *co) {
  lua_pushthread(co);
  lua_xmove(co, L, 1);
}

/* ------------------------------------------------------------------ */
/* task records                                                        */

static lw_rec *task_rec(lw_sched *S, lua_State *co) {
  lw_rec *r = lw_store_find(S->s, co);
  return (r != NULL && r->task != 0) ? r : NULL;
}

/* give the record r (current) a task state and a fresh ticket */
static void task_put(lw_sched *S, lw_rec *r, int state) {
  if (r->task == T_AWAIT) S->nwaiting--;
  else if (r->task == 0) S->s->ntasks++;
  r->task = (unsigned)state;
  r->ticket = ++S->ticket;
  if (state == T_AWAIT) S->nwaiting++;
}

/* task_put on co's record, made if need be (a thread the store does not
   track gets a record of the scheduler's only); NULL when memory runs out */
static lw_rec *task_set(lw_sched *S, lua_State *co, int state) {
  lw_rec *r;
  if (lw_map_insert(&S->s->map, co, &r) < 0) return NULL;
  task_put(S, r, state);
  return r;
}

/* the running task L's record, tracked (NULL when memory runs out): the
   one its resumption found, if the map has not moved since */
static lw_rec *running_rec(lw_sched *S, lua_State *L) {
  if (L == S->runco && S->s->map.gen == S->rungen && S->runrec->status != 0)
    return S->runrec;
  return lw_store_track(S->s, L);
}

/* r (current) is no task any more; the record goes if the store has none */
static void task_end(lw_sched *S, lua_State *co, lw_rec *r) {
  if (r->task == 0) return;
  if (r->task == T_AWAIT) S->nwaiting--;
  r->task = 0;
  r->cancel = 0;
  S->s->ntasks--;
  lw_store_release(S->s, co, r);
}

static void task_drop(lw_sched *S, lua_State *co) {
  lw_rec *r = lw_store_find(S->s, co);
  if (r != NULL) task_end(S, co, r);
}

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

/* ------------------------------------------------------------------ */
/* waking awaiters                                                     */

/* push the waiters table W and W[co] (nil when nobody awaits co) onto T;
   T needs room for 2 */
static void push_wlist(lw_sched *S, lua_State *T, lua_State *co) {
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->wref);
  push_thread(T, co);
  lua_rawget(T, -2);
}

/* store co's result into the pack on T's top, as n, values... (n = 1,
   nil if co is no longer tracked) */
static void pack_result(lw_sched *S, lua_State *co, lua_State *T) {
  int n = lw_result(S->s, co, T), i;
  if (n < 0) {
    lua_pushnil(T);
    n = 1;
  }
  for (i = n; i >= 1; i--) lua_rawseti(T, -1 - i, 4 + i);
  lua_pushinteger(T, n);
  lua_rawseti(T, -2, 4);
}

/* push the table of any_hold's counts: weak keys, so that a count lost
   to a memory error never keeps its thread alive */
static void new_hold_table(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

/* count d (+1, -1) woken task.any waiters that will be handed co when
   they run: co must not be recycled meanwhile.  +1 may raise a memory
   error (then nothing is counted); -1 never raises.  T needs room for 4 */
static void any_hold(lw_sched *S, lua_State *T, lua_State *co, int d) {
  lua_Integer n;
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->yref);
  push_thread(T, co);
  lua_pushvalue(T, -1);
  lua_rawget(T, -3);
  n = lua_tointeger(T, -1) + d;
  lua_pop(T, 1);
  if (n > 0) lua_pushinteger(T, n);
  else lua_pushnil(T);
  lua_rawset(T, -3);
  lua_pop(T, 1);
  if (d > 0) S->nyheld++;
  else S->nyheld--;
}

/* co has ended (returned, failed or cancelled): wake whoever awaits it;
   1 if someone did */
static int wake_awaiters(lw_sched *S, lua_State *co, lua_State *W) {
  lua_State *T = W;
  int top, woke = 0, n, i;
  if (S->wlists == 0) return 0; /* nobody awaits anything: skip the lookup */
  top = lua_gettop(T);
  luaL_checkstack(T, 8, "await");
  push_wlist(S, T, co);
  if (!lua_istable(T, -1)) {
    lua_settop(T, top);
    return 0;
  }
  n = (int)lw_rawlen(T, -1);
  for (i = 1; i + 2 <= n; i += 3) {
    lua_State *w;
    lw_rec *r;
    lw_ent e;
    unsigned ticket;
    int isany;
    lua_rawgeti(T, -1, i);
    w = lua_tothread(T, -1);
    lua_rawgeti(T, -2, i + 1);
    ticket = (unsigned)lua_tointeger(T, -1);
    lua_rawgeti(T, -3, i + 2);
    isany = lua_toboolean(T, -1);
    lua_pop(T, 2);
    r = task_rec(S, w);
    if (r == NULL || r->task != T_AWAIT || r->ticket != ticket) {
      lua_pop(T, 1);
      continue;
    }
    /* pack {w, target, isany, n, result...}: the result is read now,
       not when w runs, because co may be recycled (or untracked) in
       between, and w must get the result co ended with */
    lua_createtable(T, 6, 0);
    lua_insert(T, -2);
    lua_rawseti(T, -2, 1);
    push_thread(T, co);
    lua_rawseti(T, -2, 2);
    lua_pushboolean(T, isany);
    lua_rawseti(T, -2, 3);
    pack_result(S, co, T);
    /* what may fail comes first, while w still awaits: after a memory
       error w stays on the list, counted as waiting (a deadlock, not a
       task lost with nothing queued to run it) */
    if (isany) any_hold(S, T, co, 1); /* a count lost to a raise below only
                                         keeps co from being recycled */
    e.ref = anchor(S, T); /* pops the pack */
    if (S->qlen == S->qcap && q_resize(S, S->qcap ? S->qcap * 2 : 64) != LW_OK) {
      anchor_free(S, T, e.ref);
      if (isany) any_hold(S, T, co, -1);
      raise_mem(T);
    }
    /* that allocated: the GC may have moved records, or run code */
    r = task_rec(S, w);
    if (r == NULL || r->task != T_AWAIT || r->ticket != ticket) {
      anchor_free(S, T, e.ref);
      if (isany) any_hold(S, T, co, -1);
      continue;
    }
    task_put(S, r, T_READY);
    e.co = w;
    e.ticket = r->ticket;
    e.kind = K_AWAITED;
    e.t0 = 0;
    q_push(S, &e); /* there is room: it cannot fail */
    woke = 1;
  }
  lua_settop(T, top + 1); /* waiters table */
  push_thread(T, co);
  lua_pushnil(T);
  lua_rawset(T, -3);
  S->wlists--;
  lua_settop(T, top);
  return woke;
}

/* co ended; failed: by an error */
static void finished(lw_sched *S, lua_State *co, int failed, lua_State *W) {
  int woke = wake_awaiters(S, co, W);
  if (failed && !woke && co != S->main) report(S, co, W);
}

static void do_cancel(lw_sched *S, lua_State *co, lua_State *W) {
  task_drop(S, co);
  if (lw_cancel(S->s, co, W) == LW_EMEM) raise_mem(W);
  /* failed: a to-be-closed variable raised while it closed */
  finished(S, co, lw_status(S->s, co) == LW_FAILED, W);
}

/* ------------------------------------------------------------------ */
/* resuming                                                            */

static void report_msg(lw_sched *S, lua_State *co, const char *msg);

/* 5.1 and 5.2 cannot tell beforehand whether a task may yield: a wait,
   await or async operation can be registered and its yield then fail
   ("attempt to yield across ...", caught by a pcall).  A co that later
   yields from coroutine.yield has yielded plainly, whatever it registered
   before, and that registration must not resume it. */
static int yielded_plainly(lw_sched *S, lua_State *co) {
  return LW_YIELD_UNSURE && S->yieldfn != NULL && lw_co_cfunc(co) == S->yieldfn;
}

/* Lua refused to run co at all ("C stack overflow": resumes nested too
   deep) and left its message on co's top.  A task is not retried later
   (its arguments are gone): it fails with that message, as if it had
   raised it, so that it is reported or handed to its awaiters.  A
   yielded co that this Lua cannot close (before 5.4) is cancelled and the
   message reported.  1 if co is now failed. */
static int refused(lw_sched *S, lua_State *co, lua_State *W) {
  luaL_checkstack(W, 4, "resume");
  lua_xmove(co, W, 1);
  if (lw_cancel(S->s, co, W) == LW_EMEM) raise_mem(W); /* never run: dead */
  if (lw_co_status(W, co) == LW_CO_DEAD && lua_gettop(co) == 0) {
    lw_store_setfailure(S->s, co, W); /* pops the message */
    return 1;
  }
  report_msg(S, co, lua_tostring(W, -1));
  lua_pop(W, 1);
  return 0;
}

/* lw_sched_resume with r co's record at the current gen, or NULL (then
   it is looked up, or made) */
static int resume_rec(lw_sched *S, lua_State *co, lw_rec *r, lua_State *from,
                      int nargs) {
  int st, n, tracked, failed;
  if (r == NULL || r->status == 0) r = lw_store_track(S->s, co);
  if (r == NULL) {
    lua_pop(co, nargs);
    return LW_EMEM;
  }
  task_put(S, r, T_RUNNING);
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
    if (r != NULL) task_end(S, co, r);
    return st;
  }
  if (st == LUA_YIELD) {
    /* cancelled while it ran: whatever it yields for (a plain yield, a
       wait, an await, an async operation), it never runs again; its
       entries go stale with its record */
    if (r != NULL && r->cancel) {
      do_cancel(S, co, from);
    } else if (r != NULL) {
      /* a plain yield: someone else resumes it, or nobody.
         yielded_plainly may allocate, and so move r */
      unsigned long g = S->s->map.gen;
      if (r->task == T_RUNNING ||
          (yielded_plainly(S, co) && (r = lw_store_refind(S->s, co, r, g)) != NULL))
        task_end(S, co, r);
    }
    return st;
  }
  tracked = r != NULL && r->status != 0;
  if (r != NULL) task_end(S, co, r);
  if (!tracked) return st; /* untracked meanwhile */
  failed = st != LUA_OK;
  if (failed && lw_status(S->s, co) != LW_FAILED) failed = refused(S, co, from);
  finished(S, co, failed, from);
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
      (r->task == T_READY || r->task == T_WAIT || r->task == T_ASYNC))
    return r;
  return NULL;
}

/* drop stale timers from the front (a cancelled or woken task's), so
   that the next deadline, run and deadlock see only live ones; W is the
   running thread */
static void purge_timers(lw_sched *S, lua_State *W) {
  lw_timer *p;
  /* a stale timer below a live one would wait for its own deadline, and
     keep its task anchored (alive, tracked) until then: a long timeout
     cancelled each time the work it guards is done would pile up.  So
     when the heap has doubled since the last sweep, sweep it whole:
     O(1) a timer, amortized, and stale timers stay fewer than live ones
     (plus 64) */
  if (S->hlen > 2 * S->hswept + 64) {
    size_t i, n = 0;
    for (i = 0; i < S->hlen; i++) {
      if (ent_live(S, &S->heap[i].e)) {
        S->heap[n++] = S->heap[i];
      } else {
        unanchor(S, W, S->heap[i].e.ref);
        lua_pop(W, 1);
      }
    }
    S->hlen = S->hswept = n;
    for (i = n / 2; i-- > 0;) h_down(S, i, n);
  }
  while ((p = t_peek(S)) != NULL && ent_live(S, &p->e) == NULL) {
    lw_timer t = t_pop(S);
    unanchor(S, W, t.e.ref);
    lua_pop(W, 1);
  }
}

/* co is about to be resumed with arguments of its own.  If a start is
   still pending on it (f and the start's arguments wait on its stack; the
   spawn, defer or delay entry goes stale with this resumption), drop the
   start's arguments so that f gets these, as a coroutine's first resume
   gives them: left there, Lua would call the last of them */
static void drop_start_args(lua_State *co) {
  lua_Debug ar;
  if (lua_status(co) == LUA_OK && lua_gettop(co) > 1 &&
      !lua_getstack(co, 0, &ar))
    lua_settop(co, 1);
}

static int run_entry(lw_sched *S, const lw_ent *e) {
  lua_State *T = S->T, *co = e->co;
  int top = lua_gettop(T), n = 0, i, st;
  unsigned long gen;
  lw_rec *r;
  luaL_checkstack(T, 7, "step"); /* before the entry is taken apart */
  unanchor(S, T, e->ref);
  if (e->kind == K_AWAITED && S->nyheld > 0) { /* {w, target, isany, ...} */
    lua_rawgeti(T, top + 1, 3);
    if (lua_toboolean(T, -1)) {
      lua_rawgeti(T, top + 1, 2);
      any_hold(S, T, lua_tothread(T, -1), -1);
    }
    lua_settop(T, top + 1);
  }
  if ((r = ent_live(S, e)) == NULL) {
    lua_settop(T, top);
    return 0;
  }
  gen = S->s->map.gen; /* what follows may allocate, and so move r */
  if (e->kind >= K_WAIT && yielded_plainly(S, co)) {
    /* a coroutine no task drives (see yielded_plainly) */
    if ((r = lw_store_refind(S->s, co, r, gen)) != NULL) task_end(S, co, r);
    lua_settop(T, top);
    return 0;
  }
  switch (e->kind) {
    case K_START:
      n = lua_gettop(co) - 1;
      break;
    case K_ARGS: /* {co, n, args...} */
      lua_rawgeti(T, -1, 2);
      n = (int)lua_tointeger(T, -1);
      lua_pop(T, 1);
      luaL_checkstack(T, n, "too many arguments");
      for (i = 1; i <= n; i++) lua_rawgeti(T, top + 1, i + 2);
      drop_start_args(co);
      if (!lua_checkstack(co, n)) raise_mem(T);
      lua_xmove(T, co, n);
      break;
    case K_WAIT:
      lua_pushnumber(co, lw_sched_now(S) - e->t0);
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
      if (!lua_checkstack(co, n)) raise_mem(T);
      lua_xmove(T, co, n);
      break;
    }
    case K_ASYNC: /* {co, n, ok, values...} -> mark, ok, values... */
      lua_rawgeti(T, top + 1, 2);
      n = (int)lua_tointeger(T, -1) + 2;
      lua_pop(T, 1);
      luaL_checkstack(T, n, "too many results");
      lua_pushlightuserdata(T, (void *)&ASYNC_MARK);
      for (i = 2; i <= n; i++) lua_rawgeti(T, top + 1, i + 1);
      if (!lua_checkstack(co, n)) raise_mem(T);
      lua_xmove(T, co, n);
      break;
  }
  /* keep the anchored value (co, or a pack holding it) on T while co
     runs: nothing else may hold co, and the GC would free it mid-run */
  lua_settop(T, top + 1);
  st = resume_rec(S, co, lw_store_refind(S->s, co, r, gen), T, n);
  lua_settop(T, top);
  if (st == LW_EMEM) raise_mem(T);
  return 1;
}

/* ------------------------------------------------------------------ */
/* opening                                                             */

static double default_clock(void *ud) {
  struct timespec ts;
  (void)ud;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int complete_protected(lua_State *T);

static int sched_gc(lua_State *L) {
  sbox *b = (sbox *)lua_touserdata(L, 1);
  lw_sched *S = b->S;
  if (S == NULL) return 0;
  b->S = NULL;
  S->closed = 1;
  /* lua_close finalizes in an order we do not choose: if the store went
     first it has cleared S->s; if it is still there, stop listening */
  if (S->s != NULL && S->s->backref == &S->s) S->s->backref = NULL;
  if (S->driver_free) S->driver_free(S);
  if (S->q) sched_alloc(S, S->q, S->qcap * sizeof(lw_ent), 0);
  if (S->heap) sched_alloc(S, S->heap, S->hcap * sizeof(lw_timer), 0);
  if (S->zq) sched_alloc(S, S->zq, S->zcap * sizeof(lw_timer), 0);
  if (S->afree) sched_alloc(S, S->afree, S->afreecap * sizeof(int), 0);
  sched_alloc(S, S, sizeof *S, 0);
  return 0;
}

static int open_protected(lua_State *L) {
  lw_sched *S = (lw_sched *)lua_touserdata(L, 1);
  sbox *b;
  S->T = lua_newthread(L);
  S->tref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->aref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  S->wref = luaL_ref(L, LUA_REGISTRYINDEX);
  new_hold_table(L);
  S->yref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_createtable(L, POOL_MAX, 0); /* sized now: recycling never allocates */
  S->pref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushlightuserdata(L, S);
  lua_pushcclosure(L, complete_protected, 1);
  S->cref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (LW_YIELD_UNSURE) { /* see yielded_plainly */
    if (lw_pushyield(L)) S->yieldfn = lua_tocfunction(L, -1);
    lua_pop(L, 1);
  }
  b = (sbox *)lua_newuserdata(L, sizeof(sbox));
  b->S = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, sched_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lw_rawsetp(L, LUA_REGISTRYINDEX, &SCHED_KEY);
  b->S = S;
  S->s->backref = &S->s;
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
  *S = ((sbox *)b)->S;
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
  int st;
  if (L == NULL || find_sched(L, &S) != 0) return NULL;
  if (S != NULL) return S;
  if ((s = lw_store_open(L)) == NULL) return NULL;
  S = (lw_sched *)s->f(s->ud, NULL, 0, sizeof *S);
  if (S == NULL) return NULL;
  memset(S, 0, sizeof *S);
  S->s = s;
  S->f = s->f;
  S->ud = s->ud;
  S->tref = S->aref = S->wref = S->yref = S->cref = S->pref = LUA_NOREF;
  S->clock = default_clock;
  st = lw_cpcall(L, open_protected, S);
  if (st != LUA_OK) {
    if (st > 0) lua_pop(L, 1);
    lw_unref(L, LUA_NOREF, S->tref);
    lw_unref(L, LUA_NOREF, S->aref);
    lw_unref(L, LUA_NOREF, S->wref);
    lw_unref(L, LUA_NOREF, S->yref);
    lw_unref(L, LUA_NOREF, S->cref);
    lw_unref(L, LUA_NOREF, S->pref);
    s->f(s->ud, S, sizeof *S, 0);
    return NULL;
  }
  return S;
}

/* ------------------------------------------------------------------ */
/* spawn, defer, delay                                                 */

/* the thread to run f_or_co with nargs arguments (all popped from L):
   a new thread holding f and the arguments (K_START), or co itself with
   a pack of the arguments on L's top (K_ARGS).  *kind says which. */
/* a thread for new work, pushed onto L: a recycled one if the pool has
   any (lw_sched_recycle), else a new one; may raise a memory error */
static lua_State *new_thread(lw_sched *S, lua_State *L) {
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

static lua_State *prepare(lw_sched *S, lua_State *L, int nargs, int *kind) {
  int fidx = lua_gettop(L) - nargs;
  lua_State *co;
  if (lua_type(L, fidx) == LUA_TFUNCTION) {
    co = new_thread(S, L);
    /* lua_xmove does not grow co's stack: a fresh thread has room for
       about 40 values */
    if (!lua_checkstack(co, nargs + 1))
      luaL_error(L, "too many arguments to start a task");
    lua_insert(L, fidx);
    lua_xmove(L, co, nargs + 1); /* f and its arguments */
    *kind = K_START;
    return co;
  }
  co = lua_tothread(L, fidx);
  /* pack {co, n, args...} in place of co and the arguments */
  lua_createtable(L, nargs + 2, 0);
  lua_insert(L, fidx);
  lua_pushinteger(L, nargs);
  lua_rawseti(L, fidx, 2);
  while (nargs > 0) lua_rawseti(L, fidx, 2 + nargs--);
  lua_rawseti(L, fidx, 1);
  *kind = K_ARGS;
  return co;
}

static int valid_target(lua_State *L, int nargs) {
  int t = lua_type(L, lua_gettop(L) - nargs);
  return nargs >= 0 && lua_gettop(L) > nargs &&
         (t == LUA_TFUNCTION || t == LUA_TTHREAD);
}

/* report to the error callback that co could not be resumed */
static void report_msg(lw_sched *S, lua_State *co, const char *msg) {
  S->nerrors++;
  if (S->onerror) S->onerror(S->onerror_ud, co, msg);
  else fprintf(stderr, "luaweave: %s\n", msg);
}

int lw_sched_spawn(lw_sched *S, lua_State *L, int nargs) {
  lua_State *co;
  int st;
  if (S == NULL || L == NULL || GONE(S) || !valid_target(L, nargs))
    return LW_EINVAL;
  if (lw_universe(L) != S->s->universe) return LW_EUNIVERSE;
  if (lua_type(L, -(nargs + 1)) == LUA_TFUNCTION) {
    int kind;
    co = prepare(S, L, nargs, &kind);
    /* the new thread is on L's top, f and args on co */
    nargs = lua_gettop(co) - 1;
  } else {
    co = lua_tothread(L, -(nargs + 1));
    if (co == L || !lua_checkstack(co, nargs + 1)) {
      lua_pop(L, nargs);
      report_msg(S, co, co == L ? "cannot resume non-suspended coroutine"
                                : "too many arguments to resume");
      return LW_OK;
    }
    drop_start_args(co);
    lua_xmove(L, co, nargs); /* the thread stays on L's top */
  }
  st = lw_sched_resume(S, co, L, nargs);
  if (st == LW_EMEM) raise_mem(L);
  if (st == LW_ESTATE) {
    int dead = lw_co_status(L, co) == LW_CO_DEAD ||
               lw_status(S->s, co) == LW_CANCELLED;
    report_msg(S, co, dead ? "cannot resume dead coroutine"
                           : "cannot resume non-suspended coroutine");
  }
  return LW_OK;
}

/* queue f_or_co to start or resume after `seconds` (< 0: deferred) */
static int schedule(lw_sched *S, lua_State *L, double seconds, int nargs) {
  lua_State *co;
  lw_rec *r;
  lw_ent e;
  int kind, e2;
  if (S == NULL || L == NULL || GONE(S) || !valid_target(L, nargs))
    return LW_EINVAL;
  if (lw_universe(L) != S->s->universe) return LW_EUNIVERSE;
  co = prepare(S, L, nargs, &kind);
  /* L's top: the new thread (K_START) or the pack (K_ARGS) */
  if ((r = lw_store_track(S->s, co)) == NULL) raise_mem(L);
  task_put(S, r, T_READY);
  e.co = co;
  e.ticket = r->ticket;
  if (kind == K_START) {
    lua_pushvalue(L, -1); /* keep the thread for the caller */
  } else {
    push_thread(L, co);   /* the caller gets the thread */
    lua_insert(L, -2);
  }
  e.kind = kind;
  e.t0 = 0;
  e.ref = anchor(S, L);
  if (seconds < 0) e2 = q_push(S, &e);
  else e2 = t_push(S, lw_sched_now(S) + seconds, &e, seconds == 0);
  if (e2 != LW_OK) {
    unanchor(S, L, e.ref);
    lua_pop(L, 1);
    task_drop(S, co);
    raise_mem(L);
  }
  return LW_OK;
}

int lw_sched_defer(lw_sched *S, lua_State *L, int nargs) {
  return schedule(S, L, -1, nargs);
}

/* NaN, negative, infinite and absurd durations are 0 */
static double sane_seconds(double sec) {
  if (!(sec > 0) || sec > 2147483647.0) return 0;
  return sec;
}

int lw_sched_delay(lw_sched *S, lua_State *L, double seconds, int nargs) {
  return schedule(S, L, sane_seconds(seconds), nargs);
}

/* ------------------------------------------------------------------ */
/* suspending the running task                                         */

/* LuaJIT takes a lua_yield made while a __gc finalizer runs (its "hook
   active" flag is set then, for every coroutine) for a yield out of a
   hook: it pushes a hook continuation and clears the flag, and resuming
   the task later crashes.  A task spawned from a finalizer that waits
   did that.  There the task functions return LW_SUSPEND_MARK instead,
   and a Lua wrapper (lw_lua_task.c) yields with coroutine.yield, which
   has no such path. */
const char LW_SUSPEND_MARK = 'Y';

static int suspend(lua_State *L) {
#ifdef LW_LUAJIT
  lua_settop(L, 0);
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK); /* interned at open */
  return 1;
#else
  return lua_yield(L, 0);
#endif
}

int lw_sched_wait(lw_sched *S, lua_State *L, double seconds) {
  lw_rec *r;
  lw_ent e;
  double now = lw_sched_now(S);
  if (!lw_yieldable(L))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "task.wait: not in a task (cannot yield here)");
  lua_pushthread(L);
  e.ref = anchor(S, L);
  if ((r = running_rec(S, L)) == NULL) {
    unanchor(S, L, e.ref);
    raise_mem(L);
  }
  task_put(S, r, T_WAIT);
  e.co = L;
  e.ticket = r->ticket;
  e.kind = K_WAIT;
  e.t0 = now;
  seconds = sane_seconds(seconds);
  if (t_push(S, now + seconds, &e, seconds == 0) != LW_OK) {
    unanchor(S, L, e.ref);
    task_put(S, r, T_RUNNING); /* t_push allocates outside Lua: r holds */
    raise_mem(L);
  }
  return suspend(L);
}

/* how a thread stands for await: 1 ended (result can be pushed), 0 not */
static int ended(lw_sched *S, lua_State *co) {
  int st = lw_status(S->s, co);
  return st == LW_RETURNED || st == LW_FAILED || st == LW_CANCELLED;
}

int lw_sched_await(lw_sched *S, lua_State *L, int first, int last, int isany) {
  int i;
  lw_rec *r;
  for (i = first; i <= last; i++) {
    lua_State *co = lua_tothread(L, i);
    int st;
    lw_rec *t;
    if (co == L)
      return lw_errorat(L, LW_TASK_LEVEL, "cannot await the running thread");
    if ((t = lw_store_track(S->s, co)) == NULL) raise_mem(L);
    st = lw_store_status(S->s, co, t);
    if (st == LW_RETURNED || st == LW_FAILED || st == LW_CANCELLED) {
      int n;
      if (isany) lua_pushvalue(L, i);
      n = lw_result(S->s, co, L);
      return n + isany;
    }
    if (lw_co_status(L, co) == LW_CO_DEAD) { /* ended before it was tracked */
      if (isany) lua_pushvalue(L, i);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "thread ended untracked: its result is unknown");
      return 2 + isany;
    }
  }
  if (!lw_yieldable(L))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "task.await: not in a task (cannot yield here)");
  if ((r = running_rec(S, L)) == NULL) raise_mem(L);
  task_put(S, r, T_AWAIT);
  {
    unsigned ticket = r->ticket;
    lua_rawgeti(L, LUA_REGISTRYINDEX, S->wref);
    for (i = first; i <= last; i++) {
      int n;
      lua_pushvalue(L, i);
      lua_rawget(L, -2);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, i);
        lua_pushvalue(L, -2);
        lua_rawset(L, -4);
        S->wlists++;
      }
      n = (int)lw_rawlen(L, -1);
      lua_pushthread(L);
      lua_rawseti(L, -2, n + 1);
      lua_pushinteger(L, (lua_Integer)ticket);
      lua_rawseti(L, -2, n + 2);
      lua_pushboolean(L, isany);
      lua_rawseti(L, -2, n + 3);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  /* registering allocates, and a finalizer run by that can end a target
     (task.cancel) before L is on its list, where nobody would wake L:
     then the registration goes stale and the result comes at once */
  for (i = first; i <= last; i++) {
    if (ended(S, lua_tothread(L, i))) {
      if (task_set(S, L, T_RUNNING) == NULL) raise_mem(L);
      if (isany) lua_pushvalue(L, i);
      return lw_result(S->s, lua_tothread(L, i), L) + isany;
    }
  }
  return suspend(L);
}

int lw_sched_exit(lw_sched *S, lua_State *L, int code) {
  S->exited = 1;
  S->exitcode = code;
  if (lw_yieldable(L)) return suspend(L); /* and never come back */
  return 0;
}

/* cancel co; W is the running thread (memory errors are raised there) */
int lw_sched_cancel_from(lw_sched *S, lua_State *co, lua_State *W) {
  lw_rec *r;
  lua_Debug ar;
  if (S == NULL || co == NULL || GONE(S)) return LW_EINVAL;
  if (lw_universe(co) != S->s->universe) return LW_EUNIVERSE;
  /* co == W first: in an error handler LuaJIT's status of the running
     thread is LUA_ERRERR, not LUA_OK */
  if (co == W || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar))) {
    /* running or normal: stop it when it next yields */
    if ((r = task_rec(S, co)) == NULL) {
      if (lw_track(S->s, co) == LW_EMEM) return LW_EMEM;
      if ((r = task_set(S, co, T_RUNNING)) == NULL) return LW_EMEM;
    }
    r->cancel = 1;
    return LW_OK;
  }
  if (lw_co_status(W, co) == LW_CO_DEAD || ended(S, co)) return LW_OK;
  do_cancel(S, co, W);
  purge_timers(S, W);
  return LW_OK;
}

/* run f(S-side args) protected on the scheduler's thread */
static int protect(lw_sched *S, lua_CFunction f, void *ud) {
  int st = lw_cpcall(S->T, f, ud);
  if (st != LUA_OK) {
    if (st > 0) lua_pop(S->T, 1);
    return LW_EMEM;
  }
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
  if (S == NULL || co == NULL || GONE(S)) return LW_EINVAL;
  if (S->stepping || lua_status(S->T) != LUA_OK)
    return LW_EBUSY; /* from inside a step: use task.cancel */
  a.S = S;
  a.co = co;
  a.rc = LW_OK;
  e = protect(S, cancel_protected, &a);
  return e != LW_OK ? e : a.rc;
}

/* ------------------------------------------------------------------ */
/* recycling                                                           */

/* 1 if someone awaits co (its awaiters would get its next life's
   result); -1 if that cannot be told for lack of memory */
static int awaited(lw_sched *S, lua_State *co) {
  lua_State *T = S->T;
  int yes;
  if (S->wlists == 0) return 0;
  if (!lua_checkstack(T, 2)) return -1;
  push_wlist(S, T, co);
  yes = !lua_isnil(T, -1);
  lua_pop(T, 2);
  return yes;
}

int lw_sched_recycle(lw_sched *S, lua_State *co) {
  int e;
  if (S == NULL || co == NULL || GONE(S)) return LW_EINVAL;
  if ((e = lw_status(S->s, co)) < 0) return e;
  if (!lw_co_canreset()) return LW_ENOTSUP;
  if (co == S->T || co == S->main || task_rec(S, co) != NULL)
    return LW_EBUSY;
  if (lw_co_status(S->T, co) != LW_CO_DEAD) return LW_ESTATE;
  if ((e = awaited(S, co)) != 0) return e > 0 ? LW_EBUSY : LW_EMEM;
  if (S->nyheld > 0) { /* a woken task.any waiter will be handed co */
    int held;
    if (!lua_checkstack(S->T, 3)) return LW_EMEM;
    lua_rawgeti(S->T, LUA_REGISTRYINDEX, S->yref);
    push_thread(S->T, co);
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
  if (S->npool < POOL_MAX && lua_checkstack(S->T, 2)) {
    /* the pool's array was sized when it was made: no allocation */
    lua_rawgeti(S->T, LUA_REGISTRYINDEX, S->pref);
    push_thread(S->T, co);
    lua_rawseti(S->T, -2, (int)++S->npool);
    lua_pop(S->T, 1);
  }
  return LW_OK;
}

/* ------------------------------------------------------------------ */
/* stepping                                                            */

typedef struct step_args { lw_sched *S; int count; } step_args;

/* the count goes out through the arguments: lua_cpcall (5.1) returns no
   results */
static int step_protected(lua_State *L) {
  step_args *a = (step_args *)lua_touserdata(L, 1);
  lw_sched *S = a->S;
  double now = lw_sched_now(S);
  unsigned long long seq0 = S->seq;
  /* work deferred outside any step (by the main chunk, by the host)
     belongs to the cycle that is ending: it runs before the timers */
  while (!S->exited && S->qlen > 0) {
    lw_ent e = q_pop(S);
    a->count += run_entry(S, &e);
  }
  lw_timer *p;
  while (!S->exited && (p = t_peek(S)) != NULL && p->due <= now &&
         p->seq < seq0) {
    lw_timer t = t_pop(S);
    a->count += run_entry(S, &t.e);
  }
  while (!S->exited && S->qlen > 0) {
    lw_ent e = q_pop(S);
    a->count += run_entry(S, &e);
  }
  purge_timers(S, L);
  return 0;
}

int lw_sched_step(lw_sched *S) {
  step_args a;
  int st;
  if (S == NULL || GONE(S)) return LW_EINVAL;
  if (S->exited) return LW_EEXITED;
  if (S->stepping) return LW_EBUSY;
  if (S->poll) S->poll(S->poll_ud);
  a.S = S;
  a.count = 0;
  S->stepping = 1;
  st = protect(S, step_protected, &a);
  S->stepping = 0;
  shrink(S);
  lua_settop(S->T, 0);
  return st != LW_OK ? LW_EMEM : a.count;
}

double lw_sched_next(lw_sched *S) {
  double d;
  if (S == NULL || GONE(S) || S->exited) return -1;
  if (S->qlen > 0) return 0;
  if (lw_sched_ntimers(S) > 0) {
    d = t_peek(S)->due - lw_sched_now(S);
    return d > 0 ? d : 0;
  }
  /* outstanding I/O on luaweave's own loop is polled at each step */
  if (S->nasync > 0 && S->poll != NULL) return 0.01;
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
      S->s->ntasks--;
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
    unanchor(S, W, e.ref);
    lua_pop(W, 1);
  }
  while (lw_sched_ntimers(S) > 0) {
    lw_timer t = t_pop(S);
    unanchor(S, W, t.e.ref);
    lua_pop(W, 1);
  }
  lua_newtable(W); /* forget every waiter list */
  lua_rawseti(W, LUA_REGISTRYINDEX, S->wref);
  S->wlists = 0;
  new_hold_table(W); /* and what the dropped task.any entries held */
  lua_rawseti(W, LUA_REGISTRYINDEX, S->yref);
  S->nyheld = 0;
  tasks_clear(S);
}

int lw_sched_deadlocked(const lw_sched *S) {
  return S->qlen == 0 && lw_sched_ntimers(S) == 0 && S->nasync == 0 && S->nwaiting > 0;
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

void lw_sched_setclock(lw_sched *S, lw_clock_fn fn, void *ud) {
  if (S == NULL) return;
  S->clock = fn ? fn : default_clock;
  S->clock_ud = ud;
}

double lw_sched_now(lw_sched *S) {
  return S ? S->clock(S->clock_ud) : 0;
}

lua_State *lw_sched_state(lw_sched *S) { return S ? S->T : NULL; }

lw_sched *lw_sched_check(lua_State *L) {
  lw_sched *S;
  int found = find_sched(L, &S);
  if (found == 1 || (S != NULL && GONE(S)))
    luaL_error(L, "luaweave: the Lua state is closing");
  if (found < 0 || (S == NULL && (S = lw_sched_open(L)) == NULL)) raise_mem(L);
  return S;
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
static int pool_check(lw_sched *S) {
  size_t i;
  if (S->npool > POOL_MAX) return __LINE__;
  if (!lua_checkstack(S->T, 2)) return 0; /* cannot look: nothing to say */
  for (i = 1; i <= S->npool; i++) {
    lua_State *co = pooled(S, i);
    if (co == NULL || lua_gettop(co) != 0 || lua_status(co) != LUA_OK ||
        task_rec(S, co) != NULL || lw_status(S->s, co) != LW_UNTRACKED)
      return __LINE__;
  }
  return pooled(S, S->npool + 1) == NULL ? 0 : __LINE__;
}

int lw_sched_check_invariants(lw_sched *S) {
  size_t i = 0, nw = 0, nt = 0;
  lw_slot *sl;
  int e;
  if (S == NULL) return __LINE__;
  if ((e = lw_store_check(S->s)) != 0) return e;
  for (i = 1; i < S->hlen; i++)
    if (t_before(&S->heap[i], &S->heap[(i - 1) / 2])) return __LINE__;
  if (S->zlen > S->zcap || (S->zcap & (S->zcap - 1)) != 0) return __LINE__;
  for (i = 1; i < S->zlen; i++) /* the FIFO is sorted */
    if (!t_before(&S->zq[(S->zhead + i - 1) & (S->zcap - 1)],
                  &S->zq[(S->zhead + i) & (S->zcap - 1)]))
      return __LINE__;
  i = 0;
  while ((sl = lw_map_next(&S->s->map, &i)) != NULL) {
    if (sl->rec.task > T_ASYNC) return __LINE__;
    if (sl->rec.task == 0 && sl->rec.cancel) return __LINE__;
    if (sl->rec.task != 0) nt++;
    if (sl->rec.task == T_AWAIT) nw++;
  }
  if (nw != S->nwaiting || nt != S->s->ntasks) return __LINE__;
  if (S->qlen > S->qcap || S->hlen > S->hcap) return __LINE__;
  if (S->nafree > S->alen || S->alen > S->afreecap) return __LINE__;
  return pool_check(S);
}

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
  if (lw_track(S->s, L) == LW_EMEM) raise_mem(L);
  lua_pushthread(L);
  ref = anchor(S, L);
  op = (lw_async *)sched_alloc(S, NULL, 0, sizeof *op);
  if (op == NULL || (r = task_set(S, L, T_ASYNC)) == NULL) {
    if (op) sched_alloc(S, op, sizeof *op, 0);
    unanchor(S, L, ref);
    raise_mem(L);
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
#ifdef LW_LUAJIT
  /* called through lw_async_wrap's wrapper (it gave f the mark as
     upvalue 1): the wrapper yields, see suspend() */
  if (lua_touserdata(L, lua_upvalueindex(1)) == (void *)&LW_SUSPEND_MARK)
    return suspend(L);
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
static int complete_protected(lua_State *T) {
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
  push_thread(T, op->co);
  lua_rawseti(T, -2, 1);
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->aref);
  lua_insert(T, -2);
  lua_rawseti(T, -2, op->ref); /* the pack replaces the thread: no growth */
  r = task_rec(S, op->co);
  if (r == NULL || r->ticket != op->ticket || r->task != T_ASYNC) {
    /* the push ran code (a __gc, say) that moved the task on */
    anchor_free(S, T, op->ref);
    return 0;
  }
  r->task = T_READY; /* the ticket stays the op's */
  e.co = op->co;
  e.ticket = op->ticket;
  e.kind = K_ASYNC;
  e.t0 = 0;
  e.ref = op->ref;
  a->rc = q_push(S, &e);
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
  if (GONE(S)) {
    sched_alloc(S, op, sizeof *op, 0);
    return LW_EINVAL;
  }
  if (n < 0 || lua_gettop(T) < n) return LW_EINVAL;
  r = task_rec(S, op->co);
  if (r == NULL || r->ticket != op->ticket || r->task != T_ASYNC) {
    /* its task moved on (cancelled, woken): drop the outcome */
    lua_pop(T, n);
    anchor_free(S, T, op->ref);
    S->nasync--;
    sched_alloc(S, op, sizeof *op, 0);
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
    anchor_free(S, T, op->ref);
    task_drop(S, op->co);
  }
  S->nasync--;
  sched_alloc(S, op, sizeof *op, 0);
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
  if (lua_touserdata(L, 1) != (void *)&ASYNC_MARK) return lua_gettop(L);
  if (lua_toboolean(L, 2)) return lua_gettop(L) - 2;
  lua_settop(L, 3);
  return lua_error(L);
}

void lw_async_wrap(lua_State *L, lua_CFunction f) {
  /* a Lua-level wrapper so that rejections raise on every Lua version:
     the C function's yield returns (ok, ...) into async_finish */
#ifdef LW_LUAJIT
  /* ... and on LuaJIT the wrapper does the yield (see suspend()) */
  static const char code[] =
    "local f, finish, mark, yield = ...\n"
    "local function after(...)\n"
    "  if ... == mark then return finish(yield()) end\n"
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
#ifdef LW_LUAJIT
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
  lua_pushcclosure(L, f, 1);
  lua_pushcfunction(L, async_finish);
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
  if (!lw_pushyield(L))
    luaL_error(L, "lw_async_wrap: LuaJIT needs the coroutine library");
  lua_call(L, 4, 1);
#else
  lua_pushcfunction(L, f);
  lua_pushcfunction(L, async_finish);
  lua_call(L, 2, 1);
#endif
}
