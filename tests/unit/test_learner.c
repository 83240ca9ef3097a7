/* test_learner.c - test-then-train semantics, counters, refusal and sparse input through the
 * learner. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/learner.h"
#include "model/linalg.h"

static sl_model_config_t mcfg(sl_head_t head, uint32_t dim, uint32_t hidden) {
    sl_model_config_t c = {.head = head, .dim = dim, .classes = 3, .activation = SL_ACT_TANH};
    if (hidden) {
        c.n_hidden = 1;
        c.hidden[0] = hidden;
    }
    return c;
}

static sl_learner_t *make(sl_head_t head, uint32_t dim, uint32_t hidden, sl_optim_config_t oc) {
    sl_model_config_t c = mcfg(head, dim, hidden);
    char err[256];
    sl_learner_t *l = sl_learner_new(&c, &oc, 1, 0, err, sizeof(err));
    if (!l)
        fail_msg("sl_learner_new: %s", err);
    return l;
}

static void set_params(sl_learner_t *l, const float *p, size_t n) {
    sl_model_t *m = sl_learner_model(l);
    assert_int_equal(sl_model_n_params(m), n);
    memcpy(sl_model_params(m), p, n * sizeof(float));
    sl_learner_params_changed(l);
}

/* Linear model z = 1*x0 - 2*x1 + 0.5, SGD lr 0.1: the step by hand. */
static void test_predict_before_step_and_sgd_update(void **state) {
    (void)state;
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    oc.lr = 0.1;
    sl_learner_t *l = make(SL_HEAD_LINEAR, 2, 0, oc);
    float p0[] = {1, -2, 0.5f};
    set_params(l, p0, 3);
    float x[] = {1, 1, 2, 0, 0, 3};
    float y[] = {0, 1, 7}, w[] = {1, 3, 1};
    uint8_t lab[] = {1, 1, 0};
    sl_input_t in = {.n = 3, .dim = 2, .dense = x};
    sl_targets_t t = {y, w, lab};
    float out[3];
    sl_batch_result_t r;
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK);
    /* Predictions with the initial weights: -0.5, 2.5, -5.5. */
    assert_true(out[0] == -0.5f && out[1] == 2.5f && out[2] == -5.5f);
    assert_int_equal(r.n_labelled, 2);
    assert_int_equal(r.stepped, 1);
    assert_int_equal(r.refused, 0);
    /* loss = (1 * 0.25 + 3 * 2.25) / 4 */
    assert_true(fabs(r.loss - 7.0 / 4) < 1e-12);
    /* dL/dz_i = 2 (z_i - y_i) w_i / 4: -0.25, 2.25; grad W = sum dz_i x_i. */
    double g0 = -0.25 * 1 + 2.25 * 2, g1 = -0.25 * 1 + 2.25 * 0, gb = -0.25 + 2.25;
    const float *p = sl_model_params(sl_learner_model(l));
    assert_true(fabs(p[0] - (1 - 0.1 * g0)) < 1e-6);
    assert_true(fabs(p[1] - (-2 - 0.1 * g1)) < 1e-6);
    assert_true(fabs(p[2] - (0.5 - 0.1 * gb)) < 1e-6);
    /* The next batch's prediction sees the new weights. */
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK);
    assert_true(fabs(out[0] - (p0[0] - 0.1 * g0 + p0[1] - 0.1 * g1 + p0[2] - 0.1 * gb)) < 1e-5);
    sl_learner_counters_t c = sl_learner_counters(l);
    assert_int_equal(c.step, 2);
    assert_int_equal(c.samples, 4);
    assert_int_equal(c.predictions, 6);
    assert_int_equal(c.refused_steps, 0);
    sl_learner_destroy(l);
}

