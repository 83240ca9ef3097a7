/* test_decode_labels.c - label messages ({id, y, w?} or an array of them) to labels and
 * reasons; the replay record classifier. (The decode module's label half: sample messages
 * are test_decode.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

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
    msgpack_pack_str_with_body(&m->pk, k, strlen(k));
}

/* {"id": id, "y": y} */
static void label(mp_t *m, int64_t id, double y) {
    msgpack_pack_map(&m->pk, 2);
    key(m, "id");
    msgpack_pack_int64(&m->pk, id);
    key(m, "y");
    msgpack_pack_double(&m->pk, y);
}

static sl_decoder_t *decoder(sl_head_t head, uint32_t classes, size_t max_bytes) {
    sl_decode_config_t cfg = {
        .dim = 4, .head = head, .classes = classes, .max_message_bytes = max_bytes};
    sl_decoder_t *d = sl_decoder_new(&cfg, NULL, 0);
    assert_non_null(d);
    return d;
}

static const sl_label_t *decode(sl_decoder_t *d, const uint8_t *msg, size_t len, size_t *n,
                                sl_decode_result_t *res) {
    const sl_label_t *l = NULL;
    assert_int_equal(sl_decode_labels(d, msg, len, &l, n, res), SL_OK);
    assert_int_equal(*n, res->good + res->bad);
    return l;
}

static const sl_label_t *decode_mp(sl_decoder_t *d, const mp_t *m, size_t *n,
                                   sl_decode_result_t *res) {
    return decode(d, (const uint8_t *)m->sb.data, m->sb.size, n, res);
}

/* The one bad label of a message that is bad as a whole. */
static void expect_message_error(sl_decoder_t *d, const uint8_t *msg, size_t len,
                                 const char *want) {
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode(d, msg, len, &n, &res);
    assert_int_equal(n, 1);
    assert_int_equal(res.bad, 1);
    assert_null(l[0].id);
    assert_non_null(l[0].error);
    if (!strstr(l[0].error, want))
        fail_msg("error \"%s\" does not say \"%s\"", l[0].error, want);
    assert_string_equal(res.first_error, l[0].error);
}

/* The one label of m is bad, and says want. */
static void expect_label_error(sl_decoder_t *d, const mp_t *m, const char *want) {
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode_mp(d, m, &n, &res);
    assert_int_equal(n, 1);
    assert_int_equal(res.bad, 1);
    assert_non_null(l[0].error);
    if (!strstr(l[0].error, want))
        fail_msg("error \"%s\" does not say \"%s\"", l[0].error, want);
}

static void test_one_label(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_LOGISTIC, 0, 0);
    mp_t m;
    mp_init(&m);
    label(&m, 300, 1.0);
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode_mp(d, &m, &n, &res);
    assert_int_equal(n, 1);
    assert_int_equal(res.good, 1);
    assert_null(l[0].error);
    const uint8_t id300[] = {0xcd, 0x01, 0x2c}; /* raw bytes, as the sample decoder keeps them */
    assert_int_equal(l[0].id_len, sizeof(id300));
    assert_memory_equal(l[0].id, id300, sizeof(id300));
    assert_true(l[0].id >= (const uint8_t *)m.sb.data &&
                l[0].id < (const uint8_t *)m.sb.data + m.sb.size);
    assert_true(l[0].y == 1.0f && l[0].w == 1.0f);
    assert_int_equal(l[0].index, 0);
    assert_string_equal(res.first_error, "");
    mp_free(&m);
    sl_decoder_destroy(d);
}

static void test_weight_str_id_and_unknown_keys(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_LINEAR, 0, 0);
    mp_t m;
    mp_init(&m);
    msgpack_pack_map(&m.pk, 4);
    key(&m, "ts");
    msgpack_pack_array(&m.pk, 2); /* an unknown key with a container value: skipped */
    msgpack_pack_int(&m.pk, 1);
    msgpack_pack_int(&m.pk, 2);
    key(&m, "w");
    msgpack_pack_double(&m.pk, 2.5);
    key(&m, "y");
    msgpack_pack_double(&m.pk, -3.25);
    key(&m, "id");
    msgpack_pack_str_with_body(&m.pk, "req-17", 6);
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode_mp(d, &m, &n, &res);
    assert_int_equal(n, 1);
    assert_null(l[0].error);
    assert_int_equal(l[0].id_len, 7);
    assert_memory_equal(l[0].id, "\xa6req-17", 7);
    assert_true(l[0].y == -3.25f && l[0].w == 2.5f);
    mp_free(&m);
    sl_decoder_destroy(d);
}

