/*
** luaweave.h — the whole public C face of luaweave.
**
** luaweave keeps the latest result of every resumption of the Lua threads
** (coroutines) it tracks, keyed by the thread's own lua_State pointer, and
** guarantees that a result is never handed to the wrong thread and never
** kept after nobody can ask for it.  See docs/ for the guide.
**
** Conventions
**   - Every function that can fail returns an int: LW_OK (0) or a positive
**     count on success, a negative LW_E* code on failure.  A failing call
**     changes nothing.
**   - Functions that push onto a Lua stack may raise a Lua memory error,
**     exactly like lua_push*; call them where a Lua error is expected
**     (inside a lua_CFunction or a protected call).  Their comment says so.
**   - `s` may be NULL everywhere: the call fails with LW_EINVAL.
**   - `co` must be a live thread (you hold it, like any lua_State).  A thread
**     of another Lua state than the store's fails with LW_EUNIVERSE.
**   - Error codes: LW_ERRNO_MAP below; lw_strerror and lw_errname cover
**     every one.
**
** Lifetimes at lua_close (docs/guide.md, "Lifetimes at lua_close")
**   - Async tokens (lw_async *) stay safe to use forever: once their Lua
**     state closed (or once completed or dropped) every completion and
**     lw_async_drop answers LW_ESTALE and touches nothing, from any
**     thread.  So a libuv callback that runs after lua_close may complete
**     its token as usual.
**   - lw_store * and lw_sched * pointers stay valid while lua_close runs
**     finalizers, also after luaweave's own finalizers ran (a host's
**     userdata created before luaweave was opened is finalized after
**     them): from then on every function answers LW_EINVAL (counts 0,
**     lw_sched_next -1, lw_sched_state/lw_sched_loop/lw_handle_thread
**     NULL, the setters do nothing that matters) and lw_store_open/get,
**     lw_sched_open/get answer NULL.  Once lua_close has returned they are
**     freed, as dead as the lua_State itself: do not call anything with
**     them then.
**   - Handles are plain numbers: during lua_close as the store (LW_EINVAL);
**     afterwards there is nothing to release.
**   (The structs are userdata in the registry: lua_close frees them with
**   every other object, after the last finalizer.)
*/
#ifndef LUAWEAVE_H
#define LUAWEAVE_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>

#define LW_VERSION_MAJOR 0
#define LW_VERSION_MINOR 1
#define LW_VERSION_PATCH 0
#define LW_VERSION "0.1.0"

/* Only what this header declares is exported from the shared library;
   everything else is built with hidden visibility. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define LW_API __attribute__((visibility("default")))
#else
#define LW_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
** Error codes: one table, in the spirit of libuv's UV_ERRNO_MAP.  Each
** entry is XX(name, value, message): LW_<name> is the (negative) code,
** lw_strerror gives the message, lw_errname the name.  Iterate the table
** with your own XX to map codes (a test does: every code distinct, every
** message real).
*/
#define LW_ERRNO_MAP(XX)                                                     \
  XX(EMEM,        -1, "not enough memory")                                   \
  XX(EINVAL,      -2, "invalid argument")                                    \
  XX(EUNIVERSE,   -3, "thread of another Lua state")                         \
  XX(ENOTTRACKED, -4, "not tracked")                                         \
  XX(ESTATE,      -5, "thread cannot be resumed")                            \
  XX(ENOTSUP,     -6, "not supported by this Lua version")                   \
  XX(EDEADLOCK,   -7, "deadlock: tasks await and nothing can wake them")     \
  XX(EEXITED,     -8, "the scheduler stopped (task.exit)")                   \
  XX(EBUSY,       -9, "busy: running, attached or stepping")                 \
  XX(ESTALE,     -10, "stale handle or async token")

