/*
** fuzz_lw.c — differential fuzzer: luaweave against a model.
**
** The input is a program of operations on a handful of raw coroutines
** (the store: track, untrack, resume, result, take, cancel, reset, drop,
** GC) and of scheduler tasks (spawn, defer, delay, cancel, recycle, step,
** advance the clock, forget).  Tasks run little programs of their own
** (wait, await, any, cancel, spawn, defer, delay, return, error) and log
** what they see.  The same operations run against a model made of plain
** arrays, with no pointers and no hashing; any difference aborts.
**
** The model is the documented behaviour (docs/guide.md, luaweave.h):
** when it and luaweave disagree, one of them is wrong, and either the
** code or this file is fixed.  Lua versions differ only where the API
** says so (resetting and recycling need 5.4).
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "luaweave.h"
#include "lw_compat.h"
#include "lw_store.h"
#include "lw_sched.h"

#define NSLOT 8     /* raw coroutines */
#define NTASK 48    /* scheduler tasks, over the whole run */
#define PLEN 4      /* instructions per task program */
#define MAXLOG 4096

static void fail(const char *what, const char *a, const char *b) {
  fprintf(stderr, "fuzz_lw: %s\n  luaweave: %s\n  model:    %s\n", what,
          a ? a : "", b ? b : "");
  abort();
}

static void expect_int(const char *what, long got, long want) {
  char g[32], w[32];
  if (got == want) return;
  snprintf(g, sizeof g, "%ld", got);
  snprintf(w, sizeof w, "%ld", want);
  fail(what, g, w);
}

/* ------------------------------------------------------------------ */
/* input                                                               */

typedef struct input { const uint8_t *p; size_t n; } input;

static unsigned byte(input *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

/* ------------------------------------------------------------------ */
/* the model: raw coroutines                                           */

enum { CO_FRESH, CO_YIELDED, CO_DEAD };
enum { R_NONE, R_YIELD, R_RETURN, R_ERROR, R_CANCEL, R_UNKNOWN };
/* the thread's Lua status */
enum { ST_OK, ST_YIELD, ST_ERR };

typedef struct mslot {
  int live;          /* we hold the thread */
  int tracked;
  int costate;       /* CO_* as Lua sees it */
  int lst, top;      /* ST_*, and its stack height */
  int errv;          /* ST_ERR: the error object's number on the stack */
  int rkind;         /* R_*: the recorded result */
  int nv, v[3];      /* its values (R_ERROR: v[0] is the error's number) */
  int vals;          /* R_ERROR: the error is kept off the stack (close) */
  int rtop;          /* R_ERROR (vals 0), R_CANCEL: the stack height then
                        (after an error Lua leaves what it leaves: read) */
  int kept;          /* R_CANCEL of a yield Lua cannot close (< 5.4) */
} mslot;

/* ------------------------------------------------------------------ */
/* the model: the scheduler                                            */

/* task program instructions: {op, a, b}; I_NOP with b == 1 wakes T[a]
   early (task.spawn(T[a], a)): that way the instruction set, and with it
   the seed corpus, keeps its meaning */
enum { I_WAIT, I_AWAIT, I_ANY, I_CANCEL, I_SPAWN, I_DEFER, I_DELAY,
       I_RETURN, I_ERROR, I_NOP, I_COUNT };
/* task states, as the scheduler keeps them */
enum { TS_NONE, TS_READY, TS_RUNNING, TS_WAIT, TS_AWAIT, TS_ENDED };
/* entry kinds, and how a task is resumed out of turn: E_EARLY with its
   own id as the argument (task.spawn, coroutine.resume, a raw resume),
   E_POKE by a probe */
enum { E_START, E_WAIT, E_AWAITED, E_EARLY, E_POKE };
/* who drives a resumption: the scheduler (task.spawn, a step), a
   recorded resumption that is not the scheduler's (lw_resume, an
   installed coroutine.resume), or a raw one (lua_resume, coroutine.resume
   without lw.install()) */
enum { D_SCHED, D_REC, D_RAW };

#define PARK 1000000 /* a park's wait: no run reaches it */
#define NREG (NTASK * PLEN)

typedef struct mtask {
  int exists;        /* given a program */
  int visible;       /* T[id] is set: others can name it */
  int forgotten;     /* T[id] cleared by the harness (forget, recycle) */
  int pend;          /* failed, nobody awaited it yet: reported at the
                        end of the step unless someone awaits it first */
  int state;         /* TS_* */
  int started;
  int pc;            /* next instruction */
  unsigned susp;     /* the live suspension's ticket */
  int cancelflag;    /* cancelled while running: at its next yield */
  int result;        /* R_RETURN, R_ERROR (a: 1000 = await-self), R_CANCEL,
                        R_UNKNOWN (ended where luaweave could not see it,
                        or reset: its result is gone) */
  int ra, rb;
  int untracked;     /* R_UNKNOWN after lw_reset, until an await tracks it */
  int errstack;      /* its Lua status is an error (lua_closethread says so) */
  int parked;        /* in the park a probe sent it to */
  int rawpend;       /* suspended by a raw resumption: its record says
                        pending until a recorded one runs it */
  int t0;            /* when its wait began */
  int prog[PLEN][3];
  int nwaiters;      /* registrations in its waiter list */
  int wtask[NREG], wsusp[NREG], wany[NREG];
} mtask;

/* rk, ra, rb: the target's result, read when the awaiter was woken */
typedef struct ment { int task, kind, target, isany, rk, ra, rb; unsigned susp; } ment;
typedef struct mtimer { int due; unsigned long seq; ment e; } mtimer;

typedef struct model {
  mslot slot[NSLOT];
  mtask t[NTASK];
  int ntask;
  ment q[8 * NREG + 64];
  int qh, qn;        /* a plain array used as a FIFO, never wrapped */
  mtimer h[8 * NREG + 64];
  int hn;
  unsigned long seq;
  unsigned ticket;
  int now;
  int chain[NTASK + 2], drv[NTASK + 2], nchain; /* the running task and
                        what resumed it; drv: who drove each (D_*) */
  int stepping;
  int installed;     /* lw.install() is in force */
  int errors;
  char log[MAXLOG][128];
  int nlog;
  int steps;         /* resumptions in the running step */
  int lost;          /* the model cannot tell what follows (see lose());
                        from then on only the invariants, the sanitizers
                        and the end state are checked */
} model;

static model M;

/* ------------------------------------------------------------------ */
/* the real side                                                       */

typedef struct real {
  lua_State *L;
  lw_store *s;
  lw_sched *S;
  int slots;        /* registry ref: table of raw coroutines */
  int env;          /* registry ref: the harness table of the Lua side */
  int is54;
  long errors;
} real;

static real R;
static int trace = -1;

static const char *HARNESS =
  "local task, P, T, ID, LOG, lw, fz = ...\n"
  "setmetatable(ID, {__mode = 'k'})\n"
  "local function log(s) LOG[#LOG + 1] = s end\n"
  "local function fmt(...)\n"
  "  local t = {}\n"
  "  for i = 1, select('#', ...) do\n"
  "    local v = select(i, ...)\n"
  "    if v == true then v = 'T' elseif v == false then v = 'F'\n"
  "    elseif type(v) == 'thread' then v = '#' .. tostring(ID[v])\n"
  "    else v = (tostring(v):gsub('^[%w_]+:%d+: ', '')) end\n"
  "    t[i] = v\n"
  "  end\n"
  "  return table.concat(t, ',')\n"
  "end\n"
  "local unpack = unpack or table.unpack\n"
  "local function pk(...) return {n = select('#', ...), ...} end\n"
  "local PARK = 1e6\n"
  /* an await cut short by a probe (below) parks: a wait no timer of the
     run ever ends */
  "local function poked(id, v)\n"
  "  if v ~= 'P' then return false end\n"
  "  log(id .. ':p'); task.wait(PARK); return true\n"
  "end\n"
  "local run\n"
  "local function made(a, co) T[a] = co; ID[co] = a end\n"
  "function run(id)\n"
  "  made(id, coroutine.running())\n"
  "  local p = P[id]\n"
  "  for i = 1, #p, 3 do\n"
  "    local op, a, b = p[i], p[i + 1], p[i + 2]\n"
  "    if op == 0 then\n"
  "      local e = task.wait(a)\n"
  "      log(id .. ':w:' .. (type(e) == 'number' and string.format('%d', e) or tostring(e)))\n"
  "    elseif op == 1 then\n"
  "      if T[a] then\n"
  "        local r = pk(task.await(T[a]))\n"
  "        if not poked(id, r[1]) then log(id .. ':a:' .. fmt(unpack(r, 1, r.n))) end\n"
  "      else log(id .. ':a:-') end\n"
  "    elseif op == 2 then\n"
  "      local r\n"
  "      if not (T[a] and T[b]) then log(id .. ':y:-')\n"
  "      elseif a == b then r = pk(task.any(T[a]))\n"
  "      else r = pk(task.any(T[a], T[b])) end\n"
  "      if r and not poked(id, r[1]) then log(id .. ':y:' .. fmt(unpack(r, 1, r.n))) end\n"
  "    elseif op == 3 then\n"
  "      if T[a] then task.cancel(T[a]); log(id .. ':c:' .. a)\n"
  "      else log(id .. ':c:-') end\n"
  "    elseif op == 4 then made(a, task.spawn(run, a)); log(id .. ':s:' .. a)\n"
  "    elseif op == 5 then made(a, task.defer(run, a)); log(id .. ':d:' .. a)\n"
  "    elseif op == 6 then made(a, task.delay(b, run, a)); log(id .. ':l:' .. a)\n"
  "    elseif op == 7 then do return a, b end\n"
  "    elseif op == 8 then error('e' .. a, 0)\n"
  /* wake a task early: task.spawn of a waiting, awaiting or not yet
     started task (its own id as the argument); dead or running: raises */
  "    elseif op == 9 and b == 1 then\n"
  "      if T[a] then log(id .. ':k:' .. a .. (pcall(task.spawn, T[a], a) and '' or 'E'))\n"
  "      else log(id .. ':k:-') end\n"
  "    end\n"
  "  end\n"
  "  return id\n"
  "end\n"
  "local function body(op, a, b)\n"
  "  while true do\n"
  "    if op == 1 then op, a, b = coroutine.yield(a, b)\n"
  "    elseif op == 2 then return a, b, a\n"
  "    elseif op == 3 then error('x' .. a, 0)\n"
  "    else op, a, b = coroutine.yield() end\n"
  "  end\n"
  "end\n"
  /* Probes: garbage whose finalizer wakes task w early (task.spawn) if,
     when it runs, w awaits target a and a's end is recorded: only while
     a's end wakes its awaiters, before w's turn (a woken w no longer
     awaits).  It logs first, so that the model learns it acted; it does
     nothing otherwise, and re-arms itself a few times. */
  "local ALIVE = true\n"
  "local function mkgc(f)\n"
  "  if newproxy then local u = newproxy(true); getmetatable(u).__gc = f\n"
  "  else setmetatable({}, {__gc = f}) end\n"
  "end\n"
  "local probe\n"
  "function probe(w, a, n)\n"
  "  mkgc(function()\n"
  "    if not ALIVE then return end\n"
  "    local tw, ta = T[w], T[a]\n"
  "    if tw and ta and fz.awaits(tw, ta) then\n"
  "      log('g:' .. w .. ':' .. a); task.spawn(tw, 'P')\n"
  "    elseif n > 0 then probe(w, a, n - 1) end\n"
  "  end)\n"
  "end\n"
  "local ctl = {}\n"
  "function ctl.probe(w, a, n) probe(w, a, n); local g = {} for i = 1, 20 do g[i] = {} end end\n"
  "function ctl.dead() ALIVE = false end\n"
  "function ctl.gcmode(eager)\n"
  "  if _VERSION == 'Lua 5.4' then collectgarbage('incremental', eager and 1 or 200, eager and 1000 or 100)\n"
  "  else collectgarbage('setpause', eager and 1 or 200); collectgarbage('setstepmul', eager and 1000 or 200) end\n"
  "end\n"
  "function ctl.install(on) if on then lw.install() else lw.uninstall() end end\n"
  /* coroutine.resume and close as the program sees them (lw.install()
     swaps them): ok or not, and the error message */
  "function ctl.resume(co, ...)\n"
  "  local r = {coroutine.resume(co, ...)}\n"
  "  return r[1], (not r[1]) and tostring(r[2]) or nil\n"
  "end\n"
  "function ctl.close(co)\n"
  "  local ok, a, b = pcall(coroutine.close, co)\n"
  "  if not ok then return 'E' end\n"
  "  return a and 'T' or 'F'\n"
  "end\n"
    "return run, body, ctl\n";

static double fake_clock(void *ud) {
  (void)ud;
  return (double)M.now;
}

static void on_error(void *ud, lua_State *co, const char *msg) {
  (void)ud; (void)co; (void)msg;
  R.errors++;
}

/* push env[k] (k: "run", "body", "P", "T", "ID", "LOG") */
static void push_env(const char *k) {
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.env);
  lua_getfield(R.L, -1, k);
  lua_remove(R.L, -2);
}

