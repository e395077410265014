/*
** lw_sched_async.c — async operations: a C function suspends its task
** with a token, and the host completes it later.
**
** A token is not a pointer to memory: the host holds it in callbacks
** that may outlive its scheduler (lua_close while a request is in
** flight, then uv_run as libuv requires), may complete it twice, or
** never.  So a token is a number, (serial << SLOT_BITS) | (slot + 1),
** into one process-wide table of outstanding operations (a mutex guards
** it: Lua states may live on several OS threads).  A completion first
** takes its slot out of the table, so it consumes the token whatever
** happens next; a token whose slot holds another serial (completed,
** dropped, or orphaned by lua_close) answers LW_ESTALE and touches
** nothing.  Serials come from one counter (40 bits on 64-bit machines,
** 16 on 32-bit ones), so a stale token can only be taken for a live one
** after the counter wraps.  The table is malloc'ed, doubles when full and
** is freed when the last token goes.  Costs: a lock and a probe per
** begin and per completion.
*/
#include "lw_sched.h"
#include "lw_compat.h"
#include "lw_luv.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* ------------------------------------------------------------------ */
/* the token table                                                     */

#define SLOT_BITS (sizeof(uintptr_t) >= 8 ? 24 : 16)
#define SLOT_MAX (((uintptr_t)1 << SLOT_BITS) - 1) /* slots 0 .. SLOT_MAX-1 */
#define SERIAL_MASK (UINTPTR_MAX >> SLOT_BITS)

typedef struct tok {
  uintptr_t serial; /* 0: free */
  lw_sched *S;
  lua_State *co;
  unsigned ticket;
  int ref;          /* anchors co while the operation is outstanding */
  size_t next;      /* free: the next free slot + 1, or 0 */
  void (*cfn)(void *ud); /* lw_async_oncancel's hook, or NULL */
  void *cud;
  int hooked;       /* a hook was registered (it may have run) */
} tok;

static struct {
  tok *v;
  size_t cap, live, free; /* free: first free slot + 1, or 0 */
  uintptr_t serial;
  size_t hooks;           /* live tokens with a cancel hook */
} toks;

static uv_once_t toks_once = UV_ONCE_INIT;
static uv_mutex_t toks_mutex;

static void toks_init(void) {
  if (uv_mutex_init(&toks_mutex) != 0) abort();
}

static void toks_lock(void) {
  uv_once(&toks_once, toks_init);
  uv_mutex_lock(&toks_mutex);
}

static void toks_unlock(void) { uv_mutex_unlock(&toks_mutex); }

/* the live slot of op, or NULL; under the lock */
static tok *tok_find(lw_async *op) {
  uintptr_t u = (uintptr_t)op, slot = u & SLOT_MAX;
  if (slot == 0 || slot > toks.cap) return NULL;
  if (toks.v[slot - 1].serial == 0 || toks.v[slot - 1].serial != u >> SLOT_BITS)
    return NULL;
  return &toks.v[slot - 1];
}

/* free a slot; the table goes with the last one; under the lock */
static void tok_free(tok *t) {
  if (t->cfn != NULL) toks.hooks--;
  t->cfn = NULL;
  t->serial = 0;
  t->next = toks.free;
  toks.free = (size_t)(t - toks.v) + 1;
  if (--toks.live == 0) {
    free(toks.v);
    toks.v = NULL;
    toks.cap = toks.free = 0;
  }
}

