/* ops.c - probes, Prometheus metrics and the status page of `streamlearn run`.
 *
 * Threads: the worker's thread publishes its status through the observer
 * callbacks (a heartbeat atomic on every loop iteration, a status copy under
 * `mu` about every 200 ms); libmicrohttpd's thread renders responses from
 * that copy, the phase atomic and sl_store_status, never touching the worker. */

#include "ops.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/httpd.h"
#include "common/log.h"
#include "common/prom.h"
#include "common/svg.h"

#define DEFAULT_STALE_MS 30000
/* Loss points kept for the status page: one per LOSS_EVERY_MS, 10 minutes. */
#define LOSS_RING 300
#define LOSS_EVERY_MS 2000
/* Throughput is measured over at least this long. */
#define RATE_WINDOW_MS 1000

struct sl_ops {
    char *model, *role;
    _Atomic(sl_store_t *) store;
    uint32_t stale_ms;
    sl_httpd_t *httpd;
    atomic_int phase;
    atomic_uint_least64_t heartbeat_ms;

    pthread_mutex_t mu; /* guards what follows */
    int have;
    sl_worker_status_t st;
    double rate; /* predictions per second */
    uint64_t rate_start_ms, rate_start_samples;
    double loss[LOSS_RING];
    size_t loss_n, loss_next;
    uint64_t last_loss_ms;
};

/* ---- the worker's side ---- */

static void obs_heartbeat(void *opaque, uint64_t now_ms) {
    sl_ops_t *o = opaque;
    atomic_store_explicit(&o->heartbeat_ms, now_ms, memory_order_relaxed);
}

static void obs_report(void *opaque, const sl_worker_status_t *st) {
    sl_ops_t *o = opaque;
    uint64_t now = sl_now_ms();
    pthread_mutex_lock(&o->mu);
    if (!o->have) {
        o->rate_start_ms = now;
        o->rate_start_samples = st->samples;
        o->last_loss_ms = now - LOSS_EVERY_MS;
    }
    o->have = 1;
    o->st = *st;
    if (now - o->rate_start_ms >= RATE_WINDOW_MS) {
        o->rate = (double)(st->samples - o->rate_start_samples) * 1000.0 /
                  (double)(now - o->rate_start_ms);
        o->rate_start_ms = now;
        o->rate_start_samples = st->samples;
    }
    if (now - o->last_loss_ms >= LOSS_EVERY_MS) {
        o->loss[o->loss_next] = st->window_loss;
        o->loss_next = (o->loss_next + 1) % LOSS_RING;
        if (o->loss_n < LOSS_RING)
            o->loss_n++;
        o->last_loss_ms = now;
    }
    pthread_mutex_unlock(&o->mu);
}

void sl_ops_observer(sl_ops_t *o, sl_worker_observer_t *obs) {
    *obs = (sl_worker_observer_t){.opaque = o, .heartbeat = obs_heartbeat, .report = obs_report};
}

void sl_ops_set_store(sl_ops_t *o, sl_store_t *store) {
    atomic_store(&o->store, store);
}

void sl_ops_set_phase(sl_ops_t *o, sl_ops_phase_t phase) {
    atomic_store(&o->phase, (int)phase);
}

/* ---- the HTTP thread's side ---- */

/* What a response is rendered from: copied under the lock, then used freely. */
typedef struct view {
    sl_ops_phase_t phase;
    uint64_t heartbeat_ms;
    int have;
    sl_worker_status_t st;
    double rate;
    double loss[LOSS_RING];
    size_t loss_n;
    int have_store;
    sl_store_status_t store;
} view_t;

static void take_view(sl_ops_t *o, view_t *v) {
    v->phase = (sl_ops_phase_t)atomic_load(&o->phase);
    v->heartbeat_ms = atomic_load_explicit(&o->heartbeat_ms, memory_order_relaxed);
    pthread_mutex_lock(&o->mu);
    v->have = o->have;
    v->st = o->st;
    v->rate = o->rate;
    v->loss_n = o->loss_n;
    size_t first = (o->loss_next + LOSS_RING - o->loss_n) % LOSS_RING; /* oldest first */
    for (size_t i = 0; i < o->loss_n; i++)
        v->loss[i] = o->loss[(first + i) % LOSS_RING];
    pthread_mutex_unlock(&o->mu);
    sl_store_t *store = atomic_load(&o->store);
    v->have_store = store != NULL;
    if (store)
        sl_store_status(store, &v->store);
}

static const char *phase_name(sl_ops_phase_t p) {
    switch (p) {
    case SL_OPS_STANDBY: return "standby";
    case SL_OPS_RUNNING: return "running";
    case SL_OPS_STOPPING: return "stopping";
    default: return "starting";
    }
}