/* What the codes mean:
     LW_EMEM        out of memory; nothing changed
     LW_EINVAL      NULL or out-of-range argument, or a store/scheduler
                    whose Lua state is closing (see "lua_close" below)
     LW_EUNIVERSE   the thread belongs to another Lua state
     LW_ENOTTRACKED the thread is not tracked
     LW_ESTATE      the thread cannot be resumed (dead, running, normal),
                    or is the main thread (never tracked, resumed, held,
                    cancelled or made a task)
     LW_ENOTSUP     this Lua version cannot do it
     LW_EDEADLOCK   tasks await, and nothing can ever wake them
     LW_EEXITED     task.exit was called: the scheduler stopped
     LW_EBUSY       already running, attached, or stepping
     LW_ESTALE      not a live handle or async token: released, taken,
                    completed or dropped already, never issued by this
                    store, or its Lua state closed */
enum lw_errno {
  LW_OK = 0,
#define LW_ERRNO_XX(name, value, msg) LW_##name = (value),
  LW_ERRNO_MAP(LW_ERRNO_XX)
#undef LW_ERRNO_XX
  LW_ERRNO_LAST = -10 /* the most negative code */
};

/* What lw_status answers */
enum lw_status_code {
  LW_UNTRACKED = 0, /* not tracked (or forgotten) */
  LW_PENDING,       /* tracked, no resumption recorded yet */
  LW_YIELDED,       /* last resumption yielded */
  LW_RETURNED,      /* last resumption returned (thread is dead) */
  LW_FAILED,        /* last resumption raised an error (thread is dead) */
  LW_CANCELLED,     /* cancelled: will never run again */
  LW_RUNNING        /* a recorded resumption is under way */
};

/* One result store per Lua state (shared by all its threads). */
typedef struct lw_store lw_store;

/*
** The store of L's Lua state, created on first use.  Opening installs
** luaweave's allocator hook on the state (see docs/guide.md: this is how
** the store learns the exact moment a tracked thread is freed).  Returns
** NULL when memory runs out, or when lua_close has already finalized the
** store (a finalizer running later gets no new one).  Raises no Lua
** error.
*/
LW_API lw_store *lw_store_open(lua_State *L);

/* The store of L's Lua state, or NULL if none was opened, once lua_close
   has finalized it, or (LuaJIT) if memory ran out looking for it.  Raises
   no Lua error. */
LW_API lw_store *lw_store_get(lua_State *L);

/* Number of threads tracked now (0 for NULL or a closed store).  Raises
   no Lua error. */
LW_API size_t lw_store_count(const lw_store *s);

/* Bytes luaweave itself holds for the store's map and handles (0 for
   NULL).  Raises no Lua error. */
LW_API size_t lw_store_bytes(const lw_store *s);

/*
** Start tracking co.  Tracking does not keep co alive.  Tracking a thread
** already tracked keeps its record.  LW_EMEM when the map cannot grow.
** The main thread is never a coroutine: lw_track, lw_resume, lw_hold and
** lw_cancel refuse it with LW_ESTATE, as the scheduler's spawn, defer,
** delay and cancel do (lw.track/lw.resume and the task functions raise
** "the main thread cannot be ...").  luaweave knows the main thread
** from the registry on 5.2+; on 5.1 and LuaJIT, which keep it nowhere
** visible, it learns it when the store is opened from the main thread
** (luaopen_luaweave in the main chunk, lw_store_open(L) of the state a
** host made) or when lw.track/lw.resume is called from it.
*/
LW_API int lw_track(lw_store *s, lua_State *co);

/* Forget co and its result.  LW_ENOTTRACKED if it was not tracked. */
LW_API int lw_untrack(lw_store *s, lua_State *co);

/* An lw_status, or a negative LW_E* code. */
LW_API int lw_status(lw_store *s, lua_State *co);

