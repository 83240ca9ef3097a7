/* state.c - the model-state blob: save and load a learner, little-endian, checksummed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "model/learner_internal.h"

/* Layout, format version 2, every integer and float little-endian:
 *   "SLMS" | u32 version | u64 total length (incl. checksum)
 *   architecture: u32 head, dim, classes, n_hidden, activation, hidden[n_hidden]
 *   optimizer: u32 kind, nesterov; f64 lr, momentum, beta1, beta2, alpha, eps,
 *              weight_decay, ftrl_alpha, ftrl_beta, l1, l2, clip_norm
 *   counters: u64 step, samples, predictions, refused_steps
 *   u64 n_params, f32 params[n_params]
 *   u64 optimizer steps, u32 n_state, f32 state[n_state][n_params]
 *   metrics: u32 classification, window, head, fill, since_recompute; u64 count;
 *            f64 sum_w, sum_loss, sum_err, sum_sq, win_w, win_loss, win_err,
 *            win_sq; fill x (f64 weight, loss, err)
 *   (format 2) scaler: u32 requested mode, mode in force (model/scaler.h
 *            values); f64 weight; u64 count; mode standard: f64 mean[dim],
 *            f64 m2[dim]; mode maxabs: f32 maxabs[dim]; target: f64 weight,
 *            mean, m2; u64 count; u32 target_reexpress
 *   (format 2) auto optimizer: u32 n_layers, f64 norm_sum[n_layers], f64 rows
 *   u64 XXH64(seed 0) of every byte before it
 * Format 1 is format 2 without its two sections: a model without scaling. */
#define BLOB_VERSION 2u
#define HEADER_LEN 16
#define CHECKSUM_LEN 8

typedef struct writer {
    uint8_t *p;
    size_t off;
} writer_t;

static void put_u32(writer_t *w, uint32_t v) {
    for (int i = 0; i < 4; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void put_u64(writer_t *w, uint64_t v) {
    for (int i = 0; i < 8; i++)
        w->p[w->off++] = (uint8_t)(v >> (8 * i));
}

static void put_f64(writer_t *w, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    put_u64(w, u);
}

static void put_f32s(writer_t *w, const float *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof(u));
        put_u32(w, u);
    }
}

static size_t scaler_size(const sl_scaler_state_t *st, uint32_t dim, uint32_t n_layers) {
    size_t per = st->mode == SL_SCALE_STANDARD ? 16 : st->mode == SL_SCALE_MAXABS ? 4 : 0;
    return 4 * 2 + 8 + 8 + per * dim + 8 * 3 + 8 + 4 + 4 + 8 * (size_t)n_layers + 8;
}

static size_t blob_size(const sl_model_config_t *mc, size_t n_params, size_t n_state,
                        uint32_t fill) {
    return HEADER_LEN + 4 * (5 + (size_t)mc->n_hidden) + 4 * 2 + 8 * 12 + 8 * 4 + 8 + 4 * n_params +
           8 + 4 + 4 * n_state * n_params + 4 * 5 + 8 + 8 * 8 + 24 * (size_t)fill + CHECKSUM_LEN;
}

static void put_scaler(writer_t *w, const sl_learner_t *l, uint32_t dim) {
    sl_scaler_state_t st;
    sl_scaler_get_state(l->scaler, &st);
    put_u32(w, st.requested);
    put_u32(w, st.mode);
    put_f64(w, st.weight);
    put_u64(w, st.count);
    for (uint32_t j = 0; st.mode == SL_SCALE_STANDARD && j < dim; j++)
        put_f64(w, st.mean[j]);
    for (uint32_t j = 0; st.mode == SL_SCALE_STANDARD && j < dim; j++)
        put_f64(w, st.m2[j]);
    if (st.mode == SL_SCALE_MAXABS)
        put_f32s(w, st.maxabs, dim);
    put_f64(w, st.y_weight);
    put_f64(w, st.y_mean);
    put_f64(w, st.y_m2);
    put_u64(w, st.y_count);
    put_u32(w, (uint32_t)l->target_reexpress);
    uint32_t n_layers = sl_model_n_layers(l->model);
    put_u32(w, n_layers);
    for (uint32_t i = 0; i < n_layers; i++)
        put_f64(w, l->norm_sum[i]);
    put_f64(w, l->norm_rows);
}