/* ------------------------------------------------------------------ */
/* the store part                                                      */

static lua_State *slot_thread(int i) {
  lua_State *co;
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.slots);
  lua_rawgeti(R.L, -1, i + 1);
  co = lua_tothread(R.L, -1);
  lua_pop(R.L, 2);
  return co;
}

static void slot_new(int i) {
  lua_State *co;
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.slots);
  co = lua_newthread(R.L);
  push_env("body");
  lua_xmove(R.L, co, 1);
  lua_rawseti(R.L, -2, i + 1);
  lua_pop(R.L, 1);
  memset(&M.slot[i], 0, sizeof M.slot[i]);
  M.slot[i].live = 1;
  M.slot[i].costate = CO_FRESH;
  M.slot[i].lst = ST_OK;
  M.slot[i].top = 1; /* its function */
}

static void slot_drop(int i) {
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.slots);
  lua_pushnil(R.L);
  lua_rawseti(R.L, -2, i + 1);
  lua_pop(R.L, 1);
  M.slot[i].live = 0;
}

/* The store checks a record against its thread (status, stack top)
   before it serves it, and drops a stale one (the guide: "a thread
   resumed or reset behind luaweave's back ... is caught by validation"):
   the record reads pending then.  A yield is recorded with its values
   on top of the stack (and nothing under them: body yields from its
   first frame); a return keeps nothing on a dead, empty thread; an error
   raised stays on the thread's stack (vals 0), one kept by close or
   cancel lives off it (vals 1) on a dead, empty thread.  The model does
   what the store does, at the same moments: at every store call on the
   slot (each operation on a slot ends with one, check_slot_status). */
static void mvalidate(mslot *m) {
  int ok;
  if (!m->tracked) return;
  switch (m->rkind) {
    case R_YIELD: ok = m->lst == ST_YIELD && m->top == m->nv; break;
    case R_RETURN: ok = m->lst == ST_OK && m->top == 0; break;
    case R_ERROR:
      ok = m->vals ? m->lst == ST_OK && m->top == 0
                   : m->lst == ST_ERR && m->top == m->rtop;
      break;
    case R_CANCEL: /* as cancel left it: a new life is not */
      ok = m->kept ? m->lst == ST_YIELD
                   : m->lst != ST_YIELD && m->top == m->rtop &&
                     (m->lst != ST_OK || m->top == 0);
      break;
    default: ok = 1; /* pending */
  }
  if (!ok) {
    m->rkind = R_NONE;
    m->nv = 0;
    m->vals = 0;
  }
}

static int model_status(mslot *m) {
  mvalidate(m);
  if (!m->tracked) return LW_UNTRACKED;
  switch (m->rkind) {
    case R_NONE: return LW_PENDING;
    case R_YIELD: return LW_YIELDED;
    case R_RETURN: return LW_RETURNED;
    case R_ERROR: return LW_FAILED;
    default: return LW_CANCELLED;
  }
}

/* the model's lw_result of slot i, formatted as the harness formats */
static void model_result(mslot *m, char *buf, size_t len) {
  mvalidate(m);
  switch (m->rkind) {
    case R_NONE: snprintf(buf, len, "nil"); break;
    case R_YIELD:
    case R_RETURN:
      if (m->nv == 0) snprintf(buf, len, "T");
      else if (m->nv == 2) snprintf(buf, len, "T,%d,%d", m->v[0], m->v[1]);
      else snprintf(buf, len, "T,%d,%d,%d", m->v[0], m->v[1], m->v[2]);
      break;
    case R_ERROR: snprintf(buf, len, "F,x%d", m->v[0]); break;
    default: snprintf(buf, len, "F,cancelled"); break;
  }
}

