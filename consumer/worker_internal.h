/* worker_internal.h - the worker's state and what its files share:
 *   worker.c           construction, sl_worker_run's start and stop, the fatal cause
 *   worker_loop.c      the poll loop: messages in, batches through the runner
 *   worker_offsets.c   offset bookkeeping: batch tickets, trained/durable/committed, commits
 *   worker_rebalance.c assignments, revocations and rewinds
 *   worker_out.c       producing predictions and dead letters, delivery reports
 *   worker_stats.c     the status for observers and the periodic stats line */
#ifndef SL_WORKER_INTERNAL_H
#define SL_WORKER_INTERNAL_H

#include <stdatomic.h>

#include "common/buf.h"
#include "common/log.h"
#include "consumer/batch.h"
#include "consumer/runner.h"
#include "consumer/worker.h"

#define POLL_MS 100
#define TICK_MS 200
#define NESTED_POLL_MS 500
#define DEFAULT_COMMIT_MS 1000
#define DEFAULT_SETTLE_MS 60000
#define FLUSH_TIMEOUT_MS 10000

/* One consumed message of the batch in hand. Slots of the batch carry its index as tag. */
typedef struct inmsg {
    rd_kafka_message_t *rkm;
    int dlq_handled; /* its first bad sample was dealt with (DLQ copy or count) */
} inmsg_t;

/* Per input partition, indexed by partition id. */
typedef struct pstate {
    int64_t trained;   /* next offset after the last trained message; SL_OFFSET_NONE */
    int64_t durable;   /* from the hooks; SL_OFFSET_NONE */
    int64_t committed; /* last committed by us; SL_OFFSET_NONE */
    int64_t unsent;    /* a final commit the coordinator refused (mid-rebalance); SL_OFFSET_NONE */
    int64_t consumed;  /* last consumed offset, -1 before any */
    int32_t in_ticket; /* index in the ticket being built, -1 when none */
} pstate_t;

/* The last message of one partition in a batch ticket. */
typedef struct ticket_part {
    int32_t partition;
    uint32_t gen;
    int64_t offset;
} ticket_part_t;

/* One batch's hold on its input offsets: one reference for the batch itself
 * (dropped once every slot is emitted) and one per output produced for it
 * (dropped by its delivery report). At zero the batch's offsets are done in
 * the offset tracker, unless a delivery failed. It is also the opaque of
 * every message produced for the batch. Tickets are pooled. */
typedef struct ticket {
    struct ticket *next_free;
    uint64_t seq; /* opening order, for sl_worker_delivered */
    uint32_t refs;
    int failed; /* a delivery failed: its offsets stay uncommitted */
    size_t n, cap;
    ticket_part_t *parts;
} ticket_t;

struct sl_worker {
    sl_worker_config_t c;
    sl_worker_hooks_t hooks;
    int has_hooks;
    sl_worker_observer_t obs;
    char *input_topic, *output_topic, *dlq_topic;
    rd_kafka_t *consumer, *producer;
    rd_kafka_queue_t *cq; /* the consumer queue (messages, rebalances, errors) */
    rd_kafka_topic_t *out_rkt, *dlq_rkt;
    sl_learner_t *learner;
    sl_runner_t *runner;
    sl_decoder_t *decoder;
    sl_batch_t *batch;
    sl_buf_t enc;
    char version_text[24]; /* the model.version header value of `version_cached` */
    uint64_t version_cached;

    /* the batch in hand */
    inmsg_t *msgs;
    size_t nmsgs, msgs_cap;
    uint64_t batch_open_ms;
    int in_batch;
    ticket_t *cur;                /* the ticket of the batch being run */
    uint64_t cur_version;         /* the version its predictions carry */
    rd_kafka_message_t **fetched; /* one consume call's messages */
    size_t fetch_cap;
    rd_kafka_message_t **stash; /* consumed while producing was blocked; [stash_head, nstash) */
    size_t stash_head, nstash, stash_cap;

    /* offsets */
    sl_offsets_t *offsets;
    pstate_t *ps;
    size_t nps;
    sl_partoff_t *table; /* scratch for hook tables */
    ticket_t *free_tickets;
    ticket_t **tickets; /* every ticket allocated, for destroy */
    size_t ntickets, tickets_cap;
    uint64_t ticket_seq; /* the next ticket's seq */
    uint64_t in_flight;

    /* partitions */
    rd_kafka_topic_partition_list_t *assigned;
    rd_kafka_topic_partition_list_t *pending_rb;
    rd_kafka_resp_err_t pending_rb_type;
    int paused;

