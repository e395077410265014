/*
** lw_lua_group.c — task.group(): a group owns the tasks started by its
** spawn, defer and delay; g:wait(sec?) waits for all of them (the first
** failure cancels the rest and is raised), g:cancel() cancels them, and
** on Lua 5.4 `local g <close> = task.group()` cancels them when the block
** ends.  The task that made a group owns it: an end guard of the owner
** (lws_pushguard) cancels the group when the owner ends by any path, and
** with it, through their own guards, the groups of its children.
*/
#include "lw_sched.h"
#include "lw_compat.h"

/* status(co): lw.status's name of co's status (a task is tracked) */
static int l_status(lua_State *L) {
  lw_sched *S = *(lw_sched **)lua_touserdata(L, lua_upvalueindex(1));
  lua_State *co = lua_tothread(L, 1);
  int st = (co != NULL && S != NULL && !lws_gone(S)) ? lw_status(lws_store(S), co) : 0;
  const char *name = lw_status_name(st); /* NULL for an error code */
  lua_pushstring(L, name != NULL ? name : "untracked");
  return 1;
}

/* failtrace(co): the traceback of failed co, kept from before its close
   wiped its stack (5.4), or read from its stack */
static int l_failtrace(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argcheck(L, co != NULL, 1, "thread expected");
  lws_push_failtrace(L, co);
  if (lua_isnil(L, -1)) {
    const char *tb;
    /* a message, "": 5.1's debug.traceback gives none without one */
    lw_traceback(L, co, "");
    tb = lua_tostring(L, -1);
    if (tb != NULL && tb[0] == '\n') lua_pushstring(L, tb + 1);
  }
  return 1;
}