static int healthz(sl_ops_t *o, const view_t *v, sl_buf_t *body) {
    if (v->phase == SL_OPS_RUNNING) {
        uint64_t now = sl_now_ms();
        uint64_t age = now > v->heartbeat_ms ? now - v->heartbeat_ms : 0;
        if (v->heartbeat_ms != 0 && age > o->stale_ms) {
            sl_buf_appendf(body, "worker loop silent for %llu ms (limit %u ms)\n",
                           (unsigned long long)age, (unsigned)o->stale_ms);
            return 503;
        }
    }
    sl_buf_appendf(body, "ok (%s)\n", phase_name(v->phase));
    return 200;
}

static int readyz(const view_t *v, sl_buf_t *body) {
    switch (v->phase) {
    case SL_OPS_STANDBY:
        sl_buf_appendf(body, "standby\n"); /* ready but idle: a hot standby for the lease */
        return 200;
    case SL_OPS_STARTING: sl_buf_appendf(body, "not ready: loading the model\n"); return 503;
    case SL_OPS_STOPPING: sl_buf_appendf(body, "not ready: stopping\n"); return 503;
    default: break;
    }
    if (!v->have || v->st.partitions <= 0) {
        sl_buf_appendf(body, "not ready: no partitions assigned\n");
        return 503;
    }
    sl_buf_appendf(body, "ready\n");
    return 200;
}

typedef struct metric {
    const char *name;
    sl_prom_type_t type;
    const char *help;
    double value;
} metric_t;

static int metrics(sl_ops_t *o, const view_t *v, sl_buf_t *body) {
    const sl_worker_status_t *s = &v->st;
    double nan = NAN;
    const metric_t m[] = {
        {"streamlearn_samples_trained_total", SL_PROM_COUNTER,
         "Labelled samples this process trained on (applied optimizer steps).",
         (double)s->trained_here},
        {"streamlearn_predictions_total", SL_PROM_COUNTER, "Good samples predicted.",
         (double)s->samples},
        {"streamlearn_bad_samples_total", SL_PROM_COUNTER,
         "Bad samples (counted, logged, sent to the DLQ when set).", (double)s->bad},
        {"streamlearn_snapshot_failures_total", SL_PROM_COUNTER,
         "Snapshot or head-poll attempts that failed against Redis.",
         v->have_store ? (double)v->store.failed : 0},
        {"streamlearn_model_version", SL_PROM_GAUGE,
         "The snapshot version the serving weights descend from (0: none).",
         (double)(v->have_store ? v->store.version : s->version)},
        {"streamlearn_model_step", SL_PROM_GAUGE, "Optimizer steps applied to the weights.",
         (double)s->step},
        {"streamlearn_consumer_lag", SL_PROM_GAUGE,
         "Messages behind the high watermark, summed over assigned partitions.", (double)s->lag},
        {"streamlearn_prequential_loss", SL_PROM_GAUGE,
         "Prequential (test-then-train) loss over the learner's window.",
         v->have ? s->window_loss : nan},
        {"streamlearn_snapshot_seconds", SL_PROM_GAUGE, "Duration of the last published snapshot.",
         v->have_store ? v->store.snapshot_seconds : 0},
        {"streamlearn_partitions_assigned", SL_PROM_GAUGE, "Input partitions assigned now.",
         (double)s->partitions},
        {"streamlearn_redis_up", SL_PROM_GAUGE, "1 while the last Redis call succeeded.",
         v->have_store ? (double)(v->store.redis_ok != 0) : nan},
    };
    const sl_prom_label_t labels[2] = {{"model", o->model}, {"role", o->role}};
    char err[256];
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        if (!v->have_store && (!strcmp(m[i].name, "streamlearn_redis_up")))
            continue;
        if (sl_prom_family(body, m[i].name, m[i].type, m[i].help, err, sizeof err) != SL_OK ||
            sl_prom_sample(body, m[i].name, labels, 2, m[i].value, err, sizeof err) != SL_OK)
            return 500;
    }
    return 200;
}

static int append_escaped(sl_buf_t *b, const char *s) {
    return sl_svg_escape(b, s) == SL_OK ? 0 : -1;
}

