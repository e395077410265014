-- bench/net_luv.lua — W6 and W7 (issue 16) on luv callbacks (Debian
-- lua-luv): the programs of bench/net_lw.lua, same arguments and output.
--   lua5.4 bench/net_luv.lua http | echo BYTES
local uv = require "luv"
local mode, total = arg[1], tonumber(arg[2] or 0)
local BODY = '{"ok":true}'
local ANSWER = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
  :format(#BODY, BODY)

local function listen(on_client)
  local server = uv.new_tcp()
  assert(server:bind("127.0.0.1", 0))
  assert(server:listen(511, function(err)
    assert(not err, err)
    local c = uv.new_tcp()
    server:accept(c)
    c:nodelay(true)
    on_client(c)
  end))
  return server, server:getsockname().port
end

if mode == "http" then
  local server, port
  -- a request ends at the empty line; what is read is buffered until
  -- then (the same line-by-line parsing as the task version's readline)
  server, port = listen(function(c)
    local buf, pos = "", 1
    c:read_start(function(err, data)
      if err or not data then c:close() return end
      buf = buf:sub(pos) .. data
      pos = 1
      while true do
        local e = buf:find("\r?\n\r?\n", pos)
        if not e then break end
        local line = buf:match("^[^\r\n]*", pos)
        pos = select(2, buf:find("\r?\n\r?\n", pos)) + 1
        c:write(ANSWER)
        if line:find("^GET /quit ") then
          server:close()
          c:shutdown(function() c:close() end)
          return
        end
      end
    end)
  end)
  print("listening " .. port)
  io.stdout:flush()
else
  local chunk = ("x"):rep(64 * 1024)
  local server, port = listen(function(c)
    c:read_start(function(err, data)
      if err or not data then c:shutdown(function() c:close() end) return end
      c:write(data)
    end)
  end)
  local t0 = uv.hrtime()
  local c, got = uv.new_tcp(), 0
  local left = math.ceil(total / #chunk)
  c:connect("127.0.0.1", port, function(err)
    assert(not err, err)
    c:nodelay(true)
    -- back-pressure by hand, as a task's write has it: up to 16 writes
    -- (1 MiB) queued, the next ones as earlier ones complete
    local queued = 0
    local function pump()
      while left > 0 and queued < 16 do
        left, queued = left - 1, queued + 1
        c:write(chunk, function() queued = queued - 1 pump() end)
      end
      if left == 0 and queued == 0 then c:shutdown() end
    end
    pump()
    c:read_start(function(e, data)
      assert(not e, e)
      if data then got = got + #data return end
      c:close()
      server:close()
    end)
  end)
  uv.run()
  print(("time %.9f"):format((uv.hrtime() - t0) / 1e9))
  print(("answer %d"):format(got))
end
if mode == "http" then uv.run() end
