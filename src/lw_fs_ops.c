/*
** lw_fs_ops.c — require "luaweave.fs": readfile/writefile (lw_fs.c) and
** open/read/write/close, stat, readdir, mkdir, remove, rename, mkdtemp,
** each one libuv fs request on the thread pool, suspending only its task.
**
** A cancel uv_cancels the request; one already running finishes, and its
** outcome is discarded.  A file's state (descriptor, offset) lives in
** malloc'ed memory: a request in flight may outlive the file object
** (collected after its task was cancelled), and then closes the
** descriptor itself when it ends.
*/
#include "lw_io.h"
#include "lw_compat.h"
#include "lw_sched.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MT "luaweave.fs.file"
#define READ_DEFAULT 65536

enum { K_OPEN, K_READ, K_WRITE, K_CLOSE, K_STAT, K_SCANDIR, K_MKDIR,
       K_REMOVE, K_RMDIR, K_RENAME, K_MKDTEMP };

typedef struct lfile {
  uv_file fd;           /* -1 once closed */
  int64_t off;          /* where the next read or write goes */
  int append;
  int busy;             /* a request is in flight */
  int gone;             /* the Lua side was collected meanwhile */
  struct lfile **box;   /* the Lua side, or NULL */
} lfile;

typedef struct fsreq {
  uv_fs_t req;
  lw_async *op;
  int kind;
  int attached;         /* K_OPEN: the file object was made */
  lfile *file;          /* K_OPEN (made ahead), K_READ, K_WRITE, K_CLOSE */
  char *buf;            /* K_READ: the data read; K_WRITE: to write */
  size_t len, done;
  char path[1];         /* for the messages */
} fsreq;

static void file_free_fd(lfile *f) {
  uv_fs_t req;
  if (f->fd >= 0) {
    uv_fs_close(NULL, &req, f->fd, NULL); /* synchronous */
    uv_fs_req_cleanup(&req);
  }
  f->fd = -1;
}

/* ------------------------------------------------------------------ */
/* completion                                                          */

static int push_fail(lua_State *L, fsreq *r, int e) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s: %s", r->path, uv_strerror(e));
  lua_pushstring(L, uv_err_name(e));
  return 3;
}

static void push_time(lua_State *L, const char *k, uv_timespec_t t) {
  lua_pushnumber(L, (lua_Number)t.tv_sec + (lua_Number)t.tv_nsec / 1e9);
  lua_setfield(L, -2, k);
}

static const char *type_name(uint64_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "link";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char";
    case S_IFBLK: return "block";
    default: return "other";
  }
}

static void push_stat(lua_State *L, const uv_stat_t *s) {
  lua_createtable(L, 0, 10);
  lua_pushstring(L, type_name(s->st_mode));
  lua_setfield(L, -2, "type");
  lua_pushinteger(L, (lua_Integer)s->st_size);
  lua_setfield(L, -2, "size");
  lua_pushinteger(L, (lua_Integer)(s->st_mode & 07777));
  lua_setfield(L, -2, "mode");
  lua_pushinteger(L, (lua_Integer)s->st_nlink);
  lua_setfield(L, -2, "nlink");
  lua_pushinteger(L, (lua_Integer)s->st_uid);
  lua_setfield(L, -2, "uid");
  lua_pushinteger(L, (lua_Integer)s->st_gid);
  lua_setfield(L, -2, "gid");
  lua_pushinteger(L, (lua_Integer)s->st_ino);
  lua_setfield(L, -2, "ino");
  push_time(L, "atime", s->st_atim);
  push_time(L, "mtime", s->st_mtim);
  push_time(L, "ctime", s->st_ctim);
}

static int file_gc(lua_State *L);
static void push_file(lua_State *L, lfile *f);

/* the values for the task; runs protected (lw_async_complete) */
static int push_result(lua_State *L, void *ud) {
  fsreq *r = (fsreq *)ud;
  uv_dirent_t ent;
  int i = 0;
  if (r->req.result < 0) return push_fail(L, r, (int)r->req.result);
  switch (r->kind) {
    case K_OPEN:
      push_file(L, r->file);
      r->attached = 1;
      return 1;
    case K_READ:
      if (r->req.result == 0) {
        lua_pushnil(L);
        return 1;
      }
      lua_pushlstring(L, r->buf, (size_t)r->req.result);
      return 1;
    case K_STAT:
      push_stat(L, &r->req.statbuf);
      return 1;
    case K_SCANDIR:
      lua_newtable(L);
      while (uv_fs_scandir_next(&r->req, &ent) != UV_EOF) {
        lua_pushstring(L, ent.name);
        lua_rawseti(L, -2, ++i);
      }
      return 1;
    case K_MKDTEMP:
      lua_pushstring(L, r->req.path);
      return 1;
    default:
      lua_pushboolean(L, 1);
      return 1;
  }
}

