/* guard_versions.c - the guard's stored versions (the decision after an
 * alarm, good-version marks, the versions worth loading), outside changes of
 * the champion, and its status. */
#include "model/guard_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- versions ---- */

static int same_arch(const sl_model_config_t *a, const sl_model_config_t *b) {
    if (a->head != b->head || a->dim != b->dim || a->n_hidden != b->n_hidden ||
        (a->head == SL_HEAD_SOFTMAX && a->classes != b->classes))
        return 0;
    for (uint32_t i = 0; i < a->n_hidden; i++)
        if (a->hidden[i] != b->hidden[i])
            return 0;
    return a->n_hidden == 0 || a->activation == b->activation;
}

static int held_version(const sl_guard_t *g, uint64_t v) {
    for (size_t j = 1 + g->c.n_challengers; j < SLOTS; j++)
        if (g->slot[j].kind == SLOT_VERSION && g->slot[j].version == v)
            return 1;
    return 0;
}

/* The good versions worth having, newest first (see
 * sl_guard_wanted_versions); those already held left out when skip_held. */
static size_t wanted(const sl_guard_t *g, uint64_t *ids, size_t max, int skip_held) {
    if (max > SL_GUARD_MAX_VERSIONS)
        max = SL_GUARD_MAX_VERSIONS;
    size_t n = 0;
    /* the newest good one, then the newest before the last alarm and the one before it */
    for (uint64_t before = UINT64_MAX, k = 0; k < 3 && n < max; k++) {
        if (k > 0) {
            if (g->alarms < k)
                break;
            before = g->alarms - (k - 1); /* published when fewer alarms had happened */
        }
        for (uint32_t i = g->n_good; i-- > 0;) {
            const good_version_t *gv = &g->good[i];
            if (k > 0 && gv->alarms >= before)
                continue;
            int dup = skip_held && held_version(g, gv->version);
            for (size_t q = 0; q < n; q++)
                dup |= ids[q] == gv->version;
            if (!dup)
                ids[n++] = gv->version;
            break;
        }
    }
    return n;
}

sl_err_t sl_guard_decide(sl_guard_t *g, sl_learner_t *champion, sl_learner_t *const *versions,
                         const uint64_t *ids, size_t n, char *errstr, size_t errstr_size) {
    g->n_ev = 0;
    sl_err_t err = SL_OK;
    for (size_t i = 0; i < n && err == SL_OK; i++) {
        sl_learner_t *v = versions[i];
        if (!same_arch(sl_model_config(sl_learner_model(v)), &g->mcfg) ||
            sl_learner_optim_config(v)->kind != g->ocfg.kind ||
            sl_scaler_requested(sl_learner_scaler_const(v)) != g->scale) {
            sl_errstr_set(errstr, errstr_size,
                          "guard: version %llu has another architecture, optimizer or scaling",
                          (unsigned long long)ids[i]);
            err = SL_ERR_MISMATCH;
        }
    }
    if (err == SL_OK && !g->held) {
        sl_errstr_set(errstr, errstr_size, "guard: decisions need --on-alarm switch");
        err = SL_ERR_STATE;
    }
    if (err != SL_OK) {
        for (size_t i = 0; i < n; i++)
            sl_learner_destroy(versions[i]);
        return err;
    }
    /* held versions still worth having stay (they were scored all along);
     * the new ones take the free places; more than fits is dropped */
    size_t base = 1 + g->c.n_challengers;
    uint64_t want[SL_GUARD_MAX_VERSIONS];
    size_t n_want = wanted(g, want, SL_GUARD_MAX_VERSIONS, 0);
    for (size_t j = base; j < SLOTS; j++) {
        int keep = 0;
        for (size_t q = 0; q < n_want; q++)
            keep |= g->slot[j].kind == SLOT_VERSION && g->slot[j].version == want[q];
        if (!keep)
            guard_free_slot(&g->slot[j]);
    }
    int fresh[SLOTS] = {0};
    for (size_t i = 0; i < n; i++) {
        slot_t *s = NULL;
        for (size_t j = base; j < base + SL_GUARD_MAX_VERSIONS && !s; j++)
            if (g->slot[j].kind == SLOT_FREE)
                s = &g->slot[j];
        if (!s || held_version(g, ids[i]) || !(s->loss = guard_nan_ring(g->hold)) ||
            !(s->wrong = guard_nan_ring(g->hold))) {
            if (s) {
                free(s->loss);
                s->loss = NULL;
            }
            sl_learner_destroy(versions[i]);
            continue;
        }
        s->kind = SLOT_VERSION;
        s->l = versions[i];
        s->version = ids[i];
        fresh[s - g->slot] = 1;
    }
    /* score the new ones on the held samples since the change */
    uint64_t from = g->decide_from;
    if (g->seq - from > sl_holdbuf_held(g->held))
        from = g->seq - sl_holdbuf_held(g->held);
    for (size_t j = base; j < SLOTS && err == SL_OK; j++) {
        slot_t *s = &g->slot[j];
        if (s->kind != SLOT_VERSION || !fresh[j])
            continue;
        sl_input_t x;
        sl_targets_t t;
        const uint64_t *seqs;
        long rows = sl_holdbuf_view(g->held, from, g->seq, &x, &t, &seqs);
        if (rows < 0 || guard_grow_batch(g, (size_t)rows + 1) != SL_OK) {
            err = SL_ERR_NOMEM;
            break;
        }
        if (rows > 0 &&
            (err = sl_score_rows(s->l, &x, &t, &g->scratch, NULL, g->b_loss, g->b_wrong)) != SL_OK)
            break;
        for (long r = 0; r < rows; r++) {
            s->loss[seqs[r] % g->hold] = g->b_loss[r];
            s->wrong[seqs[r] % g->hold] = g->b_wrong[r];
        }
    }
    if (err == SL_OK)
        err = guard_decide_now(g, champion, from, "alarm", 1);
    if (err != SL_OK)
        sl_errstr_set(errstr, errstr_size, "guard: decision failed: %s", sl_err_str(err));
    return err;
}

