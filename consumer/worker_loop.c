/* worker_loop.c - the worker's poll loop: messages in from the consumer
 * queue (or the stash), decoded into the batch, run through the batch runner
 * when the batch is full or has lingered, and the periodic work between. */
#include <stdlib.h>
#include <string.h>

#include "consumer/worker_internal.h"

void sl_worker_drop_batch(sl_worker_t *w) {
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i].rkm);
    w->nmsgs = 0;
    if (w->batch)
        sl_batch_clear(w->batch);
}

int sl_worker_stash_push(sl_worker_t *w, rd_kafka_message_t *m) {
    if (w->stash_head > 0 && w->stash_head == w->nstash)
        w->stash_head = w->nstash = 0;
    if (w->nstash == w->stash_cap) {
        size_t cap = w->stash_cap ? w->stash_cap * 2 : 64;
        rd_kafka_message_t **s = realloc(w->stash, cap * sizeof *s);
        if (!s) {
            rd_kafka_message_destroy(m);
            sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "message stash");
            return -1;
        }
        w->stash = s;
        w->stash_cap = cap;
    }
    w->stash[w->nstash++] = m;
    return 0;
}

void sl_worker_drop_stash(sl_worker_t *w, int32_t p) {
    size_t k = 0;
    for (size_t i = w->stash_head; i < w->nstash; i++) {
        if (p < 0 || w->stash[i]->partition == p)
            rd_kafka_message_destroy(w->stash[i]);
        else
            w->stash[k++] = w->stash[i];
    }
    w->stash_head = 0;
    w->nstash = k;
}

/* The batch's emitted outputs are queued; mark its messages trained, free
 * them and drop the batch's own ticket reference. */
static void close_batch(sl_worker_t *w, ticket_t *t) {
    for (size_t i = 0; i < t->n; i++) {
        pstate_t *ps = &w->ps[t->parts[i].partition];
        ps->trained = t->parts[i].offset + 1;
        ps->in_ticket = -1;
    }
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i].rkm);
    w->nmsgs = 0;
    sl_worker_ticket_unref(w, t);
}

