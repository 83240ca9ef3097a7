/* test_guard.c - guarded learning: the champion learns exactly as without the
 * guard until the guard acts; on seeded gen streams a stationary stretch
 * raises no alarm and switches nothing, a poisoned stretch is left by an
 * automatic switch back to a good version, a sudden drift promotes a
 * challenger; a restart from the saved state resumes the same decisions. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/guard.h"
#include "model/holdbuf.h"
#include "model/score.h"
#include "tests/support/guardsim.h"

static sl_model_config_t logistic(uint32_t dim) {
    return (sl_model_config_t){.head = SL_HEAD_LOGISTIC, .dim = dim};
}

static sl_learner_t *learner(uint32_t dim, uint64_t seed) {
    sl_model_config_t m = logistic(dim);
    sl_optim_config_t o = sl_optim_config_default(SL_OPTIM_ADAM);
    char err[256];
    sl_learner_t *l = sl_learner_new(&m, &o, seed, 0, err, sizeof err);
    if (!l)
        fail_msg("sl_learner_new: %s", err);
    return l;
}

static sl_guard_t *guard(const sl_guard_config_t *c, const sl_learner_t *champ) {
    char err[256];
    sl_guard_t *g = sl_guard_new(c, champ, err, sizeof err);
    if (!g)
        fail_msg("sl_guard_new: %s", err);
    return g;
}

/* A seeded batch of n samples of dimension dim, labels from a fixed direction. */
typedef struct batch {
    float x[64 * 8], y[64], w[64];
    uint8_t lab[64];
    sl_input_t in;
    sl_targets_t t;
} batch_t;

static void fill(batch_t *b, uint64_t *state, size_t n, uint32_t dim) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (uint32_t j = 0; j < dim; j++) {
            *state = *state * 6364136223846793005ull + 1442695040888963407ull;
            float v = (float)((double)(*state >> 40) / (double)(1 << 24) * 2 - 1);
            b->x[i * dim + j] = v;
            s += v * (j % 2 ? 1 : -1);
        }
        b->y[i] = s > 0;
        b->w[i] = 1;
        b->lab[i] = i % 5 != 4; /* a few predict-only samples */
    }
    b->in = (sl_input_t){.n = n, .dim = dim, .dense = b->x};
    b->t = (sl_targets_t){b->y, b->w, b->lab};
}

