/*
** lw_lua.c — the `luaweave` Lua module: argument checking, error
** messages, and coroutine.resume/wrap/close semantics on top of the store.
*/
#include "lw_sched.h"
#include "lw_compat.h"

#include <string.h>

static const char ORIG_KEY = 'O'; /* registry: originals saved by install */

/* Upvalue 1 of every function is the store's box: after the state starts
   closing, the store is gone and the box says so. */
static lw_store *getstore(lua_State *L) {
  lw_store **b = (lw_store **)lua_touserdata(L, lua_upvalueindex(1));
  if (b == NULL || *b == NULL) luaL_error(L, "luaweave: the Lua state is closing");
  return *b;
}

static lua_State *checkthread(lua_State *L, int arg, const char *fname) {
  lua_State *co = lua_tothread(L, arg);
  if (co == NULL)
    luaL_error(L, "bad argument #%d to '%s' (thread expected, got %s)", arg,
               fname, lua_isnone(L, arg) ? "no value" : luaL_typename(L, arg));
  return co;
}

static int fail(lua_State *L, int code, const char *fname) {
  if (code == LW_EMEM) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  return luaL_error(L, "%s: %s", fname, lw_strerror(code));
}

/* lw.track and lw.resume raise for the main thread (LW_ESTATE from the
   store); coroutine.resume under install keeps Lua's own answer */
static int mainerror(lua_State *L, const char *fname, const char *what) {
  return luaL_error(L, "bad argument #1 to '%s' (the main thread cannot be %s)",
                    fname, what);
}

static int l_track(lua_State *L) {
  lw_store *s = getstore(L);
  int e;
  lw_store_learnmain(s, L);
  e = lw_track(s, checkthread(L, 1, "track"));
  if (e == LW_ESTATE) return mainerror(L, "track", "tracked");
  if (e != LW_OK) return fail(L, e, "track");
  lua_settop(L, 1);
  return 1;
}

static int l_untrack(lua_State *L) {
  lw_store *s = getstore(L);
  int e = lw_untrack(s, checkthread(L, 1, "untrack"));
  if (e != LW_OK && e != LW_ENOTTRACKED) return fail(L, e, "untrack");
  return 0;
}

static int l_status(lua_State *L) {
  lw_store *s = getstore(L);
  int st = lw_status(s, checkthread(L, 1, "status"));
  if (st < 0) return fail(L, st, "status");
  lua_pushstring(L, lw_status_name(st));
  return 1;
}

static int l_result(lua_State *L) {
  lw_store *s = getstore(L);
  int n = lw_result(s, checkthread(L, 1, "result"), L);
  if (n == LW_ENOTTRACKED)
    return luaL_error(L, "bad argument #1 to 'result' (not tracked)");
  return n < 0 ? fail(L, n, "result") : n;
}

static int l_take(lua_State *L) {
  lw_store *s = getstore(L);
  int n = lw_take(s, checkthread(L, 1, "take"), L);
  if (n == LW_ENOTTRACKED)
    return luaL_error(L, "bad argument #1 to 'take' (not tracked)");
  return n < 0 ? fail(L, n, "take") : n;
}

static int l_key(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lw_key(checkthread(L, 1, "key")));
  return 1;
}

static int l_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lw_store_count(getstore(L)));
  return 1;
}

/* what coroutine.resume says of a running or normal coroutine */
static const char *notsuspended(int cs) {
#if defined(LW_LUAJIT)
  (void)cs;
  return "cannot resume running coroutine";
#elif LUA_VERSION_NUM == 501
  return cs == LW_CO_RUNNING ? "cannot resume running coroutine"
                             : "cannot resume normal coroutine";
#else
  (void)cs;
  return "cannot resume non-suspended coroutine";
#endif
}

/* coroutine.resume's core: the results onto L and their count, or -1
   with the error object on L's top (as lcorolib's auxresume does) */