sl_err_t sl_learner_save(const sl_learner_t *l, uint8_t **buf, size_t *len) {
    const sl_model_config_t *mc = sl_model_config(l->model);
    const sl_optim_config_t *oc = sl_optim_config(l->optim);
    size_t n_params = sl_model_n_params(l->model), n_state = sl_optim_n_state(l->optim);
    sl_metrics_state_t ms;
    const sl_metrics_sample_t *ring;
    sl_metrics_get_state(l->metrics, &ms, &ring);
    sl_scaler_state_t sst;
    sl_scaler_get_state(l->scaler, &sst);
    size_t size = blob_size(mc, n_params, n_state, ms.fill) +
                  scaler_size(&sst, mc->dim, sl_model_n_layers(l->model));
    writer_t w = {malloc(size), 0};
    if (!w.p)
        return SL_ERR_NOMEM;
    memcpy(w.p, "SLMS", 4);
    w.off = 4;
    put_u32(&w, BLOB_VERSION);
    put_u64(&w, size);
    uint32_t arch[] = {mc->head, mc->dim, mc->classes, mc->n_hidden, mc->activation};
    for (size_t i = 0; i < 5; i++)
        put_u32(&w, arch[i]);
    for (uint32_t i = 0; i < mc->n_hidden; i++)
        put_u32(&w, mc->hidden[i]);
    put_u32(&w, oc->kind);
    put_u32(&w, (uint32_t)oc->nesterov);
    double hyper[] = {oc->lr,        oc->momentum, oc->beta1,        oc->beta2,
                      oc->alpha,     oc->eps,      oc->weight_decay, oc->ftrl_alpha,
                      oc->ftrl_beta, oc->l1,       oc->l2,           oc->clip_norm};
    for (size_t i = 0; i < 12; i++)
        put_f64(&w, hyper[i]);
    put_u64(&w, l->counters.step);
    put_u64(&w, l->counters.samples);
    put_u64(&w, l->counters.predictions);
    put_u64(&w, l->counters.refused_steps);
    put_u64(&w, n_params);
    put_f32s(&w, sl_model_params(l->model), n_params);
    put_u64(&w, sl_optim_steps(l->optim));
    put_u32(&w, (uint32_t)n_state);
    for (size_t i = 0; i < n_state; i++)
        put_f32s(&w, sl_optim_state(l->optim, i), n_params);
    uint32_t mhead[] = {(uint32_t)ms.classification, ms.window, ms.head, ms.fill,
                        ms.since_recompute};
    for (size_t i = 0; i < 5; i++)
        put_u32(&w, mhead[i]);
    put_u64(&w, ms.count);
    double sums[] = {ms.sum_w, ms.sum_loss, ms.sum_err, ms.sum_sq,
                     ms.win_w, ms.win_loss, ms.win_err, ms.win_sq};
    for (size_t i = 0; i < 8; i++)
        put_f64(&w, sums[i]);
    for (uint32_t i = 0; i < ms.fill; i++) {
        put_f64(&w, ring[i].weight);
        put_f64(&w, ring[i].loss);
        put_f64(&w, ring[i].err);
    }
    put_scaler(&w, l, mc->dim);
    put_u64(&w, XXH64(w.p, w.off, 0));
    *buf = w.p;
    *len = w.off;
    return SL_OK;
}

/* A bounds-checked reader over the checksummed body. Each getter fails with
 * SL_ERR_DECODE naming the field when fewer bytes remain than it needs. */
typedef struct reader {
    const uint8_t *p;
    size_t off, end;
    char *errstr;
    size_t errstr_size;
    uint32_t version;
} reader_t;

static sl_err_t need(reader_t *r, size_t n, const char *field) {
    if (r->end - r->off < n) {
        sl_errstr_set(r->errstr, r->errstr_size,
                      "model blob: field %s needs %zu bytes, only %zu remain", field, n,
                      r->end - r->off);
        return SL_ERR_DECODE;
    }
    return SL_OK;
}

static uint32_t rd_u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd_u64_at(const uint8_t *p) {
    return (uint64_t)rd_u32_at(p) | (uint64_t)rd_u32_at(p + 4) << 32;
}

static sl_err_t get_u32(reader_t *r, uint32_t *v, const char *field) {
    sl_err_t err = need(r, 4, field);
    if (err == SL_OK) {
        *v = rd_u32_at(r->p + r->off);
        r->off += 4;
    }
    return err;
}

static sl_err_t get_u64(reader_t *r, uint64_t *v, const char *field) {
    sl_err_t err = need(r, 8, field);
    if (err == SL_OK) {
        *v = rd_u64_at(r->p + r->off);
        r->off += 8;
    }
    return err;
}

