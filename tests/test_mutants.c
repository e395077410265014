/* Tests that kill mutants: each one catches a deliberate bug of
   tests/mutations.txt (named in its comment) that the other suites let
   through (make mutate, docs/reliability.md).  Deterministic: a fake
   clock, counted steps and resumptions, no wall-clock time.
   LWT_FILTER=<name> runs one test. */
#include "lwtsched.h"

static lw_store *st;

/* beside lwtsched.h's prelude */
static const char prelude[] =
  /* a GC that runs a whole cycle, finalizers included, at every
     allocation check: a finalizer runs at the first allocation after its
     object became garbage */
  /* an object whose finalizer is fn (5.1 and LuaJIT finalize only
     userdata) */
  "function gcobj(fn)\n"
  "  if newproxy then local p = newproxy(true); getmetatable(p).__gc = fn; return p end\n"
  "  return setmetatable({}, {__gc = fn})\n"
  "end\n"
  "function eager_gc()\n"
  "  collectgarbage('setpause', 0)\n"
  "  collectgarbage('setstepmul', 1000)\n"
  "  collectgarbage()\n"
  "end\n";

/* where a finalizer runs: 5.2 and later run a whole cycle, finalizers
   included, at the allocation check after an object became garbage
   (eager_gc); 5.1 and LuaJIT call finalizers at other points of their
   steps, so the two tests that need one inside a given allocation run
   on 5.2-5.4 (make mutate runs 5.4) */
#if LUA_VERSION_NUM >= 502 && !defined(LW_LUAJIT)
#define EAGER_GC_TIMED 1
#else
#define EAGER_GC_TIMED 0
#endif

static void open_all(void) {
  lwt_open();
  st = lw_store_get(L);
  assert_non_null(st);
  lwt_do(L, prelude);
}

/* ------------------------------------------------------------------ */
/* store-failed-vals-valid: a thread cancelled while a __close raised
   failed with its error kept off its stack (r->vals).  It is dead and
   empty; a host that resets it and gives it new work starts a new life,
   which must read "pending", never the old life's "failed". */
static void test_failed_close_then_new_life(void **state) {
  (void)state;
  open_all();
#if LUA_VERSION_NUM >= 504
  {
    lua_State *co;
    int nres;
    lwt_do(L, "co = coroutine.create(function()\n"
              "  local x <close> = setmetatable({}, {__close = function() error('boom', 0) end})\n"
              "  coroutine.yield('old')\n"
              "end)");
    co = global_thread("co");
    assert_int_equal(LW_OK, lw_track(st, co));
    assert_int_equal(LUA_YIELD, lw_resume(st, co, L, 0, &nres));
    assert_int_equal(LW_OK, lw_cancel(st, co, L));
    assert_int_equal(LW_FAILED, lw_status(st, co));
    assert_int_equal(2, lw_result(st, co, L));
    assert_false(lua_toboolean(L, -2));
    assert_string_equal("boom", lua_tostring(L, -1));
    lua_pop(L, 2);
    assert_int_equal(0, lua_gettop(co)); /* dead and empty */
    /* reset behind luaweave's back, new work: a new life */
    assert_int_equal(LUA_OK, lw_co_reset(co, L));
    luaL_loadstring(co, "return 'new'");
    assert_int_equal(LW_PENDING, lw_status(st, co));
    assert_int_equal(1, lw_result(st, co, L));
    assert_true(lua_isnil(L, -1));
    lua_pop(L, 1);
    assert_int_equal(LUA_OK, lw_resume(st, co, L, 0, &nres));
    assert_int_equal(LW_RETURNED, lw_status(st, co));
    assert_int_equal(2, lw_result(st, co, L));
    assert_true(lua_toboolean(L, -2));
    assert_string_equal("new", lua_tostring(L, -1));
    lua_pop(L, 2);
    /* the same through the scheduler: cancel, the host pushes new work,
       task.spawn runs it (a "failed" thread would be refused as dead) */
    lwt_do(L, "t = task.spawn(function()\n"
              "  local x <close> = setmetatable({}, {__close = function() error('boom2', 0) end})\n"
              "  task.wait(1)\n"
              "end)\n"
              "task.cancel(t)");
    co = global_thread("t");
    assert_int_equal(LW_FAILED, lw_status(st, co));
    step(); /* reports the __close error, unawaited */
    assert_int_equal(1, nerr);
    assert_int_equal(0, lua_gettop(co));
    luaL_loadstring(co, "L('second life', ...) return 'two'");
    assert_int_equal(LW_PENDING, lw_status(st, co));
    lwt_do(L, "task.spawn(t, 'arg')");
    expect_log("second life,arg");
    assert_int_equal(1, nerr);
    assert_int_equal(LW_RETURNED, lw_status(st, co));
    /* coroutine.close of a failed thread answers its error again, and
       lw_reset forgets it: the next life reads nothing of it */
    lwt_do(L, "lw.install()\n"
              "c = coroutine.create(function()\n"
              "  local x <close> = setmetatable({}, {__close = function() error('boom3', 0) end})\n"
              "  coroutine.yield()\n"
              "end)\n"
              "lw.track(c); coroutine.resume(c)\n"
              "L(coroutine.close(c))\n"
              "L(coroutine.close(c))\n"
              "L(lw.status(c), lw.result(c))\n"
              "lw.uninstall()");
    expect_log("false,boom3 false,boom3 failed,false,boom3");
    co = global_thread("c");
    assert_int_equal(LUA_OK, lw_reset(st, co, L));
    assert_int_equal(LW_UNTRACKED, lw_status(st, co));
    luaL_loadstring(co, "return 'three'");
    assert_int_equal(LW_OK, lw_track(st, co));
    assert_int_equal(LW_PENDING, lw_status(st, co));
    assert_int_equal(LUA_OK, lw_resume(st, co, L, 0, &nres));
    assert_int_equal(2, lw_result(st, co, L));
    assert_string_equal("three", lua_tostring(L, -1));
    lua_pop(L, 2);
  }
#endif
  assert_int_equal(0, lw_store_check(st));
  lua_settop(L, 0);
  close_all();
}

