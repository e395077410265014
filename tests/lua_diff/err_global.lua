undefined_function(1)