static sl_err_t get_f64(reader_t *r, double *v, const char *field) {
    uint64_t u;
    sl_err_t err = get_u64(r, &u, field);
    if (err == SL_OK)
        memcpy(v, &u, sizeof(*v));
    return err;
}

/* Reads n floats, refusing non-finite ones. */
static sl_err_t get_f32s(reader_t *r, float *v, size_t n, const char *field) {
    if (n > SIZE_MAX / 4)
        return need(r, SIZE_MAX, field);
    sl_err_t err = need(r, 4 * n, field);
    if (err != SL_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = rd_u32_at(r->p + r->off + 4 * i);
        memcpy(&v[i], &u, sizeof(u));
        if (!isfinite(v[i])) {
            sl_errstr_set(r->errstr, r->errstr_size, "model blob: %s[%zu] is not finite", field, i);
            return SL_ERR_DECODE;
        }
    }
    r->off += 4 * n;
    return SL_OK;
}

/* Reads n doubles, refusing non-finite ones. */
static sl_err_t get_f64s(reader_t *r, double *v, size_t n, const char *field) {
    if (n > SIZE_MAX / 8)
        return need(r, SIZE_MAX, field);
    sl_err_t err = need(r, 8 * n, field);
    for (size_t i = 0; err == SL_OK && i < n; i++) {
        get_f64(r, &v[i], field);
        if (!isfinite(v[i])) {
            sl_errstr_set(r->errstr, r->errstr_size, "model blob: %s[%zu] is not finite", field, i);
            return SL_ERR_DECODE;
        }
    }
    return err;
}

static sl_err_t bad_field(reader_t *r, const char *field, const char *why) {
    sl_errstr_set(r->errstr, r->errstr_size, "model blob: field %s: %s", field, why);
    return SL_ERR_DECODE;
}

static sl_err_t read_arch(reader_t *r, sl_model_config_t *mc) {
    uint32_t head, act;
    sl_err_t err;
    memset(mc, 0, sizeof(*mc));
    if ((err = get_u32(r, &head, "head")) || (err = get_u32(r, &mc->dim, "dim")) ||
        (err = get_u32(r, &mc->classes, "classes")) ||
        (err = get_u32(r, &mc->n_hidden, "n_hidden")) || (err = get_u32(r, &act, "activation")))
        return err;
    if (head > SL_HEAD_SOFTMAX)
        return bad_field(r, "head", "unknown head");
    if (act > SL_ACT_SIGMOID)
        return bad_field(r, "activation", "unknown activation");
    if (mc->n_hidden > SL_MAX_HIDDEN)
        return bad_field(r, "n_hidden", "more hidden layers than supported");
    mc->head = (sl_head_t)head;
    mc->activation = (sl_act_t)act;
    for (uint32_t i = 0; i < mc->n_hidden; i++)
        if ((err = get_u32(r, &mc->hidden[i], "hidden")))
            return err;
    char why[160];
    if (sl_model_config_check(mc, why, sizeof(why)) != SL_OK)
        return bad_field(r, "architecture", why);
    return SL_OK;
}

static sl_err_t read_optim(reader_t *r, sl_optim_config_t *oc) {
    uint32_t kind, nesterov;
    sl_err_t err;
    if ((err = get_u32(r, &kind, "optimizer")) || (err = get_u32(r, &nesterov, "nesterov")))
        return err;
    if (kind > SL_OPTIM_AUTO || (kind == SL_OPTIM_AUTO && r->version < 2))
        return bad_field(r, "optimizer", "unknown optimizer");
    if (nesterov > 1)
        return bad_field(r, "nesterov", "not 0 or 1");
    oc->kind = (sl_optim_kind_t)kind;
    oc->nesterov = (int)nesterov;
    double *hyper[] = {&oc->lr,        &oc->momentum, &oc->beta1,        &oc->beta2,
                       &oc->alpha,     &oc->eps,      &oc->weight_decay, &oc->ftrl_alpha,
                       &oc->ftrl_beta, &oc->l1,       &oc->l2,           &oc->clip_norm};
    for (size_t i = 0; i < 12; i++) {
        if ((err = get_f64(r, hyper[i], "optimizer hyperparameters")))
            return err;
        if (isnan(*hyper[i]))
            return bad_field(r, "optimizer hyperparameters", "NaN");
    }
    sl_optim_config_t resolved = *oc;
    char why[160];
    if (sl_optim_config_resolve(&resolved, why, sizeof(why)) != SL_OK)
        return bad_field(r, "optimizer hyperparameters", why);
    return SL_OK;
}

