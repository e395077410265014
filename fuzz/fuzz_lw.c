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
enum { R_NONE, R_YIELD, R_RETURN, R_ERROR, R_CANCEL };

typedef struct mslot {
  int live;          /* we hold the thread */
  int tracked;
  int costate;       /* CO_* as Lua sees it */
  int errored;       /* died by an error (lua_closethread reports it) */
  int rkind;         /* R_*: the recorded result */
  int nv, v[3];      /* its values (R_ERROR: v[0] is the error's number) */
} mslot;

/* ------------------------------------------------------------------ */
/* the model: the scheduler                                            */

/* task program instructions: {op, a, b} */
enum { I_WAIT, I_AWAIT, I_ANY, I_CANCEL, I_SPAWN, I_DEFER, I_DELAY,
       I_RETURN, I_ERROR, I_NOP, I_COUNT };
/* task states, as the scheduler keeps them */
enum { TS_NONE, TS_READY, TS_RUNNING, TS_WAIT, TS_AWAIT, TS_ENDED };
/* entry kinds */
enum { E_START, E_WAIT, E_AWAITED };

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
  int result;        /* R_RETURN, R_ERROR (a: 1000 = await-self), R_CANCEL */
  int ra, rb;
  int t0;            /* when its wait began */
  int prog[PLEN][3];
  int nwaiters;      /* registrations in its waiter list */
  int wtask[2 * NTASK], wsusp[2 * NTASK], wany[2 * NTASK];
} mtask;

typedef struct ment { int task, kind, target, isany; unsigned susp; } ment;
typedef struct mtimer { int due; unsigned long seq; ment e; } mtimer;

typedef struct model {
  mslot slot[NSLOT];
  mtask t[NTASK];
  int ntask;
  ment q[4 * NTASK * PLEN + 64];
  int qh, qn;        /* a plain array used as a FIFO, never wrapped */
  mtimer h[4 * NTASK * PLEN + 64];
  int hn;
  unsigned long seq;
  unsigned ticket;
  int now;
  int chain[NTASK + 2], nchain; /* the running task and what resumed it */
  int errors;
  char log[MAXLOG][48];
  int nlog;
  int steps;         /* resumptions in the running step */
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

static const char *HARNESS =
  "local task, P, T, ID, LOG = ...\n"
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
  "local run\n"
  "local function made(a, co) T[a] = co; ID[co] = a end\n"
  "function run(id)\n"
  "  made(id, coroutine.running())\n"
  "  local p = P[id]\n"
  "  for i = 1, #p, 3 do\n"
  "    local op, a, b = p[i], p[i + 1], p[i + 2]\n"
  "    if op == 0 then\n"
  "      local e = task.wait(a)\n"
  "      log(id .. ':w:' .. string.format('%d', e))\n"
  "    elseif op == 1 then\n"
  "      if T[a] then log(id .. ':a:' .. fmt(task.await(T[a])))\n"
  "      else log(id .. ':a:-') end\n"
  "    elseif op == 2 then\n"
  "      if not (T[a] and T[b]) then log(id .. ':y:-')\n"
  "      elseif a == b then log(id .. ':y:' .. fmt(task.any(T[a])))\n"
  "      else log(id .. ':y:' .. fmt(task.any(T[a], T[b]))) end\n"
  "    elseif op == 3 then\n"
  "      if T[a] then task.cancel(T[a]); log(id .. ':c:' .. a)\n"
  "      else log(id .. ':c:-') end\n"
  "    elseif op == 4 then made(a, task.spawn(run, a)); log(id .. ':s:' .. a)\n"
  "    elseif op == 5 then made(a, task.defer(run, a)); log(id .. ':d:' .. a)\n"
  "    elseif op == 6 then made(a, task.delay(b, run, a)); log(id .. ':l:' .. a)\n"
  "    elseif op == 7 then do return a, b end\n"
  "    elseif op == 8 then error('e' .. a, 0)\n"
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
  "return run, body\n";

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
}

static void slot_drop(int i) {
  lua_rawgeti(R.L, LUA_REGISTRYINDEX, R.slots);
  lua_pushnil(R.L);
  lua_rawseti(R.L, -2, i + 1);
  lua_pop(R.L, 1);
  M.slot[i].live = 0;
}

