/* failalloc.c - the --wrap allocator for tests/nomem/: counts and fails the
 * armed allocation of the arming thread, passes everything to the real
 * allocator (ASan's, under the sanitizer build). */
#include "tests/nomem/failalloc.h"

#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t sz);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t sz);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static _Thread_local int armed, fired;
static _Thread_local size_t countdown, seen;

void sl_failalloc_arm(size_t n) {
    armed = 1;
    fired = 0;
    countdown = n;
    seen = 0;
}

size_t sl_failalloc_disarm(void) {
    armed = 0;
    return seen;
}

int sl_failalloc_fired(void) {
    return fired;
}

/* 1 when this allocation is the one to fail. */
static int fail_now(void) {
    if (!armed)
        return 0;
    seen++;
    if (fired || countdown-- > 0)
        return 0;
    fired = 1;
    return 1;
}

void *__wrap_malloc(size_t n) {
    return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t sz) {
    return fail_now() ? NULL : __real_calloc(n, sz);
}

void *__wrap_realloc(void *p, size_t n) {
    return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = __wrap_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