/* the n values on L's top, formatted "T,1,2" and popped */
static void real_fmt(lua_State *L, int n, char *buf, size_t len) {
  int i, base = lua_gettop(L) - n;
  size_t k = 0;
  buf[0] = 0;
  for (i = 1; i <= n && k < len; i++) {
    int t = lua_type(L, base + i);
    const char *sep = i > 1 ? "," : "";
    if (t == LUA_TBOOLEAN)
      k += snprintf(buf + k, len - k, "%s%s", sep, lua_toboolean(L, base + i) ? "T" : "F");
    else if (t == LUA_TNUMBER)
      k += snprintf(buf + k, len - k, "%s%d", sep, (int)lua_tonumber(L, base + i));
    else if (t == LUA_TSTRING)
      k += snprintf(buf + k, len - k, "%s%s", sep, lua_tostring(L, base + i));
    else
      k += snprintf(buf + k, len - k, "%s%s", sep, lua_typename(L, t));
  }
  lua_settop(L, base);
}

static void check_slot_status(int i) {
  lua_State *co = slot_thread(i);
  if (trace) {
    const mslot *m = &M.slot[i];
    fprintf(stderr, "  slot %d: tracked %d rkind %d nv %d costate %d lst %d top %d (real top %d) installed %d\n",
            i, m->tracked, m->rkind, m->nv, m->costate, m->lst, m->top, lua_gettop(co), M.installed);
  }
  int got = lw_status(R.s, co), want = model_status(&M.slot[i]);
  if (got != want) fail("lw_status of a raw coroutine", lw_status_name(got), lw_status_name(want));
}

/* what body does with (op, a, b), as Lua sees it: the thread's new
   costate, Lua status and values; the record, if `rec` */
static int body_ran(mslot *m, int op, int a, int b, int rec, int etop) {
  int n = 0;
  if (op == 0 || op == 1) {
    m->costate = CO_YIELDED;
    m->lst = ST_YIELD;
    n = op == 1 ? 2 : 0;
    m->top = n;
    if (rec) {
      m->rkind = R_YIELD;
      m->nv = n; m->v[0] = a; m->v[1] = b;
    }
  } else if (op == 2) {
    m->costate = CO_DEAD;
    m->lst = ST_OK;
    n = 3;
    m->top = 0; /* filed by the store, or cleared by the caller */
    if (rec) {
      m->rkind = R_RETURN;
      m->nv = 3; m->v[0] = a; m->v[1] = b; m->v[2] = a;
    }
  } else {
    m->costate = CO_DEAD;
    m->lst = ST_ERR;
    m->top = etop;
    m->errv = a;
    if (rec) { m->rkind = R_ERROR; m->nv = 0; m->vals = 0; m->v[0] = a; m->rtop = etop; }
  }
  return n;
}

/* can it be resumed at all: not dead, and not cancelled (a cancelled
   yield Lua cannot close before 5.4 is still suspended to Lua, and only
   luaweave refuses it: a raw resume of it is the host's error) */
static int resumable_slot(const mslot *m) {
  return m->costate != CO_DEAD && !(m->tracked && m->rkind == R_CANCEL);
}

/* lw_resume from C, or coroutine.resume from Lua (how: 0, 1) */
static void op_resume(int i, input *in, int how) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int op = (int)(byte(in) % 4), a = (int)byte(in), b = (int)byte(in);
  int nres = -1, st, want, n;
  mvalidate(m);
  /* yielded values the store does not keep are ours to clear */
  if (m->costate == CO_YIELDED &&
      (!(m->tracked && m->rkind == R_YIELD) || (how == 1 && !M.installed))) {
    lua_settop(co, 0);
    m->top = 0;
  }
  if (how == 1) {
    /* coroutine.resume from Lua: lw.install() makes it lw.resume (the
       same rules as lw_resume, the values copied to the caller); without
       it, a resumption behind luaweave's back, found by validation */
    int ok;
    const char *err;
    if (!M.installed && !resumable_slot(m)) return;
    if (trace) {
      lw_rec *rr = lw_store_find(R.s, co);
      fprintf(stderr, "  before: status %d top %d rec %d/%d/%d\n", lua_status(co), lua_gettop(co),
              rr ? (int)rr->status : -1, rr ? (int)rr->nres : -1, rr ? (int)rr->below : -1);
    }
    push_env("ctl");
    lua_getfield(R.L, -1, "resume");
    lua_pushthread(co);
    lua_xmove(co, R.L, 1);
    lua_pushinteger(R.L, op);
    lua_pushinteger(R.L, a);
    lua_pushinteger(R.L, b);
    if (lua_pcall(R.L, 4, 2, 0) != 0) fail("ctl.resume raised", lua_tostring(R.L, -1), "");
    ok = lua_toboolean(R.L, -2);
    err = lua_tostring(R.L, -1);
    if (!resumable_slot(m)) {
      expect_int("coroutine.resume of a dead or cancelled thread", ok, 0);
      if (err == NULL || strstr(err, "dead") == NULL)
        fail("coroutine.resume of a dead thread", err, "cannot resume dead coroutine");
      lua_pop(R.L, 3);
      return;
    }
    lua_pop(R.L, 3);
    if (trace) {
      lw_rec *rr = lw_store_find(R.s, co);
      fprintf(stderr, "  coroutine.resume op %d ok %d err %s: status %d top %d rec %d/%d/%d\n", op, ok, err ? err : "", lua_status(co), lua_gettop(co),
              rr ? (int)rr->status : -1, rr ? (int)rr->nres : -1, rr ? (int)rr->below : -1);
    }
    expect_int("coroutine.resume ok", ok, op != 3);
    body_ran(m, op, a, b, M.installed && m->tracked, lua_gettop(co));
    /* coroutine.resume moves what the thread gave off its stack, unless
       the store keeps it there (a recorded yield or error) */
    if (!(M.installed && m->tracked) && op != 3) m->top = 0;
    return;
  }
  lua_pushinteger(co, op);
  lua_pushinteger(co, a);
  lua_pushinteger(co, b);
  st = lw_resume(R.s, co, R.L, 3, &nres);
  if (!resumable_slot(m)) {
    expect_int("lw_resume of a dead or cancelled thread", st, LW_ESTATE);
    lua_pop(co, 3);
    return;
  }
  want = op == 2 ? LUA_OK : op == 3 ? LUA_ERRRUN : LUA_YIELD;
  expect_int("lw_resume status", st, want);
  n = body_ran(m, op, a, b, m->tracked, lua_gettop(co));
  if (op < 3) expect_int("lw_resume nres", nres, n);
  if (op == 2) {
    if (m->tracked) expect_int("returned values leave the stack", lua_gettop(co), 0);
    else lua_settop(co, 0); /* as any lua_resume caller must */
  }
}

/* lua_resume from C, behind luaweave's back, as a careful host does it:
   never of a dead or cancelled thread, yielded values taken first (they
   are its own), returned values cleared after; yielded values and an
   error object are left where Lua puts them */
static void op_rawresume(int i, input *in) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int op = (int)(byte(in) % 4), a = (int)byte(in), b = (int)byte(in);
  int nres = 0, st;
  mvalidate(m);
  if (!resumable_slot(m)) return;
  if (m->costate == CO_YIELDED) {
    lua_settop(co, 0);
    m->top = 0;
  }
  lua_pushinteger(co, op);
  lua_pushinteger(co, a);
  lua_pushinteger(co, b);
  st = lw_co_resume(co, R.L, 3, &nres);
  expect_int("raw lua_resume", st, op == 2 ? LUA_OK : op == 3 ? LUA_ERRRUN : LUA_YIELD);
  if (st == LUA_OK) lua_settop(co, 0);
  body_ran(m, op, a, b, 0, lua_gettop(co));
  /* a record that still matches the thread serves what is there now */
  if (m->tracked && m->rkind == R_YIELD && m->lst == ST_YIELD && m->top == m->nv &&
      m->nv == 2) {
    m->v[0] = a;
    m->v[1] = b;
  }
}

/* coroutine.close (5.4), installed (lw_close: a suspended tracked thread
   reads cancelled; a failed one keeps its error, now off the stack) or
   not (a reset behind luaweave's back, found by validation) */