static void req_free(fsreq *r) {
  uv_fs_req_cleanup(&r->req);
  free(r->buf);
  free(r);
}

/* a file's request ended: the file may have been collected meanwhile */
static void file_done(lfile *f) {
  f->busy = 0;
  if (f->gone) {
    file_free_fd(f);
    free(f);
  }
}

static int write_more(fsreq *r);

static void on_fs(uv_fs_t *req) {
  fsreq *r = (fsreq *)req->data;
  lfile *f = r->file;
  if (r->kind == K_REMOVE && (req->result == UV_EISDIR || req->result == UV_EPERM)) {
    /* a directory: as os.remove, remove it too */
    uv_loop_t *loop = req->loop;
    uv_fs_req_cleanup(req);
    r->kind = K_RMDIR;
    if (uv_fs_rmdir(loop, req, r->path, on_fs) == 0) return;
    r->kind = K_REMOVE;
    req->result = UV_EISDIR;
  }
  if (r->kind == K_WRITE && req->result > 0) {
    r->done += (size_t)req->result;
    if (!f->append) f->off += req->result;
    if (r->done < r->len) { /* a short write: the rest */
      int e = write_more(r);
      if (e == 0) return;
      req->result = e;
    }
  }
  if (r->kind == K_OPEN && req->result >= 0) f->fd = (uv_file)req->result;
  if (r->kind == K_READ && req->result > 0) f->off += req->result;
  if (r->kind == K_CLOSE && f != NULL) f->fd = -1;
  if (f != NULL && r->kind != K_OPEN) file_done(f);
  lw_async_complete(r->op, push_result, r);
  if (r->kind == K_OPEN) {
    if (!r->attached) { /* discarded (cancelled), or no memory */
      file_free_fd(f);
      free(f);
    }
  }
  req_free(r);
}

/* write what is left: 0, or a libuv error (nothing started) */
static int write_more(fsreq *r) {
  uv_buf_t b = uv_buf_init(r->buf + r->done, (unsigned)(r->len - r->done));
  uv_loop_t *loop = r->req.loop;
  uv_fs_req_cleanup(&r->req);
  return uv_fs_write(loop, &r->req, r->file->fd, &b, 1,
                     r->file->append ? -1 : r->file->off, on_fs);
}

static void req_cancel(void *ud) {
  fsreq *r = (fsreq *)ud;
  uv_cancel((uv_req_t *)&r->req); /* running already: it ends as usual */
}

/* a request for path (copied for messages), or NULL with a failure
   pushed.  May raise a memory error. */
static fsreq *req_new(lua_State *L, int kind, const char *path) {
  size_t n = strlen(path);
  fsreq *r = (fsreq *)calloc(1, sizeof *r + n);
  if (r == NULL) return NULL;
  memcpy(r->path, path, n + 1);
  r->kind = kind;
  r->req.data = r;
  (void)L;
  return r;
}

/* after uv_fs_*(...) returned e: suspend, or finish at once */
static int req_go(lua_State *L, fsreq *r, lw_async *op, int e) {
  r->op = op;
  if (e != 0) {
    r->req.result = e;
    if (r->file != NULL && r->kind != K_OPEN) file_done(r->file);
    lw_async_complete(op, push_result, r);
    if (r->kind == K_OPEN) free(r->file);
    req_free(r);
  } else {
    lw_async_oncancel(op, req_cancel, r);
  }
  return lw_async_yield(L, op);
}

static int nomem(lua_State *L, lw_async *op) {
  lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
  return lw_async_yield(L, op);
}

/* ------------------------------------------------------------------ */
/* path operations                                                     */

/* stat(path), readdir(path), remove(path), mkdtemp(template):
   one path and nothing else */
static int path_op(lua_State *L, int kind) {
  const char *path = lw_io_checkstring(L, 1, NULL);
  uv_loop_t *loop = lw_io_loop(L);
  lw_async *op = lw_async_begin(L);
  fsreq *r = req_new(L, kind, path);
  int e;
  if (r == NULL) return nomem(L, op);
  switch (kind) {
    case K_STAT: e = uv_fs_stat(loop, &r->req, path, on_fs); break;
    case K_SCANDIR: e = uv_fs_scandir(loop, &r->req, path, 0, on_fs); break;
    case K_REMOVE: e = uv_fs_unlink(loop, &r->req, path, on_fs); break;
    default: e = uv_fs_mkdtemp(loop, &r->req, path, on_fs); break;
  }
  return req_go(L, r, op, e);
}

