/* holdbuf.c - recent labelled samples in a row ring over a compacting arena of (column, value). */
#include "holdbuf.h"

#include <stdlib.h>
#include <string.h>

#define GAP UINT32_MAX        /* nnz of a sample kept as a gap */
#define DENSE 0x80000000u     /* nnz flag: every value kept, columns implicit 0..dim-1 */
#define NNZ(v) ((v) & ~DENSE) /* entries a (non-gap) sample takes in the arena */

struct sl_holdbuf {
    uint32_t dim;
    size_t max_rows, cap; /* rows in the ring; entries in the arena */
    size_t first, count;  /* ring: index of the oldest row, rows held */
    uint64_t pushed;
    size_t *off; /* per row: where its entries start in the arena */
    uint32_t *nnz;
    float *y, *w;
    uint32_t *col; /* arena: entries of rows in ring order, [live_start, tail) */
    float *val;
    size_t tail;
    /* view scratch */
    size_t *v_ptr;
    uint32_t *v_col;
    float *v_val, *v_y, *v_w;
    uint8_t *v_lab;
    uint64_t *v_seq;
    size_t v_rows_cap, v_cap;
};

sl_holdbuf_t *sl_holdbuf_new(uint32_t dim, size_t max_rows, size_t max_bytes) {
    if (dim == 0 || max_rows == 0 || max_bytes < 8)
        return NULL;
    sl_holdbuf_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->dim = dim;
    h->max_rows = max_rows;
    h->cap = max_bytes / 8;
    h->off = malloc(max_rows * sizeof *h->off);
    h->nnz = malloc(max_rows * sizeof *h->nnz);
    h->y = malloc(max_rows * sizeof *h->y);
    h->w = malloc(max_rows * sizeof *h->w);
    /* twice every row dense is plenty: compaction then moves at most as much
     * as half the pushes since the last one wrote */
    if (h->cap / dim / 2 > max_rows)
        h->cap = 2 * max_rows * dim;
    h->col = malloc(h->cap * sizeof *h->col);
    h->val = malloc(h->cap * sizeof *h->val);
    if (!h->off || !h->nnz || !h->y || !h->w || !h->col || !h->val) {
        sl_holdbuf_destroy(h);
        return NULL;
    }
    return h;
}

void sl_holdbuf_destroy(sl_holdbuf_t *h) {
    if (!h)
        return;
    free(h->off);
    free(h->nnz);
    free(h->y);
    free(h->w);
    free(h->col);
    free(h->val);
    free(h->v_ptr);
    free(h->v_col);
    free(h->v_val);
    free(h->v_y);
    free(h->v_w);
    free(h->v_lab);
    free(h->v_seq);
    free(h);
}

static size_t ring_at(const sl_holdbuf_t *h, size_t k) {
    return (h->first + k) % h->max_rows;
}

/* Arena entries used by the held rows: from the oldest row with entries to the tail. */
static size_t live_start(const sl_holdbuf_t *h) {
    for (size_t k = 0; k < h->count; k++) {
        size_t i = ring_at(h, k);
        if (h->nnz[i] != GAP)
            return h->off[i];
    }
    return h->tail;
}

static void drop_oldest(sl_holdbuf_t *h) {
    h->first = (h->first + 1) % h->max_rows;
    h->count--;
    if (h->count == 0)
        h->tail = 0;
}

/* Moves the live entries to the front of the arena. */
static void compact(sl_holdbuf_t *h) {
    size_t start = live_start(h), live = h->tail - start;
    if (start == 0)
        return;
    memmove(h->col, h->col + start, live * sizeof *h->col);
    memmove(h->val, h->val + start, live * sizeof *h->val);
    for (size_t k = 0; k < h->count; k++) {
        size_t i = ring_at(h, k);
        if (h->nnz[i] != GAP)
            h->off[i] -= start;
    }
    h->tail = live;
}

/* Room for n entries at the tail, dropping old rows and compacting as
 * needed; 0 when n can never fit. Compaction leaves a quarter of the arena
 * free, so its cost spreads over many pushes. */
