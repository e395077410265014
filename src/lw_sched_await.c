/*
** lw_sched_await.c — the await graph: who waits for which thread
** (task.await, task.any), and waking them when it ends.
**
** A waiter list per awaited thread lives in one Lua table (target ->
** {waiter, ticket, isany, ...}); a registration whose ticket is no
** longer its waiter's is stale and skipped.
*/
#include "lw_sched.h"
#include "lw_compat.h"

/* ------------------------------------------------------------------ */
/* waking awaiters                                                     */

/* push the waiters table W and W[co] (nil when nobody awaits co) onto T;
   T needs room for 2 */
static void push_wlist(lw_sched *S, lua_State *T, lua_State *co) {
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->wref);
  lws_push_thread(T, co);
  lua_rawget(T, -2);
}

/* store co's result into the pack on T's top, as n, values... (n = 1,
   nil if co is no longer tracked; false and a message if co is tracked
   but ended where luaweave could not see it: a raw lua_resume) */
static void pack_result(lw_sched *S, lua_State *co, lua_State *T) {
  int n, i;
  if (lw_status(S->s, co) == LW_PENDING && lw_co_status(T, co) == LW_CO_DEAD) {
    lua_pushboolean(T, 0);
    lua_pushliteral(T, "thread ended outside luaweave: its result is unknown");
    n = 2;
  } else if ((n = lw_result(S->s, co, T)) < 0) {
    lua_pushnil(T);
    n = 1;
  }
  for (i = n; i >= 1; i--) lua_rawseti(T, -1 - i, 4 + i);
  lua_pushinteger(T, n);
  lua_rawseti(T, -2, 4);
}

/* co has ended: record its result, as {n = k, values...}, in the
   collector C on T's top, as C[co].  T needs room for 4 */
static void collect(lw_sched *S, lua_State *co, lua_State *T) {
  int n, i;
  lws_push_thread(T, co);
  if (lw_status(S->s, co) == LW_PENDING && lw_co_status(T, co) == LW_CO_DEAD) {
    lua_createtable(T, 2, 1);
    lua_pushboolean(T, 0);
    lua_pushliteral(T, "thread ended outside luaweave: its result is unknown");
    n = 2;
  } else {
    n = lw_result(S->s, co, T); /* it checks the stack for its values */
    if (n < 0) {
      lua_pushnil(T);
      n = 1;
    }
    lua_createtable(T, n, 1);
    lua_insert(T, -1 - n);
  }
  for (i = n; i >= 1; i--) lua_rawseti(T, -1 - i, i);
  lua_pushinteger(T, n);
  lua_setfield(T, -2, "n");
  lua_rawset(T, -3);
}

/* the collector on T's top has recorded co: must its waiter wake now?
   When all its targets have ended, or (group:wait) one failed */
static int collected(lw_sched *S, lua_State *co, lua_State *T) {
  lua_Integer left;
  int failfast;
  lua_getfield(T, -1, "left");
  left = lua_tointeger(T, -1) - 1;
  lua_pop(T, 1);
  lua_pushinteger(T, left);
  lua_setfield(T, -2, "left");
  lua_getfield(T, -1, "failfast");
  failfast = lua_toboolean(T, -1);
  lua_pop(T, 1);
  return left <= 0 || (failfast && lw_status(S->s, co) == LW_FAILED);
}

/* the registration at i (a triple) of the list on T's top is live: its
   waiter still awaits with that ticket */
static int reg_live(lw_sched *S, lua_State *T, int i) {
  lua_State *w;
  lw_rec *r;
  unsigned ticket;
  lua_rawgeti(T, -1, i);
  w = lua_tothread(T, -1);
  lua_rawgeti(T, -2, i + 1);
  ticket = (unsigned)lua_tointeger(T, -1);
  lua_pop(T, 2);
  r = w ? lws_task_rec(S, w) : NULL;
  return r != NULL && r->task == T_AWAIT && r->ticket == ticket;
}

