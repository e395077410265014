/*
** lw_cli.h — the command line's inside, shared by its files:
**   lw_cli.c       options, arg, LUA_INIT, the order of the work, main
**   lw_cli_run.c   one piece of work (a -e chunk, a -l, the script, a
**                  prompt line) run as a task to its end; errors; Ctrl-C
**   lw_cli_repl.c  the interactive prompt
** None of it is part of the library.
*/
#ifndef LW_CLI_H
#define LW_CLI_H

/* the library's public face, the Lua version differences, and the few
   things of the scheduler's inside the CLI needs (lw_sched_host.h: why
   they are not public); never lw_sched.h */
#include "luaweave.h"
#include "lw_compat.h"
#include "lw_sched_host.h"

#include <lauxlib.h>

typedef struct lw_cli {
  lua_State *L;        /* the main thread, inside its protected call */
  lw_sched *S;
  lua_State *step;     /* the thread of the work running now, or NULL */
  int step_ended;      /* its end is recorded */
  int status;          /* the process's exit status */
  int interrupted;     /* Ctrl-C found the loop waiting */
  int argc;
  int info_ref;        /* registry: task.info, as the CLI started */
  int list_ref;        /* registry: task.list, as the CLI started */
  int intr_ref;        /* registry: {[thread] = depth}, the waiting tasks
                          a Ctrl-C is to reach (lw_cli_run.c) */
  int intr_n;          /* how many of them have not run yet */
  char cancel_where[LUA_IDSIZE + 40]; /* where the piece was cancelled
                                         from ("" if unknown) */
  int body_ref;        /* registry: what runs a piece under a message
                          handler (LW_CLI_HANDLER), or LUA_NOREF */
  int handled;         /* the handler made the piece's error message */
  /* set while the prompt waits for a line: called before (0) and after
     (1) a task's report is printed, so that the prompt and what was
     typed are put aside and shown again under it (lw_cli_repl.c) */
  void (*aside)(struct lw_cli *c, int after);
} lw_cli;

/* Where xpcall can yield (5.2+, LuaJIT) a piece runs under a message
   handler, as lua.c runs its chunks: the message and traceback are made
   in the failing task at the error (before 5.4's to-be-closed variables
   close, which get them).  5.1 makes them after the task stopped. */
#if LUA_VERSION_NUM >= 502 || defined(LW_LUAJIT)
#define LW_CLI_HANDLER 1
#else
#define LW_CLI_HANDLER 0
#endif

extern const char *lw_cli_progname;

/* how a piece of work came out */
enum {
  LWC_OK,      /* it returned; lua_result-shaped values on L's top */
  LWC_FAILED,  /* it failed, and the error is reported */
  LWC_EXIT,    /* task.exit: stop everything; status is set */
  LWC_STUCK    /* it can never end (deadlock, a plain yield); reported */
};

/* Run the function under its nargs arguments on c->L's top as a task,
   stepping the scheduler until that task ends (other tasks run on).
   LWC_OK pushes what lw_result does (true, values...); the others push
   nothing.  An error is printed at once with its traceback.  Raises
   only memory errors. */
int lw_cli_task(lw_cli *c, int nargs);

/* After the last piece of work: run the other tasks to their end.  Sets
   c->status: 1 after a deadlock, Ctrl-C, or more than errs task errors
   reported in all.  May raise a memory error. */
void lw_cli_drain(lw_cli *c, size_t errs);

/* make the body pieces run in (see LW_CLI_HANDLER); may raise */
void lw_cli_body(lw_cli *c);

/* print "progname: msg" on stderr (the top of L, which it pops) */
void lw_cli_message(lua_State *L);
/* the scheduler's error callback (lw_sched_onerror): the same, for the
   report of a task nobody awaited */
void lw_cli_onerror(void *ud, lua_State *co, const char *msg);

/* Ctrl-C: while Lua code runs, the first SIGINT raises "interrupted!" in
   it; a second one, before it is seen, ends the process as lua(1) does */
void lw_cli_sigint_on(lw_cli *c);
void lw_cli_sigint_off(void);
/* before lua_close: the handle that wakes the loop goes */
void lw_cli_sigint_close(lw_cli *c);

/* the interactive prompt; the -e/-l work is done.  Raises memory
   errors only. */
void lw_cli_repl(lw_cli *c);

/* the version line(s), as lua -v prints them */
void lw_cli_version(void);

#endif
