/*
** fuzz_sync.c — the fuzzer's model of task.channel, task.semaphore and
** timeouts on task.await (issue 18).  Every input the fuzzer runs
** through fuzz_lw.c's scheduler model runs here too, read as another
** program: tasks that send, receive, acquire (and hold, then release) or
** await with a timeout, cancelled, stepped and timed on a fake clock by
** the harness.  The model is a set of properties the documentation
** promises, checked after every operation and at the end:
**
**   - no message is invented, received twice or lost: every value whose
**     send returned true is received, or still buffered at the end;
**   - FIFO: values are received in the order they were sent, as long as
**     no receiver was cancelled (a value handed to a receiver cancelled
**     before it ran goes back to the front: docs/guide.md);
**   - permits are conserved: when nothing is queued to run, the count
**     plus the permits held plus those of holders cancelled while they
**     held one (they never release) is n, and holders never exceed n;
**   - a timed-out wait returns no sooner than its deadline, and a
**     cancelled or timed-out waiter leaves no queued entry behind: every
**     queued entry belongs to a task still waiting;
**   - at the end nothing stays tracked.
**
** The property checks are Lua code on the task library (a model made of
** counters and sets: no channel, no scheduler of its own); any
** difference aborts, as fuzz_lw.c's do.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "luaweave.h"

#define NT 24 /* tasks over the whole run */

