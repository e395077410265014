/*
** lw_lua_info.c — task.info(co) and task.list(): what a task waits on,
** since when, until when, its group and where it is suspended.  The
** scheduler's side (the task state, a timer's start and deadline, the
** tasks it knows) is read here in C; the Lua side adds the waits of the
** synchronization primitives and the groups (lw_lua_sync.c,
** lw_lua_group.c), which share one table with it.
*/
#include "lw_sched.h"
#include "lw_compat.h"


static lw_sched *box_sched(lua_State *L) {
  lw_sched *S = *(lw_sched **)lua_touserdata(L, lua_upvalueindex(1));
  return (S != NULL && !lws_gone(S)) ? S : NULL;
}

/* the live timer of co's current suspension (ticket), or NULL: O(timers),
   for introspection only */
static const lw_timer *find_timer(lw_sched *S, lua_State *co, unsigned ticket) {
  lw_timerq *q = &S->tq;
  size_t i;
  for (i = 0; i < q->hlen; i++)
    if (q->heap[i].e.co == co && q->heap[i].e.ticket == ticket) return &q->heap[i];
  for (i = 0; i < q->zlen; i++) {
    const lw_timer *t = &q->zq[(q->zhead + i) & (q->zcap - 1)];
    if (t->e.co == co && t->e.ticket == ticket) return t;
  }
  return NULL;
}

/* state(co) -> what the scheduler has co wait on ("ready", "running",
   "timer", "await", "async") or nil, then since, deadline (or nil) */
static int l_state(lua_State *L) {
  static const char *const names[] = {NULL, "ready", "running", "timer",
                                      "await", "async"};
  lw_sched *S = box_sched(L);
  lua_State *co = lua_tothread(L, 1);
  lw_rec *r = (S != NULL && co != NULL) ? lws_task_rec(S, co) : NULL;
  const lw_timer *t;
  if (r == NULL || r->task > T_ASYNC) return 0;
  t = (r->task == T_WAIT || r->task == T_AWAIT || r->task == T_READY)
          ? find_timer(S, co, r->ticket) : NULL;
  /* a ready task with a live timer is a task.delay's, not yet due */
  lua_pushstring(L, r->task == T_READY && t != NULL ? "timer" : names[r->task]);
  if (t != NULL) {
    lua_pushnumber(L, (lua_Number)t->e.t0);
    lua_pushnumber(L, (lua_Number)t->due);
    return 3;
  }
  return 1;
}

/* tasks() -> the threads the scheduler has as tasks.  Each is anchored
   (queued, timed, awaited, async) or running, so alive */
static int l_tasks(lua_State *L) {
  lw_sched *S = box_sched(L);
  lw_slot *sl;
  size_t i = 0;
  int n = 0;
  lua_newtable(L);
  if (S == NULL) return 1;
  while ((sl = lw_map_next(&lws_store(S)->map, &i)) != NULL) {
    if (sl->rec.task == 0) continue;
    lws_push_thread(L, (lua_State *)sl->key);
    lua_rawseti(L, -2, ++n); /* may allocate: the map stays, i is good */
  }
  return 1;
}

/* the registry key of shared.stuck (below) */
static const char STUCK_KEY = 'S';

/* push ": thread: 0x... awaits at src:line; thread: 0x... in a channel's
   'recv' at src:line; ..." for (up to 10 of) the tasks that wait, in the
   scheduler or in a synchronization primitive, for lw.run's deadlock
   error ("" when none); returns how many wait.  May raise */
int lw_push_waiters(lua_State *L, lw_sched *S) {
  int n;
  luaL_checkstack(L, 3, "deadlock");
  lw_rawgetp(L, LUA_REGISTRYINDEX, &STUCK_KEY);
  if (!lua_isfunction(L, -1)) { /* no task library: no message */
    lua_pop(L, 1);
    lua_pushliteral(L, "");
    return (int)lw_sched_waiting(S);
  }
  lua_call(L, 0, 2);
  n = (int)lua_tointeger(L, -2);
  lua_remove(L, -2);
  return n;
}

