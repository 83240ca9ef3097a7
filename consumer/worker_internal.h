/* worker_internal.h - the worker's state and the functions its two files
 * share: worker.c (the loop, batches, offsets, rebalances) and worker_out.c
 * (producing outputs, delivery reports, status and stats). */
#ifndef SL_WORKER_INTERNAL_H
#define SL_WORKER_INTERNAL_H

#include <stdatomic.h>

#include "common/buf.h"
#include "common/log.h"
#include "consumer/batch.h"
#include "consumer/worker.h"

#define POLL_MS 100
#define TICK_MS 200
#define NESTED_POLL_MS 500
#define DEFAULT_COMMIT_MS 1000
#define DEFAULT_SETTLE_MS 60000

/* One consumed message of the batch in hand. Slots of the batch carry its index as tag. */
typedef struct inmsg {
    rd_kafka_message_t *rkm;
    int32_t partition;
    int64_t offset;
    uint32_t gen;
    int dlq_handled; /* its first bad sample was dealt with (DLQ copy or count) */
} inmsg_t;

/* Per input partition, indexed by partition id. */
typedef struct pstate {
    int64_t trained;   /* next offset after the last trained message; SL_OFFSET_NONE */
    int64_t durable;   /* from the hooks; SL_OFFSET_NONE */
    int64_t committed; /* last committed by us; SL_OFFSET_NONE */
    int64_t unsent;    /* a final commit the coordinator refused (mid-rebalance); SL_OFFSET_NONE */
    int64_t consumed;  /* last consumed offset, -1 before any */
} pstate_t;

/* The opaque of one produced output: which input message it answers. */
typedef struct ticket {
    int32_t partition;
    int64_t offset;
    uint32_t gen;
    int dlq;
} ticket_t;

struct sl_worker {
    sl_worker_config_t c;
    sl_worker_hooks_t hooks;
    int has_hooks;
    sl_worker_observer_t obs;
    uint64_t trained_here; /* labelled samples in steps applied here */
    char *input_topic, *output_topic, *dlq_topic;
    rd_kafka_t *consumer, *producer;
    rd_kafka_topic_t *out_rkt, *dlq_rkt;
    sl_learner_t *learner;
    sl_decoder_t *decoder;
    sl_batch_t *batch;
    float *pred;
    uint32_t out_dim;
    sl_buf_t enc;
    char version_text[24]; /* the model.version header value of `version_cached` */
    uint64_t version_cached;
    uint32_t since_producer_poll; /* messages since the last rd_kafka_poll of the producer */
    inmsg_t *msgs;
    size_t nmsgs, msgs_cap;
    uint64_t batch_open_ms;
    sl_offsets_t *offsets;
    pstate_t *ps;
    size_t nps;
    sl_partoff_t *table; /* scratch for hook tables */
    rd_kafka_topic_partition_list_t *assigned;
    rd_kafka_message_t **stash; /* consumed while producing was blocked */
    size_t nstash, stash_cap;
    rd_kafka_topic_partition_list_t *pending_rb;
    rd_kafka_resp_err_t pending_rb_type;
    atomic_int stop;
    int fatal;
    int in_batch, paused, tick_due;
    int ran; /* sl_worker_run was called: the consumer was subscribed and closed */
    uint64_t in_flight;
    uint64_t last_commit_ms, last_stats_ms, last_tick_ms, last_consumer_poll_ms;
    uint64_t stats_samples;
    sl_worker_stats_t st;
    sl_ratelimit_t bad_log, err_log;
};

/* --- worker.c --- */

/* Marks the worker failed (it stops with exit status 1); logs the first cause only. */
void sl_worker_fatal(sl_worker_t *w, const char *what, const char *why);
/* A rate-limited warning about the input topic. */
void sl_worker_log_rl(sl_worker_t *w, sl_ratelimit_t *rl, const char *msg, const char *error,
                      int32_t partition, int64_t offset);

/* --- worker_out.c --- */

/* The producer's delivery report: releases the output's offset hold. */
void sl_worker_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* Resumes fetching after a full producer queue paused it. */
void sl_worker_resume_all(sl_worker_t *w);
/* Produces the output of batch slot i (a prediction, or a bad sample's DLQ
 * copy); on a full queue waits without dropping. Returns 0, or -1 after
 * marking the worker failed. */
int sl_worker_emit_slot(sl_worker_t *w, size_t i, uint64_t version, uint64_t step);
/* Frees stashed messages of partition p (every partition when p < 0). */
void sl_worker_drop_stash(sl_worker_t *w, int32_t p);
/* Publishes the status to the observer (if any). */
void sl_worker_report(sl_worker_t *w);
/* Logs the periodic stats line. */
void sl_worker_log_stats(sl_worker_t *w, uint64_t now);

#endif
