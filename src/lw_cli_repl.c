/*
** lw_cli_repl.c — the interactive prompt, as lua.c's: _PROMPT and
** _PROMPT2, an expression's values printed (a line "=x" too), an
** incomplete statement read on over more lines.  Each line runs as a
** task (lw_cli_task).  While the prompt waits, the scheduler runs the
** tasks started earlier: stdin is read on the scheduler's libuv loop (a
** terminal or a pipe; a regular file is read directly, it never waits),
** and a complete line stops the loop the way the end of a piece of work
** does.  With readline (LW_READLINE) a terminal gets line editing and
** history through readline's callback interface.
*/
#include "lw_cli.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#ifdef LW_READLINE
#include <readline/readline.h>
#include <readline/history.h>
#endif

typedef struct input {
  lw_cli *c;
  uv_loop_t *loop;
  int kind;            /* IN_FILE, IN_STREAM, IN_READLINE */
  union { uv_tty_t tty; uv_pipe_t pipe; uv_poll_t poll; } h;
  int open;            /* h is initialized */
  char *buf;           /* bytes read and not yet taken */
  size_t len, cap;
  int eof, nomem;
  int in_run;          /* lw_sched_run runs: a line stops it */
  int stopped;         /* a line stopped it */
  const char *prompt;  /* shown, while a line is awaited (else NULL) */
  int tty;             /* stdin is a terminal */
#ifdef LW_READLINE
  char *rl_line;       /* readline's line, when done */
  int rl_done;
  char *rl_kept;       /* what was typed, put aside under a report */
  int rl_point;
#endif
} input;

enum { IN_FILE, IN_STREAM, IN_READLINE };

#ifdef LW_READLINE
static input *rl_in; /* readline's callback has no user data */
#endif

/* A line is there: stop the scheduler's loop so that it runs */
static void line_ready(input *in) {
  if (in->in_run && !lw_host_stopped(in->c->S)) {
    in->stopped = 1;
    lw_host_stop(in->c->S, 1);
  }
}

static int has_line(const input *in) {
#ifdef LW_READLINE
  if (in->kind == IN_READLINE) return in->rl_done;
#endif
  return in->eof || in->nomem || memchr(in->buf, '\n', in->len) != NULL;
}

/* room for n more bytes; 0 when memory ran out */
static int reserve(input *in, size_t n) {
  char *b;
  size_t cap = in->cap ? in->cap : 256;
  if (in->len + n <= in->cap) return 1;
  while (cap < in->len + n) cap *= 2;
  if ((b = (char *)realloc(in->buf, cap)) == NULL) return 0;
  in->buf = b;
  in->cap = cap;
  return 1;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  input *in = (input *)h->data;
  if (size > 4096) size = 4096;
  if (!reserve(in, size)) {
    buf->base = NULL;
    buf->len = 0; /* libuv reports UV_ENOBUFS */
    return;
  }
  buf->base = in->buf + in->len;
  buf->len = size;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  input *in = (input *)s->data;
  (void)buf;
  if (n > 0) in->len += (size_t)n;
  else if (n == UV_ENOBUFS) in->nomem = 1;
  else if (n < 0) in->eof = 1;
  if (has_line(in)) line_ready(in);
}

#ifdef LW_READLINE
static void on_rl_line(char *line) {
  input *in = rl_in;
  in->rl_line = line;
  in->rl_done = 1;
  rl_callback_handler_remove();
  line_ready(in);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)p; (void)events;
  if (status < 0) {
    on_rl_line(NULL);
    return;
  }
  rl_callback_read_char();
}
#endif

