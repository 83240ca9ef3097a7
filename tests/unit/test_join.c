/* test_join.c - the delayed-label join: matching both ways, windows, duplicates, unknown
 * ids, caps and their order, partitions, counters, memory per sample, and save / restore /
 * rebuild, down to exactly-once training across simulated crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consumer/join.h"

#define DIM 32

static void check(const sl_join_t *j) {
    char why[200] = "";
    if (sl_join_check(j, why, sizeof(why)) != 0)
        fail_msg("join check: %s", why);
}

static sl_join_t *join_new(int64_t window, int64_t wait, uint64_t max_bytes, uint32_t out_dim) {
    sl_join_config_t cfg = {.dim = DIM,
                            .out_dim = out_dim,
                            .window = window,
                            .label_wait = wait,
                            .max_bytes = max_bytes};
    char err[128];
    sl_join_t *j = sl_join_new(&cfg, err, sizeof(err));
    if (!j)
        fail_msg("sl_join_new: %s", err);
    return j;
}

/* msgpack uint encoding of i, as a producer writes an int id */
static size_t id_bytes(uint64_t i, uint8_t *b) {
    if (i < 128) {
        b[0] = (uint8_t)i;
        return 1;
    }
    if (i < 65536) {
        b[0] = 0xcd, b[1] = (uint8_t)(i >> 8), b[2] = (uint8_t)i;
        return 3;
    }
    b[0] = 0xce, b[1] = (uint8_t)(i >> 24), b[2] = (uint8_t)(i >> 16), b[3] = (uint8_t)(i >> 8),
    b[4] = (uint8_t)i;
    return 5;
}

typedef struct smp {
    uint8_t id[8];
    float x[DIM];
    float pred[4];
    sl_join_sample_t s;
} smp_t;

/* Sample `i` of partition p at (offset, sub): x[k] = i + k/100, pred = i/1000. */
static const sl_join_sample_t *mk(smp_t *m, int32_t p, int64_t offset, uint32_t sub, uint64_t i) {
    size_t n = id_bytes(i, m->id);
    for (int k = 0; k < DIM; k++)
        m->x[k] = (float)i + (float)k / 100.0f;
    for (int k = 0; k < 4; k++)
        m->pred[k] = (float)i / 1000.0f + (float)k;
    m->s = (sl_join_sample_t){.partition = p,
                              .offset = offset,
                              .sub = sub,
                              .id = m->id,
                              .id_len = n,
                              .dense = m->x,
                              .pred = m->pred};
    return &m->s;
}

static sl_join_outcome_t add_f(sl_join_t *j, int32_t p, int64_t offset, uint64_t i, int64_t now) {
    smp_t m;
    sl_join_outcome_t o;
    assert_int_equal(sl_join_add_features(j, mk(&m, p, offset, 0, i), now, &o), SL_OK);
    return o;
}

static sl_join_outcome_t add_l(sl_join_t *j, int32_t p, int64_t offset, uint64_t i, float y,
                               int64_t now) {
    uint8_t id[8];
    size_t n = id_bytes(i, id);
    sl_join_label_t l = {.partition = p, .offset = offset, .id = id, .id_len = n, .y = y, .w = 1};
    sl_join_outcome_t o;
    assert_int_equal(sl_join_add_label(j, &l, now, &o), SL_OK);
    return o;
}

static uint64_t id_of(const uint8_t *b, size_t n) {
    if (n == 1)
        return b[0];
    if (n == 3)
        return (uint64_t)b[1] << 8 | b[2];
    return (uint64_t)b[1] << 24 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 8 | b[4];
}

static sl_join_stats_t stats(const sl_join_t *j) {
    sl_join_stats_t st;
    sl_join_stats(j, &st);
    return st;
}

/* ---- basics ---- */

static void test_destroy_null_and_bad_config(void **state) {
    (void)state;
    sl_join_destroy(NULL);
    char err[128];
    sl_join_config_t cfg = {.dim = 0, .out_dim = 1};
    assert_null(sl_join_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "dim"));
    cfg = (sl_join_config_t){.dim = 4, .out_dim = 0};
    assert_null(sl_join_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "out_dim"));
    cfg = (sl_join_config_t){.dim = 4, .out_dim = 1, .window = -1};
    assert_null(sl_join_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "window"));
    cfg = (sl_join_config_t){.dim = 4, .out_dim = 1, .label_wait = -5};
    assert_null(sl_join_new(&cfg, err, sizeof(err)));
    cfg = (sl_join_config_t){.dim = 4, .out_dim = 1};
    sl_join_t *j = sl_join_new(&cfg, err, sizeof(err));
    assert_non_null(j);
    assert_int_equal(sl_join_config(j)->max_bytes, SL_JOIN_DEFAULT_MAX_BYTES);
    assert_int_equal(sl_join_config(j)->max_label_bytes, SL_JOIN_DEFAULT_MAX_BYTES / 16);
    sl_join_destroy(j);
}

static void test_features_then_label(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 2);
    assert_int_equal(sl_join_add_partition(j, 3), SL_OK);
    assert_int_equal(sl_join_add_partition(j, 3), SL_ERR_STATE);
    assert_int_equal(add_f(j, 3, 10, 500, 100), SL_JOIN_PENDING);
    assert_int_equal(add_f(j, 3, 11, 501, 101), SL_JOIN_PENDING);
    assert_int_equal(sl_join_oldest_offset(j, 3), 10);
    assert_int_equal(add_l(j, 3, 7, 500, 1.0f, 350), SL_JOIN_MATCHED);
    assert_int_equal(sl_join_ready(j), 1);
    assert_int_equal(sl_join_oldest_offset(j, 3), 10); /* ready, not trained yet */
    assert_int_equal(sl_join_label_next(j, 3), 8);
    check(j);

    sl_batch_t *b = sl_batch_new(DIM, 4);
    float served[8];
    sl_join_pair_t pairs[4];
    size_t n;
    assert_int_equal(sl_join_pop(j, b, served, 4, 99, pairs, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sl_join_ready(j), 0);
    assert_int_equal(sl_batch_rows(b), 1);
    for (int k = 0; k < DIM; k++)
        assert_true(b->dense[k] == 500.0f + (float)k / 100.0f);
    assert_true(b->y[0] == 1.0f && b->w[0] == 1.0f && b->labelled[0] == 1);
    assert_true(served[0] == 0.5f && served[1] == 1.5f); /* the prediction served at 100 */
    sl_slot_view_t v;
    sl_batch_slot(b, 0, &v);
    assert_int_equal(v.tag, 99);
    assert_int_equal(id_of(v.id, v.id_len), 500);
    assert_int_equal(pairs[0].partition, 3);
    assert_int_equal(pairs[0].offset, 10);
    assert_int_equal(pairs[0].label_offset, 7);
    assert_int_equal(pairs[0].delay, 250);
    assert_int_equal(sl_join_oldest_offset(j, 3), 11);

    sl_join_stats_t st = stats(j);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.c.added, 2);
    assert_int_equal(st.c.matched, 1);
    assert_int_equal(st.delay_p50, 250 - 250 % 16 + 8); /* bucket [240, 256): its middle */
    sl_batch_destroy(b);
    sl_join_destroy(j);
}

