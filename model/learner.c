/* learner.c - the test-then-train step over one mini-batch. */
#include "model/learner_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The auto optimizer's per-layer step (docs/LEARNING.md): lr * HEAD / (L^2 *
 * sqrt(mean |layer input|^2 + 1)) times a linear warm-up over WARMUP * (L -
 * 1) steps, L the number of layers. HEAD is 1/4 for the squared loss (its
 * curvature is up to 8 times the logistic loss's), 1 otherwise. */
#define AUTO_LINEAR_HEAD 0.25
#define AUTO_WARMUP_PER_LAYER 5.0

sl_learner_t *sl_learner_create(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                                sl_scale_mode_t scale, uint32_t window, char *errstr,
                                size_t errstr_size) {
    if (ocfg->kind == SL_OPTIM_FTRL && mcfg->n_hidden > 0) {
        sl_errstr_set(errstr, errstr_size,
                      "--optimizer ftrl: supports models without hidden layers");
        return NULL;
    }
    if (window > SL_METRICS_MAX_WINDOW) {
        sl_errstr_set(errstr, errstr_size, "metrics window: at most %u samples, got %u",
                      SL_METRICS_MAX_WINDOW, window);
        return NULL;
    }
    sl_learner_t *l = calloc(1, sizeof(*l));
    if (!l) {
        sl_errstr_set(errstr, errstr_size, "learner: out of memory");
        return NULL;
    }
    l->target_reexpress = 1;
    if (!(l->model = sl_model_new(mcfg, errstr, errstr_size)))
        goto fail;
    if (!(l->optim = sl_optim_new(ocfg, sl_model_n_params(l->model), errstr, errstr_size)))
        goto fail;
    if (!(l->metrics = sl_metrics_new(mcfg->head != SL_HEAD_LINEAR, window))) {
        sl_errstr_set(errstr, errstr_size, "learner: out of memory for the metrics window");
        goto fail;
    }
    if (!(l->scaler = sl_scaler_new(mcfg->dim, scale, errstr, errstr_size)))
        goto fail;
    return l;
fail:
    sl_learner_destroy(l);
    return NULL;
}

sl_learner_t *sl_learner_new(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                             uint64_t seed, uint32_t window, char *errstr, size_t errstr_size) {
    sl_learner_t *l = sl_learner_create(mcfg, ocfg, SL_SCALE_OFF, window, errstr, errstr_size);
    if (l && ocfg->kind != SL_OPTIM_FTRL)
        sl_model_init_seeded(l->model, seed);
    return l;
}

void sl_learner_destroy(sl_learner_t *l) {
    if (!l)
        return;
    sl_model_destroy(l->model);
    sl_optim_destroy(l->optim);
    sl_metrics_destroy(l->metrics);
    sl_scaler_destroy(l->scaler);
    free(l->sample_loss);
    free(l->dlogits);
    free(l->train_logits);
    free(l->idx);
    free(l->xs);
    free(l->xs_row_ptr);
    free(l->offset);
    free(l->bias0);
    free(l->saved);
    free(l->row_acc);
    free(l->row_mark);
    free(l);
}

sl_err_t sl_learner_set_scale(sl_learner_t *l, sl_scale_mode_t mode, char *errstr,
                              size_t errstr_size) {
    if (sl_scaler_weight(l->scaler) > 0 || l->counters.samples > 0) {
        sl_errstr_set(errstr, errstr_size,
                      "--scale: the model has trained already; its scaling is part of it");
        return SL_ERR_STATE;
    }
    sl_scaler_t *s = sl_scaler_new(sl_model_config(l->model)->dim, mode, errstr, errstr_size);
    if (!s)
        return (unsigned)mode > SL_SCALE_AUTO ? SL_ERR_INVAL : SL_ERR_NOMEM;
    sl_scaler_destroy(l->scaler);
    l->scaler = s;
    return SL_OK;
}

sl_scaler_t *sl_learner_scaler(sl_learner_t *l) {
    return l->scaler;
}

const sl_scaler_t *sl_learner_scaler_const(const sl_learner_t *l) {
    return l->scaler;
}

int sl_learner_input_transform(const sl_learner_t *l, const float **shift, const float **mult) {
    if (!sl_scaler_on(l->scaler)) {
        *shift = *mult = NULL;
        return 0;
    }
    *shift = sl_scaler_shift(l->scaler);
    *mult = sl_scaler_mult(l->scaler);
    return 1;
}

sl_err_t sl_learner_copy(sl_learner_t *dst, const sl_learner_t *src) {
    size_t n = sl_model_n_params(src->model);
    size_t ns = sl_optim_n_state(src->optim);
    sl_metrics_state_t ms, md;
    const sl_metrics_sample_t *ring, *dring;
    sl_metrics_get_state(src->metrics, &ms, &ring);
    sl_metrics_get_state(dst->metrics, &md, &dring);
    if (n != sl_model_n_params(dst->model) || ns != sl_optim_n_state(dst->optim) ||
        sl_learner_optim_config(src)->kind != sl_learner_optim_config(dst)->kind ||
        ms.window != md.window || ms.classification != md.classification ||
        sl_scaler_dim(src->scaler) != sl_scaler_dim(dst->scaler) ||
        sl_scaler_requested(src->scaler) != sl_scaler_requested(dst->scaler))
        return SL_ERR_MISMATCH;
    sl_err_t err = sl_scaler_copy(dst->scaler, src->scaler);
    if (err != SL_OK)
        return err;
    memcpy(sl_model_params(dst->model), sl_model_params(src->model), n * sizeof(float));
    for (size_t i = 0; i < ns; i++)
        memcpy(sl_optim_state(dst->optim, i), sl_optim_state(src->optim, i), n * sizeof(float));
    sl_optim_set_steps(dst->optim, sl_optim_steps(src->optim));
    dst->counters = src->counters;
    dst->target_reexpress = src->target_reexpress;
    memcpy(dst->norm_sum, src->norm_sum, sizeof dst->norm_sum);
    dst->norm_rows = src->norm_rows;
    return sl_metrics_set_state(dst->metrics, &ms, ring) == SL_OK ? SL_OK : SL_ERR_MISMATCH;
}

sl_learner_t *sl_learner_clone(const sl_learner_t *src) {
    sl_metrics_state_t ms;
    const sl_metrics_sample_t *ring;
    sl_metrics_get_state(src->metrics, &ms, &ring);
    char why[256];
    sl_learner_t *l =
        sl_learner_create(sl_model_config(src->model), sl_learner_optim_config(src),
                          sl_scaler_requested(src->scaler), ms.window, why, sizeof why);
    if (l && sl_learner_copy(l, src) != SL_OK) {
        sl_learner_destroy(l);
        return NULL;
    }
    return l;
}

sl_model_t *sl_learner_model(sl_learner_t *l) {
    return l->model;
}

sl_optim_t *sl_learner_optim(sl_learner_t *l) {
    return l->optim;
}

const sl_optim_config_t *sl_learner_optim_config(const sl_learner_t *l) {
    return sl_optim_config(l->optim);
}

void sl_learner_params_changed(sl_learner_t *l) {
    sl_optim_params_changed(l->optim, sl_model_params(l->model));
    l->target_reexpress = 0; /* weights from outside are in the target's units */
}

sl_learner_counters_t sl_learner_counters(const sl_learner_t *l) {
    return l->counters;
}

const sl_metrics_t *sl_learner_metrics(const sl_learner_t *l) {
    return l->metrics;
}

static sl_err_t grow(void **p, size_t *cap, size_t want, size_t size) {
    if (want <= *cap)
        return SL_OK;
    void *q = realloc(*p, (want ? want : 1) * size);
    if (!q)
        return SL_ERR_NOMEM;
    *p = q;
    *cap = want;
    return SL_OK;
}

/* 1 when a linear head trains in standardised target units. */
static int target_scaled(const sl_learner_t *l) {
    return sl_scaler_on(l->scaler) && sl_model_config(l->model)->head == SL_HEAD_LINEAR;
}

/* The scaled input's buffers, sized before anything changes. */
static sl_err_t ensure_scaled(sl_learner_t *l, const sl_input_t *x) {
    if (!sl_scaler_on(l->scaler) || x->n == 0)
        return SL_OK;
    if (sl_scaler_reserve(l->scaler, x) != SL_OK)
        return SL_ERR_NOMEM;
    size_t dim = x->dim;
    if (x->dense)
        return grow((void **)&l->xs, &l->cap_xs, x->n * dim, sizeof(float));
    size_t nnz = x->row_ptr[x->n] - x->row_ptr[0];
    sl_layer_view_t v0;
    sl_model_layer(l->model, 0, &v0);
    if (grow((void **)&l->xs, &l->cap_xs, nnz, sizeof(float)) != SL_OK ||
        grow((void **)&l->xs_row_ptr, &l->cap_row_ptr, x->n + 1, sizeof(size_t)) != SL_OK)
        return SL_ERR_NOMEM;
    if (!l->offset && !(l->offset = malloc(dim * sizeof(float))))
        return SL_ERR_NOMEM;
    if (!l->bias0 && !(l->bias0 = malloc(v0.out * sizeof(float))))
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* The auto optimizer's row norms of a CSR batch add repeated columns up
 * first, as the model does. */
static sl_err_t ensure_row_norms(sl_learner_t *l, const sl_input_t *x) {
    if (x->dense || x->n == 0 || sl_learner_optim_config(l)->kind != SL_OPTIM_AUTO)
        return SL_OK;
    if (!l->row_acc && !(l->row_acc = malloc(x->dim * sizeof(float))))
        return SL_ERR_NOMEM;
    if (!l->row_mark && !(l->row_mark = calloc(x->dim, 1)))
        return SL_ERR_NOMEM;
    return SL_OK;
}

/* Grows the per-row scratch and, for sparse batches whose optimizer visits
 * only coordinates with a gradient, the index list, before anything changes. */
static sl_err_t ensure_scratch(sl_learner_t *l, const sl_input_t *x) {
    uint32_t k = sl_model_out_dim(l->model);
    if (x->n > l->cap_rows) {
        double *sl = realloc(l->sample_loss, x->n * sizeof(double));
        if (!sl)
            return SL_ERR_NOMEM;
        l->sample_loss = sl;
        float *dl = realloc(l->dlogits, x->n * k * sizeof(float));
        if (!dl)
            return SL_ERR_NOMEM;
        l->dlogits = dl;
        float *tl = realloc(l->train_logits, x->n * k * sizeof(float));
        if (!tl)
            return SL_ERR_NOMEM;
        l->train_logits = tl;
        l->cap_rows = x->n;
    }
    if (ensure_scaled(l, x) != SL_OK || ensure_row_norms(l, x) != SL_OK)
        return SL_ERR_NOMEM;
    sl_layer_view_t last;
    sl_model_layer(l->model, sl_model_n_layers(l->model) - 1, &last);
    if (target_scaled(l) && grow((void **)&l->saved, &l->cap_saved,
                                 (size_t)last.out * last.in + last.out, sizeof(float)) != SL_OK)
        return SL_ERR_NOMEM;
    if (x->dense || x->n == 0 || !sl_optim_uses_idx(l->optim))
        return SL_OK;
    sl_layer_view_t v0;
    sl_model_layer(l->model, 0, &v0);
    size_t nnz = x->row_ptr[x->n] - x->row_ptr[0];
    size_t cols = nnz < v0.in ? nnz : v0.in;
    size_t want = cols * v0.out + (sl_model_n_params(l->model) - v0.bias_offset);
    return grow((void **)&l->idx, &l->cap_idx, want, sizeof(size_t));
}

/* The forward pass on the scaled input. *xin receives the input the model
 * saw (for backward). A sparse batch stays sparse: its values are scaled in
 * place of a copy; when the transform centres (STANDARD), layer 0's bias
 * absorbs the centring, b0 - W0 (shift * mult), for this forward only, and
 * backward corrects W0's gradient (l->centred). */
static sl_err_t forward_scaled(sl_learner_t *l, const sl_input_t *x, sl_input_t *xin,
                               const float **logits) {
    *xin = *x;
    l->centred = 0;
    sl_model_t *m = l->model;
    if (!sl_scaler_on(l->scaler) || x->n == 0)
        return sl_model_forward(m, x, logits, NULL, 0);
    if (x->dense) {
        sl_scaler_apply_dense(l->scaler, x->dense, x->n, l->xs);
        xin->dense = l->xs;
        return sl_model_forward(m, xin, logits, NULL, 0);
    }
    size_t k0 = x->row_ptr[0];
    for (size_t i = 0; i <= x->n; i++)
        l->xs_row_ptr[i] = x->row_ptr[i] - k0;
    sl_scaler_apply_sparse(l->scaler, x, l->xs);
    xin->row_ptr = l->xs_row_ptr;
    xin->col = x->col + k0;
    xin->val = l->xs;
    const float *shift = sl_scaler_shift(l->scaler), *mult = sl_scaler_mult(l->scaler);
    uint32_t dim = (uint32_t)x->dim;
    int any = 0;
    for (uint32_t j = 0; j < dim; j++) {
        l->offset[j] = shift[j] * mult[j];
        any |= l->offset[j] != 0.0f;
    }
    if (!any)
        return sl_model_forward(m, xin, logits, NULL, 0);
    sl_layer_view_t v0;
    sl_model_layer(m, 0, &v0);
    float *p = sl_model_params(m);
    memcpy(l->bias0, p + v0.bias_offset, v0.out * sizeof(float));
    for (uint32_t o = 0; o < v0.out; o++) {
        const float *w = p + v0.weight_offset + (size_t)o * v0.in;
        double c = 0;
        for (uint32_t j = 0; j < dim; j++)
            c += (double)w[j] * l->offset[j];
        p[v0.bias_offset + o] = (float)(l->bias0[o] - c);
    }
    sl_err_t err = sl_model_forward(m, xin, logits, NULL, 0);
    memcpy(p + v0.bias_offset, l->bias0, v0.out * sizeof(float));
    l->centred = err == SL_OK;
    return err;
}

/* After a centred sparse backward: dL/dW0[o][j] -= dL/db0[o] * offset[j],
 * which makes W0's gradient dense. */
static void centred_correction(sl_learner_t *l) {
    sl_layer_view_t v0;
    sl_model_layer(l->model, 0, &v0);
    float *g = sl_model_grad(l->model);
    for (uint32_t o = 0; o < v0.out; o++) {
        float gb = g[v0.bias_offset + o];
        float *go = g + v0.weight_offset + (size_t)o * v0.in;
        for (uint32_t j = 0; j < v0.in; j++)
            go[j] -= gb * l->offset[j];
    }
    sl_model_grad_set_dense(l->model);
}

static size_t argmax(const float *p, uint32_t k) {
    size_t best = 0;
    for (uint32_t j = 1; j < k; j++)
        if (p[j] > p[best])
            best = j;
    return best;
}

static void update_metrics(sl_learner_t *l, size_t n, const sl_targets_t *t, const float *out) {
    sl_head_t head = sl_model_config(l->model)->head;
    uint32_t k = sl_model_out_dim(l->model);
    for (size_t i = 0; i < n; i++) {
        if (!t->labelled[i])
            continue;
        sl_metrics_sample_t s = {.weight = t->w[i], .loss = l->sample_loss[i]};
        switch (head) {
        case SL_HEAD_LINEAR: s.err = (double)out[i] - t->y[i]; break;
        case SL_HEAD_LOGISTIC: s.err = (out[i] >= 0.5f) == (t->y[i] == 1.0f); break;
        case SL_HEAD_SOFTMAX: s.err = argmax(out + i * k, k) == (size_t)t->y[i]; break;
        }
        sl_metrics_update(l->metrics, &s);
    }
}

/* The coordinates with a gradient after a sparse backward: W0 at the touched
 * columns, then every later parameter. Returns the count. */
static size_t build_idx(sl_learner_t *l) {
    sl_layer_view_t v0;
    sl_model_layer(l->model, 0, &v0);
    size_t n_touched, n = 0;
    const uint32_t *cols = sl_model_touched(l->model, &n_touched);
    for (uint32_t o = 0; o < v0.out; o++)
        for (size_t c = 0; c < n_touched; c++)
            l->idx[n++] = v0.weight_offset + (size_t)o * v0.in + cols[c];
    for (size_t i = v0.bias_offset; i < sl_model_n_params(l->model); i++)
        l->idx[n++] = i;
    return n;
}

/* Squared L2 norm of row i of a CSR batch whose transform is x' = x * mult
 * - offset (offset all zero unless centred): the offsets of every column,
 * corrected at the row's columns, whose repeats are added up first. */
static double sparse_row_sq(sl_learner_t *l, const sl_input_t *xin, size_t i, double offset_sq) {
    double sq = l->centred ? offset_sq : 0;
    for (size_t k = xin->row_ptr[i]; k < xin->row_ptr[i + 1]; k++) {
        uint32_t c = xin->col[k];
        if (!l->row_mark[c]) {
            l->row_mark[c] = 1;
            l->row_acc[c] = 0.0f;
        }
        l->row_acc[c] += xin->val[k];
    }
    for (size_t k = xin->row_ptr[i]; k < xin->row_ptr[i + 1]; k++) {
        uint32_t c = xin->col[k];
        if (!l->row_mark[c])
            continue; /* a repeat, counted with its first entry */
        l->row_mark[c] = 0;
        double v = l->row_acc[c], o = l->centred ? l->offset[c] : 0;
        sq += (v - o) * (v - o) - o * o;
    }
    return sq;
}

/* The auto optimizer's statistics and its per-layer steps for this batch:
 * adds the labelled rows' squared input norms of every layer, then sets
 * each layer's scale. */
static void auto_layer_scales(sl_learner_t *l, const sl_input_t *xin, const uint8_t *labelled) {
    sl_model_t *m = l->model;
    uint32_t n_layers = sl_model_n_layers(m);
    double offset_sq = 0;
    if (l->centred)
        for (size_t j = 0; j < xin->dim; j++)
            offset_sq += (double)l->offset[j] * l->offset[j];
    for (uint32_t layer = 0; layer < n_layers; layer++) {
        sl_layer_view_t v;
        sl_model_layer(m, layer, &v);
        const float *a = layer == 0 ? xin->dense : sl_model_layer_output(m, layer - 1);
        double sum = 0;
        for (size_t i = 0; i < xin->n; i++) {
            if (!labelled[i])
                continue;
            if (!a) {
                sum += sparse_row_sq(l, xin, i, offset_sq);
                continue;
            }
            const float *ai = a + i * v.in;
            for (uint32_t j = 0; j < v.in; j++)
                sum += (double)ai[j] * ai[j];
        }
        l->norm_sum[layer] += sum;
    }
    for (size_t i = 0; i < xin->n; i++)
        l->norm_rows += labelled[i] != 0;
    double nl = n_layers, t = (double)sl_optim_steps(l->optim) + 1;
    double head = sl_model_config(m)->head == SL_HEAD_LINEAR ? AUTO_LINEAR_HEAD : 1.0;
    double warm = n_layers > 1 ? fmin(1.0, t / (AUTO_WARMUP_PER_LAYER * (nl - 1))) : 1.0;
    size_t ends[SL_MAX_LAYERS];
    float scales[SL_MAX_LAYERS];
    for (uint32_t layer = 0; layer < n_layers; layer++) {
        sl_layer_view_t v;
        sl_model_layer(m, layer, &v);
        ends[layer] = v.bias_offset + v.out;
        double mean_sq = l->norm_sum[layer] / l->norm_rows;
        scales[layer] = (float)(head * warm / (nl * nl * sqrt(mean_sq + 1.0)));
    }
    sl_optim_set_layer_scales(l->optim, n_layers, ends, scales);
}

/* Visits the last layer's coordinates the step can change: all of them, or
 * those among idx. fn(l, i, is_bias, k) with k counting the visits. */
typedef void (*coord_fn)(sl_learner_t *l, size_t i, int is_bias, size_t k, double sd, double mu);

static void for_last_layer(sl_learner_t *l, const size_t *idx, size_t n_idx, coord_fn fn, double sd,
                           double mu) {
    sl_layer_view_t v;
    sl_model_layer(l->model, sl_model_n_layers(l->model) - 1, &v);
    size_t end = v.bias_offset + v.out, k = 0;
    if (!idx) {
        for (size_t i = v.weight_offset; i < end; i++)
            fn(l, i, i >= v.bias_offset, k++, sd, mu);
        return;
    }
    for (size_t j = 0; j < n_idx; j++)
        if (idx[j] >= v.weight_offset && idx[j] < end)
            fn(l, idx[j], idx[j] >= v.bias_offset, k++, sd, mu);
}

/* Into standardised target units (keeping the raw value for a refused
 * step): w / sd, (b - mu) / sd; the gradient of the loss / sd^2 with respect
 * to them is sd times the one computed for the raw parameters. */
static void to_target_units(sl_learner_t *l, size_t i, int is_bias, size_t k, double sd,
                            double mu) {
    float *p = sl_model_params(l->model), *g = sl_model_grad(l->model);
    l->saved[k] = p[i];
    p[i] = (float)(((double)p[i] - (is_bias ? mu : 0)) / sd);
    g[i] = (float)(g[i] * sd);
}

static void from_target_units(sl_learner_t *l, size_t i, int is_bias, size_t k, double sd,
                              double mu) {
    (void)k;
    float *p = sl_model_params(l->model);
    p[i] = (float)((double)p[i] * sd + (is_bias ? mu : 0));
}

static void restore_saved(sl_learner_t *l, size_t i, int is_bias, size_t k, double sd, double mu) {
    (void)is_bias, (void)sd, (void)mu;
    sl_model_params(l->model)[i] = l->saved[k];
}

/* The first labelled batch of a linear head with scaling on: seeds the
 * target statistics and, for seeded weights, reads the last layer as
 * weights in standardised target units (w * sd, b * sd + mu), so training
 * starts from a model predicting around the target's mean. logits (of the
 * forward) are rewritten into train_logits to match. */
static void seed_target(sl_learner_t *l, const sl_targets_t *t, size_t n, const float *logits,
                        const float **train) {
    sl_scaler_update_target(l->scaler, t->y, t->w, t->labelled, n);
    *train = logits;
    if (!l->target_reexpress)
        return;
    double w, mu, sd;
    sl_scaler_target(l->scaler, &w, &mu, &sd);
    for_last_layer(l, NULL, 0, from_target_units, sd, mu);
    for (size_t i = 0; i < n; i++)
        l->train_logits[i] = (float)((double)logits[i] * sd + mu);
    *train = l->train_logits;
    l->target_reexpress = 0;
}

static void apply_step(sl_learner_t *l, const sl_input_t *xin, sl_batch_result_t *r, double sd,
                       double mu) {
    sl_model_t *m = l->model;
    size_t n_idx = 0;
    const size_t *idx = NULL;
    if (!xin->dense && !l->centred && sl_optim_uses_idx(l->optim)) {
        n_idx = build_idx(l);
        idx = l->idx;
    }
    int target = target_scaled(l);
    if (target)
        for_last_layer(l, idx, n_idx, to_target_units, sd, mu);
    sl_optim_step(l->optim, sl_model_params(m), sl_model_grad(m), idx, n_idx, &r->refused);
    if (target)
        for_last_layer(l, idx, n_idx, r->refused ? restore_saved : from_target_units, sd, mu);
    sl_model_grad_release(m);
}

sl_err_t sl_learner_batch(sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t, float *out,
                          sl_batch_result_t *res) {
    sl_batch_result_t r = {.loss = NAN};
    if (x->n && (!out || !t || !t->labelled || !t->y || !t->w))
        return SL_ERR_INVAL;
    if (x->dim != sl_model_config(l->model)->dim)
        return SL_ERR_MISMATCH;
    sl_model_t *m = l->model;
    size_t n = x->n, nl = 0;
    sl_err_t err = sl_model_check_input(m, x, NULL, 0);
    if (err == SL_OK && n)
        err = sl_model_check_labels(m, n, t->y, t->w, t->labelled, &nl);
    if (err == SL_OK)
        err = ensure_scratch(l, x);
    if (err != SL_OK)
        return err;
    /* The first labelled batch seeds the feature statistics before it is
     * predicted; every later batch adds to them after its step. */
    int seeded = sl_scaler_on(l->scaler) && nl > 0 && sl_scaler_weight(l->scaler) == 0;
    if (seeded)
        sl_scaler_update(l->scaler, x, t->w, t->labelled);
    sl_input_t xin;
    const float *logits;
    err = forward_scaled(l, x, &xin, &logits);
    if (err != SL_OK) {
        if (seeded)
            sl_scaler_reset(l->scaler);
        return err;
    }
    if (n) {
        /* the outputs come from the same pass as the loss */
        err = sl_model_loss(m, logits, n, t->y, t->w, t->labelled, out, l->sample_loss, l->dlogits,
                            &r.loss, &r.n_labelled);
        if (err != SL_OK) { /* cannot happen: the labels were checked */
            if (seeded)
                sl_scaler_reset(l->scaler);
            return err;
        }
        update_metrics(l, n, t, out);
    }
    l->counters.predictions += n;
    if (r.n_labelled > 0) {
        double sd = 1, mu = 0, yw;
        if (target_scaled(l)) {
            const float *train = logits;
            double before, unused;
            sl_scaler_target(l->scaler, &before, &unused, &unused);
            if (before == 0)
                seed_target(l, t, n, logits, &train);
            else
                sl_scaler_update_target(l->scaler, t->y, t->w, t->labelled, n);
            sl_scaler_target(l->scaler, &yw, &mu, &sd);
            double loss;
            size_t nlab;
            if (train != logits)
                sl_model_loss(m, train, n, t->y, t->w, t->labelled, NULL, NULL, l->dlogits, &loss,
                              &nlab);
            float inv = (float)(1.0 / (sd * sd));
            for (size_t i = 0; i < n; i++)
                l->dlogits[i] *= inv;
        }
        if (sl_learner_optim_config(l)->kind == SL_OPTIM_AUTO)
            auto_layer_scales(l, &xin, t->labelled);
        err = sl_model_backward(m, &xin, l->dlogits);
        if (err != SL_OK)
            return err; /* cannot happen: the batch is the one forward saw */
        if (l->centred)
            centred_correction(l);
        apply_step(l, &xin, &r, sd, mu);
        if (r.refused) {
            l->counters.refused_steps++;
        } else {
            r.stepped = 1;
            l->counters.step++;
            l->counters.samples += r.n_labelled;
        }
    }
    if (!seeded)
        sl_scaler_update(l->scaler, x, t->w, t->labelled);
    if (res)
        *res = r;
    return SL_OK;
}

sl_err_t sl_learner_forward(sl_learner_t *l, const sl_input_t *x, const float **logits) {
    if (x->dim != sl_model_config(l->model)->dim)
        return SL_ERR_MISMATCH;
    sl_err_t err = sl_model_check_input(l->model, x, NULL, 0);
    if (err == SL_OK)
        err = ensure_scaled(l, x);
    if (err != SL_OK)
        return err;
    sl_input_t xin;
    return forward_scaled(l, x, &xin, logits);
}

sl_err_t sl_learner_predict(sl_learner_t *l, const sl_input_t *x, float *out) {
    if (x->n && !out)
        return SL_ERR_INVAL;
    if (x->n == 0)
        return x->dim != sl_model_config(l->model)->dim ? SL_ERR_MISMATCH : SL_OK;
    const float *logits;
    sl_err_t err = sl_learner_forward(l, x, &logits);
    if (err == SL_OK)
        sl_model_outputs(l->model, logits, x->n, out);
    return err;
}
