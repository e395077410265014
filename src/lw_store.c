/*
** lw_store.c — the result store: track, resume-and-record, status,
** result, take, untrack, cancel, reset, handles.
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
**    luaweave's back is caught by validation (3).
**
** 2. Results live where they already are.  A yielded thread holds its
**    values on top of its own stack and a failed one its error object: the
**    record is a count and the stack top, nothing is copied, and the values
**    die with the thread.  A returned thread cannot keep values on its
**    stack (Lua would think it suspended), so they go into one weak-keyed
**    table, keyed by the thread (one value as is, several packed in a
**    table); the GC clears the entry when the thread dies.  On Lua 5.2+
**    that table is an ephemeron, so values that refer back to their thread
**    do not keep it alive; Lua 5.1 and LuaJIT lack ephemerons, and there
**    such a value keeps its thread until it is taken or untracked.
**
** 3. Before a record is trusted it is checked against the thread (status
**    and stack top).  A thread resumed or reset behind luaweave's back no
**    longer matches; its stale record is dropped, never served.
**
** A record pointer is invalidated by anything that may allocate Lua
** memory (the GC may free a tracked thread, and removal shifts slots), so
** functions look the record up again after such calls.
*/
#include "lw_store.h"
#include "lw_compat.h"

#include <string.h>

static const char STORE_KEY = 'S'; /* registry key: address of this */

typedef struct box { lw_store *s; } box;

/* ------------------------------------------------------------------ */
/* the allocator hook                                                  */

static void *hook(void *ud, void *p, size_t osize, size_t nsize) {
  lw_store *s = (lw_store *)ud;
  if (nsize == 0 && p != NULL && osize == s->tblock) {
    if (lw_map_remove(&s->map, (char *)p + s->toff)) s->freed++;
    if (s->onfree) s->onfree(s->onfree_ud, (char *)p + s->toff);
  }
  return s->f(s->ud, p, osize, nsize);
}

/* ------------------------------------------------------------------ */
/* opening: learn where Lua puts a thread inside its memory block      */

typedef struct probe {
  lua_Alloc f;
  void *ud;
  int n;
  void *p[16];
  size_t size[16];
} probe;

static void *probe_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  probe *pr = (probe *)ud;
  void *r = pr->f(pr->ud, p, osize, nsize);
  if (r != NULL && nsize > 0 && p == NULL && pr->n < 16) {
    pr->p[pr->n] = r;
    pr->size[pr->n++] = nsize;
  }
  return r;
}

static int store_gc(lua_State *L);

static int values_filer(lua_State *co);

typedef struct opening {
  lw_store *s;
  probe pr; /* lives in lw_store_open's frame: outlasts a longjmp */
} opening;

/* runs protected: everything here may raise a memory error */
static int open_protected(lua_State *L) {
  opening *o = (opening *)lua_touserdata(L, 1);
  lw_store *s = o->s;
  lua_State *t;
  box *b;
  int i;
  o->pr.f = s->f;
  o->pr.ud = s->ud;
  lua_setallocf(L, probe_alloc, &o->pr);
  t = lua_newthread(L); /* on a memory error, lw_store_open restores */
  lua_setallocf(L, s->f, s->ud);
  for (i = 0; i < o->pr.n; i++) {
    char *p = (char *)o->pr.p[i];
    if ((char *)t >= p && (char *)t < p + o->pr.size[i]) {
      s->tblock = o->pr.size[i];
      s->toff = (char *)t - p;
    }
  }
  lua_pop(L, 1);
  if (s->tblock == 0) return luaL_error(L, "luaweave: cannot locate threads");
  lua_createtable(L, 0, 0);
  lw_setweak(L, "k");
  s->vref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->vref);
  lua_pushcclosure(L, values_filer, 1);
  s->recref = luaL_ref(L, LUA_REGISTRYINDEX);
  b = (box *)lua_newuserdata(L, sizeof(box));
  b->s = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, store_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lw_rawsetp(L, LUA_REGISTRYINDEX, &STORE_KEY);
  b->s = s; /* from here on the store is owned by the box */
  return 0;
}