static void test_label_before_features(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    assert_int_equal(add_l(j, 0, 0, 42, 0.0f, 10), SL_JOIN_HELD);
    assert_int_equal(stats(j).held, 1);
    assert_int_equal(add_f(j, 0, 5, 42, 60), SL_JOIN_MATCHED);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.ready, 1);
    assert_int_equal(st.c.matched, 1);
    assert_int_equal(st.delay_p50, 0); /* the label came first */
    /* a second label for it is a duplicate: the first won */
    assert_int_equal(add_l(j, 0, 1, 42, 1.0f, 70), SL_JOIN_DUPLICATE);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    float served[4];
    size_t n;
    assert_int_equal(sl_join_pop(j, b, served, 4, 0, NULL, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_true(b->y[0] == 0.0f);
    assert_int_equal(stats(j).c.duplicate, 1);
    check(j);
    sl_batch_destroy(b);
    sl_join_destroy(j);
}

static void test_duplicates(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    /* two labels before the features: the first wins */
    assert_int_equal(add_l(j, 0, 0, 1, 1.0f, 0), SL_JOIN_HELD);
    assert_int_equal(add_l(j, 0, 1, 1, 0.0f, 1), SL_JOIN_DUPLICATE);
    assert_int_equal(add_f(j, 0, 0, 1, 2), SL_JOIN_MATCHED);
    /* features sent twice: the second is not kept */
    assert_int_equal(add_f(j, 0, 1, 2, 3), SL_JOIN_PENDING);
    assert_int_equal(add_f(j, 0, 2, 2, 4), SL_JOIN_DUPLICATE);
    assert_int_equal(add_l(j, 0, 2, 2, 1.0f, 5), SL_JOIN_MATCHED);
    assert_int_equal(add_l(j, 0, 3, 2, 1.0f, 6), SL_JOIN_DUPLICATE);
    /* features for an id already matched are a duplicate too */
    assert_int_equal(add_f(j, 0, 3, 2, 7), SL_JOIN_DUPLICATE);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.c.matched, 2);
    assert_int_equal(st.c.duplicate, 2);
    assert_int_equal(st.c.dup_features, 2);
    assert_int_equal(st.matched_ids, 2);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    float served[4];
    size_t n;
    sl_join_pop(j, b, served, 4, 0, NULL, &n);
    assert_int_equal(n, 2);
    assert_true(b->y[0] == 1.0f); /* the first label of id 1 */
    check(j);
    sl_batch_destroy(b);
    sl_join_destroy(j);
}

static void test_unknown_ids_and_label_wait(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    assert_int_equal(add_l(j, 0, 0, 7, 1.0f, 0), SL_JOIN_HELD);
    assert_int_equal(add_l(j, 0, 1, 8, 1.0f, 50), SL_JOIN_HELD);
    sl_join_expire(j, 100); /* 7 waited exactly label_wait: still waiting */
    assert_int_equal(stats(j).held, 2);
    sl_join_expire(j, 101);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.held, 1);
    assert_int_equal(st.c.unmatched, 1);
    /* features for 8 after its wait ended, no tick in between: the add applies the wait */
    assert_int_equal(add_f(j, 0, 0, 8, 151), SL_JOIN_PENDING);
    st = stats(j);
    assert_int_equal(st.c.unmatched, 2);
    assert_int_equal(st.held, 0);
    sl_join_destroy(j);

    /* labels may not wait: unknown at once */
    j = join_new(1000, 0, 0, 1);
    sl_join_add_partition(j, 0);
    assert_int_equal(add_l(j, 0, 0, 7, 1.0f, 0), SL_JOIN_UNMATCHED);
    assert_int_equal(stats(j).c.unmatched, 1);
    sl_join_destroy(j);
}

static void test_window_expiry(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    add_f(j, 0, 0, 1, 0);
    add_f(j, 0, 1, 2, 500);
    add_f(j, 0, 2, 3, 900);
    sl_join_expire(j, 1000);
    assert_int_equal(stats(j).pending, 3);
    sl_join_expire(j, 1001);
    assert_int_equal(stats(j).pending, 2);
    assert_int_equal(stats(j).c.expired, 1);
    assert_int_equal(sl_join_oldest_offset(j, 0), 1);
    /* a label for 2 past its window, before any tick: the features count as expired and the
     * label waits (for features that will not come) */
    assert_int_equal(add_l(j, 0, 0, 2, 1.0f, 1501), SL_JOIN_HELD);
    assert_int_equal(stats(j).c.expired, 2);
    assert_int_equal(add_l(j, 0, 1, 3, 1.0f, 1900), SL_JOIN_MATCHED); /* exactly the window */
    /* a late label for 1 is an unknown id, not a match */
    assert_int_equal(add_l(j, 0, 2, 1, 1.0f, 1901), SL_JOIN_HELD);
    sl_join_expire(j, 5000);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.c.unmatched, 2);
    assert_int_equal(st.c.matched, 1);
    assert_int_equal(st.c.expired, 2);
    assert_int_equal(st.c.expired_cap, 0);
    assert_int_equal(st.pending, 0);
    /* matched ids are remembered for one window */
    assert_int_equal(st.matched_ids, 0);
    check(j);
    sl_join_destroy(j);
}

