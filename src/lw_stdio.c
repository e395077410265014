/*
** lw_stdio.c — luaweave.stdio: stdin, stdout and stderr as streams
** (lw_stream.c), made on first use, so that a script that never touches
** them leaves the descriptors as Lua's io library has them.
**
** A tty or a pipe (or socket) becomes a stream; a regular file or a
** device libuv cannot poll gives nil (luaweave.fs or io reads those).
*/
#include "lw_io.h"
#include "lw_compat.h"

#include <string.h>

/* lw_stream_push, protected: a memory error must not lose the stream */
static int push_stream(lua_State *L) {
  lw_stream_push(L, *(lw_stream **)lua_touserdata(L, 1));
  return 1;
}

/* stdio.stdin, .stdout, .stderr: made once, then kept in the module.
   May raise a memory error. */
static int stdio_index(lua_State *L) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  const char *k = lua_tostring(L, 2);
  lw_stream **slot, *st;
  uv_loop_t *loop;
  int fd, e;
  if (k == NULL) return 0;
  for (fd = 0; fd < 3 && strcmp(names[fd], k) != 0; fd++) {}
  if (fd == 3) return 0;
  loop = lw_io_loop(L);
  lua_pushcfunction(L, push_stream);
  slot = (lw_stream **)lua_newuserdata(L, sizeof *slot);
  if ((*slot = st = lw_stream_fd(loop, fd, &e)) == NULL) return 0;
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lw_stream_close(st);
    return lua_error(L);
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

int luaopen_luaweave_stdio(lua_State *L) {
  lw_io_nosigpipe();
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, stdio_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  return 1;
}