static void test_config(void **state) {
    (void)state;
    sl_guard_config_t c = sl_guard_config_default();
    char err[256];
    assert_int_equal(sl_guard_config_check(&c, err, sizeof err), SL_OK);
    assert_int_equal(c.drift.kind, SL_DRIFT_ADWIN);
    assert_int_equal(c.n_challengers, 2);
    assert_int_equal(c.challengers[0].kind, SL_CHALLENGER_STEP);
    assert_true(c.challengers[0].step_factor == 3);
    assert_int_equal(c.challengers[1].kind, SL_CHALLENGER_FRESH);
    sl_guard_config_challengers(&c, 4);
    assert_true(c.challengers[2].step_factor == 1.0 / 3 && c.challengers[3].step_factor == 9);
    c.promote_margin = 1;
    assert_int_equal(sl_guard_config_check(&c, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--promote-margin"));
    c = sl_guard_config_default();
    c.on_alarm = (sl_guard_on_alarm_t)7;
    assert_int_equal(sl_guard_config_check(&c, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--on-alarm"));
    c = sl_guard_config_default();
    c.n_challengers = 9;
    assert_int_equal(sl_guard_config_check(&c, err, sizeof err), SL_ERR_INVAL);
}

/* "Larger step" is the learning rate for every rule that has one (auto's base
 * step), FTRL's alpha for FTRL. */
static void test_step_config(void **state) {
    (void)state;
    sl_optim_kind_t kinds[] = {SL_OPTIM_SGD,     SL_OPTIM_ADAM, SL_OPTIM_ADAMW, SL_OPTIM_ADAGRAD,
                               SL_OPTIM_RMSPROP, SL_OPTIM_FTRL, SL_OPTIM_AUTO};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        sl_optim_config_t o = sl_optim_config_default(kinds[i]);
        assert_int_equal(sl_optim_config_resolve(&o, NULL, 0), SL_OK);
        sl_optim_config_t s = sl_guard_step_config(&o, 3);
        if (kinds[i] == SL_OPTIM_FTRL) {
            assert_true(s.ftrl_alpha == 3 * o.ftrl_alpha);
            assert_true(s.lr == o.lr || (isnan(s.lr) && isnan(o.lr)));
        } else {
            assert_true(s.lr == 3 * o.lr);
        }
        assert_true(s.beta1 == o.beta1 || (isnan(s.beta1) && isnan(o.beta1)));
    }
}

/* With the detector off and no challengers the champion's weights, outputs
 * and results are bit for bit those of sl_learner_batch; challengers do not
 * change that either (they learn beside it). */
static void test_champion_learns_as_without_guard(void **state) {
    (void)state;
    for (uint32_t n_ch = 0; n_ch <= 2; n_ch += 2) {
        sl_learner_t *plain = learner(8, 3), *champ = learner(8, 3);
        sl_guard_config_t c = sl_guard_config_default();
        c.drift = sl_drift_config_default(SL_DRIFT_OFF);
        sl_guard_config_challengers(&c, n_ch);
        c.seed = 3;
        c.warmup = UINT64_MAX; /* no promotion either */
        sl_guard_t *g = guard(&c, champ);
        assert_int_equal(sl_guard_training(g), 1);
        uint64_t s1 = 1, s2 = 1;
        for (int k = 0; k < 200; k++) {
            batch_t a, b;
            fill(&a, &s1, 64, 8);
            fill(&b, &s2, 64, 8);
            float oa[64], ob[64];
            sl_batch_result_t ra, rb;
            assert_int_equal(sl_learner_batch(plain, &a.in, &a.t, oa, &ra), SL_OK);
            assert_int_equal(sl_guard_batch(g, champ, &b.in, &b.t, ob, &rb), SL_OK);
            assert_memory_equal(oa, ob, sizeof oa);
            assert_int_equal(ra.n_labelled, rb.n_labelled);
            assert_true(ra.loss == rb.loss);
            const sl_guard_event_t *ev;
            assert_int_equal(sl_guard_events(g, &ev), 0);
        }
        assert_memory_equal(sl_model_params(sl_learner_model(plain)),
                            sl_model_params(sl_learner_model(champ)), 9 * sizeof(float));
        if (n_ch)
            assert_non_null(sl_guard_challenger(g, 1));
        assert_null(sl_guard_challenger(g, 2));
        sl_guard_status_t st;
        sl_guard_status(g, &st);
        assert_int_equal(st.n_candidates, 1 + n_ch);
        assert_string_equal(st.cand[0].name, "champion");
        if (n_ch)
            assert_string_equal(st.cand[1].name, "step x3");
        sl_guard_destroy(g);
        sl_learner_destroy(plain);
        sl_learner_destroy(champ);
    }
    sl_guard_destroy(NULL);
}

/* The default gen-like stream of the scenario tests: logistic, dim 32, 5%
 * label noise, Adam with torch's defaults, batches of 64. */
static sl_gsim_config_t sim(uint64_t samples, uint64_t seed) {
    sl_gsim_config_t c = {0};
    c.gen = (sl_gen_config_t){.head = SL_HEAD_LOGISTIC,
                              .dim = 32,
                              .classes = 2,
                              .seed = seed,
                              .samples = samples,
                              .stream = SL_GEN_HYPERPLANE,
                              .labelled_fraction = 1,
                              .noise = 0.05,
                              .per_message = 1,
                              .vocab = 1000,
                              .nnz = 10};
    c.model = logistic(32);
    c.optim = sl_optim_config_default(SL_OPTIM_ADAM);
    c.seed = seed;
    c.guarded = 1;
    c.guard = sl_guard_config_default();
    if (getenv("GUARD_TEST_LOG"))
        c.log = stderr;
    return c;
}

static void run(const sl_gsim_config_t *c, sl_gsim_result_t *r) {
    if (sl_gsim_run(c, r) != 0)
        fail_msg("guardsim failed");
}

/* A stationary stream: no alarm, no switch (the fast version of the
 * benchmark's 2,000,000 samples: bench/guard.sh). */
static void test_stationary_no_alarm(void **state) {
    (void)state;
    sl_gsim_config_t c = sim(150000, 5);
    sl_gsim_result_t r;
    run(&c, &r);
    assert_int_equal(r.alarms, 0);
    assert_int_equal(r.switches, 0);
    assert_true(r.good_versions > 0);
    sl_gsim_free(&r);
}

/* Flipped labels over [60000, 75000): an alarm when it starts, and when it
 * ends an automatic switch back to a version marked good before it; the
 * served accuracy is back within 0.01 of its level at least 5x sooner than
 * without the guard. */
static void test_poison_switches_back(void **state) {
    (void)state;
    sl_gsim_config_t c = sim(120000, 7);
    c.gen.poison_from = 60000;
    c.gen.poison_to = 75000;
    sl_gsim_result_t g, u;
    run(&c, &g);
    c.guarded = 0;
    run(&c, &u);
    assert_true(sl_gsim_count(&g, SL_GUARD_ALARM, 60000, 61000) >= 1);
    assert_true(sl_gsim_count(&g, SL_GUARD_SWITCHED, 75000, 77000) >= 1);
    assert_int_equal(sl_gsim_count(&g, SL_GUARD_ALARM, 0, 60000), 0);
    uint64_t switched_to = 0;
    for (size_t i = 0; i < g.n_events; i++)
        if (g.events[i].kind == SL_GUARD_SWITCHED)
            switched_to = g.events[i].version;
    /* versions are numbered every 100 batches of 64: the one switched to was taken before 60000 */
    assert_true(switched_to > 0 && switched_to * 6400 <= 60000);
    double level = sl_gsim_accuracy(&u, 55000, 60000) - 0.01;
    uint64_t rg = sl_gsim_recovery(&g, 75000, level, 1000);
    uint64_t ru = sl_gsim_recovery(&u, 75000, level, 1000);
    assert_true(rg != UINT64_MAX);
    if (ru != UINT64_MAX && rg * 5 > ru)
        fail_msg("recovery %llu samples with the guard, %llu without", (unsigned long long)rg,
                 (unsigned long long)ru);
    sl_gsim_free(&g);
    sl_gsim_free(&u);
}

/* A sudden concept change at 60000: an alarm, a challenger promoted after
 * it, and the accuracy back no later than without the guard. */
static void test_sudden_drift_promotes(void **state) {
    (void)state;
    sl_gsim_config_t c = sim(140000, 11);
    c.gen.drift_at = 60000;
    sl_gsim_result_t g, u;
    run(&c, &g);
    c.guarded = 0;
    run(&c, &u);
    assert_true(sl_gsim_count(&g, SL_GUARD_ALARM, 60000, 62000) >= 1);
    assert_true(sl_gsim_count(&g, SL_GUARD_PROMOTED, 60000, 140000) >= 1);
    assert_int_equal(sl_gsim_count(&g, SL_GUARD_SWITCHED, 0, 140000), 0);
    double level = sl_gsim_accuracy(&u, 55000, 60000) - 0.01;
    uint64_t rg = sl_gsim_recovery(&g, 60000, level, 1000);
    uint64_t ru = sl_gsim_recovery(&u, 60000, level, 1000);
    if (rg > ru)
        fail_msg("recovery %llu samples with the guard, %llu without", (unsigned long long)rg,
                 (unsigned long long)ru);
    assert_true(g.accuracy >= u.accuracy - 0.002);
    sl_gsim_free(&g);
    sl_gsim_free(&u);
}

/* Save and load everything in the middle of an alarm (the poisoned stretch):
 * the run goes on exactly as the uninterrupted one - same predictions, same
 * events, same final weights. */
static void test_restart_resumes_same_decisions(void **state) {
    (void)state;
    sl_gsim_config_t c = sim(100000, 7);
    c.gen.poison_from = 50000;
    c.gen.poison_to = 60000;
    sl_gsim_result_t a, b;
    run(&c, &a);
    c.restart_at = 800; /* batch 800 = sample 51200, inside the stretch */
    run(&c, &b);
    assert_true(sl_gsim_count(&a, SL_GUARD_ALARM, 50000, 51200) >= 1);
    assert_int_equal(a.samples, b.samples);
    assert_memory_equal(a.correct, b.correct, a.samples);
    assert_int_equal(a.n_events, b.n_events);
    for (size_t i = 0; i < a.n_events; i++) {
        const sl_gsim_event_t *x = &a.events[i], *y = &b.events[i];
        if (x->kind != y->kind || x->sample != y->sample || x->version != y->version ||
            x->challenger != y->challenger)
            fail_msg("event %zu: kind %d at %llu (version %llu) vs kind %d at %llu (version %llu)",
                     i, x->kind, (unsigned long long)x->sample, (unsigned long long)x->version,
                     y->kind, (unsigned long long)y->sample, (unsigned long long)y->version);
    }
    assert_int_equal(a.final_len, b.final_len);
    assert_memory_equal(a.final_state, b.final_state, a.final_len);
    sl_gsim_free(&a);
    sl_gsim_free(&b);
}

/* The same exactness for other heads, sparse input, FTRL and Page-Hinkley:
 * a restart while the guard is busy (an alarm, or promotions after a drift)
 * changes nothing downstream. */
static void test_restart_other_models(void **state) {
    (void)state;
    for (int k = 0; k < 3; k++) {
        sl_gsim_config_t c = sim(40000, 3);
        c.gen.dim = c.model.dim = 16;
        c.gen.drift_at = 20000;
        c.restart_at = 330; /* sample 21120 */
        if (k == 0) {       /* softmax with a hidden layer, Gaussian blobs */
            c.gen.head = c.model.head = SL_HEAD_SOFTMAX;
            c.gen.classes = c.model.classes = 3;
            c.gen.stream = SL_GEN_BLOBS;
            c.model.n_hidden = 1;
            c.model.hidden[0] = 8;
            c.model.activation = SL_ACT_TANH;
        } else if (k == 1) { /* sparse named features, FTRL, a poisoned stretch */
            c.gen.stream = SL_GEN_SPARSE;
            c.gen.vocab = 200;
            c.gen.nnz = 8;
            c.gen.drift_at = 0;
            c.gen.poison_from = 20000;
            c.gen.poison_to = 26000;
            c.optim = sl_optim_config_default(SL_OPTIM_FTRL);
        } else { /* regression, Page-Hinkley */
            c.gen.head = c.model.head = SL_HEAD_LINEAR;
            c.gen.noise = 0.1;
            c.guard.drift = sl_drift_config_default(SL_DRIFT_PH);
        }
        sl_gsim_result_t a, b;
        c.restart_at = 0;
        run(&c, &a);
        c.restart_at = 330;
        run(&c, &b);
        if (a.alarms + a.promotions == 0)
            fail_msg("case %d: the guard did nothing", k);
        assert_int_equal(a.n_events, b.n_events);
        assert_memory_equal(a.correct, b.correct, a.samples);
        assert_int_equal(a.final_len, b.final_len);
        assert_memory_equal(a.final_state, b.final_state, a.final_len);
        sl_gsim_free(&a);
        sl_gsim_free(&b);
    }
}

/* An outside change of the champion (a manual rollback) ends the alarm,
 * drops held versions and rebuilds the challengers from the new champion. */
static void test_champion_replaced(void **state) {
    (void)state;
    sl_learner_t *champ = learner(8, 1);
    sl_guard_config_t c = sl_guard_config_default();
    c.warmup = 64;
    sl_guard_t *g = guard(&c, champ);
    uint64_t s = 9;
    int alarmed = 0;
    for (int k = 0; k < 400 && !alarmed; k++) {
        batch_t b;
        fill(&b, &s, 64, 8);
        if (k >= 200) /* the labels turn over: an alarm */
            for (int i = 0; i < 64; i++)
                b.y[i] = 1 - b.y[i];
        float out[64];
        assert_int_equal(sl_guard_batch(g, champ, &b.in, &b.t, out, NULL), SL_OK);
        const sl_guard_event_t *ev;
        size_t n = sl_guard_events(g, &ev);
        for (size_t i = 0; i < n; i++)
            alarmed |= ev[i].kind == SL_GUARD_ALARM;
        if (sl_guard_decision_pending(g)) {
            char err[256];
            assert_int_equal(sl_guard_decide(g, champ, NULL, NULL, 0, err, sizeof err), SL_OK);
        }
    }
    assert_true(alarmed);
    sl_guard_status_t st;
    sl_guard_status(g, &st);
    assert_int_equal(st.alarm, 1);
    sl_learner_t *other = learner(8, 77); /* "version V", from elsewhere */
    assert_int_equal(sl_learner_copy(champ, other), SL_OK);
    assert_int_equal(sl_guard_champion_replaced(g, champ), SL_OK);
    sl_guard_status(g, &st);
    assert_int_equal(st.alarm, 0);
    assert_int_equal(st.decision_pending, 0);
    assert_int_equal(st.cand[1].window_n, 0);
    /* the step challenger is the new champion with a larger step */
    assert_memory_equal(
        sl_model_params(sl_learner_model((sl_learner_t *)sl_guard_challenger(g, 0))),
        sl_model_params(sl_learner_model(other)), 9 * sizeof(float));
    sl_learner_destroy(other);
    sl_guard_destroy(g);
    sl_learner_destroy(champ);
}

/* --on-alarm pause: the champion stops learning during the poisoned stretch
 * (so it never learns the flipped labels) and trains again once its loss is
 * back; alert changes nothing. */
static void test_pause_and_alert(void **state) {
    (void)state;
    sl_gsim_config_t c = sim(100000, 7);
    c.gen.poison_from = 50000;
    c.gen.poison_to = 60000;
    c.guard.on_alarm = SL_GUARD_PAUSE;
    sl_gsim_result_t p, a;
    run(&c, &p);
    c.guard.on_alarm = SL_GUARD_ALERT;
    run(&c, &a);
    assert_true(sl_gsim_count(&p, SL_GUARD_ALARM, 50000, 51000) >= 1);
    assert_true(sl_gsim_count(&p, SL_GUARD_RESOLVED, 60000, 63000) >= 1);
    assert_int_equal(p.switches, 0);
    /* paused: the served predictions stay right (against the true labels) */
    assert_true(sl_gsim_accuracy(&p, 51000, 60000) > 0.9);
    assert_true(sl_gsim_count(&a, SL_GUARD_ALARM, 50000, 51000) >= 1);
    assert_int_equal(a.switches, 0);
    assert_int_equal(a.kept, 0);
    sl_gsim_free(&p);
    sl_gsim_free(&a);
}

/* Good versions asked for: the newest, and the newest before each of the last two alarms. */
static void test_wanted_versions_and_decide(void **state) {
    (void)state;
    sl_learner_t *champ = learner(8, 1);
    sl_guard_config_t c = sl_guard_config_default();
    sl_guard_t *g = guard(&c, champ);
    uint64_t ids[4];
    assert_int_equal(sl_guard_wanted_versions(g, ids, 4), 0);
    sl_guard_version_published(g, 3, 1);
    sl_guard_version_published(g, 4, 0); /* not good: never asked for */
    sl_guard_version_published(g, 5, 1);
    assert_int_equal(sl_guard_wanted_versions(g, ids, 4), 1);
    assert_int_equal(ids[0], 5);
    /* a version of another architecture is refused, and freed */
    sl_learner_t *other = learner(4, 1);
    uint64_t id = 5;
    char err[256];
    assert_int_equal(sl_guard_decide(g, champ, &other, &id, 1, err, sizeof err), SL_ERR_MISMATCH);
    assert_non_null(strstr(err, "version 5"));
    sl_guard_destroy(g);
    sl_learner_destroy(champ);
}

/* A version held since an earlier decision stays through the next one, even
 * when the caller (asked only for versions it does not hold yet) brings
 * none: it is the way back once the bad stretch ends. */
static void test_held_versions_survive_next_decision(void **state) {
    (void)state;
    sl_learner_t *champ = learner(8, 1);
    sl_guard_config_t c = sl_guard_config_default();
    c.warmup = 64;
    sl_guard_t *g = guard(&c, champ);
    uint64_t s = 9;
    sl_learner_t *v1 = NULL;
    int decided = 0;
    for (int k = 0; k < 400 && !decided; k++) {
        batch_t b;
        fill(&b, &s, 64, 8);
        if (k >= 200)
            for (int i = 0; i < 64; i++)
                b.y[i] = 1 - b.y[i];
        float out[64];
        assert_int_equal(sl_guard_batch(g, champ, &b.in, &b.t, out, NULL), SL_OK);
        if (k == 150) {
            assert_int_equal(sl_guard_mark_snapshot(g, NULL), 1);
            sl_guard_version_published(g, 1, 1);
            v1 = sl_learner_clone(champ);
        }
        if (sl_guard_decision_pending(g)) {
            uint64_t ids[4];
            assert_int_equal(sl_guard_wanted_versions(g, ids, 4), 1);
            assert_int_equal(ids[0], 1);
            char err[256];
            assert_int_equal(sl_guard_decide(g, champ, &v1, ids, 1, err, sizeof err), SL_OK);
            decided = 1;
        }
    }
    assert_true(decided);
    sl_guard_status_t st;
    sl_guard_status(g, &st);
    assert_int_equal(st.alarm, 1);
    assert_string_equal(st.cand[st.n_candidates - 1].name, "version 1");
    uint64_t ids[4];
    assert_int_equal(sl_guard_wanted_versions(g, ids, 4), 0); /* held already */
    char err[256];
    assert_int_equal(sl_guard_decide(g, champ, NULL, NULL, 0, err, sizeof err), SL_OK);
    sl_guard_status(g, &st);
    assert_string_equal(st.cand[st.n_candidates - 1].name, "version 1");
    sl_guard_destroy(g);
    sl_learner_destroy(champ);
}

/* Corrupt, truncated and mismatched guard blobs are refused with a reason. */
static void test_bad_blobs(void **state) {
    (void)state;
    sl_learner_t *champ = learner(8, 1);
    sl_guard_config_t c = sl_guard_config_default();
    sl_guard_t *g = guard(&c, champ);
    uint64_t s = 9;
    for (int k = 0; k < 50; k++) {
        batch_t b;
        fill(&b, &s, 64, 8);
        float out[64];
        assert_int_equal(sl_guard_batch(g, champ, &b.in, &b.t, out, NULL), SL_OK);
    }
    uint8_t *buf;
    size_t len;
    assert_int_equal(sl_guard_save(g, &buf, &len), SL_OK);
    char err[256];
    sl_err_t e;
    sl_guard_t *back = sl_guard_load(buf, len, &c, champ, &e, err, sizeof err);
    if (!back)
        fail_msg("sl_guard_load: %s", err);
    uint8_t *again;
    size_t again_len;
    assert_int_equal(sl_guard_save(back, &again, &again_len), SL_OK);
    assert_int_equal(again_len, len); /* a loaded guard saves the same bytes */
    assert_memory_equal(again, buf, len);
    free(again);
    sl_guard_destroy(back);
    sl_guard_config_t other = c;
    other.window = 2000;
    assert_null(sl_guard_load(buf, len, &other, champ, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_MISMATCH);
    assert_non_null(strstr(err, "--guard-window"));
    other = c;
    other.drift = sl_drift_config_default(SL_DRIFT_PH);
    assert_null(sl_guard_load(buf, len, &other, champ, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_MISMATCH);
    buf[len / 3] ^= 0x10;
    assert_null(sl_guard_load(buf, len, &c, champ, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_CHECKSUM);
    buf[len / 3] ^= 0x10;
    assert_null(sl_guard_load(buf, len / 2, &c, champ, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_TRUNCATED);
    sl_learner_t *wide = learner(16, 1);
    assert_null(sl_guard_load(buf, len, &c, wide, &e, err, sizeof err));
    assert_int_not_equal(e, SL_OK);
    free(buf);
    sl_learner_destroy(wide);
    sl_guard_destroy(g);
    sl_learner_destroy(champ);
}

/* The held samples: bounded by count and bytes, numbered, dense and sparse
 * rows read back as they went in, and restored exactly. */
static void test_holdbuf(void **state) {
    (void)state;
    sl_holdbuf_t *h = sl_holdbuf_new(4, 3, 4096);
    assert_non_null(h);
    float dense[8] = {1, 0, 2, 0, 0, 3, 0, 4};
    sl_input_t d = {.n = 2, .dim = 4, .dense = dense};
    size_t ptr[2] = {0, 2};
    uint32_t col[2] = {3, 1};
    float val[2] = {5, 6};
    sl_input_t sp = {.n = 1, .dim = 4, .row_ptr = ptr, .col = col, .val = val};
    sl_holdbuf_push(h, &d, 0, 1, 1);
    sl_holdbuf_push(h, &d, 1, 0, 2);
    sl_holdbuf_push(h, &sp, 0, 1, 3);
    sl_holdbuf_push(h, &sp, 0, 0, 4); /* the first goes */
    assert_int_equal(sl_holdbuf_pushed(h), 4);
    assert_int_equal(sl_holdbuf_held(h), 3);
    sl_input_t x;
    sl_targets_t t;
    const uint64_t *seqs;
    assert_int_equal(sl_holdbuf_view(h, 0, 10, &x, &t, &seqs), 3);
    assert_int_equal(seqs[0], 1);
    assert_int_equal(x.row_ptr[1] - x.row_ptr[0], 4); /* dense rows keep every value */
    assert_true(x.val[1] == 3 && x.col[1] == 1 && t.w[0] == 2);
    assert_true(x.col[4] == 3 && x.val[4] == 5 && x.col[5] == 1 && t.y[1] == 1);
    sl_blob_writer_t w;
    sl_blob_begin(&w, "TEST", 1);
    sl_holdbuf_save(h, &w);
    uint8_t *buf;
    size_t len;
    assert_int_equal(sl_blob_finish(&w, &buf, &len), SL_OK);
    sl_blob_reader_t r;
    assert_int_equal(sl_blob_open(&r, buf, len, "TEST", 1, "test", NULL, 0), SL_OK);
    sl_holdbuf_t *back = sl_holdbuf_new(4, 3, 4096);
    sl_holdbuf_load(back, &r);
    assert_int_equal(sl_blob_done(&r), SL_OK);
    sl_input_t x2;
    sl_targets_t t2;
    assert_int_equal(sl_holdbuf_view(back, 2, 4, &x2, &t2, &seqs), 2);
    assert_int_equal(seqs[0], 2);
    assert_true(x2.col[0] == 3 && x2.val[1] == 6 && t2.w[1] == 4);
    free(buf);
    sl_holdbuf_destroy(back);
    sl_holdbuf_destroy(h);
    sl_holdbuf_destroy(NULL);
}

/* Random dense, sparse and empty rows through a small byte budget: what is
 * held is always the newest samples, read back exactly, and a saved and
 * restored buffer keeps doing the same as the original. */
static void test_holdbuf_stress(void **state) {
    (void)state;
    enum { DIM = 16, N = 4000 };
    static float vals[N][DIM];
    static uint32_t cols[N][DIM];
    static uint32_t nnz[N];
    static int dense[N];
    sl_holdbuf_t *h = sl_holdbuf_new(DIM, 50, 8 * 200), *copy = NULL;
    uint64_t st = 12345;
    for (int i = 0; i < N; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        dense[i] = (st >> 60) < 4;
        nnz[i] = dense[i] ? DIM : (uint32_t)((st >> 20) % (DIM + 1));
        for (uint32_t j = 0; j < nnz[i]; j++) {
            cols[i][j] = dense[i] ? j : (uint32_t)((st >> (j + 3)) % DIM);
            vals[i][j] = (float)(i * 100 + j);
        }
        size_t ptr[2] = {0, nnz[i]};
        sl_input_t x =
            dense[i]
                ? (sl_input_t){.n = 1, .dim = DIM, .dense = vals[i]}
                : (sl_input_t){.n = 1, .dim = DIM, .row_ptr = ptr, .col = cols[i], .val = vals[i]};
        sl_holdbuf_push(h, &x, 0, (float)(i % 2), 1);
        if (copy)
            sl_holdbuf_push(copy, &x, 0, (float)(i % 2), 1);
        sl_holdbuf_t *both[2] = {h, copy};
        for (int b = 0; b < (copy ? 2 : 1); b++) {
            sl_input_t v;
            sl_targets_t t;
            const uint64_t *seqs;
            long rows = sl_holdbuf_view(both[b], 0, (uint64_t)i + 1, &v, &t, &seqs);
            assert_true(rows >= 1 && (size_t)rows <= sl_holdbuf_held(both[b]));
            /* a fair share of the budget: at least 6 rows of at most 16 of its 200 entries */
            assert_true(sl_holdbuf_held(both[b]) >= (size_t)(i < 5 ? i + 1 : 6));
            assert_int_equal(seqs[rows - 1], i); /* the newest is always there */
            for (long r = 0; r < rows; r++) {
                uint64_t q = seqs[r];
                assert_true(r == 0 || seqs[r - 1] < q);
                assert_int_equal(v.row_ptr[r + 1] - v.row_ptr[r], nnz[q]);
                for (uint32_t j = 0; j < nnz[q]; j++) {
                    assert_true(v.col[v.row_ptr[r] + j] == cols[q][j]);
                    assert_true(v.val[v.row_ptr[r] + j] == vals[q][j]);
                }
                assert_true(t.y[r] == (float)(q % 2));
            }
        }
        if (i == N / 2) { /* from here on a restored copy runs beside it */
            sl_blob_writer_t w;
            sl_blob_begin(&w, "TEST", 1);
            sl_holdbuf_save(h, &w);
            uint8_t *buf;
            size_t len;
            assert_int_equal(sl_blob_finish(&w, &buf, &len), SL_OK);
            sl_blob_reader_t rd;
            assert_int_equal(sl_blob_open(&rd, buf, len, "TEST", 1, "test", NULL, 0), SL_OK);
            copy = sl_holdbuf_new(DIM, 50, 8 * 200);
            sl_holdbuf_load(copy, &rd);
            assert_int_equal(sl_blob_done(&rd), SL_OK);
            free(buf);
        }
        if (copy)
            assert_int_equal(sl_holdbuf_held(copy), sl_holdbuf_held(h));
    }
    sl_holdbuf_destroy(h);
    sl_holdbuf_destroy(copy);
}

/* A scaled champion (online scaling, the auto optimizer; for a linear head
 * also target units, set up at its first labelled batch): a step challenger
 * with factor 1 made before any training learns bit for bit as the champion,
 * scaler included; a version loaded from the champion's blob, and the
 * guard's forward-only scoring, predict what the champion predicts; a fresh
 * challenger scales too; the guard's saved state brings the challenger back
 * with its scaler. */
static void test_scaled_champion(void **state) {
    (void)state;
    for (int linear = 0; linear <= 1; linear++) {
        sl_model_config_t m = logistic(8);
        if (linear)
            m.head = SL_HEAD_LINEAR;
        sl_optim_config_t o = sl_optim_config_default(SL_OPTIM_AUTO);
        char err[256];
        sl_learner_t *champ = sl_learner_new(&m, &o, 5, 0, err, sizeof err);
        assert_non_null(champ);
        assert_int_equal(sl_learner_set_scale(champ, SL_SCALE_AUTO, err, sizeof err), SL_OK);
        sl_guard_config_t c = sl_guard_config_default();
        c.drift = sl_drift_config_default(SL_DRIFT_OFF);
        sl_guard_config_challengers(&c, 2);
        c.challengers[0] = (sl_challenger_spec_t){.kind = SL_CHALLENGER_STEP, .step_factor = 1};
        c.challengers[1] = (sl_challenger_spec_t){.kind = SL_CHALLENGER_FRESH};
        c.seed = 5;
        c.warmup = UINT64_MAX;
        sl_guard_t *g = guard(&c, champ);
        uint64_t s = 4;
        for (int k = 0; k < 60; k++) {
            batch_t b;
            fill(&b, &s, 64, 8);
            for (int i = 0; i < 64 * 8; i++)
                b.x[i] = b.x[i] * 40 + 7; /* features far from standardised */
            if (linear)
                for (int i = 0; i < 64; i++)
                    b.y[i] = 300 * b.y[i] + 20;
            float out[64];
            assert_int_equal(sl_guard_batch(g, champ, &b.in, &b.t, out, NULL), SL_OK);
        }
        const sl_learner_t *step = sl_guard_challenger(g, 0), *fresh = sl_guard_challenger(g, 1);
        size_t np = sl_model_n_params(sl_learner_model(champ));
        assert_memory_equal(sl_model_params(sl_learner_model((sl_learner_t *)step)),
                            sl_model_params(sl_learner_model(champ)), np * sizeof(float));
        const float *cs, *cm, *ss, *sm, *fs, *fm;
        assert_int_equal(sl_learner_input_transform(champ, &cs, &cm), 1);
        assert_int_equal(sl_learner_input_transform(step, &ss, &sm), 1);
        assert_int_equal(sl_learner_input_transform(fresh, &fs, &fm), 1);
        assert_memory_equal(cs, ss, 8 * sizeof(float));
        assert_memory_equal(cm, sm, 8 * sizeof(float));
        assert_true(cm[0] < 0.5f); /* the features' spread of about 23 is scaled away */

        batch_t e;
        fill(&e, &s, 64, 8);
        for (int i = 0; i < 64 * 8; i++)
            e.x[i] = e.x[i] * 40 + 7;
        float want[64], got[64];
        assert_int_equal(sl_learner_predict(champ, &e.in, want), SL_OK);
        uint8_t *blob;
        size_t len;
        assert_int_equal(sl_learner_save(champ, &blob, &len), SL_OK);
        sl_learner_t *version = sl_learner_load(blob, len, &m, NULL, err, sizeof err);
        free(blob);
        assert_non_null(version);
        assert_int_equal(sl_learner_predict(version, &e.in, got), SL_OK);
        assert_memory_equal(want, got, sizeof want);
        sl_score_scratch_t scratch = {0};
        double loss[64], wrong[64];
        assert_int_equal(sl_score_rows(version, &e.in, &e.t, &scratch, got, loss, wrong), SL_OK);
        assert_memory_equal(want, got, sizeof want);
        sl_score_scratch_free(&scratch);
        sl_learner_destroy(version);

        uint8_t *gbuf;
        size_t glen;
        assert_int_equal(sl_guard_save(g, &gbuf, &glen), SL_OK);
        sl_guard_t *back = sl_guard_load(gbuf, glen, &c, champ, NULL, err, sizeof err);
        free(gbuf);
        assert_non_null(back);
        assert_int_equal(sl_learner_input_transform(sl_guard_challenger(back, 0), &ss, &sm), 1);
        assert_memory_equal(cm, sm, 8 * sizeof(float));
        sl_guard_destroy(back);
        sl_guard_destroy(g);
        sl_learner_destroy(champ);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_step_config),
        cmocka_unit_test(test_champion_learns_as_without_guard),
        cmocka_unit_test(test_holdbuf),
        cmocka_unit_test(test_holdbuf_stress),
        cmocka_unit_test(test_wanted_versions_and_decide),
        cmocka_unit_test(test_held_versions_survive_next_decision),
        cmocka_unit_test(test_bad_blobs),
        cmocka_unit_test(test_stationary_no_alarm),
        cmocka_unit_test(test_poison_switches_back),
        cmocka_unit_test(test_sudden_drift_promotes),
        cmocka_unit_test(test_restart_resumes_same_decisions),
        cmocka_unit_test(test_pause_and_alert),
        cmocka_unit_test(test_restart_other_models),
        cmocka_unit_test(test_champion_replaced),
        cmocka_unit_test(test_scaled_champion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