static int row(sl_buf_t *b, const char *name, const char *fmt, ...) {
    char val[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    if (sl_buf_appendf(b, "<tr><th>") || append_escaped(b, name) ||
        sl_buf_appendf(b, "</th><td>") || append_escaped(b, val) ||
        sl_buf_appendf(b, "</td></tr>\n"))
        return -1;
    return 0;
}

static int status_page(sl_ops_t *o, const view_t *v, sl_buf_t *b) {
    const sl_worker_status_t *s = &v->st;
    uint64_t version = v->have_store ? v->store.version : s->version;
    char lineage[SL_STORE_LINEAGE * 28];
    size_t used = 0;
    if (v->have_store && v->store.n_lineage > 0) {
        for (uint32_t i = 0; i < v->store.n_lineage && used < sizeof lineage; i++)
            used += (size_t)snprintf(lineage + used, sizeof lineage - used, "%sv%llu",
                                     i ? " ← " : "", (unsigned long long)v->store.lineage[i]);
    } else if (v->have_store && v->store.parent) {
        snprintf(lineage, sizeof lineage, "v%llu ← v%llu", (unsigned long long)version,
                 (unsigned long long)v->store.parent);
    } else {
        snprintf(lineage, sizeof lineage, "v%llu (no parent)", (unsigned long long)version);
    }
    int bad = sl_buf_appendf(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>"
                                "streamlearn ") ||
              append_escaped(b, o->model) ||
              sl_buf_appendf(b, "</title>\n<style>body{font-family:sans-serif;margin:2em}"
                                "th{text-align:left;padding-right:1em}</style></head><body>\n"
                                "<h1>streamlearn ") ||
              append_escaped(b, o->model) || sl_buf_appendf(b, "</h1>\n<table>\n") ||
              row(b, "role", "%s", o->role) || row(b, "phase", "%s", phase_name(v->phase)) ||
              row(b, "version", "%llu", (unsigned long long)version) ||
              row(b, "lineage", "%s", lineage) ||
              row(b, "step", "%llu", (unsigned long long)s->step) ||
              row(b, "throughput", "%.1f predictions/s", v->rate) ||
              row(b, "predictions", "%llu", (unsigned long long)s->samples) ||
              row(b, "trained here", "%llu", (unsigned long long)s->trained_here) ||
              row(b, "bad samples", "%llu", (unsigned long long)s->bad) ||
              row(b, "consumer lag", "%lld", (long long)s->lag) ||
              row(b, "partitions", "%d", (int)s->partitions) ||
              row(b, "window loss", "%g", s->window_loss);
    if (!bad && v->have_store)
        bad = row(b, "redis", "%s", v->store.redis_ok ? "ok" : v->store.last_error) ||
              row(b, "snapshots published", "%llu", (unsigned long long)v->store.published) ||
              row(b, "snapshot failures", "%llu", (unsigned long long)v->store.failed);
    bad = bad || sl_buf_appendf(b, "</table>\n<h2>prequential loss (window)</h2>\n") ||
          sl_svg_line_chart(b, v->loss, v->loss_n, 640, 200, "window loss") != SL_OK ||
          sl_buf_appendf(b, "\n</body></html>\n");
    return bad ? 500 : 200;
}

static int handle(void *opaque, const char *path, sl_buf_t *body, const char **content_type) {
    sl_ops_t *o = opaque;
    view_t *v = malloc(sizeof *v);
    if (!v)
        return 500;
    take_view(o, v);
    int status = 404;
    if (!strcmp(path, "/healthz")) {
        status = healthz(o, v, body);
    } else if (!strcmp(path, "/readyz")) {
        status = readyz(v, body);
    } else if (!strcmp(path, "/metrics")) {
        *content_type = SL_PROM_CONTENT_TYPE;
        status = metrics(o, v, body);
    } else if (!strcmp(path, "/")) {
        *content_type = "text/html; charset=utf-8";
        status = status_page(o, v, body);
    }
    free(v);
    return status;
}

/* ---- lifetime ---- */

sl_ops_t *sl_ops_new(const sl_ops_config_t *c, char *errstr, size_t errstr_size) {
    sl_ops_t *o = calloc(1, sizeof *o);
    if (!o) {
        sl_errstr_set(errstr, errstr_size, "out of memory starting the HTTP server");
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    o->model = strdup(c->model ? c->model : "");
    o->role = strdup(c->role ? c->role : "both");
    atomic_init(&o->store, NULL);
    o->stale_ms = c->stale_ms ? c->stale_ms : DEFAULT_STALE_MS;
    atomic_init(&o->phase, SL_OPS_STARTING);
    atomic_init(&o->heartbeat_ms, 0);
    if (!o->model || !o->role) {
        sl_errstr_set(errstr, errstr_size, "out of memory starting the HTTP server");
        goto fail;
    }
    o->httpd = sl_httpd_new(c->bind_addr, c->port, handle, o, errstr, errstr_size);
    if (!o->httpd)
        goto fail;
    sl_log(SL_LOG_INFO, "HTTP server listening",
           SL_STR("bind", c->bind_addr ? c->bind_addr : "127.0.0.1"),
           SL_U64("port", sl_httpd_port(o->httpd)));
    return o;
fail:
    sl_ops_destroy(o);
    return NULL;
}

uint16_t sl_ops_port(const sl_ops_t *o) {
    return sl_httpd_port(o->httpd);
}

void sl_ops_destroy(sl_ops_t *o) {
    if (!o)
        return;
    sl_httpd_destroy(o->httpd); /* first: no handler call runs after this */
    pthread_mutex_destroy(&o->mu);
    free(o->model);
    free(o->role);
    free(o);
}