/* ------------------------------------------------------------------ */
/* store-wide-max: more values than a record counts (8,191) go to the
   wide map; a resumption with 10,000 must succeed, and the result give
   them all back where the Lua version lets C hand out that many (5.1 and
   LuaJIT cap a C function's stack at 8,000 slots: there the result
   raises "too many results", and the status is still right). */

/* a function that returns or yields 1..n (a recursion, which 5.1 and
   LuaJIT allow beyond their C stack cap) */
static const char many_code[] =
  "local n, yield = ...\n"
  "local function f(i) if i > n then return end return i, f(i + 1) end\n"
  "if yield then coroutine.yield(f(1)) return 'after' end\n"
  "return f(1)\n";

static int result_protected(lua_State *l) {
  lua_State *co = lua_tothread(l, 1);
  return lw_result(lw_store_get(l), co, l);
}

static void check_many(lua_State *co, int n, int want_status) {
  int k;
  assert_int_equal(want_status, lw_status(st, co));
  assert_int_equal(0, lw_store_check(st));
  lua_pushcfunction(L, result_protected);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
#if LUA_VERSION_NUM >= 502 && !defined(LW_LUAJIT)
  assert_int_equal(LUA_OK, lua_pcall(L, 1, LUA_MULTRET, 0));
  assert_int_equal(n + 1, lua_gettop(L));
  assert_true(lua_toboolean(L, 1));
  for (k = 1; k <= n; k++)
    if (lua_tointeger(L, k + 1) != k) fail_msg("value %d is wrong", k);
#else
  (void)k;
  (void)n;
  assert_int_not_equal(0, lua_pcall(L, 1, LUA_MULTRET, 0));
  assert_non_null(strstr(lua_tostring(L, -1), "too many results"));
#endif
  lua_settop(L, 0);
}

