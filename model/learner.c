/* learner.c - the test-then-train step over one mini-batch. */
#include "model/learner_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

sl_learner_t *sl_learner_create(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                                uint32_t window, char *errstr, size_t errstr_size) {
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
    if (!(l->model = sl_model_new(mcfg, errstr, errstr_size)))
        goto fail;
    if (!(l->optim = sl_optim_new(ocfg, sl_model_n_params(l->model), errstr, errstr_size)))
        goto fail;
    if (!(l->metrics = sl_metrics_new(mcfg->head != SL_HEAD_LINEAR, window))) {
        sl_errstr_set(errstr, errstr_size, "learner: out of memory for the metrics window");
        goto fail;
    }
    return l;
fail:
    sl_learner_destroy(l);
    return NULL;
}

sl_learner_t *sl_learner_new(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                             uint64_t seed, uint32_t window, char *errstr, size_t errstr_size) {
    sl_learner_t *l = sl_learner_create(mcfg, ocfg, window, errstr, errstr_size);
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
    free(l->sample_loss);
    free(l->dlogits);
    free(l->idx);
    free(l);
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
        ms.window != md.window || ms.classification != md.classification)
        return SL_ERR_MISMATCH;
    memcpy(sl_model_params(dst->model), sl_model_params(src->model), n * sizeof(float));
    for (size_t i = 0; i < ns; i++)
        memcpy(sl_optim_state(dst->optim, i), sl_optim_state(src->optim, i), n * sizeof(float));
    sl_optim_set_steps(dst->optim, sl_optim_steps(src->optim));
    dst->counters = src->counters;
    return sl_metrics_set_state(dst->metrics, &ms, ring) == SL_OK ? SL_OK : SL_ERR_MISMATCH;
}

sl_learner_t *sl_learner_clone(const sl_learner_t *src) {
    sl_metrics_state_t ms;
    const sl_metrics_sample_t *ring;
    sl_metrics_get_state(src->metrics, &ms, &ring);
    char why[256];
    sl_learner_t *l = sl_learner_create(sl_model_config(src->model), sl_learner_optim_config(src),
                                        ms.window, why, sizeof why);
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
}

sl_learner_counters_t sl_learner_counters(const sl_learner_t *l) {
    return l->counters;
}

const sl_metrics_t *sl_learner_metrics(const sl_learner_t *l) {
    return l->metrics;
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
        l->cap_rows = x->n;
    }
    if (x->dense || x->n == 0 || !sl_optim_uses_idx(l->optim))
        return SL_OK;
    sl_layer_view_t v0;
    sl_model_layer(l->model, 0, &v0);
    size_t nnz = x->row_ptr[x->n] - x->row_ptr[0];
    size_t cols = nnz < v0.in ? nnz : v0.in;
    size_t want = cols * v0.out + (sl_model_n_params(l->model) - v0.bias_offset);
    if (want > l->cap_idx) {
        size_t *idx = realloc(l->idx, want * sizeof(size_t));
        if (!idx)
            return SL_ERR_NOMEM;
        l->idx = idx;
        l->cap_idx = want;
    }
    return SL_OK;
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

sl_err_t sl_learner_batch(sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t, float *out,
                          sl_batch_result_t *res) {
    sl_batch_result_t r = {.loss = NAN};
    if (x->n && (!out || !t || !t->labelled || !t->y || !t->w))
        return SL_ERR_INVAL;
    if (x->dim != sl_model_config(l->model)->dim)
        return SL_ERR_MISMATCH;
    const float *logits;
    sl_err_t err = sl_model_forward(l->model, x, &logits, NULL, 0);
    if (err == SL_OK)
        err = ensure_scratch(l, x);
    if (err != SL_OK)
        return err;
    size_t n = x->n;
    if (n) {
        err = sl_model_loss(l->model, logits, n, t->y, t->w, t->labelled, out, l->sample_loss,
                            l->dlogits, &r.loss, &r.n_labelled);
        if (err != SL_OK)
            return err;
        update_metrics(l, n, t, out);
    }
    l->counters.predictions += n;
    if (r.n_labelled > 0) {
        sl_model_t *m = l->model;
        err = sl_model_backward(m, x, l->dlogits);
        if (err != SL_OK)
            return err;
        size_t n_idx = 0;
        const size_t *idx = NULL;
        if (!x->dense && sl_optim_uses_idx(l->optim)) {
            n_idx = build_idx(l);
            idx = l->idx;
        }
        sl_optim_step(l->optim, sl_model_params(m), sl_model_grad(m), idx, n_idx, &r.refused);
        sl_model_grad_release(m);
        if (r.refused) {
            l->counters.refused_steps++;
        } else {
            r.stepped = 1;
            l->counters.step++;
            l->counters.samples += r.n_labelled;
        }
    }
    if (res)
        *res = r;
    return SL_OK;
}

sl_err_t sl_learner_predict(sl_learner_t *l, const sl_input_t *x, float *out) {
    if (x->n && !out)
        return SL_ERR_INVAL;
    if (x->dim != sl_model_config(l->model)->dim)
        return SL_ERR_MISMATCH;
    if (x->n == 0)
        return SL_OK;
    const float *logits;
    sl_err_t err = sl_model_forward(l->model, x, &logits, NULL, 0);
    if (err != SL_OK)
        return err;
    sl_model_outputs(l->model, logits, x->n, out);
    return SL_OK;
}
