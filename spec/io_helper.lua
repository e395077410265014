-- Helpers of the io_*_spec files (not a spec itself).
local M = {}

-- run Lua code in a child interpreter, after the prelude (a hang guard:
-- timeout 60); its output and exit status
function M.child(prelude, code, shell)
  local lua = os.getenv("LUAWEAVE_LUA") or "lua5.4"
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(prelude, code)
  f:close()
  -- shell: commands run before the interpreter (e.g. "trap - PIPE; ")
  local p = assert(io.popen((shell or "") .. "timeout 60 " .. lua .. " " .. path ..
    " 2>&1; echo \"exit=$?\""))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out, tonumber(out:match("exit=(%d+)%s*$"))
end

-- is a process of this pid still there (zombies included)?
function M.alive(pid)
  local ok = os.execute("kill -0 " .. pid .. " 2>/dev/null")
  return ok == true or ok == 0
end

return M
