/*
** lw_map.h — the thread map: thread key -> small fixed-size record.
** Design notes and costs are at the top of lw_map.c.
*/
#ifndef LW_MAP_H
#define LW_MAP_H

#include <stddef.h>
#include "lw_key.h"

/* same contract as lua_Alloc, so a Lua state's allocator can feed the map */
typedef void *(*lw_map_alloc)(void *ud, void *p, size_t osize, size_t nsize);

/* A record is 8 bytes, shared by the result store and the scheduler, so
   that one probe finds everything either knows of a thread.  The store
   owns status..below (lw_store.c), the scheduler task..ticket
   (lw_sched.c).  A slot lives while either has something to say: a
   thread the store does not track but the scheduler runs has status 0. */
typedef struct lw_rec {
  unsigned status : 3;  /* store: an lw_status code; 0 = untracked */
  unsigned vals : 1;    /* store: the values live in the values table */
  unsigned wide : 1;    /* store: nres and top are in the store's wide map */
  unsigned task : 3;    /* scheduler: the task's state; 0 = not a task */
  unsigned cancel : 1;  /* scheduler: cancel the task at its next yield */
  unsigned nres : 13;   /* store: values recorded (unless wide) */
  unsigned below : 10;  /* store: co's stack top - nres (unless wide) */
  unsigned ticket;      /* scheduler: the task's ticket */
} lw_rec;

typedef struct lw_slot {
  lw_tkey key;          /* NULL: empty */
  lw_rec rec;
} lw_slot;

typedef struct lw_map {
  lw_slot *slots;
  size_t mask;          /* capacity - 1; capacity is 0 or a power of 2 */
  size_t count;
  unsigned long gen;    /* bumped whenever slots may move: a record
                           pointer taken at gen g is good while gen == g */
  lw_map_alloc alloc;
  void *ud;
} lw_map;

#define LW_MAP_MINCAP 16

void lw_map_init(lw_map *m, lw_map_alloc alloc, void *ud);
void lw_map_free(lw_map *m);
size_t lw_map_capacity(const lw_map *m);

/* the record of k, or NULL (inline: every resumption calls it) */
static inline lw_rec *lw_map_find(const lw_map *m, lw_tkey k) {
  size_t i;
  if (m->slots == NULL || !lw_key_valid(k)) return NULL;
  for (i = lw_key_home(k, m->mask);; i = (i + 1) & m->mask) {
    lw_slot *s = &m->slots[i];
    if (s->key == k) return &s->rec;
    if (s->key == NULL) return NULL;
  }
}

/* find or add k; *rec gets its record (zeroed when added).
   Returns 1 added, 0 found, -1 out of memory (map unchanged). */
int lw_map_insert(lw_map *m, lw_tkey k, lw_rec **rec);

/* remove k: 1 removed, 0 absent.  Never allocates, so it is safe inside
   an allocator hook. */
int lw_map_remove(lw_map *m, lw_tkey k);

/* remove the entry whose record r is (found at the current gen) */
void lw_map_remove_rec(lw_map *m, lw_rec *r);

/* shrink when mostly empty; keeps the map as is if memory runs out */
void lw_map_compact(lw_map *m);

/* visit: *i starts at 0; returns the next used slot or NULL */
lw_slot *lw_map_next(const lw_map *m, size_t *i);

/* invariant check for tests: 0 when sound, else a line number */
int lw_map_check(const lw_map *m);

#endif