static void test_unlabelled_batch_changes_nothing(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_SOFTMAX, 3, 4, sl_optim_config_default(SL_OPTIM_ADAM));
    sl_model_t *m = sl_learner_model(l);
    size_t np = sl_model_n_params(m);
    float *before = malloc(np * sizeof(float));
    memcpy(before, sl_model_params(m), np * sizeof(float));
    float x[6] = {1, 2, 3, 4, 5, 6}, y[2] = {0, 1}, w[2] = {1, 1}, out[6];
    uint8_t lab[2] = {0, 0};
    sl_input_t in = {.n = 2, .dim = 3, .dense = x};
    sl_targets_t t = {y, w, lab};
    sl_batch_result_t r;
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK);
    assert_int_equal(r.stepped, 0);
    assert_int_equal(r.n_labelled, 0);
    assert_true(isnan(r.loss));
    assert_true(fabsf(out[0] + out[1] + out[2] - 1) < 1e-6f);
    assert_memory_equal(sl_model_params(m), before, np * sizeof(float));
    sl_optim_t *o = sl_learner_optim(l);
    assert_int_equal(sl_optim_steps(o), 0);
    for (size_t i = 0; i < np; i++)
        assert_true(sl_optim_state(o, 0)[i] == 0.0f && sl_optim_state(o, 1)[i] == 0.0f);
    sl_learner_counters_t c = sl_learner_counters(l);
    assert_int_equal(c.step, 0);
    assert_int_equal(c.predictions, 2);
    assert_int_equal(sl_metrics_total(sl_learner_metrics(l)).count, 0);
    /* One labelled sample: now it steps. */
    lab[1] = 1;
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK);
    assert_int_equal(r.stepped, 1);
    assert_memory_not_equal(sl_model_params(m), before, np * sizeof(float));
    assert_int_equal(sl_metrics_total(sl_learner_metrics(l)).count, 1);
    free(before);
    sl_learner_destroy(l);
}

/* Accuracy is measured on the predictions made before the step. */
static void test_metrics_use_pre_step_outputs(void **state) {
    (void)state;
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    oc.lr = 100; /* a step this big would flip the predictions */
    sl_learner_t *l = make(SL_HEAD_LOGISTIC, 1, 0, oc);
    float p0[] = {1, 0}; /* P(y=1) = sigmoid(x) */
    set_params(l, p0, 2);
    float x[] = {2, -2, 3, -1}, y[] = {1, 0, 0, 1}, w[] = {1, 1, 2, 4}, out[4];
    uint8_t lab[] = {1, 1, 1, 1};
    sl_input_t in = {.n = 4, .dim = 1, .dense = x};
    sl_targets_t t = {y, w, lab};
    sl_batch_result_t r;
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK);
    sl_metrics_view_t v = sl_metrics_total(sl_learner_metrics(l));
    assert_int_equal(v.count, 4);
    assert_true(fabs(v.accuracy - 2.0 / 8) < 1e-12); /* rows 0 and 1 right */
    double want = 0;
    double z[] = {2, -2, 3, -1};
    for (int i = 0; i < 4; i++)
        want += w[i] * (log1p(exp(-z[i])) + (1 - y[i]) * z[i]);
    assert_true(fabs(v.loss - want / 8) < 1e-9);
    assert_true(fabs(r.loss - want / 8) < 1e-9);
    sl_learner_destroy(l);
}

static void test_bad_batches_change_nothing(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_LOGISTIC, 2, 0, sl_optim_config_default(SL_OPTIM_ADAM));
    float x[] = {1, 2}, y[] = {2}, w[] = {1}, out[1];
    uint8_t lab[] = {1};
    sl_targets_t t = {y, w, lab};
    sl_input_t wrong = {.n = 1, .dim = 3, .dense = x};
    assert_int_equal(sl_learner_batch(l, &wrong, &t, out, NULL), SL_ERR_MISMATCH);
    sl_input_t in = {.n = 1, .dim = 2, .dense = x};
    assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_ERR_RANGE);
    y[0] = 1;
    w[0] = 0;
    assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_ERR_INVAL);
    sl_learner_counters_t c = sl_learner_counters(l);
    assert_int_equal(c.predictions, 0);
    assert_int_equal(c.step, 0);
    assert_int_equal(sl_metrics_total(sl_learner_metrics(l)).count, 0);
    sl_learner_destroy(l);

    l = make(SL_HEAD_SOFTMAX, 2, 0, sl_optim_config_default(SL_OPTIM_SGD));
    float ys[] = {3}, ws[] = {1}, outs[3];
    sl_targets_t ts = {ys, ws, lab};
    assert_int_equal(sl_learner_batch(l, &in, &ts, outs, NULL), SL_ERR_RANGE);
    ys[0] = 1.5f;
    assert_int_equal(sl_learner_batch(l, &in, &ts, outs, NULL), SL_ERR_RANGE);
    sl_learner_destroy(l);
}

