/* guard_decide.c - the guard's windows, paired tests and decisions: alarms,
 * promotions, switches to stored versions, and the end of an alarm.
 *
 * The test. For a candidate c and the champion 0 scored on the same samples
 * (each before it trained on it), d_i = (1 - margin) L0_i - Lc_i. The
 * candidate wins when the one-sided paired z-test rejects "E[d] <= 0", i.e.
 * mean(d) / (sd(d) / sqrt(n)) > z_alpha: its expected loss is below
 * (1 - margin) times the champion's with significance alpha. For
 * classifiers the same test on e_i = E0_i - Ec_i (0/1 errors, no margin)
 * must reject "E[e] <= 0" too: on labels that are noise a less confident
 * model has the lower log-loss without being right more often. Pairing
 * removes the samples' own difficulty from the variance, so a few hundred
 * samples tell a real difference; n is in the hundreds or the differences
 * are large, so the normal quantile stands in for Student's t. */
#include "model/guard_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int guard_value(const sl_guard_t *g, const slot_t *s, uint64_t seq, gval_t *v) {
    size_t at = seq % g->hold;
    const slot_t *c = &g->slot[0];
    double l0 = c->loss[at];
    if (s->kind == SLOT_CHAMPION) {
        *v = (gval_t){l0, l0, l0, 0};
        return !isnan(l0);
    }
    double lc = s->loss[at];
    *v = (gval_t){(1 - g->c.promote_margin) * l0 - lc, l0, lc, c->wrong[at] - s->wrong[at]};
    return !isnan(l0) && !isnan(lc);
}

static void win_put(gwin_t *w, const gval_t *v, double sign) {
    w->sd += sign * v->d;
    w->sd2 += sign * v->d * v->d;
    w->sa += sign * v->a;
    w->sb += sign * v->b;
    w->sb2 += sign * v->b * v->b;
    w->se += sign * v->e;
    w->se2 += sign * v->e * v->e;
    w->n = sign > 0 ? w->n + 1 : w->n - 1;
}

/* Sums over [max(start, end - W), end) again from the rings. */
static void win_recompute(sl_guard_t *g, slot_t *s, uint64_t end) {
    gwin_t *w = &s->win;
    uint64_t lo = end > g->c.window ? end - g->c.window : 0;
    if (lo < w->start)
        lo = w->start;
    w->n = 0;
    w->sd = w->sd2 = w->sa = w->sb = w->sb2 = w->se = w->se2 = 0;
    gval_t v;
    for (uint64_t q = lo; q < end; q++)
        if (guard_value(g, s, q, &v))
            win_put(w, &v, 1);
    w->since_recompute = 0;
}

void guard_win_evict(sl_guard_t *g, slot_t *s, uint64_t seq) {
    gwin_t *w = &s->win;
    if (seq < g->c.window || seq - g->c.window < w->start)
        return;
    gval_t v;
    if (guard_value(g, s, seq - g->c.window, &v) && w->n > 0)
        win_put(w, &v, -1);
}

/* Adds sample seq (its ring entries written); g->seq is still seq. Every
 * `window` additions the sums are recomputed, so rounding never builds up. */
void guard_win_add(sl_guard_t *g, slot_t *s, uint64_t seq) {
    gwin_t *w = &s->win;
    gval_t v;
    if (guard_value(g, s, seq, &v))
        win_put(w, &v, 1);
    if (++w->since_recompute >= g->c.window)
        win_recompute(g, s, seq + 1);
}

void guard_win_restart(sl_guard_t *g, slot_t *s, uint64_t start) {
    s->win.start = start;
    win_recompute(g, s, g->seq);
}

void guard_restart_all(sl_guard_t *g, uint64_t start) {
    if (g->seq > g->hold && start < g->seq - g->hold)
        start = g->seq - g->hold;
    for (size_t j = 0; j < SLOTS; j++)
        if (g->slot[j].kind != SLOT_FREE)
            guard_win_restart(g, &g->slot[j], start);
}

/* mean / standard error of n values with sum s and sum of squares s2. */
static double z_of_sums(uint64_t n, double s, double s2) {
    if (n < 2)
        return NAN;
    double mean = s / n;
    double var = (s2 - s * mean) / (double)(n - 1);
    if (!(var > 0))
        return mean > 0 ? INFINITY : mean < 0 ? -INFINITY : 0;
    return mean / sqrt(var / n);
}

double guard_win_z(const gwin_t *w) {
    return z_of_sums(w->n, w->sd, w->sd2);
}

double guard_win_z_err(const gwin_t *w) {
    return z_of_sums(w->n, w->se, w->se2);
}

