/* worker.c - the single-threaded poll loop around librdkafka: batches, the
 * test-then-train step, commits, rebalances (outputs: worker_out.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/worker_internal.h"

void sl_worker_fatal(sl_worker_t *w, const char *what, const char *why) {
    if (!w->fatal)
        sl_log(SL_LOG_ERROR, what, SL_STR("error", why));
    w->fatal = 1;
}

void sl_worker_log_rl(sl_worker_t *w, sl_ratelimit_t *rl, const char *msg, const char *error,
                      int32_t partition, int64_t offset) {
    uint64_t suppressed = 0;
    if (sl_ratelimit_allow(rl, sl_now_ms(), &suppressed))
        sl_log(SL_LOG_WARN, msg, SL_STR("error", error), SL_STR("topic", w->input_topic),
               SL_I64("partition", partition), SL_I64("offset", offset),
               SL_U64("suppressed", suppressed));
}

static pstate_t *pstate(sl_worker_t *w, int32_t p) {
    if (p < 0)
        return NULL;
    if ((size_t)p >= w->nps) {
        size_t n = (size_t)p + 1;
        pstate_t *ps = realloc(w->ps, n * sizeof *ps);
        sl_partoff_t *t = realloc(w->table, n * sizeof *t);
        if (ps)
            w->ps = ps;
        if (t)
            w->table = t;
        if (!ps || !t)
            return NULL;
        for (size_t i = w->nps; i < n; i++)
            ps[i] = (pstate_t){.trained = SL_OFFSET_NONE,
                               .durable = SL_OFFSET_NONE,
                               .committed = SL_OFFSET_NONE,
                               .unsent = SL_OFFSET_NONE,
                               .consumed = -1};
        w->nps = n;
    }
    return &w->ps[p];
}

/* The trained-offsets table handed to hooks. */
static size_t trained_table(sl_worker_t *w) {
    size_t n = 0;
    for (size_t p = 0; p < w->nps; p++)
        if (w->ps[p].trained != SL_OFFSET_NONE)
            w->table[n++] = (sl_partoff_t){(int32_t)p, w->ps[p].trained};
    return n;
}

/* ---- librdkafka callbacks ---- */

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    sl_worker_t *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        sl_worker_fatal(w, "fatal Kafka error", why);
    } else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        sl_worker_fatal(w, "Kafka authentication failed", reason);
    } else {
        sl_worker_log_rl(w, &w->err_log, "Kafka client error", reason, -1, -1);
    }
}

static void handle_rebalance(sl_worker_t *w, rd_kafka_resp_err_t type,
                             rd_kafka_topic_partition_list_t *parts);

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)rk;
    sl_worker_t *w = opaque;
    if (w->in_batch) {
        /* Called from the poll inside a blocked produce: finish the batch
         * first; librdkafka waits for our assign call. */
        if (w->pending_rb)
            rd_kafka_topic_partition_list_destroy(w->pending_rb);
        w->pending_rb = rd_kafka_topic_partition_list_copy(parts);
        w->pending_rb_type = err;
        return;
    }
    handle_rebalance(w, err, parts);
}

/* ---- batches ---- */

static void drop_batch(sl_worker_t *w) {
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i].rkm);
    w->nmsgs = 0;
    sl_batch_clear(w->batch);
}

static int call_hook_result(sl_worker_t *w, const char *hook, sl_err_t err) {
    if (err != SL_OK) {
        sl_worker_fatal(w, "snapshot hook failed", hook);
        return -1;
    }
    return 0;
}

/* A predictor's step: predictions from the current weights, nothing learnt. */
static sl_err_t forward_only(sl_worker_t *w, const sl_input_t *x, sl_batch_result_t *res) {
    sl_err_t err = sl_learner_predict(w->learner, x, w->pred);
    if (err != SL_OK)
        return err;
    *res = (sl_batch_result_t){.loss = 0};
    return SL_OK;
}

