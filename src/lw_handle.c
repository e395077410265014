/*
** lw_handle.c — handles: a host that holds no Lua reference to a thread
** keeps it (and so its result) alive until it releases or takes it.
**
** A handle is not a bare registry reference: those numbers are reused as
** soon as they are freed, so a stale handle would read another request's
** thread, and releasing a number the host got elsewhere would unref
** someone else's value (the same trap the store closes for thread
** addresses).  The store keeps a table of slots {serial, registry ref};
** a handle encodes its slot and the serial it got:
**
**     handle = serial << 32 | slot       (serial 1 .. 2^31-1, never 0)
**
** so it is positive, and every number below 2^32 (a registry reference,
** a count) is no handle.  Serials come from one counter per store, seeded
** from the store's address, so a handle of another store is refused
** unless the two counters happen to meet; a slot's serial changes at
** every reuse, so a released or taken handle is refused until the
** counter wraps (2^31 holds later, in the same slot).  Refused handles
** answer LW_ESTALE and touch nothing.  Costs: 8 bytes a live handle, a
** table that doubles (never shrinks until lua_close), one compare to
** validate.
*/
#include "lw_store.h"
#include "lw_compat.h"

#define SERIAL_MAX 0x7fffffffu
#define SLOT_MAX 0xffffffffu

static int usable(lw_store *s, lua_State *L) {
  if (s == NULL || L == NULL || s->closed) return LW_EINVAL;
  if (lw_universe(L) != s->universe) return LW_EUNIVERSE;
  return LW_OK;
}

/* the live slot of h, or NULL */
static lw_hslot *slot_of(lw_store *s, lw_handle h) {
  uint64_t u = (uint64_t)h, slot = u & SLOT_MAX;
  uint32_t serial = (uint32_t)(u >> 32);
  if (h <= 0 || serial == 0 || slot >= s->hcap) return NULL;
  if (s->hslots[slot].serial != serial) return NULL;
  return &s->hslots[slot];
}

/* room for one more handle: LW_OK or LW_EMEM (nothing changed) */
static int reserve(lw_store *s) {
  size_t ncap, j;
  lw_hslot *nv;
  if (s->hfree != 0) return LW_OK;
  ncap = s->hcap ? s->hcap * 2 : 8;
  if (ncap > (size_t)SLOT_MAX) return LW_EMEM;
  nv = (lw_hslot *)s->f(s->ud, s->hslots, s->hcap * sizeof(lw_hslot),
                        ncap * sizeof(lw_hslot));
  if (nv == NULL) return LW_EMEM;
  for (j = ncap; j > s->hcap; j--) { /* the free list, lowest first */
    nv[j - 1].serial = 0;
    nv[j - 1].ref = (int)s->hfree;
    s->hfree = j;
  }
  if (s->hcap == 0 && s->hserial == 0) /* see the header comment */
    s->hserial = (uint32_t)(((uintptr_t)s >> 4) * 2654435761u) & SERIAL_MAX;
  s->hslots = nv;
  s->hcap = ncap;
  return LW_OK;
}

static void slot_free(lw_store *s, lw_hslot *hs) {
  hs->serial = 0;
  hs->ref = (int)s->hfree;
  s->hfree = (size_t)(hs - s->hslots) + 1;
  s->hlive--;
}

lw_handle lw_hold(lw_store *s, lua_State *L, int idx) {
  lua_State *co;
  lw_hslot *hs;
  int e, ref;
  if ((e = usable(s, L)) != LW_OK) return e;
  if ((co = lua_tothread(L, idx)) == NULL) return LW_EINVAL;
  if (lw_universe(co) != s->universe) return LW_EUNIVERSE;
  lua_pushvalue(L, idx);
  ref = luaL_ref(L, LUA_REGISTRYINDEX); /* may raise; may run a __gc */
  if (reserve(s) != LW_OK) {
    lw_unref(L, LUA_NOREF, ref);
    return LW_EMEM;
  }
  if ((e = lw_track(s, co)) != LW_OK) { /* allocates no Lua memory */
    lw_unref(L, LUA_NOREF, ref);
    return e;
  }
  hs = &s->hslots[s->hfree - 1];
  s->hfree = (size_t)hs->ref;
  if (++s->hserial > SERIAL_MAX) s->hserial = 1;
  hs->serial = s->hserial;
  hs->ref = ref;
  s->hlive++;
  return (lw_handle)(((uint64_t)hs->serial << 32) | (uint64_t)(hs - s->hslots));
}

lua_State *lw_handle_thread(lw_store *s, lua_State *L, lw_handle h) {
  lw_hslot *hs;
  lua_State *co;
  if (usable(s, L) != LW_OK || (hs = slot_of(s, h)) == NULL) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, hs->ref);
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  return co;
}

int lw_release(lw_store *s, lua_State *L, lw_handle h) {
  lw_hslot *hs;
  int e = usable(s, L);
  if (e != LW_OK) return e;
  if (h <= 0) return LW_EINVAL;
  if ((hs = slot_of(s, h)) == NULL) return LW_ESTALE;
  lw_unref(L, LUA_NOREF, hs->ref);
  slot_free(s, hs);
  return LW_OK;
}

int lw_handle_take(lw_store *s, lua_State *L, lw_handle h) {
  lw_hslot *hs;
  lua_State *co;
  int n, e = usable(s, L);
  if (e != LW_OK) return e;
  if (h <= 0) return LW_EINVAL;
  if ((co = lw_handle_thread(s, L, h)) == NULL) return LW_ESTALE;
  n = lw_take(s, co, L); /* may raise, or run a __gc that releases h */
  if (n > 0 && (hs = slot_of(s, h)) != NULL) {
    lw_unref(L, LUA_NOREF, hs->ref);
    slot_free(s, hs);
  }
  return n;
}

void lw_handle_free_all(lw_store *s) {
  if (s->hslots) s->f(s->ud, s->hslots, s->hcap * sizeof(lw_hslot), 0);
  s->hslots = NULL;
  s->hcap = s->hlive = s->hfree = 0; /* hserial goes on: old handles stay stale */
}
