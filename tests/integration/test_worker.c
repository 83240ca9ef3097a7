/* test_worker.c - the Kafka worker in-process against the mock cluster: outputs,
 * DLQ, commits, broker outage, injected produce/fetch errors, a rebalance,
 * hooks, the delivery mark hooks wait on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <msgpack.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/support/kafka_env.h"

#define DIM 4
#define MAX_IDS 4096
#define WAIT_MS 60000

/* What the output topic held so far. */
typedef struct seen {
    int count[MAX_IDS];
    int bad_key, no_version, bad_map;
    size_t total;
} seen_t;

static void pack_sample(msgpack_sbuffer *sb, int id, unsigned *rng) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    float x[DIM];
    for (int j = 0; j < DIM; j++) {
        *rng = *rng * 1103515245u + 12345u;
        x[j] = (float)((*rng >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_array(&pk, DIM);
    for (int j = 0; j < DIM; j++)
        msgpack_pack_float(&pk, x[j]);
    msgpack_pack_str_with_body(&pk, "y", 1);
    msgpack_pack_int(&pk, x[0] + x[1] > 0);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int(&pk, id);
}

/* Produces samples with ids [from, to), key "k<id>". */
static void produce_range(sl_kenv_t *e, const char *topic, int from, int to) {
    unsigned rng = (unsigned)from * 7919u + 1u;
    for (int id = from; id < to; id++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        pack_sample(&sb, id, &rng);
        char key[32];
        snprintf(key, sizeof key, "k%d", id);
        assert_int_equal(sl_kenv_produce(e, topic, key, sb.data, sb.size), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    assert_int_equal(sl_kenv_flush(e, WAIT_MS), 0);
}

static void on_output(void *arg, const rd_kafka_message_t *m) {
    seen_t *s = arg;
    s->total++;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    int id = -1;
    if (msgpack_unpack_next(&u, m->payload, m->len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_object_kv *kv = &u.data.via.map.ptr[i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2 &&
                !memcmp(kv->key.via.str.ptr, "id", 2) &&
                kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                id = (int)kv->val.via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
    if (id < 0 || id >= MAX_IDS) {
        s->bad_map++;
        return;
    }
    s->count[id]++;
    char want[32];
    int n = snprintf(want, sizeof want, "k%d", id);
    if (m->key_len != (size_t)n || memcmp(m->key, want, (size_t)n))
        s->bad_key++;
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t vlen = 0;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, "model.version", &v, &vlen))
        s->no_version++;
}

/* Reads outputs until every id in [0, n) was seen at least once (or the wait ends). */
static int ids_covered(const seen_t *s, int n) {
    for (int i = 0; i < n; i++)
        if (s->count[i] == 0)
            return 0;
    return 1;
}

static void wait_for_ids(sl_kreader_t *r, seen_t *s, int n) {
    uint64_t deadline = sl_now_ms() + WAIT_MS;
    while (!ids_covered(s, n) && sl_now_ms() < deadline)
        sl_kreader_poll(r, 200, on_output, s);
    for (int i = 0; i < n; i++)
        if (s->count[i] == 0)
            fail_msg("no prediction for sample id %d of %d", i, n);
}

static uint64_t trained(const sl_kworker_t *kw) {
    return sl_learner_counters(sl_worker_learner(kw->w)).samples;
}

static void test_predicts_every_sample_and_commits(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "in:4,out:4,dlq:1");
    assert_non_null(e);
    sl_kworker_t kw;
    assert_int_equal(sl_kworker_start(&kw, e, "g-basic", "in", "out", "dlq", DIM, 16, NULL), 0);
    produce_range(e, "in", 0, 400);
    seen_t *s = calloc(1, sizeof *s);
    sl_kreader_t *r = sl_kreader_new(e, "out");
    assert_non_null(r);
    wait_for_ids(r, s, 400);
    assert_int_equal(sl_kworker_stop(&kw), 0);
    sl_kreader_poll(r, 500, on_output, s);
    /* No faults: exactly one prediction per sample, keyed like its input. */
    for (int i = 0; i < 400; i++)
        assert_int_equal(s->count[i], 1);
    assert_int_equal(s->total, 400);
    assert_int_equal(s->bad_key, 0);
    assert_int_equal(s->no_version, 0);
    assert_int_equal(trained(&kw), 400);
    /* Everything delivered is committed: the group resumes after the last message. */
    int64_t committed = 0;
    for (int32_t p = 0; p < 4; p++) {
        int64_t off = sl_kenv_committed(e, "g-basic", "in", p);
        assert_true(off >= 0);
        committed += off;
    }
    assert_int_equal(committed, 400);
    sl_kreader_destroy(r);
    sl_kworker_free(&kw);
    free(s);
    sl_kenv_destroy(e);
}

typedef struct dlq_seen {
    int n;
    int headers_ok;
    int bytes_ok;
} dlq_seen_t;

static const uint8_t bad_bytes[] = {0xc1, 0x01};

static void on_dlq(void *arg, const rd_kafka_message_t *m) {
    dlq_seen_t *d = arg;
    d->n++;
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) == 0 &&
        rd_kafka_header_get_last(h, "error", &v, &len) == 0 && len > 0 &&
        rd_kafka_header_get_last(h, "source.topic", &v, &len) == 0 && len == 2 &&
        !memcmp(v, "in", 2) && rd_kafka_header_get_last(h, "source.partition", &v, &len) == 0 &&
        rd_kafka_header_get_last(h, "source.offset", &v, &len) == 0)
        d->headers_ok++;
    if (m->len == sizeof bad_bytes && !memcmp(m->payload, bad_bytes, sizeof bad_bytes))
        d->bytes_ok++;
}

static void test_bad_samples_go_to_dlq_and_never_stall(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "in:1,out:1,dlq:1");
    assert_non_null(e);
    sl_kworker_t kw;
    assert_int_equal(sl_kworker_start(&kw, e, "g-dlq", "in", "out", "dlq", DIM, 8, NULL), 0);
    produce_range(e, "in", 0, 10);
    assert_int_equal(sl_kenv_produce(e, "in", "bad", bad_bytes, sizeof bad_bytes), 0);
    /* An array: one good sample (id 10) and one with a wrong dimension. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_array(&pk, DIM);
    for (int j = 0; j < DIM; j++)
        msgpack_pack_float(&pk, 0.5f);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int(&pk, 10);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "x", 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_float(&pk, 1.0f);
    assert_int_equal(sl_kenv_produce(e, "in", "k10", sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    produce_range(e, "in", 11, 20); /* after the bad ones: the partition must not stall */

    seen_t *s = calloc(1, sizeof *s);
    sl_kreader_t *r = sl_kreader_new(e, "out");
    wait_for_ids(r, s, 20);
    dlq_seen_t d = {0};
    sl_kreader_t *rd = sl_kreader_new(e, "dlq");
    uint64_t deadline = sl_now_ms() + WAIT_MS;
    while (d.n < 2 && sl_now_ms() < deadline)
        sl_kreader_poll(rd, 200, on_dlq, &d);
    assert_int_equal(sl_kworker_stop(&kw), 0);
    assert_int_equal(d.n, 2); /* one DLQ copy per bad message */
    assert_int_equal(d.headers_ok, 2);
    assert_int_equal(d.bytes_ok, 1); /* the wholly bad message, byte for byte */
    sl_worker_stats_t st = sl_worker_stats(kw.w);
    assert_int_equal(st.bad, 2);
    assert_int_equal(st.samples, 20);
    assert_int_equal(sl_kenv_committed(e, "g-dlq", "in", 0), 21); /* 19 good + 2 bad messages */
    sl_kreader_destroy(r);
    sl_kreader_destroy(rd);
    sl_kworker_free(&kw);
    free(s);
    sl_kenv_destroy(e);
}

static void test_survives_broker_down_and_injected_errors(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "in:4,out:4");
    assert_non_null(e);
    rd_kafka_mock_cluster_t *mc = sl_devkafka_mock(e->dev);
    sl_kworker_t kw;
    assert_int_equal(sl_kworker_start(&kw, e, "g-fault", "in", "out", NULL, DIM, 16, NULL), 0);
    seen_t *s = calloc(1, sizeof *s);
    sl_kreader_t *r = sl_kreader_new(e, "out");
    produce_range(e, "in", 0, 200);
    wait_for_ids(r, s, 200);

    /* The broker goes away for 2 s mid-stream. */
    assert_int_equal(rd_kafka_mock_broker_set_down(mc, 1), 0);
    sleep(2);
    assert_int_equal(rd_kafka_mock_broker_set_up(mc, 1), 0);
    produce_range(e, "in", 200, 400);
    wait_for_ids(r, s, 400);

    /* Retriable errors on the next Produce and Fetch requests. */
    rd_kafka_mock_push_request_errors(
        mc, 0 /* Produce */, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS);
    rd_kafka_mock_push_request_errors(
        mc, 1 /* Fetch */, 3, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
    produce_range(e, "in", 400, 600);
    wait_for_ids(r, s, 600);
    assert_int_equal(sl_kworker_stop(&kw), 0);
    assert_int_equal(s->bad_key, 0);
    /* One worker, no rebalance: every labelled sample trained exactly once. */
    assert_int_equal(trained(&kw), 600);
    sl_kreader_destroy(r);
    sl_kworker_free(&kw);
    free(s);
    sl_kenv_destroy(e);
}

typedef struct assign_count {
    atomic_int assigned; /* partitions currently assigned */
} assign_count_t;

static sl_err_t count_assign(void *opaque, sl_worker_t *w, const char *topic,
                             const int32_t *partitions, size_t n, int64_t *offsets_out) {
    (void)w, (void)topic, (void)partitions, (void)offsets_out;
    atomic_fetch_add(&((assign_count_t *)opaque)->assigned, (int)n);
    return SL_OK;
}

static sl_err_t count_revoke(void *opaque, sl_worker_t *w, const sl_learner_t *l,
                             const sl_partoff_t *trained_, size_t n, const int32_t *revoked,
                             size_t nrevoked) {
    (void)l, (void)trained_, (void)n, (void)revoked;
    /* Commits follow what the hooks report durable: report the trained offsets. */
    sl_partoff_t all[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
        all[k++] = trained_[i];
    sl_worker_set_durable(w, all, k);
    atomic_fetch_sub(&((assign_count_t *)opaque)->assigned, (int)nrevoked);
    return SL_OK;
}

static sl_err_t durable_each_batch(void *opaque, sl_worker_t *w, const sl_learner_t *l,
                                   const sl_partoff_t *trained_, size_t n, uint64_t batch) {
    (void)opaque, (void)l, (void)batch;
    sl_worker_set_durable(w, trained_, n);
    return SL_OK;
}

static void wait_assigned(assign_count_t *c, int want) {
    uint64_t deadline = sl_now_ms() + WAIT_MS;
    while (atomic_load(&c->assigned) != want && sl_now_ms() < deadline)
        usleep(50000);
    assert_int_equal(atomic_load(&c->assigned), want);
}

/* Waits until the group's committed offsets on the 4 partitions of "in" add up to n. */
static void wait_committed(sl_kenv_t *e, const char *group, int64_t n) {
    uint64_t deadline = sl_now_ms() + WAIT_MS;
    int64_t sum = 0;
    for (;;) {
        sum = 0;
        for (int32_t p = 0; p < 4; p++) {
            int64_t off = sl_kenv_committed(e, group, "in", p);
            sum += off > 0 ? off : 0;
        }
        if (sum >= n || sl_now_ms() >= deadline)
            break;
        usleep(100000);
    }
    assert_int_equal(sum, n);
}

static void test_rebalance_join_and_leave(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "in:4,out:4");
    assert_non_null(e);
    assign_count_t ca = {0}, cb = {0};
    sl_worker_hooks_t ha = {.opaque = &ca,
                            .on_assign = count_assign,
                            .on_revoke = count_revoke,
                            .on_batch_done = durable_each_batch};
    sl_worker_hooks_t hb = ha;
    hb.opaque = &cb;
    sl_kworker_t a, b;
    seen_t *s = calloc(1, sizeof *s);
    sl_kreader_t *r = sl_kreader_new(e, "out");
    assert_int_equal(sl_kworker_start(&a, e, "g-rb", "in", "out", NULL, DIM, 16, &ha), 0);
    wait_assigned(&ca, 4);
    produce_range(e, "in", 0, 300);
    wait_for_ids(r, s, 300);
    wait_committed(e, "g-rb", 300); /* 0..299 are behind the group's offsets now */

    assert_int_equal(sl_kworker_start(&b, e, "g-rb", "in", "out", NULL, DIM, 16, &hb), 0);
    produce_range(e, "in", 300, 600); /* while the group rebalances */
    wait_assigned(&cb, 2);
    wait_assigned(&ca, 2);
    produce_range(e, "in", 600, 900);
    wait_for_ids(r, s, 900);

    assert_int_equal(sl_kworker_stop(&b), 0); /* leaves: a takes everything back */
    produce_range(e, "in", 900, 1200);
    wait_assigned(&ca, 4);
    wait_for_ids(r, s, 1200);
    assert_int_equal(sl_kworker_stop(&a), 0);
    sl_kreader_poll(r, 500, on_output, s);
    /* Every sample was predicted at least once (above). A sample is trained
     * again only together with a second prediction, i.e. only when its
     * message was consumed again because a commit was refused mid-rebalance
     * (librdkafka 2.0.2's mock refuses commits while a group is joining; see
     * docs/KAFKA.md): training never runs ahead of offset accounting. */
    size_t dups = 0;
    for (int i = 0; i < 1200; i++)
        dups += (size_t)(s->count[i] - 1);
    uint64_t ta = trained(&a), tb = trained(&b);
    assert_true(tb > 0);
    assert_int_equal(s->total, 1200 + dups);
    assert_int_equal(ta + tb, s->total);
    /* Only the rebalance windows are read again, never anything behind a
     * commit: the first 300 were committed before b joined. */
    for (int i = 0; i < 300; i++)
        assert_int_equal(s->count[i], 1);
    assert_int_equal(s->bad_key, 0);
    sl_kreader_destroy(r);
    sl_kworker_free(&a);
    sl_kworker_free(&b);
    free(s);
    sl_kenv_destroy(e);
}

static sl_err_t start_at_5(void *opaque, sl_worker_t *w, const char *topic,
                           const int32_t *partitions, size_t n, int64_t *offsets_out) {
    (void)opaque, (void)w, (void)topic, (void)partitions;
    for (size_t i = 0; i < n; i++)
        offsets_out[i] = 5;
    return SL_OK;
}

static void test_hooks_choose_start_and_gate_commits(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "in:1,out:1");
    assert_non_null(e);
    produce_range(e, "in", 0, 20);
    sl_worker_hooks_t h = {.on_assign = start_at_5}; /* never reports anything durable */
    sl_kworker_t kw;
    assert_int_equal(sl_kworker_start(&kw, e, "g-hooks", "in", "out", NULL, DIM, 4, &h), 0);
    seen_t *s = calloc(1, sizeof *s);
    sl_kreader_t *r = sl_kreader_new(e, "out");
    uint64_t deadline = sl_now_ms() + WAIT_MS;
    while (s->total < 15 && sl_now_ms() < deadline)
        sl_kreader_poll(r, 200, on_output, s);
    assert_int_equal(sl_kworker_stop(&kw), 0);
    sl_kreader_poll(r, 300, on_output, s);
    for (int i = 0; i < 5; i++)
        assert_int_equal(s->count[i], 0);
    for (int i = 5; i < 20; i++)
        assert_int_equal(s->count[i], 1);
    assert_int_equal(trained(&kw), 15);
    /* Nothing reported durable: nothing committed. */
    assert_int_equal(sl_kenv_committed(e, "g-hooks", "in", 0), RD_KAFKA_OFFSET_INVALID);
    sl_kreader_destroy(r);
    sl_kworker_free(&kw);
    free(s);
    sl_kenv_destroy(e);
}

