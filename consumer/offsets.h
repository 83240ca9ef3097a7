/* offsets.h - per-partition bookkeeping of which input offsets are done
 * (predictions delivered, step applied) and the next offset that may be committed. */
#ifndef SL_OFFSETS_H
#define SL_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* "No offset": nothing committable yet, or an unknown partition. Equal to
 * librdkafka's RD_KAFKA_OFFSET_INVALID. */
#define SL_OFFSET_NONE ((int64_t)-1001)

/* Tracks in-flight offsets of one input topic, per partition. An entry
 * enters with sl_offsets_track and is done at its sl_offsets_release. The
 * worker tracks one entry per partition per batch: the batch's last offset
 * there, released when every output of the batch is delivered and its step
 * applied. Entries of a partition are tracked in increasing offset order
 * (gaps are allowed: compaction, transaction markers, the rest of a batch),
 * and the committable offset is one past the last entry of the longest done
 * prefix, so a commit never skips an entry still in flight. Not
 * thread-safe: the worker's thread owns it. */
typedef struct sl_offsets sl_offsets_t;

/* Creates an empty tracker. NULL on out of memory. Free with sl_offsets_destroy. */
sl_offsets_t *sl_offsets_new(void);

/* Frees the tracker; NULL is a no-op. */
void sl_offsets_destroy(sl_offsets_t *o);

/* Starts tracking partition p (0 <= p), forgetting anything tracked before
 * for it, and bumps its generation: references from before (stale delivery
 * reports) no longer match. Returns the new generation, or 0 on out of memory
 * or a negative p (generations start at 1). */
uint32_t sl_offsets_add_partition(sl_offsets_t *o, int32_t p);

/* Stops tracking partition p (in-flight entries are forgotten). Unknown p is a no-op. */
void sl_offsets_remove_partition(sl_offsets_t *o, int32_t p);

/* Current generation of p, 0 when p is not tracked. */
uint32_t sl_offsets_generation(const sl_offsets_t *o, int32_t p);

/* Registers entry `offset` of p, in flight. SL_ERR_STATE if p is
 * not tracked, SL_ERR_INVAL if offset is not above the last tracked one
 * (librdkafka delivers a partition in order; a rewind must re-add the
 * partition), SL_ERR_NOMEM; on error nothing changed. */
sl_err_t sl_offsets_track(sl_offsets_t *o, int32_t p, int64_t offset);

/* Marks the entry done; the committable offset may advance. SL_ERR_STATE
 * (nothing changed) if p/gen/offset do not name an entry in flight, e.g. a
 * stale delivery report after the partition was revoked. */
sl_err_t sl_offsets_release(sl_offsets_t *o, int32_t p, uint32_t gen, int64_t offset);

/* Next offset to commit for p (one past the last message of the done
 * prefix), or SL_OFFSET_NONE when nothing is done since p was added. */
int64_t sl_offsets_committable(const sl_offsets_t *o, int32_t p);

/* Entries of p tracked and not yet done (0 for unknown p). */
size_t sl_offsets_pending(const sl_offsets_t *o, int32_t p);

#endif