/* a new token for co's operation (its task's ticket), or NULL when memory runs out */
static lw_async *tok_new(lw_sched *S, lua_State *co, int ref, unsigned ticket) {
  tok *t;
  uintptr_t u;
  toks_lock();
  if (toks.free == 0) {
    size_t ncap = toks.cap ? toks.cap * 2 : 16, j;
    tok *nv = ncap < SLOT_MAX ? (tok *)realloc(toks.v, ncap * sizeof(tok)) : NULL;
    if (nv == NULL) {
      toks_unlock();
      return NULL;
    }
    for (j = ncap; j > toks.cap; j--) {
      nv[j - 1].serial = 0;
      nv[j - 1].next = toks.free;
      toks.free = j;
    }
    toks.v = nv;
    toks.cap = ncap;
  }
  t = &toks.v[toks.free - 1];
  toks.free = t->next;
  toks.live++;
  if ((toks.serial = (toks.serial + 1) & SERIAL_MASK) == 0) toks.serial = 1;
  t->serial = toks.serial;
  t->S = S;
  t->co = co;
  t->ticket = ticket;
  t->ref = ref;
  t->cfn = NULL;
  t->cud = NULL;
  t->hooked = 0;
  u = (t->serial << SLOT_BITS) | (uintptr_t)(t - toks.v + 1);
  toks_unlock();
  return (lw_async *)u;
}

/* copy op's slot into *out and free it: 1; 0 if op is not live */
static int tok_take(lw_async *op, tok *out) {
  tok *t;
  toks_lock();
  if ((t = tok_find(op)) != NULL) {
    *out = *t;
    tok_free(t);
  }
  toks_unlock();
  return t != NULL;
}

/* The tokens go stale first, then their hooks run (outside the lock: a
   hook may complete a token, which now answers LW_ESTALE), so that a
   module tears its handles down before the driver closes the loop. */
void lws_async_orphan(lw_sched *S) {
  size_t i;
  if (S->nasync == 0) return;
  toks_lock();
  for (i = 0; i < toks.cap && toks.v != NULL; i++) {
    tok *t = &toks.v[i];
    if (t->serial != 0 && t->S == S) {
      void (*fn)(void *) = t->cfn;
      void *ud = t->cud;
      tok_free(t);
      if (fn != NULL) {
        toks_unlock();
        fn(ud);
        toks_lock();
      }
    }
  }
  toks_unlock();
  S->nasync = 0;
}

/* The task of a live token left T_ASYNC with the given ticket without a
   completion (cancelled, woken early, dropped): run the token's hook,
   once.  Never allocates; the hook must not run Lua (lw_sched.c calls
   this from the middle of its own bookkeeping). */
void lws_async_left(lw_sched *S, unsigned ticket) {
  void (*fn)(void *) = NULL;
  void *ud = NULL;
  size_t i;
  toks_lock();
  for (i = 0; toks.hooks > 0 && i < toks.cap; i++) {
    tok *t = &toks.v[i];
    if (t->serial != 0 && t->S == S && t->ticket == ticket && t->cfn != NULL) {
      fn = t->cfn;
      ud = t->cud;
      t->cfn = NULL;
      toks.hooks--;
      break;
    }
  }
  toks_unlock();
  if (fn != NULL) fn(ud);
}

int lw_async_oncancel(lw_async *op, void (*fn)(void *ud), void *ud) {
  lw_sched *S = NULL;
  lua_State *co = NULL;
  unsigned ticket = 0;
  lw_rec *r;
  tok *t;
  int rc = LW_OK;
  if (op == NULL || fn == NULL) return LW_EINVAL;
  toks_lock();
  if ((t = tok_find(op)) == NULL) {
    rc = LW_ESTALE;
  } else if (t->hooked) {
    rc = LW_EBUSY;
  } else {
    S = t->S;
    co = t->co;
    ticket = t->ticket;
    t->cfn = fn;
    t->cud = ud;
    t->hooked = 1;
    toks.hooks++;
  }
  toks_unlock();
  if (rc != LW_OK) return rc;
  /* registered after its task left the wait: that was the cancel */
  r = LWS_GONE(S) ? NULL : lws_task_rec(S, co);
  if (r == NULL || r->ticket != ticket || r->task != T_ASYNC)
    lws_async_left(S, ticket);
  return LW_OK;
}

/* ------------------------------------------------------------------ */
/* async operations                                                    */

lw_async *lw_async_begin(lua_State *L) {
  return lws_async_begin(lw_sched_check(L), L);
}

