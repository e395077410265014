/*
** lw_lua_sync.c — task.channel, task.event and task.semaphore: Lua code
** on the task library.  A waiter parks itself with a plain yield in the
** primitive's FIFO and is woken by task.defer; a timed wait sets a
** task.delay that wakes it with nil, "timeout".
**
** A waiter cancelled while queued must never leave the primitive stuck:
** each waiter sets an end guard (lws_pushguard) while it waits.  Queued,
** it is marked gone and skipped; already handed a permit or a value but
** not yet run, the guard gives that back (to the next waiter, or to the
** primitive).  So the hand-over of a release or a send is never lost.
*/
#include "lw_sched.h"
#include "lw_compat.h"

/* yieldable(): can the calling thread yield (best effort on 5.1/5.2) */
static int l_yieldable(lua_State *L) {
  lua_pushboolean(L, lw_yieldable(L));
  return 1;
}

/* the code, in pieces (C99 guarantees string literals of 4095 bytes) */
static const char *const code[] = {
    "local task, guard, yieldable, shared = ...\n"
    "local setmetatable = setmetatable\n"
    "local clock = task.clock\n"
    "-- weak both ways: before 5.2 a weak-key table holds its values strongly\n"
    "-- (an entry holds its thread, e.co)\n"
    "local waiting = setmetatable({}, { __mode = \"kv\" })\n"
    "shared.waiting = waiting\n"
    "local yield, running, status = coroutine.yield, coroutine.running, coroutine.status\n"
    "local defer, delay, cancel = task.defer, task.delay, task.cancel\n"
    "local select, type, error, pcall = select, type, error, pcall\n"
    "local floor = math.floor\n"
    "-- A waiter queue is a FIFO of entries {co, state, vals, undo, timer}.\n"
    "-- state: \"queued\", \"woken\" (handed vals, not yet run), \"timeout\",\n"
    "-- \"gone\" (cancelled or resumed by someone else): only queued entries\n"
    "-- are ever woken.\n"
    "local function qnew() return { h = 1, t = 0 } end\n"
    "local function qpop(q)\n"
    "  while q.h <= q.t do\n"
    "    local e = q[q.h]\n"
    "    q[q.h] = nil\n"
    "    q.h = q.h + 1\n"
    "    if e.state == \"queued\" then return e end\n"
    "  end\n"
    "  q.h, q.t = 1, 0\n"
    "end\n"
    "local function qpeek(q)\n"
    "  local e = qpop(q)\n"
    "  if e then\n"
    "    q.h = q.h - 1\n"
    "    q[q.h] = e\n"
    "  end\n"
    "  return e\n"
    "end\n"
    "-- hand e the values ...; undo() gives back what they carry if e's task\n"
    "-- ends before it runs (cancelled).  A task that can no longer be\n"
    "-- deferred counts as gone: undo at once.  1 when e was woken.\n"
    "local function wake(e, undo, ...)\n"
    "  if status(e.co) ~= \"suspended\" then -- its yield failed (5.1: in a pcall)\n"
    "    e.state = \"gone\"\n"
    "    guard(e.co, e, nil)\n"
    "    if undo then undo() end\n"
    "    return false\n"
    "  end\n"
    "  e.state, e.undo = \"woken\", undo\n"
    "  e.vals = { n = select(\"#\", ...), ... }\n"
    "  if pcall(defer, e.co) then return true end\n"
    "  e.state = \"gone\"\n"
    "  guard(e.co, e, nil)\n"
    "  if undo then undo() end\n"
    "  return false\n"
    "end\n"
    "-- wake the first queued entry of q that can still run, as wake does\n"
    "local function wake_first(q, undo, ...)\n"
    "  local e = qpop(q)\n"
    "  while e do\n"
    "    if wake(e, nil, ...) then\n"
    "      e.undo = undo\n"
    "      return true\n"
    "    end\n"
    "    e = qpop(q)\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "local unpack = table.unpack or unpack\n"
    "local function check_seconds(sec, fname)\n"
    "  if sec ~= nil and type(sec) ~= \"number\" then\n"
    "    error(\"bad argument #1 to '\" .. fname .. \"' (number expected, got \" .. type(sec) .. \")\", 3)\n"
    "  end\n"
    "end\n"
    "-- suspend the running task in q until woken (its values), its timeout\n"
    "-- passes (nil, \"timeout\") or someone else resumes it (nil, \"interrupted\")\n"
    "local function park(q, sec, what, v)\n"
    "  local co, ismain = running()\n"
    "  if co == nil or ismain or not yieldable() then\n"
    "    error(what .. \": not in a task (cannot yield here)\", 3)\n"
    "  end\n"
    "  local e = { co = co, state = \"queued\", what = what, v = v, since = clock() }\n"
    "  waiting[co] = e\n"
    "  q.t = q.t + 1\n"
    "  q[q.t] = e\n"
    "  guard(co, e, function()\n"
    "    local undo = e.state == \"woken\" and e.undo\n"
    "    e.state = \"gone\"\n"
    "    if waiting[co] == e then waiting[co] = nil end\n"
    "    if e.timer then cancel(e.timer) end\n"
    "    if undo then undo() end\n"
    "  end)\n"
    "  if sec and sec == sec and sec < 2147483648 then\n"
    "    if not (sec > 0) then sec = 0 end\n"
    "    e.deadline = e.since + sec\n"
    "    e.timer = delay(sec, function()\n"
    "      if e.state == \"queued\" then\n"
    "        e.state = \"timeout\"\n"
    "        if not pcall(defer, co) then e.state = \"gone\" end\n"
    "      end\n"
    "    end)\n"
    "  elseif sec then -- NaN: at once\n"
    "    e.timer = delay(0, function()\n"
    "      if e.state == \"queued\" then e.state = \"timeout\"; pcall(defer, co) end\n"
    "    end)\n"
    "  end\n"
    "  yield()\n"
    "  if waiting[co] == e then waiting[co] = nil end\n"
    "  guard(co, e, nil)\n"
    "  local timer = e.timer\n"
    "  if timer and e.state ~= \"timeout\" then cancel(timer) end\n"
    "  local state = e.state\n"
    "  e.state = \"gone\"\n"
    "  if state == \"woken\" then return unpack(e.vals, 1, e.vals.n) end\n"
    "  if state == \"timeout\" then return nil, \"timeout\" end\n"
    "  return nil, \"interrupted\"\n"
    "end\n",
    "-- ---------------------------------------------------------------- --\n"
    "-- semaphore: a count of permits; a release hands its permit straight\n"
    "-- to the first waiter, and takes it back if that waiter is cancelled\n"
    "-- before it runs.\n"
    "local Sem = {}\n"
    "Sem.__index = Sem\n"
    "function task.semaphore(n)\n"
    "  if type(n) ~= \"number\" or n < 0 or n ~= floor(n) then\n"
    "    error(\"bad argument #1 to 'semaphore' (non-negative integer expected, got \" ..\n"
    "          (type(n) == \"number\" and tostring(n) or type(n)) .. \")\", 2)\n"
    "  end\n"
    "  return setmetatable({ n = n, q = qnew() }, Sem)\n"
    "end\n"
    "function Sem:acquire(sec)\n"
    "  check_seconds(sec, \"acquire\")\n"
    "  if self.n > 0 then\n"
    "    self.n = self.n - 1\n"
    "    return true\n"
    "  end\n"
    "  return park(self.q, sec, \"semaphore\")\n"
    "end\n"
    "function Sem:release()\n"
    "  local me = self\n"
    "  if not wake_first(self.q, function() me:release() end, true) then\n"
    "    self.n = self.n + 1\n"
    "  end\n"
    "end\n"
    "function Sem:count() return self.n end\n"
    "-- ---------------------------------------------------------------- --\n"
    "-- event: a flag; wait suspends while it is clear, set wakes them all\n"
    "local Ev = {}\n"
    "Ev.__index = Ev\n"
    "function task.event() return setmetatable({ flag = false, q = qnew() }, Ev) end\n"
    "function Ev:set()\n"
    "  self.flag = true\n"
    "  while wake_first(self.q, nil, true) do end\n"
    "end\n"
    "function Ev:clear() self.flag = false end\n"
    "function Ev:isset() return self.flag end\n"
    "function Ev:wait(sec)\n"
    "  check_seconds(sec, \"wait\")\n"
    "  if self.flag then return true end\n"
    "  return park(self.q, sec, \"event\")\n"
    "end\n"
    "-- ---------------------------------------------------------------- --\n"
    "-- channel: a buffer of up to cap values (cap 0: send waits for a\n"
    "-- receiver), queues of waiting receivers and senders.  A value handed\n"
    "-- to a receiver that is cancelled before it runs goes back to the front.\n"
    "local Ch = {}\n"
    "Ch.__index = Ch\n"
    "function task.channel(cap)\n"
    "  if cap == nil then cap = 0 end\n"
    "  if type(cap) ~= \"number\" or cap < 0 or cap ~= floor(cap) then\n"
    "    error(\"bad argument #1 to 'channel' (non-negative integer expected, got \" ..\n"
    "          (type(cap) == \"number\" and tostring(cap) or type(cap)) .. \")\", 2)\n"
    "  end\n"
    "  return setmetatable({ cap = cap, bh = 1, bt = 0, rq = qnew(), sq = qnew(),\n"
    "                        closed = false }, Ch)\n"
    "end\n"
    "local function bpush_front(ch, v)\n"
    "  ch.bh = ch.bh - 1\n"
    "  ch[ch.bh] = v\n"
    "end\n"
    "-- give v to the first waiting receiver, or back to the buffer's front\n"
    "local function give_back(ch, v)\n"
    "  if not wake_first(ch.rq, function() give_back(ch, v) end, v) then\n"
    "    bpush_front(ch, v)\n"
    "  end\n"
    "end\n"
    "function Ch:send(v)\n"
    "  if v == nil then error(\"bad argument #1 to 'send' (value expected)\", 2) end\n"
    "  if self.closed then return nil, \"closed\" end\n"
    "  local me = self\n"
    "  if wake_first(self.rq, function() give_back(me, v) end, v) then return true end\n"
    "  if self.bt - self.bh + 1 < self.cap then\n"
    "    self.bt = self.bt + 1\n"
    "    self[self.bt] = v\n"
    "    return true\n"
    "  end\n"
    "  return park(self.sq, nil, \"channel\", v)\n"
    "end\n"
    "-- a waiting sender carries its value in its entry (e.v)\n"
    "function Ch:recv(sec)\n"
    "  check_seconds(sec, \"recv\")\n"
    "  local v\n"
    "  if self.bt >= self.bh then\n"
    "    v = self[self.bh]\n"
    "    self[self.bh] = nil\n"
    "    self.bh = self.bh + 1\n"
    "    local s = qpop(self.sq)\n"
    "    while s do -- a waiting sender's value takes the freed room\n"
    "      local sv = s.v\n"
    "      if wake(s, nil, true) then\n"
    "        self.bt = self.bt + 1\n"
    "        self[self.bt] = sv\n"
    "        break\n"
    "      end\n"
    "      s = qpop(self.sq)\n"
    "    end\n"
    "    return v\n"
    "  end\n"
    "  local s = qpop(self.sq)\n"
    "  while s do\n"
    "    local sv = s.v\n"
    "    if wake(s, nil, true) then return sv end\n"
    "    s = qpop(self.sq)\n"
    "  end\n"
    "  if self.closed then return nil, \"closed\" end\n"
    "  return park(self.rq, sec, \"channel\")\n"
    "end\n",
    "function Ch:close()\n"
    "  if self.closed then return end\n"
    "  self.closed = true\n"
    "  while wake_first(self.rq, nil, nil, \"closed\") do end\n"
    "  while wake_first(self.sq, nil, nil, \"closed\") do end\n"
    "end\n"
    "function Ch:isclosed() return self.closed end\n"
    "function Ch:len() return self.bt - self.bh + 1 end\n"
    "-- for v in ch do ... end: receives until closed and drained\n"
    "Ch.__call = function(self) return self:recv() end\n",
  NULL
};

