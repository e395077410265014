/*
** lw_cli.c — `luaweave [options] [script [args]]`: a runner like lua(1)
** whose main chunk (with the -e and -l work before it) runs as a task on
** luaweave's libuv loop.  Exit status: task.exit's code; 1 after an
** uncaught error in the main chunk, a reported task error, or a deadlock;
** 0 otherwise.
*/
#include "lw_sched.h"
#include "lw_compat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lualib.h>

#ifdef LW_LUAJIT
#include <luajit.h>
#define LW_LUA_NAME LUAJIT_VERSION
#else
#define LW_LUA_NAME LUA_RELEASE
#endif

static const char *progname = "luaweave";

static void usage(FILE *f) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Run a Lua script as the main task of a luaweave scheduler.\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat' (as part of the main task)\n"
    "  -l name   require library 'name' into global 'name'\n"
    "  -v        show version information (also --version)\n"
    "  -h        show this help (also --help)\n"
    "  --        stop handling options\n"
    "  -         execute stdin and stop handling options\n"
    "Without a script or -e, the script is read from stdin.\n"
    "The global 'task' is the task library (spawn, defer, delay, wait,\n"
    "cancel, await, any, exit, clock); require \"luaweave\" works too.\n"
    "Modules are found through LUA_PATH and LUA_CPATH, as lua(1) finds them.\n"
    "Exit status: the code given to task.exit; 1 after an uncaught error\n"
    "in the main chunk, an error reported from any task, or a deadlock;\n"
    "0 otherwise.  See luaweave(1).\n",
    progname);
}

static void version(void) {
  printf("luaweave %s (%s)\n", LW_VERSION, LW_LUA_NAME);
}

typedef struct opts {
  int script;        /* index in argv of the script, 0 if none */
  int has_e;
  int stdin_script;  /* "-" given, or nothing to run at all */
  int show_version;
} opts;

/* 0 ok, 1 bad usage, 2 help shown */
static int parse(int argc, char **argv, opts *o) {
  int i;
  memset(o, 0, sizeof *o);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-') {
      o->script = i;
      return 0;
    }
    if (strcmp(a, "-") == 0) {
      o->stdin_script = 1;
      o->script = i;
      return 0;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) o->script = i + 1;
      return 0;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return 2;
    if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
      o->show_version = 1;
    } else if (strcmp(a, "-e") == 0 || strcmp(a, "-l") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "%s: '%s' needs argument\n", progname, a);
        return 1;
      }
      if (a[1] == 'e') o->has_e = 1;
      i++;
    } else if ((a[1] == 'e' || a[1] == 'l') && a[2] != '\0') {
      if (a[1] == 'e') o->has_e = 1; /* -estat, -lname, as lua accepts */
    } else {
      fprintf(stderr, "%s: unrecognized option '%s'\n", progname, a);
      return 1;
    }
  }
  return 0;
}

/* arg as lua sets it: script at 0, its arguments from 1, the rest below */
static void set_arg(lua_State *L, int argc, char **argv, int script) {
  int i, base = script ? script : argc;
  lua_createtable(L, argc - base, base + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - base);
  }
  lua_setglobal(L, "arg");
}

static int report_load(lua_State *L) {
  fprintf(stderr, "%s: %s\n", progname,
          lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
  return 1;
}

/* push a function that runs the -e/-l work and the script in order, the
   script with its arguments; nonzero if something did not compile */
static int build_main(lua_State *L, int argc, char **argv, const opts *o) {
  static const char runner[] =
    "local steps, n = ...\n"
    "return function(...)\n"
    "  for i = 1, n - 1 do steps[i]() end\n"
    "  if steps[n] then return steps[n](...) end\n"
    "end\n";
  int i, n = 0, last = o->script ? o->script : argc;
  lua_newtable(L);
  for (i = 1; i < last; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "--") == 0) break;
    if (a[1] == 'e') {
      const char *chunk = a[2] ? a + 2 : argv[++i];
      if (luaL_loadbuffer(L, chunk, strlen(chunk), "=(command line)") != 0)
        return report_load(L);
      lua_rawseti(L, -2, ++n);
    } else if (a[1] == 'l') {
      const char *name = a[2] ? a + 2 : argv[++i];
      static const char req[] =
        "local name = ...\n"
        "return function() _G[name] = require(name) end\n";
      if (luaL_loadbuffer(L, req, sizeof req - 1, "=luaweave") != 0)
        return report_load(L);
      lua_pushstring(L, name);
      lua_call(L, 1, 1);
      lua_rawseti(L, -2, ++n);
    } else if (a[1] == 'v' || strcmp(a, "--version") == 0) {
      continue;
    }
  }
  if (o->script || !o->has_e) {
    const char *fname = (o->script && !o->stdin_script) ? argv[o->script] : NULL;
    if (luaL_loadfile(L, fname) != 0) return report_load(L);
  } else {
    lua_pushnil(L);
  }
  lua_rawseti(L, -2, ++n);
  if (luaL_loadbuffer(L, runner, sizeof runner - 1, "=luaweave") != 0)
    return report_load(L);
  lua_insert(L, -2);
  lua_pushinteger(L, n);
  lua_call(L, 2, 1);
  return 0;
}

