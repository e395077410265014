print("from LUA_INIT file", ...)
