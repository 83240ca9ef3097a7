/* score.h - forward-only scoring of a learner on labelled rows: the
 * per-sample loss and right/wrong a training step would have seen, with no
 * step, no metrics update and no change to the learner's weights. No I/O. */
#ifndef SL_SCORE_H
#define SL_SCORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/learner.h"

/* Scratch kept between calls so steady state does not allocate. Plain data;
 * a zeroed struct is empty; free with sl_score_scratch_free. */
typedef struct sl_score_scratch {
    float *dlogits, *out;
    size_t cap; /* floats in each */
} sl_score_scratch_t;

void sl_score_scratch_free(sl_score_scratch_t *s);

/* One forward pass of l's model over x. For every row i: out (if not NULL;
 * rows * out_dim floats) gets the prediction exactly as sl_learner_batch
 * writes it; for labelled rows loss[i] gets the training loss and wrong[i]
 * (if not NULL) 1 for a wrong class (logistic: P >= 0.5 against y; softmax:
 * argmax) or, for regression, prediction - target; unlabelled rows get NAN
 * in both. The model's forward scratch is reused, so this must not run
 * between a forward and its backward (it never does inside sl_learner_batch).
 * Errors as sl_learner_batch's (SL_ERR_MISMATCH, SL_ERR_RANGE, SL_ERR_INVAL,
 * SL_ERR_NONFINITE, SL_ERR_NOMEM); the weights never change. */
sl_err_t sl_score_rows(sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t,
                       sl_score_scratch_t *s, float *out, double *loss, double *wrong);

#endif