/* Cap eviction takes the oldest first across partitions, and counts it. */
static void test_byte_cap_eviction_order(void **state) {
    (void)state;
    /* one dense dim-32 record with a 1-byte id and 1 output: 24 + 12 + 4 + 128 + 1 -> 176 */
    sl_join_t *j = join_new(1000000, 1000, 176 * 10, 1);
    sl_join_add_partition(j, 0);
    sl_join_add_partition(j, 1);
    for (int i = 0; i < 10; i++) /* times interleave: even ids on 0, odd on 1 */
        assert_int_equal(add_f(j, i % 2, i / 2, (uint64_t)i, i), SL_JOIN_PENDING);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.pending_bytes, 1760);
    assert_int_equal(st.c.expired, 0);
    for (int i = 10; i < 14; i++)
        assert_int_equal(add_f(j, i % 2, i / 2, (uint64_t)i, i), SL_JOIN_PENDING);
    st = stats(j);
    assert_int_equal(st.pending, 10);
    assert_int_equal(st.c.expired, 4);
    assert_int_equal(st.c.expired_cap, 4);
    /* ids 0-3 went, in that order; 4-13 are there */
    for (int i = 0; i < 14; i++)
        assert_int_equal(add_l(j, i % 2, i, (uint64_t)i, 1.0f, 20),
                         i < 4 ? SL_JOIN_HELD : SL_JOIN_MATCHED);
    assert_int_equal(sl_join_oldest_offset(j, 0), 2);
    /* a record larger than the whole cap is never kept */
    smp_t m;
    sl_join_sample_t big = *mk(&m, 0, 100, 0, 99);
    static uint32_t col[400];
    static float val[400];
    for (int k = 0; k < 400; k++)
        col[k] = (uint32_t)k % DIM, val[k] = 1.0f;
    big.dense = NULL, big.col = col, big.val = val, big.nnz = 400;
    sl_join_outcome_t o;
    assert_int_equal(sl_join_add_features(j, &big, 30, &o), SL_OK);
    assert_int_equal(o, SL_JOIN_TOO_BIG);
    assert_int_equal(stats(j).c.expired_cap, 5);
    check(j);
    sl_join_destroy(j);
}

static void test_label_cap(void **state) {
    (void)state;
    sl_join_config_t cfg = {.dim = DIM,
                            .out_dim = 1,
                            .window = 1000,
                            .label_wait = 1000,
                            .max_bytes = 1 << 20,
                            .max_label_bytes = 48 * 6};
    sl_join_t *j = sl_join_new(&cfg, NULL, 0);
    sl_join_add_partition(j, 0);
    for (int i = 0; i < 8; i++) /* 24 + 16 + 1 -> 48 bytes each: 6 fit */
        assert_int_equal(add_l(j, 0, i, (uint64_t)i, 1.0f, i), SL_JOIN_HELD);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.held, 6);
    assert_int_equal(st.c.unmatched, 2);
    assert_int_equal(st.c.unmatched_cap, 2);
    assert_int_equal(add_f(j, 0, 0, 0, 10), SL_JOIN_PENDING); /* its label was dropped */
    assert_int_equal(add_f(j, 0, 1, 2, 10), SL_JOIN_MATCHED);
    sl_join_destroy(j);
}

static void test_matched_memory_is_bounded(void **state) {
    (void)state;
    sl_join_config_t cfg = {
        .dim = DIM, .out_dim = 1, .window = 100000, .label_wait = 10, .max_matched_ids = 100};
    sl_join_t *j = sl_join_new(&cfg, NULL, 0);
    sl_join_add_partition(j, 0);
    sl_join_add_partition(j, 1);
    for (int i = 0; i < 300; i++) {
        add_f(j, i % 2, i / 2, (uint64_t)i, i);
        assert_int_equal(add_l(j, i % 2, i / 2, (uint64_t)i, 1.0f, i), SL_JOIN_MATCHED);
    }
    assert_int_equal(stats(j).matched_ids, 100);
    check(j);
    /* the newest 100 are still known duplicates; the oldest were forgotten: unknown */
    assert_int_equal(add_l(j, 1, 500, 299, 1.0f, 400), SL_JOIN_DUPLICATE);
    assert_int_equal(add_l(j, 0, 500, 0, 1.0f, 400), SL_JOIN_HELD);
    sl_join_destroy(j);
}

static void test_out_of_order_and_bad_input(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    smp_t m;
    sl_join_outcome_t o;
    assert_int_equal(sl_join_add_features(j, mk(&m, 0, 0, 0, 1), 0, &o), SL_ERR_STATE);
    sl_join_add_partition(j, 0);
    assert_int_equal(sl_join_add_features(j, mk(&m, 0, 5, 1, 1), 0, &o), SL_OK);
    assert_int_equal(sl_join_add_features(j, mk(&m, 0, 5, 1, 2), 0, &o), SL_ERR_RANGE);
    assert_int_equal(sl_join_add_features(j, mk(&m, 0, 4, 0, 2), 0, &o), SL_ERR_RANGE);
    assert_int_equal(sl_join_add_features(j, mk(&m, 0, 5, 2, 2), 0, &o), SL_OK);
    sl_join_sample_t s = *mk(&m, 0, 6, 0, 3);
    s.id_len = 0;
    assert_int_equal(sl_join_add_features(j, &s, 0, &o), SL_ERR_INVAL);
    uint32_t col[1] = {DIM};
    float val[1] = {1};
    s = *mk(&m, 0, 6, 0, 3);
    s.dense = NULL, s.col = col, s.val = val, s.nnz = 1;
    assert_int_equal(sl_join_add_features(j, &s, 0, &o), SL_ERR_INVAL);
    sl_join_label_t l = {.partition = 9, .offset = 0, .id = m.id, .id_len = 1, .y = 1, .w = 1};
    assert_int_equal(sl_join_add_label(j, &l, 0, &o), SL_ERR_STATE);
    assert_int_equal(stats(j).pending, 2);
    check(j);
    sl_join_destroy(j);
}

