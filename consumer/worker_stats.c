/* worker_stats.c - what the worker tells about itself: the status for an
 * observer (probes, metrics, status page) and the periodic stats line. */
#include <stdio.h>

#include "consumer/worker_internal.h"

/* Messages behind the high watermarks (the client's cached ones), summed
 * over the assigned partitions; a partition with nothing consumed yet counts
 * from its low watermark. */
static int64_t consumer_lag(sl_worker_t *w) {
    int64_t lag = 0;
    for (int i = 0; w->assigned && i < w->assigned->cnt; i++) {
        int32_t p = w->assigned->elems[i].partition;
        int64_t lo = 0, hi = 0;
        if (rd_kafka_get_watermark_offsets(w->consumer, w->input_topic, p, &lo, &hi) || hi < 0 ||
            (size_t)p >= w->nps)
            continue;
        int64_t next = w->ps[p].consumed >= 0 ? w->ps[p].consumed + 1 : lo;
        if (next >= 0 && hi > next)
            lag += hi - next;
    }
    return lag;
}

void sl_worker_report(sl_worker_t *w) {
    if (!w->obs.report)
        return;
    sl_metrics_view_t win = sl_metrics_window(sl_learner_metrics(w->learner));
    sl_learner_counters_t c = sl_learner_counters(w->learner);
    sl_worker_stats_t s = sl_worker_stats(w);
    sl_worker_status_t st = {
        .messages = s.messages,
        .samples = s.samples,
        .delivered = s.delivered,
        .bad = s.bad,
        .dlq = s.dlq,
        .batches = s.batches,
        .version = w->hooks.version ? w->hooks.version(w->hooks.opaque) : 0,
        .step = c.step,
        .trained = c.samples,
        .trained_here = s.trained,
        .lag = consumer_lag(w),
        .partitions = w->assigned ? w->assigned->cnt : 0,
        .window_loss = win.loss,
        .window_accuracy = win.accuracy,
    };
    w->obs.report(w->obs.opaque, &st);
}

/* The periodic stats line; with a store, it also says whether Redis answers. */
void sl_worker_log_stats(sl_worker_t *w, uint64_t now) {
    double secs = (double)(now - w->last_stats_ms) / 1000.0;
    sl_metrics_view_t win = sl_metrics_window(sl_learner_metrics(w->learner));
    sl_learner_counters_t c = sl_learner_counters(w->learner);
    sl_worker_stats_t s = sl_worker_stats(w);
    int redis_ok = 1;
    uint64_t failed = 0;
    char last[256] = "";
    if (w->hooks.health)
        w->hooks.health(w->hooks.opaque, &redis_ok, &failed, last, sizeof last);
    sl_field_t f[17] = {
        SL_DBL("samples_per_s", secs > 0 ? (double)(s.samples - w->stats_samples) / secs : 0),
        SL_I64("lag", consumer_lag(w)),
        SL_DBL("window_loss", win.loss),
        SL_DBL("window_accuracy", win.accuracy),
        SL_U64("step", c.step),
        SL_U64("version", w->hooks.version ? w->hooks.version(w->hooks.opaque) : 0),
        SL_U64("samples", s.samples),
        SL_U64("bad", s.bad),
        SL_U64("dlq", s.dlq),
        SL_U64("refused_steps", s.refused),
        SL_U64("in_flight", w->in_flight),
        SL_I64("partitions", w->assigned ? w->assigned->cnt : 0),
    };
    size_t n = 12;
    if (w->hooks.health) {
        f[n++] = SL_BOOL("redis_ok", redis_ok);
        f[n++] = SL_U64("snapshot_failures", failed);
        if (!redis_ok)
            f[n++] = SL_STR("redis_error", last);
    }
    sl_log_fields(redis_ok ? SL_LOG_INFO : SL_LOG_WARN, "stats", f, n);
    w->stats_samples = s.samples;
    w->last_stats_ms = now;
}
