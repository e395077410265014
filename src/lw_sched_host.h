/*
** lw_sched_host.h — the scheduler as the command line (src/lw_cli*.c)
** hosts it: the few things the CLI needs beyond luaweave.h, as thin
** accessors (lw_sched_host.c) so that the CLI never reads lw_sched.h,
** the scheduler's inside, which changes with it.
**
** Why not public: the CLI runs its pieces of work (LUA_INIT, -e, the
** script, each prompt line) one at a time as tasks on one loop, and to
** report a piece's error at once it bends the scheduler as no library
** user should: it stops the loop without a task.exit, it owns the error
** report of the task it runs, and its Ctrl-C handler arms a hook on the
** thread that runs.  These are internal (hidden) names of the static
** library, for the CLI and the tests only.
*/
#ifndef LW_SCHED_HOST_H
#define LW_SCHED_HOST_H

#include "luaweave.h"

/* the scheduler of L's state, created on first use.  May raise (memory,
   or the state is closing). */
lw_sched *lw_host_sched(lua_State *L);

/* Resume co (a fresh thread with its function and nargs arguments on
   its stack) now as a task, and settle the outcome as a step does; from
   is the running thread.  LW_OK or LW_EMEM.  Raises no Lua error. */
int lw_host_resume(lw_sched *S, lua_State *co, lua_State *from, int nargs);

/* Report now the failures of tasks that nobody awaited, as a step's end
   does (outside any step and task; else nothing).  The prompt calls it
   after each line: a line is a step of its own there, so a task that
   failed while it ran is not held back until some later step (at an idle
   prompt, the end of input).  LW_OK, or LW_EMEM (the rest are lost). */
int lw_host_flush(lw_sched *S);

/* fn(ud, co) just before the scheduler cancels co, while co's frames are
   still there (5.4 closes the thread before its end is told); NULL: none.
   fn must not raise nor allocate. */
void lw_host_onprecancel(lw_sched *S, void (*fn)(void *ud, lua_State *co),
                         void *ud);

/* Replace the error object on L's top by a printable message (as a task
   error report words it).  May raise a memory error. */
void lw_host_errmsg(lua_State *L);

/* S's result store (every task is tracked there); NULL once closing.
   Raises no Lua error. */
lw_store *lw_host_store(lw_sched *S);

/* Stop lw_sched_run as task.exit would, without an exit code of its own
   (on = 1), or take the stop back (on = 0) before the next run; and
   whether it is stopped (also after a real task.exit: then
   lw_sched_exited says 1).  Raise no Lua error. */
void lw_host_stop(lw_sched *S, int on);
int lw_host_stopped(const lw_sched *S);

/* co's error, if it fails, is the host's to report: the scheduler keeps
   it out of its own report (as lw.run's main task).  NULL: none.
   Raises no Lua error. */
void lw_host_setmain(lw_sched *S, lua_State *co);

/* 1 if the scheduler has co suspended as a task (in task.wait, await,
   any, an async call, or queued); 0 for a plain coroutine.yield, which
   nothing resumes.  Raises no Lua error. */
int lw_host_parked(lw_sched *S, lua_State *co);

/* Push the thread co awaits (task.await, task.any: the first live
   registration found) and return 1, or push nothing and return 0.
   May raise a memory error. */
int lw_host_awaited(lw_sched *S, lua_State *L, lua_State *co);

/* The threads a Ctrl-C interrupts: the scheduler's own thread (where no
   user code runs: never interrupt it), and the innermost task a step is
   resuming now (NULL between steps).  Async-signal-safe reads.  Raise no
   Lua error. */
lua_State *lw_host_own(const lw_sched *S);
lua_State *lw_host_running(const lw_sched *S);

#endif
