/* test_keylog.c - the join's record log: order, index, removal, slot reuse, memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consumer/keylog.h"

static void check(const sl_keylog_t *kl) {
    char why[200] = "";
    if (sl_keylog_check(kl, why, sizeof(why)) != 0)
        fail_msg("keylog check: %s", why);
}

/* Appends id "k<i>" with an 8-byte payload holding i. */
static sl_keylog_rec_t *put(sl_keylog_t *kl, uint64_t i, size_t extra, int64_t time) {
    char id[32];
    int n = snprintf(id, sizeof(id), "k%llu", (unsigned long long)i);
    sl_err_t err;
    sl_keylog_rec_t *r =
        sl_keylog_append(kl, (const uint8_t *)id, (size_t)n,
                         sl_keylog_hash((const uint8_t *)id, (size_t)n), 8 + extra, time, &err);
    assert_non_null(r);
    assert_int_equal(err, SL_OK);
    memcpy(sl_keylog_payload(r), &i, 8);
    if (extra)
        memset(sl_keylog_payload(r) + 8, (int)(i & 0xff), extra);
    return r;
}

static sl_keylog_rec_t *get(const sl_keylog_t *kl, uint64_t i) {
    char id[32];
    int n = snprintf(id, sizeof(id), "k%llu", (unsigned long long)i);
    return sl_keylog_find(kl, (const uint8_t *)id, (size_t)n,
                          sl_keylog_hash((const uint8_t *)id, (size_t)n));
}

static uint64_t val(sl_keylog_rec_t *r) {
    uint64_t v;
    memcpy(&v, sl_keylog_payload(r), 8);
    return v;
}

static void del(sl_keylog_t *kl, uint64_t i) {
    sl_keylog_rec_t *r = get(kl, i);
    assert_non_null(r);
    sl_keylog_remove(kl, r, sl_keylog_hash(sl_keylog_id(r), r->id_len));
}

static void test_destroy_null(void **state) {
    (void)state;
    sl_keylog_destroy(NULL);
}

static void test_append_find_remove(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    assert_null(get(kl, 1));
    for (uint64_t i = 0; i < 100; i++)
        put(kl, i, 0, (int64_t)i);
    check(kl);
    assert_int_equal(sl_keylog_count(kl), 100);
    for (uint64_t i = 0; i < 100; i++) {
        sl_keylog_rec_t *r = get(kl, i);
        assert_non_null(r);
        assert_int_equal(val(r), i);
        assert_int_equal(r->time, (int64_t)i);
    }
    assert_null(get(kl, 100));
    del(kl, 50);
    assert_null(get(kl, 50));
    assert_non_null(get(kl, 51));
    assert_int_equal(sl_keylog_count(kl), 99);
    check(kl);
    sl_keylog_destroy(kl);
}

static void test_bad_ids(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    sl_err_t err = SL_OK;
    uint8_t id[1] = {1};
    assert_null(sl_keylog_append(kl, id, 0, 0, 8, 0, &err));
    assert_int_equal(err, SL_ERR_INVAL);
    static uint8_t big[SL_KEYLOG_MAX_ID + 1];
    assert_null(sl_keylog_append(kl, big, sizeof(big), 0, 8, 0, &err));
    assert_int_equal(err, SL_ERR_INVAL);
    assert_non_null(sl_keylog_append(kl, big, SL_KEYLOG_MAX_ID,
                                     sl_keylog_hash(big, SL_KEYLOG_MAX_ID), 8, 0, &err));
    assert_int_equal(sl_keylog_count(kl), 1);
    check(kl);
    sl_keylog_destroy(kl);
}

/* Ids whose hashes collide completely are still told apart by their bytes, and removing one
 * keeps the others findable (backward-shift deletion across a probe run). */
