/* run.c - `streamlearn run`: the Kafka worker from its flags, with the
 * snapshot store (--redis), the embedded cluster (--brokers embedded) and the
 * HTTP endpoints (--http-port); exit status 0, 1 or 2. */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/learnconf.h"
#include "cli/ops.h"
#include "cli/options.h"
#include "common/log.h"
#include "consumer/devkafka.h"
#include "consumer/worker.h"
#include "store/store.h"

/* Partitions of the topics `--brokers embedded` creates. */
#define EMBEDDED_INPUT_PARTITIONS 4
#define EMBEDDED_OUTPUT_PARTITIONS 4
#define EMBEDDED_DLQ_PARTITIONS 1

/* --role. */
enum { ROLE_TRAINER, ROLE_PREDICTOR, ROLE_BOTH };
static const char *const role_names[] = {"trainer", "predictor", "both"};

static sl_err_t role_parse(const char *name, int *role) {
    for (int i = 0; i < (int)(sizeof role_names / sizeof role_names[0]); i++) {
        if (strcmp(name, role_names[i]) == 0) {
            *role = i;
            return SL_OK;
        }
    }
    return SL_ERR_INVAL;
}

static const char usage[] =
    "usage: streamlearn run [learning flags] --brokers LIST --input-topic T --output-topic P\n"
    "       [--group G] [--dlq-topic D] [--kafka-opt name=value ...]\n"
    "       [--redis URL [--model-name NAME]] [--role both|trainer|predictor] [--http-port N]\n\n"
    "The worker: consumes samples, predicts every sample with the weights before its\n"
    "mini-batch's update, produces one prediction per sample (keyed like its input,\n"
    "header model.version), then trains on the labelled ones. Offsets are committed\n"
    "once predictions are delivered (at-least-once). Bad samples go to --dlq-topic.\n"
    "SIGTERM/SIGINT: finish the batch, flush, commit, exit 0; a second signal exits\n"
    "at once. --brokers embedded starts an in-process development cluster.\n\n"
    "Roles: trainer = the one learner per --model-name (a second waits as hot standby),\n"
    "--output-topic optional; predictor = forward pass only, follows head in Redis, any\n"
    "number of replicas. Trainer and predictors must use different --group values.";

static sl_worker_t *volatile g_worker;
static sl_store_t *volatile g_store;
static sl_ops_t *volatile g_ops;
static atomic_int g_signals;

static void on_signal(int sig) {
    (void)sig;
    if (atomic_fetch_add(&g_signals, 1) > 0)
        _exit(130);
    if (g_worker)
        sl_worker_stop(g_worker);
    if (g_store)
        sl_store_cancel(g_store); /* a hot standby stops waiting for the lease */
    if (g_ops)
        sl_ops_set_phase(g_ops, SL_OPS_STOPPING);
}

static void install_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

typedef struct run {
    sl_learnconf_t lc;
    sl_worker_config_t wc;
    sl_kconf_prop_t *props;
    sl_devkafka_t *dev;
    sl_store_t *store;
    sl_worker_hooks_t hooks;
    int role;
    sl_ops_t *ops;
    sl_worker_observer_t obs;
} run_t;