lw_async *lws_async_begin(lw_sched *S, lua_State *L) {
  lw_async *op = NULL;
  lw_rec *r;
  int ref;
  if (!lw_yieldable(L)) {
    luaL_error(L, "async function called outside a task (cannot yield)");
    return NULL;
  }
  lua_pushthread(L);
  ref = lws_anchor(S, L);
  /* the anchor may have run a collection (and __gc code that moved the
     store's map): the record is looked up after it, and from here on
     nothing runs Lua code, so r holds */
  if ((r = lws_running_rec(S, L)) != NULL) {
    int was = (int)r->task; /* 0: a coroutine no task drives, until now */
    lws_task_put(S, r, T_ASYNC);
    if ((op = tok_new(S, L, ref, r->ticket)) == NULL) {
      if (was == 0) lws_task_end(S, L, r);
      else lws_task_put(S, r, was);
    }
  }
  if (op == NULL) {
    lws_unanchor(S, L, ref);
    lws_raise_mem(L);
  }
  S->nasync++;
  return op;
}

int lw_async_yield(lua_State *L, lw_async *op) {
  (void)op;
#if LW_SUSPEND_WRAPPED
  /* called through lw_async_wrap's wrapper (it gave f the mark as
     upvalue 1): the wrapper yields, see lws_suspend() */
  if (lua_touserdata(L, lua_upvalueindex(1)) == (void *)&LW_SUSPEND_MARK)
    return lws_suspend(L);
#endif
  return lua_yield(L, 0);
}

lw_sched *lw_async_sched(lw_async *op) {
  lw_sched *S;
  tok *t;
  if (op == NULL) return NULL;
  toks_lock();
  S = (t = tok_find(op)) != NULL ? t->S : NULL;
  toks_unlock();
  return S;
}

typedef struct complete_args {
  const tok *t;
  int ok, n, rc;
  lw_push_fn push;
  void *ud;
  int pushed;           /* what push returned */
  int invalid;          /* push broke its contract: LW_EINVAL */
} complete_args;

/* the host's push, in a protected call of its own: what it raises
   rejects the task instead of losing it */
static int push_call(lua_State *L) {
  complete_args *a = (complete_args *)lua_touserdata(L, 1);
  lua_pop(L, 1);
  a->pushed = a->push(L, a->ud);
  return lua_gettop(L);
}

/* build the pack {co, n, ok, values...} in the op's anchor slot and queue
   the task; runs protected on the scheduler's thread */
int lws_complete_protected(lua_State *T) {
  lw_sched *S = (lw_sched *)lua_touserdata(T, lua_upvalueindex(1));
  complete_args *a = (complete_args *)S->completing;
  const tok *op = a->t;
  int i, n = a->n, base;
  lw_rec *r;
  lw_ent e;
  if (a->push != NULL) {
    int top = lua_gettop(T), st, got;
    lua_pushcfunction(T, push_call);
    lua_pushlightuserdata(T, a);
    st = lua_pcall(T, 1, LUA_MULTRET, 0);
    got = lua_gettop(T) - top;
    if (st == LUA_ERRMEM) return lua_error(T); /* no memory: as for all */
    if (st != LUA_OK || (a->pushed == -1 && got >= 1)) {
      a->ok = 0; /* raised, or rejected: the error object is on top */
      n = 1;
    } else if (a->pushed < 0 || a->pushed > got) {
      /* a count of values it did not push, or a code it may not return */
      lua_settop(T, top);
      lua_pushliteral(T, "invalid async completion");
      a->ok = 0;
      a->invalid = 1;
      n = 1;
    } else {
      n = a->pushed;
    }
    a->n = n;
  }
  base = lua_gettop(T) - n; /* the values are base+1 .. base+n */
  lua_createtable(T, n + 3, 0);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(T, base + i);
    lua_rawseti(T, -2, i + 3);
  }
  lua_pushboolean(T, a->ok);
  lua_rawseti(T, -2, 3);
  lua_pushinteger(T, n);
  lua_rawseti(T, -2, 2);
  lws_push_thread(T, op->co);
  lua_rawseti(T, -2, 1);
  lua_rawgeti(T, LUA_REGISTRYINDEX, S->aref);
  lua_insert(T, -2);
  lua_rawseti(T, -2, op->ref); /* the pack replaces the thread: no growth */
  r = lws_task_rec(S, op->co);
  if (r == NULL || r->ticket != op->ticket || r->task != T_ASYNC) {
    /* the push ran code (a __gc, say) that moved the task on */
    lws_anchor_free(S, T, op->ref);
    return 0;
  }
  r->task = T_READY; /* the ticket stays the op's */
  e.co = op->co;
  e.ticket = op->ticket;
  e.kind = K_ASYNC;
  e.t0 = 0;
  e.ref = op->ref;
  a->rc = lws_qpush(S, &e);
  return 0;
}

