/* test_state.c - the model-state blob: round trip, bit-exact resume, and every corruption refused.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include <cmocka.h>

#include "model/learner.h"
#include "model/linalg.h"

enum { DIM = 5, ROWS = 8 };

static sl_model_config_t mcfg(sl_head_t head, uint32_t n_hidden) {
    sl_model_config_t c = {.head = head, .dim = DIM, .classes = 3, .activation = SL_ACT_SIGMOID};
    c.n_hidden = n_hidden;
    for (uint32_t i = 0; i < n_hidden; i++)
        c.hidden[i] = 4 + i;
    return c;
}

/* Deterministic batch number b: some rows unlabelled, varied weights. */
static void train(sl_learner_t *l, int first, int count) {
    const sl_model_config_t *c = sl_model_config(sl_learner_model(l));
    for (int b = first; b < first + count; b++) {
        float x[ROWS * DIM], y[ROWS], w[ROWS], out[ROWS * 3];
        uint8_t lab[ROWS];
        for (int i = 0; i < ROWS * DIM; i++)
            x[i] = sinf((float)(b * 31 + i)) * 2;
        for (int i = 0; i < ROWS; i++) {
            lab[i] = (b + i) % 4 != 0;
            w[i] = 1 + (float)((b + i) % 3) * 0.5f;
            y[i] = c->head == SL_HEAD_LINEAR
                       ? cosf((float)(b + i))
                       : (float)((b + i) % (c->head == SL_HEAD_SOFTMAX ? 3 : 2));
        }
        sl_input_t in = {.n = ROWS, .dim = DIM, .dense = x};
        sl_targets_t t = {y, w, lab};
        assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    }
}

static sl_learner_t *make_scaled(sl_head_t head, uint32_t n_hidden, sl_optim_config_t oc,
                                 uint32_t window, sl_scale_mode_t scale) {
    sl_model_config_t c = mcfg(head, n_hidden);
    char err[256];
    sl_learner_t *l = sl_learner_new(&c, &oc, 9, window, err, sizeof(err));
    if (!l)
        fail_msg("sl_learner_new: %s", err);
    if (sl_learner_set_scale(l, scale, err, sizeof err) != SL_OK)
        fail_msg("sl_learner_set_scale: %s", err);
    return l;
}

static sl_learner_t *make(sl_head_t head, uint32_t n_hidden, sl_optim_config_t oc,
                          uint32_t window) {
    return make_scaled(head, n_hidden, oc, window, SL_SCALE_OFF);
}

/* Bytes of the format-2 scaler and auto-optimizer sections for a model of
 * `layers` layers whose scaler holds no per-feature statistics. */
static size_t scaler_section(uint32_t layers) {
    return 4 * 2 + 8 + 8 + 8 * 3 + 8 + 4 + 4 + 8 * layers + 8;
}

static void assert_same(sl_learner_t *a, sl_learner_t *b) {
    sl_model_t *ma = sl_learner_model(a), *mb = sl_learner_model(b);
    size_t np = sl_model_n_params(ma);
    assert_int_equal(np, sl_model_n_params(mb));
    assert_memory_equal(sl_model_params(ma), sl_model_params(mb), np * sizeof(float));
    sl_optim_t *oa = sl_learner_optim(a), *ob = sl_learner_optim(b);
    assert_int_equal(sl_optim_n_state(oa), sl_optim_n_state(ob));
    for (size_t s = 0; s < sl_optim_n_state(oa); s++)
        assert_memory_equal(sl_optim_state(oa, s), sl_optim_state(ob, s), np * sizeof(float));
    assert_int_equal(sl_optim_steps(oa), sl_optim_steps(ob));
    sl_learner_counters_t ca = sl_learner_counters(a), cb = sl_learner_counters(b);
    assert_memory_equal(&ca, &cb, sizeof(ca));
    sl_metrics_view_t ta = sl_metrics_total(sl_learner_metrics(a));
    sl_metrics_view_t tb = sl_metrics_total(sl_learner_metrics(b));
    sl_metrics_view_t wa = sl_metrics_window(sl_learner_metrics(a));
    sl_metrics_view_t wb = sl_metrics_window(sl_learner_metrics(b));
    assert_memory_equal(&ta, &tb, sizeof(ta));
    assert_memory_equal(&wa, &wb, sizeof(wa));
    const float *sa, *ma_, *sb, *mb_;
    assert_int_equal(sl_learner_input_transform(a, &sa, &ma_),
                     sl_learner_input_transform(b, &sb, &mb_));
    if (sa) {
        assert_memory_equal(sa, sb, DIM * sizeof(float));
        assert_memory_equal(ma_, mb_, DIM * sizeof(float));
    }
    sl_scaler_state_t xa, xb;
    sl_scaler_get_state(sl_learner_scaler_const(a), &xa);
    sl_scaler_get_state(sl_learner_scaler_const(b), &xb);
    assert_int_equal(xa.requested, xb.requested);
    assert_int_equal(xa.mode, xb.mode);
    assert_true(xa.weight == xb.weight && xa.count == xb.count);
    assert_true(xa.y_weight == xb.y_weight && xa.y_mean == xb.y_mean && xa.y_m2 == xb.y_m2);
    if (xa.mean) {
        assert_memory_equal(xa.mean, xb.mean, DIM * sizeof(double));
        assert_memory_equal(xa.m2, xb.m2, DIM * sizeof(double));
    }
    if (xa.maxabs)
        assert_memory_equal(xa.maxabs, xb.maxabs, DIM * sizeof(float));
}

