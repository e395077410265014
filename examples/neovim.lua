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
  -- tasks run from the editor's event queue: the editor API is safe here
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { "cwd is a " .. (err or st.type) })
  io.stdout:write(vim.api.nvim_buf_get_lines(0, 0, 1, false)[1], "\n")
  vim.cmd("qa!")
end)
