/* learner.h - the test-then-train step: a model, its optimizer and its
 * prequential metrics, advanced one mini-batch at a time. No I/O. */
#ifndef SL_LEARNER_H
#define SL_LEARNER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/metrics.h"
#include "model/model.h"
#include "model/optim.h"
#include "model/scaler.h"

typedef struct sl_learner sl_learner_t;

/* Labels of a batch, aligned with its sl_input_t rows. Plain data, borrowed.
 * labelled[i] == 0 means sample i is predict-only (y[i], w[i] ignored).
 * y: regression target, 0/1 (logistic), or class index as float (softmax).
 * w: sample weight > 0 (1 when the sample gave none). */
typedef struct sl_targets {
    const float *y;
    const float *w;
    const uint8_t *labelled;
} sl_targets_t;

/* What one batch did. */
typedef struct sl_batch_result {
    size_t n_labelled;
    int stepped; /* 1 if an optimizer step was applied */
    int refused; /* 1 if the step was refused (non-finite weights/state) */
    double loss; /* sum(w*loss)/sum(w) over labelled samples, before the step */
} sl_batch_result_t;

/* Creates a learner: model from mcfg, optimizer from ocfg (resolved here; NAN
 * fields take defaults), metrics with a sliding window of `window` labelled
 * samples (0 = default 1000, at most SL_METRICS_MAX_WINDOW), no feature
 * scaling (sl_learner_set_scale turns it on). Weights start at nn.Linear's
 * default initialisation from `seed`, except with FTRL, which starts from
 * zero weights (z = n = 0) as in McMahan et al. and supports no hidden
 * layers. Returns NULL with errstr naming the bad field, or on out of
 * memory. Free with sl_learner_destroy. */
sl_learner_t *sl_learner_new(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                             uint64_t seed, uint32_t window, char *errstr, size_t errstr_size);

/* Frees everything; NULL is a no-op. */
void sl_learner_destroy(sl_learner_t *l);

/* The model (owned by the learner; valid for its lifetime). Writing its
 * parameters (e.g. loading --init weights) is allowed between batches; call
 * sl_learner_params_changed afterwards so optimizer state that mirrors the
 * weights (FTRL's z) is rebuilt. */
sl_model_t *sl_learner_model(sl_learner_t *l);
const sl_optim_config_t *sl_learner_optim_config(const sl_learner_t *l);
/* The optimizer (owned by the learner; valid for its lifetime). */
sl_optim_t *sl_learner_optim(sl_learner_t *l);
void sl_learner_params_changed(sl_learner_t *l);

/* Sets the online feature scaling (model/scaler.h) of a learner that has not
 * trained yet: a fresh scaler in `mode` replaces the current one.
 * SL_ERR_STATE when the learner has already seen a labelled sample (the
 * scaler is part of the model from then on), SL_ERR_INVAL for an unknown
 * mode, SL_ERR_NOMEM; errstr says which. Nothing changes on error. */
sl_err_t sl_learner_set_scale(sl_learner_t *l, sl_scale_mode_t mode, char *errstr,
                              size_t errstr_size);

/* The scaler (owned by the learner; valid for its lifetime; never NULL).
 * Writable so that weights files can restore its statistics between
 * batches (sl_scaler_set_state). */
sl_scaler_t *sl_learner_scaler(sl_learner_t *l);
const sl_scaler_t *sl_learner_scaler_const(const sl_learner_t *l);

/* The input transform the model applies before layer 0, as exports must
 * reproduce it: x'[j] = (x[j] - shift[j]) * mult[j], in float32, a
 * subtraction then a multiplication. Returns 0 with both NULL when scaling
 * is off (x' = x); else 1 with dim floats each (the identity, shift 0 and
 * mult 1, until the first labelled batch). Owned by the learner, valid
 * until the next call that trains or loads it. The statistics behind it
 * are updated after each batch's predictions (a batch is predicted with the
 * transform of the batches before it), except that the first labelled
 * batch seeds them before it is predicted: there is nothing to scale by
 * before it, and only its features (never its labels) are used. */
int sl_learner_input_transform(const sl_learner_t *l, const float **shift, const float **mult);

