/*
** lw_sched.h — the scheduler's inside, for the drivers, the bindings and
** the tests.  The public face is luaweave.h.
**
** The scheduler is split by concept:
**   lw_sched.c        the core: run queue, anchors, task records,
**                     resuming, wait, stepping
**   lw_sched_spawn.c  spawn, defer, delay
**   lw_sched_end.c    the one end path: every way a task ends comes
**                     through lws_ended (wake awaiters, report errors),
**                     cancel, error messages
**   lw_sched_await.c  the await graph: waiter lists, task.await/any
**   lw_sched_async.c  async operations (tokens) for C functions
**   lw_sched_pool.c   thread recycling
**   lw_sched_life.c   opening, lua_close, invariants, settings, counters
**   lw_timerq.c       the timer queue (a reusable structure)
** Names with the lws_ prefix are the scheduler's own, shared between
** those files; nothing outside src/ may use them but the tests.
*/
#ifndef LW_SCHED_H
#define LW_SCHED_H

#include "lw_store.h"
#include "lw_timerq.h"
#include "lw_compat.h"

/* the state is closing: the scheduler, or the store under it, is gone */
#define LWS_GONE(S) ((S)->closed || (S)->s == NULL)

struct lw_sched {
  lw_sched *self;       /* first: what the box says (NULL once closing) */
  lua_State *T;         /* the scheduler's own thread (anchored) */
  int tref;
  lw_store *s;          /* NULL once the store is gone (lua_close) */
  lua_Alloc f;          /* the allocator under the store's hook */
  void *ud;
  lw_ent *q;            /* deferred FIFO, a ring */
  size_t qhead, qlen, qcap;
  lw_timerq tq;         /* timers */
  unsigned ticket;
  int aref;             /* registry ref: anchor table */
  int *afree;           /* its free slots, a stack; room for alen */
  size_t nafree, alen, afreecap; /* alen: slots 1..alen ever used */
  int wref;             /* registry ref: target -> waiter list */
  int yref;             /* registry ref: target -> woken task.any waiters
                           not yet run, that will be handed it */
  size_t nyheld;        /* the sum of yref's counts */
  int cref;             /* registry ref: the async completion function */
  int pref;             /* registry ref: recycled threads, 1..npool */
  size_t npool;
  void *completing;     /* its arguments, while it runs */
  size_t nwaiting, nasync, nerrors;
  size_t wlists;        /* targets with a waiter list */
  int wsweep;           /* an end may have gone unheard: sweep (lws_sweep) */
  int eref;             /* registry ref: failed tasks pending a report */
  size_t npend;         /* their number */
  lua_State *cancelling; /* the thread the scheduler is cancelling */
  lw_end_fn onend;      /* lw_sched_onend */
  void *onend_ud;
  void (*precancel)(void *ud, lua_State *co); /* lw_host_onprecancel */
  void *precancel_ud;
  int exited, exitcode, stepping, closed;
  int runexited, runexit; /* the last lw.run stopped by task.exit, its code */
  size_t guards;        /* threads with end guards (lws_pushguard; may
                           count some the GC took: then the end path
                           only looks for them in vain) */
  lua_State *main;      /* lw.run's main task, awaited by run */
  lua_CFunction yieldfn; /* coroutine.yield's, where LW_YIELD_UNSURE or
                           not LW_SUSPEND_WRAPPED */
  const void *wenv[2];  /* LuaJIT: the environments of the task functions'
                           and of async functions' wrappers (in_wrapper) */
  lua_State *runco;     /* the task resume_rec runs (innermost) ... */
  lw_rec *runrec;       /* ... its record ... */
  unsigned long rungen; /* ... good while the store's map is at this gen */
  lw_clock_fn clock;
  void *clock_ud;
  double stepnow;       /* the clock as the running step began */
  lw_error_fn onerror;
  void *onerror_ud;
  void (*poll)(void *ud);  /* the driver's I/O poll, run at each step */
  void *poll_ud;
  void (*notify)(lw_sched *S); /* work was queued (an attached driver) */
  void *driver;         /* the driver's state (lw_loop.c) */
  void (*driver_free)(lw_sched *S);
};

