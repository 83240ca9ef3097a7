/* devkafka.c - the embedded mock cluster behind `dev-kafka` and `run --brokers embedded`. */

#include "devkafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/kconf.h"

#define MAX_BROKERS 16
#define MAX_PARTITIONS 10000

struct sl_devkafka {
    rd_kafka_t *rk; /* the handle that owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
};

sl_devkafka_t *sl_devkafka_new(int brokers, char *errstr, size_t errstr_size) {
    if (brokers < 1 || brokers > MAX_BROKERS) {
        sl_errstr_set(errstr, errstr_size, "--brokers: %d brokers: expected 1..%d", brokers,
                      MAX_BROKERS);
        return NULL;
    }
    sl_devkafka_t *d = calloc(1, sizeof *d);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char why[512];
    if (!d || !conf) {
        sl_errstr_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    sl_kconf_set_logger(conf);
    /* log_level 4: the cluster's own handle has no bootstrap.servers, which
     * librdkafka reports at notice level on start: not worth a line. */
    if (rd_kafka_conf_set(conf, "client.id", "streamlearn-dev-kafka", why, sizeof why) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", why, sizeof why) != RD_KAFKA_CONF_OK) {
        sl_errstr_set(errstr, errstr_size, "dev cluster: %s", why);
        goto fail;
    }
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!d->rk) {
        sl_errstr_set(errstr, errstr_size, "dev cluster: %s", why);
        goto fail;
    }
    conf = NULL;
    d->mc = rd_kafka_mock_cluster_new(d->rk, brokers);
    if (!d->mc) {
        sl_errstr_set(errstr, errstr_size, "dev cluster: librdkafka could not start %d brokers",
                      brokers);
        goto fail;
    }
    return d;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    sl_devkafka_destroy(d);
    return NULL;
}

void sl_devkafka_destroy(sl_devkafka_t *d) {
    if (!d)
        return;
    if (d->mc)
        rd_kafka_mock_cluster_destroy(d->mc);
    if (d->rk)
        rd_kafka_destroy(d->rk);
    free(d);
}

sl_err_t sl_devkafka_create_topic(sl_devkafka_t *d, const char *name, int partitions, char *errstr,
                                  size_t errstr_size) {
    if (!name || !*name || strlen(name) > 249) {
        sl_errstr_set(errstr, errstr_size, "topic name \"%s\": expected 1..249 characters",
                      name ? name : "");
        return SL_ERR_INVAL;
    }
    if (partitions < 1 || partitions > MAX_PARTITIONS) {
        sl_errstr_set(errstr, errstr_size, "topic %s: %d partitions: expected 1..%d", name,
                      partitions, MAX_PARTITIONS);
        return SL_ERR_INVAL;
    }
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(d->mc, name, partitions, 1);
    if (err) {
        sl_errstr_set(errstr, errstr_size, "topic %s: %s", name, rd_kafka_err2str(err));
        return SL_ERR_KAFKA;
    }
    return SL_OK;
}

sl_err_t sl_devkafka_create_topics(sl_devkafka_t *d, const char *list, char *errstr,
                                   size_t errstr_size) {
    if (!list)
        return SL_OK;
    char *copy = strdup(list), *save = NULL;
    if (!copy) {
        sl_errstr_set(errstr, errstr_size, "out of memory");
        return SL_ERR_NOMEM;
    }
    sl_err_t err = SL_OK;
    for (char *item = strtok_r(copy, ",", &save); item && err == SL_OK;
         item = strtok_r(NULL, ",", &save)) {
        int partitions = SL_DEVKAFKA_DEFAULT_PARTITIONS;
        char *colon = strrchr(item, ':');
        if (colon) {
            char *end = NULL;
            long n = strtol(colon + 1, &end, 10);
            if (end == colon + 1 || *end || n < 1 || n > MAX_PARTITIONS) {
                sl_errstr_set(errstr, errstr_size,
                              "--topics: \"%s\": expected NAME:PARTITIONS with 1..%d partitions",
                              item, MAX_PARTITIONS);
                err = SL_ERR_INVAL;
                break;
            }
            *colon = 0;
            partitions = (int)n;
        }
        char why[256];
        err = sl_devkafka_create_topic(d, item, partitions, why, sizeof why);
        if (err != SL_OK)
            sl_errstr_set(errstr, errstr_size, "--topics: %s", why);
    }
    free(copy);
    return err;
}

const char *sl_devkafka_bootstraps(const sl_devkafka_t *d) {
    return rd_kafka_mock_cluster_bootstraps(d->mc);
}

rd_kafka_mock_cluster_t *sl_devkafka_mock(sl_devkafka_t *d) {
    return d->mc;
}
