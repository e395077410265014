/*
** lw_cli_run.c — one piece of the command line's work (LUA_INIT, a -e
** chunk, a -l, the script, a prompt line) run as a task to its end,
** while every other task runs on.  Its end stops the loop at once, so
** that an error is reported when it happens, never after the other
** tasks are done, and so that the next piece starts right after it.
** Each piece runs under lua.c's message handler where a protected call
** can yield (LW_CLI_HANDLER).  Also Ctrl-C (as lua.c: a hook raises
** "interrupted!"), and what a piece that can never end waits on.
*/
#include "lw_cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static int interrupt_waiting(lw_cli *c, lua_State *co);
static void interrupt_done(lw_cli *c);

/* The piece is being cancelled: note where, for its report: where the
   task that cancels it called task.cancel, when the scheduler runs that
   one now, or else where the piece itself was suspended, when its frames
   are still there.  Read into c's buffer: an end callback may not
   raise, so nothing here allocates. */
static void note_cancel(lw_cli *c, lua_State *co) {
  lua_State *by = lw_host_running(c->S), *at = by != NULL ? by : co;
  lua_Debug ar;
  int level;
  c->cancel_where[0] = '\0';
  for (level = 0; lua_getstack(at, level, &ar); level++)
    if (lua_getinfo(at, "Sl", &ar) && ar.currentline > 0 &&
        strcmp(ar.source, "=luaweave.task") != 0) {
      snprintf(c->cancel_where, sizeof c->cancel_where, "%s %s:%d",
               at == co ? "while it waited at" : "by a task at",
               ar.short_src, ar.currentline);
      return;
    }
}

/* The piece's end is recorded (lw_sched_onend): stop the loop as
   task.exit would, so that nothing else runs before it is dealt with.
   A real task.exit came first when the scheduler is already exited. */
static void on_end(void *ud, lua_State *co, int status) {
  lw_cli *c = (lw_cli *)ud;
  if (co != c->step || lw_host_stopped(c->S)) return;
  c->step_ended = 1;
  if (status == LW_CANCELLED && c->cancel_where[0] == '\0') note_cancel(c, co);
  lw_host_stop(c->S, 1);
}

/* the piece is about to be cancelled: where, while its frames are there
   (5.4 closes it before on_end hears of its end) */
static void pre_cancel(void *ud, lua_State *co) {
  lw_cli *c = (lw_cli *)ud;
  if (co == c->step && !c->step_ended) note_cancel(c, co);
}

/* a traceback line (from its tab to before its newline) of luaweave's
   own Lua code: the task functions' wrappers, LuaJIT's runner */
static int own_frame(const char *l, const char *e) {
  size_t n = (size_t)(e - l);
  return (n > 15 && strncmp(l, "\tluaweave.task:", 15) == 0) ||
         (n > 10 && strncmp(l, "\tluaweave:", 10) == 0);
}

/* what only stands next to such a frame: the C function it called
   (yield, xpcall), the tail calls it made */
static int own_neighbour(const char *l, const char *e) {
  size_t n = (size_t)(e - l);
  return (n >= 12 && strncmp(l, "\t[C]:", 5) == 0 &&
          (strncmp(e - 7, "'yield'", 7) == 0 ||
           (n > 8 && strncmp(e - 8, "'xpcall'", 8) == 0))) ||
         (n == 18 && strncmp(l, "\t(...tail calls...)", 18) == 0) ||
         (n == 15 && strncmp(l, "\t(tail call): ?", 15) == 0);
}

/* "progname: msg" on stderr, as lua.c names its reports; the frames of
   luaweave's own code in its traceback left out (where a task waits
   before 5.4, and LuaJIT's runner): the user's frames remain */
