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

/* Keys laid out as threads are (lw_key.h), at the map's densest load:
   the mean distance of an entry from its home stays that of a full mix
   (about 1.5 slots), whatever the spacing, even when every region holds
   keys at the same offsets; and keys made one after the other get homes
   close together (what saves the cache and TLB misses). */
static lw_tkey laid(uint64_t base, size_t i, size_t stride) {
  return (lw_tkey)(uintptr_t)(base + (uint64_t)i * stride);
}

static void test_homes_spread_and_local(void **state) {
  enum { N = 196000 }; /* load 0.75 in 2^18 slots: the densest the map gets */
  static const uint64_t bases[] = {UINT64_C(0x7f3a12340000),
                                   UINT64_C(0x55d1c0a01230)};
  static const size_t strides[] = {1024, 208, 320, 512, 1168, 4096, 65536};
  size_t b, s, i;
  int bad = 0;
  (void)state;
  for (b = 0; b < sizeof bases / sizeof *bases; b++)
    for (s = 0; s < sizeof strides / sizeof *strides; s++) {
      lw_map m;
      lw_rec *r;
      lw_slot *sl;
      size_t it = 0, disp = 0, maxdisp = 0, near = 0, mask;
      memset(&heap, 0, sizeof heap);
      lw_map_init(&m, lwt_alloc, &heap);
      for (i = 0; i < N; i++)
        assert_int_equal(1, lw_map_insert(&m, laid(bases[b], i, strides[s]), &r));
      mask = m.mask;
      for (i = 1; i < N; i++) {
        size_t d = (lw_key_home(laid(bases[b], i, strides[s]), mask) -
                    lw_key_home(laid(bases[b], i - 1, strides[s]), mask)) & mask;
        if (d <= 1024 || d >= mask - 1024) near++; /* 16 KiB of slots */
      }
      while ((sl = lw_map_next(&m, &it)) != NULL) {
        size_t d = ((size_t)(sl - m.slots) - lw_key_home(sl->key, mask)) & mask;
        disp += d;
        if (d > maxdisp) maxdisp = d;
      }
      print_message("stride %zu: mean displacement %.3f (max %zu), "
                    "%.1f%% of neighbours near\n", strides[s],
                    (double)disp / N, maxdisp, 100.0 * (double)near / N);
      if (disp >= 2 * (size_t)N) bad++; /* mean < 2 slots */
      if (strides[s] <= 1168 && near < N * 9 / 10) bad++;
      assert_int_equal(0, lw_map_check(&m));
      lw_map_free(&m);
      assert_int_equal(0, heap.blocks);
    }
  assert_int_equal(0, bad);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_insert_find_remove),
    cmocka_unit_test(test_random_against_reference),
    cmocka_unit_test(test_remove_never_allocates),
    cmocka_unit_test(test_growth_failure),
    cmocka_unit_test(test_homes_spread_and_local),
  };
  return lwt_main("map", tests, argc, argv);
}