/* drop the stale registrations of the list on T's top (a waiter woken by
   another target of its task.any, by a timeout, cancelled): moves live
   triples down and clears the tail, so it never allocates.  Returns the
   live count.  T needs room for 3 */
static int compact(lw_sched *S, lua_State *T) {
  int n = (int)lw_rawlen(T, -1), i, k, j = 1;
  for (i = 1; i + 2 <= n; i += 3) {
    if (!reg_live(S, T, i)) continue;
    if (j != i)
      for (k = 0; k < 3; k++) {
        lua_rawgeti(T, -1, i + k);
        lua_rawseti(T, -2, j + k);
      }
    j += 3;
  }
  for (i = n; i >= j; i--) {
    lua_pushnil(T);
    lua_rawseti(T, -2, i);
  }
  return (j - 1) / 3;
}

/* push the table of any_hold's counts: weak keys, so that a count lost
   to a memory error never keeps its thread alive */
void lws_new_hold_table(lua_State *L) {
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

/* count d (+1, -1) woken task.any waiters that will be handed co when
   they run: co must not be recycled meanwhile.  +1 may raise a memory
   error (then nothing is counted); -1 never raises.  T needs room for 4 */
void lws_any_hold(lw_sched *S, lua_State *T, lua_State *co, int d) {
  lua_Integer n;
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->yref);
  lws_push_thread(T, co);
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
   1 if someone did, or took its result in a collector (heard it) */
int lws_wake(lw_sched *S, lua_State *co, lua_State *W) {
  lua_State *T = W;
  int top, woke = 0, heard = 0, n, i;
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
    lua_remove(T, -2);
    r = lws_task_rec(S, w);
    if (r == NULL || r->task != T_AWAIT || r->ticket != ticket) {
      lua_pop(T, 2);
      continue;
    }
    if (lua_istable(T, -1)) { /* a task.all or group:wait collector */
      int now;
      collect(S, co, T);
      heard = 1;
      now = collected(S, co, T);
      /* collect allocated: the GC may have moved records, or run code */
      r = lws_task_rec(S, w);
      if (!now || r == NULL || r->task != T_AWAIT || r->ticket != ticket) {
        lua_pop(T, 2);
        continue;
      }
      /* woken with the collector, as an await of one result */
      lua_createtable(T, 5, 0);
      lua_insert(T, -2);
      lua_rawseti(T, -2, 5);
      lua_insert(T, -2);
      lua_rawseti(T, -2, 1);
      lws_push_thread(T, co);
      lua_rawseti(T, -2, 2);
      lua_pushboolean(T, 0);
      lua_rawseti(T, -2, 3);
      lua_pushinteger(T, 1);
      lua_rawseti(T, -2, 4);
      isany = 0;
    } else {
    isany = lua_toboolean(T, -1);
    lua_pop(T, 1);
    /* pack {w, target, isany, n, result...}: the result is read now,
       not when w runs, because co may be recycled (or untracked) in
       between, and w must get the result co ended with */
    lua_createtable(T, 6, 0);
    lua_insert(T, -2);
    lua_rawseti(T, -2, 1);
    lws_push_thread(T, co);
    lua_rawseti(T, -2, 2);
    lua_pushboolean(T, isany);
    lua_rawseti(T, -2, 3);
    pack_result(S, co, T);
    }
    /* what may fail comes first, while w still awaits: after a memory
       error w stays on the list, counted as waiting (a deadlock, not a
       task lost with nothing queued to run it) */
    if (isany) lws_any_hold(S, T, co, 1); /* a count lost to a raise below only
                                         keeps co from being recycled */
    e.ref = lws_anchor(S, T); /* pops the pack */
    if (lws_qreserve(S) != LW_OK) {
      lws_anchor_free(S, T, e.ref);
      if (isany) lws_any_hold(S, T, co, -1);
      lws_raise_mem(T);
    }
    /* that allocated: the GC may have moved records, or run code */
    r = lws_task_rec(S, w);
    if (r == NULL || r->task != T_AWAIT || r->ticket != ticket) {
      lws_anchor_free(S, T, e.ref);
      if (isany) lws_any_hold(S, T, co, -1);
      continue;
    }
    lws_task_put(S, r, T_READY);
    e.co = w;
    e.ticket = r->ticket;
    e.kind = K_AWAITED;
    e.t0 = 0;
    lws_qpush(S, &e); /* there is room: it cannot fail */
    woke = 1;
  }
  lua_settop(T, top + 1); /* waiters table */
  lws_push_thread(T, co);
  lua_pushnil(T);
  lua_rawset(T, -3);
  S->wlists--;
  lua_settop(T, top);
  woke = woke || heard;
  if (woke) lws_handled(S, co, T);
  return woke;
}

