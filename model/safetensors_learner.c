/* safetensors_learner.c - a learner's weights file: the model's tensors plus
 * the scaler (scaler.* tensors and metadata), or the scaler folded into layer 0. */
#include "safetensors.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors_internal.h"

/* A [dim] F32 tensor with finite values, non-negative when `nonneg`. */
static sl_err_t scaler_tensor(const st_file_t *f, const st_entry_t *e, const char *name,
                              uint32_t dim, int nonneg, char *errstr, size_t errstr_size) {
    uint64_t shape[1] = {dim};
    sl_err_t err = sl_st_check_tensor(e, name, shape, 1, errstr, errstr_size);
    if (err == SL_OK)
        err = sl_st_check_finite(f, e, errstr, errstr_size);
    for (uint64_t i = 0; err == SL_OK && nonneg && i < dim; i++) {
        if (sl_st_le_f32(f->data + e->begin + 4 * i) < 0) {
            sl_errstr_set(errstr, errstr_size, "tensor \"%s\": element %" PRIu64 " is negative",
                          name, i);
            err = SL_ERR_DECODE;
        }
    }
    return err;
}

static sl_err_t meta_number(const st_file_t *f, const char *key, double *v, char *errstr,
                            size_t errstr_size) {
    const char *s = sl_st_meta_str(f, key);
    char *end = NULL;
    *v = s ? strtod(s, &end) : NAN;
    if (!s || end == s || *end || !isfinite(*v) || *v < 0) {
        sl_errstr_set(errstr, errstr_size,
                      "metadata \"%s\": missing or not a finite non-negative number", key);
        return SL_ERR_DECODE;
    }
    return SL_OK;
}