static const char *const MODEL =
  "local task, lw, cap, n = ...\n"
  "local ch, sem = task.channel(cap), task.semaphore(n)\n"
  "local T, kind, held = {}, {}, {}\n"
  "local sent, ok_sent, got = {}, {}, {}\n"
  "local nextv, rseq, rcancel, holders, lost = 0, 0, false, 0, 0\n"
  "local recvd = {} -- {seq, v}: what each recv call received, by call order\n"
  "local err\n"
  "local function bad(m) err = err or m end\n"
  "local P = {}\n"
  "function P.send()\n"
  "  nextv = nextv + 1\n"
  "  local v = nextv\n"
  "  sent[v] = true\n"
  "  local r, e = ch:send(v)\n"
  "  if r == true then ok_sent[v] = true\n"
  "  elseif e ~= 'closed' then bad('send: ' .. tostring(r) .. ' ' .. tostring(e)) end\n"
  "end\n"
  "local function timed(t0, sec, what)\n"
  "  if not sec or task.clock() < t0 + sec then bad(what .. ': timeout before its deadline') end\n"
  "end\n"
  "function P.recv(sec)\n"
  "  local t0 = task.clock()\n"
  "  rseq = rseq + 1\n"
  "  local seq = rseq\n"
  "  local v, e = ch:recv(sec)\n"
  "  if v == nil then\n"
  "    if e == 'timeout' then timed(t0, sec, 'recv')\n"
  "    elseif e ~= 'closed' then bad('recv: ' .. tostring(e)) end\n"
  "    return\n"
  "  end\n"
  "  if not sent[v] then bad('recv: value never sent: ' .. tostring(v)) end\n"
  "  if got[v] then bad('recv: value received twice: ' .. v) end\n"
  "  got[v] = true\n"
  /* FIFO: a recv called earlier receives an earlier value (a receiver
     handed a value may run after a later one that took the next from
     the buffer: the order of the calls counts, not of the returns) */
  "  if not rcancel then\n"
  "    for i = 1, #recvd do\n"
  "      local r = recvd[i]\n"
  "      if (r[1] < seq) ~= (r[2] < v) then\n"
  "        bad('recv #' .. seq .. ' got ' .. v .. ', recv #' .. r[1] .. ' got ' .. r[2] .. ' (FIFO)')\n"
  "      end\n"
  "    end\n"
  "    recvd[#recvd + 1] = { seq, v }\n"
  "  end\n"
  "end\n"
  "function P.acquire(sec, hold, id)\n"
  "  local t0 = task.clock()\n"
  "  local r, e = sem:acquire(sec)\n"
  "  if r ~= true then\n"
  "    if e == 'timeout' then timed(t0, sec, 'acquire') else bad('acquire: ' .. tostring(e)) end\n"
  "    return\n"
  "  end\n"
  "  held[id] = true\n"
  "  holders = holders + 1\n"
  "  if holders > n then bad('semaphore: ' .. holders .. ' holders of ' .. n) end\n"
  "  task.wait(hold)\n"
  "  held[id] = nil\n"
  "  holders = holders - 1\n"
  "  sem:release()\n"
  "end\n"
  "function P.await(sec, a, id)\n"
  "  local target = T[a]\n"
  "  if target == nil or a == id then return end\n"
  "  local t0 = task.clock()\n"
  "  local r, e = task.await(target, sec)\n"
  "  if r == nil then\n"
  "    if e == 'timeout' then timed(t0, sec, 'await') else bad('await: ' .. tostring(e)) end\n"
  "  end\n"
  "end\n"
  "local ctl = {}\n"
  /* a task that cancels another from inside a step: between a wake and
     the woken task's turn (a permit or a value handed, not yet taken) */
  "function P.cancel(sec, b, id)\n"
  "  task.wait(sec)\n"
  "  if b ~= id then ctl.cancel(b) end\n"
  "end\n"
  "function ctl.spawn(id, k, sec, b)\n"
  "  kind[id] = k\n"
  "  T[id] = task.spawn(P[k], sec, b, id)\n"
  "end\n"
  /* a holder cancelled while it holds never releases: its permit is
     lost, which the model counts (cleanup is the user's: pcall or
     <close>); a receiver cancelled may have been handed a value that
     goes back to the front: FIFO is no longer promised */
  "function ctl.cancel(id)\n"
  "  local co = T[id]\n"
  "  if co == nil then return end\n"
  "  local st = lw.status(co)\n"
  "  if st == 'returned' or st == 'failed' or st == 'cancelled' then return end\n"
  "  if kind[id] == 'recv' then rcancel = true end\n"
  "  task.cancel(co)\n"
  "  if held[id] then held[id] = nil; holders = holders - 1; lost = lost + 1 end\n"
  "end\n"
  "function ctl.close() ch:close() end\n"
  /* the entries still queued in a primitive's FIFO (lw_lua_sync.c) */
  "local function queued(q, what)\n"
  "  for i = q.h, q.t do\n"
  "    local e = q[i]\n"
  "    if e and e.state == 'queued' then\n"
  "      local st = e.co and lw.status(e.co)\n"
  "      if st ~= 'yielded' then bad(what .. ': a queued entry of a ' .. tostring(st) .. ' task') end\n"
  "    end\n"
  "  end\n"
  "end\n"
  "function ctl.check(quiet)\n"
  "  queued(ch.rq, 'channel receivers'); queued(ch.sq, 'channel senders')\n"
  "  queued(sem.q, 'semaphore')\n"
  "  if quiet and sem:count() + holders + lost ~= n then\n"
  "    bad('semaphore: count ' .. sem:count() .. ' + held ' .. holders .. ' + lost ' .. lost .. ' ~= ' .. n)\n"
  "  end\n"
  "  return err\n"
  "end\n"
  /* the end: every task cancelled and run out; the buffer drained
     (buffered values can be received outside a task) */
  "function ctl.finish()\n"
  "  while ch:len() > 0 do\n"
  "    local v = ch:recv()\n"
  "    if got[v] then bad('drain: value received twice: ' .. v) end\n"
  "    for i = 1, #recvd do\n"
  "      if not rcancel and recvd[i][2] > v then bad('drain: ' .. v .. ' left behind ' .. recvd[i][2]) end\n"
  "    end\n"
  "    got[v] = true\n"
  "  end\n"
  "  for v in pairs(ok_sent) do\n"
  "    if not got[v] then bad('value ' .. v .. ' sent (true) but lost') end\n"
  "  end\n"
  "  for i = 1, #T do T[i] = nil end\n"
  "  return err\n"
  "end\n"
  "return ctl\n";

static double now;

static double fake_clock(void *ud) {
  (void)ud;
  return now;
}

static void on_error(void *ud, lua_State *co, const char *msg) {
  (void)ud; (void)co;
  fprintf(stderr, "fuzz_sync: a task failed: %s\n", msg ? msg : "?");
  abort();
}

static void check(lua_State *L, int ctl, const char *f, int quiet) {
  lua_getfield(L, ctl, f);
  lua_pushboolean(L, quiet);
  if (lua_pcall(L, 1, 1, 0) != 0 || !lua_isnil(L, -1)) {
    fprintf(stderr, "fuzz_sync: %s: %s\n", f, lua_tostring(L, -1));
    abort();
  }
  lua_pop(L, 1);
}