/* hand the outcome to op's task (S live, op taken from the table) */
static int settle(lw_sched *S, const tok *op, int ok, int n, lw_push_fn push,
                  void *ud) {
  lua_State *T = S->T;
  lw_rec *r = lws_task_rec(S, op->co);
  complete_args a;
  int e;
  if (r == NULL || r->ticket != op->ticket || r->task != T_ASYNC) {
    /* its task moved on (cancelled, woken): drop the outcome */
    lua_pop(T, n);
    lws_anchor_free(S, T, op->ref);
    return LW_OK;
  }
  a.t = op;
  a.ok = ok;
  a.n = n;
  a.rc = LW_OK;
  a.push = push;
  a.ud = ud;
  a.pushed = 0;
  a.invalid = 0;
  if (!lua_checkstack(T, 3)) {
    lua_pop(T, n);
    e = LW_EMEM;
  } else {
    /* below the values, the preallocated function; the arguments go
       through S, since pushing a light userdata may allocate (LuaJIT) */
    lua_rawgeti(T, LUA_REGISTRYINDEX, S->cref);
    lua_insert(T, -(n + 1));
    S->completing = &a;
    if (lua_pcall(T, n, 0, 0) != LUA_OK) {
      lua_pop(T, 1); /* the error object */
      e = LW_EMEM;
    } else {
      e = a.rc;
    }
  }
  if (e != LW_OK) {
    /* no memory to hand the outcome over: the task cannot be resumed */
    lws_anchor_free(S, T, op->ref);
    lws_task_drop(S, op->co);
  }
  /* a push that broke its contract: the task fails, the host hears */
  return e == LW_OK && a.invalid ? LW_EINVAL : e;
}

static int push_dropped(lua_State *L, void *ud) {
  (void)ud;
  lua_pushliteral(L, "async operation dropped");
  return -1;
}

static int push_invalid(lua_State *L, void *ud) {
  (void)ud;
  lua_pushliteral(L, "invalid async completion");
  return -1;
}

/* every completion: the token is consumed first, whatever follows */
static int complete(lw_async *op, int ok, int n, lw_push_fn push, void *ud,
                    int valid) {
  lw_sched *S;
  tok t;
  int e;
  if (op == NULL) return LW_EINVAL;
  if (!tok_take(op, &t)) return LW_ESTALE;
  S = t.S; /* live: lua_close orphans a scheduler's tokens first */
  S->nasync--;
  if (valid && push == NULL && (n < 0 || lua_gettop(S->T) < n)) valid = 0;
  if (LWS_GONE(S)) { /* the store went first: the state is closing */
    if (valid && push == NULL) lua_pop(S->T, n);
    return LW_ESTALE;
  }
  if (!valid) { /* nothing popped; the task fails */
    settle(S, &t, 0, 0, push_invalid, NULL);
    return LW_EINVAL;
  }
  e = settle(S, &t, ok, n, push, ud);
  return e;
}

int lw_async_resolve(lw_async *op, int nvalues) {
  return complete(op, 1, nvalues, NULL, NULL, 1);
}

int lw_async_reject(lw_async *op) { return complete(op, 0, 1, NULL, NULL, 1); }