static void cli_say(const char *msg) {
  const char *tb = strstr(msg, "\nstack traceback:\n"), *l, *e, *next;
  int dropped = 0;
  if (lw_cli_progname != NULL) fprintf(stderr, "%s: ", lw_cli_progname);
  if (tb == NULL) {
    fprintf(stderr, "%s\n", msg);
  } else {
    tb += 18;
    fwrite(msg, 1, (size_t)(tb - msg), stderr);
    for (l = tb; *l != '\0'; l = *e ? e + 1 : e) {
      e = strchr(l, '\n');
      if (e == NULL) e = l + strlen(l);
      next = *e ? e + 1 : e;
      if (own_frame(l, e) || (dropped && own_neighbour(l, e))) {
        dropped = 1;
        continue;
      }
      if (own_neighbour(l, e) && *next != '\0') {
        const char *ne = strchr(next, '\n');
        if (own_frame(next, ne ? ne : next + strlen(next))) continue;
      }
      dropped = 0;
      fwrite(l, 1, (size_t)(e - l), stderr);
      fputc('\n', stderr);
    }
  }
  fflush(stderr);
}

void lw_cli_message(lua_State *L) {
  cli_say(lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
  lua_pop(L, 1);
}

/* The error report of a task nobody awaited (message and traceback):
   named as the main chunk's are */
void lw_cli_onerror(void *ud, lua_State *co, const char *msg) {
  lw_cli *c = (lw_cli *)ud;
  (void)co;
  if (c->aside) c->aside(c, 0);
  cli_say(msg);
  if (c->aside) c->aside(c, 1);
}

/* Turn the error object on L's top into its message, on every Lua
   version as lua.c of 5.3 and 5.4 does (the wording of a task's error
   report; docs/cli.md says why not 5.1's or 5.2's); *tb: a traceback
   follows (none after a __tostring's message).  May raise a memory
   error. */
static void errobj_message(lua_State *L, int *tb) {
  int t = lua_type(L, -1);
  *tb = 1;
  if (t != LUA_TSTRING && t != LUA_TNUMBER &&
      luaL_getmetafield(L, -1, "__tostring")) {
    lua_pop(L, 1);
    *tb = 0;
  }
  lw_host_errmsg(L);
}

/* co failed: print its error as lua.c does.  Where the message handler
   ran in co (LW_CLI_HANDLER), the error is its message, traceback and
   all, and co's to-be-closed variables have run with it.  Else (5.1, or
   an error the handler never saw: memory) the message and traceback are
   made here (see errobj_message), then co's variables run (5.4; an
   error of theirs replaces the error).  May raise a memory error. */
static void report(lw_cli *c, lua_State *co) {
  lua_State *L = c->L;
  int tb;
  /* 24: luaL_traceback of 5.4.4 uses more than the slots it checks */
  luaL_checkstack(L, 24, "report");
  lw_result(lw_host_store(c->S), co, L); /* false, err */
  lua_remove(L, -2);
  if (c->handled && lua_type(L, -1) == LUA_TSTRING) tb = 0; /* made */
  else errobj_message(L, &tb);
  if (tb) {
    lw_traceback(L, co, lua_tostring(L, -1));
    lua_remove(L, -2);
  }
#if LUA_VERSION_NUM >= 504
  /* lua.c's __close gets what its message handler made of the error:
     the message with its traceback.  The reset closes with the value
     on the failed thread's top. */
  if (lua_checkstack(co, 1)) {
    lua_pushvalue(L, -1);
    lua_xmove(L, co, 1);
  }
#endif
  /* a failed thread resets to its error, or to the error a __close
     raised while its variables closed, which replaces it */
  if (lw_co_reset(co, L) > LUA_YIELD) {
    lua_xmove(co, L, 1);
    if (!lua_rawequal(L, -1, -2)) {
      lw_host_errmsg(L);
      lua_replace(L, -2);
    } else {
      lua_pop(L, 1);
    }
  }
  lw_cli_message(L);
}

/* "deadlock: n threads waiting", pushed */
static void push_deadlock(lw_cli *c) {
  size_t n = lw_sched_waiting(c->S);
  if (n == 0) n = 1;
  lua_pushfstring(c->L, "deadlock: %d thread%s waiting", (int)n,
                  n > 1 ? "s" : "");
}

static void push_thread(lua_State *L, lua_State *co) {
  if (!lua_checkstack(co, 1)) {
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  lua_pushthread(co);
  lua_xmove(co, L, 1);
}

/* Push task.info(co).waiting ("channel", "event", "semaphore", "await",
   "yield", ...) or nil: the library's own answer, through the task.info
   the CLI kept when it started (a script may replace the global).  May
   raise a memory error. */
static void push_waiting(lw_cli *c, lua_State *co) {
  lua_State *L = c->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->info_ref);
  push_thread(L, co);
  if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_pushnil(L);
    return;
  }
  lua_getfield(L, -1, "waiting");
  lua_remove(L, -2);
}