/* how a thread stands for await: 1 ended (result can be pushed), 0 not */
int lws_isover(lw_sched *S, lua_State *co) {
  int st = lw_status(S->s, co);
  return st == LW_RETURNED || st == LW_FAILED || st == LW_CANCELLED;
}

/* The threads at pack[first..] of the table at index pack on T no
   longer have a live registration of the waiter (its ticket moved on: a
   timeout): compact their waiter lists now, and drop those left empty,
   so that a timed-out wait leaves nothing behind for a target that runs
   on.  Never allocates; T needs room for 5. */
void lws_unregister(lw_sched *S, lua_State *T, int pack, int first) {
  int i, n, top = lua_gettop(T);
  pack = lw_absindex(T, pack);
  n = (int)lw_rawlen(T, pack);
  for (i = first; i <= n && S->wlists > 0; i++) {
    lua_rawgeti(T, pack, i);
    push_wlist(S, T, lua_tothread(T, -1)); /* target, wref, list */
    if (lua_istable(T, -1) && compact(S, T) == 0) {
      lua_pop(T, 1);
      lua_pushvalue(T, -2);
      lua_pushnil(T);
      lua_rawset(T, -3); /* clears a field: never allocates */
      S->wlists--;
    }
    lua_settop(T, top);
  }
}

/* push target i: the thread at stack index i, or list[i] when list is a
   table's index (task.any and task.all of a list: never all on the stack,
   whose size Lua bounds) */
static void push_target(lua_State *L, int list, int i) {
  if (list) lua_rawgeti(L, list, i);
  else lua_pushvalue(L, i);
}

static lua_State *target(lua_State *L, int list, int i) {
  lua_State *co;
  push_target(L, list, i);
  co = lua_tothread(L, -1);
  lua_pop(L, 1); /* the list or the stack still holds it */
  return co;
}

/* arm the deadline of the await that the running task L has just
   registered with ticket: a timer entry anchoring the pack {L,
   targets...} on L's top, which it pops.  On failure (memory) L runs on:
   its registrations go stale, and the error is raised in L */
static void arm_pack(lw_sched *S, lua_State *L, unsigned ticket, double timeout) {
  lw_ent e;
  lw_rec *r;
  double now = lw_sched_now(S);
  e.ref = lws_anchor(S, L); /* pops the pack */
  e.co = L;
  e.ticket = ticket;
  e.kind = K_TIMEOUT;
  e.t0 = now;
  timeout = lws_sane_seconds(timeout);
  if (lws_tpush(S, now + timeout, &e, timeout == 0) != LW_OK) {
    lws_anchor_free(S, L, e.ref);
    if ((r = lw_store_find(S->s, L)) != NULL && r->task == T_AWAIT) {
      lws_task_put(S, r, T_RUNNING);
      S->wsweep = 1;
    }
    lws_raise_mem(L);
  }
}

/* a deadline past task.wait's range (infinity) is no deadline: sane
   seconds would make it 0 */
static int has_deadline(double timeout) {
  return timeout >= 0 && timeout <= 2147483647.0;
}

/* Threads that are not tasks (plain coroutines, which a raw
   coroutine.resume may run to their end unseen) awaited with a timeout,
   in a weak-keyed registry table under this address: lws_sweep_plain
   looks at them alone, at every step's end.  An untimed await hears of
   such an end from the full sweep, once nothing else can run; that moment
   never comes for a timed one, whose own timer is pending */
