/*
** lw_error.c — the messages and names of luaweave's error codes, made
** from the one table in luaweave.h (LW_ERRNO_MAP), so that a code cannot
** be added without its message.
*/
#include "luaweave.h"

#include <stddef.h>

const char *lw_strerror(int code) {
  switch (code) {
    case LW_OK: return "no error";
#define LW_ERRNO_XX(name, value, msg) case LW_##name: return msg;
    LW_ERRNO_MAP(LW_ERRNO_XX)
#undef LW_ERRNO_XX
    default: return "unknown luaweave error code";
  }
}

const char *lw_errname(int code) {
  switch (code) {
    case LW_OK: return "LW_OK";
#define LW_ERRNO_XX(name, value, msg) case LW_##name: return "LW_" #name;
    LW_ERRNO_MAP(LW_ERRNO_XX)
#undef LW_ERRNO_XX
    default: return NULL;
  }
}
