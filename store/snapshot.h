/* snapshot.h - immutable model versions in Redis: chunked blobs written
 * invisibly, published atomically (Lua: parent and lease check, head, index,
 * retention), loaded with checksum verification and loud fallback, and the
 * operator's verbs (list, pin, rollback with audit). Key layout: docs/REDIS.md. */
#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/learner.h"
#include "store/redis.h"

/* Largest chunk of a blob stored in one Redis string (Redis caps strings at
 * 512 MB; smaller chunks keep single commands short). */
#define SL_SNAPSHOT_DEFAULT_CHUNK ((size_t)64 << 20)

/* The next input offset of one partition trained on. Plain data. */
typedef struct sl_snap_offset {
    char topic[256];
    int32_t partition;
    int64_t offset;
} sl_snap_offset_t;

/* A named part of a version stored beside the model's state: the state of
 * what learns with the model (the delayed-label join, the guard), written and
 * restored with it. Names are 1-31 bytes of [a-z0-9_], unique within a
 * version. Borrowed by sl_snap_write_t. */
#define SL_SNAP_SECTION_NAME_MAX 31
typedef struct sl_snap_section {
    const char *name;
    const uint8_t *data;
    size_t len;
} sl_snap_section_t;

/* Where a stored section lies: the stored blob is the model's state followed
 * by the sections' bytes in order. Plain data. */
typedef struct sl_snap_part {
    char name[SL_SNAP_SECTION_NAME_MAX + 1];
    uint64_t len;
} sl_snap_part_t;

/* A version's metadata as stored. Strings and arrays are malloc'd and owned
 * by the struct: release with sl_snap_meta_clear. */
typedef struct sl_snap_meta {
    uint64_t version, parent; /* parent 0: none */
    char created_at[40];      /* RFC 3339 UTC */
    uint64_t step, samples;
    uint64_t size;     /* blob bytes */
    uint32_t nchunks;  /* chunks holding the blob */
    uint64_t checksum; /* xxh64 (seed 0) of the whole blob */
    char *config;      /* JSON object text: model and optimizer config */
    char *metrics;     /* JSON object text */
    char *origin;      /* "worker", "import", ... */
    sl_snap_offset_t *offsets;
    size_t n_offsets;
    char *annotations;     /* JSON object text ("{}" for versions written without) */
    sl_snap_part_t *parts; /* the sections' layout (NULL/0 for a version without) */
    size_t n_parts;
    /* Filled by sl_snapshot_load and sl_snapshot_load_head only: the sections' bytes, in
     * `parts` order (read them with sl_snap_meta_section). */
    uint8_t *section_data;
} sl_snap_meta_t;

/* Finds section `name` of a loaded version: 1 with *data and *len pointing into
 * m (valid until sl_snap_meta_clear), 0 when the version has none of that
 * name (or m was not filled by a load). */
int sl_snap_meta_section(const sl_snap_meta_t *m, const char *name, const uint8_t **data,
                         size_t *len);

/* Bytes of the model's state at the start of the stored blob (m->size
 * minus the sections'). */
uint64_t sl_snap_meta_model_len(const sl_snap_meta_t *m);

/* Frees what m owns and zeroes it; NULL is a no-op. */
void sl_snap_meta_clear(sl_snap_meta_t *m);

typedef struct sl_snapshot_opts {
    size_t chunk_bytes;      /* 0 = SL_SNAPSHOT_DEFAULT_CHUNK */
    uint32_t keep_versions;  /* retention: newest K (+ pinned + head); 0 = keep all */
    uint32_t staging_ttl_ms; /* unpublished data expires after this; 0 = 1 hour */
} sl_snapshot_opts_t;

typedef struct sl_snapshot sl_snapshot_t;

/* Creates the versions of model `name` over connection r (borrowed: it must
 * outlive the object and is used from the caller's thread only). opts may be
 * NULL. Returns NULL with errstr for a bad model name or out of memory. Free
 * with sl_snapshot_destroy. */
