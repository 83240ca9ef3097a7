/* test_nomem.c - allocation failure, swept: for N = 0, 1, 2, ... the Nth
 * allocation of decoding, a learner's life (with and without online feature
 * scaling), the batch runner, snapshot serialisation, the learner's weights
 * file and the store's publish fails (tests/nomem/failalloc.c),
 * until a run makes fewer than N allocations. Every run must fail cleanly
 * with SL_ERR_NOMEM (or NULL and a message saying memory) and leave what it
 * was given as it was: no crash, no leak (the ASan build checks), and in
 * Redis nothing past the last version that was published whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/decode.h"
#include "consumer/encode.h"
#include "consumer/runner.h"
#include "model/learner.h"
#include "model/safetensors.h"
#include "store/redis.h"
#include "store/snapshot.h"
#include "tests/nomem/failalloc.h"
#include "tests/support/redis_server.h"

#define DIM 8

/* A scenario returns 0 when it ran through, 1 when it stopped on an
 * allocation failure it reported properly; it checks its own invariants. */
typedef int (*scenario_fn)(void *ctx);
/* Called after each run with allocations back to normal (may be NULL). */
typedef void (*check_fn)(void *ctx);

/* Runs fn with the Nth allocation failing for N = 0, 1, ... until it runs
 * through without reaching N. Returns how many failure points were tried. */
static size_t sweep(const char *name, scenario_fn fn, check_fn check, void *ctx) {
    size_t n = 0;
    sl_failalloc_disarm(); /* a failed test before may have left it armed */
    for (;; n++) {
        sl_failalloc_arm(n);
        int rc = fn(ctx);
        int fired = sl_failalloc_fired();
        size_t seen = sl_failalloc_disarm();
        if (check)
            check(ctx);
        if (!fired) {
            if (rc != 0)
                fail_msg("%s: failed with no allocation failing (run %zu, %zu allocations)", name,
                         n, seen);
            break;
        }
        /* the failure may be absorbed (a cache that stays small), never ignored */
        if (rc != 0 && rc != 1)
            fail_msg("%s: allocation %zu failing gave %d", name, n, rc);
        if (n > 100000)
            fail_msg("%s: no end to the allocations", name);
    }
    fprintf(stderr, "%s: %zu allocation failure points, each handled\n", name, n);
    assert_true(n > 0);
    return n;
}

static int says_memory(const char *errstr) {
    return strstr(errstr, "memory") != NULL;
}

/* --- messages --- */

