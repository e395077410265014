print("loading lwd_mod", ...)
return { name = "lwd_mod" }
