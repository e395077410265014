/*
** lw_signal.c — luaweave.signal: a task waits for a signal.
**
** Every wait has a uv_signal_t of its own (malloc'ed, see lw_io.h),
** started once: the signal completes it, a cancel (or lua_close) closes
** it and the close callback completes it.  signal.wait keeps the run
** alive while it waits.  A handler (signal.handle) has one handle for
** good, which counts the signals (none is lost while the handler runs,
** and the signal's default action never comes back between two), and
** which is unref'ed: a program with a handler still ends when its other
** work is done.
*/
#include "lw_io.h"
#include "lw_compat.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct sigwaiter {
  uv_signal_t h;
  lw_async *op;
  int signum;
  int got;
} sigwaiter;

static int push_sig(lua_State *L, void *ud) {
  lw_io_pushsig(L, ((sigwaiter *)ud)->signum);
  return 1;
}

static void sig_closed(uv_handle_t *h) {
  sigwaiter *w = (sigwaiter *)h->data;
  if (w->op != NULL) /* cancelled: the outcome is discarded */
    lw_async_complete(w->op, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  free(w);
}

static void on_signal(uv_signal_t *h, int signum) {
  sigwaiter *w = (sigwaiter *)h->data;
  lw_async *op = w->op;
  (void)signum;
  w->op = NULL;
  if (op != NULL) lw_async_complete(op, push_sig, w);
  uv_close((uv_handle_t *)h, sig_closed);
}

static void sig_cancel(void *ud) {
  sigwaiter *w = (sigwaiter *)ud;
  if (!uv_is_closing((uv_handle_t *)&w->h)) uv_close((uv_handle_t *)&w->h, sig_closed);
}

/* wait(sig) -> the signal's name | nil, msg, code */
static int sig_wait(lua_State *L) {
  int signum = lw_io_signum(L, 1, -1), e;
  uv_loop_t *loop;
  lw_async *op;
  sigwaiter *w;
  if (signum < 0) return lw_io_argerror(L, 1, "signal name or number expected");
  loop = lw_io_loop(L);
  op = lw_async_begin(L);
  if ((w = (sigwaiter *)calloc(1, sizeof *w)) == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
    return lw_async_yield(L, op);
  }
  w->signum = signum;
  w->h.data = w;
  if ((e = uv_signal_init(loop, &w->h)) != 0) {
    free(w);
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
    return lw_async_yield(L, op);
  }
  if ((e = uv_signal_start_oneshot(&w->h, on_signal, signum)) != 0) {
    uv_close((uv_handle_t *)&w->h, sig_closed);
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
    return lw_async_yield(L, op);
  }
  w->op = op;
  lw_async_oncancel(op, sig_cancel, w);
  return lw_async_yield(L, op);
}

/* ------------------------------------------------------------------ */
/* handlers: one signal handle, started for good, that counts           */

#define WATCH_MT "luaweave.signal.watch"

typedef struct watch {
  uv_signal_t h;
  struct watch **box;   /* the Lua side, or NULL */
  lw_async *op;         /* the handler task, waiting */
  int signum;
  unsigned pending;     /* signals not handed over yet */
  int closing;
} watch;

static void watch_closed(uv_handle_t *h) {
  watch *w = (watch *)h->data;
  if (w->op != NULL)
    lw_async_complete(w->op, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  free(w);
}

static void watch_close(watch *w) {
  if (w->closing) return;
  w->closing = 1;
  if (w->box != NULL) *w->box = NULL;
  w->box = NULL;
  uv_close((uv_handle_t *)&w->h, watch_closed);
}

static int push_watch(lua_State *L, void *ud) {
  watch *w = (watch *)ud;
  w->pending--;
  lw_io_pushsig(L, w->signum);
  return 1;
}

static void on_watch(uv_signal_t *h, int signum) {
  watch *w = (watch *)h->data;
  lw_async *op = w->op;
  (void)signum;
  w->pending++;
  if (op == NULL) return;
  w->op = NULL;
  lw_async_complete(op, push_watch, w);
}

/* the handler task was cancelled, or its state closes */
static void watch_cancel(void *ud) { watch_close((watch *)ud); }

/* w:next() -> the signal's name, once one came */
static int watch_next(lua_State *L) {
  watch **box = (watch **)luaL_checkudata(L, 1, WATCH_MT);
  watch *w = *box;
  lw_async *op;
  if (w == NULL) return lw_io_fail(L, UV_ECANCELED);
  if (w->pending > 0) {
    w->pending--;
    lw_io_pushsig(L, w->signum);
    return 1;
  }
  if (w->op != NULL) return lw_io_fail(L, UV_EBUSY);
  op = lw_async_begin(L);
  w->op = op;
  lw_async_oncancel(op, watch_cancel, w);
  return lw_async_yield(L, op);
}

static int watch_gc(lua_State *L) {
  watch **box = (watch **)lua_touserdata(L, 1);
  if (*box != NULL) watch_close(*box);
  return 0;
}

/* watch(sig) -> a watcher (unref'ed: it keeps no run alive) | nil, msg, code */
static int sig_watch(lua_State *L) {
  int signum = lw_io_signum(L, 1, -1), e;
  uv_loop_t *loop;
  watch **box, *w;
  if (signum < 0) return lw_io_argerror(L, 1, "signal name or number expected");
  loop = lw_io_loop(L);
  box = (watch **)lua_newuserdata(L, sizeof *box);
  *box = NULL;
  if (luaL_newmetatable(L, WATCH_MT)) {
    lua_pushcfunction(L, watch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  if ((w = (watch *)calloc(1, sizeof *w)) == NULL) return lw_io_fail(L, UV_ENOMEM);
  w->signum = signum;
  w->h.data = w;
  if ((e = uv_signal_init(loop, &w->h)) != 0) {
    free(w);
    return lw_io_fail(L, e);
  }
  *box = w;
  w->box = box;
  if ((e = uv_signal_start(&w->h, on_watch, signum)) != 0) {
    watch_close(w);
    return lw_io_fail(L, e);
  }
  uv_unref((uv_handle_t *)&w->h);
  return 1;
}

int luaopen_luaweave_signal(lua_State *L) {
  /* handle(sig, fn): a task that calls fn(name) at each signal */
  static const char code[] =
    "local watch, next, spawn = ...\n"
    "return function(sig, fn)\n"
    "  if type(fn) ~= 'function' then\n"
    "    error(\"bad argument #2 to 'handle' (function expected)\", 2)\n"
    "  end\n"
    "  local w, msg, code = watch(sig)\n"
    "  if not w then return nil, msg, code end\n"
    "  return spawn(function()\n"
    "    while true do\n"
    "      local name, msg, code = next(w)\n"
    "      if not name then return nil, msg, code end\n"
    "      fn(name)\n"
    "    end\n"
    "  end)\n"
    "end\n";
  lua_createtable(L, 0, 2);
  lw_async_wrap(L, sig_wait);
  lua_setfield(L, -2, "wait");
  if (luaL_loadbuffer(L, code, sizeof code - 1, "=luaweave.signal") != 0)
    return lua_error(L);
  lw_async_wrap(L, sig_watch); /* wrapped: its errors name handle's caller */
  lw_async_wrap(L, watch_next);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaweave.task");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "spawn");
  lua_remove(L, -2);
  lua_call(L, 3, 1);
  lua_setfield(L, -2, "handle");
  return 1;
}