static void test_nonfinite_step_refused(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_LINEAR, 2, 3, sl_optim_config_default(SL_OPTIM_ADAM));
    sl_model_t *m = sl_learner_model(l);
    sl_optim_t *o = sl_learner_optim(l);
    size_t np = sl_model_n_params(m);
    float x[] = {0.5f, -0.25f}, y[] = {0.1f}, w[] = {1}, out[1];
    uint8_t lab[] = {1};
    sl_input_t in = {.n = 1, .dim = 2, .dense = x};
    sl_targets_t t = {y, w, lab};
    sl_batch_result_t r;
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK); /* state now non-zero */
    assert_int_equal(r.stepped, 1);
    /* A label of 1e30: the squared gradient overflows Adam's exp_avg_sq. */
    y[0] = 1e30f;
    float *saved = malloc(3 * np * sizeof(float));
    memcpy(saved, sl_model_params(m), np * sizeof(float));
    memcpy(saved + np, sl_optim_state(o, 0), np * sizeof(float));
    memcpy(saved + 2 * np, sl_optim_state(o, 1), np * sizeof(float));
    assert_int_equal(sl_learner_batch(l, &in, &t, out, &r), SL_OK);
    assert_int_equal(r.refused, 1);
    assert_int_equal(r.stepped, 0);
    assert_memory_equal(sl_model_params(m), saved, np * sizeof(float));
    assert_memory_equal(sl_optim_state(o, 0), saved + np, np * sizeof(float));
    assert_memory_equal(sl_optim_state(o, 1), saved + 2 * np, np * sizeof(float));
    sl_learner_counters_t c = sl_learner_counters(l);
    assert_int_equal(c.refused_steps, 1);
    assert_int_equal(c.step, 1);
    assert_int_equal(c.samples, 1);
    assert_int_equal(c.predictions, 2);
    assert_int_equal(sl_optim_steps(o), 1);
    free(saved);
    sl_learner_destroy(l);
}

static void test_ftrl_needs_no_hidden_layers(void **state) {
    (void)state;
    sl_model_config_t c = mcfg(SL_HEAD_LOGISTIC, 4, 3);
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_FTRL);
    char err[256];
    assert_null(sl_learner_new(&c, &oc, 1, 0, err, sizeof(err)));
    assert_string_equal(err, "--optimizer ftrl: supports models without hidden layers");
    c.n_hidden = 0;
    sl_learner_t *l = sl_learner_new(&c, &oc, 1, 0, err, sizeof(err));
    assert_non_null(l);
    /* FTRL starts from zero weights (z = n = 0). */
    const float *p = sl_model_params(sl_learner_model(l));
    for (size_t i = 0; i < sl_model_n_params(sl_learner_model(l)); i++)
        assert_true(p[i] == 0.0f);
    sl_learner_destroy(l);
}

/* Builds one batch both ways: CSR with a repeated column and its dense twin. */
typedef struct twin {
    size_t row_ptr[5];
    uint32_t col[8];
    float val[8], dense[4 * 10], y[4], w[4];
    uint8_t lab[4];
} twin_t;

static void make_twin(twin_t *b, int seed, sl_head_t head) {
    memset(b, 0, sizeof(*b));
    size_t e = 0;
    for (int i = 0; i < 4; i++) {
        b->row_ptr[i] = e;
        for (int k = 0; k < 2; k++) {
            uint32_t c = (uint32_t)((seed * 7 + i * 3 + k * 5) % 10);
            if (i == 2 && k == 1)
                c = b->col[e - 1]; /* repeated column */
            b->col[e] = c;
            b->val[e] = (float)(((seed + i + k) % 5) - 2) * 0.5f + 0.25f;
            b->dense[i * 10 + c] += b->val[e];
            e++;
        }
        b->y[i] = head == SL_HEAD_SOFTMAX ? (float)((seed + i) % 3) : (float)((seed + i) % 2);
        b->w[i] = 1.0f + (float)(i % 2);
        b->lab[i] = i != 3;
    }
    b->row_ptr[4] = e;
}

