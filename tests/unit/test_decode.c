/* test_decode.c - sample messages to batch rows and error slots; the batch itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <msgpack.h>

#include "consumer/batch.h"
#include "consumer/decode.h"

/* --- building messages with msgpack-c (independent of the code under test) */

typedef struct mp {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mp_t;

static void mp_init(mp_t *m) {
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mp_free(mp_t *m) {
    msgpack_sbuffer_destroy(&m->sb);
}

static void key(mp_t *m, const char *k) {
    msgpack_pack_str(&m->pk, strlen(k));
    msgpack_pack_str_body(&m->pk, k, strlen(k));
}

static void dense_x(mp_t *m, const double *x, size_t n) {
    key(m, "x");
    msgpack_pack_array(&m->pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_double(&m->pk, x[i]);
}

/* {"id": id, "x": [x...], "y": y} as python's msgpack writes it. */
static void sample(mp_t *m, int64_t id, const double *x, size_t n, double y) {
    msgpack_pack_map(&m->pk, 3);
    key(m, "id");
    msgpack_pack_int64(&m->pk, id);
    dense_x(m, x, n);
    key(m, "y");
    msgpack_pack_double(&m->pk, y);
}

static sl_decoder_t *decoder(uint32_t dim, sl_head_t head, uint32_t classes) {
    sl_decode_config_t cfg = {.dim = dim, .head = head, .classes = classes};
    char err[128];
    sl_decoder_t *d = sl_decoder_new(&cfg, err, sizeof(err));
    assert_non_null(d);
    return d;
}

static sl_decode_result_t decode(sl_decoder_t *d, const mp_t *m, sl_batch_t *b, uint64_t tag) {
    sl_decode_result_t res;
    assert_int_equal(sl_decode_message(d, (const uint8_t *)m->sb.data, m->sb.size, tag, b, &res),
                     SL_OK);
    return res;
}

/* Feature j of row r, whatever form the batch holds (CSR repeats add up). */
static float feature(const sl_batch_t *b, size_t r, uint32_t j) {
    if (!b->sparse)
        return b->dense[r * b->dim + j];
    float sum = 0;
    for (size_t k = b->row_ptr[r]; k < b->row_ptr[r + 1]; k++)
        if (b->col[k] == j)
            sum += b->val[k];
    return sum;
}

static const double X4[4] = {0.5, -1.25, 3.0, 0.0};

/* --- good samples ------------------------------------------------------ */

static void test_dense_array_sample(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LOGISTIC, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    sample(&m, 300, X4, 4, 1.0);
    sl_decode_result_t res = decode(d, &m, b, 77);
    assert_int_equal(res.good, 1);
    assert_int_equal(res.bad, 0);
    assert_int_equal(sl_batch_rows(b), 1);
    assert_false(b->sparse);
    for (uint32_t j = 0; j < 4; j++)
        assert_true(feature(b, 0, j) == (float)X4[j]);
    sl_input_t x;
    sl_targets_t t;
    sl_batch_view(b, 0, 1, &x, &t);
    assert_int_equal(x.n, 1);
    assert_true(t.y[0] == 1.0f && t.w[0] == 1.0f && t.labelled[0] == 1);
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    assert_true(v.good);
    assert_int_equal(v.tag, 77);
    const uint8_t id300[] = {0xcd, 0x01, 0x2c}; /* the id's raw bytes, kept verbatim */
    assert_int_equal(v.id_len, sizeof(id300));
    assert_memory_equal(v.id, id300, sizeof(id300));
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_bin_sample_equals_array_sample(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    uint8_t le[16];
    for (int j = 0; j < 4; j++) {
        float f = (float)X4[j];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int k = 0; k < 4; k++)
            le[4 * j + k] = (uint8_t)(u >> (8 * k));
    }
    msgpack_pack_map(&m.pk, 2);
    key(&m, "x");
    msgpack_pack_bin(&m.pk, 16);
    msgpack_pack_bin_body(&m.pk, le, 16);
    key(&m, "y");
    msgpack_pack_double(&m.pk, -2.5);
    decode(d, &m, b, 0);
    assert_int_equal(sl_batch_rows(b), 1);
    for (uint32_t j = 0; j < 4; j++)
        assert_true(feature(b, 0, j) == (float)X4[j]);
    assert_true(b->y[0] == -2.5f);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* Runs of float32 or float64 elements take a faster path; elements of
 * other forms after or before a run, and runs that switch form, read the
 * same. */
static void test_float_runs_and_mixed_elements(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 4);
    msgpack_pack_map(&m.pk, 1); /* all float32 */
    key(&m, "x");
    msgpack_pack_array(&m.pk, 4);
    for (int j = 0; j < 4; j++)
        msgpack_pack_float(&m.pk, (float)X4[j]);
    msgpack_pack_map(&m.pk, 1); /* float32, float32, an int, float64 */
    key(&m, "x");
    msgpack_pack_array(&m.pk, 4);
    msgpack_pack_float(&m.pk, 0.5f);
    msgpack_pack_float(&m.pk, -1.25f);
    msgpack_pack_int(&m.pk, 3);
    msgpack_pack_double(&m.pk, 0.0);
    msgpack_pack_map(&m.pk, 1); /* an int first, then float32 */
    key(&m, "x");
    msgpack_pack_array(&m.pk, 4);
    msgpack_pack_int(&m.pk, 0);
    msgpack_pack_float(&m.pk, -1.25f);
    msgpack_pack_float(&m.pk, 3.0f);
    msgpack_pack_float(&m.pk, 0.0f);
    msgpack_pack_map(&m.pk, 1); /* float64 switching to float32 */
    key(&m, "x");
    msgpack_pack_array(&m.pk, 4);
    msgpack_pack_double(&m.pk, 0.5);
    msgpack_pack_double(&m.pk, -1.25);
    msgpack_pack_float(&m.pk, 3.0f);
    msgpack_pack_float(&m.pk, 0.0f);
    sl_decode_result_t res = decode(d, &m, b, 0);
    assert_int_equal(res.good, 4);
    const float want0[4] = {0.0f, -1.25f, 3.0f, 0.0f};
    for (uint32_t j = 0; j < 4; j++) {
        assert_true(feature(b, 0, j) == (float)X4[j]);
        assert_true(feature(b, 1, j) == (float)X4[j]);
        assert_true(feature(b, 2, j) == want0[j]);
        assert_true(feature(b, 3, j) == (float)X4[j]);
    }
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* Named keys hash with MurmurHash3_x86_32(seed 0) mod dim: murmur3("f1") =
 * 826013361 (17 mod 32), "user_age" = 7243560 (8), "country=DE" =
 * 2312529861 (5); int keys mix in; repeated indices add up. */
static void test_sparse_named_and_mixed_keys(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(32, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(32, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 1);
    key(&m, "x");
    msgpack_pack_map(&m.pk, 5);
    key(&m, "f1");
    msgpack_pack_double(&m.pk, 1.5);
    key(&m, "user_age");
    msgpack_pack_int(&m.pk, 40);
    msgpack_pack_int(&m.pk, 8); /* same index as "user_age" */
    msgpack_pack_float(&m.pk, 2.0f);
    key(&m, "country=DE");
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_int(&m.pk, 31);
    msgpack_pack_double(&m.pk, -1.0);
    sl_decode_result_t res = decode(d, &m, b, 0);
    assert_int_equal(res.good, 1);
    assert_true(b->sparse);
    float want[32] = {0};
    want[17] = 1.5f, want[8] = 42.0f, want[5] = 1.0f, want[31] = -1.0f;
    for (uint32_t j = 0; j < 32; j++)
        if (feature(b, 0, j) != want[j])
            fail_msg("feature %u: got %g want %g", j, feature(b, 0, j), want[j]);
    assert_false(b->labelled[0]); /* no y: predict only */
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_predict_only_and_weight(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_map(&m.pk, 2);
    dense_x(&m, X4, 4);
    key(&m, "y");
    msgpack_pack_nil(&m.pk);
    msgpack_pack_map(&m.pk, 3);
    dense_x(&m, X4, 4);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 3);
    key(&m, "w");
    msgpack_pack_double(&m.pk, 0.25);
    sl_decode_result_t res = decode(d, &m, b, 0);
    assert_int_equal(res.good, 2);
    assert_int_equal(b->labelled[0], 0);
    assert_int_equal(b->labelled[1], 1);
    assert_true(b->y[1] == 3.0f && b->w[1] == 0.25f && b->w[0] == 1.0f);
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    assert_int_equal(v.id_len, 0);
    assert_null(v.id);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_unknown_keys_ignored(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    key(&m, "meta"); /* {"a": [[1]]}: nests to depth 5 in all, within the bound */
    msgpack_pack_map(&m.pk, 1);
    key(&m, "a");
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_array(&m.pk, 1);
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_int(&m.pk, 5); /* an int key */
    msgpack_pack_true(&m.pk);
    dense_x(&m, X4, 4);
    key(&m, "xx");
    msgpack_pack_str(&m.pk, 0);
    sl_decode_result_t res = decode(d, &m, b, 0);
    assert_int_equal(res.good, 1);
    assert_int_equal(res.bad, 0);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_softmax_labels_accept_integral_forms(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_SOFTMAX, 3);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    msgpack_pack_map(&m.pk, 2);
    dense_x(&m, X4, 4);
    key(&m, "y");
    msgpack_pack_uint8(&m.pk, 2);
    msgpack_pack_map(&m.pk, 2);
    dense_x(&m, X4, 4);
    key(&m, "y");
    msgpack_pack_double(&m.pk, 1.0);
    msgpack_pack_map(&m.pk, 2);
    dense_x(&m, X4, 4);
    key(&m, "y");
    msgpack_pack_int64(&m.pk, 0);
    sl_decode_result_t res = decode(d, &m, b, 0);
    assert_int_equal(res.good, 3);
    assert_true(b->y[0] == 2.0f && b->y[1] == 1.0f && b->y[2] == 0.0f);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* --- bad samples: each sits between two good ones ----------------------- */

typedef void (*bad_fn)(mp_t *m);

/* Packs [good, bad, good] and checks the middle slot's error and that both
 * neighbours decoded. Returns nothing; fails the test on mismatch. */
static void expect_bad(sl_head_t head, uint32_t classes, bad_fn bad, const char *want) {
    sl_decoder_t *d = decoder(4, head, classes);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    sample(&m, 1, X4, 4, 1.0);
    bad(&m);
    sample(&m, 3, X4, 4, 0.0);
    sl_decode_result_t res = decode(d, &m, b, 9);
    if (res.good != 2 || res.bad != 1)
        fail_msg("want 2 good 1 bad, got %zu good %zu bad (%s)", res.good, res.bad,
                 res.first_error);
    assert_string_equal(res.first_error, want);
    assert_int_equal(sl_batch_slots(b), 3);
    sl_slot_view_t v;
    sl_batch_slot(b, 1, &v);
    assert_false(v.good);
    assert_string_equal(v.error, want);
    assert_int_equal(v.tag, 9);
    sl_batch_slot(b, 2, &v);
    assert_true(v.good);
    assert_int_equal(v.row, 1);
    assert_true(feature(b, 1, 1) == -1.25f);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void short_x(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    dense_x(m, X4, 3);
}
static void nan_x(mp_t *m) {
    double x[4] = {0, 1, NAN, 2};
    msgpack_pack_map(&m->pk, 1);
    dense_x(m, x, 4);
}
static void inf_x(mp_t *m) {
    double x[4] = {0, 1, 2, -INFINITY};
    msgpack_pack_map(&m->pk, 1);
    dense_x(m, x, 4);
}
static void overflow_x(mp_t *m) {
    double x[4] = {1e300, 1, 2, 3}; /* finite double, infinite as float32 */
    msgpack_pack_map(&m->pk, 1);
    dense_x(m, x, 4);
}
static void nan_f32_x(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_array(&m->pk, 4);
    msgpack_pack_float(&m->pk, 1.0f);
    msgpack_pack_float(&m->pk, 2.0f);
    msgpack_pack_float(&m->pk, 3.0f);
    msgpack_pack_float(&m->pk, NAN);
}
static void inf_after_f32_run(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_array(&m->pk, 4);
    msgpack_pack_float(&m->pk, 1.0f);
    msgpack_pack_float(&m->pk, 2.0f);
    msgpack_pack_double(&m->pk, INFINITY);
    msgpack_pack_float(&m->pk, 3.0f);
}
static void str_in_x(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_array(&m->pk, 4);
    msgpack_pack_int(&m->pk, 1);
    key(m, "oops");
    msgpack_pack_int(&m->pk, 1);
    msgpack_pack_int(&m->pk, 1);
}
static void index_out_of_range(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_map(&m->pk, 2);
    msgpack_pack_int(&m->pk, 1);
    msgpack_pack_double(&m->pk, 1.0);
    msgpack_pack_int(&m->pk, 40);
    msgpack_pack_double(&m->pk, 1.0);
}
static void negative_index(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_map(&m->pk, 1);
    msgpack_pack_int(&m->pk, -2);
    msgpack_pack_double(&m->pk, 1.0);
}
static void float_key(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_map(&m->pk, 1);
    msgpack_pack_double(&m->pk, 1.0);
    msgpack_pack_double(&m->pk, 1.0);
}
static void named_nan(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_map(&m->pk, 1);
    key(m, "age");
    msgpack_pack_double(&m->pk, NAN);
}
static void short_bin(mp_t *m) {
    uint8_t z[12] = {0};
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_bin(&m->pk, 12);
    msgpack_pack_bin_body(&m->pk, z, 12);
}
static void nan_bin(mp_t *m) {
    uint8_t z[16] = {0};
    z[8 + 3] = 0x7f, z[8 + 2] = 0xc0; /* x[2] = NaN (little-endian 0x7fc00000) */
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    msgpack_pack_bin(&m->pk, 16);
    msgpack_pack_bin_body(&m->pk, z, 16);
}
static void missing_x(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "y");
    msgpack_pack_int(&m->pk, 1);
}
static void str_x(mp_t *m) {
    msgpack_pack_map(&m->pk, 1);
    key(m, "x");
    key(m, "1,2,3,4");
}
static void not_a_map(mp_t *m) {
    key(m, "hello");
}
static void duplicate_x(mp_t *m) {
    msgpack_pack_map(&m->pk, 2);
    dense_x(m, X4, 4);
    dense_x(m, X4, 4);
}
static void with_y(mp_t *m, void (*pack_y)(msgpack_packer *)) {
    msgpack_pack_map(&m->pk, 2);
    dense_x(m, X4, 4);
    key(m, "y");
    pack_y(&m->pk);
}
static void y7(msgpack_packer *pk) {
    msgpack_pack_int(pk, 7);
}
static void y_minus1(msgpack_packer *pk) {
    msgpack_pack_int(pk, -1);
}
static void y_half(msgpack_packer *pk) {
    msgpack_pack_double(pk, 0.5);
}
static void y_1_5(msgpack_packer *pk) {
    msgpack_pack_double(pk, 1.5);
}
static void y_inf(msgpack_packer *pk) {
    msgpack_pack_double(pk, INFINITY);
}
static void y_str(msgpack_packer *pk) {
    msgpack_pack_str(pk, 1);
    msgpack_pack_str_body(pk, "1", 1);
}
static void y_7_float(msgpack_packer *pk) {
    msgpack_pack_double(pk, 7.0);
}
static void bad_y7(mp_t *m) {
    with_y(m, y7);
}
static void bad_y_minus1(mp_t *m) {
    with_y(m, y_minus1);
}
static void bad_y_half(mp_t *m) {
    with_y(m, y_half);
}
static void bad_y_1_5(mp_t *m) {
    with_y(m, y_1_5);
}
static void bad_y_inf(mp_t *m) {
    with_y(m, y_inf);
}
static void bad_y_str(mp_t *m) {
    with_y(m, y_str);
}
static void bad_y_7_float(mp_t *m) {
    with_y(m, y_7_float);
}
static void with_w(mp_t *m, double w) {
    msgpack_pack_map(&m->pk, 3);
    dense_x(m, X4, 4);
    key(m, "y");
    msgpack_pack_int(&m->pk, 1);
    key(m, "w");
    msgpack_pack_double(&m->pk, w);
}
static void w_zero(mp_t *m) {
    with_w(m, 0.0);
}
static void w_negative(mp_t *m) {
    with_w(m, -1.0);
}
static void w_nan(mp_t *m) {
    with_w(m, NAN);
}
static void id_array(mp_t *m) {
    msgpack_pack_map(&m->pk, 2);
    key(m, "id");
    msgpack_pack_array(&m->pk, 0);
    dense_x(m, X4, 4);
}

static void test_bad_x(void **state) {
    (void)state;
    expect_bad(SL_HEAD_LINEAR, 0, short_x, "x: expected 4 features, got 3");
    expect_bad(SL_HEAD_LINEAR, 0, nan_x, "x[2]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, inf_x, "x[3]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, overflow_x, "x[0]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, nan_f32_x, "x[3]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, inf_after_f32_run, "x[2]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, str_in_x, "x[1]: expected a number, got str");
    expect_bad(SL_HEAD_LINEAR, 0, index_out_of_range, "x: index 40 out of range 0..3");
    expect_bad(SL_HEAD_LINEAR, 0, negative_index, "x: index -2 out of range 0..3");
    expect_bad(SL_HEAD_LINEAR, 0, float_key, "x: expected int or str keys, got a float key");
    expect_bad(SL_HEAD_LINEAR, 0, named_nan, "x[\"age\"]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, short_bin, "x: expected 16 bytes (4 float32), got 12");
    expect_bad(SL_HEAD_LINEAR, 0, nan_bin, "x[2]: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, missing_x, "x: missing");
    expect_bad(SL_HEAD_LINEAR, 0, str_x, "x: expected an array, bin or map, got str");
}

static void test_bad_sample_shape(void **state) {
    (void)state;
    expect_bad(SL_HEAD_LINEAR, 0, not_a_map, "sample: expected a map, got str");
    expect_bad(SL_HEAD_LINEAR, 0, duplicate_x, "sample: duplicate key x");
    expect_bad(SL_HEAD_LINEAR, 0, id_array, "id: expected a scalar, got array");
}

static void test_bad_labels(void **state) {
    (void)state;
    expect_bad(SL_HEAD_SOFTMAX, 5, bad_y7, "y: class 7 out of range 0..4");
    expect_bad(SL_HEAD_SOFTMAX, 5, bad_y_7_float, "y: class 7 out of range 0..4");
    expect_bad(SL_HEAD_SOFTMAX, 5, bad_y_minus1, "y: class -1 out of range 0..4");
    expect_bad(SL_HEAD_SOFTMAX, 5, bad_y_1_5, "y: class 1.5 is not an integer");
    expect_bad(SL_HEAD_LOGISTIC, 0, bad_y_half, "y: expected 0 or 1 for a logistic model, got 0.5");
    expect_bad(SL_HEAD_LINEAR, 0, bad_y_inf, "y: not a finite number");
    expect_bad(SL_HEAD_LINEAR, 0, bad_y_str, "y: expected a number, got str");
}

static void test_bad_weights(void **state) {
    (void)state;
    expect_bad(SL_HEAD_LOGISTIC, 0, w_zero, "w: expected a finite number > 0, got 0");
    expect_bad(SL_HEAD_LOGISTIC, 0, w_negative, "w: expected a finite number > 0, got -1");
    expect_bad(SL_HEAD_LOGISTIC, 0, w_nan, "w: expected a finite number > 0, got nan");
}

/* A bad sample keeps its id (wherever the key sits) so its output can be matched. */
static void test_bad_sample_keeps_id(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 2);
    dense_x(&m, X4, 3);
    key(&m, "id");
    key(&m, "order-17");
    sl_decode_result_t res = decode(d, &m, b, 0);
    assert_int_equal(res.bad, 1);
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    const uint8_t want[] = {0xa8, 'o', 'r', 'd', 'e', 'r', '-', '1', '7'};
    assert_int_equal(v.id_len, sizeof(want));
    assert_memory_equal(v.id, want, sizeof(want));
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* --- bad messages: one error slot, no id ------------------------------- */

static void expect_bad_message(const uint8_t *msg, size_t len, size_t max_bytes, const char *want) {
    sl_decode_config_t cfg = {.dim = 4, .head = SL_HEAD_LINEAR, .max_message_bytes = max_bytes};
    sl_decoder_t *d = sl_decoder_new(&cfg, NULL, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    sl_decode_result_t res;
    assert_int_equal(sl_decode_message(d, msg, len, 5, b, &res), SL_OK);
    assert_int_equal(res.good, 0);
    assert_int_equal(res.bad, 1);
    assert_int_equal(sl_batch_slots(b), 1);
    assert_int_equal(sl_batch_rows(b), 0);
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    assert_false(v.good);
    assert_int_equal(v.id_len, 0);
    assert_int_equal(v.tag, 5);
    assert_string_equal(v.error, want);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_bad_messages(void **state) {
    (void)state;
    mp_t m;
    mp_init(&m);
    sample(&m, 1, X4, 4, 1.0);
    const uint8_t *s = (const uint8_t *)m.sb.data;
    size_t n = m.sb.size;
    char want[128];
    snprintf(want, sizeof(want), "message: truncated after %zu bytes", n - 1);
    expect_bad_message(s, n - 1, 0, want);
    uint8_t trailing[128];
    memcpy(trailing, s, n);
    memset(trailing + n, 0, 3);
    expect_bad_message(trailing, n + 3, 0, "message: 3 trailing bytes after the sample");
    snprintf(want, sizeof(want), "message: %zu bytes over the 20-byte limit", n);
    expect_bad_message(s, n, 20, want);
    mp_free(&m);

    const uint8_t huge[] = {0xdd, 0x01, 0x00, 0x00, 0x00};
    expect_bad_message(huge, sizeof(huge), 0,
                       "message: truncated: array at offset 0 declares 16777216 elements, only 0 "
                       "bytes remain");
    const uint8_t reserved[] = {0x81, 0xa1, 'x', 0xc1};
    expect_bad_message(reserved, sizeof(reserved), 0, "message: reserved byte 0xc1 at offset 3");
    /* The value of the last (unknown) key is missing. */
    const uint8_t no_value[] = {0x81, 0xa1, 'q'};
    expect_bad_message(no_value, sizeof(no_value), 0, "message: truncated after 3 bytes");
    const uint8_t scalar[] = {0x2a};
    expect_bad_message(scalar, sizeof(scalar), 0,
                       "message: expected a sample map or an array of sample maps, got int");
    expect_bad_message(NULL, 0, 0, "message: empty");
    /* {"meta": [[[[[[[[]]]]]]]]}: an unknown key nesting past the bound. */
    uint8_t deep[16] = {0x81, 0xa4, 'm', 'e', 't', 'a'};
    memset(deep + 6, 0x91, 7);
    deep[13] = 0x90;
    expect_bad_message(deep, 14, 0, "message: nesting deeper than 8 levels");
}

/* Samples a bad message appended before the problem showed are undone,
 * including a switch to CSR; what the batch held before stays. */
static void test_bad_message_undoes_its_samples(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    const float before[4] = {9, 8, 7, 6};
    assert_int_equal(sl_batch_push_dense(b, before, 1, 1, 1, 3, NULL, 0), SL_OK);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    sample(&m, 1, X4, 4, 1.0);
    msgpack_pack_map(&m.pk, 1);
    key(&m, "x");
    msgpack_pack_map(&m.pk, 1);
    msgpack_pack_int(&m.pk, 2);
    msgpack_pack_double(&m.pk, 1.0);
    msgpack_pack_map(&m.pk, 1); /* the third sample is cut short */
    sl_decode_result_t res = decode(d, &m, b, 4);
    assert_int_equal(res.good, 0);
    assert_int_equal(res.bad, 1);
    assert_int_equal(sl_batch_rows(b), 1);
    assert_int_equal(sl_batch_slots(b), 2);
    for (uint32_t j = 0; j < 4; j++)
        assert_true(feature(b, 0, j) == before[j]);
    sl_slot_view_t v;
    sl_batch_slot(b, 1, &v);
    assert_false(v.good);
    assert_int_equal(v.tag, 4);
    assert_non_null(strstr(v.error, "message: truncated"));
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_empty_array_appends_nothing(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    const uint8_t msg[] = {0x90};
    sl_decode_result_t res;
    assert_int_equal(sl_decode_message(d, msg, 1, 0, b, &res), SL_OK);
    assert_int_equal(res.good + res.bad, 0);
    assert_int_equal(sl_batch_slots(b), 0);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_dim_mismatch_and_bad_config(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(5, 8);
    sl_decode_result_t res;
    const uint8_t msg[] = {0x90};
    assert_int_equal(sl_decode_message(d, msg, 1, 0, b, &res), SL_ERR_MISMATCH);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);

    char err[128];
    sl_decode_config_t cfg = {.dim = 0, .head = SL_HEAD_LINEAR};
    assert_null(sl_decoder_new(&cfg, err, sizeof(err)));
    assert_string_equal(err, "decode config: dim must be >= 1");
    cfg = (sl_decode_config_t){.dim = 4, .head = SL_HEAD_SOFTMAX, .classes = 1};
    assert_null(sl_decoder_new(&cfg, err, sizeof(err)));
    assert_string_equal(err, "decode config: softmax needs classes >= 2, got 1");
    sl_decoder_destroy(NULL);
}

/* --- the batch --------------------------------------------------------- */

static void test_dense_rows_switch_to_csr(void **state) {
    (void)state;
    sl_batch_t *b = sl_batch_new(4, 1); /* tiny: forces growth too */
    const float r0[4] = {1, 0, 2, 0}, r2[4] = {0, 0, 0, 5};
    const uint32_t c1[2] = {3, 3};
    const float v1[2] = {1, 2};
    assert_int_equal(sl_batch_push_dense(b, r0, 1, 1, 1, 0, NULL, 0), SL_OK);
    assert_false(b->sparse);
    assert_int_equal(sl_batch_push_sparse(b, c1, v1, 2, 0, 1, 0, 0, NULL, 0), SL_OK);
    assert_true(b->sparse);
    assert_int_equal(sl_batch_push_dense(b, r2, 0, 1, 0, 0, NULL, 0), SL_OK);
    /* Exact zeros are not stored. */
    assert_int_equal(b->row_ptr[1] - b->row_ptr[0], 2);
    assert_int_equal(b->row_ptr[3] - b->row_ptr[2], 1);
    for (uint32_t j = 0; j < 4; j++) {
        assert_true(feature(b, 0, j) == r0[j]);
        assert_true(feature(b, 1, j) == (j == 3 ? 3.0f : 0.0f));
        assert_true(feature(b, 2, j) == r2[j]);
    }
    const uint32_t bad_col[1] = {4};
    assert_int_equal(sl_batch_push_sparse(b, bad_col, v1, 1, 0, 1, 0, 0, NULL, 0), SL_ERR_INVAL);
    assert_int_equal(sl_batch_rows(b), 3);
    sl_batch_clear(b);
    assert_false(b->sparse);
    assert_int_equal(sl_batch_rows(b) + sl_batch_slots(b), 0);
    sl_batch_destroy(b);
    sl_batch_destroy(NULL);
}

/* A row written in place through sl_batch_next_row joins the batch only
 * when pushed; a CSR batch has no next dense row. A message whose samples
 * switch the batch to CSR midway decodes the same as one sample at a time. */
static void test_next_row_in_place(void **state) {
    (void)state;
    sl_batch_t *b = sl_batch_new(4, 1);
    float *row = sl_batch_next_row(b);
    assert_non_null(row);
    for (int j = 0; j < 4; j++)
        row[j] = (float)j + 0.5f;
    assert_int_equal(sl_batch_rows(b), 0);
    assert_ptr_equal(sl_batch_next_row(b), row); /* still scratch: the same row */
    assert_int_equal(sl_batch_push_dense(b, row, 1, 1, 1, 7, NULL, 0), SL_OK);
    assert_int_equal(sl_batch_rows(b), 1);
    for (uint32_t j = 0; j < 4; j++)
        assert_true(feature(b, 0, j) == (float)j + 0.5f);
    row = sl_batch_next_row(b); /* grows past the hint */
    assert_non_null(row);
    assert_true(row == b->dense + 4);
    const uint32_t c[1] = {2};
    const float v[1] = {3};
    assert_int_equal(sl_batch_push_sparse(b, c, v, 1, 0, 1, 0, 8, NULL, 0), SL_OK);
    assert_null(sl_batch_next_row(b));
    sl_batch_destroy(b);

    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    sample(&m, 1, X4, 4, 1.0);
    msgpack_pack_map(&m.pk, 1);
    key(&m, "x");
    msgpack_pack_map(&m.pk, 1);
    msgpack_pack_int(&m.pk, 2);
    msgpack_pack_double(&m.pk, 1.0);
    sample(&m, 3, X4, 4, 3.0);
    assert_int_equal(decode(d, &m, b, 0).good, 3);
    assert_true(b->sparse);
    for (uint32_t j = 0; j < 4; j++) {
        assert_true(feature(b, 0, j) == (float)X4[j]);
        assert_true(feature(b, 1, j) == (j == 2 ? 1.0f : 0.0f));
        assert_true(feature(b, 2, j) == (float)X4[j]);
    }
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_view_offsets(void **state) {
    (void)state;
    sl_batch_t *b = sl_batch_new(2, 4);
    for (int i = 0; i < 4; i++) {
        float x[2] = {(float)i, (float)(10 * i)};
        assert_int_equal(sl_batch_push_dense(b, x, (float)i, 1, i % 2, 0, NULL, 0), SL_OK);
    }
    sl_input_t x;
    sl_targets_t t;
    sl_batch_view(b, 1, 2, &x, &t);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.dim, 2);
    assert_true(x.dense[0] == 1.0f && x.dense[3] == 20.0f);
    assert_true(t.y[0] == 1.0f && t.labelled[0] == 1 && t.labelled[1] == 0);

    const uint32_t c[1] = {1};
    const float v[1] = {7};
    assert_int_equal(sl_batch_push_sparse(b, c, v, 1, 0, 1, 1, 0, NULL, 0), SL_OK);
    sl_batch_view(b, 3, 2, &x, &t);
    assert_null(x.dense);
    assert_int_equal(x.n, 2);
    /* row_ptr is offset, col/val absolute. */
    assert_true(x.val[x.row_ptr[0]] == 3.0f && x.col[x.row_ptr[0]] == 0);
    assert_int_equal(x.row_ptr[2] - x.row_ptr[1], 1);
    assert_true(x.val[x.row_ptr[1]] == 7.0f && x.col[x.row_ptr[1]] == 1);
    sl_batch_destroy(b);
}

/* Slots r0, bad, r1, r2, bad, r3: running 2 rows emits 3 slots; what stays
 * is renumbered with its ids and error text intact. */
static void fill_interleaved(sl_batch_t *b, int sparse) {
    const uint8_t ids[4] = {0x00, 0x01, 0x02, 0x03};
    for (int i = 0; i < 4; i++) {
        float x[2] = {(float)i + 1, 0};
        const uint32_t c[1] = {0};
        if (sparse)
            assert_int_equal(sl_batch_push_sparse(b, c, x, 1, 0, 1, 1, (uint64_t)i, &ids[i], 1),
                             SL_OK);
        else
            assert_int_equal(sl_batch_push_dense(b, x, 0, 1, 1, (uint64_t)i, &ids[i], 1), SL_OK);
        if (i == 0 || i == 2)
            assert_int_equal(sl_batch_push_error(b, i == 0 ? "first bad" : "second bad", 100,
                                                 (const uint8_t *)"\xa1z", 2),
                             SL_OK);
    }
}

static void check_shifted(sl_batch_t *b) {
    assert_int_equal(sl_batch_rows(b), 2);
    assert_int_equal(sl_batch_slots(b), 3);
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    assert_true(v.good && v.row == 0 && v.tag == 2 && v.id_len == 1 && v.id[0] == 0x02);
    sl_batch_slot(b, 1, &v);
    assert_false(v.good);
    assert_string_equal(v.error, "second bad");
    assert_int_equal(v.id_len, 2);
    assert_memory_equal(v.id, "\xa1z", 2);
    sl_batch_slot(b, 2, &v);
    assert_true(v.good && v.row == 1 && v.tag == 3 && v.id[0] == 0x03);
    assert_true(feature(b, 0, 0) == 3.0f && feature(b, 1, 0) == 4.0f);
    assert_int_equal(sl_batch_cut(b, 1), 2);
}

static void test_shift_dense_and_sparse(void **state) {
    (void)state;
    for (int sparse = 0; sparse < 2; sparse++) {
        sl_batch_t *b = sl_batch_new(2, 2);
        fill_interleaved(b, sparse);
        assert_int_equal(sl_batch_cut(b, 2), 3);
        sl_batch_shift(b, 2);
        check_shifted(b);
        /* Everything, including the trailing error slot if one were there. */
        assert_int_equal(sl_batch_push_error(b, "tail", 0, NULL, 0), SL_OK);
        assert_int_equal(sl_batch_cut(b, 2), 4);
        sl_batch_shift(b, 2);
        assert_int_equal(sl_batch_rows(b) + sl_batch_slots(b), 0);
        assert_false(b->sparse);
        assert_int_equal(b->bytes.len, 0);
        sl_batch_destroy(b);
    }
}

/* A message whose samples span the batch boundary: run 2 rows, shift, the
 * third row is still there with its tag. */
static void test_message_spanning_a_batch_boundary(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 2);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3);
    for (int i = 0; i < 3; i++)
        sample(&m, i, X4, 4, (double)i);
    decode(d, &m, b, 41);
    assert_int_equal(sl_batch_rows(b), 3);
    sl_batch_shift(b, 2);
    assert_int_equal(sl_batch_rows(b), 1);
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    assert_int_equal(v.tag, 41);
    assert_int_equal(v.id[0], 0x02);
    assert_true(b->y[0] == 2.0f);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* --- the stream path (sl_decode_next) ----------------------------------- */

/* Decodes a stream of whole messages one by one, each as sl_decode_message
 * would; a bad sample inside a good message is an error slot there too. */
static void test_next_decodes_a_stream(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(4, SL_HEAD_LINEAR, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    mp_t m;
    mp_init(&m);
    sample(&m, 1, X4, 4, 1.0);
    size_t first = m.sb.size;
    msgpack_pack_array(&m.pk, 2);
    sample(&m, 2, X4, 4, 2.0);
    short_x(&m);
    const uint8_t *p = (const uint8_t *)m.sb.data;
    sl_decode_result_t res;
    size_t used;
    assert_int_equal(sl_decode_next(d, p, m.sb.size, 10, b, &res, &used), SL_OK);
    assert_int_equal(used, first);
    assert_int_equal(res.good, 1);
    assert_int_equal(sl_decode_next(d, p + used, m.sb.size - used, 11, b, &res, &used), SL_OK);
    assert_int_equal(used, m.sb.size - first);
    assert_int_equal(res.good, 1);
    assert_int_equal(res.bad, 1);
    assert_string_equal(res.first_error, "x: expected 4 features, got 3");
    assert_int_equal(sl_batch_slots(b), 3);
    assert_int_equal(sl_batch_rows(b), 2);
    sl_slot_view_t v;
    sl_batch_slot(b, 1, &v);
    assert_int_equal(v.tag, 11);
    assert_true(b->y[1] == 2.0f);
    mp_free(&m);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* What it cannot settle alone - a message cut by the end of the bytes, over
 * the size cap, bad as a whole, a top-level scalar, nothing at all - it
 * declines with nothing appended, for the framer to handle. */
static void expect_declined(const uint8_t *buf, size_t avail, size_t max_bytes) {
    sl_decode_config_t cfg = {.dim = 4, .head = SL_HEAD_LINEAR, .max_message_bytes = max_bytes};
    sl_decoder_t *d = sl_decoder_new(&cfg, NULL, 0);
    sl_batch_t *b = sl_batch_new(4, 8);
    const float before[4] = {9, 8, 7, 6};
    assert_int_equal(sl_batch_push_dense(b, before, 1, 1, 1, 3, NULL, 0), SL_OK);
    sl_decode_result_t res;
    size_t used = 99;
    assert_int_equal(sl_decode_next(d, buf, avail, 5, b, &res, &used), SL_OK);
    assert_int_equal(used, 0);
    assert_int_equal(res.good + res.bad, 0);
    assert_int_equal(sl_batch_slots(b), 1);
    assert_int_equal(sl_batch_rows(b), 1);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

static void test_next_declines_what_the_framer_must_judge(void **state) {
    (void)state;
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 2);
    sample(&m, 1, X4, 4, 1.0);
    sample(&m, 2, X4, 4, 2.0);
    const uint8_t *p = (const uint8_t *)m.sb.data;
    for (size_t cut = 0; cut < m.sb.size; cut++)
        expect_declined(p, cut, 0); /* every prefix, the second sample's included */
    expect_declined(p, m.sb.size, m.sb.size - 1);
    mp_free(&m);
    const uint8_t reserved[] = {0x81, 0xa1, 'x', 0xc1, 0x80};
    expect_declined(reserved, sizeof(reserved), 0);
    const uint8_t scalar[] = {0x2a, 0x80};
    expect_declined(scalar, sizeof(scalar), 0);
    uint8_t deep[16] = {0x81, 0xa4, 'm', 'e', 't', 'a'};
    memset(deep + 6, 0x91, 7);
    deep[13] = 0x90;
    expect_declined(deep, 14, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_array_sample),
        cmocka_unit_test(test_bin_sample_equals_array_sample),
        cmocka_unit_test(test_float_runs_and_mixed_elements),
        cmocka_unit_test(test_sparse_named_and_mixed_keys),
        cmocka_unit_test(test_predict_only_and_weight),
        cmocka_unit_test(test_unknown_keys_ignored),
        cmocka_unit_test(test_softmax_labels_accept_integral_forms),
        cmocka_unit_test(test_bad_x),
        cmocka_unit_test(test_bad_sample_shape),
        cmocka_unit_test(test_bad_labels),
        cmocka_unit_test(test_bad_weights),
        cmocka_unit_test(test_bad_sample_keeps_id),
        cmocka_unit_test(test_bad_messages),
        cmocka_unit_test(test_bad_message_undoes_its_samples),
        cmocka_unit_test(test_empty_array_appends_nothing),
        cmocka_unit_test(test_dim_mismatch_and_bad_config),
        cmocka_unit_test(test_dense_rows_switch_to_csr),
        cmocka_unit_test(test_next_row_in_place),
        cmocka_unit_test(test_view_offsets),
        cmocka_unit_test(test_shift_dense_and_sparse),
        cmocka_unit_test(test_message_spanning_a_batch_boundary),
        cmocka_unit_test(test_next_decodes_a_stream),
        cmocka_unit_test(test_next_declines_what_the_framer_must_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