/* Sparse rows go through as CSR; rows from a batch too. */
static void test_sparse_rows_and_batch_rows(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    sl_batch_t *in = sl_batch_new(DIM, 4);
    float x[DIM] = {0};
    x[3] = 2.0f;
    const uint8_t id1[] = {0x01}, id2[] = {0x02}, id3[] = {0x03};
    sl_batch_push_dense(in, x, 0, 1, 0, 0, id1, 1);
    uint32_t col[2] = {5, 31};
    float val[2] = {-1.0f, 4.0f};
    sl_batch_push_sparse(in, col, val, 2, 0, 1, 0, 0, id2, 1); /* batch becomes CSR */
    sl_batch_push_error(in, "bad", 0, id3, 1);
    float pred = 0.25f;
    for (size_t slot = 0; slot < 3; slot++) {
        sl_join_sample_t s = {.partition = 0, .offset = (int64_t)slot, .pred = &pred};
        sl_err_t e = sl_join_sample_from_batch(in, slot, &s);
        if (slot == 2) {
            assert_int_equal(e, SL_ERR_INVAL); /* a bad sample has no row */
            continue;
        }
        assert_int_equal(e, SL_OK);
        sl_join_outcome_t o;
        assert_int_equal(sl_join_add_features(j, &s, 0, &o), SL_OK);
        assert_int_equal(o, SL_JOIN_PENDING);
    }
    uint8_t dummy[8];
    assert_int_equal(id_bytes(2, dummy), 1);
    add_l(j, 0, 0, 2, 1.0f, 1);
    add_l(j, 0, 1, 1, 0.0f, 1);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    float served[2];
    size_t n;
    assert_int_equal(sl_join_pop(j, b, served, 1, 0, NULL, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_true(b->sparse);
    assert_int_equal(b->row_ptr[1], 2);
    assert_int_equal(b->col[0], 5);
    assert_int_equal(b->col[1], 31);
    assert_true(b->val[1] == 4.0f);
    assert_int_equal(sl_join_pop(j, b, served, 5, 0, NULL, &n), SL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(sl_batch_rows(b), 2);
    assert_true(b->val[2] == 2.0f && b->col[2] == 3); /* the dense row, without its zeros */
    sl_batch_t *wrong = sl_batch_new(DIM + 1, 1);
    assert_int_equal(sl_join_pop(j, wrong, served, 1, 0, NULL, &n), SL_ERR_MISMATCH);
    sl_batch_destroy(wrong);
    sl_batch_destroy(b);
    sl_batch_destroy(in);
    sl_join_destroy(j);
}

static void test_counters_and_quantiles(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    assert_int_equal(stats(j).delay_p50, -1);
    /* delays 1..1000 */
    for (int i = 0; i < 1000; i++)
        add_f(j, 0, i, (uint64_t)i, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(add_l(j, 0, i, (uint64_t)i, 1.0f, i + 1), SL_JOIN_MATCHED);
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.c.matched, 1000);
    assert_true(st.delay_p50 >= 500 * 15 / 16 && st.delay_p50 <= 500 * 17 / 16);
    assert_true(st.delay_p99 >= 990 * 15 / 16 && st.delay_p99 <= 990 * 17 / 16);
    sl_join_destroy(j);
}

/* The measured figure the docs state: memory per pending dim-32 dense sample against the raw
 * bytes (128 of features + the id). */
static void test_memory_per_pending_sample(void **state) {
    (void)state;
    sl_join_t *j = join_new(1 << 30, 100, 0, 1);
    sl_join_add_partition(j, 0);
    sl_join_add_partition(j, 1);
    const size_t n = 50000;
    for (size_t i = 0; i < n; i++)
        add_f(j, (int32_t)(i % 2), (int64_t)i, 1000000 + i, (int64_t)i); /* 5-byte ids */
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.pending, n);
    double per = (double)st.memory / (double)n, raw = 128.0 + 5.0;
    print_message("memory per pending dim-32 sample: %.1f bytes (%.2fx of %.0f raw)\n", per,
                  per / raw, raw);
    assert_true(per <= 1.5 * raw);
    sl_join_destroy(j);
}

/* Groups do exactly what the same calls one by one do: outcomes, state, saved bytes. */
static void test_groups_equal_single_calls(void **state) {
    (void)state;
    sl_join_t *a = join_new(300, 40, 176 * 700, 4), *g = join_new(300, 40, 176 * 700, 4);
    for (int p = 0; p < 3; p++) {
        sl_join_add_partition(a, p);
        sl_join_add_partition(g, p);
    }
    enum { N = 4000, G = 100 };
    static smp_t m[G];
    static sl_join_sample_t ss[G];
    static sl_join_label_t ls[G];
    static uint8_t lid[G][8];
    sl_join_outcome_t oa[G], og[G];
    int64_t foff[3] = {0, 0, 0}, loff[3] = {0, 0, 0};
    srand(5);
    for (int round = 0; round < N / G; round++) {
        int64_t now = round * 10;
        for (int k = 0; k < G; k++) { /* features: some ids repeat */
            uint64_t id =
                (uint64_t)(round * G + k) - (rand() % 10 == 0 ? (uint64_t)(rand() % 50) : 0);
            int32_t p = (int32_t)(id % 3);
            ss[k] = *mk(&m[k], p, foff[p]++, 0, id);
            assert_int_equal(sl_join_add_features(a, &ss[k], now, &oa[k]), SL_OK);
        }
        size_t done;
        assert_int_equal(sl_join_add_features_n(g, ss, G, now, og, &done), SL_OK);
        assert_int_equal(done, G);
        assert_memory_equal(oa, og, sizeof(oa));
        for (int k = 0; k < G; k++) { /* labels: recent, old, unknown, repeated */
            uint64_t id = (uint64_t)rand() % (uint64_t)((round + 1) * G + 30);
            int32_t p = (int32_t)(id % 3);
            ls[k] = (sl_join_label_t){p, loff[p]++, lid[k], id_bytes(id, lid[k]), 1.0f, 1.0f};
            assert_int_equal(sl_join_add_label(a, &ls[k], now + 5, &oa[k]), SL_OK);
        }
        assert_int_equal(sl_join_add_labels_n(g, ls, G, now + 5, og, &done), SL_OK);
        assert_memory_equal(oa, og, sizeof(oa));
        if (round % 7 == 0) {
            sl_join_expire(a, now);
            sl_join_expire(g, now);
        }
    }
    sl_join_stats_t sa = stats(a), sg = stats(g);
    assert_memory_equal(&sa.c, &sg.c, sizeof(sa.c));
    assert_true(sa.c.matched > 500 && sa.c.duplicate > 50 && sa.c.expired_cap > 0);
    sl_buf_t ba = {0}, bg = {0};
    sl_join_save(a, &ba);
    sl_join_save(g, &bg);
    assert_int_equal(ba.len, bg.len);
    assert_memory_equal(ba.data, bg.data, ba.len);
    check(g);
    /* an error stops the group at its index; the ones before are done */
    int32_t p = 0;
    for (int k = 0; k < 10; k++)
        ss[k] = *mk(&m[k], p, foff[p]++, 0, 900000 + (uint64_t)k);
    ss[6].id_len = 0;
    size_t done;
    assert_int_equal(sl_join_add_features_n(g, ss, 10, 99999, og, &done), SL_ERR_INVAL);
    assert_int_equal(done, 6);
    assert_int_equal(stats(g).c.added, sg.c.added + 6);
    sl_buf_free(&ba);
    sl_buf_free(&bg);
    sl_join_destroy(a);
    sl_join_destroy(g);
}

/* ---- partitions ---- */

static void test_revoke_drops_and_parks(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    sl_join_add_partition(j, 1);
    add_f(j, 0, 0, 10, 0);
    add_f(j, 1, 0, 11, 0);
    add_f(j, 1, 1, 12, 0);
    add_l(j, 1, 0, 12, 1.0f, 1); /* a ready pair of partition 1 */
    add_l(j, 1, 1, 99, 1.0f, 1); /* a waiting label of partition 1 */
    add_l(j, 0, 0, 10, 0.0f, 1); /* a ready pair of partition 0 */
    assert_int_equal(sl_join_ready(j), 2);
    assert_int_equal(sl_join_drop_partition(j, 1), SL_OK);
    assert_false(sl_join_has_partition(j, 1));
    sl_join_stats_t st = stats(j);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.ready, 1); /* partition 1's pair went with it */
    assert_int_equal(st.partitions, 1);
    assert_int_equal(st.c.matched, 2); /* lineage counters still count the parked partition */
    assert_int_equal(st.c.added, 3);
    assert_int_equal(sl_join_oldest_offset(j, 1), SL_JOIN_OFFSET_NONE);
    sl_join_outcome_t o;
    smp_t m;
    assert_int_equal(sl_join_add_features(j, mk(&m, 1, 5, 0, 5), 0, &o), SL_ERR_STATE);
    check(j);
    /* re-assigned from the parked copy: its label waits again and its state comes back on
     * re-reading offsets 0 and 1 */
    sl_join_resume_t r;
    char err[128];
    assert_int_equal(sl_join_restore(j, 1, NULL, 0, 2, &r, err, sizeof(err)), SL_OK);
    assert_int_equal(r.input_from, 0);
    assert_int_equal(r.label_from, 2);
    assert_int_equal(r.planned, 2);
    assert_int_equal(stats(j).held, 1);
    assert_int_equal(stats(j).c.matched, 2); /* not counted twice */
    sl_join_destroy(j);
}

/* ---- save, restore, rebuild ---- */

static void test_restore_errors(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    add_f(j, 0, 10, 1, 0);
    add_l(j, 0, 3, 2, 1.0f, 0);
    sl_buf_t blob = {0};
    assert_int_equal(sl_join_save(j, &blob), SL_OK);
    sl_join_t *k = join_new(1000, 100, 0, 1);
    char err[160];
    sl_join_resume_t r;
    blob.data[20] ^= 1;
    assert_int_equal(sl_join_restore(k, 0, blob.data, blob.len, 11, &r, err, sizeof(err)),
                     SL_ERR_CHECKSUM);
    blob.data[20] ^= 1;
    assert_int_equal(sl_join_restore(k, 0, blob.data, blob.len - 1, 11, &r, err, sizeof(err)),
                     SL_ERR_CHECKSUM);
    assert_int_equal(sl_join_restore(k, 0, blob.data, 10, 11, &r, err, sizeof(err)),
                     SL_ERR_TRUNCATED);
    /* the pending offset 10 must be below where prediction resumes */
    assert_int_equal(sl_join_restore(k, 0, blob.data, blob.len, 10, &r, err, sizeof(err)),
                     SL_ERR_RANGE);
    assert_non_null(strstr(err, "resume offset"));
    assert_false(sl_join_has_partition(k, 0));
    sl_join_t *other = join_new(1000, 100, 0, 3);
    assert_int_equal(sl_join_restore(other, 0, blob.data, blob.len, 11, &r, err, sizeof(err)),
                     SL_ERR_MISMATCH);
    /* no section for partition 5: an empty live shard */
    assert_int_equal(sl_join_restore(k, 5, blob.data, blob.len, 0, &r, err, sizeof(err)), SL_OK);
    assert_int_equal(r.planned, 0);
    assert_int_equal(r.label_from, SL_JOIN_OFFSET_NONE);
    assert_false(sl_join_rebuilding(k, 5));
    assert_int_equal(sl_join_restore(k, 0, blob.data, blob.len, 11, &r, err, sizeof(err)), SL_OK);
    assert_int_equal(r.input_from, 10);
    assert_int_equal(r.label_from, 4);
    assert_true(sl_join_rebuilding(k, 0));
    assert_int_equal(sl_join_live_from(k, 0), 11);
    sl_buf_free(&blob);
    sl_join_destroy(other);
    sl_join_destroy(k);
    sl_join_destroy(j);
}

static void test_rebuild(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 4);
    sl_join_add_partition(j, 0);
    /* offsets 0..9: ids 100+o; 0, 3 matched and trained; 5 matched, still ready; 7 carries
     * its own label (never added); the rest pending */
    for (int o = 0; o < 10; o++)
        if (o != 7)
            add_f(j, 0, o, 100 + (uint64_t)o, o);
    add_l(j, 0, 0, 100, 1.0f, 10);
    add_l(j, 0, 1, 103, 1.0f, 11);
    sl_batch_t *b = sl_batch_new(DIM, 8);
    float served[16];
    size_t n;
    sl_join_pop(j, b, served, 8, 0, NULL, &n);
    assert_int_equal(n, 2);
    add_l(j, 0, 2, 105, 0.0f, 12);
    add_l(j, 0, 3, 777, 1.0f, 13); /* waits for features */
    sl_join_stats_t before = stats(j);
    sl_buf_t blob = {0};
    assert_int_equal(sl_join_save(j, &blob), SL_OK);

    sl_join_t *k = join_new(1000, 100, 0, 4);
    sl_join_resume_t r;
    char err[160];
    assert_int_equal(sl_join_restore(k, 0, blob.data, blob.len, 10, &r, err, sizeof(err)), SL_OK);
    assert_int_equal(r.input_from, 1);
    assert_int_equal(r.label_from, 4);
    assert_int_equal(r.planned, 7); /* 1, 2, 4, 5 (ready), 6, 8, 9 */
    assert_int_equal(sl_join_oldest_offset(k, 0), 1);
    assert_int_equal(sl_join_rebuild_next(k, 0), 1);
    sl_join_stats_t st = stats(k);
    assert_int_equal(st.held, 1);
    assert_int_equal(st.c.matched, before.c.matched);
    assert_int_equal(st.c.added, before.c.added);
    /* a label arriving during the rebuild, for features not re-read yet: it waits, and does
     * not expire while the partition rebuilds */
    assert_int_equal(add_l(k, 0, 4, 108, 1.0f, 20), SL_JOIN_HELD);
    sl_join_expire(k, 100000);
    assert_int_equal(stats(k).held, 2);
    /* features below the live offset may not be added as new */
    smp_t m;
    sl_join_outcome_t o;
    assert_int_equal(sl_join_add_features(k, mk(&m, 0, 3, 0, 103), 50, &o), SL_ERR_STATE);
    /* re-read 1..9 (offset 4 lost to retention); predictions passed in are ignored */
    for (int off = 1; off < 10; off++) {
        if (off == 4)
            continue;
        mk(&m, 0, off, 0, 100 + (uint64_t)off);
        m.pred[0] = -1.0f;
        assert_int_equal(sl_join_rebuild_add(k, &m.s, 50, &o), SL_OK);
        sl_join_outcome_t want = off == 3 || off == 7   ? SL_JOIN_SKIPPED
                                 : off == 5 || off == 8 ? SL_JOIN_MATCHED
                                                        : SL_JOIN_PENDING;
        if (o != want)
            fail_msg("offset %d: outcome %d, want %d", off, o, want);
        sl_join_rebuild_seen(k, 0, off + 1);
        if (off == 6)
            assert_int_equal(sl_join_rebuild_next(k, 0), 8); /* 7 is not needed */
    }
    assert_false(sl_join_rebuilding(k, 0));
    assert_int_equal(sl_join_rebuild_next(k, 0), SL_JOIN_OFFSET_NONE);
    st = stats(k);
    assert_int_equal(st.c.lost, 1);
    assert_int_equal(st.rebuilt, 6);
    assert_int_equal(st.pending, 4); /* 1, 2, 6, 9 */
    assert_int_equal(st.ready, 2);   /* 5 (saved ready) and 8 (label came during rebuild) */
    assert_int_equal(st.c.matched, before.c.matched + 1);
    assert_int_equal(st.c.added, before.c.added);
    sl_batch_clear(b);
    sl_join_pair_t pairs[4];
    sl_join_pop(k, b, served, 8, 0, pairs, &n);
    assert_int_equal(n, 2);
    assert_int_equal(pairs[0].offset, 5);
    assert_true(b->y[0] == 0.0f);
    assert_true(served[0] == 0.105f); /* the prediction served before the crash */
    assert_int_equal(pairs[1].offset, 8);
    /* the label held since before the save still waits; the held labels of a live partition
     * expire again */
    sl_join_expire(k, 100000);
    assert_int_equal(stats(k).held, 0);
    check(k);
    sl_batch_destroy(b);
    sl_buf_free(&blob);
    sl_join_destroy(k);
    sl_join_destroy(j);
}