static lw_store *registry_store(lua_State *L) {
  box *b = (box *)lw_registry_udata(L, &STORE_KEY);
  return b ? b->s : NULL;
}

lw_store *lw_store_get(lua_State *L) {
  void *ud;
  if (L == NULL) return NULL;
  if (lua_getallocf(L, &ud) == hook) return (lw_store *)ud;
  return registry_store(L);
}

lw_store *lw_store_open(lua_State *L) {
  lw_store *s;
  lua_Alloc f;
  void *ud;
  opening o;
  int e;
  if (L == NULL) return NULL;
  if ((s = lw_store_get(L)) != NULL) return s;
  f = lua_getallocf(L, &ud);
  s = (lw_store *)f(ud, NULL, 0, sizeof *s);
  if (s == NULL) return NULL;
  memset(s, 0, sizeof *s);
  s->f = f;
  s->ud = ud;
  s->universe = lw_universe(L);
  s->vref = s->recref = LUA_NOREF;
  lw_map_init(&s->map, f, ud);
  memset(&o, 0, sizeof o);
  o.s = s;
  if ((e = lw_cpcall(L, open_protected, &o)) != LUA_OK) {
    if (e > 0) lua_pop(L, 1); /* the error object */
    lua_setallocf(L, f, ud);
    lw_unref(L, LUA_NOREF, s->vref);
    lw_unref(L, LUA_NOREF, s->recref);
    f(ud, s, sizeof *s, 0);
    return NULL;
  }
  lua_setallocf(L, hook, s);
  return s;
}

/* The state is closing (or the box was collected, which only happens
   then).  Step out of the allocator chain if we are its head; if someone
   wrapped us, the hook must keep working, so the store stays allocated
   (closed and empty) and is lost with the process. */