static int open_input(input *in, lw_cli *c) {
  uv_handle_type t = uv_guess_handle(0);
  memset(in, 0, sizeof *in);
  in->c = c;
  in->kind = IN_FILE;
  in->tty = t == UV_TTY;
  if (t != UV_TTY && t != UV_NAMED_PIPE) return 0;
  if ((in->loop = lw_sched_loop(c->S)) == NULL) return -1;
#ifdef LW_READLINE
  /* a pipe too: Debian's lua(1) reads it through readline, which
     echoes what it reads (Lua's own tests expect that) */
  if (t == UV_TTY || t == UV_NAMED_PIPE) {
    if (uv_poll_init(in->loop, &in->h.poll, 0) != 0) return 0;
    in->kind = IN_READLINE;
    in->open = 1;
    rl_in = in;
    rl_readline_name = "luaweave";
    return 0;
  }
#endif
  if (t == UV_TTY) {
    if (uv_tty_init(in->loop, &in->h.tty, 0, 1) != 0) return 0;
  } else {
    if (uv_pipe_init(in->loop, &in->h.pipe, 0) != 0) return 0;
    if (uv_pipe_open(&in->h.pipe, 0) != 0) {
      uv_close((uv_handle_t *)&in->h.pipe, NULL);
      uv_run(in->loop, UV_RUN_NOWAIT);
      return 0;
    }
  }
  in->h.tty.data = in;
  in->kind = IN_STREAM;
  in->open = 1;
  return 0;
}

static void close_input(input *in) {
  if (in->open) {
    uv_close((uv_handle_t *)&in->h, NULL);
    uv_run(in->loop, UV_RUN_NOWAIT);
    if (in->kind == IN_STREAM) { /* libuv made fd 0 non-blocking */
      int fl = fcntl(0, F_GETFL);
      if (fl != -1) fcntl(0, F_SETFL, fl & ~O_NONBLOCK);
    }
  }
  free(in->buf);
#ifdef LW_READLINE
  if (in->kind == IN_READLINE) rl_callback_handler_remove();
#endif
}

/* A task's report while the prompt waits: on a line of its own, and the
   prompt (with readline, and what was typed) shown again under it, as
   the prompt of a shell shows a background job's message */
static input *asking; /* the report callback has the lw_cli only */

static void aside(lw_cli *c, int after) {
  input *in = asking;
  (void)c;
  if (in == NULL || in->prompt == NULL) return;
#ifdef LW_READLINE
  if (in->kind == IN_READLINE && in->tty) { /* (a pipe: no redrawing) */
    if (!after) {
      in->rl_point = rl_point;
      in->rl_kept = rl_copy_text(0, rl_end); /* NULL: no memory, lost */
      rl_save_prompt();
      rl_replace_line("", 0);
      rl_redisplay();
    } else {
      rl_restore_prompt();
      rl_on_new_line();
      if (in->rl_kept != NULL) {
        rl_replace_line(in->rl_kept, 0);
        rl_point = in->rl_point;
        free(in->rl_kept);
        in->rl_kept = NULL;
      }
      rl_redisplay();
    }
    return;
  }
#endif
  if (!after) {
    fputs("\n", stdout);
    fflush(stdout);
  } else {
    fputs(in->prompt, stdout);
    fflush(stdout);
  }
}

/* wait for a line while the scheduler runs the other tasks: 1, or 0
   when a task called task.exit meanwhile, -1 when memory ran out */
/* Ctrl-C at the prompt ends luaweave, as lua(1)'s: by SIGINT, with the
   terminal as it was.  (Readline's own handler, which lw_cli_sigint_on
   replaces while the prompt waits, would only note it in callback mode,
   until the next key.) */
static void prompt_interrupted(input *in) {
#ifdef LW_READLINE
  if (in->kind == IN_READLINE) rl_callback_handler_remove();
#endif
  (void)in;
  fflush(stdout);
  signal(SIGINT, SIG_DFL);
  raise(SIGINT);
}

static int wait_more(input *in) {
  lw_sched *S = in->c->S;
  while (!has_line(in)) {
    /* a task that runs while the prompt waits (a busy loop of one) is
       interrupted as a line is; a Ctrl-C that finds the loop waiting is
       one at the prompt */
    lw_cli_sigint_on(in->c);
    if (lw_sched_ready(S) > 0 || lw_sched_async(S) > 0) {
      int rc;
      in->in_run = 1;
      rc = lw_sched_run(S);
      lw_cli_sigint_off();
      in->in_run = 0;
      if (in->c->interrupted) prompt_interrupted(in);
      if (in->stopped) {
        in->stopped = 0;
        lw_host_stop(S, 0);
      } else if (lw_sched_exited(S, &in->c->status)) {
        return 0;
      }
      if (rc == LW_EMEM) return -1;
    } else {
      uv_run(in->loop, UV_RUN_ONCE);
      lw_cli_sigint_off();
      if (in->c->interrupted) prompt_interrupted(in);
    }
  }
  return 1;
}

