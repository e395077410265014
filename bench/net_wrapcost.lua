-- bench/net_wrapcost.lua — what lw_async_wrap (the Lua-level wrapper that
-- names a wrong argument at the caller's line and turns a rejection into
-- an error) costs a cheap call of luaweave.net (issue 16).
--   luaweave bench/net_wrapcost.lua [n]
-- s:read(0) is wrapped and never suspends (it answers "" at once);
-- s:linelimit() is a plain C function doing the same checks: the
-- difference per call is the wrapper's.  Also a real async call that
-- suspends and resumes: a write/read round trip over a socket pair.
local net = require "luaweave.net"
local n = tonumber(arg[1] or "1000000")
local clock = task.clock

local srv = assert(net.listen("127.0.0.1", 0, function(s)
  while true do
    local d = s:read()
    if not d or not s:write(d) then break end
  end
end))
local c = assert(net.connect("127.0.0.1", srv:port()))

local function per_call(f)
  local t0 = clock()
  for _ = 1, n do f() end
  return (clock() - t0) * 1e9 / n
end
local function wrapped() return c:read(0) end
local function plain() return c:linelimit() end
-- warm-up, then each twice, the smaller kept (the machine is shared)
per_call(wrapped) per_call(plain)
local w = math.min(per_call(wrapped), per_call(wrapped))
local p = math.min(per_call(plain), per_call(plain))
print(("wrapped s:read(0)      %8.1f ns/call"):format(w))
print(("plain   s:linelimit()  %8.1f ns/call"):format(p))
print(("the wrapper            %8.1f ns/call"):format(w - p))
local m = math.max(1, math.floor(n / 50))
local t0 = clock()
for _ = 1, m do c:write("x") c:read() end
print(("a write + read round trip over loopback (suspends): %.1f us"):format((clock() - t0) * 1e6 / m))
c:close()
srv:close()
