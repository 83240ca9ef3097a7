/* test_store.c - versions in a real redis-server: publish/load round trip,
 * version numbers, parent and lease checks, corruption fallback, retention,
 * rollback and audit, outages, and bad replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/learner.h"
#include "model/safetensors.h"
#include "store/keys.h"
#include "store/lease.h"
#include "store/redis.h"
#include "store/snapshot.h"
#include "store/store.h"
#include "tests/support/redis_server.h"

static sl_test_redis_t *server;

/* One test's objects: a connection and the versions of model "m". */
typedef struct ctx {
    sl_redis_t *r;
    sl_snapshot_t *s;
} ctx_t;

static sl_redis_t *connect_redis(void) {
    char err[512];
    sl_redis_opts_t o = {.backoff_min_ms = 50, .backoff_max_ms = 200};
    sl_redis_t *r = sl_redis_new(sl_test_redis_url(server), &o, err, sizeof err);
    if (!r)
        fail_msg("sl_redis_new: %s", err);
    return r;
}

/* Runs a command of string arguments; fails the test on error. */
static void must(sl_redis_t *r, int argc, const char **argv) {
    char err[512];
    redisReply *rep;
    if (sl_redis_call(r, SL_REPLY_ANY, &rep, err, sizeof err, argc, argv, NULL) != SL_OK)
        fail_msg("%s", err);
    sl_redis_reply_free(rep);
}

static long long exists(sl_redis_t *r, const char *key) {
    char err[512];
    redisReply *rep;
    const char *argv[] = {"EXISTS", key};
    if (sl_redis_call(r, SL_REPLY_INT, &rep, err, sizeof err, 2, argv, NULL) != SL_OK)
        fail_msg("%s", err);
    long long n = rep->integer;
    sl_redis_reply_free(rep);
    return n;
}

static ctx_t *ctx_new(size_t chunk_bytes, uint32_t keep) {
    ctx_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->r = connect_redis();
    const char *flush[] = {"FLUSHALL"};
    must(c->r, 1, flush);
    char err[512];
    sl_snapshot_opts_t o = {.chunk_bytes = chunk_bytes, .keep_versions = keep};
    c->s = sl_snapshot_new(c->r, "m", &o, err, sizeof err);
    if (!c->s)
        fail_msg("sl_snapshot_new: %s", err);
    return c;
}

static void ctx_free(ctx_t *c) {
    sl_snapshot_destroy(c->s);
    sl_redis_destroy(c->r);
    free(c);
}

/* A logistic learner of `dim` inputs with Adam, trained `batches` batches
 * so weights, moments and counters are all non-trivial. */
static sl_learner_t *trained_learner(uint32_t dim, int batches) {
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = dim, .n_hidden = 1, .hidden = {3}};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    char err[256];
    sl_learner_t *l = sl_learner_new(&mc, &oc, 7, 0, err, sizeof err);
    if (!l)
        fail_msg("sl_learner_new: %s", err);
    float *x = calloc((size_t)4 * dim, sizeof *x);
    assert_non_null(x);
    float y[4] = {0, 1, 1, 0}, w[4] = {1, 1, 1, 1}, out[4];
    uint8_t lab[4] = {1, 1, 1, 0};
    for (int b = 0; b < batches; b++) {
        for (size_t i = 0; i < (size_t)4 * dim; i++)
            x[i] = (float)((i * 7 + (size_t)b * 3) % 11) / 11.0f - 0.5f;
        sl_input_t in = {.n = 4, .dim = dim, .dense = x};
        sl_targets_t t = {y, w, lab};
        assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    }
    free(x);
    return l;
}

/* Publishes learner l as a child of `parent`; returns the status. */
static sl_publish_status_t publish(ctx_t *c, sl_learner_t *l, uint64_t parent, const char *token,
                                   uint64_t *version) {
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_learner_save(l, &blob, &len), SL_OK);
    char *config, *metrics;
    uint64_t step, samples;
    assert_int_equal(sl_snapshot_describe(l, &config, &metrics, &step, &samples), SL_OK);
    sl_snap_offset_t offs[2] = {{"in", 0, 42}, {"in", 3, 7}};
    sl_snap_write_t w = {.blob = blob,
                         .len = len,
                         .parent = parent,
                         .step = step,
                         .samples = samples,
                         .config = config,
                         .metrics = metrics,
                         .offsets = offs,
                         .n_offsets = 2,
                         .lease_token = token};
    sl_publish_status_t st;
    char err[512];
    uint64_t v = 0;
    if (sl_snapshot_publish(c->s, &w, &st, &v, NULL, err, sizeof err) != SL_OK)
        fail_msg("publish: %s", err);
    free(blob);
    free(config);
    free(metrics);
    if (version)
        *version = v;
    return st;
}

static uint64_t head_of(ctx_t *c) {
    uint64_t h;
    char err[512];
    if (sl_snapshot_head(c->s, &h, err, sizeof err) != SL_OK)
        fail_msg("head: %s", err);
    return h;
}

