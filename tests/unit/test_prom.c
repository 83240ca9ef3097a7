/* test_prom.c - the Prometheus text format 0.0.4 writer against the format's rules. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prom.h"

/* The buffer's bytes as a NUL-terminated string (owned by the buffer). */
static const char *text(sl_buf_t *b) {
    assert_int_equal(sl_buf_append(b, "", 1), SL_OK);
    b->len--;
    return (const char *)b->data;
}

static void test_family_writes_help_then_type(void **state) {
    (void)state;
    sl_buf_t b = {0};
    char err[128];
    assert_int_equal(sl_prom_family(&b, "streamlearn_predictions_total", SL_PROM_COUNTER,
                                    "Predictions written.", err, sizeof err),
                     SL_OK);
    assert_int_equal(sl_prom_family(&b, "streamlearn_model_version", SL_PROM_GAUGE,
                                    "Version of the weights served.", err, sizeof err),
                     SL_OK);
    assert_string_equal(text(&b),
                        "# HELP streamlearn_predictions_total Predictions written.\n"
                        "# TYPE streamlearn_predictions_total counter\n"
                        "# HELP streamlearn_model_version Version of the weights served.\n"
                        "# TYPE streamlearn_model_version gauge\n");
    sl_buf_free(&b);
}

/* HELP text escapes backslash and newline only; a quote stays as is. */
static void test_help_escaping(void **state) {
    (void)state;
    sl_buf_t b = {0};
    assert_int_equal(sl_prom_family(&b, "m", SL_PROM_GAUGE, "a \"q\" c:\\dir\nnext", NULL, 0),
                     SL_OK);
    assert_string_equal(text(&b), "# HELP m a \"q\" c:\\\\dir\\nnext\n# TYPE m gauge\n");
    sl_buf_free(&b);
}

static void test_sample_without_labels(void **state) {
    (void)state;
    sl_buf_t b = {0};
    assert_int_equal(sl_prom_sample(&b, "ns:up", NULL, 0, 1, NULL, 0), SL_OK);
    assert_string_equal(text(&b), "ns:up 1\n");
    sl_buf_free(&b);
}

static void test_sample_labels_in_order(void **state) {
    (void)state;
    sl_buf_t b = {0};
    sl_prom_label_t l[] = {{"model", "ctr"}, {"role", "trainer"}};
    assert_int_equal(sl_prom_sample(&b, "streamlearn_model_step", l, 2, 42, NULL, 0), SL_OK);
    assert_string_equal(text(&b), "streamlearn_model_step{model=\"ctr\",role=\"trainer\"} 42\n");
    sl_buf_free(&b);
}

/* Label values escape backslash, double quote and newline; nothing else. */
static void test_label_value_escaping(void **state) {
    (void)state;
    sl_buf_t b = {0};
    sl_prom_label_t l[] = {{"path", "C:\\x \"y\"\nz\tw"}, {"empty", ""}};
    assert_int_equal(sl_prom_sample(&b, "m", l, 2, 0.5, NULL, 0), SL_OK);
    assert_string_equal(text(&b), "m{path=\"C:\\\\x \\\"y\\\"\\nz\tw\",empty=\"\"} 0.5\n");
    sl_buf_free(&b);
}

static void test_non_finite_values(void **state) {
    (void)state;
    sl_buf_t b = {0};
    assert_int_equal(sl_prom_sample(&b, "a", NULL, 0, NAN, NULL, 0), SL_OK);
    assert_int_equal(sl_prom_sample(&b, "b", NULL, 0, INFINITY, NULL, 0), SL_OK);
    assert_int_equal(sl_prom_sample(&b, "c", NULL, 0, -INFINITY, NULL, 0), SL_OK);
    assert_string_equal(text(&b), "a NaN\nb +Inf\nc -Inf\n");
    sl_buf_free(&b);
}

/* Values are short for humans but read back exactly. */
static void test_values_round_trip(void **state) {
    (void)state;
    char s[40];
    sl_prom_format_value(0.1, s, sizeof s);
    assert_string_equal(s, "0.1");
    sl_prom_format_value(-3, s, sizeof s);
    assert_string_equal(s, "-3");
    sl_prom_format_value(18446744073709551616.0, s, sizeof s);
    assert_string_equal(s, "1.8446744073709552e+19");
    sl_prom_format_value(0.1 + 0.2, s, sizeof s);
    assert_string_equal(s, "0.30000000000000004");
    srand(7);
    for (int i = 0; i < 2000; i++) {
        double v = ((double)rand() / RAND_MAX - 0.5) * pow(10, rand() % 40 - 20);
        sl_prom_format_value(v, s, sizeof s);
        assert_true(strtod(s, NULL) == v);
    }
}

static void test_invalid_names_leave_buffer_unchanged(void **state) {
    (void)state;
    sl_buf_t b = {0};
    char err[128];
    assert_int_equal(sl_prom_sample(&b, "ok", NULL, 0, 1, NULL, 0), SL_OK);
    size_t len = b.len;
    const char *bad_metrics[] = {"", "1abc", "a-b", "a b", "é"};
    for (size_t i = 0; i < sizeof bad_metrics / sizeof *bad_metrics; i++) {
        err[0] = '\0';
        assert_int_equal(sl_prom_sample(&b, bad_metrics[i], NULL, 0, 1, err, sizeof err),
                         SL_ERR_INVAL);
        assert_non_null(strstr(err, "metric name"));
        assert_int_equal(sl_prom_family(&b, bad_metrics[i], SL_PROM_GAUGE, "h", err, sizeof err),
                         SL_ERR_INVAL);
    }
    assert_int_equal(sl_prom_sample(&b, NULL, NULL, 0, 1, err, sizeof err), SL_ERR_INVAL);
    const char *bad_labels[] = {"", "a:b", "__name__", "9x", "a-b"};
    for (size_t i = 0; i < sizeof bad_labels / sizeof *bad_labels; i++) {
        sl_prom_label_t l[] = {{"fine", "v"}, {bad_labels[i], "v"}};
        assert_int_equal(sl_prom_sample(&b, "m", l, 2, 1, err, sizeof err), SL_ERR_INVAL);
        assert_non_null(strstr(err, "m:"));
    }
    sl_prom_label_t nullval[] = {{"a", NULL}};
    assert_int_equal(sl_prom_sample(&b, "m", nullval, 1, 1, err, sizeof err), SL_ERR_INVAL);
    assert_int_equal(b.len, len);
    sl_buf_free(&b);
}

static void test_duplicate_label_rejected(void **state) {
    (void)state;
    sl_buf_t b = {0};
    char err[128];
    sl_prom_label_t l[] = {{"model", "a"}, {"role", "x"}, {"model", "b"}};
    assert_int_equal(sl_prom_sample(&b, "m", l, 3, 1, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "\"model\" given twice"));
    assert_int_equal(b.len, 0);
    sl_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_writes_help_then_type),
        cmocka_unit_test(test_help_escaping),
        cmocka_unit_test(test_sample_without_labels),
        cmocka_unit_test(test_sample_labels_in_order),
        cmocka_unit_test(test_label_value_escaping),
        cmocka_unit_test(test_non_finite_values),
        cmocka_unit_test(test_values_round_trip),
        cmocka_unit_test(test_invalid_names_leave_buffer_unchanged),
        cmocka_unit_test(test_duplicate_label_rejected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
