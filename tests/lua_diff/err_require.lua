require "lwd_broken"
