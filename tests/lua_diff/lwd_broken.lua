error("broken module")
