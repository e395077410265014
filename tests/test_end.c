/* The one end path (issue 13): however a thread ends, its awaiters wake;
   unhandled means "not awaited by the end of the step"; a host on the
   stepped or attached driver learns of ends and of deadlock.  Stepped by
   hand from C on a fake clock; attached on a real libuv loop. */
#include "lwtsched.h"
#include <uv.h>

static int nend, endst[16];
static lua_State *endco[16];

static void on_end(void *ud, lua_State *co, int status) {
  (void)ud;
  if (nend < 16) {
    endco[nend] = co;
    endst[nend] = status;
  }
  nend++;
}

static void open_all(void) {
  lwt_open();
  nend = 0;
  lw_sched_onend(S, on_end, NULL);
}

/* a tracked thread t that yields once, and a task awaiting it */
static const char awaited[] =
  "t = lw.track(coroutine.create(function() coroutine.yield() return 'fin' end))\n"
  "lw.resume(t)\n"
  "w = task.spawn(function() L('woke', task.await(t)) end)\n";

/* lw_resume from C runs the target to its end: the awaiter wakes in the
   next step, and the host hears of the end */
static void test_lw_resume_from_c(void **state) {
  int nres;
  (void)state;
  open_all();
  lwt_do(L, awaited);
  assert_int_equal(1, lw_sched_waiting(S));
  assert_int_equal(LUA_OK, lw_resume(S->s, global_thread("t"), L, 0, &nres));
  assert_int_equal(1, nend);
  assert_ptr_equal(global_thread("t"), endco[0]);
  assert_int_equal(LW_RETURNED, endst[0]);
  assert_int_equal(1, step());
  expect_log("woke,true,fin");
  assert_int_equal(LW_RETURNED, endst[1]); /* w ended too */
  assert_int_equal(0, lw_sched_deadlocked(S));
  close_all();
}

/* lw_cancel from C (the store's, not the scheduler's) */
static void test_lw_cancel_from_c(void **state) {
  (void)state;
  open_all();
  lwt_do(L, awaited);
  assert_int_equal(LW_OK, lw_cancel(S->s, global_thread("t"), L));
  assert_int_equal(1, step());
  expect_log("woke,false,cancelled");
  assert_int_equal(LW_CANCELLED, endst[0]);
  close_all();
}

/* a raw lua_resume ends the target behind luaweave's back: found when
   nothing else can run, before a deadlock is declared */
static void test_raw_resume(void **state) {
  lua_State *t;
  int nres = 0;
  (void)state;
  open_all();
  lwt_do(L, awaited);
  t = global_thread("t");
  lua_settop(t, 0); /* the recorded yield's values: a raw resume wants none */
  assert_int_equal(LUA_OK, lw_co_resume(t, L, 0, &nres));
  lua_pop(t, nres); /* the host takes the results, as coroutine.resume does */
  assert_int_equal(0, nend); /* nobody could see it */
  assert_int_equal(0, lw_sched_deadlocked(S)); /* looked, and woke w */
  assert_int_equal(1, step());
  expect_log("woke,false,thread ended outside luaweave: its result is unknown");
  close_all();
}

/* lw_reset (5.4) ends a life that had not ended: its awaiters hear
   "cancelled" before the thread is forgotten */
static void test_reset(void **state) {
  (void)state;
  open_all();
  lwt_do(L, awaited);
  if (!lw_co_canreset()) { /* before 5.4: no reset, nothing ends */
    assert_int_equal(LW_ENOTSUP, lw_reset(S->s, global_thread("t"), L));
    assert_int_equal(0, step());
    assert_int_equal(1, (int)lw_sched_waiting(S));
    lw_sched_clear(S, L);
    close_all();
    return;
  }
  assert_int_equal(LUA_OK, lw_reset(S->s, global_thread("t"), L));
  assert_int_equal(LW_UNTRACKED, lw_status(S->s, global_thread("t")));
  assert_int_equal(1, step());
  expect_log("woke,false,cancelled");
  close_all();
}

/* an error is unhandled only if nobody awaited its task by the end of
   the step in which it failed */
static void test_unhandled_at_step_end(void **state) {
  (void)state;
  open_all();
  /* a spawn from C outside a step is a step of its own: reported now */
  lwt_do(L, "task.spawn(function() error('alone', 0) end)");
  assert_int_equal(1, nerr);
  assert_non_null(strstr(lasterr, "alone"));
  /* failed inside a step before its spawner awaits it: handled */
  lwt_do(L, "task.defer(function()\n"
            "  local c = task.spawn(function() error('early', 0) end)\n"
            "  L(task.await(c))\n"
            "end)\n");
  assert_int_equal(1, step());
  expect_log("false,early");
  assert_int_equal(1, nerr);
  /* awaited by another task later in the same step: handled */
  lwt_do(L, "task.defer(function() e = task.spawn(function() error('same', 0) end) end)\n"
            "task.defer(function() L(task.await(e)) end)\n");
  assert_int_equal(2, step());
  expect_log("false,same");
  assert_int_equal(1, nerr);
  /* awaited only in a later step: reported at the end of its own */
  lwt_do(L, "task.defer(function() f = task.spawn(function() error('late', 0) end) end)\n");
  assert_int_equal(1, step());
  assert_int_equal(2, nerr);
  assert_non_null(strstr(lasterr, "late"));
  assert_non_null(strstr(lasterr, "traceback"));
  assert_int_equal(2, (int)lw_sched_errors(S));
  close_all();
}

