io.write("no newline, buffered")
os.exit(0)
