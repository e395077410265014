/* Timeouts of task.await/any on the fake clock: the deadline, what a
   timed-out wait leaves behind (nothing in any waiter list), a deadline
   made stale by an earlier wake, and no deadlock while one is set. */
#include "lwtsched.h"

/* a thread parked in a plain yield, in global name (never ends alone) */
static void park(const char *name) {
  char code[160];
  snprintf(code, sizeof code,
           "%s = coroutine.create(function() return coroutine.yield() end)\n"
           "coroutine.resume(%s)\n", name, name);
  lwt_do(L, code);
}

static void test_await_deadline(void **state) {
  (void)state;
  lwt_open();
  park("p");
  lwt_do(L, "w = task.spawn(function() L(task.await(p, 5)); L('again') end)");
  assert_int_equal(1, (int)S->wlists);
  assert_int_equal(1, (int)lw_sched_waiting(S));
  clk = 4.999;
  assert_int_equal(0, step());
  expect_log("");
  assert_null(lw_sched_deadlocked(S) ? S : NULL); /* a deadline is set */
  clk = 5;
  assert_int_equal(1, step());
  expect_log("nil,timeout again");
  assert_int_equal(0, (int)S->wlists); /* nothing left behind */
  assert_int_equal(0, (int)lw_sched_waiting(S));
  assert_int_equal(0, (int)lw_sched_ntimers(S));
  close_all();
}

static void test_any_deadline_unregisters(void **state) {
  (void)state;
  lwt_open();
  park("p");
  park("q");
  lwt_do(L, "other = task.spawn(function() L('other', task.await(p)) end)\n"
            "w = task.spawn(function() L(task.any(p, q, {timeout = 1})) end)");
  assert_int_equal(2, (int)S->wlists);
  clk = 1;
  assert_int_equal(1, step());
  expect_log("nil,timeout");
  /* q's list went with its only registration; p's keeps the other
     waiter, and only it */
  assert_int_equal(1, (int)S->wlists);
  lua_rawgeti(L, LUA_REGISTRYINDEX, S->wref);
  lua_getglobal(L, "p");
  lua_rawget(L, -2);
  assert_int_equal(3, (int)lw_rawlen(L, -1));
  lua_pop(L, 2);
  lwt_do(L, "lw.resume(p, 'pv')");
  assert_int_equal(1, step());
  expect_log("other,true,pv");
  assert_int_equal(0, (int)S->wlists);
  close_all();
}

static void test_deadline_stale_after_wake(void **state) {
  (void)state;
  lwt_open();
  lwt_do(L, "t = task.delay(1, function() return 't' end)\n"
            "w = task.spawn(function() L(task.await(t, 5)); L(math.floor(task.wait(10))) end)");
  clk = 1;
  step();
  step();
  expect_log("true,t");
  clk = 5; /* the await's deadline: stale, it resumes nobody */
  assert_int_equal(0, step());
  expect_log("");
  clk = 11;
  assert_int_equal(1, step());
  expect_log("10");
  close_all();
}

static void test_cancel_timed_waiter(void **state) {
  (void)state;
  lwt_open();
  park("p");
  lwt_do(L, "w = task.spawn(function() L(task.await(p, 1)) end)\n"
            "task.cancel(w)");
  clk = 2;
  assert_int_equal(0, step());
  expect_log("");
  assert_int_equal(LW_CANCELLED, lw_status(S->s, global_thread("w")));
  assert_int_equal(0, (int)lw_sched_waiting(S));
  close_all();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_await_deadline),
    cmocka_unit_test(test_any_deadline_unregisters),
    cmocka_unit_test(test_deadline_stale_after_wake),
    cmocka_unit_test(test_cancel_timed_waiter),
  };
  return lwt_main("timeout", tests, argc, argv);
}