static void test_many_values(void **state) {
  lua_State *co;
  int nres, n = 10000;
  (void)state;
  open_all();
  /* returned */
  co = lua_newthread(L);
  lua_pop(L, 1);
  lua_pushthread(co); /* keep co: in the registry */
  lua_setfield(co, LUA_REGISTRYINDEX, "many1");
  assert_int_equal(0, luaL_loadstring(co, many_code));
  lua_pushinteger(co, n);
  lua_pushboolean(co, 0);
  assert_int_equal(LW_OK, lw_track(st, co));
  assert_int_equal(LUA_OK, lw_resume(st, co, L, 2, &nres));
  assert_int_equal(n, nres);
  assert_int_equal(1, (int)st->wide.count);
  check_many(co, n, LW_RETURNED);
  /* yielded, then returned again, small */
  co = lua_newthread(L);
  lua_pop(L, 1);
  lua_pushthread(co);
  lua_setfield(co, LUA_REGISTRYINDEX, "many2");
  assert_int_equal(0, luaL_loadstring(co, many_code));
  lua_pushinteger(co, n);
  lua_pushboolean(co, 1);
  assert_int_equal(LW_OK, lw_track(st, co));
  assert_int_equal(LUA_YIELD, lw_resume(st, co, L, 2, &nres));
  assert_int_equal(n, nres);
  assert_int_equal(2, (int)st->wide.count);
  check_many(co, n, LW_YIELDED);
  assert_int_equal(LUA_OK, lw_resume(st, co, L, 0, &nres));
  assert_int_equal(1, nres);
  assert_int_equal(1, (int)st->wide.count); /* many1's */
  assert_int_equal(2, lw_result(st, co, L));
  assert_string_equal("after", lua_tostring(L, -1));
  lua_settop(L, 0);
  /* from Lua: lw.resume gives coroutine.resume's results */
#if LUA_VERSION_NUM >= 502 && !defined(LW_LUAJIT)
  lwt_do(L, "local up = table.unpack\n"
            "local co = lw.track(coroutine.create(function() local t = {}\n"
            "  for i = 1, 10000 do t[i] = i end return up(t) end))\n"
            "local r = table.pack(lw.resume(co))\n"
            "L(r.n, r[1], r[10001], lw.status(co))\n"
            "r = table.pack(lw.result(co))\n"
            "L(r.n, r[1], r[2], r[10001])");
  expect_log("10001,true,10000,returned 10001,true,1,10000");
#endif
  close_all();
}

/* ------------------------------------------------------------------ */
/* sched-ent-live-ticket: a task woken early from task.wait(0.2) (by
   task.spawn) that then waits 1.0 must not be resumed by the first
   wait's timer at 0.2. */
static void test_early_wake_then_longer_wait(void **state) {
  (void)state;
  open_all();
  lwt_do(L, "t = task.spawn(function()\n"
            "  L('a', select('#', task.wait(0.2)))\n"
            "  L('b', string.format('%.2f', task.wait(1.0)))\n"
            "  L('c', select('#', task.wait(0.5)))\n"
            "end)");
  expect_log("");
  lwt_do(L, "task.spawn(t)"); /* early: the 0.2 timer goes stale */
  expect_log("a,0");
  clk = 0.25;
  assert_int_equal(0, step()); /* the stale timer resumes nothing */
  expect_log("");
  clk = 0.999;
  assert_int_equal(0, step());
  expect_log("");
  clk = 1.0;
  assert_int_equal(1, step());
  expect_log("b,1.00");
  /* woken early again, from inside a task this time */
  lwt_do(L, "task.spawn(function() task.spawn(t) end)");
  expect_log("c,0");
  clk = 1.5;
  assert_int_equal(0, step());
  expect_log("");
  clk = 3;
  assert_int_equal(0, step());
  expect_log("");
  assert_int_equal(LW_RETURNED, lw_status(st, global_thread("t")));
  assert_int_equal(0, nerr);
  close_all();
}

/* ------------------------------------------------------------------ */
/* await-wake-recheck: x ends and its awaiter w is being woken; the wake
   allocates (its pack), the GC runs a finalizer, and the finalizer
   resumes w itself (task.spawn), which then waits on a timer.  The wake
   must see that w no longer awaits and drop its pack: queued as well, w
   would come back from its task.wait(5) at once with x's result. */
