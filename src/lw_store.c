/*
** lw_store.c — the result store: track, resume-and-record, status,
** result, take, untrack, cancel, reset (handles: lw_handle.c).
**
** The promise: a result is never handed to the wrong thread and never
** kept after nobody can ask for it.  How it is kept:
**
** 1. Thread addresses get reused (the GC frees a thread, the next one may
**    land at the same address).  A finalizer or a weak table would tell us
**    of a death too late: after a new thread may already have taken the
**    address.  So the store wraps the Lua state's allocator and removes a
**    thread's entry at the very call that frees its memory; an address can
**    only be handed out again after that call.  An entry in the map is
**    therefore always about the live thread at that address.  Threads
**    recycled with lw_reset are untracked first; a thread reset behind
**    luaweave's back is caught by validation (3) where it can be.
**
** 2. Results live where they already are.  A yielded thread holds its
**    values on top of its own stack and a failed one its error object: the
**    record is a count and the stack top, nothing is copied, and the values
**    die with the thread.  A returned thread cannot keep values on its
**    stack (Lua would think it suspended), so they go into one weak-keyed
**    table, keyed by the thread (one value as is, several packed: a
**    userdata with user values on 5.4, a table before); the GC clears the
**    entry when the thread dies.  On Lua 5.2+
**    that table is an ephemeron, so values that refer back to their thread
**    do not keep it alive; Lua 5.1 and LuaJIT lack ephemerons, and there
**    such a value keeps its thread until it is taken or untracked.
**
** 3. Before a record is trusted it is checked against the thread (status
**    and stack top).  A thread resumed or reset behind luaweave's back
**    into another status or stack height no longer matches; its stale
**    record is dropped, never served.  A dead thread run again raw to a
**    dead, empty end cannot be told from the one recorded through the
**    public API (no resume counter is visible): that is the host's duty
**    (luaweave.h, lw_resume), pinned by test_raw_moves.
**
** A record pointer is invalidated by anything that may allocate Lua
** memory (the GC may free a tracked thread, and removal shifts slots), so
** functions look the record up again after such calls, unless the map's
** generation (lw_map.h) says nothing moved.
**
** The record is shared with the scheduler (lw_store.h): one probe per
** resumption finds both the result and the task state.  A thread the
** scheduler runs but the store no longer tracks keeps a record with
** status 0; lw_store_count counts only tracked ones.
*/
#include "lw_store.h"
#include "lw_compat.h"

#include <string.h>

/* ------------------------------------------------------------------ */
/* helpers                                                             */

int lwst_check(lw_store *s, lua_State *co) {
  if (s == NULL || co == NULL || s->closed) return LW_EINVAL;
  if (lw_universe(co) != s->universe) return LW_EUNIVERSE;
  return LW_OK;
}

lw_rec *lwst_find(lw_store *s, lua_State *co) {
  return lw_map_find(&s->map, co);
}

/* Counts.  A record holds up to NRES_MAX values recorded and a stack top
   up to BELOW_MAX above them; a yield's values are usually its whole
   frame (below is 0).  Bigger counts go to the wide map: rare, never on
   a hot path.  Its records hold nres in nres|below<<13 and the top in
   ticket. */
#define NRES_MAX 8191u
#define BELOW_MAX 1023u
#define WIDE_MAX 0x7fffffu

static unsigned rec_nres(lw_store *s, const lua_State *co, const lw_rec *r) {
  const lw_rec *w;
  if (!r->wide) return r->nres;
  w = lw_map_find(&s->wide, co);
  return w->nres | ((unsigned)w->below << 13);
}

/* co's stack top when a result kept on its stack was recorded */
static unsigned rec_top(lw_store *s, const lua_State *co, const lw_rec *r) {
  if (!r->wide) return r->nres + r->below;
  return lw_map_find(&s->wide, co)->ticket;
}

static void counts_clear(lw_store *s, const lua_State *co, lw_rec *r) {
  if (r->wide) {
    lw_map_remove(&s->wide, co); /* another map: r stays put */
    r->wide = 0;
  }
  r->nres = 0;
  r->below = 0;
}