/* Paired statistics of slot s against the champion over [from, g->seq). */
static gwin_t stats_over(const sl_guard_t *g, const slot_t *s, uint64_t from) {
    gwin_t w = {.start = from};
    gval_t v;
    for (uint64_t q = from; q < g->seq; q++)
        if (guard_value(g, s, q, &v))
            win_put(&w, &v, 1);
    return w;
}

void guard_restart_fresh(sl_guard_t *g) {
    for (uint32_t i = 1; i <= g->c.n_challengers; i++) {
        slot_t *s = &g->slot[i];
        sl_learner_t *l;
        if (g->c.challengers[s->spec].kind != SL_CHALLENGER_FRESH ||
            guard_fresh_learner(g, s->spec, &l) != SL_OK)
            continue; /* out of memory: it keeps learning as it was */
        sl_learner_destroy(s->l);
        s->l = l;
        guard_win_restart(g, s, g->seq);
    }
}

static void name_of(const sl_guard_t *g, const slot_t *s, char *out, size_t size) {
    if (s->kind == SLOT_VERSION) {
        snprintf(out, size, "good version %llu", (unsigned long long)s->version);
        return;
    }
    const sl_challenger_spec_t *sp = &g->c.challengers[s->spec];
    if (sp->kind == SL_CHALLENGER_FRESH)
        snprintf(out, size, "challenger fresh");
    else if (sp->step_factor >= 1)
        snprintf(out, size, "challenger step x%g", sp->step_factor);
    else
        snprintf(out, size, "challenger step x1/%g", 1 / sp->step_factor);
}

static int optim_differs(const sl_optim_config_t *a, const sl_optim_config_t *b) {
    return a->ftrl_alpha != b->ftrl_alpha || a->ftrl_beta != b->ftrl_beta || a->l1 != b->l1 ||
           a->l2 != b->l2;
}

/* The champion takes candidate slot j's weights, optimizer state, counters
 * and metrics; its own hyperparameters stay (the operator's flags). FTRL
 * rebuilds its state when the two configs differ, so the weights are kept
 * exactly (its closed form depends on alpha). Records the event. */
static sl_err_t take_over(sl_guard_t *g, sl_learner_t *champion, size_t j, const gwin_t *w,
                          const char *context) {
    slot_t *s = &g->slot[j];
    sl_err_t err = sl_learner_copy(champion, s->l);
    if (err != SL_OK)
        return err;
    if (sl_learner_optim_config(champion)->kind == SL_OPTIM_FTRL &&
        optim_differs(sl_learner_optim_config(champion), sl_learner_optim_config(s->l)))
        sl_optim_params_changed(sl_learner_optim(champion),
                                sl_model_params(sl_learner_model(champion)));
    int version = s->kind == SLOT_VERSION;
    sl_guard_event_t *e = guard_event(g, version ? SL_GUARD_SWITCHED : SL_GUARD_PROMOTED);
    e->challenger = version ? -1 : (int)s->spec;
    e->version = version ? s->version : 0;
    e->samples = w->n;
    e->champion_loss = w->sa / w->n;
    e->best_loss = w->sb / w->n;
    e->z = guard_win_z(w);
    char who[48];
    name_of(g, s, who, sizeof who);
    snprintf(e->reason, sizeof e->reason,
             "auto: %s: %s %s: mean loss %.4g vs %.4g for the champion over %llu samples "
             "(margin %g%%, paired z %.3g > %.3g)",
             context, version ? "switched to" : "promoted", who, e->best_loss, e->champion_loss,
             (unsigned long long)w->n, 100 * g->c.promote_margin, e->z, g->z_alpha);
    if (version) {
        g->switches++;
        guard_free_slot(s);
    } else {
        g->promotions++;
    }
    sl_drift_reset(g->drift);
    g->blk_sum = 0;
    g->blk_n = 0;
    return SL_OK;
}

/* 1 when a mean loss of n samples (sum s, sum of squares s2) is not
 * significantly above (1 + margin) x the reference: it "passes the guard".
 * Everything passes while there is no reference. */
int guard_passes(const sl_guard_t *g, uint64_t n, double s, double s2) {
    if (!g->has_ref)
        return 1;
    if (n < 2)
        return 0;
    double mean = s / n, var = (s2 - s * mean) / (double)(n - 1);
    double se = sqrt(var > 0 ? var / n : 0);
    double excess = mean - (1 + g->c.promote_margin) * g->ref_loss;
    return excess <= 0 || (se > 0 && excess / se <= g->z_alpha);
}

/* Among challengers (and held versions when `versions`), the one with the
 * lowest mean loss whose test passes, over its window (from == UINT64_MAX)
 * or over [from, seq); after an alarm (`absolute`) it must also pass the
 * guard itself: a candidate merely less wrong than the champion on a broken
 * stretch fixes nothing. Returns its slot or 0; *best gets its statistics
 * (or those of the best loser, for the record). */
