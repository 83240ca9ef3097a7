/* offsets.h - per-partition bookkeeping of which input offsets are done (prediction
 * delivered and step applied) and the next offset that may be committed. */
#ifndef SL_OFFSETS_H
#define SL_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* "No offset": nothing committable yet, or an unknown partition. Equal to
 * librdkafka's RD_KAFKA_OFFSET_INVALID. */
#define SL_OFFSET_NONE ((int64_t)-1001)

/* Tracks in-flight messages of one input topic, per partition. A message
 * enters with sl_offsets_track (holding one reference for its optimizer
 * step); each output produced for it adds a reference (sl_offsets_hold);
 * each delivery report or the applied step drops one (sl_offsets_release).
 * A message is done when its references reach zero. Messages of a partition
 * are tracked in increasing offset order (gaps are allowed: compaction,
 * transaction markers), and the committable offset is one past the last
 * message of the longest done prefix, so a commit never skips a message
 * still in flight. Not thread-safe: the worker's thread owns it. */
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

/* Registers message `offset` of p with one reference. SL_ERR_STATE if p is
 * not tracked, SL_ERR_INVAL if offset is not above the last tracked one
 * (librdkafka delivers a partition in order; a rewind must re-add the
 * partition), SL_ERR_NOMEM; on error nothing changed. */
sl_err_t sl_offsets_track(sl_offsets_t *o, int32_t p, int64_t offset);

/* Adds one reference to a tracked, not yet done message of generation gen.
 * SL_ERR_STATE if p/gen/offset do not name one (nothing changed). */
sl_err_t sl_offsets_hold(sl_offsets_t *o, int32_t p, uint32_t gen, int64_t offset);

/* Drops one reference; at zero the message is done and the committable
 * offset may advance. SL_ERR_STATE (nothing changed) if p/gen/offset do not
 * name a message with references, e.g. a stale delivery report after the
 * partition was revoked. */
sl_err_t sl_offsets_release(sl_offsets_t *o, int32_t p, uint32_t gen, int64_t offset);

/* Next offset to commit for p (one past the last message of the done
 * prefix), or SL_OFFSET_NONE when nothing is done since p was added. */
int64_t sl_offsets_committable(const sl_offsets_t *o, int32_t p);

/* Messages of p tracked and not yet done (0 for unknown p). */
size_t sl_offsets_pending(const sl_offsets_t *o, int32_t p);

/* Messages not yet done over all partitions. */
size_t sl_offsets_pending_total(const sl_offsets_t *o);

/* Calls fn for every tracked partition, in increasing partition order. */
void sl_offsets_foreach(const sl_offsets_t *o, void (*fn)(void *arg, int32_t p, int64_t next),
                        void *arg);

#endif
