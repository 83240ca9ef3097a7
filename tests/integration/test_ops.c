/* test_ops.c - the HTTP surface of `streamlearn run` over a real socket,
 * against real worker processes on a dev-kafka cluster and a real
 * redis-server: probes follow the worker's state, /metrics counts what the
 * worker did, the status page draws an SVG, a standby trainer is "standby". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>

#include "cli/ops.h"
#include "common/log.h"
#include "store/redis.h"
#include "store/snapshot.h"
#include "tests/integration/run_util.h"
#include "tests/support/redis_server.h"

static sl_test_redis_t *server;
static pid_t devkafka_pid;
static char brokers[256];

/* Starts `streamlearn run --dim 4` with the test's Kafka settings plus the
 * NULL-terminated extra flags; stderr goes to <tmpdir>/<log>. */
static pid_t start_run(const char *log, int http_port, const char *const *extra) {
    char port[16];
    snprintf(port, sizeof port, "%d", http_port);
    char *argv[64] = {(char *)ru_bin(),
                      "run",
                      "--dim",
                      "4",
                      "--batch-size",
                      "16",
                      "--linger-ms",
                      "50",
                      "--stats-interval-ms",
                      "1000",
                      "--brokers",
                      brokers,
                      "--http-port",
                      port,
                      "--kafka-opt",
                      "heartbeat.interval.ms=500",
                      "--kafka-opt",
                      "session.timeout.ms=6000",
                      "--kafka-opt",
                      "auto.offset.reset=earliest"};
    size_t n = 0;
    while (argv[n])
        n++;
    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return ru_spawn(argv, log);
}

static int setup(void **state) {
    (void)state;
    ru_setup_tmpdir("sl_test_ops");
    server = sl_test_redis_start(NULL);
    if (!server)
        return -1;
    devkafka_pid = ru_devkafka("in:4,out:4,one:1,out1:1", brokers, sizeof brokers);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    ru_kill_all();
    sl_test_redis_destroy(server);
    ru_remove_tmpdir();
    return 0;
}

static uint64_t redis_head(const char *model) {
    char err[512];
    sl_redis_t *r = sl_redis_new(sl_test_redis_url(server), NULL, err, sizeof err);
    assert_non_null(r);
    sl_snapshot_t *s = sl_snapshot_new(r, model, NULL, err, sizeof err);
    assert_non_null(s);
    uint64_t head = 0;
    assert_int_equal(sl_snapshot_head(s, &head, err, sizeof err), SL_OK);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
    return head;
}