/* The test-then-train step, as the README's "Learning" section states it:
 *  0. with scaling on, x is transformed before layer 0 (see
 *     sl_learner_input_transform); a linear head then also trains in
 *     standardised target units (the loss divided by the target variance,
 *     the last layer stepped in units of its standard deviation), which
 *     leaves predictions in the target's own units;
 *  1. one forward pass over all x->n rows with the current weights; writes
 *     out[i * sl_model_out_dim(m) + j]: linear value, logistic P(y=1), or
 *     softmax class probabilities (caller takes argmax);
 *  2. prequential metrics updated from those outputs for labelled samples;
 *  3. if any sample is labelled: loss sum(w_i*loss_i)/sum(w_i) over labelled
 *     ones, backward, optional clipping, one optimizer step. A step that would
 *     make any weight or optimizer state non-finite is refused: weights and
 *     state stay as they were, the refusal is counted (res->refused = 1) and
 *     the call still returns SL_OK.
 * out must hold x->n * out_dim floats; res may be NULL.
 * Returns SL_ERR_MISMATCH if x->dim differs from the model, SL_ERR_RANGE for
 * a softmax class outside 0..K-1 or a logistic label not 0/1 (the caller's
 * decoder should have rejected those) or a CSR column >= dim, SL_ERR_INVAL for
 * a missing array or a labelled weight not > 0, SL_ERR_NONFINITE for a
 * non-finite label, SL_ERR_NOMEM. On error nothing changed. */
sl_err_t sl_learner_batch(sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t, float *out,
                          sl_batch_result_t *res);

/* The forward pass alone (a predictor's step): writes out[i * out_dim + j]
 * as step 1 of sl_learner_batch does, with the current weights and the
 * current input transform (step 0; the scaler is read, never updated), and
 * changes nothing else: no metrics, no counters, no step, no statistics. out
 * must hold x->n * out_dim floats. SL_ERR_MISMATCH if x->dim differs from
 * the model, SL_ERR_INVAL for a missing out, SL_ERR_RANGE for a CSR column
 * >= dim, SL_ERR_NOMEM (scratch for the scaled input). */
sl_err_t sl_learner_predict(sl_learner_t *l, const sl_input_t *x, float *out);

/* The forward pass of sl_learner_predict, stopped at the logits (the last
 * layer's output before the head's link: a linear head's value, a logistic
 * logit, softmax logits) for whoever needs the training loss without
 * training (model/score). *logits is model-owned, valid until the next
 * forward; it must not run between a forward and its backward. Errors as
 * sl_learner_predict's; nothing changes. */
sl_err_t sl_learner_forward(sl_learner_t *l, const sl_input_t *x, const float **logits);

/* Copies everything that makes src what it is - weights, optimizer state and
 * step count, counters, prequential metrics, scaler statistics - into dst,
 * which must have been made with the same architecture, optimizer, scaling
 * and metrics window (e.g. by sl_learner_clone). Plain memcpy of the
 * arrays: the cheap way for a worker to hand a consistent copy to a
 * background snapshot writer. Returns SL_ERR_MISMATCH, dst unchanged, when
 * the two differ in shape (SL_ERR_NOMEM, dst unchanged, if dst's scaler
 * could not grow to src's mode). */
sl_err_t sl_learner_copy(sl_learner_t *dst, const sl_learner_t *src);

/* A new learner equal to src (sl_learner_copy into a fresh one). NULL on out
 * of memory. Free with sl_learner_destroy. */
sl_learner_t *sl_learner_clone(const sl_learner_t *src);

/* Counters since creation (restored by the state blob). */
typedef struct sl_learner_counters {
    uint64_t step;          /* optimizer steps applied */
    uint64_t samples;       /* labelled samples trained on (in applied steps) */
    uint64_t predictions;   /* samples predicted */
    uint64_t refused_steps; /* steps refused as non-finite */
} sl_learner_counters_t;
sl_learner_counters_t sl_learner_counters(const sl_learner_t *l);

/* Prequential metrics (owned by the learner). */
const sl_metrics_t *sl_learner_metrics(const sl_learner_t *l);

/* The model-state blob: architecture, hyperparameters, weights, optimizer
 * state, counters, metrics and (format 2) the scaler and the auto
 * optimizer's statistics; little-endian, magic "SLMS", format version,
 * xxh64 checksum. Format 1 blobs still load, as models without scaling. sl_learner_save returns a
 * malloc'd buffer in *buf (caller frees with free()) of *len bytes. sl_learner_load builds a new
 * learner from a blob; on a truncated, corrupted (checksum), newer-format or inconsistent blob it
 * returns NULL with errstr saying which, never crashing or reading out of bounds. When `expect` is
 * not NULL, a blob whose architecture differs from it is refused with SL_ERR_MISMATCH naming the
 * differing field. *err (may be NULL) receives the code. */
sl_err_t sl_learner_save(const sl_learner_t *l, uint8_t **buf, size_t *len);
sl_learner_t *sl_learner_load(const uint8_t *buf, size_t len, const sl_model_config_t *expect,
                              sl_err_t *err, char *errstr, size_t errstr_size);

#endif
