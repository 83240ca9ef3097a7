/* offsets.c - per-partition reference counts of in-flight messages and the done prefix. */

#include "offsets.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    int64_t offset;
    uint32_t refs;
} entry_t;

/* Entries [head, len) are in flight, in increasing offset order; entries
 * before head were done and popped. */
typedef struct part {
    uint32_t gen; /* 0: not tracked */
    entry_t *e;
    size_t head, len, cap;
    int64_t last; /* last tracked offset, -1 before any */
    int64_t committable;
    size_t done_in_queue; /* entries in [head, len) with refs == 0 */
} part_t;

struct sl_offsets {
    part_t *parts;
    size_t nparts;
    uint32_t next_gen;
};

sl_offsets_t *sl_offsets_new(void) {
    sl_offsets_t *o = calloc(1, sizeof *o);
    if (o)
        o->next_gen = 1;
    return o;
}

void sl_offsets_destroy(sl_offsets_t *o) {
    if (!o)
        return;
    for (size_t i = 0; i < o->nparts; i++)
        free(o->parts[i].e);
    free(o->parts);
    free(o);
}

static part_t *get(const sl_offsets_t *o, int32_t p) {
    if (p < 0 || (size_t)p >= o->nparts || o->parts[p].gen == 0)
        return NULL;
    return &o->parts[p];
}

uint32_t sl_offsets_add_partition(sl_offsets_t *o, int32_t p) {
    if (p < 0)
        return 0;
    if ((size_t)p >= o->nparts) {
        size_t n = (size_t)p + 1;
        part_t *np = realloc(o->parts, n * sizeof *np);
        if (!np)
            return 0;
        memset(np + o->nparts, 0, (n - o->nparts) * sizeof *np);
        o->parts = np;
        o->nparts = n;
    }
    part_t *pt = &o->parts[p];
    pt->head = pt->len = pt->done_in_queue = 0;
    pt->last = -1;
    pt->committable = SL_OFFSET_NONE;
    pt->gen = o->next_gen++;
    if (o->next_gen == 0)
        o->next_gen = 1;
    return pt->gen;
}

void sl_offsets_remove_partition(sl_offsets_t *o, int32_t p) {
    part_t *pt = get(o, p);
    if (!pt)
        return;
    free(pt->e);
    memset(pt, 0, sizeof *pt);
}

uint32_t sl_offsets_generation(const sl_offsets_t *o, int32_t p) {
    part_t *pt = get(o, p);
    return pt ? pt->gen : 0;
}

sl_err_t sl_offsets_track(sl_offsets_t *o, int32_t p, int64_t offset) {
    part_t *pt = get(o, p);
    if (!pt)
        return SL_ERR_STATE;
    if (offset < 0 || offset <= pt->last)
        return SL_ERR_INVAL;
    if (pt->head > 0 && pt->head == pt->len) {
        pt->head = pt->len = 0;
    } else if (pt->len == pt->cap && pt->head > 0 && pt->head >= pt->cap / 2) {
        memmove(pt->e, pt->e + pt->head, (pt->len - pt->head) * sizeof *pt->e);
        pt->len -= pt->head;
        pt->head = 0;
    }
    if (pt->len == pt->cap) {
        size_t cap = pt->cap ? pt->cap * 2 : 64;
        entry_t *e = realloc(pt->e, cap * sizeof *e);
        if (!e)
            return SL_ERR_NOMEM;
        pt->e = e;
        pt->cap = cap;
    }
    pt->e[pt->len].offset = offset;
    pt->e[pt->len].refs = 1;
    pt->len++;
    pt->last = offset;
    return SL_OK;
}

/* The in-flight entry of `offset`, by binary search over [head, len). */
static entry_t *find(part_t *pt, int64_t offset) {
    size_t lo = pt->head, hi = pt->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pt->e[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < pt->len && pt->e[lo].offset == offset ? &pt->e[lo] : NULL;
}

sl_err_t sl_offsets_release(sl_offsets_t *o, int32_t p, uint32_t gen, int64_t offset) {
    part_t *pt = get(o, p);
    entry_t *e = pt && pt->gen == gen ? find(pt, offset) : NULL;
    if (!e || e->refs == 0)
        return SL_ERR_STATE;
    if (--e->refs > 0)
        return SL_OK;
    pt->done_in_queue++;
    while (pt->head < pt->len && pt->e[pt->head].refs == 0) {
        pt->committable = pt->e[pt->head].offset + 1;
        pt->head++;
        pt->done_in_queue--;
    }
    return SL_OK;
}

int64_t sl_offsets_committable(const sl_offsets_t *o, int32_t p) {
    part_t *pt = get(o, p);
    return pt ? pt->committable : SL_OFFSET_NONE;
}

size_t sl_offsets_pending(const sl_offsets_t *o, int32_t p) {
    part_t *pt = get(o, p);
    return pt ? pt->len - pt->head - pt->done_in_queue : 0;
}
