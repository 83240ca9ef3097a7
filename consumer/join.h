/* join.h - the delayed-label join: features of predicted samples kept by id until their label
 * arrives (window, byte cap, oldest first), labels that wait for their features, matched
 * pairs handed to training with the prediction served for them, and what recovery needs. */
#ifndef SL_JOIN_H
#define SL_JOIN_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "consumer/batch.h"

/* A data structure, no I/O: the caller feeds it features, labels and the time, and takes
 * matched pairs out. Time is an int64 in the caller's unit, the same for every call and for
 * the config's window and label_wait: wall-clock milliseconds for a Kafka worker (they are
 * saved, so they must mean the same after a restart), record counts for a replay. Nothing
 * here reads a clock, so tests and replays are deterministic.
 *
 * State is kept per input partition (a "shard"): the label topic is co-partitioned with the
 * input, so the label of a sample read from input partition p arrives on label partition p,
 * and a partition can be assigned, revoked, saved and rebuilt on its own.
 *
 * Ids are the raw msgpack bytes of a sample's `id` (as consumer/decode keeps them), so 7 and
 * 7.0 and "7" are three different ids. An id must identify one sample: features for an id
 * already waiting or already matched are duplicates and are not kept.
 *
 * Not thread-safe: the worker's thread owns it. */

#define SL_JOIN_DEFAULT_WINDOW_MS 3600000
#define SL_JOIN_DEFAULT_LABEL_WAIT_MS 60000
#define SL_JOIN_DEFAULT_MAX_BYTES ((uint64_t)256 << 20)
#define SL_JOIN_MAX_ID 65535u /* id bytes; longer ids are refused (SL_ERR_INVAL) */

/* "No offset" (same value as SL_OFFSET_NONE in consumer/offsets.h). */
#define SL_JOIN_OFFSET_NONE ((int64_t)-1001)

typedef struct sl_join_config {
    uint32_t dim;       /* features per sample, >= 1 (the model's dim) */
    uint32_t out_dim;   /* floats of served prediction kept per sample (sl_model_out_dim), >= 1 */
    int64_t window;     /* features wait for a label while now - arrival <= window; >= 0 */
    int64_t label_wait; /* labels wait for features while now - arrival <= label_wait; 0: never */
    /* Cap on the bytes of pending features (their records: features, id, served prediction
     * and a 36-byte header, rounded up to 8 bytes); past it the oldest are expired early. 0: the
     * default 256 MiB. */
    uint64_t max_bytes;
    /* Cap on the bytes of waiting labels; past it the oldest give up early. 0: max_bytes/16. */
    uint64_t max_label_bytes;
    /* How many matched ids are remembered (at most one window each) to tell a duplicate
     * label from an unknown one; 27-40 bytes each. 0: max_bytes / 256. */
    uint64_t max_matched_ids;
} sl_join_config_t;

/* One predicted sample whose label will come later. Everything is copied. */
typedef struct sl_join_sample {
    int32_t partition;   /* input partition, >= 0 */
    int64_t offset;      /* input offset of its message, >= 0 */
    uint32_t sub;        /* its index among the samples of that message (0 for a lone map) */
    const uint8_t *id;   /* raw msgpack bytes of its id, 1..SL_JOIN_MAX_ID */
    size_t id_len;       /* */
    const float *dense;  /* dim floats, or NULL for a sparse row */
    const uint32_t *col; /* sparse: nnz columns (< dim) and values */
    const float *val;
    size_t nnz;
    const float *pred; /* out_dim floats: the model's outputs served for it (sl_learner_batch's
                        * `out` row: value, P(y=1), or class probabilities) */
} sl_join_sample_t;

/* One label from the label topic. The id is read during the call only. */
typedef struct sl_join_label {
    int32_t partition; /* label partition (= the input partition of its sample) */
    int64_t offset;    /* label offset of its message */
    const uint8_t *id;
    size_t id_len;
    float y, w; /* checked by the caller's decoder (sl_decode_labels) */
} sl_join_label_t;

/* What an add did. */
typedef enum sl_join_outcome {
    SL_JOIN_PENDING = 0, /* features kept, waiting for their label */
    SL_JOIN_MATCHED,     /* joined: a pair is ready (sl_join_pop) */
    SL_JOIN_HELD,        /* a label kept, waiting for its features */
    SL_JOIN_DUPLICATE,   /* a label (or features) for an id already matched or waiting:
                          * counted, dropped; the first one wins */
    SL_JOIN_UNMATCHED,   /* a label without features when labels may not wait: counted */
    SL_JOIN_TOO_BIG,     /* features larger than the whole cap: counted as expired early */
    SL_JOIN_SKIPPED,     /* rebuild: not a sample the saved state is waiting for */
} sl_join_outcome_t;

