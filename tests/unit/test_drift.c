/* test_drift.c - Page-Hinkley and ADWIN against the reference vectors of
 * scripts/drift_reference.py (alarm positions and final state, exact), and
 * the exact save/restore of their state. */
#include <cjson/cJSON.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "model/drift.h"

static cJSON *load_vectors(void) {
    const char *dir = getenv("SL_FIXTURES");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/drift/vectors.json", dir ? dir : "tests/fixtures");
    uint8_t *buf;
    size_t len;
    if (sl_fileio_read(path, 8u << 20, &buf, &len, err, sizeof err) != SL_OK)
        fail_msg("%s", err);
    cJSON *root = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    if (!root)
        fail_msg("%s: not JSON", path);
    return root;
}

static double num(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(v))
        fail_msg("vectors: no number %s", key);
    return v->valuedouble;
}

/* The detector a case names, with the parameters the reference used. */
static sl_drift_t *make_detector(const cJSON *cs) {
    const char *name = cJSON_GetObjectItemCaseSensitive(cs, "detector")->valuestring;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(cs, "params");
    sl_drift_config_t c;
    if (strncmp(name, "ph", 2) == 0) {
        c = sl_drift_config_default(SL_DRIFT_PH);
        c.ph_min_instances = (uint32_t)num(p, "min_instances");
        c.ph_delta = num(p, "delta");
        c.ph_threshold = num(p, "threshold");
        c.ph_alpha = num(p, "alpha");
        const char *mode = cJSON_GetObjectItemCaseSensitive(p, "mode")->valuestring;
        c.ph_mode = strcmp(mode, "up") == 0     ? SL_DRIFT_UP
                    : strcmp(mode, "down") == 0 ? SL_DRIFT_DOWN
                                                : SL_DRIFT_BOTH;
    } else {
        c = sl_drift_config_default(SL_DRIFT_ADWIN);
        c.adwin_delta = num(p, "delta");
        c.adwin_clock = (uint32_t)num(p, "clock");
        c.adwin_max_buckets = (uint32_t)num(p, "max_buckets");
        c.adwin_min_window = (uint32_t)num(p, "mwl");
        c.adwin_grace = (uint32_t)num(p, "grace");
    }
    char err[256];
    sl_drift_t *d = sl_drift_new(&c, err, sizeof err);
    if (!d)
        fail_msg("sl_drift_new: %s", err);
    return d;
}

static sl_drift_t *roundtrip(sl_drift_t *d) {
    uint8_t *buf;
    size_t len;
    assert_int_equal(sl_drift_save(d, &buf, &len), SL_OK);
    char err[256];
    sl_err_t e;
    sl_drift_t *back = sl_drift_load(buf, len, &e, err, sizeof err);
    if (!back)
        fail_msg("sl_drift_load: %s", err);
    free(buf);
    sl_drift_destroy(d);
    return back;
}

/* Every case: the alarm positions equal the reference's, and so does the
 * final state, bit for bit (same operations in the same order). Halfway, the
 * detector goes through a save and a load, which must change nothing. */
static void test_reference_vectors(void **state) {
    (void)state;
    cJSON *root = load_vectors();
    const cJSON *streams = cJSON_GetObjectItemCaseSensitive(root, "streams");
    const cJSON *cs;
    int n_cases = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(root, "cases")) {
        const char *sname = cJSON_GetObjectItemCaseSensitive(cs, "stream")->valuestring;
        const char *dname = cJSON_GetObjectItemCaseSensitive(cs, "detector")->valuestring;
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(streams, sname);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(cs, "alarms");
        int n = cJSON_GetArraySize(values), n_want = cJSON_GetArraySize(want), got = 0;
        sl_drift_t *d = make_detector(cs);
        const cJSON *v;
        int i = 0;
        cJSON_ArrayForEach(v, values) {
            if (i == n / 2)
                d = roundtrip(d);
            if (sl_drift_update(d, v->valuedouble)) {
                if (got >= n_want || cJSON_GetArrayItem(want, got)->valueint != i)
                    fail_msg("%s/%s: unexpected alarm at %d (alarm #%d)", sname, dname, i, got);
                got++;
            }
            i++;
        }
        if (got != n_want)
            fail_msg("%s/%s: %d alarms, the reference has %d", sname, dname, got, n_want);
        const cJSON *fin = cJSON_GetObjectItemCaseSensitive(cs, "final");
        sl_drift_info_t info;
        sl_drift_info(d, &info);
        if (dname[0] == 'p') {
            assert_int_equal(info.n, (uint64_t)num(fin, "n"));
            if (info.estimate != num(fin, "mean"))
                fail_msg("%s/%s: mean %.17g, reference %.17g", sname, dname, info.estimate,
                         num(fin, "mean"));
        } else {
            assert_int_equal(info.n, (uint64_t)num(fin, "width"));
            double est = num(fin, "total") / num(fin, "width");
            if (info.estimate != est)
                fail_msg("%s/%s: estimate %.17g, reference %.17g", sname, dname, info.estimate,
                         est);
        }
        assert_int_equal(info.detections, (uint64_t)n_want);
        sl_drift_destroy(d);
        n_cases++;
    }
    assert_true(n_cases >= 30);
    cJSON_Delete(root);
}

