/* worker_out.c - what leaves the worker: predictions and dead letters
 * produced with delivery tracking (never dropped on a full queue), and the
 * status and stats it reports. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/encode.h"
#include "consumer/worker_internal.h"

void sl_worker_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    sl_worker_t *w = opaque;
    ticket_t *t = m->_private;
    w->in_flight--;
    if (m->err) {
        sl_worker_fatal(w, "output could not be delivered; its input offset stays uncommitted",
                        rd_kafka_err2str(m->err));
    } else {
        if (t->dlq)
            w->st.dlq++;
        else
            w->st.delivered++;
        sl_offsets_release(w->offsets, t->partition, t->gen, t->offset);
    }
    free(t);
}

/* ---- producing ---- */

static void pause_all(sl_worker_t *w) {
    if (!w->paused && w->assigned && w->assigned->cnt > 0)
        rd_kafka_pause_partitions(w->consumer, w->assigned);
    w->paused = 1;
}

void sl_worker_resume_all(sl_worker_t *w) {
    if (w->paused && w->assigned && w->assigned->cnt > 0)
        rd_kafka_resume_partitions(w->consumer, w->assigned);
    w->paused = 0;
}

static int stash_push(sl_worker_t *w, rd_kafka_message_t *m) {
    if (w->nstash == w->stash_cap) {
        size_t cap = w->stash_cap ? w->stash_cap * 2 : 64;
        rd_kafka_message_t **s = realloc(w->stash, cap * sizeof *s);
        if (!s) {
            rd_kafka_message_destroy(m);
            sl_worker_fatal(w, "out of memory", "message stash");
            return -1;
        }
        w->stash = s;
        w->stash_cap = cap;
    }
    w->stash[w->nstash++] = m;
    return 0;
}

/* Keeps the group membership alive while a full producer queue blocks us:
 * fetching is paused, so this mostly serves heartbeat-related callbacks. */
static void nested_consumer_poll(sl_worker_t *w) {
    w->last_consumer_poll_ms = sl_now_ms();
    for (int i = 0; i < 1000; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 0);
        if (!m || stash_push(w, m) != 0)
            return;
    }
}

/* Produces one message; on a full queue waits (polling, fetching paused),
 * never drops. Headers pass to librdkafka on success and stay the caller's
 * on failure. */
static int produce(sl_worker_t *w, rd_kafka_topic_t *rkt, const rd_kafka_message_t *in,
                   const void *value, size_t len, rd_kafka_headers_t *hdrs, ticket_t *t) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            w->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(in->key, in->key_len),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(t),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            w->in_flight++;
            return 0;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            sl_worker_fatal(w, "cannot produce", rd_kafka_err2str(err));
            return -1;
        }
        pause_all(w);
        rd_kafka_poll(w->producer, POLL_MS);
        if (w->obs.heartbeat) /* waiting on the broker is backpressure, not a hang */
            w->obs.heartbeat(w->obs.opaque, sl_now_ms());
        if (w->fatal)
            return -1;
        if (sl_now_ms() - w->last_consumer_poll_ms >= NESTED_POLL_MS)
            nested_consumer_poll(w);
    }
}

