/* test_encode.c - prediction and error maps, read back with msgpack-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <msgpack.h>

#include "consumer/encode.h"

/* Reads the next object of out from *off into *u (msgpack-c owns the zone). */
static msgpack_object next(const sl_buf_t *out, size_t *off, msgpack_unpacked *u) {
    msgpack_unpack_return ret = msgpack_unpack_next(u, (const char *)out->data, out->len, off);
    assert_true(ret == MSGPACK_UNPACK_SUCCESS || ret == MSGPACK_UNPACK_EXTRA_BYTES);
    return u->data;
}

/* The value under string key k of map m; fails the test when absent. */
static msgpack_object get(msgpack_object m, const char *k) {
    assert_int_equal(m.type, MSGPACK_OBJECT_MAP);
    for (uint32_t i = 0; i < m.via.map.size; i++) {
        msgpack_object key = m.via.map.ptr[i].key;
        if (key.type == MSGPACK_OBJECT_STR && key.via.str.size == strlen(k) &&
            memcmp(key.via.str.ptr, k, key.via.str.size) == 0)
            return m.via.map.ptr[i].val;
    }
    fail_msg("key %s missing", k);
    return m;
}

static int has(msgpack_object m, const char *k) {
    for (uint32_t i = 0; i < m.via.map.size; i++) {
        msgpack_object key = m.via.map.ptr[i].key;
        if (key.via.str.size == strlen(k) && memcmp(key.via.str.ptr, k, key.via.str.size) == 0)
            return 1;
    }
    return 0;
}

