// Assertions for process-local invariants: what this thread itself holds (partition
// locks of the buffer pool's mapping table) and where a session is in its lifecycle.
// Compiled in debug builds only (RM_DEBUG: `node-gyp rebuild --debug`, which binding.gyp
// defines it for, or CXXFLAGS=-DRM_DEBUG); release builds keep only the expression's
// type check. An assertion never reads shared memory: what another process wrote there
// (a scribble, a half-done edit of a process that died) is reported as a coded error
// (ERR_RINGMASTER_CORRUPT), since another process must never be able to abort this one.
#pragma once
#include <cstdio>
#include <cstdlib>

#ifdef RM_DEBUG
#define RM_ASSERT(cond)                                                                          \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      fprintf(stderr, "ringmaster: assertion failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      abort();                                                                                   \
    }                                                                                            \
  } while (0)
#else
#define RM_ASSERT(cond) ((void)sizeof(cond))
#endif
