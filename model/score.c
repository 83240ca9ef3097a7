/* score.c - forward-only per-sample losses of a learner, nothing learnt. */
#include "score.h"

#include <math.h>
#include <stdlib.h>

void sl_score_scratch_free(sl_score_scratch_t *s) {
    if (!s)
        return;
    free(s->dlogits);
    free(s->out);
    s->dlogits = s->out = NULL;
    s->cap = 0;
}

static sl_err_t grow(sl_score_scratch_t *s, size_t n) {
    if (n <= s->cap)
        return SL_OK;
    float *d = realloc(s->dlogits, n * sizeof *d);
    if (!d)
        return SL_ERR_NOMEM;
    s->dlogits = d;
    float *o = realloc(s->out, n * sizeof *o);
    if (!o)
        return SL_ERR_NOMEM;
    s->out = o;
    s->cap = n;
    return SL_OK;
}

/* Right or wrong exactly as the learner's prequential metrics count it. */
static double wrong_of(sl_head_t head, const float *p, uint32_t k, float y) {
    switch (head) {
    case SL_HEAD_LINEAR: return (double)p[0] - y;
    case SL_HEAD_LOGISTIC: return (p[0] >= 0.5f) == (y == 1.0f) ? 0.0 : 1.0;
    case SL_HEAD_SOFTMAX: {
        uint32_t best = 0;
        for (uint32_t j = 1; j < k; j++)
            if (p[j] > p[best])
                best = j;
        return best == (uint32_t)y ? 0.0 : 1.0;
    }
    }
    return NAN;
}

sl_err_t sl_score_rows(sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t,
                       sl_score_scratch_t *s, float *out, double *loss, double *wrong) {
    sl_model_t *m = sl_learner_model(l);
    const sl_model_config_t *cfg = sl_model_config(m);
    uint32_t k = sl_model_out_dim(m);
    if (x->dim != cfg->dim)
        return SL_ERR_MISMATCH;
    if (x->n == 0)
        return SL_OK;
    if (!t || !t->labelled || !t->y || !t->w || !loss)
        return SL_ERR_INVAL;
    if (x->n > SIZE_MAX / k)
        return SL_ERR_INVAL;
    sl_err_t err = grow(s, x->n * k);
    if (err != SL_OK)
        return err;
    const float *logits;
    if ((err = sl_learner_forward(l, x, &logits)) != SL_OK) /* scaling applied */
        return err;
    double mean;
    size_t nl;
    err =
        sl_model_loss(m, logits, x->n, t->y, t->w, t->labelled, NULL, loss, s->dlogits, &mean, &nl);
    if (err != SL_OK)
        return err;
    float *p = out ? out : s->out;
    sl_model_outputs(m, logits, x->n, p);
    for (size_t i = 0; i < x->n; i++) {
        if (!t->labelled[i]) {
            loss[i] = NAN;
            if (wrong)
                wrong[i] = NAN;
        } else if (wrong) {
            wrong[i] = wrong_of(cfg->head, p + i * k, k, t->y[i]);
        }
    }
    return SL_OK;
}
