/* scaler.h - online feature scaling, part of the model: running per-feature
 * statistics of the training samples and the transform x' = (x - shift) * mult
 * they give, applied before layer 0; plus the running mean and variance of a
 * regression target. No I/O. */
#ifndef SL_SCALER_H
#define SL_SCALER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/model.h"

/* How features are scaled (--scale).
 *  OFF:      x' = x.
 *  STANDARD: shift = running mean, mult = 1 / running standard deviation
 *            (population, weighted by sample weight, Welford/Chan updates in
 *            double); mult = 1 for a feature whose variance is zero up to
 *            rounding (constant features), so nothing is ever NaN or Inf.
 *  MAXABS:   shift = 0, mult = 1 / max |x| seen (1 while 0): keeps zeros
 *            zero, so sparse and hashed inputs stay sparse.
 *  AUTO:     STANDARD or MAXABS, decided by the first batch with a labelled
 *            sample: MAXABS when that batch is sparse (CSR), else STANDARD.
 * The values are stored in model-state blobs: keep them. */
typedef enum sl_scale_mode {
    SL_SCALE_OFF = 0,
    SL_SCALE_STANDARD = 1,
    SL_SCALE_MAXABS = 2,
    SL_SCALE_AUTO = 3,
} sl_scale_mode_t;

/* Name <-> mode ("off", "standard", "maxabs", "auto"). The parse function
 * returns SL_ERR_INVAL for an unknown name. Names are static strings. */
const char *sl_scaler_mode_name(sl_scale_mode_t mode);
sl_err_t sl_scaler_mode_parse(const char *name, sl_scale_mode_t *mode);

typedef struct sl_scaler sl_scaler_t;

/* A scaler for `dim` features (1..SL_MODEL_MAX_DIM) in `mode`, with no
 * statistics yet: the transform is the identity (shift 0, mult 1) until the
 * first update. NULL with errstr on a bad argument or out of memory. Free
 * with sl_scaler_destroy. */
sl_scaler_t *sl_scaler_new(uint32_t dim, sl_scale_mode_t mode, char *errstr, size_t errstr_size);

/* Frees the scaler; NULL is a no-op. */
void sl_scaler_destroy(sl_scaler_t *s);

/* Forgets every statistic (features and target); an AUTO scaler becomes
 * undecided again. Cannot fail. */
void sl_scaler_reset(sl_scaler_t *s);

uint32_t sl_scaler_dim(const sl_scaler_t *s);

/* The mode asked for at creation, and the mode in force: the same, except
 * that AUTO is in force as AUTO (the identity) until its first update. */
sl_scale_mode_t sl_scaler_requested(const sl_scaler_t *s);
sl_scale_mode_t sl_scaler_mode(const sl_scaler_t *s);

/* 1 unless the scaler is OFF: then the learner skips it altogether. */
int sl_scaler_on(const sl_scaler_t *s);

/* Total sample weight the feature statistics have seen (0 before the first
 * update). */
double sl_scaler_weight(const sl_scaler_t *s);

/* The transform in force: x'[j] = (x[j] - shift[j]) * mult[j], computed in
 * float32 in exactly that order (a subtraction, then a multiplication), dim
 * floats each. Owned by the scaler; valid and unchanged until the next
 * update, reset or state load. This is what predictions use and what
 * exports (safetensors, ONNX) carry. */
const float *sl_scaler_shift(const sl_scaler_t *s);
const float *sl_scaler_mult(const sl_scaler_t *s);

/* Writes the transformed rows of a dense batch: out[i*dim + j] =
 * (x[i*dim + j] - shift[j]) * mult[j] for n rows. */
void sl_scaler_apply_dense(const sl_scaler_t *s, const float *x, size_t n, float *out);

/* Writes the CSR values of rows [0, x->n) scaled without centering:
 * out[k - x->row_ptr[0]] = x->val[k] * mult[x->col[k]]. x must be a checked
 * CSR batch (columns < dim). */
void sl_scaler_apply_sparse(const sl_scaler_t *s, const sl_input_t *x, float *out);

/* Allocates what an update with a batch in x's form needs, so that
 * sl_scaler_update cannot fail afterwards. SL_ERR_NOMEM leaves the scaler as
 * it was (its statistics never change here). */
sl_err_t sl_scaler_reserve(sl_scaler_t *s, const sl_input_t *x);

/* Adds the labelled rows of x (labelled[i] != 0, weight w[i] > 0) to the
 * statistics and refreshes the transform. An AUTO scaler decides its mode
 * here on its first batch with a labelled row. Rows of a CSR batch add up
 * repeated columns; absent columns are zeros (they count for the mean and
 * variance). x must be checked (columns < dim) and sl_scaler_reserve must
 * have succeeded for this batch's form. A batch with no labelled row changes
 * nothing. */
void sl_scaler_update(sl_scaler_t *s, const sl_input_t *x, const float *w, const uint8_t *labelled);

/* The regression target's running statistics (weighted, like the
 * features'): sl_scaler_update_target adds the labelled y values;
 * sl_scaler_target gives the total weight, mean and standard deviation
 * (population; 1 when the variance is 0). The learner trains a linear head
 * in standardised target units with them. */
void sl_scaler_update_target(sl_scaler_t *s, const float *y, const float *w,
                             const uint8_t *labelled, size_t n);
void sl_scaler_target(const sl_scaler_t *s, double *weight, double *mean, double *sd);

/* The raw statistics, for the model-state blob and safetensors. Per mode:
 * STANDARD fills mean and m2 (sum of weighted squared deviations; variance =
 * m2 / weight), MAXABS fills maxabs; the others are NULL. Arrays hold dim
 * values, owned by the scaler, valid until the next update or reset. count
 * and y_count are the labelled samples seen (they bound the rounding error
 * when telling a constant feature from a varying one). */
typedef struct sl_scaler_state {
    sl_scale_mode_t requested, mode;
    double weight;
    uint64_t count;
    const double *mean, *m2;
    const float *maxabs;
    double y_weight, y_mean, y_m2;
    uint64_t y_count;
} sl_scaler_state_t;
void sl_scaler_get_state(const sl_scaler_t *s, sl_scaler_state_t *st);

/* Replaces the statistics with st (arrays of dim values as get_state gives
 * them for st->mode) and refreshes the transform. SL_ERR_INVAL with errstr
 * when st is inconsistent (a mode other than the scaler's requested one or
 * its resolution, negative or non-finite values, a missing array);
 * SL_ERR_NOMEM. On error the scaler is unchanged. */
sl_err_t sl_scaler_set_state(sl_scaler_t *s, const sl_scaler_state_t *st, char *errstr,
                             size_t errstr_size);

/* Copies src's statistics into dst (same dim and requested mode, else
 * SL_ERR_MISMATCH); SL_ERR_NOMEM. dst unchanged on error. */
sl_err_t sl_scaler_copy(sl_scaler_t *dst, const sl_scaler_t *src);

#endif
