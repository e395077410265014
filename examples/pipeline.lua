-- examples/pipeline.lua: stream a file through `sort | gzip` (two child
-- processes, three tasks copying between pipes), then check the result
-- against `sort` and `gzip -dc` run whole.
--   luaweave examples/pipeline.lua INPUT OUTPUT.gz
-- (while loops, not for iterators: Lua 5.1 cannot yield from those)
local fs = require "luaweave.fs"
local process = require "luaweave.process"

local input, output = arg[1], arg[2]
assert(input and output, "usage: pipeline.lua INPUT OUTPUT.gz")

local sort = assert(process.spawn("sort", {}, { stdin = "pipe", stdout = "pipe" }))
local gzip = assert(process.spawn("gzip", { "-c" }, { stdin = "pipe", stdout = "pipe" }))

-- copy src (read(n) -> data or nil) into dst, then end dst
local function copy(read, dst)
  local data = read()
  while data do
    assert(dst:write(data))
    data = read()
  end
  if dst.shutdown then assert(dst:shutdown()) else assert(dst:close()) end
end

local infile = assert(fs.open(input))
local outfile = assert(fs.open(output, "w"))
-- a reader that raises on an error (nil alone is the end)
local function reader(obj, n)
  return function()
    local data, msg = obj:read(n)
    if data == nil and msg then error(msg) end
    return data
  end
end
local feed = task.spawn(copy, reader(infile, 16384), sort.stdin)
local middle = task.spawn(copy, reader(sort.stdout), gzip.stdin)
local drain = task.spawn(copy, reader(gzip.stdout), outfile)
for _, t in ipairs({ feed, middle, drain }) do assert(task.await(t)) end
infile:close()
assert(sort:wait() == 0 and gzip:wait() == 0, "a child failed")

-- the same, whole: it must match byte for byte
local _, sorted = assert(process.exec("sort", { input }))
local _, unzipped = assert(process.exec("gzip", { "-dc", output }))
assert(unzipped == sorted, "the pipeline's output differs")
print(("ok %d bytes sorted, %d compressed"):format(#sorted, fs.stat(output).size))
