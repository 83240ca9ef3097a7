/* worker_out.c - what leaves the worker: predictions and dead letters,
 * produced with the batch's ticket as opaque (never dropped on a full
 * queue: fetching pauses instead), and their delivery reports. */
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
        t->failed = 1;
        sl_worker_fatal(w, SL_ERR_KAFKA,
                        "output could not be delivered; its input offset stays uncommitted",
                        rd_kafka_err2str(m->err));
    } else if (m->rkt && m->rkt == w->dlq_rkt) {
        w->st.dlq++;
    } else {
        w->st.delivered++;
    }
    sl_worker_ticket_unref(w, t);
}

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

/* Keeps the group membership alive while a full producer queue blocks us:
 * fetching is paused, so this mostly serves heartbeat-related callbacks. */
static void nested_consumer_poll(sl_worker_t *w) {
    w->last_consumer_poll_ms = sl_now_ms();
    for (int i = 0; i < 1000; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 0);
        if (!m || sl_worker_stash_push(w, m) != 0)
            return;
    }
}

/* Produces one message; on a full queue waits (polling, fetching paused),
 * never drops. Headers pass to librdkafka on success and stay the caller's
 * on failure. */
static sl_err_t produce(sl_worker_t *w, rd_kafka_topic_t *rkt, const rd_kafka_message_t *in,
                        const void *value, size_t len, rd_kafka_headers_t *hdrs) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            w->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(in->key, in->key_len),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE(w->cur), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            w->in_flight++;
            w->cur->refs++;
            return SL_OK;
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            sl_worker_fatal(w, SL_ERR_KAFKA, "cannot produce", rd_kafka_err2str(err));
            return SL_ERR_KAFKA;
        }
        pause_all(w);
        rd_kafka_poll(w->producer, POLL_MS);
        if (w->obs.heartbeat) /* waiting on the broker is backpressure, not a hang */
            w->obs.heartbeat(w->obs.opaque, sl_now_ms());
        if (w->err != SL_OK)
            return w->err;
        if (sl_now_ms() - w->last_consumer_poll_ms >= NESTED_POLL_MS)
            nested_consumer_poll(w);
    }
}

static rd_kafka_headers_t *source_headers(const rd_kafka_message_t *m, const char *topic,
                                          const char *error) {
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

/* The prediction of a good sample. */
static sl_err_t emit_prediction(sl_worker_t *w, const sl_runner_item_t *it, inmsg_t *m) {
    if (!w->out_rkt)
        return SL_OK; /* a trainer without --output-topic: predicted, not produced */
    sl_buf_reset(&w->enc);
    sl_err_t err = sl_encode_prediction(&w->enc, it->slot.id, it->slot.id_len, w->c.decode.head,
                                        it->out, it->out_dim, w->cur_version, it->step);
    if (err != SL_OK) {
        sl_worker_fatal(w, err, "cannot encode prediction", sl_err_str(err));
        return err;
    }
    if (w->cur_version != w->version_cached || !w->version_text[0]) {
        snprintf(w->version_text, sizeof w->version_text, "%llu",
                 (unsigned long long)w->cur_version);
        w->version_cached = w->cur_version;
    }
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "model.version", 13, w->version_text, -1);
    err = produce(w, w->out_rkt, m->rkm, w->enc.data, w->enc.len, h);
    if (err != SL_OK)
        rd_kafka_headers_destroy(h);
    return err;
}

/* A bad sample: counted and logged; the first of its message sends the
 * message's original bytes to the DLQ. */
static sl_err_t emit_bad(sl_worker_t *w, const sl_runner_item_t *it, inmsg_t *m) {
    const rd_kafka_message_t *rkm = m->rkm;
    sl_worker_log_rl(w, &w->bad_log, "bad sample", it->slot.error, rkm->partition, rkm->offset);
    int first = !m->dlq_handled;
    m->dlq_handled = 1;
    if (!first || !w->dlq_rkt)
        return SL_OK;
    rd_kafka_headers_t *h = source_headers(rkm, w->input_topic, it->slot.error);
    sl_err_t err = produce(w, w->dlq_rkt, rkm, rkm->payload, rkm->len, h);
    if (err != SL_OK)
        rd_kafka_headers_destroy(h);
    return err;
}

sl_err_t sl_worker_emit(void *opaque, const sl_runner_item_t *it) {
    sl_worker_t *w = opaque;
    inmsg_t *m = &w->msgs[it->slot.tag];
    return it->slot.good ? emit_prediction(w, it, m) : emit_bad(w, it, m);
}