static sl_learner_t *reload(sl_learner_t *l) {
    uint8_t *buf;
    size_t len;
    assert_int_equal(sl_learner_save(l, &buf, &len), SL_OK);
    char err[256];
    sl_err_t e;
    sl_learner_t *r = sl_learner_load(buf, len, NULL, &e, err, sizeof(err));
    if (!r)
        fail_msg("sl_learner_load: %s", err);
    assert_int_equal(e, SL_OK);
    free(buf);
    return r;
}

/* Train N, save, load, train M more on both: identical to the bit. */
static void resume_scaled(sl_head_t head, uint32_t n_hidden, sl_optim_config_t oc,
                          sl_scale_mode_t scale) {
    sl_learner_t *a = make_scaled(head, n_hidden, oc, 13, scale);
    train(a, 0, 5);
    sl_learner_t *b = reload(a);
    assert_same(a, b);
    train(a, 5, 7);
    train(b, 5, 7);
    assert_same(a, b);
    sl_learner_destroy(a);
    sl_learner_destroy(b);
}

static void resume(sl_head_t head, uint32_t n_hidden, sl_optim_config_t oc) {
    resume_scaled(head, n_hidden, oc, SL_SCALE_OFF);
}

/* The scaler, the target statistics and the auto optimizer's layer norms
 * travel with the blob: training resumes to the bit, in every mode. */
static void test_scaled_resume_is_bit_exact(void **state) {
    (void)state;
    sl_optim_config_t au = sl_optim_config_default(SL_OPTIM_AUTO);
    resume_scaled(SL_HEAD_LINEAR, 1, au, SL_SCALE_STANDARD);
    resume_scaled(SL_HEAD_SOFTMAX, 2, au, SL_SCALE_AUTO);
    resume_scaled(SL_HEAD_LOGISTIC, 0, au, SL_SCALE_MAXABS);
    resume_scaled(SL_HEAD_LINEAR, 0, sl_optim_config_default(SL_OPTIM_ADAM), SL_SCALE_MAXABS);
    sl_optim_config_t ftrl = sl_optim_config_default(SL_OPTIM_FTRL);
    resume_scaled(SL_HEAD_LINEAR, 0, ftrl, SL_SCALE_AUTO);
    /* Saved before the first labelled batch: AUTO still undecided. */
    sl_learner_t *a = make_scaled(SL_HEAD_LINEAR, 1, au, 0, SL_SCALE_AUTO);
    sl_learner_t *b = reload(a);
    assert_int_equal(sl_scaler_mode(sl_learner_scaler_const(b)), SL_SCALE_AUTO);
    train(a, 0, 4);
    train(b, 0, 4);
    assert_same(a, b);
    assert_int_equal(sl_scaler_mode(sl_learner_scaler_const(b)), SL_SCALE_STANDARD);
    sl_learner_destroy(a);
    sl_learner_destroy(b);
}

/* A format-1 blob (before scaling existed) is format 2 without its last two
 * sections: it loads as a model without scaling, weights and all. */