static int make_room(sl_holdbuf_t *h, size_t n) {
    if (n > h->cap - h->cap / 4)
        return 0;
    if (h->tail + n <= h->cap)
        return 1;
    while (h->count > 0 && h->tail - live_start(h) + n > h->cap - h->cap / 4)
        drop_oldest(h);
    compact(h);
    return 1;
}

void sl_holdbuf_push(sl_holdbuf_t *h, const sl_input_t *x, size_t row, float y, float w) {
    size_t n = x->dense ? x->dim : x->row_ptr[row + 1] - x->row_ptr[row];
    if (h->count == h->max_rows)
        drop_oldest(h);
    int fits = make_room(h, n);
    size_t i = ring_at(h, h->count);
    h->count++;
    h->pushed++;
    h->y[i] = y;
    h->w[i] = w;
    if (!fits) {
        h->nnz[i] = GAP;
        return;
    }
    h->off[i] = h->tail;
    h->nnz[i] = (uint32_t)n | (x->dense ? DENSE : 0);
    if (x->dense) {
        memcpy(h->val + h->tail, x->dense + row * x->dim, n * sizeof *h->val);
        h->tail += n;
    } else {
        memcpy(h->col + h->tail, x->col + x->row_ptr[row], n * sizeof *h->col);
        memcpy(h->val + h->tail, x->val + x->row_ptr[row], n * sizeof *h->val);
        h->tail += n;
    }
}

uint64_t sl_holdbuf_pushed(const sl_holdbuf_t *h) {
    return h->pushed;
}

size_t sl_holdbuf_held(const sl_holdbuf_t *h) {
    return h->count;
}

static int grow_view(sl_holdbuf_t *h, size_t rows, size_t entries) {
    if (rows > h->v_rows_cap) {
        size_t *p = realloc(h->v_ptr, (rows + 1) * sizeof *p);
        if (p)
            h->v_ptr = p;
        float *y = realloc(h->v_y, rows * sizeof *y);
        if (y)
            h->v_y = y;
        float *w = realloc(h->v_w, rows * sizeof *w);
        if (w)
            h->v_w = w;
        uint8_t *l = realloc(h->v_lab, rows);
        if (l)
            h->v_lab = l;
        uint64_t *s = realloc(h->v_seq, rows * sizeof *s);
        if (s)
            h->v_seq = s;
        if (!p || !y || !w || !l || !s)
            return 0;
        memset(h->v_lab, 1, rows);
        h->v_rows_cap = rows;
    }
    if (entries > h->v_cap) {
        uint32_t *c = realloc(h->v_col, entries * sizeof *c);
        if (c)
            h->v_col = c;
        float *v = realloc(h->v_val, entries * sizeof *v);
        if (v)
            h->v_val = v;
        if (!c || !v)
            return 0;
        h->v_cap = entries;
    }
    return 1;
}

long sl_holdbuf_view(sl_holdbuf_t *h, uint64_t from, uint64_t to, sl_input_t *x, sl_targets_t *t,
                     const uint64_t **seqs) {
    uint64_t oldest = h->pushed - h->count;
    if (from < oldest)
        from = oldest;
    if (to > h->pushed)
        to = h->pushed;
    size_t rows = 0, entries = 0;
    for (uint64_t s = from; s < to; s++) {
        size_t i = ring_at(h, (size_t)(s - oldest));
        if (h->nnz[i] != GAP) {
            rows++;
            entries += NNZ(h->nnz[i]);
        }
    }
    if (!grow_view(h, rows ? rows : 1, entries ? entries : 1))
        return -1;
    size_t r = 0, e = 0;
    h->v_ptr[0] = 0;
    for (uint64_t s = from; s < to; s++) {
        size_t i = ring_at(h, (size_t)(s - oldest));
        if (h->nnz[i] == GAP)
            continue;
        uint32_t n = NNZ(h->nnz[i]);
        if (h->nnz[i] & DENSE)
            for (uint32_t j = 0; j < n; j++)
                h->v_col[e + j] = j;
        else
            memcpy(h->v_col + e, h->col + h->off[i], n * sizeof *h->v_col);
        memcpy(h->v_val + e, h->val + h->off[i], n * sizeof *h->v_val);
        e += n;
        h->v_y[r] = h->y[i];
        h->v_w[r] = h->w[i];
        h->v_seq[r] = s;
        h->v_ptr[++r] = e;
    }
    *x = (sl_input_t){
        .n = rows, .dim = h->dim, .row_ptr = h->v_ptr, .col = h->v_col, .val = h->v_val};
    *t = (sl_targets_t){.y = h->v_y, .w = h->v_w, .labelled = h->v_lab};
    *seqs = h->v_seq;
    return (long)rows;
}