static int model_status(const mslot *m) {
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
static void model_result(const mslot *m, char *buf, size_t len) {
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
  int got = lw_status(R.s, co), want = model_status(&M.slot[i]);
  if (got != want) fail("lw_status of a raw coroutine", lw_status_name(got), lw_status_name(want));
}

static void op_resume(int i, input *in) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int op = (int)(byte(in) % 4), a = (int)byte(in), b = (int)byte(in);
  int nres = -1, st, want;
  /* yielded values the store does not keep are ours to clear */
  if (m->costate == CO_YIELDED && !(m->tracked && m->rkind == R_YIELD))
    lua_settop(co, 0);
  lua_pushinteger(co, op);
  lua_pushinteger(co, a);
  lua_pushinteger(co, b);
  st = lw_resume(R.s, co, R.L, 3, &nres);
  if (m->costate == CO_DEAD || (m->tracked && m->rkind == R_CANCEL)) {
    expect_int("lw_resume of a dead or cancelled thread", st, LW_ESTATE);
    lua_pop(co, 3);
    return;
  }
  want = op == 2 ? LUA_OK : op == 3 ? LUA_ERRRUN : LUA_YIELD;
  expect_int("lw_resume status", st, want);
  m->nv = 0;
  if (op == 0 || op == 1) {
    m->costate = CO_YIELDED;
    m->rkind = R_YIELD;
    if (op == 1) { m->nv = 2; m->v[0] = a; m->v[1] = b; }
    expect_int("lw_resume nres", nres, m->nv);
  } else if (op == 2) {
    m->costate = CO_DEAD;
    m->rkind = R_RETURN;
    m->nv = 3; m->v[0] = a; m->v[1] = b; m->v[2] = a;
    expect_int("lw_resume nres", nres, 3);
    if (m->tracked) expect_int("returned values leave the stack", lua_gettop(co), 0);
    else lua_settop(co, 0); /* as any lua_resume caller must */
  } else {
    m->costate = CO_DEAD;
    m->errored = 1;
    m->rkind = R_ERROR;
    m->v[0] = a;
  }
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
  }
}

static void op_cancel(int i) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int e = lw_cancel(R.s, co, R.L);
  expect_int("lw_cancel", e, LW_OK);
  if (m->tracked && (m->rkind == R_RETURN || m->rkind == R_ERROR ||
                     m->rkind == R_CANCEL))
    return; /* its end is recorded already */
  m->tracked = 1;
  m->rkind = R_CANCEL;
  if (m->costate == CO_FRESH) m->costate = CO_DEAD; /* function dropped */
  else if (m->costate == CO_YIELDED && R.is54) m->costate = CO_DEAD; /* closed */
}

static void op_reset(int i) {
  mslot *m = &M.slot[i];
  lua_State *co = slot_thread(i);
  int e = lw_reset(R.s, co, R.L);
  if (!R.is54) {
    expect_int("lw_reset before 5.4", e, LW_ENOTSUP);
    return;
  }
  expect_int("lw_reset", e, m->errored ? LUA_ERRRUN : LUA_OK);
  lua_settop(co, 0);
  push_env("body");
  lua_xmove(R.L, co, 1);
  memset(m, 0, sizeof *m);
  m->live = 1;
  m->costate = CO_FRESH;
}

/* ------------------------------------------------------------------ */
/* the scheduler part: the model                                       */

static void mlog(const char *fmt, int id, int a, int b) {
  if (M.nlog >= MAXLOG) return;
  snprintf(M.log[M.nlog++], sizeof M.log[0], fmt, id, a, b);
}

static void mq_push(int task, int kind, int target, int isany) {
  ment *e = &M.q[M.qh + M.qn++];
  e->task = task; e->kind = kind; e->target = target; e->isany = isany;
  e->susp = M.t[task].susp;
}

static void mh_push(int due, int task, int kind) {
  mtimer *t = &M.h[M.hn++];
  t->due = due;
  t->seq = M.seq++;
  t->e.task = task; t->e.kind = kind; t->e.target = -1; t->e.isany = 0;
  t->e.susp = M.t[task].susp;
}

