/*
** lw_timerq.c — the timer queue.
**
** Timers come in two kinds.  Most delays differ, and a binary min-heap
** on (deadline, sequence) gives O(log n) set and pop with FIFO order
** among equal deadlines.  Zero delays (task.wait(), task.wait(0),
** task.delay(0)) are due "now" when set, so they arrive already sorted:
** a ring keeps them at O(1), and the earliest timer is the earlier of its
** head and the heap's top.  A clock that steps back (a host's own) would
** break the ring's order, so such a timer goes to the heap instead.
**
** Timers are never removed from the middle: a cancelled or woken task
** leaves its timer behind, stale, and the scheduler skips it when it
** comes up.  A stale timer below a live one would wait for its own
** deadline (a long timeout, cancelled each time the work it guards is
** done, would pile up), so the heap is swept whole each time it has
** doubled since the last sweep: O(1) a timer, amortized, and stale
** timers stay fewer than live ones (plus 64).
**
** Costs: 40 bytes a timer (64-bit), arrays that double and halve; no
** allocation but array growth.
*/
#include "lw_timerq.h"
#include "luaweave.h"

#define MINCAP 64

void lw_timerq_init(lw_timerq *q, lw_map_alloc alloc, void *ud) {
  q->heap = q->zq = NULL;
  q->hlen = q->hcap = q->zhead = q->zlen = q->zcap = q->hswept = 0;
  q->seq = 0;
  q->alloc = alloc;
  q->ud = ud;
}

void lw_timerq_free(lw_timerq *q) {
  if (q->heap) q->alloc(q->ud, q->heap, q->hcap * sizeof(lw_timer), 0);
  if (q->zq) q->alloc(q->ud, q->zq, q->zcap * sizeof(lw_timer), 0);
  q->heap = q->zq = NULL;
  q->hlen = q->hcap = q->zhead = q->zlen = q->zcap = q->hswept = 0;
}

static int before(const lw_timer *a, const lw_timer *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static int h_grow(lw_timerq *q, size_t ncap) {
  lw_timer *nh = (lw_timer *)q->alloc(q->ud, q->heap, q->hcap * sizeof(lw_timer),
                                      ncap * sizeof(lw_timer));
  if (nh == NULL) return LW_EMEM;
  q->heap = nh;
  q->hcap = ncap;
  return LW_OK;
}

static int h_push(lw_timerq *q, const lw_timer *t) {
  size_t i;
  if (q->hlen == q->hcap && h_grow(q, q->hcap ? q->hcap * 2 : MINCAP) != LW_OK)
    return LW_EMEM;
  /* sift the hole up, then fill it once */
  for (i = q->hlen++; i > 0 && before(t, &q->heap[(i - 1) / 2]); i = (i - 1) / 2)
    q->heap[i] = q->heap[(i - 1) / 2];
  q->heap[i] = *t;
  return LW_OK;
}

/* move the timer at i down to its place among the first n: sift the
   hole down, then fill it once */
static void h_down(lw_timerq *q, size_t i, size_t n) {
  lw_timer t = q->heap[i];
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && before(&q->heap[c + 1], &q->heap[c])) c++;
    if (!before(&q->heap[c], &t)) break;
    q->heap[i] = q->heap[c];
    i = c;
  }
  q->heap[i] = t;
}

static lw_timer h_pop(lw_timerq *q) {
  lw_timer top = q->heap[0];
  size_t n = --q->hlen;
  if (q->hswept > n) q->hswept = n;
  if (n > 0) {
    q->heap[0] = q->heap[n];
    h_down(q, 0, n);
  }
  return top;
}