/* Push where co is suspended ("src:line", or "?") and the name its code
   called there (the function that suspended it: "recv", "await"), or
   nil: the first Lua frame past the task library's own Lua code and C
   functions.  May raise a memory error. */
static void push_where(lua_State *L, lua_State *co) {
  lua_Debug ar;
  int level;
  lua_pushnil(L);
  for (level = 0; lua_getstack(co, level, &ar); level++) {
    if (!lua_getinfo(co, "Sln", &ar)) break;
    if (ar.currentline > 0 && strcmp(ar.source, "=luaweave.task") != 0) {
      lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
      lua_insert(L, -2);
      return;
    }
    lua_pop(L, 1); /* the name of the frame the next one called */
    if (ar.name != NULL && ar.name[0] != '\0') lua_pushstring(L, ar.name);
    else lua_pushnil(L);
  }
  lua_pushliteral(L, "?");
  lua_insert(L, -2);
}

/* Push, in words, what co waits on that can never come ("on a channel
   at x.lua:3", "in 'await' of a task (thread: 0x...) at x.lua:3, which
   waits ..."), following an awaited task depth levels down; 0 (nothing
   pushed) when co waits on nothing of those.  May raise a memory
   error. */
static int push_waits(lw_cli *c, lua_State *co, int depth) {
  static const char *const kinds[][2] = {
    {"channel", "a channel"}, {"event", "an event"},
    {"semaphore", "a semaphore"}};
  lua_State *L = c->L;
  const char *w, *where, *name;
  size_t i;
  int top = lua_gettop(L);
  luaL_checkstack(L, 8, "waits");
  push_waiting(c, co);
  push_where(L, co); /* top+1 waiting, top+2 where, top+3 name */
  w = lua_tostring(L, top + 1);
  where = lua_tostring(L, top + 2);
  name = lua_tostring(L, top + 3);
  for (i = 0; w != NULL && i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcmp(w, kinds[i][0]) == 0) {
      if (name != NULL)
        lua_pushfstring(L, "in %s's '%s' at %s", kinds[i][1], name, where);
      else
        lua_pushfstring(L, "on %s at %s", kinds[i][1], where);
      break;
    }
  if (w == NULL) {
    lua_settop(L, top);
    return 0;
  }
  if (lua_gettop(L) > top + 3) {
    /* a synchronization primitive: pushed above */
  } else if (strcmp(w, "yield") == 0) {
    lua_pushfstring(L, "in coroutine.yield() at %s (nothing resumes it)",
                    where);
  } else if (strcmp(w, "await") == 0 && lw_host_awaited(c->S, L, co)) {
    lua_State *t = lua_tothread(L, -1);
    lua_Debug ar;
    /* a plain coroutine nobody resumed yet has no frame: it is not
       suspended anywhere, and awaiting it starts nothing */
    if (lua_status(t) == LUA_OK && !lua_getstack(t, 0, &ar)) {
      lua_pushfstring(L, "in '%s' of a coroutine (thread: %p) at %s, which "
                      "was never started (nothing resumes it)",
                      name ? name : "await", (void *)t, where);
      depth = 0;
    } else {
      lua_pushfstring(L, "in '%s' of a task (thread: %p) at %s",
                      name ? name : "await", (void *)t, where);
    }
    if (depth > 0 && push_waits(c, t, depth - 1)) {
      lua_pushfstring(L, "%s, which waits %s", lua_tostring(L, -2),
                      lua_tostring(L, -1));
    }
  } else {
    lua_settop(L, top);
    return 0;
  }
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
  return 1;
}

/* co can never end: it yielded to nobody (coroutine.yield at its top
   level, which lua(1) refuses), or it waits on what never comes (said
   in words: on what, where), or else a deadlock of other tasks */
