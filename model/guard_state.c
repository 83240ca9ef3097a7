/* guard_state.c - the guard's state blob: everything it decides from, bit for bit.
 *
 * "SLGD", format version 1, little-endian (model/blob.h framing):
 *   config: u32 detector kind, ph_min_instances, ph_mode; f64 ph_delta,
 *           ph_threshold, ph_alpha, adwin_delta; u32 adwin_clock,
 *           adwin_max_buckets, adwin_min_window, adwin_grace; u32 drift_block, n_challengers;
 * n_challengers x (u32 kind, f64 step_factor); f64 promote_margin; u32 window; f64 alpha; u32 hold;
 *           u64 hold_max_bytes, warmup, incident_timeout; u32 on_alarm; u64 seed
 *   counters: u64 seq, alarms, promotions, switches, kept, resolved, dismissed,
 *             alarm_at, incident_start, decide_from, last_good_seq;
 *             u32 incident, paused, pending, has_ref; f64 ref_loss
 *   detector: f64 block sum; u32 block count; bytes drift blob (model/drift.c)
 *   good versions: u32 n; n x (u64 version, u64 alarms)
 *   u64 ring span r = min(seq, hold); f64 signal of samples seq-r .. seq-1
 *   slots: u32 n; n x (u32 index, kind, spec; u64 version; window: u64 start,
 *          n; f64 sd, sd2, sa, sb, sb2, se, se2; u32 since_recompute; r x (f64
 *          loss, f64 error) (NaN: unscored); bytes model-state blob (sl_learner_save; empty for the
 *          champion, which is saved with the snapshot itself))
 *   held samples: u32 present; then model/holdbuf.c's layout */
#include "model/guard_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_MAGIC "SLGD"
#define GUARD_VERSION 1u

static void put_config(sl_blob_writer_t *w, const sl_guard_config_t *c) {
    const sl_drift_config_t *d = &c->drift;
    sl_blob_put_u32(w, d->kind);
    sl_blob_put_u32(w, d->ph_min_instances);
    sl_blob_put_u32(w, d->ph_mode);
    sl_blob_put_f64(w, d->ph_delta);
    sl_blob_put_f64(w, d->ph_threshold);
    sl_blob_put_f64(w, d->ph_alpha);
    sl_blob_put_f64(w, d->adwin_delta);
    sl_blob_put_u32(w, d->adwin_clock);
    sl_blob_put_u32(w, d->adwin_max_buckets);
    sl_blob_put_u32(w, d->adwin_min_window);
    sl_blob_put_u32(w, d->adwin_grace);
    sl_blob_put_u32(w, c->drift_block);
    sl_blob_put_u32(w, c->n_challengers);
    for (uint32_t i = 0; i < c->n_challengers; i++) {
        sl_blob_put_u32(w, c->challengers[i].kind);
        sl_blob_put_f64(w, c->challengers[i].step_factor);
    }
    sl_blob_put_f64(w, c->promote_margin);
    sl_blob_put_u32(w, c->window);
    sl_blob_put_f64(w, c->alpha);
    sl_blob_put_u32(w, c->hold);
    sl_blob_put_u64(w, c->hold_max_bytes);
    sl_blob_put_u64(w, c->warmup);
    sl_blob_put_u64(w, c->incident_timeout);
    sl_blob_put_u32(w, c->on_alarm);
    sl_blob_put_u64(w, c->seed);
}

