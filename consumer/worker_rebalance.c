/* worker_rebalance.c - partitions coming and going: assignments (start
 * offsets from the hooks), revocations (settle, snapshot hook, final commit)
 * and rewinds after a rollback. */
#include <stdlib.h>
#include <string.h>

#include "consumer/worker_internal.h"

void sl_worker_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
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
        if (!w->pending_rb)
            sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "deferred rebalance");
        return;
    }
    sl_worker_handle_rebalance(w, err, parts);
}

void sl_worker_settle(sl_worker_t *w) {
    if (w->err != SL_OK)
        return;
    sl_worker_run_batch(w);
    if (w->err == SL_OK && sl_worker_drain(w, (int)w->c.settle_timeout_ms) == SL_ERR_STATE)
        sl_log(SL_LOG_WARN,
               "outputs still undelivered after the settle timeout; their offsets "
               "stay uncommitted",
               SL_U64("in_flight", w->in_flight));
}

static void do_revoke(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    sl_worker_settle(w);
    if (w->hooks.on_revoke && w->err == SL_OK) {
        int32_t *revoked = malloc(((size_t)parts->cnt + 1) * sizeof *revoked);
        if (!revoked) {
            sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "revoke");
        } else {
            for (int i = 0; i < parts->cnt; i++)
                revoked[i] = parts->elems[i].partition;
            size_t n = sl_worker_trained_table(w);
            sl_worker_hook_result(w, "on_revoke",
                                  w->hooks.on_revoke(w->hooks.opaque, w, w->learner, w->table, n,
                                                     revoked, (size_t)parts->cnt));
            free(revoked);
        }
    }
    sl_worker_commit(w, 1);
    for (int i = 0; i < parts->cnt; i++) {
        sl_offsets_remove_partition(w->offsets, parts->elems[i].partition);
        sl_worker_drop_stash(w, parts->elems[i].partition);
    }
    w->paused = 0;
    rd_kafka_resp_err_t err = rd_kafka_assign(w->consumer, NULL);
    if (err)
        sl_worker_fatal(w, SL_ERR_KAFKA, "cannot give up the revoked partitions",
                        rd_kafka_err2str(err));
    rd_kafka_topic_partition_list_t *none = rd_kafka_topic_partition_list_new(0);
    if (none) {
        rd_kafka_topic_partition_list_destroy(w->assigned);
        w->assigned = none;
    } else {
        w->assigned->cnt = 0; /* the list keeps its room; nothing is assigned */
    }
    sl_log(SL_LOG_INFO, "partitions revoked", SL_I64("count", parts->cnt));
    sl_worker_report(w);
}

static void do_assign(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts) {
    size_t n = (size_t)parts->cnt;
    int32_t *ids = calloc(n + 1, sizeof *ids);
    int64_t *offs = calloc(n + 1, sizeof *offs);
    rd_kafka_topic_partition_list_t *copy = NULL;
    if (!ids || !offs) {
        sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "assign");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t p = parts->elems[i].partition;
        ids[i] = p;
        offs[i] = SL_OFFSET_NONE;
        pstate_t *ps = sl_worker_pstate(w, p);
        if (!ps || sl_offsets_add_partition(w->offsets, p) == 0) {
            sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "assign");
            goto out;
        }
        ps->consumed = -1;
        ps->committed = SL_OFFSET_NONE;
        ps->in_ticket = -1;
    }
    if (w->hooks.on_assign &&
        sl_worker_hook_result(w, "on_assign",
                              w->hooks.on_assign(w->hooks.opaque, w, w->input_topic, ids, n, offs)))
        goto out;
    for (size_t i = 0; i < n; i++)
        parts->elems[i].offset = offs[i];
    if (!w->has_hooks || w->c.predict_only)
        sl_worker_resend_unsent(w, parts, offs);
    copy = rd_kafka_topic_partition_list_copy(parts);
    if (!copy) {
        sl_worker_fatal(w, SL_ERR_NOMEM, "out of memory", "assign");
        goto out;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(w->consumer, parts);
    if (err) {
        sl_worker_fatal(w, SL_ERR_KAFKA, "cannot assign partitions", rd_kafka_err2str(err));
        goto out;
    }
    rd_kafka_topic_partition_list_destroy(w->assigned);
    w->assigned = copy;
    copy = NULL;
    w->paused = 0;
    sl_log(SL_LOG_INFO, "partitions assigned", SL_STR("topic", w->input_topic),
           SL_I64("count", parts->cnt));
    sl_worker_report(w);
out:
    if (copy)
        rd_kafka_topic_partition_list_destroy(copy);
    free(ids);
    free(offs);
}

