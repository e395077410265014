io.stdout:write("out 1\n")
io.stderr:write("err 1\n")
io.stdout:write("out 2\n")