sl_snapshot_t *sl_snapshot_new(sl_redis_t *r, const char *name, const sl_snapshot_opts_t *opts,
                               char *errstr, size_t errstr_size);

/* Frees the object (not the connection); NULL is a no-op. */
void sl_snapshot_destroy(sl_snapshot_t *s);

/* What to publish. All borrowed for the call. */
typedef struct sl_snap_write {
    const uint8_t *blob; /* the model-state blob (sl_learner_save) */
    size_t len;
    uint64_t parent; /* the head this version descends from (0: none) */
    uint64_t step, samples;
    const char *config;  /* JSON object text; NULL = "{}" */
    const char *metrics; /* JSON object text; NULL = "{}" */
    const char *origin;  /* NULL = "worker" */
    const sl_snap_offset_t *offsets;
    size_t n_offsets;
    const sl_snap_section_t *sections; /* stored after the blob, checksummed with it */
    size_t n_sections;
    const char *annotations; /* JSON object text (e.g. {"good": true}); NULL = "{}" */
    const char *lease_token; /* NULL: no lease check (operator tools) */
    uint64_t version_floor;  /* the new number is above this and above parent
                              * (keeps numbers growing if Redis lost its counter) */
} sl_snap_write_t;

typedef enum sl_publish_status {
    SL_PUBLISH_DONE = 0,     /* the new version is head */
    SL_PUBLISH_STALE = 1,    /* head is no longer w->parent: nothing published */
    SL_PUBLISH_NO_LEASE = 2, /* the lease is not held with w->lease_token */
} sl_publish_status_t;

/* Publishes a new version: allocates its number (INCR, so numbers only grow
 * and are never reused), writes the chunks and the metadata hash with an
 * expiry (invisible: not head, not indexed), then one Lua script checks that
 * head == w->parent and the lease holds w->lease_token, and only then makes
 * the data permanent, sets head, indexes the version and applies retention
 * (deleting dropped versions' keys). *status says which; *version gets the
 * new number when DONE; *head (may be NULL) gets head as the script saw it.
 * When not DONE the staged keys are deleted. Returns SL_OK with the status,
 * or SL_ERR_REDIS (errstr names the command and key) / SL_ERR_NOMEM: then
 * nothing became visible. */
sl_err_t sl_snapshot_publish(sl_snapshot_t *s, const sl_snap_write_t *w,
                             sl_publish_status_t *status, uint64_t *version, uint64_t *head,
                             char *errstr, size_t errstr_size);

/* Reads head (0 when the model has no version yet). SL_ERR_REDIS also for a
 * head key that does not hold a number (errstr names the key). */
sl_err_t sl_snapshot_head(sl_snapshot_t *s, uint64_t *head, char *errstr, size_t errstr_size);

/* Reads head and the rollback counter in one round trip (for polling). */
sl_err_t sl_snapshot_poll(sl_snapshot_t *s, uint64_t *head, uint64_t *rollbacks, char *errstr,
                          size_t errstr_size);

/* The indexed versions, newest first, in a malloc'd array (caller frees;
 * NULL when *n is 0). */
sl_err_t sl_snapshot_list(sl_snapshot_t *s, uint64_t **versions, size_t *n, char *errstr,
                          size_t errstr_size);

/* *yes = 1 when v is an indexed (published, not dropped) version. */
sl_err_t sl_snapshot_is_indexed(sl_snapshot_t *s, uint64_t v, int *yes, char *errstr,
                                size_t errstr_size);

/* Reads version v's metadata into *m (cleared first; clear it after).
 * SL_ERR_RANGE when v is not an indexed version; SL_ERR_DECODE for a
 * metadata hash with a missing or malformed field (errstr names the key and
 * field); SL_ERR_REDIS. */