sl_err_t sl_guard_save(const sl_guard_t *g, uint8_t **buf, size_t *len) {
    sl_blob_writer_t w;
    sl_blob_begin(&w, GUARD_MAGIC, GUARD_VERSION);
    put_config(&w, &g->c);
    uint64_t counters[] = {
        g->seq,       g->alarms,   g->promotions,     g->switches,    g->kept,         g->resolved,
        g->dismissed, g->alarm_at, g->incident_start, g->decide_from, g->last_good_seq};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        sl_blob_put_u64(&w, counters[i]);
    sl_blob_put_u32(&w, (uint32_t)g->incident);
    sl_blob_put_u32(&w, (uint32_t)g->paused);
    sl_blob_put_u32(&w, (uint32_t)g->pending);
    sl_blob_put_u32(&w, (uint32_t)g->has_ref);
    sl_blob_put_f64(&w, g->ref_loss);
    sl_blob_put_f64(&w, g->blk_sum);
    sl_blob_put_u32(&w, g->blk_n);
    uint8_t *sub = NULL;
    size_t sub_len = 0;
    if (w.err == SL_OK)
        w.err = sl_drift_save(g->drift, &sub, &sub_len);
    sl_blob_put_bytes(&w, sub, sub_len);
    free(sub);
    sl_blob_put_u32(&w, g->n_good);
    for (uint32_t i = 0; i < g->n_good; i++) {
        sl_blob_put_u64(&w, g->good[i].version);
        sl_blob_put_u64(&w, g->good[i].alarms);
    }
    uint64_t span = g->seq < g->hold ? g->seq : g->hold;
    sl_blob_put_u64(&w, span);
    for (uint64_t q = g->seq - span; q < g->seq; q++)
        sl_blob_put_f64(&w, g->signal[q % g->hold]);
    uint32_t used = 0;
    for (size_t j = 0; j < SLOTS; j++)
        used += g->slot[j].kind != SLOT_FREE;
    sl_blob_put_u32(&w, used);
    for (size_t j = 0; j < SLOTS; j++) {
        const slot_t *s = &g->slot[j];
        if (s->kind == SLOT_FREE)
            continue;
        sl_blob_put_u32(&w, (uint32_t)j);
        sl_blob_put_u32(&w, s->kind);
        sl_blob_put_u32(&w, s->spec);
        sl_blob_put_u64(&w, s->version);
        sl_blob_put_u64(&w, s->win.start);
        sl_blob_put_u64(&w, s->win.n);
        sl_blob_put_f64(&w, s->win.sd);
        sl_blob_put_f64(&w, s->win.sd2);
        sl_blob_put_f64(&w, s->win.sa);
        sl_blob_put_f64(&w, s->win.sb);
        sl_blob_put_f64(&w, s->win.sb2);
        sl_blob_put_f64(&w, s->win.se);
        sl_blob_put_f64(&w, s->win.se2);
        sl_blob_put_u32(&w, s->win.since_recompute);
        for (uint64_t q = g->seq - span; q < g->seq; q++) {
            sl_blob_put_f64(&w, s->loss[q % g->hold]);
            sl_blob_put_f64(&w, s->wrong[q % g->hold]);
        }
        sub = NULL;
        sub_len = 0;
        if (s->l && w.err == SL_OK)
            w.err = sl_learner_save(s->l, &sub, &sub_len);
        sl_blob_put_bytes(&w, sub, sub_len);
        free(sub);
    }
    sl_blob_put_u32(&w, g->held != NULL);
    if (g->held)
        sl_holdbuf_save(g->held, &w);
    return sl_blob_finish(&w, buf, len);
}

