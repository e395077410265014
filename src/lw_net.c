/*
** lw_net.c — luaweave.net: TCP connect and listen, name resolution (UDP
** sockets: lw_udp.c).
**
** connect resolves (numeric addresses skip getaddrinfo) and connects
** with one async operation in two stages; a cancel uv_cancels the
** lookup or closes the socket.  listen binds at once and hands every
** connection to handler(stream), a new task; the server keeps the loop
** running through an acceptor task that waits (an async operation) for
** the server to close: so lw.run and the CLI serve until server:close(),
** and a cancel of that task, or lua_close, closes the server.
*/
#include "lw_io.h"
#include "lw_sched.h"
#include "lw_compat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#define SERVER_MT "luaweave.server"
#define ACCEPTOR_KEY "luaweave.net.acceptor"
#define OWNER_KEY "luaweave.net.owner"

/* ------------------------------------------------------------------ */
/* connect                                                             */

typedef struct conn {
  uv_getaddrinfo_t gai;
  uv_connect_t creq;
  lw_async *op;
  uv_loop_t *loop;
  lw_stream *st;   /* while connecting */
  int resolving, cancelled, attached, unix_;
} conn;

static void conn_finish(conn *c, int err) {
  if (c->st != NULL && !c->attached) lw_stream_close(c->st);
  lw_async_complete(c->op, lw_io_pushfail, (void *)(intptr_t)err);
  free(c);
}

static void conn_cancel(void *ud) {
  conn *c = (conn *)ud;
  c->cancelled = 1;
  if (c->resolving) uv_cancel((uv_req_t *)&c->gai);
  else if (c->st != NULL) lw_stream_close(c->st); /* on_connect: ECANCELED */
}

static int push_conn(lua_State *L, void *ud) {
  conn *c = (conn *)ud;
  lw_stream_push(L, c->st);
  c->attached = 1;
  return 1;
}

static void on_connect(uv_connect_t *req, int status) {
  conn *c = (conn *)req->data;
  if (status < 0 || c->cancelled) {
    conn_finish(c, status < 0 ? status : UV_ECANCELED);
    return;
  }
  if (!c->unix_) uv_tcp_nodelay(&c->st->u.tcp, 1);
  lw_async_complete(c->op, push_conn, c);
  if (!c->attached) lw_stream_close(c->st); /* discarded, or no memory */
  free(c);
}

static void start_connect(conn *c, const struct sockaddr *addr) {
  int e;
  c->resolving = 0;
  if ((c->st = lw_stream_tcp(c->loop, &e)) == NULL) {
    conn_finish(c, e);
    return;
  }
  c->creq.data = c;
  if ((e = uv_tcp_connect(&c->creq, &c->st->u.tcp, addr, on_connect)) != 0)
    conn_finish(c, e);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  conn *c = (conn *)req->data;
  if (status < 0 || c->cancelled || res == NULL)
    conn_finish(c, status < 0 ? status : UV_ECANCELED);
  else
    start_connect(c, res->ai_addr);
  uv_freeaddrinfo(res);
}