/* ------------------------------------------------------------------ */
/* for the drivers and the bindings                                    */

/* what they read of a scheduler; the fields are the scheduler's.  (The
   driver hook-up — poll, notify, driver — is the drivers' to set.) */
static inline int lws_gone(const lw_sched *S) { return LWS_GONE(S); }
static inline size_t lws_queued(const lw_sched *S) { return S->qlen; }
static inline int lws_isexited(const lw_sched *S) { return S->exited; }
static inline int lws_stepping(const lw_sched *S) { return S->stepping; }
static inline lw_store *lws_store(const lw_sched *S) { return S->s; }
static inline lua_State *lws_main(const lw_sched *S) { return S->main; }
static inline void lws_setmain(lw_sched *S, lua_State *co) { S->main = co; }
static inline void lws_setexited(lw_sched *S, int e) { S->exited = e; }

/* resume co (a task or any thread of S's state) now, with nargs values
   already on its stack, and settle the outcome; from is the running
   thread */
int lw_sched_resume(lw_sched *S, lua_State *co, lua_State *from, int nargs);

/* drop every queued resumption, timer and waiter (after task.exit or a
   deadlock, so that the next run starts clean); W: the running thread */
void lw_sched_clear(lw_sched *S, lua_State *W);

/* timers set (heap and zero-delay FIFO) */
static inline size_t lw_sched_ntimers(const lw_sched *S) {
  return lw_timerq_count(&S->tq);
}

/* 1 if nothing is queued, no timer is set, no async operation is out,
   and tasks await (before any sweep: see lw_sched_deadlocked) */
int lws_stuck(const lw_sched *S);
int lws_idle(const lw_sched *S); /* nothing queued, timed or out */

/* the scheduler of the running task's state, raising if none can be made */
lw_sched *lw_sched_check(lua_State *L);

/* push the scheduler's box: a userdata (the scheduler itself) whose
   first field is the lw_sched *, NULL once the state is closing.  There
   must be one. */
void lw_sched_pushbox(lua_State *L);

/* task.wait/await/any/exit from C: suspend the running task L.  On
   LuaJIT they return the one value LW_SUSPEND_MARK (a light userdata)
   when the caller must yield: see lw_lua_task.c */
extern const char LW_SUSPEND_MARK;
/* Where LW_SUSPEND_WRAPPED, a cancelled task suspended in task.wait,
   await, any or exit is resumed once with this mark: the wrapper raises
   "cancelled" there, so that pcall-based cleanup runs (before 5.4 no
   to-be-closed variable does); its end stays recorded as cancelled */
extern const char LW_CANCEL_MARK;
void lws_unwind(lw_sched *S, lua_State *co, lua_State *W);
#if LW_SUSPEND_WRAPPED
/* set the environment of the wrapper chunk on top (loaded, not yet
   called): that of the task functions' wrappers (async 0) or of async
   functions' (1), by which lw_sched.c tells their suspensions on LuaJIT;
   such a chunk reads no globals.  May raise (memory). */
void lws_setwrapperenv(lua_State *L, int async);
#if defined(LW_LUAJIT)
/* note the two environments in S (made if missing).  May raise. */
void lws_wrapper_envs(lw_sched *S, lua_State *L);
#endif
#endif
/* the level of their caller for error positions, past that wrapper */
#if LW_SUSPEND_WRAPPED
#define LW_TASK_LEVEL 2
#else
#define LW_TASK_LEVEL 1
#endif
int lw_sched_wait(lw_sched *S, lua_State *L, double seconds);
/* isany: task.any (the thread that ended comes first, also of one) */
int lw_sched_await(lw_sched *S, lua_State *L, int first, int last, int isany);
/* the same with a timeout in seconds (< 0: none): when it passes first,
   the task is resumed with nil, "timeout", its registrations are removed
   from the targets' waiter lists, and the targets keep running */
