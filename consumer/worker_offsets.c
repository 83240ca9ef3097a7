/* worker_offsets.c - the worker's offset bookkeeping: a ticket per batch
 * holds its messages' offsets until every output is delivered; per partition
 * the trained, durable and committed offsets; commits never pass what is
 * done, nor (with hooks) what is durable. */
#include <stdlib.h>
#include <string.h>

#include "consumer/worker_internal.h"

pstate_t *sl_worker_pstate(sl_worker_t *w, int32_t p) {
    if (p < 0)
        return NULL;
    if ((size_t)p >= w->nps) {
        size_t n = (size_t)p + 1;
        pstate_t *ps = realloc(w->ps, n * sizeof *ps);
        if (ps)
            w->ps = ps;
        sl_partoff_t *t = realloc(w->table, n * sizeof *t);
        if (t)
            w->table = t;
        if (!ps || !t)
            return NULL;
        for (size_t i = w->nps; i < n; i++)
            ps[i] = (pstate_t){.trained = SL_OFFSET_NONE,
                               .durable = SL_OFFSET_NONE,
                               .committed = SL_OFFSET_NONE,
                               .unsent = SL_OFFSET_NONE,
                               .consumed = -1,
                               .in_ticket = -1};
        w->nps = n;
    }
    return &w->ps[p];
}

size_t sl_worker_trained_table(sl_worker_t *w) {
    size_t n = 0;
    for (size_t p = 0; p < w->nps; p++)
        if (w->ps[p].trained != SL_OFFSET_NONE)
            w->table[n++] = (sl_partoff_t){(int32_t)p, w->ps[p].trained};
    return n;
}

void sl_worker_set_durable(sl_worker_t *w, const sl_partoff_t *durable, size_t n) {
    for (size_t i = 0; i < n; i++) {
        pstate_t *ps = sl_worker_pstate(w, durable[i].partition);
        if (ps)
            ps->durable = durable[i].offset;
    }
}

/* ---- batch tickets ---- */

static ticket_t *ticket_get(sl_worker_t *w) {
    ticket_t *t = w->free_tickets;
    if (t) {
        w->free_tickets = t->next_free;
        t->next_free = NULL;
        return t;
    }
    if (w->ntickets == w->tickets_cap) {
        size_t cap = w->tickets_cap ? w->tickets_cap * 2 : 16;
        ticket_t **all = realloc(w->tickets, cap * sizeof *all);
        if (!all)
            return NULL;
        w->tickets = all;
        w->tickets_cap = cap;
    }
    t = calloc(1, sizeof *t);
    if (t)
        w->tickets[w->ntickets++] = t;
    return t;
}

static void ticket_put(sl_worker_t *w, ticket_t *t) {
    t->n = 0;
    t->refs = 0;
    t->failed = 0;
    t->next_free = w->free_tickets;
    w->free_tickets = t;
}

void sl_worker_tickets_free(sl_worker_t *w) {
    for (size_t i = 0; i < w->ntickets; i++) {
        free(w->tickets[i]->parts);
        free(w->tickets[i]);
    }
    free(w->tickets);
    w->tickets = NULL;
    w->free_tickets = NULL;
    w->ntickets = w->tickets_cap = 0;
}

/* Gives up a half-built ticket: its tracked entries are forgotten with
 * their partitions only, so fail the worker (nothing past them commits). */
static ticket_t *ticket_fail(sl_worker_t *w, ticket_t *t, sl_err_t err, const char *why) {
    for (size_t i = 0; i < t->n; i++)
        w->ps[t->parts[i].partition].in_ticket = -1;
    t->failed = 1;
    ticket_put(w, t);
    sl_worker_fatal(w, err, "cannot account the batch's offsets", why);
    return NULL;
}

ticket_t *sl_worker_ticket_open(sl_worker_t *w) {
    ticket_t *t = ticket_get(w);
    if (!t) {
        sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "batch ticket");
        return NULL;
    }
    for (size_t i = 0; i < w->nmsgs; i++) {
        const rd_kafka_message_t *m = w->msgs[i].rkm;
        pstate_t *ps = &w->ps[m->partition]; /* add_message checked it exists */
        if (ps->in_ticket >= 0) {
            t->parts[ps->in_ticket].offset = m->offset; /* in order within a partition */
            continue;
        }
        if (t->n == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            ticket_part_t *parts = realloc(t->parts, cap * sizeof *parts);
            if (!parts)
                return ticket_fail(w, t, SL_ERR_NOMEM, "out of memory");
            t->parts = parts;
            t->cap = cap;
        }
        ps->in_ticket = (int32_t)t->n;
        t->parts[t->n++] = (ticket_part_t){
            m->partition, sl_offsets_generation(w->offsets, m->partition), m->offset};
    }
    for (size_t i = 0; i < t->n; i++) {
        sl_err_t err = sl_offsets_track(w->offsets, t->parts[i].partition, t->parts[i].offset);
        if (err != SL_OK) /* NOMEM; INVAL/STATE cannot happen: add_message checked the order */
            return ticket_fail(w, t, err, sl_err_str(err));
    }
    t->seq = w->ticket_seq++;
    t->refs = 1;
    return t;
}

