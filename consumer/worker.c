/* worker.c - the worker's life: construction from the config, sl_worker_run's
 * start and orderly stop, and the fatal cause it returns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/worker_internal.h"

void sl_worker_fatal(sl_worker_t *w, sl_err_t err, const char *what, const char *why) {
    if (w->err != SL_OK)
        return;
    w->err = err != SL_OK ? err : SL_ERR_STATE;
    sl_errstr_set(w->errstr, sizeof w->errstr, "%s: %s", what, why);
    sl_log(SL_LOG_ERROR, what, SL_STR("error", why));
}

void sl_worker_fail(sl_worker_t *w, sl_err_t err, const char *fmt, ...) {
    if (w->err != SL_OK)
        return;
    char why[sizeof w->errstr];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    w->err = err != SL_OK ? err : SL_ERR_STATE;
    snprintf(w->errstr, sizeof w->errstr, "%s", why);
    sl_log(SL_LOG_ERROR, "worker failing", SL_STR("error", why));
}

int sl_worker_hook_result(sl_worker_t *w, const char *hook, sl_err_t err) {
    if (err == SL_OK)
        return 0;
    sl_worker_fatal(w, err, "snapshot hook failed", hook); /* keeps a cause the hook gave */
    return -1;
}

void sl_worker_log_rl(sl_worker_t *w, sl_ratelimit_t *rl, const char *msg, const char *error,
                      int32_t partition, int64_t offset) {
    uint64_t suppressed = 0;
    if (sl_ratelimit_allow(rl, sl_now_ms(), &suppressed))
        sl_log(SL_LOG_WARN, msg, SL_STR("error", error), SL_STR("topic", w->input_topic),
               SL_I64("partition", partition), SL_I64("offset", offset),
               SL_U64("suppressed", suppressed));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    sl_worker_t *w = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        sl_worker_fatal(w, SL_ERR_KAFKA, "fatal Kafka error", why);
    } else if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION) {
        sl_worker_fatal(w, SL_ERR_KAFKA, "Kafka authentication failed", reason);
    } else {
        sl_worker_log_rl(w, &w->err_log, "Kafka client error", reason, -1, -1);
    }
}

/* Leaves the group and flushes, after the final commit. */
static void shut_down(sl_worker_t *w) {
    sl_worker_drop_batch(w);
    sl_worker_drop_stash(w, -1);
    /* revokes through the callback (which commits again), then leaves */
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(w->consumer);
    if (err)
        sl_log(SL_LOG_WARN, "leaving the consumer group failed; the coordinator will time us out",
               SL_STR("error", rd_kafka_err2str(err)));
    sl_worker_drop_stash(w, -1);
    err = rd_kafka_flush(w->producer, FLUSH_TIMEOUT_MS);
    if (err)
        sl_worker_fatal(w, SL_ERR_KAFKA,
                        "outputs not delivered at stop; their offsets stay uncommitted",
                        rd_kafka_err2str(err));
}