static size_t pick(const sl_guard_t *g, int versions, uint64_t from, uint64_t min_n, int absolute,
                   gwin_t *best) {
    size_t chosen = 0;
    double chosen_loss = INFINITY, other_loss = INFINITY;
    memset(best, 0, sizeof *best);
    for (size_t j = 1; j < SLOTS; j++) {
        const slot_t *s = &g->slot[j];
        if (s->kind != SLOT_CHALLENGER && !(versions && s->kind == SLOT_VERSION))
            continue;
        gwin_t w = from == UINT64_MAX ? s->win : stats_over(g, s, from);
        if (w.n == 0)
            continue;
        double loss = w.sb / w.n, z = guard_win_z(&w);
        /* classifiers: fewer errors too, or a merely less confident model
         * would win on labels that are noise */
        int fewer_errors = !g->classification || guard_win_z_err(&w) > g->z_alpha;
        if (w.n >= min_n && z > g->z_alpha && fewer_errors && loss < chosen_loss &&
            (!absolute || guard_passes(g, w.n, w.sb, w.sb2))) {
            chosen = j;
            chosen_loss = loss;
            *best = w;
        } else if (!chosen && loss < other_loss) {
            other_loss = loss;
            *best = w;
        }
    }
    return chosen;
}

sl_err_t guard_decide_now(sl_guard_t *g, sl_learner_t *champion, uint64_t start, const char *why,
                          int after_alarm) {
    if (g->seq > g->hold && start < g->seq - g->hold)
        start = g->seq - g->hold;
    gwin_t w;
    size_t j = pick(g, 1, start, MIN_DECIDE, 1, &w);
    char context[96];
    snprintf(context, sizeof context, "%s (%s) at sample %llu", why,
             sl_drift_kind_name(g->c.drift.kind), (unsigned long long)g->alarm_at);
    g->pending = 0;
    if (j) {
        sl_err_t err = take_over(g, champion, j, &w, context);
        if (err != SL_OK)
            return err;
        if (after_alarm)
            guard_restart_fresh(g);
        guard_restart_all(g, g->seq);
        return SL_OK;
    }
    g->kept++;
    sl_guard_event_t *e = guard_event(g, SL_GUARD_KEPT);
    e->samples = w.n;
    e->champion_loss = w.n ? w.sa / w.n : NAN;
    e->best_loss = w.n ? w.sb / w.n : NAN;
    e->z = guard_win_z(&w);
    snprintf(e->reason, sizeof e->reason,
             "%s: kept the champion: no candidate both beat it by %g%% and passed the guard over "
             "the %llu samples since the change (best mean loss %.4g vs %.4g, paired z %.3g, "
             "needed %.3g)",
             context, 100 * g->c.promote_margin, (unsigned long long)w.n, e->best_loss,
             e->champion_loss, e->z, g->z_alpha);
    if (after_alarm)
        guard_restart_fresh(g);
    guard_restart_all(g, start);
    return SL_OK;
}

/* Samples since the change the detector saw (at most `age` back): the split
 * of the champion's recent signal that best separates a lower mean before
 * from a higher one after (rise) or the reverse (fall), the least-squares
 * change point. At least MIN_DECIDE when that many are there. */
static uint64_t change_point(const sl_guard_t *g, uint64_t age, int rise) {
    uint64_t a = age;
    if (a > g->seq)
        a = g->seq;
    if (a > g->hold)
        a = g->hold;
    if (a < 2)
        return a;
    uint64_t first = g->seq - a;
    double mean = 0;
    for (uint64_t q = first; q < g->seq; q++)
        mean += g->signal[q % g->hold];
    mean /= (double)a;
    double s = 0, best = 0;
    uint64_t kbest = 0;
    for (uint64_t k = 1; k < a; k++) {
        s += g->signal[(first + k - 1) % g->hold] - mean;
        if (rise ? s < best : s > best) {
            best = s;
            kbest = k;
        }
    }
    uint64_t post = a - kbest;
    if (post < MIN_DECIDE)
        post = a < MIN_DECIDE ? a : MIN_DECIDE;
    return post;
}

static double mean_signal(const sl_guard_t *g, uint64_t from, uint64_t to) {
    double s = 0;
    for (uint64_t q = from; q < to; q++)
        s += g->signal[q % g->hold];
    return to > from ? s / (double)(to - from) : NAN;
}

/* A rise the detector flagged becomes an alarm when the champion's loss
 * since the estimated change fails the guard too (with no reference yet:
 * always). Otherwise it is a fluctuation within the margin: counted as
 * dismissed, nothing else. */
