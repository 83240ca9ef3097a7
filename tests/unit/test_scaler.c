/* test_scaler.c - the online scaler: weighted Welford/Chan statistics against numpy
 * (tests/fixtures/scaler/reference.json, scripts/gen_scaler_fixtures.py), dense and CSR
 * batches, maxabs, constant features, the transform, state round trips. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "common/fileio.h"
#include "model/scaler.h"

/* The numpy reference, loaded once. */
typedef struct ref {
    size_t n, dim, n_batches;
    size_t batches[16];
    float *x, *w, *y;
    uint8_t *labelled;
    size_t *row_ptr;
    uint32_t *col;
    float *val;
    double weight, count, y_mean, y_var;
    double *mean, *var, *maxabs;
} ref_t;

static ref_t R;

static double *doubles(const cJSON *a, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(a);
    double *v = malloc((*n ? *n : 1) * sizeof(double));
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a) v[i++] = e->valuedouble;
    return v;
}

static float *floats(const cJSON *a) {
    size_t n;
    double *d = doubles(a, &n);
    float *f = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    free(d);
    return f;
}

static int load_ref(void **state) {
    (void)state;
    const char *root = getenv("SL_FIXTURES");
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/scaler/reference.json", root ? root : "tests/fixtures");
    uint8_t *buf;
    size_t len, k;
    if (sl_fileio_read(path, 1 << 24, &buf, &len, err, sizeof err) != SL_OK) {
        fprintf(stderr, "%s (set SL_FIXTURES)\n", err);
        return -1;
    }
    cJSON *j = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    if (!j)
        return -1;
    R.n = (size_t)cJSON_GetObjectItem(j, "n")->valuedouble;
    R.dim = (size_t)cJSON_GetObjectItem(j, "dim")->valuedouble;
    double *b = doubles(cJSON_GetObjectItem(j, "batches"), &R.n_batches);
    for (size_t i = 0; i < R.n_batches; i++)
        R.batches[i] = (size_t)b[i];
    free(b);
    R.x = floats(cJSON_GetObjectItem(j, "x"));
    R.w = floats(cJSON_GetObjectItem(j, "w"));
    R.y = floats(cJSON_GetObjectItem(j, "y"));
    double *lab = doubles(cJSON_GetObjectItem(j, "labelled"), &k);
    R.labelled = malloc(k);
    for (size_t i = 0; i < k; i++)
        R.labelled[i] = (uint8_t)lab[i];
    free(lab);
    const cJSON *csr = cJSON_GetObjectItem(j, "csr");
    double *rp = doubles(cJSON_GetObjectItem(csr, "row_ptr"), &k);
    R.row_ptr = malloc(k * sizeof(size_t));
    for (size_t i = 0; i < k; i++)
        R.row_ptr[i] = (size_t)rp[i];
    free(rp);
    double *col = doubles(cJSON_GetObjectItem(csr, "col"), &k);
    R.col = malloc(k * sizeof(uint32_t));
    for (size_t i = 0; i < k; i++)
        R.col[i] = (uint32_t)col[i];
    free(col);
    R.val = floats(cJSON_GetObjectItem(csr, "val"));
    R.weight = cJSON_GetObjectItem(j, "weight")->valuedouble;
    R.count = cJSON_GetObjectItem(j, "count")->valuedouble;
    R.y_mean = cJSON_GetObjectItem(j, "y_mean")->valuedouble;
    R.y_var = cJSON_GetObjectItem(j, "y_var")->valuedouble;
    R.mean = doubles(cJSON_GetObjectItem(j, "mean"), &k);
    R.var = doubles(cJSON_GetObjectItem(j, "var"), &k);
    R.maxabs = doubles(cJSON_GetObjectItem(j, "maxabs"), &k);
    cJSON_Delete(j);
    return 0;
}

static int free_ref(void **state) {
    (void)state;
    free(R.x), free(R.w), free(R.y), free(R.labelled), free(R.row_ptr), free(R.col), free(R.val);
    free(R.mean), free(R.var), free(R.maxabs);
    return 0;
}

static sl_scaler_t *make(sl_scale_mode_t mode) {
    char err[256];
    sl_scaler_t *s = sl_scaler_new((uint32_t)R.dim, mode, err, sizeof err);
    if (!s)
        fail_msg("sl_scaler_new: %s", err);
    return s;
}