static void op_close(int i) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  const char *got;
  int was;
  if (!R.is54) return;
  was = model_status(m);
  push_env("ctl");
  lua_getfield(R.L, -1, "close");
  lua_pushthread(co);
  lua_xmove(co, R.L, 1);
  if (lua_pcall(R.L, 1, 1, 0) != 0) fail("ctl.close raised", lua_tostring(R.L, -1), "");
  got = lua_tostring(R.L, -1);
  if (M.installed && was == LW_FAILED && m->vals) {
    if (strcmp(got, "F") != 0) fail("coroutine.close of a closed failure", got, "F");
  } else if (m->lst == ST_ERR) {
    if (strcmp(got, "F") != 0) fail("coroutine.close of an error", got, "F");
    if (M.installed && m->tracked) { /* lw_store_setfailure */
      m->rkind = R_ERROR;
      m->vals = 1;
      m->v[0] = m->errv;
    }
  } else {
    if (strcmp(got, "T") != 0) fail("coroutine.close", got, "T");
    if (M.installed && m->tracked && (was == LW_PENDING || was == LW_YIELDED)) {
      m->rkind = R_CANCEL;
      m->nv = 0;
      m->kept = 0;
      m->rtop = 0;
    }
  }
  lua_pop(R.L, 2);
  m->costate = CO_DEAD;
  m->lst = ST_OK;
  m->top = 0;
}

static void op_result(int i, int take) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int top = lua_gettop(R.L), n;
  char got[96], want[96];
  n = take ? lw_take(R.s, co, R.L) : lw_result(R.s, co, R.L);
  if (!m->tracked) {
    expect_int("lw_result of an untracked thread", n, LW_ENOTTRACKED);
    expect_int("nothing pushed", lua_gettop(R.L), top);
    return;
  }
  if (n < 0) fail("lw_result failed", lw_strerror(n), "a result");
  real_fmt(R.L, n, got, sizeof got);
  model_result(m, want, sizeof want);
  if (strcmp(got, want) != 0) fail(take ? "lw_take" : "lw_result", got, want);
  if (take) m->tracked = 0;
}

static void op_untrack(int i) {
  mslot *m = &M.slot[i];
  int e = lw_untrack(R.s, slot_thread(i));
  expect_int("lw_untrack", e, m->tracked ? LW_OK : LW_ENOTTRACKED);
  m->tracked = 0;
}

static void op_track(int i) {
  mslot *m = &M.slot[i];
  expect_int("lw_track", lw_track(R.s, slot_thread(i)), LW_OK);
  if (!m->tracked) {
    m->tracked = 1;
    m->rkind = R_NONE;
    m->vals = 0;
  }
}

static void op_cancel(int i) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int e = lw_cancel(R.s, co, R.L);
  expect_int("lw_cancel", e, LW_OK);
  mvalidate(m);
  if (m->tracked && (m->rkind == R_RETURN || m->rkind == R_ERROR ||
                     m->rkind == R_CANCEL))
    return; /* its end is recorded already */
  m->tracked = 1;
  m->rkind = R_CANCEL;
  m->vals = 0;
  m->kept = 0;
  if (m->costate == CO_FRESH) { /* function dropped */
    m->costate = CO_DEAD;
    m->top = 0;
  } else if (m->costate == CO_YIELDED && R.is54) { /* closed */
    m->costate = CO_DEAD;
    m->lst = ST_OK;
    m->top = 0;
  } else if (m->costate == CO_YIELDED) {
    m->kept = 1; /* Lua cannot close it: the yield stays */
  }
  m->rtop = m->top;
}

static void op_reset(int i) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int e = lw_reset(R.s, co, R.L);
  if (!R.is54) {
    expect_int("lw_reset before 5.4", e, LW_ENOTSUP);
    return;
  }
  expect_int("lw_reset", e, m->lst == ST_ERR ? LUA_ERRRUN : LUA_OK);
  lua_settop(co, 0);
  push_env("body");
  lua_xmove(R.L, co, 1);
  memset(m, 0, sizeof *m);
  m->live = 1;
  m->costate = CO_FRESH;
  m->lst = ST_OK;
  m->top = 1;
}

static void op_install(int on) {
  push_env("ctl");
  lua_getfield(R.L, -1, "install");
  lua_pushboolean(R.L, on);
  if (lua_pcall(R.L, 1, 0, 0) != 0) fail("lw.install", lua_tostring(R.L, -1), "");
  lua_pop(R.L, 1);
  M.installed = on;
}

/* ------------------------------------------------------------------ */
/* the scheduler part: the model                                       */


/* The model cannot tell what comes next: luaweave decides it by a rule
   the documentation leaves open (when the sweep finds a thread ended
   behind its back), or by where a resumption it did not drive yields
   (a cancel of a task that coroutine.resume or a raw resume is running
   takes effect when the scheduler next sees it yield, not at that yield).
   From then on the run checks only invariants, sanitizers and the end. */
static void lose(const char *why) {
  if (!M.lost && trace) fprintf(stderr, "model lost track: %s\n", why);
  M.lost = 1;
}

static void mlog(const char *fmt, int id, int a, int b) {
  if (M.nlog >= MAXLOG) return;
  snprintf(M.log[M.nlog++], sizeof M.log[0], fmt, id, a, b);
}

/* entry i of the real side's log (1-based in Lua), or NULL */
static const char *real_log(int i) {
  static char buf[64];
  const char *g;
  push_env("LOG");
  lua_rawgeti(R.L, -1, i + 1);
  g = lua_tostring(R.L, -1);
  if (g != NULL) snprintf(buf, sizeof buf, "%s", g);
  lua_pop(R.L, 2);
  return g ? buf : NULL;
}

static void mq_push(int task, int kind, int target, int isany) {
  ment *e = &M.q[M.qh + M.qn++];
  memset(e, 0, sizeof *e);
  e->task = task; e->kind = kind; e->target = target; e->isany = isany;
  e->susp = M.t[task].susp;
  if (target >= 0) { /* the result is read when the awaiter is woken */
    e->rk = M.t[target].result;
    e->ra = M.t[target].ra;
    e->rb = M.t[target].rb;
  }
}

static void mh_push(int due, int task, int kind) {
  mtimer *t = &M.h[M.hn++];
  memset(t, 0, sizeof *t);
  t->due = due;
  t->seq = M.seq++;
  t->e.task = task; t->e.kind = kind; t->e.target = -1; t->e.isany = 0;
  t->e.susp = M.t[task].susp;
}

static int ended(const mtask *t) { return t->state == TS_ENDED; }

static void format_res(int rk, int ra, int rb, char *buf, size_t len) {
  if (rk == R_RETURN) {
    if (rb < 0) snprintf(buf, len, "T,%d", ra);
    else snprintf(buf, len, "T,%d,%d", ra, rb);
  } else if (rk == R_ERROR) {
    if (ra == 1000) snprintf(buf, len, "F,cannot await the running thread");
    else snprintf(buf, len, "F,e%d", ra);
  } else if (rk == R_UNKNOWN) {
    snprintf(buf, len, "F,thread ended untracked: its result is unknown");
  } else {
    snprintf(buf, len, "F,cancelled");
  }
}

static void format_result(const mtask *t, char *buf, size_t len) {
  format_res(t->result, t->ra, t->rb, buf, len);
}

static void suspend(mtask *t, int state) {
  t->state = state;
  t->susp = ++M.ticket;
}

/* w awaits `id` by a registration that is still its own */
static int registered(int w, int id) {
  const mtask *g = &M.t[id], *t = &M.t[w];
  int i;
  if (t->state != TS_AWAIT) return 0;
  for (i = 0; i < g->nwaiters; i++)
    if (g->wtask[i] == w && (unsigned)g->wsusp[i] == t->susp) return 1;
  return 0;
}

static int awaited(int id) {
  int i;
  for (i = 0; i < M.t[id].nwaiters; i++)
    if (registered(M.t[id].wtask[i], id)) return 1;
  return 0;
}

/* a resumption the scheduler drives is on the chain (S->runco is set) */
static int sched_frames(void) {
  int i;
  for (i = 0; i < M.nchain; i++)
    if (M.drv[i] == D_SCHED) return 1;
  return 0;
}

static void flush_errors(void);
static void run_task(int id, int kind, const ment *e, int drv);

/* A spawn outside any step and outside any task the scheduler runs is
   a step of its own (the guide): failures pending then are reported */
static void spawned(void) {
  if (!M.stepping && !sched_frames()) flush_errors();
}

