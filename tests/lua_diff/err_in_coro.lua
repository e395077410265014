local co = coroutine.wrap(function() local t = nil; return t.x end)
co()