/* What hooks saw of sl_worker_output_mark and sl_worker_delivered. */
typedef struct mark_probe {
    atomic_int assigned;
    int have_mark;
    uint64_t mark, queued; /* the mark, and the outputs queued when it was taken */
    int waited;            /* delivered said 0 at least once */
    int early;             /* delivered said 1 while fewer than `queued` were delivered */
    atomic_int done;       /* delivered said 1 */
} mark_probe_t;

static void probe_mark(mark_probe_t *p, sl_worker_t *w) {
    sl_worker_stats_t st = sl_worker_stats(w);
    if (!p->have_mark) {
        p->mark = sl_worker_output_mark(w);
        p->queued = st.samples;
        p->have_mark = 1;
    } else if (!atomic_load(&p->done)) {
        if (!sl_worker_delivered(w, p->mark)) {
            p->waited = 1;
            return;
        }
        p->early = st.delivered < p->queued;
        atomic_store(&p->done, 1);
    }
}

static sl_err_t mark_assign(void *opaque, sl_worker_t *w, const char *topic,
                            const int32_t *partitions, size_t n, int64_t *offsets_out) {
    (void)w, (void)topic, (void)partitions, (void)offsets_out;
    atomic_fetch_add(&((mark_probe_t *)opaque)->assigned, (int)n);
    return SL_OK;
}