/* wait_more with the prompt shown: the reports of the tasks that fail
   meanwhile go aside it (aside).  0 after task.exit; may raise a memory
   error */
static int wait_line(input *in, const char *prompt) {
  int got;
  in->prompt = prompt;
  in->c->aside = aside;
  asking = in;
  got = wait_more(in);
  in->c->aside = NULL;
  in->prompt = NULL;
  asking = NULL;
  if (got < 0) {
    lua_pushliteral(in->c->L, "not enough memory");
    lua_error(in->c->L);
  }
  return got;
}

/* the next line, without its newline, malloc'd; NULL at the end of
   input (or after task.exit: *exited) */
static char *read_line(input *in, const char *prompt, int *exited) {
  char *line;
  size_t n;
  *exited = 0;
  if (in->kind == IN_FILE) {
    size_t cap = 256;
#ifdef LW_READLINE
    if ((line = readline(prompt)) != NULL && line[0] != '\0') add_history(line);
    return line;
#endif
    fputs(prompt, stdout);
    fflush(stdout);
    if ((line = (char *)malloc(cap)) == NULL) return NULL;
    n = 0;
    for (;;) {
      int ch = getchar();
      if (ch == EOF) {
        if (n == 0) {
          free(line);
          return NULL;
        }
        break;
      }
      if (ch == '\n') break;
      if (n + 2 > cap) {
        char *b = (char *)realloc(line, cap *= 2);
        if (b == NULL) {
          free(line);
          return NULL;
        }
        line = b;
      }
      line[n++] = (char)ch;
    }
    line[n] = '\0';
    return line;
  }
#ifdef LW_READLINE
  if (in->kind == IN_READLINE) {
    in->rl_done = 0;
    in->rl_line = NULL;
    rl_callback_handler_install(prompt, on_rl_line);
    uv_poll_start(&in->h.poll, UV_READABLE, on_poll);
    *exited = !wait_line(in, prompt);
    uv_poll_stop(&in->h.poll);
    if (*exited) {
      rl_callback_handler_remove();
      return NULL;
    }
    if (in->rl_line != NULL && in->rl_line[0] != '\0') add_history(in->rl_line);
    return in->rl_line;
  }
#endif
  fputs(prompt, stdout);
  fflush(stdout);
  uv_read_start((uv_stream_t *)&in->h, on_alloc, on_read);
  *exited = !wait_line(in, prompt);
  uv_read_stop((uv_stream_t *)&in->h);
  if (*exited || (in->len == 0 && in->eof)) return NULL;
  {
    char *nl = (char *)memchr(in->buf, '\n', in->len);
    n = nl != NULL ? (size_t)(nl - in->buf) : in->len;
  }
  if ((line = (char *)malloc(n + 1)) == NULL) return NULL;
  memcpy(line, in->buf, n);
  line[n] = '\0';
  if (n < in->len) n++; /* the newline */
  memmove(in->buf, in->buf + n, in->len - n);
  in->len -= n;
  return line;
}

/* _PROMPT or _PROMPT2 as lua.c shows it (tostring'd on 5.2+), pushed */
static const char *push_prompt(lua_State *L, int first) {
  lua_getglobal(L, first ? "_PROMPT" : "_PROMPT2");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_pushstring(L, first ? "> " : ">> ");
  }
#if LUA_VERSION_NUM >= 502 && !defined(LW_LUAJIT)
  luaL_tolstring(L, -1, NULL);
  lua_remove(L, -2);
#else
  if (!lua_isstring(L, -1)) {
    lua_pop(L, 1);
    lua_pushstring(L, first ? "> " : ">> ");
  }
#endif
  return lua_tostring(L, -1);
}