/* Feeds the reference rows in its batch sizes, dense or CSR. */
static void feed(sl_scaler_t *s, int sparse) {
    size_t row = 0;
    for (size_t b = 0; b < R.n_batches; b++) {
        size_t nb = R.batches[b];
        sl_input_t in = {.n = nb, .dim = R.dim};
        if (sparse) {
            in.row_ptr = R.row_ptr + row;
            in.col = R.col;
            in.val = R.val;
        } else {
            in.dense = R.x + row * R.dim;
        }
        assert_int_equal(sl_scaler_reserve(s, &in), SL_OK);
        sl_scaler_update(s, &in, R.w + row, R.labelled + row);
        sl_scaler_update_target(s, R.y + row, R.w + row, R.labelled + row, nb);
        row += nb;
    }
    assert_int_equal(row, R.n);
}

static void assert_rel(double got, double want, double tol, const char *what, size_t j) {
    if (!(fabs(got - want) <= tol * fmax(fabs(want), 1e-300)) && !(got == 0 && want == 0))
        fail_msg("%s[%zu]: %.17g, numpy %.17g", what, j, got, want);
}

/* Mean and variance match numpy's weighted ones over the labelled rows, and
 * the transform is what they imply (mult 1 for the constant feature). */
static void check_standard(sl_scaler_t *s) {
    sl_scaler_state_t st;
    sl_scaler_get_state(s, &st);
    assert_int_equal(st.mode, SL_SCALE_STANDARD);
    assert_true(st.weight == R.weight);
    assert_int_equal(st.count, (uint64_t)R.count);
    const float *shift = sl_scaler_shift(s), *mult = sl_scaler_mult(s);
    for (size_t j = 0; j < R.dim; j++) {
        assert_rel(st.mean[j], R.mean[j], 1e-12, "mean", j);
        if (R.var[j] == 0)
            assert_true(st.m2[j] == 0);
        else
            assert_rel(st.m2[j] / st.weight, R.var[j], 1e-9, "var", j);
        assert_true(shift[j] == (float)st.mean[j]);
        float want = R.var[j] == 0 ? 1.0f : (float)(1.0 / sqrt(st.m2[j] / st.weight));
        assert_true(mult[j] == want);
        assert_true(isfinite(mult[j]));
    }
    double w, mean, sd;
    sl_scaler_target(s, &w, &mean, &sd);
    assert_true(w == R.weight);
    assert_rel(mean, R.y_mean, 1e-12, "y mean", 0);
    assert_rel(sd * sd, R.y_var, 1e-9, "y var", 0);
}

static void test_standard_dense_matches_numpy(void **state) {
    (void)state;
    sl_scaler_t *s = make(SL_SCALE_STANDARD);
    feed(s, 0);
    check_standard(s);
    sl_scaler_destroy(s);
}

/* A CSR batch's absent columns are zeros and repeated columns add up: the
 * same statistics as the dense rows. */
static void test_standard_sparse_matches_dense(void **state) {
    (void)state;
    sl_scaler_t *s = make(SL_SCALE_STANDARD);
    feed(s, 1);
    check_standard(s);
    sl_scaler_destroy(s);
}

static void test_maxabs_dense_and_sparse(void **state) {
    (void)state;
    for (int sparse = 0; sparse < 2; sparse++) {
        sl_scaler_t *s = make(SL_SCALE_MAXABS);
        feed(s, sparse);
        sl_scaler_state_t st;
        sl_scaler_get_state(s, &st);
        assert_int_equal(st.mode, SL_SCALE_MAXABS);
        assert_true(st.weight == R.weight);
        for (size_t j = 0; j < R.dim; j++) {
            assert_true(st.maxabs[j] == (float)R.maxabs[j]);
            assert_true(sl_scaler_shift(s)[j] == 0.0f);
            assert_true(sl_scaler_mult(s)[j] == (float)(1.0 / st.maxabs[j]));
        }
        sl_scaler_destroy(s);
    }
}

/* AUTO decides on its first batch with a labelled row. */
static void test_auto_resolves_by_form(void **state) {
    (void)state;
    for (int sparse = 0; sparse < 2; sparse++) {
        sl_scaler_t *s = make(SL_SCALE_AUTO);
        assert_int_equal(sl_scaler_mode(s), SL_SCALE_AUTO);
        uint8_t none[4] = {0, 0, 0, 0};
        sl_input_t in = {.n = 4, .dim = R.dim};
        if (sparse) {
            in.row_ptr = R.row_ptr;
            in.col = R.col;
            in.val = R.val;
        } else {
            in.dense = R.x;
        }
        assert_int_equal(sl_scaler_reserve(s, &in), SL_OK);
        sl_scaler_update(s, &in, R.w, none); /* nothing labelled: nothing decided */
        assert_int_equal(sl_scaler_mode(s), SL_SCALE_AUTO);
        assert_true(sl_scaler_weight(s) == 0);
        for (size_t j = 0; j < R.dim; j++)
            assert_true(sl_scaler_shift(s)[j] == 0.0f && sl_scaler_mult(s)[j] == 1.0f);
        feed(s, sparse);
        assert_int_equal(sl_scaler_mode(s), sparse ? SL_SCALE_MAXABS : SL_SCALE_STANDARD);
        assert_int_equal(sl_scaler_requested(s), SL_SCALE_AUTO);
        if (!sparse)
            check_standard(s);
        sl_scaler_reset(s);
        assert_int_equal(sl_scaler_mode(s), SL_SCALE_AUTO);
        assert_true(sl_scaler_weight(s) == 0 && sl_scaler_mult(s)[2] == 1.0f);
        sl_scaler_destroy(s);
    }
}

