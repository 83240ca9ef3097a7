/* devkafka.h - an embedded Kafka-protocol cluster (librdkafka's mock cluster) for
 * development and tests: loopback only, random ports, no TLS/SASL, ~5 MB kept
 * per partition. */
#ifndef SL_DEVKAFKA_H
#define SL_DEVKAFKA_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "common/err.h"

/* Partitions of a topic named without ":N" in a topic list. */
#define SL_DEVKAFKA_DEFAULT_PARTITIONS 4

typedef struct sl_devkafka sl_devkafka_t;

/* Starts a cluster of `brokers` (1..16) brokers on loopback, served by
 * librdkafka's threads until sl_devkafka_destroy. Returns NULL with errstr on
 * a bad count or when librdkafka cannot start it. */
sl_devkafka_t *sl_devkafka_new(int brokers, char *errstr, size_t errstr_size);

/* Stops the cluster and frees it; NULL is a no-op. Clients still connected
 * see their connections drop. */
void sl_devkafka_destroy(sl_devkafka_t *d);

/* Creates topic `name` with `partitions` (1..10000) partitions. SL_ERR_INVAL
 * (with errstr) for a bad name or count, SL_ERR_KAFKA when the cluster
 * refuses (e.g. the topic exists), with librdkafka's reason. */
sl_err_t sl_devkafka_create_topic(sl_devkafka_t *d, const char *name, int partitions, char *errstr,
                                  size_t errstr_size);

/* Creates every topic of a list "NAME[:PARTITIONS],..." (an empty or NULL
 * list creates none). Stops at the first error, naming the item. */
sl_err_t sl_devkafka_create_topics(sl_devkafka_t *d, const char *list, char *errstr,
                                   size_t errstr_size);

/* The bootstrap address list, "127.0.0.1:PORT,..."; owned by d, valid for its life. */
const char *sl_devkafka_bootstraps(const sl_devkafka_t *d);

/* The mock cluster, for fault injection in tests (rd_kafka_mock_broker_set_down,
 * rd_kafka_mock_push_request_errors, ...). Owned by d. Broker ids are 1..brokers. */
rd_kafka_mock_cluster_t *sl_devkafka_mock(sl_devkafka_t *d);

#endif