/* task.spawn(T[a], a) and the like: a resumes now, out of turn; 0 if it
   cannot (dead, or running: task.spawn raises, lw_sched_spawn answers
   LW_ESTATE, coroutine.resume gives false) */
static int early(int a, int drv) {
  int i;
  if (ended(&M.t[a])) return 0;
  for (i = 0; i < M.nchain; i++)
    if (M.chain[i] == a) return 0;
  run_task(a, E_EARLY, NULL, drv);
  return 1;
}

/* Probes (the harness) wake an awaiter early from a finalizer, and only
   while the end of one of its targets wakes that target's awaiters
   (before the awaiter's turn): the GC decides whether one runs then, the
   real log tells the model.  The awaiter is woken the same way whenever
   in that wake the finalizer ran: it parks, and the wake passes it by. */
static void probe_scan(int id) {
  for (;;) {
    const char *g = real_log(M.nlog);
    int w, a;
    if (g == NULL || sscanf(g, "g:%d:%d", &w, &a) != 2 || a != id) return;
    if (w < 0 || w >= M.ntask || !registered(w, id))
      fail("a probe found a task awaiting an ended target outside its wake", g, "");
    mlog("g:%d:%d", w, id, 0);
    run_task(w, E_POKE, NULL, D_SCHED);
  }
}

/* t ended: its awaiters are woken through the queue */
static int wake(int id) {
  mtask *t = &M.t[id];
  int i, woke = 0;
  probe_scan(id);
  for (i = 0; i < t->nwaiters; i++) {
    mtask *w = &M.t[t->wtask[i]];
    if (w->state != TS_AWAIT || w->susp != (unsigned)t->wsusp[i]) continue;
    suspend(w, TS_READY);
    mq_push(t->wtask[i], E_AWAITED, id, t->wany[i]);
    woke = 1;
  }
  t->nwaiters = 0;
  return woke;
}

/* the end of task id, driven by drv.  A raw end is not recorded: the
   task reads pending, an await of it says its result is unknown, and its
   awaiters are woken only when the scheduler's sweep finds it */
static void finish(int id, int result, int a, int b, int drv) {
  mtask *t = &M.t[id];
  t->state = TS_ENDED;
  t->cancelflag = 0;
  t->parked = 0;
  /* on 5.4 the scheduler closes a task that failed in its own resumption
     (its <close> variables run, as lua(1)'s for a failed chunk): the
     error is off its stack, kept as its result */
  t->errstack = result == R_ERROR && !(drv == D_SCHED && R.is54);
  if (drv == D_RAW) {
    t->result = R_UNKNOWN;
    t->untracked = 0;
    if (awaited(id)) lose("a raw end with awaiters: the sweep decides when they hear");
    /* stale registrations too: the list may outlive the thread's end
       (fuzz/regress/raw-end-list-kept, an open finding) */
    else if (t->nwaiters > 0) lose("a raw end with a waiter list");
    return;
  }
  t->result = result;
  t->ra = a;
  t->rb = b;
  /* only the scheduler's own resumptions report their failures; the
     others give them to their caller */
  if (!wake(id) && result == R_ERROR && drv == D_SCHED) t->pend = 1;
}

/* the end of a step (or of a spawn from C outside any): unhandled
   failures are reported */
static void flush_errors(void) {
  int i;
  for (i = 0; i < M.ntask; i++)
    if (M.t[i].pend) {
      M.t[i].pend = 0;
      M.errors++;
    }
}

static void cancel_task(int id) {
  mtask *t = &M.t[id];
  int i;
  for (i = 0; i < M.nchain; i++)
    if (M.chain[i] == id) { /* running or normal: at its next yield */
      if (M.drv[i] != D_SCHED) lose("cancel of a task a resumption outside the scheduler runs");
      t->cancelflag = 1;
      return;
    }
  if (ended(t)) return;
  finish(id, R_CANCEL, 0, 0, D_SCHED);
}

/* create task a (its program is ready) from the running task or from C */
static void create(int a, int how, int delay) {
  mtask *t = &M.t[a];
  suspend(t, TS_READY);
  if (how == I_SPAWN) {
    run_task(a, E_START, NULL, D_SCHED);
    t->visible = 1;
    spawned();
    return;
  }
  if (how == I_DEFER) mq_push(a, E_START, -1, 0);
  else mh_push(M.now + delay, a, E_START);
  t->visible = 1;
}

/* run task id from where it stands until it suspends or ends; e: the
   entry that resumes it (E_AWAITED) */
static void run_task(int id, int kind, const ment *e, int drv) {
  mtask *t = &M.t[id];
  char buf[120];
  M.chain[M.nchain] = id;
  M.drv[M.nchain++] = drv;
  t->state = TS_RUNNING;
  t->susp = ++M.ticket;
  t->rawpend = drv == D_RAW; /* a raw resumption records nothing */
  if (kind == E_START || (kind == E_EARLY && !t->started)) {
    /* a start; early: a thread resumed before its start runs its
       function with that resumption's arguments (its own id here), and
       its start is skipped */
    t->started = 1;
    t->visible = 1;
  } else if (kind == E_POKE) {
    mlog("%d:p", id, 0, 0);
    t->parked = 1;
    t->t0 = M.now;
    suspend(t, TS_WAIT);
    mh_push(M.now + PARK, id, E_WAIT);
    M.nchain--;
    return;
  } else if (t->parked) { /* the park's wait returns: nothing logged */
    t->parked = 0;
    t->pc++;
  } else if (kind == E_WAIT) {
    mlog("%d:w:%d", id, M.now - t->t0, 0);
    t->pc++;
  } else if (kind == E_EARLY) { /* its wait or await returns its id */
    int op = t->prog[t->pc][0];
    mlog(op == I_WAIT ? "%d:w:%d" : op == I_AWAIT ? "%d:a:%d" : "%d:y:%d", id, id, 0);
    t->pc++;
  } else {
    char res[64];
    format_res(e->rk, e->ra, e->rb, res, sizeof res);
    if (e->isany) snprintf(buf, sizeof buf, "%d:y:#%d,%s", id, e->target, res);
    else snprintf(buf, sizeof buf, "%d:a:%s", id, res);
    if (M.nlog < MAXLOG) snprintf(M.log[M.nlog++], sizeof M.log[0], "%s", buf);
    t->pc++;
  }
  for (; t->pc < PLEN; t->pc++) {
    int op = t->prog[t->pc][0], a = t->prog[t->pc][1], b = t->prog[t->pc][2];
    int vis = a >= 0 && a < M.ntask && M.t[a].visible && !M.t[a].forgotten;
    int visb = b >= 0 && b < M.ntask && M.t[b].visible && !M.t[b].forgotten;
    switch (op) {
      case I_WAIT:
        t->t0 = M.now;
        if (t->cancelflag) goto cancelled;
        suspend(t, TS_WAIT);
        mh_push(M.now + a, id, E_WAIT);
        M.nchain--;
        return;
      case I_AWAIT:
      case I_ANY: {
        /* task.any of one thread when a == b */
        int targets[2], n = op == I_ANY && a != b ? 2 : 1, j;
        if (!vis || (op == I_ANY && !visb)) {
          mlog(op == I_ANY ? "%d:y:-" : "%d:a:-", id, 0, 0);
          break;
        }
        targets[0] = a; targets[1] = b;
        for (j = 0; j < n; j++) {
          if (targets[j] == id) {
            M.nchain--;
            finish(id, R_ERROR, 1000, 0, drv);
            return;
          }
          if (ended(&M.t[targets[j]])) {
            char res[64];
            M.t[targets[j]].pend = 0; /* its error is heard */
            M.t[targets[j]].untracked = 0; /* the await tracks it */
            format_result(&M.t[targets[j]], res, sizeof res);
            if (op == I_ANY) snprintf(buf, sizeof buf, "%d:y:#%d,%s", id, targets[j], res);
            else snprintf(buf, sizeof buf, "%d:a:%s", id, res);
            if (M.nlog < MAXLOG) snprintf(M.log[M.nlog++], sizeof M.log[0], "%s", buf);
            break;
          }
        }
        if (j < n) break; /* answered at once */
        if (t->cancelflag) goto cancelled;
        suspend(t, TS_AWAIT);
        for (j = 0; j < n; j++) {
          mtask *g = &M.t[targets[j]];
          if (g->nwaiters >= NREG) { lose("waiter list full"); break; }
          g->wtask[g->nwaiters] = id;
          g->wsusp[g->nwaiters] = (int)t->susp;
          g->wany[g->nwaiters++] = op == I_ANY;
        }
        M.nchain--;
        return;
      }
      case I_CANCEL:
        if (!vis) { mlog("%d:c:-", id, 0, 0); break; }
        cancel_task(a);
        mlog("%d:c:%d", id, a, 0);
        break;
      case I_SPAWN:
      case I_DEFER:
      case I_DELAY:
        create(a, op, b);
        mlog(op == I_SPAWN ? "%d:s:%d" : op == I_DEFER ? "%d:d:%d" : "%d:l:%d", id, a, 0);
        break;
      case I_RETURN:
        M.nchain--;
        finish(id, R_RETURN, a, b, drv);
        return;
      case I_ERROR:
        M.nchain--;
        finish(id, R_ERROR, a, 0, drv);
        return;
      case I_NOP:
        if (b != 1) break;
        if (!vis) { mlog("%d:k:-", id, 0, 0); break; }
        {
          int ok = early(a, D_SCHED);
          spawned();
          mlog(ok ? "%d:k:%d" : "%d:k:%dE", id, a, 0);
        }
        break;
      default:
        break;
    }
  }
  M.nchain--;
  finish(id, R_RETURN, id, -1, drv);
  return;
cancelled:
  M.nchain--;
  finish(id, R_CANCEL, 0, 0, drv);
}