static const char PLAIN_KEY = 'P';

/* push the weak-keyed table the registry holds under key, made when
   missing; may raise a memory error */
void lws_push_weakreg(lua_State *L, const void *key) {
  lw_rawgetp(L, LUA_REGISTRYINDEX, key);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lws_new_hold_table(L); /* weak keys */
    lua_pushvalue(L, -1);
    lw_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
}

static void mark_plain(lua_State *L, lua_State *co) {
  lws_push_weakreg(L, &PLAIN_KEY);
  lws_push_thread(L, co);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* wake the awaiters of the plain threads that ended unseen, and forget
   those nobody awaits any more: O(plain awaited threads), nothing when
   there are none.  W is the running thread; may raise a memory error */
void lws_sweep_plain(lw_sched *S, lua_State *W) {
  luaL_checkstack(W, 8, "sweep");
  lw_rawgetp(W, LUA_REGISTRYINDEX, &PLAIN_KEY);
  if (lua_istable(W, -1)) {
    lua_pushnil(W);
    while (lua_next(W, -2)) { /* plain, co, true */
      lua_State *co = lua_tothread(W, -2);
      int gone;
      lua_pop(W, 1);
      push_wlist(S, W, co); /* plain, co, wref, list */
      gone = lua_isnil(W, -1);
      lua_pop(W, 2);
      if (!gone && (lws_isover(S, co) || lw_co_status(W, co) == LW_CO_DEAD)) {
        lws_wake(S, co, W); /* drops co's list */
        gone = 1;
      }
      if (gone) { /* clearing a field while traversing is allowed */
        lua_pushvalue(W, -1);
        lua_pushnil(W);
        lua_rawset(W, -4);
      }
    }
  }
  lua_pop(W, 1);
}

/* register the running task L, with ticket, on co's waiter list; how: a
   boolean (isany) or a task.all collector; W: wref's index on L; timed:
   the wait has a deadline */
static void add_reg(lw_sched *S, lua_State *L, int W, lua_State *co,
                    unsigned ticket, int how, int timed) {
  int n;
  lws_push_thread(L, co);
  lua_rawget(L, W);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lws_push_thread(L, co);
    lua_pushvalue(L, -2);
    lua_rawset(L, W);
    S->wlists++;
  }
  if (timed && lws_task_rec(S, co) == NULL) mark_plain(L, co);
  n = (int)lw_rawlen(L, -1);
  /* stale registrations (a task.any woken by another target, a timeout)
     would pile up on a long-lived target: compact each time the list
     doubles, O(1) amortized */
  if (n >= 48 && (n / 3 & (n / 3 - 1)) == 0) n = 3 * compact(S, L);
  lua_pushthread(L);
  lua_rawseti(L, -2, n + 1);
  lua_pushinteger(L, (lua_Integer)ticket);
  lua_rawseti(L, -2, n + 2);
  lua_pushvalue(L, how);
  lua_rawseti(L, -2, n + 3);
  lua_pop(L, 1);
}

/* the targets first..last: stack indexes, or list[first..last] when list
   is a table's index */
