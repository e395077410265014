/*
** lw_key.h — a thread's identity and its hash.
**
** A thread is a lua_State and Lua never moves objects, so the address is
** a free identity while the thread lives.  Its low bits are alignment
** zeros and its high bits barely change between allocations, so a mask of
** the raw address would crowd a power-of-two table.  We run the address
** through a 64-bit finalizer (xor-shift, multiply, xor-shift): two
** multiplies, no branches, every input bit reaches every low output bit.
**
** Locality.  Threads made one after the other sit close together in
** memory and are met again in about that order (the run queue, awaits
** in spawn order, the collector's sweep).  A fully mixed home scatters
** them over the whole slot array, so past a few MB every touch of a
** record is a cache miss and a TLB miss (on a VM, a nested page walk).
** So a map bigger than a window (2^LW_KEY_WINDOW slots) places a key at
** a random base chosen by its 16 KiB address region, plus its offset in
** that region in 2-byte steps: neighbours in memory are neighbours in
** the array (threads 1 KiB apart: 8 KiB of slots apart, a TLB entry and
** page-walk cache entries shared, and a stride the prefetcher follows),
** and regions land at random, overlapping at random shifts.  The cost is
** lumpiness: a region's keys arrive together, so the load of a stretch
** of slots varies more than under a full mix.  2-byte steps keep a
** region's keys sparse (a thread takes more than 100 bytes: at most one
** slot in 50), so a stretch is the sum of many regions and its load stays
** near the mean.  tests/test_map.c measures it at load 3/4: the mean
** distance from home is a full mix's (about 1.5 slots) for threads 200
** bytes to 64 KiB apart; with 8-byte steps, threads packed 200-300 bytes
** apart made it 10-24 slots, with runs of thousands.  A map of a window
** or less uses the full mix.
**
** The address proves nothing once the thread is freed; keeping a key
** honest is the result store's job (see lw_store.c).
*/
#ifndef LW_KEY_H
#define LW_KEY_H

#include <stdint.h>
#include <stddef.h>

typedef const void *lw_tkey;

static inline size_t lw_key_hash(lw_tkey k) {
  uint64_t x = (uint64_t)(uintptr_t)k;
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  x *= UINT64_C(0xc4ceb9fe1a85ec53);
  x ^= x >> 33;
  return (size_t)x;
}

#define LW_KEY_REGION 14 /* 16 KiB of address per window */
#define LW_KEY_UNIT 1 /* 2 bytes of address per slot */
#define LW_KEY_WINDOW (LW_KEY_REGION - LW_KEY_UNIT)

/* k's home slot in an array of mask + 1 slots (a power of 2) */
static inline size_t lw_key_home(lw_tkey k, size_t mask) {
  uintptr_t a = (uintptr_t)k;
  if (mask < ((size_t)1 << LW_KEY_WINDOW)) return lw_key_hash(k) & mask;
  return (lw_key_hash((lw_tkey)(a >> LW_KEY_REGION)) +
          ((a >> LW_KEY_UNIT) & (((size_t)1 << LW_KEY_WINDOW) - 1))) & mask;
}

/* NULL is the map's empty slot and never a thread */
static inline int lw_key_valid(lw_tkey k) { return k != NULL; }

#endif
