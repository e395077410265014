/*
** lw_stream.c — streams over libuv's uv_stream_t (TCP sockets, pipes):
** read(n) / read() / readline() / readall() / lines(), write(...) with
** back-pressure, shutdown(), close().
**
** Reading: the socket is read from a task's first read on, and goes on
** after the reader was answered until READ_CHUNK bytes wait unread (the
** handle unref'd meanwhile: only a waiting reader keeps the loop alive).
** Stopping after every answer cost two epoll_ctl calls per request of a
** keep-alive HTTP connection (W6); a stream nobody reads still holds no
** more than READ_CHUNK plus one read of the kernel, and the peer is slowed
** by TCP itself.  Writing: data is handed to libuv at once (copied); a
** writer suspends while more than HIGH_WATER bytes are queued and
** resumes when the queue fell to half of it, so a fast writer to a slow
** reader never grows memory without bound.  Every waiting operation
** registers a cancel hook that closes the stream (lw_io.h, Lifetimes).
*/
#include "lw_io.h"
#include "lw_compat.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STREAM_MT "luaweave.stream"
#define HIGH_WATER ((size_t)1 << 20)
#define READ_CHUNK ((size_t)64 * 1024)
/* readline's default limit: a peer sending an endless line must not grow
   the buffer without bound */
#define MAX_LINE ((size_t)64 * 1024)

/* what a reader waits for */
enum { R_SOME, R_N, R_LINE, R_ALL };

/* ------------------------------------------------------------------ */
/* the handle's side                                                   */