static int load_uint32(const sl_opts_t *o, const char *name, uint32_t *out, char *errstr,
                       size_t errstr_size) {
    uint64_t v = 0;
    if (sl_opts_uint(o, name, 0, UINT32_MAX / 2, &v, errstr, errstr_size) != SL_OK)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Reads the Kafka flags into r->wc. Returns 0, or -1 with errstr (exit 2). */
static int load_kafka(const sl_opts_t *o, run_t *r, char *errstr, size_t errstr_size) {
    sl_worker_config_t *c = &r->wc;
    sl_opts_str(o, "brokers", &c->brokers);
    sl_opts_str(o, "group", &c->group);
    sl_opts_str(o, "input-topic", &c->input_topic);
    sl_opts_str(o, "output-topic", &c->output_topic);
    sl_opts_str(o, "dlq-topic", &c->dlq_topic);
    if (!c->brokers || !*c->brokers) {
        sl_errstr_set(errstr, errstr_size, "--brokers: required (a bootstrap list or embedded)");
        return -1;
    }
    if (!c->input_topic || (!c->output_topic && r->role != ROLE_TRAINER)) {
        sl_errstr_set(errstr, errstr_size, "%s: required",
                      c->input_topic ? "--output-topic" : "--input-topic");
        return -1;
    }
    if (c->output_topic && !*c->output_topic)
        c->output_topic = NULL;
    c->predict_only = r->role == ROLE_PREDICTOR;
    if (load_uint32(o, "linger-ms", &c->linger_ms, errstr, errstr_size) ||
        load_uint32(o, "stats-interval-ms", &c->stats_interval_ms, errstr, errstr_size))
        return -1;
    size_t n = sl_opts_nkafka(o);
    r->props = calloc(n + 1, sizeof *r->props);
    if (!r->props) {
        sl_errstr_set(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        sl_opts_kafka(o, i, &r->props[i].name, &r->props[i].value);
    c->props = r->props;
    c->nprops = n;
    c->batch_size = r->lc.batch_size;
    c->decode = (sl_decode_config_t){.dim = r->lc.model.dim,
                                     .head = r->lc.model.head,
                                     .classes = r->lc.model.classes,
                                     .max_message_bytes = r->lc.max_message_bytes};
    return 0;
}

/* --brokers embedded: an in-process cluster with the worker's topics. */
static int start_embedded(run_t *r, char *errstr, size_t errstr_size) {
    r->dev = sl_devkafka_new(1, errstr, errstr_size);
    if (!r->dev)
        return -1;
    const char *topics[3] = {r->wc.input_topic, r->wc.output_topic, r->wc.dlq_topic};
    const int parts[3] = {EMBEDDED_INPUT_PARTITIONS, EMBEDDED_OUTPUT_PARTITIONS,
                          EMBEDDED_DLQ_PARTITIONS};
    for (int i = 0; i < 3; i++) {
        if (!topics[i] || !*topics[i] || (i > 0 && !strcmp(topics[i], topics[0])) ||
            (i == 2 && !strcmp(topics[2], topics[1])))
            continue;
        if (sl_devkafka_create_topic(r->dev, topics[i], parts[i], errstr, errstr_size) != SL_OK)
            return -1;
    }
    r->wc.brokers = sl_devkafka_bootstraps(r->dev);
    /* The mock broker holds a fetch that finds nothing for the whole
     * fetch.wait.max.ms (500 ms by default) even when data arrives: the
     * worker would stall that long each time it catches up. load_kafka left
     * room for this one property. */
    int wait_set = 0;
    for (size_t i = 0; i < r->wc.nprops; i++)
        wait_set |= !strcmp(r->props[i].name, "fetch.wait.max.ms") ||
                    !strcmp(r->props[i].name, "consumer.fetch.wait.max.ms");
    if (!wait_set) {
        r->props[r->wc.nprops++] = (sl_kconf_prop_t){"consumer.fetch.wait.max.ms", "10"};
        r->wc.props = r->props;
    }
    sl_log(SL_LOG_INFO, "embedded Kafka cluster started (development only)",
           SL_STR("bootstrap", r->wc.brokers));
    return 0;
}

/* --redis: the snapshot store. Waits for the model's lease (hot standby),
 * then loads head into *learner (NULL when the model has no version yet) and
 * installs the store's hooks. Returns an exit status, or -1 to go on. */
static int start_store(const sl_opts_t *o, run_t *r, sl_learner_t **learner, char *errstr,
                       size_t errstr_size) {
    sl_store_config_t sc = {.topic = r->wc.input_topic};
    uint64_t keep = 0, batches = 0, ms = 0;
    sl_opts_str(o, "redis", &sc.redis_url);
    sl_opts_str(o, "model-name", &sc.model_name);
    if (sl_opts_uint(o, "keep-versions", 0, UINT32_MAX, &keep, errstr, errstr_size) ||
        sl_opts_uint(o, "snapshot-every-batches", 0, UINT32_MAX, &batches, errstr, errstr_size) ||
        sl_opts_uint(o, "snapshot-every-ms", 0, UINT32_MAX, &ms, errstr, errstr_size))
        return 2;
    sc.keep_versions = (uint32_t)keep;
    sc.every_batches = (uint32_t)batches;
    sc.every_ms = (uint32_t)ms;
    sc.follower = r->role == ROLE_PREDICTOR;
    r->store = sl_store_new(&sc, errstr, errstr_size);
    if (!r->store)
        return 2;
    g_store = r->store;
    if (r->ops)
        sl_ops_set_store(r->ops, r->store);
    if (r->ops)
        sl_ops_set_phase(r->ops, sc.follower ? SL_OPS_STARTING : SL_OPS_STANDBY);
    /* a predictor takes no lease; a trainer waits here as a hot standby */
    sl_err_t err = sc.follower ? SL_OK : sl_store_acquire(r->store, errstr, errstr_size);
    if (err == SL_ERR_STATE)
        return 0; /* stopped by a signal while on standby */
    if (r->ops && !atomic_load(&g_signals))
        sl_ops_set_phase(r->ops, SL_OPS_STARTING);
    if (err == SL_OK)
        err = sl_store_load(r->store, &r->lc.model, learner, errstr, errstr_size);
    if (err == SL_ERR_EOF)
        err = SL_OK; /* no version yet: --init or the seeded initialisation (a
                      * predictor serves it as version 0 until one appears) */
    if (err == SL_ERR_MISMATCH)
        return 2;
    if (err == SL_OK)
        err = sl_store_start(r->store, &r->hooks, errstr, errstr_size);
    if (err != SL_OK)
        return 1;
    r->wc.hooks = &r->hooks;
    return -1;
}

/* Warns about flags that have no effect without the one they depend on. */
static void warn_unused_flags(const sl_opts_t *o) {
    static const char *const store_flags[] = {"model-name", "snapshot-every-batches",
                                              "snapshot-every-ms", "keep-versions"};
    for (size_t i = 0; !sl_opts_isset(o, "redis") && i < sizeof store_flags / sizeof *store_flags;
         i++)
        if (sl_opts_given(o, store_flags[i]))
            sl_log(SL_LOG_WARN, "setting ignored: it applies to snapshots, and there is no --redis",
                   SL_STR("setting", sl_opts_origin(o, store_flags[i])));
    uint64_t port = 0;
    char err[128];
    if (sl_opts_given(o, "http-bind") &&
        sl_opts_uint(o, "http-port", 0, 65535, &port, err, sizeof err) == SL_OK && port == 0)
        sl_log(SL_LOG_WARN, "setting ignored: there is no HTTP server without --http-port",
               SL_STR("setting", sl_opts_origin(o, "http-bind")));
}

/* --role and the flags it needs. Returns 0, or -1 with errstr (exit 2). */
static int load_role(const sl_opts_t *o, run_t *r, char *errstr, size_t errstr_size) {
    const char *role = NULL;
    if (sl_opts_choice(o, "role", &role, errstr, errstr_size) != SL_OK)
        return -1;
    if (role_parse(role, &r->role) != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not a role", sl_opts_origin(o, "role"),
                      role);
        return -1;
    }
    if (r->role != ROLE_BOTH && !sl_opts_isset(o, "redis")) {
        sl_errstr_set(errstr, errstr_size, "--redis: required with --role %s", role_names[r->role]);
        return -1;
    }
    return 0;
}

/* --http-port > 0: probes, metrics and the status page, started before the
 * lease wait so a standby answers its probes. Returns 0, -1 with errstr
 * and *code set. */
static int start_ops(const sl_opts_t *o, run_t *r, int *code, char *errstr, size_t errstr_size) {
    uint64_t port = 0;
    const char *bind = NULL, *model = NULL;
    *code = 2;
    if (sl_opts_uint(o, "http-port", 0, 65535, &port, errstr, errstr_size) != SL_OK)
        return -1;
    if (port == 0)
        return 0;
    sl_opts_str(o, "http-bind", &bind);
    sl_opts_str(o, "model-name", &model);
    sl_ops_config_t oc = {.bind_addr = bind && *bind ? bind : NULL,
                          .port = (uint16_t)port,
                          .model = model ? model : "",
                          .role = role_names[r->role]};
    char why[400];
    r->ops = sl_ops_new(&oc, why, sizeof why);
    if (!r->ops) {
        sl_errstr_set(errstr, errstr_size, "--http-port %u: %s", (unsigned)port, why);
        *code = 1;
        return -1;
    }
    g_ops = r->ops;
    sl_ops_observer(r->ops, &r->obs);
    r->wc.observer = &r->obs;
    return 0;
}

int sl_cmd_run(int argc, char **argv) {
    char errstr[512];
    int code = 2;
    run_t r;
    memset(&r, 0, sizeof r);
    sl_learner_t *learner = NULL;
    sl_worker_t *w = NULL;
    sl_opts_t *o = sl_opts_start(SL_CMD_RUN, "run", usage, argc, argv, &code);
    if (!o)
        return code;
    if (sl_learnconf_load(o, &r.lc, errstr, sizeof errstr) != SL_OK ||
        load_role(o, &r, errstr, sizeof errstr) != 0 ||
        load_kafka(o, &r, errstr, sizeof errstr) != 0)
        goto bad;
    warn_unused_flags(o);
    install_signals();
    if (start_ops(o, &r, &code, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "streamlearn run: %s\n", errstr);
        goto out;
    }
    if (sl_opts_isset(o, "redis")) {
        code = start_store(o, &r, &learner, errstr, sizeof errstr);
        if (code >= 0) {
            if (code > 0)
                fprintf(stderr, "streamlearn run: %s\n", errstr);
            goto out;
        }
    }
    sl_err_t err = learner ? SL_OK : sl_learnconf_create(&r.lc, &learner, errstr, sizeof errstr);
    if (err != SL_OK) {
        fprintf(stderr, "streamlearn run: %s\n", errstr);
        code = sl_learnconf_exit_code(err);
        goto out;
    }
    if (!strcmp(r.wc.brokers, "embedded") && start_embedded(&r, errstr, sizeof errstr) != 0) {
        fprintf(stderr, "streamlearn run: --brokers embedded: %s\n", errstr);
        code = 1;
        goto out;
    }
    err = sl_worker_new(&r.wc, learner, &w, errstr, sizeof errstr);
    if (err != SL_OK) {
        fprintf(stderr, "streamlearn run: %s\n", errstr);
        code = err == SL_ERR_INVAL ? 2 : 1;
        goto out;
    }
    learner = NULL; /* owned by the worker */
    g_worker = w;
    if (r.ops && !atomic_load(&g_signals))
        sl_ops_set_phase(r.ops, SL_OPS_RUNNING);
    err = atomic_load(&g_signals) ? SL_OK : sl_worker_run(w);
    g_worker = NULL;
    if (err != SL_OK)
        fprintf(stderr, "streamlearn run: %s\n", sl_worker_error(w));
    code = err == SL_OK ? 0 : 1;
    if (r.ops)
        sl_ops_set_phase(r.ops, SL_OPS_STOPPING);
    goto out;
bad:
    fprintf(stderr, "streamlearn run: %s\n", errstr);
    code = 2;
out:
    g_ops = NULL;
    sl_ops_destroy(r.ops); /* before the store its handler reads */
    sl_worker_destroy(w);
    g_store = NULL;
    sl_store_destroy(r.store); /* after the worker: its final snapshot is written */
    sl_learner_destroy(learner);
    sl_devkafka_destroy(r.dev);
    free(r.props);
    sl_opts_destroy(o);
    return code;
}
