-- examples/luv.lua: a luv-driven script (uv.run() runs the loop) with
-- luaweave tasks on the same loop.  Run with plain Lua and Debian's luv:
--   LUA_CPATH="build/?.so;;" lua5.4 examples/luv.lua [file ...]
local uv = require "luv"
local task = require "luaweave.task"

-- awaitable versions of luv's callback functions (the callback's position)
local stat = task.wrap(uv.fs_stat, 2)
local function after(ms, cb)
  local t = uv.new_timer()
  t:start(ms, 0, function() t:close(); cb() end)
end
local sleep = task.wrap(after, 2)

local files = { ... }
if #files == 0 then files = { "/" } end
local ticks = 0
local ticker = uv.new_timer()          -- a plain luv callback, meanwhile
ticker:start(0, 1, function() ticks = ticks + 1 end)

local done = 0
for _, path in ipairs(files) do
  task.spawn(function()
    local err, st = stat(path)
    sleep(1)
    print(path .. ": " .. (err or st.type))
    done = done + 1
    if done == #files then ticker:close() end
  end)
end
uv.run()                                -- until the tasks and the ticker end
print(ticks > 0 and "luv ticked meanwhile" or "luv never ticked")