static void report_stuck(lw_cli *c, lua_State *co) {
  lua_State *L = c->L;
  size_t n = lw_sched_waiting(c->S);
  int top = lua_gettop(L);
  if (push_waits(c, co, 1) &&
      strncmp(lua_tostring(L, -1), "in coroutine.yield()", 20) != 0) {
    if (n > 1)
      lua_pushfstring(L, "the main chunk waits forever %s: no other "
                      "task can run (deadlock: %d threads waiting)",
                      lua_tostring(L, -1), (int)n);
    else
      lua_pushfstring(L, "the main chunk waits forever %s: no other "
                      "task is left to wake it", lua_tostring(L, -1));
    lua_remove(L, -2);
  } else if (lua_status(co) == LUA_YIELD && !lw_host_parked(c->S, co)) {
    lua_settop(L, top);
    lua_pushliteral(L,
      "coroutine.yield() outside any coroutine: the main chunk is a task, "
      "and nothing resumes a task that yields plainly (use task.wait or "
      "task.await to suspend it)");
  } else {
    lua_settop(L, top);
    push_deadlock(c);
  }
  lw_cli_message(L);
}

static void raise_mem(lua_State *L) {
  lua_pushliteral(L, "not enough memory");
  lua_error(L);
}

#if LW_CLI_HANDLER
/* the frames the body adds below the piece, cut from its tracebacks:
   none for the C body (its "[C]: in ?" is where lua.c has its own), two
   for LuaJIT's Lua body (xpcall and its function) */
#ifdef LW_LUAJIT
#define BODY_FRAMES 2
#else
#define BODY_FRAMES 0
#endif

/* lua.c's message handler, run in the failing task at the error, while
   its frames are there: a __tostring (which may look at them, as Lua's
   own tests do with debug.getinfo(4)) gives the message without a
   traceback; other non-strings are named by type; a message gets the
   traceback of the task from the error down.  May raise. */
static int msghandler(lua_State *L) {
  lw_cli *c = (lw_cli *)lua_touserdata(L, lua_upvalueindex(1));
  const char *msg = lua_tostring(L, 1), *s, *end;
  int i;
  c->handled = 1;
  if (msg == NULL) {
    /* protected, as the tasks' reports run it (lw_host_errmsg): one
       that raises or yields gives way to the type's name */
    if (luaL_getmetafield(L, 1, "__tostring")) {
      lua_pushvalue(L, 1);
      if (lua_pcall(L, 1, 1, 0) == 0 && lua_type(L, -1) == LUA_TSTRING)
        return 1;
    }
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  s = lua_tostring(L, -1);
  end = s + strlen(s);
  for (i = 0; i < BODY_FRAMES; i++) {
    while (end > s && end[-1] != '\n') end--;
    if (end > s) end--;
  }
  lua_pushlstring(L, s, (size_t)(end - s));
  return 1;
}

#ifdef LW_LUAJIT
/* body(f, ...): f(...) under the handler, its error (made a message)
   raised again, without a position, so that the task fails with it.
   LuaJIT has no lua_pcallk; its xpcall yields. */
static const char body_code[] =
  "local xpcall, handler, error = ...\n"
  "local function finish(ok, ...)\n"
  "  if ok then return ... end\n"
  "  error((...), 0)\n"
  "end\n"
  "return function(f, ...) return finish(xpcall(f, handler, ...)) end\n";

static void push_body(lw_cli *c) {
  lua_State *L = c->L;
  if (luaL_loadbuffer(L, body_code, sizeof body_code - 1, "=luaweave") != 0)
    lua_error(L);
  lua_getglobal(L, "xpcall");
  lua_pushlightuserdata(L, c);
  lua_pushcclosure(L, msghandler, 1);
  lua_getglobal(L, "error");
  lua_call(L, 3, 1);
}
#else
/* body(f, ...): f(...) under the handler (upvalue 1), which can yield
   through lua_pcallk; its error, a message by then, raised again so
   that the task fails with it */
static int body_end(lua_State *L, int st) {
  if (st != LUA_OK && st != LUA_YIELD) return lua_error(L);
  return lua_gettop(L) - 1; /* f's results, above the handler */
}

#if LUA_VERSION_NUM >= 503
static int body_k(lua_State *L, int st, lua_KContext ctx) {
  (void)ctx;
  return body_end(L, st);
}
#else
static int body_k(lua_State *L) {
  return body_end(L, lua_getctx(L, NULL));
}
#endif

static int body(lua_State *L) {
  int n = lua_gettop(L) - 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1); /* handler f args */
  return body_end(L, lua_pcallk(L, n, LUA_MULTRET, 1, 0, body_k));
}