static int fs_stat(lua_State *L) { return path_op(L, K_STAT); }
static int fs_readdir(lua_State *L) { return path_op(L, K_SCANDIR); }
static int fs_remove(lua_State *L) { return path_op(L, K_REMOVE); }
static int fs_mkdtemp(lua_State *L) { return path_op(L, K_MKDTEMP); }

/* mkdir(path[, mode]) */
static int fs_mkdir(lua_State *L) {
  const char *path = lw_io_checkstring(L, 1, NULL);
  int mode = (int)luaL_optinteger(L, 2, 0777), e;
  uv_loop_t *loop = lw_io_loop(L);
  lw_async *op = lw_async_begin(L);
  fsreq *r = req_new(L, K_MKDIR, path);
  if (r == NULL) return nomem(L, op);
  e = uv_fs_mkdir(loop, &r->req, path, mode, on_fs);
  return req_go(L, r, op, e);
}

/* rename(from, to) */
static int fs_rename(lua_State *L) {
  const char *from = lw_io_checkstring(L, 1, NULL);
  const char *to = lw_io_checkstring(L, 2, NULL);
  uv_loop_t *loop = lw_io_loop(L);
  lw_async *op = lw_async_begin(L);
  fsreq *r = req_new(L, K_RENAME, from);
  int e;
  if (r == NULL) return nomem(L, op);
  e = uv_fs_rename(loop, &r->req, from, to, on_fs);
  return req_go(L, r, op, e);
}

/* ------------------------------------------------------------------ */
/* files                                                               */

/* open(path[, mode]) -> file | nil, msg, code; mode as io.open's */
static int fs_open(lua_State *L) {
  static const char *const modes[] = {"r", "w", "a", "r+", "w+", "a+", NULL};
  static const int flags[] = {
    O_RDONLY, O_WRONLY | O_CREAT | O_TRUNC, O_WRONLY | O_CREAT | O_APPEND,
    O_RDWR, O_RDWR | O_CREAT | O_TRUNC, O_RDWR | O_CREAT | O_APPEND};
  const char *path = lw_io_checkstring(L, 1, NULL);
  const char *mode = luaL_optstring(L, 2, "r");
  char m[3] = {0, 0, 0};
  size_t i, j = 0;
  uv_loop_t *loop;
  lw_async *op;
  fsreq *r;
  int k, e;
  for (i = 0; mode[i] != '\0' && j < 2; i++) /* "b" means nothing here */
    if (mode[i] != 'b') m[j++] = mode[i];
  for (k = 0; modes[k] != NULL && strcmp(modes[k], m) != 0; k++) {}
  if (modes[k] == NULL || strlen(mode) > 3) return lw_io_argerror(L, 2, "invalid mode");
  loop = lw_io_loop(L);
  op = lw_async_begin(L);
  if ((r = req_new(L, K_OPEN, path)) == NULL) return nomem(L, op);
  if ((r->file = (lfile *)calloc(1, sizeof *r->file)) == NULL) {
    free(r);
    return nomem(L, op);
  }
  r->file->fd = -1;
  r->file->append = (flags[k] & O_APPEND) != 0;
  e = uv_fs_open(loop, &r->req, path, flags[k], 0666, on_fs);
  return req_go(L, r, op, e);
}

static lfile *check_file(lua_State *L) {
  lfile **box = (lfile **)lw_io_checkself(L, FILE_MT, "file");
  if (*box == NULL || (*box)->fd < 0) luaL_error(L, "attempt to use a closed file");
  return *box;
}

/* f:read([n]) -> up to n bytes (64 KiB by default), nil at the end */
static int f_read(lua_State *L) {
  lfile *f = check_file(L);
  lua_Number n = luaL_optnumber(L, 2, READ_DEFAULT);
  uv_loop_t *loop;
  lw_async *op;
  fsreq *r;
  uv_buf_t b;
  if (!(n >= 1 && n <= 1 << 30)) return lw_io_argerror(L, 2, "count out of range");
  if (f->busy) return lw_io_fail(L, UV_EBUSY);
  loop = lw_io_loop(L);
  op = lw_async_begin(L);
  if ((r = req_new(L, K_READ, "read")) == NULL) return nomem(L, op);
  if ((r->buf = (char *)malloc((size_t)n)) == NULL) {
    free(r);
    return nomem(L, op);
  }
  r->file = f;
  f->busy = 1;
  b = uv_buf_init(r->buf, (unsigned)n);
  return req_go(L, r, op, uv_fs_read(loop, &r->req, f->fd, &b, 1, f->off, on_fs));
}

