/* test_recovery.c - the worker with the snapshot store, end to end: kill -9
 * at random points and restart, then the head's samples equal the labelled
 * samples sent and its weights equal an uninterrupted run; a rollback is
 * followed by a running worker; a standby takes over when the trainer dies;
 * a snapshot never makes offsets durable ahead of delivered predictions.
 * The worker runs in child processes: this program re-executes itself with
 * --child (a worker built from consumer/worker.h and store/store.h); the
 * last test runs one in-process against a slowed in-process cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

#include "common/log.h"
#include "consumer/worker.h"
#include "model/learner.h"
#include "store/redis.h"
#include "store/snapshot.h"
#include "store/store.h"
#include "tests/support/kafka_env.h"
#include "tests/support/redis_server.h"

extern char **environ;

#define DIM 4
#define BATCH 8
#define MODEL "rec"

static sl_test_redis_t *server;
static pid_t devkafka_pid;
static char brokers[256];
static char tmpdir[128];
static int group_seq;

/* --- the child worker --- */

static sl_worker_t *volatile g_worker;
static sl_store_t *volatile g_store;

static void on_term(int sig) {
    (void)sig;
    if (g_worker)
        sl_worker_stop(g_worker);
    if (g_store)
        sl_store_cancel(g_store);
}

static sl_learner_t *fresh_learner(void) {
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = DIM};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    char err[256];
    return sl_learner_new(&mc, &oc, 1, 0, err, sizeof err);
}

/* argv: --child BROKERS REDIS_URL GROUP SNAPSHOT_EVERY_BATCHES MODEL */
static int child_main(char **argv) {
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    char err[1024];
    sl_store_config_t sc = {.redis_url = argv[3],
                            .model_name = argv[6],
                            .topic = "in",
                            .every_batches = (uint32_t)atoi(argv[5]),
                            .every_ms = 300,
                            .lease_ttl_ms = 2000,
                            .poll_ms = 100};
    sl_store_t *s = sl_store_new(&sc, err, sizeof err);
    if (!s) {
        fprintf(stderr, "child: %s\n", err);
        return 2;
    }
    g_store = s;
    sl_learner_t *l = NULL;
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = DIM};
    sl_err_t rc = sl_store_acquire(s, err, sizeof err);
    if (rc == SL_OK)
        rc = sl_store_load(s, &mc, &l, err, sizeof err);
    if (rc == SL_ERR_EOF) {
        l = fresh_learner();
        rc = l ? SL_OK : SL_ERR_NOMEM;
    }
    sl_worker_hooks_t hooks;
    if (rc == SL_OK)
        rc = sl_store_start(s, &hooks, err, sizeof err);
    if (rc != SL_OK) {
        fprintf(stderr, "child: %s\n", err);
        sl_learner_destroy(l);
        g_store = NULL;
        sl_store_destroy(s);
        return rc == SL_ERR_STATE ? 0 : 1;
    }
    sl_kconf_prop_t props[] = {{"session.timeout.ms", "6000"}, {"heartbeat.interval.ms", "500"}};
    sl_worker_config_t wc = {.brokers = argv[2],
                             .group = argv[4],
                             .input_topic = "in",
                             .output_topic = "out",
                             .props = props,
                             .nprops = 2,
                             .batch_size = BATCH,
                             .linger_ms = 2000,
                             .decode = {.dim = DIM, .head = SL_HEAD_LOGISTIC},
                             .hooks = &hooks};
    sl_worker_t *w = NULL;
    sl_err_t werr = sl_worker_new(&wc, l, &w, err, sizeof err);
    if (werr != SL_OK) {
        fprintf(stderr, "child: %s\n", err);
        sl_learner_destroy(l);
        g_store = NULL;
        sl_store_destroy(s);
        return werr == SL_ERR_INVAL ? 2 : 1;
    }
    g_worker = w;
    int code = sl_worker_run(w) == SL_OK ? 0 : 1;
    g_worker = NULL;
    sl_worker_destroy(w);
    g_store = NULL;
    sl_store_destroy(s);
    return code;
}

/* --- the parent --- */

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Workers alive, so a failed test never leaves one behind. */
static pid_t live[16];

static void track(pid_t pid, int alive) {
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (alive ? live[i] == 0 : live[i] == pid) {
            live[i] = alive ? pid : 0;
            return;
        }
}