static void test_hash_collisions(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    sl_err_t err;
    for (uint8_t i = 0; i < 40; i++) {
        uint8_t id[2] = {'c', i};
        sl_keylog_rec_t *r = sl_keylog_append(kl, id, 2, 42, 4, i, &err);
        assert_non_null(r);
        r->user = i;
    }
    for (uint8_t i = 0; i < 40; i += 3) {
        uint8_t id[2] = {'c', i};
        sl_keylog_rec_t *r = sl_keylog_find(kl, id, 2, 42);
        assert_non_null(r);
        sl_keylog_remove(kl, r, 42);
    }
    for (uint8_t i = 0; i < 40; i++) {
        uint8_t id[2] = {'c', i};
        sl_keylog_rec_t *r = sl_keylog_find(kl, id, 2, 42);
        if (i % 3 == 0) {
            assert_null(r);
        } else {
            assert_non_null(r);
            assert_int_equal(r->user, i);
        }
    }
    sl_keylog_destroy(kl);
}

static void test_oldest_first(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    assert_null(sl_keylog_oldest(kl));
    sl_keylog_pop(kl); /* empty: no-op */
    for (uint64_t i = 0; i < 1000; i++)
        put(kl, i, 24, (int64_t)i);
    for (uint64_t i = 0; i < 1000; i += 2)
        del(kl, i); /* the oldest live is now 1 */
    sl_keylog_rec_t *r = sl_keylog_oldest(kl);
    assert_non_null(r);
    assert_int_equal(val(r), 1);
    for (uint64_t i = 1; i < 1000; i += 2) {
        r = sl_keylog_oldest(kl);
        assert_int_equal(val(r), i);
        sl_keylog_pop(kl);
        assert_null(get(kl, i));
    }
    assert_null(sl_keylog_oldest(kl));
    assert_int_equal(sl_keylog_count(kl), 0);
    assert_int_equal(sl_keylog_bytes(kl), 0);
    check(kl);
    /* emptied, it holds at most a page per class and a small index */
    assert_true(sl_keylog_memory(kl) < 80 * 1024);
    sl_keylog_destroy(kl);
}

/* A record over 64 KiB gets a page of its own; order goes through it. */
static void test_large_records(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    for (uint64_t i = 0; i < 300; i++)
        put(kl, i, i % 50 == 7 ? 100000 : 40 + i % 700, (int64_t)i);
    check(kl);
    for (uint64_t i = 0; i < 300; i++)
        if (i % 4 != 0 && i % 50 != 7)
            del(kl, i);
    check(kl);
    sl_keylog_iter_t it;
    sl_keylog_iter_init(kl, &it);
    uint64_t expect = 0;
    for (sl_keylog_rec_t *r; (r = sl_keylog_iter_next(&it));) {
        while (expect % 4 != 0 && expect % 50 != 7)
            expect++;
        assert_int_equal(val(r), expect);
        if (expect % 50 == 7)
            for (size_t k = 0; k < 100000; k += 9999)
                assert_int_equal(sl_keylog_payload(r)[8 + k], (uint8_t)(expect & 0xff));
        expect++;
    }
    sl_keylog_destroy(kl);
}

static void test_size_classes(void **state) {
    (void)state;
    assert_int_equal(sl_keylog_class(24), 24);
    assert_int_equal(sl_keylog_class(169), 176);
    assert_int_equal(sl_keylog_class(512), 512);
    assert_int_equal(sl_keylog_class(513), 576);
    assert_int_equal(sl_keylog_class(1024), 1024);
    assert_int_equal(sl_keylog_class(1025), 1152);
    for (uint32_t s = 24; s < 200000; s += 37) { /* within 1/8 above the size */
        uint32_t c = sl_keylog_class(s);
        assert_true(c >= s && (uint64_t)c * 8 <= (uint64_t)s * 9 + 64);
    }
}

/* Records removed from the middle free their slots for the next ones at once: a steady state
 * of appends and removals keeps memory at the live bytes however long it runs, and the order
 * never changes. */