int lw_sched_await_for(lw_sched *S, lua_State *L, int first, int last,
                       int isany, double timeout);
/* task.any of the threads in the list at index list */
int lw_sched_any_list(lw_sched *S, lua_State *L, int list, double timeout);
/* task.all (failfast 0) and group:wait (1) of the threads in that list:
   one value, a table whose [co] is {n = k, results...} of each ended
   target (all of them unless failfast met a failure), or nil, "timeout" */
int lw_sched_await_all(lw_sched *S, lua_State *L, int list, int failfast,
                       double timeout);
int lw_sched_exit(lw_sched *S, lua_State *L, int code);

/* replace the error object on L's top by a printable message: a string
   or number as is, else its __tostring if that gives a string, else
   "(error object is a <type> value)"; runs __tostring protected */
void lw_sched_errmsg(lua_State *L);

/* task.cancel: W is the running thread */
int lw_sched_cancel_from(lw_sched *S, lua_State *co, lua_State *W);

/* lw.run, and the luaweave.fs table (pushed) */
int lw_lua_run(lua_State *L);
int lw_task_wrap(lua_State *L); /* task.wrap (lw_lua_wrap.c) */
void lw_luv_share(lua_State *L); /* one loop with luv (lw_luv.c) */
int lw_fs_open(lua_State *L);

/* invariant check for tests: 0 when sound, else a line number */
int lw_sched_check_invariants(lw_sched *S);

/* ------------------------------------------------------------------ */
/* shared between the scheduler's files                                */

#define LWS_POOL_MAX 256 /* recycled threads kept; more go to the GC */


/* entry kinds: what a task is resumed with */
enum { K_START, K_ARGS, K_FARGS, K_WAIT, K_AWAITED, K_ASYNC, K_TIMEOUT };
/* K_START: a function's first run, its arguments on the thread;
   K_FARGS: the same, its arguments in a pack; K_ARGS: a thread resumed
   with a pack of arguments; K_TIMEOUT: an await's deadline, live while
   its task still awaits with the entry's ticket, anchoring {task,
   targets...} */

/* task states, in the record's task field (0: not a task) */
enum { T_READY = 1, T_RUNNING, T_WAIT, T_AWAIT, T_ASYNC };

extern const char lws_async_mark; /* first value of an async resumption */

/* lw_sched.c */
void *lws_alloc(lw_sched *S, void *p, size_t osize, size_t nsize);
int lws_qreserve(lw_sched *S);              /* room for one more entry */
int lws_qpush(lw_sched *S, const lw_ent *e); /* LW_OK or LW_EMEM */
void lws_raise_mem(lua_State *L);            /* raises "not enough memory" */
int lws_anchor(lw_sched *S, lua_State *L);   /* pops L's top; may raise */
void lws_anchor_free(lw_sched *S, lua_State *L, int ref);
void lws_unanchor(lw_sched *S, lua_State *L, int ref); /* pushes the value */
lw_rec *lws_task_rec(lw_sched *S, lua_State *co);
void lws_task_put(lw_sched *S, lw_rec *r, int state);
lw_rec *lws_task_set(lw_sched *S, lua_State *co, int state);
lw_rec *lws_running_rec(lw_sched *S, lua_State *L);
void lws_task_end(lw_sched *S, lua_State *co, lw_rec *r);
void lws_task_drop(lw_sched *S, lua_State *co);
int lws_suspend(lua_State *L);
int lws_protect(lw_sched *S, lua_CFunction f, void *ud);
void lws_purge_timers(lw_sched *S, lua_State *W);
int lws_tpush(lw_sched *S, double due, const lw_ent *e, int zero); /* + notify */
double lws_sane_seconds(double sec);
double lws_default_clock(void *ud);
/* push the function the suspension wrappers ask whether the running task
   is cancelled (LW_SUSPEND_WRAPPED); needs the scheduler's box on top,
   which it pops */