/* spawn/defer/delay of a dead thread: LW_ESTATE, nothing changes */
static void test_spawn_dead_from_c(void **state) {
  lua_State *d;
  int top, i;
  (void)state;
  open_all();
  lwt_do(L, "d = coroutine.create(function() end); coroutine.resume(d)");
  d = global_thread("d");
  for (i = 0; i < 3; i++) {
    lua_pushthread(d);
    lua_xmove(d, L, 1);
    lua_pushinteger(L, 1);
    top = lua_gettop(L);
    assert_int_equal(LW_ESTATE, i == 0 ? lw_sched_spawn(S, L, 1)
                              : i == 1 ? lw_sched_defer(S, L, 1)
                                       : lw_sched_delay(S, L, 1, 1));
    assert_int_equal(top, lua_gettop(L));
    lua_pop(L, 2);
  }
  assert_int_equal(0, (int)lw_sched_ready(S));
  assert_int_equal(0, nerr);
  close_all();
}

/* the attached driver: a host whose loop runs dry learns that the tasks
   wait forever, and which ended */
static void test_attached_deadlock(void **state) {
  uv_loop_t loop;
  (void)state;
  open_all();
  lw_sched_setclock(S, NULL, NULL);
  assert_int_equal(0, uv_loop_init(&loop));
  assert_int_equal(LW_OK, lw_sched_attach(S, &loop));
  lwt_do(L, "a = task.spawn(function() task.wait(0.001); return 1 end)\n"
            "b = task.spawn(function() task.await(coroutine.create(function() end)) end)\n");
  uv_run(&loop, UV_RUN_DEFAULT); /* returns: nothing keeps it alive */
  assert_int_equal(1, nend);
  assert_ptr_equal(global_thread("a"), endco[0]);
  assert_int_equal(1, (int)lw_sched_deadlocked(S));
  assert_int_equal(LW_OK, lw_sched_cancel(S, global_thread("b")));
  assert_int_equal(0, (int)lw_sched_deadlocked(S));
  assert_int_equal(LW_CANCELLED, endst[1]);
  assert_int_equal(LW_OK, lw_sched_detach(S));
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(0, uv_loop_close(&loop));
  close_all();
}

/* async completion whose push breaks its contract */
static lw_async *tok;

static int l_req(lua_State *L) {
  tok = lw_async_begin(L);
  return lw_async_yield(L, tok);
}

static int push_raises(lua_State *L, void *ud) {
  (void)ud;
  lua_pushinteger(L, 1);
  return luaL_error(L, "push raised");
}

static int push_overcounts(lua_State *L, void *ud) {
  (void)ud;
  lua_pushinteger(L, 1);
  return 1000;
}

static int push_minus2(lua_State *L, void *ud) {
  (void)ud;
  lua_pushinteger(L, 1);
  return -2;
}

static int push_two_of_three(lua_State *L, void *ud) {
  (void)ud;
  lua_pushinteger(L, 1);
  lua_pushinteger(L, 2);
  lua_pushinteger(L, 3);
  return 2;
}

static void test_async_bad_push(void **state) {
  static const lw_push_fn pushes[] = {push_raises, push_overcounts, push_minus2,
                                      push_two_of_three};
  static const int want[] = {LW_OK, LW_EINVAL, LW_EINVAL, LW_OK};
  static const char *const logs[] = {
    "false,[string \"luaweave\"]:0: push raised", "false,invalid async completion",
    "false,invalid async completion", "true,2,3"};
  int i;
  (void)state;
  open_all();
  lw_async_wrap(L, l_req);
  lua_setglobal(L, "req");
  for (i = 0; i < 4; i++) {
    tok = NULL;
    /* no pcall around req: 5.1 cannot yield across it; an awaiter
       hears the outcome */
    lwt_do(L, "local t = task.spawn(function() return req() end)\n"
              "task.spawn(function() L(task.await(t)) end)");
    assert_non_null(tok);
    assert_int_equal(want[i], lw_async_complete(tok, pushes[i], NULL));
    assert_int_equal(2, step());
    lua_getglobal(L, "flush");
    lua_call(L, 0, 1);
    if (i == 0) /* the position differs between versions: the message */
      assert_non_null(strstr(lua_tostring(L, -1), "push raised"));
    else
      assert_string_equal(logs[i], lua_tostring(L, -1));
    lua_pop(L, 1);
    assert_int_equal(LW_ESTALE, lw_async_complete(tok, pushes[i], NULL));
  }
  assert_int_equal(0, nerr);
  close_all();
}

/* stepped mode with I/O out on luaweave's own loop: the frame loop must
   step again within 0.01 s, whatever the next timer (it polls the I/O) */
static void test_next_with_io(void **state) {
  int guard = 0;
  (void)state;
  open_all();
  lwt_do(L, "task.delay(5, function() end)\n"
            "task.spawn(function() L(#lw.fs.readfile('tests/test_end.c') > 0) end)\n");
  assert_int_equal(1, (int)lw_sched_async(S));
  assert_true(lw_sched_next(S) > 0 && lw_sched_next(S) <= 0.01);
  while (lw_sched_async(S) > 0 && ++guard < 100000) step();
  assert_int_equal(0, (int)lw_sched_async(S));
  while (lw_sched_next(S) == 0) step();
  expect_log("true");
  assert_true(lw_sched_next(S) > 4.9); /* the timer alone again */
  lw_sched_clear(S, L);
  close_all();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_lw_resume_from_c),
    cmocka_unit_test(test_lw_cancel_from_c),
    cmocka_unit_test(test_raw_resume),
    cmocka_unit_test(test_reset),
    cmocka_unit_test(test_unhandled_at_step_end),
    cmocka_unit_test(test_spawn_dead_from_c),
    cmocka_unit_test(test_attached_deadlock),
    cmocka_unit_test(test_next_with_io),
    cmocka_unit_test(test_async_bad_push),
  };
  return lwt_main("end", tests, argc, argv);
}
