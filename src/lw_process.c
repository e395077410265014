/*
** lw_process.c — luaweave.process: subprocesses on uv_spawn.
**
** spawn starts a child at once (uv_spawn is synchronous) with its stdio
** inherited, ignored or piped to streams (lw_stream.c); p:wait()
** suspends its task until the child exits.  exec runs a child to its end
** and collects what it writes, in one async operation.
**
** Lifetimes.  The uv_process_t lives in malloc'ed memory (see lw_io.h).
** It is unref'ed except while a task waits on it, so that a child nobody
** waits for keeps no run alive.  A cancelled waiter kills nothing: its
** token is completed (and discarded) at the next wait, when the child
** exits or when the handle closes.  A process object that is collected, or lua_close, closes the
** handle without killing the child (which then is not reaped by this
** loop).  A cancelled exec kills its child (SIGKILL): it owns it.
*/
#include "lw_io.h"
#include "lw_compat.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PROC_MT "luaweave.process"

/* ------------------------------------------------------------------ */
/* options shared by spawn and exec                                    */

enum { IO_INHERIT, IO_IGNORE, IO_PIPE };

typedef struct spawnargs {
  uv_process_options_t o;
  uv_stdio_container_t io[3];
  int mode[3];
} spawnargs;

/* the strings of the options, held by a table pushed on L (so that the
   pointers stay valid until the caller pops it).  Raises argument errors
   (cmd is argument 1, args 2, opts 3). */
static void check_options(lua_State *L, spawnargs *a) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  static const char *const modes[] = {"inherit", "ignore", "pipe", NULL};
  int hold, n = 0, i;
  size_t len;
  char **argv, **env = NULL;
  memset(a, 0, sizeof *a);
  a->o.file = lw_io_checkstring(L, 1, NULL);
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2)) lw_io_argerror(L, 2, "table expected");
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3)) lw_io_argerror(L, 3, "table expected");
  lua_settop(L, 3);
  lua_newtable(L);
  hold = lua_gettop(L);
  if (lua_istable(L, 2)) n = (int)lw_rawlen(L, 2);
  argv = (char **)lua_newuserdata(L, sizeof(char *) * ((size_t)n + 2));
  lua_rawseti(L, hold, 1);
  argv[0] = (char *)a->o.file;
  for (i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
      lw_io_argerror(L, 2, "strings expected in args");
    argv[i] = (char *)lua_tolstring(L, -1, &len);
    lua_rawseti(L, hold, i + 1);
  }
  argv[n + 1] = NULL;
  a->o.args = argv;
  for (i = 0; i < 3; i++) {
    a->mode[i] = IO_INHERIT;
    a->io[i].flags = UV_INHERIT_FD;
    a->io[i].data.fd = i;
  }
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "cwd");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING) lw_io_argerror(L, 3, "cwd: string expected");
      a->o.cwd = lua_tostring(L, -1);
      lua_rawseti(L, hold, 0);
    } else {
      lua_pop(L, 1);
    }
    lua_getfield(L, 3, "env");
    if (lua_istable(L, -1)) {
      int envt = lua_gettop(L), k = 0, cnt = 0;
      lua_pushnil(L);
      while (lua_next(L, envt)) {
        cnt++;
        lua_pop(L, 1);
      }
      env = (char **)lua_newuserdata(L, sizeof(char *) * ((size_t)cnt + 1));
      lua_rawseti(L, hold, -1);
      lua_pushnil(L);
      while (lua_next(L, envt)) {
        if (lua_type(L, -2) != LUA_TSTRING ||
            (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER))
          lw_io_argerror(L, 3, "env: string keys and values expected");
        lua_pushvalue(L, -2);
        lua_pushliteral(L, "=");
        lua_pushvalue(L, -3);
        lua_concat(L, 3);
        env[k++] = (char *)lua_tostring(L, -1);
        lua_rawseti(L, hold, -2 - k);
        lua_pop(L, 1);
      }
      env[k] = NULL;
      a->o.env = env;
    } else if (!lua_isnil(L, -1)) {
      lw_io_argerror(L, 3, "env: table expected");
    }
    lua_pop(L, 1);
    for (i = 0; i < 3; i++) {
      int m;
      lua_getfield(L, 3, names[i]);
      if (!lua_isnil(L, -1)) {
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        for (m = 0; modes[m] != NULL && strcmp(modes[m], s) != 0; m++) {}
        if (modes[m] == NULL)
          lw_io_argerror(L, 3, lua_pushfstring(L, "%s: \"inherit\", \"ignore\" or \"pipe\" expected", names[i]));
        a->mode[i] = m;
        if (m == IO_IGNORE) a->io[i].flags = UV_IGNORE;
      }
      lua_pop(L, 1);
    }
  }
  a->o.stdio = a->io;
  a->o.stdio_count = 3;
  (void)len;
}

