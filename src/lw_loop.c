/*
** lw_loop.c — the libuv drivers: run a scheduler on luaweave's own loop,
** attach it to a host's loop, and the I/O loop of the host-stepped mode.
**
** The scheduler only asks to be stepped and says when it next has work
** (lw_sched_next).  Own loop: step, then block in uv_run(ONCE) on a timer
** for the next deadline (or on outstanding I/O) until nothing can run.
** Attached: a prepare handle steps before every poll; an idle handle
** keeps the poll from blocking while the queue has work; a timer wakes the
** loop for the next deadline.  The prepare handle is unreferenced and the
** others are active only while there is work, so luaweave keeps the host's
** loop alive exactly as long as it has something to do.
** Shared (lw_luv.c): attached to luv's loop, which uv.run or the host
** (Neovim) runs, and which lw_sched_run also runs itself, rather than
** luaweave's own loop, so that luv callbacks and tasks take turns.
** Inside Neovim the steps do not run in the prepare callback: libuv's
** callbacks are a "fast" context there, where the editor API aborts the
** editor, and a vim.schedule made in a prepare callback waits for the
** next input poll ('updatetime').  The timer (due, or at 0 when tasks are
** ready) asks the editor instead, with vim.schedule(step), to step the
** scheduler from its event queue, one request pending at a time.
*/
#include "lw_sched.h"
#include "lw_luv.h"

#include <math.h>
#include <stdlib.h>
#include <uv.h>

typedef struct attachment {
  uv_prepare_t prep;
  uv_idle_t idle;
  uv_timer_t timer;
  lw_sched *S;          /* NULL once detached */
  int closing;          /* handles still to close */
  int shared;           /* luv's loop (lws_attach_shared) */
  int nvim;             /* NV_: who steps (shared mode inside Neovim) */
  int pending;          /* a vim.schedule(step) not run yet */
  int hosted;           /* in a step it runs for the host's loop (uv.run,
                           Neovim), not for lw_sched_run */
} attachment;

/* nvim: not looked at yet (the first callback does: attaching may happen
   inside a step, when the scheduler's thread cannot call Lua), no, yes */
enum { NV_UNKNOWN, NV_NO, NV_YES };

/* a task suspended in uv.run while run_shared runs luv's loop */
typedef struct run_waiter {
  lw_async *op;
  int once;             /* "once"/"nowait": until one turn has passed */
  unsigned long turn;   /* the loop turn it began in */
} run_waiter;

typedef struct driver {
  uv_loop_t own;
  int own_ok;
  uv_timer_t own_timer;
  attachment *att;
  int running;
  run_waiter *wait;     /* tasks in uv.run (lws_run_wait) */
  size_t nwait, capwait;
  unsigned long turn;   /* turns of luv's loop run_shared has run */
} driver;

static driver *get_driver(lw_sched *S);

static uint64_t to_ms(double sec) {
  if (!(sec > 0)) return 0;
  if (sec > 1e9) sec = 1e9;
  return (uint64_t)ceil(sec * 1000.0);
}

static void noop_idle(uv_idle_t *h) { (void)h; }
/* uv_run(ONCE) runs a timer already due before it polls: without the
   stop, the poll then blocks on open sockets past the deadline */
static void own_due(uv_timer_t *t) { uv_stop(t->loop); }

static void poll_own(void *ud) {
  driver *d = (driver *)ud;
  uv_run(&d->own, UV_RUN_NOWAIT);
}

static void close_own(lw_sched *S) {
  driver *d = (driver *)S->driver;
  if (d == NULL) return;
  if (d->att) lw_sched_detach(S);
  if (d->own_ok) {
    uv_close((uv_handle_t *)&d->own_timer, NULL);
    uv_run(&d->own, UV_RUN_DEFAULT); /* finish closes and stray requests */
    uv_loop_close(&d->own);
  }
  free(d->wait);
  free(d);
  S->driver = NULL;
}