static sl_err_t read_metrics(reader_t *r, sl_metrics_t *m) {
    sl_metrics_state_t st;
    uint32_t cls;
    sl_err_t err;
    if ((err = get_u32(r, &cls, "metrics classification")) ||
        (err = get_u32(r, &st.window, "metrics window")) ||
        (err = get_u32(r, &st.head, "metrics head")) ||
        (err = get_u32(r, &st.fill, "metrics fill")) ||
        (err = get_u32(r, &st.since_recompute, "metrics since_recompute")) ||
        (err = get_u64(r, &st.count, "metrics count")))
        return err;
    st.classification = (int)cls;
    double *sums[] = {&st.sum_w, &st.sum_loss, &st.sum_err, &st.sum_sq,
                      &st.win_w, &st.win_loss, &st.win_err, &st.win_sq};
    for (size_t i = 0; i < 8; i++)
        if ((err = get_f64(r, sums[i], "metrics sums")))
            return err;
    if (st.fill > SL_METRICS_MAX_WINDOW)
        return bad_field(r, "metrics fill", "larger than any window");
    if ((err = need(r, (size_t)st.fill * 24, "metrics window samples")))
        return err;
    sl_metrics_sample_t *ring = malloc(((size_t)st.fill + 1) * sizeof(*ring));
    if (!ring)
        return SL_ERR_NOMEM;
    for (uint32_t i = 0; i < st.fill; i++) {
        get_f64(r, &ring[i].weight, "metrics window samples");
        get_f64(r, &ring[i].loss, "metrics window samples");
        get_f64(r, &ring[i].err, "metrics window samples");
    }
    err = sl_metrics_set_state(m, &st, ring);
    free(ring);
    if (err != SL_OK)
        return bad_field(r, "metrics", "window state inconsistent with its window size or kind");
    return SL_OK;
}

static sl_err_t check_header(const uint8_t *buf, size_t len, char *errstr, size_t errstr_size) {
    if (len < HEADER_LEN + CHECKSUM_LEN) {
        sl_errstr_set(errstr, errstr_size, "model blob: %zu bytes, shorter than any blob (%d)", len,
                      HEADER_LEN + CHECKSUM_LEN);
        return SL_ERR_TRUNCATED;
    }
    if (memcmp(buf, "SLMS", 4) != 0) {
        sl_errstr_set(errstr, errstr_size, "not a streamlearn model blob (bad magic)");
        return SL_ERR_DECODE;
    }
    uint32_t version = rd_u32_at(buf + 4);
    if (version > BLOB_VERSION) {
        sl_errstr_set(errstr, errstr_size,
                      "model blob: format version %u is newer than this build reads (%u)", version,
                      BLOB_VERSION);
        return SL_ERR_VERSION;
    }
    if (version == 0) {
        sl_errstr_set(errstr, errstr_size, "model blob: format version 0 is invalid");
        return SL_ERR_DECODE;
    }
    uint64_t total = rd_u64_at(buf + 8);
    if (total > len) {
        sl_errstr_set(errstr, errstr_size, "model blob: truncated: %zu of %llu bytes", len,
                      (unsigned long long)total);
        return SL_ERR_TRUNCATED;
    }
    if (total != len) {
        sl_errstr_set(errstr, errstr_size, "model blob: %zu bytes but its header says %llu", len,
                      (unsigned long long)total);
        return SL_ERR_DECODE;
    }
    if (XXH64(buf, len - CHECKSUM_LEN, 0) != rd_u64_at(buf + len - CHECKSUM_LEN)) {
        sl_errstr_set(errstr, errstr_size, "model blob: checksum mismatch (corrupted)");
        return SL_ERR_CHECKSUM;
    }
    return SL_OK;
}

static sl_err_t mismatch(char *errstr, size_t errstr_size, const char *field, unsigned long got,
                         unsigned long want) {
    sl_errstr_set(errstr, errstr_size, "model blob: %s is %lu, expected %lu", field, got, want);
    return SL_ERR_MISMATCH;
}

