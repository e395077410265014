/*
** lw_compat.c — Lua 5.1–5.4 and LuaJIT differences, nothing else.
*/
#include "lw_compat.h"

#include <stdarg.h>

int lw_co_resume(lua_State *co, lua_State *from, int nargs, int *nres) {
#if LUA_VERSION_NUM >= 504
  return lua_resume(co, from, nargs, nres);
#else
  int st;
# if LUA_VERSION_NUM >= 502
  st = lua_resume(co, from, nargs);
# else
  /* 5.1 counts nested C calls per thread: without the resumer's count,
     resumes nested in resumes never reach LUAI_MAXCCALLS and overflow
     the C stack.  lcorolib's auxresume hands it over the same way.
     LuaJIT has no such count (nor a real lua_setlevel). */
#  ifndef LW_LUAJIT
  if (from != NULL) lua_setlevel(from, co);
#  else
  (void)from;
#  endif
  st = lua_resume(co, nargs);
# endif
  /* Before 5.4 a yield or a return leaves exactly its values in co's
     visible frame (lua_yield moves the frame base up to them), so the
     count is the frame's size. */
  *nres = (st == LUA_OK || st == LUA_YIELD) ? lua_gettop(co) : 0;
  return st;
#endif
}

int lw_co_status(lua_State *L, lua_State *co) {
  if (L == co) return LW_CO_RUNNING;
  switch (lua_status(co)) {
    case LUA_YIELD: return LW_CO_SUSPENDED;
    case LUA_OK: {
      lua_Debug ar;
      if (lua_getstack(co, 0, &ar)) return LW_CO_NORMAL;
      return lua_gettop(co) == 0 ? LW_CO_DEAD : LW_CO_SUSPENDED;
    }
    default: return LW_CO_DEAD;
  }
}

int lw_co_canreset(void) {
#if LUA_VERSION_NUM >= 504
  return 1;
#else
  return 0;
#endif
}

int lw_co_reset(lua_State *co, lua_State *from) {
#if LUA_VERSION_NUM >= 504
# if LUA_VERSION_RELEASE_NUM >= 50406
  return lua_closethread(co, from);
# else
  (void)from;
  return lua_resetthread(co);
# endif
#else
  (void)co; (void)from;
  return -1;
#endif
}

void lw_co_dropbelow(lua_State *co, int k, int nargs) {
  if (k <= 0) return;
  if (nargs == 0) {
    lua_pop(co, k);
    return;
  }
#if LUA_VERSION_NUM >= 503
  lua_rotate(co, -(k + nargs), -k);
  lua_pop(co, k);
#else
  {
    int first = lua_gettop(co) - nargs - k + 1;
    while (k-- > 0) lua_remove(co, first);
  }
#endif
}

lua_State *lw_mainthread(lua_State *L) {
  lua_State *m;
#if LUA_VERSION_NUM >= 502
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  m = lua_tothread(L, -1);
#else
  m = lua_pushthread(L) ? L : NULL; /* 5.1 keeps it nowhere we can see */
#endif
  lua_pop(L, 1);
  return m;
}

const void *lw_universe(lua_State *L) {
  return lua_topointer(L, LUA_REGISTRYINDEX);
}

int lw_absindex(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 502
  return lua_absindex(L, idx);
#else
  return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
#endif
}

void lw_rawgetp(lua_State *L, int idx, const void *p) {
#if LUA_VERSION_NUM >= 502
  lua_rawgetp(L, idx, p);
#else
  idx = lw_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_rawget(L, idx);
#endif
}

void lw_rawsetp(lua_State *L, int idx, const void *p) {
#if LUA_VERSION_NUM >= 502
  lua_rawsetp(L, idx, p);
#else
  idx = lw_absindex(L, idx);
  lua_pushlightuserdata(L, (void *)p);
  lua_insert(L, -2);
  lua_rawset(L, idx);
#endif
}

void lw_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  /* LuaJIT 2.1 has luaL_setfuncs, plain 5.1 does not */
#if LUA_VERSION_NUM >= 502 || defined(LW_LUAJIT)
  luaL_setfuncs(L, l, nup);
#else
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
#endif
}

size_t lw_rawlen(lua_State *L, int idx) {
#if LUA_VERSION_NUM >= 502
  return (size_t)lua_rawlen(L, idx);
#else
  return lua_objlen(L, idx);
#endif
}

void lw_setweak(lua_State *L, const char *mode) {
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
}

void lw_traceback(lua_State *L, lua_State *co, const char *msg) {
#if LUA_VERSION_NUM >= 502 || defined(LW_LUAJIT)
  luaL_traceback(L, co, msg, 0);
#else
  /* 5.1 has no luaL_traceback: ask debug.traceback, if it is there */
  lua_getglobal(L, "debug");
  if (lua_istable(L, -1)) lua_getfield(L, -1, "traceback");
  else lua_pushnil(L);
  lua_remove(L, -2);
  if (lua_isfunction(L, -1)) {
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (msg) lua_pushstring(L, msg);
    else lua_pushnil(L);
    lua_pushinteger(L, 0);
    if (lua_pcall(L, 3, 1, 0) == 0 && lua_isstring(L, -1)) return;
  }
  lua_pop(L, 1);
  lua_pushstring(L, msg ? msg : "");
#endif
}