static void run_twins(sl_head_t head, sl_optim_config_t oc) {
    sl_learner_t *ld = make(head, 10, 0, oc), *ls = make(head, 10, 0, oc);
    size_t np = sl_model_n_params(sl_learner_model(ld));
    for (int b = 0; b < 6; b++) {
        twin_t tw;
        make_twin(&tw, b, head);
        sl_input_t xd = {.n = 4, .dim = 10, .dense = tw.dense};
        sl_input_t xs = {.n = 4, .dim = 10, .row_ptr = tw.row_ptr, .col = tw.col, .val = tw.val};
        sl_targets_t t = {tw.y, tw.w, tw.lab};
        float od[12], os[12];
        assert_int_equal(sl_learner_batch(ld, &xd, &t, od, NULL), SL_OK);
        assert_int_equal(sl_learner_batch(ls, &xs, &t, os, NULL), SL_OK);
        for (int i = 0; i < 4; i++)
            assert_true(fabsf(od[i] - os[i]) < 1e-5f);
    }
    const float *pd = sl_model_params(sl_learner_model(ld));
    const float *ps = sl_model_params(sl_learner_model(ls));
    for (size_t i = 0; i < np; i++)
        assert_true(fabsf(pd[i] - ps[i]) <= 1e-5f * (1 + fabsf(pd[i])));
    sl_learner_destroy(ld);
    sl_learner_destroy(ls);
}

static void test_sparse_batches_train_like_dense(void **state) {
    (void)state;
    run_twins(SL_HEAD_LOGISTIC, sl_optim_config_default(SL_OPTIM_FTRL));
    run_twins(SL_HEAD_SOFTMAX, sl_optim_config_default(SL_OPTIM_ADAM));
    run_twins(SL_HEAD_LOGISTIC, sl_optim_config_default(SL_OPTIM_SGD));
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    oc.momentum = 0.9;
    run_twins(SL_HEAD_LINEAR, oc);
}

/* FTRL on a sparse batch leaves every weight of an unused column untouched. */
static void test_ftrl_sparse_touches_only_used_columns(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_SOFTMAX, 10, 0, sl_optim_config_default(SL_OPTIM_FTRL));
    sl_model_t *m = sl_learner_model(l);
    float *p = sl_model_params(m);
    for (size_t i = 0; i < sl_model_n_params(m); i++)
        p[i] = 0.01f * (float)i;
    sl_learner_params_changed(l);
    size_t row_ptr[] = {0, 2};
    uint32_t col[] = {3, 7};
    float val[] = {1, -1}, y[] = {2}, w[] = {1}, out[3];
    uint8_t lab[] = {1};
    sl_input_t xs = {.n = 1, .dim = 10, .row_ptr = row_ptr, .col = col, .val = val};
    sl_targets_t t = {y, w, lab};
    float before[33];
    memcpy(before, p, sizeof(before));
    sl_batch_result_t r;
    assert_int_equal(sl_learner_batch(l, &xs, &t, out, &r), SL_OK);
    assert_int_equal(r.stepped, 1);
    for (uint32_t o = 0; o < 3; o++) {
        for (uint32_t c = 0; c < 10; c++) {
            size_t i = o * 10 + c;
            if (c == 3 || c == 7)
                assert_true(p[i] != before[i]);
            else
                assert_true(p[i] == before[i]);
        }
        assert_true(p[30 + o] != before[30 + o]); /* biases always get a gradient */
    }
    sl_learner_destroy(l);
}

/* A clone saves to the same bytes as its original and trains on identically;
 * copying between learners of different shapes is refused. */