static void on_closed(uv_handle_t *h) {
  lw_stream *st = (lw_stream *)h->data;
  /* libuv cancelled writes and shutdown before; reads have no request */
  if (st->rop) lw_async_complete(st->rop, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  if (st->rstale) lw_async_complete(st->rstale, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  if (st->wop) lw_async_complete(st->wop, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  if (st->sop) lw_async_complete(st->sop, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  free(st->buf);
  free(st);
}

void lw_stream_close(lw_stream *st) {
  if (st->closing) return;
  st->closing = 1;
  if (st->box != NULL) st->box->st = NULL;
  st->box = NULL;
  uv_close(&st->u.h, on_closed);
}

/* a task waiting on st was cancelled, or its state is closing */
static void on_cancel(void *ud) { lw_stream_close((lw_stream *)ud); }

/* the reader's task left its wait.  Cancelled or closing, it is
   suspended elsewhere: the stream closes.  But a task that is running
   again was never suspended here: its yield failed (Lua 5.1 cannot yield
   across pcall) and it went on, and the stream must stay usable; the
   read is let go (its token completed later, outside this hook, where
   the outcome is discarded). */
static void on_cancel_read(void *ud) {
  lw_stream *st = (lw_stream *)ud;
  if (st->rop != NULL && lua_status(st->rco) == LUA_OK) {
    st->rstale = st->rop;
    st->rop = NULL;
    uv_unref(&st->u.h); /* as reading on for nobody (on_read) */
    return;
  }
  lw_stream_close(st);
}

/* complete the reader on_cancel_read let go */
static void drop_stale(lw_stream *st) {
  lw_async *op = st->rstale;
  st->rstale = NULL;
  if (op != NULL) lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
}

static lw_stream *stream_new(uv_loop_t *loop, int *err, int pipe) {
  lw_stream *st = (lw_stream *)calloc(1, sizeof *st);
  if (st == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = pipe ? uv_pipe_init(loop, &st->u.pipe, 0) : uv_tcp_init(loop, &st->u.tcp);
  if (*err != 0) {
    free(st);
    return NULL;
  }
  st->u.h.data = st;
  st->maxline = MAX_LINE;
  return st;
}

lw_stream *lw_stream_tcp(uv_loop_t *loop, int *err) { return stream_new(loop, err, 0); }

/* On a duplicate: libuv reopens a tty onto the descriptor it is given
   (a file description of its own, made non-blocking), which must not be
   fd 0, still read by Lua's io library.  A pipe shares O_NONBLOCK with
   fd.  (libuv never closes descriptors 0-2 itself.) */
lw_stream *lw_stream_fd(uv_loop_t *loop, int fd, int *err) {
  uv_handle_type t = uv_guess_handle(fd);
  lw_stream *st;
  int dup_fd;
  if (t != UV_TTY && t != UV_NAMED_PIPE && t != UV_TCP) {
    *err = t == UV_UNKNOWN_HANDLE ? UV_EBADF : UV_EINVAL;
    return NULL;
  }
  if ((st = (lw_stream *)calloc(1, sizeof *st)) == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  if ((dup_fd = dup(fd)) < 0) {
    *err = uv_translate_sys_error(errno);
    free(st);
    return NULL;
  }
  if (t == UV_TTY) {
    *err = uv_tty_init(loop, &st->u.tty, dup_fd, 0);
  } else if ((*err = uv_pipe_init(loop, &st->u.pipe, 0)) == 0 &&
             (*err = uv_pipe_open(&st->u.pipe, dup_fd)) != 0) {
    st->u.h.data = st;
    lw_stream_close(st); /* initialised: closed by libuv, freed in on_closed */
    close(dup_fd);
    return NULL;
  }
  if (*err != 0) {
    close(dup_fd);
    free(st);
    return NULL;
  }
  st->u.h.data = st;
  st->maxline = MAX_LINE;
  return st;
}
lw_stream *lw_stream_pipe(uv_loop_t *loop, int *err) { return stream_new(loop, err, 1); }

/* the newline ending the next line, looked for no further than the
   limit allows; NULL when there is none there */
static const char *line_end(const lw_stream *st) {
  size_t avail = st->len - st->off;
  if (avail > st->maxline) avail = st->maxline + 1;
  return avail > 0 ? (const char *)memchr(st->buf + st->off, '\n', avail) : NULL;
}

static int can_answer(const lw_stream *st) {
  size_t avail = st->len - st->off;
  if (st->eof || st->rerr) return 1;
  switch (st->rmode) {
    case R_SOME: return avail > 0;
    case R_N: return avail >= st->rwant;
    case R_LINE: return avail > st->maxline || line_end(st) != NULL;
    default: return 0;
  }
}

static void consume(lw_stream *st, size_t n) {
  st->off += n;
  if (st->off == st->len) st->off = st->len = 0;
}

/* push the answer to the waiting read; may raise a memory error (then
   nothing was consumed) */
static int push_answer(lua_State *L, lw_stream *st) {
  size_t avail = st->len - st->off, n = avail;
  const char *p = st->buf + st->off, *nl;
  if (st->rerr && (avail == 0 || st->rmode == R_ALL))
    return lw_io_fail(L, st->rerr);
  if (avail == 0) {
    lua_pushnil(L); /* end of stream */
    return 1;
  }
  if (st->rmode == R_N && n > st->rwant) n = st->rwant;
  if (st->rmode == R_LINE && (nl = line_end(st)) != NULL) {
    lua_pushlstring(L, p, (size_t)(nl - p));
    consume(st, (size_t)(nl - p) + 1);
    return 1;
  }
  if (st->rmode == R_LINE && avail > st->maxline) {
    /* the bytes stay: read(n) may take them, or the stream is dropped */
    lua_pushnil(L);
    lua_pushliteral(L, "line too long");
    lua_pushstring(L, uv_err_name(UV_EMSGSIZE));
    return 3;
  }
  lua_pushlstring(L, p, n);
  consume(st, n);
  return 1;
}

static int push_read(lua_State *L, void *ud) {
  return push_answer(L, (lw_stream *)ud);
}

static void stop_reading(lw_stream *st) {
  if (st->reading) uv_read_stop(&st->u.s);
  st->reading = 0;
}

static void answer_reader(lw_stream *st) {
  lw_async *op = st->rop;
  if (op == NULL || !can_answer(st)) return;
  st->rop = NULL;
  lw_async_complete(op, push_read, st);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  lw_stream *st = (lw_stream *)h->data;
  (void)hint;
  if (st->cap - st->len < READ_CHUNK && st->off > 0) {
    memmove(st->buf, st->buf + st->off, st->len - st->off);
    st->len -= st->off;
    st->off = 0;
  }
  if (st->cap - st->len < READ_CHUNK) {
    size_t ncap = st->len + READ_CHUNK;
    char *nb = (char *)realloc(st->buf, ncap);
    if (nb == NULL) { /* libuv answers UV_ENOBUFS */
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    st->buf = nb;
    st->cap = ncap;
  }
  *buf = uv_buf_init(st->buf + st->len, (unsigned)(st->cap - st->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  lw_stream *st = (lw_stream *)s->data;
  (void)buf;
  drop_stale(st);
  if (nread > 0) {
    st->len += (size_t)nread;
  } else if (nread == UV_EOF) {
    st->eof = 1;
  } else if (nread < 0) {
    st->rerr = (int)nread;
  }
  answer_reader(st);
  if (st->eof || st->rerr || (st->rop == NULL && st->len - st->off >= READ_CHUNK))
    stop_reading(st);
  else if (st->rop == NULL)
    uv_unref(&st->u.h); /* reading on for nobody must not keep the loop */
}

/* ------------------------------------------------------------------ */
/* the Lua side                                                        */

/* the open stream of self.  Raises. */
static lw_stream *check_stream(lua_State *L) {
  lw_stream_box *b = (lw_stream_box *)lw_io_checkself(L, STREAM_MT, "stream");
  if (b->st == NULL) luaL_error(L, "attempt to use a closed stream");
  return b->st;
}

/* suspend the running task on *slot of st */
static int wait_on(lua_State *L, lw_stream *st, lw_async *op, lw_async **slot) {
  *slot = op;
  lw_async_oncancel(op, on_cancel, st);
  return lw_async_yield(L, op);
}

static int do_read(lua_State *L, int mode, size_t want) {
  lw_stream *st = check_stream(L);
  lw_async *op;
  int e;
  /* a reader of this very task is not waiting: its yield failed (5.1,
     pcall), and the begin below lets it go (on_cancel_read) */
  if (st->rop != NULL && st->rco != L) return lw_io_fail(L, UV_EBUSY);
  st->rmode = mode;
  st->rwant = want;
  if (can_answer(st)) return push_answer(L, st);
  op = lw_async_begin(L); /* raises before anything started */
  drop_stale(st);
  uv_ref(&st->u.h);
  if (!st->reading) {
    if ((e = uv_read_start(&st->u.s, on_alloc, on_read)) != 0) {
      lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
      return lw_async_yield(L, op);
    }
    st->reading = 1;
  }
  st->rco = L;
  st->rop = op;
  lw_async_oncancel(op, on_cancel_read, st);
  return lw_async_yield(L, op);
}

static int s_read(lua_State *L) {
  lua_Number n;
  if (lua_isnoneornil(L, 2)) return do_read(L, R_SOME, 0);
  if (lua_type(L, 2) != LUA_TNUMBER) lw_io_argerror(L, 2, "number expected");
  n = lua_tonumber(L, 2);
  if (!(n >= 0) || n > 1e15) lw_io_argerror(L, 2, "count out of range");
  if (n == 0) {
    check_stream(L);
    lua_pushliteral(L, "");
    return 1;
  }
  return do_read(L, R_N, (size_t)n);
}

static int s_readline(lua_State *L) { return do_read(L, R_LINE, 0); }

/* linelimit([n]): readline's limit before this call; n (>= 1) the new
   one.  Raises an argument error. */
static int s_linelimit(lua_State *L) {
  lw_stream *st = check_stream(L);
  lua_Number n;
  lua_pushinteger(L, (lua_Integer)st->maxline);
  if (lua_isnoneornil(L, 2)) return 1;
  if (lua_type(L, 2) != LUA_TNUMBER) lw_io_argerror(L, 2, "number expected");
  n = lua_tonumber(L, 2);
  if (!(n >= 1) || n > 1e15) lw_io_argerror(L, 2, "limit out of range");
  st->maxline = (size_t)n;
  return 1;
}
static int s_readall(lua_State *L) { return do_read(L, R_ALL, 0); }

typedef struct wreq {
  uv_write_t req;
  char data[1];
} wreq;

static void on_write(uv_write_t *req, int status) {
  lw_stream *st = (lw_stream *)req->handle->data;
  lw_async *op = st->wop;
  free(req);
  if (status < 0 && st->werr == 0) st->werr = status;
  if (op == NULL) return;
  if (st->werr != 0) {
    st->wop = NULL;
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)st->werr);
  } else if (st->u.s.write_queue_size <= HIGH_WATER / 2) {
    st->wop = NULL;
    lw_async_complete(op, lw_io_pushtrue, NULL);
  }
}

/* what the kernel takes of the strings at 2 .. top at once, written
   from the Lua strings themselves: a count of bytes, or a libuv error
   other than EAGAIN.  Only with nothing queued (libuv refuses then), and
   for a few pieces (the rest is queued as usual). */
#define TRY_PIECES 8
static ssize_t try_write(lua_State *L, lw_stream *st, int top) {
  uv_buf_t b[TRY_PIECES];
  size_t len;
  const char *p;
  ssize_t n;
  int i;
  if (st->u.s.write_queue_size > 0 || top - 1 > TRY_PIECES) return 0;
  for (i = 2; i <= top; i++) {
    p = lua_tolstring(L, i, &len);
    b[i - 2] = uv_buf_init((char *)p, (unsigned)len);
  }
  n = uv_try_write(&st->u.s, b, (unsigned)(top - 1));
  return n == UV_EAGAIN ? 0 : n;
}

/* write(...): strings or numbers, sent in order; true, or nil, msg, code.
   What the kernel takes at once is written from the strings themselves;
   only what it leaves is copied, into a request of the write queue */
static int s_write(lua_State *L) {
  lw_stream *st = check_stream(L);
  int i, top = lua_gettop(L), e;
  size_t total = 0, len, at = 0, skip;
  ssize_t done;
  const char *p;
  wreq *w;
  uv_buf_t b;
  for (i = 2; i <= top; i++) {
    lw_io_checkstring(L, i, &len);
    total += len;
  }
  if (st->werr) return lw_io_fail(L, st->werr);
  if (st->wop != NULL) return lw_io_fail(L, UV_EBUSY);
  if (total == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if ((done = try_write(L, st, top)) < 0) {
    st->werr = (int)done;
    return lw_io_fail(L, st->werr);
  }
  if ((size_t)done == total) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if ((w = (wreq *)malloc(sizeof *w + (total - (size_t)done))) == NULL)
    return lw_io_fail(L, UV_ENOMEM);
  skip = (size_t)done;
  for (i = 2; i <= top; i++) {
    p = lua_tolstring(L, i, &len);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    memcpy(w->data + at, p + skip, len - skip);
    at += len - skip;
    skip = 0;
  }
  total = at;
  b = uv_buf_init(w->data, (unsigned)total);
  if ((e = uv_write(&w->req, &st->u.s, &b, 1, on_write)) != 0) {
    free(w);
    return lw_io_fail(L, e);
  }
  if (st->u.s.write_queue_size > HIGH_WATER)
    return wait_on(L, st, lw_async_begin(L), &st->wop);
  lua_pushboolean(L, 1);
  return 1;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  lw_stream *st = (lw_stream *)req->handle->data;
  lw_async *op = st->sop;
  st->sop = NULL;
  if (st->finishing) lw_stream_close(st);
  if (op == NULL) return;
  if (status < 0) lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)status);
  else lw_async_complete(op, lw_io_pushtrue, NULL);
}

/* Raises no Lua error. */
void lw_stream_finish(lw_stream *st) {
  if (st->closing) return;
  if (st->box != NULL) st->box->st = NULL;
  st->box = NULL;
  /* a close now would drop what the kernel did not take yet */
  if (st->u.s.write_queue_size > 0 && st->sop == NULL && st->werr == 0 &&
      uv_shutdown(&st->sreq, &st->u.s, on_shutdown) == 0) {
    st->finishing = 1;
    return;
  }
  lw_stream_close(st);
}

/* shutdown(): the queued data goes out, then the end of the stream */
static int s_shutdown(lua_State *L) {
  lw_stream *st = check_stream(L);
  lw_async *op;
  int e;
  if (st->sop != NULL) return lw_io_fail(L, UV_EBUSY);
  op = lw_async_begin(L);
  if ((e = uv_shutdown(&st->sreq, &st->u.s, on_shutdown)) != 0) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
    return lw_async_yield(L, op);
  }
  return wait_on(L, st, op, &st->sop);
}

/* close() -> true; again: nothing happens (as every handle's close) */
static int s_close(lua_State *L) {
  lw_stream_box *b = (lw_stream_box *)lw_io_checkself(L, STREAM_MT, "stream");
  if (b->st != NULL) lw_stream_close(b->st);
  lua_pushboolean(L, 1);
  return 1;
}

/* for line in s:lines() do: readline as the iterator, s as its state */
static int s_lines(lua_State *L) {
  check_stream(L);
  luaL_getmetatable(L, STREAM_MT);
  lua_getfield(L, -1, "__index");
  lua_getfield(L, -1, "readline");
  lua_pushvalue(L, 1);
  return 2;
}

static int s_gc(lua_State *L) {
  lw_stream_box *b = (lw_stream_box *)lua_touserdata(L, 1);
  if (b != NULL && b->st != NULL) lw_stream_close(b->st);
  return 0;
}

static int s_tostring(lua_State *L) {
  lw_stream_box *b = (lw_stream_box *)lua_touserdata(L, 1);
  if (b->st == NULL) lua_pushliteral(L, "stream (closed)");
  else lua_pushfstring(L, "stream (%p)", (void *)b->st);
  return 1;
}

static const struct { const char *name; lua_CFunction f; } async_methods[] = {
  {"read", s_read}, {"readline", s_readline}, {"readall", s_readall},
  {"write", s_write}, {"shutdown", s_shutdown}, {NULL, NULL}
};

/* May raise a Lua memory error. */
void lw_stream_push(lua_State *L, lw_stream *st) {
  lw_stream_box *b = (lw_stream_box *)lua_newuserdata(L, sizeof *b);
  int i;
  b->st = NULL;
  if (luaL_newmetatable(L, STREAM_MT)) {
    lua_createtable(L, 0, 8);
    for (i = 0; async_methods[i].name != NULL; i++) {
      lw_async_wrap(L, async_methods[i].f);
      lua_setfield(L, -2, async_methods[i].name);
    }
    lua_pushcfunction(L, s_close);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, s_lines);
    lua_setfield(L, -2, "lines");
    lua_pushcfunction(L, s_linelimit);
    lua_setfield(L, -2, "linelimit");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, s_gc);
    lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
    lua_pushcfunction(L, s_gc);
    lua_setfield(L, -2, "__close");
#endif
    lua_pushcfunction(L, s_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  b->st = st;
  st->box = b;
}
