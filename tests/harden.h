/*
** harden.h — what the reuse storm (storm.c) and the soak (soak.c) share:
** a counting allocator, a seeded PRNG, the process's resident memory, a
** monotonic clock.  No test framework: both are long-running programs
** that print a report and exit non-zero on any failure.
*/
#ifndef HARDEN_H
#define HARDEN_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "luaweave.h"
#ifdef LW_LUAJIT
#include <luajit.h>
#define HH_LUA LUAJIT_VERSION
#else
#define HH_LUA LUA_RELEASE
#endif
#include "lw_compat.h"
#include "lw_sched.h"

/* ------------------------------------------------------------------ */
/* the counting allocator: the Lua heap, luaweave's map and scheduler
   included (they allocate through the state's allocator), to the byte */

typedef struct hh_heap {
  long long bytes, blocks, peak;
} hh_heap;

static inline void *hh_alloc(void *ud, void *p, size_t osize, size_t nsize) {
  hh_heap *h = (hh_heap *)ud;
  void *q;
  if (nsize == 0) {
    if (p != NULL) {
      h->blocks--;
      h->bytes -= (long long)osize;
      free(p);
    }
    return NULL;
  }
  q = realloc(p, nsize);
  if (q == NULL) return NULL;
  if (p == NULL) h->blocks++;
  h->bytes += (long long)nsize - (p ? (long long)osize : 0);
  if (h->bytes > h->peak) h->peak = h->bytes;
  return q;
}

/* ------------------------------------------------------------------ */
/* xorshift64*: small, fast, and the same sequence on every platform for
   a given seed, which is what makes a failing run reproducible */

static uint64_t hh_rng = 88172645463325252ULL;

static inline void hh_seed(uint64_t seed) {
  hh_rng = seed ? seed : 88172645463325252ULL; /* 0 is a fixed point */
}

static inline uint64_t hh_rand(void) {
  hh_rng ^= hh_rng >> 12;
  hh_rng ^= hh_rng << 25;
  hh_rng ^= hh_rng >> 27;
  return hh_rng * 2685821657736338717ULL;
}

/* uniform enough in [0, n) for n far below 2^32 */
static inline unsigned hh_below(unsigned n) {
  return (unsigned)((hh_rand() >> 32) % n);
}

/* 1 with probability 1/n */
static inline int hh_one_in(unsigned n) { return hh_below(n) == 0; }

/* a seed nobody chose: the clock and the pid, so that every run of the
   test suite explores another path (the seed is printed to replay it) */
static inline uint64_t hh_fresh_seed(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((uint64_t)ts.tv_sec * 1000003u) ^ (uint64_t)ts.tv_nsec ^
         ((uint64_t)getpid() << 40);
}

/* ------------------------------------------------------------------ */
/* time and memory                                                     */

static inline double hh_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* resident set size now, in KiB (0 where /proc is missing) */
static inline long hh_rss_kb(void) {
  long size = 0, res = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Give the allocator's free pages back to the system before reading the
   RSS, so that what stays resident is what is in use, not the high-water
   mark of the allocator's fragmentation, which is malloc's business and
   settles only after a while (glibc; elsewhere nothing happens) */
static inline void hh_trim(void) {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

/* the peak resident set size so far, in KiB */
static inline long hh_maxrss_kb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_maxrss;
}

/* ------------------------------------------------------------------ */
/* arguments: -x VALUE pairs; the environment as the fallback, so that
   `make storm STORM_N=...` and a shell both work */

static inline const char *hh_opt(int argc, char **argv, const char *flag,
                          const char *env) {
  int i;
  for (i = 1; i + 1 < argc; i++)
    if (strcmp(argv[i], flag) == 0) return argv[i + 1];
  return env ? getenv(env) : NULL;
}

/* a positive number, or def; exits on garbage so a typo is not a
   silent default */
static inline unsigned long long hh_num(const char *s, unsigned long long def) {
  char *end;
  unsigned long long v;
  if (s == NULL || *s == 0) return def;
  v = strtoull(s, &end, 0);
  if (*end != 0) {
    fprintf(stderr, "not a number: %s\n", s);
    exit(2);
  }
  return v;
}

#endif
