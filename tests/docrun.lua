-- Run a documentation sample (a Lua block) as the CLI's main task, and
-- check its "expr --> values" comments:
--   x --> 1, "a"        the values of x are 1, "a"
--   print(x) --> a b    what print would show: values joined, tostring'd,
--                       separators (spaces, tabs, commas) compared loosely,
--                       "..." matching anything
--   x --> prose         not checked; x still runs
-- A trailing "   (remark)" after two spaces is a remark, not a value.
local path = assert(arg[1], "usage: docrun.lua block.lua")
local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack
local loadstr = loadstring or load

local function norm(s)
  return (s:gsub("[%s,]+", " "):gsub("^ ", ""):gsub(" $", ""))
end

function __check_values(line, got, want)
  local ok = got.n == want.n
  for i = 1, math.max(got.n, want.n) do
    if got[i] ~= want[i] then ok = false end
  end
  if not ok then
    local g, w = {}, {}
    for i = 1, got.n do g[i] = tostring(got[i]) end
    for i = 1, want.n do w[i] = tostring(want[i]) end
    error(("%s:%d: got %s, documented %s"):format(path, line,
      table.concat(g, ", "), table.concat(w, ", ")), 0)
  end
  return unpack(got, 1, got.n)
end

function __check_print(line, got, want)
  local s = {}
  for i = 1, got.n do s[i] = tostring(got[i]) end
  local text = norm(table.concat(s, " "))
  local pat = "^" .. norm(want):gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
                              :gsub("%%%.%%%.%%%.", ".*") .. "$"
  if not text:find(pat) then
    error(("%s:%d: printed %q, documented %q"):format(path, line, text, want), 0)
  end
  print(unpack(got, 1, got.n))
end

local function parses(expr) return loadstr("return " .. expr) ~= nil end

local out, checks = {}, 0
local n = 0
for l in io.lines(path) do
  n = n + 1
  local code, want = l:match("^(.-)%s*%-%->%s*(.-)%s*$")
  if code and code ~= "" then
    want = want:gsub("%s%s+%(.*%)$", "")
    local inner = code:match("^%s*print(%b())%s*$")
    if inner then inner = inner:sub(2, -2) end
    if inner and parses(inner) and parses(want) then
      checks = checks + 1
      l = ("print(__check_values(%d, __pack(%s), __pack(%s)))"):format(n, inner, want)
    elseif inner and parses(inner) then
      checks = checks + 1
      l = ("__check_print(%d, __pack(%s), %q)"):format(n, inner, want)
    elseif parses(code) and parses(want) and not code:find("^%s*local%s") then
      checks = checks + 1
      l = ("__check_values(%d, __pack(%s), __pack(%s))"):format(n, code, want)
    end
  end
  out[#out + 1] = l
end
__pack = pack
local chunk = assert(loadstr(table.concat(out, "\n"), "@" .. path))
print(("docrun: %s: %d documented results checked"):format(path, checks))
chunk()
