/* The synchronization primitives from C on the fake clock: lua_close
   with waiters pending frees everything, and a timed wait's deadline. */
#include "lwtsched.h"

static void test_close_with_waiters(void **state) {
  (void)state;
  lwt_open();
  lwt_do(L, "ch = task.channel()\n"
            "m = task.semaphore(0)\n"
            "ev = task.event()\n"
            "task.spawn(function() L(ch:recv()) end)\n"
            "task.spawn(function() L(ch:send(1)) end)\n" /* handed: deferred */
            "task.spawn(function() L(m:acquire(5)) end)\n"
            "task.spawn(function() L(ev:wait()) end)\n"
            "task.spawn(function() L(task.channel():send(2)) end)\n");
  expect_log("true");
  close_all(); /* every block freed, nothing resumed */
}

static void test_timed_acquire(void **state) {
  (void)state;
  lwt_open();
  lwt_do(L, "m = task.semaphore(0)\n"
            "task.spawn(function() L(m:acquire(2)) end)\n");
  clk = 1.999;
  step();
  expect_log("");
  clk = 2;
  step();
  step();
  expect_log("nil,timeout");
  lwt_do(L, "m:release() L(m:count())");
  expect_log("1");
  close_all();
}

/* handed a permit (or a value), then cancelled before it ran: the end
   guard passes it on to the next waiter */
static void test_handed_then_cancelled(void **state) {
  (void)state;
  lwt_open();
  lwt_do(L, "m = task.semaphore(0)\n"
            "a = task.spawn(function() m:acquire(); L('a') end)\n"
            "b = task.spawn(function() m:acquire(); L('b') end)\n"
            "ch = task.channel()\n"
            "c = task.spawn(function() L('c', ch:recv()) end)\n"
            "d = task.spawn(function() L('d', ch:recv()) end)\n"
            "m:release(); task.cancel(a)\n"
            "ch:send('v'); task.cancel(c)\n");
  step();
  expect_log("b d,v");
  lwt_do(L, "L(m:count(), ch:len())");
  expect_log("0,0");
  close_all();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_close_with_waiters),
    cmocka_unit_test(test_timed_acquire),
    cmocka_unit_test(test_handed_then_cancelled),
  };
  return lwt_main("sync", tests, argc, argv);
}