static void test_format1_still_loads(void **state) {
    (void)state;
    sl_learner_t *a = make(SL_HEAD_SOFTMAX, 1, sl_optim_config_default(SL_OPTIM_ADAM), 5);
    train(a, 0, 3);
    uint8_t *buf;
    size_t len;
    assert_int_equal(sl_learner_save(a, &buf, &len), SL_OK);
    size_t len1 = len - scaler_section(2);
    memmove(buf + len1 - 8, buf + len - 8, 8);
    buf[4] = 1;
    for (int i = 0; i < 8; i++)
        buf[8 + i] = (uint8_t)((uint64_t)len1 >> (8 * i));
    uint64_t h = XXH64(buf, len1 - 8, 0);
    for (int i = 0; i < 8; i++)
        buf[len1 - 8 + i] = (uint8_t)(h >> (8 * i));
    char err[256];
    sl_err_t e;
    sl_learner_t *b = sl_learner_load(buf, len1, NULL, &e, err, sizeof err);
    if (!b)
        fail_msg("format 1: %s", err);
    assert_same(a, b);
    assert_false(sl_scaler_on(sl_learner_scaler_const(b)));
    train(a, 3, 2);
    train(b, 3, 2);
    assert_same(a, b);
    /* The auto optimizer did not exist in format 1. */
    buf[40] = SL_OPTIM_AUTO;
    h = XXH64(buf, len1 - 8, 0);
    for (int i = 0; i < 8; i++)
        buf[len1 - 8 + i] = (uint8_t)(h >> (8 * i));
    assert_null(sl_learner_load(buf, len1, NULL, &e, err, sizeof err));
    assert_non_null(strstr(err, "optimizer"));
    free(buf);
    sl_learner_destroy(a);
    sl_learner_destroy(b);
}

static void test_resume_is_bit_exact(void **state) {
    (void)state;
    resume(SL_HEAD_SOFTMAX, 2, sl_optim_config_default(SL_OPTIM_ADAM));
    resume(SL_HEAD_LOGISTIC, 1, sl_optim_config_default(SL_OPTIM_ADAMW));
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    oc.momentum = 0.9;
    oc.nesterov = 1;
    oc.clip_norm = 0.5;
    resume(SL_HEAD_LINEAR, 1, oc);
    resume(SL_HEAD_LINEAR, 0, sl_optim_config_default(SL_OPTIM_ADAGRAD));
    oc = sl_optim_config_default(SL_OPTIM_RMSPROP);
    oc.momentum = 0.5;
    resume(SL_HEAD_SOFTMAX, 1, oc);
    oc = sl_optim_config_default(SL_OPTIM_FTRL);
    oc.l1 = 0.01;
    resume(SL_HEAD_LOGISTIC, 0, oc);
}

static void test_config_survives(void **state) {
    (void)state;
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    oc.lr = 0.0123;
    oc.beta1 = 0.8;
    oc.weight_decay = 0.25;
    oc.clip_norm = 3;
    sl_learner_t *a = make(SL_HEAD_SOFTMAX, 2, oc, 7);
    train(a, 0, 3);
    sl_learner_t *b = reload(a);
    const sl_optim_config_t *x = sl_learner_optim_config(a), *y = sl_learner_optim_config(b);
    assert_int_equal(x->kind, y->kind);
    assert_int_equal(x->nesterov, y->nesterov);
    const double *fx[] = {&x->lr,        &x->momentum, &x->beta1,        &x->beta2,
                          &x->alpha,     &x->eps,      &x->weight_decay, &x->ftrl_alpha,
                          &x->ftrl_beta, &x->l1,       &x->l2,           &x->clip_norm};
    const double *fy[] = {&y->lr,        &y->momentum, &y->beta1,        &y->beta2,
                          &y->alpha,     &y->eps,      &y->weight_decay, &y->ftrl_alpha,
                          &y->ftrl_beta, &y->l1,       &y->l2,           &y->clip_norm};
    for (size_t i = 0; i < 12; i++)
        assert_true(*fx[i] == *fy[i]);
    assert_true(y->lr == 0.0123 && y->beta1 == 0.8 && y->clip_norm == 3 && y->beta2 == 0.999);
    const sl_model_config_t *ma = sl_model_config(sl_learner_model(a));
    const sl_model_config_t *mb = sl_model_config(sl_learner_model(b));
    assert_memory_equal(ma, mb, sizeof(*ma));
    /* Window of 7 restored: after 3 x 8 rows (18 labelled) it holds 7. */
    assert_int_equal(sl_metrics_window(sl_learner_metrics(b)).count, 7);
    assert_int_equal(sl_metrics_total(sl_learner_metrics(b)).count, 18);
    sl_learner_destroy(a);
    sl_learner_destroy(b);
}