int lw_async_complete(lw_async *op, lw_push_fn push, void *ud) {
  return complete(op, 1, 0, push, ud, push != NULL);
}

int lw_async_drop(lw_async *op) {
  return complete(op, 0, 0, push_dropped, NULL, 1);
}

/* the wrapper's second half: after a suspension the values are
   (mark, ok, ...): pass ... on, or raise; a C function that returned
   without suspending passes its results through untouched */
static int async_finish(lua_State *L) {
  if (lua_touserdata(L, 1) != (void *)&lws_async_mark) return lua_gettop(L);
  if (lua_toboolean(L, 2)) return lua_gettop(L) - 2;
  lua_settop(L, 3);
  return lua_error(L);
}

/* ------------------------------------------------------------------ */
/* errors that name the user's call                                    */

/* The wrapped C function f runs under a Lua frame of its own (INNER,
   chunk "=luaweave.async"), so what f raises through luaL_error or
   luaL_argerror starts with that frame's position, "luaweave.async:N: ",
   and names f by INNER's local, 'fn'.  That prefix tells f's own errors
   from the ones it passes on (a callback's, with their own position or
   none), which go on untouched.  f's own get the position of the line
   that called the wrapper and the name it was called by, as Lua's own
   functions' errors do. */
#define INNER_CHUNK "=luaweave.async"
#define INNER_PREFIX "luaweave.async:"

/* luaweave's own Lua frames between the user and f */
static int internal_frame(lua_State *L, int level) {
  lua_Debug ar;
  if (!lua_getstack(L, level, &ar) || !lua_getinfo(L, "S", &ar)) return 0;
  /* luaweave's Lua chunks are all "=luaweave.*" (a module's Lua part
     that calls a wrapped function is skipped too); task.wrap's closure
     tail-calls the wrapper: no frame of its own, but 5.1 keeps a
     "(tail call)" level in its place */
  return strncmp(ar.source, "=luaweave.", 10) == 0 ||
         strcmp(ar.source, "=(tail call)") == 0;
}

/* the length of "luaweave.async:N: " at the start of s, or 0 */
static size_t own_prefix(const char *s) {
  size_t n = sizeof INNER_PREFIX - 1, d = 0;
  if (strncmp(s, INNER_PREFIX, n) != 0) return 0;
  while (s[n + d] >= '0' && s[n + d] <= '9') d++;
  return d > 0 && s[n + d] == ':' && s[n + d + 1] == ' ' ? n + d + 2 : 0;
}

/* the string key under which the table on top holds the function at
   index fn: pushed (1), or nothing (0) */