static void test_metrics_match_what_the_worker_did(void **state) {
    (void)state;
    int port = ru_free_port();
    const char *extra[] = {"--group",
                           "g-metrics",
                           "--input-topic",
                           "in",
                           "--output-topic",
                           "out",
                           "--redis",
                           sl_test_redis_url(server),
                           "--model-name",
                           "ops-m",
                           "--snapshot-every-ms",
                           "300",
                           NULL};
    pid_t pid = start_run("metrics.log", port, extra);
    int st = ru_wait_status(port, "/readyz", 200, 30000);
    if (st != 200)
        ru_show_log("metrics.log");
    assert_int_equal(st, 200);
    assert_int_equal(ru_http_get(port, "/healthz", NULL), 200);
    const int good = 300, bad = 7;
    ru_produce(brokers, "in", 0, good + bad, bad);
    double preds = ru_wait_metric(port, "streamlearn_predictions_total", good, 30000);
    if (preds != good)
        ru_show_log("metrics.log");
    assert_true(preds == good);
    assert_true(ru_wait_metric(port, "streamlearn_bad_samples_total", bad, 5000) == bad);
    assert_true(ru_wait_metric(port, "streamlearn_samples_trained_total", good, 5000) == good);
    assert_true(ru_metric(port, "streamlearn_model_step") >= 1);
    assert_true(isfinite(ru_metric(port, "streamlearn_prequential_loss")));
    assert_true(ru_metric(port, "streamlearn_consumer_lag") == 0);
    /* after the time-based snapshot, the served version is head in Redis */
    double version = 0;
    uint64_t head = 0;
    for (uint64_t end = ru_now_ms() + 20000; ru_now_ms() < end; ru_sleep_ms(200)) {
        head = redis_head("ops-m");
        version = ru_metric(port, "streamlearn_model_version");
        if (head > 0 && version == (double)head)
            break;
    }
    assert_true(head > 0);
    assert_true(version == (double)head);
    assert_true(ru_metric(port, "streamlearn_snapshot_seconds") > 0);
    assert_true(ru_metric(port, "streamlearn_snapshot_failures_total") == 0);
    char *body = NULL;
    assert_int_equal(ru_http_get(port, "/metrics", &body), 200);
    assert_non_null(
        strstr(body, "streamlearn_predictions_total{model=\"ops-m\",role=\"both\"} 300"));
    free(body);
    assert_int_equal(ru_http_get(port, "/", &body), 200);
    assert_non_null(strstr(body, "<svg"));
    assert_non_null(strstr(body, "ops-m"));
    free(body);
    assert_int_equal(ru_http_get(port, "/nope", NULL), 404);
    /* more samples, a newer snapshot: the status page shows the chain */
    ru_produce(brokers, "in", good + bad, good + bad + 50, 0);
    uint64_t head2 = 0;
    for (uint64_t end = ru_now_ms() + 20000; ru_now_ms() < end; ru_sleep_ms(200)) {
        head2 = redis_head("ops-m");
        if (head2 > head && ru_metric(port, "streamlearn_model_version") == (double)head2)
            break;
    }
    assert_true(head2 > head);
    /* head2 first, head further down the chain (snapshots may lie between) */
    char newest[32], older[32];
    snprintf(newest, sizeof newest, ">v%llu ← ", (unsigned long long)head2);
    snprintf(older, sizeof older, "← v%llu", (unsigned long long)head);
    char *page = NULL;
    for (uint64_t end = ru_now_ms() + 5000; ru_now_ms() < end; ru_sleep_ms(200)) {
        free(page);
        page = NULL;
        assert_int_equal(ru_http_get(port, "/", &page), 200);
        if (strstr(page, newest) && strstr(page, older))
            break;
    }
    if (!strstr(page, newest) || !strstr(page, older))
        fail_msg("status page lacks the lineage v%llu ... v%llu:\n%s", (unsigned long long)head2,
                 (unsigned long long)head, page);
    free(page);
    assert_int_equal(ru_stop(pid, SIGTERM), 0);
}

/* One input partition, two workers in one group: the one without a
 * partition is alive but not ready, and becomes ready when it gets it. */