/* Blob layout, the arena as it is (so a restored buffer drops the same
 * samples at the same times): u64 pushed, u64 count, u64 tail; per held
 * sample, oldest first: u32 nnz (0xffffffff: a gap), f32 y, f32 w, then for
 * a non-gap u64 offset, then for a sparse one nnz x u32 column, and nnz x
 * f32 value (a dense one: nnz = dim | 0x80000000, columns implicit). */
void sl_holdbuf_save(const sl_holdbuf_t *h, sl_blob_writer_t *w) {
    sl_blob_put_u64(w, h->pushed);
    sl_blob_put_u64(w, h->count);
    sl_blob_put_u64(w, h->tail);
    for (size_t k = 0; k < h->count; k++) {
        size_t i = ring_at(h, k);
        sl_blob_put_u32(w, h->nnz[i]);
        sl_blob_put_f32s(w, &h->y[i], 1);
        sl_blob_put_f32s(w, &h->w[i], 1);
        if (h->nnz[i] != GAP) {
            sl_blob_put_u64(w, h->off[i]);
            if (!(h->nnz[i] & DENSE))
                sl_blob_put_u32s(w, h->col + h->off[i], h->nnz[i]);
            sl_blob_put_f32s(w, h->val + h->off[i], NNZ(h->nnz[i]));
        }
    }
}

void sl_holdbuf_load(sl_holdbuf_t *h, sl_blob_reader_t *r) {
    uint64_t pushed = sl_blob_get_u64(r, "held samples pushed");
    uint64_t count = sl_blob_get_u64(r, "held samples");
    uint64_t tail = sl_blob_get_u64(r, "held samples tail");
    if (r->err == SL_OK && (count > h->max_rows || count > pushed || tail > h->cap))
        sl_blob_fail(r, "held samples", "more than the buffer holds");
    uint64_t end = 0; /* where the previous sample's entries end */
    for (uint64_t k = 0; k < count && r->err == SL_OK; k++) {
        size_t i = (size_t)k;
        h->nnz[i] = sl_blob_get_u32(r, "held sample nnz");
        sl_blob_get_f32s(r, &h->y[i], 1, "held sample y");
        sl_blob_get_f32s(r, &h->w[i], 1, "held sample w");
        if (r->err != SL_OK || h->nnz[i] == GAP)
            continue;
        uint64_t off = sl_blob_get_u64(r, "held sample offset");
        uint32_t n = NNZ(h->nnz[i]), dense = h->nnz[i] & DENSE;
        if (off < end || off > tail || n > tail - off || (dense && n != h->dim)) {
            sl_blob_fail(r, "held sample offset", "outside the arena, overlapping or misshapen");
            break;
        }
        h->off[i] = (size_t)off;
        end = off + n;
        if (!dense)
            sl_blob_get_u32s(r, h->col + off, n, "held sample columns");
        sl_blob_get_f32s(r, h->val + off, n, "held sample values");
        for (uint32_t j = 0; !dense && j < n && r->err == SL_OK; j++)
            if (h->col[off + j] >= h->dim)
                sl_blob_fail(r, "held sample columns", "column out of range");
    }
    if (r->err != SL_OK) {
        h->first = h->count = h->tail = 0;
        h->pushed = 0;
        return;
    }
    h->first = 0;
    h->count = (size_t)count;
    h->tail = (size_t)tail;
    h->pushed = pushed;
}