static void test_finalizer_wakes_waiter_during_wake(void **state) {
  (void)state;
  open_all();
#if EAGER_GC_TIMED
  lwt_do(L, "x = task.delay(1, function()\n"
            "  eager_gc()\n"
            "  local fin = gcobj(function() L('gc'); task.spawn(w, 'fin') end)\n"
            "  fin = nil\n"
            "  return 'x'\n"
            "end)\n"
            "w = task.spawn(function()\n"
            "  L('w1', task.await(x))\n"
            "  L('w2', string.format('%.2f', task.wait(5)))\n"
            "end)");
  expect_log("");
  clk = 1;
  step();
  lwt_do(L, "collectgarbage('setpause', 200) collectgarbage('setstepmul', 200)");
  expect_log("gc w1,fin");
  clk = 5.5;
  step();
  expect_log("");
  clk = 6;
  step();
  expect_log("w2,5.00");
  assert_int_equal(0, nerr);
#endif
  close_all();
}

/* ------------------------------------------------------------------ */
/* store-failed-status, store-cancel-new-work (5.4: threads can be reset):
   a thread that failed, or was cancelled after an error, and is then
   reset behind luaweave's back keeps its error object on its stack with
   status OK.  That is a new life: "pending", also when the host pushes
   new work on top, as tall as the old life's end was. */
static void test_failed_reset_behind_back(void **state) {
  (void)state;
  open_all();
#if LUA_VERSION_NUM >= 504
  {
    int nres, k;
    /* 0: failed; 1: failed, untracked, then cancelled (cancel keeps the
       error of an end it did not record); 2: the same, never tracked */
    for (k = 0; k < 3; k++) {
      lua_State *co = lwt_thread(L, "error('old', 0)");
      if (k < 2) assert_int_equal(LW_OK, lw_track(st, co));
      if (k < 2) assert_true(lw_resume(st, co, L, 0, &nres) > LUA_YIELD);
      else assert_true(lua_resume(co, L, 0, &nres) > LUA_YIELD);
      if (k == 0) assert_int_equal(LW_FAILED, lw_status(st, co));
      if (k == 1) assert_int_equal(LW_OK, lw_untrack(st, co));
      if (k > 0) {
        assert_int_equal(LW_OK, lw_cancel(st, co, L));
        assert_int_equal(LW_CANCELLED, lw_status(st, co));
      }
      /* the erroring frame's function and the error object */
      assert_int_equal(2, lua_gettop(co));
      lw_co_reset(co, L);                   /* behind luaweave's back */
      assert_int_equal(LUA_OK, lua_status(co));
      assert_int_equal(1, lua_gettop(co)); /* the error object, kept */
      /* new work on top of it, as tall as the old life's end was; no
         look at the record in between */
      luaL_loadstring(co, "return 'new'");
      assert_int_equal(2, lua_gettop(co));
      assert_int_equal(LW_PENDING, lw_status(st, co));
      assert_int_equal(1, lw_result(st, co, L)); /* nothing yet */
      assert_true(lua_isnil(L, -1));
      lua_pop(L, 1);
      lua_settop(co, 0);
      luaL_loadstring(co, "return 'new'");
      assert_int_equal(LUA_OK, lw_resume(st, co, L, 0, &nres));
      assert_int_equal(2, lw_result(st, co, L));
      assert_string_equal("new", lua_tostring(L, -1));
      lua_pop(L, 2);
      assert_int_equal(LW_OK, lw_untrack(st, co));
      assert_int_equal(0, lw_store_check(st));
      lua_pop(L, 1);
    }
  }
#endif
  close_all();
}

/* ------------------------------------------------------------------ */
/* store-validate-clear: a returned thread given new work behind
   luaweave's back has a stale record; dropping it must drop the values
   it kept too (here: while the thread lives, so not by its death). */