/* ctl[f](...) with nargs values on the stack */
static void call(lua_State *L, int ctl, const char *f, int nargs) {
  lua_getfield(L, ctl, f);
  lua_insert(L, -1 - nargs);
  if (lua_pcall(L, nargs, 0, 0) != 0) {
    fprintf(stderr, "fuzz_sync: %s: %s\n", f, lua_tostring(L, -1));
    abort();
  }
}

/* a wait's seconds from x: nil (none) or 0..2 */
static void push_sec(lua_State *L, unsigned x) {
  if (x % 4 == 3) lua_pushnil(L);
  else lua_pushinteger(L, (lua_Integer)(x % 4));
}

void lwfz_sync(const uint8_t *p, size_t len);

void lwfz_sync(const uint8_t *p, size_t len) {
  static const char *const kinds[] = {"send", "recv", "acquire", "await"};
  lua_State *L = luaL_newstate();
  lw_sched *S;
  size_t i = 0;
  int ctl, nt = 0, k;
  if (L == NULL) return;
  luaL_openlibs(L);
  now = 0;
  S = lw_sched_open(L);
  if (S == NULL) abort();
  lw_sched_setclock(S, fake_clock, NULL);
  lw_sched_onerror(S, on_error, NULL);
  if (luaL_loadbuffer(L, MODEL, strlen(MODEL), "=fuzz_sync") != 0) abort();
  luaopen_luaweave_task(L);
  luaopen_luaweave(L);
  lua_pushinteger(L, len > 0 ? p[0] % 3 : 0);     /* capacity */
  lua_pushinteger(L, len > 1 ? p[1] % 3 + 1 : 1); /* permits */
  if (lua_pcall(L, 4, 1, 0) != 0) abort();
  ctl = lua_gettop(L);
  for (i = 2; i + 1 < len; i += 2) {
    unsigned op = p[i] % 12, x = p[i + 1];
    if (getenv("FUZZ_TRACE") != NULL)
      fprintf(stderr, "sync op %u x %u (now %g)\n", op, x, now);
    if (getenv("FUZZ_TRACE") != NULL)
      fprintf(stderr, "sync op %u x %u (now %g)\n", op, x, now);
    switch (op) {
      case 0: case 1: case 2: case 3:
        if (nt == NT) break;
        lua_pushinteger(L, ++nt);
        lua_pushstring(L, kinds[op]);
        push_sec(L, x);
        lua_pushinteger(L, op == 3 ? (lua_Integer)(x / 4 % NT + 1)
                                   : (lua_Integer)(x / 4 % 3));
        call(L, ctl, "spawn", 4);
        break;
      case 4: case 5:
        lua_pushinteger(L, (lua_Integer)(x % NT + 1));
        call(L, ctl, "cancel", 1);
        break;
      case 6: case 7: case 8: lw_sched_step(S); break;
      case 9: now += x % 3; break;
      case 10:
        if (x % 8 == 0) {
          call(L, ctl, "close", 0);
        } else if (nt < NT) {
          lua_pushinteger(L, ++nt);
          lua_pushliteral(L, "cancel");
          lua_pushinteger(L, (lua_Integer)(x % 8 % 3));
          lua_pushinteger(L, (lua_Integer)(x / 8 % NT + 1));
          call(L, ctl, "spawn", 4);
        }
        break;
      default: lua_gc(L, LUA_GCCOLLECT, 0); break;
    }
    check(L, ctl, "check", lw_sched_ready(S) == 0);
  }
  /* the end: cancel every task, run what is left (timers included) */
  for (k = 1; k <= nt; k++) {
    lua_pushinteger(L, k);
    call(L, ctl, "cancel", 1);
  }
  now += 1000;
  for (k = 0; k < 8 && lw_sched_next(S) == 0; k++) lw_sched_step(S);
  check(L, ctl, "check", 1);
  check(L, ctl, "finish", 1);
  lua_pop(L, 1);
  lua_gc(L, LUA_GCCOLLECT, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  if (lw_sched_ready(S) != 0 || lw_store_count(lw_store_open(L)) != 0) {
    fprintf(stderr, "fuzz_sync: work left or threads tracked after the end\n");
    abort();
  }
  lua_close(L);
}
