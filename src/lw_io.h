/*
** lw_io.h — what the I/O modules (lw_stream.c, lw_net.c) share: the
** error triple, argument errors, the loop, and the
** stream object.  They are written on the public async C API only
** (luaweave.h), like lw_fs.c.
**
** Lifetimes.  A libuv handle lives in malloc'ed memory, never in a Lua
** userdata: its close callback runs after the userdata may be gone
** (collected, or lua_close).  The userdata (a box) points at it; closing
** detaches the two, so that either side can go first.  A handle keeps
** the loop alive (is active and ref'd) only while an async operation of
** a task waits on it (a stream may read on unref'd: lw_stream.c), and
** every such operation registers a cancel hook (lw_async_oncancel) that
** closes the handle: so at lua_close every such handle is closed before
** the driver finishes its loop, the others by their box's __gc, and a
** cancelled task leaks nothing.
**
** Every such handle is the first member of its struct, and its data
** points at that struct (so at the handle itself): lw_luv.c tells
** luaweave's I/O on its own loop from a host's handles by that.
*/
#ifndef LW_IO_H
#define LW_IO_H

#include "luaweave.h"
#include <lauxlib.h>
#include <uv.h>

/* push nil, message, code (libuv's error name): 3.  May raise a Lua
   memory error. */
int lw_io_fail(lua_State *L, int uverr);
/* lw_push_fn for lw_async_complete: ud is (intptr_t) a libuv error */
int lw_io_pushfail(lua_State *L, void *ud);
/* lw_push_fn: one true */
int lw_io_pushtrue(lua_State *L, void *ud);
/* raise "bad argument #arg to 'f' (msg)": arg is the stack index (a
   method's self is 1); lw_async_wrap names the user's call and line as
   Lua does for its own functions.  Raises always. */
int lw_io_argerror(lua_State *L, int arg, const char *msg);
/* the string (or number) at stack index arg, or an argument error */
const char *lw_io_checkstring(lua_State *L, int arg, size_t *len);
/* the userdata self (argument 1) of metatable tname, or an argument
   error (what: the type expected).  Raises. */
void *lw_io_checkself(lua_State *L, const char *tname, const char *what);
/* the port (0 .. 65535) at stack index idx, or an argument error */
int lw_io_checkport(lua_State *L, int idx);
/* a numeric IPv4 or IPv6 address: 1 and *ss filled; else 0.  Raises no
   Lua error. */
int lw_io_numeric(const char *host, int port, struct sockaddr_storage *ss);
/* a numeric address at idx and its port at idx + 1, in *ss, or an
   argument error */
void lw_io_checkaddr(lua_State *L, int idx, struct sockaddr_storage *ss);
/* the scheduler's loop; raises when there is none (no memory, closing) */
uv_loop_t *lw_io_loop(lua_State *L);
/* ignore SIGPIPE unless the host set its own disposition (lw_io.c).
   Raises no Lua error. */
void lw_io_nosigpipe(void);

/* ------------------------------------------------------------------ */
/* streams (lw_stream.c)                                               */

typedef struct lw_stream lw_stream;
typedef struct lw_stream_box { lw_stream *st; } lw_stream_box;

struct lw_stream {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_tty_t tty;
  } u;
  lw_stream_box *box;  /* the Lua side, or NULL */
  int closing;         /* uv_close was called */
  int reading;         /* uv_read_start is on */
  int eof;             /* the peer finished sending */
  int rerr, werr;      /* sticky libuv errors of reads and writes */
  char *buf;           /* read buffer: unread bytes are buf[off .. len) */
  size_t off, len, cap;
  lw_async *rop;       /* the waiting reader, or NULL */
  lua_State *rco;      /* its task (anchored by the token while live) */
  lw_async *rstale;    /* a reader let go while its task ran: to complete */
  int rmode;           /* what it waits for (lw_stream.c) */
  size_t rwant;
  size_t maxline;      /* readline's limit (bytes before the newline) */
  lw_async *wop;       /* the writer waiting for the queue to drain */
  lw_async *sop;       /* a shutdown under way */
  int finishing;       /* lw_stream_finish: closes when sreq is done */
  uv_shutdown_t sreq;
};

/* a stream on a new TCP handle of loop, or NULL with *err set (a
   libuv error).  Raises no Lua error. */
lw_stream *lw_stream_tcp(uv_loop_t *loop, int *err);
/* the same on a new pipe handle (Unix domain sockets) */
lw_stream *lw_stream_pipe(uv_loop_t *loop, int *err);
/* the same on a duplicate of fd (a tty or a pipe/socket: stdio), or NULL
   with *err set (UV_EINVAL for a file, which libuv cannot poll).  Raises
   no Lua error. */
lw_stream *lw_stream_fd(uv_loop_t *loop, int fd, int *err);
/* wrap st in a new userdata on L's top (the metatable made on first
   use).  On a raise st is left alone (the caller still owns it); on
   return the userdata owns it. May raise a Lua memory error. */
void lw_stream_push(lua_State *L, lw_stream *st);
/* close st (once): its waiting operations end with ECANCELED, its
   memory goes in the close callback.  Calls no Lua. */
void lw_stream_close(lw_stream *st);

/* the end of st's use from Lua (a listen handler returned): detached
   from its box at once, closed once the queued writes left (a shutdown),
   or at once when none wait or a shutdown cannot start.  Calls no Lua. */
void lw_stream_finish(lw_stream *st);

/* net.udp() (lw_udp.c): a new UDP socket, or nil, msg, code.  May raise
   a memory error. */
int lw_udp_new(lua_State *L);

/* ------------------------------------------------------------------ */
/* signals (lw_io.c): luaweave.process, luaweave.signal               */

/* a signal by name ("INT", "SIGINT") or number at idx, or -1; dflt when
   none is given */
int lw_io_signum(lua_State *L, int idx, int dflt);
/* push the name of sig ("TERM"), or its number when it has none here.
   May raise a memory error. */
void lw_io_pushsig(lua_State *L, int sig);

#endif