/* nres values recorded, co's top then top (>= nres; values kept off the
   stack pass top = nres); LW_EMEM if they need the wide map and it
   cannot grow (nothing is recorded then) */
int lwst_counts_set(lw_store *s, const lua_State *co, lw_rec *r,
                      unsigned nres, unsigned top) {
  lw_rec *w;
  if (nres <= NRES_MAX && top - nres <= BELOW_MAX) {
    counts_clear(s, co, r);
    r->nres = nres;
    r->below = top - nres;
    return LW_OK;
  }
  if (nres > WIDE_MAX || top < nres || lw_map_insert(&s->wide, co, &w) < 0) {
    counts_clear(s, co, r);
    return LW_EMEM;
  }
  w->nres = nres & NRES_MAX;
  w->below = nres >> 13;
  w->ticket = top;
  r->wide = 1;
  r->nres = 0;
  r->below = 0;
  return LW_OK;
}

/* nothing recorded, in the given status */
void lwst_rec_reset(lw_store *s, const lua_State *co, lw_rec *r, int status) {
  r->status = (unsigned)status;
  r->vals = 0;
  counts_clear(s, co, r);
}

/* Drop co's entry in the values table.  Only called while the entry
   exists, so the raw set replaces a value and cannot allocate; the thread
   is dead with an empty stack (or is the caller), so the few slots used
   are there. */
void lwst_clear_vals(lw_store *s, lua_State *co) {
  /* kept in C: the table holds nothing of this life (at most a stale
     entry of an earlier one, never read again: a new filing replaces
     it), and a nil set on an absent key may allocate before 5.4 */
  if (lwst_cv_drop(s, co)) return;
  lua_rawgeti(co, LUA_REGISTRYINDEX, s->vref);
  lua_pushthread(co);
  lua_pushnil(co);
  lua_rawset(co, -3);
  lua_pop(co, 1);
}

/* The record still describes co, with `above` values pushed on top of
   it since?  A thread resumed or reset behind our back no longer matches,
   and its record must not be served.  Only results kept on co's stack,
   and a dead co's emptiness, need a look at co. */
static int rec_valid(lw_store *s, lua_State *co, const lw_rec *r, int above) {
  int st, top;
  switch (r->status) {
    case LW_YIELDED: case LW_RETURNED: case LW_FAILED: case LW_CANCELLED:
      break;
    default: return 1;
  }
  st = lua_status(co);
  top = lua_gettop(co) - above;
  switch (r->status) {
    case LW_YIELDED:
      return st == LUA_YIELD && top >= 0 && (unsigned)top == rec_top(s, co, r);
    case LW_RETURNED:
      return st == LUA_OK && top == 0;
    case LW_CANCELLED:
      if (co == s->closing) return 1; /* lw_cancel is closing it */
      /* cancelled as a yield Lua cannot close (nres 1 says so): only a
         reset ends that yield, and a reset leaves status OK, so what its
         stack holds now is still the cancelled life's.  Any other yield
         is a new life */
      if (st == LUA_YIELD) return rec_nres(s, co, r) == 1;
      /* as cancel left it (dead and empty, or dead by an error): new work
         pushed onto co since (a reset behind our back, a function on its
         empty stack) is a new life */
      return rec_nres(s, co, r) == 0 && top >= 0 &&
             (unsigned)top == rec_top(s, co, r) && (st != LUA_OK || top == 0);
    default: /* failed */
      if (r->vals) return st == LUA_OK && top == 0;
      return st != LUA_OK && st != LUA_YIELD && top >= 1 &&
             (unsigned)top == rec_top(s, co, r);
  }
}

/* r (co's record, current) checked against co: a stale one becomes
   pending; r stays where it is */
lw_rec *lwst_validate(lw_store *s, lua_State *co, lw_rec *r, int above) {
  if (!rec_valid(s, co, r, above)) {
    int had = r->vals;
    lwst_rec_reset(s, co, r, LW_PENDING);
    if (had) lwst_clear_vals(s, co);
  }
  return r;
}