static const char *const code[] = {
    "local task, shared, state, tasks = ...\n"
    "local type, error, pairs, tostring = type, error, pairs, tostring\n"
    "local traceback = debug.traceback\n"
    "local running = coroutine.running\n"
    "-- task.info(co): a table {status, waiting, since, deadline, group,\n"
    "-- traceback}; waiting says what co waits on: \"timer\", \"await\", \"async\",\n"
    "-- \"channel\", \"event\", \"semaphore\", \"yield\" (a plain coroutine.yield),\n"
    "-- \"ready\" (queued to run), \"running\", or nil once it has ended\n"
    "function task.info(co)\n"
    "  if type(co) ~= \"thread\" then\n"
    "    error(\"bad argument #1 to 'info' (thread expected, got \" .. type(co) .. \")\", 2)\n"
    "  end\n"
    "  local st = shared.status(co)\n"
    "  local e = shared.waiting[co]\n"
    "  local w, since, deadline\n"
    "  if e and e.state == \"queued\" then\n"
    "    w, since, deadline = e.what, e.since, e.deadline\n"
    "  else\n"
    "    w, since, deadline = state(co)\n"
    "  end\n"
    "  if w == nil and (st == \"yielded\" or st == \"pending\" or st == \"untracked\") and\n"
    "     coroutine.status(co) == \"suspended\" then\n"
    "    w = \"yield\"\n"
    "  end\n"
    "  if co == running() then w = \"running\" end\n"
    "  return { status = st, waiting = w, since = since, deadline = deadline,\n"
    "           group = shared.groupof[co], traceback = traceback(co) }\n"
    "end\n"
    "-- where co is suspended: the first line of a Lua function past the task\n"
    "-- library's own code and C functions (pcall), \"?\" if none\n"
    "local getinfo = debug.getinfo\n"
    "local function where(co)\n"
    "  local level = 0\n"
    "  while true do\n"
    "    local ar = getinfo(co, level, \"Sl\")\n"
    "    if ar == nil then return \"?\" end\n"
    "    if ar.currentline > 0 and ar.source ~= \"=luaweave.task\" then\n"
    "      return ar.short_src .. \":\" .. ar.currentline\n"
    "    end\n"
    "    level = level + 1\n"
    "  end\n"
    "end\n"
    "local article = { channel = \"a channel\", event = \"an event\", semaphore = \"a semaphore\" }\n"
    "-- for lw.run's deadlock error: how many tasks wait, and the first ten,\n"
    "-- each with what it waits in and the user's line\n"
    "function shared.stuck()\n"
    "  local parts, n = {}, 0\n"
    "  local function add(co, what)\n"
    "    n = n + 1\n"
    "    if n <= 10 then parts[n] = tostring(co) .. \" \" .. what .. \" at \" .. where(co) end\n"
    "  end\n"
    "  local ts = tasks()\n"
    "  for i = 1, #ts do\n"
    "    if state(ts[i]) == \"await\" then add(ts[i], \"awaits\") end\n"
    "  end\n"
    "  for co, e in pairs(shared.waiting) do\n"
    "    if e.state == \"queued\" then\n"
    "      add(co, \"in \" .. article[e.what] .. \"'s '\" .. e.fname .. \"'\")\n"
    "    end\n"
    "  end\n"
    "  return n, n > 0 and \": \" .. table.concat(parts, \"; \") or \"\"\n"
    "end\n"
    "-- task.list(): the live tasks (scheduled, waiting or running) and the\n"
    "-- threads waiting in a channel, an event or a semaphore\n"
    "function task.list()\n"
    "  local out, seen = tasks(), {}\n"
    "  for i = 1, #out do seen[out[i]] = true end\n"
    "  for co, e in pairs(shared.waiting) do\n"
    "    if not seen[co] and e.state == \"queued\" then\n"
    "      out[#out + 1] = co\n"
    "      seen[co] = true\n"
    "    end\n"
    "  end\n"
    "  return out\n"
    "end\n",
  NULL
};

/* t: the task table, shared: the table the Lua sides share; may raise */
void lw_info_open(lua_State *L, int t, int shared) {
  t = lw_absindex(L, t);
  shared = lw_absindex(L, shared);
  lua_pushvalue(L, t);
  lua_pushvalue(L, shared);
  lw_sched_pushbox(L);
  lua_pushcclosure(L, l_state, 1);
  lw_sched_pushbox(L);
  lua_pushcclosure(L, l_tasks, 1);
  lw_lua_chunk(L, code, 4);
  lua_getfield(L, shared, "stuck");
  lw_rawsetp(L, LUA_REGISTRYINDEX, &STUCK_KEY);
}