static int store_gc(lua_State *L) {
  box *b = (box *)lua_touserdata(L, 1);
  lw_store *s = b->s;
  void *ud;
  if (s == NULL) return 0;
  b->s = NULL;
  s->closed = 1;
  if (s->backref) *s->backref = NULL; /* whoever listens must let go */
  s->onfree = NULL;
  lw_map_free(&s->map);
  if (lua_getallocf(L, &ud) == hook && ud == s) {
    lua_setallocf(L, s->f, s->ud);
    s->f(s->ud, s, sizeof *s, 0);
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static int check(lw_store *s, lua_State *co) {
  if (s == NULL || co == NULL || s->closed) return LW_EINVAL;
  if (lw_universe(co) != s->universe) return LW_EUNIVERSE;
  return LW_OK;
}

static lw_rec *find(lw_store *s, lua_State *co) {
  return lw_map_find(&s->map, co);
}

/* Drop co's entry in the values table.  Only called while the entry
   exists, so the raw set replaces a value and cannot allocate; the thread
   is dead with an empty stack (or is the caller), so the few slots used
   are there. */
static void clear_vals(lw_store *s, lua_State *co) {
  lua_rawgeti(co, LUA_REGISTRYINDEX, s->vref);
  lua_pushthread(co);
  lua_pushnil(co);
  lua_rawset(co, -3);
  lua_pop(co, 1);
}

/* The record still describes co, with `above` values pushed on top of
   it since?  A thread resumed or reset behind our back no longer matches,
   and its record must not be served. */
static int rec_valid(lua_State *co, const lw_rec *r, int above) {
  int st = lua_status(co), top = lua_gettop(co) - above;
  switch (r->status) {
    case LW_YIELDED:
      return st == LUA_YIELD && (unsigned)top == r->top && r->nres <= r->top;
    case LW_RETURNED:
      return st == LUA_OK && top == 0;
    case LW_FAILED:
      if (r->flags & LW_F_VALS) return st == LUA_OK && top == 0;
      return st != LUA_OK && st != LUA_YIELD && top >= 1 &&
             (unsigned)top == r->top;
    default:
      return 1;
  }
}

/* find co's record and drop it if stale; NULL if untracked */
static lw_rec *lookup_above(lw_store *s, lua_State *co, int above) {
  lw_rec *r = find(s, co);
  if (r != NULL && !rec_valid(co, r, above)) {
    int had = r->flags & LW_F_VALS;
    r->status = LW_PENDING;
    r->flags = 0;
    r->nres = 0;
    r->top = 0;
    if (had) clear_vals(s, co);
  }
  return r;
}

static lw_rec *lookup(lw_store *s, lua_State *co) {
  return lookup_above(s, co, 0);
}

/* ------------------------------------------------------------------ */
/* the public operations                                               */

size_t lw_store_count(const lw_store *s) {
  return (s == NULL || s->closed) ? 0 : s->map.count;
}

size_t lw_store_bytes(const lw_store *s) {
  if (s == NULL) return 0;
  return sizeof *s + lw_map_capacity(&s->map) * sizeof(lw_slot);
}

unsigned long lw_store_freed(const lw_store *s) {
  return s ? s->freed : 0;
}

uintptr_t lw_key(const lua_State *co) { return (uintptr_t)co; }

int lw_track(lw_store *s, lua_State *co) {
  lw_rec *r;
  int e = check(s, co), added;
  if (e != LW_OK) return e;
  /* the allocator hook removes freed threads but must not allocate, so
     a map emptied by the GC is shrunk here, on the next track */
  if (s->map.count * 8 < lw_map_capacity(&s->map)) lw_map_compact(&s->map);
  added = lw_map_insert(&s->map, co, &r);
  if (added < 0) return LW_EMEM;
  if (added) r->status = LW_PENDING;
  return LW_OK;
}

int lw_untrack(lw_store *s, lua_State *co) {
  lw_rec *r;
  int e = check(s, co);
  if (e != LW_OK) return e;
  if ((r = find(s, co)) == NULL) return LW_ENOTTRACKED;
  if ((r->flags & LW_F_VALS) && rec_valid(co, r, 0)) clear_vals(s, co);
  lw_map_remove(&s->map, co);
  lw_map_compact(&s->map);
  return LW_OK;
}

int lw_status(lw_store *s, lua_State *co) {
  lw_rec *r;
  int e = check(s, co);
  if (e != LW_OK) return e;
  r = lookup(s, co);
  return r ? (int)r->status : LW_UNTRACKED;
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

/* Files the values a thread returned into the values table.  Runs
   protected, on the returned thread itself, with the values as its
   arguments; upvalue 1 is the table. */
static int values_filer(lua_State *co) {
  int n = lua_gettop(co), i;
  lua_pushvalue(co, lua_upvalueindex(1));
  lua_pushthread(co);
  if (n == 1) {
    lua_pushvalue(co, 1);
  } else {
    lua_createtable(co, n, 0);
    for (i = 1; i <= n; i++) {
      lua_pushvalue(co, i);
      lua_rawseti(co, -2, i);
    }
  }
  lua_rawset(co, -3);
  return 0;
}

/* record a return of n values (on co's stack) */
static int record_return(lw_store *s, lua_State *co, int n) {
  lw_rec *r;
  if (n > 0) {
    lua_rawgeti(co, LUA_REGISTRYINDEX, s->recref);
    lua_insert(co, 1);
    if (lua_pcall(co, n, 0, 0) != LUA_OK) {
      lua_settop(co, 0);
      if ((r = find(s, co)) != NULL) lw_map_remove(&s->map, co);
      return LW_EMEM;
    }
  }
  if ((r = find(s, co)) == NULL) return LW_OK; /* untracked by a __gc */
  r->status = LW_RETURNED;
  r->flags = n > 0 ? LW_F_VALS : 0;
  r->nres = (unsigned)n;
  r->top = 0;
  return LW_OK;
}

int lw_resume(lw_store *s, lua_State *co, lua_State *from, int nargs,
              int *nres) {
  lw_rec *r;
  int e = check(s, co), st, n = 0;
  if (e != LW_OK) return e;
  if (nargs < 0 || lua_gettop(co) < nargs) return LW_EINVAL;
  r = lookup_above(s, co, nargs); /* the arguments sit on the record */
  if (r != NULL && r->status == LW_CANCELLED) return LW_ESTATE;
  if (r != NULL && r->status == LW_YIELDED) {
    /* the recorded values sit under the arguments: Lua wants them gone */
    if (!resumable(co, from, nargs + (int)r->nres)) return LW_ESTATE;
    lw_co_dropbelow(co, (int)r->nres, nargs);
  } else if (!resumable(co, from, nargs)) {
    return LW_ESTATE;
  }
  if (r != NULL) {
    r->status = LW_RUNNING;
    r->flags = 0;
    r->nres = 0;
    r->top = 0;
  }
  st = lw_co_resume(co, from, nargs, &n);
  if (nres) *nres = n;
  if ((r = find(s, co)) == NULL) return st;
  if (st == LUA_YIELD) {
    r->status = LW_YIELDED;
    r->nres = (unsigned)n;
    r->top = (unsigned)lua_gettop(co);
  } else if (st == LUA_OK) {
    if (record_return(s, co, n) != LW_OK) return LW_EMEM;
  } else {
    r->status = LW_FAILED;
    r->nres = 1;
    r->top = (unsigned)lua_gettop(co);
  }
  return st;
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
static void push_vals(lw_store *s, lua_State *co, lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->vref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

int lw_result(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *r;
  int e = check(s, co), n, i;
  if (e != LW_OK) return e;
  if (L == NULL) return LW_EINVAL;
  if (lw_universe(L) != s->universe) return LW_EUNIVERSE;
  if ((r = lookup(s, co)) == NULL) return LW_ENOTTRACKED;
  n = (int)r->nres;
  switch (r->status) {
    case LW_YIELDED:
      luaL_checkstack(L, 2 * n + 1, "too many results");
      lua_pushboolean(L, 1);
      copy_top(co, L, n);
      return n + 1;
    case LW_RETURNED:
      luaL_checkstack(L, n + 3, "too many results");
      lua_pushboolean(L, 1);
      if (n == 0) return 1;
      push_vals(s, co, L);
      if (n > 1) {
        int t = lua_gettop(L);
        for (i = 1; i <= n; i++) lua_rawgeti(L, t, i);
        lua_remove(L, t);
      }
      return n + 1;
    case LW_FAILED:
      luaL_checkstack(L, 4, "too many results");
      lua_pushboolean(L, 0);
      if (r->flags & LW_F_VALS) push_vals(s, co, L);
      else copy_top(co, L, 1);
      return 2;
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

int lw_cancel(lw_store *s, lua_State *co, lua_State *from) {
  lw_rec *r;
  int e = check(s, co), st;
  lua_Debug ar;
  if (e != LW_OK) return e;
  if (co == from || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar)))
    return LW_ESTATE; /* running or normal: it cannot be stopped here */
  if (lw_map_insert(&s->map, co, &r) < 0) return LW_EMEM;
  r = lookup(s, co);
  if (r->status == LW_RETURNED || r->status == LW_FAILED ||
      r->status == LW_CANCELLED)
    return LW_OK; /* already over: nothing to stop */
  r->status = LW_CANCELLED;
  r->flags = 0;
  r->nres = 0;
  r->top = 0;
  st = lua_status(co);
  if (st == LUA_OK) {
    lua_settop(co, 0); /* never started: dropping the function kills it */
  } else if (st == LUA_YIELD && lw_co_canreset()) {
    lw_co_reset(co, from); /* runs pending to-be-closed variables */
    lua_settop(co, 0);
  }
  return LW_OK;
}

int lw_reset(lw_store *s, lua_State *co, lua_State *from) {
  int e = check(s, co);
  lua_Debug ar;
  if (e != LW_OK) return e;
  if (!lw_co_canreset()) return LW_ENOTSUP;
  if (co == from || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar)))
    return LW_ESTATE;
  if (find(s, co) != NULL) lw_untrack(s, co);
  return lw_co_reset(co, from);
}

void lw_store_setfailure(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *r;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->vref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3); /* may raise: the record is then stale, and dropped */
  lua_pop(L, 2);
  if ((r = find(s, co)) == NULL) {
    clear_vals(s, co); /* untracked by a __gc meanwhile */
    return;
  }
  r->status = LW_FAILED;
  r->flags = LW_F_VALS;
  r->nres = 1;
  r->top = 0;
}

int lw_close(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *r;
  int e = check(s, co), st, was;
  lua_Debug ar;
  if (e != LW_OK) return e;
  if (!lw_co_canreset()) return LW_ENOTSUP;
  if (co == L || (lua_status(co) == LUA_OK && lua_getstack(co, 0, &ar)))
    return LW_ESTATE;
  luaL_checkstack(L, 4, "too many results");
  r = lookup(s, co);
  was = r ? (int)r->status : LW_UNTRACKED;
  if (was == LW_FAILED && (r->flags & LW_F_VALS)) {
    lua_pushboolean(L, 0); /* closed before: already dead and empty */
    push_vals(s, co, L);
    return 2;
  }
  st = lw_co_reset(co, L);
  if (st == LUA_OK) {
    lua_settop(co, 0);
    if (r != NULL && (r = find(s, co)) != NULL && was != LW_RETURNED &&
        was != LW_CANCELLED) {
      r->status = LW_CANCELLED;
      r->flags = 0;
      r->nres = 0;
      r->top = 0;
    }
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  lua_settop(co, 0);
  if (r != NULL && find(s, co) != NULL) {
    lua_pushvalue(L, -1);
    lw_store_setfailure(s, co, L);
  }
  return 2;
}

lw_store **lw_store_box(lua_State *L) {
  lw_rawgetp(L, LUA_REGISTRYINDEX, &STORE_KEY);
  if (lua_type(L, -1) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return NULL;
  }
  return &((box *)lua_touserdata(L, -1))->s;
}

lw_handle lw_hold(lw_store *s, lua_State *L, int idx) {
  lua_State *co;
  int e;
  if (s == NULL || L == NULL || s->closed) return LW_EINVAL;
  if ((co = lua_tothread(L, idx)) == NULL) return LW_EINVAL;
  if ((e = lw_track(s, co)) != LW_OK) return e;
  lua_pushvalue(L, idx);
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

lua_State *lw_handle_thread(lw_store *s, lua_State *L, lw_handle h) {
  lua_State *co;
  if (s == NULL || L == NULL || h <= 0) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, h);
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  return co;
}

int lw_release(lw_store *s, lua_State *L, lw_handle h) {
  if (lw_handle_thread(s, L, h) == NULL) return LW_EINVAL;
  lw_unref(L, LUA_NOREF, h);
  return LW_OK;
}

int lw_handle_take(lw_store *s, lua_State *L, lw_handle h) {
  lua_State *co = lw_handle_thread(s, L, h);
  int n;
  if (co == NULL) return LW_EINVAL;
  n = lw_take(s, co, L);
  if (n > 0) lw_unref(L, LUA_NOREF, h);
  return n;
}

const char *lw_status_name(int status) {
  static const char *const names[] = {"untracked", "pending",  "yielded",
                                      "returned",  "failed",   "cancelled",
                                      "running"};
  if (status < 0 || status > LW_RUNNING) return NULL;
  return names[status];
}

const char *lw_strerror(int code) {
  switch (code) {
    case LW_OK: return "no error";
    case LW_EMEM: return "not enough memory";
    case LW_EINVAL: return "invalid argument";
    case LW_EUNIVERSE: return "thread of another Lua state";
    case LW_ENOTTRACKED: return "not tracked";
    case LW_ESTATE: return "thread cannot be resumed";
    case LW_ENOTSUP: return "not supported by this Lua version";
    default: return "unknown error";
  }
}

int lw_store_check(lw_store *s) {
  size_t i = 0;
  lw_slot *sl;
  int e;
  if (s == NULL) return __LINE__;
  if ((e = lw_map_check(&s->map)) != 0) return e;
  while ((sl = lw_map_next(&s->map, &i)) != NULL) {
    if (sl->rec.status < LW_PENDING || sl->rec.status > LW_RUNNING)
      return __LINE__;
    if (sl->rec.status == LW_PENDING && (sl->rec.nres || sl->rec.flags))
      return __LINE__;
  }
  return 0;
}
