/* worker.h - the Kafka worker: consume samples, predict-then-train per
 * mini-batch (consumer/runner.h), produce predictions, account offsets, and
 * call the snapshot hooks at batch boundaries. The code is split by concern
 * (see worker_internal.h): the loop, offsets, rebalances, output, stats. */
#ifndef SL_WORKER_H
#define SL_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "consumer/decode.h"
#include "consumer/kconf.h"
#include "consumer/offsets.h"
#include "model/learner.h"

typedef struct sl_worker sl_worker_t;

/* The next input offset of one partition of the input topic. */
typedef struct sl_partoff {
    int32_t partition;
    int64_t offset;
} sl_partoff_t;

/* Hooks for the snapshot store (issue 4). Every hook is optional (NULL) and
 * is called on the worker's thread, from inside sl_worker_run, never
 * concurrently, and only at a batch boundary: no batch is in hand, every
 * sample consumed so far has been predicted and, if labelled, trained. The
 * learner passed in is the worker's: read it (sl_learner_save) during the
 * call only. Tables (`trained`) are owned by the worker and valid during the
 * call only; `trained` lists every partition trained on since the worker
 * started (or since the last rewind), with the next offset after the last
 * message whose samples were trained - the offsets a snapshot must store.
 * A hook returning an error other than SL_OK stops the worker (after the
 * usual settle): sl_worker_run returns that code, and sl_worker_error the
 * message the hook gave with sl_worker_fail (else one naming the hook).
 *
 * While hooks are installed (sl_worker_config_t.hooks != NULL), the worker
 * commits a partition's Kafka offset only up to min(done offset, durable
 * offset), where durable offsets are those the hook last reported with
 * sl_worker_set_durable; a partition never reported is not committed. */
typedef struct sl_worker_hooks {
    void *opaque;
    /* Partitions `partitions[0..n)` of `topic` are being assigned. Fill
     * offsets_out[i] with the offset to start partition i at, or leave it
     * SL_OFFSET_NONE (prefilled) for "the group's committed offset, else
     * auto.offset.reset". */
    sl_err_t (*on_assign)(void *opaque, sl_worker_t *w, const char *topic,
                          const int32_t *partitions, size_t n, int64_t *offsets_out);
    /* After each batch's optimizer step (batch_index counts batches run,
     * from 1). The batch's outputs are queued to the producer; some may not
     * be delivered yet: a snapshot whose offsets must not run ahead of
     * delivered predictions takes sl_worker_output_mark now and makes its
     * offsets durable only once sl_worker_delivered says so (a later call). */
    sl_err_t (*on_batch_done)(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                              const sl_partoff_t *trained, size_t n, uint64_t batch_index);
    /* About every 200 ms, also while idle (e.g. to notice a rollback or take
     * a time-based snapshot). */
    sl_err_t (*on_tick)(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                        const sl_partoff_t *trained, size_t n);
    /* Partitions revoked[0..nrevoked) are about to go. Everything consumed
     * has been run and every output delivered. A snapshot taken here and
     * reported with sl_worker_set_durable is committed before they go. */
    sl_err_t (*on_revoke)(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                          const sl_partoff_t *trained, size_t n, const int32_t *revoked,
                          size_t nrevoked);
    /* The worker is stopping (signal, sl_worker_stop): settled as for
     * on_revoke; the final commit follows. Called once. */
    sl_err_t (*on_stop)(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                        const sl_partoff_t *trained, size_t n);
    /* The version for the `model.version` header and the predictions'
     * `version` field. NULL hook: 0. */
    uint64_t (*version)(void *opaque);
    /* The store's health for the stats line: fills *redis_ok (0 while the
     * last Redis call failed), *failed (snapshot attempts that failed) and
     * last_error ("" when healthy). NULL hook: not reported. */
    void (*health)(void *opaque, int *redis_ok, uint64_t *failed, char *last_error,
                   size_t last_error_size);
} sl_worker_hooks_t;

/* What the worker is doing, for an observer (probes, metrics, status page). */
typedef struct sl_worker_status {
    uint64_t messages, samples, delivered, bad, dlq, batches; /* as sl_worker_stats_t */
    uint64_t version;      /* the version hook's value (0 without hooks) */
    uint64_t step;         /* optimizer steps of the current learner */
    uint64_t trained;      /* labelled samples the current learner trained on */
    uint64_t trained_here; /* labelled samples trained by this process */
    int64_t lag;           /* messages behind the high watermark, summed over assigned partitions */
    int32_t partitions;    /* partitions assigned now */
    double window_loss;    /* prequential loss over the learner's window (NAN: none yet) */
    double window_accuracy; /* NAN for linear models or none yet */
} sl_worker_status_t;

/* Optional observer callbacks, called on the worker's thread. Keep them
 * cheap: `heartbeat` runs on every loop iteration (at least every 100 ms
 * while the loop is alive, also while it waits on a full producer queue or
 * for deliveries), `report` about every 200 ms, after every
 * rebalance and once when the loop ends. `st` is valid during the call. */
typedef struct sl_worker_observer {
    void *opaque;
    void (*heartbeat)(void *opaque, uint64_t now_ms);
    void (*report)(void *opaque, const sl_worker_status_t *st);
} sl_worker_observer_t;