/*
** Resume co like lua_resume (Lua 5.4 signature on every version) and, when
** co is tracked, record what it yielded, returned or raised.  Returns the
** Lua status (LUA_OK, LUA_YIELD, or an error status), or LW_ESTATE without
** touching anything if co is not resumable (dead, running or normal), or
** LW_EUNIVERSE/LW_EINVAL.
**
** A tracked co must be resumed with lw_resume (reset with lw_reset), or
** untracked before it is run raw.  The store validates a record against
** co's status and stack top before serving it, so a raw lua_resume or
** lua_xmove that changes either makes co read LW_PENDING; but a dead co
** run again raw to an end that leaves it dead and empty (the host pops
** the new values) looks exactly as the record left it, and the first
** life's result is still served: no public Lua API can tell them apart.
**
** Afterwards, read results with lw_result; what stays on co's stack is the
** store's: on LUA_YIELD the *nres values are on top of co's stack and stay
** there until the next resumption (do not pop them); on an error the error
** object is on top.  When a tracked co returns, its values move into the
** store so that co is dead as Lua sees it.  An untracked co is left as
** lua_resume leaves it.  If recording runs out of memory, co is untracked
** and LW_EMEM is returned (the resumption itself happened).
** Before Lua 5.4 an error in a __gc finalizer propagates through whatever
** allocation ran the finalizer; one raised while co's returned values
** are filed is not a failure: the values are recorded all the same and
** the resumption's status returned.  lw_resume itself raises no Lua
** error, so it does not raise that __gc error; lw.resume (and
** coroutine.resume/wrap under lw.install) raise it after recording, as
** the allocating call it interrupted would have (5.1/LuaJIT: the
** finalizer's error; 5.2/5.3: "error in __gc metamethod (...)"), and
** lw.result then has the values.  (5.4 turns __gc errors into warnings.)
*/
LW_API int lw_resume(lw_store *s, lua_State *co, lua_State *from, int nargs,
              int *nres);

/*
** Push co's latest result onto L shaped like coroutine.resume's results:
** true, v1..vn / false, err / false, "cancelled"; or one nil while nothing
** is recorded.  Returns the number of values pushed, or a negative code
** (nothing pushed).  May raise a Lua memory error.
*/
LW_API int lw_result(lw_store *s, lua_State *co, lua_State *L);

/* lw_result, then forget co.  May raise a Lua memory error. */
LW_API int lw_take(lw_store *s, lua_State *co, lua_State *L);

/*
** Mark co cancelled: it will not be resumed by luaweave again.  Where the
** Lua version can (5.4), a suspended co is closed: pending to-be-closed
** variables run; if one raises, co is failed with that error instead.  A
** co never started loses its function.  A co whose end is recorded
** already (returned, failed, cancelled) keeps that result.
** Returns LW_OK, or a negative code; LW_ESTATE if co is running or normal.
** Tracks co if it was not tracked.  May raise a Lua memory error.
*/
LW_API int lw_cancel(lw_store *s, lua_State *co, lua_State *from);

/*
** Recycle co for new work (Lua 5.4: lua_closethread/lua_resetthread):
** untracks it first, so its old result can never reach its new life.
** Returns the status of the reset as Lua gives it: LUA_OK, or an error
** status, with the error object on top of co, when a to-be-closed
** variable raises or when co had died by an error (Lua reports that
** error again); LW_ESTATE for a running/normal thread, or LW_ENOTSUP
** where the Lua version cannot reset threads.
*/
LW_API int lw_reset(lw_store *s, lua_State *co, lua_State *from);

/*
** The thread's identity: its address.  Stable while co lives; another
** thread may get the same key after co is freed (the store copes; a key
** alone proves nothing).
*/
LW_API uintptr_t lw_key(const lua_State *co);

/*
** Handles: a host that holds no Lua reference to a thread keeps the thread
** (and so its result) alive with a handle until it releases or takes it.
** A handle is a positive 64-bit number with a generation (a serial): a
** released or taken handle, one of another store, a registry reference
** or any other number is refused with LW_ESTALE (or LW_EINVAL for a
** value <= 0) and touches nothing; a handle is never reused for another
** thread (until 2^31 handles later in the same slot).  L is any thread
** of the store's Lua state (else LW_EUNIVERSE).  A closed store (the
** state is closing) answers LW_EINVAL / NULL.  After lua_close returned
** the store pointer is dead (see "lua_close" below); handles then are
** mere numbers that need no release.
*/
typedef int64_t lw_handle;
/* Track the thread at index idx of L and return a handle (> 0), or
   LW_EINVAL (not a thread), LW_ESTATE (the main thread), LW_EUNIVERSE,
   LW_EMEM (nothing changed).
   May raise a Lua memory error (the registry grows). */