void sl_guard_version_published(sl_guard_t *g, uint64_t version, int good) {
    if (!good)
        return;
    for (uint32_t i = 0; i < g->n_good; i++)
        if (g->good[i].version == version)
            return;
    if (g->n_good == MAX_GOOD) {
        memmove(g->good, g->good + 1, (MAX_GOOD - 1) * sizeof *g->good);
        g->n_good--;
    }
    g->good[g->n_good++] = (good_version_t){.version = version, .alarms = g->alarms};
}

size_t sl_guard_wanted_versions(const sl_guard_t *g, uint64_t *ids, size_t max) {
    return wanted(g, ids, max, 1);
}

int sl_guard_mark_snapshot(sl_guard_t *g, double *window_loss) {
    const gwin_t *w = &g->slot[0].win;
    double mean = w->n ? w->sd / w->n : NAN;
    if (window_loss)
        *window_loss = mean;
    if (g->incident || g->pending || w->n < g->c.window / 2)
        return 0;
    int good = guard_passes(g, w->n, w->sd, w->sd2);
    /* a slow change no detector flagged: after long enough, the new level is normal */
    if (!good && g->seq - g->last_good_seq >= g->timeout)
        good = 1;
    if (good) {
        g->has_ref = 1;
        g->ref_loss = mean;
        g->last_good_seq = g->seq;
    }
    return good;
}

sl_err_t sl_guard_champion_replaced(sl_guard_t *g, const sl_learner_t *champion) {
    g->incident = g->paused = g->pending = 0;
    g->scale = sl_scaler_requested(sl_learner_scaler_const(champion));
    for (size_t j = 1 + g->c.n_challengers; j < SLOTS; j++)
        guard_free_slot(&g->slot[j]);
    for (uint32_t i = 1; i <= g->c.n_challengers; i++) {
        sl_learner_t *l;
        sl_err_t err = guard_make_challenger(g, i - 1, champion, &l);
        if (err != SL_OK)
            return err;
        sl_learner_destroy(g->slot[i].l);
        g->slot[i].l = l;
    }
    sl_drift_reset(g->drift);
    g->blk_sum = 0;
    g->blk_n = 0;
    guard_restart_all(g, g->seq);
    return SL_OK;
}

/* ---- status ---- */

static void slot_name(const sl_guard_t *g, const slot_t *s, char *name, size_t size) {
    if (s->kind == SLOT_CHAMPION) {
        snprintf(name, size, "champion");
    } else if (s->kind == SLOT_VERSION) {
        snprintf(name, size, "version %llu", (unsigned long long)s->version);
    } else {
        const sl_challenger_spec_t *sp = &g->c.challengers[s->spec];
        if (sp->kind == SL_CHALLENGER_FRESH)
            snprintf(name, size, "fresh");
        else if (sp->step_factor >= 1)
            snprintf(name, size, "step x%g", sp->step_factor);
        else
            snprintf(name, size, "step x1/%g", 1 / sp->step_factor);
    }
}

void sl_guard_status(const sl_guard_t *g, sl_guard_status_t *st) {
    memset(st, 0, sizeof *st);
    st->alarm = g->incident;
    st->paused = g->paused;
    st->decision_pending = g->pending;
    st->labelled = g->seq;
    st->alarms = g->alarms;
    st->promotions = g->promotions;
    st->switches = g->switches;
    st->kept = g->kept;
    st->resolved = g->resolved;
    st->dismissed = g->dismissed;
    st->alarm_at = g->alarm_at;
    st->reference_loss = g->has_ref ? g->ref_loss : NAN;
    sl_drift_info(g->drift, &st->detector);
    for (size_t j = 0; j < SLOTS; j++) {
        const slot_t *s = &g->slot[j];
        if (s->kind == SLOT_FREE)
            continue;
        sl_guard_candidate_status_t *c = &st->cand[st->n_candidates++];
        slot_name(g, s, c->name, sizeof c->name);
        c->window_n = s->win.n;
        if (s->kind == SLOT_CHAMPION) {
            c->window_loss = c->champion_loss = s->win.n ? s->win.sd / s->win.n : NAN;
            c->z = NAN;
        } else {
            c->window_loss = s->win.n ? s->win.sb / s->win.n : NAN;
            c->champion_loss = s->win.n ? s->win.sa / s->win.n : NAN;
            c->z = guard_win_z(&s->win);
        }
    }
}