/* A weight of 3 counts as three copies of the sample. */
static void test_weights_are_copies(void **state) {
    (void)state;
    float x[] = {1, 10, 2, 20, 7, -5};
    float xcopies[] = {1, 10, 2, 20, 2, 20, 2, 20, 7, -5};
    float w[] = {1, 3, 1}, ones[] = {1, 1, 1, 1, 1};
    uint8_t lab[] = {1, 1, 1, 1, 1};
    char err[128];
    sl_scaler_t *a = sl_scaler_new(2, SL_SCALE_STANDARD, err, sizeof err);
    sl_scaler_t *b = sl_scaler_new(2, SL_SCALE_STANDARD, err, sizeof err);
    sl_input_t ia = {.n = 3, .dim = 2, .dense = x}, ib = {.n = 5, .dim = 2, .dense = xcopies};
    sl_scaler_update(a, &ia, w, lab);
    sl_scaler_update(b, &ib, ones, lab);
    sl_scaler_state_t sa, sb;
    sl_scaler_get_state(a, &sa);
    sl_scaler_get_state(b, &sb);
    for (int j = 0; j < 2; j++) {
        assert_true(fabs(sa.mean[j] - sb.mean[j]) < 1e-12);
        assert_true(fabs(sa.m2[j] - sb.m2[j]) < 1e-9);
    }
    assert_true(sa.weight == 5 && sb.weight == 5);
    sl_scaler_destroy(a);
    sl_scaler_destroy(b);
}

/* Constant features never give NaN or Inf: not after one sample, not after
 * many, not at a huge value; a feature varying by 1 around 1e6 is not
 * mistaken for a constant one. */
static void test_constant_features_are_nan_free(void **state) {
    (void)state;
    char err[128];
    sl_scaler_t *s = sl_scaler_new(3, SL_SCALE_STANDARD, err, sizeof err);
    float one = 1;
    uint8_t lab = 1;
    for (int i = 0; i < 1000; i++) {
        float x[3] = {1e8f, -0.1f, 1e6f + (float)(i % 2)};
        sl_input_t in = {.n = 1, .dim = 3, .dense = x};
        sl_scaler_update(s, &in, &one, &lab);
        const float *sh = sl_scaler_shift(s), *mu = sl_scaler_mult(s);
        float out[3];
        sl_scaler_apply_dense(s, x, 1, out);
        for (int j = 0; j < 3; j++)
            assert_true(isfinite(sh[j]) && isfinite(mu[j]) && isfinite(out[j]));
        assert_true(mu[0] == 1.0f && mu[1] == 1.0f);
        assert_true(out[0] == 0.0f && out[1] == 0.0f);
        if (i > 0) /* sd 0.5 once the count is even, close to it when odd */
            assert_true(fabsf(mu[2] - 2.0f) < 0.13f);
    }
    double w, mean, sd;
    float y[3] = {5, 5, 5}, ws[3] = {1, 2, 3};
    uint8_t labs[3] = {1, 1, 1};
    sl_scaler_update_target(s, y, ws, labs, 3);
    sl_scaler_target(s, &w, &mean, &sd);
    assert_true(w == 6 && mean == 5 && sd == 1);
    sl_scaler_destroy(s);
}

/* The transform is (x - shift) * mult in float32, that order; sparse values
 * are only multiplied (zeros stay zeros). */
static void test_apply(void **state) {
    (void)state;
    sl_scaler_t *s = make(SL_SCALE_STANDARD);
    feed(s, 0);
    const float *sh = sl_scaler_shift(s), *mu = sl_scaler_mult(s);
    float *out = malloc(R.n * R.dim * sizeof(float));
    sl_scaler_apply_dense(s, R.x, R.n, out);
    for (size_t i = 0; i < R.n * R.dim; i++) {
        size_t j = i % R.dim;
        float d = R.x[i] - sh[j];
        assert_true(out[i] == d * mu[j]);
    }
    sl_input_t in = {.n = 3, .dim = R.dim, .row_ptr = R.row_ptr + 2, .col = R.col, .val = R.val};
    sl_scaler_apply_sparse(s, &in, out);
    for (size_t k = R.row_ptr[2]; k < R.row_ptr[5]; k++)
        assert_true(out[k - R.row_ptr[2]] == R.val[k] * mu[R.col[k]]);
    free(out);
    sl_scaler_destroy(s);
}