/* co's validated record, or NULL if untracked */
lw_rec *lwst_lookup(lw_store *s, lua_State *co) {
  lw_rec *r = lwst_find(s, co);
  if (r == NULL || r->status == 0) return NULL;
  return lwst_validate(s, co, r, 0);
}

/* co's end is recorded: tell whoever listens (the one end path) */
void lwst_ended(lw_store *s, lua_State *co, lua_State *L) {
  if (s->onend != NULL) s->onend(s->onend_ud, co, L);
}

/* ------------------------------------------------------------------ */
/* the public operations                                               */

size_t lw_store_count(const lw_store *s) {
  return (s == NULL || s->closed) ? 0 : s->tracked;
}

size_t lw_store_bytes(const lw_store *s) {
  if (s == NULL) return 0;
  return sizeof *s + (lw_map_capacity(&s->map) + lw_map_capacity(&s->wide) +
                      lw_map_capacity(&s->cvals)) * sizeof(lw_slot) +
         s->hcap * sizeof(lw_hslot);
}

unsigned long lw_store_freed(const lw_store *s) {
  return s ? s->freed : 0;
}

uintptr_t lw_key(const lua_State *co) { return (uintptr_t)co; }

lw_rec *lw_store_track(lw_store *s, lua_State *co) {
  lw_rec *r;
  /* the allocator hook removes freed threads but must not allocate, so
     a map emptied by the GC is shrunk here, on the next track */
  if (s->map.count * 8 < lw_map_capacity(&s->map)) lw_map_compact(&s->map);
  if (s->wide.count * 8 < lw_map_capacity(&s->wide)) lw_map_compact(&s->wide);
  if (s->cvals.count * 8 < lw_map_capacity(&s->cvals)) lw_map_compact(&s->cvals);
  if (lw_map_insert(&s->map, co, &r) < 0) return NULL;
  if (r->status == 0) {
    r->status = LW_PENDING;
    s->tracked++;
  }
  return r;
}

int lw_track(lw_store *s, lua_State *co) {
  int e = lwst_check(s, co);
  if (e != LW_OK) return e;
  if (lw_store_ismain(s, co)) return LW_ESTATE; /* never a coroutine */
  return lw_store_track(s, co) != NULL ? LW_OK : LW_EMEM;
}

void lw_store_release(lw_store *s, lua_State *co, lw_rec *r) {
  if (r->status == 0 && r->task == 0) {
    lwst_cv_drop(s, co); /* a stale life's, untracked: nobody reads it */
    lw_map_remove_rec(&s->map, r); /* (another map: r stayed put) */
  }
}

/* co returned and its values are filed, but the one telling of its end
   untracks it (a __gc, an end handler): whoever resumed co was promised
   the values on co's stack when it ends untracked (lw_resume), and
   reads them there after the telling.  co is dead with an empty stack;
   growing it runs no collection.  Without room they are lost (nil). */
static void unfile_values(lw_store *s, lua_State *co, lw_rec *r) {
  int n = (int)rec_nres(s, co, r), i, t;
  if (n <= 0 || !lua_checkstack(co, n + 3)) return;
  if (lwst_cv_push(s, co, co) >= 0) return; /* kept in C */
  lwst_push_vals(s, co, co); /* the pack, or the one value */
  if (n == 1) return;
  t = lua_gettop(co);
  for (i = 1; i <= n; i++) lw_pack_get(co, t, i, n);
  lua_remove(co, t);
}

/* forget co's result (r: its record, current and tracked); the record
   itself stays while the scheduler needs it */
static void untrack_rec(lw_store *s, lua_State *co, lw_rec *r) {
  if (r->vals && rec_valid(s, co, r, 0)) {
    if (co == s->ending) {
      /* values kept in C are pushed as new strings: the GC may run, and
         move r */
      unsigned long g = s->map.gen;
      unfile_values(s, co, r);
      r = lw_store_refind(s, co, r, g);
    }
    lwst_clear_vals(s, co);
  }
  lwst_rec_reset(s, co, r, 0);
  s->tracked--;
  lw_store_release(s, co, r);
}

