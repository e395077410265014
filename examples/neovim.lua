-- examples/neovim.lua: luaweave tasks inside Neovim, on the editor's own
-- loop (vim.loop), without blocking it.  With the LuaJIT build of
-- luaweave.so on package.cpath (make LUA=jit):
--   LUA_CPATH="build/jit/?.so;;" nvim --headless -u NONE -c "luafile examples/neovim.lua"
local uv = vim.uv or vim.loop
local task = require "luaweave.task"

-- any luv function with a callback becomes awaitable: the callback goes
-- in position argc (fs_stat(path, cb): 2)
local stat = task.wrap(uv.fs_stat, 2)
local sleep = task.wrap(function(ms, cb) vim.defer_fn(cb, ms) end, 2)

task.spawn(function()
  local err, st = stat(vim.fn.getcwd())
  sleep(10)                     -- the editor keeps running meanwhile
  task.wait(0.01)
  vim.schedule(function()       -- back to the editor to print and quit
    io.stdout:write("cwd is a ", err or st.type, "\n")
    vim.cmd("qa!")
  end)
end)
