/* model.h - a feed-forward network of dense layers (torch.nn.Linear layout)
 * with a linear, logistic or softmax head: forward and backward passes, no I/O. */
#ifndef SL_MODEL_H
#define SL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SL_MAX_HIDDEN 8 /* hidden layers; layers = hidden + 1 */
#define SL_MAX_LAYERS (SL_MAX_HIDDEN + 1)

typedef enum sl_head {
    SL_HEAD_LINEAR = 0,   /* one output, MSE loss, pred = value */
    SL_HEAD_LOGISTIC = 1, /* one output (logit), BCE-with-logits, pred = P(y=1) */
    SL_HEAD_SOFTMAX = 2,  /* K outputs, cross-entropy, pred = argmax, proba = softmax */
} sl_head_t;

typedef enum sl_act {
    SL_ACT_RELU = 0,
    SL_ACT_TANH = 1,
    SL_ACT_SIGMOID = 2,
} sl_act_t;

/* The architecture. Plain data: callers fill it, sl_model_new checks it. */
typedef struct sl_model_config {
    sl_head_t head;
    uint32_t dim;      /* input features, >= 1 */
    uint32_t classes;  /* softmax only: K >= 2; ignored (treated as 1 output) otherwise */
    uint32_t n_hidden; /* 0..SL_MAX_HIDDEN */
    uint32_t hidden[SL_MAX_HIDDEN];
    sl_act_t activation; /* between layers; unused when n_hidden == 0 */
} sl_model_config_t;

/* A batch of inputs as the model reads it. Plain data, borrowed by the model
 * for the duration of one call. Exactly one of the two forms is used:
 *  - dense:  `dense` != NULL, n rows of `dim` floats, row-major;
 *  - sparse: `dense` == NULL, CSR: row i holds entries row_ptr[i] ..
 *            row_ptr[i+1]-1 of col[] (0 <= col < dim) and val[]. A column may
 *            repeat within a row; repeated entries add up. */
typedef struct sl_input {
    size_t n;
    size_t dim;
    const float *dense;
    const size_t *row_ptr; /* n + 1 entries */
    const uint32_t *col;
    const float *val;
} sl_input_t;

typedef struct sl_model sl_model_t;

/* Checks cfg and allocates a model with all parameters zero. The kept config
 * is normalised: classes = 1 unless softmax, hidden[] beyond n_hidden zero,
 * activation relu without hidden layers. Returns NULL on a bad config
 * (errstr says which field and why) or out of memory. Free with
 * sl_model_destroy. */
sl_model_t *sl_model_new(const sl_model_config_t *cfg, char *errstr, size_t errstr_size);

/* Frees the model; NULL is a no-op. */
void sl_model_destroy(sl_model_t *m);

/* The checked config; valid for the model's lifetime. */
const sl_model_config_t *sl_model_config(const sl_model_t *m);

/* Outputs of the last layer: K for softmax, else 1. */
uint32_t sl_model_out_dim(const sl_model_t *m);

/* Number of dense layers (n_hidden + 1). */
uint32_t sl_model_n_layers(const sl_model_t *m);

/* All parameters live in one flat float array, in order W0, b0, W1, b1, ...
 * with Wi row-major [out][in] like torch.nn.Linear.weight. The pointer is
 * owned by the model and valid for its lifetime. */
float *sl_model_params(sl_model_t *m);
size_t sl_model_n_params(const sl_model_t *m);

/* Describes layer i (0-based): where its weight and bias start in the flat
 * parameter array, and its shape. Returns SL_ERR_RANGE for a bad i. */
typedef struct sl_layer_view {
    uint32_t in, out;
    size_t weight_offset; /* into sl_model_params(), out*in floats */
    size_t bias_offset;   /* out floats */
} sl_layer_view_t;
sl_err_t sl_model_layer(const sl_model_t *m, uint32_t i, sl_layer_view_t *view);

/* nn.Linear's default initialisation (kaiming_uniform(a=sqrt(5)) on weights,
 * i.e. U(-1/sqrt(in), 1/sqrt(in)), and the same bound for biases), drawn from
 * a deterministic generator seeded with `seed`. Same seed, same weights.
 * The generator is xoshiro256** with its state filled by splitmix64(seed);
 * values are drawn layer by layer, weights (row-major) then bias, each
 * (2u - 1) * bound with u the top 24 bits of one output over 2^24. Not
 * torch's generator: use --init for torch's exact weights. */
void sl_model_init_seeded(sl_model_t *m, uint64_t seed);

/* Folds an input transform x' = (x - shift) * mult (dim floats each) into
 * layer 0, so that the model on raw x computes what it computed on x':
 * W0[o][j] *= mult[j], then b0[o] -= sum_j W0[o][j] * shift[j] (in double).
 * Equal up to float rounding. */
void sl_model_fold_input(sl_model_t *m, const float *shift, const float *mult);

/* A new model with m's config and weights and the input transform folded
 * into its layer 0 (sl_model_fold_input on the copy; m is only read): what
 * exports write for a model on raw features. NULL on out of memory. Free
 * with sl_model_destroy. */
sl_model_t *sl_model_folded(const sl_model_t *m, const float *shift, const float *mult);

/* Limits sl_model_new enforces, so every size fits BLAS's int and memory. */
#define SL_MODEL_MAX_DIM (1u << 26)
#define SL_MODEL_MAX_WIDTH (1u << 20)    /* hidden units or classes */
#define SL_MODEL_MAX_PARAMS (1ull << 30) /* floats */