static void assert_same_state(sl_learner_t *a, sl_learner_t *b) {
    uint8_t *ba, *bb;
    size_t la, lb;
    assert_int_equal(sl_learner_save(a, &ba, &la), SL_OK);
    assert_int_equal(sl_learner_save(b, &bb, &lb), SL_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

static void test_round_trip_bit_exact(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(5, 6);
    uint64_t v;
    assert_int_equal(publish(c, l, 0, NULL, &v), SL_PUBLISH_DONE);
    assert_int_equal(v, 1);
    assert_int_equal(head_of(c), 1);
    sl_learner_t *back;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load_head(c->s, NULL, 1, &back, &m, err, sizeof err), SL_OK);
    assert_same_state(l, back);
    assert_int_equal(m.version, 1);
    assert_int_equal(m.parent, 0);
    assert_int_equal(m.step, 6);
    assert_int_equal(m.samples, 18);
    assert_int_equal(m.n_offsets, 2);
    assert_string_equal(m.offsets[1].topic, "in");
    assert_int_equal(m.offsets[1].partition, 3);
    assert_int_equal(m.offsets[1].offset, 7);
    assert_int_equal(strlen(m.created_at), 24); /* 2026-01-02T03:04:05.678Z */
    assert_int_equal(m.created_at[10], 'T');
    cJSON *cfg = cJSON_Parse(m.config);
    assert_non_null(cfg);
    assert_string_equal(cJSON_GetObjectItem(cfg, "model")->valuestring, "logistic");
    assert_int_equal(cJSON_GetObjectItem(cfg, "dim")->valueint, 5);
    cJSON_Delete(cfg);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(back);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_many_chunks_round_trip(void **state) {
    (void)state;
    ctx_t *c = ctx_new(1000, 0); /* a ~40 KB blob in 1000-byte chunks */
    sl_learner_t *l = trained_learner(1000, 2);
    uint64_t v;
    assert_int_equal(publish(c, l, 0, NULL, &v), SL_PUBLISH_DONE);
    sl_learner_t *back;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load(c->s, v, NULL, &back, &m, err, sizeof err), SL_OK);
    assert_true(m.nchunks > 30);
    assert_same_state(l, back);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(back);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_no_version_yet(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *back = NULL;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load_head(c->s, NULL, 1, &back, &m, err, sizeof err), SL_ERR_EOF);
    assert_null(back);
    ctx_free(c);
}

static void test_versions_grow_and_stale_writer_refused(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(3, 1);
    uint64_t v1, v2, v3, v4;
    assert_int_equal(publish(c, l, 0, NULL, &v1), SL_PUBLISH_DONE);
    assert_int_equal(publish(c, l, v1, NULL, &v2), SL_PUBLISH_DONE);
    assert_true(v2 > v1);
    /* a writer still descending from v1 is refused and learns the head */
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_learner_save(l, &blob, &len), SL_OK);
    sl_snap_write_t w = {.blob = blob, .len = len, .parent = v1};
    sl_publish_status_t st;
    uint64_t v, head = 0;
    char err[512];
    assert_int_equal(sl_snapshot_publish(c->s, &w, &st, &v, &head, err, sizeof err), SL_OK);
    assert_int_equal(st, SL_PUBLISH_STALE);
    assert_int_equal(head, v2);
    assert_int_equal(head_of(c), v2);
    free(blob);
    /* the refused writer's staged data is gone and its number is not reused */
    char key[SL_KEYS_MAX];
    sl_keys_meta(key, "m", v2 + 1);
    assert_int_equal(exists(c->r, key), 0);
    sl_keys_chunk(key, "m", v2 + 1, 0);
    assert_int_equal(exists(c->r, key), 0);
    assert_int_equal(publish(c, l, v2, NULL, &v3), SL_PUBLISH_DONE);
    assert_true(v3 > v2 + 1);
    /* the refused writer reloads head and goes on from there */
    sl_learner_t *back;
    sl_snap_meta_t m;
    assert_int_equal(sl_snapshot_load_head(c->s, NULL, 1, &back, &m, err, sizeof err), SL_OK);
    assert_int_equal(publish(c, back, m.version, NULL, &v4), SL_PUBLISH_DONE);
    assert_true(v4 > v3);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(back);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_lease_exclusive_and_checked_on_publish(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    char err[512];
    sl_lease_t *a = sl_lease_new("m", 60000, err, sizeof err);
    sl_lease_t *b = sl_lease_new("m", 60000, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(sl_lease_token(a), sl_lease_token(b));
    int held = 0;
    assert_int_equal(sl_lease_acquire(a, c->r, &held, err, sizeof err), SL_OK);
    assert_int_equal(held, 1);
    assert_int_equal(sl_lease_acquire(b, c->r, &held, err, sizeof err), SL_OK);
    assert_int_equal(held, 0);
    assert_int_equal(sl_lease_renew(b, c->r, &held, err, sizeof err), SL_OK);
    assert_int_equal(held, 0);
    sl_learner_t *l = trained_learner(3, 1);
    uint64_t v;
    assert_int_equal(publish(c, l, 0, sl_lease_token(b), &v), SL_PUBLISH_NO_LEASE);
    assert_int_equal(head_of(c), 0);
    assert_int_equal(publish(c, l, 0, sl_lease_token(a), &v), SL_PUBLISH_DONE);
    /* release hands over at once */
    assert_int_equal(sl_lease_release(a, c->r, err, sizeof err), SL_OK);
    assert_int_equal(sl_lease_acquire(b, c->r, &held, err, sizeof err), SL_OK);
    assert_int_equal(held, 1);
    sl_learner_destroy(l);
    sl_lease_destroy(a);
    sl_lease_destroy(b);
    ctx_free(c);
}

static void test_lease_takeover_after_expiry(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    char err[512];
    sl_lease_t *a = sl_lease_new("m", 300, err, sizeof err);
    sl_lease_t *b = sl_lease_new("m", 300, err, sizeof err);
    int held = 0;
    assert_int_equal(sl_lease_acquire(a, c->r, &held, err, sizeof err), SL_OK);
    assert_int_equal(held, 1);
    /* a stops renewing (as if killed); b polls as a standby would */
    int took = 0;
    for (int i = 0; i < 200 && !took; i++) {
        assert_int_equal(sl_lease_acquire(b, c->r, &took, err, sizeof err), SL_OK);
        if (!took) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(took, 1);
    assert_int_equal(sl_lease_renew(a, c->r, &held, err, sizeof err), SL_OK);
    assert_int_equal(held, 0);
    sl_learner_t *l = trained_learner(3, 1);
    uint64_t v;
    assert_int_equal(publish(c, l, 0, sl_lease_token(a), &v), SL_PUBLISH_NO_LEASE);
    sl_learner_destroy(l);
    sl_lease_destroy(a);
    sl_lease_destroy(b);
    ctx_free(c);
}

/* Publishes v1 and v2 (child of v1); returns v2. */
static uint64_t two_versions(ctx_t *c, sl_learner_t *l1, sl_learner_t *l2) {
    uint64_t v1, v2;
    assert_int_equal(publish(c, l1, 0, NULL, &v1), SL_PUBLISH_DONE);
    assert_int_equal(publish(c, l2, v1, NULL, &v2), SL_PUBLISH_DONE);
    return v2;
}

/* Loads head expecting a fallback to l1's state (version 1) with head repaired. */
static void assert_falls_back_to_v1(ctx_t *c, sl_learner_t *l1, uint64_t bad) {
    sl_learner_t *back;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load_head(c->s, NULL, 1, &back, &m, err, sizeof err), SL_OK);
    assert_int_equal(m.version, 1);
    assert_same_state(l1, back);
    assert_int_equal(head_of(c), 1);
    char **audit;
    size_t n;
    assert_int_equal(sl_snapshot_audit(c->s, 10, &audit, &n, err, sizeof err), SL_OK);
    assert_int_equal(n, 1);
    cJSON *e = cJSON_Parse(audit[0]);
    assert_non_null(e);
    assert_int_equal(cJSON_GetObjectItem(e, "from")->valueint, (int)bad);
    assert_int_equal(cJSON_GetObjectItem(e, "to")->valueint, 1);
    assert_non_null(strstr(cJSON_GetObjectItem(e, "reason")->valuestring, "automatic"));
    cJSON_Delete(e);
    sl_snapshot_strings_free(audit, n);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(back);
}

static void test_corrupted_head_falls_back_to_parent(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l1 = trained_learner(4, 1), *l2 = trained_learner(4, 3);
    uint64_t v2 = two_versions(c, l1, l2);
    char key[SL_KEYS_MAX];
    sl_keys_chunk(key, "m", v2, 0);
    const char *flip[] = {"SETRANGE", key, "40", "\x7f\x7f"};
    must(c->r, 4, flip);
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_meta(c->s, v2, &m, err, sizeof err), SL_OK);
    uint8_t *blob = NULL;
    size_t len;
    assert_int_equal(sl_snapshot_read_blob(c->s, &m, &blob, &len, err, sizeof err),
                     SL_ERR_CHECKSUM);
    assert_non_null(strstr(err, "checksum"));
    assert_null(blob);
    sl_snap_meta_clear(&m);
    assert_falls_back_to_v1(c, l1, v2);
    sl_learner_destroy(l1);
    sl_learner_destroy(l2);
    ctx_free(c);
}

static void test_truncated_chunk_falls_back(void **state) {
    (void)state;
    ctx_t *c = ctx_new(64, 0);
    sl_learner_t *l1 = trained_learner(4, 1), *l2 = trained_learner(4, 3);
    uint64_t v2 = two_versions(c, l1, l2);
    char key[SL_KEYS_MAX];
    sl_keys_chunk(key, "m", v2, 2);
    const char *cut[] = {"SET", key, "short"};
    must(c->r, 3, cut);
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_meta(c->s, v2, &m, err, sizeof err), SL_OK);
    uint8_t *blob = NULL;
    size_t len;
    assert_int_equal(sl_snapshot_read_blob(c->s, &m, &blob, &len, err, sizeof err),
                     SL_ERR_TRUNCATED);
    sl_snap_meta_clear(&m);
    assert_falls_back_to_v1(c, l1, v2);
    sl_learner_destroy(l1);
    sl_learner_destroy(l2);
    ctx_free(c);
}