#if LUA_VERSION_NUM >= 503 && !defined(LW_LUAJIT)
#define EXPR_FIRST 1
#else
#define EXPR_FIRST 0
#endif

/* a syntax error at the end of the input: the statement goes on */
static int incomplete(lua_State *L, int st) {
  size_t n;
  const char *m;
  if (st != LUA_ERRSYNTAX) return 0;
  m = lua_tolstring(L, -1, &n);
  return (n >= 5 && strcmp(m + n - 5, "<eof>") == 0) ||
         (n >= 7 && strcmp(m + n - 7, "'<eof>'") == 0);
}

/* Read and compile a statement: "return line" first, then the line as a
   statement, then with more lines while it is incomplete.  Pushes the
   function, or the error message (and returns its status); -1 at the
   end of input, -2 after task.exit (nothing pushed).  The line is
   pushed below it too: for history. */
static int load_statement(lw_cli *c, input *in) {
  lua_State *L = c->L;
  int st, exited, eq;
  char *line;
  const char *p = push_prompt(L, 1);
  line = read_line(in, p, &exited);
  lua_pop(L, 1);
  if (line == NULL) {
    if (in->nomem) {
      lua_pushliteral(L, "not enough memory");
      lua_error(L);
    }
    return exited ? -2 : -1;
  }
  eq = line[0] == '=';
  if (eq) lua_pushfstring(L, "return %s", line + 1);
  else lua_pushstring(L, line);
  free(line);
  /* lua.c of 5.3+ tries a line as an expression first; 5.1's, 5.2's and
     LuaJIT's print values only after '=' */
  if (!eq && EXPR_FIRST) {
    size_t n;
    const char *s = lua_pushfstring(L, "return %s;", lua_tostring(L, -1));
    n = strlen(s);
    st = luaL_loadbuffer(L, s, n, "=stdin");
    lua_remove(L, -2);
    if (st == LUA_OK) {
      lua_remove(L, -2);
      return LUA_OK;
    }
    lua_pop(L, 1);
  }
  for (;;) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    st = luaL_loadbuffer(L, s, n, "=stdin");
    if (!incomplete(L, st)) break;
    lua_pop(L, 1);
    p = push_prompt(L, 0);
    line = read_line(in, p, &exited);
    lua_pop(L, 1);
    if (line == NULL) {
      if (exited) {
        lua_pop(L, 1);
        return -2;
      }
      /* the end of input in a statement: its "<eof>" message */
      st = luaL_loadbuffer(L, s, n, "=stdin");
      break;
    }
    lua_pushstring(L, "\n");
    lua_pushstring(L, line);
    free(line);
    lua_concat(L, 3);
  }
  lua_remove(L, -2);
  return st;
}

/* the values a line returned, through the global print (lua.c's l_print) */
static void print_values(lua_State *L, int n) {
  if (n <= 0) return;
  luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
  lua_getglobal(L, "print");
  lua_insert(L, -n - 1);
  if (lua_pcall(L, n, 0, 0) != LUA_OK) {
    lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    lw_cli_message(L);
  }
}

void lw_cli_repl(lw_cli *c) {
  lua_State *L = c->L;
  const char *pname = lw_cli_progname;
  input in;
  int st, top = lua_gettop(L);
  if (open_input(&in, c) != 0) {
    lua_pushliteral(L, "not enough memory");
    lua_error(L);
  }
  lw_cli_progname = NULL; /* lua.c names no program at its prompt */
  while ((st = load_statement(c, &in)) != -1 && st != -2) {
    if (st != LUA_OK) {
      lw_cli_message(L);
    } else {
      int r = lw_cli_task(c, 0);
      if (r == LWC_EXIT) break;
      if (r == LWC_OK) print_values(L, lua_gettop(L) - top - 1);
      if (lw_host_flush(c->S) == LW_EMEM) {
        lua_pushliteral(L, "not enough memory");
        lua_error(L);
      }
    }
    lua_settop(L, top);
  }
  lw_cli_progname = pname;
  close_input(&in);
  if (st != -2 && !lw_host_stopped(c->S)) {
    fputs("\n", stdout);
    fflush(stdout);
  }
  lua_settop(L, top);
}