static void test_readyz_needs_an_assigned_partition(void **state) {
    (void)state;
    int pa = ru_free_port(), pb = ru_free_port();
    const char *extra[] = {"--group", "g-one", "--input-topic", "one", "--output-topic",
                           "out1",    NULL};
    pid_t a = start_run("one-a.log", pa, extra);
    assert_int_equal(ru_wait_status(pa, "/readyz", 200, 30000), 200);
    int a_assigned = ru_log_count("one-a.log", "\"partitions assigned\"");
    pid_t b = start_run("one-b.log", pb, extra);
    assert_int_equal(ru_wait_status(pb, "/healthz", 200, 10000), 200);
    /* b joins while a holds the only partition; the rebalance hands it to one
     * of them. Wait for its end, not for a fixed time. */
    int settled = 0, sa = -1, sb = -1;
    for (uint64_t end = ru_now_ms() + 60000; ru_now_ms() < end && !settled; ru_sleep_ms(200)) {
        /* a gave the partition up; then it went to b or back to a */
        if (ru_log_count("one-a.log", "\"partitions revoked\"") < 1 ||
            (ru_log_count("one-b.log", "\"partitions assigned\"") < 1 &&
             ru_log_count("one-a.log", "\"partitions assigned\"") <= a_assigned))
            continue;
        sa = ru_http_get(pa, "/readyz", NULL);
        sb = ru_http_get(pb, "/readyz", NULL);
        settled = (sa == 200 && sb == 503) || (sa == 503 && sb == 200);
    }
    double parts_b = ru_metric(pb, "streamlearn_partitions_assigned");
    pid_t idle = sb == 503 ? b : a, busy = sb == 503 ? a : b;
    int idle_port = sb == 503 ? pb : pa;
    if (!((sa == 200 && sb == 503) || (sa == 503 && sb == 200))) {
        ru_show_log("one-a.log");
        ru_show_log("one-b.log");
    }
    assert_true((sa == 200 && sb == 503) || (sa == 503 && sb == 200));
    assert_true(parts_b == (sb == 200 ? 1 : 0));
    char *body = NULL;
    assert_int_equal(ru_http_get(idle_port, "/readyz", &body), 503);
    assert_non_null(strstr(body, "no partitions"));
    free(body);
    assert_int_equal(ru_http_get(idle_port, "/healthz", NULL), 200);
    /* the busy one leaves: the idle one takes the partition and is ready */
    assert_int_equal(ru_stop(busy, SIGTERM), 0);
    assert_int_equal(ru_wait_status(idle_port, "/readyz", 200, 30000), 200);
    assert_int_equal(ru_stop(idle, SIGTERM), 0);
}

static void test_standby_trainer_is_ready_but_idle(void **state) {
    (void)state;
    int pa = ru_free_port(), pb = ru_free_port();
    const char *extra[] = {"--role",        "trainer",     "--group", "g-train",
                           "--input-topic", "in",          "--redis", sl_test_redis_url(server),
                           "--model-name",  "ops-standby", NULL};
    pid_t a = start_run("active.log", pa, extra);
    assert_int_equal(ru_wait_status(pa, "/readyz", 200, 30000), 200);
    pid_t b = start_run("standby.log", pb, extra);
    assert_int_equal(ru_wait_status(pb, "/readyz", 200, 10000), 200);
    char *body = NULL;
    assert_int_equal(ru_http_get(pb, "/readyz", &body), 200);
    assert_non_null(body);
    assert_string_equal(body, "standby\n");
    free(body);
    assert_int_equal(ru_http_get(pb, "/healthz", NULL), 200);
    /* the active one is ready (waited for: on a loaded machine a slow heartbeat can cost it
     * its partition for a moment, and a rebalance is not what this test is about) */
    assert_int_equal(ru_wait_status(pa, "/readyz", 200, 30000), 200);
    assert_int_equal(ru_http_get(pa, "/readyz", &body), 200);
    assert_string_equal(body, "ready\n");
    free(body);
    /* a standby stops cleanly on SIGTERM while waiting for the lease */
    assert_int_equal(ru_stop(b, SIGTERM), 0);
    assert_int_equal(ru_stop(a, SIGTERM), 0);
}

/* --- the ops module in-process, fed through its observer --- */

static sl_ops_t *ops_start(const char *model, uint32_t stale_ms, sl_worker_observer_t *obs) {
    char err[256];
    sl_ops_config_t c = {.port = 0, .model = model, .role = "predictor", .stale_ms = stale_ms};
    sl_ops_t *o = sl_ops_new(&c, err, sizeof err);
    assert_non_null(o);
    sl_ops_observer(o, obs);
    return o;
}

static void test_healthz_fails_when_the_loop_goes_silent(void **state) {
    (void)state;
    sl_worker_observer_t obs;
    sl_ops_t *o = ops_start("m", 1000, &obs);
    int port = sl_ops_port(o);
    sl_ops_set_phase(o, SL_OPS_RUNNING);
    obs.heartbeat(obs.opaque, sl_now_ms());
    assert_int_equal(ru_http_get(port, "/healthz", NULL), 200);
    obs.heartbeat(obs.opaque, sl_now_ms() - 5000); /* the last iteration was 5 s ago */
    char *body = NULL;
    assert_int_equal(ru_http_get(port, "/healthz", &body), 503);
    assert_non_null(strstr(body, "silent"));
    free(body);
    /* a standby or starting process has no loop yet: alive */
    sl_ops_set_phase(o, SL_OPS_STANDBY);
    assert_int_equal(ru_http_get(port, "/healthz", NULL), 200);
    sl_ops_destroy(o);
}