void sl_worker_handle_rebalance(sl_worker_t *w, rd_kafka_resp_err_t type,
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

/* ---- rewinds ---- */

static int same_arch(const sl_model_config_t *a, const sl_model_config_t *b) {
    if (a->head != b->head || a->dim != b->dim || a->n_hidden != b->n_hidden ||
        (a->head == SL_HEAD_SOFTMAX && a->classes != b->classes))
        return 0;
    for (uint32_t i = 0; i < a->n_hidden; i++)
        if (a->hidden[i] != b->hidden[i])
            return 0;
    return a->n_hidden == 0 || a->activation == b->activation;
}

/* Moves the assigned ones of rewind[0..n) to their offsets. Partition state
 * changes only after the seek succeeded: on failure nothing changed. */
static sl_err_t rewind_partitions(sl_worker_t *w, const sl_partoff_t *rewind, size_t n) {
    sl_err_t err = sl_worker_drain(w, (int)w->c.settle_timeout_ms);
    if (err != SL_OK)
        return err;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
    if (!l)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        int32_t p = rewind[i].partition;
        if (sl_offsets_generation(w->offsets, p) != 0) /* assigned here */
            rd_kafka_topic_partition_list_add(l, w->input_topic, p)->offset = rewind[i].offset;
    }
    rd_kafka_error_t *e = l->cnt ? rd_kafka_seek_partitions(w->consumer, l, 10000) : NULL;
    if (e) {
        sl_log(SL_LOG_ERROR, "cannot rewind", SL_STR("error", rd_kafka_error_string(e)));
        rd_kafka_error_destroy(e);
        rd_kafka_topic_partition_list_destroy(l);
        return SL_ERR_KAFKA;
    }
    for (int i = 0; i < l->cnt; i++) {
        int32_t p = l->elems[i].partition;
        /* assigned, so tracked and with state: neither call allocates */
        if (sl_offsets_add_partition(w->offsets, p) == 0)
            sl_worker_fatal(w, SL_ERR_STATE, "internal error", "rewind of an untracked partition");
        sl_worker_drop_stash(w, p);
        w->ps[p].consumed = -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    /* every listed partition forgets what was trained, durable and committed */
    for (size_t i = 0; i < n; i++) {
        pstate_t *ps = rewind[i].partition >= 0 && (size_t)rewind[i].partition < w->nps
                           ? &w->ps[rewind[i].partition]
                           : NULL;
        if (ps)
            ps->trained = ps->durable = ps->committed = SL_OFFSET_NONE;
    }
    return w->err;
}

sl_err_t sl_worker_replace_learner(sl_worker_t *w, sl_learner_t *learner,
                                   const sl_partoff_t *rewind, size_t n) {
    if (!same_arch(sl_model_config(sl_learner_model(w->learner)),
                   sl_model_config(sl_learner_model(learner))))
        return SL_ERR_MISMATCH;
    if (rewind && n > 0) {
        sl_err_t err = rewind_partitions(w, rewind, n);
        if (err != SL_OK)
            return err;
    }
    sl_runner_set_learner(w->runner, learner); /* same architecture: cannot fail */
    sl_learner_destroy(w->learner);
    w->learner = learner;
    return SL_OK;
}