static uint8_t *blob_of(sl_learner_t *l, size_t *len) {
    uint8_t *buf;
    assert_int_equal(sl_learner_save(l, &buf, len), SL_OK);
    return buf;
}

static sl_err_t try_load(const uint8_t *buf, size_t len, const sl_model_config_t *expect, char *err,
                         size_t err_size) {
    sl_err_t e = SL_OK;
    sl_learner_t *l = sl_learner_load(buf, len, expect, &e, err, err_size);
    if (l) {
        sl_learner_destroy(l);
        return SL_OK;
    }
    assert_int_not_equal(e, SL_OK);
    return e;
}

static void test_header_layout_is_little_endian(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_LOGISTIC, 0, sl_optim_config_default(SL_OPTIM_SGD), 0);
    size_t len;
    uint8_t *buf = blob_of(l, &len);
    assert_memory_equal(buf, "SLMS\2\0\0\0", 8);
    uint64_t total = 0;
    for (int i = 7; i >= 0; i--)
        total = total << 8 | buf[8 + i];
    assert_int_equal(total, len);
    assert_int_equal(buf[20], DIM); /* head at 16, dim at 20 */
    assert_int_equal(buf[21] | buf[22] | buf[23], 0);
    uint64_t sum = 0;
    for (int i = 7; i >= 0; i--)
        sum = sum << 8 | buf[len - 8 + i];
    assert_true(sum == XXH64(buf, len - 8, 0));
    free(buf);
    sl_learner_destroy(l);
}

static void test_every_truncation_fails(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_SOFTMAX, 1, sl_optim_config_default(SL_OPTIM_ADAM), 5);
    train(l, 0, 2);
    size_t len;
    uint8_t *buf = blob_of(l, &len);
    char err[256];
    for (size_t n = 0; n < len; n++) {
        uint8_t *copy = malloc(n ? n : 1); /* exact size so ASan sees any over-read */
        memcpy(copy, buf, n);
        assert_int_equal(try_load(copy, n, NULL, err, sizeof(err)), SL_ERR_TRUNCATED);
        free(copy);
    }
    free(buf);
    sl_learner_destroy(l);
}

static void test_every_byte_flip_fails(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_LOGISTIC, 1, sl_optim_config_default(SL_OPTIM_RMSPROP), 5);
    train(l, 0, 2);
    size_t len;
    uint8_t *buf = blob_of(l, &len);
    char err[256];
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x5a;
        if (try_load(buf, len, NULL, err, sizeof(err)) == SL_OK)
            fail_msg("byte %zu flipped and the blob still loaded", i);
        buf[i] ^= 0x5a;
    }
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_OK);
    free(buf);
    sl_learner_destroy(l);
}

static void test_magic_and_version(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_LINEAR, 0, sl_optim_config_default(SL_OPTIM_SGD), 0);
    size_t len;
    uint8_t *buf = blob_of(l, &len);
    char err[256];
    buf[0] = 'X';
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_DECODE);
    assert_non_null(strstr(err, "not a streamlearn model blob"));
    buf[0] = 'S';
    buf[4] = 3; /* version 3, checksum left stale: the version is reported first */
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_VERSION);
    assert_non_null(strstr(err, "3"));
    assert_non_null(strstr(err, "(2)"));
    buf[4] = 2;
    buf[len - 1] ^= 1;
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_CHECKSUM);
    free(buf);
    sl_learner_destroy(l);
}