/* the pipe of a stdio slot the child reads (0) or writes (1, 2) */
static void pipe_slot(spawnargs *a, int i, uv_stream_t *s) {
  a->io[i].flags = (uv_stdio_flags)(UV_CREATE_PIPE |
                                    (i == 0 ? UV_READABLE_PIPE : UV_WRITABLE_PIPE));
  a->io[i].data.stream = s;
}

/* ------------------------------------------------------------------ */
/* spawn, wait, kill                                                   */

/* One task in p:wait().  Any number of tasks may wait for one child:
   each gets its code and signal when it exits. */
typedef struct waiter {
  lw_async *op;
  struct proc *p;
  int gone;             /* cancelled: its token is still to complete */
  struct waiter *next;
} waiter;

typedef struct proc {
  uv_process_t h;
  struct proc_box *box; /* the Lua side, or NULL */
  int exited, closing, inited;
  int64_t code;
  int sig;
  waiter *waiters;      /* the waiting tasks, cancelled ones included */
  int nwait;            /* those not cancelled: the handle is ref'd */
} proc;

typedef struct proc_box {
  proc *p;
  lw_stream *pending[3]; /* pipes not handed to Lua yet */
  int ref[3];            /* the stream objects (registry), or LUA_NOREF */
} proc_box;

static int push_exit(lua_State *L, void *ud) {
  proc *p = (proc *)ud;
  lua_pushinteger(L, (lua_Integer)p->code);
  if (p->sig) lw_io_pushsig(L, p->sig);
  else lua_pushnil(L);
  return 2;
}

/* complete and free p's waiters: all of them (with the exit status, or
   ECANCELED when the child has not exited), or only the cancelled ones
   (whose outcome nobody reads: their tokens are freed early) */