static int push_key_of(lua_State *L, int fn) {
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    if (lua_rawequal(L, -1, fn) && lua_type(L, -2) == LUA_TSTRING) {
      lua_pop(L, 1);
      return 1;
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* push "key" for the function on top if the methods (__index table) of
   one of luaweave's metatables (registry "luaweave.*") hold it: a method
   tail-called (`return s:read(-1)`) has no name in its caller's frame,
   and no module holds it.  1, or 0.  May raise a memory error. */
static int push_method_name(lua_State *L) {
  int fn = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) { /* key, metatable */
    if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1) &&
        strncmp(lua_tostring(L, -2), "luaweave.", 9) == 0) {
      lua_getfield(L, -1, "__index");
      if (lua_istable(L, -1) && push_key_of(L, fn)) {
        lua_replace(L, fn + 1);
        lua_settop(L, fn + 1);
        return 1;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return 0;
}

/* push "mod.key" for the function on top if a loaded module holds it
   (what Lua 5.2+ says of a function called without a name): 1; else its
   method name (push_method_name): 2; else 0.  May raise a memory
   error. */
static int push_loaded_name(lua_State *L) {
  int fn = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) { /* _LOADED, mod, table */
      if (lua_type(L, -2) == LUA_TSTRING && lua_istable(L, -1) &&
          push_key_of(L, fn)) { /* _LOADED, mod, table, key */
        const char *mod = lua_tostring(L, -3);
        if (strcmp(mod, "_G") == 0) lua_pushvalue(L, -1);
        else lua_pushfstring(L, "%s.%s", mod, lua_tostring(L, -1));
        lua_replace(L, fn + 1);
        lua_settop(L, fn + 1);
        return 1;
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  return push_method_name(L) ? 2 : 0;
}

/* the error on top was raised by f itself: rewrite it in place.  May
   raise a memory error. */
static void name_the_call(lua_State *L) {
  const char *msg = lua_tostring(L, -1), *rest, *q;
  const char *name = "?";
  lua_Debug ar;
  int level = 1, method = 0, found, err = lua_gettop(L);
  size_t skip;
  long arg = 0;
  if (lua_type(L, -1) != LUA_TSTRING || (skip = own_prefix(msg)) == 0) return;
  rest = msg + skip;
  /* level 0 is this function; the wrapper (level 1) and the frames of
     luaweave's own above it were called by the user */
  while (internal_frame(L, level + 1)) level++;
  if (lua_getstack(L, level, &ar) && lua_getinfo(L, "nf", &ar)) {
    if (ar.name != NULL && ar.name[0] != '\0') {
      name = ar.name;
      method = strcmp(ar.namewhat, "method") == 0;
    } else {
      /* a tail call: 5.1 and LuaJIT leave a "(tail call)" level without
         its function; the frame below it holds the one called */
      if (!lua_isfunction(L, -1) && level > 1) {
        lua_pop(L, 1);
        if (!lua_getstack(L, level - 1, &ar) || !lua_getinfo(L, "f", &ar))
          lua_pushnil(L);
      }
      if ((found = push_loaded_name(L)) != 0) {
        name = lua_tostring(L, -1);
        method = found == 2; /* as Lua names `return s:rep({})` */
      }
    }
  }
  luaL_where(L, level + 1);
  if (strncmp(rest, "bad argument #", 14) == 0 &&
      (arg = strtol(rest + 14, (char **)&q, 10)) > 0 &&
      strncmp(q, " to '", 5) == 0 && (q = strchr(q + 5, '\'')) != NULL) {
    if (method && --arg == 0)
      lua_pushfstring(L, "calling '%s' on bad self%s", name, q + 1);
    else
      lua_pushfstring(L, "bad argument #%d to '%s'%s", (int)arg, name, q + 1);
  } else {
    lua_pushstring(L, rest);
  }
  lua_concat(L, 2);
  lua_replace(L, err);
  lua_settop(L, err);
}

/* the wrapper's second step, after pcall(INNER, ...): pass f's results
   on (INNER's leading nil dropped), or raise f's error, named */
static int async_named(lua_State *L) {
  if (lua_toboolean(L, 1)) {
    lua_remove(L, 1);
    lua_remove(L, 1);
    return lua_gettop(L);
  }
  lua_settop(L, 2);
  name_the_call(L);
  return lua_error(L);
}

#ifndef LW_LUAJIT
static int pcall_end(lua_State *L, int status) {
  if (status == LUA_OK || status == LUA_YIELD) {
    lua_pushboolean(L, 1);
    lua_insert(L, 1);
    return lua_gettop(L);
  }
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

#if LUA_VERSION_NUM >= 503
static int pcall_k(lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  return pcall_end(L, status);
}
#endif

/* pcall of luaweave's own, so that no host needs the base library; on
   5.2+ f may yield in it, or at least must see a yieldable thread
   (lw_async_begin checks).  Raises no Lua error of its own. */
static int async_pcall(lua_State *L) {
#if LUA_VERSION_NUM >= 503
  return pcall_end(L, lua_pcallk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, 0, pcall_k));
#else
  return pcall_end(L, lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0));
#endif
}
#endif

/* push the pcall the wrapper uses: on LuaJIT only the VM's own pcall
   leaves the thread yieldable, so it is the base library's.  Raises
   when that is missing. */
static void push_pcall(lua_State *L) {
#ifdef LW_LUAJIT
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) lua_getfield(L, -1, "_G");
  else lua_pushnil(L);
  if (lua_istable(L, -1)) lua_getfield(L, -1, "pcall");
  else lua_pushnil(L);
  if (!lua_isfunction(L, -1))
    luaL_error(L, "lw_async_wrap: LuaJIT needs the base library's pcall");
  lua_replace(L, -3);
  lua_pop(L, 1);
#else
  lua_pushcfunction(L, async_pcall);
#endif
}

#if LW_SUSPEND_WRAPPED
/* the wrapper's suspension (lw_sched.c's in_wrapper tells it by the
   suspender, or on LuaJIT the chunk's environment) */
#define SUSPEND_LINES \
  "local function again(...)\n" \
  "  if cancelled() then return again(yield()) end\n" \
  "  return finish(...)\n" \
  "end\n" \
  "local function after(...)\n" \
  "  if ... == mark then return again(yield()) end\n" \
  "  return finish(...)\n" \
  "end\n"

/* finish, mark, yield, cancelled for the chunks above.  May raise. */
static void push_suspend_args(lua_State *L) {
  lua_pushcfunction(L, async_finish);
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
  if (!lw_pushsuspender(L, 1))
    luaL_error(L, "lw_async_wrap: LuaJIT needs the coroutine library");
  lw_sched_check(L);
  lw_sched_pushbox(L);
  lws_pushcancelled(L);
}

void lws_async_suspending(lua_State *L) {
  static const char code[] =
    "local call, finish, mark, yield, cancelled = ...\n" SUSPEND_LINES
    "return function(...) return after(call(...)) end\n";
  if (luaL_loadbuffer(L, code, sizeof code - 1, INNER_CHUNK) != 0)
    lua_error(L);
  lws_setwrapperenv(L, 1);
  lua_insert(L, -2);
  push_suspend_args(L);
  lua_call(L, 5, 1);
}
#else
static int finish_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  (void)ctx;
  return async_finish(L);
}

