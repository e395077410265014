/*
** lw_store_cvals.c — a home in C memory for returned values that cannot
** refer to a thread: nil, booleans, numbers, light userdata and short
** strings.  Returned values must outlive their thread's stack (Lua takes
** a dead thread with values on it for a suspended one), and only an
** ephemeron table lets values that refer to their thread die with it;
** these cannot, so they need neither the table, nor a pack, nor the
** protected call that files them there, nor the collector's work on
** them.  A string is copied: Lua strings are values, two equal ones are
** the same to every Lua operation.
**
** s->cvals maps a thread to its block (the pointer kept in the slot's
** record bytes).  A block is freed when its thread's values are dropped
** (lwst_clear_vals), replaced, when the allocator frees the thread
** (thread_freed: nothing here allocates), or at lua_close.
*/
#include "lw_store.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* what a block holds: at most this many values, this many bytes of
   strings; bigger returns go to the values table */
#define CV_MAX_N 16
#define CV_MAX_BYTES 256

enum { CV_NIL, CV_FALSE, CV_TRUE, CV_NUM, CV_INT, CV_LUD, CV_STR };

typedef struct cval {
  int t;
  union { lua_Number n; lua_Integer i; void *p; size_t len; } u;
} cval;

typedef struct cblock {
  int n;
  size_t size;          /* of the whole block */
  cval v[];             /* n of them; then the strings' bytes, in order */
} cblock;

/* a slot's record holds the block's address */
typedef char cv_fits[sizeof(void *) <= sizeof(lw_rec) ? 1 : -1];

static cblock *slot_block(const lw_rec *w) {
  cblock *b;
  memcpy(&b, w, sizeof b);
  return b;
}

int lwst_cv_drop(lw_store *s, const lua_State *co) {
  lw_rec *w;
  if (s->cvals.count == 0 || (w = lw_map_find(&s->cvals, co)) == NULL)
    return 0;
  free(slot_block(w));
  lw_map_remove(&s->cvals, co);
  return 1;
}

int lwst_cv_file(lw_store *s, lua_State *co, int first, int n) {
  cval v[CV_MAX_N];
  size_t bytes = 0, at;
  cblock *b;
  lw_rec *w;
  int i;
  if (n > CV_MAX_N) return 0;
  for (i = 0; i < n; i++) {
    int idx = first + i;
    switch (lua_type(co, idx)) {
      case LUA_TNIL: v[i].t = CV_NIL; break;
      case LUA_TBOOLEAN: v[i].t = lua_toboolean(co, idx) ? CV_TRUE : CV_FALSE; break;
      case LUA_TLIGHTUSERDATA:
        v[i].t = CV_LUD;
        v[i].u.p = lua_touserdata(co, idx);
        break;
      case LUA_TNUMBER:
#if LUA_VERSION_NUM >= 503 && !defined(LW_LUAJIT)
        if (lua_isinteger(co, idx)) {
          v[i].t = CV_INT;
          v[i].u.i = lua_tointeger(co, idx);
          break;
        }
#endif
        v[i].t = CV_NUM;
        v[i].u.n = lua_tonumber(co, idx);
        break;
      case LUA_TSTRING: /* a string: lua_tolstring converts nothing */
        v[i].t = CV_STR;
        (void)lua_tolstring(co, idx, &v[i].u.len);
        if ((bytes += v[i].u.len) > CV_MAX_BYTES) return 0;
        break;
      default: return 0; /* may refer to co: the values table */
    }
  }
  b = (cblock *)malloc(sizeof(cblock) + (size_t)n * sizeof(cval) + bytes);
  if (b == NULL) return 0; /* the table may still have room */
  b->n = n;
  b->size = sizeof(cblock) + (size_t)n * sizeof(cval) + bytes;
  memcpy(b->v, v, (size_t)n * sizeof(cval));
  at = sizeof(cblock) + (size_t)n * sizeof(cval);
  for (i = 0; i < n; i++) {
    if (v[i].t != CV_STR) continue;
    memcpy((char *)b + at, lua_tostring(co, first + i), v[i].u.len);
    at += v[i].u.len;
  }
  if (lw_map_insert(&s->cvals, co, &w) < 0) {
    free(b);
    return 0;
  }
  /* a block of an earlier life of co (dropped with the thread's record
     reset, not yet freed) goes now: w was found, not added */
  if (slot_block(w) != NULL) free(slot_block(w));
  memcpy(w, &b, sizeof b);
  return 1;
}

/* the largest block */
#define CV_MAX_SIZE (sizeof(cblock) + CV_MAX_N * sizeof(cval) + CV_MAX_BYTES)

int lwst_cv_push(lw_store *s, lua_State *co, lua_State *L) {
  lw_rec *w;
  cblock *b;
  size_t at;
  int i;
  union { cblock b; char bytes[CV_MAX_SIZE]; } copy;
  if (s->cvals.count == 0 || (w = lw_map_find(&s->cvals, co)) == NULL)
    return -1;
  /* a copy: the strings made below may collect, and a finalizer may then
     take or untrack co, which frees its block */
  memcpy(&copy, slot_block(w), slot_block(w)->size);
  b = &copy.b;
  at = sizeof(cblock) + (size_t)b->n * sizeof(cval);
  for (i = 0; i < b->n; i++) {
    const cval *v = &b->v[i];
    switch (v->t) {
      case CV_NIL: lua_pushnil(L); break;
      case CV_FALSE: lua_pushboolean(L, 0); break;
      case CV_TRUE: lua_pushboolean(L, 1); break;
      case CV_LUD: lua_pushlightuserdata(L, v->u.p); break;
      case CV_INT: lua_pushinteger(L, v->u.i); break;
      case CV_NUM: lua_pushnumber(L, v->u.n); break;
      default:
        lua_pushlstring(L, (const char *)b + at, v->u.len);
        at += v->u.len;
        break;
    }
  }
  return b->n;
}

void lwst_cv_free_all(lw_store *s) {
  size_t i = 0;
  lw_slot *sl;
  while ((sl = lw_map_next(&s->cvals, &i)) != NULL) free(slot_block(&sl->rec));
  lw_map_free(&s->cvals);
}
