/*
** test_life.c — lifetimes at the seams (issue 13, items 2, 3, 7, 9):
** the error-code table, handles with generations, async tokens that are
** never a use-after-free (completed twice, after lua_close, dropped),
** and store/scheduler pointers cached by a host and used from a
** finalizer while lua_close runs.  Run under ASan (make sanitize) and
** valgrind (make valgrind): most of these are memory checks.
*/
#include "lwtest.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>
#include <uv.h>

/* ------------------------------------------------------------------ */
/* item 9: one table of error codes                                    */

typedef struct errrow { const char *name; int value; const char *msg; } errrow;

static const errrow errtab[] = {
#define XX(name, value, msg) {"LW_" #name, LW_##name, msg},
  LW_ERRNO_MAP(XX)
#undef XX
};
#define NERR (sizeof errtab / sizeof errtab[0])

static void test_error_table(void **state) {
  size_t i, j;
  int lowest = 0;
  (void)state;
  assert_true(NERR >= 10);
  for (i = 0; i < NERR; i++) {
    const errrow *e = &errtab[i];
    assert_true(e->value < 0);
    for (j = 0; j < i; j++) assert_int_not_equal(e->value, errtab[j].value);
    assert_non_null(lw_strerror(e->value));
    assert_string_equal(e->msg, lw_strerror(e->value));
    assert_true(strlen(e->msg) > 3);
    assert_null(strstr(lw_strerror(e->value), "unknown"));
    assert_non_null(lw_errname(e->value));
    assert_string_equal(e->name, lw_errname(e->value));
    if (e->value < lowest) lowest = e->value;
  }
  assert_int_equal(LW_ERRNO_LAST, lowest);
  /* the codes once missing from lw_strerror (issue 13 item 9) */
  assert_string_equal("busy: running, attached or stepping", lw_strerror(LW_EBUSY));
  assert_null(strstr(lw_strerror(LW_EDEADLOCK), "unknown"));
  assert_null(strstr(lw_strerror(LW_EEXITED), "unknown"));
  assert_string_equal("no error", lw_strerror(LW_OK));
  assert_string_equal("LW_OK", lw_errname(LW_OK));
  {
    static const int unknown[] = {1, 42, LW_ERRNO_LAST - 1, -1000, INT_MIN, INT_MAX};
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
      assert_string_equal("unknown luaweave error code", lw_strerror(unknown[i]));
      assert_null(lw_errname(unknown[i]));
    }
  }
}

/* ------------------------------------------------------------------ */
/* item 7: handles with a generation                                   */

static lua_State *open_store(lwt_heap *h, lw_store **s) {
  lua_State *L = lwt_state(h);
  *s = lw_store_open(L);
  assert_non_null(*s);
  return L;
}

static void close_checked(lua_State *L, lwt_heap *h) {
  lua_close(L);
  assert_int_equal(0, h->blocks);
  assert_int_equal(0, h->bytes);
}

/* a handle released (or taken) is refused, even when its slot and its
   old registry number serve another thread now */