static pid_t spawn_child(int snapshot_every, const char *model) {
    char group[64], every[16], log[256];
    snprintf(group, sizeof group, "g%d", ++group_seq);
    snprintf(every, sizeof every, "%d", snapshot_every);
    snprintf(log, sizeof log, "%s/child.log", tmpdir);
    char *argv[] = {"test_recovery", "--child", brokers,       (char *)sl_test_redis_url(server),
                    group,           every,     (char *)model, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    track(pid, 1);
    return pid;
}

static int reap(pid_t pid) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    track(pid, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The label and features of sample i (float32-exact values). */
static void sample(uint32_t i, float x[DIM], float *y) {
    for (int j = 0; j < DIM; j++)
        x[j] = (float)((int)((i * 37u + (uint32_t)j * 11u) % 23u) - 11) / 8.0f;
    *y = x[0] + 0.5f * x[1] - x[2] > 0 ? 1.0f : 0.0f;
}

/* Produces messages [first, last): message m holds samples m*BATCH.. as an array. */
static void produce(uint32_t first, uint32_t last) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(p);
    for (uint32_t m = first; m < last; m++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, BATCH);
        for (uint32_t k = 0; k < BATCH; k++) {
            float x[DIM], y;
            sample(m * BATCH + k, x, &y);
            msgpack_pack_map(&pk, 2);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "x", 1);
            msgpack_pack_array(&pk, DIM);
            for (int j = 0; j < DIM; j++)
                msgpack_pack_float(&pk, x[j]);
            msgpack_pack_str(&pk, 1);
            msgpack_pack_str_body(&pk, "y", 1);
            msgpack_pack_int(&pk, (int)y);
        }
        rd_kafka_resp_err_t e =
            rd_kafka_producev(p, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_PARTITION(0),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_VALUE(sb.data, sb.size), RD_KAFKA_V_END);
        assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
        msgpack_sbuffer_destroy(&sb);
    }
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* The uninterrupted run: every message one batch, in order. */
static sl_learner_t *reference(uint32_t messages) {
    sl_learner_t *l = fresh_learner();
    assert_non_null(l);
    for (uint32_t m = 0; m < messages; m++) {
        float x[BATCH * DIM], y[BATCH], w[BATCH], out[BATCH];
        uint8_t lab[BATCH];
        for (uint32_t k = 0; k < BATCH; k++) {
            sample(m * BATCH + k, x + k * DIM, &y[k]);
            w[k] = 1;
            lab[k] = 1;
        }
        sl_input_t in = {.n = BATCH, .dim = DIM, .dense = x};
        sl_targets_t t = {y, w, lab};
        assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    }
    return l;
}

static sl_snapshot_t *open_store(sl_redis_t **r, const char *model) {
    char err[512];
    *r = sl_redis_new(sl_test_redis_url(server), NULL, err, sizeof err);
    assert_non_null(*r);
    sl_snapshot_t *s = sl_snapshot_new(*r, model, NULL, err, sizeof err);
    assert_non_null(s);
    return s;
}

/* Waits until head's samples reach `want` (or the timeout); returns them. */
static uint64_t wait_head_samples(sl_snapshot_t *s, uint64_t want, int timeout_ms) {
    uint64_t samples = 0;
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        uint64_t head;
        char err[512];
        if (sl_snapshot_head(s, &head, err, sizeof err) == SL_OK && head) {
            sl_snap_meta_t m;
            if (sl_snapshot_meta(s, head, &m, err, sizeof err) == SL_OK) {
                samples = m.samples;
                sl_snap_meta_clear(&m);
            }
        }
        if (samples == want)
            break;
        sleep_ms(100);
    }
    return samples;
}

static void show_child_log(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd,
             "grep -v '\"info\"' %s/child.log | tail -n 40 >&2; tail -n 15 %s/child.log >&2",
             tmpdir, tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no child log)\n");
}

