/* optim.c - torch.optim's update rules and FTRL-Proximal over a flat float vector. */

#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STATE 2

struct sl_optim {
    sl_optim_config_t cfg;
    size_t n_params, n_state;
    uint64_t steps;
    float *state[MAX_STATE];
    float *backup; /* (1 + n_state) * n_params floats: values before the step */
    size_t n_groups;
    size_t group_end[SL_OPTIM_MAX_GROUPS];
    float group_scale[SL_OPTIM_MAX_GROUPS];
};

static const char *const kind_names[] = {"sgd",     "adam", "adamw", "adagrad",
                                         "rmsprop", "ftrl", "auto"};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *sl_optim_kind_name(sl_optim_kind_t kind) {
    return (unsigned)kind < N_KINDS ? kind_names[kind] : "unknown";
}

sl_err_t sl_optim_kind_parse(const char *name, sl_optim_kind_t *kind) {
    for (unsigned i = 0; name && i < N_KINDS; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (sl_optim_kind_t)i;
            return SL_OK;
        }
    }
    return SL_ERR_INVAL;
}

sl_optim_config_t sl_optim_config_default(sl_optim_kind_t kind) {
    return (sl_optim_config_t){.kind = kind,
                               .lr = NAN,
                               .momentum = NAN,
                               .nesterov = 0,
                               .beta1 = NAN,
                               .beta2 = NAN,
                               .alpha = NAN,
                               .eps = NAN,
                               .weight_decay = NAN,
                               .ftrl_alpha = NAN,
                               .ftrl_beta = NAN,
                               .l1 = NAN,
                               .l2 = NAN,
                               .clip_norm = NAN};
}

/* Sets *v to def when NAN (or to 0 when the rule does not use it) and checks
 * lo <= v (< hi when hi_open, else <= hi). */
