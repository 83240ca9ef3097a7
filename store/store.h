/* store.h - the snapshot store as the worker sees it: hot-standby lease,
 * recovery of head, and the worker hooks that snapshot off the hot path,
 * commit offsets only up to durable snapshots and follow rollbacks. */
#ifndef SL_STORE_H
#define SL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "consumer/worker.h"
#include "model/learner.h"

#define SL_STORE_LINEAGE 8

typedef struct sl_store_config {
    const char *redis_url;     /* redis://[user:password@]host:port[/db] */
    const char *model_name;    /* --model-name */
    const char *topic;         /* the input topic: offsets are kept per (topic, partition) */
    uint32_t keep_versions;    /* retention (0 = keep all) */
    uint32_t every_batches;    /* snapshot after this many batches (0 = off) */
    uint32_t every_ms;         /* ... or this many ms since the last one (0 = off) */
    uint32_t lease_ttl_ms;     /* 0 = 10000 */
    uint32_t poll_ms;          /* how often head is polled for rollbacks; 0 = 200 */
    uint32_t final_timeout_ms; /* revoke/stop: wait this long for the snapshot; 0 = 15000 */
    size_t chunk_bytes;        /* 0 = SL_SNAPSHOT_DEFAULT_CHUNK */
    /* A predictor (--role predictor): follows head read-only. No lease (do
     * not call sl_store_acquire), no snapshots, no repair of head on load, no
     * offsets from snapshots; every head change (new version, rollback) is
     * loaded on the background thread and swapped in between batches without
     * a rewind. */
    int follower;
} sl_store_config_t;

typedef struct sl_store sl_store_t;

/* Creates the store (strings are copied); does not connect yet. Returns NULL
 * with errstr for a bad URL or model name (exit status 2) or out of memory.
 * Free with sl_store_destroy. */
sl_store_t *sl_store_new(const sl_store_config_t *c, char *errstr, size_t errstr_size);

/* Stops the background thread (after it finishes the write in hand),
 * releases the lease if held and frees everything; NULL is a no-op. Call
 * after the worker has stopped. */
void sl_store_destroy(sl_store_t *s);

/* Makes sl_store_acquire return SL_ERR_STATE soon. Async-signal-safe. */
void sl_store_cancel(sl_store_t *s);

/* Waits as a hot standby (consuming nothing) until this process holds the
 * model's lease, polling about four times per TTL, so it takes over within
 * the TTL after the holder dies. Redis failures while waiting are logged and
 * retried. Returns SL_OK when held, SL_ERR_STATE when cancelled. */
sl_err_t sl_store_acquire(sl_store_t *s, char *errstr, size_t errstr_size);

/* Loads head (verifying checksums, falling back loudly past bad versions
 * and, unless a follower, moving head to the version loaded) into *learner (caller's) and
 * remembers its offsets and version. `expect` is the configured
 * architecture: a stored one that differs is SL_ERR_MISMATCH (exit 2).
 * Returns SL_ERR_EOF when the model has no version yet (start from --init or
 * the seed; *learner NULL); SL_ERR_CHECKSUM when none loads; SL_ERR_REDIS. */
sl_err_t sl_store_load(sl_store_t *s, const sl_model_config_t *expect, sl_learner_t **learner,
                       char *errstr, size_t errstr_size);

/* A part of the worker's state saved with every version beside the model (a
 * snapshot section, e.g. the delayed-label join or the guard) and given back
 * when a version is loaded. Both calls run on the thread that drives the
 * store: save on the worker thread at the batch boundary where a snapshot is
 * copied (fills *data with malloc'd bytes the store frees, or *data NULL and
 * *len 0 to store an empty section); restore from sl_store_load (the caller's
 * thread) and, on the worker thread, whenever the worker switches to another
 * version (a rollback or another writer's head), with that version's bytes or
 * data NULL when it has no such section (start fresh). An error from save
 * skips that snapshot (logged); from restore it fails the load or stops the
 * worker. */
typedef struct sl_store_section_source {
    const char *name; /* [a-z0-9_]{1,31}; copied */
    void *opaque;
    sl_err_t (*save)(void *opaque, uint8_t **data, size_t *len);
    sl_err_t (*restore)(void *opaque, uint64_t version, const uint8_t *data, size_t len);
} sl_store_section_source_t;

/* Adds a section source (before sl_store_load). SL_ERR_INVAL for a bad or
 * repeated name (errstr says which), SL_ERR_NOMEM. */
sl_err_t sl_store_add_section(sl_store_t *s, const sl_store_section_source_t *src, char *errstr,
                              size_t errstr_size);

/* Starts the background writer (its own Redis connection) and fills *hooks
 * for sl_worker_config_t.hooks. Call after sl_store_acquire/sl_store_load
 * (a follower: after sl_store_load only; its hooks only follow head).
 * SL_ERR_NOMEM or SL_ERR_STATE (already started, or lease not held). */
sl_err_t sl_store_start(sl_store_t *s, sl_worker_hooks_t *hooks, char *errstr, size_t errstr_size);

/* A thread-safe read-out for stats lines and tests. */
typedef struct sl_store_status {
    uint64_t version;        /* the version the worker's weights descend from */
    uint64_t parent;         /* that version's parent (0: none or unknown) */
    double snapshot_seconds; /* how long the last published snapshot took (0: none yet) */
    /* The lineage this process has seen, newest first: lineage[0] is the
     * version served, lineage[1] its parent, and so on, as far back as the
     * versions this process loaded and published reach (at most
     * SL_STORE_LINEAGE). */
    uint64_t lineage[SL_STORE_LINEAGE];
    uint32_t n_lineage;
    uint64_t published;   /* snapshots published by this process */
    uint64_t failed;      /* snapshot attempts that failed (Redis) */
    uint64_t switches;    /* learners swapped in (rollback, stale lineage) */
    int redis_ok;         /* 0 while the last Redis call failed */
    char last_error[256]; /* "" when redis_ok */
} sl_store_status_t;
void sl_store_status(sl_store_t *s, sl_store_status_t *out);

#endif
