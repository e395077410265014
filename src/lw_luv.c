/*
** lw_luv.c — the luv bridge: one uv_loop_t shared with luv (Debian's
** lua-luv, Neovim's vim.loop/vim.uv) when both live in a Lua state.
**
** Finding luv's loop.  luv keeps its context (luv.h's luv_ctx_t: loop,
** main thread, callback pcall, ..., mode) in a full userdata at
** registry["luv_context"] (luv_context() in luv.c, luv 1.36 and later).
** Debian's luv exports luv_loop, luv_set_loop and luv_set_callback, but
** `require` opens a C module RTLD_LOCAL, so no other module can link or
** dlsym them (and in Neovim they are the editor's copy).  So the bridge
** reads the context with the layout luv.h publishes and touches four
** fields: loop (read), mode (read: -1 unless uv.run is running), and
** cb_pcall and L (replaced while luaweave runs the loop, then restored:
** what luv_set_callback does, and the thread luv calls back on).
**
** Either first.  luv first (Neovim; a script that requires luv, then
** luaweave.task): the scheduler attaches to luv's loop when the task
** library opens.  luaweave first: a package.preload entry for "luv"
** loads the real module through the other searchers and then attaches.
** lw.run also looks for luv when it starts.  Attached, tasks run as luv's
** loop turns (uv.run, or Neovim's loop); lw.run runs luv's loop itself.
**
** Closing.  luv's loop finalizer (loop_gc) closes every handle still
** open with luv's close callback, which takes handle->data for luv's own:
** the scheduler's handles must be closing before it runs.  A finalizer
** made at attach time, after luv's loop userdata, runs before that one
** (finalizers run in the reverse order of their objects) and detaches.
** loop_gc then runs the requests still in flight (a uv.fs_stat whose
** task.wrap callback was already finalized calls it: a no-op, see
** lw_lua_wrap.c), but on Lua 5.1 and LuaJIT luaweave.so has been
** unloaded by then (C libraries go in the reverse order of loading), so
** attaching pins the library in memory until the process exits.
*/
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include "lw_luv.h"
#include "lw_compat.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef int (*luv_pcall_fn)(lua_State *L, int nargs, int nresults, int flags);

/* luv.h's luv_ctx_t, the fields up to the last one read here */
typedef struct luv_ctx {
  uv_loop_t *loop;
  lua_State *L;
  luv_pcall_fn cb_pcall;
  luv_pcall_fn thrd_pcall;
  void *thrd_cpcall;
  int mode;
} luv_ctx;

static const char CTX_KEY[] = "luv_context";
static const char DETACH_META[] = "luaweave.luv.detach";
static const char THREAD_KEY[] = "luaweave.luv.thread";