/* Name <-> enum for heads ("linear", "logistic", "softmax") and activations
 * ("relu", "tanh", "sigmoid"). The parse functions return SL_ERR_INVAL for an
 * unknown name and leave *out untouched. Names are static strings. */
const char *sl_model_head_name(sl_head_t head);
sl_err_t sl_model_head_parse(const char *name, sl_head_t *out);
const char *sl_model_act_name(sl_act_t act);
sl_err_t sl_model_act_parse(const char *name, sl_act_t *out);

/* Checks cfg without allocating: SL_OK, or SL_ERR_INVAL with errstr naming the
 * flag (e.g. "--classes: softmax needs at least 2 classes"). */
sl_err_t sl_model_config_check(const sl_model_config_t *cfg, char *errstr, size_t errstr_size);

/* Checks x against the model without computing anything: the checks
 * sl_model_forward starts with (same errors and messages). */
sl_err_t sl_model_check_input(const sl_model_t *m, const sl_input_t *x, char *errstr,
                              size_t errstr_size);

/* Checks the labels of n rows as sl_model_loss does (same errors) and counts
 * the labelled ones into *n_labelled; writes nothing else. */
sl_err_t sl_model_check_labels(const sl_model_t *m, size_t n, const float *y, const float *w,
                               const uint8_t *labelled, size_t *n_labelled);

/* The output of layer i (0-based) for the rows of the last forward: n *
 * out_i floats, the activation applied for hidden layers (so layer i's
 * output is layer i + 1's input). Model-owned, valid until the next
 * forward; NULL for a bad i or before any forward. */
const float *sl_model_layer_output(const sl_model_t *m, uint32_t i);

/* The gradient of the last sl_model_backward, same layout as the parameters.
 * Owned by the model, valid for its lifetime. After a sparse backward only
 * the touched columns of W0 (sl_model_touched) can be non-zero there. */
float *sl_model_grad(sl_model_t *m);

/* Forward pass over x with the current parameters. On SL_OK *logits points
 * at n * sl_model_out_dim() floats of last-layer outputs before the head's
 * link function (model-owned; valid until the next forward). The hidden
 * activations are kept for sl_model_backward. Errors: SL_ERR_MISMATCH (x->dim
 * differs from the model), SL_ERR_RANGE (a CSR column >= dim or row_ptr not
 * non-decreasing), SL_ERR_INVAL (missing arrays, n too large), SL_ERR_NOMEM.
 * Scratch buffers grow with n and are kept, so steady state does no malloc.
 * Parameters never change here. */
sl_err_t sl_model_forward(sl_model_t *m, const sl_input_t *x, const float **logits, char *errstr,
                          size_t errstr_size);

/* Backward pass for the x of the last forward, given dL/dlogits (n * out_dim
 * floats). Overwrites the gradient (sl_model_grad) with dL/dparams. A dense x
 * writes all of it; a sparse x writes W0's gradient only at the columns its
 * rows use (listed by sl_model_touched) and leaves the rest of W0's gradient
 * zero. Returns SL_ERR_STATE if x does not have the last forward's n rows and
 * form (no forward, or a different batch); then the gradient is unchanged. */
sl_err_t sl_model_backward(sl_model_t *m, const sl_input_t *x, const float *dlogits);

/* After a sparse backward: the distinct input columns it touched (n in *n,
 * model-owned array valid until the next backward or release). After a dense
 * backward: NULL and 0. */
const uint32_t *sl_model_touched(const sl_model_t *m, size_t *n);

/* Zeroes W0's gradient at the touched columns and forgets them, so the next
 * sparse backward starts from an all-zero W0 gradient without a full pass. */
void sl_model_grad_release(sl_model_t *m);

/* Tells the model its caller wrote W0's gradient outside the touched columns
 * (a dense correction after a sparse backward), so the next sparse backward
 * clears all of W0's gradient first. */
void sl_model_grad_set_dense(sl_model_t *m);

/* The head's link: writes n * out_dim outputs from logits into out: linear
 * the value, logistic sigmoid(logit) = P(y=1), softmax the class
 * probabilities (stable: max subtracted). */
void sl_model_outputs(const sl_model_t *m, const float *logits, size_t n, float *out);

/* The training loss over labelled rows, sum(w_i * loss_i) / sum(w_i), with
 * loss_i MSE (linear), BCE on the logit (logistic) or cross-entropy (softmax).
 * For row i with labelled[i] != 0 writes loss_i to sample_loss[i] (if not
 * NULL); unlabelled rows get 0 there. Writes dL/dlogits into dlogits (n *
 * out_dim floats, zero rows for unlabelled samples). *loss gets the weighted
 * mean (NAN when nothing is labelled), *n_labelled the labelled count.
 * When out is not NULL, also writes every row's outputs there exactly as
 * sl_model_outputs does (n * out_dim floats), in the same pass: the loss
 * reuses the link's exponentials.
 * Errors, with nothing meaningful written: SL_ERR_RANGE (softmax class not an
 * integer in 0..K-1, logistic label not 0 or 1), SL_ERR_INVAL (weight not
 * finite and > 0), SL_ERR_NONFINITE (a non-finite label). */
sl_err_t sl_model_loss(const sl_model_t *m, const float *logits, size_t n, const float *y,
                       const float *w, const uint8_t *labelled, float *out, double *sample_loss,
                       float *dlogits, double *loss, size_t *n_labelled);

#endif
