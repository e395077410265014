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

/* NULL is the map's empty slot and never a thread */
static inline int lw_key_valid(lw_tkey k) { return k != NULL; }

#endif
