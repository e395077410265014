/*
** lw_store.h — the result store's inside, for the layers below it
** (scheduler, bindings) and for the tests.  The public face is luaweave.h.
*/
#ifndef LW_STORE_H
#define LW_STORE_H

#include "luaweave.h"
#include "lw_map.h"

/* a handle's slot (lw_handle.c): serial 0 when free, and then ref is
   the next free slot + 1 (0: none) */
typedef struct lw_hslot {
  uint32_t serial;
  int ref;              /* registry reference to the thread */
} lw_hslot;

struct lw_store {
  lw_store *self;       /* first: what the box says (NULL once closing) */
  lw_map map;           /* thread -> record (the store's and the scheduler's) */
  lw_map wide;          /* thread -> counts too big for its record */
  lw_map cvals;         /* thread -> its returned values in C memory
                           (lw_store_cvals.c) */
  size_t tracked;       /* records with a status (lw_store_count) */
  size_t ntasks;        /* records with a task state (the scheduler's) */
  lua_Alloc f;          /* the allocator luaweave wraps */
  void *ud;
  const void *universe; /* registry address of the store's Lua state */
  size_t tblock;        /* size of the memory block that holds a thread */
  ptrdiff_t toff;       /* thread address - block address */
  int vref;             /* registry ref: thread-keyed weak table of values */
  int recref;           /* registry ref: closure that files returned values */
  int closed;           /* the Lua state is closing */
  lua_State *main;      /* the state's main thread, never tracked or
                           resumed (NULL: not known yet, 5.1/LuaJIT
                           opened from a coroutine; lw_store_learnmain) */
  lua_State *closing;   /* the thread lw_cancel is closing (it reads
                           "cancelled" while its __close handlers run) */
  lua_State *ending;    /* the returned thread whose end lw_store_resume is
                           telling: untracked meanwhile, its values go back
                           on its stack, as lua_resume leaves them */
  unsigned long freed;  /* tracked threads seen freed by the allocator */
  /* the one end path: called whenever a tracked thread's end (returned,
     failed, cancelled) is recorded, by whatever entry recorded it; L is
     the running thread (or NULL).  The scheduler sets it (it wakes the
     thread's awaiters); it raises no Lua error. */
  void (*onend)(void *ud, lua_State *co, lua_State *L);
  void *onend_ud;
  /* a task (a record with a task state) is about to be resumed by
     lw_store_resume, with onend_ud; never allocates, raises nothing */
  void (*onresume)(void *ud, lua_State *co);
  unsigned long gcerrs; /* __gc errors caught while returned values were
                           filed (5.1-5.3); the latest waits at values[0] */
  lw_store **backref;   /* set to NULL when the store goes (lua_close) */
  struct hookcell *cell; /* the allocator hook's state */
  void (*onclose)(void *ud); /* called as the store closes (lua_close) */
  void *onclose_ud;
  lw_hslot *hslots;     /* handles (lw_handle.c) */
  size_t hcap, hlive, hfree; /* hfree: first free slot + 1, or 0 */
  uint32_t hserial;     /* the last serial given to a handle */
};

/* ------------------------------------------------------------------ */
/* records, for the scheduler: one probe per resumption                */
/*
** The scheduler keeps its task state in the store's record of the
** thread (lw_map.h), so it finds a thread once and hands the record
** down.  A record pointer is good while s->map.gen is what it was when
** the pointer was taken: anything that may allocate Lua memory (the GC
** may free a thread, removal shifts slots) or track/untrack may move it.
*/

/* the store's counters and hooks, for the scheduler: the store keeps
   them, others call these */
static inline void lw_store_tasks_add(lw_store *s, int d) {
  s->ntasks = (size_t)((long)s->ntasks + d);
}
static inline size_t lw_store_ntasks(const lw_store *s) { return s->ntasks; }
static inline const void *lw_store_universe(const lw_store *s) {
  return s->universe;
}
/* who hears of every recorded end (NULL: nobody); returns the old one */
static inline void (*lw_store_setonend(lw_store *s,
    void (*fn)(void *ud, lua_State *co, lua_State *L), void *ud))(void *, lua_State *, lua_State *) {
  void (*old)(void *, lua_State *, lua_State *) = s->onend;
  s->onend = fn;
  s->onend_ud = ud;
  return old;
}

/* co's record, or NULL; no validation, no universe check */
static inline lw_rec *lw_store_find(lw_store *s, const lua_State *co) {
  return lw_map_find(&s->map, co);
}

