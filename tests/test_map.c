/* The thread map alone, against a plain reference. */
#include "lwtest.h"
#include "lw_map.h"

static lwt_heap heap;

static lw_tkey key(size_t i, size_t stride) {
  return (lw_tkey)(uintptr_t)(0x10000 + i * stride);
}

static void test_insert_find_remove(void **state) {
  lw_map m;
  lw_rec *r;
  size_t i;
  (void)state;
  memset(&heap, 0, sizeof heap);
  lw_map_init(&m, lwt_alloc, &heap);
  assert_null(lw_map_find(&m, key(1, 16)));
  assert_int_equal(0, lw_map_remove(&m, key(1, 16)));
  for (i = 0; i < 1000; i++) {
    assert_int_equal(1, lw_map_insert(&m, key(i, 16), &r));
    r->nres = (unsigned)i;
  }
  assert_int_equal(0, lw_map_insert(&m, key(7, 16), &r)); /* found */
  assert_int_equal(7, r->nres);
  assert_int_equal(1000, m.count);
  for (i = 0; i < 1000; i++) {
    r = lw_map_find(&m, key(i, 16));
    assert_non_null(r);
    assert_int_equal(i, r->nres);
  }
  assert_int_equal(0, lw_map_check(&m));
  for (i = 0; i < 1000; i += 2) assert_int_equal(1, lw_map_remove(&m, key(i, 16)));
  for (i = 0; i < 1000; i++)
    assert_true((lw_map_find(&m, key(i, 16)) != NULL) == (i % 2 == 1));
  assert_int_equal(0, lw_map_check(&m));
  assert_int_equal(-1, lw_map_insert(&m, NULL, &r)); /* NULL is no key */
  lw_map_free(&m);
  assert_int_equal(0, heap.blocks);
}

/* random operations against a reference array, check after every step */
static void test_random_against_reference(void **state) {
  enum { N = 3000 };
  static unsigned char in[N];
  static unsigned val[N];
  lw_map m;
  size_t strides[] = {8, 16, 32, 4096, 1};
  size_t s, step;
  (void)state;
  srand(12345);
  for (s = 0; s < sizeof strides / sizeof *strides; s++) {
    size_t count = 0;
    memset(in, 0, sizeof in);
    memset(&heap, 0, sizeof heap);
    lw_map_init(&m, lwt_alloc, &heap);
    for (step = 0; step < 40000; step++) {
      size_t i = (size_t)rand() % N;
      lw_rec *r;
      int op = rand() % 3;
      if (op < 2) {
        int added = lw_map_insert(&m, key(i, strides[s]), &r);
        assert_int_equal(!in[i], added);
        if (added) {
          in[i] = 1;
          count++;
          r->ticket = val[i] = (unsigned)rand();
        } else {
          assert_int_equal(val[i], r->ticket);
        }
      } else {
        assert_int_equal(in[i], lw_map_remove(&m, key(i, strides[s])));
        if (in[i]) count--;
        in[i] = 0;
        if (step % 64 == 0) lw_map_compact(&m);
      }
      assert_int_equal(count, m.count);
      if (step % 512 == 0) assert_int_equal(0, lw_map_check(&m));
    }
    for (step = 0; step < N; step++) {
      lw_rec *r = lw_map_find(&m, key(step, strides[s]));
      assert_int_equal(in[step], r != NULL);
      if (r) assert_int_equal(val[step], r->ticket);
    }
    assert_int_equal(0, lw_map_check(&m));
    lw_map_free(&m);
    assert_int_equal(0, heap.blocks);
  }
}

/* removing everything never needs memory and leaves a sound, fast map */
static void test_remove_never_allocates(void **state) {
  lw_map m;
  lw_rec *r;
  size_t i;
  long allocs;
  (void)state;
  memset(&heap, 0, sizeof heap);
  lw_map_init(&m, lwt_alloc, &heap);
  for (i = 0; i < 100000; i++) assert_true(lw_map_insert(&m, key(i, 16), &r) == 1);
  allocs = heap.allocs;
  for (i = 0; i < 100000; i++) assert_int_equal(1, lw_map_remove(&m, key(i, 16)));
  assert_int_equal(allocs, heap.allocs);
  assert_int_equal(0, m.count);
  assert_int_equal(0, lw_map_check(&m));
  lw_map_compact(&m); /* shrinking is a separate step */
  assert_true(lw_map_capacity(&m) <= LW_MAP_MINCAP);
  lw_map_free(&m);
  assert_int_equal(0, heap.blocks);
}

/* a growth that cannot get memory leaves the map unchanged and usable */
static void test_growth_failure(void **state) {
  lw_map m;
  lw_rec *r;
  size_t i, cap;
  (void)state;
  memset(&heap, 0, sizeof heap);
  lw_map_init(&m, lwt_alloc, &heap);
  heap.fail_in = 1;
  assert_int_equal(-1, lw_map_insert(&m, key(0, 16), &r));
  assert_int_equal(0, m.count);
  for (i = 0; i < 12; i++) assert_int_equal(1, lw_map_insert(&m, key(i, 16), &r));
  cap = lw_map_capacity(&m);
  heap.fail_in = 1; /* the 13th entry needs a bigger array */
  assert_int_equal(-1, lw_map_insert(&m, key(12, 16), &r));
  assert_int_equal(cap, lw_map_capacity(&m));
  assert_int_equal(12, m.count);
  for (i = 0; i < 12; i++) assert_non_null(lw_map_find(&m, key(i, 16)));
  assert_int_equal(0, lw_map_check(&m));
  assert_int_equal(1, lw_map_insert(&m, key(12, 16), &r));
  assert_int_equal(0, lw_map_check(&m));
  lw_map_free(&m);
  assert_int_equal(0, heap.blocks);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_insert_find_remove),
    cmocka_unit_test(test_random_against_reference),
    cmocka_unit_test(test_remove_never_allocates),
    cmocka_unit_test(test_growth_failure),
  };
  return lwt_main("map", tests, argc, argv);
}