int lw_untrack(lw_store *s, lua_State *co) {
  lw_rec *r;
  int e = lwst_check(s, co);
  if (e != LW_OK) return e;
  if ((r = lwst_find(s, co)) == NULL || r->status == 0) return LW_ENOTTRACKED;
  untrack_rec(s, co, r);
  lw_map_compact(&s->map);
  return LW_OK;
}

int lw_store_status(lw_store *s, lua_State *co, lw_rec *r) {
  if (r == NULL || r->status == 0) return LW_UNTRACKED;
  return (int)lwst_validate(s, co, r, 0)->status;
}

/* Validation reads co's status and stack top, which sit at the start
   of co's lua_State: a second cache miss after the map's, but one whose
   address is known before the probe, so it is fetched beside it */
#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

int lw_status(lw_store *s, lua_State *co) {
  lw_rec *r;
  if (s == NULL || co == NULL || s->closed) return LW_EINVAL;
  PREFETCH(co);
  r = lwst_find(s, co);
  /* a key in the map is a live thread of this universe (entries die
     with their thread), so only the others need the universe check */
  if ((r == NULL || r->status == 0) && lw_universe(co) != s->universe)
    return LW_EUNIVERSE;
  return lw_store_status(s, co, r);
}

/* resumable as coroutine.resume sees it, from `from` */
static int resumable(lua_State *co, lua_State *from, int nargs) {
  lua_Debug ar;
  if (co == from) return 0;
  switch (lua_status(co)) {
    case LUA_YIELD: return 1;
    case LUA_OK:
      if (lua_getstack(co, 0, &ar)) return 0;
      return lua_gettop(co) > nargs; /* a function below the arguments */
    default: return 0;
  }
}

/* Files values into the values table: values[k] = v1 (one value) or a
   pack of v1..vn.  Runs protected, on the returned thread itself, with
   k, v1..vn as its arguments; upvalue 1 is the table.  k is the thread
   (its returned values) or 0 (the __gc error kept by record_return). */
int lwst_values_filer(lua_State *co) {
  int n = lua_gettop(co) - 1, i;
  lua_pushvalue(co, lua_upvalueindex(1));
  lua_pushvalue(co, 1);
  if (n == 1) {
    lua_pushvalue(co, 2);
  } else {
    lw_pack_new(co, n);
    for (i = 1; i <= n; i++) {
      lua_pushvalue(co, i + 1);
      lw_pack_set(co, -2, i, n);
    }
  }
  lua_rawset(co, -3);
  return 0;
}

/* Filing allocates, so the GC may run finalizers inside it, and before
   5.4 an error in one propagates through the allocating call (5.1 and
   LuaJIT raise the finalizer's own error, 5.2 and 5.3 LUA_ERRGCMM); 5.4
   turns it into a warning.  Such an error says nothing about the
   values, so filing passes copies (the values stay on co's stack) and
   is tried again: the finalizer that raised has run, and Lua never runs
   a finalizer twice, so each try makes progress.  FILE_TRIES bounds
   finalizers that keep making new failing garbage. */
#define FILE_TRIES 64

/* values[co, or 0 if zero] = co's n values from index first (copies);
   LUA_OK, else an error status (nothing filed, nothing pushed).  The
   first __gc error caught is left on co's top, *kept set; later ones
   are dropped (a call raises one error) */