static void end_waiters(proc *p, int only_gone) {
  waiter **at = &p->waiters, *w;
  while ((w = *at) != NULL) {
    if (only_gone && !w->gone) {
      at = &w->next;
      continue;
    }
    *at = w->next;
    if (p->exited && !w->gone) lw_async_complete(w->op, push_exit, p);
    else lw_async_complete(w->op, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
    free(w);
  }
}

static void proc_closed(uv_handle_t *h) {
  proc *p = (proc *)h->data;
  end_waiters(p, 0);
  free(p);
}

static void proc_close(proc *p) {
  if (p->closing) return;
  p->closing = 1;
  if (p->box) p->box->p = NULL;
  p->box = NULL;
  if (p->inited) uv_close((uv_handle_t *)&p->h, proc_closed);
  else proc_closed((uv_handle_t *)&p->h);
}

static void on_exit_(uv_process_t *h, int64_t code, int sig) {
  proc *p = (proc *)h->data;
  p->exited = 1;
  p->code = code;
  p->sig = sig;
  p->nwait = 0;
  end_waiters(p, 0);
  /* the handle is done with; the box keeps the status */
  if (p->box == NULL) proc_close(p);
}

/* a waiter was cancelled (or its state is closing): the child runs on */
static void wait_cancel(void *ud) {
  waiter *w = (waiter *)ud;
  if (w->gone) return;
  w->gone = 1;
  if (--w->p->nwait == 0) uv_unref((uv_handle_t *)&w->p->h);
}

static proc_box *check_proc(lua_State *L) {
  return (proc_box *)lw_io_checkself(L, PROC_MT, "process");
}

/* p:wait() -> code, signal (suspends until the child exits; again and
   from any number of tasks: each gets the same) */
static int p_wait(lua_State *L) {
  proc_box *b = check_proc(L);
  proc *p = b->p;
  lw_async *op;
  waiter *w;
  if (p == NULL) return luaL_error(L, "attempt to use a closed process");
  if (p->exited) return push_exit(L, p);
  op = lw_async_begin(L);
  if ((w = (waiter *)calloc(1, sizeof *w)) == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
    return lw_async_yield(L, op);
  }
  end_waiters(p, 1);
  w->op = op;
  w->p = p;
  w->next = p->waiters;
  p->waiters = w;
  if (p->nwait++ == 0) uv_ref((uv_handle_t *)&p->h);
  lw_async_oncancel(w->op, wait_cancel, w);
  return lw_async_yield(L, w->op);
}

/* p:kill([sig]) -> true | nil, msg, code; sig 0 only asks whether the
   child is alive (kill(2)'s probe) */
static int p_kill(lua_State *L) {
  proc_box *b = check_proc(L);
  int sig = lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) == 0
              ? 0 : lw_io_signum(L, 2, SIGTERM), e;
  if (sig < 0) return lw_io_argerror(L, 2, "signal name or number expected");
  if (b->p == NULL) return luaL_error(L, "attempt to use a closed process");
  if (b->p->exited) return lw_io_fail(L, UV_ESRCH);
  if ((e = uv_process_kill(&b->p->h, sig)) != 0) return lw_io_fail(L, e);
  lua_pushboolean(L, 1);
  return 1;
}

/* p.pid, p.stdin, p.stdout, p.stderr, or a method */
static int p_index(lua_State *L) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  proc_box *b = check_proc(L);
  const char *k = lua_tostring(L, 2);
  int i;
  if (k == NULL) return 0;
  if (strcmp(k, "pid") == 0) {
    if (b->p == NULL) return 0;
    lua_pushinteger(L, b->p->h.pid);
    return 1;
  }
  for (i = 0; i < 3; i++)
    if (strcmp(k, names[i]) == 0) {
      if (b->ref[i] == LUA_NOREF) return 0;
      lua_rawgeti(L, LUA_REGISTRYINDEX, b->ref[i]);
      return 1;
    }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

/* close what b holds: pipes not handed over, the process handle */
static void box_close(lua_State *L, proc_box *b) {
  int i;
  for (i = 0; i < 3; i++) {
    if (b->pending[i]) lw_stream_close(b->pending[i]);
    b->pending[i] = NULL;
    if (b->ref[i] != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, b->ref[i]);
    b->ref[i] = LUA_NOREF;
  }
  if (b->p != NULL) proc_close(b->p);
}

static int p_gc(lua_State *L) {
  box_close(L, (proc_box *)lua_touserdata(L, 1));
  return 0;
}

static int p_tostring(lua_State *L) {
  proc_box *b = (proc_box *)lua_touserdata(L, 1);
  if (b->p == NULL) lua_pushliteral(L, "process (closed)");
  else lua_pushfstring(L, "process (%d)", b->p->h.pid);
  return 1;
}

