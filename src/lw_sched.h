/*
** lw_sched.h — the scheduler's inside, for the drivers, the bindings and
** the tests.  The public face is luaweave.h.
*/
#ifndef LW_SCHED_H
#define LW_SCHED_H

#include "lw_store.h"

/* a resumption waiting to happen */
typedef struct lw_ent {
  lua_State *co;
  int ref;              /* anchor in the scheduler's table (co or a pack) */
  unsigned ticket;      /* valid while it equals the task's ticket */
  int kind;             /* what to resume co with (lw_sched.c) */
  double t0;            /* when a wait began */
} lw_ent;

typedef struct lw_timer {
  double due;
  unsigned long long seq;
  lw_ent e;
} lw_timer;

struct lw_sched {
  lua_State *T;         /* the scheduler's own thread (anchored) */
  int tref;
  lw_store *s;           /* NULL once the store is gone (lua_close) */
  lua_Alloc f;           /* the allocator under the store's hook */
  void *ud;
  lw_ent *q;            /* deferred FIFO, a ring */
  size_t qhead, qlen, qcap;
  lw_timer *heap;       /* timers, a binary min-heap on (due, seq) */
  size_t hlen, hcap;
  lw_timer *zq;         /* zero-delay timers, a FIFO ring sorted by (due, seq) */
  size_t zhead, zlen, zcap;
  size_t hswept;        /* hlen after the last sweep of stale timers (or
                           less, as timers were popped since) */
  unsigned long long seq;
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
  int exited, exitcode, stepping, closed;
  lua_State *main;      /* lw.run's main task, awaited by run */
  lua_CFunction yieldfn; /* coroutine.yield's, where LW_YIELD_UNSURE */
  lua_State *runco;     /* the task resume_rec runs (innermost) ... */
  lw_rec *runrec;       /* ... its record ... */
  unsigned long rungen; /* ... good while the store's map is at this gen */
  lw_clock_fn clock;
  void *clock_ud;
  lw_error_fn onerror;
  void *onerror_ud;
  void (*poll)(void *ud);  /* the driver's I/O poll, run at each step */
  void *poll_ud;
  void (*notify)(lw_sched *S); /* work was queued (an attached driver) */
  void *driver;         /* the driver's state (lw_loop.c) */
  void (*driver_free)(lw_sched *S);
};

/* resume co (a task or any thread of S's state) now, with nargs values
   already on its stack, and settle the outcome; from is the running
   thread */
int lw_sched_resume(lw_sched *S, lua_State *co, lua_State *from, int nargs);

/* drop every queued resumption, timer and waiter (after task.exit or a
   deadlock, so that the next run starts clean); W: the running thread */
void lw_sched_clear(lw_sched *S, lua_State *W);

/* timers set (heap and zero-delay FIFO) */
static inline size_t lw_sched_ntimers(const lw_sched *S) {
  return S->hlen + S->zlen;
}

/* run the scheduler's own loop-less check: 1 if deadlocked */
int lw_sched_deadlocked(const lw_sched *S);

/* the scheduler of the running task's state, raising if none can be made */
lw_sched *lw_sched_check(lua_State *L);

/* push the scheduler's box: a userdata whose first field is the
   lw_sched *, NULL once the state is closing.  There must be one. */
void lw_sched_pushbox(lua_State *L);

/* task.wait/await/any/exit from C: suspend the running task L.  On
   LuaJIT they return the one value LW_SUSPEND_MARK (a light userdata)
   when the caller must yield: see lw_lua_task.c */
extern const char LW_SUSPEND_MARK;
/* the level of their caller for error positions, past that wrapper */
#ifdef LW_LUAJIT
#define LW_TASK_LEVEL 2
#else
#define LW_TASK_LEVEL 1
#endif
int lw_sched_wait(lw_sched *S, lua_State *L, double seconds);
/* isany: task.any (the thread that ended comes first, also of one) */
int lw_sched_await(lw_sched *S, lua_State *L, int first, int last, int isany);
int lw_sched_exit(lw_sched *S, lua_State *L, int code);

/* replace the error object on L's top by a printable message: a string
   or number as is, else its __tostring if that gives a string, else
   "(error object is a <type> value)"; runs __tostring protected */
void lw_sched_errmsg(lua_State *L);

/* task.cancel: W is the running thread */
int lw_sched_cancel_from(lw_sched *S, lua_State *co, lua_State *W);

/* lw.run, and the luaweave.fs table (pushed) */
int lw_lua_run(lua_State *L);
int lw_fs_open(lua_State *L);

/* invariant check for tests: 0 when sound, else a line number */
int lw_sched_check_invariants(lw_sched *S);

#endif