static int run_steps(sl_worker_t *w, uint64_t version) {
    while (sl_batch_rows(w->batch) > 0) {
        size_t n = sl_batch_rows(w->batch);
        if (n > w->c.batch_size)
            n = w->c.batch_size;
        uint64_t step = sl_learner_counters(w->learner).step;
        sl_input_t x;
        sl_targets_t t;
        sl_batch_result_t res;
        sl_batch_view(w->batch, 0, n, &x, &t);
        sl_err_t err = w->c.predict_only ? forward_only(w, &x, &res)
                                         : sl_learner_batch(w->learner, &x, &t, w->pred, &res);
        if (err != SL_OK) {
            sl_worker_fatal(w, "learning step failed", sl_err_str(err));
            return -1;
        }
        w->st.batches++;
        if (res.stepped)
            w->trained_here += res.n_labelled;
        if (res.refused) {
            w->st.refused++;
            sl_log(SL_LOG_WARN, "optimizer step refused: it would make weights non-finite",
                   SL_U64("step", step), SL_DBL("loss", res.loss));
        }
        size_t cut = sl_batch_cut(w->batch, n);
        for (size_t i = 0; i < cut; i++)
            if (sl_worker_emit_slot(w, i, version, step) != 0)
                return -1;
        sl_batch_shift(w->batch, n);
    }
    uint64_t step = sl_learner_counters(w->learner).step;
    for (size_t i = 0; i < sl_batch_slots(w->batch); i++) /* bad samples after the last row */
        if (sl_worker_emit_slot(w, i, version, step) != 0)
            return -1;
    sl_batch_clear(w->batch);
    return 0;
}

/* Runs everything in hand: steps of up to batch_size rows, outputs queued,
 * step holds released; then the batch-done hook. */
