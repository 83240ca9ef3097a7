/* holdbuf.c - recent labelled samples: a ring of rows over a circular arena of (column, value). */
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
    uint32_t *col; /* arena: each row's entries contiguous, rows in ring order from
                    * the oldest's offset to tail, wrapping to 0 at most once */
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
    /* every row dense, and one more for the end of the arena a wrap skips */
    if (h->cap / dim > max_rows + 1)
        h->cap = (max_rows + 1) * dim;
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

/* Where the oldest row with entries starts; SIZE_MAX when none has any. */
static size_t live_start(const sl_holdbuf_t *h) {
    for (size_t k = 0; k < h->count; k++) {
        size_t i = ring_at(h, k);
        if (h->nnz[i] != GAP && NNZ(h->nnz[i]) > 0)
            return h->off[i];
    }
    return SIZE_MAX;
}

static void drop_oldest(sl_holdbuf_t *h) {
    h->first = (h->first + 1) % h->max_rows;
    h->count--;
}

/* Where n > 0 entries go, dropping the oldest rows until they fit after the
 * tail or, wrapping, at the start of the arena; the live entries run from the
 * oldest row to the tail (wrapped when tail <= head). SIZE_MAX when n can
 * never fit. */
static size_t place(sl_holdbuf_t *h, size_t n) {
    if (n > h->cap)
        return SIZE_MAX;
    for (;;) {
        size_t head = live_start(h);
        if (head == SIZE_MAX)
            return 0;
        if (h->tail > head) { /* [head, tail) in use */
            if (n <= h->cap - h->tail)
                return h->tail;
            if (n <= head)
                return 0;
        } else if (n <= head - h->tail) { /* wrapped: [head, cap) and [0, tail) in use */
            return h->tail;
        }
        drop_oldest(h);
    }
}

void sl_holdbuf_push(sl_holdbuf_t *h, const sl_input_t *x, size_t row, float y, float w) {
    size_t n = x->dense ? x->dim : x->row_ptr[row + 1] - x->row_ptr[row];
    if (h->count == h->max_rows)
        drop_oldest(h);
    size_t at = n > 0 ? place(h, n) : h->tail;
    size_t i = ring_at(h, h->count);
    h->count++;
    h->pushed++;
    h->y[i] = y;
    h->w[i] = w;
    if (at == SIZE_MAX) {
        h->nnz[i] = GAP;
        return;
    }
    h->off[i] = at;
    h->nnz[i] = (uint32_t)n | (x->dense ? DENSE : 0);
    if (x->dense) {
        memcpy(h->val + at, x->dense + row * x->dim, n * sizeof *h->val);
    } else {
        memcpy(h->col + at, x->col + x->row_ptr[row], n * sizeof *h->col);
        memcpy(h->val + at, x->val + x->row_ptr[row], n * sizeof *h->val);
    }
    h->tail = at + n;
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
    /* offsets must follow the allocation rule: each row right after the
     * previous one or, once, at 0, never reaching into the oldest row */
    uint64_t end = 0, first_off = UINT64_MAX;
    int seen = 0, wrapped = 0;
    for (uint64_t k = 0; k < count && r->err == SL_OK; k++) {
        size_t i = (size_t)k;
        h->nnz[i] = sl_blob_get_u32(r, "held sample nnz");
        sl_blob_get_f32s(r, &h->y[i], 1, "held sample y");
        sl_blob_get_f32s(r, &h->w[i], 1, "held sample w");
        if (r->err != SL_OK || h->nnz[i] == GAP)
            continue;
        uint64_t off = sl_blob_get_u64(r, "held sample offset");
        uint32_t n = NNZ(h->nnz[i]), dense = h->nnz[i] & DENSE;
        int ok = off <= h->cap && n <= h->cap - off && (!dense || n == h->dim);
        if (ok && n > 0 && seen && off != end) {
            ok = !wrapped && off == 0; /* the one wrap */
            wrapped = 1;
        }
        if (ok && n > 0 && wrapped && off + n > first_off)
            ok = 0;
        if (!ok) {
            sl_blob_fail(r, "held sample offset", "outside the arena, overlapping or misshapen");
            break;
        }
        h->off[i] = (size_t)off;
        if (n > 0) {
            if (!seen)
                first_off = off;
            seen = 1;
            end = off + n;
        }
        if (!dense)
            sl_blob_get_u32s(r, h->col + off, n, "held sample columns");
        sl_blob_get_f32s(r, h->val + off, n, "held sample values");
        for (uint32_t j = 0; !dense && j < n && r->err == SL_OK; j++)
            if (h->col[off + j] >= h->dim)
                sl_blob_fail(r, "held sample columns", "column out of range");
    }
    if (r->err == SL_OK && seen && tail != end)
        sl_blob_fail(r, "held samples tail", "not where the newest sample ends");
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