static int live(const ment *e) {
  const mtask *t = &M.t[e->task];
  return t->susp == e->susp &&
         (t->state == TS_READY || t->state == TS_WAIT);
}

static void run_ent(const ment *e) {
  if (!live(e)) return;
  M.steps++;
  run_task(e->task, e->kind, e, D_SCHED);
}

static int mh_min(unsigned long seq0) {
  int i, m = -1;
  for (i = 0; i < M.hn; i++) {
    if (M.h[i].due > M.now || M.h[i].seq >= seq0) continue;
    if (m < 0 || M.h[i].due < M.h[m].due ||
        (M.h[i].due == M.h[m].due && M.h[i].seq < M.h[m].seq))
      m = i;
  }
  return m;
}

static int model_step(void) {
  unsigned long seq0 = M.seq;
  int m;
  M.steps = 0;
  M.stepping = 1;
  while (M.qn > 0) { ment e = M.q[M.qh++]; M.qn--; run_ent(&e); }
  while ((m = mh_min(seq0)) >= 0) {
    mtimer t = M.h[m];
    M.h[m] = M.h[--M.hn];
    run_ent(&t.e);
  }
  while (M.qn > 0) { ment e = M.q[M.qh++]; M.qn--; run_ent(&e); }
  if (M.qn == 0) M.qh = 0;
  M.stepping = 0;
  flush_errors();
  return M.steps;
}

/* ------------------------------------------------------------------ */
/* the scheduler part: both sides                                      */

static lua_State *task_thread(int id) {
  lua_State *co;
  push_env("T");
  lua_rawgeti(R.L, -1, id);
  co = lua_tothread(R.L, -1);
  lua_pop(R.L, 2);
  return co;
}

/* decode a program for a new task; children get ids of their own */
static int new_task(input *in, int depth) {
  int id = M.ntask, i;
  mtask *t;
  if (id >= NTASK) return -1;
  t = &M.t[M.ntask++];
  memset(t, 0, sizeof *t);
  t->exists = 1;
  push_env("P");
  lua_createtable(R.L, 3 * PLEN, 0);
  for (i = 0; i < PLEN; i++) {
    int op = (int)(byte(in) % I_COUNT), a = (int)(byte(in) % NTASK), b = (int)(byte(in) % 4);
    if (op == I_SPAWN || op == I_DEFER || op == I_DELAY) {
      a = depth < 3 ? new_task(in, depth + 1) : -1;
      if (a < 0) op = I_NOP;
    } else if (op == I_ANY) {
      b = (int)(byte(in) % NTASK);
    } else if (op == I_WAIT) {
      a = b; /* seconds: 0..3 */
    }
    t = &M.t[id]; /* (no realloc: a fixed array) */
    t->prog[i][0] = op; t->prog[i][1] = a; t->prog[i][2] = b;
    lua_pushinteger(R.L, op); lua_rawseti(R.L, -2, 3 * i + 1);
    lua_pushinteger(R.L, a); lua_rawseti(R.L, -2, 3 * i + 2);
    lua_pushinteger(R.L, b); lua_rawseti(R.L, -2, 3 * i + 3);
  }
  lua_rawseti(R.L, -2, id);
  lua_pop(R.L, 1);
  return id;
}

/* compare what the tasks logged with what the model expects */
static void check_log(void) {
  int i, n;
  push_env("LOG");
  n = (int)lw_rawlen(R.L, -1);
  for (i = 0; i < n || i < M.nlog; i++) {
    const char *got;
    lua_rawgeti(R.L, -1, i + 1);
    got = lua_tostring(R.L, -1);
    if (i >= M.nlog || got == NULL || strcmp(got, M.log[i]) != 0) {
      char ctx[64];
      snprintf(ctx, sizeof ctx, "log entry %d of %d/%d", i + 1, n, M.nlog);
      fprintf(stderr, "%s\n", ctx);
      fail("task log", got ? got : "(none)", i < M.nlog ? M.log[i] : "(none)");
    }
    lua_pop(R.L, 1);
  }
  lua_pop(R.L, 1);
}

static int task_status(const mtask *t) {
  switch (t->state) {
    case TS_READY: return t->started && !t->rawpend ? LW_YIELDED : LW_PENDING;
    case TS_WAIT: case TS_AWAIT: return t->rawpend ? LW_PENDING : LW_YIELDED;
    case TS_RUNNING: return LW_RUNNING;
    default:
      return t->result == R_RETURN ? LW_RETURNED
           : t->result == R_ERROR ? LW_FAILED
           : t->result == R_CANCEL ? LW_CANCELLED
           : t->untracked ? LW_UNTRACKED : LW_PENDING;
  }
}

static void check_tasks(void) {
  int i;
  char w[64];
  if (M.lost) return;
  for (i = 0; i < M.ntask; i++) {
    mtask *t = &M.t[i];
    lua_State *co;
    int got;
    if (!t->visible || t->forgotten) continue;
    co = task_thread(i);
    if (co == NULL) {
      snprintf(w, sizeof w, "task %d's thread", i);
      fail("T[id] missing", "nil", w);
    }
    got = lw_status(R.s, co);
    if (got != task_status(t)) {
      snprintf(w, sizeof w, "%s (task %d)", lw_status_name(task_status(t)), i);
      fail("lw_status of a task", lw_status_name(got), w);
    }
  }
  expect_int("errors reported", R.errors, M.errors);
  {
    long n = 0;
    for (i = 0; i < M.ntask; i++) n += M.t[i].state == TS_AWAIT;
    expect_int("lw_sched_waiting", (long)lw_sched_waiting(R.S), n);
  }
}

static void c_create(input *in, int how) {
  int id = new_task(in, 0), e, delay = (int)(byte(in) % 4);
  if (id < 0) return;
  push_env("run");
  lua_pushinteger(R.L, id);
  e = how == I_SPAWN ? lw_sched_spawn(R.S, R.L, 1)
    : how == I_DEFER ? lw_sched_defer(R.S, R.L, 1)
    : lw_sched_delay(R.S, R.L, (double)delay, 1);
  expect_int("lw_sched_spawn/defer/delay", e, LW_OK);
  /* T[id] = the thread, as a task would do it */
  push_env("T");
  lua_pushvalue(R.L, -2);
  lua_rawseti(R.L, -2, id);
  push_env("ID");
  lua_pushvalue(R.L, -3);
  lua_pushinteger(R.L, id);
  lua_rawset(R.L, -3);
  lua_pop(R.L, 3);
  if (!M.lost) create(id, how, delay); /* a spawn from C is a step of its own */
}

static void forget(int id) {
  push_env("T");
  lua_pushnil(R.L);
  lua_rawseti(R.L, -2, id);
  lua_pop(R.L, 1);
  M.t[id].forgotten = 1;
}

static int pick_task(input *in) {
  int id;
  if (M.ntask == 0) return -1;
  id = (int)(byte(in) % M.ntask);
  return M.t[id].visible && !M.t[id].forgotten ? id : -1;
}

static void c_cancel(int id) {
  expect_int("lw_sched_cancel", lw_sched_cancel(R.S, task_thread(id)), LW_OK);
  if (!M.lost) cancel_task(id);
}

