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

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_error_table),
    cmocka_unit_test(test_handle_stale),
    cmocka_unit_test(test_handle_foreign),
    cmocka_unit_test(test_handle_many),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