static void test_stale_return_drops_values(void **state) {
  lua_State *co;
  int nres, n;
  (void)state;
  open_all();
  for (n = 1; n <= 2; n++) { /* one value as is, two packed */
    lwt_do(L, "weak = setmetatable({}, {__mode = 'v'})");
    co = lwt_thread(L, "local v = {} weak[1] = v return v, 'two'");
    lua_setglobal(L, "keep"); /* co stays alive */
    if (n == 1) {
      lua_settop(co, 0);
      luaL_loadstring(co, "local v = {} weak[1] = v return v");
    }
    assert_int_equal(LW_OK, lw_track(st, co));
    assert_int_equal(LUA_OK, lw_resume(st, co, L, 0, &nres));
    assert_int_equal(n, nres);
    assert_int_equal(LW_RETURNED, lw_status(st, co));
    luaL_loadstring(co, "return 'new'"); /* behind luaweave's back */
    assert_int_equal(LW_PENDING, lw_status(st, co));
    lwt_do(L, "collectgarbage() collectgarbage() L(weak[1] == nil)");
    expect_log("true");
    assert_int_equal(LUA_OK, lw_resume(st, co, L, 0, &nres));
    assert_int_equal(2, lw_result(st, co, L));
    assert_string_equal("new", lua_tostring(L, -1));
    lua_settop(L, 0);
    assert_int_equal(0, lw_store_check(st));
  }
  close_all();
}

/* ------------------------------------------------------------------ */
/* store-return-untracked: a task returns two values; filing them
   allocates, the GC runs a finalizer, and the finalizer untracks the
   task.  The record stays (the scheduler still runs the task) with
   status 0: the return must not be recorded into it. */
static void test_untracked_while_filing(void **state) {
  (void)state;
  open_all();
  lwt_do(L, "t = task.spawn(function()\n"
            "  local me = coroutine.running()\n"
            "  task.wait(1)\n"
            "  eager_gc()\n"
            "  local fin = gcobj(function() L('gc', lw.untrack(me)) end)\n"
            "  fin = nil\n"
            "  return 'a', 'b'\n"
            "end)");
  clk = 1;
  step();
  lwt_do(L, "collectgarbage('setpause', 200) collectgarbage('setstepmul', 200)\n"
            "L(lw.status(t))");
  expect_log("gc untracked");
  assert_int_equal(0, lw_store_count(st));
  assert_int_equal(0, lw_store_check(st));
  assert_int_equal(0, nerr);
  close_all();
}

/* ------------------------------------------------------------------ */
/* store-ended-refused: Lua refuses a resumption nested too deep ("C
   stack overflow"); the thread never ran, so its recorded "failure" is
   stale at once and the end is not announced: the scheduler fails the
   task with that message instead, one end.  The onend callback hears
   each task end once, with an end status.  (LuaJIT has no C-call limit:
   the nesting would stop at the C stack.) */
#ifndef LW_LUAJIT
static int nends, nbadends;

static void count_ends(void *ud, lua_State *co, int status) {
  (void)ud;
  (void)co;
  nends++;
  if (status != LW_RETURNED && status != LW_FAILED && status != LW_CANCELLED)
    nbadends++;
}
#endif

static void test_refused_ends_once(void **state) {
  (void)state;
  open_all();
#ifndef LW_LUAJIT
  nends = nbadends = 0;
  lw_sched_onend(S, count_ends, NULL);
  /* a message handler runs past the C-call limit (Lua leaves room to
     handle the overflow): a spawn from there is refused */
  lwt_do(L, "t = task.spawn(function()\n"
            "  local function r() string.gsub('x', '.', r) end\n"
            "  L('xpcall', xpcall(r, function(e)\n"
            "    g = task.spawn(function() L('g ran') end)\n"
            "    return 'handled'\n"
            "  end))\n"
            "end)\n"
            "L(lw.status(g), lw.result(g))\n"
            "L(lw.status(t))");
  expect_log("xpcall,false,handled failed,false,C stack overflow returned");
  assert_int_equal(1, nerr); /* g's failure, reported */
  assert_non_null(strstr(lasterr, "C stack overflow"));
  assert_int_equal(0, nbadends);
  assert_int_equal(2, nends); /* t and g, once each */
  lw_sched_onend(S, NULL, NULL);
#endif
  close_all();
}

/* ------------------------------------------------------------------ */
/* map-compact-empty: a map emptied and compacted gives its array back */
static void *plain_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return realloc(p, nsize);
}

