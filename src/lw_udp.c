/*
** lw_udp.c — luaweave.net's UDP sockets: udp(), bind, send, recv.
**
** As a stream (lw_stream.c), a socket reads from the kernel only while a
** task waits in recv: datagrams that come meanwhile wait in the kernel's
** buffer.  The uv_udp_t lives in malloc'ed memory (see lw_io.h); a cancel
** of a task in recv or send closes the socket, as for streams.
*/
#include "lw_io.h"
#include "lw_compat.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UDP_MT "luaweave.udp"
#define DGRAM_MAX 65536

typedef struct lw_udp {
  uv_udp_t h;
  struct lw_udp **box;  /* the Lua side, or NULL */
  int closing;
  int reading;
  char *buf;            /* DGRAM_MAX bytes, made on the first recv */
  lw_async *rop;        /* the waiting receiver */
  ssize_t got;          /* the datagram for it: its length */
  struct sockaddr_storage from;
  unsigned sends;       /* sends in flight */
  unsigned lookups;     /* sends resolving their host: u outlives them */
  int closed;           /* the close callback ran */
} lw_udp;

typedef struct sendreq {
  uv_udp_send_t req;
  uv_getaddrinfo_t gai;
  lw_async *op;
  lw_udp *u;
  int resolving;
  size_t len;
  char data[1];
} sendreq;

static void udp_free(lw_udp *u) {
  free(u->buf);
  free(u);
}

static void udp_closed(uv_handle_t *h) {
  lw_udp *u = (lw_udp *)h->data;
  /* libuv ended the sends before (ECANCELED); a receiver has no request */
  if (u->rop) lw_async_complete(u->rop, lw_io_pushfail, (void *)(intptr_t)UV_ECANCELED);
  u->closed = 1;
  if (u->lookups == 0) udp_free(u);
}

static void udp_close(lw_udp *u) {
  if (u->closing) return;
  u->closing = 1;
  if (u->box != NULL) *u->box = NULL;
  u->box = NULL;
  uv_close((uv_handle_t *)&u->h, udp_closed);
}

static void udp_cancel(void *ud) { udp_close((lw_udp *)ud); }

/* ------------------------------------------------------------------ */
/* recv                                                                */

/* push "host", port of sa.  May raise a memory error. */
static void push_addr(lua_State *L, const struct sockaddr *sa) {
  char ip[64] = "";
  int port = 0;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
  }
  lua_pushstring(L, ip);
  lua_pushinteger(L, port);
}

static int push_dgram(lua_State *L, void *ud) {
  lw_udp *u = (lw_udp *)ud;
  if (u->got < 0) return lw_io_fail(L, (int)u->got);
  lua_pushlstring(L, u->buf, (size_t)u->got);
  push_addr(L, (const struct sockaddr *)&u->from);
  return 3;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  lw_udp *u = (lw_udp *)h->data;
  (void)hint;
  *buf = uv_buf_init(u->buf, DGRAM_MAX);
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags) {
  lw_udp *u = (lw_udp *)h->data;
  lw_async *op = u->rop;
  (void)buf;
  (void)flags;
  if (n == 0 && addr == NULL) return; /* nothing more to read now */
  if (op == NULL) return;
  u->got = n;
  if (addr != NULL) memcpy(&u->from, addr, addr->sa_family == AF_INET6 ?
                           sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
  else memset(&u->from, 0, sizeof u->from);
  u->rop = NULL;
  uv_udp_recv_stop(&u->h); /* the kernel keeps the next ones */
  u->reading = 0;
  lw_async_complete(op, push_dgram, u);
}

static lw_udp *check_udp(lua_State *L) {
  lw_udp **box = (lw_udp **)lw_io_checkself(L, UDP_MT, "udp socket");
  if (*box == NULL) luaL_error(L, "attempt to use a closed socket");
  return *box;
}

/* u:recv() -> data, host, port | nil, msg, code */
static int u_recv(lua_State *L) {
  lw_udp *u = check_udp(L);
  lw_async *op;
  int e;
  if (u->rop != NULL) return lw_io_fail(L, UV_EBUSY);
  if (u->buf == NULL && (u->buf = (char *)malloc(DGRAM_MAX)) == NULL)
    return lw_io_fail(L, UV_ENOMEM);
  op = lw_async_begin(L);
  if ((e = uv_udp_recv_start(&u->h, on_alloc, on_recv)) != 0) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
    return lw_async_yield(L, op);
  }
  u->reading = 1;
  u->rop = op;
  lw_async_oncancel(op, udp_cancel, u);
  return lw_async_yield(L, op);
}

/* ------------------------------------------------------------------ */
/* send, bind                                                          */

static void on_send(uv_udp_send_t *req, int status) {
  sendreq *s = (sendreq *)req->data;
  s->u->sends--;
  if (status < 0) lw_async_complete(s->op, lw_io_pushfail, (void *)(intptr_t)status);
  else lw_async_complete(s->op, lw_io_pushtrue, NULL);
  free(s);
}

