/*
** lw_map.c — the thread map.
**
** Keys are thread addresses, values small fixed records; a store holds up
** to tens of millions of them and looks one up on every resumption.  The
** choices, and what they cost:
**
** - Open addressing in one flat array of 16-byte slots (key + record), so
**   a lookup touches one cache line in the common case and an entry costs
**   no allocation.  Cost: the array is sized for the peak, and a grow
**   copies every entry (amortized O(1), but one insert pays O(n)).
**
** - Linear probing.  With a mixed hash (lw_key.h) clusters stay short at
**   load <= 3/4, and probing neighbours is what caches and prefetchers do
**   best.  Cost: a poor hash would cluster badly; the finalizer in
**   lw_key.h is what makes raw addresses safe here.  Homes keep memory
**   order within a 16 KiB region (lw_key_home), so threads met in the
**   order they were made touch nearby slots, not one random page each.
**
** - Deletion by backward shift, not tombstones.  After removing a slot we
**   pull later members of the same cluster back into the hole, so the
**   table never fills up with dead markers and never needs a rehash to
**   clean them: lookups stay as fast after ten million deletions as
**   before.  Removal never allocates, which matters because the store
**   removes threads from inside Lua's allocator, the moment Lua frees
**   them.  Cost: a delete moves up to a cluster's length of slots.
**
** - Power-of-two capacity, grown x2 above 3/4 load, shrunk /2 below 1/8
**   (with hysteresis, so alternating insert/delete at a boundary does not
**   thrash).  Shrinking is a separate call because removal must not
**   allocate.
**
** - A generation counter (gen), bumped by everything that can move a
**   slot (removal, rehash, free).  Insertion without growth only fills an
**   empty slot, so it leaves it alone.  Callers keep a record pointer
**   across work that might touch the map and look the key up again only
**   if gen moved: the common path probes once.
**
** Memory per entry: 16 bytes / load factor, i.e. 21 to 43 bytes.
*/
#include "lw_map.h"

#include <string.h>

static size_t home(const lw_map *m, lw_tkey k) {
  return lw_key_home(k, m->mask);
}

void lw_map_init(lw_map *m, lw_map_alloc alloc, void *ud) {
  m->slots = NULL;
  m->mask = 0;
  m->count = 0;
  m->gen = 0;
  m->alloc = alloc;
  m->ud = ud;
}

size_t lw_map_capacity(const lw_map *m) {
  return m->slots ? m->mask + 1 : 0;
}

void lw_map_free(lw_map *m) {
  if (m->slots)
    m->alloc(m->ud, m->slots, lw_map_capacity(m) * sizeof(lw_slot), 0);
  m->slots = NULL;
  m->mask = 0;
  m->count = 0;
  m->gen++;
}

/* place every entry of the old array into a fresh one of size cap */
static int rehash(lw_map *m, size_t cap) {
  lw_slot *old = m->slots;
  size_t oldcap = lw_map_capacity(m), i;
  lw_slot *fresh = m->alloc(m->ud, NULL, 0, cap * sizeof(lw_slot));
  if (fresh == NULL) return -1;
  memset(fresh, 0, cap * sizeof(lw_slot));
  m->gen++;
  m->slots = fresh;
  m->mask = cap - 1;
  for (i = 0; i < oldcap; i++) {
    if (old[i].key != NULL) {
      size_t j = home(m, old[i].key);
      while (fresh[j].key != NULL) j = (j + 1) & m->mask;
      fresh[j] = old[i];
    }
  }
  if (old) m->alloc(m->ud, old, oldcap * sizeof(lw_slot), 0);
  return 0;
}

int lw_map_insert(lw_map *m, lw_tkey k, lw_rec **rec) {
  size_t i, cap = lw_map_capacity(m);
  lw_rec *found = lw_map_find(m, k);
  if (found) {
    *rec = found;
    return 0;
  }
  if (!lw_key_valid(k)) return -1;
  if ((m->count + 1) * 4 > cap * 3) {
    size_t ncap = cap ? cap * 2 : LW_MAP_MINCAP;
    if (ncap < cap || ncap > ((size_t)-1) / sizeof(lw_slot)) return -1;
    if (rehash(m, ncap) != 0) return -1;
  }
  for (i = home(m, k); m->slots[i].key != NULL; i = (i + 1) & m->mask) {}
  m->slots[i].key = k;
  memset(&m->slots[i].rec, 0, sizeof(lw_rec));
  m->count++;
  *rec = &m->slots[i].rec;
  return 1;
}

void lw_map_remove_rec(lw_map *m, lw_rec *r) {
  size_t hole, j;
  m->gen++;
  hole = (size_t)((lw_slot *)((char *)r - offsetof(lw_slot, rec)) - m->slots);
  /* Pull back later members of the cluster whose home is not strictly
     between the hole and their slot (cyclically): they would be
     unreachable across an empty slot otherwise. */
  for (j = (hole + 1) & m->mask; m->slots[j].key != NULL;
       j = (j + 1) & m->mask) {
    size_t h = home(m, m->slots[j].key);
    int stays = (hole <= j) ? (hole < h && h <= j) : (hole < h || h <= j);
    if (!stays) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].key = NULL;
  m->count--;
}

int lw_map_remove(lw_map *m, lw_tkey k) {
  lw_rec *r = lw_map_find(m, k);
  if (r == NULL) return 0;
  lw_map_remove_rec(m, r);
  return 1;
}

void lw_map_compact(lw_map *m) {
  size_t cap = lw_map_capacity(m), ncap = cap;
  if (cap <= LW_MAP_MINCAP || m->count * 8 >= cap) return;
  while (ncap > LW_MAP_MINCAP && m->count * 4 < ncap) ncap /= 2;
  if (m->count == 0) {
    lw_map_free(m);
    return;
  }
  (void)rehash(m, ncap); /* on failure the bigger map is still sound */
}

lw_slot *lw_map_next(const lw_map *m, size_t *i) {
  size_t cap = lw_map_capacity(m);
  while (*i < cap) {
    lw_slot *s = &m->slots[(*i)++];
    if (s->key != NULL) return s;
  }
  return NULL;
}

int lw_map_check(const lw_map *m) {
  size_t cap = lw_map_capacity(m), i, n = 0;
  if (m->slots == NULL) return (m->count == 0 && m->mask == 0) ? 0 : __LINE__;
  if ((cap & (cap - 1)) != 0) return __LINE__;
  if (m->count * 4 > cap * 3) return __LINE__;
  for (i = 0; i < cap; i++) {
    size_t j;
    if (m->slots[i].key == NULL) continue;
    n++;
    /* no empty slot between home and position */
    for (j = home(m, m->slots[i].key); j != i; j = (j + 1) & m->mask)
      if (m->slots[j].key == NULL) return __LINE__;
    if (lw_map_find(m, m->slots[i].key) != &m->slots[i].rec) return __LINE__;
  }
  return n == m->count ? 0 : __LINE__;
}