/* luv's context with a loop, or NULL.  May raise a Lua memory error. */
static luv_ctx *context(lua_State *L) {
  luv_ctx *c;
  lua_getfield(L, LUA_REGISTRYINDEX, CTX_KEY);
  c = (luv_ctx *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  return c != NULL && c->loop != NULL ? c : NULL;
}

/* ------------------------------------------------------------------ */
/* errors in luv callbacks                                             */

static const char TB_KEY = 'T'; /* registry: the latest error's report */

/* message handler: the error object stays what it is (task.onerror gets
   it), its report (message and traceback) waits in the registry */
static int add_traceback(lua_State *L) {
  lua_settop(L, 1);
  lua_pushvalue(L, 1);
  lw_sched_errmsg(L); /* a message for any error object */
  lw_traceback(L, L, lua_tostring(L, -1));
  lw_rawsetp(L, LUA_REGISTRYINDEX, &TB_KEY);
  lua_settop(L, 1);
  return 1;
}

/* luv's callback pcall while luaweave runs the loop: as luv's own, but an
   error goes to the scheduler's reporter (task.onerror's handler, or
   stderr) instead of exit(-1) */
static int report_pcall(lua_State *L, int nargs, int nresults, int flags) {
  int top = lua_gettop(L), hidx = top - nargs, st;
  lw_sched *S;
  (void)flags;
  lua_pushcfunction(L, add_traceback);
  lua_insert(L, hidx);
  st = lua_pcall(L, nargs, nresults, hidx);
  lua_remove(L, hidx);
  if (st == LUA_OK)
    return nresults == LUA_MULTRET ? lua_gettop(L) - top + nargs + 1 : nresults;
  S = lw_sched_get(L);
  if (S != NULL && !lws_gone(S) && lua_checkstack(L, 4)) {
    lw_rawgetp(L, LUA_REGISTRYINDEX, &TB_KEY);
    if (!lua_isstring(L, -1)) { /* the handler itself failed (memory) */
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lw_sched_errmsg(L);
    }
    lua_pushnil(L);
    lw_rawsetp(L, LUA_REGISTRYINDEX, &TB_KEY);
    lws_report_loose(S, L);
  } else {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "luaweave: %s\n", msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return -st;
}

/* the thread luaweave has luv call back on, made once and kept in the
   registry (it lives until lua_close).  May raise a memory error. */
static lua_State *own_thread(lua_State *L) {
  lua_State *t;
  lua_getfield(L, LUA_REGISTRYINDEX, THREAD_KEY);
  t = lua_tothread(L, -1);
  lua_pop(L, 1);
  if (t == NULL) {
    t = lua_newthread(L);
    lua_setfield(L, LUA_REGISTRYINDEX, THREAD_KEY);
  }
  return t;
}

/* luv's context, and own_thread */
static int find_protected(lua_State *L) {
  lw_luv_swap *w = (lw_luv_swap *)lua_touserdata(L, 1);
  w->ctx = context(L);
  if (w->ctx == NULL) return 0;
  w->thread = own_thread(L);
  return 0;
}

int lw_luv_errors_begin(lw_sched *S, lw_luv_swap *w) {
  luv_ctx *c;
  w->ctx = NULL;
  w->prev = NULL;
  if (lws_protect(S, find_protected, w) != LW_OK || w->ctx == NULL) return 0;
  c = (luv_ctx *)w->ctx;
  if (c->mode >= 0) { /* inside uv.run: its loop cannot be run again */
    w->ctx = NULL;
    return 1;
  }
  w->prev = c->cb_pcall;
  c->cb_pcall = report_pcall;
  w->prevL = c->L;
  c->L = w->thread;
  return 0;
}

void lw_luv_errors_end(lw_luv_swap *w) {
  luv_ctx *c = (luv_ctx *)w->ctx;
  if (c != NULL) {
    c->cb_pcall = w->prev;
    c->L = w->prevL;
  }
  w->ctx = NULL;
}

/* ------------------------------------------------------------------ */
/* uv.run from a task                                                  */

/* R(orig, mode, ...), behind luv's uv.run once attached.  A task that
   calls uv.run while lw.run (or the CLI) runs luv's loop would nest a
   uv_run inside a scheduler step: the scheduler could not step again
   until it returned, and its idle handle would keep that uv_run spinning
   forever.  The task waits instead, while the loop and the other tasks go
   on, and gets what uv.run would have returned.  A task that the loop
   steps from its prepare handle (under the script's uv.run, or Neovim's
   loop) would nest uv_run the same way: that raises.  Anywhere else it is
   luv's own uv.run.  May raise (luv's errors, memory). */
static int run_call(lua_State *L) {
  lw_sched *S = lw_sched_get(L);
  const char *mode;
  lw_async *op;
  if (S == NULL || lws_gone(S) || !lw_yieldable(L) ||
      (!lws_driving_shared(S) && !lws_stepping(S))) {
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
  }
  if (!lws_driving_shared(S))
    return lws_error_at_caller(L, "uv.run: called from a task that the running "
                      "loop is running (uv.run or the host's loop): it runs "
                      "already; wait with task.wait or task.await instead");
  mode = luaL_optstring(L, 2, "default");
  if (strcmp(mode, "default") != 0 && strcmp(mode, "once") != 0 &&
      strcmp(mode, "nowait") != 0)
    return lws_error_at_caller(L, lua_pushfstring(L,
                               "bad argument #1 to 'run' (invalid option '%s')", mode));
  op = lw_async_begin(L);
  if (lws_run_wait(S, op, mode[0] != 'd') != LW_OK) {
    lw_async_drop(op);
    lws_raise_mem(L);
  }
  lua_settop(L, 0);
  return lw_async_yield(L, op);
}

/* m[name] = the function make(orig) leaves on the stack (orig on its
   top, replaced), once: the replacement is remembered in the registry
   under key, and a module whose field is it already, or not a function,
   is left alone.  m is the table at index idx.  May raise. */
static void hook(lua_State *L, int idx, const char *name, const char *key,
                 void (*make)(lua_State *L)) {
  idx = lw_absindex(L, idx);
  if (!lua_istable(L, idx)) return;
  lua_getfield(L, idx, name);
  lua_getfield(L, LUA_REGISTRYINDEX, key);
  if (!lua_isfunction(L, -2) || lua_rawequal(L, -1, -2)) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  make(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, key);
  lua_setfield(L, idx, name);
}

/* run_call behind luv's run (on the stack's top) */
static void make_run(lua_State *L) {
  static const char code[] =
    "local R, orig = ...\n"
    "return function(...) return R(orig, ...) end\n";
  if (luaL_loadbuffer(L, code, sizeof code - 1, "=luaweave.luv.run") != 0)
    lua_error(L);
  lua_insert(L, -2);
  lw_async_wrap(L, run_call);
  lua_insert(L, -2);
  lua_call(L, 2, 1);
}

/* uv.walk, behind luv's once attached: luv's walk callback asserts that
   every handle of the loop is one of luv's (luv 1.44, Debian 12's), and
   the scheduler's handles share the loop: the process would abort.  A
   clear error instead, at the caller's line.  May raise. */
static int walk_call(lua_State *L) {
  lw_sched *S = lw_sched_get(L);
  luv_ctx *c = context(L);
  if (S != NULL && !lws_gone(S) && c != NULL && lw_sched_loop(S) == c->loop)
    return lws_error_at_caller(L, "uv.walk: not available while luaweave "
                               "shares luv's loop (luv aborts on the handles "
                               "it did not make): close your handles by name");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* walk_call behind luv's walk (on the stack's top) */
static void make_walk(lua_State *L) { lua_pushcclosure(L, walk_call, 1); }

/* run_call and walk_call behind luv's, in the module table at idx */
static void hook_luv(lua_State *L, int idx) {
  hook(L, idx, "run", "luaweave.luv.run", make_run);
  hook(L, idx, "walk", "luaweave.luv.walk", make_walk);
}

/* ------------------------------------------------------------------ */
/* sharing                                                             */

/* lua_close: detach, and let the closes finish now, while this library is
   loaded (Lua 5.1 and LuaJIT unload C libraries in the reverse order of
   loading, so luaweave's code may be gone when luv's loop_gc runs the
   close callbacks).  Not while uv.run runs the loop (never from lua_close,
   but a finalizer must not assume) */
static int detach_gc(lua_State *L) {
  luv_ctx *c = *(luv_ctx **)lua_touserdata(L, 1);
  lw_sched *S = lw_sched_get(L);
  if (S != NULL && lw_sched_detach(S) == LW_OK && c->loop != NULL && c->mode < 0)
    uv_run(c->loop, UV_RUN_NOWAIT);
  return 0;
}

/* keep the shared object holding this code loaded for good: luv may call
   its functions from its loop finalizer, after lua_close unloaded it.
   Nothing to do when luaweave is linked into the program (the CLI) */
static void pin_library(void) {
  Dl_info info;
  if (dladdr(CTX_KEY, &info) != 0 && info.dli_fname != NULL)
    (void)dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

/* attach the state's scheduler to luv's loop, if luv is loaded and it is
   not attached yet.  May raise. */
static int attach_now(lua_State *L) {
  lw_sched *S = lw_sched_check(L);
  luv_ctx *c = context(L);
  int e;
  if (c == NULL) return 0;
  e = lws_attach_shared(S, c->loop);
  if (e == LW_EMEM) lws_raise_mem(L);
  if (e != LW_OK) return 0; /* attached already (to luv's or a host's loop) */
  /* luv calls back on the thread that required it.  Required from a task
     (every script's main chunk is one in the CLI), that thread may be
     collected while luv's handles live on, and luv would call back on
     freed memory (as it would for any coroutine that requires luv).
     Unless it is the main thread, luv gets one that lives until
     lua_close. */
  if (S->s == NULL || !lw_store_ismain(S->s, c->L)) c->L = own_thread(L);
  pin_library();
  *(luv_ctx **)lua_newuserdata(L, sizeof(luv_ctx *)) = c;
  if (luaL_newmetatable(L, DETACH_META)) {
    lua_pushcfunction(L, detach_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  luaL_ref(L, LUA_REGISTRYINDEX); /* lives until lua_close */
  return 0;
}

/* attach_now, and uv.run hooked in package.loaded.luv.  May raise. */
static int attach_loaded(lua_State *L) {
  attach_now(L);
  if (context(L) == NULL) return 0;
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "loaded");
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "luv");
      hook_luv(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return 0;
}

/* luaweave's I/O handles are the first member of their struct, whose
   data points at it (lw_io.h): a host's handles (the CLI's) are not */
static void count_io(uv_handle_t *h, void *arg) {
  if (h->data == (void *)h && !uv_is_closing(h)) ++*(unsigned *)arg;
}

/* the preload entry's check(): nil, or why luv cannot be loaded now.  A
   libuv handle or request cannot move to another loop: what luaweave's
   I/O opened on its own loop (a server, a stream, a request in flight)
   would never be polled again once the scheduler moves to luv's, so the
   require fails rather than leave it silently dead (and clears 5.1's
   "loading" mark: luv may be required once that I/O is closed).  A
   scheduler attached
   elsewhere does not move.  May raise a memory error. */
static int check_own_io(lua_State *L) {
  lw_sched *S = lw_sched_get(L);
  uv_loop_t *loop;
  unsigned handles = 0, reqs;
  if (S == NULL || lws_gone(S) || S->driver == NULL || S->notify != NULL) return 0;
  if ((loop = lw_sched_loop(S)) == NULL) return 0;
  uv_walk(loop, count_io, &handles);
  reqs = loop->active_reqs.count;
  if (handles == 0 && reqs == 0) return 0;
  lua_pushfstring(L, "require 'luv': luaweave I/O is open on luaweave's own "
                  "loop (%d handles, %d requests in flight: servers, streams, "
                  "processes, signals, file operations), which luv's loop "
                  "replaces: they would never be served again; require luv "
                  "before starting I/O, or close it first",
                  (int)handles, (int)reqs);
  return 1;
}

/* the preload entry's attach(m): luv's module m just loaded.  May raise. */
static int attach_module(lua_State *L) {
  attach_now(L);
  if (context(L) != NULL) hook_luv(L, 1);
  return 0;
}

void lw_luv_share(lua_State *L) {
  static const char code[] =
    "local attach, check = ...\n"
    "local pk = package\n"
    "if type(pk) ~= 'table' or type(pk.preload) ~= 'table' then return end\n"
    "local searchers = pk.searchers or pk.loaders\n"
    "if pk.loaded.luv ~= nil or pk.preload.luv ~= nil then return end\n"
    "pk.preload.luv = function(name)\n"
    "  local busy = check()\n"
    "  if busy then pk.loaded[name] = nil; error(busy, 3) end\n"
    "  pk.preload.luv = nil\n"
    "  local why = {}\n"
    "  for i = 1, #searchers do\n"
    "    local f, extra = searchers[i](name)\n"
    "    if type(f) == 'function' then\n"
    "      local m = f(name, extra)\n"
    "      if m == nil then m = pk.loaded[name] end\n"
    "      attach(m)\n"
    "      return m\n"
    "    elseif type(f) == 'string' then\n"
    "      why[#why + 1] = f:find('^\\n') and f or '\\n\\t' .. f\n"
    "    end\n"
    "  end\n"
    "  error(\"module '\" .. name .. \"' not found:\" .. table.concat(why), 2)\n"
    "end\n";
  attach_loaded(L);
  if (context(L) != NULL) return;
  if (luaL_loadbuffer(L, code, sizeof code - 1, "=luaweave.luv") != 0)
    lua_error(L);
  lua_pushcfunction(L, attach_module);
  lua_pushcfunction(L, check_own_io);
  lua_call(L, 2, 0);
}

/* ------------------------------------------------------------------ */

/* for lw_sched_run: attach S to luv's loop if luv is loaded; LW_OK or
   LW_EMEM, raises no Lua error */
static int share_protected(lua_State *L) {
  return attach_loaded(L);
}

int lw_luv_join(lw_sched *S) {
  return lws_protect(S, share_protected, NULL);
}
