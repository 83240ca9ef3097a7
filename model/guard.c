/* guard.c - guarded learning: the champion and its challengers stepped on the
 * same batches, their per-sample losses recorded, the detector fed. */
#include "model/guard_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sl_guard_config_t sl_guard_config_default(void) {
    sl_guard_config_t c = {.drift = sl_drift_config_default(SL_DRIFT_ADWIN),
                           .promote_margin = 0.05,
                           .window = 1000,
                           .alpha = 0.001,
                           .hold_max_bytes = 64u << 20,
                           .on_alarm = SL_GUARD_SWITCH};
    sl_guard_config_challengers(&c, 2);
    return c;
}

void sl_guard_config_challengers(sl_guard_config_t *c, uint32_t n) {
    static const double steps[] = {3, 1.0 / 3, 9, 1.0 / 9, 27, 1.0 / 27, 81};
    if (n > SL_GUARD_MAX_CHALLENGERS)
        n = SL_GUARD_MAX_CHALLENGERS;
    c->n_challengers = n;
    for (uint32_t i = 0, s = 0; i < n; i++) {
        if (i == 1)
            c->challengers[i] = (sl_challenger_spec_t){.kind = SL_CHALLENGER_FRESH};
        else
            c->challengers[i] =
                (sl_challenger_spec_t){.kind = SL_CHALLENGER_STEP, .step_factor = steps[s++]};
    }
}

