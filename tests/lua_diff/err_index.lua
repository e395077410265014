local conf = nil
local function port() return conf.port end
print(port())
