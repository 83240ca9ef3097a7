/* test_runner.c - the batch runner: chunking into steps, slots in input
 * order, trailing bad samples, refused steps, predict-only, emit errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "consumer/runner.h"

#define DIM 3

/* What the emit callback saw, in order. */
typedef struct seen {
    size_t n;
    uint64_t tag[64];
    int good[64];
    uint64_t step[64];
    float out[64];
    char error[64][64];
    size_t fail_at; /* emit returns SL_ERR_IO at this index (SIZE_MAX: never) */
} seen_t;

static sl_err_t record(void *opaque, const sl_runner_item_t *it) {
    seen_t *s = opaque;
    if (s->n == s->fail_at)
        return SL_ERR_IO;
    assert_true(s->n < 64);
    s->tag[s->n] = it->slot.tag;
    s->good[s->n] = it->slot.good;
    s->step[s->n] = it->step;
    s->out[s->n] = it->out ? it->out[0] : NAN;
    assert_int_equal(it->out_dim, 1);
    assert_true(it->slot.good ? it->out != NULL : it->out == NULL);
    snprintf(s->error[s->n], sizeof s->error[0], "%s", it->slot.good ? "" : it->slot.error);
    s->n++;
    return SL_OK;
}

static sl_learner_t *learner(sl_head_t head, double lr) {
    sl_model_config_t mc = {.head = head, .dim = DIM};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    oc.lr = lr;
    char err[256];
    sl_learner_t *l = sl_learner_new(&mc, &oc, 7, 0, err, sizeof err);
    assert_non_null(l);
    return l;
}

static void push(sl_batch_t *b, uint64_t tag, float y, int labelled) {
    float x[DIM] = {0.5f, -1.0f, (float)tag};
    assert_int_equal(sl_batch_push_dense(b, x, y, 1.0f, labelled, tag, NULL, 0), SL_OK);
}

static void bad(sl_batch_t *b, uint64_t tag) {
    char e[32];
    snprintf(e, sizeof e, "bad %llu", (unsigned long long)tag);
    assert_int_equal(sl_batch_push_error(b, e, tag, NULL, 0), SL_OK);
}

static sl_runner_t *runner(sl_learner_t *l, uint32_t batch, int predict_only) {
    sl_runner_config_t c = {.batch_size = batch, .predict_only = predict_only};
    char err[128];
    sl_runner_t *r = sl_runner_new(&c, l, err, sizeof err);
    assert_non_null(r);
    return r;
}

static void test_new_refuses_batch_size_zero_and_destroy_null(void **state) {
    (void)state;
    sl_learner_t *l = learner(SL_HEAD_LOGISTIC, 0.1);
    sl_runner_config_t c = {.batch_size = 0};
    char err[128] = "";
    assert_null(sl_runner_new(&c, l, err, sizeof err));
    assert_non_null(strstr(err, "--batch-size"));
    sl_runner_destroy(NULL);
    sl_learner_destroy(l);
}

/* 7 rows, batch 3, bad samples between and after: steps of 3, 3 and (on
 * flush) 1; every slot once, in input order, each with the step count of
 * the weights that predicted it; a bad sample comes out with the step
 * before it. */