static void push_body(lw_cli *c) {
  lua_pushlightuserdata(c->L, c);
  lua_pushcclosure(c->L, msghandler, 1);
  lua_pushcclosure(c->L, body, 1);
}
#endif

void lw_cli_body(lw_cli *c) {
  push_body(c);
  c->body_ref = luaL_ref(c->L, LUA_REGISTRYINDEX);
}
#else
void lw_cli_body(lw_cli *c) {
  c->body_ref = LUA_NOREF;
}
#endif

int lw_cli_task(lw_cli *c, int nargs) {
  lua_State *L = c->L, *co;
  lw_sched *S = c->S;
  int rc, st, base = lua_gettop(L) - nargs; /* the function's index */
  c->handled = 0;
  if (c->body_ref != LUA_NOREF) { /* body f args */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->body_ref);
    lua_insert(L, base);
    nargs++;
  }
  co = lua_newthread(L);
  lua_insert(L, base);                   /* co f args: co stays anchored */
  if (!lua_checkstack(co, nargs + 1)) {
    lua_pushliteral(L, "too many arguments to script");
    lua_error(L);
  }
  lua_xmove(L, co, nargs + 1);
  c->step = co;
  c->step_ended = 0;
  c->cancel_where[0] = '\0';
  lw_host_setmain(S, co); /* its error is ours to report, not the scheduler's */
  lw_sched_onend(S, on_end, c);
  lw_host_onprecancel(S, pre_cancel, c);
  lw_cli_sigint_on(c);
  rc = lw_host_resume(S, co, L, nargs);
  lw_sync_running(L);
  for (;;) {
    if (rc != LW_EMEM && !lw_host_stopped(S)) {
      rc = lw_sched_run(S);
      lw_sync_running(L);
    }
    if (rc == LW_EMEM || !c->interrupted || c->step_ended) break;
    /* Ctrl-C while it waited in task.wait/await/any: raised there, as
       lua.c raises it in the code that runs, where a pcall catches it.
       The handler is the default one now: a second Ctrl-C ends the
       process, as lua(1)'s. */
    lw_host_stop(S, 0);
    if (!interrupt_waiting(c, co)) {
      lw_host_stop(S, 1);
      break;
    }
    c->interrupted = 0;
  }
  lw_cli_sigint_off();
  interrupt_done(c);
  lw_sched_onend(S, NULL, NULL);
  lw_host_onprecancel(S, NULL, NULL);
  lw_host_setmain(S, NULL);
  c->step = NULL;
  if (rc == LW_EMEM) raise_mem(L);
  if (c->interrupted && !c->step_ended) {
    /* Ctrl-C while it waited in the loop: it ends there, as lua.c's
       code ends where the interrupt finds it */
    c->interrupted = 0;
    lw_host_stop(S, 0);
    luaL_checkstack(L, 24, "report");
    lw_traceback(L, co, "interrupted!");
    lw_cli_message(L);
    if (lw_sched_cancel(S, co) == LW_EMEM) raise_mem(L);
    lua_settop(L, base - 1);
    return LWC_FAILED;
  }
  if (c->step_ended) {
    lw_host_stop(S, 0);
    st = lw_status(lw_host_store(S), co);
    if (st == LW_CANCELLED) {
      /* lua(1) has no such end: said in words, and a failure */
      if (c->cancel_where[0] != '\0')
        lua_pushfstring(L, "the main chunk was cancelled (task.cancel) %s",
                        c->cancel_where);
      else
        lua_pushliteral(L, "the main chunk was cancelled (task.cancel)");
      lw_cli_message(L);
      lua_settop(L, base - 1);
      return LWC_FAILED;
    }
    if (st == LW_FAILED) {
      report(c, co);
      lua_settop(L, base - 1);
      return LWC_FAILED;
    }
    lw_result(lw_host_store(S), co, L);
    lua_remove(L, base);
    return LWC_OK;
  }
  if (lw_sched_exited(S, &c->status)) {
    /* task.exit leaves the piece suspended: its <close> variables run
       now, as when a Lua state closes its main thread */
    if (lua_status(co) == LUA_YIELD && lw_co_reset(co, L) > LUA_YIELD) {
      lua_xmove(co, L, 1);
      lw_host_errmsg(L);
      lw_cli_message(L);
    }
    lua_settop(L, base - 1);
    return LWC_EXIT;
  }
  report_stuck(c, co);
  lua_settop(L, base - 1);
  return LWC_STUCK;
}