/* A matched pair as sl_join_pop hands it out, beside its batch row. */
typedef struct sl_join_pair {
    int32_t partition;
    int64_t offset;       /* input offset of the features */
    uint32_t sub;         /* */
    int64_t label_offset; /* label offset */
    int64_t delay;        /* label arrival - features arrival (0 when the label came first) */
} sl_join_pair_t;

/* Counters along the model's lineage: they are saved with each partition's state, restored
 * with it, and summed over every partition this join holds (assigned or parked), so after a
 * restart they go on from the snapshot's values and count nothing twice. */
typedef struct sl_join_counts {
    uint64_t added;         /* features kept (excluding duplicates and rebuilt ones) */
    uint64_t matched;       /* pairs joined */
    uint64_t expired;       /* features that left without a label (window, cap or too big) */
    uint64_t expired_cap;   /* ... of which early, because of max_bytes */
    uint64_t unmatched;     /* labels that left without features (unknown or expired id) */
    uint64_t unmatched_cap; /* ... of which early, because of max_label_bytes */
    uint64_t duplicate;     /* labels for an id already matched or already waiting */
    uint64_t dup_features;  /* features for an id already waiting or matched, not kept */
    uint64_t lost;          /* saved pending features not found again when re-reading */
} sl_join_counts_t;

/* A read-out: gauges of now, lineage counters, and label delays. */
typedef struct sl_join_stats {
    uint64_t pending;       /* features waiting for a label */
    uint64_t pending_bytes; /* their record bytes (what max_bytes caps) */
    uint64_t held;          /* labels waiting for features */
    uint64_t held_bytes;
    uint64_t ready;       /* matched pairs not popped yet */
    uint64_t matched_ids; /* ids remembered as matched */
    uint64_t memory;      /* every byte the join has allocated (records, indexes, ...) */
    uint64_t memory_ids;  /* ... of which the matched-id memory */
    uint64_t rebuilt;     /* features re-added by rebuilds in this process */
    int32_t partitions;   /* assigned partitions */
    int32_t rebuilding;   /* ... of which still rebuilding */
    sl_join_counts_t c;
    int64_t delay_p50, delay_p99; /* label delay quantiles (about 6% resolution); -1: none */
} sl_join_stats_t;

typedef struct sl_join sl_join_t;

/* Checks cfg and creates an empty join (no partition assigned). Returns NULL with errstr
 * naming the bad field, or on out of memory. Free with sl_join_destroy. */
sl_join_t *sl_join_new(const sl_join_config_t *cfg, char *errstr, size_t errstr_size);

/* Frees everything; NULL is a no-op. */
void sl_join_destroy(sl_join_t *j);

/* The checked config (defaults resolved); valid for the join's life. */
const sl_join_config_t *sl_join_config(const sl_join_t *j);

/* --- partitions (assign / revoke) --- */

/* Partition p is assigned with nothing to restore: an empty, live shard. A parked state of
 * p (see sl_join_drop_partition) is discarded. SL_ERR_STATE if p is already assigned,
 * SL_ERR_INVAL for p < 0, SL_ERR_NOMEM. */
sl_err_t sl_join_add_partition(sl_join_t *j, int32_t p);

/* Partition p is revoked: its pending features, waiting labels, ready pairs and matched-id
 * memory are freed. Its saved form (as sl_join_save writes it, a few bytes per pending
 * sample) is parked, so later saves still carry it for whoever restores p next, and its
 * counters still count. Unknown p is a no-op. Returns SL_ERR_NOMEM if the parked copy could
 * not be made (the partition is dropped all the same; later saves will lack it). */
sl_err_t sl_join_drop_partition(sl_join_t *j, int32_t p);

/* 1 if p is assigned (live or rebuilding), else 0. */
int sl_join_has_partition(const sl_join_t *j, int32_t p);

/* --- the stream --- */

/* Keeps a predicted sample's features until its label comes: *outcome PENDING, or MATCHED
 * when its label was already waiting, DUPLICATE when its id is waiting or was matched,
 * TOO_BIG. May expire the oldest pending features of any partition to stay under max_bytes.
 * Errors (nothing changed): SL_ERR_STATE if s->partition is not assigned or is rebuilding
 * and s->offset is below its live offset (use sl_join_rebuild_add); SL_ERR_RANGE if (offset,
 * sub) does not come after the last sample added to the partition (a partition is read in
 * order; re-reading it needs sl_join_restore); SL_ERR_INVAL for a bad id length, a column >=
 * dim, a negative offset; SL_ERR_NOMEM. A sample at or past the live offset of a rebuilding
 * partition ends its rebuild first. */