static void test_live_add_ends_rebuild(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 1);
    sl_join_add_partition(j, 0);
    add_f(j, 0, 3, 1, 0);
    add_f(j, 0, 4, 2, 0);
    sl_buf_t blob = {0};
    sl_join_save(j, &blob);
    sl_join_t *k = join_new(1000, 100, 0, 1);
    sl_join_resume_t r;
    assert_int_equal(sl_join_restore(k, 0, blob.data, blob.len, 5, &r, NULL, 0), SL_OK);
    smp_t m;
    sl_join_outcome_t o;
    assert_int_equal(sl_join_rebuild_add(k, mk(&m, 0, 3, 0, 1), 1, &o), SL_OK);
    assert_int_equal(o, SL_JOIN_PENDING);
    assert_int_equal(sl_join_add_features(k, mk(&m, 0, 5, 0, 3), 1, &o), SL_OK);
    assert_false(sl_join_rebuilding(k, 0));
    assert_int_equal(stats(k).c.lost, 1); /* offset 4 never came back */
    assert_int_equal(sl_join_rebuild_add(k, mk(&m, 0, 4, 0, 2), 1, &o), SL_ERR_STATE);
    sl_buf_free(&blob);
    sl_join_destroy(k);
    sl_join_destroy(j);
}

static void test_save_restore_roundtrip(void **state) {
    (void)state;
    sl_join_t *j = join_new(1000, 100, 0, 2);
    for (int p = 0; p < 3; p++)
        sl_join_add_partition(j, p);
    for (int i = 0; i < 300; i++)
        add_f(j, i % 3, i / 3, (uint64_t)i, i);
    for (int i = 0; i < 300; i += 4)
        add_l(j, i % 3, i, (uint64_t)i, 1.0f, 300);
    add_l(j, 1, 1000, 5000, 1.0f, 301);
    sl_join_drop_partition(j, 2);
    sl_buf_t a = {0}, b = {0};
    assert_int_equal(sl_join_save(j, &a), SL_OK);
    sl_join_t *k = join_new(1000, 100, 0, 2);
    int64_t live[3] = {100, 100, 100};
    for (int p = 0; p < 3; p++) {
        sl_join_resume_t r;
        assert_int_equal(sl_join_restore(k, p, a.data, a.len, live[p], &r, NULL, 0), SL_OK);
        /* re-read everything */
        for (int off = (int)r.input_from; off < live[p]; off++) {
            smp_t m;
            sl_join_outcome_t o;
            assert_int_equal(
                sl_join_rebuild_add(k, mk(&m, p, off, 0, (uint64_t)(off * 3 + p)), 400, &o), SL_OK);
            sl_join_rebuild_seen(k, p, off + 1);
        }
        sl_join_rebuild_seen(k, p, live[p]);
    }
    check(k);
    /* partition 2 is assigned again here, so its section is written from the live shard */
    assert_int_equal(sl_join_save(k, &b), SL_OK);
    sl_join_stats_t sa = stats(j), sb = stats(k);
    assert_int_equal(sa.c.matched, sb.c.matched);
    assert_int_equal(sa.c.added, sb.c.added);
    assert_int_equal(sb.pending, 225);
    assert_int_equal(sb.ready, 75);
    assert_int_equal(sb.c.lost, 0);
    assert_int_equal(sb.held, 1);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    sl_buf_free(&a);
    sl_buf_free(&b);
    sl_join_destroy(k);
    sl_join_destroy(j);
}