static void test_chunks_and_order(void **state) {
    (void)state;
    sl_learner_t *l = learner(SL_HEAD_LOGISTIC, 0.1);
    sl_runner_t *r = runner(l, 3, 0);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    seen_t s = {.fail_at = SIZE_MAX};
    /* tags: 0 1 [2 bad] 3 4 5 6 [7 bad] 8 [9 bad] [10 bad] */
    push(b, 0, 1, 1);
    push(b, 1, 0, 1);
    bad(b, 2);
    push(b, 3, 1, 1);
    push(b, 4, 0, 1);
    push(b, 5, 1, 0); /* predict only */
    push(b, 6, 0, 1);
    bad(b, 7);
    push(b, 8, 1, 1);
    bad(b, 9);
    bad(b, 10);
    /* without flush: two full steps; the short rest waits */
    assert_int_equal(sl_runner_run(r, b, 0, record, &s, NULL, 0), SL_OK);
    assert_int_equal(sl_runner_counts(r).steps, 2);
    /* tags 0..7: the slots before the 7th row (the bad sample 7 included) */
    assert_int_equal(s.n, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(s.tag[i], i);
    assert_int_equal(s.good[2], 0);
    assert_string_equal(s.error[2], "bad 2");
    assert_int_equal(s.step[0], 0); /* first step: weights before any update */
    assert_int_equal(s.step[3], 0); /* row 3 is in the first step too */
    assert_int_equal(s.step[4], 1); /* second step: after the first */
    assert_int_equal(sl_batch_rows(b), 1);
    assert_int_equal(sl_batch_slots(b), 3);
    /* flush: the last row as a short step, then the trailing bad samples */
    assert_int_equal(sl_runner_run(r, b, 1, record, &s, NULL, 0), SL_OK);
    assert_int_equal(s.n, 11);
    for (size_t i = 8; i < 11; i++)
        assert_int_equal(s.tag[i], i);
    assert_int_equal(s.step[8], 2);
    assert_int_equal(s.step[10], 2); /* emitted with the last step, as in input order */
    assert_int_equal(sl_batch_rows(b), 0);
    assert_int_equal(sl_batch_slots(b), 0);
    sl_runner_counts_t n = sl_runner_counts(r);
    assert_int_equal(n.steps, 3);
    assert_int_equal(n.predicted, 7);
    assert_int_equal(n.bad, 4);
    assert_int_equal(n.labelled, 6);
    assert_int_equal(n.refused, 0);
    assert_int_equal(sl_learner_counters(l).step, 3);
    /* a flush of an empty batch emits nothing and steps nothing */
    assert_int_equal(sl_runner_run(r, b, 1, record, &s, NULL, 0), SL_OK);
    assert_int_equal(s.n, 11);
    assert_int_equal(sl_runner_counts(r).steps, 3);
    sl_batch_destroy(b);
    sl_runner_destroy(r);
    sl_learner_destroy(l);
}

/* Only bad samples: no step, all emitted on flush. */
static void test_only_bad_samples(void **state) {
    (void)state;
    sl_learner_t *l = learner(SL_HEAD_LOGISTIC, 0.1);
    sl_runner_t *r = runner(l, 2, 0);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    seen_t s = {.fail_at = SIZE_MAX};
    bad(b, 0);
    bad(b, 1);
    assert_int_equal(sl_runner_run(r, b, 0, record, &s, NULL, 0), SL_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(sl_runner_run(r, b, 1, record, &s, NULL, 0), SL_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(sl_runner_counts(r).steps, 0);
    assert_int_equal(sl_runner_counts(r).bad, 2);
    sl_batch_destroy(b);
    sl_runner_destroy(r);
    sl_learner_destroy(l);
}

/* A step that would make weights non-finite is refused: counted, its
 * samples still emitted with the unchanged weights, labelled not counted,
 * and the run goes on. */
static void test_refused_step(void **state) {
    (void)state;
    sl_learner_t *l = learner(SL_HEAD_LINEAR, 1e38);
    sl_runner_t *r = runner(l, 2, 0);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    seen_t s = {.fail_at = SIZE_MAX};
    float before[DIM + 1];
    memcpy(before, sl_model_params(sl_learner_model(l)), sizeof before);
    push(b, 0, 1e30f, 1);
    push(b, 1, -1e30f, 1);
    push(b, 2, 0, 0);
    assert_int_equal(sl_runner_run(r, b, 1, record, &s, NULL, 0), SL_OK);
    assert_int_equal(s.n, 3);
    sl_runner_counts_t n = sl_runner_counts(r);
    assert_int_equal(n.refused, 1);
    assert_int_equal(n.steps, 2);
    assert_int_equal(n.labelled, 0);
    assert_int_equal(n.predicted, 3);
    assert_int_equal(sl_learner_counters(l).step, 0);
    assert_memory_equal(before, sl_model_params(sl_learner_model(l)), sizeof before);
    assert_int_equal(s.step[2], 0);
    sl_batch_destroy(b);
    sl_runner_destroy(r);
    sl_learner_destroy(l);
}

/* Predict-only: the same outputs as a learner's forward pass, nothing learnt. */
static void test_predict_only(void **state) {
    (void)state;
    sl_learner_t *l = learner(SL_HEAD_LOGISTIC, 0.5);
    sl_learner_t *ref = learner(SL_HEAD_LOGISTIC, 0.5); /* same seed, same weights */
    sl_runner_t *r = runner(l, 2, 1);
    sl_runner_t *rr = runner(ref, 8, 0);
    sl_batch_t *b = sl_batch_new(DIM, 4), *b2 = sl_batch_new(DIM, 4);
    seen_t s = {.fail_at = SIZE_MAX}, s2 = {.fail_at = SIZE_MAX};
    for (uint64_t i = 0; i < 5; i++) {
        push(b, i, 1, 1);
        push(b2, i, 1, 1);
    }
    assert_int_equal(sl_runner_run(r, b, 1, record, &s, NULL, 0), SL_OK);
    assert_int_equal(sl_runner_run(rr, b2, 1, record, &s2, NULL, 0), SL_OK); /* one step of 5 */
    assert_int_equal(s.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_float_equal(s.out[i], s2.out[i], 0); /* all made with the initial weights */
    sl_learner_counters_t c = sl_learner_counters(l);
    assert_int_equal(c.step, 0);
    assert_int_equal(c.samples, 0);
    assert_int_equal(sl_runner_counts(r).labelled, 0);
    assert_int_equal(sl_runner_counts(r).steps, 3);
    assert_true(isnan(sl_metrics_window(sl_learner_metrics(l)).loss)); /* no metrics */
    sl_batch_destroy(b);
    sl_batch_destroy(b2);
    sl_runner_destroy(r);
    sl_runner_destroy(rr);
    sl_learner_destroy(l);
    sl_learner_destroy(ref);
}

/* An emit error stops the run and comes back; a learner error says so. */
static void test_errors_stop_the_run(void **state) {
    (void)state;
    sl_learner_t *l = learner(SL_HEAD_LOGISTIC, 0.1);
    sl_runner_t *r = runner(l, 4, 0);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    seen_t s = {.fail_at = 1};
    for (uint64_t i = 0; i < 3; i++)
        push(b, i, 1, 1);
    assert_int_equal(sl_runner_run(r, b, 1, record, &s, NULL, 0), SL_ERR_IO);
    assert_int_equal(s.n, 1);
    sl_batch_clear(b);
    /* a batch of another width: the learner refuses, nothing is emitted */
    sl_batch_t *wrong = sl_batch_new(DIM + 1, 4);
    float x[DIM + 1] = {0};
    assert_int_equal(sl_batch_push_dense(wrong, x, 1, 1, 1, 0, NULL, 0), SL_OK);
    seen_t s2 = {.fail_at = SIZE_MAX};
    char err[128] = "";
    assert_int_equal(sl_runner_run(r, wrong, 1, record, &s2, err, sizeof err), SL_ERR_MISMATCH);
    assert_int_equal(s2.n, 0);
    assert_non_null(strstr(err, "learning step failed"));
    sl_batch_destroy(wrong);
    sl_batch_destroy(b);
    sl_runner_destroy(r);
    sl_learner_destroy(l);
}

/* set_learner accepts the same output width only. */
static void test_set_learner(void **state) {
    (void)state;
    sl_learner_t *a = learner(SL_HEAD_LOGISTIC, 0.1), *b = learner(SL_HEAD_LINEAR, 0.1);
    sl_model_config_t mc = {.head = SL_HEAD_SOFTMAX, .dim = DIM, .classes = 3};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    sl_learner_t *c = sl_learner_new(&mc, &oc, 1, 0, NULL, 0);
    assert_non_null(c);
    sl_runner_t *r = runner(a, 2, 0);
    assert_int_equal(sl_runner_set_learner(r, b), SL_OK);
    assert_int_equal(sl_runner_set_learner(r, c), SL_ERR_MISMATCH);
    sl_runner_destroy(r);
    sl_learner_destroy(a);
    sl_learner_destroy(b);
    sl_learner_destroy(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_refuses_batch_size_zero_and_destroy_null),
        cmocka_unit_test(test_chunks_and_order),
        cmocka_unit_test(test_only_bad_samples),
        cmocka_unit_test(test_refused_step),
        cmocka_unit_test(test_predict_only),
        cmocka_unit_test(test_errors_stop_the_run),
        cmocka_unit_test(test_set_learner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