static void test_clone_and_copy(void **state) {
    (void)state;
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    sl_learner_t *a = make(SL_HEAD_SOFTMAX, 10, 4, oc);
    twin_t tw;
    float out[4 * 3];
    sl_batch_result_t res;
    for (int b = 0; b < 3; b++) {
        make_twin(&tw, b, SL_HEAD_SOFTMAX);
        sl_input_t x = {.n = 4, .dim = 10, .dense = tw.dense};
        sl_targets_t t = {tw.y, tw.w, tw.lab};
        assert_int_equal(sl_learner_batch(a, &x, &t, out, &res), SL_OK);
    }
    sl_learner_t *c = sl_learner_clone(a);
    assert_non_null(c);
    uint8_t *ba, *bc;
    size_t la, lc;
    assert_int_equal(sl_learner_save(a, &ba, &la), SL_OK);
    assert_int_equal(sl_learner_save(c, &bc, &lc), SL_OK);
    assert_int_equal(la, lc);
    assert_memory_equal(ba, bc, la);
    free(ba);
    free(bc);

    make_twin(&tw, 7, SL_HEAD_SOFTMAX);
    sl_input_t x = {.n = 4, .dim = 10, .dense = tw.dense};
    sl_targets_t t = {tw.y, tw.w, tw.lab};
    assert_int_equal(sl_learner_batch(a, &x, &t, out, &res), SL_OK);
    assert_int_equal(sl_learner_batch(c, &x, &t, out, &res), SL_OK);
    size_t np = sl_model_n_params(sl_learner_model(a));
    assert_memory_equal(sl_model_params(sl_learner_model(a)), sl_model_params(sl_learner_model(c)),
                        np * sizeof(float));

    /* copy back over a diverged learner restores it exactly */
    assert_int_equal(sl_learner_batch(c, &x, &t, out, &res), SL_OK);
    assert_int_equal(sl_learner_copy(c, a), SL_OK);
    assert_memory_equal(sl_model_params(sl_learner_model(a)), sl_model_params(sl_learner_model(c)),
                        np * sizeof(float));
    assert_int_equal(sl_learner_counters(c).step, sl_learner_counters(a).step);

    sl_learner_t *other = make(SL_HEAD_SOFTMAX, 10, 5, oc);
    float before = sl_model_params(sl_learner_model(other))[0];
    assert_int_equal(sl_learner_copy(other, a), SL_ERR_MISMATCH);
    assert_true(sl_model_params(sl_learner_model(other))[0] == before);
    sl_learner_destroy(other);
    sl_learner_destroy(c);
    sl_learner_destroy(a);
}

static void set_scale(sl_learner_t *l, sl_scale_mode_t mode) {
    char err[256];
    if (sl_learner_set_scale(l, mode, err, sizeof err) != SL_OK)
        fail_msg("sl_learner_set_scale: %s", err);
}

/* Dense rows and their CSR twins train alike with scaling on: a centring
 * (standard) transform stays sparse through layer 0's bias and a dense
 * correction of W0's gradient; maxabs only multiplies. */
static void run_twins_scaled(sl_head_t head, uint32_t hidden, sl_optim_config_t oc,
                             sl_scale_mode_t mode) {
    sl_learner_t *ld = make(head, 10, hidden, oc), *ls = make(head, 10, hidden, oc);
    set_scale(ld, mode);
    set_scale(ls, mode);
    size_t np = sl_model_n_params(sl_learner_model(ld));
    for (int b = 0; b < 8; b++) {
        twin_t tw;
        make_twin(&tw, b, head);
        if (head == SL_HEAD_LINEAR)
            for (int i = 0; i < 4; i++)
                tw.y[i] = 100 + 20 * tw.y[i] + (float)i;
        sl_input_t xd = {.n = 4, .dim = 10, .dense = tw.dense};
        sl_input_t xs = {.n = 4, .dim = 10, .row_ptr = tw.row_ptr, .col = tw.col, .val = tw.val};
        sl_targets_t t = {tw.y, tw.w, tw.lab};
        float od[12], os[12];
        assert_int_equal(sl_learner_batch(ld, &xd, &t, od, NULL), SL_OK);
        assert_int_equal(sl_learner_batch(ls, &xs, &t, os, NULL), SL_OK);
        for (int i = 0; i < 4 * (int)sl_model_out_dim(sl_learner_model(ld)); i++)
            if (!(fabsf(od[i] - os[i]) <= 1e-4f * (1 + fabsf(od[i]))))
                fail_msg("batch %d output %d: dense %.9g, sparse %.9g", b, i, od[i], os[i]);
    }
    const float *pd = sl_model_params(sl_learner_model(ld));
    const float *ps = sl_model_params(sl_learner_model(ls));
    for (size_t i = 0; i < np; i++)
        if (!(fabsf(pd[i] - ps[i]) <= 1e-4f * (1 + fabsf(pd[i]))))
            fail_msg("param %zu: dense %.9g, sparse %.9g", i, pd[i], ps[i]);
    sl_learner_destroy(ld);
    sl_learner_destroy(ls);
}

