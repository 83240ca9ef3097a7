/* batch.h - decoded samples waiting for the model: features, labels, and one
 * slot per input sample (good or bad) in input order. */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "model/learner.h"
#include "model/model.h"

/* One input sample, in input order. A good sample owns a row; a bad one an
 * error text. id and error bytes live in the batch's `bytes` buffer. */
typedef struct sl_batch_slot {
    uint64_t tag;     /* caller's tag of the message it came from (e.g. Kafka offset) */
    size_t row;       /* good samples: the row index; SIZE_MAX for a bad sample */
    size_t bytes_off; /* where this slot's bytes start in `bytes` (id, then error) */
    uint32_t id_len;  /* raw msgpack bytes of `id`; 0: no id (encode as nil) */
    uint32_t err_len; /* bad samples: error text length (NUL-terminated in `bytes`) */
} sl_batch_slot_t;

/* Plain data. Rows are dense (`dense` [rows][dim]) until the first sparse
 * sample arrives; from then on (until sl_batch_clear, or a shift that empties
 * it) every row is in CSR form (row_ptr/col/val; dense samples are added
 * without their exact zeros). Read fields freely; change them only through
 * the functions below. */
typedef struct sl_batch {
    uint32_t dim;
    int sparse;
    size_t rows, row_cap;
    float *dense; /* [dense_cap][dim]; rows live here while !sparse */
    size_t dense_cap;
    size_t *row_ptr; /* row_cap + 1 entries while sparse */
    uint32_t *col;
    float *val;
    size_t nnz_cap;
    float *y, *w;
    uint8_t *labelled;
    size_t *row_slot; /* slot index of each row */
    sl_batch_slot_t *slots;
    size_t n_slots, slot_cap;
    sl_buf_t bytes;
} sl_batch_t;

/* Creates an empty batch for samples of `dim` features, with room for about
 * cap_hint rows before growing. Returns NULL when dim is 0 or out of memory.
 * Free with sl_batch_destroy. */
sl_batch_t *sl_batch_new(uint32_t dim, size_t cap_hint);

/* Frees the batch; NULL is a no-op. */
void sl_batch_destroy(sl_batch_t *b);

/* Empties the batch (rows and slots) and returns it to dense mode, keeping
 * its allocations. */
void sl_batch_clear(sl_batch_t *b);

/* Number of good samples (rows) and of slots (all samples). */
size_t sl_batch_rows(const sl_batch_t *b);
size_t sl_batch_slots(const sl_batch_t *b);

/* Where the next dense row's dim floats go, so a decoder can write a
 * sample's features in place: reserves room for one more row and returns
 * it, or NULL when the batch is in CSR form or out of memory. The row joins
 * the batch only when sl_batch_push_dense is given this pointer (which then
 * copies nothing); until then it is scratch. Valid until the next call that
 * appends a row or frees the batch. */
float *sl_batch_next_row(sl_batch_t *b);

/* Appends a good dense sample: x holds dim floats (copied, unless x is
 * sl_batch_next_row's pointer). labelled 0 means
 * predict-only (y ignored); w is the sample weight. id/id_len: the raw
 * msgpack bytes of its id (copied; id_len 0 for none). SL_ERR_NOMEM leaves
 * the batch as it was. */
sl_err_t sl_batch_push_dense(sl_batch_t *b, const float *x, float y, float w, int labelled,
                             uint64_t tag, const uint8_t *id, size_t id_len);

/* Appends a good sparse sample of n entries (0 <= col[i] < dim, repeats add
 * up; copied). Switches the batch to CSR on its first call. SL_ERR_INVAL for
 * a column out of range, SL_ERR_NOMEM; on error the batch is as it was. */
sl_err_t sl_batch_push_sparse(sl_batch_t *b, const uint32_t *col, const float *val, size_t n,
                              float y, float w, int labelled, uint64_t tag, const uint8_t *id,
                              size_t id_len);

/* Appends a bad sample: its error text (copied) and its id bytes if known
 * (id_len 0 for nil). SL_ERR_NOMEM leaves the batch as it was. */
sl_err_t sl_batch_push_error(sl_batch_t *b, const char *error, uint64_t tag, const uint8_t *id,
                             size_t id_len);

/* Fills x and t with a view of rows [row0, row0 + nrows) (row0 + nrows <=
 * rows). The views borrow the batch's arrays: valid until the next call that
 * changes the batch. For CSR the view's row_ptr is offset to row0 while col
 * and val stay absolute. */
void sl_batch_view(const sl_batch_t *b, size_t row0, size_t nrows, sl_input_t *x, sl_targets_t *t);

/* A slot as the output side reads it. Pointers borrow the batch's memory,
 * valid until the next call that changes the batch. */
typedef struct sl_slot_view {
    uint64_t tag;
    int good;          /* 1: a row holds it; 0: a bad sample */
    size_t row;        /* good only */
    const uint8_t *id; /* raw msgpack bytes; NULL when id_len is 0 */
    size_t id_len;
    const char *error; /* bad only: NUL-terminated; NULL for good samples */
} sl_slot_view_t;

/* Describes slot i (i < sl_batch_slots(b)). */
void sl_batch_slot(const sl_batch_t *b, size_t i, sl_slot_view_t *v);

/* Number of slots that come before the slot of row `nrows`: the outputs a
 * caller emits after running rows [0, nrows). All slots when nrows == rows. */
size_t sl_batch_cut(const sl_batch_t *b, size_t nrows);

/* Removes rows [0, nrows) and the slots [0, sl_batch_cut(b, nrows)); the rest
 * move to the front, keeping their order, tags and bytes. nrows > rows is
 * treated as rows. Never allocates, cannot fail. */
void sl_batch_shift(sl_batch_t *b, size_t nrows);

/* Drops every slot from index `slots` on (and their rows), undoing appends:
 * the batch is as it was when it held that many slots (a batch that became
 * CSR meanwhile stays CSR unless it ends up empty). slots >= the current
 * count is a no-op. Never allocates, cannot fail. */
void sl_batch_truncate(sl_batch_t *b, size_t slots);

#endif
