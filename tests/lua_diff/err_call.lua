local function inner() error("it failed") end
local function outer() inner() end
outer()
