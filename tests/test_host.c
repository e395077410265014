/* The scheduler's accessors for the command line (src/lw_sched_host.h):
   what a task awaits, whether a task is parked by the scheduler or in a
   plain yield, the host's stop.  The CLI's messages rest on them
   (tests/cli.sh shows the messages). */
#include "lwtsched.h"
#include "lw_sched_host.h"

/* a thread parked in a plain yield, in global name (never ends alone) */
static void park(const char *name) {
  char code[160];
  snprintf(code, sizeof code,
           "%s = coroutine.create(function() return coroutine.yield() end)\n"
           "coroutine.resume(%s)\n", name, name);
  lwt_do(L, code);
}

static void test_awaited_names_the_target(void **state) {
  int top;
  (void)state;
  lwt_open();
  park("p");
  park("q");
  lwt_do(L, "w = task.spawn(function() task.await(p) end)\n"
            "a = task.spawn(function() task.any(q, p) end)\n"
            "n = task.spawn(function() task.wait(10) end)\n");
  top = lua_gettop(L);
  assert_int_equal(1, lw_host_awaited(S, L, global_thread("w")));
  assert_ptr_equal(global_thread("p"), lua_tothread(L, -1));
  lua_pop(L, 1);
  /* task.any: one of its targets */
  assert_int_equal(1, lw_host_awaited(S, L, global_thread("a")));
  assert_true(lua_tothread(L, -1) == global_thread("p") ||
              lua_tothread(L, -1) == global_thread("q"));
  lua_pop(L, 1);
  /* not awaiting: nothing pushed */
  assert_int_equal(0, lw_host_awaited(S, L, global_thread("n")));
  assert_int_equal(0, lw_host_awaited(S, L, global_thread("p")));
  assert_int_equal(top, lua_gettop(L));
  lwt_do(L, "task.cancel(w) task.cancel(a) task.cancel(n)");
  close_all();
}

static void test_awaited_not_after_the_wait(void **state) {
  (void)state;
  lwt_open();
  park("p");
  /* a timed-out await: its registration is stale, not a wait */
  lwt_do(L, "w = task.spawn(function() task.await(p, 1) task.wait(10) end)");
  clk = 1;
  step();
  assert_int_equal(0, lw_host_awaited(S, L, global_thread("w")));
  lwt_do(L, "task.cancel(w)");
  close_all();
}

static void test_parked_or_plain_yield(void **state) {
  (void)state;
  lwt_open();
  lwt_do(L, "y = task.spawn(function() coroutine.yield() end)\n"
            "t = task.spawn(function() task.wait(10) end)\n");
  assert_int_equal(0, lw_host_parked(S, global_thread("y")));
  assert_int_equal(1, lw_host_parked(S, global_thread("t")));
  lwt_do(L, "task.cancel(y) task.cancel(t)");
  close_all();
}

static void test_stop_and_take_back(void **state) {
  int code = -1;
  (void)state;
  lwt_open();
  assert_int_equal(0, lw_host_stopped(S));
  lw_host_stop(S, 1);
  assert_int_equal(1, lw_host_stopped(S));
  lw_host_stop(S, 0);
  assert_int_equal(0, lw_host_stopped(S));
  assert_int_equal(0, lw_sched_exited(S, &code));
  assert_ptr_equal(lw_host_store(S), lw_store_get(L));
  assert_null(lw_host_running(S)); /* between steps */
  assert_non_null(lw_host_own(S));
  close_all();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_awaited_names_the_target),
    cmocka_unit_test(test_awaited_not_after_the_wait),
    cmocka_unit_test(test_parked_or_plain_yield),
    cmocka_unit_test(test_stop_and_take_back),
  };
  return lwt_main("host", tests, argc, argv);
}