LW_API lw_handle lw_hold(lw_store *s, lua_State *L, int idx);
/* The thread of a live handle, or NULL for any other value.  Raises no
   Lua error. */
LW_API lua_State *lw_handle_thread(lw_store *s, lua_State *L, lw_handle h);
/* Drop the handle; the thread stays tracked while it lives.  LW_OK,
   LW_ESTALE, LW_EINVAL, LW_EUNIVERSE.  Raises no Lua error. */
LW_API int lw_release(lw_store *s, lua_State *L, lw_handle h);
/* lw_take on the handle's thread, then release the handle (only when
   the take succeeded: on a negative code the handle stays).  LW_ESTALE
   for a handle that is not live.  May raise a Lua memory error. */
LW_API int lw_handle_take(lw_store *s, lua_State *L, lw_handle h);

/* The name of a status ("untracked", "pending", ...), or NULL.  Raises
   no Lua error. */
LW_API const char *lw_status_name(int status);
/* The message of a code of LW_ERRNO_MAP ("no error" for LW_OK), or
   "unknown luaweave error code" for any other value.  Never NULL. */
LW_API const char *lw_strerror(int code);
/* The name of a code ("LW_EMEM", ..., "LW_OK"), or NULL for a value that
   is not one.  Both raise no Lua error and are safe from any thread. */
LW_API const char *lw_errname(int code);

/* ------------------------------------------------------------------ */
/* The scheduler                                                       */
/*
** One scheduler per Lua state, created on first use.  It knows no event
** loop: something steps it (lw_sched_run on luaweave's own libuv loop,
** lw_sched_attach on a host's loop, or the host calling lw_sched_step).
** A cycle (step) first runs what was deferred before it (outside any
** step), then the timers that were due when it began, in deadline order
** with FIFO ties, then the deferred queue in FIFO order, including work
** deferred while it drains.  Every task is tracked in the store.
*/
typedef struct lw_sched lw_sched;

/* The scheduler of L's Lua state, created (with the store) on first use;
   NULL when memory runs out, or when lua_close has already finalized it
   (the task functions then raise "the Lua state is closing").  Raises no
   Lua error. */
LW_API lw_sched *lw_sched_open(lua_State *L);
/* The scheduler of L's Lua state, or NULL (none, or lua_close has
   finalized it; on LuaJIT also when memory ran out looking for it).
   Raises no Lua error. */
LW_API lw_sched *lw_sched_get(lua_State *L);

/*
** Spawn, defer, delay from C.  The function or thread to run is at
** -(nargs+1) on L, its arguments above it; all are popped and the task's
** thread is pushed.  lw_sched_spawn resumes it now, until its first
** yield; its errors go to the error callback, never to the caller (at
** the end of the step, unless awaited by then).  A thread given to
** defer or delay starts with the arguments of a direct resume made
** before its turn, and its turn is then skipped.
** Return LW_OK; LW_EINVAL (not a function or thread, nargs out of range,
** or the state is closing; nothing changed); LW_EUNIVERSE (L of another
** Lua state); LW_ESTATE (a thread that cannot run: dead, cancelled, or
** the main thread; for spawn also the running thread or one resuming
** another; nothing changed).  Memory errors are raised, as by lua_push*
** (call them where a Lua error is expected), never returned.
*/
LW_API int lw_sched_spawn(lw_sched *S, lua_State *L, int nargs);
LW_API int lw_sched_defer(lw_sched *S, lua_State *L, int nargs);
LW_API int lw_sched_delay(lw_sched *S, lua_State *L, double seconds, int nargs);

/* Never resume co again; close it where Lua can; wake its awaiters with
   false, "cancelled".  A dead thread, or one whose end is recorded:
   nothing happens (LW_OK).  Any other thread, task or not, is cancelled:
   an untracked one is tracked and reads "cancelled" (one never started
   loses its function).  LW_ESTATE for the main thread.
   The running thread is cancelled when it next yields.  From inside a step
   (a task's C code) this returns LW_EBUSY: use task.cancel there. */
LW_API int lw_sched_cancel(lw_sched *S, lua_State *co);

