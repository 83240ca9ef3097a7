/* join_internal.h - the join's state and the helpers its files share: join.c (the stream:
 * adds, matches, expiry, caps, pops), join_ids.c (the matched-id memory), join_read.c
 * (counters, recovery offsets, the debug check) and join_state.c (save, restore, rebuild). */
#ifndef SL_JOIN_INTERNAL_H
#define SL_JOIN_INTERNAL_H

#include "consumer/join.h"
#include "consumer/keylog.h"

/* A pending sample is one keylog record: the 24-byte keylog header (time = arrival), then
 * this payload, then its id. 36 bytes of header in all, 8-aligned overall:
 *   int64 offset | uint32 sub | float pred[out_dim] | dense: float x[dim]
 *                                                   | sparse: uint32 nnz, col[nnz], val[nnz]
 * The keylog's `user` byte says which form. */
#define FEAT_FIXED 12u
#define FEAT_SPARSE 1u

/* A waiting label: keylog header (time = arrival), this payload, the id. */
typedef struct lab {
    int64_t offset;
    float y, w;
} lab_t;

/* Label delay histogram: 0..15 exactly, then 8 buckets per power of two. */
#define HIST_N 488

/* Memory of matched ids: a FIFO ring of (hash, match time), oldest first, and an
 * open-addressing set over it whose slots hold a ring position and a hash tag. */
typedef struct mid {
    uint64_t hash;
    int64_t time;
} mid_t;

typedef struct matched {
    mid_t *ring;
    uint32_t cap;  /* ring entries, or 0 */
    uint32_t head; /* position of the oldest */
    uint32_t count;
    uint64_t *idx; /* 0: empty */
    uint32_t nidx; /* slots, or 0 */
} matched_t;

/* One saved pending sample a rebuild looks for. */
typedef struct plan_ent {
    int64_t offset, time;
    uint32_t sub;
    uint32_t ready; /* matched before the save: the label's fields are set */
    float y, w;
    int64_t label_offset, label_time;
} plan_ent_t;

typedef struct plan {
    plan_ent_t *e; /* sorted by (offset, sub) */
    float *pred;   /* n * out_dim */
    size_t n, cur; /* entries before cur were re-added or counted lost */
} plan_t;

/* Everything the join holds for one partition. */
typedef struct shard {
    int32_t partition;
    sl_keylog_t *feat; /* pending features, arrival order = (offset, sub) order */
    sl_keylog_t *lab;  /* waiting labels, arrival order */
    matched_t m;
    plan_t plan;
    int rebuilding;
    int64_t live_from;   /* rebuilding: input offsets below are re-read */
    int64_t last_offset; /* last (offset, sub) added: adds must go forwards */
    uint32_t last_sub;   /* */
    int64_t label_next;  /* label offsets below were handled */
    sl_join_counts_t c;  /* lineage counters */
    uint64_t *hist;      /* HIST_N label-delay buckets; NULL before any match */
} shard_t;

/* A revoked partition's saved section, carried into later saves. */
typedef struct parked {
    int32_t partition;
    uint8_t *bytes; /* the section as sl_join_save writes it */
    size_t len;
    sl_join_counts_t c;
    uint64_t *hist; /* may be NULL */
} parked_t;

/* A matched pair waiting in the ready FIFO: this header, pred[out_dim], the features
 * (dense: x[dim]; sparse: col[nnz] then val[nnz]), the id; `stride` bytes in all (8-aligned). */
typedef struct ready_hdr {
    int32_t partition;
    uint32_t sub;
    int64_t offset, time, label_offset, label_time;
    float y, w;
    uint32_t nnz; /* UINT32_MAX: dense */
    uint32_t id_len;
    uint32_t stride;
    uint32_t pad;
} ready_hdr_t;

struct sl_join {
    sl_join_config_t cfg;
    shard_t **shards; /* indexed by partition; NULL where unassigned */
    size_t nshards;
    parked_t *parked;
    size_t nparked, parked_cap;
    sl_buf_t ready; /* the ready FIFO: records from ready_head to ready.len */
    size_t ready_head, ready_count;
    uint64_t feat_bytes, lab_bytes; /* over all shards */
    uint64_t matched_ids;           /* over all shards */
    uint64_t rebuilt;
};

