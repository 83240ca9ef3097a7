/* test_metrics.c - prequential totals and sliding window on small hand-computed sequences. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model/metrics.h"

static void add(sl_metrics_t *m, double w, double loss, double err) {
    sl_metrics_sample_t s = {.weight = w, .loss = loss, .err = err};
    sl_metrics_update(m, &s);
}

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-12)

static void test_empty_is_nan(void **state) {
    (void)state;
    sl_metrics_t *m = sl_metrics_new(1, 3);
    sl_metrics_view_t t = sl_metrics_total(m), w = sl_metrics_window(m);
    assert_int_equal(t.count, 0);
    assert_true(isnan(t.loss) && isnan(t.accuracy) && isnan(w.loss) && isnan(w.accuracy));
    sl_metrics_destroy(m);
    sl_metrics_destroy(NULL);
}

static void test_classification_totals_and_window(void **state) {
    (void)state;
    sl_metrics_t *m = sl_metrics_new(1, 3);
    /* (weight, loss, correct) */
    add(m, 1, 0.5, 1);
    add(m, 2, 1.0, 0);
    add(m, 1, 0.25, 1);
    add(m, 4, 2.0, 0);
    sl_metrics_view_t t = sl_metrics_total(m);
    assert_int_equal(t.count, 4);
    NEAR(t.loss, (0.5 + 2.0 + 0.25 + 8.0) / 8);
    NEAR(t.accuracy, 2.0 / 8);
    assert_true(isnan(t.mae) && isnan(t.rmse));
    /* The window keeps the last three: weights 2, 1, 4. */
    sl_metrics_view_t w = sl_metrics_window(m);
    assert_int_equal(w.count, 3);
    NEAR(w.loss, (2.0 + 0.25 + 8.0) / 7);
    NEAR(w.accuracy, 1.0 / 7);
    sl_metrics_destroy(m);
}

static void test_regression_mae_rmse(void **state) {
    (void)state;
    sl_metrics_t *m = sl_metrics_new(0, 2);
    /* err = prediction - target */
    add(m, 1, 4, -2);
    add(m, 3, 1, 1);
    add(m, 1, 9, 3);
    sl_metrics_view_t t = sl_metrics_total(m);
    NEAR(t.mae, (2 + 3 + 3) / 5.0);
    NEAR(t.rmse, sqrt((4 + 3 + 9) / 5.0));
    NEAR(t.loss, (4 + 3 + 9) / 5.0);
    assert_true(isnan(t.accuracy));
    sl_metrics_view_t w = sl_metrics_window(m);
    assert_int_equal(w.count, 2);
    NEAR(w.mae, (3 + 3) / 4.0);
    NEAR(w.rmse, sqrt((3 + 9) / 4.0));
    sl_metrics_destroy(m);
}

/* A long run through many recomputations: the window equals a direct sum. */
static void test_window_stays_exact(void **state) {
    (void)state;
    enum { W = 7, TOTAL = 1000 };
    sl_metrics_t *m = sl_metrics_new(0, W);
    double ws[TOTAL], ls[TOTAL];
    for (int i = 0; i < TOTAL; i++) {
        ws[i] = 1 + (i % 5) * 1e6; /* large and small weights mixed */
        ls[i] = (i % 11) * 0.1;
        add(m, ws[i], ls[i], 0);
    }
    double num = 0, den = 0;
    for (int i = TOTAL - W; i < TOTAL; i++) {
        num += ws[i] * ls[i];
        den += ws[i];
    }
    sl_metrics_view_t w = sl_metrics_window(m);
    assert_int_equal(w.count, W);
    assert_true(fabs(w.loss - num / den) < 1e-9 * (num / den));
    sl_metrics_destroy(m);
}

static void test_reset_and_state_round_trip(void **state) {
    (void)state;
    sl_metrics_t *a = sl_metrics_new(1, 4), *b = sl_metrics_new(1, 4);
    for (int i = 0; i < 6; i++)
        add(a, 1 + i, 0.1 * i, i % 2);
    sl_metrics_state_t st;
    const sl_metrics_sample_t *ring;
    sl_metrics_get_state(a, &st, &ring);
    assert_int_equal(sl_metrics_set_state(b, &st, ring), SL_OK);
    add(a, 2, 0.5, 1);
    add(b, 2, 0.5, 1);
    sl_metrics_view_t va = sl_metrics_window(a), vb = sl_metrics_window(b);
    assert_memory_equal(&va, &vb, sizeof(va));
    st.head = 9; /* outside the window: refused */
    assert_int_equal(sl_metrics_set_state(b, &st, ring), SL_ERR_INVAL);
    sl_metrics_reset(a);
    assert_int_equal(sl_metrics_total(a).count, 0);
    assert_int_equal(sl_metrics_window(a).count, 0);
    add(a, 1, 1, 1);
    NEAR(sl_metrics_window(a).accuracy, 1);
    sl_metrics_destroy(a);
    sl_metrics_destroy(b);
}

static void test_window_limits(void **state) {
    (void)state;
    sl_metrics_t *m = sl_metrics_new(1, 0);
    for (int i = 0; i < SL_METRICS_DEFAULT_WINDOW + 5; i++)
        add(m, 1, 1, 1);
    assert_int_equal(sl_metrics_window(m).count, SL_METRICS_DEFAULT_WINDOW);
    assert_int_equal(sl_metrics_total(m).count, SL_METRICS_DEFAULT_WINDOW + 5);
    sl_metrics_destroy(m);
    assert_null(sl_metrics_new(1, SL_METRICS_MAX_WINDOW + 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_is_nan),
        cmocka_unit_test(test_classification_totals_and_window),
        cmocka_unit_test(test_regression_mae_rmse),
        cmocka_unit_test(test_window_stays_exact),
        cmocka_unit_test(test_reset_and_state_round_trip),
        cmocka_unit_test(test_window_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