/* run the Lua code in pieces (a NULL-terminated array: C99 guarantees
   string literals of 4095 bytes only) with the nargs values on L's top
   as its arguments (popped).  May raise */
void lw_lua_chunk(lua_State *L, const char *const *pieces, int nargs) {
  luaL_Buffer b;
  size_t len;
  const char *s;
  int i;
  luaL_buffinit(L, &b);
  for (i = 0; pieces[i] != NULL; i++) luaL_addstring(&b, pieces[i]);
  luaL_pushresult(&b);
  s = lua_tolstring(L, -1, &len);
  if (luaL_loadbuffer(L, s, len, "=luaweave.task") != 0) lua_error(L);
  lua_remove(L, -2);
  lua_insert(L, -1 - nargs);
  lua_call(L, nargs, 0);
}

/* t: the task table, whose defer, delay and cancel the code uses;
   shared: the table the Lua sides share (lw_lua_info.c).  May raise */
void lw_sync_open(lua_State *L, int t, int shared) {
  t = lw_absindex(L, t);
  shared = lw_absindex(L, shared);
  lua_pushvalue(L, t);
  lw_sched_pushbox(L);
  lws_pushguard(L);
  lua_pushcfunction(L, l_yieldable);
  lua_pushvalue(L, shared);
  lw_lua_chunk(L, code, 4);
}