static void test_readyz_reasons(void **state) {
    (void)state;
    sl_worker_observer_t obs;
    sl_ops_t *o = ops_start("m", 0, &obs);
    int port = sl_ops_port(o);
    char *body = NULL;
    assert_int_equal(ru_http_get(port, "/readyz", &body), 503);
    assert_non_null(strstr(body, "loading the model"));
    free(body);
    sl_ops_set_phase(o, SL_OPS_RUNNING);
    sl_worker_status_t st = {.partitions = 0};
    obs.report(obs.opaque, &st);
    assert_int_equal(ru_http_get(port, "/readyz", &body), 503);
    assert_non_null(strstr(body, "no partitions"));
    free(body);
    st.partitions = 2;
    obs.report(obs.opaque, &st);
    assert_int_equal(ru_http_get(port, "/readyz", NULL), 200);
    sl_ops_set_phase(o, SL_OPS_STOPPING);
    assert_int_equal(ru_http_get(port, "/readyz", &body), 503);
    assert_non_null(strstr(body, "stopping"));
    free(body);
    sl_ops_destroy(o);
}

static void test_metrics_and_page_from_the_reported_status(void **state) {
    (void)state;
    sl_worker_observer_t obs;
    sl_ops_t *o = ops_start("a\"<b>", 0, &obs);
    int port = sl_ops_port(o);
    sl_ops_set_phase(o, SL_OPS_RUNNING);
    sl_worker_status_t st = {.samples = 42,
                             .bad = 3,
                             .trained_here = 40,
                             .version = 7,
                             .step = 5,
                             .lag = 11,
                             .partitions = 1,
                             .window_loss = 0.25};
    obs.report(obs.opaque, &st);
    char *body = NULL;
    assert_int_equal(ru_http_get(port, "/metrics", &body), 200);
    assert_non_null(strstr(body, "# TYPE streamlearn_predictions_total counter"));
    assert_non_null(
        strstr(body, "streamlearn_predictions_total{model=\"a\\\"<b>\",role=\"predictor\"} 42\n"));
    assert_non_null(
        strstr(body, "streamlearn_bad_samples_total{model=\"a\\\"<b>\",role=\"predictor\"} 3\n"));
    assert_non_null(
        strstr(body, "streamlearn_model_version{model=\"a\\\"<b>\",role=\"predictor\"} 7\n"));
    assert_non_null(
        strstr(body, "streamlearn_consumer_lag{model=\"a\\\"<b>\",role=\"predictor\"} 11\n"));
    assert_non_null(
        strstr(body, "streamlearn_prequential_loss{model=\"a\\\"<b>\",role=\"predictor\"} 0.25\n"));
    assert_null(strstr(body, "streamlearn_redis_up")); /* no store */
    free(body);
    assert_int_equal(ru_http_get(port, "/", &body), 200);
    assert_non_null(strstr(body, "<svg"));
    assert_non_null(strstr(body, "a&quot;&lt;b&gt;")); /* the model name, escaped */
    assert_null(strstr(body, "a\"<b>"));
    free(body);
    sl_ops_destroy(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_fails_when_the_loop_goes_silent),
        cmocka_unit_test(test_readyz_reasons),
        cmocka_unit_test(test_metrics_and_page_from_the_reported_status),
        cmocka_unit_test(test_metrics_match_what_the_worker_did),
        cmocka_unit_test(test_readyz_needs_an_assigned_partition),
        cmocka_unit_test(test_standby_trainer_is_ready_but_idle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