typedef struct sl_worker_config {
    const char *brokers; /* bootstrap list (an embedded cluster is started by the caller) */
    const char *group;
    const char *input_topic;
    const char *output_topic;     /* NULL: predictions are made and counted, not produced */
    const char *dlq_topic;        /* NULL: bad samples are counted and logged only */
    const sl_kconf_prop_t *props; /* librdkafka pass-through (kconf.h); borrowed */
    size_t nprops;
    uint32_t batch_size;            /* >= 1 */
    uint32_t linger_ms;             /* a partial batch runs this long after its first message */
    uint32_t stats_interval_ms;     /* 0: no stats line */
    uint32_t commit_interval_ms;    /* 0: 1000 */
    uint32_t settle_timeout_ms;     /* wait for deliveries on revoke/stop; 0: 60000 */
    sl_decode_config_t decode;      /* must match the learner's model */
    const sl_worker_hooks_t *hooks; /* NULL: no store; copied */
    /* Forward pass only (a predictor): no optimizer step, the learner never
     * changes except through sl_worker_replace_learner, and offsets are
     * committed once outputs are delivered, as without hooks (durable offsets
     * are ignored; predictions are at least once). */
    int predict_only;
    const sl_worker_observer_t *observer; /* NULL: none; copied */
} sl_worker_config_t;

/* Counters since sl_worker_new. Read them after sl_worker_run returns (or
 * from hooks); they are not synchronised for other threads. */
typedef struct sl_worker_stats {
    uint64_t messages;   /* input messages consumed */
    uint64_t samples;    /* good samples predicted (outputs queued) */
    uint64_t delivered;  /* predictions delivered */
    uint64_t bad;        /* bad samples */
    uint64_t dlq;        /* messages delivered to the DLQ */
    uint64_t batches;    /* batches run */
    uint64_t refused;    /* optimizer steps refused as non-finite */
    uint64_t trained;    /* labelled samples in optimizer steps applied by this process */
    uint64_t commits;    /* offset commits issued */
    uint64_t rebalances; /* assignments and revocations handled */
} sl_worker_stats_t;

/* Creates the worker in *out: the consumer and producer from `c` (kconf.h
 * rules), taking ownership of `learner` (on success only). Returns SL_OK;
 * SL_ERR_INVAL with errstr naming the flag or kafka property for a bad
 * configuration; SL_ERR_NOMEM or SL_ERR_KAFKA for a runtime failure (*out
 * NULL). Free with sl_worker_destroy. */
sl_err_t sl_worker_new(const sl_worker_config_t *c, sl_learner_t *learner, sl_worker_t **out,
                       char *errstr, size_t errstr_size);

/* Frees the worker, its clients and its learner; NULL is a no-op. Call after
 * sl_worker_run returned (or without running it). */
void sl_worker_destroy(sl_worker_t *w);

/* Runs until sl_worker_stop or a fatal error: subscribes, loops, and on stop
 * settles the batch in hand, calls on_stop, commits, leaves the group and
 * flushes. Returns SL_OK after a requested stop, else the fatal cause
 * (sl_worker_error says it): SL_ERR_KAFKA (fenced producer, authentication
 * failure, an output that could not be delivered, a failed assign),
 * SL_ERR_NOMEM, a learner's error, or a failing hook's. Offsets are never
 * committed past what is done (delivered and trained) nor, with hooks, past
 * what the hooks reported durable. Call once. */
sl_err_t sl_worker_run(sl_worker_t *w);

/* The fatal cause as a message ("" while there is none). Valid for the
 * worker's lifetime. */
const char *sl_worker_error(const sl_worker_t *w);

/* Asks the worker to stop. Async-signal-safe; callable from any thread. */
void sl_worker_stop(sl_worker_t *w);

/* Counters so far (see sl_worker_stats_t for when to read them). */
sl_worker_stats_t sl_worker_stats(const sl_worker_t *w);

/* The current learner (owned by the worker). */
const sl_learner_t *sl_worker_learner(const sl_worker_t *w);

/* --- for hooks, on the worker's thread, during a hook call --- */

/* Stops the worker with err and a message saying why (printf format), as a
 * hook does before returning err; only the first cause is kept. */
void sl_worker_fail(sl_worker_t *w, sl_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reports offsets made durable (e.g. by a snapshot) so the worker may
 * commit up to them. Entries for other partitions keep their last value. */
void sl_worker_set_durable(sl_worker_t *w, const sl_partoff_t *durable, size_t n);

/* Waits until every output produced so far is delivered (or timeout_ms
 * passes: SL_ERR_STATE). SL_ERR_KAFKA if a delivery failed. */
sl_err_t sl_worker_drain(sl_worker_t *w, int timeout_ms);

/* A mark of the outputs produced so far (every batch run until now), for
 * sl_worker_delivered. Marks only grow. */
uint64_t sl_worker_output_mark(const sl_worker_t *w);

/* 1 once every output produced before `mark` has been delivered; 0 while
 * some are in flight, and always 0 after the worker failed (a delivery may
 * have failed). Does not wait: the worker's loop serves delivery reports
 * between hook calls, so ask again at a later call. */
int sl_worker_delivered(const sl_worker_t *w, uint64_t mark);

/* Swaps in `learner` (ownership passes to the worker; the old one is
 * destroyed) between batches, e.g. on rollback. Its model config must match
 * the worker's (SL_ERR_MISMATCH otherwise, learner not taken). When rewind
 * is not NULL, the worker also drains outputs, moves those partitions
 * (currently assigned ones) to the given offsets and forgets their trained,
 * durable and committed offsets, so the stream is trained again from there.
 * On any error (SL_ERR_STATE: outputs not drained in time, SL_ERR_KAFKA: the
 * seek failed, SL_ERR_NOMEM) the learner is not taken and no partition's
 * state changed. */
sl_err_t sl_worker_replace_learner(sl_worker_t *w, sl_learner_t *learner,
                                   const sl_partoff_t *rewind, size_t n);

#endif
