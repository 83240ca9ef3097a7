/* test_offsets.c - the done-offset tracker: contiguous prefixes, gaps, references, generations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "consumer/offsets.h"

static void test_destroy_null(void **state) {
    (void)state;
    sl_offsets_destroy(NULL);
}

static void test_nothing_committable_before_done(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    uint32_t g = sl_offsets_add_partition(o, 2);
    assert_true(g > 0);
    assert_int_equal(sl_offsets_track(o, 2, 10), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 2), SL_OFFSET_NONE);
    assert_int_equal(sl_offsets_pending(o, 2), 1);
    sl_offsets_destroy(o);
}

static void test_out_of_order_completion_waits_for_prefix(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    uint32_t g = sl_offsets_add_partition(o, 0);
    for (int64_t off = 0; off < 3; off++)
        assert_int_equal(sl_offsets_track(o, 0, off), SL_OK);
    assert_int_equal(sl_offsets_release(o, 0, g, 2), SL_OK);
    assert_int_equal(sl_offsets_release(o, 0, g, 1), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 0), SL_OFFSET_NONE);
    assert_int_equal(sl_offsets_release(o, 0, g, 0), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 0), 3);
    assert_int_equal(sl_offsets_pending(o, 0), 0);
    sl_offsets_destroy(o);
}

static void test_release_once(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    uint32_t g = sl_offsets_add_partition(o, 0);
    assert_int_equal(sl_offsets_track(o, 0, 5), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 0), SL_OFFSET_NONE);
    assert_int_equal(sl_offsets_release(o, 0, g, 4), SL_ERR_STATE); /* not tracked */
    assert_int_equal(sl_offsets_release(o, 0, g, 5), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 0), 6);
    assert_int_equal(sl_offsets_release(o, 0, g, 5), SL_ERR_STATE); /* done already */
    assert_int_equal(sl_offsets_committable(o, 0), 6);
    sl_offsets_destroy(o);
}

static void test_gaps_commit_past_last_done(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    uint32_t g = sl_offsets_add_partition(o, 1);
    assert_int_equal(sl_offsets_track(o, 1, 5), SL_OK);
    assert_int_equal(sl_offsets_track(o, 1, 9), SL_OK);
    assert_int_equal(sl_offsets_release(o, 1, g, 5), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 1), 6);
    assert_int_equal(sl_offsets_release(o, 1, g, 9), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 1), 10);
    sl_offsets_destroy(o);
}

static void test_track_rejects_non_increasing_and_unknown(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    assert_int_equal(sl_offsets_track(o, 0, 1), SL_ERR_STATE);
    sl_offsets_add_partition(o, 0);
    assert_int_equal(sl_offsets_track(o, 0, 4), SL_OK);
    assert_int_equal(sl_offsets_track(o, 0, 4), SL_ERR_INVAL);
    assert_int_equal(sl_offsets_track(o, 0, 3), SL_ERR_INVAL);
    assert_int_equal(sl_offsets_pending(o, 0), 1);
    sl_offsets_destroy(o);
}

static void test_stale_generation_ignored(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    uint32_t g1 = sl_offsets_add_partition(o, 3);
    assert_int_equal(sl_offsets_track(o, 3, 0), SL_OK);
    uint32_t g2 = sl_offsets_add_partition(o, 3); /* revoked and assigned again */
    assert_int_not_equal(g1, g2);
    assert_int_equal(sl_offsets_track(o, 3, 0), SL_OK);
    assert_int_equal(sl_offsets_release(o, 3, g1, 0), SL_ERR_STATE);
    assert_int_equal(sl_offsets_pending(o, 3), 1);
    assert_int_equal(sl_offsets_release(o, 3, g2, 0), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 3), 1);
    sl_offsets_remove_partition(o, 3);
    assert_int_equal(sl_offsets_generation(o, 3), 0);
    assert_int_equal(sl_offsets_committable(o, 3), SL_OFFSET_NONE);
    sl_offsets_destroy(o);
}

static void test_many_messages_partitions_independent(void **state) {
    (void)state;
    sl_offsets_t *o = sl_offsets_new();
    uint32_t g0 = sl_offsets_add_partition(o, 0);
    uint32_t g1 = sl_offsets_add_partition(o, 1);
    /* Enough to make the queue grow and compact several times. */
    for (int64_t off = 0; off < 1000; off++) {
        assert_int_equal(sl_offsets_track(o, 0, off), SL_OK);
        assert_int_equal(sl_offsets_track(o, 1, off * 2), SL_OK);
        if (off >= 10) {
            assert_int_equal(sl_offsets_release(o, 0, g0, off - 10), SL_OK);
            assert_int_equal(sl_offsets_committable(o, 0), off - 9);
        }
    }
    assert_int_equal(sl_offsets_pending(o, 0), 10);
    assert_int_equal(sl_offsets_pending(o, 1), 1000);
    assert_int_equal(sl_offsets_committable(o, 1), SL_OFFSET_NONE);
    assert_int_equal(sl_offsets_release(o, 1, g1, 0), SL_OK);
    assert_int_equal(sl_offsets_committable(o, 1), 1);
    sl_offsets_destroy(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destroy_null),
        cmocka_unit_test(test_nothing_committable_before_done),
        cmocka_unit_test(test_out_of_order_completion_waits_for_prefix),
        cmocka_unit_test(test_release_once),
        cmocka_unit_test(test_gaps_commit_past_last_done),
        cmocka_unit_test(test_track_rejects_non_increasing_and_unknown),
        cmocka_unit_test(test_stale_generation_ignored),
        cmocka_unit_test(test_many_messages_partitions_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