sl_err_t sl_join_add_features(sl_join_t *j, const sl_join_sample_t *s, int64_t now,
                              sl_join_outcome_t *outcome);

/* Fills s's id and feature fields from slot `slot` of b (a good sample with an id; its row is
 * dense or CSR as b holds it). partition, offset, sub and pred are left to the caller. The
 * pointers borrow b's memory until it changes. SL_ERR_INVAL for a bad slot or one without an
 * id (nothing to join on). */
sl_err_t sl_join_sample_from_batch(const sl_batch_t *b, size_t slot, sl_join_sample_t *s);

/* A label: *outcome MATCHED (its features were pending: a pair is ready), HELD (kept up to
 * label_wait for its features), DUPLICATE (its id was matched already, or a label for it is
 * already waiting: the first label wins), UNMATCHED (no features and label_wait is 0). May
 * drop the oldest waiting labels to stay under max_label_bytes. Errors (nothing changed):
 * SL_ERR_STATE for an unassigned partition, SL_ERR_INVAL for a bad id, SL_ERR_NOMEM. */
sl_err_t sl_join_add_label(sl_join_t *j, const sl_join_label_t *l, int64_t now,
                           sl_join_outcome_t *outcome);

/* n adds in a row, exactly as n calls of sl_join_add_features / sl_join_add_label in that
 * order would do them (same outcomes, same state), only faster: the lookups of a few at a time
 * are started before any is used, so their cache misses overlap. The worker hands over the
 * rows of a batch after its forward pass, and the labels of a poll. outcomes[i] is set for
 * each one done; *done says how many. On an error the ones before it are done and it and
 * the rest are not (*done is its index); errors as for one. */
sl_err_t sl_join_add_features_n(sl_join_t *j, const sl_join_sample_t *s, size_t n, int64_t now,
                                sl_join_outcome_t *outcomes, size_t *done);
sl_err_t sl_join_add_labels_n(sl_join_t *j, const sl_join_label_t *l, size_t n, int64_t now,
                              sl_join_outcome_t *outcomes, size_t *done);

/* The label partition p has been handled up to next_offset (exclusive), also for messages
 * that held no valid label; sl_join_add_label advances it too. Saved with p. */
void sl_join_label_seen(sl_join_t *j, int32_t p, int64_t next_offset);

/* Expires features past the window and labels past label_wait (not those of a partition
 * that is rebuilding: they wait for it) and forgets matched ids older than a window. Call it
 * every tick; the adds also apply the window to the entries they touch, so outcomes never
 * depend on how often this runs. Cannot fail. */
void sl_join_expire(sl_join_t *j, int64_t now);

/* Matched pairs waiting to be popped. */
size_t sl_join_ready(const sl_join_t *j);

/* Moves up to max ready pairs, oldest match first, into b as labelled rows (y, w of the
 * label; id of the sample; slot tag `tag`), writes each one's served prediction to
 * served[k * out_dim ...] (k-th popped) and, if pairs is not NULL, its details to pairs[k].
 * *n receives how many. Popped pairs are the caller's: they must be trained before the next
 * sl_join_save, which no longer carries them. SL_ERR_MISMATCH if b->dim differs (nothing
 * popped), SL_ERR_NOMEM from the batch (the pairs popped before it stay popped, the rest
 * stay ready). */
sl_err_t sl_join_pop(sl_join_t *j, sl_batch_t *b, float *served, size_t max, uint64_t tag,
                     sl_join_pair_t *pairs, size_t *n);

/* Gauges, lineage counters and delay quantiles. */
void sl_join_stats(const sl_join_t *j, sl_join_stats_t *st);

/* --- recovery --- */

/* The smallest input offset of partition p still needed: its oldest pending or ready
 * features, or the next saved one a rebuild has not re-read yet. SL_JOIN_OFFSET_NONE when
 * nothing of p is pending (or p is unknown). Input before it is never needed again. */
int64_t sl_join_oldest_offset(const sl_join_t *j, int32_t p);

/* The label offset p has been handled up to (exclusive); SL_JOIN_OFFSET_NONE before any. */
int64_t sl_join_label_next(const sl_join_t *j, int32_t p);