/* River's documented examples, by hand: the stream is 1000 values from {0, 1}
 * then 1000 from {4..7} (random.Random(12345).choices); River prints "Change
 * detected at index 1006" for PageHinkley() and "index 1023" for ADWIN(). */
static void test_river_docstring_example(void **state) {
    (void)state;
    cJSON *root = load_vectors();
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "streams"), "river_doc");
    sl_drift_config_t ph = sl_drift_config_default(SL_DRIFT_PH);
    ph.ph_mode = SL_DRIFT_BOTH; /* River's default */
    sl_drift_config_t ad = sl_drift_config_default(SL_DRIFT_ADWIN);
    sl_drift_t *d[2] = {sl_drift_new(&ph, NULL, 0), sl_drift_new(&ad, NULL, 0)};
    int first[2] = {-1, -1}, i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, values) {
        for (int k = 0; k < 2; k++)
            if (sl_drift_update(d[k], v->valuedouble) && first[k] < 0) {
                first[k] = i;
                sl_drift_info_t info;
                sl_drift_info(d[k], &info);
                assert_int_equal(info.direction, 1); /* the mean rose */
                assert_true(info.change_age > 0 && info.change_age < 1000);
            }
        i++;
    }
    assert_int_equal(first[0], 1006);
    assert_int_equal(first[1], 1023);
    sl_drift_destroy(d[0]);
    sl_drift_destroy(d[1]);
    cJSON_Delete(root);
}

/* A step down is flagged by ADWIN (it is two-sided) with direction -1, never
 * by Page-Hinkley in its default "up" mode; a step up by both, with +1. */
static void test_direction_and_change_age(void **state) {
    (void)state;
    for (int up = 0; up < 2; up++) {
        sl_drift_config_t cp = sl_drift_config_default(SL_DRIFT_PH);
        sl_drift_config_t ca = sl_drift_config_default(SL_DRIFT_ADWIN);
        sl_drift_t *ph = sl_drift_new(&cp, NULL, 0), *ad = sl_drift_new(&ca, NULL, 0);
        int ph_hits = 0, ad_hits = 0, ad_dir = 0;
        uint64_t ad_age = 0;
        for (int i = 0; i < 4000; i++) {
            double lo = (i % 10 == 0) ? 1.0 : 0.0; /* 10% "errors" */
            double hi = (i % 10 < 6) ? 1.0 : 0.0;  /* 60% */
            double x = i < 2000 ? (up ? lo : hi) : (up ? hi : lo);
            ph_hits += sl_drift_update(ph, x);
            if (sl_drift_update(ad, x)) {
                sl_drift_info_t info;
                sl_drift_info(ad, &info);
                if (!ad_hits++) {
                    ad_dir = info.direction;
                    ad_age = info.change_age;
                    assert_true(i >= 2000 && i < 2100);
                    /* the window kept covers the values since the step, and
                     * little before it (buckets are up to 2^k values wide) */
                    assert_true(ad_age >= (uint64_t)(i - 1999) && ad_age <= 512);
                }
            }
        }
        assert_true(ad_hits >= 1);
        assert_int_equal(ad_dir, up ? 1 : -1);
        assert_true(ad_age > 0);
        if (up)
            assert_true(ph_hits >= 1);
        else
            assert_int_equal(ph_hits, 0);
        sl_drift_destroy(ph);
        sl_drift_destroy(ad);
    }
}

