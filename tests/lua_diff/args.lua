-- arg and ... as lua(1) builds them; the interpreter's own name (which
-- differs) is shown as PROG
local prog = os.getenv("LWD_PROG")
local function show(v)
  if v == prog then return "PROG" end
  return tostring(v)
end
if arg == nil then print("no arg") else
  local lo = 0
  while arg[lo - 1] ~= nil do lo = lo - 1 end
  for i = lo, #arg do io.write(i, "=", show(arg[i]), " ") end
  print("#arg=" .. #arg)
end
print("...", select("#", ...), ...)