static void test_scaled_sparse_trains_like_dense(void **state) {
    (void)state;
    sl_optim_config_t au = sl_optim_config_default(SL_OPTIM_AUTO);
    run_twins_scaled(SL_HEAD_LOGISTIC, 0, au, SL_SCALE_STANDARD);
    run_twins_scaled(SL_HEAD_SOFTMAX, 4, au, SL_SCALE_STANDARD);
    run_twins_scaled(SL_HEAD_LINEAR, 0, au, SL_SCALE_STANDARD);
    run_twins_scaled(SL_HEAD_SOFTMAX, 0, au, SL_SCALE_MAXABS);
    run_twins_scaled(SL_HEAD_LINEAR, 3, sl_optim_config_default(SL_OPTIM_ADAM), SL_SCALE_MAXABS);
    run_twins_scaled(SL_HEAD_LOGISTIC, 0, sl_optim_config_default(SL_OPTIM_FTRL),
                     SL_SCALE_STANDARD);
    run_twins_scaled(SL_HEAD_LINEAR, 0, sl_optim_config_default(SL_OPTIM_FTRL), SL_SCALE_MAXABS);
    sl_optim_config_t sgd = sl_optim_config_default(SL_OPTIM_SGD);
    run_twins_scaled(SL_HEAD_LINEAR, 0, sgd, SL_SCALE_STANDARD);
}

static float sigmoidf_(float z) {
    return (float)(1.0 / (1.0 + exp(-(double)z)));
}

/* Test then train, scaled: the first labelled batch is predicted with the
 * statistics of its own features; every later batch with the transform of
 * the batches before it (what sl_learner_input_transform says before the
 * call). Weights held still (SGD, lr 0) so only the scaling moves. */
