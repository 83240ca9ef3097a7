/* model.c - dense layers: config checks, initialisation, forward and backward passes. */

#include "model.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/rng.h"
#include "model/linalg.h"

struct sl_model {
    sl_model_config_t cfg;
    uint32_t n_layers, out_dim, max_width;
    sl_layer_view_t layers[SL_MAX_LAYERS];
    size_t n_params;
    float *params, *grad;

    /* Scratch, grown with the batch size and kept. */
    size_t cap_rows;
    float *act[SL_MAX_LAYERS]; /* layer outputs, activation applied for hidden ones */
    float *dz[2];              /* ping-pong dL/dz of the layer being back-propagated */

    /* What the last forward saw, so backward can check it gets the same batch. */
    size_t fwd_rows;
    int fwd_valid, fwd_sparse;

    /* Sparse W0 gradient bookkeeping. */
    uint8_t *mark; /* dim flags: column in touched[] */
    uint32_t *touched;
    size_t n_touched, cap_touched;
    int w0_grad_dense; /* W0's gradient may be non-zero outside touched[] */
};

static const char *const head_names[] = {"linear", "logistic", "softmax"};
static const char *const act_names[] = {"relu", "tanh", "sigmoid"};

const char *sl_model_head_name(sl_head_t head) {
    return (unsigned)head < 3 ? head_names[head] : "unknown";
}

sl_err_t sl_model_head_parse(const char *name, sl_head_t *out) {
    for (unsigned i = 0; name && i < 3; i++) {
        if (strcmp(name, head_names[i]) == 0) {
            *out = (sl_head_t)i;
            return SL_OK;
        }
    }
    return SL_ERR_INVAL;
}

const char *sl_model_act_name(sl_act_t act) {
    return (unsigned)act < 3 ? act_names[act] : "unknown";
}

sl_err_t sl_model_act_parse(const char *name, sl_act_t *out) {
    for (unsigned i = 0; name && i < 3; i++) {
        if (strcmp(name, act_names[i]) == 0) {
            *out = (sl_act_t)i;
            return SL_OK;
        }
    }
    return SL_ERR_INVAL;
}