static void test_kill9_restarts_train_exactly_once(void **state) {
    (void)state;
    sl_redis_t *r;
    sl_snapshot_t *s = open_store(&r, MODEL);
    srand(4242);
    /* Each round a worker starts, messages arrive one by one, and the worker
     * is killed -9 at a random message (sometimes before it got any). */
    const uint32_t per_round = 12, rounds = 4;
    for (uint32_t round = 0; round < rounds; round++) {
        pid_t pid = spawn_child(5, MODEL);
        sleep_ms(2500 + rand() % 2000);
        uint32_t kill_at = (uint32_t)(rand() % (int)per_round);
        for (uint32_t m = 0; m < per_round; m++) {
            if (m == kill_at) {
                kill(pid, SIGKILL);
                reap(pid);
            }
            produce(round * per_round + m, round * per_round + m + 1);
            sleep_ms(60 + rand() % 100);
        }
    }
    /* a last worker runs to the end of the stream and stops cleanly */
    pid_t pid = spawn_child(5, MODEL);
    uint64_t want = (uint64_t)rounds * per_round * BATCH;
    uint64_t got = wait_head_samples(s, want, 90000);
    kill(pid, SIGTERM);
    int code = reap(pid);
    if (got != want || code != 0)
        show_child_log();
    char cmd[600]; /* what the kills hit, for whoever reads the output */
    snprintf(cmd, sizeof cmd,
             "printf 'workers resumed from a snapshot: %%s, snapshots published: %%s\\n' "
             "$(grep -c 'resuming from snapshot' %s/child.log) "
             "$(grep -c 'snapshot published' %s/child.log) >&2",
             tmpdir, tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no child log)\n");
    assert_int_equal(code, 0);
    assert_int_equal(got, want);
    sl_learner_t *head = NULL;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load_head(s, NULL, 0, &head, &m, err, sizeof err), SL_OK);
    assert_int_equal(m.samples, want);
    assert_int_equal(m.n_offsets, 1);
    assert_int_equal(m.offsets[0].offset, rounds * per_round);
    sl_learner_t *ref = reference(rounds * per_round);
    size_t np = sl_model_n_params(sl_learner_model(ref));
    assert_memory_equal(sl_model_params(sl_learner_model(ref)),
                        sl_model_params(sl_learner_model(head)), np * sizeof(float));
    assert_int_equal(sl_learner_counters(head).step, rounds * per_round);
    sl_snap_meta_clear(&m);
    sl_learner_destroy(ref);
    sl_learner_destroy(head);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
}

/* Head's metadata (fails the test when unreadable). */
static void head_meta(sl_snapshot_t *s, sl_snap_meta_t *m) {
    uint64_t head;
    char err[512];
    if (sl_snapshot_head(s, &head, err, sizeof err) != SL_OK || !head ||
        sl_snapshot_meta(s, head, m, err, sizeof err) != SL_OK)
        fail_msg("head: %s", err);
}

static void assert_head_equals_reference(sl_snapshot_t *s, uint32_t messages) {
    sl_learner_t *head = NULL;
    sl_snap_meta_t m;
    char err[512];
    assert_int_equal(sl_snapshot_load_head(s, NULL, 0, &head, &m, err, sizeof err), SL_OK);
    sl_learner_t *ref = reference(messages);
    size_t np = sl_model_n_params(sl_learner_model(ref));
    assert_memory_equal(sl_model_params(sl_learner_model(ref)),
                        sl_model_params(sl_learner_model(head)), np * sizeof(float));
    sl_snap_meta_clear(&m);
    sl_learner_destroy(ref);
    sl_learner_destroy(head);
}

static void test_running_worker_follows_rollback(void **state) {
    (void)state;
    sl_redis_t *r;
    sl_snapshot_t *s = open_store(&r, "rb");
    const uint32_t before = 48; /* messages the first test left in the topic */
    pid_t pid = spawn_child(5, "rb");
    uint64_t got = wait_head_samples(s, before * BATCH, 60000);
    if (got != before * BATCH)
        show_child_log();
    assert_int_equal(got, before * BATCH);
    /* the oldest version, from early in the stream */
    uint64_t *list, target;
    size_t n;
    char err[512];
    assert_int_equal(sl_snapshot_list(s, &list, &n, err, sizeof err), SL_OK);
    assert_true(n >= 2);
    target = list[n - 1];
    free(list);
    sl_snap_meta_t tm;
    assert_int_equal(sl_snapshot_meta(s, target, &tm, err, sizeof err), SL_OK);
    assert_true(tm.samples < before * BATCH);
    /* without --rewind: the worker takes the old weights and trains on from
     * where it is, so the next versions count the old samples plus new ones */
    assert_int_equal(sl_snapshot_rollback(s, target, "test", 0, NULL, err, sizeof err), SL_OK);
    sleep_ms(1000);
    produce(before, before + 6);
    got = wait_head_samples(s, tm.samples + 6 * BATCH, 30000);
    if (got != tm.samples + 6 * BATCH)
        show_child_log();
    assert_int_equal(got, tm.samples + 6 * BATCH);
    sl_snap_meta_t hm;
    head_meta(s, &hm);
    assert_int_not_equal(hm.version, target);
    sl_snap_meta_clear(&hm);
    /* with --rewind: back to the version's offsets, the stream is trained
     * again from there, ending exactly where an uninterrupted run ends */
    assert_int_equal(sl_snapshot_rollback(s, target, "test", 1, NULL, err, sizeof err), SL_OK);
    got = wait_head_samples(s, (before + 6) * BATCH, 30000);
    if (got != (before + 6) * BATCH)
        show_child_log();
    assert_int_equal(got, (before + 6) * BATCH);
    kill(pid, SIGTERM);
    assert_int_equal(reap(pid), 0);
    assert_head_equals_reference(s, before + 6);
    sl_snap_meta_clear(&tm);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
}

