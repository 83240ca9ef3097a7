/* store_internal.h - the store's fields and the writer thread's entry,
 * shared by hooks.c (worker thread) and writer.c (background writer). */
#ifndef SL_STORE_INTERNAL_H
#define SL_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/log.h"
#include "store/lease.h"
#include "store/redis.h"
#include "store/snapshot.h"
#include "store/store.h"

/* A snapshot waiting for, or in, the writer. */
typedef struct job {
    uint64_t id;
    sl_learner_t *copy; /* the worker's learner as it was; serialised by the writer */
    uint8_t *blob;
    size_t len;
    char *config, *metrics;
    uint64_t step, samples, parent, version_floor;
    sl_snap_offset_t *offs;
    size_t n;
    sl_snap_section_t *sections; /* names borrowed from the sources; data malloc'd */
    size_t n_sections;
} job_t;

/* A registered section source (sl_store_add_section). */
typedef struct section_source {
    char name[SL_SNAP_SECTION_NAME_MAX + 1];
    sl_store_section_source_t src;
} section_source_t;

/* Records that `version` (with `parent`) is now served in st->lineage; called
 * with mu held. A version whose parent is the newest entry extends the chain;
 * any other (a rollback, another writer's head) starts it again. */
void sl_store_note_lineage(sl_store_status_t *st, uint64_t version, uint64_t parent);

typedef enum job_state { JOB_NONE, JOB_PENDING, JOB_RUNNING } job_state_t;

struct sl_store {
    sl_store_config_t c;
    char *url, *name, *topic;
    sl_redis_t *redis;
    sl_snapshot_t *snap;
    sl_lease_t *lease;
    sl_model_config_t expect;
    int have_expect;
    atomic_int cancel;

    section_source_t *sources; /* set before start; read by the worker thread */
    size_t n_sources;

    /* worker thread only */
    uint64_t version;    /* what the weights descend from; parent of the next snapshot */
    sl_learner_t *spare; /* a serialised job's copy, reused for the next one (under mu) */
    sl_partoff_t *map;   /* next offset per partition of the topic */
    size_t nmap, map_cap;
    int initial_durable; /* loaded offsets still to report as durable */
    uint32_t batches_since;
    uint64_t last_snap_ms;
    int dirty; /* trained since the last snapshot job */
    uint64_t job_seq;
    /* A snapshot copied at a batch boundary, waiting until the predictions
     * of the batches it covers are delivered (sl_worker_delivered) before
     * it goes to the writer. */
    job_t held;
    int holding;
    uint64_t held_mark; /* sl_worker_output_mark when it was copied */

    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started, stopping;
    job_t job;
    job_state_t job_state;
    uint64_t finished_job; /* id of the last job that ended (published or dropped) */
    int have_done;         /* a published job's offsets to report */
    uint64_t done_version;
    sl_partoff_t *done_offs;
    size_t done_n;
    sl_learner_t *sw_learner; /* a learner to swap in (rollback, stale lineage) */
    sl_snap_meta_t sw_meta;
    int sw_rewind;
    int lease_lost;
    sl_store_status_t status;

    /* writer thread only */
    uint64_t known_head, known_rollbacks, last_poll_ms, last_renew_ms;
    sl_ratelimit_t fail_log;
};

/* Frees what a job owns and zeroes it. */
void sl_store_job_clear(job_t *j);

/* The writer thread: publishes jobs, renews the lease, follows head. Runs
 * until s->stopping (after one last try of a pending job). */
void *sl_store_writer_main(void *arg);

#endif