static void test_handle_stale(void **state) {
  lwt_heap heap;
  lw_store *s;
  lua_State *L = open_store(&heap, &s), *a, *b;
  lw_handle ha, hb, hc;
  int nres;
  (void)state;
  a = lwt_thread(L, "return 'a'");
  ha = lw_hold(s, L, -1);
  assert_true(ha > 0);
  assert_int_equal(LUA_OK, lw_resume(s, a, L, 0, &nres));
  assert_int_equal(2, lw_handle_take(s, L, ha));
  assert_string_equal("a", lua_tostring(L, -1));
  lua_settop(L, 0);
  /* the next request reuses the slot (and the registry number) */
  b = lwt_thread(L, "return 'b'");
  hb = lw_hold(s, L, -1);
  assert_true(hb > 0);
  assert_true(hb != ha);
  assert_int_equal(LUA_OK, lw_resume(s, b, L, 0, &nres));
  assert_null(lw_handle_thread(s, L, ha));
  assert_int_equal(LW_ESTALE, lw_handle_take(s, L, ha)); /* not b's result */
  assert_int_equal(LW_ESTALE, lw_release(s, L, ha));
  assert_int_equal(1, lua_gettop(L)); /* nothing pushed */
  assert_ptr_equal(b, lw_handle_thread(s, L, hb));
  assert_int_equal(LW_RETURNED, lw_status(s, b));
  /* released, then doubled */
  assert_int_equal(LW_OK, lw_release(s, L, hb));
  assert_int_equal(LW_ESTALE, lw_release(s, L, hb));
  assert_int_equal(LW_ESTALE, lw_handle_take(s, L, hb));
  assert_null(lw_handle_thread(s, L, hb));
  assert_int_equal(LW_RETURNED, lw_status(s, b)); /* still tracked */
  /* a take that fails keeps the handle */
  hc = lw_hold(s, L, -1);
  assert_int_equal(LW_OK, lw_untrack(s, b));
  assert_int_equal(LW_ENOTTRACKED, lw_handle_take(s, L, hc));
  assert_ptr_equal(b, lw_handle_thread(s, L, hc));
  assert_int_equal(LW_OK, lw_release(s, L, hc));
  lua_settop(L, 0);
  close_checked(L, &heap);
}

/* a registry reference, a count, an error code, another store's handle:
   refused, and the reference they name is left alone */
static void test_handle_foreign(void **state) {
  lwt_heap heap, heap2;
  lw_store *s, *s2;
  lua_State *L = open_store(&heap, &s), *L2 = open_store(&heap2, &s2), *co;
  lw_handle h, h2;
  int ref;
  (void)state;
  co = lua_newthread(L);
  lua_pushvalue(L, -1);
  ref = luaL_ref(L, LUA_REGISTRYINDEX); /* a registry reference to a thread */
  h = lw_hold(s, L, -1);
  assert_true(h > 0);
  assert_null(lw_handle_thread(s, L, (lw_handle)ref));
  assert_int_equal(LW_ESTALE, lw_release(s, L, (lw_handle)ref));
  assert_int_equal(LW_ESTALE, lw_handle_take(s, L, (lw_handle)ref));
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref); /* still there */
  assert_ptr_equal(co, lua_tothread(L, -1));
  lua_pop(L, 1);
  assert_int_equal(LW_EINVAL, lw_release(s, L, 0));
  assert_int_equal(LW_EINVAL, lw_release(s, L, LW_EMEM));
  assert_int_equal(LW_EINVAL, lw_handle_take(s, L, -5));
  assert_null(lw_handle_thread(s, L, -1));
  assert_int_equal(LW_ESTALE, lw_release(s, L, h + 1)); /* a neighbour slot */
  assert_int_equal(LW_ESTALE, lw_release(s, L, h + ((lw_handle)1 << 32)));
  assert_int_equal(LW_ESTALE, lw_release(s, L, INT64_MAX));
  /* another store's handle, and a handle with another state's thread */
  lua_newthread(L2);
  h2 = lw_hold(s2, L2, -1);
  assert_true(h2 > 0);
  assert_int_equal(LW_ESTALE, lw_release(s, L, h2));
  assert_int_equal(LW_EUNIVERSE, lw_release(s, L2, h));
  assert_null(lw_handle_thread(s, L2, h));
  assert_int_equal(LW_EUNIVERSE, lw_hold(s, L2, -1));
  assert_int_equal(LW_OK, lw_release(s2, L2, h2));
  assert_ptr_equal(co, lw_handle_thread(s, L, h));
  assert_int_equal(LW_OK, lw_release(s, L, h));
  assert_int_equal(LW_EINVAL, lw_hold(NULL, L, -1));
  assert_int_equal(LW_EINVAL, lw_release(NULL, L, h));
  assert_null(lw_handle_thread(s, NULL, h));
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  lua_settop(L, 0);
  close_checked(L2, &heap2);
  close_checked(L, &heap);
}