static sl_err_t mark_batch(void *opaque, sl_worker_t *w, const sl_learner_t *l,
                           const sl_partoff_t *trained_, size_t n, uint64_t batch) {
    (void)l, (void)trained_, (void)n, (void)batch;
    probe_mark(opaque, w);
    return SL_OK;
}

static sl_err_t mark_tick(void *opaque, sl_worker_t *w, const sl_learner_t *l,
                          const sl_partoff_t *trained_, size_t n) {
    (void)l, (void)trained_, (void)n;
    if (((mark_probe_t *)opaque)->have_mark)
        probe_mark(opaque, w);
    return SL_OK;
}

/* A mark taken after a batch is not "delivered" while that batch's outputs
 * wait on a slow broker (300 ms round trip), and is once they all arrived. */
static void test_delivered_mark_waits_for_outputs(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "in:1,out:1");
    assert_non_null(e);
    mark_probe_t *p = calloc(1, sizeof *p);
    sl_worker_hooks_t h = {
        .opaque = p, .on_assign = mark_assign, .on_batch_done = mark_batch, .on_tick = mark_tick};
    sl_kworker_t kw;
    assert_int_equal(sl_kworker_start(&kw, e, "g-mark", "in", "out", NULL, DIM, 8, &h), 0);
    uint64_t deadline = sl_now_ms() + WAIT_MS;
    while (atomic_load(&p->assigned) < 1 && sl_now_ms() < deadline)
        usleep(20000);
    assert_int_equal(rd_kafka_mock_broker_set_rtt(sl_devkafka_mock(e->dev), 1, 300), 0);
    produce_range(e, "in", 0, 40);
    while (!atomic_load(&p->done) && sl_now_ms() < deadline)
        usleep(20000);
    assert_int_equal(sl_kworker_stop(&kw), 0);
    assert_true(atomic_load(&p->done));
    assert_true(p->queued >= 8);
    assert_true(p->waited);
    assert_false(p->early);
    sl_kworker_free(&kw);
    free(p);
    sl_kenv_destroy(e);
}