sl_err_t sl_worker_run(sl_worker_t *w) {
    w->ran = 1;
    rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, w->input_topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(w->consumer, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (err) {
        char why[300];
        snprintf(why, sizeof why, "topic %s: %s", w->input_topic, rd_kafka_err2str(err));
        sl_worker_fatal(w, SL_ERR_KAFKA, "cannot subscribe", why);
        return w->err;
    }
    sl_log(SL_LOG_INFO, "worker started", SL_STR("input_topic", w->input_topic),
           SL_STR("output_topic", w->output_topic ? w->output_topic : ""),
           SL_BOOL("predict_only", w->c.predict_only),
           SL_STR("dlq_topic", w->dlq_topic ? w->dlq_topic : ""), SL_STR("group", w->c.group));
    uint64_t now = sl_now_ms();
    w->last_commit_ms = w->last_stats_ms = w->last_tick_ms = now;
    while (!atomic_load(&w->stop) && w->err == SL_OK)
        if (sl_worker_poll_once(w) != 0)
            break;
    sl_worker_settle(w);
    if (w->hooks.on_stop && w->err == SL_OK) {
        size_t n = sl_worker_trained_table(w);
        sl_worker_hook_result(w, "on_stop",
                              w->hooks.on_stop(w->hooks.opaque, w, w->learner, w->table, n));
    }
    sl_worker_commit(w, 1);
    shut_down(w);
    if (w->c.stats_interval_ms)
        sl_worker_log_stats(w, sl_now_ms());
    sl_worker_report(w);
    sl_worker_stats_t st = sl_worker_stats(w);
    sl_log(w->err ? SL_LOG_ERROR : SL_LOG_INFO, "worker stopped", SL_U64("messages", st.messages),
           SL_U64("samples", st.samples), SL_U64("delivered", st.delivered), SL_U64("bad", st.bad),
           SL_U64("dlq", st.dlq), SL_U64("batches", st.batches),
           SL_STR("error", w->err ? w->errstr : ""));
    return w->err;
}

void sl_worker_stop(sl_worker_t *w) {
    atomic_store(&w->stop, 1);
}

const char *sl_worker_error(const sl_worker_t *w) {
    return w->errstr;
}

sl_worker_stats_t sl_worker_stats(const sl_worker_t *w) {
    sl_worker_stats_t st = w->st;
    sl_runner_counts_t n = sl_runner_counts(w->runner);
    st.samples = n.predicted;
    st.bad = n.bad;
    st.batches = n.steps;
    st.refused = n.refused;
    st.trained = n.labelled;
    return st;
}

const sl_learner_t *sl_worker_learner(const sl_worker_t *w) {
    return w->learner;
}

/* ---- construction ---- */

static sl_err_t new_client(sl_worker_t *w, sl_kconf_role_t role, rd_kafka_t **out, char *errstr,
                           size_t errstr_size) {
    sl_kconf_spec_t spec = {w->c.brokers, w->c.group, w->c.props, w->c.nprops};
    rd_kafka_conf_t *conf = sl_kconf_build(&spec, role, errstr, errstr_size);
    if (!conf)
        return SL_ERR_INVAL;
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (role == SL_KCONF_CONSUMER) {
        rd_kafka_conf_set_rebalance_cb(conf, sl_worker_rebalance_cb);
        rd_kafka_conf_set_offset_commit_cb(conf, sl_worker_commit_cb);
    } else {
        rd_kafka_conf_set_dr_msg_cb(conf, sl_worker_dr_cb);
    }
    char why[512];
    *out = rd_kafka_new(role == SL_KCONF_CONSUMER ? RD_KAFKA_CONSUMER : RD_KAFKA_PRODUCER, conf,
                        why, sizeof why);
    if (!*out) {
        rd_kafka_conf_destroy(conf);
        /* Cross-property checks happen here; librdkafka's text names the property. */
        sl_errstr_set(errstr, errstr_size, "kafka configuration (%s): %s",
                      role == SL_KCONF_CONSUMER ? "consumer" : "producer", why);
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

static char *dup_topic(const char *t) {
    return t && *t ? strdup(t) : NULL;
}

/* Everything but the clients. */
static sl_err_t init_state(sl_worker_t *w, const sl_worker_config_t *c, sl_learner_t *learner,
                           char *errstr, size_t errstr_size) {
    w->input_topic = strdup(c->input_topic);
    w->output_topic = dup_topic(c->output_topic);
    w->dlq_topic = dup_topic(c->dlq_topic);
    w->offsets = sl_offsets_new();
    w->assigned = rd_kafka_topic_partition_list_new(0);
    w->fetch_cap = c->batch_size < 1024 ? c->batch_size : 1024;
    w->fetched = malloc(w->fetch_cap * sizeof *w->fetched);
    w->batch = sl_batch_new(c->decode.dim, c->batch_size);
    if (!w->input_topic || (c->output_topic && *c->output_topic && !w->output_topic) ||
        (c->dlq_topic && *c->dlq_topic && !w->dlq_topic) || !w->offsets || !w->assigned ||
        !w->fetched || !w->batch) {
        sl_errstr_set(errstr, errstr_size, "worker: out of memory");
        return SL_ERR_NOMEM;
    }
    w->decoder = sl_decoder_new(&c->decode, errstr, errstr_size);
    if (!w->decoder)
        return SL_ERR_INVAL;
    sl_runner_config_t rc = {.batch_size = c->batch_size, .predict_only = c->predict_only};
    w->runner = sl_runner_new(&rc, learner, errstr, errstr_size);
    return w->runner ? SL_OK : SL_ERR_NOMEM;
}

sl_err_t sl_worker_new(const sl_worker_config_t *c, sl_learner_t *learner, sl_worker_t **out,
                       char *errstr, size_t errstr_size) {
    *out = NULL;
    if (!c->input_topic || !*c->input_topic) {
        sl_errstr_set(errstr, errstr_size, "--input-topic: required");
        return SL_ERR_INVAL;
    }
    if (c->batch_size == 0) {
        sl_errstr_set(errstr, errstr_size, "--batch-size: must be at least 1");
        return SL_ERR_INVAL;
    }
    sl_worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        sl_errstr_set(errstr, errstr_size, "worker: out of memory");
        return SL_ERR_NOMEM;
    }
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
    sl_err_t err = init_state(w, c, learner, errstr, errstr_size);
    if (err == SL_OK)
        err = new_client(w, SL_KCONF_PRODUCER, &w->producer, errstr, errstr_size);
    if (err == SL_OK)
        err = new_client(w, SL_KCONF_CONSUMER, &w->consumer, errstr, errstr_size);
    if (err != SL_OK)
        goto fail;
    rd_kafka_poll_set_consumer(w->consumer);
    w->cq = rd_kafka_queue_get_consumer(w->consumer);
    w->out_rkt = w->output_topic ? rd_kafka_topic_new(w->producer, w->output_topic, NULL) : NULL;
    w->dlq_rkt = w->dlq_topic ? rd_kafka_topic_new(w->producer, w->dlq_topic, NULL) : NULL;
    if (!w->cq || (w->output_topic && !w->out_rkt) || (w->dlq_topic && !w->dlq_rkt)) {
        sl_errstr_set(errstr, errstr_size, "cannot create topic handles: %s",
                      rd_kafka_err2str(rd_kafka_last_error()));
        err = SL_ERR_KAFKA;
        goto fail;
    }
    w->learner = learner;
    *out = w;
    return SL_OK;
fail:
    sl_worker_destroy(w);
    return err;
}

void sl_worker_destroy(sl_worker_t *w) {
    if (!w)
        return;
    /* librdkafka hangs in rd_kafka_destroy while its messages are held: free them first. */
    sl_worker_drop_batch(w);
    sl_worker_drop_stash(w, -1);
    if (w->pending_rb)
        rd_kafka_topic_partition_list_destroy(w->pending_rb);
    if (w->assigned)
        rd_kafka_topic_partition_list_destroy(w->assigned);
    if (w->out_rkt)
        rd_kafka_topic_destroy(w->out_rkt);
    if (w->dlq_rkt)
        rd_kafka_topic_destroy(w->dlq_rkt);
    if (w->cq)
        rd_kafka_queue_destroy(w->cq);
    if (w->consumer) /* never subscribed unless run, which closed it */
        rd_kafka_destroy_flags(w->consumer, w->ran ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    if (w->producer)
        rd_kafka_destroy(w->producer); /* before the tickets its queued messages point to */
    sl_worker_tickets_free(w);
    sl_learner_destroy(w->learner);
    sl_runner_destroy(w->runner);
    sl_decoder_destroy(w->decoder);
    sl_batch_destroy(w->batch);
    sl_offsets_destroy(w->offsets);
    sl_buf_free(&w->enc);
    free(w->fetched);
    free(w->msgs);
    free(w->stash);
    free(w->ps);
    free(w->table);
    free(w->input_topic);
    free(w->output_topic);
    free(w->dlq_topic);
    free(w);
}
