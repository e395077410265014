-- http.lua: a small HTTP/1.1 server on luaweave.net, one task per connection:
--   build/luaweave examples/http.lua [port [file]]
-- Listens on 127.0.0.1 (port 0: any free port) and prints "listening PORT".
-- Keep-alive connections; three answers:
--   GET /file   the file given (this script by default), text/plain
--   GET /json   {"ok":true,"requests":N,"path":"/json"}: N counts requests
--   GET /stats  {"requests":N,"connections":C}: C counts connections accepted
--               (tests/io_wrk.sh: keep-alive means far fewer than requests)
--   GET /quit   answers, then closes the server: the script ends by itself
-- anything else: 404.  Only GET and HEAD; no request bodies.
local net = require "luaweave.net"
local fs = require("luaweave").fs

local port = tonumber(arg[1] or "8080")
local file = arg[2] or arg[0]
local requests, connections = 0, 0
local server

local reasons = { [200] = "OK", [400] = "Bad Request", [404] = "Not Found",
  [405] = "Method Not Allowed", [500] = "Internal Server Error" }

local function answer(s, status, ctype, body, keep, head)
  local hdr = ("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n")
    :format(status, reasons[status], ctype, #body, keep and "" or "Connection: close\r\n")
  return s:write(hdr, head and "" or body)
end

-- one request: its method, path and whether the client keeps the
-- connection; nil at the end of the connection
local function request(s)
  local line = s:readline()
  if not line then return nil end
  local method, path, version = line:match("^(%u+) (%S+) HTTP/(%d%.%d)\r?$")
  local keep = version == "1.1"
  path = path and path:match("^[^?#]*") -- the query is not ours
  while true do -- the headers, up to the empty line
    local h = s:readline()
    if not h then return nil end
    h = h:gsub("\r$", "")
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name and name:lower() == "connection" then
      value = value:lower()
      if value == "close" then keep = false elseif value == "keep-alive" then keep = true end
    end
  end
  return method or false, path, keep
end

local function serve(s)
  connections = connections + 1
  while true do
    local method, path, keep = request(s)
    if method == nil then break end
    requests = requests + 1
    local head = method == "HEAD"
    local ok
    if not method then
      ok = answer(s, 400, "text/plain", "bad request\n", false)
      keep = false
    elseif method ~= "GET" and not head then
      ok = answer(s, 405, "text/plain", "only GET and HEAD\n", keep, head)
    elseif path == "/file" then
      local data, err = fs.readfile(file)
      if data then ok = answer(s, 200, "text/plain", data, keep, head)
      else ok = answer(s, 500, "text/plain", tostring(err) .. "\n", keep, head) end
    elseif path == "/json" then
      ok = answer(s, 200, "application/json",
        ('{"ok":true,"requests":%d,"path":"%s"}'):format(requests, path), keep, head)
    elseif path == "/stats" then
      ok = answer(s, 200, "application/json",
        ('{"requests":%d,"connections":%d}'):format(requests, connections), keep, head)
    elseif path == "/quit" then
      answer(s, 200, "text/plain", "bye\n", false, head)
      keep = false
      server:close()
    else
      ok = answer(s, 404, "text/plain", "not found\n", keep, head)
    end
    if not ok or not keep then break end
  end
  s:shutdown()
  s:close()
end

local err, code
server, err, code = net.listen("127.0.0.1", port, serve)
if not server then
  io.stderr:write("http.lua: ", err, " (", code, ")\n")
  task.exit(1)
end
print("listening " .. server:port())
io.stdout:flush()
