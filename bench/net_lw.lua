-- bench/net_lw.lua — W6 and W7 (issue 16) on luaweave.net: one task per
-- connection.  The same programs on luv callbacks: bench/net_luv.lua; on
-- cqueues: bench/net_cq.lua.  Driven by bench/net.sh.
--   luaweave bench/net_lw.lua http        a keep-alive HTTP server on
--     127.0.0.1: prints "listening PORT"; every GET answers the same JSON;
--     GET /quit answers and closes the server (the script then ends)
--   luaweave bench/net_lw.lua echo BYTES  an echo server and a client in
--     this process: the client writes BYTES in 64 KiB writes while reading
--     the echo back; prints "time S" and "answer BYTES_ECHOED"
local net = require "luaweave.net"
local mode, total = arg[1], tonumber(arg[2] or 0)
local BODY = '{"ok":true}'
local ANSWER = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
  :format(#BODY, BODY)

if mode == "http" then
  local server
  server = net.listen("127.0.0.1", 0, function(s)
    while true do
      local line = s:readline()
      if not line then break end
      repeat local h = s:readline() until h == nil or h == "\r" or h == ""
      if not s:write(ANSWER) then break end
      if line:find("^GET /quit ") then server:close() break end
    end
    s:close()
  end)
  print("listening " .. server:port())
  io.stdout:flush()
else
  local chunk = ("x"):rep(64 * 1024)
  local server
  server = net.listen("127.0.0.1", 0, function(s)
    while true do
      local data = s:read()
      if not data or not s:write(data) then break end
    end
    s:close()
  end)
  local t0 = task.clock()
  local c = assert(net.connect("127.0.0.1", server:port()))
  task.spawn(function()
    for _ = 1, math.ceil(total / #chunk) do assert(c:write(chunk)) end
    c:shutdown()
  end)
  local got = 0
  while true do
    local data = c:read()
    if not data then break end
    got = got + #data
  end
  print(("time %.9f"):format(task.clock() - t0))
  print(("answer %d"):format(got))
  c:close()
  server:close()
end