static void test_array_good_and_bad_in_order(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_SOFTMAX, 3, 0);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 5);
    label(&m, 1, 2.0);
    msgpack_pack_map(&m.pk, 1); /* no y */
    key(&m, "id");
    msgpack_pack_int(&m.pk, 2);
    label(&m, 3, 3.0);          /* class out of range */
    msgpack_pack_int(&m.pk, 9); /* not a map */
    label(&m, 5, 0.0);
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode_mp(d, &m, &n, &res);
    assert_int_equal(n, 5);
    assert_int_equal(res.good, 2);
    assert_int_equal(res.bad, 3);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(l[i].index, i);
    assert_null(l[0].error);
    assert_true(l[0].y == 2.0f);
    assert_string_equal(l[1].error, "y: missing");
    assert_int_equal(l[1].id_len, 1); /* a bad label keeps its id when it could be read */
    assert_int_equal(l[1].id[0], 2);
    assert_non_null(strstr(l[2].error, "class 3 out of range 0..2"));
    assert_non_null(strstr(l[3].error, "label: expected a map"));
    assert_null(l[3].id);
    assert_null(l[4].error);
    assert_string_equal(res.first_error, "y: missing");
    mp_free(&m);
    sl_decoder_destroy(d);
}

static void test_bad_labels(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_LOGISTIC, 0, 0);
    mp_t m;

    mp_init(&m); /* y not 0/1 for a logistic model */
    label(&m, 1, 0.5);
    expect_label_error(d, &m, "expected 0 or 1");
    mp_free(&m);

    mp_init(&m); /* nil id */
    msgpack_pack_map(&m.pk, 2);
    key(&m, "id");
    msgpack_pack_nil(&m.pk);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    expect_label_error(d, &m, "id: missing");
    mp_free(&m);

    mp_init(&m); /* no id */
    msgpack_pack_map(&m.pk, 1);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    expect_label_error(d, &m, "id: missing");
    mp_free(&m);

    mp_init(&m); /* id not a scalar */
    msgpack_pack_map(&m.pk, 2);
    key(&m, "id");
    msgpack_pack_array(&m.pk, 0);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    expect_label_error(d, &m, "id: expected a scalar");
    mp_free(&m);

    mp_init(&m); /* weight 0 */
    msgpack_pack_map(&m.pk, 3);
    key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "w");
    msgpack_pack_double(&m.pk, 0.0);
    expect_label_error(d, &m, "w: expected a finite number > 0");
    mp_free(&m);

    mp_init(&m); /* y not a number */
    msgpack_pack_map(&m.pk, 2);
    key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "y");
    msgpack_pack_str_with_body(&m.pk, "yes", 3);
    expect_label_error(d, &m, "y: expected a number, got str");
    mp_free(&m);

    mp_init(&m); /* features on the label topic */
    msgpack_pack_map(&m.pk, 3);
    key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "x");
    msgpack_pack_array(&m.pk, 4);
    for (int i = 0; i < 4; i++)
        msgpack_pack_double(&m.pk, 0.5);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    expect_label_error(d, &m, "label: has x");
    mp_free(&m);

    mp_init(&m); /* a key twice */
    msgpack_pack_map(&m.pk, 3);
    key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 0);
    expect_label_error(d, &m, "label: duplicate key y");
    mp_free(&m);
    sl_decoder_destroy(d);
}