static void raise_alarm(sl_guard_t *g, uint64_t age) {
    uint64_t post = change_point(g, age, 1), start = g->seq - post;
    gwin_t since = stats_over(g, &g->slot[0], start);
    if (g->has_ref && guard_passes(g, since.n, since.sd, since.sd2)) {
        g->dismissed++;
        return;
    }
    g->alarms++;
    g->alarm_at = g->seq;
    sl_guard_event_t *e = guard_event(g, SL_GUARD_ALARM);
    e->samples = post;
    uint64_t before = start > g->c.window ? start - g->c.window : 0;
    if (g->seq - before > g->hold)
        before = g->seq - g->hold;
    e->champion_loss = mean_signal(g, start, g->seq);
    e->best_loss = mean_signal(g, before, start);
    snprintf(e->reason, sizeof e->reason,
             "alarm (%s) at sample %llu: the champion's %s rose to %.4g over the %llu samples "
             "since the estimated change, from %.4g before",
             sl_drift_kind_name(g->c.drift.kind), (unsigned long long)g->seq,
             g->classification ? "error rate" : "loss", e->champion_loss, (unsigned long long)post,
             e->best_loss);
    if (!g->incident) {
        g->incident = 1;
        g->incident_start = g->seq;
    }
    if (g->c.on_alarm == SL_GUARD_SWITCH && g->held) {
        g->pending = 1; /* fresh challengers start again after the decision */
        g->decide_from = start;
    } else {
        if (g->c.on_alarm == SL_GUARD_PAUSE)
            g->paused = 1;
        guard_restart_fresh(g);
    }
    guard_restart_all(g, start);
}

static void resolve(sl_guard_t *g, const char *how) {
    g->incident = g->paused = 0;
    g->resolved++;
    for (size_t j = 1 + g->c.n_challengers; j < SLOTS; j++)
        guard_free_slot(&g->slot[j]);
    const gwin_t *w = &g->slot[0].win;
    sl_guard_event_t *e = guard_event(g, SL_GUARD_RESOLVED);
    e->samples = w->n;
    e->champion_loss = w->n ? w->sd / w->n : NAN;
    e->best_loss = g->has_ref ? g->ref_loss : NAN;
    snprintf(e->reason, sizeof e->reason,
             "alarm of sample %llu over (%s): the champion's mean loss is %.4g over %llu samples "
             "(reference %.4g)",
             (unsigned long long)g->alarm_at, how, e->champion_loss, (unsigned long long)w->n,
             e->best_loss);
}

/* Ends the alarm when the champion's windowed loss is back: not
 * significantly above (1 + margin) x the reference over at least half a
 * window (with no reference yet: half a window without a new alarm), or
 * when it has lasted the timeout (the new level becomes the reference). */
static void check_resolved(sl_guard_t *g) {
    const gwin_t *w = &g->slot[0].win;
    if (w->n >= g->c.window / 2 && w->n >= 2) {
        if (!g->has_ref)
            return resolve(g, "quiet for half a window");
        if (guard_passes(g, w->n, w->sd, w->sd2))
            return resolve(g, "loss back to its reference");
    }
    if (g->seq - g->incident_start >= g->timeout) {
        if (w->n > 0) {
            g->has_ref = 1;
            g->ref_loss = w->sd / w->n;
        }
        resolve(g, "timeout; its level is the new reference");
    }
}

void guard_after_batch(sl_guard_t *g, sl_learner_t *champion, int fired, int direction,
                       uint64_t fired_at, uint64_t change_age) {
    int ready = g->seq >= g->warmup;
    if (fired && !ready) {
        g->dismissed++;
    } else if (fired && direction > 0) {
        raise_alarm(g, change_age + (g->seq - fired_at));
    } else if (fired && g->incident && g->c.on_alarm == SL_GUARD_SWITCH && !g->pending) {
        /* the error fell during an alarm: a stretch of bad data may be over */
        uint64_t post = change_point(g, change_age + (g->seq - fired_at), 0);
        guard_decide_now(g, champion, g->seq - post, "recovery after the alarm", 0);
    }
    if (ready && !g->pending && !g->paused) {
        int versions = g->incident && g->c.on_alarm == SL_GUARD_SWITCH;
        gwin_t w;
        size_t j = pick(g, versions, UINT64_MAX, g->c.window / 2, g->incident, &w);
        char context[96];
        if (g->slot[j].kind == SLOT_VERSION)
            snprintf(context, sizeof context, "recovery after the alarm at sample %llu",
                     (unsigned long long)g->alarm_at);
        else
            snprintf(context, sizeof context, "challenger test over the last %u samples",
                     g->c.window);
        if (j && take_over(g, champion, j, &w, context) == SL_OK)
            guard_restart_all(g, g->seq);
    }
    if (g->incident && !g->pending)
        check_resolved(g);
}