sl_err_t sl_model_config_check(const sl_model_config_t *cfg, char *errstr, size_t errstr_size) {
    if ((unsigned)cfg->head > SL_HEAD_SOFTMAX) {
        sl_errstr_set(errstr, errstr_size, "--model: unknown head %d", (int)cfg->head);
        return SL_ERR_INVAL;
    }
    if (cfg->dim < 1 || cfg->dim > SL_MODEL_MAX_DIM) {
        sl_errstr_set(errstr, errstr_size, "--dim: must be in [1, %u], got %u", SL_MODEL_MAX_DIM,
                      cfg->dim);
        return SL_ERR_INVAL;
    }
    if (cfg->head == SL_HEAD_SOFTMAX && (cfg->classes < 2 || cfg->classes > SL_MODEL_MAX_WIDTH)) {
        sl_errstr_set(errstr, errstr_size, "--classes: softmax needs [2, %u] classes, got %u",
                      SL_MODEL_MAX_WIDTH, cfg->classes);
        return SL_ERR_INVAL;
    }
    if (cfg->n_hidden > SL_MAX_HIDDEN) {
        sl_errstr_set(errstr, errstr_size, "--hidden: at most %d hidden layers, got %u",
                      SL_MAX_HIDDEN, cfg->n_hidden);
        return SL_ERR_INVAL;
    }
    for (uint32_t i = 0; i < cfg->n_hidden; i++) {
        if (cfg->hidden[i] < 1 || cfg->hidden[i] > SL_MODEL_MAX_WIDTH) {
            sl_errstr_set(errstr, errstr_size, "--hidden: layer %u size must be in [1, %u], got %u",
                          i + 1, SL_MODEL_MAX_WIDTH, cfg->hidden[i]);
            return SL_ERR_INVAL;
        }
    }
    if (cfg->n_hidden > 0 && (unsigned)cfg->activation > SL_ACT_SIGMOID) {
        sl_errstr_set(errstr, errstr_size, "--activation: unknown activation %d",
                      (int)cfg->activation);
        return SL_ERR_INVAL;
    }
    uint64_t total = 0, in = cfg->dim;
    for (uint32_t i = 0; i <= cfg->n_hidden; i++) {
        uint64_t out =
            i < cfg->n_hidden ? cfg->hidden[i] : (cfg->head == SL_HEAD_SOFTMAX ? cfg->classes : 1);
        total += out * in + out;
        in = out;
    }
    if (total > SL_MODEL_MAX_PARAMS) {
        sl_errstr_set(errstr, errstr_size,
                      "--dim/--hidden/--classes: %llu parameters, more than the limit %llu",
                      (unsigned long long)total, (unsigned long long)SL_MODEL_MAX_PARAMS);
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

sl_model_t *sl_model_new(const sl_model_config_t *cfg, char *errstr, size_t errstr_size) {
    if (sl_model_config_check(cfg, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_model_t *m = calloc(1, sizeof(*m));
    if (!m)
        goto nomem;
    m->cfg = *cfg;
    /* Normalise fields the architecture ignores so configs compare by value. */
    if (m->cfg.head != SL_HEAD_SOFTMAX)
        m->cfg.classes = 1;
    for (uint32_t i = m->cfg.n_hidden; i < SL_MAX_HIDDEN; i++)
        m->cfg.hidden[i] = 0;
    if (m->cfg.n_hidden == 0)
        m->cfg.activation = SL_ACT_RELU;
    m->n_layers = cfg->n_hidden + 1;
    m->out_dim = m->cfg.classes;
    size_t off = 0;
    uint32_t in = cfg->dim;
    for (uint32_t i = 0; i < m->n_layers; i++) {
        uint32_t out = i < cfg->n_hidden ? cfg->hidden[i] : m->out_dim;
        m->layers[i] = (sl_layer_view_t){
            .in = in, .out = out, .weight_offset = off, .bias_offset = off + (size_t)out * in};
        off += (size_t)out * in + out;
        if (out > m->max_width)
            m->max_width = out;
        in = out;
    }
    m->n_params = off;
    m->params = calloc(off, sizeof(float));
    m->grad = calloc(off, sizeof(float));
    if (!m->params || !m->grad)
        goto nomem;
    return m;
nomem:
    sl_model_destroy(m);
    sl_errstr_set(errstr, errstr_size, "model: out of memory");
    return NULL;
}

void sl_model_destroy(sl_model_t *m) {
    if (!m)
        return;
    free(m->params);
    free(m->grad);
    for (uint32_t i = 0; i < SL_MAX_LAYERS; i++)
        free(m->act[i]);
    free(m->dz[0]);
    free(m->dz[1]);
    free(m->mark);
    free(m->touched);
    free(m);
}

const sl_model_config_t *sl_model_config(const sl_model_t *m) {
    return &m->cfg;
}

uint32_t sl_model_out_dim(const sl_model_t *m) {
    return m->out_dim;
}

uint32_t sl_model_n_layers(const sl_model_t *m) {
    return m->n_layers;
}

float *sl_model_params(sl_model_t *m) {
    return m->params;
}

size_t sl_model_n_params(const sl_model_t *m) {
    return m->n_params;
}

float *sl_model_grad(sl_model_t *m) {
    return m->grad;
}

sl_err_t sl_model_layer(const sl_model_t *m, uint32_t i, sl_layer_view_t *view) {
    if (i >= m->n_layers)
        return SL_ERR_RANGE;
    *view = m->layers[i];
    return SL_OK;
}

/* Draw order: layer 0 weights (row-major), layer 0 bias, layer 1 weights,
 * ...; each value is (2u - 1) * 1/sqrt(in) with u the top 24 bits of one
 * xoshiro256** output scaled to [0, 1) (common/rng.h). */
void sl_model_init_seeded(sl_model_t *m, uint64_t seed) {
    sl_rng_t rng;
    sl_rng_seed(&rng, seed);
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const sl_layer_view_t *v = &m->layers[l];
        double bound = 1.0 / sqrt((double)v->in);
        size_t count = (size_t)v->out * v->in + v->out;
        float *p = m->params + v->weight_offset;
        for (size_t i = 0; i < count; i++) {
            double u = sl_rng_uniform24(&rng);
            p[i] = (float)((2.0 * u - 1.0) * bound);
        }
    }
}

void sl_model_fold_input(sl_model_t *m, const float *shift, const float *mult) {
    const sl_layer_view_t *v = &m->layers[0];
    for (uint32_t o = 0; o < v->out; o++) {
        float *w = m->params + v->weight_offset + (size_t)o * v->in;
        double c = 0;
        for (uint32_t j = 0; j < v->in; j++) {
            w[j] *= mult[j];
            c += (double)w[j] * shift[j];
        }
        m->params[v->bias_offset + o] = (float)(m->params[v->bias_offset + o] - c);
    }
}

sl_model_t *sl_model_folded(const sl_model_t *m, const float *shift, const float *mult) {
    char why[128];
    sl_model_t *f = sl_model_new(&m->cfg, why, sizeof why);
    if (!f)
        return NULL;
    memcpy(f->params, m->params, m->n_params * sizeof(float));
    sl_model_fold_input(f, shift, mult);
    return f;
}

static sl_err_t grow_float(float **p, size_t count) {
    float *q = realloc(*p, (count ? count : 1) * sizeof(float));
    if (!q)
        return SL_ERR_NOMEM;
    *p = q;
    return SL_OK;
}

static sl_err_t ensure_rows(sl_model_t *m, size_t n) {
    if (n <= m->cap_rows)
        return SL_OK;
    size_t cap = m->cap_rows ? m->cap_rows : 64;
    while (cap < n)
        cap *= 2;
    for (uint32_t l = 0; l < m->n_layers; l++)
        if (grow_float(&m->act[l], cap * m->layers[l].out) != SL_OK)
            return SL_ERR_NOMEM;
    if (grow_float(&m->dz[0], cap * m->max_width) != SL_OK ||
        grow_float(&m->dz[1], cap * m->max_width) != SL_OK)
        return SL_ERR_NOMEM;
    m->cap_rows = cap;
    return SL_OK;
}

static sl_err_t ensure_touched(sl_model_t *m, const sl_input_t *x);

sl_err_t sl_model_check_input(const sl_model_t *m, const sl_input_t *x, char *errstr,
                              size_t errstr_size) {
    if (x->dim != m->cfg.dim) {
        sl_errstr_set(errstr, errstr_size, "model input: %zu features, the model has dim %u",
                      x->dim, m->cfg.dim);
        return SL_ERR_MISMATCH;
    }
    if (x->n > (size_t)1 << 30) {
        sl_errstr_set(errstr, errstr_size, "model input: batch of %zu rows is too large", x->n);
        return SL_ERR_INVAL;
    }
    if (x->n == 0 || x->dense)
        return SL_OK;
    if (!x->row_ptr || (x->row_ptr[x->n] > x->row_ptr[0] && (!x->col || !x->val))) {
        sl_errstr_set(errstr, errstr_size, "model input: sparse batch without row_ptr/col/val");
        return SL_ERR_INVAL;
    }
    for (size_t i = 0; i < x->n; i++) {
        if (x->row_ptr[i + 1] < x->row_ptr[i]) {
            sl_errstr_set(errstr, errstr_size, "model input: row_ptr decreases at row %zu", i);
            return SL_ERR_RANGE;
        }
        for (size_t k = x->row_ptr[i]; k < x->row_ptr[i + 1]; k++) {
            if (x->col[k] >= m->cfg.dim) {
                sl_errstr_set(errstr, errstr_size, "model input: row %zu column %u >= dim %u", i,
                              x->col[k], m->cfg.dim);
                return SL_ERR_RANGE;
            }
        }
    }
    return SL_OK;
}

static void apply_activation(sl_act_t act, float *z, size_t count) {
    switch (act) {
    case SL_ACT_RELU:
        for (size_t i = 0; i < count; i++)
            z[i] = z[i] > 0.0f ? z[i] : 0.0f;
        break;
    case SL_ACT_TANH:
        for (size_t i = 0; i < count; i++)
            z[i] = tanhf(z[i]);
        break;
    case SL_ACT_SIGMOID:
        for (size_t i = 0; i < count; i++)
            z[i] = 1.0f / (1.0f + expf(-z[i]));
        break;
    }
}

/* dz *= act'(z), written in terms of the activation's output a, as torch's
 * backward formulas are (relu: a > 0, tanh: 1 - a^2, sigmoid: a(1 - a)). */
static void activation_backward(sl_act_t act, const float *a, float *dz, size_t count) {
    switch (act) {
    case SL_ACT_RELU:
        for (size_t i = 0; i < count; i++)
            dz[i] = a[i] > 0.0f ? dz[i] : 0.0f;
        break;
    case SL_ACT_TANH:
        for (size_t i = 0; i < count; i++)
            dz[i] *= 1.0f - a[i] * a[i];
        break;
    case SL_ACT_SIGMOID:
        for (size_t i = 0; i < count; i++)
            dz[i] *= (1.0f - a[i]) * a[i];
        break;
    }
}

static void fill_bias(float *z, size_t n, const float *b, uint32_t out) {
    for (size_t i = 0; i < n; i++)
        memcpy(z + i * out, b, out * sizeof(float));
}

static void sparse_layer0_forward(const sl_model_t *m, const sl_input_t *x, float *z) {
    const sl_layer_view_t *v = &m->layers[0];
    const float *w = m->params + v->weight_offset;
    for (size_t i = 0; i < x->n; i++) {
        float *zi = z + i * v->out;
        for (size_t k = x->row_ptr[i]; k < x->row_ptr[i + 1]; k++) {
            const float *wc = w + x->col[k];
            float val = x->val[k];
            for (uint32_t o = 0; o < v->out; o++)
                zi[o] += val * wc[(size_t)o * v->in];
        }
    }
}

sl_err_t sl_model_forward(sl_model_t *m, const sl_input_t *x, const float **logits, char *errstr,
                          size_t errstr_size) {
    sl_err_t err = sl_model_check_input(m, x, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (ensure_rows(m, x->n) != SL_OK || (!x->dense && ensure_touched(m, x) != SL_OK)) {
        sl_errstr_set(errstr, errstr_size, "model forward: out of memory for %zu rows", x->n);
        return SL_ERR_NOMEM;
    }
    size_t n = x->n;
    for (uint32_t l = 0; l < m->n_layers; l++) {
        const sl_layer_view_t *v = &m->layers[l];
        float *z = m->act[l];
        fill_bias(z, n, m->params + v->bias_offset, v->out);
        sl_mat_t w = {m->params + v->weight_offset, v->out, v->in};
        if (l == 0 && !x->dense) {
            if (n)
                sparse_layer0_forward(m, x, z);
        } else {
            sl_mat_t a = {l == 0 ? x->dense : m->act[l - 1], n, v->in};
            err = sl_linalg_gemm(0, a, 1, w, 1.0f, 1.0f, z, n, v->out);
            assert(err == SL_OK);
        }
        if (l + 1 < m->n_layers)
            apply_activation(m->cfg.activation, z, n * v->out);
    }
    m->fwd_rows = n;
    m->fwd_sparse = x->dense == NULL;
    m->fwd_valid = 1;
    *logits = m->act[m->n_layers - 1];
    return SL_OK;
}

static void clear_touched(sl_model_t *m) {
    const sl_layer_view_t *v = &m->layers[0];
    float *g = m->grad + v->weight_offset;
    for (size_t t = 0; t < m->n_touched; t++) {
        uint32_t c = m->touched[t];
        for (uint32_t o = 0; o < v->out; o++)
            g[(size_t)o * v->in + c] = 0.0f;
        m->mark[c] = 0;
    }
    m->n_touched = 0;
}

void sl_model_grad_release(sl_model_t *m) {
    clear_touched(m);
}

void sl_model_grad_set_dense(sl_model_t *m) {
    m->w0_grad_dense = 1;
}

const float *sl_model_layer_output(const sl_model_t *m, uint32_t i) {
    return i < m->n_layers && m->fwd_valid ? m->act[i] : NULL;
}

const uint32_t *sl_model_touched(const sl_model_t *m, size_t *n) {
    *n = m->n_touched;
    return m->n_touched ? m->touched : NULL;
}

/* Scatters dW0 over the columns the batch uses, recording them in touched[]. */
static void sparse_layer0_backward(sl_model_t *m, const sl_input_t *x, const float *dz) {
    const sl_layer_view_t *v = &m->layers[0];
    float *g = m->grad + v->weight_offset;
    if (m->w0_grad_dense) {
        memset(g, 0, (size_t)v->out * v->in * sizeof(float));
        m->w0_grad_dense = 0;
    }
    for (size_t i = 0; i < x->n; i++) {
        const float *dzi = dz + i * v->out;
        for (size_t k = x->row_ptr[i]; k < x->row_ptr[i + 1]; k++) {
            uint32_t c = x->col[k];
            float val = x->val[k];
            if (!m->mark[c]) {
                m->mark[c] = 1;
                m->touched[m->n_touched++] = c;
            }
            float *gc = g + c;
            for (uint32_t o = 0; o < v->out; o++)
                gc[(size_t)o * v->in] += dzi[o] * val;
        }
    }
}

/* The sparse backward's bookkeeping, sized in forward so backward cannot fail. */
static sl_err_t ensure_touched(sl_model_t *m, const sl_input_t *x) {
    uint32_t dim = m->cfg.dim;
    if (!m->mark) {
        m->mark = calloc(dim, 1);
        if (!m->mark)
            return SL_ERR_NOMEM;
    }
    size_t nnz = x->n ? x->row_ptr[x->n] - x->row_ptr[0] : 0;
    size_t want = nnz < dim ? nnz : dim;
    if (want > m->cap_touched) {
        uint32_t *t = realloc(m->touched, want * sizeof(uint32_t));
        if (!t)
            return SL_ERR_NOMEM;
        m->touched = t;
        m->cap_touched = want;
    }
    return SL_OK;
}

static void bias_grad(const float *dz, size_t n, uint32_t out, float *db) {
    memset(db, 0, out * sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (uint32_t o = 0; o < out; o++)
            db[o] += dz[i * out + o];
}

sl_err_t sl_model_backward(sl_model_t *m, const sl_input_t *x, const float *dlogits) {
    if (!m->fwd_valid || x->n != m->fwd_rows || (x->dense == NULL) != m->fwd_sparse ||
        x->dim != m->cfg.dim)
        return SL_ERR_STATE;
    size_t n = x->n;
    clear_touched(m);
    const float *dz = dlogits;
    int buf = 0;
    for (uint32_t l = m->n_layers; l-- > 0;) {
        const sl_layer_view_t *v = &m->layers[l];
        bias_grad(dz, n, v->out, m->grad + v->bias_offset);
        sl_mat_t dzm = {dz, n, v->out};
        if (l == 0 && !x->dense) {
            sparse_layer0_backward(m, x, dz);
        } else {
            sl_mat_t a = {l == 0 ? x->dense : m->act[l - 1], n, v->in};
            sl_err_t err =
                sl_linalg_gemm(1, dzm, 0, a, 1.0f, 0.0f, m->grad + v->weight_offset, v->out, v->in);
            assert(err == SL_OK);
            (void)err;
            if (l == 0)
                m->w0_grad_dense = 1;
        }
        if (l == 0)
            break;
        sl_mat_t w = {m->params + v->weight_offset, v->out, v->in};
        float *next = m->dz[buf];
        buf ^= 1;
        sl_err_t err = sl_linalg_gemm(0, dzm, 0, w, 1.0f, 0.0f, next, n, v->in);
        assert(err == SL_OK);
        (void)err;
        activation_backward(m->cfg.activation, m->act[l - 1], next, n * v->in);
        dz = next;
    }
    return SL_OK;
}
