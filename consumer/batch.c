/* batch.c - decoded samples waiting for the model, and their slots. */

#include "batch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define NO_ROW SIZE_MAX

/* realloc of n elements of size sz with overflow check; *p unchanged on failure. */
static sl_err_t grow_array(void **p, size_t n, size_t sz) {
    if (n > SIZE_MAX / sz)
        return SL_ERR_NOMEM;
    size_t bytes = n * sz;
    void *q = realloc(*p, bytes ? bytes : 1);
    if (!q)
        return SL_ERR_NOMEM;
    *p = q;
    return SL_OK;
}

static size_t next_cap(size_t cap, size_t need) {
    size_t c = cap ? cap : 16;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    return c;
}

/* reserve_row's slow path: grows what is too small for one more row. */
static sl_err_t grow_row(sl_batch_t *b) {
    size_t need = b->rows + 1;
    if (need > b->row_cap) {
        size_t cap = next_cap(b->row_cap, need);
        if (grow_array((void **)&b->y, cap, sizeof(float)) ||
            grow_array((void **)&b->w, cap, sizeof(float)) ||
            grow_array((void **)&b->labelled, cap, 1) ||
            grow_array((void **)&b->row_slot, cap, sizeof(size_t)) ||
            grow_array((void **)&b->row_ptr, cap + 1, sizeof(size_t)))
            return SL_ERR_NOMEM;
        b->row_cap = cap;
    }
    if (!b->sparse && need > b->dense_cap) {
        size_t cap = next_cap(b->dense_cap, need);
        if (cap > SIZE_MAX / b->dim || grow_array((void **)&b->dense, cap * b->dim, sizeof(float)))
            return SL_ERR_NOMEM;
        b->dense_cap = cap;
    }
    return SL_OK;
}

/* Room for one more row in every per-row array (and in `dense` when the
 * batch is dense). Arrays that grew stay grown on failure: harmless. */
static inline sl_err_t reserve_row(sl_batch_t *b) {
    size_t need = b->rows + 1;
    if (need <= b->row_cap && (b->sparse || need <= b->dense_cap))
        return SL_OK;
    return grow_row(b);
}

static sl_err_t reserve_nnz(sl_batch_t *b, size_t extra) {
    size_t used = b->row_ptr[b->rows];
    if (extra > SIZE_MAX - used)
        return SL_ERR_NOMEM;
    if (used + extra <= b->nnz_cap)
        return SL_OK;
    size_t cap = next_cap(b->nnz_cap, used + extra);
    if (grow_array((void **)&b->col, cap, sizeof(uint32_t)) ||
        grow_array((void **)&b->val, cap, sizeof(float)))
        return SL_ERR_NOMEM;
    b->nnz_cap = cap;
    return SL_OK;
}

static sl_err_t reserve_slot(sl_batch_t *b, size_t bytes) {
    if (b->n_slots + 1 > b->slot_cap) {
        size_t cap = next_cap(b->slot_cap, b->n_slots + 1);
        if (grow_array((void **)&b->slots, cap, sizeof(sl_batch_slot_t)))
            return SL_ERR_NOMEM;
        b->slot_cap = cap;
    }
    return sl_buf_reserve(&b->bytes, bytes);
}

sl_batch_t *sl_batch_new(uint32_t dim, size_t cap_hint) {
    if (dim == 0)
        return NULL;
    sl_batch_t *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->dim = dim;
    if (reserve_row(b) != SL_OK)
        goto fail;
    if (cap_hint > 1) {
        b->rows = cap_hint - 1; /* reserve room for cap_hint rows */
        sl_err_t err = reserve_row(b);
        b->rows = 0;
        if (err != SL_OK)
            goto fail;
    }
    b->row_ptr[0] = 0;
    return b;
fail:
    sl_batch_destroy(b);
    return NULL;
}

void sl_batch_destroy(sl_batch_t *b) {
    if (!b)
        return;
    free(b->dense);
    free(b->row_ptr);
    free(b->col);
    free(b->val);
    free(b->y);
    free(b->w);
    free(b->labelled);
    free(b->row_slot);
    free(b->slots);
    sl_buf_free(&b->bytes);
    free(b);
}

void sl_batch_clear(sl_batch_t *b) {
    b->rows = 0;
    b->sparse = 0;
    b->row_ptr[0] = 0;
    b->n_slots = 0;
    sl_buf_reset(&b->bytes);
}

size_t sl_batch_rows(const sl_batch_t *b) {
    return b->rows;
}

size_t sl_batch_slots(const sl_batch_t *b) {
    return b->n_slots;
}