static rd_kafka_headers_t *source_headers(const inmsg_t *m, const char *topic, const char *error) {
    char part[24], off[24];
    snprintf(part, sizeof part, "%d", (int)m->partition);
    snprintf(off, sizeof off, "%lld", (long long)m->offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "error", -1, error, -1);
    rd_kafka_header_add(h, "source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "source.partition", -1, part, -1);
    rd_kafka_header_add(h, "source.offset", -1, off, -1);
    return h;
}

/* Produces the output of slot i: a prediction for a good sample; for the
 * first bad sample of a message, the message's original bytes to the DLQ. */
int sl_worker_emit_slot(sl_worker_t *w, size_t i, uint64_t version, uint64_t step) {
    sl_slot_view_t v;
    sl_batch_slot(w->batch, i, &v);
    inmsg_t *m = &w->msgs[v.tag];
    rd_kafka_topic_t *rkt;
    rd_kafka_headers_t *h;
    const void *value;
    size_t len;
    if (v.good && !w->out_rkt) {
        w->st.samples++; /* a trainer without --output-topic: predicted, not produced */
        return 0;
    }
    if (v.good) {
        sl_buf_reset(&w->enc);
        sl_err_t err =
            sl_encode_prediction(&w->enc, v.id, v.id_len, w->c.decode.head,
                                 w->pred + v.row * w->out_dim, w->out_dim, version, step);
        if (err != SL_OK) {
            sl_worker_fatal(w, "cannot encode prediction", sl_err_str(err));
            return -1;
        }
        if (version != w->version_cached || !w->version_text[0]) {
            snprintf(w->version_text, sizeof w->version_text, "%llu", (unsigned long long)version);
            w->version_cached = version;
        }
        h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, "model.version", -1, w->version_text, -1);
        rkt = w->out_rkt;
        value = w->enc.data;
        len = w->enc.len;
        w->st.samples++;
    } else {
        w->st.bad++;
        sl_worker_log_rl(w, &w->bad_log, "bad sample", v.error, m->partition, m->offset);
        if (m->dlq_handled || !w->dlq_rkt) {
            m->dlq_handled = 1;
            return 0;
        }
        m->dlq_handled = 1;
        h = source_headers(m, w->input_topic, v.error);
        rkt = w->dlq_rkt;
        value = m->rkm->payload;
        len = m->rkm->len;
    }
    ticket_t *t = malloc(sizeof *t);
    if (!t) {
        rd_kafka_headers_destroy(h);
        sl_worker_fatal(w, "out of memory", "output ticket");
        return -1;
    }
    *t = (ticket_t){m->partition, m->offset, m->gen, !v.good};
    if (sl_offsets_hold(w->offsets, m->partition, m->gen, m->offset) != SL_OK) {
        /* Cannot happen: the message is tracked until its step hold is released below. */
        free(t);
        rd_kafka_headers_destroy(h);
        sl_worker_fatal(w, "internal error", "output for an untracked message");
        return -1;
    }
    if (produce(w, rkt, m->rkm, value, len, h, t) != 0) {
        sl_offsets_release(w->offsets, m->partition, m->gen, m->offset);
        free(t);
        rd_kafka_headers_destroy(h);
        return -1;
    }
    return 0;
}

void sl_worker_drop_stash(sl_worker_t *w, int32_t p) {
    size_t k = 0;
    for (size_t i = 0; i < w->nstash; i++) {
        if (p < 0 || w->stash[i]->partition == p)
            rd_kafka_message_destroy(w->stash[i]);
        else
            w->stash[k++] = w->stash[i];
    }
    w->nstash = k;
}

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
    sl_worker_status_t st = {
        .messages = w->st.messages,
        .samples = w->st.samples,
        .delivered = w->st.delivered,
        .bad = w->st.bad,
        .dlq = w->st.dlq,
        .batches = w->st.batches,
        .version = w->hooks.version ? w->hooks.version(w->hooks.opaque) : 0,
        .step = c.step,
        .trained = c.samples,
        .trained_here = w->trained_here,
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
    int redis_ok = 1;
    uint64_t failed = 0;
    char last[256] = "";
    if (w->hooks.health)
        w->hooks.health(w->hooks.opaque, &redis_ok, &failed, last, sizeof last);
    sl_field_t f[17] = {
        SL_DBL("samples_per_s", secs > 0 ? (double)(w->st.samples - w->stats_samples) / secs : 0),
        SL_I64("lag", consumer_lag(w)),
        SL_DBL("window_loss", win.loss),
        SL_DBL("window_accuracy", win.accuracy),
        SL_U64("step", c.step),
        SL_U64("version", w->hooks.version ? w->hooks.version(w->hooks.opaque) : 0),
        SL_U64("samples", w->st.samples),
        SL_U64("bad", w->st.bad),
        SL_U64("dlq", w->st.dlq),
        SL_U64("refused_steps", w->st.refused),
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
    w->stats_samples = w->st.samples;
    w->last_stats_ms = now;
}