/* many handles: the table grows; every one stays its own */
static void test_handle_many(void **state) {
  enum { N = 300 };
  lwt_heap heap;
  lw_store *s;
  lua_State *L = open_store(&heap, &s);
  static lw_handle h[N];
  static lua_State *co[N];
  int i;
  (void)state;
  for (i = 0; i < N; i++) {
    co[i] = lua_newthread(L);
    h[i] = lw_hold(s, L, -1);
    assert_true(h[i] > 0);
    lua_pop(L, 1);
  }
  lua_gc(L, LUA_GCCOLLECT, 0);
  for (i = 0; i < N; i++) assert_ptr_equal(co[i], lw_handle_thread(s, L, h[i]));
  for (i = 0; i < N; i += 2) assert_int_equal(LW_OK, lw_release(s, L, h[i]));
  for (i = 0; i < N; i++) {
    if (i % 2 == 0) {
      assert_null(lw_handle_thread(s, L, h[i]));
      lua_newthread(L); /* the slots come back with new serials */
      h[i] = lw_hold(s, L, -1);
      lua_pop(L, 1);
    } else {
      assert_ptr_equal(co[i], lw_handle_thread(s, L, h[i]));
    }
  }
  for (i = 0; i < N; i++) assert_int_equal(LW_OK, lw_release(s, L, h[i]));
  for (i = 0; i < N; i++) assert_int_equal(LW_ESTALE, lw_release(s, L, h[i]));
  lua_gc(L, LUA_GCCOLLECT, 0);
  assert_int_equal(0, (int)lw_store_count(s));
  close_checked(L, &heap);
}


/* ------------------------------------------------------------------ */
/* item 2: async tokens                                                */

#define MAXOPS 8
static lw_async *ops[MAXOPS];
static int nops;
static int nerrors;

static int c_later(lua_State *L) {
  lw_async *op = lw_async_begin(L);
  assert_non_null(op);
  assert_true(nops < MAXOPS);
  ops[nops++] = op;
  return lw_async_yield(L, op);
}

static void count_error(void *ud, lua_State *co, const char *msg) {
  (void)ud;
  (void)co;
  (void)msg;
  nerrors++;
}

/* a state with a scheduler, `later` (an async C function) and `task` */
static lua_State *open_sched(lwt_heap *h, lw_sched **S) {
  lua_State *L = lwt_state(h);
  *S = lw_sched_open(L);
  assert_non_null(*S);
  lw_sched_onerror(*S, count_error, NULL);
  lw_async_wrap(L, c_later);
  lua_setglobal(L, "later");
  lwt_do(L, "task = require 'luaweave.task'; lw = require 'luaweave'");
  nops = 0;
  nerrors = 0;
  return L;
}

static int push_one(lua_State *T, void *ud) {
  lua_pushstring(T, (const char *)ud);
  return 1;
}

static const char *global_string(lua_State *L, const char *name) {
  const char *v;
  lua_getglobal(L, name);
  v = lua_tostring(L, -1);
  lua_pop(L, 1);
  return v; /* kept alive by the global */
}

/* a completed token is stale: a second completion (any kind) or a drop
   answers LW_ESTALE and touches nothing */