/*
** Give a dead task's thread back for reuse (Lua 5.4: lua_closethread /
** lua_resetthread): it is untracked first, so its old result can never
** reach its next life, reset, and kept in a small pool (256 threads; more
** go to the GC) from which spawn, defer and delay of a function take
** their thread before creating one.  The caller promises what a thread
** pool always needs: nothing else holds co, because co will run other
** work.  LW_OK; LW_ESTATE if co is not dead; LW_EBUSY if co is a
** scheduled task, is awaited, is the main task or the scheduler's own
** thread, or a woken task.any waiter will be handed co when it runs
** (until the step that runs it); LW_ENOTSUP before Lua 5.4;
** LW_EMEM (nothing changed); LW_EUNIVERSE.  Raises no Lua error.
*/
LW_API int lw_sched_recycle(lw_sched *S, lua_State *co);
/* Run one cycle.  Returns the number of resumptions, or LW_EEXITED,
   LW_EBUSY (called from inside a step), LW_EINVAL.  A cycle takes at
   most LW_STEP_BUDGET entries of the deferred queue (its due timers run
   all the same); the rest wait for the next cycle, after its due
   timers, so that a chain of task.defers cannot hold timers or I/O
   back.  lw_sched_next says 0 while work is left. */
LW_API int lw_sched_step(lw_sched *S);
#define LW_STEP_BUDGET 10000
/* The same with a budget of its own (>= 1, else LW_EINVAL): a host
   that must keep its frame time steps with a small one. */
LW_API int lw_sched_step_budget(lw_sched *S, int budget);

/* Seconds until the scheduler has work: 0 now, > 0 the next timer,
   -1 nothing scheduled (only outside events could wake it). */
LW_API double lw_sched_next(lw_sched *S);

/* Counts: tasks that can still run by themselves (queued + timers), tasks
   awaiting other tasks, outstanding async operations, errors reported. */
LW_API size_t lw_sched_ready(const lw_sched *S);
LW_API size_t lw_sched_waiting(const lw_sched *S);
LW_API size_t lw_sched_async(const lw_sched *S);
LW_API size_t lw_sched_errors(const lw_sched *S);

/* After task.exit: 1 and *code set; else 0. */
LW_API int lw_sched_exited(const lw_sched *S, int *code);

/* Where errors of tasks nobody awaits go: msg holds the error and a
   traceback.  NULL restores the default (print to stderr). */
typedef void (*lw_error_fn)(void *ud, lua_State *co, const char *msg);
LW_API void lw_sched_onerror(lw_sched *S, lw_error_fn fn, void *ud);

/* Told of every end: fn(ud, co, status) runs whenever the end of a task
   or of a tracked thread is recorded (status LW_RETURNED, LW_FAILED or
   LW_CANCELLED), by whatever path it ended: a step, lw_resume,
   coroutine.close, lw_cancel, lw_reset.  It must not raise or resume
   threads.  A host on the attached or stepped driver learns this way
   which tasks ended in a step.  NULL stops it. */
typedef void (*lw_end_fn)(void *ud, lua_State *co, int status);
LW_API void lw_sched_onend(lw_sched *S, lw_end_fn fn, void *ud);

/* The number of tasks that await and that nothing can ever wake (no
   queued work, no timer, no outstanding async operation), or 0.  Before
   answering, awaited threads that ended outside the scheduler's sight
   (a raw lua_resume) have their awaiters woken.  What lw_sched_run
   answers LW_EDEADLOCK for; a host on the attached or stepped driver
   asks it when its loop idles.  May run a step's worth of waking (no
   task runs).  Raises no Lua error. */
LW_API size_t lw_sched_deadlocked(lw_sched *S);

/* The clock, in seconds (default: monotonic).  For tests and hosts with a
   clock of their own.  NULL restores the default. */
typedef double (*lw_clock_fn)(void *ud);
LW_API void lw_sched_setclock(lw_sched *S, lw_clock_fn fn, void *ud);
LW_API double lw_sched_now(lw_sched *S);

