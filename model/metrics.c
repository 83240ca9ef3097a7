/* metrics.c - prequential metrics: all-time sums and a ring-buffer window. */

#include "metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sl_metrics {
    sl_metrics_state_t st;
    sl_metrics_sample_t *ring; /* window entries */
};

sl_metrics_t *sl_metrics_new(int classification, uint32_t window) {
    if (window == 0)
        window = SL_METRICS_DEFAULT_WINDOW;
    if (window > SL_METRICS_MAX_WINDOW)
        return NULL;
    sl_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->ring = calloc(window, sizeof(*m->ring));
    if (!m->ring) {
        free(m);
        return NULL;
    }
    m->st.classification = classification ? 1 : 0;
    m->st.window = window;
    return m;
}

void sl_metrics_destroy(sl_metrics_t *m) {
    if (!m)
        return;
    free(m->ring);
    free(m);
}

void sl_metrics_reset(sl_metrics_t *m) {
    sl_metrics_state_t fresh = {.classification = m->st.classification, .window = m->st.window};
    m->st = fresh;
}

/* The error sum's term: |prediction - target| for regression (MAE); for
 * classification err is the correct flag, 0 or 1, so this is that flag. */
static double err_abs(const sl_metrics_sample_t *s) {
    return fabs(s->err);
}

static void recompute_window(sl_metrics_t *m) {
    sl_metrics_state_t *st = &m->st;
    st->win_w = st->win_loss = st->win_err = st->win_sq = 0;
    for (uint32_t i = 0; i < st->fill; i++) {
        const sl_metrics_sample_t *s = &m->ring[i];
        st->win_w += s->weight;
        st->win_loss += s->weight * s->loss;
        st->win_err += s->weight * err_abs(s);
        st->win_sq += s->weight * s->err * s->err;
    }
    st->since_recompute = 0;
}

void sl_metrics_update(sl_metrics_t *m, const sl_metrics_sample_t *s) {
    sl_metrics_state_t *st = &m->st;
    double w = s->weight, e = err_abs(s), sq = s->err * s->err;
    st->count++;
    st->sum_w += w;
    st->sum_loss += w * s->loss;
    st->sum_err += w * e;
    st->sum_sq += w * sq;
    if (st->fill == st->window) {
        const sl_metrics_sample_t *old = &m->ring[st->head];
        st->win_w -= old->weight;
        st->win_loss -= old->weight * old->loss;
        st->win_err -= old->weight * err_abs(old);
        st->win_sq -= old->weight * old->err * old->err;
    } else {
        st->fill++;
    }
    m->ring[st->head] = *s;
    st->head = st->head + 1 == st->window ? 0 : st->head + 1;
    st->win_w += w;
    st->win_loss += w * s->loss;
    st->win_err += w * e;
    st->win_sq += w * sq;
    if (++st->since_recompute >= st->window)
        recompute_window(m);
}

static sl_metrics_view_t view(int classification, uint64_t count, double w, double loss, double err,
                              double sq) {
    sl_metrics_view_t v = {.count = count, .loss = NAN, .accuracy = NAN, .mae = NAN, .rmse = NAN};
    if (count == 0 || !(w > 0))
        return v;
    v.loss = loss / w;
    if (classification) {
        v.accuracy = err / w;
    } else {
        v.mae = err / w;
        v.rmse = sqrt(sq > 0 ? sq / w : 0);
    }
    return v;
}

sl_metrics_view_t sl_metrics_total(const sl_metrics_t *m) {
    const sl_metrics_state_t *st = &m->st;
    return view(st->classification, st->count, st->sum_w, st->sum_loss, st->sum_err, st->sum_sq);
}

sl_metrics_view_t sl_metrics_window(const sl_metrics_t *m) {
    const sl_metrics_state_t *st = &m->st;
    return view(st->classification, st->fill, st->win_w, st->win_loss, st->win_err, st->win_sq);
}

void sl_metrics_get_state(const sl_metrics_t *m, sl_metrics_state_t *st,
                          const sl_metrics_sample_t **ring) {
    *st = m->st;
    *ring = m->ring;
}

sl_err_t sl_metrics_set_state(sl_metrics_t *m, const sl_metrics_state_t *st,
                              const sl_metrics_sample_t *ring) {
    if (st->window != m->st.window || (st->classification != 0) != m->st.classification ||
        st->fill > st->window || st->head >= st->window ||
        (st->fill < st->window && st->head != st->fill) || st->since_recompute >= st->window ||
        st->fill > st->count)
        return SL_ERR_INVAL;
    m->st = *st;
    m->st.classification = st->classification ? 1 : 0;
    memcpy(m->ring, ring, st->fill * sizeof(*ring));
    return SL_OK;
}
