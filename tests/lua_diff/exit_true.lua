os.exit(true)