static int run_batch(sl_worker_t *w) {
    if (w->nmsgs == 0 || w->fatal)
        return w->fatal ? -1 : 0;
    uint64_t batches_before = w->st.batches;
    uint64_t version = w->hooks.version ? w->hooks.version(w->hooks.opaque) : 0;
    w->in_batch = 1;
    int rc = run_steps(w, version);
    w->in_batch = 0;
    if (rc != 0)
        return -1;
    for (size_t i = 0; i < w->nmsgs; i++) {
        inmsg_t *m = &w->msgs[i];
        w->ps[m->partition].trained = m->offset + 1;
        sl_offsets_release(w->offsets, m->partition, m->gen, m->offset);
        rd_kafka_message_destroy(m->rkm);
    }
    w->nmsgs = 0;
    sl_worker_resume_all(w);
    if (w->st.batches > batches_before && w->hooks.on_batch_done) {
        size_t n = trained_table(w);
        if (call_hook_result(w, "on_batch_done",
                             w->hooks.on_batch_done(w->hooks.opaque, w, w->learner, w->table, n,
                                                    w->st.batches)) != 0)
            return -1;
    }
    if (w->pending_rb) {
        rd_kafka_topic_partition_list_t *parts = w->pending_rb;
        w->pending_rb = NULL;
        handle_rebalance(w, w->pending_rb_type, parts);
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return w->fatal ? -1 : 0;
}

static int add_message(sl_worker_t *w, rd_kafka_message_t *rkm) {
    if (rkm->err) {
        if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            sl_worker_log_rl(w, &w->err_log, "consumer error", rd_kafka_message_errstr(rkm),
                             rkm->partition, rkm->offset);
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    int32_t p = rkm->partition;
    uint32_t gen = sl_offsets_generation(w->offsets, p);
    if (gen == 0) { /* a partition no longer ours */
        rd_kafka_message_destroy(rkm);
        return 0;
    }
    if (w->nmsgs == w->msgs_cap) {
        size_t cap = w->msgs_cap ? w->msgs_cap * 2 : 256;
        inmsg_t *m = realloc(w->msgs, cap * sizeof *m);
        if (!m) {
            rd_kafka_message_destroy(rkm);
            sl_worker_fatal(w, "out of memory", "batch messages");
            return -1;
        }
        w->msgs = m;
        w->msgs_cap = cap;
    }
    sl_err_t err = sl_offsets_track(w->offsets, p, rkm->offset);
    if (err != SL_OK) {
        sl_worker_log_rl(w, &w->err_log, "message out of order, skipped", sl_err_str(err), p,
                         rkm->offset);
        rd_kafka_message_destroy(rkm);
        return err == SL_ERR_NOMEM ? -1 : 0;
    }
    size_t idx = w->nmsgs++;
    w->msgs[idx] = (inmsg_t){rkm, p, rkm->offset, gen, 0};
    w->ps[p].consumed = rkm->offset;
    w->st.messages++;
    if (idx == 0)
        w->batch_open_ms = sl_now_ms();
    static const uint8_t empty[1] = {0};
    sl_decode_result_t dr;
    err = sl_decode_message(w->decoder, rkm->payload ? rkm->payload : empty, rkm->len, idx,
                            w->batch, &dr);
    if (err != SL_OK) {
        sl_worker_fatal(w, "cannot decode", sl_err_str(err));
        return -1;
    }
    if (sl_batch_rows(w->batch) >= w->c.batch_size || w->nmsgs >= 4 * (size_t)w->c.batch_size)
        return run_batch(w);
    return 0;
}

/* ---- offsets and rebalances ---- */

static void commit(sl_worker_t *w, int sync) {
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
        /* A refused final commit is kept and sent again after the next
         * assignment (librdkafka's mock refuses commits while the group is
         * joining; Kafka itself accepts them then). */
        for (int i = 0; sync && i < l->cnt; i++)
            w->ps[l->elems[i].partition].unsent =
                err || l->elems[i].err ? l->elems[i].offset : SL_OFFSET_NONE;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* After a rebalance, sends the final commits the coordinator refused during
 * it. Partitions assigned to us again start from those offsets. */
static void resend_unsent(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts,
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

static void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque) {
    (void)rk;
    (void)offsets;
    sl_worker_t *w = opaque;
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        sl_worker_log_rl(w, &w->err_log, "offset commit failed", rd_kafka_err2str(err), -1, -1);
}

sl_err_t sl_worker_drain(sl_worker_t *w, int timeout_ms) {
    uint64_t deadline = sl_now_ms() + (uint64_t)timeout_ms;
    while (w->in_flight > 0 && !w->fatal) {
        if (sl_now_ms() >= deadline)
            return SL_ERR_STATE;
        rd_kafka_poll(w->producer, 50);
        if (w->obs.heartbeat) /* waiting on the broker is backpressure, not a hang */
            w->obs.heartbeat(w->obs.opaque, sl_now_ms());
    }
    return w->fatal ? SL_ERR_KAFKA : SL_OK;
}

/* Runs the batch in hand and waits for its outputs, so every consumed
 * message is accounted for. */
static void settle(sl_worker_t *w) {
    if (w->fatal)
        return;
    run_batch(w);
    if (!w->fatal && sl_worker_drain(w, (int)w->c.settle_timeout_ms) == SL_ERR_STATE)
        sl_log(SL_LOG_WARN,
               "outputs still undelivered after the settle timeout; their offsets "
               "stay uncommitted",
               SL_U64("in_flight", w->in_flight));
}

static void do_revoke(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    settle(w);
    if (w->hooks.on_revoke && !w->fatal) {
        int32_t *revoked = malloc(((size_t)parts->cnt + 1) * sizeof *revoked);
        if (!revoked) {
            sl_worker_fatal(w, "out of memory", "revoke");
        } else {
            for (int i = 0; i < parts->cnt; i++)
                revoked[i] = parts->elems[i].partition;
            size_t n = trained_table(w);
            call_hook_result(w, "on_revoke",
                             w->hooks.on_revoke(w->hooks.opaque, w, w->learner, w->table, n,
                                                revoked, (size_t)parts->cnt));
            free(revoked);
        }
    }
    commit(w, 1);
    for (int i = 0; i < parts->cnt; i++) {
        sl_offsets_remove_partition(w->offsets, parts->elems[i].partition);
        sl_worker_drop_stash(w, parts->elems[i].partition);
    }
    w->paused = 0;
    rd_kafka_assign(w->consumer, NULL);
    rd_kafka_topic_partition_list_destroy(w->assigned);
    w->assigned = rd_kafka_topic_partition_list_new(0);
    sl_log(SL_LOG_INFO, "partitions revoked", SL_I64("count", parts->cnt));
    sl_worker_report(w);
}

static void do_assign(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    size_t n = (size_t)parts->cnt;
    int32_t *ids = calloc(n + 1, sizeof *ids);
    int64_t *offs = calloc(n + 1, sizeof *offs);
    if (!ids || !offs) {
        sl_worker_fatal(w, "out of memory", "assign");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t p = parts->elems[i].partition;
        ids[i] = p;
        offs[i] = SL_OFFSET_NONE;
        if (!pstate(w, p) || sl_offsets_add_partition(w->offsets, p) == 0) {
            sl_worker_fatal(w, "out of memory", "assign");
            goto out;
        }
        w->ps[p].consumed = -1;
        w->ps[p].committed = SL_OFFSET_NONE;
    }
    if (w->hooks.on_assign &&
        call_hook_result(w, "on_assign",
                         w->hooks.on_assign(w->hooks.opaque, w, w->input_topic, ids, n, offs)))
        goto out;
    for (size_t i = 0; i < n; i++)
        parts->elems[i].offset = offs[i];
    if (!w->has_hooks || w->c.predict_only)
        resend_unsent(w, parts, offs);
    rd_kafka_resp_err_t err = rd_kafka_assign(w->consumer, parts);
    if (err) {
        sl_worker_fatal(w, "cannot assign partitions", rd_kafka_err2str(err));
        goto out;
    }
    rd_kafka_topic_partition_list_destroy(w->assigned);
    w->assigned = rd_kafka_topic_partition_list_copy(parts);
    w->paused = 0;
    sl_log(SL_LOG_INFO, "partitions assigned", SL_STR("topic", w->input_topic),
           SL_I64("count", parts->cnt));
    sl_worker_report(w);
out:
    free(ids);
    free(offs);
}

static void handle_rebalance(sl_worker_t *w, rd_kafka_resp_err_t type,
                             rd_kafka_topic_partition_list_t *parts) {
    w->st.rebalances++;
    if (type == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        do_assign(w, parts);
    } else if (type == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        do_revoke(w, parts);
    } else {
        sl_worker_log_rl(w, &w->err_log, "rebalance failed", rd_kafka_err2str(type), -1, -1);
        do_revoke(w, parts);
    }
}

/* ---- hooks' calls ---- */

void sl_worker_set_durable(sl_worker_t *w, const sl_partoff_t *durable, size_t n) {
    for (size_t i = 0; i < n; i++) {
        pstate_t *ps = pstate(w, durable[i].partition);
        if (ps)
            ps->durable = durable[i].offset;
    }
}

static int same_arch(const sl_model_config_t *a, const sl_model_config_t *b) {
    if (a->head != b->head || a->dim != b->dim || a->n_hidden != b->n_hidden ||
        (a->head == SL_HEAD_SOFTMAX && a->classes != b->classes))
        return 0;
    for (uint32_t i = 0; i < a->n_hidden; i++)
        if (a->hidden[i] != b->hidden[i])
            return 0;
    return a->n_hidden == 0 || a->activation == b->activation;
}

sl_err_t sl_worker_replace_learner(sl_worker_t *w, sl_learner_t *learner,
                                   const sl_partoff_t *rewind, size_t n) {
    if (!same_arch(sl_model_config(sl_learner_model(w->learner)),
                   sl_model_config(sl_learner_model(learner))))
        return SL_ERR_MISMATCH;
    if (rewind && n > 0) {
        sl_err_t err = sl_worker_drain(w, (int)w->c.settle_timeout_ms);
        if (err != SL_OK)
            return err;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
        for (size_t i = 0; i < n; i++) {
            int32_t p = rewind[i].partition;
            pstate_t *ps = pstate(w, p);
            if (!ps) {
                rd_kafka_topic_partition_list_destroy(l);
                return SL_ERR_NOMEM;
            }
            ps->trained = ps->durable = ps->committed = SL_OFFSET_NONE;
            if (sl_offsets_generation(w->offsets, p) == 0)
                continue; /* not assigned here */
            sl_offsets_add_partition(w->offsets, p);
            sl_worker_drop_stash(w, p);
            rd_kafka_topic_partition_list_add(l, w->input_topic, p)->offset = rewind[i].offset;
        }
        rd_kafka_error_t *e = l->cnt ? rd_kafka_seek_partitions(w->consumer, l, 10000) : NULL;
        rd_kafka_topic_partition_list_destroy(l);
        if (e) {
            sl_log(SL_LOG_ERROR, "cannot rewind", SL_STR("error", rd_kafka_error_string(e)));
            rd_kafka_error_destroy(e);
            return SL_ERR_KAFKA;
        }
    }
    sl_learner_destroy(w->learner);
    w->learner = learner;
    return SL_OK;
}

/* ---- the loop ---- */

static void periodic(sl_worker_t *w, uint64_t now) {
    if (now - w->last_commit_ms >= w->c.commit_interval_ms) {
        commit(w, 0);
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
        size_t n = trained_table(w);
        call_hook_result(w, "on_tick",
                         w->hooks.on_tick(w->hooks.opaque, w, w->learner, w->table, n));
    }
}

/* Delivery reports are served every this many messages (and whenever the
 * consumer is idle): once per message cost more CPU than the learning step. */
#define PRODUCER_POLL_EVERY 64

static int poll_once(sl_worker_t *w) {
    rd_kafka_message_t *m = NULL;
    uint64_t now;
    if (w->nstash > 0) {
        m = w->stash[0];
        memmove(w->stash, w->stash + 1, (w->nstash - 1) * sizeof *w->stash);
        w->nstash--;
        now = sl_now_ms();
    } else {
        int timeout = POLL_MS;
        now = sl_now_ms();
        if (w->nmsgs > 0) {
            uint64_t age = now - w->batch_open_ms;
            timeout = age >= w->c.linger_ms ? 0 : (int)(w->c.linger_ms - age);
            if (timeout > POLL_MS)
                timeout = POLL_MS;
        }
        w->last_consumer_poll_ms = now;
        m = rd_kafka_consumer_poll(w->consumer, timeout);
        if (timeout > 0)
            now = sl_now_ms(); /* the poll may have waited */
    }
    if (w->obs.heartbeat)
        w->obs.heartbeat(w->obs.opaque, now);
    if (!m || ++w->since_producer_poll >= PRODUCER_POLL_EVERY) {
        rd_kafka_poll(w->producer, 0);
        w->since_producer_poll = 0;
    }
    if (m && add_message(w, m) != 0)
        return -1;
    if (w->nmsgs > 0 && now - w->batch_open_ms >= w->c.linger_ms && run_batch(w) != 0)
        return -1;
    periodic(w, now);
    return w->fatal ? -1 : 0;
}

int sl_worker_run(sl_worker_t *w) {
    w->ran = 1;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, w->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        sl_log(SL_LOG_ERROR, "cannot subscribe", SL_STR("topic", w->input_topic),
               SL_STR("error", rd_kafka_err2str(err)));
        return 1;
    }
    sl_log(SL_LOG_INFO, "worker started", SL_STR("input_topic", w->input_topic),
           SL_STR("output_topic", w->output_topic ? w->output_topic : ""),
           SL_BOOL("predict_only", w->c.predict_only),
           SL_STR("dlq_topic", w->dlq_topic ? w->dlq_topic : ""), SL_STR("group", w->c.group));
    uint64_t now = sl_now_ms();
    w->last_commit_ms = w->last_stats_ms = w->last_tick_ms = now;
    while (!atomic_load(&w->stop) && !w->fatal)
        if (poll_once(w) != 0)
            break;
    settle(w);
    if (w->hooks.on_stop && !w->fatal) {
        size_t n = trained_table(w);
        call_hook_result(w, "on_stop",
                         w->hooks.on_stop(w->hooks.opaque, w, w->learner, w->table, n));
    }
    commit(w, 1);
    drop_batch(w);
    sl_worker_drop_stash(w, -1);
    rd_kafka_consumer_close(w->consumer); /* revokes through the callback: commits again */
    sl_worker_drop_stash(w, -1);
    rd_kafka_flush(w->producer, 10000);
    if (w->c.stats_interval_ms)
        sl_worker_log_stats(w, sl_now_ms());
    sl_worker_report(w);
    sl_log(w->fatal ? SL_LOG_ERROR : SL_LOG_INFO, "worker stopped",
           SL_U64("messages", w->st.messages), SL_U64("samples", w->st.samples),
           SL_U64("delivered", w->st.delivered), SL_U64("bad", w->st.bad), SL_U64("dlq", w->st.dlq),
           SL_U64("batches", w->st.batches));
    return w->fatal ? 1 : 0;
}

void sl_worker_stop(sl_worker_t *w) {
    atomic_store(&w->stop, 1);
}

sl_worker_stats_t sl_worker_stats(const sl_worker_t *w) {
    return w->st;
}

const sl_learner_t *sl_worker_learner(const sl_worker_t *w) {
    return w->learner;
}

/* ---- construction ---- */

static rd_kafka_t *new_client(sl_worker_t *w, sl_kconf_role_t role, int *exit_code, char *errstr,
                              size_t errstr_size) {
    sl_kconf_spec_t spec = {w->c.brokers, w->c.group, w->c.props, w->c.nprops};
    rd_kafka_conf_t *conf = sl_kconf_build(&spec, role, errstr, errstr_size);
    if (!conf) {
        *exit_code = 2;
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (role == SL_KCONF_CONSUMER) {
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    } else {
        rd_kafka_conf_set_dr_msg_cb(conf, sl_worker_dr_cb);
    }
    char why[512];
    rd_kafka_t *rk = rd_kafka_new(role == SL_KCONF_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER,
                                  conf, why, sizeof why);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        /* Cross-property checks happen here; librdkafka's text names the property. */
        sl_errstr_set(errstr, errstr_size, "kafka configuration (%s): %s",
                      role == SL_KCONF_CONSUMER ? "consumer" : "producer", why);
        *exit_code = 2;
    }
    return rk;
}

sl_worker_t *sl_worker_new(const sl_worker_config_t *c, sl_learner_t *learner, int *exit_code,
                           char *errstr, size_t errstr_size) {
    *exit_code = 2;
    if (!c->input_topic || !*c->input_topic) {
        sl_errstr_set(errstr, errstr_size, "--input-topic: required");
        return NULL;
    }
    if (c->batch_size == 0) {
        sl_errstr_set(errstr, errstr_size, "--batch-size: must be at least 1");
        return NULL;
    }
    sl_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        goto nomem;
    w->c = *c;
    if (!w->c.commit_interval_ms)
        w->c.commit_interval_ms = DEFAULT_COMMIT_MS;
    if (!w->c.settle_timeout_ms)
        w->c.settle_timeout_ms = DEFAULT_SETTLE_MS;
    if (c->hooks) {
        w->hooks = *c->hooks;
        w->has_hooks = 1;
    }
    w->c.hooks = NULL;
    if (c->observer)
        w->obs = *c->observer;
    w->c.observer = NULL;
    w->bad_log = (sl_ratelimit_t){.interval_ms = 1000, .burst = 10};
    w->err_log = (sl_ratelimit_t){.interval_ms = 1000, .burst = 10};
    w->input_topic = strdup(c->input_topic);
    w->output_topic = c->output_topic && *c->output_topic ? strdup(c->output_topic) : NULL;
    w->dlq_topic = c->dlq_topic && *c->dlq_topic ? strdup(c->dlq_topic) : NULL;
    w->offsets = sl_offsets_new();
    w->assigned = rd_kafka_topic_partition_list_new(0);
    if (!w->input_topic || (c->output_topic && *c->output_topic && !w->output_topic) ||
        (c->dlq_topic && *c->dlq_topic && !w->dlq_topic) || !w->offsets || !w->assigned)
        goto nomem;
    w->decoder = sl_decoder_new(&c->decode, errstr, errstr_size);
    if (!w->decoder)
        goto fail;
    w->out_dim = sl_model_out_dim(sl_learner_model(learner));
    w->batch = sl_batch_new(c->decode.dim, c->batch_size);
    w->pred = malloc((size_t)c->batch_size * w->out_dim * sizeof *w->pred);
    if (!w->batch || !w->pred)
        goto nomem;
    w->producer = new_client(w, SL_KCONF_PRODUCER, exit_code, errstr, errstr_size);
    if (!w->producer)
        goto fail;
    w->consumer = new_client(w, SL_KCONF_CONSUMER, exit_code, errstr, errstr_size);
    if (!w->consumer)
        goto fail;
    rd_kafka_poll_set_consumer(w->consumer);
    w->out_rkt = w->output_topic ? rd_kafka_topic_new(w->producer, w->output_topic, NULL) : NULL;
    w->dlq_rkt = w->dlq_topic ? rd_kafka_topic_new(w->producer, w->dlq_topic, NULL) : NULL;
    if ((w->output_topic && !w->out_rkt) || (w->dlq_topic && !w->dlq_rkt)) {
        sl_errstr_set(errstr, errstr_size, "cannot create topic handles: %s",
                      rd_kafka_err2str(rd_kafka_last_error()));
        *exit_code = 1;
        goto fail;
    }
    w->learner = learner;
    return w;
nomem:
    sl_errstr_set(errstr, errstr_size, "out of memory");
    *exit_code = 1;
fail:
    sl_worker_destroy(w);
    return NULL;
}

void sl_worker_destroy(sl_worker_t *w) {
    if (!w)
        return;
    /* librdkafka hangs in rd_kafka_destroy while its messages are held: free them first. */
    for (size_t i = 0; i < w->nmsgs; i++)
        rd_kafka_message_destroy(w->msgs[i].rkm);
    sl_worker_drop_stash(w, -1);
    if (w->pending_rb)
        rd_kafka_topic_partition_list_destroy(w->pending_rb);
    if (w->assigned)
        rd_kafka_topic_partition_list_destroy(w->assigned);
    if (w->out_rkt)
        rd_kafka_topic_destroy(w->out_rkt);
    if (w->dlq_rkt)
        rd_kafka_topic_destroy(w->dlq_rkt);
    if (w->consumer) /* never subscribed unless run, which closed it */
        rd_kafka_destroy_flags(w->consumer, w->ran ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (w->producer)
        rd_kafka_destroy(w->producer);
    sl_learner_destroy(w->learner);
    sl_decoder_destroy(w->decoder);
    sl_batch_destroy(w->batch);
    sl_offsets_destroy(w->offsets);
    sl_buf_free(&w->enc);
    free(w->pred);
    free(w->msgs);
    free(w->stash);
    free(w->ps);
    free(w->table);
    free(w->input_topic);
    free(w->output_topic);
    free(w->dlq_topic);
    free(w);
}