static int file_values(lw_store *s, lua_State *co, int first, int n,
                       int zero, int *kept) {
  int i, st, tries;
  if (!lua_checkstack(co, n + 2)) {
    /* no room for copies (5.1 and LuaJIT cap a C stack at 8,000 slots:
       a return of more than about 4,000 values): file the values
       themselves, as one try; a __gc error then costs them.  There
       lua_checkstack refuses even 2 slots (the cap counts what is on
       the stack already); the stack Lua grew for the values has them */
    lua_rawgeti(co, LUA_REGISTRYINDEX, s->recref);
    lua_insert(co, first);
    if (zero) lua_pushinteger(co, 0);
    else lua_pushthread(co);
    lua_insert(co, first + 1);
    st = lua_pcall(co, n + 1, 0, 0);
    if (st != LUA_OK) lua_pop(co, 1); /* the error object */
    return st;
  }
  for (tries = 0;; tries++) {
    if (!lua_checkstack(co, n + 2)) return LUA_ERRMEM;
    lua_rawgeti(co, LUA_REGISTRYINDEX, s->recref);
    if (zero) lua_pushinteger(co, 0);
    else lua_pushthread(co);
    for (i = 0; i < n; i++) lua_pushvalue(co, first + i);
    st = lua_pcall(co, n + 1, 0, 0);
    if (st == LUA_OK) return st;
    if (st == LUA_ERRMEM || tries == FILE_TRIES || *kept) {
      lua_pop(co, 1);
      if (st == LUA_ERRMEM || tries == FILE_TRIES) return st;
    } else {
      *kept = 1; /* stays on co's top; the values' indices are absolute */
    }
  }
}

/* the __gc error record_return kept, onto L, and forgotten; 0 (nothing
   pushed) if there is none */
int lw_store_gcerror(lw_store *s, lua_State *L) {
  if (s == NULL || s->closed || s->vref == LUA_NOREF) return 0;
  luaL_checkstack(L, 3, "gc error");
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->vref);
  lua_rawgeti(L, -1, 0);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pushnil(L);
  lua_rawseti(L, -3, 0); /* a present key: no allocation */
  lua_remove(L, -2);
  return 1;
}

/* record a return of n values (on co's stack); *rp: co's record (current,
   tracked), afterwards co's record again (may be untracked, or NULL).
   A __gc error caught while filing (see file_values) is kept at
   values[0] and counted in s->gcerrs; lw_resume records the results
   and returns the resumption's status all the same, and the Lua
   functions (lw.resume, coroutine.resume/wrap under install) raise it
   after recording, as the allocating call it interrupted would have. */
static int record_return(lw_store *s, lua_State *co, lw_rec **rp, int n) {
  lw_rec *r = *rp;
  if (n > 0 && lwst_cv_file(s, co, 1, n)) {
    lua_settop(co, 0); /* kept in C: no Lua allocation, r stays */
  } else if (n > 0) {
    unsigned long gen = s->map.gen;
    int st, kept = 0;
    lwst_cv_drop(s, co); /* an earlier life's, which reads would find first */
    st = file_values(s, co, 1, n, 0, &kept); /* may collect: r moves */
    if (kept) {
      int e2 = kept;
      if (st == LUA_OK &&
          file_values(s, co, lua_gettop(co), 1, 1, &e2) == LUA_OK)
        s->gcerrs++;
      lua_pop(co, 1); /* the kept error; lost only with memory */
    }
    *rp = r = lw_store_refind(s, co, r, gen);
    if (st != LUA_OK) {
      /* out of memory (or FILE_TRIES failing finalizers): co goes
         untracked; memory errors as before, without its values */
      if (st == LUA_ERRMEM) lua_settop(co, 0);
      if (r != NULL && r->status != 0) {
        lwst_rec_reset(s, co, r, 0);
        s->tracked--;
        lw_store_release(s, co, r);
        *rp = lwst_find(s, co);
      }
      return st == LUA_ERRMEM ? LW_EMEM : LW_OK;
    }
    if (r == NULL || r->status == 0) { /* untracked by a __gc meanwhile: */
      lwst_clear_vals(s, co); /* its values stay on its stack, as lua_resume's */
      return LW_OK;
    }
    lua_settop(co, 0); /* filed: co is dead as Lua sees it */
  }
  if (r == NULL || r->status == 0) return LW_OK; /* untracked meanwhile */
  r->status = LW_RETURNED;
  r->vals = n > 0;
  if (lwst_counts_set(s, co, r, (unsigned)n, (unsigned)n) != LW_OK) {
    untrack_rec(s, co, r);
    *rp = lwst_find(s, co);
    return LW_EMEM;
  }
  return LW_OK;
}

