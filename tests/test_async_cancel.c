/*
** test_async_cancel.c — lw_async_oncancel: an async operation hears,
** once, that its task left the wait without a completion (cancel, early
** wake, lua_close), and never after a completion.
*/
#include "lwtsched.h"

#define MAXOPS 8
static lw_async *ops[MAXOPS];
static int nops;
static int heard[MAXOPS]; /* hook calls per operation */
static int hook_ok;       /* what the last registration answered */

static void on_cancel(void *ud) { heard[(int)(intptr_t)ud]++; }

/* later(): suspends until the test completes it; registers the hook */
static int c_later(lua_State *Ls) {
  lw_async *op = lw_async_begin(Ls);
  assert_non_null(op);
  assert_true(nops < MAXOPS);
  hook_ok = lw_async_oncancel(op, on_cancel, (void *)(intptr_t)nops);
  ops[nops++] = op;
  return lw_async_yield(Ls, op);
}

static void setup(void) {
  lwt_open();
  nops = 0;
  memset(heard, 0, sizeof heard);
  lw_async_wrap(L, c_later);
  lua_setglobal(L, "later");
}

static void test_cancel_runs_hook_once(void **state) {
  lua_State *T;
  (void)state;
  setup();
  T = lw_sched_state(S);
  lwt_do(L,
    "a = task.spawn(function() L('a', later()) end)\n"
    "b = task.spawn(function() L('b', later()) end)\n");
  assert_int_equal(LW_OK, hook_ok);
  assert_int_equal(2, nops);
  assert_int_equal(0, heard[0] + heard[1]);
  lwt_do(L, "task.cancel(a)");
  assert_int_equal(1, heard[0]);
  assert_int_equal(0, heard[1]);
  assert_int_equal(LW_CANCELLED, lw_status(lws_store(S), global_thread("a")));
  /* the token stays live: the module completes it from its callback,
     and the outcome is discarded */
  assert_int_equal(2, lw_sched_async(S));
  assert_int_equal(LW_EBUSY, lw_async_oncancel(ops[0], on_cancel, NULL));
  lua_pushinteger(T, 1);
  assert_int_equal(LW_OK, lw_async_resolve(ops[0], 1));
  assert_int_equal(0, lua_gettop(T));
  /* a completed operation never hears of a later cancel */
  lua_pushinteger(T, 2);
  assert_int_equal(LW_OK, lw_async_resolve(ops[1], 1));
  lwt_do(L, "task.cancel(b)");
  step();
  expect_log("");
  assert_int_equal(1, heard[0]);
  assert_int_equal(0, heard[1]);
  assert_int_equal(0, lw_sched_async(S));
  assert_int_equal(LW_ESTALE, lw_async_oncancel(ops[0], on_cancel, NULL));
  assert_int_equal(LW_EINVAL, lw_async_oncancel(NULL, on_cancel, NULL));
  close_all();
}

static void test_completion_no_hook(void **state) {
  lua_State *T;
  (void)state;
  setup();
  T = lw_sched_state(S);
  lwt_do(L, "a = task.spawn(function() L('a', later()) end)");
  lua_pushliteral(T, "v");
  assert_int_equal(LW_OK, lw_async_resolve(ops[0], 1));
  assert_int_equal(1, step());
  expect_log("a,v");
  assert_int_equal(0, heard[0]);
  assert_int_equal(LW_EINVAL, lw_async_oncancel(ops[0], NULL, NULL));
  close_all();
  assert_int_equal(0, heard[0]);
}

static void test_early_wake_runs_hook(void **state) {
  (void)state;
  setup();
  lwt_do(L,
    "a = task.spawn(function() L('a', later()); L('a2', coroutine.yield()) end)\n"
    "b = task.spawn(function() L('b', later()) end)\n"
    "lw.resume(a, 'early')\n"
    "task.spawn(b, 'spawned')\n");
  expect_log("a,early b,spawned");
  assert_int_equal(1, heard[0]);
  assert_int_equal(1, heard[1]);
  assert_int_equal(LW_OK, lw_async_drop(ops[0]));
  assert_int_equal(LW_OK, lw_async_drop(ops[1]));
  step();
  expect_log("");
  assert_int_equal(2, heard[0] + heard[1]); /* never again */
  close_all();
}

static void test_lua_close_runs_hook(void **state) {
  (void)state;
  setup();
  lwt_do(L,
    "a = task.spawn(function() L('a', later()) end)\n"
    "b = task.spawn(function() L('b', later()) end)\n");
  assert_int_equal(LW_OK, lw_async_drop(ops[1]));
  lua_close(L);
  L = NULL;
  assert_int_equal(0, heap.blocks);
  assert_int_equal(1, heard[0]);
  assert_int_equal(0, heard[1]); /* dropped before: never hears */
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
}

/* registered once its task has already left the wait: runs at once */
static int c_late_hook(lua_State *Ls) {
  lw_async *op = lw_async_begin(Ls);
  ops[nops++] = op;
  return lw_async_yield(Ls, op);
}

static void test_late_registration(void **state) {
  (void)state;
  setup();
  lw_async_wrap(L, c_late_hook);
  lua_setglobal(L, "nohook");
  lwt_do(L, "a = task.spawn(function() nohook() end)\ntask.cancel(a)");
  assert_int_equal(0, heard[3]);
  assert_int_equal(LW_OK, lw_async_oncancel(ops[0], on_cancel, (void *)3));
  assert_int_equal(1, heard[3]);
  assert_int_equal(LW_OK, lw_async_drop(ops[0]));
  close_all();
  assert_int_equal(1, heard[3]);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cancel_runs_hook_once),
    cmocka_unit_test(test_completion_no_hook),
    cmocka_unit_test(test_early_wake_runs_hook),
    cmocka_unit_test(test_lua_close_runs_hook),
    cmocka_unit_test(test_late_registration),
  };
  return lwt_main("async_cancel", tests, argc, argv);
}