static void test_bad_messages(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_LINEAR, 0, 64);
    const uint8_t scalar[] = {0x07};
    expect_message_error(d, scalar, sizeof(scalar), "expected a label map or an array");
    expect_message_error(d, scalar, 0, "message: empty");
    /* {"id": 1, "y": 2} with a byte cut off, and with one byte too many */
    const uint8_t good[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa1, 'y', 0x02};
    expect_message_error(d, good, sizeof(good) - 1, "truncated");
    const uint8_t trailing[] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa1, 'y', 0x02, 0xc0};
    expect_message_error(d, trailing, sizeof(trailing), "1 trailing bytes after the label");
    /* an array32 declaring 4 billion labels in 5 bytes: refused before anything is reserved */
    const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    expect_message_error(d, huge, sizeof(huge), "declares 4294967295 elements");
    const uint8_t reserved[] = {0x91, 0xc1};
    expect_message_error(d, reserved, sizeof(reserved), "reserved byte 0xc1");
    uint8_t big[65] = {0xc4, 63};
    expect_message_error(d, big, sizeof(big), "over the 64-byte limit");
    /* nesting deeper than a label needs, under an unknown key */
    uint8_t deep[40] = {0x82, 0xa2, 'i', 'd', 0x01, 0xa1, 'q'};
    size_t k = 7;
    while (k < sizeof(deep) - 1)
        deep[k++] = 0x91;
    deep[k++] = 0xc0;
    expect_message_error(d, deep, k, "nesting");
    /* after a bad message, a good one decodes normally */
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode(d, good, sizeof(good), &n, &res);
    assert_int_equal(n, 1);
    assert_null(l[0].error);
    assert_true(l[0].y == 2.0f);
    sl_decoder_destroy(d);
}

static void test_empty_array(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_LINEAR, 0, 0);
    const uint8_t empty[] = {0x90};
    size_t n = 9;
    sl_decode_result_t res;
    decode(d, empty, sizeof(empty), &n, &res);
    assert_int_equal(n, 0);
    sl_decoder_destroy(d);
}

/* Many bad labels in one message: every reason stays readable (the text buffer grows while
 * they are decoded). */
static void test_many_labels_keep_their_reasons(void **state) {
    (void)state;
    sl_decoder_t *d = decoder(SL_HEAD_LOGISTIC, 0, 0);
    mp_t m;
    mp_init(&m);
    msgpack_pack_array(&m.pk, 3000);
    for (int i = 0; i < 3000; i++)
        label(&m, i, i % 2 ? 1.0 : 7.0);
    size_t n;
    sl_decode_result_t res;
    const sl_label_t *l = decode_mp(d, &m, &n, &res);
    assert_int_equal(n, 3000);
    assert_int_equal(res.good, 1500);
    for (int i = 0; i < 3000; i++) {
        if (i % 2) {
            assert_null(l[i].error);
        } else {
            assert_non_null(l[i].error);
            assert_non_null(strstr(l[i].error, "got 7"));
        }
    }
    mp_free(&m);
    sl_decoder_destroy(d);
}

static void test_is_label_record(void **state) {
    (void)state;
    mp_t m;
    mp_init(&m);
    label(&m, 1, 1.0);
    assert_true(sl_decode_is_label_record((const uint8_t *)m.sb.data, m.sb.size));
    mp_free(&m);

    mp_init(&m);
    msgpack_pack_array(&m.pk, 2);
    label(&m, 1, 1.0);
    label(&m, 2, 0.0);
    assert_true(sl_decode_is_label_record((const uint8_t *)m.sb.data, m.sb.size));
    mp_free(&m);

    mp_init(&m); /* a sample: it has x */
    msgpack_pack_map(&m.pk, 3);
    key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    key(&m, "x");
    msgpack_pack_bin_with_body(&m.pk, "\0\0\0\0", 4);
    key(&m, "y");
    msgpack_pack_int(&m.pk, 1);
    assert_false(sl_decode_is_label_record((const uint8_t *)m.sb.data, m.sb.size));
    mp_free(&m);

    mp_init(&m); /* no y: not a label either (a sample missing x) */
    msgpack_pack_map(&m.pk, 1);
    key(&m, "id");
    msgpack_pack_int(&m.pk, 1);
    assert_false(sl_decode_is_label_record((const uint8_t *)m.sb.data, m.sb.size));
    mp_free(&m);

    const uint8_t junk[] = {0x82, 0xa2, 'i', 'd', 0xdd, 0xff};
    assert_false(sl_decode_is_label_record(junk, sizeof(junk)));
    assert_false(sl_decode_is_label_record(junk, 0));
    const uint8_t empty_array[] = {0x90};
    assert_false(sl_decode_is_label_record(empty_array, 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_label),
        cmocka_unit_test(test_weight_str_id_and_unknown_keys),
        cmocka_unit_test(test_array_good_and_bad_in_order),
        cmocka_unit_test(test_bad_labels),
        cmocka_unit_test(test_bad_messages),
        cmocka_unit_test(test_empty_array),
        cmocka_unit_test(test_many_labels_keep_their_reasons),
        cmocka_unit_test(test_is_label_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