int sl_worker_run_batch(sl_worker_t *w) {
    if (w->nmsgs == 0 || w->err != SL_OK)
        return w->err != SL_OK ? -1 : 0;
    ticket_t *t = sl_worker_ticket_open(w);
    if (!t)
        return -1;
    uint64_t steps_before = sl_runner_counts(w->runner).steps;
    w->cur = t;
    w->cur_version = w->hooks.version ? w->hooks.version(w->hooks.opaque) : 0;
    w->in_batch = 1;
    char why[256] = "";
    sl_err_t err = sl_runner_run(w->runner, w->batch, 1, sl_worker_emit, w, why, sizeof why);
    w->in_batch = 0;
    w->cur = NULL;
    if (err != SL_OK) {
        /* the ticket keeps its reference: these offsets never become done */
        sl_worker_fatal(w, err, "batch failed", why[0] ? why : sl_err_str(err));
        sl_worker_drop_batch(w);
        return -1;
    }
    close_batch(w, t);
    rd_kafka_poll(w->producer, 0); /* delivery reports, once per batch */
    sl_worker_resume_all(w);
    uint64_t steps = sl_runner_counts(w->runner).steps;
    if (steps > steps_before && w->hooks.on_batch_done) {
        size_t n = sl_worker_trained_table(w);
        if (sl_worker_hook_result(
                w, "on_batch_done",
                w->hooks.on_batch_done(w->hooks.opaque, w, w->learner, w->table, n, steps)) != 0)
            return -1;
    }
    if (w->pending_rb) {
        rd_kafka_topic_partition_list_t *parts = w->pending_rb;
        w->pending_rb = NULL;
        sl_worker_handle_rebalance(w, w->pending_rb_type, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return w->err != SL_OK ? -1 : 0;
}

/* Takes one consumed message into the batch (ownership passes). */
static int add_message(sl_worker_t *w, rd_kafka_message_t *rkm, uint64_t now) {
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            sl_worker_log_rl(w, &w->err_log, "consumer error", rd_kafka_message_errstr(rkm),
                             rkm->partition, rkm->offset);
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    int32_t p = rkm->partition;
    if (sl_offsets_generation(w->offsets, p) == 0 || (size_t)p >= w->nps) {
        rd_kafka_message_destroy(rkm); /* a partition no longer ours */
        return 0;
    }
    pstate_t *ps = &w->ps[p];
    if (rkm->offset <= ps->consumed) {
        /* librdkafka delivers a partition in order; a rewind re-adds it */
        sl_worker_log_rl(w, &w->err_log, "message out of order, skipped",
                         "offset not above the last", p, rkm->offset);
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    if (w->nmsgs == w->msgs_cap) {
        size_t cap = w->msgs_cap ? w->msgs_cap * 2 : 256;
        inmsg_t *m = realloc(w->msgs, cap * sizeof *m);
        if (!m) {
            rd_kafka_message_destroy(rkm);
            sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "batch messages");
            return -1;
        }
        w->msgs = m;
        w->msgs_cap = cap;
    }
    size_t idx = w->nmsgs++;
    w->msgs[idx] = (inmsg_t){rkm, 0};
    ps->consumed = rkm->offset;
    w->st.messages++;
    if (idx == 0)
        w->batch_open_ms = now;
    static const uint8_t empty[1] = {0};
    sl_decode_result_t dr;
    sl_err_t err = sl_decode_message(w->decoder, rkm->payload ? rkm->payload : empty, rkm->len, idx,
                                     w->batch, &dr);
    if (err != SL_OK) {
        sl_worker_fatal(w, err, "cannot decode", sl_err_str(err));
        return -1;
    }
    if (sl_batch_rows(w->batch) >= w->c.batch_size || w->nmsgs >= 4 * (size_t)w->c.batch_size)
        return sl_worker_run_batch(w);
    return 0;
}

static void periodic(sl_worker_t *w, uint64_t now) {
    if (now - w->last_commit_ms >= w->c.commit_interval_ms) {
        sl_worker_commit(w, 0);
        w->last_commit_ms = now;
    }
    if (w->c.stats_interval_ms && now - w->last_stats_ms >= w->c.stats_interval_ms)
        sl_worker_log_stats(w, now);
    if (now - w->last_tick_ms >= TICK_MS) {
        w->tick_due = 1;
        w->last_tick_ms = now;
        sl_worker_report(w);
    }
    if (w->tick_due && w->nmsgs == 0 && w->hooks.on_tick) {
        w->tick_due = 0;
        size_t n = sl_worker_trained_table(w);
        sl_worker_hook_result(w, "on_tick",
                              w->hooks.on_tick(w->hooks.opaque, w, w->learner, w->table, n));
    }
}

/* Messages into w->fetched: the stash first, else what the consumer queue
 * holds now, else what arrives until the batch in hand is due. A consume
 * call returns only once it has as many messages as it asked for (or at its
 * timeout), so the waiting call asks for one message when no batch is open
 * (its linger starts when that message arrives) and for the rows the open
 * batch misses otherwise (it runs once full, not at the next fetch's worth).
 * One clock read per call, two when it waited. */
static size_t fetch(sl_worker_t *w, uint64_t *now) {
    size_t n = 0;
    *now = sl_now_ms();
    if (w->stash_head < w->nstash) {
        while (n < w->fetch_cap && w->stash_head < w->nstash)
            w->fetched[n++] = w->stash[w->stash_head++];
        return n;
    }
    w->last_consumer_poll_ms = *now;
    ssize_t got = rd_kafka_consume_batch_queue(w->cq, 0, w->fetched, w->fetch_cap);
    if (got > 0)
        return (size_t)got;
    int timeout = POLL_MS;
    size_t want = 1;
    if (w->nmsgs > 0) {
        uint64_t age = *now - w->batch_open_ms;
        timeout = age >= w->c.linger_ms ? 0 : (int)(w->c.linger_ms - age);
        if (timeout > POLL_MS)
            timeout = POLL_MS;
        size_t rows = sl_batch_rows(w->batch);
        want = rows < w->c.batch_size ? w->c.batch_size - rows : 1;
        if (want > w->fetch_cap)
            want = w->fetch_cap;
    }
    if (timeout == 0)
        return 0;
    got = rd_kafka_consume_batch_queue(w->cq, timeout, w->fetched, want);
    *now = sl_now_ms(); /* the call may have waited */
    return got > 0 ? (size_t)got : 0;
}

int sl_worker_poll_once(sl_worker_t *w) {
    uint64_t now;
    size_t n = fetch(w, &now);
    if (w->obs.heartbeat)
        w->obs.heartbeat(w->obs.opaque, now);
    if (n == 0)
        rd_kafka_poll(w->producer, 0); /* idle: serve delivery reports */
    size_t i = 0;
    for (; i < n && w->err == SL_OK; i++)
        if (add_message(w, w->fetched[i], now) != 0) {
            i++;
            break;
        }
    for (; i < n; i++) /* after a failure */
        rd_kafka_message_destroy(w->fetched[i]);
    if (w->err == SL_OK && w->nmsgs > 0 && now - w->batch_open_ms >= w->c.linger_ms &&
        sl_worker_run_batch(w) != 0)
        return -1;
    if (w->err == SL_OK)
        periodic(w, now);
    return w->err != SL_OK ? -1 : 0;
}