/* 1 if a woken task.any waiter's entry, not yet run, holds id's thread
   (the waiter is handed it: recycling refuses until the entry has run,
   even if the waiter was cancelled meanwhile) */
static int any_pending(int id) {
  int i;
  for (i = 0; i < M.qn; i++) {
    const ment *e = &M.q[M.qh + i];
    if (e->kind == E_AWAITED && e->isany && e->target == id) return 1;
  }
  return 0;
}

static void c_recycle(int id) {
  mtask *t = &M.t[id];
  int e, want;
  /* a thread that ended behind luaweave's back or was reset keeps a
     waiter list or a stale start until a step: the model does not
     follow those (its owner would not recycle it) */
  if (M.lost || (ended(t) && t->result == R_UNKNOWN)) return;
  e = lw_sched_recycle(R.S, task_thread(id));
  if (!R.is54) want = LW_ENOTSUP;
  else if (!ended(t) || any_pending(id)) want = LW_EBUSY;
  else want = LW_OK;
  expect_int("lw_sched_recycle", e, want);
  if (e == LW_OK) forget(id);
}

/* ------------------------------------------------------------------ */
/* host actions on tasks                                               */

/* a raw resumption behind luaweave's back is fair to the model only for
   a task that has not started and that nobody awaits: a raw resumption
   of a suspended task that ends it leaves its wait's timer or await
   registration to the scheduler, which cannot see the end (the guide:
   such ends are found when nothing else can run) */
static int raw_ok(int id) {
  const mtask *t = &M.t[id];
  return t->state == TS_READY && !t->started && !awaited(id);
}

/* lw_sched_spawn(S, L, 1) of T[id] with its id: wakes it early */
static void h_wake(int id) {
  lua_State *co = task_thread(id);
  int e;
  lua_pushthread(co);
  lua_xmove(co, R.L, 1);
  lua_pushinteger(R.L, id);
  e = lw_sched_spawn(R.S, R.L, 1);
  if (e != LW_OK) lua_pop(R.L, 2);
  else lua_pop(R.L, 1); /* the thread stays on L's top */
  if (M.lost) return;
  expect_int("lw_sched_spawn of a task", e, early(id, D_SCHED) ? LW_OK : LW_ESTATE);
  spawned();
}

/* coroutine.resume(T[id], id) from the host's Lua: a recorded
   resumption that is not the scheduler's with lw.install(), a raw one
   without */
static void h_coresume(int id) {
  lua_State *co = task_thread(id);
  int ok, dead = ended(&M.t[id]);
  if (!M.lost && !M.installed && !(dead || raw_ok(id))) return;
  /* before 5.4 a cancelled yield stays suspended to Lua: only luaweave
     refuses it, and a raw resumption of it is the host's error */
  if (!M.lost && !M.installed && dead && !R.is54 && M.t[id].result == R_CANCEL) return;
  push_env("ctl");
  lua_getfield(R.L, -1, "resume");
  lua_pushthread(co);
  lua_xmove(co, R.L, 1);
  lua_pushinteger(R.L, id);
  if (lua_pcall(R.L, 2, 2, 0) != 0) fail("ctl.resume raised", lua_tostring(R.L, -1), "");
  ok = lua_toboolean(R.L, -2);
  lua_pop(R.L, 3);
  if (M.lost) return;
  if (dead) {
    expect_int("coroutine.resume of an ended task", ok, 0);
    return;
  }
  early(id, M.installed ? D_REC : D_RAW);
}

/* lua_resume(T[id], L, 1) from C, behind luaweave's back */
static void h_rawresume(int id) {
  lua_State *co = task_thread(id);
  int st, n = 0;
  if (M.lost || !raw_ok(id)) return;
  lua_pushinteger(co, id);
  st = lw_co_resume(co, R.L, 1, &n);
  if (st == LUA_OK) lua_settop(co, 0); /* its results are ours */
  early(id, D_RAW);
}

/* lw_cancel from C (the store's cancel, not the scheduler's) */
static void h_lwcancel(int id) {
  mtask *t = &M.t[id];
  expect_int("lw_cancel of a task", lw_cancel(R.s, task_thread(id), R.L), LW_OK);
  if (M.lost) return;
  if (ended(t)) {
    /* an end the store never saw (or forgot in a reset): the thread is
       dead, and cancelling it records that */
    if (t->result == R_UNKNOWN) {
      t->result = R_CANCEL;
      t->untracked = 0;
    }
    return;
  }
  finish(id, R_CANCEL, 0, 0, D_REC);
}

/* lw_reset from C (5.4): an unfinished life ends cancelled first (its
   awaiters hear it), then the thread is forgotten: an await of it then
   says its result is unknown */
static void h_reset(int id) {
  mtask *t = &M.t[id];
  lua_State *co = task_thread(id);
  int e = lw_reset(R.s, co, R.L), want;
  if (e >= 0) lua_settop(co, 0); /* lua_closethread leaves an error there */
  if (!R.is54) {
    expect_int("lw_reset of a task before 5.4", e, LW_ENOTSUP);
    return;
  }
  if (M.lost) return;
  want = ended(t) && t->errstack ? LUA_ERRRUN : LUA_OK;
  expect_int("lw_reset of a task", e, want);
  if (!ended(t)) finish(id, R_CANCEL, 0, 0, D_REC);
  t->result = R_UNKNOWN;
  t->untracked = 1;
  t->errstack = 0;
  t->pend = 0;
}

/* a probe for awaiter w of target a (the harness), re-armed n times */
static void h_probe(int w, int a, int n) {
  push_env("ctl");
  lua_getfield(R.L, -1, "probe");
  lua_pushinteger(R.L, w);
  lua_pushinteger(R.L, a);
  lua_pushinteger(R.L, n);
  if (lua_pcall(R.L, 3, 0, 0) != 0) fail("ctl.probe", lua_tostring(R.L, -1), "");
  lua_pop(R.L, 1);
}

static void h_ctl(const char *f, int arg) {
  push_env("ctl");
  lua_getfield(R.L, -1, f);
  lua_pushboolean(R.L, arg);
  if (lua_pcall(R.L, 1, 0, 0) != 0) fail(f, lua_tostring(R.L, -1), "");
  lua_pop(R.L, 1);
}

/* fz.awaits(w, a): w awaits a, by a registration still its own, and a's
   end is recorded (the harness's probes ask; the scheduler's inside) */
static int fz_awaits(lua_State *L) {
  lua_State *w = lua_tothread(L, 1), *a = lua_tothread(L, 2);
  lw_rec *r;
  unsigned ticket;
  int st, n, i, yes = 0;
  if (w == NULL || a == NULL) return 0;
  r = lws_task_rec(R.S, w);
  if (r == NULL || r->task != T_AWAIT) return 0;
  ticket = r->ticket;
  st = lw_status(R.s, a);
  if (st != LW_RETURNED && st != LW_FAILED && st != LW_CANCELLED) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.S->wref);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  if (!lua_istable(L, -1)) return 0;
  n = (int)lw_rawlen(L, -1);
  for (i = 1; i + 2 <= n && !yes; i += 3) {
    lua_rawgeti(L, -1, i);
    lua_rawgeti(L, -2, i + 1);
    yes = lua_tothread(L, -2) == w && (unsigned)lua_tointeger(L, -1) == ticket;
    lua_pop(L, 2);
  }
  lua_pushboolean(L, yes);
  return 1;
}

/* ------------------------------------------------------------------ */