/* Push task.list() (through the one the CLI kept) and return its
   length; an error of it gives an empty list.  May raise a memory
   error. */
static int push_tasks(lw_cli *c) {
  lua_State *L = c->L;
  int st;
  luaL_checkstack(L, 4, "tasks");
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->list_ref);
  if ((st = lua_pcall(L, 0, 1, 0)) == LUA_ERRMEM) lua_error(L);
  if (st != 0 || !lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  return (int)lw_rawlen(L, -1);
}

/* the i-th thread of the list on L's top but k values, or NULL (the
   list holds it) */
static lua_State *task_at(lua_State *L, int k, int i) {
  lua_State *co;
  lua_rawgeti(L, -1 - k, i);
  co = lua_tothread(L, -1);
  lua_pop(L, 1);
  return co;
}

/* The loop ran dry, or the scheduler found tasks awaiting with nothing
   to wake them: whatever task.list still has waiting on a channel, an
   event, a semaphore, a plain yield or another task waits forever.
   Report each, by the name tostring gives it, and where it waits; 0
   (nothing printed) when none is left.  May raise a memory error. */
static int report_deadlock(lw_cli *c) {
  lua_State *L = c->L;
  int top = lua_gettop(L), i, n = push_tasks(c), k = 0;
  for (i = 1; i <= n; i++) {
    lua_State *co = task_at(L, k, i);
    luaL_checkstack(L, 4, "deadlock");
    if (co == NULL || co == L || !push_waits(c, co, 1)) continue;
    lua_pushfstring(L, "\n\tthread: %p waits %s", (void *)co,
                    lua_tostring(L, -1));
    lua_remove(L, -2);
    k++;
  }
  if (k == 0) {
    lua_settop(L, top);
    return 0;
  }
  lua_pushfstring(L, "deadlock: %d task%s wait%s forever, and nothing is "
                  "left to wake %s:", k, k > 1 ? "s" : "", k > 1 ? "" : "s",
                  k > 1 ? "them" : "it");
  lua_insert(L, top + 2);
  lua_concat(L, k + 1);
  lw_cli_message(L);
  lua_settop(L, top);
  return 1;
}

/* Ctrl-C after the last piece: it reaches every task waiting in
   task.wait, await or any; 0 when there is none */
static int interrupt_all(lw_cli *c) {
  lua_State *L = c->L;
  int i, n = push_tasks(c), k = 0;
  for (i = 1; i <= n; i++) {
    lua_State *co = task_at(L, 0, i);
    if (co != NULL && co != L) k += interrupt_waiting(c, co);
  }
  lua_pop(L, 1);
  return k;
}

void lw_cli_drain(lw_cli *c, size_t errs) {
  int rc;
  lw_cli_sigint_on(c);
  rc = lw_sched_run(c->S);
  while (rc != LW_EMEM && c->interrupted) {
    /* the first Ctrl-C reaches the waiting tasks (their reports say
       interrupted!), and the loop runs on; the second ends the process,
       the handler being the default one now */
    lw_host_stop(c->S, 0);
    if (!interrupt_all(c)) {
      lw_host_stop(c->S, 1);
      break;
    }
    c->interrupted = 0;
    rc = lw_sched_run(c->S);
  }
  lw_cli_sigint_off();
  interrupt_done(c);
  if (rc == LW_EMEM) raise_mem(c->L);
  if (c->interrupted) {
    lua_pushliteral(c->L, "interrupted!");
    lw_cli_message(c->L);
    c->status = 1;
    return;
  }
  if (lw_sched_exited(c->S, &c->status)) return;
  if (report_deadlock(c)) {
    c->status = 1;
    return;
  }
  if (rc == LW_EDEADLOCK) {
    push_deadlock(c);
    lw_cli_message(c->L);
    c->status = 1;
    return;
  }
  if (lw_sched_errors(c->S) > errs) c->status = 1;
}

