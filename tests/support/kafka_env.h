/* kafka_env.h - test helpers around an in-process dev cluster: produce, read
 * topics from the beginning, run a worker in a thread. */
#ifndef SL_TEST_KAFKA_ENV_H
#define SL_TEST_KAFKA_ENV_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "consumer/devkafka.h"
#include "consumer/worker.h"

typedef struct sl_kenv {
    sl_devkafka_t *dev;
    rd_kafka_t *producer; /* idempotent */
} sl_kenv_t;

/* Starts a cluster of `brokers` with the topics of `topics` ("a:4,b:1") and
 * a producer. NULL on failure (message on stderr). Free with sl_kenv_destroy. */
sl_kenv_t *sl_kenv_new(int brokers, const char *topics);
void sl_kenv_destroy(sl_kenv_t *e);
const char *sl_kenv_bootstraps(sl_kenv_t *e);

/* Queues one message (copied); key may be NULL. Returns 0 or -1. */
int sl_kenv_produce(sl_kenv_t *e, const char *topic, const char *key, const void *value,
                    size_t len);
/* Waits until every queued message is delivered; 0 on success, -1 on timeout. */
int sl_kenv_flush(sl_kenv_t *e, int timeout_ms);

/* Reads a topic from the beginning of every partition, without a group. */
typedef struct sl_kreader sl_kreader_t;
sl_kreader_t *sl_kreader_new(sl_kenv_t *e, const char *topic);
void sl_kreader_destroy(sl_kreader_t *r);
/* Polls for up to timeout_ms, calling fn for each message read; returns the
 * number read in this call. */
size_t sl_kreader_poll(sl_kreader_t *r, int timeout_ms,
                       void (*fn)(void *arg, const rd_kafka_message_t *m), void *arg);

/* Next committed offset of `group` on topic/partition (RD_KAFKA_OFFSET_INVALID if none). */
int64_t sl_kenv_committed(sl_kenv_t *e, const char *group, const char *topic, int32_t partition);

/* A worker running sl_worker_run in its own thread. */
typedef struct sl_kworker {
    sl_worker_t *w;
    pthread_t thread;
    sl_err_t rc; /* sl_worker_run's result */
    int running;
} sl_kworker_t;

/* Test settings: a logistic model on `dim` features, Adam, batches of
 * `batch` samples, heartbeat 500 ms / session 6 s so rebalances settle in
 * seconds. hooks may be NULL. Returns 0 or -1 (message on stderr). */
int sl_kworker_start(sl_kworker_t *kw, sl_kenv_t *e, const char *group, const char *in,
                     const char *out, const char *dlq, uint32_t dim, uint32_t batch,
                     const sl_worker_hooks_t *hooks);
/* Stops, joins and returns sl_worker_run's result (SL_OK after a clean
 * stop); the worker stays for inspection until sl_kworker_free. */
sl_err_t sl_kworker_stop(sl_kworker_t *kw);
void sl_kworker_free(sl_kworker_t *kw);

#endif