/* Appends the slot record and its bytes; space was reserved by the caller. */
static inline void put_slot(sl_batch_t *b, size_t row, uint64_t tag, const uint8_t *id,
                            size_t id_len, const char *error, size_t err_len) {
    sl_batch_slot_t *s = &b->slots[b->n_slots++];
    s->tag = tag;
    s->row = row;
    s->bytes_off = b->bytes.len;
    s->id_len = (uint32_t)id_len;
    s->err_len = (uint32_t)err_len;
    if (id_len) {
        memcpy(b->bytes.data + b->bytes.len, id, id_len);
        b->bytes.len += id_len;
    }
    if (error) {
        memcpy(b->bytes.data + b->bytes.len, error, err_len + 1);
        b->bytes.len += err_len + 1;
    }
}

static inline void put_labels(sl_batch_t *b, float y, float w, int labelled, uint64_t tag,
                              const uint8_t *id, size_t id_len) {
    size_t r = b->rows;
    b->y[r] = labelled ? y : 0.0f;
    b->w[r] = w;
    b->labelled[r] = labelled ? 1 : 0;
    b->row_slot[r] = b->n_slots;
    put_slot(b, r, tag, id, id_len, NULL, 0);
    b->rows++;
}

/* Moves every dense row into CSR form (dropping exact zeros). */
static sl_err_t to_sparse(sl_batch_t *b) {
    size_t nnz = 0;
    const float *d = b->dense;
    for (size_t i = 0; i < b->rows * b->dim; i++)
        nnz += d[i] != 0.0f;
    b->row_ptr[0] = 0;
    size_t saved_rows = b->rows;
    b->rows = 0; /* reserve_nnz counts from row_ptr[rows] */
    sl_err_t err = reserve_nnz(b, nnz);
    b->rows = saved_rows;
    if (err != SL_OK)
        return err;
    size_t k = 0;
    for (size_t r = 0; r < b->rows; r++) {
        const float *row = d + r * b->dim;
        for (uint32_t j = 0; j < b->dim; j++) {
            if (row[j] != 0.0f) {
                b->col[k] = j;
                b->val[k] = row[j];
                k++;
            }
        }
        b->row_ptr[r + 1] = k;
    }
    b->sparse = 1;
    return SL_OK;
}

float *sl_batch_next_row(sl_batch_t *b) {
    if (b->sparse || reserve_row(b) != SL_OK)
        return NULL;
    return b->dense + b->rows * b->dim;
}

sl_err_t sl_batch_push_dense(sl_batch_t *b, const float *x, float y, float w, int labelled,
                             uint64_t tag, const uint8_t *id, size_t id_len) {
    if (id_len > UINT32_MAX)
        return SL_ERR_INVAL;
    if (reserve_row(b) != SL_OK || reserve_slot(b, id_len) != SL_OK)
        return SL_ERR_NOMEM;
    if (!b->sparse) {
        float *row = b->dense + b->rows * b->dim;
        if (x != row) /* not already written in place (sl_batch_next_row) */
            memcpy(row, x, (size_t)b->dim * sizeof(float));
    } else {
        size_t nz = 0;
        for (uint32_t j = 0; j < b->dim; j++)
            nz += x[j] != 0.0f;
        if (reserve_nnz(b, nz) != SL_OK)
            return SL_ERR_NOMEM;
        size_t k = b->row_ptr[b->rows];
        for (uint32_t j = 0; j < b->dim; j++) {
            if (x[j] != 0.0f) {
                b->col[k] = j;
                b->val[k] = x[j];
                k++;
            }
        }
        b->row_ptr[b->rows + 1] = k;
    }
    put_labels(b, y, w, labelled, tag, id, id_len);
    return SL_OK;
}

sl_err_t sl_batch_push_sparse(sl_batch_t *b, const uint32_t *col, const float *val, size_t n,
                              float y, float w, int labelled, uint64_t tag, const uint8_t *id,
                              size_t id_len) {
    for (size_t i = 0; i < n; i++)
        if (col[i] >= b->dim)
            return SL_ERR_INVAL;
    if (id_len > UINT32_MAX)
        return SL_ERR_INVAL;
    if (reserve_row(b) != SL_OK || reserve_slot(b, id_len) != SL_OK)
        return SL_ERR_NOMEM;
    if (!b->sparse && to_sparse(b) != SL_OK)
        return SL_ERR_NOMEM;
    if (reserve_nnz(b, n) != SL_OK)
        return SL_ERR_NOMEM;
    size_t k = b->row_ptr[b->rows];
    if (n > 0) {
        memcpy(b->col + k, col, n * sizeof(uint32_t));
        memcpy(b->val + k, val, n * sizeof(float));
    }
    b->row_ptr[b->rows + 1] = k + n;
    put_labels(b, y, w, labelled, tag, id, id_len);
    return SL_OK;
}

