print(lwd_mod and lwd_mod.name, package.loaded.lwd_mod ~= nil)