/* ------------------------------------------------------------------ */
/* Async C functions                                                   */
/*
** A lua_CFunction suspends its calling task with
**     lw_async *op = lw_async_begin(L);  ...start work...
**     return lw_async_yield(L, op);
** and the host completes it later, from any callback of its own, with
**     lw_async_complete(op, push, ud);      (push runs protected)
** or  lua_push...(lw_sched_state(S), ...); lw_async_resolve(op, n);
** or  lua_push...(lw_sched_state(S), err); lw_async_reject(op);
** or gives up on it with lw_async_drop(op).
** The task then resumes: the C function returns the n values, or raises
** err.  Such functions MUST be registered with lw_async_wrap (pushed by
** it, then set where Lua code calls them): the wrapper is what turns the
** outcome into results or an error, and, before 5.4 and on LuaJIT, what
** suspends the task (so that a cancelled task stays suspended, and so
** that LuaJIT never takes the suspension for a yield out of a hook).
** Called unwrapped, the function's caller gets luaweave's internal
** marker and an ok flag in front of the values.
**
** Tokens.  An lw_async * is an opaque token, not memory: never
** dereference it.  It is live from lw_async_begin until the first
** completion or drop, even if its task was cancelled meanwhile (the
** outcome is then discarded).  Every completion function and
** lw_async_drop CONSUME a live token, whatever they return; afterwards
** the same token answers LW_ESTALE and touches nothing.  So does a token
** whose Lua state has closed (lua_close makes its scheduler's tokens
** stale before anything is freed): completing one after lua_close, even
** from a libuv callback that runs after it, is safe.  NULL answers
** LW_EINVAL.  Tokens are numbers in one process-wide table (guarded by a
** mutex), so a stale token is refused until 2^40 tokens later (2^16 on
** 32-bit machines).
**
** Threads.  A live token must be completed or dropped on the OS thread
** that runs its Lua state (or under the host's own lock for that state):
** completion resumes Lua code.  libuv callbacks of the loop that drives
** the scheduler run there, and so does uv_queue_work's after-work
** callback: complete from that one, never from the work callback.
** luaweave offers no cross-thread bridge: a host with results from
** other threads hands them over with its own uv_async_t (whose callback
** runs on the loop thread).  Checking or completing a stale token is
** safe from any thread.
*/
typedef struct lw_async lw_async;
/* NULL (with a Lua error raised) when L is not a task that can yield;
   raises a Lua memory error when memory runs out */
LW_API lw_async *lw_async_begin(lua_State *L);
LW_API int lw_async_yield(lua_State *L, lw_async *op);
/* push f (a lua_CFunction that may call lw_async_yield) wrapped so that
   a rejection raises in the task.  What f itself raises with luaL_error
   or luaL_argerror names the line that called the wrapper and the name
   it was called by (a method's self not counted), as Lua's own
   functions' errors do; errors f passes on are left alone.  On LuaJIT
   it needs the base library (pcall, coroutine).  May raise a Lua memory
   error. */
LW_API void lw_async_wrap(lua_State *L, lua_CFunction f);
/*
** Completion.  All of these raise no Lua error, consume a live token and
** answer:
**   LW_OK      the task will resume with the outcome (or its task had
**              moved on, cancelled, and the outcome was discarded);
**   LW_ESTALE  not a live token (completed or dropped already, or its
**              Lua state closed): nothing happens, nothing is popped
**              (values you pushed stay where you pushed them: prefer
**              lw_async_complete, whose push runs only for a live token);
**   LW_EINVAL  op is NULL (nothing happens), or the call is malformed:
**              nvalues < 0 or more than lw_sched_state holds, push is
**              NULL, or push returned a count of values it did not push
**              or a negative number other than -1.  The token is
**              consumed all the same, nothing is popped, and the task
**              fails with "invalid async completion";
**   LW_EMEM    no memory to hand the outcome over: the task cannot be
**              resumed and is dropped (it never runs again, and its
**              awaiters are not woken: a deadlock to lw_sched_run).
** lw_async_resolve pops nvalues values from lw_sched_state(S) and
** lw_async_reject one error object.  lw_async_complete runs
** push(L, ud) protected: it pushes the values and returns their count
** (the top `count` values it pushed are the results), or pushes an error
** object and returns -1 to reject.  An error push raises (other than a
** memory error) rejects the task with that error object (LW_OK).
*/
LW_API int lw_async_resolve(lw_async *op, int nvalues);
LW_API int lw_async_reject(lw_async *op);
typedef int (*lw_push_fn)(lua_State *L, void *ud);
LW_API int lw_async_complete(lw_async *op, lw_push_fn push, void *ud);
/* Give up on a token nobody will complete: its task fails with the
   error "async operation dropped" (a pcall in the task catches it; an
   unprotected task ends failed, and its awaiters see that error).
   Answers as the completion functions. */
