-- bench/plain.lua — W1–W5 on a plain-Lua run queue: the naive design a
-- user starts from.  Every resumption's results go into a Lua table keyed
-- by thread (weak keys, so dead threads can go); timers are a binary
-- heap; await parks the caller in a per-thread waiter list.  No C, so the
-- clock is os.clock (CPU seconds: the same as wall time here, since W5's
-- sleeping is a busy wait).   lua5.4 bench/plain.lua W n
local W, n = arg[1], tonumber(arg[2])
local create, resume, running, yield, status =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield,
  coroutine.status
local clock, select, unpack = os.clock, select, table.unpack or unpack

local results = setmetatable({}, { __mode = "k" }) -- thread -> {n=, ...}
local waiters = {}                                 -- thread -> {threads}
local queue, qhead, qtail = {}, 1, 0               -- runnable: {co, arg}
local heap, hlen = {}, 0                           -- timers: {due, co}

local function record(co, ...)
  results[co] = { n = select("#", ...), ... }
  if status(co) == "dead" and waiters[co] then
    for _, w in ipairs(waiters[co]) do
      qtail = qtail + 1
      queue[qtail] = w
    end
    waiters[co] = nil
  end
  return ...
end
local function run(co, ...) return record(co, resume(co, ...)) end

local function spawn(f, ...)
  local co = type(f) == "thread" and f or create(f)
  run(co, ...)
  return co
end

local function heap_push(due, co)
  hlen = hlen + 1
  local i = hlen
  while i > 1 do
    local p = math.floor(i / 2)
    if heap[p][1] <= due then break end
    heap[i] = heap[p]
    i = p
  end
  heap[i] = { due, co }
end

local function heap_pop()
  local top, last = heap[1], heap[hlen]
  heap[hlen] = nil
  hlen = hlen - 1
  local i = 1
  while true do
    local c = 2 * i
    if c > hlen then break end
    if c < hlen and heap[c + 1][1] < heap[c][1] then c = c + 1 end
    if last[1] <= heap[c][1] then break end
    heap[i] = heap[c]
    i = c
  end
  if hlen > 0 then heap[i] = last end
  return top
end

local function wait(sec)
  if not sec or sec <= 0 then
    qtail = qtail + 1
    queue[qtail] = running()
  else
    heap_push(clock() + sec, running())
  end
  return yield()
end

local function delay(sec, f) heap_push(clock() + sec, create(f)) end

local function await(co)
  if status(co) ~= "dead" then
    local me = running()
    local ws = waiters[co] or {}
    ws[#ws + 1] = me
    waiters[co] = ws
    yield()
  end
  local r = results[co]
  return unpack(r, 1, r.n)
end

local function loop()
  while true do
    if qhead <= qtail then
      local co = queue[qhead]
      queue[qhead] = nil
      qhead = qhead + 1
      run(co)
    elseif hlen > 0 then
      local now = clock()
      while heap[1][1] > now do now = clock() end
      run(heap_pop()[2])
    else
      return
    end
  end
end

local function done(t0, answer)
  print(string.format("time %.9f", clock() - t0))
  print(string.format("answer %.0f", answer))
end

local work = {}

function work.W1()
  local per, count = math.floor(n / 10), 0
  local t0 = clock()
  for _ = 1, 10 do
    local parent, left = running(), per
    local function body()
      wait(0)
      count = count + 1
      left = left - 1
      if left == 0 then spawn(parent) end
    end
    for _ = 1, per do spawn(body) end
    yield()
  end
  done(t0, count)
end

function work.W2()
  local function body(i) return "x", i, true end
  local ths, sum = {}, 0
  local t0 = clock()
  for i = 1, n do ths[i] = spawn(body, i) end
  for i = 1, n do
    local _, _, v = await(ths[i])
    sum = sum + v
  end
  done(t0, sum)
end

-- the naive store's operations, ns each with n threads tracked
function work.W3()
  local function body() while true do yield(1) end end
  local store = setmetatable({}, { __mode = "k" })
  local cos, ok, total = {}, 0, 0
  for i = 1, n do cos[i] = create(body) end
  local function timed(name, f)
    local t0 = clock()
    for i = 1, n do if f(cos[i]) then ok = ok + 1 end end
    local d = clock() - t0
    total = total + d
    print(string.format("metric %s %.2f", name, d * 1e9 / n))
  end
  local function rec(co, ...) store[co] = { n = select("#", ...), ... } return ... end
  timed("track", function(co) store[co] = false return true end)
  timed("resume_record", function(co) return rec(co, resume(co)) == true end)
  timed("lookup", function(co) return store[co] ~= nil end)
  timed("result", function(co) local r = store[co] return unpack(r, 1, r.n) == true end)
  timed("take", function(co)
    local r = store[co]
    store[co] = nil
    return unpack(r, 1, r.n) == true
  end)
  for i = 1, n do store[cos[i]] = false end
  timed("untrack", function(co) store[co] = nil return true end)
  print(string.format("time %.9f", total))
  -- exact: a single failed operation of the 6n makes it differ from n
  print(string.format("answer %.17g", ok / 6))
end

function work.W4()
  local count = 0
  local function body(i) count = count + 1 return i end
  local t0 = clock()
  for i = 1, n do spawn(body, i) end
  done(t0, count)
end

-- the answer counts the timers that fired in deadline order (as in
-- bench/lw.lua: timer i is due between t0 + d_i and t0 + span + d_i)
function work.W5()
  local count, late, maxd, span, x, t0 = 0, 0, -1, nil, 42, clock()
  local function body(d)
    count = count + 1
    if d < maxd - span then late = late + 1 end
    if d > maxd then maxd = d end
    if count == n then done(t0, count - late) end
  end
  for _ = 1, n do
    x = (x * 16807) % 2147483647
    local d = (x % 50001) * 1e-6
    delay(d, function() body(d) end)
  end
  span = clock() - t0
end

if not work[W] then print("skip unknown workload") return end
spawn(work[W])
loop()