/* ------------------------------------------------------------------ */
/* Ctrl-C                                                              */

/* The handler arms a count hook on the thread running Lua code (the
   innermost task the scheduler resumed, and the main thread); the hook
   raises there.  A hook armed on a thread that did not run before the
   interrupt was seen does nothing when it fires later.  The handler
   puts the default action back first: a second Ctrl-C before the hook
   runs (a long C function, the loop waiting) ends the process. */
static lw_cli *volatile sig_cli;
static lw_cli *intr_cli;      /* tasks woken to get the interrupt remain */
static volatile sig_atomic_t sig_pending;
static uv_async_t sig_wake;   /* wakes the loop: code waiting there */
static int sig_wake_open;

/* L's depth: how many frames it has */
static int depth(lua_State *L) {
  lua_Debug ar;
  int n = 0;
  while (lua_getstack(L, n, &ar)) n++;
  return n;
}

/* Raise "interrupted!" in L if L is a task woken to get it, at the
   first point where it runs again: the return of the function it was
   suspended in (task.wait, await, any: at the depth noted), or the
   first Lua instruction it runs (the wrapper that suspends it before
   5.4, or where no return event comes).  Never in a call or return of
   another C function: its C code may be in the middle of its work. */
static void intr_hook(lw_cli *c, lua_State *L, lua_Debug *ar) {
  lua_Integer d;
  int due;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->intr_ref);
  lua_pushthread(L);
  lua_rawget(L, -2);
  d = lua_isnumber(L, -1) ? lua_tointeger(L, -1) : -1;
  lua_pop(L, 1);
  if (d < 0) {
    lua_pop(L, 1);
    return;
  }
  if (ar->event == LUA_HOOKCOUNT || ar->event == LUA_HOOKLINE)
    due = 1;
  else
    due = ar->event != LUA_HOOKCALL && depth(L) == (int)d;
  if (!due) {
    lua_pop(L, 1);
    return;
  }
  lua_pushthread(L);
  lua_pushnil(L);
  lua_rawset(L, -3); /* clears a field: never allocates */
  lua_pop(L, 1);
  if (--c->intr_n == 0) intr_cli = NULL;
#ifdef LW_LUAJIT
  if (c->intr_n == 0) /* the hook is the whole state's: others wait */
#endif
    lua_sethook(L, NULL, 0, 0);
  lua_pushliteral(L, "interrupted!");
  lua_error(L);
}

/* Raises in Lua code only: never in the scheduler's own thread or a C
   function's call or return event, where the scheduler may be in the
   middle of its work (on LuaJIT the hook is the whole state's). */
static void on_hook(lua_State *L, lua_Debug *ar) {
  lw_cli *c = sig_cli;
  if (intr_cli != NULL) {
    if (L != lw_host_own(intr_cli->S)) intr_hook(intr_cli, L, ar);
    if (!sig_pending || c == NULL) return; /* the hook stays: tasks wait */
  }
  if (!sig_pending || c == NULL) {
    lua_sethook(L, NULL, 0, 0);
    return;
  }
  if (L == lw_host_own(c->S) || (lua_getinfo(L, "S", ar) && strcmp(ar->what, "C") == 0))
    return;
  lua_sethook(L, NULL, 0, 0);
  sig_pending = 0;
  luaL_error(L, "interrupted!");
}