/* connect(host, port) -> stream | nil, msg, code */
static int net_connect(lua_State *L) {
  const char *host = lw_io_checkstring(L, 1, NULL);
  int port = lw_io_checkport(L, 2), e;
  uv_loop_t *loop = lw_io_loop(L);
  struct sockaddr_storage ss;
  struct addrinfo hints;
  char service[8];
  lw_async *op = lw_async_begin(L);
  conn *c = (conn *)calloc(1, sizeof *c);
  if (c == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
    return lw_async_yield(L, op);
  }
  c->op = op;
  c->loop = loop;
  lw_async_oncancel(op, conn_cancel, c);
  if (lw_io_numeric(host, port, &ss)) {
    start_connect(c, (const struct sockaddr *)&ss);
    return lw_async_yield(L, op);
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(service, sizeof service, "%d", port);
  c->gai.data = c;
  c->resolving = 1;
  if ((e = uv_getaddrinfo(loop, &c->gai, on_resolved, host, service, &hints)) != 0)
    conn_finish(c, e);
  return lw_async_yield(L, op);
}

/* a Unix socket's path that fits sun_path (with its NUL): 0, else a
   libuv error.  libuv would cut a longer one short and bind or connect
   to another path.  Raises no Lua error. */
static int unix_path_error(const char *path, size_t len) {
  if (len >= sizeof ((struct sockaddr_un *)0)->sun_path) return UV_ENAMETOOLONG;
  return strlen(path) != len ? UV_EINVAL : 0; /* a NUL inside */
}

/* unix_connect(path) -> stream | nil, msg, code */
static int net_unix_connect(lua_State *L) {
  size_t len;
  const char *path = lw_io_checkstring(L, 1, &len);
  uv_loop_t *loop = lw_io_loop(L);
  lw_async *op = lw_async_begin(L);
  conn *c = NULL;
  int e = unix_path_error(path, len);
  if (e == 0 && (c = (conn *)calloc(1, sizeof *c)) == NULL) e = UV_ENOMEM;
  if (c != NULL && (c->st = lw_stream_pipe(loop, &e)) == NULL) {
    free(c);
    c = NULL;
  }
  if (c == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
    return lw_async_yield(L, op);
  }
  c->op = op;
  c->loop = loop;
  c->unix_ = 1;
  c->creq.data = c;
  lw_async_oncancel(op, conn_cancel, c);
  uv_pipe_connect(&c->creq, &c->st->u.pipe, path, on_connect);
  return lw_async_yield(L, op);
}

/* ------------------------------------------------------------------ */
/* resolve                                                             */

typedef struct lookup {
  uv_getaddrinfo_t gai;
  lw_async *op;
  struct addrinfo *res;
} lookup;

static void lookup_cancel(void *ud) { uv_cancel((uv_req_t *)&((lookup *)ud)->gai); }

static int push_addrs(lua_State *L, void *ud) {
  struct addrinfo *a;
  char name[64];
  int n = 0;
  lua_newtable(L);
  for (a = ((lookup *)ud)->res; a != NULL; a = a->ai_next) {
    if (a->ai_family == AF_INET)
      uv_ip4_name((const struct sockaddr_in *)a->ai_addr, name, sizeof name);
    else if (a->ai_family == AF_INET6)
      uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, name, sizeof name);
    else
      continue;
    lua_pushstring(L, name);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static void on_lookup(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  lookup *k = (lookup *)req->data;
  k->res = res;
  if (status < 0) lw_async_complete(k->op, lw_io_pushfail, (void *)(intptr_t)status);
  else lw_async_complete(k->op, push_addrs, k);
  uv_freeaddrinfo(res);
  free(k);
}

/* resolve(host) -> { address, ... } | nil, msg, code */
static int net_resolve(lua_State *L) {
  const char *host = lw_io_checkstring(L, 1, NULL);
  uv_loop_t *loop = lw_io_loop(L);
  struct addrinfo hints;
  lw_async *op = lw_async_begin(L);
  lookup *k = (lookup *)calloc(1, sizeof *k);
  int e;
  if (k == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
    return lw_async_yield(L, op);
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  k->op = op;
  k->gai.data = k;
  if ((e = uv_getaddrinfo(loop, &k->gai, on_lookup, host, NULL, &hints)) != 0) {
    free(k);
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
  } else {
    lw_async_oncancel(op, lookup_cancel, k);
  }
  return lw_async_yield(L, op);
}

/* ------------------------------------------------------------------ */
/* listen                                                              */

typedef struct server server;
typedef struct server_box {
  server *srv;  /* NULL once closed */
  int href;     /* the handler, in the registry */
} server_box;

struct server {
  union { uv_handle_t h; uv_stream_t s; uv_tcp_t tcp; uv_pipe_t pipe; } u;
  int unix_;         /* a Unix domain socket server */
  lw_sched *S;
  int href;
  lw_async *op;      /* the acceptor task's wait */
  server_box *box;
  int closing;
};

static void on_srv_closed(uv_handle_t *h) {
  server *srv = (server *)h->data;
  if (srv->op != NULL) lw_async_complete(srv->op, lw_io_pushtrue, NULL);
  free(srv);
}

static void srv_close(server *srv) {
  if (srv->closing) return;
  srv->closing = 1;
  if (srv->box != NULL) srv->box->srv = NULL;
  srv->box = NULL;
  uv_close(&srv->u.h, on_srv_closed);
}

static void srv_cancel(void *ud) { srv_close((server *)ud); }

typedef struct accepting {
  server *srv;
  lw_stream *st;
  int attached;
} accepting;

/* on the scheduler's thread, protected: handler(stream) as a new task */
static int spawn_handler(lua_State *T) {
  accepting *a = (accepting *)lua_touserdata(T, 1);
  lw_sched *S = a->srv->S;
  lua_rawgeti(T, LUA_REGISTRYINDEX, a->srv->href);
  lw_stream_push(T, a->st);
  a->attached = 1;
  lw_sched_defer(S, T, 1);
  return 0;
}

static void on_connection(uv_stream_t *server_stream, int status) {
  server *srv = (server *)server_stream->data;
  lua_State *T = lw_sched_state(srv->S);
  accepting a;
  int e, top;
  if (status < 0 || T == NULL || srv->closing) return;
  a.st = srv->unix_ ? lw_stream_pipe(server_stream->loop, &e)
                    : lw_stream_tcp(server_stream->loop, &e);
  if (a.st == NULL) return;
  if (uv_accept(server_stream, &a.st->u.s) != 0) {
    lw_stream_close(a.st);
    return;
  }
  if (!srv->unix_) uv_tcp_nodelay(&a.st->u.tcp, 1);
  a.srv = srv;
  a.attached = 0;
  top = lua_gettop(T);
  lw_cpcall(T, spawn_handler, &a); /* no memory: the connection is dropped */
  lua_settop(T, top);
  if (!a.attached) lw_stream_close(a.st);
}

/* the acceptor task: waits until the server closes */
static int srv_wait(lua_State *L) {
  server_box *b = (server_box *)lua_touserdata(L, 1);
  lw_async *op;
  if (b == NULL || b->srv == NULL || b->srv->op != NULL) return 0;
  op = lw_async_begin(L);
  b->srv->op = op;
  lw_async_oncancel(op, srv_cancel, b->srv);
  return lw_async_yield(L, op);
}

static server_box *check_server(lua_State *L) {
  return (server_box *)lw_io_checkself(L, SERVER_MT, "server");
}

/* server:close(): stop listening (again: nothing happens) */
static int srv_l_close(lua_State *L) {
  server_box *b = check_server(L);
  if (b->srv != NULL) srv_close(b->srv);
  if (b->href != LUA_NOREF) lw_unref(L, LUA_NOREF, b->href);
  b->href = LUA_NOREF;
  lua_pushboolean(L, 1);
  return 1;
}

static int srv_gc(lua_State *L) {
  server_box *b = (server_box *)lua_touserdata(L, 1);
  if (b->srv != NULL) srv_close(b->srv);
  if (b->href != LUA_NOREF) lw_unref(L, LUA_NOREF, b->href);
  b->href = LUA_NOREF;
  return 0;
}

/* server:port(): the port it listens on (useful after port 0) */
static int srv_l_port(lua_State *L) {
  server_box *b = check_server(L);
  struct sockaddr_storage ss;
  int len = (int)sizeof ss;
  if (b->srv == NULL) return lw_io_fail(L, UV_EBADF);
  if (b->srv->unix_) return lw_io_fail(L, UV_EINVAL);
  if (uv_tcp_getsockname(&b->srv->u.tcp, (struct sockaddr *)&ss, &len) != 0)
    return lw_io_fail(L, UV_EINVAL);
  lua_pushinteger(L, ntohs(ss.ss_family == AF_INET6
                               ? ((struct sockaddr_in6 *)&ss)->sin6_port
                               : ((struct sockaddr_in *)&ss)->sin_port));
  return 1;
}

/* the server box, bound (addr, or path for a Unix socket) and listening,
   its acceptor task deferred; the handler at hidx.  May raise (memory,
   before any handle exists). */
static int start_server(lua_State *L, uv_loop_t *loop, int hidx, int unix_,
                        const struct sockaddr *addr, const char *path) {
  server_box *b;
  server *srv;
  int e;
  b = (server_box *)lua_newuserdata(L, sizeof *b); /* first: may raise */
  b->srv = NULL;
  b->href = LUA_NOREF;
  if (luaL_newmetatable(L, SERVER_MT)) {
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, srv_l_close);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, srv_l_port);
    lua_setfield(L, -2, "port");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, srv_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  lua_getfield(L, LUA_REGISTRYINDEX, OWNER_KEY);
  lua_pushvalue(L, hidx);
  lua_call(L, 1, 1); /* the handler, closing its stream when it returns */
  b->href = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, LUA_REGISTRYINDEX, ACCEPTOR_KEY);
  lua_pushvalue(L, -2); /* the acceptor and its argument, ready to defer */
  if ((srv = (server *)calloc(1, sizeof *srv)) == NULL) return lw_io_fail(L, UV_ENOMEM);
  e = unix_ ? uv_pipe_init(loop, &srv->u.pipe, 0) : uv_tcp_init(loop, &srv->u.tcp);
  if (e != 0) {
    free(srv);
    return lw_io_fail(L, e);
  }
  srv->u.h.data = srv;
  srv->unix_ = unix_;
  srv->S = lw_sched_get(L);
  srv->href = b->href;
  srv->box = b;
  b->srv = srv;
  e = unix_ ? uv_pipe_bind(&srv->u.pipe, path) : uv_tcp_bind(&srv->u.tcp, addr, 0);
  if (e != 0 || (e = uv_listen(&srv->u.s, 511, on_connection)) != 0) {
    srv_close(srv);
    return lw_io_fail(L, e);
  }
  if (lw_sched_defer(srv->S, L, 1) != LW_OK) {
    srv_close(srv);
    return lw_io_fail(L, UV_EINVAL);
  }
  lua_pop(L, 1); /* the acceptor's thread */
  return 1;
}

/* listen(host, port, handler) -> server | nil, msg, code */
static int net_listen(lua_State *L) {
  const char *host = lw_io_checkstring(L, 1, NULL);
  int port = lw_io_checkport(L, 2), e;
  uv_loop_t *loop;
  struct sockaddr_storage ss;
  if (lua_type(L, 3) != LUA_TFUNCTION) lw_io_argerror(L, 3, "function expected");
  loop = lw_io_loop(L);
  if (!lw_io_numeric(host, port, &ss)) {
    /* a name: looked up here, once (blocking: listen is made at start) */
    uv_getaddrinfo_t req;
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if ((e = uv_getaddrinfo(loop, &req, NULL, host, NULL, &hints)) != 0)
      return lw_io_fail(L, e);
    memcpy(&ss, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
    uv_freeaddrinfo(req.addrinfo);
    if (ss.ss_family == AF_INET6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((unsigned short)port);
    else ((struct sockaddr_in *)&ss)->sin_port = htons((unsigned short)port);
  }
  return start_server(L, loop, 3, 0, (const struct sockaddr *)&ss, NULL);
}

/* unix_listen(path, handler) -> server | nil, msg, code */
static int net_unix_listen(lua_State *L) {
  size_t len;
  const char *path = lw_io_checkstring(L, 1, &len);
  int e;
  if (lua_type(L, 2) != LUA_TFUNCTION) lw_io_argerror(L, 2, "function expected");
  if ((e = unix_path_error(path, len)) != 0) return lw_io_fail(L, e);
  return start_server(L, lw_io_loop(L), 2, 1, NULL, path);
}

/* the handler's stream, when the handler returned: closed (after what it
   wrote left), unless the script closed it.  Raises no Lua error. */
static int net_handler_done(lua_State *L) {
  lw_stream_box *b = (lw_stream_box *)lua_touserdata(L, 1);
  if (b != NULL && b->st != NULL) lw_stream_finish(b->st);
  return 0;
}

/* running() -> the running thread (no coroutine library needed) */
static int net_running(lua_State *L) {
  lua_pushthread(L);
  return 1;
}

/* owner(handler) -> the function that a connection's task runs: the
   handler, then its stream closed.  In Lua, so that the handler may
   yield on every version (a C caller could not on 5.1).  A handler that
   raises, or is cancelled, closes it too: by the task's end guard (not a
   pcall: 5.1 cannot yield across one), which finds it closed already
   after a return. */
static const char owner_chunk[] =
  "local done, guard, running = ...\n"
  "local function after(s, ...) done(s) return ... end\n"
  "return function(handler)\n"
  "  return function(s)\n"
  "    guard(running(), done, function() done(s) end)\n"
  "    return after(s, handler(s))\n"
  "  end\n"
  "end\n";

int luaopen_luaweave_net(lua_State *L) {
  lw_io_nosigpipe();
  if (luaL_loadbuffer(L, owner_chunk, sizeof owner_chunk - 1, "=luaweave.net") != 0)
    lua_error(L);
  lua_pushcfunction(L, net_handler_done);
  lw_sched_check(L);
  lw_sched_pushbox(L);
  lws_pushguard(L);
  lua_pushcfunction(L, net_running);
  lua_call(L, 3, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, OWNER_KEY);
  lw_async_wrap(L, srv_wait);
  lua_setfield(L, LUA_REGISTRYINDEX, ACCEPTOR_KEY);
  lua_createtable(L, 0, 3);
  lw_async_wrap(L, net_connect);
  lua_setfield(L, -2, "connect");
  lw_async_wrap(L, net_listen);
  lua_setfield(L, -2, "listen");
  lw_async_wrap(L, net_resolve);
  lua_setfield(L, -2, "resolve");
  lw_async_wrap(L, net_unix_connect);
  lua_setfield(L, -2, "unix_connect");
  lw_async_wrap(L, net_unix_listen);
  lua_setfield(L, -2, "unix_listen");
  lua_pushcfunction(L, lw_udp_new);
  lua_setfield(L, -2, "udp");
  return 1;
}
