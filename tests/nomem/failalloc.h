/* failalloc.h - a test-only allocator wrapper: with the programs in
 * tests/nomem/ linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,
 * --wrap=strdup (CMakeLists.txt), every allocation the project's own code
 * makes goes through it, and the Nth one after sl_failalloc_arm(N) fails.
 * Allocations inside shared libraries (librdkafka, hiredis, msgpack-c,
 * OpenBLAS, cJSON) are not seen. Per thread: only the arming thread fails. */
#ifndef SL_FAILALLOC_H
#define SL_FAILALLOC_H

#include <stddef.h>

/* From now on, on this thread, allocation number n (0-based) fails, and
 * every later one succeeds. */
void sl_failalloc_arm(size_t n);

/* Stops failing; returns how many allocations were made since the arm. */
size_t sl_failalloc_disarm(void);

/* 1 when the armed allocation was reached (and failed). */
int sl_failalloc_fired(void);

#endif