/* f:write(...) -> true | nil, msg, code: strings or numbers, in order */
static int f_write(lua_State *L) {
  lfile *f = check_file(L);
  int i, top = lua_gettop(L);
  size_t total = 0, len, at = 0;
  uv_loop_t *loop;
  lw_async *op;
  fsreq *r;
  const char *p;
  for (i = 2; i <= top; i++) {
    lw_io_checkstring(L, i, &len);
    total += len;
  }
  if (f->busy) return lw_io_fail(L, UV_EBUSY);
  if (total == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  loop = lw_io_loop(L);
  op = lw_async_begin(L);
  if ((r = req_new(L, K_WRITE, "write")) == NULL) return nomem(L, op);
  if ((r->buf = (char *)malloc(total)) == NULL) {
    free(r);
    return nomem(L, op);
  }
  for (i = 2; i <= top; i++) {
    p = lua_tolstring(L, i, &len);
    memcpy(r->buf + at, p, len);
    at += len;
  }
  r->len = total;
  r->file = f;
  f->busy = 1;
  r->req.loop = loop;
  return req_go(L, r, op, write_more(r));
}

/* f:close() -> true | nil, msg, code; again: true, nothing happens (as
   every handle's close) */
static int f_close(lua_State *L) {
  lfile **box = (lfile **)lw_io_checkself(L, FILE_MT, "file");
  lfile *f = *box;
  uv_loop_t *loop;
  lw_async *op;
  fsreq *r;
  if (f == NULL || f->fd < 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (f->busy) return lw_io_fail(L, UV_EBUSY);
  loop = lw_io_loop(L);
  op = lw_async_begin(L);
  if ((r = req_new(L, K_CLOSE, "close")) == NULL) return nomem(L, op);
  r->file = f;
  f->busy = 1;
  return req_go(L, r, op, uv_fs_close(loop, &r->req, f->fd, on_fs));
}

static int file_gc(lua_State *L) {
  lfile **box = (lfile **)lua_touserdata(L, 1);
  lfile *f = *box;
  *box = NULL;
  if (f == NULL) return 0;
  f->box = NULL;
  if (f->busy) { /* its request closes and frees it */
    f->gone = 1;
    return 0;
  }
  file_free_fd(f);
  free(f);
  return 0;
}

static int file_tostring(lua_State *L) {
  lfile **box = (lfile **)lua_touserdata(L, 1);
  if (*box == NULL || (*box)->fd < 0) lua_pushliteral(L, "file (closed)");
  else lua_pushfstring(L, "file (%d)", (int)(*box)->fd);
  return 1;
}

/* make the file object for f, which it then owns.  May raise a memory
   error (then f is still the caller's). */
static void push_file(lua_State *L, lfile *f) {
  static const char chunks[] =
    "local read = ...\n"
    "return function(f, n)\n"
    "  return function()\n"
    "    local s, msg = read(f, n)\n"
    "    if s == nil and msg then error(msg, 2) end\n"
    "    return s\n"
    "  end\n"
    "end\n";
  lfile **box = (lfile **)lua_newuserdata(L, sizeof *box);
  *box = NULL;
  if (luaL_newmetatable(L, FILE_MT)) {
    lua_createtable(L, 0, 5);
    lw_async_wrap(L, f_read);
    if (luaL_loadbuffer(L, chunks, sizeof chunks - 1, "=luaweave.fs") != 0)
      lua_error(L);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 1);
    lua_setfield(L, -3, "chunks");
    lua_setfield(L, -2, "read");
    lw_async_wrap(L, f_write);
    lua_setfield(L, -2, "write");
    lw_async_wrap(L, f_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, file_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, file_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  *box = f;
  f->box = box;
}

int luaopen_luaweave_fs(lua_State *L) {
  static const struct { const char *name; lua_CFunction f; } fns[] = {
    {"open", fs_open}, {"stat", fs_stat}, {"readdir", fs_readdir},
    {"mkdir", fs_mkdir}, {"remove", fs_remove}, {"rename", fs_rename},
    {"mkdtemp", fs_mkdtemp}, {NULL, NULL}};
  int i;
  lw_fs_open(L); /* readfile, writefile */
  for (i = 0; fns[i].name != NULL; i++) {
    lw_async_wrap(L, fns[i].f);
    lua_setfield(L, -2, fns[i].name);
  }
  return 1;
}
