/*
** lw_luv.h — the luv bridge (lw_luv.c) and the driver entry it uses
** (lw_loop.c): one uv_loop_t shared with luv when both are in a state;
** and what task.wrap (lw_lua_wrap.c), which makes luv's callback
** functions awaitable, shares with the async operations
** (lw_sched_async.c).
*/
#ifndef LW_LUV_H
#define LW_LUV_H

#include "lw_sched.h"

#include <uv.h>

/* Share one loop with luv: attach the state's scheduler to luv's loop now
   if luv is loaded, else when `require "luv"` loads it.  May raise. */
void lw_luv_share(lua_State *L);

/* For lw_sched_run: attach S to luv's loop if luv is loaded in its state
   and S is not attached.  LW_OK or LW_EMEM; raises no Lua error. */
int lw_luv_join(lw_sched *S);

/* While luaweave itself runs luv's loop, errors raised in luv callbacks
   go to S's error reporter (as task errors) instead of luv's default
   (print, then exit the process): begin swaps luv's callback pcall in,
   end restores it.  Meanwhile luv calls back on a thread of luaweave's
   own: the thread luv keeps (the main thread, or on 5.1 the one that
   loaded luv) may be a task suspended in a yield, such as the CLI's main
   chunk, and a call on a suspended thread corrupts it.  begin answers 1 when luv's own uv.run is running the
   loop (luaweave must not run it again), else 0.  Raise no Lua error. */
typedef struct lw_luv_swap {
  void *ctx;
  int (*prev)(lua_State *L, int nargs, int nresults, int flags);
  lua_State *thread, *prevL; /* the thread luv calls back on */
} lw_luv_swap;
int lw_luv_errors_begin(lw_sched *S, lw_luv_swap *w);
void lw_luv_errors_end(lw_luv_swap *w);

/* lw_loop.c: attach S to luv's loop, also while lw_sched_run runs S on
   luaweave's own loop (it moves over).  An LW_ code; raises no Lua
   error. */
int lws_attach_shared(lw_sched *S, uv_loop_t *loop);

/* lw_loop.c: uv.run called from a task while lw_sched_run runs luv's
   loop (lws_driving_shared answers 1 then) suspends the task on op until
   the loop would end a uv_run of its own (once: until a turn has passed);
   it resumes with what uv.run returns.  LW_OK or LW_EMEM; raise no Lua
   error. */
int lws_driving_shared(lw_sched *S);

/* lw_loop.c: 1 inside a step that S's attachment to luv's loop runs for
   the host (the script's uv.run, Neovim), not for lw_sched_run:
   task.exit has no run to end there */
int lws_hosted_shared(lw_sched *S);

/* lw_lua_wrap.c: raise msg at the line of the nearest caller outside
   luaweave's own Lua wrappers (where luaL_error would name a line of
   them).  Raises. */
int lws_error_at_caller(lua_State *L, const char *msg);
int lws_run_wait(lw_sched *S, lw_async *op, int once);

/* lw_async_begin for S, L's live scheduler (known already: looking it
   up costs a protected call on LuaJIT).  May raise. */
lw_async *lws_async_begin(lw_sched *S, lua_State *L);

/* lw_sched_async.c, for task.wrap's wrapped functions, which skip
   lw_async_wrap's error naming (they name their own errors, and pass
   fn's on untouched).  Where LW_SUSPEND_WRAPPED: replace the C function
   on top (made with LW_SUSPEND_MARK as upvalue 1, suspending through
   lw_async_yield) by its Lua wrapper, which suspends it; may raise.
   Elsewhere: suspend the running task on the async operation it began,
   returning what the completion hands over, or raising its error (the
   wrapper's second half, as a continuation); call as `return`. */
#if LW_SUSPEND_WRAPPED
void lws_async_suspending(lua_State *L);
#else
int lws_async_yieldk(lua_State *L);
#endif

#endif