static void test_async_twice(void **state) {
  lwt_heap heap;
  lw_sched *S;
  lua_State *L = open_sched(&heap, &S), *T;
  (void)state;
  T = lw_sched_state(S);
  lwt_do(L, "a = task.spawn(function() got = later() end)");
  assert_int_equal(1, nops);
  assert_ptr_equal(S, lw_async_sched(ops[0]));
  lua_pushliteral(T, "first");
  assert_int_equal(LW_OK, lw_async_resolve(ops[0], 1));
  assert_int_equal(0, (int)lw_sched_async(S));
  assert_null(lw_async_sched(ops[0]));
  lua_pushliteral(T, "second");
  assert_int_equal(LW_ESTALE, lw_async_resolve(ops[0], 1));
  assert_int_equal(1, lua_gettop(T)); /* not popped: the host's */
  lua_settop(T, 0);
  assert_int_equal(LW_ESTALE, lw_async_reject(ops[0]));
  assert_int_equal(LW_ESTALE, lw_async_complete(ops[0], push_one, (void *)"x"));
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
  assert_int_equal(0, (int)lw_sched_async(S));
  assert_int_equal(1, lw_sched_step(S));
  assert_string_equal("first", global_string(L, "got"));
  /* the next token, maybe in the same slot: the old one stays stale */
  lwt_do(L, "b = task.spawn(function() got = later() end)");
  assert_int_equal(2, nops);
  assert_true(ops[0] != ops[1]);
  assert_int_equal(LW_ESTALE, lw_async_complete(ops[0], push_one, (void *)"old"));
  assert_int_equal(1, (int)lw_sched_async(S));
  assert_int_equal(LW_OK, lw_async_complete(ops[1], push_one, (void *)"new"));
  assert_int_equal(1, lw_sched_step(S));
  assert_string_equal("new", global_string(L, "got"));
  /* NULL, and values that were never tokens */
  assert_int_equal(LW_EINVAL, lw_async_resolve(NULL, 0));
  assert_int_equal(LW_EINVAL, lw_async_drop(NULL));
  assert_null(lw_async_sched(NULL));
  assert_int_equal(LW_ESTALE, lw_async_drop((lw_async *)(uintptr_t)1));
  assert_int_equal(LW_ESTALE, lw_async_drop((lw_async *)&heap));
  assert_int_equal(0, nerrors);
  lua_close(L);
  assert_int_equal(0, heap.blocks);
}

/* a malformed completion consumes the token too; the task fails */
static void test_async_invalid(void **state) {
  lwt_heap heap;
  lw_sched *S;
  lua_State *L = open_sched(&heap, &S), *T;
  (void)state;
  T = lw_sched_state(S);
  lwt_do(L, "a = task.spawn(function() later() end)\n"
            "b = task.spawn(function() later() end)\n"
            "c = task.spawn(function() later() end)\n"
            "w = task.spawn(function()\n"
            "  ra = {task.await(a)}; rb = {task.await(b)}; rc = {task.await(c)}\n"
            "end)");
  assert_int_equal(3, nops);
  lua_pushliteral(T, "kept");
  assert_int_equal(LW_EINVAL, lw_async_resolve(ops[0], -1));
  assert_int_equal(LW_EINVAL, lw_async_resolve(ops[1], 5)); /* T holds 1 */
  assert_int_equal(1, lua_gettop(T)); /* nothing popped */
  lua_settop(T, 0);
  assert_int_equal(LW_EINVAL, lw_async_complete(ops[2], NULL, NULL));
  assert_int_equal(0, (int)lw_sched_async(S));
  assert_int_equal(LW_ESTALE, lw_async_resolve(ops[0], 0));
  assert_int_equal(LW_ESTALE, lw_async_complete(ops[2], push_one, (void *)"x"));
  while (lw_sched_step(S) > 0) {}
  lwt_do(L, "assert(ra[1] == false and ra[2]:find 'invalid async completion', tostring(ra[2]))\n"
            "assert(rb[1] == false and rc[1] == false and rc[2]:find 'invalid')");
  lua_close(L);
  assert_int_equal(0, heap.blocks);
}

/* lw_async_drop: the task fails with "async operation dropped"; caught
   where the task protects the call; the token is consumed */