static void test_missing_chunk_named(void **state) {
    (void)state;
    ctx_t *c = ctx_new(64, 0);
    sl_learner_t *l1 = trained_learner(4, 1);
    uint64_t v;
    assert_int_equal(publish(c, l1, 0, NULL, &v), SL_PUBLISH_DONE);
    char key[SL_KEYS_MAX];
    sl_keys_chunk(key, "m", v, 1);
    const char *del[] = {"DEL", key};
    must(c->r, 2, del);
    sl_learner_t *back = NULL;
    sl_snap_meta_t m;
    char err[512];
    /* the only version is unusable: no fallback left, a clear error */
    assert_int_equal(sl_snapshot_load_head(c->s, NULL, 1, &back, &m, err, sizeof err),
                     SL_ERR_CHECKSUM);
    assert_null(back);
    assert_non_null(strstr(err, key));
    sl_learner_destroy(l1);
    ctx_free(c);
}

static int contains(const uint64_t *v, size_t n, uint64_t x) {
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

static void test_retention_keeps_newest_pinned_and_head(void **state) {
    (void)state;
    ctx_t *c = ctx_new(64, 2);
    sl_learner_t *l = trained_learner(3, 1);
    uint64_t v[7] = {0};
    char err[512];
    for (int i = 1; i <= 6; i++) {
        assert_int_equal(publish(c, l, v[i - 1], NULL, &v[i]), SL_PUBLISH_DONE);
        if (i == 2)
            assert_int_equal(sl_snapshot_pin(c->s, v[2], 1, err, sizeof err), SL_OK);
    }
    uint64_t *list;
    size_t n;
    assert_int_equal(sl_snapshot_list(c->s, &list, &n, err, sizeof err), SL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[0], v[6]); /* newest first */
    assert_int_equal(list[1], v[5]);
    assert_int_equal(list[2], v[2]);
    free(list);
    char key[SL_KEYS_MAX];
    for (int i = 1; i <= 6; i++) { /* dropped versions leave no key behind */
        int kept = i == 2 || i >= 5;
        sl_keys_meta(key, "m", v[i]);
        assert_int_equal(exists(c->r, key), kept);
        sl_keys_chunk(key, "m", v[i], 1);
        assert_int_equal(exists(c->r, key), kept);
    }
    /* unpinned, v2 goes at the next publish */
    assert_int_equal(sl_snapshot_pin(c->s, v[2], 0, err, sizeof err), SL_OK);
    uint64_t v7;
    assert_int_equal(publish(c, l, v[6], NULL, &v7), SL_PUBLISH_DONE);
    assert_int_equal(sl_snapshot_list(c->s, &list, &n, err, sizeof err), SL_OK);
    assert_int_equal(n, 2);
    assert_false(contains(list, n, v[2]));
    free(list);
    assert_int_equal(sl_snapshot_pin(c->s, 999, 1, err, sizeof err), SL_ERR_RANGE);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_rollback_with_audit(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(3, 1);
    uint64_t v1, v2, v3, from = 0, head, rollbacks;
    char err[512];
    assert_int_equal(publish(c, l, 0, NULL, &v1), SL_PUBLISH_DONE);
    assert_int_equal(publish(c, l, v1, NULL, &v2), SL_PUBLISH_DONE);
    assert_int_equal(sl_snapshot_poll(c->s, &head, &rollbacks, err, sizeof err), SL_OK);
    assert_int_equal(rollbacks, 0);
    assert_int_equal(sl_snapshot_rollback(c->s, v1, "bad deploy", 1, &from, err, sizeof err),
                     SL_OK);
    assert_int_equal(from, v2);
    assert_int_equal(sl_snapshot_poll(c->s, &head, &rollbacks, err, sizeof err), SL_OK);
    assert_int_equal(head, v1);
    assert_int_equal(rollbacks, 1);
    char **audit;
    size_t n;
    assert_int_equal(sl_snapshot_audit(c->s, 10, &audit, &n, err, sizeof err), SL_OK);
    assert_int_equal(n, 1);
    cJSON *e = cJSON_Parse(audit[0]);
    assert_non_null(e);
    assert_int_equal(cJSON_GetObjectItem(e, "from")->valueint, (int)v2);
    assert_int_equal(cJSON_GetObjectItem(e, "to")->valueint, (int)v1);
    assert_string_equal(cJSON_GetObjectItem(e, "reason")->valuestring, "bad deploy");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "rewind")));
    assert_int_equal(strlen(cJSON_GetObjectItem(e, "time")->valuestring), 24);
    cJSON_Delete(e);
    sl_snapshot_strings_free(audit, n);
    /* the writer that descended from v2 is now stale; new versions name v1 */
    assert_int_equal(publish(c, l, v2, NULL, &v3), SL_PUBLISH_STALE);
    assert_int_equal(publish(c, l, v1, NULL, &v3), SL_PUBLISH_DONE);
    sl_snap_meta_t m;
    assert_int_equal(sl_snapshot_meta(c->s, v3, &m, err, sizeof err), SL_OK);
    assert_int_equal(m.parent, v1);
    sl_snap_meta_clear(&m);
    assert_int_equal(sl_snapshot_rollback(c->s, 77, NULL, 0, NULL, err, sizeof err), SL_ERR_RANGE);
    assert_non_null(strstr(err, "77"));
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_safetensors_round_trip_through_store(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(6, 4);
    uint64_t v1, v2;
    char err[512];
    assert_int_equal(publish(c, l, 0, NULL, &v1), SL_PUBLISH_DONE);
    sl_learner_t *back;
    sl_snap_meta_t m;
    assert_int_equal(sl_snapshot_load(c->s, v1, NULL, &back, &m, err, sizeof err), SL_OK);
    sl_buf_t st = {0};
    assert_int_equal(sl_safetensors_export(sl_learner_model(back), &st), SL_OK);
    /* import into a fresh learner of head's architecture, publish as a child */
    sl_learner_t *fresh = sl_learner_new(sl_model_config(sl_learner_model(back)),
                                         sl_learner_optim_config(back), 0, 0, err, sizeof err);
    assert_non_null(fresh);
    assert_int_equal(
        sl_safetensors_import(sl_learner_model(fresh), st.data, st.len, err, sizeof err), SL_OK);
    assert_int_equal(publish(c, fresh, v1, NULL, &v2), SL_PUBLISH_DONE);
    sl_learner_t *again;
    sl_snap_meta_t m2;
    assert_int_equal(sl_snapshot_load_head(c->s, NULL, 1, &again, &m2, err, sizeof err), SL_OK);
    assert_int_equal(m2.version, v2);
    size_t np = sl_model_n_params(sl_learner_model(l));
    assert_memory_equal(sl_model_params(sl_learner_model(l)),
                        sl_model_params(sl_learner_model(again)), np * sizeof(float));
    sl_buf_free(&st);
    sl_snap_meta_clear(&m);
    sl_snap_meta_clear(&m2);
    sl_learner_destroy(back);
    sl_learner_destroy(fresh);
    sl_learner_destroy(again);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_redis_restart_fails_cleanly_then_recovers(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(3, 1);
    uint64_t v;
    assert_int_equal(publish(c, l, 0, NULL, &v), SL_PUBLISH_DONE);
    sl_test_redis_kill9(server);
    char err[512];
    uint64_t h;
    assert_int_equal(sl_snapshot_head(c->s, &h, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "redis://127.0.0.1:"));
    /* publishing during the outage fails cleanly too */
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_learner_save(l, &blob, &len), SL_OK);
    sl_snap_write_t w = {.blob = blob, .len = len, .parent = v};
    sl_publish_status_t st;
    assert_int_equal(sl_snapshot_publish(c->s, &w, &st, &v, NULL, err, sizeof err), SL_ERR_REDIS);
    free(blob);
    assert_int_equal(sl_test_redis_restart(server), 0);
    sl_err_t rc = SL_ERR_REDIS;
    for (int i = 0; i < 100 && rc != SL_OK; i++) { /* backoff is at most 200 ms here */
        rc = sl_snapshot_head(c->s, &h, err, sizeof err);
        if (rc != SL_OK) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    assert_int_equal(rc, SL_OK);
    assert_int_equal(h, 0); /* no persistence: the restarted server is empty */
    assert_int_equal(publish(c, l, 0, NULL, &v), SL_PUBLISH_DONE);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_wrong_types_give_clear_errors(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    char err[512];
    uint64_t h, *list;
    size_t n;
    const char *head_hash[] = {"HSET", "{sl:m}:head", "a", "b"};
    must(c->r, 4, head_hash);
    assert_int_equal(sl_snapshot_head(c->s, &h, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "{sl:m}:head"));
    assert_non_null(strstr(err, "WRONGTYPE"));
    const char *del[] = {"DEL", "{sl:m}:head"};
    must(c->r, 2, del);
    const char *head_text[] = {"SET", "{sl:m}:head", "banana"};
    must(c->r, 3, head_text);
    assert_int_equal(sl_snapshot_head(c->s, &h, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "banana"));
    /* the publish script refuses it too, with the key named */
    sl_learner_t *l = trained_learner(3, 1);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_learner_save(l, &blob, &len), SL_OK);
    sl_snap_write_t w = {.blob = blob, .len = len};
    sl_publish_status_t st;
    uint64_t v;
    assert_int_equal(sl_snapshot_publish(c->s, &w, &st, &v, NULL, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "{sl:m}:head"));
    free(blob);
    const char *versions_str[] = {"SET", "{sl:m}:versions", "x"};
    must(c->r, 3, versions_str);
    assert_int_equal(sl_snapshot_list(c->s, &list, &n, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "{sl:m}:versions"));
    const char *lease_hash[] = {"HSET", "{sl:m}:lease", "a", "b"};
    must(c->r, 4, lease_hash);
    sl_lease_t *lease = sl_lease_new("m", 1000, err, sizeof err);
    int held = 1;
    assert_int_equal(sl_lease_acquire(lease, c->r, &held, err, sizeof err), SL_ERR_REDIS);
    assert_int_equal(held, 0);
    sl_lease_destroy(lease);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_bad_metadata_named_and_skipped(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l1 = trained_learner(4, 1), *l2 = trained_learner(4, 2);
    uint64_t v2 = two_versions(c, l1, l2);
    char key[SL_KEYS_MAX], err[512];
    sl_keys_meta(key, "m", v2);
    const char *hdel[] = {"HDEL", key, "checksum"};
    must(c->r, 3, hdel);
    sl_snap_meta_t m;
    assert_int_equal(sl_snapshot_meta(c->s, v2, &m, err, sizeof err), SL_ERR_DECODE);
    assert_non_null(strstr(err, key));
    assert_non_null(strstr(err, "checksum"));
    const char *offs[] = {"HSET", key, "checksum", "0000000000000000", "offsets", "[{\"x\":1}]"};
    must(c->r, 6, offs);
    assert_int_equal(sl_snapshot_meta(c->s, v2, &m, err, sizeof err), SL_ERR_DECODE);
    assert_non_null(strstr(err, "offsets"));
    assert_falls_back_to_v1(c, l1, v2);
    sl_learner_destroy(l1);
    sl_learner_destroy(l2);
    ctx_free(c);
}

static void test_architecture_mismatch_not_skipped(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(4, 1);
    uint64_t v;
    assert_int_equal(publish(c, l, 0, NULL, &v), SL_PUBLISH_DONE);
    sl_model_config_t other = {.head = SL_HEAD_LINEAR, .dim = 9};
    sl_learner_t *back = NULL;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load_head(c->s, &other, 1, &back, &m, err, sizeof err),
                     SL_ERR_MISMATCH);
    assert_null(back);
    assert_int_equal(head_of(c), v); /* nothing was repaired */
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_auth_acl_and_select(void **state) {
    (void)state;
    const char *extra[] = {"--requirepass", "hunter2", "--user", "alice", "on",
                           ">s3cret",       "~*",      "&*",     "+@all", NULL};
    sl_test_redis_t *sec = sl_test_redis_start(extra);
    assert_non_null(sec);
    int port = sl_test_redis_port(sec);
    char url[128], err[512];
    const char *ping[] = {"PING"};
    redisReply *rep;
    /* no password: the first command is refused by the server */
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    sl_redis_t *r = sl_redis_new(url, NULL, err, sizeof err);
    assert_int_equal(sl_redis_call(r, SL_REPLY_STATUS, &rep, err, sizeof err, 1, ping, NULL),
                     SL_ERR_REDIS);
    assert_non_null(strstr(err, "NOAUTH"));
    sl_redis_destroy(r);
    /* wrong password: AUTH refused, the password never shown */
    snprintf(url, sizeof url, "redis://:wrongpw@127.0.0.1:%d", port);
    r = sl_redis_new(url, NULL, err, sizeof err);
    assert_int_equal(sl_redis_connect(r, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "AUTH"));
    assert_null(strstr(err, "wrongpw"));
    sl_redis_destroy(r);
    /* the default user's password, and an ACL user, both with SELECT */
    const char *urls[] = {"redis://:hunter2@127.0.0.1:%d/3", "redis://alice:s3cret@127.0.0.1:%d/3"};
    for (int i = 0; i < 2; i++) {
        snprintf(url, sizeof url, urls[i], port);
        r = sl_redis_new(url, NULL, err, sizeof err);
        assert_int_equal(sl_redis_connect(r, err, sizeof err), SL_OK);
        const char *set[] = {"SET", "k", "in-db-3"};
        must(r, 3, set);
        sl_redis_destroy(r);
    }
    snprintf(url, sizeof url, "redis://:hunter2@127.0.0.1:%d", port); /* db 0 */
    r = sl_redis_new(url, NULL, err, sizeof err);
    const char *get[] = {"GET", "k"};
    assert_int_equal(sl_redis_call(r, SL_REPLY_STR_OR_NIL, &rep, err, sizeof err, 2, get, NULL),
                     SL_OK);
    assert_int_equal(rep->type, REDIS_REPLY_NIL);
    sl_redis_reply_free(rep);
    sl_redis_destroy(r);
    sl_test_redis_destroy(sec);
}

static int setup(void **state) {
    (void)state;
    server = sl_test_redis_start(NULL);
    return server ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    sl_test_redis_destroy(server);
    return 0;
}

/* Publishes l with sections and annotations; returns the new version. */
static uint64_t publish_with_sections(ctx_t *c, sl_learner_t *l, uint64_t parent,
                                      const sl_snap_section_t *sec, size_t n,
                                      const char *annotations) {
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_learner_save(l, &blob, &len), SL_OK);
    sl_snap_write_t w = {.blob = blob,
                         .len = len,
                         .parent = parent,
                         .sections = sec,
                         .n_sections = n,
                         .annotations = annotations};
    sl_publish_status_t st;
    char err[512];
    uint64_t v = 0;
    if (sl_snapshot_publish(c->s, &w, &st, &v, NULL, err, sizeof err) != SL_OK)
        fail_msg("publish: %s", err);
    assert_int_equal(st, SL_PUBLISH_DONE);
    free(blob);
    return v;
}

static void test_sections_and_annotations_round_trip(void **state) {
    (void)state;
    ctx_t *c = ctx_new(700, 0); /* small chunks: the sections straddle chunk boundaries */
    sl_learner_t *l = trained_learner(40, 3);
    uint8_t a[1500], b[3] = {7, 8, 9};
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 31 + 5);
    sl_snap_section_t sec[3] = {{"join", a, sizeof a}, {"empty", NULL, 0}, {"guard_2", b, 3}};
    uint64_t v = publish_with_sections(c, l, 0, sec, 3, "{\"good\":true}");
    /* a version written without either */
    uint64_t v2 = 0;
    assert_int_equal(publish(c, l, v, NULL, &v2), SL_PUBLISH_DONE);

    sl_learner_t *back;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load(c->s, v, NULL, &back, &m, err, sizeof err), SL_OK);
    assert_same_state(l, back);
    assert_int_equal(m.n_parts, 3);
    const uint8_t *d;
    size_t n;
    assert_true(sl_snap_meta_section(&m, "join", &d, &n));
    assert_int_equal(n, sizeof a);
    assert_memory_equal(d, a, sizeof a);
    assert_true(sl_snap_meta_section(&m, "empty", &d, &n));
    assert_int_equal(n, 0);
    assert_true(sl_snap_meta_section(&m, "guard_2", &d, &n));
    assert_int_equal(n, 3);
    assert_memory_equal(d, b, 3);
    assert_false(sl_snap_meta_section(&m, "other", &d, &n));
    assert_int_equal(sl_snap_meta_model_len(&m) + sizeof a + 3, m.size);
    cJSON *ann = cJSON_Parse(m.annotations);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ann, "good")));
    cJSON_Delete(ann);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(back);

    assert_int_equal(sl_snapshot_load(c->s, v2, NULL, &back, &m, err, sizeof err), SL_OK);
    assert_int_equal(m.n_parts, 0);
    assert_false(sl_snap_meta_section(&m, "join", &d, &n));
    assert_string_equal(m.annotations, "{}");
    assert_int_equal(sl_snap_meta_model_len(&m), m.size);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(back);

    /* the checksum covers the sections: a flipped byte in the last chunk is caught */
    sl_snap_meta_t mm;
    assert_int_equal(sl_snapshot_meta(c->s, v, &mm, err, sizeof err), SL_OK);
    char key[SL_KEYS_MAX];
    sl_keys_chunk(key, "m", v, mm.nchunks - 1);
    const char *set[] = {"SETRANGE", key, "0", "X"};
    must(c->r, 4, set);
    assert_int_equal(sl_snapshot_load(c->s, v, NULL, &back, &m, err, sizeof err), SL_ERR_CHECKSUM);
    sl_snap_meta_clear(&mm);
    sl_learner_destroy(l);
    ctx_free(c);
}