/* r again if the map has not moved since gen, else a fresh lookup */
static inline lw_rec *lw_store_refind(lw_store *s, const lua_State *co,
                                      lw_rec *r, unsigned long gen) {
  return s->map.gen == gen ? r : lw_map_find(&s->map, co);
}

/* lw_track, giving co's record (of the same universe: the caller
   checked); NULL when memory runs out */
lw_rec *lw_store_track(lw_store *s, lua_State *co);

/* a record whose status is 0 and that the scheduler no longer needs
   (task 0) goes; r must be current */
void lw_store_release(lw_store *s, lua_State *co, lw_rec *r);

/* lw_resume for a thread of this universe, with r its record at the
   current gen or NULL if it has none; *after (if not NULL) gets co's
   record once the resumption is over, or NULL */
int lw_store_resume(lw_store *s, lua_State *co, lw_rec *r, lua_State *from,
                    int nargs, int *nres, lw_rec **after);

/* the status lw_status would give for co's record r (current), after
   dropping it if stale */
int lw_store_status(lw_store *s, lua_State *co, lw_rec *r);

/* fn(ud) is called when the store closes (its __gc, at lua_close), so
   that the scheduler closes too if its own finalizer has not run (one
   made while lua_close runs, which Lua 5.4 never finalizes); one per
   store */
void lw_store_onclose(lw_store *s, void (*fn)(void *ud), void *ud);

/* push the store's box (a userdata: the store itself, whose first field
   is the lw_store *, NULL once the state is closing) onto L; NULL if
   there is no store */
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

/* the __gc error the latest filing of returned values caught (its count
   is s->gcerrs), pushed onto L and forgotten: 1; 0 (nothing pushed) if
   none waits.  May raise a memory error */
int lw_store_gcerror(lw_store *s, lua_State *L);

/* note L's main thread if L can tell and it is not known yet (5.1 and
   LuaJIT learn it only from the main thread itself); L must have a free
   slot.  Raises nothing */
void lw_store_learnmain(lw_store *s, lua_State *L);

/* 1 if co is the main thread (as far as the store knows it) */
static inline int lw_store_ismain(const lw_store *s, const lua_State *co) {
  return co != NULL && co == s->main;
}

/* ------------------------------------------------------------------ */
/* shared by the store's files (lw_store.c, lw_store_end.c,             */
/* lw_store_life.c) and nobody else                                     */

int lwst_check(lw_store *s, lua_State *co);  /* LW_OK, LW_EINVAL, ... */
lw_rec *lwst_find(lw_store *s, lua_State *co); /* no validation */
lw_rec *lwst_lookup(lw_store *s, lua_State *co); /* validated, or NULL */
lw_rec *lwst_validate(lw_store *s, lua_State *co, lw_rec *r, int above);
void lwst_rec_reset(lw_store *s, const lua_State *co, lw_rec *r, int status);
int lwst_counts_set(lw_store *s, const lua_State *co, lw_rec *r,
                    unsigned nres, unsigned top);
void lwst_clear_vals(lw_store *s, lua_State *co);
void lwst_push_vals(lw_store *s, lua_State *co, lua_State *L);
void lwst_ended(lw_store *s, lua_State *co, lua_State *L); /* onend */
int lwst_values_filer(lua_State *co);        /* the recref closure */

/* lw_store_cvals.c: returned values that cannot refer to a thread, in C.
   file: co's n values from index first (copies), 1 if kept (then read
   them there, not in the values table), 0 if not (too many, too big, one
   that may refer to co, or no memory); allocates no Lua memory.  push:
   the values kept for co onto L, their number, or -1 if none (may raise
   a memory error; co is dead with an empty stack).  drop: free co's, 1
   if it had some; never allocates (safe in the allocator hook).
   free_all: every block and the map (lua_close). */
int lwst_cv_file(lw_store *s, lua_State *co, int first, int n);
int lwst_cv_push(lw_store *s, lua_State *co, lua_State *L);
int lwst_cv_drop(lw_store *s, const lua_State *co);
void lwst_cv_free_all(lw_store *s);

/* internal invariant check for tests: 0 when sound, else a line number */
int lw_store_check(lw_store *s);

/* lw_handle.c: the handles' table goes (the state is closing) */
void lw_handle_free_all(lw_store *s);

/* how many tracked threads the allocator saw freed */
unsigned long lw_store_freed(const lw_store *s);

#endif