static sl_err_t field(double *v, int used, double def, double lo, double hi, int hi_open,
                      const char *flag, char *errstr, size_t errstr_size) {
    if (!used) {
        *v = 0;
        return SL_OK;
    }
    if (isnan(*v))
        *v = def;
    if (!isfinite(*v) || *v < lo || (hi_open ? *v >= hi : *v > hi)) {
        if (isinf(hi))
            sl_errstr_set(errstr, errstr_size, "%s: must be a finite number >= %g, got %g", flag,
                          lo, *v);
        else
            sl_errstr_set(errstr, errstr_size, "%s: must be in [%g, %g%c, got %g", flag, lo, hi,
                          hi_open ? ')' : ']', *v);
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

sl_err_t sl_optim_config_resolve(sl_optim_config_t *cfg, char *errstr, size_t errstr_size) {
    sl_optim_kind_t k = cfg->kind;
    if ((unsigned)k >= N_KINDS) {
        sl_errstr_set(errstr, errstr_size, "--optimizer: unknown optimizer %d", (int)k);
        return SL_ERR_INVAL;
    }
    int sgd = k == SL_OPTIM_SGD, adam = k == SL_OPTIM_ADAM || k == SL_OPTIM_ADAMW;
    int rms = k == SL_OPTIM_RMSPROP, ftrl = k == SL_OPTIM_FTRL, autok = k == SL_OPTIM_AUTO;
    static const double default_lr[] = {1e-2, 1e-3, 1e-3, 1e-2, 1e-2, 0, 2.0};
    double eps_def = k == SL_OPTIM_ADAGRAD || autok ? 1e-10 : 1e-8;
    double wd_def = k == SL_OPTIM_ADAMW ? 1e-2 : 0;
    double inf = INFINITY;
    sl_err_t err;
    if ((err = field(&cfg->lr, !ftrl, default_lr[k], 0, inf, 0, "--lr", errstr, errstr_size)) ||
        (err = field(&cfg->momentum, sgd || rms || autok, autok ? 0.5 : 0, 0, autok ? 1 : inf,
                     autok, "--momentum", errstr, errstr_size)) ||
        (err = field(&cfg->beta1, adam, 0.9, 0, 1, 1, "--beta1", errstr, errstr_size)) ||
        (err = field(&cfg->beta2, adam, 0.999, 0, 1, 1, "--beta2", errstr, errstr_size)) ||
        (err = field(&cfg->alpha, rms, 0.99, 0, inf, 0, "--alpha", errstr, errstr_size)) ||
        (err = field(&cfg->eps, !sgd && !ftrl, eps_def, 0, inf, 0, "--eps", errstr, errstr_size)) ||
        (err = field(&cfg->weight_decay, !ftrl, wd_def, 0, inf, 0, "--weight-decay", errstr,
                     errstr_size)) ||
        (err =
             field(&cfg->ftrl_alpha, ftrl, 0.1, 0, inf, 0, "--ftrl-alpha", errstr, errstr_size)) ||
        (err = field(&cfg->ftrl_beta, ftrl, 1.0, 0, inf, 0, "--ftrl-beta", errstr, errstr_size)) ||
        (err = field(&cfg->l1, ftrl, 0, 0, inf, 0, "--l1", errstr, errstr_size)) ||
        (err = field(&cfg->l2, ftrl, 0, 0, inf, 0, "--l2", errstr, errstr_size)) ||
        (err = field(&cfg->clip_norm, 1, 0, 0, inf, 0, "--clip-norm", errstr, errstr_size)))
        return err;
    if (ftrl && cfg->ftrl_alpha <= 0) {
        sl_errstr_set(errstr, errstr_size, "--ftrl-alpha: must be > 0, got %g", cfg->ftrl_alpha);
        return SL_ERR_INVAL;
    }
    if (!sgd)
        cfg->nesterov = 0;
    else if (cfg->nesterov)
        cfg->nesterov = 1;
    if (cfg->nesterov && cfg->momentum <= 0) {
        sl_errstr_set(errstr, errstr_size, "--nesterov: needs --momentum > 0");
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

static size_t state_count(const sl_optim_config_t *cfg) {
    switch (cfg->kind) {
    case SL_OPTIM_SGD: return cfg->momentum > 0 ? 1 : 0;
    case SL_OPTIM_ADAM:
    case SL_OPTIM_ADAMW: return 2;
    case SL_OPTIM_ADAGRAD: return 1;
    case SL_OPTIM_RMSPROP: return cfg->momentum > 0 ? 2 : 1;
    case SL_OPTIM_FTRL: return 2;
    case SL_OPTIM_AUTO: return 2;
    }
    return 0;
}

sl_optim_t *sl_optim_new(const sl_optim_config_t *cfg, size_t n_params, char *errstr,
                         size_t errstr_size) {
    sl_optim_config_t c = *cfg;
    if (sl_optim_config_resolve(&c, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_optim_t *o = calloc(1, sizeof(*o));
    if (!o)
        goto nomem;
    o->cfg = c;
    o->n_params = n_params;
    o->n_state = state_count(&c);
    o->n_groups = 1;
    o->group_end[0] = n_params;
    o->group_scale[0] = 1.0f;
    size_t alloc = n_params ? n_params : 1;
    for (size_t i = 0; i < o->n_state; i++)
        if (!(o->state[i] = calloc(alloc, sizeof(float))))
            goto nomem;
    if (!(o->backup = malloc((1 + o->n_state) * alloc * sizeof(float))))
        goto nomem;
    return o;
nomem:
    sl_optim_destroy(o);
    sl_errstr_set(errstr, errstr_size, "optimizer: out of memory for %zu parameters", n_params);
    return NULL;
}

void sl_optim_destroy(sl_optim_t *o) {
    if (!o)
        return;
    for (size_t i = 0; i < MAX_STATE; i++)
        free(o->state[i]);
    free(o->backup);
    free(o);
}

const sl_optim_config_t *sl_optim_config(const sl_optim_t *o) {
    return &o->cfg;
}

uint64_t sl_optim_steps(const sl_optim_t *o) {
    return o->steps;
}

void sl_optim_set_steps(sl_optim_t *o, uint64_t steps) {
    o->steps = steps;
}

size_t sl_optim_n_state(const sl_optim_t *o) {
    return o->n_state;
}

float *sl_optim_state(sl_optim_t *o, size_t i) {
    return i < o->n_state ? o->state[i] : NULL;
}

/* 1 when x is Inf or NaN; an integer test so the loops vectorise. */
static inline uint32_t nonfinite(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof(u));
    return (u & 0x7f800000u) == 0x7f800000u;
}

/* Each rule updates coordinates [0, n) of p and its state in place (or the
 * coordinates listed in idx) and returns non-zero if any new value is not
 * finite. Scalars are rounded to float as torch does for float tensors. */

static uint32_t step_sgd(sl_optim_t *o, float *p, const float *g, size_t n) {
    const sl_optim_config_t *c = &o->cfg;
    float lr = (float)c->lr, wd = (float)c->weight_decay, mom = (float)c->momentum;
    float *buf = o->state[0];
    int first = o->steps == 0, nesterov = c->nesterov;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        if (mom != 0.0f) {
            float b = first ? d : buf[i] * mom + d;
            buf[i] = b;
            bad |= nonfinite(b);
            d = nesterov ? d + mom * b : b;
        }
        p[i] = p[i] + -lr * d;
        bad |= nonfinite(p[i]);
    }
    return bad;
}

static uint32_t step_adam(sl_optim_t *o, float *p, const float *g, size_t n) {
    const sl_optim_config_t *c = &o->cfg;
    double t = (double)(o->steps + 1);
    double bc1 = 1.0 - pow(c->beta1, t), bc2 = 1.0 - pow(c->beta2, t);
    float step_size = (float)(c->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float b1 = (float)c->beta1, b2 = (float)c->beta2;
    float one_b1 = (float)(1.0 - c->beta1), one_b2 = (float)(1.0 - c->beta2);
    float eps = (float)c->eps, wd = (float)c->weight_decay;
    int decoupled = c->kind == SL_OPTIM_ADAMW;
    float decay = (float)(1.0 - c->lr * c->weight_decay);
    float *m = o->state[0], *v = o->state[1];
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float pi = p[i], gi = g[i];
        if (decoupled)
            pi = pi * decay;
        else if (wd != 0.0f)
            gi = gi + wd * pi;
        float mi = m[i] * b1 + one_b1 * gi;
        float vi = v[i] * b2 + one_b2 * gi * gi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        pi = pi + -step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
        p[i] = pi;
        bad |= nonfinite(mi) | nonfinite(vi) | nonfinite(pi);
    }
    return bad;
}

static uint32_t step_adagrad(sl_optim_t *o, float *p, const float *g, size_t n) {
    const sl_optim_config_t *c = &o->cfg;
    float lr = (float)c->lr, eps = (float)c->eps, wd = (float)c->weight_decay;
    float *sum = o->state[0];
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float s = sum[i] + gi * gi;
        float pi = p[i] + -lr * (gi / (sqrtf(s) + eps));
        sum[i] = s;
        p[i] = pi;
        bad |= nonfinite(s) | nonfinite(pi);
    }
    return bad;
}

static uint32_t step_rmsprop(sl_optim_t *o, float *p, const float *g, size_t n) {
    const sl_optim_config_t *c = &o->cfg;
    float lr = (float)c->lr, eps = (float)c->eps, wd = (float)c->weight_decay;
    float alpha = (float)c->alpha, one_alpha = (float)(1.0 - c->alpha);
    float mom = (float)c->momentum;
    float *sq = o->state[0], *buf = o->state[1];
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float s = sq[i] * alpha + one_alpha * gi * gi;
        float avg = sqrtf(s) + eps;
        float pi;
        if (mom > 0.0f) {
            float b = buf[i] * mom + gi / avg;
            buf[i] = b;
            bad |= nonfinite(b);
            pi = p[i] + -lr * b;
        } else {
            pi = p[i] + -lr * (gi / avg);
        }
        sq[i] = s;
        p[i] = pi;
        bad |= nonfinite(s) | nonfinite(pi);
    }
    return bad;
}

/* The auto rule over [begin, end) with step lr: Adagrad's accumulator, an
 * exponential moving average of the gradient (bias-corrected like Adam's
 * first moment) as the direction. */
static uint32_t step_auto_range(sl_optim_t *o, float *p, const float *g, size_t begin, size_t end,
                                double lr) {
    const sl_optim_config_t *c = &o->cfg;
    double t = (double)(o->steps + 1);
    float step = (float)(lr / (1.0 - pow(c->momentum, t)));
    float beta = (float)c->momentum, one_beta = (float)(1.0 - c->momentum);
    float eps = (float)c->eps, wd = (float)c->weight_decay;
    float *sum = o->state[0], *m = o->state[1];
    uint32_t bad = 0;
    for (size_t i = begin; i < end; i++) {
        float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float s = sum[i] + gi * gi;
        float mi = m[i] * beta + one_beta * gi;
        float pi = p[i] + -step * (mi / (sqrtf(s) + eps));
        sum[i] = s;
        m[i] = mi;
        p[i] = pi;
        bad |= nonfinite(s) | nonfinite(mi) | nonfinite(pi);
    }
    return bad;
}

static uint32_t step_auto(sl_optim_t *o, float *p, const float *g) {
    uint32_t bad = 0;
    size_t begin = 0;
    for (size_t k = 0; k < o->n_groups; k++) {
        double lr = o->cfg.lr * o->group_scale[k];
        bad |= step_auto_range(o, p, g, begin, o->group_end[k], lr);
        begin = o->group_end[k];
    }
    return bad;
}

sl_err_t sl_optim_set_layer_scales(sl_optim_t *o, size_t n, const size_t *ends,
                                   const float *scales) {
    if (n == 0 || n > SL_OPTIM_MAX_GROUPS || ends[n - 1] != o->n_params)
        return SL_ERR_INVAL;
    for (size_t k = 0; k < n; k++)
        if ((k > 0 && ends[k] <= ends[k - 1]) || !isfinite(scales[k]) || scales[k] < 0)
            return SL_ERR_INVAL;
    o->n_groups = n;
    memcpy(o->group_end, ends, n * sizeof(size_t));
    memcpy(o->group_scale, scales, n * sizeof(float));
    return SL_OK;
}

/* FTRL-Proximal, McMahan et al. 2013, Algorithm 1, for coordinate i. */
static uint32_t ftrl_one(const sl_optim_config_t *c, float *w, float *z, float *nn, float g) {
    if (g == 0.0f)
        return 0;
    double gd = g, n_old = *nn, n_new = n_old + gd * gd;
    double sigma = (sqrt(n_new) - sqrt(n_old)) / c->ftrl_alpha;
    double zd = (double)*z + gd - sigma * *w;
    double wd = 0;
    if (fabs(zd) > c->l1) {
        double sgn = zd < 0 ? -1.0 : 1.0;
        wd = -(zd - sgn * c->l1) / ((c->ftrl_beta + sqrt(n_new)) / c->ftrl_alpha + c->l2);
    }
    *z = (float)zd;
    *nn = (float)n_new;
    *w = (float)wd;
    return nonfinite(*z) | nonfinite(*nn) | nonfinite(*w);
}

static uint32_t step_ftrl(sl_optim_t *o, float *p, const float *g, const size_t *idx, size_t n) {
    float *z = o->state[0], *nn = o->state[1];
    uint32_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx ? idx[k] : k;
        bad |= ftrl_one(&o->cfg, p + i, z + i, nn + i, g[i]);
    }
    return bad;
}

/* Plain SGD (no momentum, no weight decay) at listed coordinates only. */
static uint32_t step_sgd_sparse(const sl_optim_t *o, float *p, const float *g, const size_t *idx,
                                size_t n) {
    float lr = (float)o->cfg.lr;
    uint32_t bad = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = idx[k];
        p[i] = p[i] + -lr * g[i];
        bad |= nonfinite(p[i]);
    }
    return bad;
}

