/*
** lw_compat.h — the only place that knows how Lua 5.1, 5.2, 5.3, 5.4 and
** LuaJIT 2.1 differ.  Everything else calls these.
*/
#ifndef LW_COMPAT_H
#define LW_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#ifndef LUA_OK
#define LUA_OK 0
#endif

#if LUA_VERSION_NUM < 501 || LUA_VERSION_NUM > 504
#error "luaweave supports Lua 5.1 to 5.4 and LuaJIT 2.1"
#endif

/* what lw_co_status answers, as coroutine.status names them */
enum { LW_CO_RUNNING, LW_CO_SUSPENDED, LW_CO_NORMAL, LW_CO_DEAD };

/* lua_resume with the 5.4 signature; *nres = values on top of co */
int lw_co_resume(lua_State *co, lua_State *from, int nargs, int *nres);

/* coroutine.status(co) as seen from L */
int lw_co_status(lua_State *L, lua_State *co);

/* 1 if this Lua can reset a thread for reuse (lua_resetthread) */
int lw_co_canreset(void);

/* reset co (closing to-be-closed variables); LUA_OK or an error status
   with the error object on top of co; -1 where unsupported */
int lw_co_reset(lua_State *co, lua_State *from);

/* remove the k values just below the top nargs values of co */
void lw_co_dropbelow(lua_State *co, int k, int nargs);

/* L's main thread where L can tell: always on 5.2+ (the registry's
   LUA_RIDX_MAINTHREAD); on 5.1 and LuaJIT only when L is the main thread
   (lua_pushthread says so), else NULL.  Needs one free slot on L (a C
   function's stack has them); raises nothing */
lua_State *lw_mainthread(lua_State *L);

/* the registry table's address: one per Lua state, no stack needed */
const void *lw_universe(lua_State *L);

void lw_rawgetp(lua_State *L, int idx, const void *p);
void lw_rawsetp(lua_State *L, int idx, const void *p);
int lw_absindex(lua_State *L, int idx);
void lw_setfuncs(lua_State *L, const luaL_Reg *l, int nup);
/* the length of a sequence, without metamethods */
size_t lw_rawlen(lua_State *L, int idx);

/* set the table on top as a weak table of the given mode */
void lw_setweak(lua_State *L, const char *mode);

/* f(ud) called protected on L, as 5.1's lua_cpcall: LUA_OK, an error
   status with the error object on L's top, or -1 when L has no room even
   to try (nothing pushed) */
int lw_cpcall(lua_State *L, lua_CFunction f, void *ud);
/* luaL_unref(table, ref) that never raises (the free list may need memory:
   on 5.1-5.3 and LuaJIT it lives at t[0]); the table is the registry
   (tref LUA_NOREF) or the registry's entry tref */
void lw_unref(lua_State *L, int tref, int ref);

/* *found: the userdata at registry[key], or NULL.  Raises nothing: on
   LuaJIT, where pushing a light userdata may allocate, it runs
   protected, and -1 says memory ran out (then nobody knows whether
   there is one: never make a second); else 0 */
int lw_registry_udata(lua_State *L, const void *key, void **found);

/* push msg (may be NULL) followed by a traceback of co */
void lw_traceback(lua_State *L, lua_State *co, const char *msg);

/* LuaJIT before its 2023 fix (LuaJIT #1066) leaves its idea of the
   running thread on the last thread a C function resumed or called into,
   and a Lua pcall that catches an error raised next does not restore
   it: the next trace exit then writes to that thread's stack.  A C
   function that ran other threads calls this on its own thread L before
   raising an error.  Nothing elsewhere. */
void lw_sync_running(lua_State *L);

/* luaL_error with the position of the function `level` levels up */
int lw_errorat(lua_State *L, int level, const char *fmt, ...);

/* push coroutine.yield as the coroutine library was loaded and return
   1; push nil and return 0 when it was not */
int lw_pushyield(lua_State *L);

/* 1 if the running function of L may yield */
int lw_yieldable(lua_State *L);

/* 1 where lw_yieldable cannot be sure: 5.1 and 5.2 have no
   lua_isyieldable, so it may say yes and lua_yield still raise "attempt
   to yield across a C-call boundary" (inside pcall on 5.1, in a callback
   of table.sort, ...) */
#if LUA_VERSION_NUM < 503 && !defined(LW_LUAJIT)
#define LW_YIELD_UNSURE 1
#else
#define LW_YIELD_UNSURE 0
#endif

/* Where Lua cannot close a suspended coroutine (before 5.4, LuaJIT), a
   cancelled task stays suspended, and a raw coroutine.resume could bring
   it back to life.  There the task functions that suspend (task.wait,
   await, any, exit; async functions) go through a Lua wrapper that
   suspends the task again if it is resumed while cancelled
   (lw_lua_task.c); on LuaJIT that wrapper is also what yields (a
   lua_yield made while a finalizer runs crashes LuaJIT later). */
#if LUA_VERSION_NUM < 504 || defined(LW_LUAJIT)
#define LW_SUSPEND_WRAPPED 1
#else
#define LW_SUSPEND_WRAPPED 0
#endif

/* push the function the wrappers suspend with: coroutine.yield on LuaJIT
   (see above), elsewhere a C function of luaweave's own, one for the task
   functions' wrapper (async 0) and one for async functions' (async 1), so
   that a suspension is never mistaken for a plain coroutine.yield and
   tells which wrapper made it; 0 if the coroutine library is missing
   (LuaJIT) */
int lw_pushsuspender(lua_State *L, int async);
#if !defined(LW_LUAJIT)
/* the function lw_pushsuspender pushes */
lua_CFunction lw_suspender(int async);
#endif

/* the C function at level 0 of co (of a suspended co: the one that
   yielded), or NULL */
lua_CFunction lw_co_cfunc(lua_State *co);

/* A pack of n >= 2 values: lw_pack_new pushes one (may raise a memory
   error), lw_pack_set pops the top value into slot i (1..n), lw_pack_get
   pushes slot i; idx is where the pack is.  On 5.4 a userdata with n user
   values: one block, where a table takes two. */
#if LUA_VERSION_NUM >= 504
#define LW_PACK_UV(n) ((n) < 0xffff) /* lua_newuserdatauv's limit */
static inline void lw_pack_new(lua_State *L, int n) {
  if (LW_PACK_UV(n)) lua_newuserdatauv(L, 0, n);
  else lua_createtable(L, n, 0);
}
static inline void lw_pack_set(lua_State *L, int idx, int i, int n) {
  if (LW_PACK_UV(n)) lua_setiuservalue(L, idx, i);
  else lua_rawseti(L, idx, i);
}
static inline void lw_pack_get(lua_State *L, int idx, int i, int n) {
  if (LW_PACK_UV(n)) lua_getiuservalue(L, idx, i);
  else lua_rawgeti(L, idx, i);
}
#else
static inline void lw_pack_new(lua_State *L, int n) { lua_createtable(L, n, 0); }
static inline void lw_pack_set(lua_State *L, int idx, int i, int n) {
  (void)n;
  lua_rawseti(L, idx, i);
}
static inline void lw_pack_get(lua_State *L, int idx, int i, int n) {
  (void)n;
  lua_rawgeti(L, idx, i);
}
#endif

#endif