static void test_slots_are_reused(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    const uint64_t live_target = 20000;
    uint64_t next = 0;
    uint64_t max_mem = 0;
    /* every 10th record stays (never matched); the others go a little later */
    for (int round = 0; round < 40; round++) {
        for (uint64_t k = 0; k < 5000; k++)
            put(kl, next, 150, (int64_t)next), next++;
        for (uint64_t i = next - 5000; i < next; i++)
            if (i % 10 != 0 && i >= 5000 && get(kl, i - 5000))
                del(kl, i - 5000);
        while (sl_keylog_count(kl) > live_target)
            sl_keylog_pop(kl);
        uint64_t mem = sl_keylog_memory(kl);
        if (round > 5 && mem > max_mem)
            max_mem = mem;
    }
    check(kl);
    /* the peak live set (20,000 + a round of 5,000) in its size class (ids "k10000" and
     * such), plus one page, and an 8-byte index slot per record at a load of at least 3/8 */
    double rec = sl_keylog_class(sizeof(sl_keylog_rec_t) + 158 + 6);
    double bound = 25000.0 * rec + 65536 + 8.0 * 25000 * 8.0 / 3.0;
    if ((double)max_mem > bound)
        fail_msg("memory %llu over %.0f", (unsigned long long)max_mem, bound);
    sl_keylog_iter_t it;
    sl_keylog_iter_init(kl, &it);
    int64_t last = -1;
    for (sl_keylog_rec_t *r; (r = sl_keylog_iter_next(&it));) {
        assert_true((int64_t)val(r) > last);
        last = (int64_t)val(r);
    }
    /* emptied, pages go back */
    while (sl_keylog_count(kl))
        sl_keylog_pop(kl);
    check(kl);
    assert_true(sl_keylog_memory(kl) < 128 * 1024);
    sl_keylog_destroy(kl);
}

/* Random operations against a reference list of what is live, in order. */
static void test_random_against_reference(void **state) {
    (void)state;
    sl_keylog_t *kl = sl_keylog_new();
    enum { N = 60000 };
    static uint8_t live[N];
    uint64_t next = 0, oldest = 0;
    size_t count = 0;
    srand(7);
    for (int op = 0; op < 200000; op++) {
        int r = rand() % 100;
        if (r < 45 && next < N) {
            put(kl, next, (size_t)(rand() % 300), (int64_t)next);
            live[next++] = 1;
            count++;
        } else if (r < 85 && count > 0) {
            uint64_t i = oldest + (uint64_t)rand() % (next - oldest);
            if (live[i]) {
                del(kl, i);
                live[i] = 0;
                count--;
            }
        } else if (r < 95) {
            while (oldest < next && !live[oldest])
                oldest++;
            sl_keylog_rec_t *o = sl_keylog_oldest(kl);
            if (oldest == next) {
                assert_null(o);
            } else {
                assert_non_null(o);
                assert_int_equal(val(o), oldest);
                sl_keylog_pop(kl);
                live[oldest] = 0;
                count--;
            }
        } else if (count > 0) { /* the iteration agrees with the oldest */
            sl_keylog_iter_t it;
            sl_keylog_iter_init(kl, &it);
            assert_ptr_equal(sl_keylog_iter_next(&it), sl_keylog_oldest(kl));
        }
        if (op % 20000 == 0)
            check(kl);
    }
    check(kl);
    assert_int_equal(sl_keylog_count(kl), count);
    sl_keylog_iter_t it;
    sl_keylog_iter_init(kl, &it);
    uint64_t i = 0;
    for (sl_keylog_rec_t *rec; (rec = sl_keylog_iter_next(&it));) {
        while (!live[i])
            i++;
        assert_int_equal(val(rec), i);
        assert_non_null(get(kl, i));
        i++;
    }
    for (; i < next; i++)
        assert_false(live[i]);
    sl_keylog_destroy(kl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destroy_null),
        cmocka_unit_test(test_append_find_remove),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_hash_collisions),
        cmocka_unit_test(test_oldest_first),
        cmocka_unit_test(test_large_records),
        cmocka_unit_test(test_size_classes),
        cmocka_unit_test(test_slots_are_reused),
        cmocka_unit_test(test_random_against_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