static int open_libs(lua_State *L) {
  luaL_openlibs(L);
  lw_preload(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaweave.task");
  lua_call(L, 1, 1);
  lua_setglobal(L, "task");
  return 0;
}

typedef struct runargs {
  int argc;
  char **argv;
  opts o;
  int status;
} runargs;

/* everything runs protected: a memory error anywhere is an exit 1 */
static int pmain(lua_State *L) {
  runargs *r = (runargs *)lua_touserdata(L, 1);
  lw_sched *S;
  lua_State *co;
  int rc, nargs, i, st;
  open_libs(L);
  S = lw_sched_check(L);
  set_arg(L, r->argc, r->argv, r->o.script);
  if (build_main(L, r->argc, r->argv, &r->o) != 0) {
    r->status = 1;
    return 0;
  }
  co = lua_newthread(L);
  lua_insert(L, -2);
  lua_xmove(L, co, 1);
  nargs = 0;
  if (r->o.script) {
    /* a new thread has room for about 40 values, and pushing past it
       corrupts the heap: lua.c checks too */
    if (!lua_checkstack(co, r->argc - r->o.script)) {
      lua_pushliteral(L, "too many arguments to script");
      return lua_error(L);
    }
    for (i = r->o.script + 1; i < r->argc; i++, nargs++)
      lua_pushstring(co, r->argv[i]);
  }
  lws_setmain(S, co);
  rc = lw_sched_resume(S, co, L, nargs);
  if (rc == LW_EMEM) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  rc = lw_sched_run(S);
  lws_setmain(S, NULL);
  if (lw_sched_exited(S, &r->status)) return 0;
  if (rc == LW_EMEM) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  st = lw_status(lws_store(S), co);
  if (st == LW_FAILED) {
    int t = lua_gettop(L);
    lw_result(lws_store(S), co, L);
    lw_sched_errmsg(L); /* as task errors are printed */
    lw_traceback(L, co, lua_tostring(L, -1));
    fprintf(stderr, "%s: %s\n", progname, lua_tostring(L, -1));
    lua_settop(L, t);
    r->status = 1;
    return 0;
  }
  if (rc == LW_EDEADLOCK || (st != LW_RETURNED && st != LW_CANCELLED)) {
    size_t n = lw_sched_waiting(S);
    if (n == 0) n = 1;
    fprintf(stderr, "%s: deadlock: %lu thread%s waiting\n", progname,
            (unsigned long)n, n > 1 ? "s" : "");
    r->status = 1;
    return 0;
  }
  r->status = lw_sched_errors(S) > 0 ? 1 : 0;
  return 0;
}

/* a closed standard descriptor would be reused by the event loop's own
   (libuv asserts that those are above 2): point it at /dev/null */
static void std_fds(void) {
  int fd;
  for (fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd) return;
}

int main(int argc, char **argv) {
  runargs r;
  lua_State *L;
  int st, p;
  std_fds();
  if (argv[0] && argv[0][0]) progname = argv[0];
  memset(&r, 0, sizeof r);
  r.argc = argc;
  r.argv = argv;
  p = parse(argc, argv, &r.o);
  if (p == 2) {
    usage(stdout);
    return 0;
  }
  if (p == 1) {
    usage(stderr);
    return 1;
  }
  if (r.o.show_version) {
    version();
    if (!r.o.script && !r.o.has_e) return 0;
  }
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n", progname);
    return 1;
  }
#if LUA_VERSION_NUM >= 502
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &r);
  st = lua_pcall(L, 1, 0, 0);
#else
  st = lua_cpcall(L, pmain, &r);
#endif
  if (st != 0) {
    fprintf(stderr, "%s: %s\n", progname,
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    r.status = 1;
  }
  fflush(stdout);
  lua_close(L);
  return r.status;
}