sl_err_t sl_snapshot_meta(sl_snapshot_t *s, uint64_t v, sl_snap_meta_t *m, char *errstr,
                          size_t errstr_size);

/* Reads and verifies version m->version's stored blob (the model's state
 * followed by any sections: sl_snap_meta_model_len bytes are the model's): every chunk present
 * (SL_ERR_TRUNCATED naming the missing or short chunk key otherwise), total
 * size as recorded (SL_ERR_TRUNCATED), xxh64 as recorded (SL_ERR_CHECKSUM).
 * On SL_OK *blob (malloc'd, caller frees) holds *len bytes. */
sl_err_t sl_snapshot_read_blob(sl_snapshot_t *s, const sl_snap_meta_t *m, uint8_t **blob,
                               size_t *len, char *errstr, size_t errstr_size);

/* Loads head as a learner. A version whose metadata, blob or learner state
 * fails (checksum, truncation, decode) is logged at ERROR level and skipped
 * for its parent (or, when the parent is gone, the newest older version),
 * until one loads. With `repair` and a fallback, head is moved to the version
 * loaded (only if head is still the bad one) and an audit entry records it,
 * so writers descend from a good version. expect (may be NULL) refuses a
 * stored architecture that differs (SL_ERR_MISMATCH, nothing skipped).
 * Returns SL_ERR_EOF when the model has no version; SL_ERR_CHECKSUM when no
 * version loads (errstr lists why each failed); SL_ERR_REDIS. On SL_OK
 * *learner is the caller's (sl_learner_destroy) and *m its metadata. */
sl_err_t sl_snapshot_load_head(sl_snapshot_t *s, const sl_model_config_t *expect, int repair,
                               sl_learner_t **learner, sl_snap_meta_t *m, char *errstr,
                               size_t errstr_size);

/* Loads version v as a learner (verified as above, no fallback); m gets its
 * metadata and its sections' bytes (sl_snap_meta_section). */
sl_err_t sl_snapshot_load(sl_snapshot_t *s, uint64_t v, const sl_model_config_t *expect,
                          sl_learner_t **learner, sl_snap_meta_t *m, char *errstr,
                          size_t errstr_size);

/* Pins (on = 1) or unpins v: pinned versions survive retention. Pinning a
 * version that is not indexed is SL_ERR_RANGE; unpinning one that is not
 * pinned is fine. */
sl_err_t sl_snapshot_pin(sl_snapshot_t *s, uint64_t v, int on, char *errstr, size_t errstr_size);

/* The pinned versions, unsorted, malloc'd (caller frees; NULL when *n 0). */
sl_err_t sl_snapshot_pinned(sl_snapshot_t *s, uint64_t **versions, size_t *n, char *errstr,
                            size_t errstr_size);

/* Makes indexed version v head atomically, bumps the rollback counter and
 * pushes an audit entry {"time", "from", "to", "reason", "rewind"} (JSON, newest
 * first, the last 1000 kept). *from (may be NULL) gets the previous head.
 * SL_ERR_RANGE when v is not indexed. */
sl_err_t sl_snapshot_rollback(sl_snapshot_t *s, uint64_t v, const char *reason, int rewind,
                              uint64_t *from, char *errstr, size_t errstr_size);

/* The newest `max` audit entries as JSON texts, newest first; *entries is a
 * malloc'd array of malloc'd strings: free with sl_snapshot_strings_free. */
sl_err_t sl_snapshot_audit(sl_snapshot_t *s, size_t max, char ***entries, size_t *n, char *errstr,
                           size_t errstr_size);
void sl_snapshot_strings_free(char **strings, size_t n);

/* Describes a learner for sl_snap_write_t: its config and metrics as JSON
 * object texts (malloc'd, caller frees both) and its counters. SL_ERR_NOMEM. */
sl_err_t sl_snapshot_describe(const sl_learner_t *l, char **config, char **metrics, uint64_t *step,
                              uint64_t *samples);

#endif
