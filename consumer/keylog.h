/* keylog.h - an arrival-ordered log of variable-size records with an index by id: the storage
 * under the delayed-label join (segmented arena, open addressing, no per-record malloc). */
#ifndef SL_KEYLOG_H
#define SL_KEYLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Records live in segments (4-64 KiB, larger only for a record that needs it) chained in
 * append order, so oldest-first reads and pops walk memory forwards and a record costs its
 * bytes plus one 8-byte index slot, never a malloc. Removing a record from the middle (a
 * match) only marks it dead; when the bytes holding nothing live pass a quarter of the live
 * bytes, a cleaning pass packs the log from the front, sliding live records forward in order,
 * one segment per step, paced by appends and by sl_keylog_compact: waste stays under about a
 * fifth of the total without any long pause. The index is open addressing with linear probing and
 * backward-shift deletion (no tombstones), keyed by a 64-bit hash of the id (the caller
 * computes it once with sl_keylog_hash) and confirmed by comparing the id bytes.
 * Not thread-safe. */

/* The fixed head of every record. The owner's payload follows it (8-aligned), the id bytes
 * end the record. */
typedef struct sl_keylog_rec {
    uint32_t size;   /* header + payload + id bytes; the record occupies size rounded up to 8 */
    uint16_t id_len; /* 1..SL_KEYLOG_MAX_ID */
    uint8_t live;    /* 0 once removed or popped */
    uint8_t user;    /* free for the owner (flags) */
    int64_t time;    /* arrival, in the owner's unit; appends should not go back in time */
} sl_keylog_rec_t;

#define SL_KEYLOG_MAX_ID 65535u

typedef struct sl_keylog sl_keylog_t;

/* Position of an iteration over live records, oldest first. */
typedef struct sl_keylog_iter {
    const void *seg;
    uint32_t off;
} sl_keylog_iter_t;

/* The hash the index is keyed by (XXH3, 64 bits) of id[0..len). */
uint64_t sl_keylog_hash(const uint8_t *id, size_t len);

/* The payload of r (8-aligned) and its id bytes; valid as long as r is. */
static inline uint8_t *sl_keylog_payload(sl_keylog_rec_t *r) {
    return (uint8_t *)(r + 1);
}
static inline const uint8_t *sl_keylog_id(const sl_keylog_rec_t *r) {
    return (const uint8_t *)r + r->size - r->id_len;
}
/* Bytes r occupies in its segment. */
static inline uint32_t sl_keylog_stride(const sl_keylog_rec_t *r) {
    return (r->size + 7u) & ~7u;
}

/* Creates an empty log. NULL on out of memory. Free with sl_keylog_destroy. */
sl_keylog_t *sl_keylog_new(void);

/* Frees the log and every record; NULL is a no-op. */
void sl_keylog_destroy(sl_keylog_t *kl);

/* Appends a live record for id[0..id_len) (copied) with `payload_len` bytes of payload
 * left for the caller to fill through sl_keylog_payload, arriving at `time`, indexed under
 * `hash` (= sl_keylog_hash(id, id_len)). It does not look for an existing record with the
 * same id: the owner decides what a repeated id means. May first run one cleaning step.
 * Returns the record, valid until the next call that changes the log (append, remove, pop,
 * compact), or NULL: out of memory (*err = SL_ERR_NOMEM) or an id_len of 0 or over
 * SL_KEYLOG_MAX_ID, or a record over 4 GiB (*err = SL_ERR_INVAL). On failure the log is as
 * it was (apart from cleaning, which never changes what the log holds). */
sl_keylog_rec_t *sl_keylog_append(sl_keylog_t *kl, const uint8_t *id, size_t id_len, uint64_t hash,
                                  size_t payload_len, int64_t time, sl_err_t *err);

/* The live record with this id (one of them if several share it), or NULL. The pointer is
 * valid until the next call that changes the log. */
sl_keylog_rec_t *sl_keylog_find(const sl_keylog_t *kl, const uint8_t *id, size_t id_len,
                                uint64_t hash);

/* Removes live record r (found in this log; hash is its id's hash): it leaves the index at
 * once and its bytes are reclaimed later. Cannot fail. */
void sl_keylog_remove(sl_keylog_t *kl, sl_keylog_rec_t *r, uint64_t hash);

/* The oldest live record (first appended among those still live), or NULL when empty.
 * Frees segments that hold nothing live any more on the way. Valid until the next call
 * that changes the log. */
sl_keylog_rec_t *sl_keylog_oldest(sl_keylog_t *kl);

/* Removes the oldest live record, if any. Cannot fail. */
void sl_keylog_pop(sl_keylog_t *kl);

/* Live records, and the bytes they occupy (strides). */
size_t sl_keylog_count(const sl_keylog_t *kl);
uint64_t sl_keylog_bytes(const sl_keylog_t *kl);

/* Everything the log has allocated: segments (live, dead and free bytes), the index and the
 * segment table. */
uint64_t sl_keylog_memory(const sl_keylog_t *kl);

/* Runs up to `steps` cleaning steps (each handles at most one segment) when dead bytes are
 * over the threshold; a no-op otherwise. Records may move: pointers held are invalid after. */
void sl_keylog_compact(sl_keylog_t *kl, size_t steps);

/* Iterates over the live records, oldest first. Any change to the log ends the iteration's
 * validity. */
void sl_keylog_iter_init(const sl_keylog_t *kl, sl_keylog_iter_t *it);
sl_keylog_rec_t *sl_keylog_iter_next(sl_keylog_iter_t *it);

/* Debug check of every invariant (accounting, order of segments, every live record
 * indexed exactly once, no index slot pointing at a dead record). Returns 0 when sound,
 * else -1 with errstr saying what is wrong. For tests; O(size). */
int sl_keylog_check(const sl_keylog_t *kl, char *errstr, size_t errstr_size);

#endif