static sl_err_t read_scaler(const st_file_t *f, uint32_t dim, sl_scaler_state_t *st, void **mem,
                            int *present, char *errstr, size_t errstr_size) {
    *present = 0;
    *mem = NULL;
    memset(st, 0, sizeof *st);
    static const char *const names[] = {"scaler.shift", "scaler.mult", "scaler.var",
                                        "scaler.maxabs"};
    int any = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (!sl_st_is_scaler(f->entries[i].name))
            continue;
        int known = 0;
        for (size_t k = 0; k < 4; k++)
            known |= strcmp(f->entries[i].name, names[k]) == 0;
        if (!known) {
            sl_errstr_set(errstr, errstr_size,
                          "tensor \"%.64s\" is not a scaler tensor (scaler.shift, scaler.mult, "
                          "scaler.var, scaler.maxabs)",
                          f->entries[i].name);
            return SL_ERR_MISMATCH;
        }
        any = 1;
    }
    if (!any)
        return SL_OK;
    const char *req = sl_st_meta_str(f, "streamlearn.scale");
    sl_scale_mode_t mode;
    if (!req || sl_scaler_mode_parse(req, &mode) != SL_OK || mode == SL_SCALE_OFF) {
        sl_errstr_set(errstr, errstr_size,
                      "scaler tensors without metadata \"streamlearn.scale\" (auto, standard or "
                      "maxabs)");
        return SL_ERR_DECODE;
    }
    const st_entry_t *shift = sl_st_find(f, names[0]), *mult = sl_st_find(f, names[1]);
    const st_entry_t *var = sl_st_find(f, names[2]), *mx = sl_st_find(f, names[3]);
    sl_err_t err;
    if ((err = scaler_tensor(f, shift, names[0], dim, 0, errstr, errstr_size)) ||
        (err = scaler_tensor(f, mult, names[1], dim, 0, errstr, errstr_size)) ||
        (var && (err = scaler_tensor(f, var, names[2], dim, 1, errstr, errstr_size))) ||
        (mx && (err = scaler_tensor(f, mx, names[3], dim, 1, errstr, errstr_size))))
        return err;
    double weight, count, target[4] = {0, 0, 0, 0};
    if ((err = meta_number(f, "streamlearn.scale_weight", &weight, errstr, errstr_size)) ||
        (err = meta_number(f, "streamlearn.scale_count", &count, errstr, errstr_size)))
        return err;
    if (!var && !mx && weight > 0) {
        sl_errstr_set(errstr, errstr_size,
                      "scaler: statistics of weight %g but neither scaler.var nor scaler.maxabs",
                      weight);
        return SL_ERR_DECODE;
    }
    /* Without statistics (weight 0) the mode asked for is in force, empty. */
    sl_scale_mode_t in_force = var ? SL_SCALE_STANDARD : mx ? SL_SCALE_MAXABS : mode;
    if ((var && mx) || (mode != SL_SCALE_AUTO && in_force != mode)) {
        sl_errstr_set(errstr, errstr_size,
                      "scaler tensors do not fit \"streamlearn.scale\" %s (standard has "
                      "scaler.var, maxabs scaler.maxabs)",
                      req);
        return SL_ERR_DECODE;
    }
    const char *t = sl_st_meta_str(f, "streamlearn.target");
    if (t && sscanf(t, "%lf %lf %lf %lf", &target[0], &target[1], &target[2], &target[3]) != 4) {
        sl_errstr_set(errstr, errstr_size,
                      "metadata \"streamlearn.target\": expected four numbers (weight mean m2 "
                      "count)");
        return SL_ERR_DECODE;
    }
    size_t bytes = in_force == SL_SCALE_STANDARD ? 2 * (size_t)dim * sizeof(double)
                   : in_force == SL_SCALE_MAXABS ? (size_t)dim * sizeof(float)
                                                 : 1;
    if (!(*mem = calloc(1, bytes))) {
        sl_errstr_set(errstr, errstr_size, "out of memory for the scaler");
        return SL_ERR_NOMEM;
    }
    if (in_force == SL_SCALE_STANDARD) {
        double *mean = *mem, *m2 = mean + dim;
        /* The mean is scaler.shift; the variance comes from scaler.mult (1 /
         * mult^2) so that the transform recomputed from the statistics is the
         * file's to the bit; scaler.var says which features are constant. */
        for (uint32_t j = 0; var && j < dim; j++) {
            double mu = sl_st_le_f32(f->data + mult->begin + 4 * (size_t)j);
            mean[j] = sl_st_le_f32(f->data + shift->begin + 4 * (size_t)j);
            m2[j] = sl_st_le_f32(f->data + var->begin + 4 * (size_t)j) > 0 && mu > 0
                        ? weight / (mu * mu)
                        : 0;
        }
        st->mean = mean;
        st->m2 = m2;
    } else if (in_force == SL_SCALE_MAXABS) {
        if (mx)
            sl_st_copy_tensor(f, mx, *mem);
        st->maxabs = *mem;
    }
    st->requested = mode;
    st->mode = in_force;
    st->weight = weight;
    st->count = count < 1.8e19 ? (uint64_t)count : UINT64_MAX;
    st->y_weight = target[0];
    st->y_mean = target[1];
    st->y_m2 = target[2];
    st->y_count = target[3] >= 0 && target[3] < 1.8e19 ? (uint64_t)target[3] : 0;
    *present = 1;
    return SL_OK;
}