static void test_off_never_fires_and_null_destroy(void **state) {
    (void)state;
    sl_drift_config_t c = sl_drift_config_default(SL_DRIFT_OFF);
    sl_drift_t *d = sl_drift_new(&c, NULL, 0);
    assert_non_null(d);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(sl_drift_update(d, i < 5000 ? 0.0 : 100.0), 0);
    d = roundtrip(d);
    assert_int_equal(sl_drift_config(d)->kind, SL_DRIFT_OFF);
    sl_drift_destroy(d);
    sl_drift_destroy(NULL);
}

static void test_config_check_and_names(void **state) {
    (void)state;
    char err[256];
    sl_drift_config_t c = sl_drift_config_default(SL_DRIFT_ADWIN);
    c.adwin_delta = 1.5;
    assert_null(sl_drift_new(&c, err, sizeof err));
    assert_non_null(strstr(err, "adwin delta"));
    c = sl_drift_config_default(SL_DRIFT_PH);
    c.ph_alpha = 0;
    assert_int_equal(sl_drift_config_check(&c, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "ph alpha"));
    c = sl_drift_config_default(SL_DRIFT_ADWIN);
    c.adwin_max_buckets = 65;
    assert_int_equal(sl_drift_config_check(&c, err, sizeof err), SL_ERR_INVAL);
    sl_drift_kind_t k = SL_DRIFT_OFF;
    assert_int_equal(sl_drift_kind_parse("adwin", &k), SL_OK);
    assert_int_equal(k, SL_DRIFT_ADWIN);
    assert_int_equal(sl_drift_kind_parse("ph", &k), SL_OK);
    assert_int_equal(k, SL_DRIFT_PH);
    assert_int_equal(sl_drift_kind_parse("kswin", &k), SL_ERR_INVAL);
    assert_int_equal(k, SL_DRIFT_PH);
    assert_string_equal(sl_drift_kind_name(SL_DRIFT_OFF), "off");
}

/* A clone and a restored blob go on exactly like the original; a damaged
 * blob is refused with a reason, never read. */
static void test_clone_and_bad_blobs(void **state) {
    (void)state;
    sl_drift_config_t c = sl_drift_config_default(SL_DRIFT_ADWIN);
    sl_drift_t *a = sl_drift_new(&c, NULL, 0);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sl_drift_update(a, (double)(x % 1000) / 1000.0 + (i > 4000 ? 0.3 : 0));
    }
    sl_drift_t *b = sl_drift_clone(a);
    uint8_t *buf;
    size_t len;
    assert_int_equal(sl_drift_save(a, &buf, &len), SL_OK);
    sl_drift_t *r = sl_drift_load(buf, len, NULL, NULL, 0);
    assert_non_null(r);
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double v = (double)(x % 1000) / 1000.0 * (i > 2000 ? 2 : 1);
        int ha = sl_drift_update(a, v);
        assert_int_equal(sl_drift_update(b, v), ha);
        assert_int_equal(sl_drift_update(r, v), ha);
    }
    sl_drift_info_t ia, ib, ir;
    sl_drift_info(a, &ia);
    sl_drift_info(b, &ib);
    sl_drift_info(r, &ir);
    assert_memory_equal(&ia, &ib, sizeof ia);
    assert_memory_equal(&ia, &ir, sizeof ia);
    char err[256];
    sl_err_t e;
    buf[len / 2] ^= 1;
    assert_null(sl_drift_load(buf, len, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_CHECKSUM);
    buf[len / 2] ^= 1;
    assert_null(sl_drift_load(buf, len - 3, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_TRUNCATED);
    buf[4] = 9; /* a newer format */
    assert_null(sl_drift_load(buf, len, &e, err, sizeof err));
    assert_int_equal(e, SL_ERR_VERSION);
    assert_null(sl_drift_load(NULL, 0, &e, err, sizeof err));
    free(buf);
    sl_drift_destroy(a);
    sl_drift_destroy(b);
    sl_drift_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_river_docstring_example),
        cmocka_unit_test(test_direction_and_change_age),
        cmocka_unit_test(test_off_never_fires_and_null_destroy),
        cmocka_unit_test(test_config_check_and_names),
        cmocka_unit_test(test_clone_and_bad_blobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
