#!/usr/bin/env lua
print("shebang line skipped")