/* ---- exactly once across crashes ---- */

/* A stream of events on 2 partitions: features (offset = their index in the partition) and
 * labels (their own offsets), some labels before their features, some duplicated, some for
 * unknown ids, some samples never labelled. Time = event index. */
typedef struct ev {
    int kind; /* 0 features, 1 label */
    int32_t p;
    int64_t offset;
    uint64_t id;
    float y;
} ev_t;

enum { NEV = 6000, NIDS = 2200 };

static size_t make_events(ev_t *ev) {
    size_t n = 0;
    int64_t foff[2] = {0, 0}, loff[2] = {0, 0};
    static int64_t label_at[NIDS];
    srand(11);
    for (int i = 0; i < NIDS; i++)
        label_at[i] = -1;
    for (uint64_t id = 0; n < NEV; id++) {
        int32_t p = (int32_t)(id % 2);
        if (id < NIDS) {
            int r = rand() % 100;
            if (r >= 80 && r < 85) /* the label first */
                ev[n++] = (ev_t){1, p, loff[p]++, id, (float)(id % 2)};
            ev[n++] = (ev_t){0, p, foff[p]++, id, 0};
            if (r < 80) /* 5% too late for the window */
                label_at[id] = (int64_t)n + rand() % 300 + (r < 5 ? 900 : 0);
        }
        for (uint64_t k = 0; k < NIDS && n < NEV; k++) {
            if (label_at[k] >= 0 && label_at[k] <= (int64_t)n) {
                int32_t q = (int32_t)(k % 2);
                ev[n++] = (ev_t){1, q, loff[q]++, k, (float)(k % 2)};
                if (rand() % 20 == 0 && n < NEV) /* a duplicate */
                    ev[n++] = (ev_t){1, q, loff[q]++, k, 1.0f - (float)(k % 2)};
                label_at[k] = -1;
            }
        }
        if (rand() % 25 == 0 && n < NEV) { /* a label for an id that never comes */
            int32_t q = rand() % 2;
            ev[n++] = (ev_t){1, q, loff[q]++, 900000 + id, 1.0f};
        }
        if (id > 3 * NIDS)
            break;
    }
    return n;
}