/* Appends the saved form of every partition (assigned, rebuilding or parked) to out: per
 * partition its counters and delay histogram, the label offset handled up to, and - instead
 * of the features themselves - the input offset, index, arrival time and served prediction
 * of each pending sample (about 4 * out_dim + 4 bytes each, ready pairs with their label),
 * the waiting labels in full, and the matched-id memory. Little-endian, versioned, xxh64
 * checksum. Take it where the caller's offsets are consistent with it (at a batch boundary,
 * with every popped pair trained). SL_ERR_NOMEM leaves out's length as it was. */
sl_err_t sl_join_save(const sl_join_t *j, sl_buf_t *out);

/* Where to resume partition p after sl_join_restore. */
typedef struct sl_join_resume {
    int64_t input_from; /* consume the input partition from here: the oldest saved pending
                         * offset (messages below live_from are re-read, not predicted), or
                         * live_from when nothing was pending */
    int64_t label_from; /* consume the label partition from here; SL_JOIN_OFFSET_NONE when the
                         * save had no label position for p */
    size_t planned;     /* saved pending samples the rebuild will look for */
} sl_join_resume_t;

/* Assigns partition p from a saved state: blob[0..len) from sl_join_save (NULL: the copy
 * parked by sl_join_drop_partition). Waiting labels, matched ids, counters and the label
 * position come back at once; the features come back as the caller re-reads input partition
 * p from resume->input_from up to live_from (the offset the snapshot resumes prediction at),
 * handing each sample to sl_join_rebuild_add. A blob without p gives an empty live shard.
 * If p was assigned, its current state is replaced (a rollback with rewind).
 * Errors (nothing changed: p keeps the state it had, if any): SL_ERR_INVAL (p < 0),
 * SL_ERR_CHECKSUM, SL_ERR_DECODE / SL_ERR_TRUNCATED (a corrupt blob, errstr says where),
 * SL_ERR_VERSION, SL_ERR_MISMATCH (dim or out_dim differ), SL_ERR_RANGE (a saved pending
 * offset at or past live_from), SL_ERR_NOMEM. */
sl_err_t sl_join_restore(sl_join_t *j, int32_t p, const uint8_t *blob, size_t len,
                         int64_t live_from, sl_join_resume_t *resume, char *errstr,
                         size_t errstr_size);

/* 1 while p is rebuilding: input messages of p below its live offset are to be re-read with
 * sl_join_rebuild_add (no prediction produced, nothing trained), not added as new samples. */
int sl_join_rebuilding(const sl_join_t *j, int32_t p);

/* The live offset p was restored with (SL_JOIN_OFFSET_NONE if p is not rebuilding). */
int64_t sl_join_live_from(const sl_join_t *j, int32_t p);

/* The next input offset of p the rebuild still looks for (SL_JOIN_OFFSET_NONE when p is not
 * rebuilding or nothing is left before live_from). Offsets between the re-read position and it
 * hold nothing the rebuild needs: when the gap is long (a sample that waited most of a window
 * behind a stream that was all matched), the caller can seek over it instead of reading it. */
int64_t sl_join_rebuild_next(const sl_join_t *j, int32_t p);

/* Re-adds a re-read sample of a rebuilding partition if the saved state was waiting for it
 * ((offset, sub) saved as pending): kept with its saved arrival time and served prediction
 * (s->pred is ignored), or straight to ready if it had been matched; *outcome PENDING,
 * MATCHED (a saved ready pair, or a label that came meanwhile) or SKIPPED (any other sample:
 * already trained or expired before the save, or carrying its own y). Not counted as a new
 * sample. Saved samples passed over are counted as lost. SL_ERR_STATE if p is not rebuilding
 * or s->offset is at or past its live offset, SL_ERR_INVAL, SL_ERR_NOMEM. */
sl_err_t sl_join_rebuild_add(sl_join_t *j, const sl_join_sample_t *s, int64_t now,
                             sl_join_outcome_t *outcome);

/* The input partition p has been re-read up to next_offset (exclusive): saved samples below
 * it that were not re-added are counted lost (retention or compaction removed them); at
 * live_from or past it the rebuild ends and p is live. A no-op for a live partition. */
void sl_join_rebuild_seen(sl_join_t *j, int32_t p, int64_t next_offset);

/* Debug check of every invariant (the logs, per-partition order, indexes, byte accounting).
 * Returns 0 when sound, else -1 with errstr saying what is wrong. For tests; O(size). */
int sl_join_check(const sl_join_t *j, char *errstr, size_t errstr_size);

#endif