static void pack_str(msgpack_packer *pk, const char *s) {
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_sample(msgpack_packer *pk, int kind, int i) {
    msgpack_pack_map(pk, 3);
    pack_str(pk, "x");
    if (kind == 0) { /* dense array */
        msgpack_pack_array(pk, DIM);
        for (int j = 0; j < DIM; j++)
            msgpack_pack_float(pk, (float)(i + j) / 10.0f);
    } else if (kind == 1) { /* sparse, named and indexed */
        msgpack_pack_map(pk, 2);
        pack_str(pk, "colour");
        msgpack_pack_float(pk, 1.0f);
        msgpack_pack_int(pk, 3);
        msgpack_pack_float(pk, 2.0f);
    } else { /* bin */
        float x[DIM];
        for (int j = 0; j < DIM; j++)
            x[j] = (float)j;
        msgpack_pack_bin(pk, sizeof x);
        msgpack_pack_bin_body(pk, x, sizeof x);
    }
    pack_str(pk, "y");
    msgpack_pack_int(pk, i % 2);
    pack_str(pk, "id");
    msgpack_pack_int(pk, i);
}

typedef struct msgs {
    msgpack_sbuffer sb[4];
} msgs_t;

static void make_messages(msgs_t *m) {
    msgpack_packer pk;
    for (int k = 0; k < 4; k++) {
        msgpack_sbuffer_init(&m->sb[k]);
        msgpack_packer_init(&pk, &m->sb[k], msgpack_sbuffer_write);
    }
    msgpack_packer_init(&pk, &m->sb[0], msgpack_sbuffer_write);
    pack_sample(&pk, 0, 1);
    msgpack_packer_init(&pk, &m->sb[1], msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    for (int i = 0; i < 3; i++)
        pack_sample(&pk, i, 10 + i);
    msgpack_packer_init(&pk, &m->sb[2], msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2); /* bad: x too short, with an id */
    pack_str(&pk, "x");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_float(&pk, 1.0f);
    pack_str(&pk, "id");
    pack_str(&pk, "bad-one");
    msgpack_packer_init(&pk, &m->sb[3], msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 60); /* enough to grow the batch's arrays */
    for (int i = 0; i < 60; i++)
        pack_sample(&pk, i % 3, 100 + i);
}

static void free_messages(msgs_t *m) {
    for (int k = 0; k < 4; k++)
        msgpack_sbuffer_destroy(&m->sb[k]);
}

/* --- decode --- */

static int decode_run(void *ctx) {
    msgs_t *m = ctx;
    char err[256] = "";
    sl_decode_config_t dc = {.dim = DIM, .head = SL_HEAD_LOGISTIC};
    sl_decoder_t *d = sl_decoder_new(&dc, err, sizeof err);
    if (!d) {
        assert_true(says_memory(err));
        return 1;
    }
    sl_batch_t *b = sl_batch_new(DIM, 2);
    if (!b) {
        sl_decoder_destroy(d);
        return 1;
    }
    int rc = 0;
    for (int round = 0; round < 2 && rc == 0; round++)
        for (int k = 0; k < 4; k++) {
            size_t slots = sl_batch_slots(b), rows = sl_batch_rows(b);
            sl_decode_result_t res;
            sl_err_t e = sl_decode_message(d, (const uint8_t *)m->sb[k].data, m->sb[k].size,
                                           (uint64_t)k, b, &res);
            if (e != SL_OK) {
                assert_int_equal(e, SL_ERR_NOMEM);
                assert_int_equal(sl_batch_slots(b), slots); /* nothing of it appended */
                assert_int_equal(sl_batch_rows(b), rows);
                rc = 1;
                break;
            }
            assert_int_equal(sl_batch_slots(b), slots + res.good + res.bad);
        }
    if (rc == 0)
        assert_int_equal(sl_batch_slots(b), 2 * (1 + 3 + 1 + 60));
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
    return rc;
}

static void test_decode(void **state) {
    (void)state;
    msgs_t m;
    make_messages(&m);
    sweep("decode", decode_run, NULL, &m);
    free_messages(&m);
}

/* --- a learner's life: create, dense and sparse steps, clone, copy --- */

/* A learner's settings for a sweep: head, optimizer, hidden width (0: none)
 * and feature scaling (set after creation, as the CLI does). */
typedef struct learner_kind {
    sl_head_t head;
    sl_optim_kind_t optim;
    uint32_t hidden;
    sl_scale_mode_t scale;
} learner_kind_t;

static sl_learner_t *make_scaled(const learner_kind_t *k, char *err, size_t n) {
    sl_model_config_t mc = {.head = k->head, .dim = DIM, .classes = 1};
    if (k->head == SL_HEAD_SOFTMAX)
        mc.classes = 3;
    if (k->hidden) {
        mc.n_hidden = 1;
        mc.hidden[0] = k->hidden;
        mc.activation = SL_ACT_RELU;
    }
    sl_optim_config_t oc = sl_optim_config_default(k->optim);
    if (k->optim != SL_OPTIM_AUTO)
        oc.lr = 0.05;
    sl_learner_t *l = sl_learner_new(&mc, &oc, 3, 50, err, n);
    if (l && sl_learner_set_scale(l, k->scale, err, n) != SL_OK) {
        assert_true(strstr(err, "memory") != NULL);
        sl_learner_destroy(l);
        return NULL;
    }
    return l;
}

static sl_learner_t *make_learner(sl_optim_kind_t kind, uint32_t hidden, char *err, size_t n) {
    learner_kind_t k = {.head = SL_HEAD_SOFTMAX, .optim = kind, .hidden = hidden};
    return make_scaled(&k, err, n);
}

/* A step that fails leaves weights, counters and scaler statistics as they
 * were. */
static int step_or_unchanged(sl_learner_t *l, const sl_input_t *x, const sl_targets_t *t,
                             float *out) {
    sl_model_t *m = sl_learner_model(l);
    size_t np = sl_model_n_params(m);
    float *before = malloc(np * sizeof *before); /* unarmed? counted: handle it */
    if (!before)
        return 1;
    memcpy(before, sl_model_params(m), np * sizeof *before);
    sl_learner_counters_t c0 = sl_learner_counters(l);
    double scaled_weight = sl_scaler_weight(sl_learner_scaler_const(l));
    sl_err_t e = sl_learner_batch(l, x, t, out, NULL);
    int rc = 0;
    if (e != SL_OK) {
        assert_int_equal(e, SL_ERR_NOMEM);
        assert_memory_equal(before, sl_model_params(m), np * sizeof *before);
        assert_int_equal(sl_learner_counters(l).step, c0.step);
        assert_true(sl_scaler_weight(sl_learner_scaler_const(l)) == scaled_weight);
        rc = 1;
    }
    free(before);
    return rc;
}

/* A label for row i that the head accepts. */
static float label_of(sl_head_t head, int i) {
    return head == SL_HEAD_LOGISTIC  ? (float)(i % 2)
           : head == SL_HEAD_SOFTMAX ? (float)(i % 3)
                                     : 0.5f * (float)(i % 7) - 1.0f;
}

/* Dense steps, then sparse ones (with standard scaling: the centred CSR
 * path), clone, copy and predictions, for the learner kind in ctx. */
static int learner_run(void *ctx) {
    const learner_kind_t *k = ctx;
    char err[256] = "";
    sl_learner_t *l = make_scaled(k, err, sizeof err);
    if (!l) {
        assert_true(says_memory(err));
        return 1;
    }
    enum { N = 20 };
    float dense[N * DIM], y[N], w[N], out[N * 3];
    uint8_t lab[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < DIM; j++)
            dense[i * DIM + j] = (float)((i * 7 + j) % 5) - 2.0f + (float)j;
        y[i] = label_of(k->head, i);
        w[i] = 1.0f;
        lab[i] = i % 4 != 0;
    }
    sl_input_t x = {.n = N, .dim = DIM, .dense = dense};
    sl_targets_t t = {.y = y, .w = w, .labelled = lab};
    /* before any labelled row: predictions with the identity transform */
    int rc = sl_learner_predict(l, &x, out) == SL_OK ? 0 : 1;
    if (rc == 0)
        rc = step_or_unchanged(l, &x, &t, out);
    if (rc == 0)
        rc = step_or_unchanged(l, &x, &t, out);
    /* a sparse step: CSR rows of two entries */
    size_t rp[N + 1];
    uint32_t col[2 * N];
    float val[2 * N];
    for (int i = 0; i <= N; i++)
        rp[i] = (size_t)(2 * i);
    for (int i = 0; i < 2 * N; i++) {
        col[i] = (uint32_t)(i % DIM);
        val[i] = 0.5f + (float)(i % 3);
    }
    sl_input_t xs = {.n = N, .dim = DIM, .row_ptr = rp, .col = col, .val = val};
    if (rc == 0)
        rc = step_or_unchanged(l, &xs, &t, out);
    if (rc == 0) {
        sl_learner_t *c = sl_learner_clone(l);
        if (!c) {
            rc = 1;
        } else {
            assert_int_equal(sl_learner_copy(c, l), SL_OK); /* a memcpy: no allocation */
            assert_int_equal(sl_learner_counters(c).step, sl_learner_counters(l).step);
            sl_learner_destroy(c);
        }
    }
    if (rc == 0 && sl_learner_predict(l, &xs, out) != SL_OK)
        rc = 1;
    if (rc == 0 && sl_learner_predict(l, &x, out) != SL_OK)
        rc = 1;
    sl_learner_destroy(l);
    return rc;
}

static void test_learner(void **state) {
    (void)state;
    learner_kind_t k = {.head = SL_HEAD_SOFTMAX, .optim = SL_OPTIM_ADAM, .hidden = 16};
    sweep("learner", learner_run, NULL, &k);
}

/* The scaler's paths: its statistics and scratch, the scaled input, the
 * centred sparse forward, the auto optimizer's norms, a linear head's
 * target units, and copies that carry the scaler. */
static void test_learner_scaled(void **state) {
    (void)state;
    const learner_kind_t kinds[] = {
        {.head = SL_HEAD_SOFTMAX, .optim = SL_OPTIM_AUTO, .hidden = 16, .scale = SL_SCALE_STANDARD},
        {.head = SL_HEAD_LINEAR, .optim = SL_OPTIM_AUTO, .scale = SL_SCALE_AUTO},
        {.head = SL_HEAD_LOGISTIC, .optim = SL_OPTIM_SGD, .hidden = 4, .scale = SL_SCALE_MAXABS},
    };
    const char *names[] = {"learner (standard scaling, auto optimizer)",
                           "learner (auto scaling, linear head)", "learner (maxabs scaling)"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        sweep(names[i], learner_run, NULL, (void *)&kinds[i]);
}

/* FTRL visits only the coordinates a sparse batch touched (an index list). */
static int ftrl_run(void *ctx) {
    (void)ctx;
    char err[256] = "";
    sl_learner_t *l = make_learner(SL_OPTIM_FTRL, 0, err, sizeof err);
    if (!l)
        return 1;
    size_t rp[4] = {0, 1, 3, 4};
    uint32_t col[4] = {1, 2, 7, 0};
    float val[4] = {1, -1, 2, 0.5f}, y[3] = {0, 1, 2}, w[3] = {1, 1, 1}, out[9];
    uint8_t lab[3] = {1, 1, 1};
    sl_input_t xs = {.n = 3, .dim = DIM, .row_ptr = rp, .col = col, .val = val};
    sl_targets_t t = {.y = y, .w = w, .labelled = lab};
    int rc = step_or_unchanged(l, &xs, &t, out);
    sl_learner_destroy(l);
    return rc;
}

static void test_learner_sparse_ftrl(void **state) {
    (void)state;
    sweep("learner (ftrl, sparse)", ftrl_run, NULL, NULL);
}

/* --- the batch runner, emitting encoded predictions --- */

typedef struct runner_ctx {
    msgs_t m;
} runner_ctx_t;

static sl_err_t encode_emit(void *opaque, const sl_runner_item_t *it) {
    sl_buf_t *out = opaque;
    if (it->slot.good)
        return sl_encode_prediction(out, it->slot.id, it->slot.id_len, SL_HEAD_SOFTMAX, it->out,
                                    it->out_dim, 0, it->step);
    return sl_encode_error(out, it->slot.id, it->slot.id_len, it->slot.error, 0, it->step);
}

static int runner_run(void *ctx) {
    runner_ctx_t *rc_ = ctx;
    char err[256] = "";
    int rc = 1;
    sl_learner_t *l = make_learner(SL_OPTIM_SGD, 0, err, sizeof err);
    sl_decode_config_t dc = {.dim = DIM, .head = SL_HEAD_SOFTMAX, .classes = 3};
    sl_decoder_t *d = sl_decoder_new(&dc, err, sizeof err);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    sl_runner_config_t c = {.batch_size = 16};
    sl_runner_t *r = l ? sl_runner_new(&c, l, err, sizeof err) : NULL;
    sl_buf_t out = {0};
    if (!l || !d || !b || !r)
        goto done;
    for (int k = 0; k < 4; k++) {
        sl_decode_result_t res;
        if (sl_decode_message(d, (const uint8_t *)rc_->m.sb[k].data, rc_->m.sb[k].size, (uint64_t)k,
                              b, &res) != SL_OK)
            goto done;
    }
    uint64_t steps = sl_runner_counts(r).steps;
    sl_err_t e = sl_runner_run(r, b, 1, encode_emit, &out, err, sizeof err);
    if (e != SL_OK) {
        assert_int_equal(e, SL_ERR_NOMEM);
        goto done;
    }
    assert_true(sl_runner_counts(r).steps > steps);
    assert_int_equal(sl_runner_counts(r).predicted + sl_runner_counts(r).bad, 1 + 3 + 1 + 60);
    rc = 0;
done:
    sl_buf_free(&out);
    sl_runner_destroy(r);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
    sl_learner_destroy(l);
    return rc;
}

static void test_runner(void **state) {
    (void)state;
    runner_ctx_t c;
    make_messages(&c.m);
    sweep("runner", runner_run, NULL, &c);
    free_messages(&c.m);
}

/* --- snapshot serialisation: save, describe, load --- */

static int serialise_run(void *ctx) {
    const sl_learner_t *l = ctx;
    uint8_t *blob = NULL;
    size_t len = 0;
    char *config = NULL, *metrics = NULL;
    uint64_t step, samples;
    int rc = 1;
    sl_err_t e = sl_learner_save(l, &blob, &len);
    if (e != SL_OK) {
        assert_int_equal(e, SL_ERR_NOMEM);
        assert_null(blob);
        return 1;
    }
    e = sl_snapshot_describe(l, &config, &metrics, &step, &samples);
    if (e != SL_OK) {
        assert_int_equal(e, SL_ERR_NOMEM);
        goto done;
    }
    char err[256] = "";
    sl_err_t le = SL_OK;
    sl_learner_t *back = sl_learner_load(blob, len, NULL, &le, err, sizeof err);
    if (!back) {
        assert_int_equal(le, SL_ERR_NOMEM);
        assert_true(says_memory(err));
        goto done;
    }
    assert_int_equal(sl_learner_counters(back).step, sl_learner_counters(l).step);
    sl_learner_destroy(back);
    rc = 0;
done:
    free(blob);
    free(config);
    free(metrics);
    return rc;
}

/* A trained learner with optimizer state and metrics (and, with scaling, the
 * scaler's and the auto optimizer's statistics). */
static sl_learner_t *trained_learner(sl_scale_mode_t scale) {
    char err[256];
    learner_kind_t k = {.head = SL_HEAD_SOFTMAX,
                        .optim = scale == SL_SCALE_OFF ? SL_OPTIM_ADAM : SL_OPTIM_AUTO,
                        .hidden = 16,
                        .scale = scale};
    sl_learner_t *l = make_scaled(&k, err, sizeof err);
    assert_non_null(l);
    enum { N = 10 };
    float dense[N * DIM], y[N], w[N], out[N * 3];
    uint8_t lab[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < DIM; j++)
            dense[i * DIM + j] = (float)(i - j) / 4.0f;
        y[i] = (float)(i % 3);
        w[i] = 1.0f;
        lab[i] = 1;
    }
    sl_input_t x = {.n = N, .dim = DIM, .dense = dense};
    sl_targets_t t = {.y = y, .w = w, .labelled = lab};
    assert_int_equal(sl_learner_batch(l, &x, &t, out, NULL), SL_OK);
    return l;
}

static void test_serialise(void **state) {
    (void)state;
    sl_learner_t *l = trained_learner(SL_SCALE_OFF);
    sweep("snapshot serialisation", serialise_run, NULL, l);
    sl_learner_destroy(l);
    l = trained_learner(SL_SCALE_STANDARD);
    sweep("snapshot serialisation (scaled)", serialise_run, NULL, l);
    sl_learner_destroy(l);
}

/* --- the learner's weights file: scaler tensors, folded, read back --- */

static int weights_file_run(void *ctx) {
    const sl_learner_t *l = ctx;
    int rc = 1;
    sl_buf_t with = {0}, folded = {0};
    sl_err_t e = sl_safetensors_export_learner(l, 0, &with);
    if (e == SL_OK)
        e = sl_safetensors_export_learner(l, 1, &folded);
    if (e != SL_OK) {
        assert_int_equal(e, SL_ERR_NOMEM);
        goto done;
    }
    char err[256] = "";
    sl_learner_t *fresh = make_learner(SL_OPTIM_AUTO, 16, err, sizeof err);
    if (!fresh)
        goto done;
    size_t np = sl_model_n_params(sl_learner_model(fresh));
    float *before = malloc(np * sizeof *before);
    if (!before) {
        sl_learner_destroy(fresh);
        goto done;
    }
    memcpy(before, sl_model_params(sl_learner_model(fresh)), np * sizeof *before);
    int has = 0;
    e = sl_safetensors_import_learner(fresh, with.data, with.len, &has, err, sizeof err);
    if (e != SL_OK) { /* all or nothing: the learner is as it was */
        assert_int_equal(e, SL_ERR_NOMEM);
        assert_memory_equal(before, sl_model_params(sl_learner_model(fresh)), np * sizeof *before);
        assert_int_equal(sl_scaler_on(sl_learner_scaler_const(fresh)), 0);
    } else {
        assert_true(has);
        rc = 0;
    }
    free(before);
    sl_learner_destroy(fresh);
done:
    sl_buf_free(&with);
    sl_buf_free(&folded);
    return rc;
}

static void test_weights_file(void **state) {
    (void)state;
    sl_learner_t *l = trained_learner(SL_SCALE_STANDARD);
    sweep("weights file (scaler tensors, folded)", weights_file_run, NULL, l);
    sl_learner_destroy(l);
}

/* --- the store's publish against a real redis-server --- */

typedef struct publish_ctx {
    sl_test_redis_t *server;
    uint8_t *blob;
    size_t len;
    char *config, *metrics;
    uint64_t head;    /* the last version published whole */
    int64_t offset;   /* the offset stored with it */
    int64_t next_off; /* the offset the next attempt stores */
} publish_ctx_t;

/* Head and its stored offset, read without failing allocations. */
static void read_head(publish_ctx_t *p, uint64_t *head, int64_t *offset) {
    char err[512];
    sl_redis_t *r = sl_redis_new(sl_test_redis_url(p->server), NULL, err, sizeof err);
    assert_non_null(r);
    sl_snapshot_t *s = sl_snapshot_new(r, "nomem", NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(sl_snapshot_head(s, head, err, sizeof err), SL_OK);
    *offset = -1;
    if (*head) {
        sl_snap_meta_t m;
        assert_int_equal(sl_snapshot_meta(s, *head, &m, err, sizeof err), SL_OK);
        assert_int_equal(m.n_offsets, 1);
        *offset = m.offsets[0].offset;
        sl_snap_meta_clear(&m);
    }
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
}

static int publish_run(void *ctx) {
    publish_ctx_t *p = ctx;
    char err[512] = "";
    int rc = 1;
    sl_redis_t *r = sl_redis_new(sl_test_redis_url(p->server), NULL, err, sizeof err);
    sl_snapshot_t *s = NULL;
    if (!r)
        goto check;
    sl_snapshot_opts_t so = {.chunk_bytes = 256, .keep_versions = 3}; /* several chunks */
    s = sl_snapshot_new(r, "nomem", &so, err, sizeof err);
    if (!s)
        goto check;
    sl_snap_offset_t off = {.topic = "in", .partition = 0, .offset = p->next_off};
    sl_snap_write_t w = {.blob = p->blob,
                         .len = p->len,
                         .parent = p->head,
                         .config = p->config,
                         .metrics = p->metrics,
                         .offsets = &off,
                         .n_offsets = 1};
    sl_publish_status_t st;
    uint64_t v = 0;
    sl_err_t e = sl_snapshot_publish(s, &w, &st, &v, NULL, err, sizeof err);
    if (e == SL_OK) {
        assert_int_equal(st, SL_PUBLISH_DONE);
        p->head = v;
        p->offset = p->next_off;
        rc = 0;
    } else {
        assert_true(e == SL_ERR_NOMEM || e == SL_ERR_REDIS);
    }
check:
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
    return rc;
}

/* Nothing became head but a whole version, with its own offsets. */
static void publish_check(void *ctx) {
    publish_ctx_t *p = ctx;
    uint64_t head;
    int64_t offset;
    read_head(p, &head, &offset);
    assert_int_equal(head, p->head);
    assert_int_equal(offset, p->offset);
    p->next_off++;
}

/* Loading head (with repair on, as a trainer does) must not take an
 * allocation failure for a bad version: no fallback to an older one, and
 * head stays where it is. */
static int load_run(void *ctx) {
    publish_ctx_t *p = ctx;
    char err[1024] = "";
    int rc = 1;
    sl_redis_t *r = sl_redis_new(sl_test_redis_url(p->server), NULL, err, sizeof err);
    sl_snapshot_t *s = r ? sl_snapshot_new(r, "nomem", NULL, err, sizeof err) : NULL;
    if (s) {
        sl_learner_t *l = NULL;
        sl_snap_meta_t m;
        sl_err_t e = sl_snapshot_load_head(s, NULL, 1, &l, &m, err, sizeof err);
        if (e == SL_OK) {
            assert_int_equal(m.version, p->head);
            sl_snap_meta_clear(&m);
            sl_learner_destroy(l);
            rc = 0;
        } else if (e != SL_ERR_NOMEM && e != SL_ERR_REDIS) {
            fail_msg("load under allocation failure: %s: %s", sl_err_str(e), err);
        }
    }
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
    return rc;
}

static void load_check(void *ctx) {
    publish_ctx_t *p = ctx;
    uint64_t head;
    int64_t offset;
    read_head(p, &head, &offset);
    assert_int_equal(head, p->head);
    assert_int_equal(offset, p->offset);
}

static void test_publish(void **state) {
    (void)state;
    publish_ctx_t p = {.next_off = 1000, .offset = -1};
    p.server = sl_test_redis_start(NULL);
    assert_non_null(p.server);
    sl_learner_t *l = trained_learner(SL_SCALE_OFF);
    uint64_t step, samples;
    assert_int_equal(sl_learner_save(l, &p.blob, &p.len), SL_OK);
    assert_int_equal(sl_snapshot_describe(l, &p.config, &p.metrics, &step, &samples), SL_OK);
    sweep("store publish", publish_run, publish_check, &p);
    assert_true(p.head > 0);
    sweep("store load", load_run, load_check, &p);
    free(p.blob);
    free(p.config);
    free(p.metrics);
    sl_learner_destroy(l);
    sl_test_redis_destroy(p.server);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),         cmocka_unit_test(test_learner),
        cmocka_unit_test(test_learner_scaled), cmocka_unit_test(test_learner_sparse_ftrl),
        cmocka_unit_test(test_runner),         cmocka_unit_test(test_serialise),
        cmocka_unit_test(test_weights_file),   cmocka_unit_test(test_publish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