void lws_pushcancelled(lua_State *L);
int lws_unresumable(lw_sched *S, lua_State *L, lua_State *co, int now);          /* monotonic seconds */

static inline void lws_push_thread(lua_State *L, lua_State *co) {
  lua_pushthread(co);
  lua_xmove(co, L, 1);
}

/* lw_sched_end.c: the one end path */
void lws_onend(void *ud, lua_State *co, lua_State *L); /* the store's onend */
void lws_onresume(void *ud, lua_State *co); /* the store's onresume */
void lws_cancel(lw_sched *S, lua_State *co, lua_State *W);
void lws_refused(lw_sched *S, lua_State *co, lua_State *W);
void lws_report_msg(lw_sched *S, lua_State *co, const char *msg);
/* an error raised outside any task (a luv callback luaweave runs): W's
   top is its report (a string: message and traceback), below it the error
   object; both popped.  To task.onerror's handler as fn(nil, err, report),
   else as any task error.  May raise a memory error. */
void lws_report_loose(lw_sched *S, lua_State *W);
void lws_handled(lw_sched *S, lua_State *co, lua_State *W); /* awaited */
void lws_flush_errors(lw_sched *S, lua_State *W); /* at a step's end */
void lws_setonerror(lua_State *L); /* task.onerror: pops fn or nil */
/* push the traceback kept for failed co when its close wiped its stack
   (5.4), or nil */
void lws_push_failtrace(lua_State *L, lua_State *co);
/* push guard(co, key, fn|nil): fn(co) is called, once, when co ends by
   any path (cancel included) while set (one fn per key); the synchronization primitives hand
   back what a waiter was given but never took.  Needs the scheduler's
   box on top, which it pops */
void lws_pushguard(lua_State *L);

/* lw_lua_sync.c: task.channel/event/semaphore into the table at t, and
   the loader of the task library's Lua code */
void lw_sync_open(lua_State *L, int t, int shared);
void lw_lua_chunk(lua_State *L, const char *const *pieces, int nargs);
void lw_sync_abandon(lua_State *L); /* lw.run ended: drop its waiters */
/* lw_lua_group.c: task.group into the table at t */
void lw_group_open(lua_State *L, int t, int shared);
/* lw_lua_info.c: task.info and task.list */
void lw_info_open(lua_State *L, int t, int shared);
int lw_push_waiters(lua_State *L, lw_sched *S); /* for deadlock errors */
void lws_sweep(lw_sched *S, lua_State *W); /* wake awaiters of ended threads */

/* lw_sched_await.c */
int lws_wake(lw_sched *S, lua_State *co, lua_State *W);
void lws_new_hold_table(lua_State *L);
void lws_push_weakreg(lua_State *L, const void *key); /* made if missing */
void lws_any_hold(lw_sched *S, lua_State *T, lua_State *co, int d);
int lws_awaited(lw_sched *S, lua_State *co);
int lws_isover(lw_sched *S, lua_State *co);
void lws_unregister(lw_sched *S, lua_State *T, int pack, int first);
void lws_sweep_plain(lw_sched *S, lua_State *W); /* plain targets' ends */

/* lw_sched_spawn.c */
void lws_drop_start_args(lua_State *co); /* a pending start's arguments go */

/* lw_sched_pool.c */
lua_State *lws_new_thread(lw_sched *S, lua_State *L);
int lws_pool_check(lw_sched *S);

/* lw_sched_async.c */
int lws_complete_protected(lua_State *T);
void lws_async_orphan(lw_sched *S); /* S's tokens go stale (lua_close) */
void lws_async_left(lw_sched *S, unsigned ticket); /* lw_async_oncancel */

#endif
