/* kafka_env.c - in-process Kafka test environment (see kafka_env.h). */

#include "kafka_env.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "model/learner.h"

struct sl_kreader {
    rd_kafka_t *rk;
};

sl_kenv_t *sl_kenv_new(int brokers, const char *topics) {
    char errstr[512];
    sl_kenv_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->dev = sl_devkafka_new(brokers, errstr, sizeof errstr);
    if (!e->dev || sl_devkafka_create_topics(e->dev, topics, errstr, sizeof errstr) != SL_OK) {
        fprintf(stderr, "kafka_env: %s\n", errstr);
        sl_kenv_destroy(e);
        return NULL;
    }
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", sl_devkafka_bootstraps(e->dev), NULL, 0);
    rd_kafka_conf_set(c, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(c, "linger.ms", "1", NULL, 0);
    e->producer = rd_kafka_new(RD_KAFKA_PRODUCER, c, errstr, sizeof errstr);
    if (!e->producer) {
        fprintf(stderr, "kafka_env: producer: %s\n", errstr);
        rd_kafka_conf_destroy(c);
        sl_kenv_destroy(e);
        return NULL;
    }
    return e;
}

void sl_kenv_destroy(sl_kenv_t *e) {
    if (!e)
        return;
    if (e->producer) {
        rd_kafka_flush(e->producer, 5000);
        rd_kafka_destroy(e->producer);
    }
    sl_devkafka_destroy(e->dev);
    free(e);
}

const char *sl_kenv_bootstraps(sl_kenv_t *e) {
    return sl_devkafka_bootstraps(e->dev);
}

int sl_kenv_produce(sl_kenv_t *e, const char *topic, const char *key, const void *value,
                    size_t len) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            e->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_END);
        if (!err)
            return 0;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return -1;
        rd_kafka_poll(e->producer, 100);
    }
}

int sl_kenv_flush(sl_kenv_t *e, int timeout_ms) {
    return rd_kafka_flush(e->producer, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static rd_kafka_t *plain_consumer(sl_kenv_t *e, const char *group) {
    char errstr[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_conf_set(c, "bootstrap.servers", sl_devkafka_bootstraps(e->dev), NULL, 0);
    rd_kafka_conf_set(c, "group.id", group, NULL, 0);
    rd_kafka_conf_set(c, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka_env: consumer: %s\n", errstr);
        rd_kafka_conf_destroy(c);
    }
    return rk;
}

sl_kreader_t *sl_kreader_new(sl_kenv_t *e, const char *topic) {
    sl_kreader_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->rk = plain_consumer(e, "kafka-env-reader");
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = r->rk ? rd_kafka_topic_new(r->rk, topic, NULL) : NULL;
    if (!rkt || rd_kafka_metadata(r->rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
        md->topics[0].partition_cnt < 1) {
        fprintf(stderr, "kafka_env: no metadata for topic %s\n", topic);
        if (md)
            rd_kafka_metadata_destroy(md);
        if (rkt)
            rd_kafka_topic_destroy(rkt);
        sl_kreader_destroy(r);
        return NULL;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(l, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(r->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

void sl_kreader_destroy(sl_kreader_t *r) {
    if (!r)
        return;
    if (r->rk) {
        rd_kafka_consumer_close(r->rk);
        rd_kafka_destroy(r->rk);
    }
    free(r);
}

size_t sl_kreader_poll(sl_kreader_t *r, int timeout_ms,
                       void (*fn)(void *arg, const rd_kafka_message_t *m), void *arg) {
    size_t n = 0;
    uint64_t deadline = sl_now_ms() + (uint64_t)timeout_ms;
    while (sl_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 50);
        if (!m)
            continue;
        if (!m->err) {
            fn(arg, m);
            n++;
        }
        rd_kafka_message_destroy(m);
    }
    return n;
}

int64_t sl_kenv_committed(sl_kenv_t *e, const char *group, const char *topic, int32_t partition) {
    rd_kafka_t *rk = plain_consumer(e, group);
    if (!rk)
        return RD_KAFKA_OFFSET_INVALID;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition);
    int64_t off = RD_KAFKA_OFFSET_INVALID;
    if (rd_kafka_committed(rk, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && !l->elems[0].err)
        off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return off;
}

static void *worker_main(void *arg) {
    sl_kworker_t *kw = arg;
    kw->rc = sl_worker_run(kw->w);
    return NULL;
}

int sl_kworker_start(sl_kworker_t *kw, sl_kenv_t *e, const char *group, const char *in,
                     const char *out, const char *dlq, uint32_t dim, uint32_t batch,
                     const sl_worker_hooks_t *hooks) {
    static const sl_kconf_prop_t props[] = {
        {"consumer.heartbeat.interval.ms", "500"},
        {"consumer.session.timeout.ms", "6000"},
        {"reconnect.backoff.max.ms", "500"},
    };
    char errstr[512];
    memset(kw, 0, sizeof *kw);
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = dim};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    oc.lr = 0.05;
    sl_learner_t *l = sl_learner_new(&mc, &oc, 1, 0, errstr, sizeof errstr);
    if (!l) {
        fprintf(stderr, "kafka_env: learner: %s\n", errstr);
        return -1;
    }
    sl_worker_config_t c = {.brokers = sl_kenv_bootstraps(e),
                            .group = group,
                            .input_topic = in,
                            .output_topic = out,
                            .dlq_topic = dlq,
                            .props = props,
                            .nprops = sizeof props / sizeof props[0],
                            .batch_size = batch,
                            .linger_ms = 20,
                            .stats_interval_ms = 0,
                            .commit_interval_ms = 200,
                            .decode = {.dim = dim, .head = SL_HEAD_LOGISTIC},
                            .hooks = hooks};
    if (sl_worker_new(&c, l, &kw->w, errstr, sizeof errstr) != SL_OK) {
        fprintf(stderr, "kafka_env: worker: %s\n", errstr);
        sl_learner_destroy(l);
        return -1;
    }
    if (pthread_create(&kw->thread, NULL, worker_main, kw) != 0) {
        sl_worker_destroy(kw->w);
        kw->w = NULL;
        return -1;
    }
    kw->running = 1;
    return 0;
}

sl_err_t sl_kworker_stop(sl_kworker_t *kw) {
    if (kw->running) {
        sl_worker_stop(kw->w);
        pthread_join(kw->thread, NULL);
        kw->running = 0;
    }
    return kw->rc;
}

void sl_kworker_free(sl_kworker_t *kw) {
    sl_kworker_stop(kw);
    sl_worker_destroy(kw->w);
    kw->w = NULL;
}
