-- bench/net_cq.lua — W6 and W7 (issue 16) on cqueues sockets (Debian
-- lua-cqueues): the programs of bench/net_lw.lua, same arguments and
-- output, one coroutine per connection.
--   lua5.4 bench/net_cq.lua http | echo BYTES
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local mode, total = arg[1], tonumber(arg[2] or 0)
local BODY = '{"ok":true}'
local ANSWER = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
  :format(#BODY, BODY)
local cq = cqueues.new()

local function listen(on_client)
  local server = socket.listen{ host = "127.0.0.1", port = 0, nodelay = true }
  assert(server:listen())
  local _, _, port = server:localname()
  cq:wrap(function()
    -- accepting on the closed server raises: that ends this loop
    pcall(function()
      for c in server:clients({ nodelay = true }) do
        c:setmode("b", "b")
        -- a peer that resets raises in cqueues' read: the connection ends
        cq:wrap(function() pcall(on_client, c) c:close() end)
      end
    end)
  end)
  return server, port
end

if mode == "http" then
  local server, port
  server, port = listen(function(c)
    while true do
      local line = c:read("*l")
      if not line then break end
      repeat local h = c:read("*l") until h == nil or h == "\r" or h == ""
      if not c:write(ANSWER) or not c:flush() then break end
      if line:find("^GET /quit ") then server:close() break end
    end
  end)
  print("listening " .. port)
  io.stdout:flush()
  assert(cq:loop())
else
  local chunk = ("x"):rep(64 * 1024)
  local server, port = listen(function(c)
    while true do
      local data = c:read(-65536)
      if not data or not c:write(data) or not c:flush() then break end
    end
  end)
  local got, t0 = 0, cqueues.monotime()
  cq:wrap(function()
    local c = socket.connect{ host = "127.0.0.1", port = port, nodelay = true }
    c:setmode("b", "b")
    assert(c:connect())
    cq:wrap(function()
      for _ = 1, math.ceil(total / #chunk) do assert(c:write(chunk)) end
      assert(c:flush())
      c:shutdown("w")
    end)
    while true do
      local data = c:read(-65536)
      if not data then break end
      got = got + #data
    end
    c:close()
    server:close()
  end)
  assert(cq:loop())
  print(("time %.9f"):format(cqueues.monotime() - t0))
  print(("answer %d"):format(got))
end