static void test_linear_and_logistic_round_trip(void **state) {
    (void)state;
    sl_buf_t out = {0};
    const uint8_t id300[] = {0xcd, 0x01, 0x2c};
    const float lin = -3.25f, prob = 0.8125f;
    assert_int_equal(sl_encode_prediction(&out, id300, 3, SL_HEAD_LINEAR, &lin, 1, 7, 1000), SL_OK);
    assert_int_equal(sl_encode_prediction(&out, NULL, 0, SL_HEAD_LOGISTIC, &prob, 1, 0, 0), SL_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_object m = next(&out, &off, &u);
    assert_int_equal(m.via.map.size, 4);
    assert_int_equal(get(m, "id").type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(get(m, "id").via.u64, 300);
    assert_int_equal(get(m, "pred").type, MSGPACK_OBJECT_FLOAT32);
    assert_true(get(m, "pred").via.f64 == -3.25);
    assert_int_equal(get(m, "version").via.u64, 7);
    assert_int_equal(get(m, "step").via.u64, 1000);
    assert_false(has(m, "proba"));

    m = next(&out, &off, &u);
    assert_int_equal(get(m, "id").type, MSGPACK_OBJECT_NIL);
    assert_true(get(m, "pred").via.f64 == 0.8125);
    assert_int_equal(get(m, "version").via.u64, 0);
    assert_int_equal(off, out.len); /* nothing else written */
    msgpack_unpacked_destroy(&u);
    sl_buf_free(&out);
}

static void test_softmax_round_trip(void **state) {
    (void)state;
    sl_buf_t out = {0};
    const float p3[3] = {0.2f, 0.5f, 0.3f};
    float p20[20];
    for (int j = 0; j < 20; j++)
        p20[j] = j == 17 ? 0.6f : 0.4f / 19;
    const uint8_t id[] = {0xa3, 'a', 'b', 'c'};
    assert_int_equal(sl_encode_prediction(&out, id, 4, SL_HEAD_SOFTMAX, p3, 3, 2, 3), SL_OK);
    assert_int_equal(
        sl_encode_prediction(&out, NULL, 0, SL_HEAD_SOFTMAX, p20, 20, UINT64_MAX, 65536), SL_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_object m = next(&out, &off, &u);
    assert_int_equal(m.via.map.size, 5);
    msgpack_object id_o = get(m, "id");
    assert_int_equal(id_o.type, MSGPACK_OBJECT_STR);
    assert_memory_equal(id_o.via.str.ptr, "abc", 3);
    assert_int_equal(get(m, "pred").type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(get(m, "pred").via.u64, 1);
    msgpack_object pr = get(m, "proba");
    assert_int_equal(pr.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(pr.via.array.size, 3);
    for (int j = 0; j < 3; j++) {
        assert_int_equal(pr.via.array.ptr[j].type, MSGPACK_OBJECT_FLOAT32);
        assert_true((float)pr.via.array.ptr[j].via.f64 == p3[j]);
    }

    m = next(&out, &off, &u);
    assert_int_equal(get(m, "pred").via.u64, 17);
    assert_int_equal(get(m, "proba").via.array.size, 20);
    assert_true(get(m, "version").via.u64 == UINT64_MAX);
    assert_int_equal(get(m, "step").via.u64, 65536);
    msgpack_unpacked_destroy(&u);
    sl_buf_free(&out);
}

static void test_softmax_argmax_ties_and_nan(void **state) {
    (void)state;
    sl_buf_t out = {0};
    const float tie[3] = {0.4f, 0.4f, 0.2f};
    const float nan_first[3] = {NAN, 0.1f, 0.9f};
    assert_int_equal(sl_encode_prediction(&out, NULL, 0, SL_HEAD_SOFTMAX, tie, 3, 0, 0), SL_OK);
    assert_int_equal(sl_encode_prediction(&out, NULL, 0, SL_HEAD_SOFTMAX, nan_first, 3, 0, 0),
                     SL_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(get(next(&out, &off, &u), "pred").via.u64, 0); /* first maximum */
    assert_int_equal(get(next(&out, &off, &u), "pred").via.u64, 2); /* NaN never wins */
    msgpack_unpacked_destroy(&u);
    sl_buf_free(&out);
}

static void test_softmax_without_classes_is_refused(void **state) {
    (void)state;
    sl_buf_t out = {0};
    const float p = 1.0f;
    assert_int_equal(sl_encode_prediction(&out, NULL, 0, SL_HEAD_SOFTMAX, &p, 0, 0, 0),
                     SL_ERR_INVAL);
    assert_int_equal(out.len, 0);
    sl_buf_free(&out);
}

/* Error texts of every str header size come back intact. */
static void test_error_round_trip(void **state) {
    (void)state;
    static char long_err[70000];
    memset(long_err, 'e', sizeof(long_err) - 1);
    const char *errs[] = {"x: missing", "x: expected 32 features, got 31 (a longer text)", NULL,
                          long_err};
    char mid[300];
    memset(mid, 'm', sizeof(mid) - 1);
    mid[sizeof(mid) - 1] = '\0';
    errs[2] = mid;
    sl_buf_t out = {0};
    const uint8_t id[] = {0x2a};
    for (int i = 0; i < 4; i++)
        assert_int_equal(sl_encode_error(&out, i % 2 ? id : NULL, i % 2, errs[i], 9, 10), SL_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        msgpack_object m = next(&out, &off, &u);
        assert_int_equal(m.via.map.size, 4);
        msgpack_object e = get(m, "error");
        assert_int_equal(e.type, MSGPACK_OBJECT_STR);
        assert_int_equal(e.via.str.size, strlen(errs[i]));
        assert_memory_equal(e.via.str.ptr, errs[i], e.via.str.size);
        if (i % 2)
            assert_int_equal(get(m, "id").via.u64, 42);
        else
            assert_int_equal(get(m, "id").type, MSGPACK_OBJECT_NIL);
        assert_int_equal(get(m, "version").via.u64, 9);
        assert_int_equal(get(m, "step").via.u64, 10);
        assert_false(has(m, "pred"));
    }
    assert_int_equal(off, out.len);
    msgpack_unpacked_destroy(&u);
    sl_buf_free(&out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_and_logistic_round_trip),
        cmocka_unit_test(test_softmax_round_trip),
        cmocka_unit_test(test_softmax_argmax_ties_and_nan),
        cmocka_unit_test(test_softmax_without_classes_is_refused),
        cmocka_unit_test(test_error_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
