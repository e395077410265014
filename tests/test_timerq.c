/* test_timerq.c — the timer queue on its own: order, zero-delay FIFO,
   a clock that steps back, sweeping, shrinking, allocation failure. */
#include "lwtest.h"
#include "lw_timerq.h"

static lw_ent ent(unsigned id) {
  lw_ent e;
  memset(&e, 0, sizeof e);
  e.ticket = id;
  return e;
}

static lw_timerq *newq(lwt_heap *h) {
  static lw_timerq q;
  memset(h, 0, sizeof *h);
  lw_timerq_init(&q, lwt_alloc, h);
  return &q;
}

/* pops come by deadline, ties in push order, zero-delay ones included */
static void test_order(void **state) {
  lwt_heap h;
  lw_timerq *q = newq(&h);
  unsigned i, n = 5000;
  double last = -1;
  unsigned lastid = 0;
  (void)state;
  srand(7);
  for (i = 1; i <= n; i++) {
    lw_ent e = ent(i);
    int zero = rand() % 3 == 0;
    double due = zero ? (double)(i / 10) : (double)(rand() % 1000);
    assert_int_equal(LW_OK, lw_timerq_push(q, due, &e, zero));
  }
  assert_int_equal(n, lw_timerq_count(q));
  assert_int_equal(0, lw_timerq_check(q));
  for (i = 0; i < n; i++) {
    lw_timer *p = lw_timerq_peek(q);
    lw_timer t = lw_timerq_pop(q);
    assert_non_null(p);
    assert_true(t.due > last || (t.due == last && t.e.ticket > lastid));
    last = t.due;
    lastid = t.e.ticket;
    if (i % 97 == 0) assert_int_equal(0, lw_timerq_check(q));
  }
  assert_null(lw_timerq_peek(q));
  lw_timerq_free(q);
  assert_int_equal(0, h.blocks);
}

/* a zero-delay timer set after a later one (a clock that stepped back)
   still comes out in deadline order */
static void test_clock_back(void **state) {
  lwt_heap h;
  lw_timerq *q = newq(&h);
  lw_ent a = ent(1), b = ent(2), c = ent(3);
  (void)state;
  assert_int_equal(LW_OK, lw_timerq_push(q, 10, &a, 1));
  assert_int_equal(LW_OK, lw_timerq_push(q, 5, &b, 1)); /* the clock went back */
  assert_int_equal(LW_OK, lw_timerq_push(q, 10, &c, 1));
  assert_int_equal(1, q->hlen); /* b went to the heap */
  assert_int_equal(0, lw_timerq_check(q));
  assert_int_equal(2, lw_timerq_pop(q).e.ticket);
  assert_int_equal(1, lw_timerq_pop(q).e.ticket);
  assert_int_equal(3, lw_timerq_pop(q).e.ticket);
  lw_timerq_free(q);
}

static int keep_odd(void *ud, const lw_ent *e) {
  (void)ud;
  return e->ticket % 2 == 1;
}

static void count_drop(void *ud, const lw_ent *e) {
  (void)e;
  ++*(int *)ud;
}

/* a sweep runs only once the heap has doubled, and keeps the heap order */
static void test_sweep(void **state) {
  lwt_heap h;
  lw_timerq *q = newq(&h);
  unsigned i;
  int dropped = 0;
  (void)state;
  for (i = 1; i <= 64; i++) {
    lw_ent e = ent(i);
    assert_int_equal(LW_OK, lw_timerq_push(q, 1000.0 - i, &e, 0));
  }
  assert_int_equal(0, lw_timerq_sweep(q, keep_odd, count_drop, &dropped));
  assert_int_equal(0, dropped);
  for (i = 65; i <= 200; i++) {
    lw_ent e = ent(i);
    assert_int_equal(LW_OK, lw_timerq_push(q, 1000.0 - i, &e, 0));
  }
  assert_int_equal(100, lw_timerq_sweep(q, keep_odd, count_drop, &dropped));
  assert_int_equal(100, dropped);
  assert_int_equal(100, lw_timerq_count(q));
  assert_int_equal(0, lw_timerq_check(q));
  /* not doubled since: no sweep */
  assert_int_equal(0, lw_timerq_sweep(q, keep_odd, count_drop, &dropped));
  for (i = 0; i < 100; i++) assert_true(lw_timerq_pop(q).e.ticket % 2 == 1);
  lw_timerq_free(q);
}

/* a failed growth changes nothing; shrinking gives memory back */
static void test_oom_and_shrink(void **state) {
  lwt_heap h;
  lw_timerq *q = newq(&h);
  unsigned i;
  lw_ent e = ent(1);
  (void)state;
  h.fail_in = 1;
  assert_int_equal(LW_EMEM, lw_timerq_push(q, 1, &e, 0));
  h.fail_in = 1;
  assert_int_equal(LW_EMEM, lw_timerq_push(q, 1, &e, 1));
  assert_int_equal(0, lw_timerq_count(q));
  assert_int_equal(0, lw_timerq_check(q));
  for (i = 1; i <= 1000; i++) {
    e = ent(i);
    assert_int_equal(LW_OK, lw_timerq_push(q, (double)i, &e, i % 2));
  }
  h.fail_in = 1; /* the queue is full of 2^k: the next push must grow */
  while (lw_timerq_count(q) < q->hcap + q->zcap &&
         lw_timerq_push(q, 2000, &e, 0) == LW_OK) h.fail_in = 1;
  assert_int_equal(0, lw_timerq_check(q));
  h.fail_in = 0;
  while (lw_timerq_count(q) > 3) (void)lw_timerq_pop(q);
  lw_timerq_shrink(q);
  assert_true(q->hcap <= 64 && q->zcap <= 64);
  assert_int_equal(0, lw_timerq_check(q));
  lw_timerq_free(q);
  assert_int_equal(0, h.blocks);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_order),
    cmocka_unit_test(test_clock_back),
    cmocka_unit_test(test_sweep),
    cmocka_unit_test(test_oom_and_shrink),
  };
  return lwt_main("timerq", tests, argc, argv);
}
