/* runner.h - the batch runner: decoded samples through a learner in steps of
 * at most batch_size rows, every sample's output handed to a callback in
 * input order. Shared by the Kafka worker and `replay`; no I/O. */
#ifndef SL_RUNNER_H
#define SL_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "consumer/batch.h"
#include "model/learner.h"

typedef struct sl_runner sl_runner_t;

typedef struct sl_runner_config {
    uint32_t batch_size; /* rows per learner step, >= 1 */
    /* A predictor: sl_learner_predict (forward only, nothing learnt)
     * instead of sl_learner_batch. */
    int predict_only;
} sl_runner_config_t;

/* One sample's output, as the emit callback sees it. Pointers borrow the
 * batch and the runner: valid during the call only. */
typedef struct sl_runner_item {
    sl_slot_view_t slot; /* tag, good, id; error for a bad sample */
    const float *out;    /* good: out_dim floats (sl_learner_batch's `out`); bad: NULL */
    uint32_t out_dim;
    uint64_t step; /* optimizer steps applied to the weights that made it */
} sl_runner_item_t;

/* Called once per slot, in input order. Returning anything but SL_OK stops
 * the run, which returns that code. */
typedef sl_err_t (*sl_runner_emit_fn)(void *opaque, const sl_runner_item_t *item);

/* Counts since sl_runner_new (cumulative; never reset). */
typedef struct sl_runner_counts {
    uint64_t steps;     /* learner calls (one per chunk of <= batch_size rows) */
    uint64_t predicted; /* good samples emitted */
    uint64_t bad;       /* bad samples emitted */
    uint64_t labelled;  /* labelled samples in applied optimizer steps */
    uint64_t refused;   /* optimizer steps refused as non-finite (weights kept) */
} sl_runner_counts_t;

/* Creates a runner for `learner` (borrowed: it must outlive the runner or be
 * replaced with sl_runner_set_learner). Returns NULL with errstr for
 * batch_size 0 or out of memory. Free with sl_runner_destroy. */
sl_runner_t *sl_runner_new(const sl_runner_config_t *c, sl_learner_t *learner, char *errstr,
                           size_t errstr_size);

/* Frees the runner (not the learner); NULL is a no-op. */
void sl_runner_destroy(sl_runner_t *r);

/* Points the runner at another learner (borrowed), e.g. after a rollback.
 * Its output width must equal the old one's: SL_ERR_MISMATCH otherwise,
 * nothing changed. */
sl_err_t sl_runner_set_learner(sl_runner_t *r, sl_learner_t *learner);

/* Runs the batch's rows through the learner, batch_size rows per step, and
 * after each step emits the slots up to that step's last row (bad samples
 * between rows come out in their place), then drops them from the batch.
 * With `flush` 0 only full steps run, and what is left (fewer than
 * batch_size rows, bad samples after the last full step) stays in the batch
 * for a later call; with `flush` 1 the remaining rows run as one short step
 * and every slot left comes out (bad samples after the last row with that
 * step's count; with no row at all, with the learner's), and the batch ends
 * empty. Each slot is emitted once, in input order, with `step` the count of
 * the weights that predicted it (for a bad sample: of the step it follows).
 * A refused step (non-finite weights) is counted and logged, its samples are
 * still emitted with the weights as they were, and the run goes on.
 * Returns SL_OK; the emit callback's error; or the learner's (errstr says
 * "learning step failed: ..."; nothing of that step was emitted and the
 * learner is unchanged). After an error the batch is left as it was when the
 * failing step began, so its first slots may have been emitted already: the
 * caller stops rather than runs it again. */
sl_err_t sl_runner_run(sl_runner_t *r, sl_batch_t *b, int flush, sl_runner_emit_fn emit,
                       void *opaque, char *errstr, size_t errstr_size);

/* Counts so far. */
sl_runner_counts_t sl_runner_counts(const sl_runner_t *r);

#endif