typedef struct run {
    sl_join_t *j;
    sl_batch_t *b;
    int trained[NIDS + 1];
    float trained_y[NIDS + 1];
    float served[NIDS + 1];
} run_t;

static void pop_all(run_t *r) {
    float served[64];
    sl_join_pair_t pairs[64];
    size_t n;
    do {
        sl_batch_clear(r->b);
        assert_int_equal(sl_join_pop(r->j, r->b, served, 64, 0, pairs, &n), SL_OK);
        for (size_t i = 0; i < n; i++) {
            sl_slot_view_t v;
            sl_batch_slot(r->b, i, &v);
            uint64_t id = id_of(v.id, v.id_len);
            assert_true(id < NIDS);
            r->trained[id]++;
            r->trained_y[id] = r->b->y[i];
            r->served[id] = served[i];
        }
    } while (n > 0);
}

/* Feeds event i; live partitions only. */
static void feed(run_t *r, const ev_t *e, int64_t now) {
    sl_join_outcome_t o;
    if (e->kind == 0) {
        smp_t m;
        assert_int_equal(sl_join_add_features(r->j, mk(&m, e->p, e->offset, 0, e->id), now, &o),
                         SL_OK);
    } else {
        uint8_t id[8];
        size_t n = id_bytes(e->id, id);
        sl_join_label_t l = {e->p, e->offset, id, n, e->y, 1.0f};
        assert_int_equal(sl_join_add_label(r->j, &l, now, &o), SL_OK);
    }
}

static void run_init(run_t *r) {
    memset(r, 0, sizeof(*r));
    r->j = join_new(400, 50, 0, 4);
    r->b = sl_batch_new(DIM, 64);
    sl_join_add_partition(r->j, 0);
    sl_join_add_partition(r->j, 1);
}