static void test_async_drop(void **state) {
  lwt_heap heap;
  lw_sched *S;
  lua_State *L = open_sched(&heap, &S);
  (void)state;
  lwt_do(L, "t = task.spawn(function() later(); never = true end)\n"
            "w = task.spawn(function() r = {task.await(t)} end)\n");
  assert_int_equal(1, nops);
  assert_int_equal(1, (int)lw_sched_async(S));
  assert_int_equal(LW_OK, lw_async_drop(ops[0]));
  assert_int_equal(0, (int)lw_sched_async(S));
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
  assert_int_equal(LW_ESTALE, lw_async_resolve(ops[0], 0));
  while (lw_sched_step(S) > 0) {}
  lwt_do(L, "assert(not never)\n"
            "assert(r[1] == false and r[2] == 'async operation dropped', tostring(r[2]))\n"
            "assert(lw.status(t) == 'failed')");
  assert_int_equal(0, nerrors); /* awaited: handled */
#if LUA_VERSION_NUM > 501 || defined(LW_LUAJIT)
  /* a task that protects the call goes on */
  lwt_do(L, "p = task.spawn(function() ok, err = pcall(later); after = true end)");
  assert_int_equal(2, nops);
  assert_int_equal(LW_OK, lw_async_drop(ops[1]));
  while (lw_sched_step(S) > 0) {}
  lwt_do(L, "assert(after and ok == false and err == 'async operation dropped')");
#endif
  /* a cancelled task's token is dropped quietly */
  lwt_do(L, "c = task.spawn(function() later() end); task.cancel(c)");
  assert_int_equal(LW_OK, lw_async_drop(ops[nops - 1]));
  assert_int_equal(0, (int)lw_sched_async(S));
  lua_close(L);
  assert_int_equal(0, heap.blocks);
}

/* tokens outstanding at lua_close: every completion afterwards answers
   LW_ESTALE (the token table outlives the state; nothing is touched) */
static void test_async_after_close(void **state) {
  lwt_heap heap;
  lw_sched *S;
  lua_State *L = open_sched(&heap, &S);
  (void)state;
  lwt_do(L, "for i = 1, 3 do task.spawn(function() later() end) end");
  assert_int_equal(3, nops);
  lua_close(L);
  assert_int_equal(0, heap.blocks);
  assert_null(lw_async_sched(ops[0]));
  assert_int_equal(LW_ESTALE, lw_async_resolve(ops[0], 0));
  assert_int_equal(LW_ESTALE, lw_async_reject(ops[1]));
  assert_int_equal(LW_ESTALE, lw_async_complete(ops[2], push_one, (void *)"x"));
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[2]));
}

/* A file of some size, so that reading it takes several requests */
static void write_file(char *path, size_t size) {
  FILE *f;
  size_t i;
  strcpy(path, "/tmp/lwlifeXXXXXX");
  {
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
  }
  f = fopen(path, "wb");
  assert_non_null(f);
  for (i = 0; i < size; i++) fputc('a' + (int)(i % 26), f);
  fclose(f);
}

/* issue 13 item 2: luaweave.fs.readfile in flight on an attached loop,
   then lua_close, then uv_run as libuv requires: the fs callbacks
   complete stale tokens (was: ASan use-after-free on 5.1/5.4, SIGSEGV on
   LuaJIT).  Closed after 0, 1, 2 ... turns of the loop. */
static void test_readfile_attached_close(void **state) {
  char path[32], code[128];
  int turns;
  (void)state;
  write_file(path, 300000);
  snprintf(code, sizeof code,
           "task.spawn(function() data = lw.fs.readfile('%s') end)", path);
  for (turns = 0; turns < 6; turns++) {
    lwt_heap heap;
    lw_sched *S;
    lua_State *L = open_sched(&heap, &S);
    uv_loop_t loop;
    int i;
    assert_int_equal(0, uv_loop_init(&loop));
    assert_int_equal(LW_OK, lw_sched_attach(S, &loop));
    lwt_do(L, code);
    assert_int_equal(1, (int)lw_sched_async(S));
    for (i = 0; i < turns; i++) uv_run(&loop, UV_RUN_ONCE);
    lua_close(L);
    assert_int_equal(0, heap.blocks);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(0, uv_loop_close(&loop));
  }
  unlink(path);
}

/* the same on luaweave's own loop (host-stepped): lua_close finishes
   the loop's requests itself */
static void test_readfile_own_close(void **state) {
  char path[32], code[128];
  lwt_heap heap;
  lw_sched *S;
  lua_State *L;
  (void)state;
  write_file(path, 100000);
  L = open_sched(&heap, &S);
  snprintf(code, sizeof code,
           "task.spawn(function() data = lw.fs.readfile('%s') end)", path);
  lwt_do(L, code);
  assert_int_equal(1, (int)lw_sched_async(S));
  lw_sched_step(S);
  lua_close(L);
  assert_int_equal(0, heap.blocks);
  unlink(path);
}