static void test_bad_kafka_property_is_config_error(void **state) {
    (void)state;
    static const sl_kconf_prop_t props[] = {{"foo.bar", "1"}};
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = DIM};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_SGD);
    char errstr[512] = "";
    sl_learner_t *l = sl_learner_new(&mc, &oc, 1, 0, errstr, sizeof errstr);
    sl_worker_config_t c = {.brokers = "127.0.0.1:1",
                            .group = "g",
                            .input_topic = "in",
                            .output_topic = "out",
                            .props = props,
                            .nprops = 1,
                            .batch_size = 4,
                            .decode = {.dim = DIM, .head = SL_HEAD_LOGISTIC}};
    sl_worker_t *w = (sl_worker_t *)&c; /* must come back NULL */
    assert_int_equal(sl_worker_new(&c, l, &w, errstr, sizeof errstr), SL_ERR_INVAL);
    assert_null(w);
    assert_non_null(strstr(errstr, "foo.bar"));
    sl_learner_destroy(l); /* not taken on failure */
    sl_worker_destroy(NULL);
}

int main(void) {
    sl_log_set_level(SL_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_kafka_property_is_config_error),
        cmocka_unit_test(test_predicts_every_sample_and_commits),
        cmocka_unit_test(test_bad_samples_go_to_dlq_and_never_stall),
        cmocka_unit_test(test_hooks_choose_start_and_gate_commits),
        cmocka_unit_test(test_survives_broker_down_and_injected_errors),
        cmocka_unit_test(test_rebalance_join_and_leave),
        cmocka_unit_test(test_delivered_mark_waits_for_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