static void reseal(uint8_t *buf, size_t len) {
    uint64_t h = XXH64(buf, len - 8, 0);
    for (int i = 0; i < 8; i++)
        buf[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Valid checksum, inconsistent fields: refused by name, never a crash. */
static void test_inconsistent_fields(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_SOFTMAX, 1, sl_optim_config_default(SL_OPTIM_ADAM), 5);
    train(l, 0, 1);
    size_t len;
    uint8_t *orig = blob_of(l, &len), *buf = malloc(len);
    char err[256];
    struct {
        size_t off;
        uint32_t value;
        const char *field;
    } cases[] = {
        {16, 7, "head"},         {28, 9, "n_hidden"},     {176, 1, "n_params"},
        {32, 5, "activation"},   {36, 0, "architecture"}, {40, 11, "optimizer"},
        {20, 0, "architecture"}, {24, 1, "architecture"}, {44, 3, "nesterov"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(buf, orig, len);
        put_le32(buf + cases[i].off, cases[i].value);
        reseal(buf, len);
        assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_DECODE);
        if (!strstr(err, cases[i].field))
            fail_msg("case %zu: '%s' does not name %s", i, err, cases[i].field);
    }
    /* The metrics fill (4th word of the metrics header; 5 ring entries follow
     * the sums, count and since_recompute) made huge. */
    size_t fill_off = len - 8 - scaler_section(2) - 5 * 24 - 8 * 8 - 8 - 2 * 4;
    memcpy(buf, orig, len);
    assert_int_equal(buf[fill_off], 5);
    put_le32(buf + fill_off, 1000000);
    reseal(buf, len);
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_DECODE);
    assert_non_null(strstr(err, "metrics"));
    /* A non-finite weight. */
    memcpy(buf, orig, len);
    size_t p0 = 16 + 4 * 6 + 8 + 8 * 12 + 8 * 4 + 8;
    memcpy(buf + p0, &(float){INFINITY}, 4);
    reseal(buf, len);
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_DECODE);
    assert_non_null(strstr(err, "params"));
    /* The scaler section: an unknown mode, a mode that needs statistics the
     * blob does not hold, layer norms for another architecture. */
    size_t sc = len - 8 - scaler_section(2);
    uint32_t bad_modes[][2] = {{7, 0}, {SL_SCALE_OFF, SL_SCALE_MAXABS}};
    for (size_t i = 0; i < 2; i++) {
        memcpy(buf, orig, len);
        put_le32(buf + sc, bad_modes[i][0]);
        put_le32(buf + sc + 4, bad_modes[i][1]);
        reseal(buf, len);
        assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_DECODE);
        assert_non_null(strstr(err, "scaler"));
    }
    memcpy(buf, orig, len);
    put_le32(buf + len - 8 - 8 - 2 * 8 - 4, 3);
    reseal(buf, len);
    assert_int_equal(try_load(buf, len, NULL, err, sizeof(err)), SL_ERR_DECODE);
    assert_non_null(strstr(err, "n_layers"));
    free(orig);
    free(buf);
    sl_learner_destroy(l);
}

static void test_expect_mismatch(void **state) {
    (void)state;
    sl_learner_t *l = make(SL_HEAD_SOFTMAX, 1, sl_optim_config_default(SL_OPTIM_ADAM), 0);
    size_t len;
    uint8_t *buf = blob_of(l, &len);
    char err[256];
    sl_model_config_t want = mcfg(SL_HEAD_SOFTMAX, 1);
    assert_int_equal(try_load(buf, len, &want, err, sizeof(err)), SL_OK);
    want.dim = 6;
    assert_int_equal(try_load(buf, len, &want, err, sizeof(err)), SL_ERR_MISMATCH);
    assert_string_equal(err, "model blob: dim is 5, expected 6");
    want = mcfg(SL_HEAD_SOFTMAX, 1);
    want.hidden[0] = 8;
    assert_int_equal(try_load(buf, len, &want, err, sizeof(err)), SL_ERR_MISMATCH);
    assert_string_equal(err, "model blob: hidden is 4, expected 8");
    want = mcfg(SL_HEAD_LOGISTIC, 1);
    assert_int_equal(try_load(buf, len, &want, err, sizeof(err)), SL_ERR_MISMATCH);
    assert_string_equal(err, "model blob: head is softmax, expected logistic");
    want = mcfg(SL_HEAD_SOFTMAX, 1);
    want.activation = SL_ACT_RELU;
    assert_int_equal(try_load(buf, len, &want, err, sizeof(err)), SL_ERR_MISMATCH);
    assert_string_equal(err, "model blob: activation is sigmoid, expected relu");
    free(buf);
    sl_learner_destroy(l);
}

int main(void) {
    sl_linalg_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_is_bit_exact),
        cmocka_unit_test(test_scaled_resume_is_bit_exact),
        cmocka_unit_test(test_format1_still_loads),
        cmocka_unit_test(test_config_survives),
        cmocka_unit_test(test_header_layout_is_little_endian),
        cmocka_unit_test(test_every_truncation_fails),
        cmocka_unit_test(test_every_byte_flip_fails),
        cmocka_unit_test(test_magic_and_version),
        cmocka_unit_test(test_inconsistent_fields),
        cmocka_unit_test(test_expect_mismatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