static void test_standby_takes_over_when_trainer_dies(void **state) {
    (void)state;
    sl_redis_t *r;
    sl_snapshot_t *s = open_store(&r, "fo");
    const uint32_t before = 54; /* messages the tests above left in the topic */
    pid_t a = spawn_child(5, "fo");
    uint64_t got = wait_head_samples(s, before * BATCH, 60000);
    assert_int_equal(got, before * BATCH);
    pid_t b = spawn_child(5, "fo"); /* waits as a hot standby */
    sleep_ms(1500);
    produce(before, before + 2);
    got = wait_head_samples(s, (before + 2) * BATCH, 30000);
    assert_int_equal(got, (before + 2) * BATCH);
    kill(a, SIGKILL);
    reap(a);
    produce(before + 2, before + 4);
    got = wait_head_samples(s, (before + 4) * BATCH, 30000);
    if (got != (before + 4) * BATCH)
        show_child_log();
    assert_int_equal(got, (before + 4) * BATCH);
    kill(b, SIGTERM);
    assert_int_equal(reap(b), 0);
    assert_head_equals_reference(s, before + 4);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
}

static void test_redis_restart_mid_stream(void **state) {
    (void)state;
    sl_redis_t *r;
    sl_snapshot_t *s = open_store(&r, "ro");
    const uint32_t before = 58; /* messages the tests above left in the topic */
    pid_t pid = spawn_child(5, "ro");
    uint64_t got = wait_head_samples(s, before * BATCH, 60000);
    assert_int_equal(got, before * BATCH);
    sl_snap_meta_t km;
    head_meta(s, &km);
    uint64_t last_before = km.version;
    sl_snap_meta_clear(&km);
    /* Redis dies (and, without persistence, forgets everything); the worker
     * goes on training; when Redis is back the next snapshot lands */
    sl_test_redis_kill9(server);
    produce(before, before + 3);
    sleep_ms(1500);
    assert_int_equal(sl_test_redis_restart(server), 0);
    produce(before + 3, before + 4);
    got = wait_head_samples(s, (before + 4) * BATCH, 30000);
    if (got != (before + 4) * BATCH)
        show_child_log();
    assert_int_equal(got, (before + 4) * BATCH);
    sl_snap_meta_t hm;
    head_meta(s, &hm);
    assert_true(hm.version > last_before); /* numbers grow past the lost ones */
    sl_snap_meta_clear(&hm);
    kill(pid, SIGTERM);
    assert_int_equal(reap(pid), 0);
    assert_head_equals_reference(s, before + 4);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
}