static void test_scaled_predictions_use_pre_batch_statistics(void **state) {
    (void)state;
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    oc.lr = 0;
    sl_learner_t *l = make(SL_HEAD_LOGISTIC, 2, 0, oc);
    float p0[] = {0.5f, -1.5f, 0.25f};
    set_params(l, p0, 3);
    set_scale(l, SL_SCALE_STANDARD);
    const float *shift, *mult;
    assert_int_equal(sl_learner_input_transform(l, &shift, &mult), 1);
    assert_true(shift[0] == 0 && mult[0] == 1); /* identity before any statistics */
    float x1[] = {1, 100, 3, 300, 5, 200}, y[] = {1, 0, 1}, w[] = {1, 1, 1}, out[3];
    uint8_t lab[] = {1, 1, 0};
    sl_input_t in = {.n = 3, .dim = 2, .dense = x1};
    sl_targets_t t = {y, w, lab};
    assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    /* Seeded by the labelled rows of batch 1: means 2 and 200, sd 1 and 100. */
    float m0 = 1.0f, m1 = 0.01f;
    for (int i = 0; i < 3; i++) {
        float a = (x1[2 * i] - 2.0f) * m0, b = (x1[2 * i + 1] - 200.0f) * m1;
        assert_true(fabsf(out[i] - sigmoidf_(0.5f * a - 1.5f * b + 0.25f)) < 1e-6f);
    }
    sl_learner_input_transform(l, &shift, &mult);
    assert_true(shift[0] == 2.0f && shift[1] == 200.0f);
    assert_true(mult[0] == 1.0f && fabsf(mult[1] - 0.01f) < 1e-9f);
    float s0 = shift[0], s1 = shift[1], u0 = mult[0], u1 = mult[1];
    float x2[] = {10, 0, -4, 400, 7, 7};
    uint8_t lab2[] = {1, 1, 1};
    sl_input_t in2 = {.n = 3, .dim = 2, .dense = x2};
    sl_targets_t t2 = {y, w, lab2};
    assert_int_equal(sl_learner_batch(l, &in2, &t2, out, NULL), SL_OK);
    for (int i = 0; i < 3; i++) {
        float a = (x2[2 * i] - s0) * u0, b = (x2[2 * i + 1] - s1) * u1;
        assert_true(fabsf(out[i] - sigmoidf_(0.5f * a - 1.5f * b + 0.25f)) < 1e-6f);
    }
    sl_learner_input_transform(l, &shift, &mult);
    assert_true(shift[0] != s0); /* batch 2 entered the statistics after its predictions */
    /* Predict-only: the same outputs as a batch would give, nothing learnt. */
    float pout[3], bout[3];
    sl_learner_counters_t before = sl_learner_counters(l), after;
    assert_int_equal(sl_learner_predict(l, &in2, pout), SL_OK);
    after = sl_learner_counters(l);
    assert_memory_equal(&before, &after, sizeof before);
    uint8_t none[] = {0, 0, 0};
    sl_targets_t tn = {y, w, none};
    assert_int_equal(sl_learner_batch(l, &in2, &tn, bout, NULL), SL_OK);
    assert_memory_equal(pout, bout, sizeof pout);
    /* The scaling is part of the model once it has trained. */
    char err[256];
    assert_int_equal(sl_learner_set_scale(l, SL_SCALE_OFF, err, sizeof err), SL_ERR_STATE);
    sl_learner_destroy(l);
}

/* Standard scaling makes training invariant to each feature's unit and
 * origin, and a linear head's target-unit training to the target's: x ->
 * a x + b per feature (a > 0), y -> 1000 y + 5000 give the same model, with
 * predictions 1000 p + 5000. */
static void affine_run(sl_head_t head, uint32_t hidden, sl_optim_config_t oc) {
    sl_learner_t *a = make(head, 3, hidden, oc), *b = make(head, 3, hidden, oc);
    set_scale(a, SL_SCALE_STANDARD);
    set_scale(b, SL_SCALE_STANDARD);
    const float fa[3] = {1000, 0.001f, 3}, fb[3] = {50000, -7, 2};
    int lin = head == SL_HEAD_LINEAR;
    uint32_t k = head == SL_HEAD_SOFTMAX ? 3 : 1;
    for (int bt = 0; bt < 12; bt++) {
        float x[8 * 3], xb[8 * 3], y[8], yb[8], w[8], oa[8 * 3], ob[8 * 3];
        uint8_t lab[8];
        for (int i = 0; i < 8; i++) {
            for (int j = 0; j < 3; j++) {
                x[i * 3 + j] = sinf((float)(bt * 8 + i) * (1.3f + (float)j));
                xb[i * 3 + j] = x[i * 3 + j] * fa[j] + fb[j];
            }
            float z = x[i * 3] - 2 * x[i * 3 + 1] + 0.5f * x[i * 3 + 2];
            y[i] = lin ? 3 * z + 1 : head == SL_HEAD_LOGISTIC ? (float)(z > 0) : (float)(i % 3);
            yb[i] = lin ? 1000 * y[i] + 5000 : y[i];
            w[i] = 1 + (float)(i % 2);
            lab[i] = (i + bt) % 5 != 0;
        }
        sl_input_t ia = {.n = 8, .dim = 3, .dense = x}, ib = {.n = 8, .dim = 3, .dense = xb};
        sl_targets_t ta = {y, w, lab}, tb = {yb, w, lab};
        assert_int_equal(sl_learner_batch(a, &ia, &ta, oa, NULL), SL_OK);
        assert_int_equal(sl_learner_batch(b, &ib, &tb, ob, NULL), SL_OK);
        for (uint32_t i = 0; i < 8 * k; i++) {
            /* batch 0 is predicted before any target is known: the same model */
            float want = lin && bt > 0 ? 1000 * oa[i] + 5000 : oa[i];
            if (!(fabsf(ob[i] - want) <= 2e-3f * (lin && bt > 0 ? 1000 + fabsf(want) : 1)))
                fail_msg("head %d batch %d output %u: %.9g, want %.9g", head, bt, i, ob[i], want);
        }
    }
    sl_learner_destroy(a);
    sl_learner_destroy(b);
}