static const char *const code[] = {
    "local task, guard, status, shared, failtrace = ...\n"
    "local spawn, defer, delay, cancel, any, await = task.spawn, task.defer, task.delay, task.cancel, task.any, task.await\n"
    "local clock = task.clock\n"
    "local running, create = coroutine.running, coroutine.create\n"
    "local setmetatable, select, type, error, tostring, tonumber = setmetatable, select, type, error, tostring, tonumber\n"

    "-- weak both ways: before 5.2 a weak-key table holds its values strongly,\n"
    "-- and g holds its children (g.kids)\n"
    "local groupof = setmetatable({}, { __mode = \"kv\" })\n"
    "local check_self, intask, awaitall = shared.check_self, shared.intask, shared.awaitall\n"
    "local pcall = pcall\n"
    "shared.groupof = groupof\n"
    "shared.status = status\n"
    "local G = {}\n"
    "G.__index = G\n"
    "-- A group owns the tasks started by its spawn, defer and delay.  Its\n"
    "-- owner is the task that made it: when the owner ends (cancelled, say),\n"
    "-- an end guard cancels the group, and so, through their own guards, the\n"
    "-- groups its children own.\n"
    "function task.group()\n"
    "  local owner, ismain = running()\n"
    "  local g = setmetatable({ kids = {}, n = 0, errs = {}, heard = {} }, G)\n"
    "  if owner and not ismain then\n"
    "    guard(owner, g, function() g:cancel() end)\n"
    "    g.owner = owner\n"
    "  end\n"
    "  return g\n"
    "end\n"
    "-- called straight from G's methods: errors at level 3 name the user's line\n"
    "local function child(g, f, fname, arg)\n"
    "  local t = type(f)\n"
    "  if t ~= \"function\" and t ~= \"thread\" then\n"
    "    error(\"bad argument #\" .. arg .. \" to '\" .. fname .. \"' (function or thread expected, got \" .. t .. \")\", 3)\n"
    "  end\n"
    "  if g.cancelled then error(\"group:\" .. fname .. \": the group is cancelled\", 3) end\n"
    "  local co = f\n"
    "  if t == \"function\" then\n"
    "    local ok\n"
    "    ok, co = pcall(create, f)\n"
    "    -- 5.1 makes no coroutine of a C function: run it from a Lua one\n"
    "    if not ok then co = create(function(...) return f(...) end) end\n"
    "  end\n"
    "  g.n = g.n + 1\n"
    "  g.kids[g.n] = co\n"
    "  groupof[co] = g\n"
    "  return co\n"
    "end\n"
    "function G:spawn(f, ...)\n"
    "  check_self(self, G, \"group\", \"spawn\")\n"
    "  return spawn(child(self, f, \"spawn\", 1), ...)\n"
    "end\n"
    "function G:defer(f, ...)\n"
    "  check_self(self, G, \"group\", \"defer\")\n"
    "  return defer(child(self, f, \"defer\", 1), ...)\n"
    "end\n"
    "function G:delay(sec, f, ...)\n"
    "  check_self(self, G, \"group\", \"delay\")\n"
    "  if tonumber(sec) == nil then\n"
    "    error(\"bad argument #1 to 'delay' (number expected, got \" .. type(sec) .. \")\", 2)\n"
    "  end\n"
    "  return delay(sec, child(self, f, \"delay\", 2), ...)\n"
    "end\n"
    "function G:cancel()\n"
    "  check_self(self, G, \"group\", \"cancel\")\n"
    "  self.cancelled = true\n"
    "  for i = 1, self.n do cancel(self.kids[i]) end\n"
    "end\n"
    ,
    "-- The first failure among the ended children, raised after the others\n"
    "-- are cancelled: a string with the child's traceback, any other value as\n"
    "-- is; and raised again by every later wait, as task.await of a failed\n"
    "-- task gives its error each time.  Every failure is the group's: each is\n"
    "-- awaited here (so the scheduler does not report it as unhandled: two\n"
    "-- children may fail in the step that woke the wait) and kept, in the\n"
    "-- order of the children, for g:errors()\n"
    "local function check(g)\n"
    "  for i = 1, g.n do\n"
    "    local co = g.kids[i]\n"
    "    if status(co) == \"failed\" and not g.heard[co] then\n"
    "      local _, err = await(co)\n"
    "      g.heard[co] = true\n"
    "      g.errs[#g.errs + 1] = err\n"
    "      if g.failed == nil then\n"
    "        if type(err) == \"string\" then err = err .. \"\\n\" .. failtrace(co) end\n"
    "        g.failed = { err }\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if g.failed == nil then return end\n"
    "  g:cancel()\n"
    "  error(g.failed[1], 0)\n"
    "end\n"
    "function G:wait(sec)\n"
    "  check_self(self, G, \"group\", \"wait\")\n"
    "  if sec ~= nil then\n"
    "    -- a numeric string too, as Lua's own library functions take\n"
    "    local n = tonumber(sec)\n"
    "    if n == nil then\n"
    "      error(\"bad argument #1 to 'wait' (number expected, got \" .. type(sec) .. \")\", 2)\n"
    "    end\n"
    "    sec = n\n"
    "  end\n"
    "  local deadline\n"
    "  if sec ~= sec then deadline = clock()\n"
    "  elseif sec and sec < 2147483648 then deadline = clock() + sec end\n"
    "  local me = running()\n"
    "  while true do\n"
    "    check(self)\n"
    "    local left, m = {}, 0\n"
    "    for i = 1, self.n do\n"
    "      local st = status(self.kids[i])\n"
    "      if st ~= \"returned\" and st ~= \"cancelled\" and st ~= \"failed\" then\n"
    "        if self.kids[i] == me then\n"
    "          error(\"group:wait: a child cannot wait for its own group\", 2)\n"
    "        end\n"
    "        m = m + 1\n"
    "        left[m] = self.kids[i]\n"
    "      end\n"
    "    end\n"
    "    if m == 0 then return true end\n"
    "    local d\n"
    "    if deadline then\n"
    "      d = deadline - clock()\n"
    "      if not (d > 0) then d = 0 end\n"
    "    end\n"
    "    intask(\"group:wait\", 2)\n"
    "    -- until all of them end or one fails; children added meanwhile are\n"
    "    -- the next round's\n"
    "    if awaitall(left, true, d) == nil then return nil, \"timeout\" end\n"
    "  end\n"
    "end\n"
    "function G:children()\n"
    "  check_self(self, G, \"group\", \"children\")\n"
    "  local t = {}\n"
    "  for i = 1, self.n do t[i] = self.kids[i] end\n"
    "  return t\n"
    "end\n"
    "-- the failures g:wait met (its first raised), in the children's order\n"
    "function G:errors()\n"
    "  check_self(self, G, \"group\", \"errors\")\n"
    "  local t = {}\n"
    "  for i = 1, #self.errs do t[i] = self.errs[i] end\n"
    "  return t\n"
    "end\n"
    "G.__close = function(g) g:cancel() end\n",
  NULL
};

/* t: the task table; shared: the table the Lua sides share; may raise */
void lw_group_open(lua_State *L, int t, int shared) {
  t = lw_absindex(L, t);
  shared = lw_absindex(L, shared);
  lua_pushvalue(L, t);
  lw_sched_pushbox(L);
  lws_pushguard(L);
  lw_sched_pushbox(L);
  lua_pushcclosure(L, l_status, 1);
  lua_pushvalue(L, shared);
  lua_pushcfunction(L, l_failtrace);
  lw_lua_chunk(L, code, 5);
}