static void get_config(sl_blob_reader_t *r, sl_guard_config_t *c) {
    sl_drift_config_t *d = &c->drift;
    d->kind = (sl_drift_kind_t)sl_blob_get_u32(r, "detector kind");
    d->ph_min_instances = sl_blob_get_u32(r, "ph min_instances");
    d->ph_mode = (sl_drift_mode_t)sl_blob_get_u32(r, "ph mode");
    d->ph_delta = sl_blob_get_f64(r, "ph delta");
    d->ph_threshold = sl_blob_get_f64(r, "ph threshold");
    d->ph_alpha = sl_blob_get_f64(r, "ph alpha");
    d->adwin_delta = sl_blob_get_f64(r, "adwin delta");
    d->adwin_clock = sl_blob_get_u32(r, "adwin clock");
    d->adwin_max_buckets = sl_blob_get_u32(r, "adwin max_buckets");
    d->adwin_min_window = sl_blob_get_u32(r, "adwin min_window_length");
    d->adwin_grace = sl_blob_get_u32(r, "adwin grace_period");
    c->drift_block = sl_blob_get_u32(r, "drift_block");
    c->n_challengers = sl_blob_get_u32(r, "challengers");
    if (c->n_challengers > SL_GUARD_MAX_CHALLENGERS) {
        sl_blob_fail(r, "challengers", "more than 8");
        return;
    }
    for (uint32_t i = 0; i < c->n_challengers; i++) {
        c->challengers[i].kind = (sl_challenger_kind_t)sl_blob_get_u32(r, "challenger kind");
        c->challengers[i].step_factor = sl_blob_get_f64(r, "challenger step factor");
    }
    c->promote_margin = sl_blob_get_f64(r, "promote_margin");
    c->window = sl_blob_get_u32(r, "window");
    c->alpha = sl_blob_get_f64(r, "alpha");
    c->hold = sl_blob_get_u32(r, "hold");
    c->hold_max_bytes = sl_blob_get_u64(r, "hold_max_bytes");
    c->warmup = sl_blob_get_u64(r, "warmup");
    c->incident_timeout = sl_blob_get_u64(r, "incident_timeout");
    c->on_alarm = (sl_guard_on_alarm_t)sl_blob_get_u32(r, "on_alarm");
    c->seed = sl_blob_get_u64(r, "seed");
}

static int drift_equal(const sl_drift_config_t *da, const sl_drift_config_t *db) {
    return da->ph_min_instances == db->ph_min_instances && da->ph_delta == db->ph_delta &&
           da->ph_threshold == db->ph_threshold && da->ph_alpha == db->ph_alpha &&
           da->ph_mode == db->ph_mode && da->adwin_delta == db->adwin_delta &&
           da->adwin_clock == db->adwin_clock && da->adwin_max_buckets == db->adwin_max_buckets &&
           da->adwin_min_window == db->adwin_min_window && da->adwin_grace == db->adwin_grace &&
           da->kind == db->kind;
}

/* The first field where the saved config differs from the wanted one, or NULL. */
static const char *config_diff(const sl_guard_config_t *a, const sl_guard_config_t *b) {
    if (a->drift.kind != b->drift.kind)
        return "--drift-detector";
    if (!drift_equal(&a->drift, &b->drift))
        return "detector parameters";
    if (a->drift_block != b->drift_block)
        return "drift block";
    if (a->n_challengers != b->n_challengers)
        return "--challengers";
    for (uint32_t i = 0; i < a->n_challengers; i++)
        if (a->challengers[i].kind != b->challengers[i].kind ||
            (a->challengers[i].kind == SL_CHALLENGER_STEP &&
             a->challengers[i].step_factor != b->challengers[i].step_factor))
            return "challenger kinds";
    if (a->promote_margin != b->promote_margin)
        return "--promote-margin";
    if (a->window != b->window)
        return "--guard-window";
    if (a->alpha != b->alpha)
        return "guard alpha";
    if (a->hold != b->hold || a->hold_max_bytes != b->hold_max_bytes)
        return "guard hold";
    if (a->warmup != b->warmup || a->incident_timeout != b->incident_timeout)
        return "guard warm-up or timeout";
    if (a->on_alarm != b->on_alarm)
        return "--on-alarm";
    if (a->seed != b->seed)
        return "--seed";
    return NULL;
}

static void get_window(sl_blob_reader_t *r, gwin_t *w) {
    w->start = sl_blob_get_u64(r, "window start");
    w->n = sl_blob_get_u64(r, "window count");
    w->sd = sl_blob_get_f64(r, "window sum");
    w->sd2 = sl_blob_get_f64(r, "window sum of squares");
    w->sa = sl_blob_get_f64(r, "window champion sum");
    w->sb = sl_blob_get_f64(r, "window candidate sum");
    w->sb2 = sl_blob_get_f64(r, "window candidate sum of squares");
    w->se = sl_blob_get_f64(r, "window error sum");
    w->se2 = sl_blob_get_f64(r, "window error sum of squares");
    w->since_recompute = sl_blob_get_u32(r, "window since_recompute");
    if (!isfinite(w->sd) || !isfinite(w->sd2) || !isfinite(w->sa) || !isfinite(w->sb) ||
        !isfinite(w->sb2) || !isfinite(w->se) || !isfinite(w->se2))
        sl_blob_fail(r, "window", "not finite");
}