static int await_core(lw_sched *S, lua_State *L, int list, int first,
                      int last, int isany, double timeout) {
  int i, how;
  unsigned ticket;
  lw_rec *r;
  luaL_checkstack(L, 8, "await");
  for (i = first; i <= last; i++) {
    lua_State *co = target(L, list, i);
    int st;
    lw_rec *t;
    if (co == L)
      return lw_errorat(L, LW_TASK_LEVEL, "cannot await the running thread");
    if ((t = lw_store_track(S->s, co)) == NULL) lws_raise_mem(L);
    st = lw_store_status(S->s, co, t);
    if (st == LW_RETURNED || st == LW_FAILED || st == LW_CANCELLED) {
      int n;
      if (isany) push_target(L, list, i);
      n = lw_result(S->s, co, L);
      if (st == LW_FAILED) lws_handled(S, co, L); /* its error is heard */
      return n + isany;
    }
    if (lw_co_status(L, co) == LW_CO_DEAD) { /* ended before it was tracked */
      if (isany) push_target(L, list, i);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "thread ended untracked: its result is unknown");
      return 2 + isany;
    }
  }
  if (!lw_yieldable(L))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "task.await: not in a task (cannot yield here)");
  if ((r = lws_running_rec(S, L)) == NULL) lws_raise_mem(L);
  lws_task_put(S, r, T_AWAIT);
  ticket = r->ticket;
  lua_pushboolean(L, isany);
  how = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->wref);
  for (i = first; i <= last; i++)
    add_reg(S, L, how + 1, target(L, list, i), ticket, how,
            has_deadline(timeout));
  lua_pop(L, 2);
  /* registering allocates, and a finalizer run by that can end a target
     (task.cancel) before L is on its list, where nobody would wake L:
     then the registration goes stale and the result comes at once */
  for (i = first; i <= last; i++) {
    lua_State *co = target(L, list, i);
    if (lws_isover(S, co)) {
      if (lws_task_set(S, L, T_RUNNING) == NULL) lws_raise_mem(L);
      if (isany) push_target(L, list, i);
      lws_handled(S, co, L);
      return lw_result(S->s, co, L) + isany;
    }
  }
  if (has_deadline(timeout)) {
    lua_createtable(L, last - first + 2, 0);
    lua_pushthread(L);
    lua_rawseti(L, -2, 1);
    for (i = first; i <= last; i++) {
      push_target(L, list, i);
      lua_rawseti(L, -2, i - first + 2);
    }
    arm_pack(S, L, ticket, timeout);
  }
  return lws_suspend(L);
}

int lw_sched_await(lw_sched *S, lua_State *L, int first, int last, int isany) {
  return lw_sched_await_for(S, L, first, last, isany, -1);
}

int lw_sched_await_for(lw_sched *S, lua_State *L, int first, int last,
                       int isany, double timeout) {
  return await_core(S, L, 0, first, last, isany, timeout);
}

int lw_sched_any_list(lw_sched *S, lua_State *L, int list, double timeout) {
  list = lw_absindex(L, list);
  return await_core(S, L, list, 1, (int)lw_rawlen(L, list), 1, timeout);
}

/* ------------------------------------------------------------------ */
/* task.all and group:wait: one registration per target, for the whole  */
/* wait, however many targets end before it is over (linear, not a      */
/* task.any per end)                                                    */

/* task.all (failfast 0) or group:wait (1) of the threads in the list at
   index list: returns, or wakes the running task L with, a collector C
   whose C[co] is {n = k, results...} of each target that ended (every
   one, unless a failure stopped a failfast wait first).  Nothing
   proportional to the list goes on a stack */
