-- fanout.lua: fan work out to tasks, then await it, from the CLI:
--   build/luaweave examples/fanout.lua [files...]
-- Reads every file named (this script itself by default) in its own task,
-- at the same time, on luaweave's libuv loop; then awaits each task in
-- order and reports its size or its error.  A missing file is reported,
-- not fatal.  Exits 0 when every file was read, 1 otherwise.
local fs = require("luaweave").fs

local files = { ... }
if #files == 0 then files = { arg[0] } end

local readers = {}
for i, name in ipairs(files) do
  readers[i] = task.spawn(function()
    local data, err = fs.readfile(name)
    return data and #data, err
  end)
end

local failed = 0
for i, name in ipairs(files) do
  local _, size, err = task.await(readers[i])
  if size then
    print(("%s: %d bytes"):format(name, size))
  else
    print(err)
    failed = failed + 1
  end
end
task.exit(failed == 0 and 0 or 1)