int lw_store_resume(lw_store *s, lua_State *co, lw_rec *r, lua_State *from,
                    int nargs, int *nres, lw_rec **after) {
  int st, n = 0, e = LW_OK;
  unsigned long gen;
  if (after) *after = r;
  if (nargs < 0 || lua_gettop(co) < nargs) return LW_EINVAL;
  if (r != NULL && r->status != 0) {
    lwst_validate(s, co, r, nargs); /* the arguments sit on the record */
    if (r->status == LW_CANCELLED) return LW_ESTATE;
  }
  if (r != NULL && r->status == LW_YIELDED) {
    /* the recorded values sit under the arguments: Lua wants them gone */
    int k = (int)rec_nres(s, co, r);
    if (!resumable(co, from, nargs + k)) return LW_ESTATE;
    lw_co_dropbelow(co, k, nargs);
  } else if (!resumable(co, from, nargs)) {
    return LW_ESTATE;
  }
  if (r != NULL && r->task != 0 && s->onresume != NULL) {
    /* a task resumed here: its scheduler learns it (a wait or await
       this resumption interrupts must not resume it again) */
    unsigned long g = s->map.gen;
    s->onresume(s->onend_ud, co);
    r = lw_store_refind(s, co, r, g);
  }
  if (r != NULL && r->status != 0) lwst_rec_reset(s, co, r, LW_RUNNING);
  gen = s->map.gen;
  st = lw_co_resume(co, from, nargs, &n);
  if (nres) *nres = n;
  /* an untracked co may have tracked itself meanwhile */
  r = r == NULL ? lwst_find(s, co) : lw_store_refind(s, co, r, gen);
  if (r != NULL && r->status != 0) {
    if (st == LUA_YIELD) {
      r->status = LW_YIELDED;
      r->vals = 0;
      e = lwst_counts_set(s, co, r, (unsigned)n, (unsigned)lua_gettop(co));
    } else if (st == LUA_OK) {
      e = record_return(s, co, &r, n);
    } else {
      r->status = LW_FAILED;
      r->vals = 0;
      e = lwst_counts_set(s, co, r, 1, (unsigned)lua_gettop(co));
    }
    if (e != LW_OK && r != NULL && r->status != 0) { /* counts too big */
      untrack_rec(s, co, r);
      r = lwst_find(s, co);
    }
    if (st != LUA_YIELD && r != NULL && r->status != 0 &&
        lwst_validate(s, co, r, 0)->status != LW_PENDING) { /* not refused */
      unsigned long g = s->map.gen;
      lua_State *prev = s->ending;
      s->ending = st == LUA_OK ? co : NULL;
      lwst_ended(s, co, from);
      s->ending = prev;
      r = lw_store_refind(s, co, r, g);
    }
  }
  if (after) *after = r;
  return e != LW_OK ? LW_EMEM : st;
}

int lw_resume(lw_store *s, lua_State *co, lua_State *from, int nargs,
              int *nres) {
  int e = lwst_check(s, co);
  if (e != LW_OK) return e;
  if (lw_store_ismain(s, co)) return LW_ESTATE; /* one compare */
  return lw_store_resume(s, co, lwst_find(s, co), from, nargs, nres, NULL);
}

/* copy the top n values of co onto L, leaving co as it was */
static void copy_top(lua_State *co, lua_State *L, int n) {
  int i, base;
  lua_xmove(co, L, n);
  base = lua_gettop(L) - n;
  for (i = 1; i <= n; i++) lua_pushvalue(L, base + i);
  lua_xmove(L, co, n);
}

/* push co's entry of the values table onto L */
void lwst_push_vals(lw_store *s, lua_State *co, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->vref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_rawget(L, -2);
  lua_replace(L, -2);
}

