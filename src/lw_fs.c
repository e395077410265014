/*
** lw_fs.c — luaweave.fs: asynchronous file I/O on libuv, written only on
** the public async API of luaweave.h (it is the proof that the API is
** enough).  readfile/writefile suspend the calling task alone; other
** tasks run meanwhile.  Failures return nil, message, code (libuv's error
** name, as every luaweave.fs call); they never raise.
*/
#include "luaweave.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <lauxlib.h>

typedef struct fsop {
  uv_fs_t req;
  lw_async *op;
  uv_file fd;
  int writing;
  int err;              /* a libuv error code, 0 if none */
  char *buf;            /* data read, or data to write */
  size_t len, cap;
  int64_t off;
  char path[1];         /* the path, allocated with the op */
} fsop;

#define CHUNK 65536

static void on_open(uv_fs_t *req);
static void on_read(uv_fs_t *req);
static void on_write(uv_fs_t *req);
static void on_close(uv_fs_t *req);

/* values for the task: the data (or true) / nil, "path: message", code */
static int push_outcome(lua_State *L, void *ud) {
  fsop *f = (fsop *)ud;
  if (f->err != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", f->path, uv_strerror(f->err));
    lua_pushstring(L, uv_err_name(f->err));
    return 3;
  }
  if (f->writing) lua_pushboolean(L, 1);
  else lua_pushlstring(L, f->buf ? f->buf : "", f->len);
  return 1;
}

static void finish(fsop *f) {
  lw_async_complete(f->op, push_outcome, f);
  free(f->buf);
  free(f);
}

static void fail(fsop *f, int err) {
  f->err = err;
  if (f->fd >= 0) { /* close, then report the first error */
    uv_loop_t *loop = f->req.loop;
    uv_fs_req_cleanup(&f->req);
    if (uv_fs_close(loop, &f->req, f->fd, on_close) == 0) return;
  } else {
    uv_fs_req_cleanup(&f->req);
  }
  finish(f);
}

static void on_close(uv_fs_t *req) {
  fsop *f = (fsop *)req->data;
  if (req->result < 0 && f->err == 0) f->err = (int)req->result;
  uv_fs_req_cleanup(req);
  finish(f);
}

static void close_done(fsop *f) {
  uv_loop_t *loop = f->req.loop;
  uv_file fd = f->fd;
  uv_fs_req_cleanup(&f->req);
  f->fd = -1;
  if (uv_fs_close(loop, &f->req, fd, on_close) != 0) finish(f);
}

static void read_next(fsop *f) {
  uv_buf_t b;
  uv_loop_t *loop = f->req.loop;
  int e;
  if (f->cap - f->len < CHUNK) {
    size_t ncap = f->cap ? f->cap * 2 : CHUNK;
    char *nb = (char *)realloc(f->buf, ncap);
    if (nb == NULL) {
      fail(f, UV_ENOMEM);
      return;
    }
    f->buf = nb;
    f->cap = ncap;
  }
  b = uv_buf_init(f->buf + f->len, (unsigned)(f->cap - f->len));
  uv_fs_req_cleanup(&f->req);
  e = uv_fs_read(loop, &f->req, f->fd, &b, 1, f->off, on_read);
  if (e != 0) fail(f, e);
}

static void write_next(fsop *f) {
  uv_buf_t b;
  uv_loop_t *loop = f->req.loop;
  int e;
  if ((size_t)f->off >= f->len) {
    close_done(f);
    return;
  }
  b = uv_buf_init(f->buf + f->off, (unsigned)(f->len - (size_t)f->off));
  uv_fs_req_cleanup(&f->req);
  e = uv_fs_write(loop, &f->req, f->fd, &b, 1, f->off, on_write);
  if (e != 0) fail(f, e);
}

static void on_open(uv_fs_t *req) {
  fsop *f = (fsop *)req->data;
  if (req->result < 0) {
    fail(f, (int)req->result);
    return;
  }
  f->fd = (uv_file)req->result;
  if (f->writing) write_next(f);
  else read_next(f);
}

static void on_read(uv_fs_t *req) {
  fsop *f = (fsop *)req->data;
  if (req->result < 0) {
    fail(f, (int)req->result);
  } else if (req->result == 0) {
    close_done(f);
  } else {
    f->len += (size_t)req->result;
    f->off += req->result;
    read_next(f);
  }
}

static void on_write(uv_fs_t *req) {
  fsop *f = (fsop *)req->data;
  if (req->result < 0) {
    fail(f, (int)req->result);
  } else {
    f->off += req->result;
    write_next(f);
  }
}

static int push_nomem(lua_State *L, void *ud) {
  (void)ud;
  lua_pushnil(L);
  lua_pushliteral(L, "not enough memory");
  lua_pushstring(L, uv_err_name(UV_ENOMEM));
  return 3;
}

/* start an operation; returns what the Lua function returns */
static int start(lua_State *L, int writing) {
  size_t plen, dlen = 0;
  const char *path = luaL_checklstring(L, 1, &plen);
  const char *data = writing ? luaL_checklstring(L, 2, &dlen) : NULL;
  lw_sched *S = lw_sched_open(L);
  uv_loop_t *loop = S ? lw_sched_loop(S) : NULL;
  lw_async *op;
  fsop *f;
  int e;
  if (loop == NULL) return luaL_error(L, "not enough memory");
  op = lw_async_begin(L); /* raises (before anything starts) if L cannot yield */
  f = (fsop *)calloc(1, sizeof *f + plen);
  if (f != NULL && writing && dlen > 0) {
    if ((f->buf = (char *)malloc(dlen)) == NULL) {
      free(f);
      f = NULL;
    }
  }
  if (f == NULL) {
    lw_async_complete(op, push_nomem, NULL);
    return lw_async_yield(L, op);
  }
  memcpy(f->path, path, plen + 1);
  if (writing && dlen > 0) memcpy(f->buf, data, dlen);
  f->len = dlen;
  f->fd = -1;
  f->writing = writing;
  f->op = op;
  f->req.data = f;
  e = uv_fs_open(loop, &f->req, f->path,
                 writing ? (O_WRONLY | O_CREAT | O_TRUNC) : O_RDONLY, 0644,
                 on_open);
  if (e != 0) { /* never started: the task resumes with the error */
    uv_fs_req_cleanup(&f->req);
    f->err = e;
    finish(f);
  }
  return lw_async_yield(L, op);
}

static int fs_readfile(lua_State *L) { return start(L, 0); }
static int fs_writefile(lua_State *L) { return start(L, 1); }

int lw_fs_open(lua_State *L) {
  lua_createtable(L, 0, 2);
  lw_async_wrap(L, fs_readfile);
  lua_setfield(L, -2, "readfile");
  lw_async_wrap(L, fs_writefile);
  lua_setfield(L, -2, "writefile");
  return 1;
}