sl_err_t sl_safetensors_import_learner(sl_learner_t *l, const uint8_t *buf, size_t len,
                                       int *has_scaler, char *errstr, size_t errstr_size) {
    st_file_t f;
    sl_err_t err = sl_st_parse(buf, len, &f, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    sl_model_t *m = sl_learner_model(l);
    uint32_t dim = sl_model_config(m)->dim;
    const st_entry_t *found[2 * SL_MAX_LAYERS];
    sl_scaler_state_t st;
    void *mem = NULL;
    int present = 0;
    sl_scaler_t *probe = NULL;
    err = sl_st_check_weights(m, &f, 1, found, errstr, errstr_size);
    if (err == SL_OK)
        err = read_scaler(&f, dim, &st, &mem, &present, errstr, errstr_size);
    if (err == SL_OK && present) {
        /* Checked on a scratch scaler first, so the learner changes only
         * once everything fits. */
        probe = sl_scaler_new(dim, st.requested, errstr, errstr_size);
        if (!probe)
            err = SL_ERR_NOMEM;
        else if ((err = sl_scaler_set_state(probe, &st, errstr, errstr_size)) != SL_OK)
            err = err == SL_ERR_INVAL ? SL_ERR_DECODE : err;
        if (err == SL_OK)
            err = sl_learner_set_scale(l, st.requested, errstr, errstr_size);
        if (err == SL_OK)
            sl_scaler_set_state(sl_learner_scaler(l), &st, NULL, 0);
    }
    if (err == SL_OK)
        sl_st_copy_weights(m, &f, found);
    if (has_scaler)
        *has_scaler = err == SL_OK && present;
    sl_scaler_destroy(probe);
    free(mem);
    sl_st_free(&f);
    return err;
}

/* The scaler's metadata: the mode asked for, the statistics' weight and
 * count, and a linear head's target statistics (exact decimal doubles). */
static sl_err_t scaler_meta(const sl_scaler_state_t *st, sl_buf_t *meta) {
    return sl_buf_appendf(meta,
                          ",\"streamlearn.scale\":\"%s\",\"streamlearn.scale_weight\":\"%.17g\","
                          "\"streamlearn.scale_count\":\"%" PRIu64 "\","
                          "\"streamlearn.target\":\"%.17g %.17g %.17g %" PRIu64 "\"",
                          sl_scaler_mode_name(st->requested), st->weight, st->count, st->y_weight,
                          st->y_mean, st->y_m2, st->y_count);
}

sl_err_t sl_safetensors_export_learner(const sl_learner_t *l, int fold, sl_buf_t *out) {
    /* sl_learner_model takes a non-const learner; here it is only read. */
    const sl_model_t *m = sl_learner_model((sl_learner_t *)l);
    const sl_scaler_t *sc = sl_learner_scaler_const(l);
    const float *shift, *mult;
    int on = sl_learner_input_transform(l, &shift, &mult);
    if (!on)
        return sl_safetensors_export(m, out);
    uint32_t dim = sl_model_config(m)->dim;
    st_out_t specs[2 * SL_MAX_LAYERS + 3];
    sl_buf_t meta = {0};
    sl_model_t *folded = NULL;
    float *var = NULL;
    sl_err_t err = sl_st_arch_meta(m, &meta);
    if (err == SL_OK && fold) {
        folded = sl_model_folded(m, shift, mult);
        if (!folded) {
            err = SL_ERR_NOMEM;
        } else {
            err = sl_buf_appendf(&meta, ",\"streamlearn.scale\":\"folded\"");
            if (err == SL_OK)
                err = sl_st_write((const char *)meta.data, specs,
                                  sl_st_layer_specs(folded, sl_model_params(folded), specs), out);
        }
        goto done;
    }
    sl_scaler_state_t st;
    sl_scaler_get_state(sc, &st);
    if (err == SL_OK)
        err = scaler_meta(&st, &meta);
    if (err != SL_OK)
        goto done;
    size_t n = sl_st_layer_specs(m, sl_model_params((sl_model_t *)m), specs);
    specs[n++] = (st_out_t){.name = "scaler.shift", .shape = {dim}, .ndim = 1, .data = shift};
    specs[n++] = (st_out_t){.name = "scaler.mult", .shape = {dim}, .ndim = 1, .data = mult};
    if (st.mode == SL_SCALE_STANDARD) {
        if (!(var = malloc(dim * sizeof(float)))) {
            err = SL_ERR_NOMEM;
            goto done;
        }
        for (uint32_t j = 0; j < dim; j++)
            var[j] = (float)(st.m2[j] / st.weight);
        specs[n++] = (st_out_t){.name = "scaler.var", .shape = {dim}, .ndim = 1, .data = var};
    } else if (st.mode == SL_SCALE_MAXABS) {
        specs[n++] =
            (st_out_t){.name = "scaler.maxabs", .shape = {dim}, .ndim = 1, .data = st.maxabs};
    }
    err = sl_st_write((const char *)meta.data, specs, n, out);
done:
    free(var);
    sl_model_destroy(folded);
    sl_buf_free(&meta);
    return err;
}
