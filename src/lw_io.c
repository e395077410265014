/*
** lw_io.c — the helpers the I/O modules share (see lw_io.h): errors in
** the style of Lua's io library, argument errors where the script made
** them, and the loop of the running scheduler.
*/
#include "lw_io.h"
#include "lw_compat.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>

/* May raise a Lua memory error. */
int lw_io_fail(lua_State *L, int uverr) {
  lua_pushnil(L);
  lua_pushstring(L, uv_strerror(uverr));
  lua_pushstring(L, uv_err_name(uverr));
  return 3;
}

/* Runs protected (lw_async_complete). */
int lw_io_pushfail(lua_State *L, void *ud) {
  return lw_io_fail(L, (int)(intptr_t)ud);
}

/* Runs protected (lw_async_complete). */
int lw_io_pushtrue(lua_State *L, void *ud) {
  (void)ud;
  lua_pushboolean(L, 1);
  return 1;
}

/* Raises always: positioned and named by lw_async_wrap when the
   function is wrapped, by Lua itself otherwise. */
int lw_io_argerror(lua_State *L, int arg, const char *msg) {
  return luaL_argerror(L, arg, msg);
}

/* May raise (an argument error, or a memory error converting a number) */
const char *lw_io_checkstring(lua_State *L, int arg, size_t *len) {
  if (lua_type(L, arg) != LUA_TSTRING && lua_type(L, arg) != LUA_TNUMBER)
    lw_io_argerror(L, arg, "string expected");
  return lua_tolstring(L, arg, len);
}

/* May raise (no scheduler or loop: memory, or the state is closing) */
uv_loop_t *lw_io_loop(lua_State *L) {
  lw_sched *S = lw_sched_open(L);
  uv_loop_t *loop = S ? lw_sched_loop(S) : NULL;
  if (loop == NULL) luaL_error(L, "no event loop (not enough memory, or the Lua state is closing)");
  return loop;
}

/* the userdata self (argument 1) of metatable tname, or an argument
   error ("calling 'f' on bad self" when called as a method).  Raises. */
void *lw_io_checkself(lua_State *L, const char *tname, const char *what) {
  void *p = lua_touserdata(L, 1);
  int ok = 0;
  if (p != NULL && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, tname);
    ok = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  if (!ok)
    lw_io_argerror(L, 1, lua_pushfstring(L, "%s expected, got %s", what,
                                         luaL_typename(L, 1)));
  return p;
}

static const struct { const char *n; int s; } sigs[] = {
  {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
  {"TERM", SIGTERM}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE},
  {"ALRM", SIGALRM}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP},
  {"TSTP", SIGTSTP}, {"WINCH", SIGWINCH}, {"ABRT", SIGABRT}, {"SEGV", SIGSEGV},
  {NULL, 0}};

/* Raises no Lua error. */
int lw_io_signum(lua_State *L, int idx, int dflt) {
  const char *s;
  int i;
  if (lua_isnoneornil(L, idx)) return dflt;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Number n = lua_tonumber(L, idx);
    return n >= 1 && n < 65 && n == (lua_Number)(int)n ? (int)n : -1;
  }
  if (lua_type(L, idx) != LUA_TSTRING) return -1;
  s = lua_tostring(L, idx);
  if (strncmp(s, "SIG", 3) == 0) s += 3;
  for (i = 0; sigs[i].n != NULL; i++)
    if (strcmp(sigs[i].n, s) == 0) return sigs[i].s;
  return -1;
}

/* May raise a memory error. */
void lw_io_pushsig(lua_State *L, int sig) {
  int i;
  for (i = 0; sigs[i].n != NULL; i++)
    if (sigs[i].s == sig) {
      lua_pushstring(L, sigs[i].n);
      return;
    }
  lua_pushinteger(L, sig);
}

/* May raise an argument error. */
int lw_io_checkport(lua_State *L, int idx) {
  lua_Number n;
  if (lua_type(L, idx) != LUA_TNUMBER) lw_io_argerror(L, idx, "number expected");
  n = lua_tonumber(L, idx);
  if (!(n >= 0 && n <= 65535) || n != (lua_Number)(int)n)
    lw_io_argerror(L, idx, "port out of range");
  return (int)n;
}

/* Raises no Lua error. */
int lw_io_numeric(const char *host, int port, struct sockaddr_storage *ss) {
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 1;
  return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0;
}

/* May raise an argument error. */
void lw_io_checkaddr(lua_State *L, int idx, struct sockaddr_storage *ss) {
  const char *host = lw_io_checkstring(L, idx, NULL);
  int port = lw_io_checkport(L, idx + 1);
  if (!lw_io_numeric(host, port, ss)) lw_io_argerror(L, idx, "numeric address expected");
}

/* A write to a peer that has gone raises SIGPIPE, whose default action
   ends the process without a word; a server must get EPIPE instead.
   libuv writes with write(2), not send(MSG_NOSIGNAL), so the modules that
   write to sockets and pipes ignore SIGPIPE when they load, unless the
   host gave it a disposition of its own (which stays). */
void lw_io_nosigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0) return;
  if ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL) return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  (void)sigaction(SIGPIPE, &sa, NULL);
}
