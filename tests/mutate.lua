-- tests/mutate.lua — the mutation list of tests/mutate: parse it, check
-- that every search text still matches, apply one mutation to a tree.
--
--   lua tests/mutate.lua check LIST ROOT        every mutation matches once
--   lua tests/mutate.lua names LIST             "name<TAB>file", one a line
--   lua tests/mutate.lua apply LIST NAME ROOT   mutate ROOT/file in place
--
-- The list (tests/mutations.txt): a mutation is a block
--
--   == name: what the mutant breaks
--   lua: jit            (optional: the Lua versions, among 5.1 5.2 5.3 5.4
--                        jit, on which the mutant is observable; make
--                        mutate on another version skips it, and says so)
--   src/file.c
--   -exact text to find (one or more lines; joined with newlines)
--   +its replacement (zero or more lines: none deletes the text)
--
-- After the "-" or "+" the rest of the line is taken exactly, with the
-- code's own indentation ("-" or "+" alone is an empty line).  The search text
-- must occur exactly once in the file: a text that no longer matches, or
-- matches twice, is an error of the list, to be fixed as src/ changes.
-- Lines starting with "#" are comments (dropped mutations say why there).

local function parse(path)
  local f = assert(io.open(path, "r"))
  local list, cur, byname, ln = {}, nil, {}, 0
  local function err(msg)
    io.stderr:write(("%s:%d: %s\n"):format(path, ln, msg))
    os.exit(2)
  end
  for line in f:lines() do
    ln = ln + 1
    if line:match("^#") or line:match("^%s*$") then
      -- comment or blank
    elseif line:match("^== ") then
      local name, why = line:match("^== ([^:]+):%s*(.*)$")
      if not name then err("want '== name: what it breaks'") end
      name = name:gsub("%s+$", "")
      if name:match("%s") then err("a name has no spaces: " .. name) end
      if byname[name] then err("duplicate name " .. name) end
      cur = {name = name, why = why, line = ln, find = {}, repl = {}}
      byname[name] = cur
      list[#list + 1] = cur
    elseif not cur then
      err("text outside a mutation")
    elseif not cur.file and line:match("^lua:") then
      if cur.lua then err("two 'lua:' lines") end
      cur.lua = {}
      for v in line:sub(5):gmatch("%S+") do
        if not ({["5.1"] = 1, ["5.2"] = 1, ["5.3"] = 1, ["5.4"] = 1, jit = 1})[v] then
          err("unknown Lua version " .. v)
        end
        cur.lua[#cur.lua + 1] = v
      end
      if #cur.lua == 0 then err("'lua:' names no version") end
    elseif not cur.file then
      if not line:match("^src/[%w_]+%.[ch]$") then err("want a file under src/") end
      cur.file = line
    elseif line:match("^%-") then
      if #cur.repl > 0 then err("'-' after '+'") end
      cur.find[#cur.find + 1] = line:sub(2)
    elseif line:match("^%+") then
      if #cur.find == 0 then err("'+' before '-'") end
      cur.repl[#cur.repl + 1] = line:sub(2)
    else
      err("unexpected line: " .. line)
    end
  end
  f:close()
  for _, m in ipairs(list) do
    if not m.file or #m.find == 0 then
      ln = m.line
      err(m.name .. ": a mutation needs a file and a '-' line")
    end
    m.find = table.concat(m.find, "\n")
    m.repl = table.concat(m.repl, "\n")
    if m.find == m.repl then ln = m.line; err(m.name .. ": changes nothing") end
  end
  return list, byname
end

local function slurp(path)
  local f, e = io.open(path, "rb")
  if not f then return nil, e end
  local s = f:read("*a")
  f:close()
  return s
end

-- the start of the one occurrence of m.find in text, or nil and why
local function locate(m, text)
  local i = text:find(m.find, 1, true)
  if not i then return nil, "search text not found" end
  if text:find(m.find, i + 1, true) then return nil, "search text found twice" end
  return i
end

local cmd, listpath = arg[1], arg[2]
if not (cmd and listpath) then
  io.stderr:write("usage: mutate.lua check|names|apply LIST [NAME] [ROOT]\n")
  os.exit(2)
end
local list, byname = parse(listpath)

if cmd == "names" then
  -- name, file, and the versions it is observable on (empty: all)
  for _, m in ipairs(list) do
    print(m.name .. "\t" .. m.file .. "\t" .. table.concat(m.lua or {}, " "))
  end
elseif cmd == "check" then
  local root, bad = arg[3] or ".", 0
  for _, m in ipairs(list) do
    local text, e = slurp(root .. "/" .. m.file)
    local ok
    if text then ok, e = locate(m, text) end
    if not ok then
      bad = bad + 1
      print(("ERROR     %-28s %s: %s (%s:%d)"):format(m.name, m.file, e, listpath, m.line))
    end
  end
  os.exit(bad == 0 and 0 or 3)
elseif cmd == "apply" then
  local m, root = byname[arg[3] or ""], arg[4] or "."
  if not m then io.stderr:write("no mutation named ", tostring(arg[3]), "\n"); os.exit(2) end
  local path = root .. "/" .. m.file
  local text, e = slurp(path)
  local i
  if text then i, e = locate(m, text) end
  if not i then io.stderr:write(m.name, ": ", e, "\n"); os.exit(3) end
  local f = assert(io.open(path, "wb"))
  f:write(text:sub(1, i - 1), m.repl, text:sub(i + #m.find))
  f:close()
else
  io.stderr:write("unknown command ", cmd, "\n")
  os.exit(2)
end