static void test_bad_section_names_refused(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(4, 1);
    uint8_t *blob;
    size_t len;
    assert_int_equal(sl_learner_save(l, &blob, &len), SL_OK);
    uint8_t x = 1;
    const char *bad[] = {"", "Join", "a-b", "0123456789012345678901234567890123", NULL};
    for (size_t i = 0; i < 5; i++) {
        sl_snap_section_t sec[2] = {{"ok", &x, 1}, {bad[i], &x, 1}};
        sl_snap_write_t w = {.blob = blob, .len = len, .sections = sec, .n_sections = 2};
        sl_publish_status_t st;
        uint64_t v;
        char err[512] = "";
        assert_int_equal(sl_snapshot_publish(c->s, &w, &st, &v, NULL, err, sizeof err),
                         SL_ERR_INVAL);
        assert_non_null(strstr(err, "section 1"));
    }
    sl_snap_section_t dup[2] = {{"ok", &x, 1}, {"ok", &x, 1}};
    sl_snap_write_t w = {.blob = blob, .len = len, .sections = dup, .n_sections = 2};
    sl_publish_status_t st;
    uint64_t v;
    char err[512];
    assert_int_equal(sl_snapshot_publish(c->s, &w, &st, &v, NULL, err, sizeof err), SL_ERR_INVAL);
    assert_int_equal(head_of(c), 0);
    free(blob);
    sl_learner_destroy(l);
    ctx_free(c);
}