/* move the ring into ncap (a power of 2, >= zlen) slots, unwrapped */
static int z_resize(lw_timerq *q, size_t ncap) {
  size_t i;
  lw_timer *nz = (lw_timer *)q->alloc(q->ud, NULL, 0, ncap * sizeof(lw_timer));
  if (nz == NULL) return LW_EMEM;
  for (i = 0; i < q->zlen; i++) nz[i] = q->zq[(q->zhead + i) & (q->zcap - 1)];
  if (q->zq) q->alloc(q->ud, q->zq, q->zcap * sizeof(lw_timer), 0);
  q->zq = nz;
  q->zcap = ncap;
  q->zhead = 0;
  return LW_OK;
}

static lw_timer *z_at(const lw_timerq *q, size_t i) {
  return &q->zq[(q->zhead + i) & (q->zcap - 1)];
}

int lw_timerq_push(lw_timerq *q, double due, const lw_ent *e, int zero) {
  lw_timer t;
  t.due = due;
  t.seq = q->seq;
  t.e = *e;
  if (zero && (q->zlen == 0 || z_at(q, q->zlen - 1)->due <= due)) {
    if (q->zlen == q->zcap && z_resize(q, q->zcap ? q->zcap * 2 : MINCAP) != LW_OK)
      return LW_EMEM;
    *z_at(q, q->zlen++) = t;
  } else if (h_push(q, &t) != LW_OK) {
    return LW_EMEM;
  }
  q->seq++;
  return LW_OK;
}

lw_timer *lw_timerq_peek(lw_timerq *q) {
  lw_timer *z = q->zlen ? &q->zq[q->zhead] : NULL;
  if (q->hlen == 0) return z;
  return (z != NULL && before(z, &q->heap[0])) ? z : &q->heap[0];
}

lw_timer lw_timerq_pop(lw_timerq *q) {
  lw_timer t;
  if (q->zlen == 0 || (q->hlen > 0 && before(&q->heap[0], &q->zq[q->zhead])))
    return h_pop(q);
  t = q->zq[q->zhead];
  q->zhead = (q->zhead + 1) & (q->zcap - 1);
  q->zlen--;
  return t;
}

size_t lw_timerq_sweep(lw_timerq *q, lw_timerq_keep keep, lw_timerq_drop drop,
                       void *ud) {
  size_t i, n = 0, old = q->hlen;
  if (q->hlen <= 2 * q->hswept + MINCAP) return 0;
  for (i = 0; i < q->hlen; i++) {
    if (keep(ud, &q->heap[i].e)) q->heap[n++] = q->heap[i];
    else drop(ud, &q->heap[i].e);
  }
  q->hlen = q->hswept = n;
  for (i = n / 2; i-- > 0;) h_down(q, i, n);
  return old - n;
}

void lw_timerq_shrink(lw_timerq *q) {
  size_t ncap;
  for (ncap = q->zcap; ncap > MINCAP && q->zlen * 4 < ncap; ncap /= 2) {}
  if (ncap < q->zcap) (void)z_resize(q, ncap);
  for (ncap = q->hcap; ncap > MINCAP && q->hlen * 4 < ncap; ncap /= 2) {}
  if (ncap < q->hcap) (void)h_grow(q, ncap); /* if it fails, the bigger stays */
}

int lw_timerq_check(const lw_timerq *q) {
  size_t i;
  if (q->hlen > q->hcap || q->zlen > q->zcap) return __LINE__;
  if ((q->zcap & (q->zcap - 1)) != 0) return __LINE__;
  if (q->hswept > q->hlen) return __LINE__;
  for (i = 1; i < q->hlen; i++)
    if (before(&q->heap[i], &q->heap[(i - 1) / 2])) return __LINE__;
  for (i = 1; i < q->zlen; i++) /* the ring is sorted */
    if (!before(z_at(q, i - 1), z_at(q, i))) return __LINE__;
  for (i = 0; i < q->hlen; i++)
    if (q->heap[i].seq >= q->seq) return __LINE__;
  for (i = 0; i < q->zlen; i++)
    if (z_at(q, i)->seq >= q->seq) return __LINE__;
  return 0;
}