static void test_state_round_trip_and_bad_states(void **state) {
    (void)state;
    sl_scaler_t *a = make(SL_SCALE_AUTO), *b = make(SL_SCALE_AUTO);
    feed(a, 0);
    assert_int_equal(sl_scaler_copy(b, a), SL_OK);
    sl_scaler_state_t sa, sb;
    sl_scaler_get_state(a, &sa);
    sl_scaler_get_state(b, &sb);
    assert_int_equal(sb.mode, SL_SCALE_STANDARD);
    assert_memory_equal(sa.mean, sb.mean, R.dim * sizeof(double));
    assert_memory_equal(sa.m2, sb.m2, R.dim * sizeof(double));
    assert_memory_equal(sl_scaler_mult(a), sl_scaler_mult(b), R.dim * sizeof(float));
    assert_true(sa.y_m2 == sb.y_m2 && sa.count == sb.count);

    char err[256];
    sl_scaler_t *c = make(SL_SCALE_MAXABS);
    assert_int_equal(sl_scaler_copy(c, a), SL_ERR_MISMATCH); /* another requested mode */
    sl_scaler_state_t bad = sa;
    bad.requested = SL_SCALE_MAXABS;
    assert_int_equal(sl_scaler_set_state(b, &bad, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "mode"));
    double *m2 = malloc(R.dim * sizeof(double));
    memcpy(m2, sa.m2, R.dim * sizeof(double));
    m2[3] = -1;
    bad = sa;
    bad.m2 = m2;
    assert_int_equal(sl_scaler_set_state(b, &bad, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "feature 3"));
    m2[3] = NAN;
    assert_int_equal(sl_scaler_set_state(b, &bad, err, sizeof err), SL_ERR_INVAL);
    bad = sa;
    bad.weight = INFINITY;
    assert_int_equal(sl_scaler_set_state(b, &bad, err, sizeof err), SL_ERR_INVAL);
    bad = sa;
    bad.m2 = NULL;
    assert_int_equal(sl_scaler_set_state(b, &bad, err, sizeof err), SL_ERR_INVAL);
    /* b unchanged by the refusals */
    assert_memory_equal(sl_scaler_mult(a), sl_scaler_mult(b), R.dim * sizeof(float));
    free(m2);
    sl_scaler_destroy(a);
    sl_scaler_destroy(b);
    sl_scaler_destroy(c);
}

static void test_names_and_bad_arguments(void **state) {
    (void)state;
    sl_scale_mode_t m;
    const char *names[] = {"off", "standard", "maxabs", "auto"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sl_scaler_mode_parse(names[i], &m), SL_OK);
        assert_int_equal(m, i);
        assert_string_equal(sl_scaler_mode_name(m), names[i]);
    }
    assert_int_equal(sl_scaler_mode_parse("minmax", &m), SL_ERR_INVAL);
    char err[128];
    assert_null(sl_scaler_new(0, SL_SCALE_STANDARD, err, sizeof err));
    assert_non_null(strstr(err, "dim"));
    assert_null(sl_scaler_new(4, (sl_scale_mode_t)9, err, sizeof err));
    sl_scaler_destroy(NULL);
    sl_scaler_t *off = sl_scaler_new(2, SL_SCALE_OFF, err, sizeof err);
    assert_false(sl_scaler_on(off));
    float x[2] = {5, 6}, one = 1;
    uint8_t lab = 1;
    sl_input_t in = {.n = 1, .dim = 2, .dense = x};
    sl_scaler_update(off, &in, &one, &lab);
    assert_true(sl_scaler_weight(off) == 0 && sl_scaler_mult(off)[0] == 1.0f);
    sl_scaler_destroy(off);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_standard_dense_matches_numpy),
        cmocka_unit_test(test_standard_sparse_matches_dense),
        cmocka_unit_test(test_maxabs_dense_and_sparse),
        cmocka_unit_test(test_auto_resolves_by_form),
        cmocka_unit_test(test_weights_are_copies),
        cmocka_unit_test(test_constant_features_are_nan_free),
        cmocka_unit_test(test_apply),
        cmocka_unit_test(test_state_round_trip_and_bad_states),
        cmocka_unit_test(test_names_and_bad_arguments),
    };
    return cmocka_run_group_tests(tests, load_ref, free_ref);
}
