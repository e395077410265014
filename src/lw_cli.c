/*
** lw_cli.c — `luaweave [options] [script [args]]`: a drop-in lua(1)
** whose main chunk is a task on luaweave's libuv loop.  Options, `arg`,
** LUA_INIT and the order of the work are lua.c's: LUA_INIT, then the
** -e/-l/-W options in order, then the script, then the prompt (-i, or a
** terminal with nothing else to run).  Each piece runs as a task to its
** end (lw_cli_run.c) while the tasks it started run on; the first that
** fails ends the process with status 1.  After the script, the other
** tasks run to their end.  Exit status: task.exit's code; 1 after an
** uncaught error, a reported task error, a deadlock, or a cancelled
** main chunk; 0 otherwise.
*/
#include "lw_cli.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lualib.h>

#ifdef LW_LUAJIT
#include <luajit.h>
#endif

const char *lw_cli_progname = "luaweave";

static void usage(FILE *f) {
  fprintf(f,
    "usage: %s [options] [script [args]]\n"
    "Run a Lua script as the main task of a luaweave scheduler.\n"
    "Available options are:\n"
    "  -e stat   execute string 'stat' (as a task, before the script)\n"
    "  -i        enter interactive mode after executing 'script'\n"
    "  -l mod    require library 'mod' into global 'mod'\n"
    "  -l g=mod  require library 'mod' into global 'g'\n"
    "  -v        show version information (also --version)\n"
    "  -E        ignore environment variables\n"
    "  -W        turn warnings on (Lua 5.4)\n"
    "  -h        show this help (also --help)\n"
    "  --        stop handling options\n"
    "  -         execute stdin and stop handling options\n"
    "Without a script or -e: the prompt on a terminal, else stdin's script.\n"
    "The global 'task' is the task library (spawn, defer, delay, wait,\n"
    "cancel, await, any, exit, clock); require \"luaweave\" works too.\n"
    "Each prompt line runs as a task: task.wait works there, and tasks\n"
    "spawned earlier run on while the prompt waits.\n"
    "Environment: LUA_INIT_5_x or LUA_INIT (code, or @file) runs first;\n"
    "modules are found through LUA_PATH and LUA_CPATH, as lua(1) finds them.\n"
    "Exit status: the code given to task.exit (it wins over a task error\n"
    "reported before it); 1 after an uncaught error (reported at once), an\n"
    "error reported from any task, a main chunk that waits forever or was\n"
    "cancelled, or tasks left waiting when the script ends with nothing\n"
    "to wake them (each named, and where it waits); 0 otherwise.\n"
    "Ctrl-C raises \"interrupted!\" where the code runs.\n"
    "See luaweave(1).\n",
    lw_cli_progname);
}

void lw_cli_version(void) {
  printf("luaweave %s\n", LW_VERSION);
#if defined(LW_LUAJIT)
  printf("%s -- %s. %s\n", LUAJIT_VERSION, LUAJIT_COPYRIGHT, LUAJIT_URL);
#elif LUA_VERSION_NUM >= 502
  printf("%s\n", LUA_COPYRIGHT);
#else
  printf("%s  %s\n", LUA_RELEASE, LUA_COPYRIGHT);
#endif
  fflush(stdout);
}

typedef struct opts {
  int script;   /* argv index of the script: the first non-option (argc
                   if none) */
  int e, i, v, E;
} opts;

enum { P_OK, P_BAD, P_HELP };

/* lua.c's rules; the bad option is in argv[*bad] */
static int parse(int argc, char **argv, opts *o, int *bad) {
  int i;
  memset(o, 0, sizeof *o);
  o->script = argc;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    *bad = i;
    if (a[0] != '-') break;
    if (strcmp(a, "--help") == 0) return P_HELP;
    if (strcmp(a, "--version") == 0) {
      o->v = 1;
      continue;
    }
    switch (a[1]) {
    case '\0': /* "-": stdin is the script */
      o->script = i;
      return P_OK;
    case '-':
      if (a[2] != '\0') return P_BAD;
      o->script = i + 1;
      return P_OK;
    case 'h':
      if (a[2] != '\0') return P_BAD;
      return P_HELP;
    case 'E': case 'W': case 'i': case 'v':
      if (a[2] != '\0') return P_BAD;
      if (a[1] == 'E') o->E = 1;
      if (a[1] == 'i') o->i = o->v = 1;
      if (a[1] == 'v') o->v = 1;
      break;
    case 'e': case 'l':
      if (a[1] == 'e') o->e = 1;
      if (a[2] == '\0') {
        i++;
        if (i >= argc || argv[i][0] == '-') return P_BAD;
      }
      break;
    default:
      return P_BAD;
    }
  }
  o->script = i;
  return P_OK;
}

static void bad_option(const char *a) {
  if ((a[1] == 'e' || a[1] == 'l') && a[2] == '\0')
    fprintf(stderr, "%s: '%s' needs argument\n", lw_cli_progname, a);
  else
    fprintf(stderr, "%s: unrecognized option '%s'\n", lw_cli_progname, a);
}