/* a new box on L's top, empty.  May raise a memory error. */
static proc_box *new_box(lua_State *L) {
  proc_box *b = (proc_box *)lua_newuserdata(L, sizeof *b);
  int i;
  b->p = NULL;
  for (i = 0; i < 3; i++) {
    b->pending[i] = NULL;
    b->ref[i] = LUA_NOREF;
  }
  if (luaL_newmetatable(L, PROC_MT)) {
    lua_createtable(L, 0, 2);
    lw_async_wrap(L, p_wait);
    lua_setfield(L, -2, "wait");
    lua_pushcfunction(L, p_kill);
    lua_setfield(L, -2, "kill");
    lua_pushcclosure(L, p_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, p_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, p_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  return b;
}

/* spawn(cmd, args, opts) -> process | nil, msg, code */
static int pr_spawn(lua_State *L) {
  spawnargs a;
  uv_loop_t *loop;
  proc_box *b;
  proc *p;
  int i, e = 0;
  check_options(L, &a); /* the holding table is at 4 */
  loop = lw_io_loop(L);
  b = new_box(L);       /* 5 */
  if ((p = (proc *)calloc(1, sizeof *p)) == NULL) return lw_io_fail(L, UV_ENOMEM);
  b->p = p;
  p->box = b;
  p->h.data = p;
  for (i = 0; i < 3; i++)
    if (a.mode[i] == IO_PIPE) {
      if ((b->pending[i] = lw_stream_pipe(loop, &e)) == NULL) break;
      pipe_slot(&a, i, &b->pending[i]->u.s);
    }
  if (e == 0) {
    a.o.exit_cb = on_exit_;
    e = uv_spawn(loop, &p->h, &a.o);
    p->inited = 1; /* uv_spawn initialised the handle, even on failure */
  }
  if (e != 0) {
    box_close(L, b);
    return lw_io_fail(L, e);
  }
  uv_unref((uv_handle_t *)&p->h);
  for (i = 0; i < 3; i++)
    if (b->pending[i] != NULL) {
      lw_stream_push(L, b->pending[i]);
      b->pending[i] = NULL;
      b->ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
    }
  return 1;
}

/* ------------------------------------------------------------------ */
/* exec: run to the end, collect stdout and stderr                     */

typedef struct outbuf {
  char *p;
  size_t len, cap;
} outbuf;

typedef struct execop {
  uv_process_t h;
  uv_pipe_t pipe[2];    /* stdout, stderr */
  outbuf out[2];
  lw_async *op;
  int open;             /* handles still open */
  int pending;          /* the exit and each pipe's end, still to come */
  int64_t code;
  int sig;
  int err;              /* a libuv error that ends the exec */
} execop;

static void exec_closed(uv_handle_t *h) {
  execop *x = (execop *)h->data;
  if (--x->open > 0) return;
  free(x->out[0].p);
  free(x->out[1].p);
  free(x);
}

static void exec_close(execop *x) {
  int i;
  for (i = 0; i < 2; i++)
    if (!uv_is_closing((uv_handle_t *)&x->pipe[i])) uv_close((uv_handle_t *)&x->pipe[i], exec_closed);
  if (!uv_is_closing((uv_handle_t *)&x->h)) uv_close((uv_handle_t *)&x->h, exec_closed);
}

static int push_exec(lua_State *L, void *ud) {
  execop *x = (execop *)ud;
  if (x->err != 0) return lw_io_fail(L, x->err);
  lua_pushinteger(L, (lua_Integer)x->code);
  lua_pushlstring(L, x->out[0].p ? x->out[0].p : "", x->out[0].len);
  lua_pushlstring(L, x->out[1].p ? x->out[1].p : "", x->out[1].len);
  if (x->sig) lw_io_pushsig(L, x->sig);
  else lua_pushnil(L);
  return 4;
}

/* one of the three ends came */
static void exec_step(execop *x) {
  if (--x->pending > 0) return;
  lw_async_complete(x->op, push_exec, x);
  exec_close(x);
}

static void exec_exit(uv_process_t *h, int64_t code, int sig) {
  execop *x = (execop *)h->data;
  x->code = code;
  x->sig = sig;
  exec_step(x);
}

static void exec_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  execop *x = (execop *)h->data;
  outbuf *o = &x->out[(uv_pipe_t *)h == &x->pipe[0] ? 0 : 1];
  (void)hint;
  if (o->cap - o->len < 65536) {
    size_t ncap = o->cap ? o->cap * 2 : 65536;
    char *np = (char *)realloc(o->p, ncap);
    if (np == NULL) {
      *buf = uv_buf_init(NULL, 0); /* exec_read hears UV_ENOBUFS */
      return;
    }
    o->p = np;
    o->cap = ncap;
  }
  *buf = uv_buf_init(o->p + o->len, (unsigned)(o->cap - o->len));
}

static void exec_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  execop *x = (execop *)s->data;
  outbuf *o = &x->out[(uv_pipe_t *)s == &x->pipe[0] ? 0 : 1];
  (void)buf;
  if (n > 0) {
    o->len += (size_t)n;
    return;
  }
  if (n == 0) return;
  if (n != UV_EOF) { /* no memory (UV_ENOBUFS), or a broken pipe */
    if (x->err == 0) x->err = n == UV_ENOBUFS ? UV_ENOMEM : (int)n;
    uv_process_kill(&x->h, SIGKILL); /* else it may block on a full pipe */
  }
  uv_read_stop(s);
  exec_step(x);
}