int lw_sched_await_all(lw_sched *S, lua_State *L, int list, int failfast,
                       double timeout) {
  int i, n, c, left = 0, stop = 0;
  unsigned ticket;
  lw_rec *r;
  list = lw_absindex(L, list);
  n = (int)lw_rawlen(L, list);
  luaL_checkstack(L, 10, "await");
  lua_createtable(L, 0, 2);
  c = lua_gettop(L);
  lua_pushboolean(L, failfast);
  lua_setfield(L, c, "failfast");
  for (i = 1; i <= n; i++) {
    lua_State *co = target(L, list, i);
    lw_rec *t;
    int st;
    if (co == NULL) continue; /* the caller checked the items */
    if (co == L)
      return lw_errorat(L, LW_TASK_LEVEL, "cannot await the running thread");
    lws_push_thread(L, co);
    lua_rawget(L, c);
    st = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!st) continue; /* listed twice */
    if ((t = lw_store_track(S->s, co)) == NULL) lws_raise_mem(L);
    st = lw_store_status(S->s, co, t);
    if (st == LW_RETURNED || st == LW_FAILED || st == LW_CANCELLED) {
      collect(S, co, L);
      if (st == LW_FAILED) {
        lws_handled(S, co, L); /* its error is heard */
        if (failfast) stop = 1;
      }
    } else if (lw_co_status(L, co) == LW_CO_DEAD) { /* ended untracked */
      lws_push_thread(L, co);
      lua_createtable(L, 2, 1);
      lua_pushboolean(L, 0);
      lua_rawseti(L, -2, 1);
      lua_pushliteral(L, "thread ended untracked: its result is unknown");
      lua_rawseti(L, -2, 2);
      lua_pushinteger(L, 2);
      lua_setfield(L, -2, "n");
      lua_rawset(L, c);
    } else {
      lws_push_thread(L, co);
      lua_pushboolean(L, 0); /* pending */
      lua_rawset(L, c);
      left++;
    }
  }
  if (left == 0 || stop) return 1;
  if (!lw_yieldable(L))
    return lw_errorat(L, LW_TASK_LEVEL,
                      "task.await: not in a task (cannot yield here)");
  lua_pushinteger(L, left);
  lua_setfield(L, c, "left");
  if ((r = lws_running_rec(S, L)) == NULL) lws_raise_mem(L);
  lws_task_put(S, r, T_AWAIT);
  ticket = r->ticket;
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->wref);
  lua_pushnil(L);
  while (lua_next(L, c)) { /* the pending targets: C[co] == false */
    lua_State *co = lua_tothread(L, -2);
    if (co != NULL && lua_isboolean(L, -1)) {
      add_reg(S, L, c + 1, co, ticket, c, has_deadline(timeout));
      /* registering allocates, and a finalizer run by that can end a
         target (task.cancel) before L is on its list, where nobody would
         wake L: the sweep finds it */
      if (lws_isover(S, co)) S->wsweep = 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (has_deadline(timeout)) {
    int k = 1;
    lua_createtable(L, left + 1, 0);
    lua_pushthread(L);
    lua_rawseti(L, -2, 1);
    lua_pushnil(L);
    while (lua_next(L, c)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) == LUA_TTHREAD) {
        lua_pushvalue(L, -1);
        lua_rawseti(L, -3, ++k);
      }
    }
    arm_pack(S, L, ticket, timeout);
  }
  lua_settop(L, c - 1);
  return lws_suspend(L);
}

/* 1 if someone awaits co (its awaiters would get its next life's
   result); -1 if that cannot be told for lack of memory */
int lws_awaited(lw_sched *S, lua_State *co) {
  lua_State *T = S->T;
  int yes;
  if (S->wlists == 0) return 0;
  if (!lua_checkstack(T, 2)) return -1;
  push_wlist(S, T, co);
  yes = !lua_isnil(T, -1);
  lua_pop(T, 2);
  return yes;
}


/* Look at every awaited thread: wake the awaiters of those that ended
   unheard (a raw lua_resume ran them to the end, or a memory error cut
   the end path short), and drop the lists whose waiters all went stale
   (cancelled), so that neither they nor their target stay alive.  O(all
   registrations); run when told (S->wsweep) or when nothing else could
   run.  W is the running thread; may raise a memory error. */
void lws_sweep(lw_sched *S, lua_State *W) {
  if (S->wlists > 0) {
    luaL_checkstack(W, 8, "sweep");
    lua_rawgeti(W, LUA_REGISTRYINDEX, S->wref);
    lua_pushnil(W);
    while (lua_next(W, -2)) { /* wref, target, list */
      lua_State *co = lua_tothread(W, -2);
      if (co != NULL && (lws_isover(S, co) || lw_co_status(W, co) == LW_CO_DEAD)) {
        lua_pop(W, 1);
        lws_wake(S, co, W); /* clears wref[co]: allowed while traversing */
        continue;
      }
      if (compact(S, W) == 0) {
        lua_pop(W, 1);
        lua_pushvalue(W, -1);
        lua_pushnil(W);
        lua_rawset(W, -4);
        S->wlists--;
        continue;
      }
      lua_pop(W, 1);
    }
    lua_pop(W, 1);
  }
  S->wsweep = 0;
}