    atomic_int stop;
    sl_err_t err;     /* the fatal cause; SL_OK while healthy */
    char errstr[512]; /* its message */
    int ran;          /* sl_worker_run was called: the consumer was subscribed and closed */
    int tick_due;
    uint64_t last_commit_ms, last_stats_ms, last_tick_ms, last_consumer_poll_ms;
    uint64_t stats_samples;
    sl_worker_stats_t st;
    sl_ratelimit_t bad_log, err_log;
};

/* --- worker.c --- */

/* Marks the worker failed with err (it stops; sl_worker_run returns err);
 * logs and keeps the first cause only. */
void sl_worker_fatal(sl_worker_t *w, sl_err_t err, const char *what, const char *why);
/* A rate-limited warning about the input topic. */
void sl_worker_log_rl(sl_worker_t *w, sl_ratelimit_t *rl, const char *msg, const char *error,
                      int32_t partition, int64_t offset);
/* Maps a hook's result: SL_OK -> 0; otherwise fatal (with the hook's
 * message if it gave one through sl_worker_fail) and -1. */
int sl_worker_hook_result(sl_worker_t *w, const char *hook, sl_err_t err);

/* --- worker_loop.c --- */

/* One turn of the loop: take messages, run a batch when due, periodic work. */
int sl_worker_poll_once(sl_worker_t *w);
/* Runs everything in hand (batches, outputs queued), then on_batch_done and
 * a rebalance that waited for it. Returns 0, or -1 when the worker failed. */
int sl_worker_run_batch(sl_worker_t *w);
/* Frees the messages in hand without running them. */
void sl_worker_drop_batch(sl_worker_t *w);
/* Frees stashed messages of partition p (every partition when p < 0). */
void sl_worker_drop_stash(sl_worker_t *w, int32_t p);
/* Appends a message to the stash; frees it and fails the worker on out of memory. */
int sl_worker_stash_push(sl_worker_t *w, rd_kafka_message_t *m);

/* --- worker_offsets.c --- */

/* Partition p's state, grown on demand; NULL for p < 0 or out of memory. */
pstate_t *sl_worker_pstate(sl_worker_t *w, int32_t p);
/* Fills w->table with the trained offsets for the hooks; returns the count. */
size_t sl_worker_trained_table(sl_worker_t *w);
/* The ticket of the messages in hand: tracks their last offset per
 * partition. NULL after marking the worker failed. */
ticket_t *sl_worker_ticket_open(sl_worker_t *w);
/* Drops one reference; at zero the ticket's offsets are done (unless a
 * delivery failed) and it returns to the pool. */
void sl_worker_ticket_unref(sl_worker_t *w, ticket_t *t);
/* Frees every ticket (destroy). */
void sl_worker_tickets_free(sl_worker_t *w);
/* Commits what is done (and durable, with hooks); sync for revoke/stop. */
void sl_worker_commit(sl_worker_t *w, int sync);
/* After an assignment, sends final commits the coordinator refused during
 * the rebalance, and starts re-assigned partitions from them. */
void sl_worker_resend_unsent(sl_worker_t *w, rd_kafka_topic_partition_list_t *parts,
                             const int64_t *offs);
/* librdkafka's offset commit callback. */
void sl_worker_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *offsets, void *opaque);

/* --- worker_rebalance.c --- */

/* librdkafka's rebalance callback. */
void sl_worker_rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                            rd_kafka_topic_partition_list_t *parts, void *opaque);
/* Handles an assignment or revocation (also one deferred past a batch). */
void sl_worker_handle_rebalance(sl_worker_t *w, rd_kafka_resp_err_t type,
                                rd_kafka_topic_partition_list_t *parts);
/* Runs the batch in hand and waits for its outputs, so every consumed
 * message is accounted for (revoke, stop). */
void sl_worker_settle(sl_worker_t *w);

/* --- worker_out.c --- */

/* The producer's delivery report: drops the output's ticket reference. */
void sl_worker_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);
/* The runner's emit callback: produces a prediction, or a bad sample's DLQ copy. */
sl_err_t sl_worker_emit(void *opaque, const sl_runner_item_t *it);
/* Resumes fetching after a full producer queue paused it. */
void sl_worker_resume_all(sl_worker_t *w);

/* --- worker_stats.c --- */

/* Publishes the status to the observer (if any). */
void sl_worker_report(sl_worker_t *w);
/* Logs the periodic stats line. */
void sl_worker_log_stats(sl_worker_t *w, uint64_t now);

#endif