/* the task left exec (cancelled, or lua_close): the child is exec's own */
static void exec_cancel(void *ud) {
  execop *x = (execop *)ud;
  if (x->pending > 0) uv_process_kill(&x->h, SIGKILL);
}

/* exec(cmd, args, opts) -> code, stdout, stderr, signal | nil, msg, code */
static int pr_exec(lua_State *L) {
  spawnargs a;
  uv_loop_t *loop;
  lw_async *op;
  execop *x;
  int i, e;
  check_options(L, &a);
  if (a.mode[1] == IO_PIPE || a.mode[2] == IO_PIPE || a.mode[0] == IO_PIPE)
    lw_io_argerror(L, 3, "exec pipes stdout and stderr itself, and no stdin");
  loop = lw_io_loop(L);
  op = lw_async_begin(L);
  if ((x = (execop *)calloc(1, sizeof *x)) == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
    return lw_async_yield(L, op);
  }
  x->op = op;
  x->h.data = x;
  for (i = 0; i < 2; i++) {
    uv_pipe_init(loop, &x->pipe[i], 0); /* cannot fail on Unix */
    x->pipe[i].data = x;
    pipe_slot(&a, i + 1, (uv_stream_t *)&x->pipe[i]);
  }
  x->open = 3;
  if (a.mode[0] == IO_INHERIT) { /* stdin: the child gets none unless asked */
    a.io[0].flags = UV_IGNORE;
  }
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "stdin");
    if (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "inherit") == 0) {
      a.io[0].flags = UV_INHERIT_FD;
      a.io[0].data.fd = 0;
    }
    lua_pop(L, 1);
  }
  a.o.exit_cb = exec_exit;
  if ((e = uv_spawn(loop, &x->h, &a.o)) != 0) {
    x->err = e;
    lw_async_complete(op, push_exec, x);
    exec_close(x);
    return lw_async_yield(L, op);
  }
  x->pending = 3;
  for (i = 0; i < 2; i++)
    if ((e = uv_read_start((uv_stream_t *)&x->pipe[i], exec_alloc, exec_read)) != 0) {
      if (x->err == 0) x->err = e;
      uv_process_kill(&x->h, SIGKILL);
      x->pending--;
    }
  lw_async_oncancel(op, exec_cancel, x);
  return lw_async_yield(L, op);
}

int luaopen_luaweave_process(lua_State *L) {
  lw_io_nosigpipe();
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, pr_spawn);
  lua_setfield(L, -2, "spawn");
  lw_async_wrap(L, pr_exec);
  lua_setfield(L, -2, "exec");
  return 1;
}