/* Saves (or restores, when restore) params and state, at idx or everywhere. */
static void backup_values(sl_optim_t *o, float *p, const size_t *idx, size_t n, int restore) {
    float *arrays[1 + MAX_STATE] = {p, o->state[0], o->state[1]};
    for (size_t a = 0; a <= o->n_state; a++) {
        float *dst = o->backup + a * n;
        if (!idx) {
            if (restore)
                memcpy(arrays[a], dst, n * sizeof(float));
            else
                memcpy(dst, arrays[a], n * sizeof(float));
            continue;
        }
        for (size_t k = 0; k < n; k++) {
            if (restore)
                arrays[a][idx[k]] = dst[k];
            else
                dst[k] = arrays[a][idx[k]];
        }
    }
}

/* torch.nn.utils.clip_grad_norm_ (1.13): the norm over all gradients in
 * double; returns 0 if it is not finite (the step is then refused). */
static int clip(const sl_optim_t *o, float *g, const size_t *idx, size_t n) {
    double sum = 0;
    for (size_t k = 0; k < n; k++) {
        double v = g[idx ? idx[k] : k];
        sum += v * v;
    }
    double total = sqrt(sum);
    if (!isfinite(total))
        return 0;
    float coef = (float)(o->cfg.clip_norm / (total + 1e-6));
    if (coef < 1.0f)
        for (size_t k = 0; k < n; k++)
            g[idx ? idx[k] : k] *= coef;
    return 1;
}

