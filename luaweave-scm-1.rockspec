-- luarocks make: builds the luaweave module (result store, task library,
-- luaweave.fs) for the Lua that luarocks runs for.  The CLI, the C
-- libraries and the man page come with `make install`.
rockspec_format = "3.0"
package = "luaweave"
version = "scm-1"
source = {
  -- where the sources are published; `luarocks make` builds the checkout
  url = "git+https://luaweave.invalid/luaweave.git",
}
description = {
  summary = "Host Lua coroutines from C: a thread-keyed result store and a task scheduler on libuv",
  detailed = [[
luaweave 0.1.0 keeps the latest result of every resumption of the Lua
threads it tracks, never handing one to the wrong thread and never keeping
one nobody can ask for, and schedules tasks (spawn, defer, delay, wait,
cancel, await, any) on libuv.  One source for Lua 5.1 to 5.4.
]],
}
dependencies = {
  "lua >= 5.1, < 5.5",
}
external_dependencies = {
  UV = { header = "uv.h", library = "uv" },
}
build = {
  type = "builtin",
  modules = {
    luaweave = {
      sources = {
        "src/lw_compat.c", "src/lw_error.c", "src/lw_map.c", "src/lw_store.c",
        "src/lw_store_life.c", "src/lw_store_end.c", "src/lw_store_cvals.c",
        "src/lw_handle.c",
        "src/lw_timerq.c",
        "src/lw_sched.c", "src/lw_sched_spawn.c",
        "src/lw_sched_end.c", "src/lw_sched_await.c",
        "src/lw_sched_async.c", "src/lw_sched_pool.c", "src/lw_sched_life.c",
        "src/lw_sched_host.c",
        "src/lw_loop.c", "src/lw_lua.c", "src/lw_lua_task.c", "src/lw_lua_wrap.c", "src/lw_luv.c",
        "src/lw_lua_sync.c", "src/lw_lua_group.c", "src/lw_lua_info.c",
        "src/lw_fs.c", "src/lw_io.c", "src/lw_stream.c", "src/lw_net.c",
        "src/lw_process.c", "src/lw_stdio.c", "src/lw_signal.c",
        "src/lw_fs_ops.c", "src/lw_udp.c",
      },
      defines = { "_POSIX_C_SOURCE=200809L" },
      incdirs = { "include", "src", "$(UV_INCDIR)" },
      libdirs = { "$(UV_LIBDIR)" },
      libraries = { "uv" },
    },
  },
}