/* ------------------------------------------------------------------ */
/* item 3: cached pointers used from a finalizer during lua_close      */

static lw_store *cached_s;
static lw_sched *cached_S;
static lw_handle cached_h;
static int saw_store_closed, saw_sched_closed, finalizers_run;
static uv_loop_t *spare_loop;

static int dummy(lua_State *L) { (void)L; return 0; }

/* every public function with the cached pointers: it must answer an
   error code (ASan checks that nothing freed is touched) */
static int host_gc(lua_State *L) {
  lw_store *s = cached_s;
  lw_sched *S = cached_S;
  int nres = 0, top = lua_gettop(L), code;
  finalizers_run++;
  if (lw_track(s, L) == LW_EINVAL) {
    saw_store_closed++;
    assert_null(lw_store_get(L));
    assert_null(lw_store_open(L));
    assert_int_equal(0, (int)lw_store_count(s));
    (void)lw_store_bytes(s);
    assert_int_equal(LW_EINVAL, lw_untrack(s, L));
    assert_int_equal(LW_EINVAL, lw_status(s, L));
    assert_int_equal(LW_EINVAL, lw_resume(s, L, L, 0, &nres));
    assert_int_equal(LW_EINVAL, lw_result(s, L, L));
    assert_int_equal(LW_EINVAL, lw_take(s, L, L));
    assert_int_equal(LW_EINVAL, lw_cancel(s, L, L));
    assert_int_equal(LW_EINVAL, lw_reset(s, L, L));
    lua_pushthread(L);
    assert_int_equal(LW_EINVAL, lw_hold(s, L, -1));
    lua_settop(L, top);
    assert_null(lw_handle_thread(s, L, cached_h));
    assert_int_equal(LW_EINVAL, lw_release(s, L, cached_h));
    assert_int_equal(LW_EINVAL, lw_handle_take(s, L, cached_h));
    assert_int_equal(top, lua_gettop(L));
  }
  if (lw_sched_step(S) == LW_EINVAL) {
    saw_sched_closed++;
    assert_null(lw_sched_get(L));
    assert_null(lw_sched_open(L));
    lua_pushcfunction(L, dummy);
    assert_int_equal(LW_EINVAL, lw_sched_spawn(S, L, 0));
    lua_settop(L, top);
    lua_pushcfunction(L, dummy);
    assert_int_equal(LW_EINVAL, lw_sched_defer(S, L, 0));
    lua_settop(L, top);
    lua_pushcfunction(L, dummy);
    assert_int_equal(LW_EINVAL, lw_sched_delay(S, L, 1.0, 0));
    lua_settop(L, top);
    assert_int_equal(LW_EINVAL, lw_sched_cancel(S, L));
    assert_int_equal(LW_EINVAL, lw_sched_recycle(S, L));
    assert_true(lw_sched_next(S) == -1);
    assert_int_equal(0, (int)lw_sched_ready(S));
    assert_int_equal(0, (int)lw_sched_waiting(S));
    assert_int_equal(0, (int)lw_sched_async(S));
    (void)lw_sched_errors(S);
    (void)lw_sched_exited(S, &code);
    lw_sched_onerror(S, NULL, NULL);
    lw_sched_setclock(S, NULL, NULL);
    (void)lw_sched_now(S);
    assert_null(lw_sched_state(S));
    assert_int_equal(LW_EINVAL, lw_sched_run(S));
    assert_int_equal(LW_EINVAL, lw_sched_attach(S, spare_loop));
    assert_int_equal(LW_EINVAL, lw_sched_detach(S));
    assert_null(lw_sched_loop(S));
    /* the outstanding token went stale with its scheduler */
    if (nops > 0) assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
  }
  return 0;
}

static void host_object(lua_State *L) {
  lua_newuserdata(L, 8);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, host_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  luaL_ref(L, LUA_REGISTRYINDEX); /* lives until lua_close */
}