/* lua.c of 5.1 and 5.2 makes arg just before the script runs (no
   script: no arg), and passes the script argv's words; 5.3, 5.4 and
   LuaJIT make it first, and pass the script arg[1..#arg] */
#if LUA_VERSION_NUM < 503 && !defined(LW_LUAJIT)
#define ARG_LATE 1
#else
#define ARG_LATE 0
#endif

/* arg as lua.c builds it: the script at 0 (with no script, the program
   name; LuaJIT's: nothing, every word below 0), what follows it from
   1, what comes before it below 0.  May raise a memory error. */
static void set_arg(lua_State *L, int argc, char **argv, int script) {
  int i;
#ifndef LW_LUAJIT
  if (script == argc) script = 0;
#endif
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* a chunk that did not load: reported as lua.c does, with no traceback */
static int load_failed(lw_cli *c) {
  lw_host_errmsg(c->L);
  lw_cli_message(c->L);
  c->status = 1;
  return 0;
}

/* run the function on top (nargs arguments above it) as a piece of the
   work; 1 to go on, 0 to stop (c->status set) */
static int run(lw_cli *c, int nargs) {
  int top = lua_gettop(c->L) - nargs - 1;
  int r = lw_cli_task(c, nargs);
  lua_settop(c->L, top);
  if (r == LWC_OK) return 1;
  if (r != LWC_EXIT) c->status = 1;
  return 0;
}

static int dochunk(lw_cli *c, const char *s, const char *name) {
  if (luaL_loadbuffer(c->L, s, strlen(s), name) != 0) return load_failed(c);
  return run(c, 0);
}

static int dofile(lw_cli *c, const char *fname) {
  if (luaL_loadfile(c->L, fname) != 0) return load_failed(c);
  return run(c, 0);
}

static int luainit(lw_cli *c) {
  char name[32];
  const char *init = NULL;
#if LUA_VERSION_NUM >= 502 && !defined(LW_LUAJIT)
  snprintf(name, sizeof name, "=LUA_INIT_%d_%d", LUA_VERSION_NUM / 100,
           LUA_VERSION_NUM % 100);
  init = getenv(name + 1);
#endif
  if (init == NULL) {
    strcpy(name, "=LUA_INIT");
    init = getenv(name + 1);
  }
  if (init == NULL) return 1;
  if (init[0] == '@') return dofile(c, init + 1);
  return dochunk(c, init, name);
}

/* -l [g=]mod: g = require(mod); 5.4's form with '=' on every version */
static int dolibrary(lw_cli *c, const char *spec) {
  lua_State *L = c->L;
  const char *eq = strchr(spec, '=');
  int r, top = lua_gettop(L);
  if (eq != NULL) lua_pushlstring(L, spec, (size_t)(eq - spec));
  else lua_pushstring(L, spec);
  lua_getglobal(L, "require");
  lua_pushstring(L, eq != NULL ? eq + 1 : spec);
  r = lw_cli_task(c, 1);
  if (r != LWC_OK) {
    lua_settop(L, top);
    if (r != LWC_EXIT) c->status = 1;
    return 0;
  }
  lua_settop(L, top + 3); /* name, true, the module */
  /* on every version, as lua.c of 5.2+ (5.1's and LuaJIT's only
     require: docs/cli.md says why) */
  lua_setglobal(L, lua_tostring(L, top + 1));
  lua_settop(L, top);
  return 1;
}

/* the -e, -l and -W options before the script, in order */
static int options(lw_cli *c, char **argv, int script) {
  int i;
  for (i = 1; i < script; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0' || a[1] == '-') continue;
    if (a[1] == 'e' || a[1] == 'l') {
      const char *v = a[2] != '\0' ? a + 2 : argv[++i];
      if (!(a[1] == 'e' ? dochunk(c, v, "=(command line)") : dolibrary(c, v)))
        return 0;
    } else if (a[1] == 'W') {
#if LUA_VERSION_NUM >= 504 && !defined(LW_LUAJIT)
      lua_warning(c->L, "@on", 0);
#endif
    }
  }
  return 1;
}

/* the script, with arg[1..#arg] as its arguments (lua.c reads them from
   arg, which -e code may have changed) */
static int doscript(lw_cli *c, char **argv, int script) {
  lua_State *L = c->L;
  const char *fname = argv[script];
  int n, i;
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
    fname = NULL;
  if (ARG_LATE) set_arg(L, c->argc, argv, script);
  if (luaL_loadfile(L, fname) != 0) return load_failed(c);
  if (ARG_LATE) {
    n = c->argc - script - 1;
    luaL_checkstack(L, n + 3, "too many arguments to script");
    for (i = 1; i <= n; i++) lua_pushstring(L, argv[script + i]);
    return run(c, n);
  }
  lua_getglobal(L, "arg");
  if (!lua_istable(L, -1)) {
    lua_pushliteral(L, "'arg' is not a table");
    lw_cli_message(L);
    c->status = 1;
    return 0;
  }
  n = (int)lw_rawlen(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -n - 1);
  return run(c, n);
}

/* -E on 5.1: its package library read the environment already; put its
   defaults back (Debian's luaconf.h has the library's own).  LuaJIT's
   honours LUA_NOENV as 5.2's does, and its header's defaults are
   upstream's (/usr/local/share/luajit-...), not the ones Debian built the
   library with: it keeps what it chose */
static void noenv_paths(lua_State *L) {
#if LUA_VERSION_NUM < 502 && !defined(LW_LUAJIT) && \
    defined(LUA_PATH_DEFAULT) && defined(LUA_CPATH_DEFAULT)
  lua_getglobal(L, "package");
  if (lua_istable(L, -1)) {
    lua_pushliteral(L, LUA_PATH_DEFAULT);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, LUA_CPATH_DEFAULT);
    lua_setfield(L, -2, "cpath");
  }
  lua_pop(L, 1);
#else
  (void)L;
#endif
}