/* Reads one slot's record into g (made by guard_alloc for the same config). */
static void get_slot(sl_blob_reader_t *r, sl_guard_t *g, uint64_t span,
                     const sl_learner_t *champion, int *seen) {
    uint32_t j = sl_blob_get_u32(r, "slot index");
    uint32_t kind = sl_blob_get_u32(r, "slot kind");
    uint32_t spec = sl_blob_get_u32(r, "slot spec");
    uint64_t version = sl_blob_get_u64(r, "slot version");
    if (r->err != SL_OK)
        return;
    int want_kind = j == 0                    ? SLOT_CHAMPION
                    : j <= g->c.n_challengers ? SLOT_CHALLENGER
                                              : SLOT_VERSION;
    if (j >= SLOTS || seen[j] || (int)kind != want_kind ||
        (kind == SLOT_CHALLENGER && spec != j - 1)) {
        sl_blob_fail(r, "slot", "index, kind or spec out of place, or repeated");
        return;
    }
    seen[j] = 1;
    slot_t *s = &g->slot[j];
    if (kind == SLOT_VERSION) {
        s->loss = malloc(g->hold * sizeof *s->loss);
        s->wrong = malloc(g->hold * sizeof *s->wrong);
        s->kind = SLOT_VERSION;
        if (!s->loss || !s->wrong) {
            sl_blob_fail(r, "slot", "out of memory");
            return;
        }
        for (uint64_t q = 0; q < g->hold; q++)
            s->loss[q] = s->wrong[q] = NAN;
    }
    s->version = version;
    get_window(r, &s->win);
    for (uint64_t q = g->seq - span; q < g->seq && r->err == SL_OK; q++) {
        s->loss[q % g->hold] = sl_blob_get_f64(r, "slot loss");
        s->wrong[q % g->hold] = sl_blob_get_f64(r, "slot error");
    }
    const uint8_t *blob;
    size_t len = sl_blob_get_bytes(r, &blob, "slot learner");
    if (r->err != SL_OK)
        return;
    if ((kind == SLOT_CHAMPION) != (len == 0)) {
        sl_blob_fail(r, "slot learner", kind == SLOT_CHAMPION ? "unexpected" : "missing");
        return;
    }
    if (kind == SLOT_CHAMPION)
        return;
    char why[256];
    sl_err_t e;
    const sl_model_config_t *expect = sl_model_config(sl_learner_model((sl_learner_t *)champion));
    sl_learner_t *l = sl_learner_load(blob, len, expect, &e, why, sizeof why);
    if (!l) {
        sl_blob_fail(r, "slot learner", why);
        if (e == SL_ERR_MISMATCH)
            r->err = SL_ERR_MISMATCH;
        return;
    }
    if (sl_scaler_requested(sl_learner_scaler_const(l)) != g->scale) {
        sl_learner_destroy(l);
        sl_blob_fail(r, "slot learner", "scaled otherwise than the champion");
        r->err = SL_ERR_MISMATCH;
        return;
    }
    sl_learner_destroy(s->l);
    s->l = l;
}