static void test_empty_map_freed(void **state) {
  lw_map m;
  lw_rec *r;
  static char keys[300 * 16];
  int i;
  (void)state;
  lw_map_init(&m, plain_alloc, NULL);
  for (i = 0; i < 300; i++)
    assert_int_equal(1, lw_map_insert(&m, keys + 16 * i, &r));
  for (i = 0; i < 300; i++) assert_int_equal(1, lw_map_remove(&m, keys + 16 * i));
  lw_map_compact(&m);
  assert_int_equal(0, lw_map_check(&m));
  assert_int_equal(0, (int)lw_map_capacity(&m));
  assert_null(m.slots);
  lw_map_free(&m);
}

/* ------------------------------------------------------------------ */
/* sched-fresh-check, sched-fresh-function: a deferred start whose
   thread was run directly meanwhile (coroutine.resume, or a raw
   lua_resume from C that leaves its results on the thread's stack) had
   its start: the deferred entry must not run it a second time, nor call
   what the first run left on its stack. */
static int raw_resume(lua_State *co, lua_State *from, int nargs) {
  int n;
#if LUA_VERSION_NUM >= 504
  return lua_resume(co, from, nargs, &n);
#elif LUA_VERSION_NUM >= 502
  (void)n;
  return lua_resume(co, from, nargs);
#else
  (void)n;
  (void)from;
  return lua_resume(co, nargs);
#endif
}

static void test_deferred_start_run_directly(void **state) {
  lua_State *co;
  (void)state;
  open_all();
  /* with arguments (packed) and without (K_START), resumed by
     coroutine.resume before their turn */
  lwt_do(L, "d = task.defer(function(...) L('d', ...); L('d2', coroutine.yield()) end, 'start')\n"
            "e = task.defer(function(...) L('e', ...); L('e2', coroutine.yield()) end)\n"
            "coroutine.resume(d, 'early') coroutine.resume(e, 'early')");
  expect_log("d,early e,early");
  assert_int_equal(0, step()); /* the starts, stale, run nothing */
  expect_log("");
  lwt_do(L, "task.spawn(d, 'again') task.spawn(e, 'again')");
  expect_log("d2,again e2,again");
  /* run to its end by a raw lua_resume from C: its results stay on its
     stack, where the start's function was */
  lwt_do(L, "f = task.defer(function() L('f') return 'not a function' end)");
  co = global_thread("f");
  assert_int_equal(LUA_OK, raw_resume(co, L, 0));
  expect_log("f");
  assert_int_equal(1, lua_gettop(co));
  assert_int_equal(0, step());
  expect_log("");
  assert_int_equal(0, nerr); /* nothing tried to call the string */
  close_all();
}

/* ------------------------------------------------------------------ */
/* sched-spawn-start-args: a host's thread holding a function and its
   arguments, not started yet: task.spawn(co, ...) starts it with the
   spawn's arguments, as a first coroutine.resume would. */
static void test_spawn_drops_host_start_args(void **state) {
  lua_State *co;
  (void)state;
  open_all();
  co = lua_newthread(L);
  lua_setglobal(L, "h");
  luaL_loadstring(co, "L('h', ...)");
  lua_pushliteral(co, "host1");
  lua_pushliteral(co, "host2");
  lwt_do(L, "task.spawn(h, 'spawned')");
  expect_log("h,spawned");
  assert_int_equal(0, nerr);
  close_all();
}

/* ------------------------------------------------------------------ */
/* sched-plain-yield: a task that yields by coroutine.yield is no task
   any more (someone else resumes it, or nobody): run to its end by a
   raw resume, its thread can be recycled (5.4). */
static void test_plain_yield_ends_task(void **state) {
  (void)state;
  open_all();
  lwt_do(L, "g = task.spawn(function() coroutine.yield() return 1 end)\n"
            "L(coroutine.resume(g))");
  expect_log("true,1");
#if LUA_VERSION_NUM >= 504
  assert_int_equal(LW_OK, lw_sched_recycle(S, global_thread("g")));
#else
  assert_int_equal(LW_ENOTSUP, lw_sched_recycle(S, global_thread("g")));
#endif
  close_all();
}

/* ------------------------------------------------------------------ */
/* await-recheck-over: registering an await allocates (x's waiter list);
   the GC runs a finalizer there that cancels x, whose end then finds
   nobody on its list.  The awaiter must get x's end at once, not wait
   for an end that has passed (a deadlock). */