static driver *get_driver(lw_sched *S) {
  driver *d = (driver *)S->driver;
  if (d != NULL) return d;
  d = (driver *)calloc(1, sizeof *d);
  if (d == NULL) return NULL;
  S->driver = d;
  S->driver_free = close_own;
  return d;
}

/* luaweave's own loop, made on first use */
static uv_loop_t *own_loop(lw_sched *S) {
  driver *d = get_driver(S);
  if (d == NULL) return NULL;
  if (!d->own_ok) {
    if (uv_loop_init(&d->own) != 0) return NULL;
    uv_timer_init(&d->own, &d->own_timer);
    uv_unref((uv_handle_t *)&d->own_timer);
    d->own_ok = 1;
    if (d->att == NULL) { /* host-stepped: poll I/O at each step */
      S->poll = poll_own;
      S->poll_ud = d;
    }
  }
  return &d->own;
}

uv_loop_t *lw_sched_loop(lw_sched *S) {
  driver *d;
  if (S == NULL || lws_gone(S)) return NULL;
  d = get_driver(S);
  if (d == NULL) return NULL;
  if (d->att) return d->att->prep.loop;
  return own_loop(S);
}

static int collect(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

/* The loop has nothing left that could complete the async operations
   still out.  A task.wrap callback nobody holds any more completes its
   own with an error when it is collected: collect once.  1 if that gave
   a task work, 0 if nothing can (the run stops instead of spinning). */
static int unstick(lw_sched *S) {
  size_t before = lw_sched_async(S);
  (void)lws_protect(S, collect, NULL); /* no memory: stop as stuck */
  return lws_queued(S) > 0 || lw_sched_async(S) < before;
}

static void rearm(lw_sched *S);

static int push_alive(lua_State *L, void *ud) {
  lua_pushboolean(L, uv_loop_alive((uv_loop_t *)ud));
  return 1;
}

/* wake the tasks in uv.run whose run is over: "once" ones after a turn,
   the others when the loop would end a plain uv_run (nothing but them
   left: no task to run, no timer, no other async operation, no active
   handle or request).  1 if any was woken. */
static int settle_runs(lw_sched *S, driver *d, uv_loop_t *loop) {
  size_t i, j = 0, n = d->nwait;
  int idle = lws_queued(S) == 0 && lw_sched_ntimers(S) == 0 &&
             lw_sched_async(S) == n && !uv_loop_alive(loop);
  for (i = 0; i < n; i++) {
    run_waiter *w = &d->wait[i];
    if (idle || (w->once && w->turn != d->turn))
      lw_async_complete(w->op, push_alive, loop); /* idle: false, as uv.run */
    else
      d->wait[j++] = *w;
  }
  d->nwait = j;
  return j < n;
}

/* run_shared ends with tasks still in uv.run (exited, or no memory) */
static void drop_runs(driver *d) {
  while (d->nwait > 0) lw_async_drop(d->wait[--d->nwait].op);
}

int lws_driving_shared(lw_sched *S) {
  driver *d = (driver *)S->driver;
  return d != NULL && d->running && d->att != NULL;
}

int lws_hosted_shared(lw_sched *S) {
  driver *d = (driver *)S->driver;
  return d != NULL && d->att != NULL && d->att->shared && d->att->hosted;
}

int lws_run_wait(lw_sched *S, lw_async *op, int once) {
  driver *d = (driver *)S->driver;
  if (d->nwait == d->capwait) {
    size_t cap = d->capwait ? d->capwait * 2 : 4;
    run_waiter *v = (run_waiter *)realloc(d->wait, cap * sizeof *v);
    if (v == NULL) return LW_EMEM;
    d->wait = v;
    d->capwait = cap;
  }
  d->wait[d->nwait].op = op;
  d->wait[d->nwait].once = once;
  d->wait[d->nwait].turn = d->turn;
  d->nwait++;
  return LW_OK;
}

/* lw_sched_run on luv's loop: a step, then one turn of the loop (luv's
   callbacks run there; the attachment's timer wakes it for the next
   deadline) while the scheduler has work */
static int run_shared(lw_sched *S, driver *d) {
  lw_luv_swap w;
  int rc = LW_OK, flushed = 0;
  if (lw_luv_errors_begin(S, &w)) return LW_EBUSY; /* inside uv.run */
  for (;;) {
    uv_loop_t *loop;
    int alive;
    if (d->att == NULL) break; /* detached from C meanwhile */
    loop = d->att->prep.loop;
    if (lw_sched_step(S) == LW_EMEM) {
      rc = LW_EMEM;
      break;
    }
    rearm(S);
    if (lws_isexited(S)) break;
    if (d->nwait > 0 && settle_runs(S, d, loop)) continue;
    if (lws_queued(S) == 0 && lw_sched_ntimers(S) == 0 && lw_sched_async(S) == 0) {
      /* one more turn before handing the loop back: handles that luv
         callbacks closed in the last one finish closing (luv frees a
         closing handle's memory when its userdata is collected, and
         lua_close would otherwise free one still on the loop) */
      if (flushed) break;
      flushed = 1;
      uv_run(loop, UV_RUN_NOWAIT);
      continue;
    }
    flushed = 0;
    alive = uv_run(loop, lws_queued(S) > 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    d->turn++;
    if (!alive && lws_queued(S) == 0 && lw_sched_ntimers(S) == 0 &&
        !(d->nwait > 0 && settle_runs(S, d, loop)) && !unstick(S))
      break;
  }
  drop_runs(d);
  lw_luv_errors_end(&w);
  return rc;
}

int lw_sched_run(lw_sched *S) {
  driver *d;
  uv_loop_t *loop = NULL;
  int rc = LW_OK;
  if (S == NULL || lws_gone(S)) return LW_EINVAL;
  if ((d = get_driver(S)) == NULL) return LW_EMEM;
  if (d->running || lws_stepping(S)) return LW_EBUSY;
  if (d->att == NULL && lw_luv_join(S) != LW_OK) return LW_EMEM;
  if (d->att && !d->att->shared) return LW_EBUSY;
  if (d->att == NULL && (loop = own_loop(S)) == NULL) return LW_EMEM;
  d->running = 1;
  S->poll = NULL; /* we run the loop ourselves */
  for (;;) {
    int c;
    if (d->att) { /* luv's, from the start or since `require "luv"` */
      rc = run_shared(S, d);
      break;
    }
    c = lw_sched_step(S);
    if (c == LW_EMEM) {
      rc = LW_EMEM;
      break;
    }
    if (lws_isexited(S)) break;
    if (d->att) continue;
    if (lws_queued(S) > 0) {
      uv_run(loop, UV_RUN_NOWAIT);
    } else if (lw_sched_ntimers(S) > 0) {
      uv_ref((uv_handle_t *)&d->own_timer);
      uv_timer_start(&d->own_timer, own_due, to_ms(lw_sched_next(S)), 0);
      uv_run(loop, UV_RUN_ONCE);
      uv_timer_stop(&d->own_timer);
      uv_unref((uv_handle_t *)&d->own_timer);
    } else if (lw_sched_async(S) > 0) {
      if (!uv_run(loop, UV_RUN_ONCE) && lws_queued(S) == 0 && !unstick(S)) break;
    } else {
      break;
    }
  }
  if (d->att == NULL) {
    S->poll = poll_own;
    S->poll_ud = d;
  }
  d->running = 0;
  if (rc != LW_OK) return rc;
  if (lws_isexited(S)) return LW_EEXITED;
  if (lw_sched_deadlocked(S) > 0) return LW_EDEADLOCK;
  return LW_OK;
}

/* attached mode */

static void on_timer(uv_timer_t *t);

/* steps come from Neovim's event queue now (not while lw_sched_run
   runs the loop itself, stepping between turns) */
static int by_editor(const attachment *a, const driver *d) {
  return a->nvim == NV_YES && !d->running;
}

static void rearm(lw_sched *S) {
  driver *d = (driver *)S->driver;
  attachment *a = d ? d->att : NULL;
  int work;
  if (a == NULL) return;
  work = !lws_isexited(S);
  if (by_editor(a, d)) {
    /* a timer callback asks for the step: a zero timeout, for ready
       tasks, also keeps the poll from blocking.  Nothing while a request
       is pending: its step rearms */
    uv_idle_stop(&a->idle);
    if (a->pending || !work) uv_timer_stop(&a->timer);
    else if (lws_queued(S) > 0) uv_timer_start(&a->timer, on_timer, 0, 0);
    else if (lw_sched_ntimers(S) > 0)
      uv_timer_start(&a->timer, on_timer, to_ms(lw_sched_next(S)), 0);
    else uv_timer_stop(&a->timer);
    return;
  }
  if (lws_queued(S) > 0 && work) uv_idle_start(&a->idle, noop_idle);
  else uv_idle_stop(&a->idle);
  if (lw_sched_ntimers(S) > 0 && work)
    uv_timer_start(&a->timer, on_timer, to_ms(lw_sched_next(S)), 0);
  else uv_timer_stop(&a->timer);
}

/* vim.schedule's callback: a step, from the editor's event queue.  A
   request made before a detach, or one that a nested vim.wait runs
   inside a step, does nothing (the outer step rearms).  Never raises:
   task errors are reported by the scheduler, not into the editor's */
static int editor_step(lua_State *L) {
  lw_sched *S = lw_sched_get(L);
  driver *d = S != NULL && !lws_gone(S) ? (driver *)S->driver : NULL;
  attachment *a = d != NULL ? d->att : NULL;
  int was;
  if (a == NULL || !by_editor(a, d)) return 0;
  a->pending = 0;
  was = a->hosted;
  a->hosted = 1;
  lw_sched_step(S); /* refuses (LW_EBUSY) inside a step: vim.wait in a task */
  a->hosted = was;
  rearm(S);
  return 0;
}

/* on the scheduler's thread: is this Neovim (a global `vim` whose
   schedule is a function and whose uv/loop is luv's module)?  Raw reads:
   vim's __index loads modules */
static int detect_editor(lua_State *L) {
  int *yes = (int *)lua_touserdata(L, 1);
  lua_getglobal(L, "vim");
  if (!lua_istable(L, -1)) return 0;
  lua_pushliteral(L, "schedule");
  lua_rawget(L, -2);
  if (!lua_isfunction(L, -1)) return 0;
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  if (!lua_istable(L, -1)) return 0;
  lua_pushliteral(L, "luv");
  lua_rawget(L, -2);
  if (lua_isnil(L, -1)) return 0;
  lua_pushliteral(L, "uv");
  lua_rawget(L, -5);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushliteral(L, "loop");
    lua_rawget(L, -5);
  }
  *yes = lua_rawequal(L, -1, -2);
  return 0;
}

/* on the scheduler's thread: vim.schedule(editor_step) */
static int request_step(lua_State *L) {
  lua_settop(L, 0);
  lua_getglobal(L, "vim");
  lua_getfield(L, -1, "schedule");
  lua_pushcfunction(L, editor_step);
  lua_call(L, 1, 0);
  return 0;
}

/* the first callback decides who steps: the scheduler's thread is free
   here (never inside a step) */
static void settle_mode(attachment *a) {
  int yes = 0;
  if (a->nvim != NV_UNKNOWN || lws_stepping(a->S)) return;
  if (a->shared && lw_cpcall(a->S->T, detect_editor, &yes) != LUA_OK)
    yes = 0; /* no memory, or a `vim` that raises: not the editor */
  lua_settop(a->S->T, 0);
  a->nvim = yes ? NV_YES : NV_NO;
  if (yes) rearm(a->S);
}

static void on_timer(uv_timer_t *t) {
  attachment *a = (attachment *)t->data;
  lw_sched *S = a->S;
  if (S == NULL) return;
  settle_mode(a);
  if (!by_editor(a, (driver *)S->driver)) {
    /* a deadline passed: the next turn's prepare steps, and the idle
       handle keeps the loop alive until then (the step's rearm stops
       it).  Without it a uv.run("once") whose turn ended on this timer
       found nothing alive, and every later "once" ran no turn at all:
       the due task waited for good */
    if (!lws_isexited(S)) uv_idle_start(&a->idle, noop_idle);
    return;
  }
  /* inside a step (a task in vim.wait) a request would only be refused,
     and asked again at every turn: the step's end rearms instead */
  if (a->pending || lws_stepping(S)) return;
  if (lw_cpcall(S->T, request_step, NULL) == LUA_OK) {
    a->pending = 1;
  } else {
    /* vim.schedule refused (replaced, or no memory): said once, and the
       prepare handle steps from now on, as outside the editor, rather
       than the tasks stalling or the request failing at every turn */
    lws_report_msg(S, S->T, lua_isstring(S->T, -1) ? lua_tostring(S->T, -1)
                   : "vim.schedule failed");
    a->nvim = NV_NO;
  }
  lua_settop(S->T, 0);
  rearm(S);
}

static void on_prepare(uv_prepare_t *h) {
  attachment *a = (attachment *)h->data;
  if (a->S == NULL) return;
  settle_mode(a);
  if (by_editor(a, (driver *)a->S->driver)) return;
  if (!lws_stepping(a->S)) {
    a->hosted = !((driver *)a->S->driver)->running;
    lw_sched_step(a->S);
    a->hosted = 0;
  }
  rearm(a->S);
}

static void on_closed(uv_handle_t *h) {
  attachment *a = (attachment *)h->data;
  if (--a->closing == 0) free(a);
}

static int attach(lw_sched *S, uv_loop_t *loop, int shared) {
  driver *d;
  attachment *a;
  if (S == NULL || loop == NULL || lws_gone(S)) return LW_EINVAL;
  if ((d = get_driver(S)) == NULL) return LW_EMEM;
  if (d->att || (d->running && !shared)) return LW_EBUSY;
  if ((a = (attachment *)calloc(1, sizeof *a)) == NULL) return LW_EMEM;
  a->S = S;
  a->shared = shared;
  uv_prepare_init(loop, &a->prep);
  uv_idle_init(loop, &a->idle);
  uv_timer_init(loop, &a->timer);
  a->prep.data = a->idle.data = a->timer.data = a;
  uv_prepare_start(&a->prep, on_prepare);
  a->nvim = shared ? NV_UNKNOWN : NV_NO;
  uv_unref((uv_handle_t *)&a->prep);
  d->att = a;
  S->poll = NULL;
  S->notify = rearm;
  rearm(S);
  return LW_OK;
}

int lw_sched_attach(lw_sched *S, uv_loop_t *loop) { return attach(S, loop, 0); }

int lws_attach_shared(lw_sched *S, uv_loop_t *loop) { return attach(S, loop, 1); }

int lw_sched_detach(lw_sched *S) {
  driver *d;
  attachment *a;
  if (S == NULL) return LW_EINVAL;
  d = (driver *)S->driver;
  if (d == NULL || d->att == NULL) return LW_EINVAL;
  a = d->att;
  d->att = NULL;
  S->notify = NULL;
  if (d->own_ok) {
    S->poll = poll_own;
    S->poll_ud = d;
  }
  a->S = NULL;
  a->closing = 3;
  uv_close((uv_handle_t *)&a->prep, on_closed);
  uv_close((uv_handle_t *)&a->idle, on_closed);
  uv_close((uv_handle_t *)&a->timer, on_closed);
  return LW_OK;
}