/* issue 13 item 3: host userdata finalized after luaweave's own boxes
   (made before luaweave opened: Lua finalizes in reverse order) */
static void test_cached_pointers_in_finalizer(void **state) {
  lwt_heap heap;
  lua_State *L = lwt_state(&heap);
  uv_loop_t loop;
  (void)state;
  assert_int_equal(0, uv_loop_init(&loop));
  spare_loop = &loop;
  saw_store_closed = saw_sched_closed = finalizers_run = 0;
  host_object(L); /* before luaweave */
  cached_S = lw_sched_open(L);
  cached_s = lw_store_get(L);
  assert_non_null(cached_S);
  assert_non_null(cached_s);
  lw_sched_onerror(cached_S, count_error, NULL);
  lw_async_wrap(L, c_later);
  lua_setglobal(L, "later");
  nops = 0;
  lwt_do(L, "task = require 'luaweave.task'; task.spawn(function() later() end)");
  assert_int_equal(1, nops);
  lua_newthread(L);
  cached_h = lw_hold(cached_s, L, -1);
  assert_true(cached_h > 0);
  lua_pop(L, 1);
  host_object(L); /* after luaweave: finalized before its boxes */
  lua_close(L);
  assert_int_equal(2, finalizers_run);
  assert_true(saw_store_closed >= 1);
  assert_true(saw_sched_closed >= 1);
  assert_int_equal(0, heap.blocks); /* the structs went at the end */
  assert_int_equal(0, heap.bytes);
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
  assert_int_equal(0, uv_loop_close(&loop));
}

/* a finalizer that makes the scheduler while lua_close runs (Lua 5.4
   then never finalizes its box): it is closed and freed at the end */
static int make_sched_gc(lua_State *L) {
  lw_sched *S = lw_sched_open(L);
  if (S != NULL) {
    lua_pushcfunction(L, dummy);
    lw_sched_defer(S, L, 0);
    lua_pop(L, 1);
  }
  return 0;
}

static void test_sched_made_in_close(void **state) {
  lwt_heap heap;
  lua_State *L = lwt_state(&heap);
  (void)state;
  assert_non_null(lw_store_open(L));
  lua_newuserdata(L, 8); /* after the store: finalized before it */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, make_sched_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_pop(L, 1);
  lua_close(L);
  assert_int_equal(0, heap.blocks);
}

/* the default allocator (LuaJIT: its own, whose arena close_state
   destroys only when it is the state's allocator again) */
static void test_default_allocator_close(void **state) {
  lua_State *L = luaL_newstate();
  lw_sched *S;
  (void)state;
  assert_non_null(L);
  luaL_openlibs(L);
  lw_preload(L);
  S = lw_sched_open(L);
  assert_non_null(S);
  lw_sched_onerror(S, count_error, NULL);
  lw_async_wrap(L, c_later);
  lua_setglobal(L, "later");
  nops = 0;
  lwt_do(L, "task = require 'luaweave.task'; task.spawn(function() later() end)");
  host_object(L);
  cached_S = S;
  cached_s = lw_store_get(L);
  finalizers_run = 0;
  lua_close(L);
  assert_int_equal(1, finalizers_run);
  assert_int_equal(LW_ESTALE, lw_async_drop(ops[0]));
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_error_table),
    cmocka_unit_test(test_handle_stale),
    cmocka_unit_test(test_handle_foreign),
    cmocka_unit_test(test_handle_many),
    cmocka_unit_test(test_async_twice),
    cmocka_unit_test(test_async_invalid),
    cmocka_unit_test(test_async_drop),
    cmocka_unit_test(test_async_after_close),
    cmocka_unit_test(test_readfile_attached_close),
    cmocka_unit_test(test_readfile_own_close),
    cmocka_unit_test(test_cached_pointers_in_finalizer),
    cmocka_unit_test(test_sched_made_in_close),
    cmocka_unit_test(test_default_allocator_close),
  };
  return lwt_main("life", tests, argc, argv);
}
