/*
** lw_store_life.c — a store's life: the allocator hook that hears of
** every freed thread, opening (learning where Lua puts a thread in its
** memory block), finding the store again, and lua_close.
*/
#include "lw_store.h"
#include "lw_compat.h"

#include <string.h>

static const char STORE_KEY = 'S'; /* registry key: address of this */

/* The allocator hook's own state.  Not the store: the store lives in
   its box (a userdata Lua frees at the very end of lua_close), while the
   hook may outlive it when a host wrapped it (see store_gc). */
typedef struct hookcell {
  lua_Alloc f;
  void *ud;
  size_t tblock;        /* the store's, copied: the common path's test */
  lw_store *s;          /* NULL once the store is closed */
} hookcell;

/* ------------------------------------------------------------------ */
/* the allocator hook                                                  */

#if defined(__GNUC__)
#define LW_NOINLINE __attribute__((noinline))
#else
#define LW_NOINLINE
#endif

/* a block of a thread's size is freed: if it is a thread we know of, its
   record dies with it.  Kept out of line so that the hook's common path
   (every allocation of the state) is a compare and a jump. */
static LW_NOINLINE void thread_freed(lw_store *s, void *p) {
  const void *co = (char *)p + s->toff;
  lw_rec *r = lw_map_find(&s->map, co);
  if (r != NULL) {
    if (r->status) {
      s->tracked--;
      s->freed++;
    }
    if (r->task) s->ntasks--;
    if (r->wide) lw_map_remove(&s->wide, co);
    lw_map_remove_rec(&s->map, r);
  }
  lwst_cv_drop(s, co); /* its values kept in C go with it */
}

static void *hook(void *ud, void *p, size_t osize, size_t nsize) {
  hookcell *c = (hookcell *)ud;
  if (nsize == 0 && osize == c->tblock && p != NULL && c->s != NULL &&
      c->s->map.count != 0)
    thread_freed(c->s, p);
  return c->f(c->ud, p, osize, nsize);
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

typedef struct opening {
  lw_store tmp;  /* the store until its box exists (refs for cleanup) */
  lw_store *s;   /* then: the box */
  probe pr; /* lives in lw_store_open's frame: outlasts a longjmp */
} opening;

/* runs protected: everything here may raise a memory error */
static int open_protected(lua_State *L) {
  opening *o = (opening *)lua_touserdata(L, 1);
  lw_store *s = &o->tmp, *b;
  lua_State *t;
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
  lua_pushcclosure(L, lwst_values_filer, 1);
  s->recref = luaL_ref(L, LUA_REGISTRYINDEX);
  b = (lw_store *)lua_newuserdata(L, sizeof(lw_store));
  memset(b, 0, sizeof *b); /* f NULL: not opened (store_gc) */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, store_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lw_rawsetp(L, LUA_REGISTRYINDEX, &STORE_KEY);
  lw_store_learnmain(s, L);
  *b = *s; /* nothing fails from here on: the box is the store */
  b->self = b;
  o->s = b;
  return 0;
}

/* the store of L's state in *s (NULL: none); -1 if memory ran out
   looking (LuaJIT); 1 if it is gone (lua_close finalized its box) */
static int find_store(lua_State *L, lw_store **s) {
  void *ud;
  if (lua_getallocf(L, &ud) == hook) {
    *s = ((hookcell *)ud)->s;
    return *s == NULL;
  }
  *s = NULL;
  if (lw_registry_udata(L, &STORE_KEY, &ud) != 0) return -1;
  if (ud == NULL) return 0;
  *s = ((lw_store *)ud)->self;
  return *s == NULL;
}

lw_store *lw_store_get(lua_State *L) {
  lw_store *s;
  if (L == NULL || find_store(L, &s) != 0) return NULL;
  return s;
}

lw_store *lw_store_open(lua_State *L) {
  lw_store *s;
  hookcell *c;
  lua_Alloc f;
  void *ud;
  opening o;
  int e;
  if (L == NULL || find_store(L, &s) != 0) return NULL;
  if (s != NULL) return s;
  f = lua_getallocf(L, &ud);
  if ((c = (hookcell *)f(ud, NULL, 0, sizeof *c)) == NULL) return NULL;
  memset(&o, 0, sizeof o);
  s = &o.tmp;
  s->f = f;
  s->ud = ud;
  s->universe = lw_universe(L);
  s->vref = s->recref = LUA_NOREF;
  lw_map_init(&s->map, f, ud);
  lw_map_init(&s->wide, f, ud);
  lw_map_init(&s->cvals, f, ud);
  if ((e = lw_cpcall(L, open_protected, &o)) != LUA_OK) {
    if (e > 0) lua_pop(L, 1); /* the error object */
    lua_setallocf(L, f, ud);
    lw_unref(L, LUA_NOREF, s->vref);
    lw_unref(L, LUA_NOREF, s->recref);
    f(ud, c, sizeof *c, 0);
    return NULL;
  }
  s = o.s;
  c->f = f;
  c->ud = ud;
  c->tblock = s->tblock;
  c->s = s;
  s->cell = c;
  lua_setallocf(L, hook, c);
  return s;
}

/*
** Lifetime at lua_close.  A host may cache the lw_store * (and the
** lw_sched *) and use them from a finalizer of its own that lua_close
** runs after ours: every public function must then answer LW_EINVAL, so
** the struct must outlive every finalizer.  It does, being the box
** itself: a userdata that the registry keeps reachable until lua_close
** frees all objects, which it does only after every finalizer ran (Lua
** 5.1-5.4: lua_close / luaC_freeallobjects call all pending finalizers,
** then free; LuaJIT: lua_close runs the finalizers, then close_state
** frees).  No luaweave code may run at that end: the stock interpreter
** loads luaweave as a module, and the package library's own finalizer,
** which runs after ours, unloads it.  So the box's __gc does everything:
** marks the store closed, frees what it holds, closes the scheduler if
** its own finalizer has not (lw_store_onclose), and takes the hook out
** of the allocator chain.  If someone wrapped the hook, it must keep
** working: it stays, forwarding only, and its small cell is lost with
** the process.
*/
static int store_gc(lua_State *L) {
  lw_store *s = (lw_store *)lua_touserdata(L, 1);
  hookcell *c = s->cell;
  void *ud;
  if (s->f == NULL || s->closed) return 0; /* never opened; or done */
  s->closed = 1;
  s->self = NULL;
  if (s->backref) *s->backref = NULL; /* whoever listens must let go */
  if (s->onclose) s->onclose(s->onclose_ud);
  s->onclose = NULL;
  lw_map_free(&s->map);
  lw_map_free(&s->wide);
  lwst_cv_free_all(s);
  lw_handle_free_all(s);
  s->tracked = s->ntasks = 0;
  s->cell = NULL;
  if (lua_getallocf(L, &ud) == hook && ud == c) {
    lua_setallocf(L, c->f, c->ud);
    c->f(c->ud, c, sizeof *c, 0);
  } else {
    c->s = NULL;
  }
  return 0;
}

void lw_store_learnmain(lw_store *s, lua_State *L) {
  if (s->main == NULL) s->main = lw_mainthread(L);
}

void lw_store_onclose(lw_store *s, void (*fn)(void *ud), void *ud) {
  s->onclose = fn;
  s->onclose_ud = ud;
}

lw_store **lw_store_box(lua_State *L) {
  lw_rawgetp(L, LUA_REGISTRYINDEX, &STORE_KEY);
  if (lua_type(L, -1) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return NULL;
  }
  return &((lw_store *)lua_touserdata(L, -1))->self;
}
