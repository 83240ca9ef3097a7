/* optim.h - optimizers over a flat parameter vector with torch.optim's exact
 * update rules (SGD, Adam, AdamW, Adagrad, RMSprop), FTRL-Proximal, and the
 * stream default `auto` (Adagrad accumulators with momentum, stepped per
 * layer). */
#ifndef SL_OPTIM_H
#define SL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum sl_optim_kind {
    SL_OPTIM_SGD = 0,
    SL_OPTIM_ADAM = 1,
    SL_OPTIM_ADAMW = 2,
    SL_OPTIM_ADAGRAD = 3,
    SL_OPTIM_RMSPROP = 4,
    SL_OPTIM_FTRL = 5,
    SL_OPTIM_AUTO = 6, /* values are stored in model-state blobs: keep them */
} sl_optim_kind_t;

/* Hyperparameters. A field set to NAN means "the torch.optim default for this
 * optimizer"; sl_optim_config_resolve replaces NANs with those defaults:
 *  sgd:     lr 0.01 (torch.optim.SGD has no default lr; ours is documented),
 *           momentum 0, nesterov 0, weight_decay 0
 *  adam:    lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0
 *  adamw:   lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 1e-2
 *  adagrad: lr 1e-2, eps 1e-10, weight_decay 0 (lr_decay 0, initial_accumulator_value 0)
 *  rmsprop: lr 1e-2, alpha 0.99, eps 1e-8, momentum 0, weight_decay 0 (centered false)
 *  ftrl:    ftrl_alpha 0.1, ftrl_beta 1.0, l1 0, l2 0
 *  auto:    lr 2, momentum 0.5 (in [0, 1)), eps 1e-10, weight_decay 0. Not a
 *           torch.optim rule: per coordinate G += g^2, m = momentum * m +
 *           (1 - momentum) * g, p -= lr_layer * (m / (1 - momentum^t)) /
 *           (sqrt(G) + eps), with lr_layer = lr * the layer's scale
 *           (sl_optim_set_layer_scales; the learner sets it, see
 *           docs/LEARNING.md)
 * clip_norm: 0 or NAN = no clipping; else clip the global L2 norm of the
 * gradient to clip_norm (torch.nn.utils.clip_grad_norm_). */
typedef struct sl_optim_config {
    sl_optim_kind_t kind;
    double lr;
    double momentum;
    int nesterov;
    double beta1, beta2;
    double alpha; /* RMSprop smoothing constant */
    double eps;
    double weight_decay;
    double ftrl_alpha, ftrl_beta, l1, l2;
    double clip_norm;
} sl_optim_config_t;

/* A config with every numeric field NAN (= defaults) for `kind`. */
sl_optim_config_t sl_optim_config_default(sl_optim_kind_t kind);

/* Replaces NAN fields with the defaults above and checks ranges (lr >= 0,
 * 0 <= beta < 1, eps >= 0, nesterov needs momentum > 0, ...). Returns
 * SL_ERR_INVAL with errstr naming the flag (e.g. "--beta1: must be in [0, 1)").
 * Fields the chosen rule does not use are set to 0 (nesterov too). Resolving
 * a resolved config changes nothing. */
sl_err_t sl_optim_config_resolve(sl_optim_config_t *cfg, char *errstr, size_t errstr_size);

/* Name <-> kind ("sgd", "adam", "adamw", "adagrad", "rmsprop", "ftrl", "auto").
 * sl_optim_kind_parse returns SL_ERR_INVAL for an unknown name. */
const char *sl_optim_kind_name(sl_optim_kind_t kind);
sl_err_t sl_optim_kind_parse(const char *name, sl_optim_kind_t *kind);

/* The optimizer: its config, step count and per-parameter state arrays. */
typedef struct sl_optim sl_optim_t;

/* Creates an optimizer for n_params parameters with all state zero and step
 * count 0. cfg is resolved here (a copy is kept). Returns NULL with errstr
 * naming the bad flag, or on out of memory. Free with sl_optim_destroy. */
sl_optim_t *sl_optim_new(const sl_optim_config_t *cfg, size_t n_params, char *errstr,
                         size_t errstr_size);

/* Frees the optimizer; NULL is a no-op. */
void sl_optim_destroy(sl_optim_t *o);

/* The resolved config; valid for the optimizer's lifetime. */
const sl_optim_config_t *sl_optim_config(const sl_optim_t *o);

/* One update of params (n_params floats) from grad, torch.optim semantics:
 * optional global-norm clipping of grad (grad is modified), then the rule of
 * cfg->kind. When idx is not NULL the caller promises grad is zero at every
 * coordinate not among idx[0..n_idx) (distinct, < n_params); rules that leave
 * zero-gradient coordinates unchanged (FTRL; SGD without momentum or weight
 * decay) then visit only those. A step that would make any parameter or
 * state value non-finite is refused: params and state are left exactly as
 * they were, the step count does not advance, and *refused is set to 1 (else
 * 0). Cannot fail otherwise. */
void sl_optim_step(sl_optim_t *o, float *params, float *grad, const size_t *idx, size_t n_idx,
                   int *refused);

/* Per-layer step sizes for the auto rule, like torch.optim's param groups:
 * group i holds parameters [ends[i-1], ends[i]) (ends[-1] = 0, ends[n-1] =
 * n_params) and steps with lr * scales[i]. Kept until set again; the other
 * rules ignore them. Returns SL_ERR_INVAL (nothing changed) for n = 0, more
 * than SL_OPTIM_MAX_GROUPS groups, ends not increasing to n_params, or a
 * scale that is negative or not finite. Without a call, one group with
 * scale 1. */
#define SL_OPTIM_MAX_GROUPS 16
sl_err_t sl_optim_set_layer_scales(sl_optim_t *o, size_t n, const size_t *ends,
                                   const float *scales);

/* 1 when sl_optim_step uses its idx hint (FTRL; SGD without momentum or
 * weight decay), so callers can skip building the list otherwise. */
int sl_optim_uses_idx(const sl_optim_t *o);

/* Tells the optimizer its parameters were set from outside (e.g. --init).
 * FTRL rebuilds its state so its closed form reproduces params: n = 0 and
 * z = -w (beta/alpha + l2) - sgn(w) l1 (z = 0 where w = 0). The other rules
 * keep their state, as torch.optim does when weights are loaded. */
void sl_optim_params_changed(sl_optim_t *o, const float *params);

/* Steps applied so far (torch's state['step']; also decides SGD's first
 * momentum step). */
uint64_t sl_optim_steps(const sl_optim_t *o);
void sl_optim_set_steps(sl_optim_t *o, uint64_t steps);

/* The state arrays, each n_params floats, in a fixed order per kind:
 * sgd: momentum_buffer (only when momentum > 0); adam/adamw: exp_avg,
 * exp_avg_sq; adagrad: sum; rmsprop: square_avg, then momentum_buffer when
 * momentum > 0; ftrl: z, n; auto: sum, momentum_buffer. Owned by the optimizer;
 * i < sl_optim_n_state. */
size_t sl_optim_n_state(const sl_optim_t *o);
float *sl_optim_state(sl_optim_t *o, size_t i);

#endif