#ifdef LW_LUAJIT
static int sync_noop(lua_State *L) {
  (void)L;
  return 0;
}
#endif

void lw_sync_running(lua_State *L) {
#ifdef LW_LUAJIT
  /* entering the VM on L makes L the running thread again */
  if (lua_checkstack(L, 3) && lua_cpcall(L, sync_noop, NULL) != 0)
    lua_pop(L, 1);
#else
  (void)L;
#endif
}

int lw_errorat(lua_State *L, int level, const char *fmt, ...) {
  va_list ap;
  luaL_where(L, level);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

int lw_pushyield(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (lua_istable(L, -1)) lua_getfield(L, -1, "coroutine");
  else lua_pushnil(L);
  if (lua_istable(L, -1)) lua_getfield(L, -1, "yield");
  else lua_pushnil(L);
  lua_replace(L, -3);
  lua_pop(L, 1);
  if (lua_isfunction(L, -1)) return 1;
  lua_pop(L, 1);
  lua_pushnil(L);
  return 0;
}

#if !defined(LW_LUAJIT)
/* two functions alike, one per kind of wrapper: the function a task is
   suspended in says which wrapper suspended it (lw_sched.c, in_wrapper) */
static int suspend_task(lua_State *L) { return lua_yield(L, 0); }
static int suspend_async(lua_State *L) { return lua_yield(L, 0); }

lua_CFunction lw_suspender(int async) {
  return async ? suspend_async : suspend_task;
}
#endif

int lw_pushsuspender(lua_State *L, int async) {
#if defined(LW_LUAJIT)
  (void)async;
  return lw_pushyield(L);
#else
  lua_pushcfunction(L, lw_suspender(async));
  return 1;
#endif
}

int lw_yieldable(lua_State *L) {
#if LUA_VERSION_NUM >= 503 || defined(LW_LUAJIT)
  return lua_isyieldable(L);
#else
  int ismain = lua_pushthread(L);
  lua_pop(L, 1);
  return !ismain;
#endif
}

lua_CFunction lw_co_cfunc(lua_State *co) {
  lua_Debug ar;
  lua_CFunction f;
  /* 5.2 moves a yielded C function's frame base up to the values it
     yielded; its function slot is still right below them when it yielded
     its whole frame, as coroutine.yield and luaweave's functions do */
  if (!lua_getstack(co, 0, &ar) || !lua_checkstack(co, 1)) return NULL;
  if (!lua_getinfo(co, "f", &ar)) return NULL;
  f = lua_tocfunction(co, -1);
  lua_pop(co, 1);
  return f;
}

int lw_cpcall(lua_State *L, lua_CFunction f, void *ud) {
#if LUA_VERSION_NUM >= 502
  if (!lua_checkstack(L, 2)) return -1;
  lua_pushcfunction(L, f); /* a light C function: no allocation */
  lua_pushlightuserdata(L, ud);
  return lua_pcall(L, 1, 0, 0);
#else
  return lua_cpcall(L, f, ud); /* allocates its closure protected */
#endif
}

typedef struct unref_args { int tref, ref; } unref_args;

static int unref_protected(lua_State *L) {
  unref_args *a = (unref_args *)lua_touserdata(L, 1);
  if (a->tref == LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, a->ref);
  } else {
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->tref);
    luaL_unref(L, -1, a->ref);
  }
  return 0;
}

void lw_unref(lua_State *L, int tref, int ref) {
  unref_args a;
  int st;
  if (ref < 0) return;
  a.tref = tref;
  a.ref = ref;
  if ((st = lw_cpcall(L, unref_protected, &a)) == LUA_OK) return;
  if (st > 0) lua_pop(L, 1);
  /* no memory for the free list: clear the slot, never reuse its number;
     overwriting a present key does not allocate */
  if (!lua_checkstack(L, 2)) return;
  if (tref == LUA_NOREF) lua_pushvalue(L, LUA_REGISTRYINDEX);
  else lua_rawgeti(L, LUA_REGISTRYINDEX, tref);
  lua_pushboolean(L, 0);
  lua_rawseti(L, -2, ref);
  lua_pop(L, 1);
}

typedef struct udlookup { const void *key; void *found; } udlookup;

static void *registry_udata(lua_State *L, const void *key) {
  void *u = NULL;
  lw_rawgetp(L, LUA_REGISTRYINDEX, key);
  if (lua_type(L, -1) == LUA_TUSERDATA) u = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return u;
}

#ifdef LW_LUAJIT
static int udata_protected(lua_State *L) {
  udlookup *q = (udlookup *)lua_touserdata(L, 1);
  q->found = registry_udata(L, q->key);
  return 0;
}
#endif

int lw_registry_udata(lua_State *L, const void *key, void **found) {
#ifdef LW_LUAJIT
  udlookup q;
  q.key = key;
  q.found = NULL;
  *found = NULL;
  if (lw_cpcall(L, udata_protected, &q) != LUA_OK) {
    lua_pop(L, 1);
    return -1;
  }
  *found = q.found;
#else
  *found = registry_udata(L, key);
#endif
  return 0;
}