static sl_err_t check_expect(const sl_model_config_t *got, const sl_model_config_t *want,
                             char *errstr, size_t errstr_size) {
    uint32_t want_classes = want->head == SL_HEAD_SOFTMAX ? want->classes : 1;
    if (got->head != want->head) {
        sl_errstr_set(errstr, errstr_size, "model blob: head is %s, expected %s",
                      sl_model_head_name(got->head), sl_model_head_name(want->head));
        return SL_ERR_MISMATCH;
    }
    if (got->dim != want->dim)
        return mismatch(errstr, errstr_size, "dim", got->dim, want->dim);
    if (got->classes != want_classes)
        return mismatch(errstr, errstr_size, "classes", got->classes, want_classes);
    if (got->n_hidden != want->n_hidden)
        return mismatch(errstr, errstr_size, "n_hidden", got->n_hidden, want->n_hidden);
    for (uint32_t i = 0; i < got->n_hidden; i++)
        if (got->hidden[i] != want->hidden[i])
            return mismatch(errstr, errstr_size, "hidden", got->hidden[i], want->hidden[i]);
    if (got->n_hidden > 0 && got->activation != want->activation) {
        sl_errstr_set(errstr, errstr_size, "model blob: activation is %s, expected %s",
                      sl_model_act_name(got->activation), sl_model_act_name(want->activation));
        return SL_ERR_MISMATCH;
    }
    return SL_OK;
}

static uint64_t arch_params(const sl_model_config_t *mc) {
    uint64_t total = 0, in = mc->dim;
    for (uint32_t i = 0; i <= mc->n_hidden; i++) {
        uint64_t out =
            i < mc->n_hidden ? mc->hidden[i] : (mc->head == SL_HEAD_SOFTMAX ? mc->classes : 1);
        total += out * in + out;
        in = out;
    }
    return total;
}

/* The format-2 scaler and auto-optimizer sections into l (made without
 * scaling). */
static sl_err_t read_scaler(reader_t *r, sl_learner_t *l) {
    uint32_t dim = sl_model_config(l->model)->dim, req, mode, reexpress, n_layers;
    sl_scaler_state_t st = {0};
    sl_err_t err;
    if ((err = get_u32(r, &req, "scaler mode")) || (err = get_u32(r, &mode, "scaler mode")) ||
        (err = get_f64(r, &st.weight, "scaler weight")) ||
        (err = get_u64(r, &st.count, "scaler count")))
        return err;
    if (req > SL_SCALE_AUTO || mode > SL_SCALE_AUTO)
        return bad_field(r, "scaler mode", "unknown mode");
    st.requested = (sl_scale_mode_t)req;
    st.mode = (sl_scale_mode_t)mode;
    size_t per = mode == SL_SCALE_STANDARD ? 16 : mode == SL_SCALE_MAXABS ? 4 : 0;
    if ((err = need(r, per * dim, "scaler statistics")))
        return err;
    double *d = NULL;
    float *f = NULL;
    if (mode == SL_SCALE_STANDARD && !(d = malloc(2 * (size_t)dim * sizeof(double))))
        return SL_ERR_NOMEM;
    if (mode == SL_SCALE_MAXABS && !(f = malloc((size_t)dim * sizeof(float))))
        return SL_ERR_NOMEM;
    if (d && (err = get_f64s(r, d, 2 * (size_t)dim, "scaler statistics")))
        goto out;
    if (f && (err = get_f32s(r, f, dim, "scaler statistics")))
        goto out;
    st.mean = d;
    st.m2 = d ? d + dim : NULL;
    st.maxabs = f;
    if ((err = get_f64(r, &st.y_weight, "target statistics")) ||
        (err = get_f64(r, &st.y_mean, "target statistics")) ||
        (err = get_f64(r, &st.y_m2, "target statistics")) ||
        (err = get_u64(r, &st.y_count, "target statistics")) ||
        (err = get_u32(r, &reexpress, "target_reexpress")))
        goto out;
    if (reexpress > 1) {
        err = bad_field(r, "target_reexpress", "not 0 or 1");
        goto out;
    }
    char why[160];
    sl_scaler_t *s = sl_scaler_new(dim, st.requested, why, sizeof why);
    if (!s) {
        err = SL_ERR_NOMEM;
        goto out;
    }
    if ((err = sl_scaler_set_state(s, &st, why, sizeof why)) != SL_OK) {
        sl_scaler_destroy(s);
        if (err != SL_ERR_NOMEM)
            err = bad_field(r, "scaler", why);
        goto out;
    }
    sl_scaler_destroy(l->scaler);
    l->scaler = s;
    l->target_reexpress = (int)reexpress;
    if ((err = get_u32(r, &n_layers, "n_layers")))
        goto out;
    if (n_layers != sl_model_n_layers(l->model)) {
        err = bad_field(r, "n_layers", "does not match the architecture");
        goto out;
    }
    if ((err = get_f64s(r, l->norm_sum, n_layers, "layer norms")) ||
        (err = get_f64s(r, &l->norm_rows, 1, "layer norm rows")))
        goto out;
    for (uint32_t i = 0; i < n_layers; i++)
        if (l->norm_sum[i] < 0 || l->norm_rows < 0)
            err = bad_field(r, "layer norms", "negative");
out:
    free(d);
    free(f);
    return err;
}

