/*
** lw_timerq.h — the scheduler's timer queue: a binary min-heap on
** (deadline, sequence) beside a FIFO for zero-delay timers.  A reusable
** structure with its own test (tests/test_timerq.c); it knows nothing of
** Lua.  Design and costs at the top of lw_timerq.c.
*/
#ifndef LW_TIMERQ_H
#define LW_TIMERQ_H

#include <stddef.h>
#include "lw_map.h"

/* a resumption waiting to happen (the scheduler's; opaque here) */
typedef struct lw_ent {
  struct lua_State *co; /* the thread to resume */
  int ref;              /* anchor in the scheduler's table (co or a pack) */
  unsigned ticket;      /* valid while it equals the task's ticket */
  int kind;             /* what to resume co with (lw_sched.c) */
  double t0;            /* when a wait began */
} lw_ent;

typedef struct lw_timer {
  double due;
  unsigned long long seq; /* FIFO among equal deadlines */
  lw_ent e;
} lw_timer;

typedef struct lw_timerq {
  lw_timer *heap;       /* binary min-heap on (due, seq) */
  size_t hlen, hcap;
  lw_timer *zq;         /* zero-delay timers: a ring sorted by (due, seq) */
  size_t zhead, zlen, zcap; /* zcap: 0 or a power of 2 */
  size_t hswept;        /* hlen after the last sweep (or less, as timers
                           were popped since) */
  unsigned long long seq;
  lw_map_alloc alloc;   /* lua_Alloc's contract */
  void *ud;
} lw_timerq;

void lw_timerq_init(lw_timerq *q, lw_map_alloc alloc, void *ud);
/* frees the arrays; the timers are dropped as they are */
void lw_timerq_free(lw_timerq *q);

static inline size_t lw_timerq_count(const lw_timerq *q) {
  return q->hlen + q->zlen;
}

/* a timer due at `due`; zero: set with no delay (due is "now").
   LW_OK, or LW_EMEM (nothing changed). */
int lw_timerq_push(lw_timerq *q, double due, const lw_ent *e, int zero);

/* the earliest timer, or NULL; good until the next push or pop */
lw_timer *lw_timerq_peek(lw_timerq *q);

/* take the earliest timer; the queue must not be empty */
lw_timer lw_timerq_pop(lw_timerq *q);

/* Once the heap has doubled since the last sweep, drop every timer for
   which keep(ud, e) is 0 (calling drop(ud, e) on it) and re-heapify:
   O(1) a timer amortized.  Returns how many were dropped. */
typedef int (*lw_timerq_keep)(void *ud, const lw_ent *e);
typedef void (*lw_timerq_drop)(void *ud, const lw_ent *e);
size_t lw_timerq_sweep(lw_timerq *q, lw_timerq_keep keep, lw_timerq_drop drop,
                       void *ud);

/* give back what a burst left behind: an array used to a quarter or less
   shrinks (keeping room to double); never fails */
void lw_timerq_shrink(lw_timerq *q);

/* invariant check for tests: 0 when sound, else a line number */
int lw_timerq_check(const lw_timerq *q);

#endif