int lws_async_yieldk(lua_State *L) {
  return lua_yieldk(L, 0, 0, finish_k);
}
#endif

void lw_async_wrap(lua_State *L, lua_CFunction f) {
  /* f is called by INNER, not in tail position (its errors must carry
     INNER's position); the leading nil keeps f's results whole */
  static const char inner[] =
    "local fn = ...\n"
    "return function(...) return nil, fn(...) end\n";
  /* a Lua-level wrapper so that rejections raise on every Lua version:
     the C function's yield returns (ok, ...) into async_finish */
#if LW_SUSPEND_WRAPPED
  /* ... and where LW_SUSPEND_WRAPPED the wrapper does the yield, and
     yields again while the task is cancelled (see lws_suspend()) */
  static const char code[] =
    "local pcall, inner, named, finish, mark, yield, cancelled = ...\n"
    SUSPEND_LINES
    "return function(...) return after(named(pcall(inner, ...))) end\n";
#else
  static const char code[] =
    "local pcall, inner, named, finish = ...\n"
    "return function(...) return finish(named(pcall(inner, ...))) end\n";
#endif
  if (luaL_loadbuffer(L, code, sizeof code - 1, INNER_CHUNK) != 0)
    lua_error(L);
#if LW_SUSPEND_WRAPPED
  lws_setwrapperenv(L, 1);
#endif
  push_pcall(L);
  if (luaL_loadbuffer(L, inner, sizeof inner - 1, INNER_CHUNK) != 0)
    lua_error(L);
#if LW_SUSPEND_WRAPPED
  lua_pushlightuserdata(L, (void *)&LW_SUSPEND_MARK);
  lua_pushcclosure(L, f, 1);
#else
  lua_pushcfunction(L, f);
#endif
  lua_call(L, 1, 1);
  lua_pushcfunction(L, async_named);
#if LW_SUSPEND_WRAPPED
  push_suspend_args(L);
  lua_call(L, 7, 1);
#else
  lua_pushcfunction(L, async_finish);
  lua_call(L, 4, 1);
#endif
}