/* os.exit(code, true) closes the state, and with it the main chunk's
   <close> variables (5.4).  Here the main chunk is a task, which
   lua_close does not close: it goes through task.exit, after which the
   piece of work that runs is closed (lw_cli_task) and the state too. */
static void os_exit(lua_State *L) {
#if LUA_VERSION_NUM >= 504 && !defined(LW_LUAJIT)
  static const char wrap[] =
    "local exit, texit = ...\n"
    "return function(code, close)\n"
    "  if close then\n"
    "    local c = code\n"
    "    if c == nil or c == true then c = 0 elseif c == false then c = 1 end\n"
    "    if math.type(c) == 'integer' then pcall(texit, c) end\n"
    "  end\n"
    "  return exit(code, close)\n"
    "end\n";
  lua_getglobal(L, "os");
  if (luaL_loadbuffer(L, wrap, sizeof wrap - 1, "=os.exit") != LUA_OK)
    lua_error(L);
  lua_getfield(L, -2, "exit");
  lua_getglobal(L, "task");
  lua_getfield(L, -1, "exit");
  lua_remove(L, -2);
  lua_call(L, 2, 1);
  lua_setfield(L, -2, "exit");
  lua_pop(L, 1);
#else
  (void)L;
#endif
}

typedef struct runargs {
  int argc;
  char **argv;
  opts o;
  lw_cli c;
} runargs;

/* the prompt; at the end of its input the tasks started there run to
   their end, as after a script (unless a task.exit ended it).  The
   errors the prompt showed already do not make the status 1: as lua.c's
   prompt, it ends with 0.  May raise a memory error. */
static void repl(lw_cli *c) {
  lw_cli_repl(c);
  if (!lw_host_stopped(c->S)) lw_cli_drain(c, lw_sched_errors(c->S));
}

/* everything runs protected: a memory error anywhere is an exit 1 */
static int pmain(lua_State *L) {
  runargs *r = (runargs *)lua_touserdata(L, 1);
  lw_cli *c = &r->c;
  const opts *o = &r->o;
  int script = o->script;
  c->L = L;
  if (o->E) {
    lua_pushboolean(L, 1); /* the package library reads no LUA_PATH etc. */
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  if (o->E) noenv_paths(L);
  lw_preload(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "luaweave.task");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "info"); /* for what a stuck piece waits on */
  c->info_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "list"); /* for the tasks a deadlock leaves */
  c->list_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_setglobal(L, "task");
  os_exit(L);
  c->S = lw_host_sched(L);
  lw_sched_onerror(c->S, lw_cli_onerror, c);
  c->argc = r->argc;
  lw_cli_body(c);
  lua_newtable(L); /* the tasks a Ctrl-C is to reach */
  c->intr_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (!ARG_LATE) set_arg(L, r->argc, r->argv, script);
  if (o->v) lw_cli_version();
  if (!o->E && !luainit(c)) return 0;
  if (!options(c, r->argv, script)) return 0;
  if (script < r->argc) {
    if (!doscript(c, r->argv, script)) return 0;
  } else if (!o->i && !o->e && !o->v) {
    if (isatty(0)) {
      lw_cli_version();
      repl(c);
      return 0;
    }
    if (!dofile(c, NULL)) return 0;
  }
  if (o->i) {
    repl(c);
    return 0;
  }
  lw_cli_drain(c, 0);
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
  int st, p, bad = 0;
  std_fds();
  if (argv[0] && argv[0][0]) lw_cli_progname = argv[0];
  memset(&r, 0, sizeof r);
  r.argc = argc;
  r.argv = argv;
  p = parse(argc, argv, &r.o, &bad);
  if (p == P_HELP) {
    usage(stdout);
    return 0;
  }
  if (p == P_BAD) {
    bad_option(argv[bad]);
    usage(stderr);
    return 1;
  }
  L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "%s: cannot create state: not enough memory\n",
            lw_cli_progname);
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
    fprintf(stderr, "%s: %s\n", lw_cli_progname,
            lua_isstring(L, -1) ? lua_tostring(L, -1) : "(error object)");
    r.c.status = 1;
  }
  fflush(stdout);
  if (r.c.S != NULL) lw_cli_sigint_close(&r.c);
  lua_close(L);
  return r.c.status;
}