static int ended(const mtask *t) { return t->state == TS_ENDED; }

static void format_result(const mtask *t, char *buf, size_t len) {
  if (t->result == R_RETURN) {
    if (t->rb < 0) snprintf(buf, len, "T,%d", t->ra);
    else snprintf(buf, len, "T,%d,%d", t->ra, t->rb);
  } else if (t->result == R_ERROR) {
    if (t->ra == 1000) snprintf(buf, len, "F,cannot await the running thread");
    else snprintf(buf, len, "F,e%d", t->ra);
  } else {
    snprintf(buf, len, "F,cancelled");
  }
}

static void suspend(mtask *t, int state) {
  t->state = state;
  t->susp = ++M.ticket;
}

/* t ended: its awaiters are woken through the queue */
static int wake(int id) {
  mtask *t = &M.t[id];
  int i, woke = 0;
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

static void finish(int id, int result, int a, int b) {
  mtask *t = &M.t[id];
  t->state = TS_ENDED;
  t->result = result;
  t->ra = a;
  t->rb = b;
  t->cancelflag = 0;
  if (!wake(id) && result == R_ERROR) t->pend = 1;
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
      t->cancelflag = 1;
      return;
    }
  if (ended(t)) return;
  finish(id, R_CANCEL, 0, 0);
}

static void run_task(int id, int kind, int target, int isany);
static int live(const ment *e);

/* create task a (its program is ready) from the running task or from C */
static void create(int a, int how, int delay) {
  mtask *t = &M.t[a];
  suspend(t, TS_READY);
  if (how == I_SPAWN) {
    run_task(a, E_START, -1, 0);
  } else {
    t->visible = 1;
    if (how == I_DEFER) mq_push(a, E_START, -1, 0);
    else mh_push(M.now + delay, a, E_START);
  }
  t->visible = 1;
}

/* run task id from where it stands until it suspends or ends */
static void run_task(int id, int kind, int target, int isany) {
  mtask *t = &M.t[id];
  char buf[48];
  M.chain[M.nchain++] = id;
  t->state = TS_RUNNING;
  t->susp = ++M.ticket;
  if (kind == E_START) {
    t->started = 1;
    t->visible = 1;
  } else if (kind == E_WAIT) {
    mlog("%d:w:%d", id, M.now - t->t0, 0);
    t->pc++;
  } else {
    int pc = t->pc;
    char res[40];
    format_result(&M.t[target], res, sizeof res);
    if (isany) snprintf(buf, sizeof buf, "%d:y:#%d,%s", id, target, res);
    else snprintf(buf, sizeof buf, "%d:a:%s", id, res);
    if (M.nlog < MAXLOG) strcpy(M.log[M.nlog++], buf);
    t->pc = pc + 1;
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
            finish(id, R_ERROR, 1000, 0);
            return;
          }
          if (ended(&M.t[targets[j]])) {
            char res[40];
            M.t[targets[j]].pend = 0; /* its error is heard */
            format_result(&M.t[targets[j]], res, sizeof res);
            if (op == I_ANY) snprintf(buf, sizeof buf, "%d:y:#%d,%s", id, targets[j], res);
            else snprintf(buf, sizeof buf, "%d:a:%s", id, res);
            if (M.nlog < MAXLOG) strcpy(M.log[M.nlog++], buf);
            break;
          }
        }
        if (j < n) break; /* answered at once */
        if (t->cancelflag) goto cancelled;
        suspend(t, TS_AWAIT);
        for (j = 0; j < n; j++) {
          mtask *g = &M.t[targets[j]];
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
        finish(id, R_RETURN, a, b);
        return;
      case I_ERROR:
        M.nchain--;
        finish(id, R_ERROR, a, 0);
        return;
      default:
        break;
    }
  }
  M.nchain--;
  finish(id, R_RETURN, id, -1);
  return;
cancelled:
  M.nchain--;
  finish(id, R_CANCEL, 0, 0);
}

static int live(const ment *e) {
  const mtask *t = &M.t[e->task];
  return t->susp == e->susp &&
         (t->state == TS_READY || t->state == TS_WAIT);
}