LW_API int lw_async_drop(lw_async *op);
/*
** Learn that nobody waits for the outcome any more: fn(ud) runs once
** when op's task leaves its wait without a completion (task.cancel or
** lw_sched_cancel, an early wake by lw.resume or task.spawn, or its Lua
** state closing), and never after op was completed or dropped.  It runs
** inside the scheduler's own bookkeeping: it must not call Lua or
** luaweave (a completion included); it starts the teardown (uv_close
** the handle, uv_cancel the request).  op stays live: complete or drop
** it as usual from the libuv callback that follows (the outcome is
** discarded; after lua_close the completion answers LW_ESTALE).  At
** lua_close, hooks run after the tokens went stale and before the
** driver finishes its loop, so a handle closed by a hook is closed
** before lua_close returns on luaweave's own loop.  Registered after
** the task already left the wait, fn runs at once.  One hook per
** token: LW_OK, LW_EBUSY (op has one), LW_ESTALE (not a live token),
** LW_EINVAL (NULL op or fn).  Raises no Lua error.
*/
LW_API int lw_async_oncancel(lw_async *op, void (*fn)(void *ud), void *ud);
/* The scheduler of a live token, or NULL (stale or NULL token).  Raises
   no Lua error. */
LW_API lw_sched *lw_async_sched(lw_async *op);
/* A thread of the scheduler's own, on which a host pushes values to
   complete an async operation or to spawn from outside Lua; NULL for a
   NULL scheduler or one whose state is closing.  Raises no Lua error. */
LW_API lua_State *lw_sched_state(lw_sched *S);

/* ------------------------------------------------------------------ */
/* Drivers (libuv)                                                     */

struct uv_loop_s;
/* Drive S on luaweave's own libuv loop until no task can run any more.
   LW_OK; LW_EEXITED after task.exit; LW_EDEADLOCK if tasks await with
   nothing left to wake them; LW_EBUSY. */
LW_API int lw_sched_run(lw_sched *S);
/* Drive S from a host's loop, which the host runs itself; detach before
   closing the loop. */
LW_API int lw_sched_attach(lw_sched *S, struct uv_loop_s *loop);
LW_API int lw_sched_detach(lw_sched *S);
/* The libuv loop async I/O uses: the attached loop or luaweave's own. */
LW_API struct uv_loop_s *lw_sched_loop(lw_sched *S);

/* The Lua modules: require "luaweave", require "luaweave.task". */
LW_API int luaopen_luaweave(lua_State *L);
LW_API int luaopen_luaweave_task(lua_State *L);
/* require "luaweave.net" (also lw.net): TCP streams (docs/io.md) */
LW_API int luaopen_luaweave_net(lua_State *L);
/* require "luaweave.process": subprocesses (docs/io.md) */
LW_API int luaopen_luaweave_process(lua_State *L);
/* require "luaweave.stdio", "luaweave.signal" (docs/io.md) */
LW_API int luaopen_luaweave_stdio(lua_State *L);
LW_API int luaopen_luaweave_signal(lua_State *L);
/* require "luaweave.fs": lw.fs and the rest of the file system (docs/io.md) */
LW_API int luaopen_luaweave_fs(lua_State *L);
/* Register them in package.preload, so that scripts require them from the
   host's copy of the library.  Needs the package library; may raise a
   Lua memory error. */
LW_API void lw_preload(lua_State *L);

#ifdef __cplusplus
}
#endif

#endif