/* A section source that records what it was given. */
typedef struct probe {
    int calls;
    uint64_t version;
    int had_data;
    uint8_t data[16];
    size_t len;
    sl_err_t fail_with;
} probe_t;

static sl_err_t probe_save(void *opaque, uint8_t **data, size_t *len) {
    (void)opaque;
    *data = NULL;
    *len = 0;
    return SL_OK;
}

static sl_err_t probe_restore(void *opaque, uint64_t version, const uint8_t *data, size_t len) {
    probe_t *p = opaque;
    p->calls++;
    p->version = version;
    p->had_data = data != NULL;
    p->len = len < sizeof p->data ? len : sizeof p->data;
    if (data)
        memcpy(p->data, data, p->len);
    return p->fail_with;
}

static void test_store_load_restores_sections(void **state) {
    (void)state;
    ctx_t *c = ctx_new(0, 0);
    sl_learner_t *l = trained_learner(4, 1);
    uint8_t j[5] = {1, 2, 3, 4, 5};
    sl_snap_section_t sec[1] = {{"join", j, 5}};
    uint64_t v = publish_with_sections(c, l, 0, sec, 1, NULL);
    sl_store_config_t sc = {
        .redis_url = sl_test_redis_url(server), .model_name = "m", .topic = "in"};
    char err[512];
    probe_t pj = {0}, pg = {0};
    sl_store_t *st = sl_store_new(&sc, err, sizeof err);
    assert_non_null(st);
    sl_store_section_source_t sj = {"join", &pj, probe_save, probe_restore};
    sl_store_section_source_t sg = {"guard", &pg, probe_save, probe_restore};
    assert_int_equal(sl_store_add_section(st, &sj, err, sizeof err), SL_OK);
    assert_int_equal(sl_store_add_section(st, &sg, err, sizeof err), SL_OK);
    assert_int_equal(sl_store_add_section(st, &sj, err, sizeof err), SL_ERR_INVAL);
    sl_learner_t *back = NULL;
    assert_int_equal(sl_store_load(st, NULL, &back, err, sizeof err), SL_OK);
    assert_int_equal(pj.calls, 1);
    assert_int_equal(pj.version, v);
    assert_true(pj.had_data);
    assert_int_equal(pj.len, 5);
    assert_memory_equal(pj.data, j, 5);
    assert_int_equal(pg.calls, 1); /* no "guard" section in the version: told to start fresh */
    assert_false(pg.had_data);
    sl_learner_destroy(back);
    sl_store_destroy(st);

    /* a restore that fails fails the load, naming the section */
    st = sl_store_new(&sc, err, sizeof err);
    assert_non_null(st);
    pj.fail_with = SL_ERR_DECODE;
    assert_int_equal(sl_store_add_section(st, &sj, err, sizeof err), SL_OK);
    back = NULL;
    assert_int_equal(sl_store_load(st, NULL, &back, err, sizeof err), SL_ERR_DECODE);
    assert_null(back);
    assert_non_null(strstr(err, "\"join\""));
    sl_store_destroy(st);
    sl_learner_destroy(l);
    ctx_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_bit_exact),
        cmocka_unit_test(test_many_chunks_round_trip),
        cmocka_unit_test(test_no_version_yet),
        cmocka_unit_test(test_versions_grow_and_stale_writer_refused),
        cmocka_unit_test(test_lease_exclusive_and_checked_on_publish),
        cmocka_unit_test(test_lease_takeover_after_expiry),
        cmocka_unit_test(test_corrupted_head_falls_back_to_parent),
        cmocka_unit_test(test_truncated_chunk_falls_back),
        cmocka_unit_test(test_missing_chunk_named),
        cmocka_unit_test(test_retention_keeps_newest_pinned_and_head),
        cmocka_unit_test(test_rollback_with_audit),
        cmocka_unit_test(test_safetensors_round_trip_through_store),
        cmocka_unit_test(test_redis_restart_fails_cleanly_then_recovers),
        cmocka_unit_test(test_wrong_types_give_clear_errors),
        cmocka_unit_test(test_bad_metadata_named_and_skipped),
        cmocka_unit_test(test_architecture_mismatch_not_skipped),
        cmocka_unit_test(test_auth_acl_and_select),
        cmocka_unit_test(test_sections_and_annotations_round_trip),
        cmocka_unit_test(test_bad_section_names_refused),
        cmocka_unit_test(test_store_load_restores_sections),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