int lw_result(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *r;
  int n, i;
  if (s == NULL || co == NULL || L == NULL || s->closed) return LW_EINVAL;
  if (lw_universe(L) != s->universe) return LW_EUNIVERSE;
  r = lwst_find(s, co);
  if (r == NULL || r->status == 0) /* found: co is ours (lw_status) */
    return lw_universe(co) != s->universe ? LW_EUNIVERSE : LW_ENOTTRACKED;
  lwst_validate(s, co, r, 0);
  n = (int)rec_nres(s, co, r);
  switch (r->status) {
    case LW_YIELDED:
      luaL_checkstack(L, 2 * n + 1, "too many results");
      lua_pushboolean(L, 1);
      copy_top(co, L, n);
      return n + 1;
    case LW_RETURNED:
      luaL_checkstack(L, n + 3, "too many results");
      lua_pushboolean(L, 1);
      if (n == 0 || lwst_cv_push(s, co, L) >= 0) return n + 1; /* kept in C */
      lua_pop(L, 1);
      lwst_push_vals(s, co, L); /* the pack, or the one value */
      if (n == 1) {
        lua_pushboolean(L, 1);
        lua_insert(L, -2);
      } else {
        int t = lua_gettop(L);
        for (i = 1; i <= n; i++) lw_pack_get(L, t, i, n);
        lua_pushboolean(L, 1);
        lua_replace(L, t); /* true where the pack was: no rotation */
      }
      return n + 1;
    case LW_FAILED: {
      int vals = r->vals; /* the stack check may collect, and move r */
      luaL_checkstack(L, 4, "too many results");
      lua_pushboolean(L, 0);
      if (vals) lwst_push_vals(s, co, L);
      else copy_top(co, L, 1);
      return 2;
    }
    case LW_CANCELLED:
      luaL_checkstack(L, 2, "too many results");
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "cancelled");
      return 2;
    default:
      luaL_checkstack(L, 1, "too many results");
      lua_pushnil(L);
      return 1;
  }
}

int lw_take(lw_store *s, lua_State *co, lua_State *L) {
  int n = lw_result(s, co, L);
  if (n > 0) lw_untrack(s, co);
  return n;
}

const char *lw_status_name(int status) {
  static const char *const names[] = {"untracked", "pending",  "yielded",
                                      "returned",  "failed",   "cancelled",
                                      "running"};
  if (status < 0 || status > LW_RUNNING) return NULL;
  return names[status];
}

int lw_store_check(lw_store *s) {
  size_t i = 0, tracked = 0, tasks = 0, wide = 0;
  lw_slot *sl;
  int e;
  if (s == NULL) return __LINE__;
  if ((e = lw_map_check(&s->map)) != 0) return e;
  if ((e = lw_map_check(&s->wide)) != 0) return e;
  if ((e = lw_map_check(&s->cvals)) != 0) return e;
  while ((sl = lw_map_next(&s->map, &i)) != NULL) {
    const lw_rec *r = &sl->rec;
    int counted = r->status == LW_YIELDED || r->status == LW_RETURNED ||
                  r->status == LW_FAILED || r->status == LW_CANCELLED;
    if (r->status > LW_RUNNING) return __LINE__;
    if (r->status == 0 && r->task == 0) return __LINE__; /* nobody's */
    if (!counted && (r->nres || r->below || r->vals || r->wide))
      return __LINE__;
    if (r->vals && r->status == LW_YIELDED) return __LINE__;
    if (r->status == LW_CANCELLED && (r->nres > 1 || r->vals)) return __LINE__;
    if (r->wide) {
      wide++;
      if (r->nres || r->below) return __LINE__;
      if (lw_map_find(&s->wide, sl->key) == NULL) return __LINE__;
    }
    if (r->status != 0) tracked++;
    if (r->task != 0) tasks++;
  }
  if (tracked != s->tracked || tasks != s->ntasks) return __LINE__;
  if (wide != s->wide.count) return __LINE__;
  /* values kept in C belong to a thread the store knows */
  i = 0;
  while ((sl = lw_map_next(&s->cvals, &i)) != NULL)
    if (lw_map_find(&s->map, sl->key) == NULL) return __LINE__;
  return 0;
}