static int resume_core(lua_State *L, lw_store *s, lua_State *co, int narg) {
  int st, n, cs = lw_co_status(L, co);
  unsigned long gcerrs;
  if (cs == LW_CO_SUSPENDED && lw_status(s, co) == LW_CANCELLED)
    cs = LW_CO_DEAD;
  if (cs != LW_CO_SUSPENDED) {
    if (cs == LW_CO_DEAD) lua_pushliteral(L, "cannot resume dead coroutine");
    else lua_pushstring(L, notsuspended(cs));
    return -1;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  gcerrs = s->gcerrs;
  st = lw_resume(s, co, L, narg, &n);
  if (st == LW_EMEM) {
    lw_sync_running(L); /* co ran: see lw_compat.h */
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  if (s->gcerrs != gcerrs && lw_status(s, co) == LW_RETURNED &&
      lw_store_gcerror(s, L)) {
    /* a finalizer raised while co's values were filed (5.1-5.3): raise
       it here, as the allocating call it interrupted would have; co's
       values are recorded, lw.result has them */
    lw_sync_running(L);
    return lua_error(L);
  }
  if (st < 0) { /* cannot happen after the checks above; never crash */
    lua_pushstring(L, lw_strerror(st));
    return -1;
  }
  if (st != LUA_OK && st != LUA_YIELD && lw_status(s, co) != LW_FAILED) {
    /* Lua refused to run co at all ("C stack overflow": resumes nested
       too deep) and left its message on co's top; co did not run, so
       nothing was recorded.  Give the message, as coroutine.resume does */
    lua_xmove(co, L, 1);
    return -1;
  }
  if (lw_status(s, co) > LW_UNTRACKED) { /* recorded: hand out copies */
    n = lw_result(s, co, L);
    if (st == LUA_OK || st == LUA_YIELD) {
      lua_remove(L, -n); /* the leading true */
      return n - 1;
    }
    lua_remove(L, -2); /* the false */
    return -1;
  }
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, n + 1)) {
      lua_pop(co, n);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, n);
    return n;
  }
  lua_xmove(co, L, 1);
  return -1;
}

static int l_resume(lua_State *L) {
  lw_store *s = getstore(L);
  lua_State *co = checkthread(L, 1, "resume");
  int r = resume_core(L, s, co, lua_gettop(L) - 1);
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

static int l_lwresume(lua_State *L) {
  lw_store *s = getstore(L);
  lw_store_learnmain(s, L);
  if (lw_store_ismain(s, checkthread(L, 1, "resume")))
    return mainerror(L, "resume", "resumed");
  return l_resume(L);
}

/* coroutine.wrap's function: upvalue 2 is the thread */
static int auxwrap(lua_State *L) {
  lw_store *s = getstore(L);
  lua_State *co = lua_tothread(L, lua_upvalueindex(2));
  int r = resume_core(L, s, co, lua_gettop(L));
  if (r >= 0) return r;
#if LUA_VERSION_NUM >= 504
  {
    int st = lua_status(co);
    if (st != LUA_OK && st != LUA_YIELD) {
      /* an error in the coroutine: close its tbc variables, as 5.4 does */
      lua_pop(L, 1);
      lw_close(s, co, L); /* pushes false, err */
      lua_remove(L, -2);
    }
  }
#endif
  if (lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  lw_sync_running(L); /* co ran: see lw_compat.h */
  return lua_error(L);
}

static int l_wrap(lua_State *L) {
  lua_State *co;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1));
  co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, auxwrap, 2);
  return 1;
}

#if LUA_VERSION_NUM >= 504
static int l_close(lua_State *L) {
  lw_store *s = getstore(L);
  lua_State *co = checkthread(L, 1, "close");
  int n = lw_close(s, co, L);
  if (n == LW_ESTATE) {
    int cs = lw_co_status(L, co);
    return luaL_error(L, "cannot close a %s coroutine",
                      cs == LW_CO_RUNNING ? "running" : "normal");
  }
  return n < 0 ? fail(L, n, "close") : n;
}
#endif

/* the coroutine library table onto the stack */
static void push_colib(lua_State *L) {
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "loaded");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "coroutine");
      if (lua_istable(L, -1)) {
        lua_replace(L, -3);
        lua_pop(L, 1);
        return;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_getglobal(L, "coroutine");
}

static const char *const swapped[] = {"resume", "wrap", "close", NULL};