static void test_target_ends_while_registering(void **state) {
  (void)state;
  open_all();
#if EAGER_GC_TIMED
  lwt_do(L, "x = task.spawn(function() task.wait(10) end)\n"
            "w = task.spawn(function()\n"
            "  eager_gc()\n"
            "  local fin = gcobj(function() L('gc'); task.cancel(x) end)\n"
            "  fin = nil\n"
            "  L('w', task.await(x))\n"
            "end)\n"
            "collectgarbage('setpause', 200) collectgarbage('setstepmul', 200)");
  expect_log("gc w,false,cancelled");
  assert_int_equal(LW_RETURNED, lw_status(st, global_thread("w")));
  assert_int_equal(0, (int)lw_sched_waiting(S));
  assert_int_equal(0, (int)lw_sched_deadlocked(S));
#endif
  close_all();
}

/* ------------------------------------------------------------------ */
/* end-main-report: lw.run raises its main task's error; it is not
   reported to the error callback as well (the CLI would print it
   twice) */
static void test_main_error_not_reported(void **state) {
  (void)state;
  open_all();
  lwt_do(L, "ok, err = pcall(lw.run, function() task.wait() error('main failed', 0) end)\n"
            "L(ok, err)");
  expect_log("false,main failed");
  assert_int_equal(0, nerr);
  lwt_do(L, "ok, err = pcall(lw.run, function() error('at once', 0) end)\n"
            "L(ok, err)");
  expect_log("false,at once");
  assert_int_equal(0, nerr);
  close_all();
}

/* ------------------------------------------------------------------ */
/* async-stale: a task suspended in an async operation is woken early
   (task.spawn) and moves on to a timer; the operation's late completion
   is dropped: the task is not resumed, and the host's push function,
   whose values nobody would get, is not called. */
static lw_async *pending_op;
static int npush;

static int c_async(lua_State *l) {
  pending_op = lw_async_begin(l);
  return lw_async_yield(l, pending_op);
}

static int push_one(lua_State *T, void *ud) {
  (void)ud;
  npush++;
  lua_pushliteral(T, "late");
  return 1;
}

static void test_late_async_completion_dropped(void **state) {
  (void)state;
  open_all();
  lw_async_wrap(L, c_async);
  lua_setglobal(L, "aop");
  lwt_do(L, "t = task.spawn(function()\n"
            "  L('a', aop())\n"
            "  L('w', string.format('%.2f', task.wait(5)))\n"
            "end)");
  assert_non_null(pending_op);
  assert_int_equal(1, (int)lw_sched_async(S));
  lwt_do(L, "task.spawn(t, 'early')");
  expect_log("a,early");
  npush = 0;
  assert_int_equal(LW_OK, lw_async_complete(pending_op, push_one, NULL));
  pending_op = NULL;
  assert_int_equal(0, npush);
  assert_int_equal(0, (int)lw_sched_async(S));
  assert_int_equal(0, step());
  expect_log("");
  clk = 5;
  assert_int_equal(1, step());
  expect_log("w,5.00");
  assert_int_equal(0, nerr);
  close_all();
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_failed_close_then_new_life),
    cmocka_unit_test(test_many_values),
    cmocka_unit_test(test_early_wake_then_longer_wait),
    cmocka_unit_test(test_finalizer_wakes_waiter_during_wake),
    cmocka_unit_test(test_failed_reset_behind_back),
    cmocka_unit_test(test_stale_return_drops_values),
    cmocka_unit_test(test_untracked_while_filing),
    cmocka_unit_test(test_refused_ends_once),
    cmocka_unit_test(test_empty_map_freed),
    cmocka_unit_test(test_deferred_start_run_directly),
    cmocka_unit_test(test_spawn_drops_host_start_args),
    cmocka_unit_test(test_plain_yield_ends_task),
    cmocka_unit_test(test_target_ends_while_registering),
    cmocka_unit_test(test_main_error_not_reported),
    cmocka_unit_test(test_late_async_completion_dropped),
  };
  return lwt_main("mutants", tests, argc, argv);
}