static void run_ent(const ment *e) {
  if (!live(e)) return;
  M.steps++;
  run_task(e->task, e->kind, e->target, e->isany);
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
  while (M.qn > 0) { ment e = M.q[M.qh++]; M.qn--; run_ent(&e); }
  while ((m = mh_min(seq0)) >= 0) {
    mtimer t = M.h[m];
    M.h[m] = M.h[--M.hn];
    run_ent(&t.e);
  }
  while (M.qn > 0) { ment e = M.q[M.qh++]; M.qn--; run_ent(&e); }
  if (M.qn == 0) M.qh = 0;
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
    case TS_READY: return t->started ? LW_YIELDED : LW_PENDING;
    case TS_WAIT: case TS_AWAIT: return LW_YIELDED;
    case TS_RUNNING: return LW_RUNNING;
    default:
      return t->result == R_RETURN ? LW_RETURNED
           : t->result == R_ERROR ? LW_FAILED : LW_CANCELLED;
  }
}

static void check_tasks(void) {
  int i;
  char w[64];
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
  create(id, how, delay);
  if (how == I_SPAWN) flush_errors(); /* a spawn from C is a step of its own */
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
  cancel_task(id);
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
  e = lw_sched_recycle(R.S, task_thread(id));
  if (!R.is54) want = LW_ENOTSUP;
  else if (!ended(t) || any_pending(id)) want = LW_EBUSY;
  else want = LW_OK;
  expect_int("lw_sched_recycle", e, want);
  if (e == LW_OK) forget(id);
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
  if (lua_pcall(L, 5, 2, 0) != 0) {
    fprintf(stderr, "harness: %s\n", lua_tostring(L, -1));
    abort();
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, R.env);
  lua_pushvalue(L, -2); lua_setfield(L, -2, "body");
  lua_pushvalue(L, -3); lua_setfield(L, -2, "run");
  lua_pop(L, 3);
  return 0;
}

static void teardown(void) {
  int i;
  /* end everything, drop every reference: nothing may stay tracked */
  for (i = 0; i < M.ntask; i++)
    if (M.t[i].visible && !M.t[i].forgotten && !ended(&M.t[i])) c_cancel(i);
  check_tasks();
  /* stale timers anchor their threads until their deadline */
  M.now += 1000;
  for (i = 0; i < 8 && lw_sched_next(R.S) == 0; i++) lw_sched_step(R.S);
  for (i = 0; i < NSLOT; i++)
    if (M.slot[i].live) slot_drop(i);
  for (i = 0; i < M.ntask; i++)
    if (M.t[i].visible && !M.t[i].forgotten) forget(i);
  lua_gc(R.L, LUA_GCCOLLECT, 0);
  lua_gc(R.L, LUA_GCCOLLECT, 0);
  if (lw_store_check(R.s) != 0) fail("store invariants", "broken", "hold");
  if (lw_sched_check_invariants(R.S) != 0) fail("scheduler invariants", "broken", "hold");
  expect_int("threads still tracked after the end", (long)lw_store_count(R.s), 0);
  lua_close(R.L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in;
  int i;
  static int trace = -1;
  if (trace < 0) trace = getenv("FUZZ_TRACE") != NULL;
  in.p = data;
  in.n = size;
  if (setup() != 0) return 0;
  for (i = 0; i < NSLOT; i++) slot_new(i);
  while (in.n > 0) {
    unsigned op = byte(&in) % 20, x = byte(&in);
    int k = (int)(x % NSLOT), id;
    if (trace) fprintf(stderr, "op %u k %d\n", op, k);
    switch (op) {
      case 0: op_track(k); break;
      case 1: op_untrack(k); break;
      case 2: case 3: op_resume(k, &in); break;
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
        expect_int("lw_sched_step resumptions", lw_sched_step(R.S), model_step());
        break;
      case 17: M.now += (int)(x % 3); break;
      case 18: if ((id = pick_task(&in)) >= 0 && ended(&M.t[id])) forget(id); break;
      default: break;
    }
    if (op < 9) check_slot_status(k);
    check_log();
    check_tasks();
    if (lw_store_check(R.s) != 0) fail("store invariants", "broken", "hold");
    if (lw_sched_check_invariants(R.S) != 0) fail("scheduler invariants", "broken", "hold");
  }
  teardown();
  return 0;
}