sl_err_t sl_guard_config_check(const sl_guard_config_t *c, char *errstr, size_t errstr_size) {
    const char *bad = NULL;
    if (sl_drift_config_check(&c->drift, errstr, errstr_size) != SL_OK)
        return SL_ERR_INVAL;
    if (c->n_challengers > SL_GUARD_MAX_CHALLENGERS)
        bad = "--challengers: at most 8";
    else if (!(c->promote_margin >= 0 && c->promote_margin < 1))
        bad = "--promote-margin: must be in [0, 1)";
    else if (c->window < 10 || c->window > (1u << 20))
        bad = "--guard-window: must be in 10..1048576";
    else if (!(c->alpha > 0 && c->alpha < 0.5))
        bad = "guard alpha: must be in (0, 0.5)";
    else if (c->hold > (1u << 20))
        bad = "guard hold: at most 1048576 samples";
    else if (c->hold_max_bytes < 4096)
        bad = "guard hold bytes: at least 4096";
    else if (c->on_alarm != SL_GUARD_SWITCH && c->on_alarm != SL_GUARD_ALERT &&
             c->on_alarm != SL_GUARD_PAUSE)
        bad = "--on-alarm: must be switch, alert or pause";
    else if (c->drift_block > 4096)
        bad = "guard drift block: at most 4096";
    for (uint32_t i = 0; !bad && i < c->n_challengers; i++) {
        const sl_challenger_spec_t *s = &c->challengers[i];
        if (s->kind != SL_CHALLENGER_STEP && s->kind != SL_CHALLENGER_FRESH)
            bad = "challenger kind: must be step or fresh";
        else if (s->kind == SL_CHALLENGER_STEP && !(s->step_factor > 0 && s->step_factor < 1e6))
            bad = "challenger step factor: must be in (0, 1e6)";
    }
    if (bad) {
        sl_errstr_set(errstr, errstr_size, "%s", bad);
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

sl_optim_config_t sl_guard_step_config(const sl_optim_config_t *base, double factor) {
    sl_optim_config_t c = *base;
    switch (base->kind) {
    case SL_OPTIM_SGD:
    case SL_OPTIM_ADAM:
    case SL_OPTIM_ADAMW:
    case SL_OPTIM_ADAGRAD:
    case SL_OPTIM_RMSPROP:
    case SL_OPTIM_AUTO: c.lr = base->lr * factor; break; /* auto: its base step */
    case SL_OPTIM_FTRL: c.ftrl_alpha = base->ftrl_alpha * factor; break;
    }
    return c;
}

/* The upper alpha quantile of the standard normal, by bisection on erfc. */
static double z_of(double alpha) {
    double lo = 0, hi = 40;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (0.5 * erfc(mid / sqrt(2.0)) > alpha)
            lo = mid;
        else
            hi = mid;
    }
    return 0.5 * (lo + hi);
}

void guard_free_slot(slot_t *s) {
    sl_learner_destroy(s->l);
    free(s->loss);
    free(s->wrong);
    memset(s, 0, sizeof *s);
}

void sl_guard_destroy(sl_guard_t *g) {
    if (!g)
        return;
    for (size_t i = 0; i < SLOTS; i++)
        guard_free_slot(&g->slot[i]);
    sl_drift_destroy(g->drift);
    sl_holdbuf_destroy(g->held);
    free(g->signal);
    sl_score_scratch_free(&g->scratch);
    free(g->b_loss);
    free(g->b_wrong);
    free(g->b_out);
    free(g);
}

double *guard_nan_ring(uint64_t n) {
    double *r = malloc(n * sizeof *r);
    for (uint64_t i = 0; r && i < n; i++)
        r[i] = NAN;
    return r;
}

/* A challenger learner for spec i: a fresh one, or (step) a copy of src. */
/* A seeded learner with the champion's architecture and scaling and the
 * optimizer config oc; NULL on out of memory. */
static sl_learner_t *new_learner(const sl_guard_t *g, const sl_optim_config_t *oc) {
    sl_learner_t *l = sl_learner_new(&g->mcfg, oc, g->c.seed, g->metrics_window, NULL, 0);
    if (l && sl_learner_set_scale(l, g->scale, NULL, 0) != SL_OK) {
        sl_learner_destroy(l);
        return NULL;
    }
    return l;
}

sl_err_t guard_make_challenger(sl_guard_t *g, uint32_t spec, const sl_learner_t *src,
                               sl_learner_t **out) {
    const sl_challenger_spec_t *s = &g->c.challengers[spec];
    if (s->kind == SL_CHALLENGER_FRESH)
        return guard_fresh_learner(g, spec, out);
    sl_optim_config_t oc = sl_guard_step_config(&g->ocfg, s->step_factor);
    sl_learner_t *l = new_learner(g, &oc);
    if (!l)
        return SL_ERR_NOMEM;
    if (sl_learner_copy(l, src) != SL_OK) {
        sl_learner_destroy(l);
        return SL_ERR_MISMATCH;
    }
    /* FTRL's state mirrors the weights under its own step: rebuilt for the
     * challenger's. The weights stay the source's, in its units (its scaler
     * and target statistics came with the copy). */
    sl_optim_params_changed(sl_learner_optim(l), sl_model_params(sl_learner_model(l)));
    *out = l;
    return SL_OK;
}

sl_err_t guard_fresh_learner(sl_guard_t *g, uint32_t spec, sl_learner_t **out) {
    (void)spec;
    *out = new_learner(g, &g->ocfg);
    return *out ? SL_OK : SL_ERR_NOMEM;
}

/* The guard's structure for c and the champion's config, with empty slots
 * (rings allocated, no challenger learners yet). */
sl_guard_t *guard_alloc(const sl_guard_config_t *c, const sl_learner_t *champion, char *errstr,
                        size_t errstr_size) {
    if (sl_guard_config_check(c, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_guard_t *g = calloc(1, sizeof *g);
    if (!g)
        goto nomem;
    g->c = *c;
    g->z_alpha = z_of(c->alpha);
    g->block = c->drift_block ? c->drift_block : c->drift.kind == SL_DRIFT_PH ? 16 : 1;
    g->hold = c->hold > c->window ? c->hold : c->window;
    g->warmup = c->warmup ? c->warmup : 5ull * c->window;
    g->timeout = c->incident_timeout ? c->incident_timeout : 100ull * c->window;
    /* sl_learner_model has no const form; the model is only read here */
    g->mcfg = *sl_model_config(sl_learner_model((sl_learner_t *)champion));
    g->ocfg = *sl_learner_optim_config(champion);
    g->scale = sl_scaler_requested(sl_learner_scaler_const(champion));
    sl_metrics_state_t ms;
    const sl_metrics_sample_t *ring;
    sl_metrics_get_state(sl_learner_metrics(champion), &ms, &ring);
    g->metrics_window = ms.window;
    g->classification = g->mcfg.head != SL_HEAD_LINEAR;
    if (!(g->drift = sl_drift_new(&c->drift, errstr, errstr_size))) {
        sl_guard_destroy(g);
        return NULL;
    }
    if (!(g->signal = guard_nan_ring(g->hold)))
        goto nomem;
    if (c->on_alarm == SL_GUARD_SWITCH && c->drift.kind != SL_DRIFT_OFF &&
        !(g->held = sl_holdbuf_new(g->mcfg.dim, g->hold, c->hold_max_bytes)))
        goto nomem;
    g->slot[0].kind = SLOT_CHAMPION;
    for (uint32_t i = 0; i <= c->n_challengers; i++) {
        if (i > 0) {
            g->slot[i].kind = SLOT_CHALLENGER;
            g->slot[i].spec = i - 1;
        }
        if (!(g->slot[i].loss = guard_nan_ring(g->hold)) ||
            !(g->slot[i].wrong = guard_nan_ring(g->hold)))
            goto nomem;
    }
    g->ref_loss = NAN;
    return g;
nomem:
    sl_errstr_set(errstr, errstr_size, "guard: out of memory");
    sl_guard_destroy(g);
    return NULL;
}

sl_guard_t *sl_guard_new(const sl_guard_config_t *c, const sl_learner_t *champion, char *errstr,
                         size_t errstr_size) {
    sl_guard_t *g = guard_alloc(c, champion, errstr, errstr_size);
    for (uint32_t i = 1; g && i <= c->n_challengers; i++)
        if (guard_make_challenger(g, i - 1, champion, &g->slot[i].l) != SL_OK) {
            sl_errstr_set(errstr, errstr_size, "guard: cannot build challenger %u", i);
            sl_guard_destroy(g);
            return NULL;
        }
    return g;
}

const sl_guard_config_t *sl_guard_config(const sl_guard_t *g) {
    return &g->c;
}

sl_guard_event_t *guard_event(sl_guard_t *g, sl_guard_event_kind_t kind) {
    if (g->n_ev == MAX_EVENTS) /* cannot happen: a call makes at most 4 */
        memmove(g->ev, g->ev + 1, (MAX_EVENTS - 1) * sizeof *g->ev);
    else
        g->n_ev++;
    sl_guard_event_t *e = &g->ev[g->n_ev - 1];
    *e = (sl_guard_event_t){.kind = kind, .at = g->seq, .challenger = -1};
    return e;
}

size_t sl_guard_events(const sl_guard_t *g, const sl_guard_event_t **ev) {
    *ev = g->ev;
    return g->n_ev;
}

int sl_guard_training(const sl_guard_t *g) {
    return !g->paused;
}

int sl_guard_decision_pending(const sl_guard_t *g) {
    return g->pending;
}

const sl_learner_t *sl_guard_challenger(const sl_guard_t *g, size_t i) {
    return i < g->c.n_challengers ? g->slot[1 + i].l : NULL;
}

/* Room for n rows of per-row losses and n rows of outputs. */
sl_err_t guard_grow_batch(sl_guard_t *g, size_t n) {
    uint32_t k = g->mcfg.head == SL_HEAD_SOFTMAX ? g->mcfg.classes : 1;
    if (n <= g->b_cap)
        return SL_OK;
    double *l = realloc(g->b_loss, n * sizeof *l);
    if (l)
        g->b_loss = l;
    double *w = realloc(g->b_wrong, n * sizeof *w);
    if (w)
        g->b_wrong = w;
    float *o = realloc(g->b_out, n * k * sizeof *o);
    if (o)
        g->b_out = o;
    if (!l || !w || !o)
        return SL_ERR_NOMEM;
    g->b_cap = n;
    return SL_OK;
}

/* The losses (and errors) of the last nl labelled samples a learner just
 * trained on, in order, from its prequential metrics' ring (exactly what
 * its step saw). Returns 0 when the ring is too small to hold them. */
static int ring_losses(const sl_learner_t *l, size_t nl, double *loss, double *wrong,
                       int classification) {
    sl_metrics_state_t st;
    const sl_metrics_sample_t *ring;
    sl_metrics_get_state(sl_learner_metrics(l), &st, &ring);
    if (nl > st.fill)
        return 0;
    for (size_t j = 0; j < nl; j++) {
        const sl_metrics_sample_t *s = &ring[(st.head + st.window - nl + j) % st.window];
        loss[j] = s->loss;
        if (wrong)
            wrong[j] = classification ? 1.0 - s->err : s->err;
    }
    return 1;
}

/* Packs the labelled rows' values of a per-row array to the front. */
static void pack_labelled(double *v, size_t n, const uint8_t *labelled) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (labelled[i])
            v[k++] = v[i];
}

/* One learner's test-then-train step; its labelled samples' losses go to
 * loss[0..nl) (and errors to wrong, if not NULL). */
static sl_err_t step_one(sl_guard_t *g, sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t,
                         size_t nl, float *out, sl_batch_result_t *res, double *loss,
                         double *wrong) {
    int prescore = nl > g->metrics_window;
    sl_err_t err;
    if (prescore) { /* the ring cannot hold them all: score before the step */
        if ((err = sl_score_rows(l, x, t, &g->scratch, NULL, loss, wrong)) != SL_OK)
            return err;
        pack_labelled(loss, x->n, t->labelled);
        if (wrong)
            pack_labelled(wrong, x->n, t->labelled);
    }
    if ((err = sl_learner_batch(l, x, t, out, res)) != SL_OK)
        return err;
    if (!prescore && nl > 0 && !ring_losses(l, nl, loss, wrong, g->classification))
        return SL_ERR_STATE;
    return SL_OK;
}

/* The paused champion: predictions and losses, nothing learnt. */
static sl_err_t predict_only(sl_guard_t *g, sl_learner_t *l, const sl_input_t *x,
                             const sl_targets_t *t, float *out, sl_batch_result_t *res,
                             double *loss, double *wrong) {
    sl_err_t err = sl_score_rows(l, x, t, &g->scratch, out, loss, wrong);
    if (err != SL_OK)
        return err;
    double sw = 0, sl = 0;
    size_t nl = 0;
    for (size_t i = 0; i < x->n; i++)
        if (t->labelled[i]) {
            sw += t->w[i];
            sl += t->w[i] * loss[i];
            nl++;
        }
    pack_labelled(loss, x->n, t->labelled);
    pack_labelled(wrong, x->n, t->labelled);
    *res = (sl_batch_result_t){.n_labelled = nl, .loss = nl ? sl / sw : NAN};
    return SL_OK;
}

/* Feeds one labelled sample's signal to the detector (in blocks); returns 1
 * when it fired, with the direction and the change's age in samples. */
static int feed_detector(sl_guard_t *g, double signal, int *direction, uint64_t *age) {
    g->blk_sum += signal;
    if (++g->blk_n < g->block)
        return 0;
    double mean = g->blk_sum / g->blk_n;
    g->blk_sum = 0;
    g->blk_n = 0;
    if (!sl_drift_update(g->drift, mean))
        return 0;
    sl_drift_info_t info;
    sl_drift_info(g->drift, &info);
    *direction = info.direction;
    *age = info.change_age * g->block;
    return 1;
}

sl_err_t sl_guard_batch(sl_guard_t *g, sl_learner_t *champion, const sl_input_t *x,
                        const sl_targets_t *t, float *out, sl_batch_result_t *res) {
    g->n_ev = 0;
    size_t nl = 0;
    for (size_t i = 0; x->n && t && t->labelled && i < x->n; i++)
        nl += t->labelled[i] != 0;
    size_t n_slots = 1 + g->c.n_challengers + SL_GUARD_MAX_VERSIONS;
    sl_err_t err = guard_grow_batch(g, (x->n ? x->n : 1) * n_slots);
    if (err != SL_OK)
        return err;
    sl_batch_result_t r0;
    if (!res)
        res = &r0;
    /* slot j's losses of this batch live at b_loss + j * x->n */
    double *loss0 = g->b_loss, *wrong0 = g->b_wrong;
    err = g->paused ? predict_only(g, champion, x, t, out, res, loss0, wrong0)
                    : step_one(g, champion, x, t, nl, out, res, loss0, wrong0);
    if (err != SL_OK)
        return err;
    for (size_t j = 1; j < n_slots; j++) {
        slot_t *s = &g->slot[j];
        double *lj = g->b_loss + j * x->n;
        double *ej = g->b_wrong + j * x->n;
        if (s->kind == SLOT_CHALLENGER) {
            sl_batch_result_t r;
            err = step_one(g, s->l, x, t, nl, g->b_out, &r, lj, ej);
        } else if (s->kind == SLOT_VERSION && nl > 0) {
            err = sl_score_rows(s->l, x, t, &g->scratch, NULL, lj, ej);
            if (err == SL_OK) {
                pack_labelled(lj, x->n, t->labelled);
                pack_labelled(ej, x->n, t->labelled);
            }
        }
        if (err != SL_OK)
            return err;
    }
    int fired = 0, direction = 0;
    uint64_t fired_at = 0, age = 0;
    size_t row = 0;
    for (size_t j = 0; j < nl; j++, row++) {
        while (!t->labelled[row])
            row++;
        uint64_t s = g->seq, at = s % g->hold;
        /* windows drop the sample leaving them before the rings are overwritten */
        for (size_t q = 0; q < n_slots; q++)
            if (g->slot[q].kind != SLOT_FREE)
                guard_win_evict(g, &g->slot[q], s);
        for (size_t q = 0; q < n_slots; q++)
            if (g->slot[q].kind != SLOT_FREE) {
                g->slot[q].loss[at] = g->b_loss[q * x->n + j];
                g->slot[q].wrong[at] = g->b_wrong[q * x->n + j];
            }
        for (size_t q = 0; q < n_slots; q++)
            if (g->slot[q].kind != SLOT_FREE)
                guard_win_add(g, &g->slot[q], s);
        double signal = g->classification ? wrong0[j] : loss0[j];
        g->signal[at] = signal;
        if (g->held)
            sl_holdbuf_push(g->held, x, row, t->y[row], t->w[row]);
        g->seq++;
        int dir;
        uint64_t a;
        if (feed_detector(g, signal, &dir, &a)) {
            fired = 1;
            direction = dir;
            fired_at = g->seq;
            age = a;
        }
    }
    guard_after_batch(g, champion, fired, direction, fired_at, age);
    return SL_OK;
}