int sl_optim_uses_idx(const sl_optim_t *o) {
    const sl_optim_config_t *c = &o->cfg;
    return c->kind == SL_OPTIM_FTRL ||
           (c->kind == SL_OPTIM_SGD && c->momentum == 0 && c->weight_decay == 0);
}

void sl_optim_step(sl_optim_t *o, float *params, float *grad, const size_t *idx, size_t n_idx,
                   int *refused) {
    const sl_optim_config_t *c = &o->cfg;
    if (!sl_optim_uses_idx(o))
        idx = NULL;
    size_t n = idx ? n_idx : o->n_params;
    *refused = 0;
    if (c->clip_norm > 0 && !clip(o, grad, idx, n)) {
        *refused = 1;
        return;
    }
    backup_values(o, params, idx, n, 0);
    uint32_t bad = 0;
    switch (c->kind) {
    case SL_OPTIM_SGD:
        bad = idx ? step_sgd_sparse(o, params, grad, idx, n) : step_sgd(o, params, grad, n);
        break;
    case SL_OPTIM_ADAM:
    case SL_OPTIM_ADAMW: bad = step_adam(o, params, grad, n); break;
    case SL_OPTIM_ADAGRAD: bad = step_adagrad(o, params, grad, n); break;
    case SL_OPTIM_RMSPROP: bad = step_rmsprop(o, params, grad, n); break;
    case SL_OPTIM_FTRL: bad = step_ftrl(o, params, grad, idx, n); break;
    case SL_OPTIM_AUTO: bad = step_auto(o, params, grad); break;
    }
    if (bad) {
        backup_values(o, params, idx, n, 1);
        *refused = 1;
        return;
    }
    o->steps++;
}

void sl_optim_params_changed(sl_optim_t *o, const float *params) {
    const sl_optim_config_t *c = &o->cfg;
    if (c->kind != SL_OPTIM_FTRL)
        return;
    double scale = c->ftrl_beta / c->ftrl_alpha + c->l2;
    for (size_t i = 0; i < o->n_params; i++) {
        double w = params[i];
        double sgn = w > 0 ? 1.0 : (w < 0 ? -1.0 : 0.0);
        o->state[0][i] = (float)(-w * scale - sgn * c->l1);
        o->state[1][i] = 0.0f;
    }
}
