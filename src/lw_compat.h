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

/* the userdata at registry[key], or NULL.  Raises nothing: on LuaJIT,
   where pushing a light userdata may allocate, it runs protected */
void *lw_registry_udata(lua_State *L, const void *key);

/* push msg (may be NULL) followed by a traceback of co */
void lw_traceback(lua_State *L, lua_State *co, const char *msg);

/* 1 if the running function of L may yield */
int lw_yieldable(lua_State *L);

#endif