void sl_worker_ticket_unref(sl_worker_t *w, ticket_t *t) {
    if (--t->refs > 0)
        return;
    if (!t->failed)
        for (size_t i = 0; i < t->n; i++) /* STATE for a partition revoked meanwhile: fine */
            sl_offsets_release(w->offsets, t->parts[i].partition, t->parts[i].gen,
                               t->parts[i].offset);
    ticket_put(w, t);
}

uint64_t sl_worker_output_mark(const sl_worker_t *w) {
    return w->ticket_seq;
}

int sl_worker_delivered(const sl_worker_t *w, uint64_t mark) {
    if (w->err != SL_OK)
        return 0;
    for (size_t i = 0; i < w->ntickets; i++) /* the pool: as many as batches ever in flight */
        if (w->tickets[i]->refs > 0 && w->tickets[i]->seq < mark)
            return 0;
    return 1;
}

/* ---- commits ---- */

void sl_worker_commit(sl_worker_t *w, int sync) {
    if (!w->assigned || w->assigned->cnt == 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(w->assigned->cnt);
    for (int i = 0; i < w->assigned->cnt; i++) {
        int32_t p = w->assigned->elems[i].partition;
        int64_t next = sl_offsets_committable(w->offsets, p);
        if (next == SL_OFFSET_NONE)
            continue;
        if (w->has_hooks && !w->c.predict_only) {
            int64_t d = w->ps[p].durable;
            if (d == SL_OFFSET_NONE)
                continue;
            if (d < next)
                next = d;
        }
        if (!sync && next <= w->ps[p].committed)
            continue;
        rd_kafka_topic_partition_list_add(l, w->input_topic, p)->offset = next;
        w->ps[p].committed = next;
    }
    if (l->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(w->consumer, l, !sync);
        w->st.commits++;
        if (err)
            sl_worker_log_rl(w, &w->err_log, "offset commit failed", rd_kafka_err2str(err), -1, -1);
        /* A refused commit is tried again: an async one at the next turn
         * (committed rolls back), a final one after the next assignment
         * (librdkafka's mock refuses commits while the group is joining;
         * Kafka itself accepts them then). */
        for (int i = 0; i < l->cnt; i++) {
            pstate_t *ps = &w->ps[l->elems[i].partition];
            int refused = err || l->elems[i].err;
            if (refused && !sync)
                ps->committed = SL_OFFSET_NONE;
            if (sync)
                ps->unsent = refused ? l->elems[i].offset : SL_OFFSET_NONE;
        }
    }
    rd_kafka_topic_partition_list_destroy(l);
}

void sl_worker_resend_unsent(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts,
                             const int64_t *offs) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
    for (size_t p = 0; p < w->nps; p++) {
        if (w->ps[p].unsent == SL_OFFSET_NONE)
            continue;
        rd_kafka_topic_partition_list_add(l, w->input_topic, (int32_t)p)->offset = w->ps[p].unsent;
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].partition == (int32_t)p && offs[i] == SL_OFFSET_NONE)
                parts->elems[i].offset = w->ps[p].unsent;
        w->ps[p].unsent = SL_OFFSET_NONE;
    }
    if (l->cnt > 0 && rd_kafka_commit(w->consumer, l, 0))
        sl_worker_log_rl(w, &w->err_log, "offset commit failed again after the rebalance", "", -1,
                         -1);
    rd_kafka_topic_partition_list_destroy(l);
}

void sl_worker_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)rk;
    sl_worker_t *w = opaque;
    if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    sl_worker_log_rl(w, &w->err_log, "offset commit failed", rd_kafka_err2str(err), -1, -1);
    /* commit those again at the next turn */
    for (int i = 0; offsets && i < offsets->cnt; i++) {
        int32_t p = offsets->elems[i].partition;
        if (p >= 0 && (size_t)p < w->nps && w->ps[p].committed == offsets->elems[i].offset)
            w->ps[p].committed = SL_OFFSET_NONE;
    }
}

sl_err_t sl_worker_drain(sl_worker_t *w, int timeout_ms) {
    uint64_t deadline = sl_now_ms() + (uint64_t)timeout_ms;
    while (w->in_flight > 0 && w->err == SL_OK) {
        if (sl_now_ms() >= deadline)
            return SL_ERR_STATE;
        rd_kafka_poll(w->producer, 50);
        if (w->obs.heartbeat) /* waiting on the broker is backpressure, not a hang */
            w->obs.heartbeat(w->obs.opaque, sl_now_ms());
    }
    return w->err != SL_OK ? SL_ERR_KAFKA : SL_OK;
}