static void get_state(sl_blob_reader_t *r, sl_guard_t *g, const sl_learner_t *champion) {
    uint64_t *counters[] = {&g->seq,         &g->alarms,       &g->promotions,
                            &g->switches,    &g->kept,         &g->resolved,
                            &g->dismissed,   &g->alarm_at,     &g->incident_start,
                            &g->decide_from, &g->last_good_seq};
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++)
        *counters[i] = sl_blob_get_u64(r, "counters");
    g->incident = sl_blob_get_u32(r, "incident") != 0;
    g->paused = sl_blob_get_u32(r, "paused") != 0;
    g->pending = sl_blob_get_u32(r, "pending") != 0;
    g->has_ref = sl_blob_get_u32(r, "has_ref") != 0;
    g->ref_loss = sl_blob_get_f64(r, "ref_loss");
    g->blk_sum = sl_blob_get_f64(r, "detector block sum");
    g->blk_n = sl_blob_get_u32(r, "detector block count");
    if (g->blk_n >= g->block || !isfinite(g->blk_sum))
        sl_blob_fail(r, "detector block", "out of range");
    const uint8_t *blob;
    size_t len = sl_blob_get_bytes(r, &blob, "detector");
    if (r->err != SL_OK)
        return;
    char why[256];
    sl_drift_t *d = sl_drift_load(blob, len, NULL, why, sizeof why);
    if (!d) {
        sl_blob_fail(r, "detector", why);
        return;
    }
    if (!drift_equal(sl_drift_config(d), &g->c.drift)) {
        sl_drift_destroy(d);
        sl_blob_fail(r, "detector", "its parameters differ from the guard's");
        return;
    }
    sl_drift_destroy(g->drift);
    g->drift = d;
    g->n_good = sl_blob_get_u32(r, "good versions");
    if (g->n_good > MAX_GOOD) {
        sl_blob_fail(r, "good versions", "more than 16");
        return;
    }
    for (uint32_t i = 0; i < g->n_good; i++) {
        g->good[i].version = sl_blob_get_u64(r, "good version");
        g->good[i].alarms = sl_blob_get_u64(r, "good version alarms");
    }
    uint64_t span = sl_blob_get_u64(r, "ring span");
    if (r->err == SL_OK && span != (g->seq < g->hold ? g->seq : g->hold)) {
        sl_blob_fail(r, "ring span", "does not match the samples seen");
        return;
    }
    for (uint64_t q = g->seq - span; q < g->seq && r->err == SL_OK; q++)
        g->signal[q % g->hold] = sl_blob_get_f64(r, "signal");
    uint32_t used = sl_blob_get_u32(r, "slots");
    if (used < 1 + g->c.n_challengers || used > 1 + g->c.n_challengers + SL_GUARD_MAX_VERSIONS)
        sl_blob_fail(r, "slots", "count out of range");
    int seen[SLOTS] = {0};
    for (uint32_t k = 0; k < used && r->err == SL_OK; k++)
        get_slot(r, g, span, champion, seen);
    for (uint32_t j = 0; j <= g->c.n_challengers && r->err == SL_OK; j++)
        if (!seen[j])
            sl_blob_fail(r, "slots", "the champion or a challenger is missing");
    uint32_t held = sl_blob_get_u32(r, "held samples present");
    if (r->err == SL_OK && (held != 0) != (g->held != NULL))
        sl_blob_fail(r, "held samples present", "does not match --on-alarm");
    if (r->err == SL_OK && g->held)
        sl_holdbuf_load(g->held, r);
    if (r->err == SL_OK && g->held && sl_holdbuf_pushed(g->held) != g->seq)
        sl_blob_fail(r, "held samples", "not as many as the samples seen");
}

sl_guard_t *sl_guard_load(const uint8_t *buf, size_t len, const sl_guard_config_t *want,
                          const sl_learner_t *champion, sl_err_t *err, char *errstr,
                          size_t errstr_size) {
    sl_blob_reader_t r;
    sl_guard_t *g = NULL;
    sl_err_t e =
        sl_blob_open(&r, buf, len, GUARD_MAGIC, GUARD_VERSION, "guard blob", errstr, errstr_size);
    if (e == SL_OK) {
        sl_guard_config_t c;
        memset(&c, 0, sizeof c);
        get_config(&r, &c);
        const char *diff = want && r.err == SL_OK ? config_diff(&c, want) : NULL;
        if (diff) {
            sl_errstr_set(errstr, errstr_size, "guard blob: saved with another %s", diff);
            r.err = SL_ERR_MISMATCH;
        }
        char why[256];
        if (r.err == SL_OK && !(g = guard_alloc(&c, champion, why, sizeof why)))
            sl_blob_fail(&r, "config", why);
        if (r.err == SL_OK)
            get_state(&r, g, champion);
        e = sl_blob_done(&r);
    }
    if (e != SL_OK) {
        sl_guard_destroy(g);
        g = NULL;
    }
    if (err)
        *err = e;
    return g;
}