/* --- join.c --- */

shard_t *sl_join_shard(const sl_join_t *j, int32_t p);
/* A new empty live shard for p, not in the table yet. NULL on out of memory. */
shard_t *sl_join_shard_alloc(int32_t p);
/* Makes the table reach partition p. SL_ERR_NOMEM, nothing changed. */
sl_err_t sl_join_table_reserve(sl_join_t *j, int32_t p);
/* Puts sh in the table at its partition (which must be free) and counts what it holds; fails
 * only when the table must grow and cannot. */
sl_err_t sl_join_shard_install(sl_join_t *j, shard_t *sh);
/* alloc + install. NULL on out of memory. */
shard_t *sl_join_shard_new(sl_join_t *j, int32_t p);
/* Frees a shard that is not in the table (or after taking it out). */
void sl_join_shard_free(sl_join_t *j, shard_t *sh);
/* Takes p's shard out of the table (and its ready pairs out of the FIFO) and frees it. */
void sl_join_shard_remove(sl_join_t *j, int32_t p);
/* Removes p's parked section, if any. */
void sl_join_unpark(sl_join_t *j, int32_t p);
/* A view of a pending record as a sample (pointers into the record). */
void sl_join_feat_view(const sl_join_t *j, int32_t partition, sl_keylog_rec_t *r,
                       sl_join_sample_t *s);
/* Validates a sample's id and row. */
sl_err_t sl_join_check_sample(const sl_join_t *j, const sl_join_sample_t *s);
/* Keeps or matches a sample's features: the common path of a live add (rebuild = 0: counts
 * it, refuses a repeated id) and of a rebuild's re-add (rebuild = 1: saved arrival `time` and
 * prediction `pred`, no duplicate checks). h is the id's sl_keylog_hash. */
sl_err_t sl_join_keep(sl_join_t *j, shard_t *sh, const sl_join_sample_t *s, uint64_t h,
                      const float *pred, int64_t time, int64_t now, int rebuild,
                      sl_join_outcome_t *outcome);
/* Queues a ready pair from a sample; restored = 1 for a pair re-made from a saved ready
 * entry (no counting, no delay sample, its id is already remembered). */
sl_err_t sl_join_ready_from_sample(sl_join_t *j, shard_t *sh, const sl_join_sample_t *s,
                                   const float *pred, int64_t time, float y, float w,
                                   int64_t label_offset, int64_t label_time, uint64_t hash,
                                   int restored);
/* Enforces max_bytes / max_label_bytes, oldest first over all shards. */
void sl_join_enforce_caps(sl_join_t *j);
/* Ends a rebuild: saved samples not re-added are counted lost; the plan is freed. */
void sl_join_end_rebuild(shard_t *sh);
/* Histogram bucket of a delay. */
int sl_join_hist_bucket(int64_t delay);

/* --- join_ids.c --- */

/* One shard's matched-id memory (no global accounting): is h remembered, remember it (SL_OK
 * or SL_ERR_NOMEM, nothing changed), forget the oldest (count > 0), the oldest, free all,
 * bytes allocated, and a prefetch of where a lookup of h starts. */
int sl_join_ids_has(const matched_t *m, uint64_t h);
sl_err_t sl_join_ids_add(matched_t *m, uint64_t h, int64_t t);
void sl_join_ids_pop(matched_t *m);
const mid_t *sl_join_ids_oldest(const matched_t *m);
void sl_join_ids_free(matched_t *m);
uint64_t sl_join_ids_memory(const matched_t *m);
void sl_join_ids_prefetch(const matched_t *m, uint64_t h);
/* Forgets the oldest remembered ids, over all shards, until at most limit remain. */
void sl_join_trim_matched(sl_join_t *j, uint64_t limit);
/* Remembers a matched id (global cap applied: the oldest remembered anywhere goes first). */
sl_err_t sl_join_remember(sl_join_t *j, shard_t *sh, uint64_t hash, int64_t time);

/* --- join_state.c --- */

/* Appends shard sh's saved section (length-prefixed) to out. */
sl_err_t sl_join_write_section(const sl_join_t *j, const shard_t *sh, sl_buf_t *out);

#endif