sl_err_t sl_batch_push_error(sl_batch_t *b, const char *error, uint64_t tag, const uint8_t *id,
                             size_t id_len) {
    size_t err_len = strlen(error);
    if (id_len > UINT32_MAX || err_len > UINT32_MAX - 1)
        return SL_ERR_INVAL;
    if (reserve_slot(b, id_len + err_len + 1) != SL_OK)
        return SL_ERR_NOMEM;
    put_slot(b, NO_ROW, tag, id, id_len, error, err_len);
    return SL_OK;
}

void sl_batch_view(const sl_batch_t *b, size_t row0, size_t nrows, sl_input_t *x, sl_targets_t *t) {
    assert(row0 + nrows <= b->rows);
    memset(x, 0, sizeof(*x));
    x->n = nrows;
    x->dim = b->dim;
    if (!b->sparse) {
        x->dense = b->dense + row0 * b->dim;
    } else {
        x->row_ptr = b->row_ptr + row0;
        x->col = b->col;
        x->val = b->val;
    }
    t->y = b->y + row0;
    t->w = b->w + row0;
    t->labelled = b->labelled + row0;
}

void sl_batch_slot(const sl_batch_t *b, size_t i, sl_slot_view_t *v) {
    assert(i < b->n_slots);
    const sl_batch_slot_t *s = &b->slots[i];
    /* No slot so far had bytes: data may still be NULL. */
    const uint8_t *p = b->bytes.data ? b->bytes.data + s->bytes_off : NULL;
    v->tag = s->tag;
    v->good = s->row != NO_ROW;
    v->row = s->row;
    v->id = s->id_len ? p : NULL;
    v->id_len = s->id_len;
    v->error = v->good ? NULL : (const char *)p + s->id_len;
}

size_t sl_batch_cut(const sl_batch_t *b, size_t nrows) {
    return nrows < b->rows ? b->row_slot[nrows] : b->n_slots;
}

void sl_batch_shift(sl_batch_t *b, size_t nrows) {
    if (nrows > b->rows)
        nrows = b->rows;
    size_t cut = sl_batch_cut(b, nrows);
    size_t rest = b->rows - nrows;

    if (!b->sparse) {
        memmove(b->dense, b->dense + nrows * b->dim, rest * b->dim * sizeof(float));
    } else {
        size_t base = b->row_ptr[nrows];
        size_t nnz = b->row_ptr[b->rows] - base;
        memmove(b->col, b->col + base, nnz * sizeof(uint32_t));
        memmove(b->val, b->val + base, nnz * sizeof(float));
        for (size_t i = 0; i <= rest; i++)
            b->row_ptr[i] = b->row_ptr[i + nrows] - base;
    }
    memmove(b->y, b->y + nrows, rest * sizeof(float));
    memmove(b->w, b->w + nrows, rest * sizeof(float));
    memmove(b->labelled, b->labelled + nrows, rest);
    for (size_t i = 0; i < rest; i++)
        b->row_slot[i] = b->row_slot[i + nrows] - cut;

    size_t keep = b->n_slots - cut;
    size_t byte_base = keep ? b->slots[cut].bytes_off : b->bytes.len;
    if (keep > 0)
        memmove(b->slots, b->slots + cut, keep * sizeof(sl_batch_slot_t));
    for (size_t i = 0; i < keep; i++) {
        b->slots[i].bytes_off -= byte_base;
        if (b->slots[i].row != NO_ROW)
            b->slots[i].row -= nrows;
    }
    if (byte_base > 0 && byte_base < b->bytes.len)
        memmove(b->bytes.data, b->bytes.data + byte_base, b->bytes.len - byte_base);
    b->bytes.len -= byte_base;
    b->n_slots = keep;
    b->rows = rest;
    if (rest == 0) {
        b->sparse = 0;
        b->row_ptr[0] = 0;
    }
}

void sl_batch_truncate(sl_batch_t *b, size_t slots) {
    if (slots >= b->n_slots)
        return;
    size_t rows = b->rows;
    for (size_t i = slots; i < b->n_slots; i++) {
        if (b->slots[i].row != NO_ROW) {
            rows = b->slots[i].row;
            break;
        }
    }
    b->bytes.len = b->slots[slots].bytes_off;
    b->n_slots = slots;
    b->rows = rows;
    if (rows == 0) {
        b->sparse = 0;
        b->row_ptr[0] = 0;
    }
}
