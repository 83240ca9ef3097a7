/* holdbuf.h - a bounded FIFO of the most recent labelled samples (features as
 * sparse rows, label, weight), numbered in arrival order, to score stored
 * model versions on recent data. No I/O. */
#ifndef SL_HOLDBUF_H
#define SL_HOLDBUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/blob.h"
#include "model/learner.h"
#include "model/model.h"

typedef struct sl_holdbuf sl_holdbuf_t;

/* A buffer for samples of `dim` features keeping at most max_rows samples and
 * about max_bytes of features (8 bytes per value: dim per dense sample, one
 * per entry of a sparse one; the oldest go first). A
 * sample too large for the byte budget alone is kept as a gap: it counts, but
 * cannot be scored. NULL on out of memory or a zero limit. Free with
 * sl_holdbuf_destroy. */
sl_holdbuf_t *sl_holdbuf_new(uint32_t dim, size_t max_rows, size_t max_bytes);

/* Frees the buffer; NULL is a no-op. */
void sl_holdbuf_destroy(sl_holdbuf_t *h);

/* Appends row `row` of x (dense or CSR) with its label and weight, dropping
 * the oldest samples to make room.
 * Never fails: the memory is reserved up front. */
void sl_holdbuf_push(sl_holdbuf_t *h, const sl_input_t *x, size_t row, float y, float w);

/* Samples appended since creation (the number the next one gets), and how
 * many of the newest are held (gaps included). */
uint64_t sl_holdbuf_pushed(const sl_holdbuf_t *h);
size_t sl_holdbuf_held(const sl_holdbuf_t *h);

/* The held samples numbered from..to-1 (numbers outside what is held are
 * skipped, and so are gaps) as a CSR batch with every row labelled. x, t and
 * *seqs (each row's number) borrow the buffer's scratch: valid until the next
 * call on h. Returns the row count, or -1 when out of memory for the scratch. */
long sl_holdbuf_view(sl_holdbuf_t *h, uint64_t from, uint64_t to, sl_input_t *x, sl_targets_t *t,
                     const uint64_t **seqs);

/* Appends the held samples, oldest first, and the arena layout to a blob;
 * reads them back into a buffer made with the same limits, which must be
 * empty, and then holds exactly what was saved (so it drops the same samples
 * at the same times). The read fails the reader (SL_ERR_DECODE, naming the
 * field) on a column out of range, overlapping samples or counts beyond the
 * limits, and leaves the buffer empty. */
void sl_holdbuf_save(const sl_holdbuf_t *h, sl_blob_writer_t *w);
void sl_holdbuf_load(sl_holdbuf_t *h, sl_blob_reader_t *r);

#endif
