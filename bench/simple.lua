-- bench/simple.lua — the simplest scheduler a user would write: one Lua
-- table as a run queue, coroutine.create and coroutine.resume, no timers,
-- no waiter lists, no store (issue 19's baseline).  W2 keeps results the
-- plainest way that still lets threads be collected, as luaweave
-- promises: t[co] = table.pack(...) in a weak-keyed table.  W3 and W5 need
-- a store and timers: plain.lua is their naive baseline.  No C, so the
-- clock is os.clock (CPU seconds); bench/run.sh's cpu_s column compares
-- every implementation on the process's CPU time.
--   lua5.4 bench/simple.lua W n
local W, n = arg[1], tonumber(arg[2])
local create, resume, running, yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield
local clock = os.clock
local pack = table.pack or function(...) return { n = select("#", ...), ... } end

local queue, qhead, qtail = {}, 1, 0

local function wait0()
  qtail = qtail + 1
  queue[qtail] = running()
  return yield()
end

local function loop()
  while qhead <= qtail do
    local co = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
    resume(co)
  end
end

local function done(t0, answer)
  print(string.format("time %.9f", clock() - t0))
  print(string.format("answer %.0f", answer))
end

local work = {}

-- as bench/lw.lua: 10 batches of n/10 tasks that wait one cycle each; the
-- last of a batch resumes the driver, which runs the queue itself
function work.W1()
  local per, count = math.floor(n / 10), 0
  local t0 = clock()
  for _ = 1, 10 do
    local function body()
      wait0()
      count = count + 1
    end
    for _ = 1, per do resume(create(body)) end
    loop()
  end
  done(t0, count)
end

-- spawn n tasks returning 3 values, keep each result, then read them all
function work.W2()
  local function body(i) return "x", i, true end
  local results = setmetatable({}, { __mode = "k" })
  local ths, sum = {}, 0
  local t0 = clock()
  for i = 1, n do
    local co = create(body)
    results[co] = pack(resume(co, i))
    ths[i] = co
  end
  for i = 1, n do
    local r = results[ths[i]]
    sum = sum + r[3]
  end
  done(t0, sum)
end

-- short-lived threads, results dropped
function work.W4()
  local count = 0
  local function body(i) count = count + 1 return i end
  local t0 = clock()
  for i = 1, n do resume(create(body), i) end
  done(t0, count)
end

if W == "W3" then print("skip no store (plain.lua is the naive store)") return end
if W == "W5" then print("skip no timers (plain.lua has a timer heap)") return end
if not work[W] then print("skip unknown workload") return end
work[W]()