/* hand s to libuv for addr, or complete it with the error */
static void start_send(sendreq *s, const struct sockaddr *addr) {
  uv_buf_t b = uv_buf_init(s->data, (unsigned)s->len);
  int e = s->u->closing ? UV_ECANCELED
                        : uv_udp_send(&s->req, &s->u->h, &b, 1, addr, on_send);
  if (e != 0) {
    lw_async_complete(s->op, lw_io_pushfail, (void *)(intptr_t)e);
    free(s);
    return;
  }
  s->u->sends++;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  sendreq *s = (sendreq *)req->data;
  lw_udp *u = s->u;
  s->resolving = 0;
  u->lookups--;
  if (status < 0 || res == NULL) {
    lw_async_complete(s->op, lw_io_pushfail, (void *)(intptr_t)(status < 0 ? status : UV_EAI_NONAME));
    free(s);
  } else {
    start_send(s, res->ai_addr);
  }
  uv_freeaddrinfo(res);
  if (u->closed && u->lookups == 0) udp_free(u);
}

/* a task in send was cancelled: its lookup, or the socket */
static void send_cancel(void *ud) {
  sendreq *s = (sendreq *)ud;
  if (s->resolving) uv_cancel((uv_req_t *)&s->gai);
  else udp_close(s->u);
}

/* u:send(data, host, port) -> true | nil, msg, code.  A host that is
   not a numeric address is looked up (getaddrinfo, of the socket's own
   family once it is bound), then the datagram goes to its first address */
static int u_send(lua_State *L) {
  lw_udp *u = check_udp(L);
  size_t len;
  const char *data = lw_io_checkstring(L, 2, &len);
  const char *host = lw_io_checkstring(L, 3, NULL);
  int port = lw_io_checkport(L, 4), e, n = (int)sizeof(struct sockaddr_storage);
  struct sockaddr_storage ss;
  struct addrinfo hints;
  char service[8];
  lw_async *op;
  sendreq *s;
  op = lw_async_begin(L);
  if ((s = (sendreq *)malloc(sizeof *s + len)) == NULL) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)UV_ENOMEM);
    return lw_async_yield(L, op);
  }
  memcpy(s->data, data, len);
  s->len = len;
  s->op = op;
  s->u = u;
  s->req.data = s;
  s->gai.data = s;
  s->resolving = 0;
  lw_async_oncancel(op, send_cancel, s);
  if (lw_io_numeric(host, port, &ss)) {
    start_send(s, (const struct sockaddr *)&ss);
    return lw_async_yield(L, op);
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_family = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &n) == 0
                    ? ss.ss_family : AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  snprintf(service, sizeof service, "%d", port);
  s->resolving = 1;
  if ((e = uv_getaddrinfo(u->h.loop, &s->gai, on_resolved, host, service, &hints)) != 0) {
    lw_async_complete(op, lw_io_pushfail, (void *)(intptr_t)e);
    free(s);
    return lw_async_yield(L, op);
  }
  u->lookups++;
  return lw_async_yield(L, op);
}

/* u:bind(host, port) -> true | nil, msg, code (port 0: any free port) */
static int u_bind(lua_State *L) {
  lw_udp *u = check_udp(L);
  struct sockaddr_storage ss;
  int e;
  lw_io_checkaddr(L, 2, &ss);
  if ((e = uv_udp_bind(&u->h, (const struct sockaddr *)&ss, 0)) != 0) return lw_io_fail(L, e);
  lua_pushboolean(L, 1);
  return 1;
}

/* u:port() -> the local port | nil, msg, code */
static int u_port(lua_State *L) {
  lw_udp *u = check_udp(L);
  struct sockaddr_storage ss;
  int n = (int)sizeof ss, e;
  if ((e = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &n)) != 0) return lw_io_fail(L, e);
  push_addr(L, (const struct sockaddr *)&ss);
  lua_remove(L, -2);
  return 1;
}

/* u:close() -> true; again: nothing happens (as every handle's close) */
static int u_close(lua_State *L) {
  lw_udp **box = (lw_udp **)lw_io_checkself(L, UDP_MT, "udp socket");
  if (*box != NULL) udp_close(*box);
  lua_pushboolean(L, 1);
  return 1;
}

static int u_gc(lua_State *L) {
  lw_udp **box = (lw_udp **)lua_touserdata(L, 1);
  if (*box != NULL) udp_close(*box);
  return 0;
}

static int u_tostring(lua_State *L) {
  lw_udp **box = (lw_udp **)lua_touserdata(L, 1);
  if (*box == NULL) lua_pushliteral(L, "udp socket (closed)");
  else lua_pushfstring(L, "udp socket (%p)", (void *)*box);
  return 1;
}

/* udp() -> a socket, unbound (send binds it to any port) */
int lw_udp_new(lua_State *L) {
  uv_loop_t *loop = lw_io_loop(L);
  lw_udp **box = (lw_udp **)lua_newuserdata(L, sizeof *box);
  lw_udp *u;
  int e;
  *box = NULL;
  if (luaL_newmetatable(L, UDP_MT)) {
    lua_createtable(L, 0, 5);
    lw_async_wrap(L, u_recv);
    lua_setfield(L, -2, "recv");
    lw_async_wrap(L, u_send);
    lua_setfield(L, -2, "send");
    lua_pushcfunction(L, u_bind);
    lua_setfield(L, -2, "bind");
    lua_pushcfunction(L, u_port);
    lua_setfield(L, -2, "port");
    lua_pushcfunction(L, u_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, u_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, u_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_setmetatable(L, -2);
  if ((u = (lw_udp *)calloc(1, sizeof *u)) == NULL) return lw_io_fail(L, UV_ENOMEM);
  if ((e = uv_udp_init(loop, &u->h)) != 0) {
    free(u);
    return lw_io_fail(L, e);
  }
  u->h.data = u;
  *box = u;
  u->box = box;
  return 1;
}