/* Produces samples [first, last) to partition 0 of `topic`, one per message. */
static void produce_env(sl_kenv_t *e, const char *topic, uint32_t first, uint32_t last) {
    for (uint32_t i = first; i < last; i++) {
        float x[DIM], y;
        sample(i, x, &y);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 2);
        msgpack_pack_str_with_body(&pk, "x", 1);
        msgpack_pack_array(&pk, DIM);
        for (int j = 0; j < DIM; j++)
            msgpack_pack_float(&pk, x[j]);
        msgpack_pack_str_with_body(&pk, "y", 1);
        msgpack_pack_int(&pk, (int)y);
        assert_int_equal(sl_kenv_produce(e, topic, NULL, sb.data, sb.size), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    assert_int_equal(sl_kenv_flush(e, 30000), 0);
}

/* Head's next offset of partition 0 (-1 before any version). */
static int64_t head_offset(sl_snapshot_t *s) {
    uint64_t head;
    char err[512];
    int64_t off = -1;
    sl_snap_meta_t m;
    if (sl_snapshot_head(s, &head, err, sizeof err) != SL_OK || !head ||
        sl_snapshot_meta(s, head, &m, err, sizeof err) != SL_OK)
        return -1;
    if (m.n_offsets == 1)
        off = m.offsets[0].offset;
    sl_snap_meta_clear(&m);
    return off;
}

/* The snapshot's offsets say "every sample before this was predicted": a
 * restart resumes there, so their predictions must already be on the output
 * topic when the version is published. With a 300 ms round trip to the
 * broker, every batch's predictions are still in flight when the next
 * batch's snapshot is due: at any moment the output topic must hold at
 * least head's offset of predictions (one per sample, one partition each). */
static void test_snapshot_offsets_wait_for_deliveries(void **state) {
    (void)state;
    sl_kenv_t *e = sl_kenv_new(1, "din:1,dout:1");
    assert_non_null(e);
    char err[1024];
    sl_store_config_t sc = {.redis_url = sl_test_redis_url(server),
                            .model_name = "deliv",
                            .topic = "din",
                            .every_batches = 1,
                            .lease_ttl_ms = 5000,
                            .poll_ms = 100};
    sl_store_t *st = sl_store_new(&sc, err, sizeof err);
    assert_non_null(st);
    sl_learner_t *none = NULL;
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = DIM};
    assert_int_equal(sl_store_acquire(st, err, sizeof err), SL_OK);
    assert_int_equal(sl_store_load(st, &mc, &none, err, sizeof err), SL_ERR_EOF);
    sl_worker_hooks_t hooks;
    assert_int_equal(sl_store_start(st, &hooks, err, sizeof err), SL_OK);
    sl_kworker_t kw;
    assert_int_equal(sl_kworker_start(&kw, e, "g-deliv", "din", "dout", NULL, DIM, 8, &hooks), 0);
    sl_redis_t *r;
    sl_snapshot_t *s = open_store(&r, "deliv");
    const uint32_t warm = 16, total = warm + 12 * 32;
    produce_env(e, "din", 0, warm);
    for (int waited = 0; head_offset(s) < (int64_t)warm && waited < 60000; waited += 50)
        sleep_ms(50);
    assert_int_equal(head_offset(s), warm);
    assert_int_equal(rd_kafka_mock_broker_set_rtt(sl_devkafka_mock(e->dev), 1, 300), 0);
    uint32_t sent = warm, checked = 0;
    int64_t last = warm;
    uint64_t deadline = sl_now_ms() + 60000;
    while (last < (int64_t)total && sl_now_ms() < deadline) {
        if (sent < total) {
            produce_env(e, "din", sent, sent + 32);
            sent += 32;
        }
        int64_t off = head_offset(s), lo = 0, hi = 0;
        assert_int_equal(rd_kafka_query_watermark_offsets(e->producer, "dout", 0, &lo, &hi, 10000),
                         0);
        if (off > hi)
            fail_msg("head claims %lld samples done, only %lld predictions delivered",
                     (long long)off, (long long)hi);
        if (off > last) {
            checked++;
            last = off;
        }
    }
    assert_int_equal(last, total);
    assert_true(checked >= 3); /* versions published while the broker was slow */
    assert_int_equal(sl_kworker_stop(&kw), SL_OK);
    sl_kworker_free(&kw);
    sl_store_destroy(st);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
    sl_kenv_destroy(e);
}

/* After each test: kill -9 any worker a failed assertion left running. */
static int kill_workers(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            reap(live[i]);
        }
    return 0;
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sl_recovery_XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    server = sl_test_redis_start(NULL);
    if (!server)
        return -1;
    const char *bin = getenv("SL_BIN");
    if (!bin) {
        fprintf(stderr, "SL_BIN is not set\n");
        return -1;
    }
    char bsfile[256];
    snprintf(bsfile, sizeof bsfile, "%s/bootstrap", tmpdir);
    char *argv[] = {(char *)bin,        "dev-kafka", "--topics", "in:1,out:1",
                    "--bootstrap-file", bsfile,      NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(&devkafka_pid, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    for (int i = 0; i < 100 && !brokers[0]; i++) {
        FILE *f = fopen(bsfile, "r");
        if (f) {
            if (!fgets(brokers, sizeof brokers, f))
                brokers[0] = '\0';
            fclose(f);
            brokers[strcspn(brokers, "\r\n")] = '\0';
        }
        if (!brokers[0])
            sleep_ms(100);
    }
    return brokers[0] ? 0 : -1;
}

static int teardown(void **state) {
    kill_workers(state);
    if (devkafka_pid > 0) {
        kill(devkafka_pid, SIGTERM);
        reap(devkafka_pid);
    }
    sl_test_redis_destroy(server);
    if (getenv("SL_KEEP_LOGS")) { /* keep the workers' logs for a look */
        fprintf(stderr, "worker logs kept in %s\n", tmpdir);
        return 0;
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "--child"))
        return child_main(argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill9_restarts_train_exactly_once, kill_workers),
        cmocka_unit_test_teardown(test_running_worker_follows_rollback, kill_workers),
        cmocka_unit_test_teardown(test_standby_takes_over_when_trainer_dies, kill_workers),
        cmocka_unit_test_teardown(test_redis_restart_mid_stream, kill_workers),
        cmocka_unit_test(test_snapshot_offsets_wait_for_deliveries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