static int setup(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return -1;
  memset(&R, 0, sizeof R);
  memset(&M, 0, sizeof M);
  R.L = L;
  luaL_openlibs(L);
  R.s = lw_store_open(L);
  R.S = lw_sched_open(L);
  if (R.s == NULL || R.S == NULL) abort();
  lw_sched_setclock(R.S, fake_clock, NULL);
  lw_sched_onerror(R.S, on_error, NULL);
  R.is54 = LUA_VERSION_NUM >= 504;
  lua_newtable(L);
  R.slots = luaL_ref(L, LUA_REGISTRYINDEX);
  if (luaL_loadbuffer(L, HARNESS, strlen(HARNESS), "=harness") != 0) abort();
  luaopen_luaweave_task(L); /* the module table */
  lua_newtable(L); lua_newtable(L); lua_newtable(L); lua_newtable(L);
  /* keep P, T, ID, LOG for the C side too */
  lua_createtable(L, 0, 6);
  lua_pushvalue(L, -5); lua_setfield(L, -2, "P");
  lua_pushvalue(L, -4); lua_setfield(L, -2, "T");
  lua_pushvalue(L, -3); lua_setfield(L, -2, "ID");
  lua_pushvalue(L, -2); lua_setfield(L, -2, "LOG");
  R.env = luaL_ref(L, LUA_REGISTRYINDEX);
  luaopen_luaweave(L);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, fz_awaits);
  lua_setfield(L, -2, "awaits");
  if (lua_pcall(L, 7, 3, 0) != 0) {
    fprintf(stderr, "harness: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.env);
  lua_pushvalue(L, -2); lua_setfield(L, -2, "ctl");
  lua_pushvalue(L, -3); lua_setfield(L, -2, "body");
  lua_pushvalue(L, -4); lua_setfield(L, -2, "run");
  lua_pop(L, 4);
  return 0;
}

static void teardown(void) {
  int i;
  if (trace) { /* the real side's log */
    int n;
    push_env("LOG");
    n = (int)lw_rawlen(R.L, -1);
    for (i = 1; i <= n; i++) {
      lua_rawgeti(R.L, -1, i);
      fprintf(stderr, "  log %s\n", lua_tostring(R.L, -1));
      lua_pop(R.L, 1);
    }
    lua_pop(R.L, 1);
  }
  h_ctl("dead", 0); /* the probes rest */
  /* end everything, drop every reference: nothing may stay tracked */
  for (i = 0; i < M.ntask; i++)
    if (M.t[i].visible && !M.t[i].forgotten && !ended(&M.t[i])) c_cancel(i);
  check_tasks();
  /* stale timers anchor their threads until their deadline (parks too) */
  M.now += 3 * PARK;
  for (i = 0; i < 8 && lw_sched_next(R.S) == 0; i++) lw_sched_step(R.S);
  if (M.lost) {
    /* the model's view may be wrong: cancel every thread in T, and run
       what is left, a few rounds (a task the model lost may still run
       and make more); a thread that ended behind luaweave's back keeps
       its waiter list, and with it its cancelled awaiters, until a step
       sweeps it, while lw_sched_next says -1: step once more anyway
       (docs/reliability.md, findings) */
    int round, j;
    for (round = 0; round < 4; round++) {
      for (j = 0; j < NTASK; j++) {
        lua_State *co = task_thread(j);
        if (co != NULL) (void)lw_sched_cancel(R.S, co);
      }
      M.now += 3 * PARK;
      lw_sched_step(R.S);
    }
  }
  for (i = 0; i < NSLOT; i++)
    if (M.slot[i].live) slot_drop(i);
  for (i = 0; i < NTASK; i++) forget(i);
  lua_gc(R.L, LUA_GCCOLLECT, 0);
  lua_gc(R.L, LUA_GCCOLLECT, 0);
  if (lw_store_check(R.s) != 0) fail("store invariants", "broken", "hold");
  if (lw_sched_check_invariants(R.S) != 0) fail("scheduler invariants", "broken", "hold");
  if (trace && lw_store_count(R.s) != 0) {
    size_t j;
    for (j = 0; j < lw_map_capacity(&R.s->map); j++) {
      lw_slot *sl = &R.s->map.slots[j];
      if (sl->key != NULL)
        fprintf(stderr, "  left: %p status %d task %d ticket %u main %d\n", (void *)sl->key,
                (int)sl->rec.status, (int)sl->rec.task, sl->rec.ticket, (void *)sl->key == (void *)R.L);
    }
    fprintf(stderr, "  waiting %lu ready %lu wlists %lu npend %lu nyheld %lu wsweep %d\n", (unsigned long)lw_sched_waiting(R.S), (unsigned long)lw_sched_ready(R.S),
            (unsigned long)R.S->wlists, (unsigned long)R.S->npend, (unsigned long)R.S->nyheld, R.S->wsweep);
    {
      const char *nm[] = {"wref", "eref", "aref", "yref"};
      int refs[4], q;
      refs[0] = R.S->wref; refs[1] = R.S->eref; refs[2] = R.S->aref; refs[3] = R.S->yref;
      for (q = 0; q < 4; q++) {
        int cnt = 0;
        lua_rawgeti(R.L, LUA_REGISTRYINDEX, refs[q]);
        lua_pushnil(R.L);
        while (lua_next(R.L, -2)) { cnt++; lua_pop(R.L, 1); }
        lua_pop(R.L, 1);
        fprintf(stderr, "  %s: %d entries\n", nm[q], cnt);
      }
    }
  }
  /* lost or not, nothing stays tracked: a waiter list left by a thread
     that ended behind luaweave's back goes with the step that finds the
     scheduler idle (docs/reliability.md, findings) */
  expect_int("threads still tracked after the end", (long)lw_store_count(R.s), 0);
  lua_close(R.L);
}

/* host actions beyond the first 19 operations: op 19, then x selects
   one (an old input's op 19 did nothing) */
void lwfz_sync(const uint8_t *p, size_t len); /* fuzz_sync.c */

static int extended(unsigned x, input *in) {
  int k = (int)(byte(in) % NSLOT), id;
  switch (x % 12) {
    case 0: op_install(!M.installed); break;
    case 1: op_resume(k, in, 1); check_slot_status(k); break;
    case 2: op_rawresume(k, in); check_slot_status(k); break;
    case 3: op_close(k); check_slot_status(k); break;
    case 4: if ((id = pick_task(in)) >= 0) h_wake(id); break;
    case 5: if ((id = pick_task(in)) >= 0) h_coresume(id); break;
    case 6: if ((id = pick_task(in)) >= 0) h_rawresume(id); break;
    case 7: if ((id = pick_task(in)) >= 0) h_lwcancel(id); break;
    case 8: if ((id = pick_task(in)) >= 0) h_reset(id); break;
    case 9: {
      int w = (int)(byte(in) % NTASK), a = (int)(byte(in) % NTASK);
      h_probe(w, a, k);
      break;
    }
    case 10: h_ctl("gcmode", k & 1); break;
    default:
      /* lua_close in the middle: what luaweave holds goes with the
         state; the harness touches nothing after it (ASan watches) */
      h_ctl("dead", 0);
      lua_close(R.L);
      return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in;
  int i;
  if (trace < 0) trace = getenv("FUZZ_TRACE") != NULL;
  lwfz_sync(data, size); /* the same bytes, read as a program of fuzz_sync.c */
  in.p = data;
  in.n = size;
  if (setup() != 0) return 0;
  for (i = 0; i < NSLOT; i++) slot_new(i);
  while (in.n > 0) {
    unsigned op = byte(&in) % 20, x = byte(&in);
    int k = (int)(x % NSLOT), id, got;
    if (trace) fprintf(stderr, "op %u x %u%s\n", op, x, M.lost ? " (lost)" : "");
    switch (op) {
      case 0: op_track(k); break;
      case 1: op_untrack(k); break;
      case 2: case 3: op_resume(k, &in, 0); break;
      case 4: op_result(k, 0); break;
      case 5: op_result(k, 1); break;
      case 6: op_cancel(k); break;
      case 7: op_reset(k); break;
      case 8: slot_drop(k); slot_new(k); break;
      case 9: lua_gc(R.L, (x & 1) ? LUA_GCCOLLECT : LUA_GCSTEP, 0); break;
      case 10: c_create(&in, I_SPAWN); break;
      case 11: c_create(&in, I_DEFER); break;
      case 12: c_create(&in, I_DELAY); break;
      case 13: if ((id = pick_task(&in)) >= 0) c_cancel(id); break;
      case 14: if ((id = pick_task(&in)) >= 0) c_recycle(id); break;
      case 15: case 16:
        got = lw_sched_step(R.S);
        if (!M.lost) expect_int("lw_sched_step resumptions", got, model_step());
        break;
      case 17: M.now += (int)(x % 3); break;
      case 18: if ((id = pick_task(&in)) >= 0 && ended(&M.t[id])) forget(id); break;
      default:
        if (extended(x, &in)) return 0; /* the state is closed */
        break;
    }
    if (op < 9) check_slot_status(k);
    if (!M.lost) check_log();
    check_tasks();
    if (lw_store_check(R.s) != 0) fail("store invariants", "broken", "hold");
    if (lw_sched_check_invariants(R.S) != 0) fail("scheduler invariants", "broken", "hold");
  }
  teardown();
  return 0;
}