static sl_err_t load_body(reader_t *r, const sl_model_config_t *expect, sl_learner_t **out) {
    sl_model_config_t mc;
    sl_optim_config_t oc;
    sl_learner_counters_t counters;
    uint64_t n_params, steps;
    uint32_t n_state;
    sl_err_t err;
    if ((err = read_arch(r, &mc)) || (err = read_optim(r, &oc)))
        return err;
    if ((err = get_u64(r, &counters.step, "step")) ||
        (err = get_u64(r, &counters.samples, "samples")) ||
        (err = get_u64(r, &counters.predictions, "predictions")) ||
        (err = get_u64(r, &counters.refused_steps, "refused_steps")) ||
        (err = get_u64(r, &n_params, "n_params")))
        return err;
    /* Bound every allocation by the bytes the blob actually holds. */
    if (n_params != arch_params(&mc) || n_params > (r->end - r->off) / 4)
        return bad_field(r, "n_params", "does not match the architecture or the blob's size");
    char why[256];
    why[0] = '\0';
    sl_learner_t *l = sl_learner_create(&mc, &oc, SL_SCALE_OFF, 0, why, sizeof(why));
    if (!l) /* a configuration the blob's checks let through, or out of memory */
        return strstr(why, "out of memory") ? SL_ERR_NOMEM : bad_field(r, "configuration", why);
    /* The window is read later; the metrics are rebuilt for it there. */
    if (n_params != sl_model_n_params(l->model)) {
        err = bad_field(r, "n_params", "does not match the architecture");
        goto fail;
    }
    if ((err = get_f32s(r, sl_model_params(l->model), n_params, "params")) ||
        (err = get_u64(r, &steps, "optimizer steps")) || (err = get_u32(r, &n_state, "n_state")))
        goto fail;
    if (n_state != sl_optim_n_state(l->optim)) {
        err = bad_field(r, "n_state", "does not match the optimizer");
        goto fail;
    }
    for (uint32_t i = 0; i < n_state; i++)
        if ((err = get_f32s(r, sl_optim_state(l->optim, i), n_params, "optimizer state")))
            goto fail;
    sl_optim_set_steps(l->optim, steps);
    l->counters = counters;
    uint32_t window;
    if ((err = need(r, 8, "metrics window")))
        goto fail;
    window = rd_u32_at(r->p + r->off + 4);
    if (window == 0 || window > SL_METRICS_MAX_WINDOW) {
        err = bad_field(r, "metrics window", "out of range");
        goto fail;
    }
    sl_metrics_destroy(l->metrics);
    if (!(l->metrics = sl_metrics_new(mc.head != SL_HEAD_LINEAR, window))) {
        err = SL_ERR_NOMEM;
        goto fail;
    }
    if ((err = read_metrics(r, l->metrics)))
        goto fail;
    l->target_reexpress = 0; /* format 1: trained without scaling */
    if (r->version >= 2 && (err = read_scaler(r, l)))
        goto fail;
    if (r->off != r->end) {
        err = bad_field(r, "end", "trailing bytes after the last section");
        goto fail;
    }
    if (expect && (err = check_expect(&mc, expect, r->errstr, r->errstr_size)))
        goto fail;
    *out = l;
    return SL_OK;
fail:
    sl_learner_destroy(l);
    return err;
}

sl_learner_t *sl_learner_load(const uint8_t *buf, size_t len, const sl_model_config_t *expect,
                              sl_err_t *err, char *errstr, size_t errstr_size) {
    sl_learner_t *l = NULL;
    sl_err_t e = buf ? check_header(buf, len, errstr, errstr_size) : SL_ERR_INVAL;
    if (e == SL_OK) {
        reader_t r = {buf, HEADER_LEN, len - CHECKSUM_LEN, errstr, errstr_size, rd_u32_at(buf + 4)};
        e = load_body(&r, expect, &l);
        if (e == SL_ERR_NOMEM)
            sl_errstr_set(errstr, errstr_size, "model blob: out of memory");
    }
    if (err)
        *err = e;
    return l;
}