static void test_exactly_once_across_crashes(void **state) {
    (void)state;
    static ev_t ev[NEV + 8];
    size_t n = make_events(ev);

    /* the uninterrupted run: after every event, pop and "train" (a batch boundary) */
    static run_t ref;
    run_init(&ref);
    for (size_t i = 0; i < n; i++) {
        feed(&ref, &ev[i], (int64_t)i);
        pop_all(&ref);
        if (i % 50 == 0)
            sl_join_expire(ref.j, (int64_t)i);
    }
    sl_join_stats_t want = stats(ref.j);
    assert_true(want.c.matched > 1000);
    assert_true(want.c.duplicate > 20);
    assert_true(want.c.unmatched > 20);
    assert_true(want.c.expired > 20);

    /* crashes: snapshots every 97 events; a crash every 613 events loses everything since
     * the last snapshot (its training included) and restarts from it */
    static run_t cur;
    run_init(&cur);
    static int durable_trained[NIDS + 1];
    memset(durable_trained, 0, sizeof(durable_trained));
    sl_buf_t snap = {0};
    size_t snap_at = 0; /* events consumed at the snapshot */
    int64_t in_next[2] = {0, 0}, lab_next[2] = {0, 0};
    int64_t snap_in[2] = {0, 0}, snap_lab[2] = {0, 0};
    assert_int_equal(sl_join_save(cur.j, &snap), SL_OK);
    int crashes = 0;
    size_t last_crash = 0;
    for (size_t i = 0; i < n; i++) {
        const ev_t *e = &ev[i];
        feed(&cur, e, (int64_t)i);
        if (e->kind == 0)
            in_next[e->p] = e->offset + 1;
        else
            lab_next[e->p] = e->offset + 1;
        pop_all(&cur);
        if (i % 50 == 0)
            sl_join_expire(cur.j, (int64_t)i);
        if (i % 97 == 96) { /* snapshot: training so far becomes durable */
            sl_buf_reset(&snap);
            assert_int_equal(sl_join_save(cur.j, &snap), SL_OK);
            memcpy(durable_trained, cur.trained, sizeof(durable_trained));
            snap_at = i + 1;
            memcpy(snap_in, in_next, sizeof(in_next));
            memcpy(snap_lab, lab_next, sizeof(lab_next));
        }
        if (i % 613 == 612 && i > last_crash && i + 1 < n) { /* kill -9 */
            last_crash = i;
            crashes++;
            sl_join_destroy(cur.j);
            cur.j = join_new(400, 50, 0, 4);
            memcpy(cur.trained, durable_trained, sizeof(durable_trained));
            sl_join_resume_t rs[2];
            for (int p = 0; p < 2; p++) {
                assert_int_equal(
                    sl_join_restore(cur.j, p, snap.data, snap.len, snap_in[p], &rs[p], NULL, 0),
                    SL_OK);
                if (snap_lab[p] > 0)
                    assert_int_equal(rs[p].label_from, snap_lab[p]);
            }
            /* the rebuild pass: re-read each input partition from its oldest pending offset
             * up to where prediction resumes, feeding no labels meanwhile */
            for (size_t k = 0; k < snap_at; k++) {
                const ev_t *f = &ev[k];
                if (f->kind != 0 || f->offset < rs[f->p].input_from || f->offset >= snap_in[f->p])
                    continue;
                smp_t m;
                sl_join_outcome_t o;
                assert_int_equal(
                    sl_join_rebuild_add(cur.j, mk(&m, f->p, f->offset, 0, f->id), (int64_t)k, &o),
                    SL_OK);
                sl_join_rebuild_seen(cur.j, f->p, f->offset + 1);
            }
            for (int p = 0; p < 2; p++)
                sl_join_rebuild_seen(cur.j, p, snap_in[p]);
            check(cur.j);
            pop_all(&cur); /* pairs that were ready at the snapshot */
            memcpy(in_next, snap_in, sizeof(in_next));
            memcpy(lab_next, snap_lab, sizeof(lab_next));
            i = snap_at - 1; /* consume again from the snapshot's offsets */
        }
    }
    assert_true(crashes >= 5);
    sl_join_stats_t got = stats(cur.j);
    for (uint64_t id = 0; id < NIDS; id++) {
        if (cur.trained[id] != ref.trained[id])
            fail_msg("id %llu trained %d times, %d without crashes", (unsigned long long)id,
                     cur.trained[id], ref.trained[id]);
        assert_true(cur.trained[id] <= 1);
        if (ref.trained[id]) {
            assert_true(cur.trained_y[id] == ref.trained_y[id]); /* the first label */
            assert_true(cur.served[id] == ref.served[id]);       /* the served prediction */
        }
    }
    assert_int_equal(got.c.matched, want.c.matched);
    assert_int_equal(got.c.duplicate, want.c.duplicate);
    assert_int_equal(got.c.unmatched, want.c.unmatched);
    assert_int_equal(got.c.expired, want.c.expired);
    assert_int_equal(got.c.added, want.c.added);
    assert_int_equal(got.c.lost, 0);
    assert_int_equal(got.pending, want.pending);
    assert_int_equal(got.held, want.held);
    sl_buf_free(&snap);
    sl_batch_destroy(ref.b);
    sl_join_destroy(ref.j);
    sl_batch_destroy(cur.b);
    sl_join_destroy(cur.j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destroy_null_and_bad_config),
        cmocka_unit_test(test_features_then_label),
        cmocka_unit_test(test_label_before_features),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_unknown_ids_and_label_wait),
        cmocka_unit_test(test_window_expiry),
        cmocka_unit_test(test_byte_cap_eviction_order),
        cmocka_unit_test(test_label_cap),
        cmocka_unit_test(test_matched_memory_is_bounded),
        cmocka_unit_test(test_out_of_order_and_bad_input),
        cmocka_unit_test(test_sparse_rows_and_batch_rows),
        cmocka_unit_test(test_counters_and_quantiles),
        cmocka_unit_test(test_memory_per_pending_sample),
        cmocka_unit_test(test_groups_equal_single_calls),
        cmocka_unit_test(test_revoke_drops_and_parks),
        cmocka_unit_test(test_restore_errors),
        cmocka_unit_test(test_rebuild),
        cmocka_unit_test(test_live_add_ends_rebuild),
        cmocka_unit_test(test_save_restore_roundtrip),
        cmocka_unit_test(test_exactly_once_across_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