static int l_install(lua_State *L) {
  int i, lib, saved;
  getstore(L);
  lw_rawgetp(L, LUA_REGISTRYINDEX, &ORIG_KEY);
  if (!lua_isnil(L, -1)) return 0; /* installed already */
  lua_pop(L, 1);
  push_colib(L);
  if (!lua_istable(L, -1)) return luaL_error(L, "install: no coroutine library");
  lib = lua_gettop(L);
  lua_newtable(L);
  saved = lua_gettop(L);
  for (i = 0; swapped[i] != NULL; i++) {
    lua_getfield(L, lib, swapped[i]);
    lua_setfield(L, saved, swapped[i]);
  }
  lua_pushvalue(L, saved);
  lw_rawsetp(L, LUA_REGISTRYINDEX, &ORIG_KEY);
  for (i = 0; swapped[i] != NULL; i++) {
    lua_getfield(L, lua_upvalueindex(2), swapped[i]);
    if (!lua_isnil(L, -1)) lua_setfield(L, lib, swapped[i]);
    else lua_pop(L, 1);
  }
  return 0;
}

static int l_uninstall(lua_State *L) {
  int i, lib;
  lw_rawgetp(L, LUA_REGISTRYINDEX, &ORIG_KEY);
  if (lua_isnil(L, -1)) return 0; /* not installed */
  push_colib(L);
  lib = lua_gettop(L);
  if (lua_istable(L, lib)) {
    for (i = 0; swapped[i] != NULL; i++) {
      lua_getfield(L, lib - 1, swapped[i]);
      lua_setfield(L, lib, swapped[i]);
    }
  }
  lua_pushnil(L);
  lw_rawsetp(L, LUA_REGISTRYINDEX, &ORIG_KEY);
  return 0;
}

static const luaL_Reg funcs[] = {
  {"track", l_track},     {"untrack", l_untrack}, {"status", l_status},
  {"result", l_result},   {"take", l_take},       {"key", l_key},
  {"resume", l_lwresume}, {"count", l_count},     {"run", lw_lua_run},
  {NULL, NULL}
};

/* what install() puts into the coroutine library */
static const luaL_Reg installed[] = {
  {"resume", l_resume},
  {"wrap", l_wrap},
#if LUA_VERSION_NUM >= 504
  {"close", l_close},
#endif
  {NULL, NULL}
};

void lw_preload(lua_State *L) {
  lua_getglobal(L, "package");
  if (!lua_istable(L, -1)) luaL_error(L, "lw_preload: no package library");
  lua_getfield(L, -1, "preload");
  if (!lua_istable(L, -1)) luaL_error(L, "lw_preload: no package.preload");
  lua_pushcfunction(L, luaopen_luaweave);
  lua_setfield(L, -2, "luaweave");
  lua_pushcfunction(L, luaopen_luaweave_task);
  lua_setfield(L, -2, "luaweave.task");
  lua_pushcfunction(L, luaopen_luaweave_net);
  lua_setfield(L, -2, "luaweave.net");
  lua_pushcfunction(L, luaopen_luaweave_process);
  lua_setfield(L, -2, "luaweave.process");
  lua_pushcfunction(L, luaopen_luaweave_stdio);
  lua_setfield(L, -2, "luaweave.stdio");
  lua_pushcfunction(L, luaopen_luaweave_signal);
  lua_setfield(L, -2, "luaweave.signal");
  lua_pushcfunction(L, luaopen_luaweave_fs);
  lua_setfield(L, -2, "luaweave.fs");
  lua_pop(L, 2);
}

int luaopen_luaweave(lua_State *L) {
  lw_store *s = lw_store_open(L);
  if (s == NULL) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  lua_newtable(L);                     /* 1: module */
  if (lw_store_box(L) == NULL) return luaL_error(L, "luaweave: no store");
  lua_pushvalue(L, -2);
  lua_pushvalue(L, -2);
  lw_setfuncs(L, funcs, 1);            /* upvalue: box */
  lua_pop(L, 1);
  lua_newtable(L);                     /* the replacements */
  lua_pushvalue(L, -2);
  lw_setfuncs(L, installed, 1);
  lua_pushcclosure(L, l_install, 2);   /* upvalues: box, replacements */
  lua_setfield(L, -2, "install");
  lua_pushcfunction(L, l_uninstall);
  lua_setfield(L, -2, "uninstall");
  lw_fs_open(L);
  lua_setfield(L, -2, "fs");
  lua_pushliteral(L, LW_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
