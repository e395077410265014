/*
** Allocation-failure sweeps of every public entry the other sweeps leave
** out: the scheduler from C and from Lua, async operations, both libuv
** drivers, luaweave.fs, lw_preload, the rest of the store, and the CLI's
** main paths.  Each operation runs again and again on a fresh state, the
** 1st, 2nd, ... Nth allocation failing, until a run sees no refusal.
** Every run must end in success, LW_EMEM or a clean "not enough memory",
** with the store and the scheduler consistent and nothing leaked.
**
** Lua memory comes from the counting allocator; luaweave's own (the
** drivers, luaweave.fs) comes from malloc, which this binary wraps
** (-Wl,--wrap, see the Makefile) so that it fails on the same countdown.
** libuv's own allocations are left alone: libuv aborts on some of them
** (uv_signal_init), and that is libuv's contract, not ours.
*/
/* the counting allocator of lwtest.h must not go through the wrapper */
#define realloc __real_realloc
#define free __real_free
#include "lwtest.h"
#undef realloc
#undef free
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <uv.h>

static lwt_heap heap;
static long mblocks; /* live blocks of the wrapped malloc */

/* one more allocation: 1 if it must fail */
static int refuse(void) {
  if (heap.fail_in <= 0) return 0;
  heap.allocs++;
  if (--heap.fail_in == 0) {
    heap.failures++;
    return 1;
  }
  return 0;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

void *__wrap_malloc(size_t n) {
  void *p;
  if (refuse()) return NULL;
  if ((p = __real_malloc(n)) != NULL) mblocks++;
  return p;
}
void *__wrap_calloc(size_t n, size_t m) {
  void *p;
  if (refuse()) return NULL;
  if ((p = __real_calloc(n, m)) != NULL) mblocks++;
  return p;
}
void *__wrap_realloc(void *p, size_t n) {
  void *q;
  if (n > 0 && refuse()) return NULL;
  q = __real_realloc(p, n);
  if (p == NULL && q != NULL) mblocks++;
  if (p != NULL && n == 0) mblocks--;
  return q;
}
void __wrap_free(void *p) {
  if (p != NULL) mblocks--;
  __real_free(p);
}


/* ------------------------------------------------------------------ */

static double clk;
static double fake_clock(void *ud) { return *(double *)ud; }
static void quiet(void *ud, lua_State *co, const char *msg) {
  (void)ud; (void)co; (void)msg;
}

static int is_memerr(lua_State *L, int st) {
  return st == LUA_ERRMEM ||
         (lua_isstring(L, -1) && strstr(lua_tostring(L, -1), "not enough memory"));
}

/* run f protected: LUA_OK, or a clean memory error (checked) */
static int run_protected(lua_State *L, lua_CFunction f, void *ud, long n, const char *what) {
  int st = lw_cpcall(L, f, ud);
  if (st != LUA_OK) {
    if (!is_memerr(L, st))
      fail_msg("%s, failing allocation %ld: status %d, %s", what, n, st,
               lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
    lua_pop(L, 1);
  }
  return st;
}

/* step (fake clock) until nothing is left to run: each step succeeds or
   fails cleanly, and the scheduler stays consistent */
static void drain(lw_sched *S) {
  int i;
  for (i = 0; i < 64; i++) {
    double next = lw_sched_next(S);
    int k;
    if (next < 0) break;
    clk += next;
    k = lw_sched_step(S);
    if (k < 0 && k != LW_EMEM && k != LW_EEXITED)
      fail_msg("lw_sched_step: %s", lw_strerror(k));
    assert_int_equal(0, lw_sched_check_invariants(S));
    if (k == LW_EEXITED) break;
  }
}

/* ---- the operations ---------------------------------------------- */

typedef struct ctx { lw_sched *S; lw_store *s; int rc; lw_handle h; } ctx;

static const char script[] =
  "local task = require 'luaweave.task'\n"
  "local lw = require 'luaweave'\n"
  "local a = task.spawn(function(x) task.wait(0) return x, {x} end, 1)\n"
  "local b = task.defer(function() error({code = 1}) end)\n"
  "local c = task.delay(0.5, function() return 'late' end)\n"
  "task.spawn(function()\n"
  "  local ok, v = task.await(a)\n"
  "  local t, ok2 = task.any(b, c)\n"
  "  out = {ok, v, t, ok2}\n"
  "end)\n"
  "local z = task.spawn(function() task.wait(10) end)\n"
  "task.cancel(z)\n"
  "local co = coroutine.create(function(...) task.wait(0.1) return ... end)\n"
  "task.spawn(co, 1, 2, 3)\n"
  "if coroutine.status(co) ~= 'dead' then task.defer(co, 'early') end\n"
  "task.spawn(function() error('boom') end)\n"
  "task.spawn(function() local t = task.spawn(function() task.wait(1) end)\n"
  "  task.cancel(coroutine.running()); task.wait(0) end)\n"
  "local p = coroutine.wrap(function() coroutine.yield(lw.count()) end)\n"
  "p()\n";

/* the Lua surface: require, spawn/defer/delay/wait/await/any/cancel */
static int op_lua(lua_State *L) {
  if (luaL_loadstring(L, script) != 0) return lua_error(L);
  lua_call(L, 0, 0);
  return 0;
}

static int f_return(lua_State *L) { return lua_gettop(L); }

/* the C surface: spawn/defer/delay of functions and threads, cancel */
static int op_c(lua_State *L) {
  ctx *c = (ctx *)lua_touserdata(L, 1);
  lua_State *co;
  luaL_checkstack(L, 8, NULL);
  lua_pushcfunction(L, f_return);
  lua_pushinteger(L, 1);
  if ((c->rc = lw_sched_spawn(c->S, L, 1)) != LW_OK) return 0;
  if (luaL_loadstring(L, "local task = require 'luaweave.task' task.wait(0.2) return 7") != 0)
    return lua_error(L);
  if ((c->rc = lw_sched_defer(c->S, L, 0)) != LW_OK) return 0;
  lua_pushcfunction(L, f_return);
  lua_pushliteral(L, "x");
  lua_pushliteral(L, "y");
  if ((c->rc = lw_sched_delay(c->S, L, 0.3, 2)) != LW_OK) return 0;
  co = lua_newthread(L);
  lua_pushcfunction(L, f_return); /* on L: an error on co is unprotected */
  lua_xmove(L, co, 1);
  lua_pushinteger(L, 5);
  if ((c->rc = lw_sched_defer(c->S, L, 1)) != LW_OK) return 0;
  return 0;
}

/* after op_c, outside any step: cancel what is left, recycle the dead */
static void op_c_after(lw_sched *S, lua_State *L) {
  int i, top = lua_gettop(L);
  for (i = 1; i <= top; i++) {
    lua_State *co = lua_tothread(L, i);
    int e;
    if (co == NULL) continue;
    e = lw_sched_cancel(S, co);
    assert_true(e == LW_OK || e == LW_EMEM);
  }
  drain(S);
  for (i = 1; i <= top; i++) {
    lua_State *co = lua_tothread(L, i);
    int e;
    if (co == NULL) continue;
    e = lw_sched_recycle(S, co);
    assert_true(e == LW_OK || e == LW_EMEM || e == LW_ENOTSUP ||
                e == LW_ESTATE || e == LW_EBUSY);
  }
}

/* async: a C function suspends its task; the host completes it */
static lw_async *pending[6];
static int npending;

static int c_later(lua_State *L) {
  lw_async *op = lw_async_begin(L);
  pending[npending++] = op;
  return lw_async_yield(L, op);
}

static int push_vals(lua_State *L, void *ud) {
  (void)ud;
  lua_pushliteral(L, "done");
  lua_createtable(L, 4, 0);
  return 2;
}

static int op_async(lua_State *L) {
  lw_async_wrap(L, c_later);
  lua_setglobal(L, "later");
  if (luaL_dostring(L,
        "local task = require 'luaweave.task'\n"
        "for i = 1, 4 do task.spawn(function() local ok, v = pcall(later) r = v end) end\n"
        "local t = task.spawn(function() later() end)\n"
        "task.cancel(t)\n") != 0)
    return lua_error(L);
  return 0;
}

static void op_async_after(lw_sched *S) {
  lua_State *T = lw_sched_state(S);
  int i, e;
  for (i = 0; i < npending; i++) {
    if (i == 0) {
      e = lw_async_complete(pending[i], push_vals, NULL);
    } else if (i == 2) {
      e = lw_async_drop(pending[i]); /* the task fails: "dropped" */
    } else if (i == 1 && lua_checkstack(T, 1)) {
      lua_pushinteger(T, 9);
      e = lw_async_resolve(pending[i], 1);
    } else if (lua_checkstack(T, 1)) {
      lua_pushinteger(T, 3); /* a number: pushing it cannot allocate */
      e = lw_async_reject(pending[i]);
    } else {
      e = lw_async_complete(pending[i], push_vals, NULL);
    }
    if (e != LW_OK && e != LW_EMEM) fail_msg("async completion %d: %s", i, lw_strerror(e));
  }
  npending = 0;
}

/* the store entries the store's own sweep leaves out */
static int op_store(lua_State *L) {
  ctx *c = (ctx *)lua_touserdata(L, 1);
  lua_State *co;
  lw_handle h;
  int n;
  luaL_checkstack(L, 8, NULL);
  co = lua_newthread(L);
  if (luaL_loadstring(co, "coroutine.yield(1) return 2") != 0) {
    lua_xmove(co, L, 1);
    return lua_error(L);
  }
  if ((c->rc = lw_track(c->s, co)) != LW_OK) return 0;
  if ((c->rc = lw_resume(c->s, co, L, 0, &n)) < 0) return 0;
  if ((c->rc = lw_cancel(c->s, co, L)) != LW_OK) return 0;
  c->rc = lw_reset(c->s, co, L);
  if (c->rc < 0 && c->rc != LW_ENOTSUP) return 0;
  c->rc = 0;
  co = lua_newthread(L);
  if (luaL_loadstring(co, "return 1, 2") != 0) {
    lua_xmove(co, L, 1);
    return lua_error(L);
  }
  if ((h = lw_hold(c->s, L, -1)) < 0) { c->rc = h; return 0; }
  if ((c->rc = lw_resume(c->s, co, L, 0, &n)) < 0) return 0;
  if ((c->rc = lw_handle_take(c->s, L, h)) < 0) return 0;
  c->h = lw_hold(c->s, L, -1 - c->rc); /* released outside, unprotected */
  if (c->h < 0) c->rc = c->h;
  return 0;
}

/* luaweave.fs and timers on luaweave's own libuv loop */
static char fspath[64];

static int op_fs(lua_State *L) {
  lua_pushstring(L, fspath);
  lua_setglobal(L, "path");
  if (luaL_dostring(L,
        "local task = require 'luaweave.task'\n"
        "local fs = require 'luaweave'.fs\n"
        "task.spawn(function()\n"
        "  assert(fs.writefile(path, string.rep('x', 100)) or true)\n"
        "  local s = fs.readfile(path)\n"
        "  task.wait(0.001)\n"
        "  r = s and #s\n"
        "end)\n") != 0)
    return lua_error(L);
  return 0;
}

static int op_preload(lua_State *L) {
  lw_preload(L);
  return 0;
}

/* ---- the sweep ----------------------------------------------------- */

enum { OP_LUA, OP_C, OP_ASYNC, OP_STORE, OP_RUN, OP_ATTACH, OP_PRELOAD,
       OP_OPEN, NOPS };
static const char *const opname[] = {"Lua surface", "C surface", "async",
  "store", "own loop and fs", "attached loop", "lw_preload", "lw_sched_open"};

static long stride(void) {
  const char *e = getenv("LWT_SWEEP_STRIDE"); /* valgrind: every Nth */
  return e && atol(e) > 0 ? atol(e) : 1;
}

/* one run of op with the nth allocation failing; 1 if nothing failed */
static int run_once(int op, long n) {
  lua_State *L;
  lw_sched *S = NULL;
  ctx c;
  uv_loop_t host;
  int st = LUA_OK, attached = 0;
  L = lwt_state(&heap);
  if (op == OP_PRELOAD) { /* a state without luaweave in it yet */
    lua_close(L);
    memset(&heap, 0, sizeof heap);
    L = lua_newstate(lwt_alloc, &heap);
    lua_atpanic(L, lwt_panic);
    luaL_openlibs(L);
  }
  if (op != OP_OPEN && op != OP_PRELOAD) {
    S = lw_sched_open(L);
    assert_non_null(S);
    clk = 0;
    if (op != OP_RUN) lw_sched_setclock(S, fake_clock, &clk);
    lw_sched_onerror(S, quiet, NULL);
  }
  if (op == OP_ATTACH) assert_int_equal(0, uv_loop_init(&host));
  c.S = S;
  c.s = lw_store_get(L);
  c.rc = 0;
  c.h = 0;
  npending = 0;
  heap.failures = 0;
  heap.fail_in = n;
  switch (op) {
    case OP_LUA: st = run_protected(L, op_lua, NULL, n, opname[op]); drain(S); break;
    case OP_C:
      st = run_protected(L, op_c, &c, n, opname[op]);
      assert_true(c.rc == LW_OK || c.rc == LW_EMEM);
      drain(S);
      op_c_after(S, L);
      break;
    case OP_ASYNC:
      st = run_protected(L, op_async, NULL, n, opname[op]);
      op_async_after(S);
      drain(S);
      break;
    case OP_STORE:
      st = run_protected(L, op_store, &c, n, opname[op]);
      if (c.rc < 0 && c.rc != LW_EMEM) fail_msg("store at %ld: %s", n, lw_strerror(c.rc));
      if (c.h > 0) assert_int_equal(LW_OK, lw_release(c.s, L, c.h)); /* never raises */
      break;
    case OP_RUN: {
      int e;
      st = run_protected(L, op_fs, NULL, n, opname[op]);
      e = lw_sched_run(S);
      assert_true(e == LW_OK || e == LW_EMEM || e == LW_EDEADLOCK);
      break;
    }
    case OP_ATTACH: {
      int e = lw_sched_attach(S, &host);
      assert_true(e == LW_OK || e == LW_EMEM);
      attached = e == LW_OK;
      st = run_protected(L, op_lua, NULL, n, opname[op]);
      if (attached) {
        clk = 1e6; /* every timer due: the host loop runs them all */
        uv_run(&host, UV_RUN_NOWAIT);
        uv_run(&host, UV_RUN_NOWAIT);
      }
      break;
    }
    case OP_PRELOAD:
      st = run_protected(L, op_preload, NULL, n, opname[op]);
      break;
    case OP_OPEN:
      S = lw_sched_open(L);
      if (S == NULL) assert_null(lw_sched_get(L));
      break;
  }
  heap.fail_in = 0;
  if (heap.failures == 0 && st == LUA_OK) { /* the full run did its work */
    if (op == OP_LUA || op == OP_ATTACH) {
      lwt_do(L, "assert(out and out[1] == true and out[2] == 1 and out[4] == false,"
                " 'the script did not finish')");
    } else if (op == OP_RUN) {
      lwt_do(L, "assert(r == 100, 'luaweave.fs did not read the file back')");
    }
  }
  if (op == OP_OPEN && S == NULL) assert_non_null(lw_sched_open(L)); /* retry */
  if (lw_store_get(L)) assert_int_equal(0, lw_store_check(lw_store_get(L)));
  if (lw_sched_get(L)) assert_int_equal(0, lw_sched_check_invariants(lw_sched_get(L)));
  if (attached) assert_int_equal(LW_OK, lw_sched_detach(S));
  lua_settop(L, 0);
  lua_close(L);
  if (op == OP_ATTACH) {
    uv_run(&host, UV_RUN_DEFAULT); /* the driver's handles close */
    assert_int_equal(0, uv_loop_close(&host));
  }
  assert_int_equal(0, heap.blocks);
  assert_int_equal(0, mblocks);
  return heap.failures == 0;
}

static void sweep(int op) {
  long n, step = stride(), runs = 0;
  int done = 0;
  for (n = 1; !done && n < 20000; n += step, runs++) {
    if (getenv("LWT_VERBOSE")) fprintf(stderr, "%s: fail at %ld\n", opname[op], n);
    done = run_once(op, n);
  }
  if (!done) fail_msg("%s: still failing after %ld allocation points", opname[op], n);
  if (getenv("LWT_VERBOSE")) fprintf(stderr, "%s: %ld points\n", opname[op], runs);
}

static void test_lua(void **st) { (void)st; sweep(OP_LUA); }
static void test_c(void **st) { (void)st; sweep(OP_C); }
static void test_async(void **st) { (void)st; sweep(OP_ASYNC); }
static void test_store(void **st) { (void)st; sweep(OP_STORE); }
static void test_own_loop_fs(void **st) {
  (void)st;
  snprintf(fspath, sizeof fspath, "/tmp/lwoom.%ld", (long)getpid());
  sweep(OP_RUN);
  remove(fspath);
}
static void test_attach(void **st) { (void)st; sweep(OP_ATTACH); }
static void test_preload(void **st) { (void)st; sweep(OP_PRELOAD); }
static void test_sched_open(void **st) { (void)st; sweep(OP_OPEN); }

/* ---- the CLI: its main, on the failing allocator ------------------- */

#define luaL_newstate() lua_newstate(lwt_alloc, &heap)
#define main(c, v) cli_main(c, v) /* not S->main */
/* stdlib.h came in under the renames above: the prompt's file needs
   these two as the wrapped names */
void *realloc(void *p, size_t n);
void free(void *p);
#include "../src/lw_cli.c"
#include "../src/lw_cli_run.c"
#include "../src/lw_cli_repl.c"
#undef main

/* the first allocation point to fail: LuaJIT's lua_newstate crashes when
   its own first allocations fail (its bug, not ours), so on LuaJIT the
   sweep starts after them */
static long first_point(void) {
#ifdef LW_LUAJIT
  lua_State *L;
  long k;
  memset(&heap, 0, sizeof heap);
  L = lua_newstate(lwt_alloc, &heap);
  k = heap.allocs;
  lua_close(L);
  return k + 1;
#else
  return 1;
#endif
}

/* Lua 5.1's io library, when an allocation fails while it opens, can
   leave io.stdout with the closing finalizer of an ordinary file (the
   environment that marks a standard file is set after it is made): the
   state's lua_close then fcloses the process's stdout, which is Lua's
   doing, not the CLI's.  The sweep puts a fresh stdout back on fd 1, for
   the test's own report. */
static int out_fd = -1;

static void keep_stdout(void) {
  fflush(stdout);
  if (out_fd < 0) out_fd = dup(1);
}

static void restore_stdout(void) {
  FILE *f;
  if (fcntl(1, F_GETFD) != -1) return;
  if (out_fd < 0 || dup2(out_fd, 1) != 1 || (f = fdopen(1, "w")) == NULL) {
    perror("test_oom: stdout");
    abort();
  }
  stdout = f; /* glibc: stdout may be assigned */
}

static void cli_sweep(const char *what, char **argv, int argc, int want) {
  long n, step = stride();
  int done = 0, saved = dup(2), devnull = open("/dev/null", O_WRONLY);
  for (n = first_point(); !done && n < 20000; n += step) {
    int rc;
    memset(&heap, 0, sizeof heap);
    heap.fail_in = n;
    if (!getenv("LWT_STDERR")) dup2(devnull, 2);
    keep_stdout();
    rc = cli_main(argc, argv);
    restore_stdout();
    dup2(saved, 2);
    if (rc != 0 && rc != 1) fail_msg("CLI %s: exit %d at %ld", what, rc, n);
    assert_int_equal(0, heap.blocks);
    assert_int_equal(0, mblocks);
    done = heap.failures == 0;
    if (done) assert_int_equal(want, rc);
  }
  close(devnull);
  close(saved);
  if (!done) fail_msg("CLI %s: still failing at %ld", what, n);
}

static void test_cli(void **st) {
  static char a0[] = "luaweave", e[] = "-e";
  static char ok[] =
    "local t = task.spawn(function() task.wait(0.001) return 1 end)\n"
    "task.defer(function() assert(task.await(t)) end)";
  static char err[] = "task.spawn(function() task.wait(0) error({}) end)";
  static char dead[] = "task.await(coroutine.create(function() end))"
                       " task.await(task.spawn(function() coroutine.yield() end))";
  char *v1[] = {a0, e, ok, NULL}, *v2[] = {a0, e, err, NULL};
  char *v3[] = {a0, e, dead, NULL};
  (void)st;
  cli_sweep("tasks", v1, 3, 0);
  cli_sweep("task error", v2, 3, 1);
  cli_sweep("deadlock", v3, 3, 1);
  /* task.exit(3): 3, or 1 when memory ran out first */
  {
    static char ex[] = "task.defer(function() task.exit(3) end) task.wait(1)";
    char *v4[] = {a0, e, ex, NULL};
    long n;
    int done = 0, saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    for (n = first_point(); !done && n < 20000; n += stride()) {
      int rc;
      memset(&heap, 0, sizeof heap);
      heap.fail_in = n;
      if (!getenv("LWT_STDERR")) dup2(devnull, 2);
      keep_stdout();
      rc = cli_main(3, v4);
      restore_stdout();
      dup2(saved, 2);
      if (rc != 3 && rc != 1) fail_msg("CLI exit: %d at %ld", rc, n);
      assert_int_equal(0, heap.blocks);
      done = heap.failures == 0;
      if (done) assert_int_equal(3, rc);
    }
    close(devnull);
    close(saved);
    assert_true(done);
  }
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sched_open),
    cmocka_unit_test(test_preload),
    cmocka_unit_test(test_store),
    cmocka_unit_test(test_lua),
    cmocka_unit_test(test_c),
    cmocka_unit_test(test_async),
    cmocka_unit_test(test_own_loop_fs),
    cmocka_unit_test(test_attach),
    cmocka_unit_test(test_cli),
  };
  return lwt_main("oom", tests, argc, argv);
}