static void arm(lua_State *L) {
  if (L != NULL)
    lua_sethook(L, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* Ctrl-C found co waiting in task.wait, await or any (in the loop,
   where no hook can reach it): wake it now (task.defer does, and its
   wait's timer or registrations go stale), and raise "interrupted!"
   where it runs again (intr_hook), so that a pcall around the wait
   catches it.  1 if so; 0 for any other wait (a channel, an event, a
   semaphore, I/O, a plain yield: left as they are).  May raise a
   memory error. */
static int interrupt_waiting(lw_cli *c, lua_State *co) {
  lua_State *L = c->L;
  const char *w;
  int ok;
  push_waiting(c, co);
  w = lua_tostring(L, -1);
  ok = w != NULL && (strcmp(w, "timer") == 0 || strcmp(w, "await") == 0);
  lua_pop(L, 1);
  if (!ok || lua_status(co) != LUA_YIELD) return 0;
  luaL_checkstack(L, 4, "interrupt");
  push_thread(L, co);
  if (lw_sched_defer(c->S, L, 0) != LW_OK) {
    lua_pop(L, 1);
    return 0;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->intr_ref);
  lua_insert(L, -2);
  lua_pushinteger(L, depth(co));
  lua_rawset(L, -3);
  lua_pop(L, 1);
  c->intr_n++;
  intr_cli = c;
  lua_sethook(co, on_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  return 1;
}

/* After a run of the loop: the tasks woken for an interrupt ran (or
   ended otherwise, cancelled before their turn): forget them, so that
   no hook is left firing for them */
static void interrupt_done(lw_cli *c) {
  if (c->intr_n == 0) return;
  c->intr_n = 0;
  intr_cli = NULL;
  lua_newtable(c->L);
  lua_rawseti(c->L, LUA_REGISTRYINDEX, c->intr_ref);
}

/* the loop woke for an interrupt that no Lua code has seen: the piece
   of work waits there; stop the loop, and lw_cli_task ends it */
static void on_wake(uv_async_t *a) {
  lw_cli *c = sig_cli;
  (void)a;
  if (c == NULL || !sig_pending) return;
  sig_pending = 0;
  c->interrupted = 1;
  if (!lw_host_stopped(c->S)) lw_host_stop(c->S, 1);
}

/* Arm co and the coroutines it is resuming, down to the one that runs:
   a hook is per thread (but on LuaJIT), and the one that runs may be a
   plain coroutine the task resumed.  A thread that resumes another sits
   in a C function (coroutine.resume, or the function coroutine.wrap
   made, luaweave's own under lw.install too) that holds the other as
   its first argument or first upvalue; reading them pushes nothing, so
   the threads, which are all suspended in C but the innermost, are not
   changed under the code the signal interrupted. */
static void arm_chain(lua_State *co) {
  int depth;
  for (depth = 0; co != NULL && depth < 64; depth++) {
    lua_Debug ar;
    lua_State *next;
    arm(co);
    if (!lua_getstack(co, 0, &ar) || !lua_getinfo(co, "S", &ar) ||
        strcmp(ar.what, "C") != 0)
      return;
    next = lua_tothread(co, 1);
    if (next == NULL || next == co)
      next = lua_tothread(co, lua_upvalueindex(1));
    co = next != co ? next : NULL;
  }
}

static void on_sigint(int sig) {
  lw_cli *c = sig_cli;
  signal(sig, SIG_DFL);
  if (c == NULL) return;
  sig_pending = 1;
  arm_chain(lw_host_running(c->S));
  arm(c->L);
  if (sig_wake_open) uv_async_send(&sig_wake); /* async-signal-safe */
}

void lw_cli_sigint_on(lw_cli *c) {
  uv_loop_t *loop;
  if (!sig_wake_open && (loop = lw_sched_loop(c->S)) != NULL &&
      uv_async_init(loop, &sig_wake, on_wake) == 0) {
    uv_unref((uv_handle_t *)&sig_wake); /* it keeps no loop running */
    sig_wake_open = 1;
  }
  c->interrupted = 0;
  sig_cli = c;
  sig_pending = 0;
  signal(SIGINT, on_sigint);
}

void lw_cli_sigint_off(void) {
  signal(SIGINT, SIG_DFL);
  sig_cli = NULL;
}

void lw_cli_sigint_close(lw_cli *c) {
  uv_loop_t *loop;
  if (!sig_wake_open) return;
  sig_wake_open = 0;
  uv_close((uv_handle_t *)&sig_wake, NULL);
  if ((loop = lw_sched_loop(c->S)) != NULL) uv_run(loop, UV_RUN_NOWAIT);
}
