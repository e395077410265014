/*
** lw_store.h — the result store's inside, for the layers below it
** (scheduler, bindings) and for the tests.  The public face is luaweave.h.
*/
#ifndef LW_STORE_H
#define LW_STORE_H

#include "luaweave.h"
#include "lw_map.h"

struct lw_store {
  lw_map map;           /* thread -> record */
  lua_Alloc f;          /* the allocator luaweave wraps */
  void *ud;
  const void *universe; /* registry address of the store's Lua state */
  size_t tblock;        /* size of the memory block that holds a thread */
  ptrdiff_t toff;       /* thread address - block address */
  int vref;             /* registry ref: thread-keyed weak table of values */
  int recref;           /* registry ref: closure that files returned values */
  int closed;           /* the Lua state is closing */
  unsigned long freed;  /* tracked threads seen freed by the allocator */
  /* told of every block of a thread's size that Lua frees (a thread, or
     something that size): the scheduler drops its record of a freed
     thread.  Runs inside the allocator: it must not allocate. */
  void (*onfree)(void *ud, const void *thread);
  void *onfree_ud;
  lw_store **backref;   /* set to NULL when the store goes (lua_close) */
};

/* record flags */
#define LW_F_VALS 1     /* the values live in the store's values table */

/* push the store's box (a userdata whose first field is the lw_store *,
   NULL once the state is closing) onto L; NULL if there is no store */
lw_store **lw_store_box(lua_State *L);

/* coroutine.close on co with recording (Lua 5.4): a tracked suspended
   co becomes "cancelled" (or "failed" if a to-be-closed variable raises),
   a failed co keeps its error.  Pushes what coroutine.close returns and
   returns their count, or LW_ESTATE (nothing pushed) for a running or
   normal co, LW_ENOTSUP before 5.4.  May raise a Lua memory error. */
int lw_close(lw_store *s, lua_State *co, lua_State *L);

/* record err (on L's top, popped) as co's failure, kept in the values
   table; co must be dead with an empty stack.  May raise a memory error. */
void lw_store_setfailure(lw_store *s, lua_State *co, lua_State *L);

/* internal invariant check for tests: 0 when sound, else a line number */
int lw_store_check(lw_store *s);

/* how many tracked threads the allocator saw freed */
unsigned long lw_store_freed(const lw_store *s);

#endif
