/* head.c - the model heads: link functions (identity, sigmoid, softmax) and losses. */
#include <math.h>
#include <string.h>

#include "model/model.h"

/* One exp whatever the sign (exp(-|z|) is exp(z) for z < 0), never overflowing. */
static double sigmoid(double z) {
    double e = exp(-fabs(z));
    return z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

void sl_model_outputs(const sl_model_t *m, const float *logits, size_t n, float *out) {
    const sl_model_config_t *cfg = sl_model_config(m);
    uint32_t k = sl_model_out_dim(m);
    switch (cfg->head) {
    case SL_HEAD_LINEAR: memcpy(out, logits, n * sizeof(float)); break;
    case SL_HEAD_LOGISTIC:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)sigmoid(logits[i]);
        break;
    case SL_HEAD_SOFTMAX:
        for (size_t i = 0; i < n; i++) {
            const float *z = logits + i * k;
            float *p = out + i * k;
            float mx = z[0];
            for (uint32_t j = 1; j < k; j++)
                mx = z[j] > mx ? z[j] : mx;
            double sum = 0;
            for (uint32_t j = 0; j < k; j++)
                sum += exp((double)z[j] - mx);
            for (uint32_t j = 0; j < k; j++)
                p[j] = (float)(exp((double)z[j] - mx) / sum);
        }
        break;
    }
}

static sl_err_t check_labels(const sl_model_config_t *cfg, size_t n, const float *y, const float *w,
                             const uint8_t *labelled, double *sum_w, size_t *n_labelled) {
    double sw = 0;
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        if (!labelled[i])
            continue;
        if (!isfinite(w[i]) || !(w[i] > 0))
            return SL_ERR_INVAL;
        if (!isfinite(y[i]))
            return SL_ERR_NONFINITE;
        if (cfg->head == SL_HEAD_LOGISTIC && y[i] != 0.0f && y[i] != 1.0f)
            return SL_ERR_RANGE;
        if (cfg->head == SL_HEAD_SOFTMAX &&
            (y[i] < 0 || y[i] >= (float)cfg->classes || y[i] != floorf(y[i])))
            return SL_ERR_RANGE;
        sw += w[i];
        nl++;
    }
    *sum_w = sw;
    *n_labelled = nl;
    return SL_OK;
}

/* loss_i and dloss_i/dz (times scale) for one row of k logits; with out,
 * also the row's outputs as sl_model_outputs writes them, from the same
 * exponentials. */
static double row_loss(sl_head_t head, const float *z, uint32_t k, float y, double scale, float *dz,
                       float *out) {
    switch (head) {
    case SL_HEAD_LINEAR: {
        double d = (double)z[0] - y;
        dz[0] = (float)(2.0 * d * scale);
        if (out)
            out[0] = z[0];
        return d * d;
    }
    case SL_HEAD_LOGISTIC: {
        double zz = z[0], e = exp(-fabs(zz)); /* one exp serves both */
        double p = zz >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        dz[0] = (float)((p - y) * scale);
        if (out)
            out[0] = (float)p;
        return (zz > 0 ? zz : 0) - zz * y + log1p(e);
    }
    case SL_HEAD_SOFTMAX: {
        uint32_t c = (uint32_t)y;
        float mx = z[0];
        for (uint32_t j = 1; j < k; j++)
            mx = z[j] > mx ? z[j] : mx;
        double sum = 0;
        for (uint32_t j = 0; j < k; j++)
            sum += exp((double)z[j] - mx);
        for (uint32_t j = 0; j < k; j++) {
            double p = exp((double)z[j] - mx) / sum;
            dz[j] = (float)((p - (j == c ? 1.0 : 0.0)) * scale);
            if (out)
                out[j] = (float)p;
        }
        return mx + log(sum) - z[c];
    }
    }
    return NAN;
}

sl_err_t sl_model_check_labels(const sl_model_t *m, size_t n, const float *y, const float *w,
                               const uint8_t *labelled, size_t *n_labelled) {
    double sum_w;
    return check_labels(sl_model_config(m), n, y, w, labelled, &sum_w, n_labelled);
}

sl_err_t sl_model_loss(const sl_model_t *m, const float *logits, size_t n, const float *y,
                       const float *w, const uint8_t *labelled, float *out, double *sample_loss,
                       float *dlogits, double *loss, size_t *n_labelled) {
    const sl_model_config_t *cfg = sl_model_config(m);
    uint32_t k = sl_model_out_dim(m);
    double sum_w;
    size_t nl;
    sl_err_t err = check_labels(cfg, n, y, w, labelled, &sum_w, &nl);
    if (err != SL_OK)
        return err;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        float *dz = dlogits + i * k;
        if (!labelled[i]) {
            memset(dz, 0, k * sizeof(float));
            if (sample_loss)
                sample_loss[i] = 0;
            if (out)
                sl_model_outputs(m, logits + i * k, 1, out + i * k);
            continue;
        }
        double li = row_loss(cfg->head, logits + i * k, k, y[i], w[i] / sum_w, dz,
                             out ? out + i * k : NULL);
        if (sample_loss)
            sample_loss[i] = li;
        total += w[i] * li;
    }
    *loss = nl ? total / sum_w : NAN;
    *n_labelled = nl;
    return SL_OK;
}