static void test_standard_scaling_is_affine_invariant(void **state) {
    (void)state;
    sl_optim_config_t au = sl_optim_config_default(SL_OPTIM_AUTO);
    affine_run(SL_HEAD_LINEAR, 0, au);
    affine_run(SL_HEAD_LINEAR, 4, au);
    affine_run(SL_HEAD_LOGISTIC, 0, au);
    affine_run(SL_HEAD_SOFTMAX, 4, au);
    affine_run(SL_HEAD_LINEAR, 0, sl_optim_config_default(SL_OPTIM_ADAM));
}

/* A linear head with scaling starts from a model predicting around the mean
 * of the first labelled batch's targets (its seeded weights read in target
 * units), and a refused step leaves the weights exactly as they were. */
static void test_target_units_start_and_refusal(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_LINEAR, 2, 0, sl_optim_config_default(SL_OPTIM_AUTO));
    set_scale(l, SL_SCALE_AUTO);
    float x[] = {1, 2, 3, 4, 5, 7, 2, 2}, y[] = {1000, 1010, 990, 1004}, w[] = {1, 1, 1, 1};
    float out[4];
    uint8_t lab[] = {1, 1, 1, 1};
    sl_input_t in = {.n = 4, .dim = 2, .dense = x};
    sl_targets_t t = {y, w, lab};
    assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    for (int i = 0; i < 4; i++) /* predicted before any target was known */
        assert_true(fabsf(out[i]) < 10);
    assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    for (int i = 0; i < 4; i++)
        assert_true(fabsf(out[i] - 1001) < 40);
    /* A step that would overflow: refused, weights and state untouched. */
    sl_model_t *m = sl_learner_model(l);
    size_t np = sl_model_n_params(m);
    float saved[3], y2[] = {3e38f, -3e38f, 3e38f, -3e38f};
    memcpy(saved, sl_model_params(m), sizeof saved);
    assert_int_equal(np, 3);
    sl_targets_t t2 = {y2, w, lab};
    sl_batch_result_t r;
    assert_int_equal(sl_learner_batch(l, &in, &t2, out, &r), SL_OK);
    if (r.refused)
        assert_memory_equal(sl_model_params(m), saved, sizeof saved);
    for (size_t i = 0; i < np; i++)
        assert_true(isfinite(sl_model_params(m)[i]));
    sl_learner_destroy(l);
}

int main(void) {
    sl_linalg_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_predict_before_step_and_sgd_update),
        cmocka_unit_test(test_clone_and_copy),
        cmocka_unit_test(test_unlabelled_batch_changes_nothing),
        cmocka_unit_test(test_metrics_use_pre_step_outputs),
        cmocka_unit_test(test_bad_batches_change_nothing),
        cmocka_unit_test(test_nonfinite_step_refused),
        cmocka_unit_test(test_ftrl_needs_no_hidden_layers),
        cmocka_unit_test(test_sparse_batches_train_like_dense),
        cmocka_unit_test(test_ftrl_sparse_touches_only_used_columns),
        cmocka_unit_test(test_scaled_sparse_trains_like_dense),
        cmocka_unit_test(test_scaled_predictions_use_pre_batch_statistics),
        cmocka_unit_test(test_standard_scaling_is_affine_invariant),
        cmocka_unit_test(test_target_units_start_and_refusal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
