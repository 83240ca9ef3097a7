/* keylog.h - an arrival-ordered log of variable-size records with an index by id: the storage
 * under the delayed-label join (slab pages, an intrusive FIFO list, open addressing). */
#ifndef SL_KEYLOG_H
#define SL_KEYLOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Records live in slots of slab pages (4-64 KiB, one page of its own for a record over
 * 64 KiB), one size class per 8 bytes of record size up to 512 bytes and eight per doubling
 * above, so a record costs its size rounded up to its class, plus one 8-byte index slot: no
 * malloc per record. A removed record's slot is reused by the next record of its class at
 * once, so a log whose records leave in any order (matches) holds no dead bytes and nothing
 * is ever copied to reclaim them; a page whose slots are all free goes back to the allocator.
 * Arrival order is an intrusive doubly-linked list through the records, so the oldest is
 * found, and removed, in O(1). The index is open addressing with linear probing and
 * backward-shift deletion (no tombstones), keyed by a 64-bit hash of the id (the caller
 * computes it once with sl_keylog_hash) and confirmed by comparing the id bytes.
 * Not thread-safe. */

/* The fixed head of every record. The owner's payload follows it (8-aligned), the id bytes
 * end the record. */
typedef struct sl_keylog_rec {
    uint32_t size;       /* header + payload + id bytes */
    uint16_t id_len;     /* 1..SL_KEYLOG_MAX_ID */
    uint8_t live;        /* 1 while in the log */
    uint8_t user;        /* free for the owner (flags) */
    int64_t time;        /* arrival, in the owner's unit; appends should not go back in time */
    uint32_t prev, next; /* arrival-order neighbours (handles), kept by the log */
} sl_keylog_rec_t;

#define SL_KEYLOG_MAX_ID 65535u

typedef struct sl_keylog sl_keylog_t;

/* Position of an iteration over live records, oldest first. */
typedef struct sl_keylog_iter {
    const sl_keylog_t *kl;
    uint32_t next;
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

/* Bytes a record of `size` bytes occupies: its size class (8-byte steps up to 512, then
 * eight classes per doubling). */
static inline uint32_t sl_keylog_class(uint32_t size) {
    if (size <= 512)
        return (size + 7u) & ~7u;
    uint32_t e = 31u - (uint32_t)__builtin_clz(size - 1); /* 2^e < size <= 2^(e+1) */
    uint32_t step = 1u << (e - 3);
    return (size + step - 1) & ~(step - 1);
}
static inline uint32_t sl_keylog_stride(const sl_keylog_rec_t *r) {
    return sl_keylog_class(r->size);
}

/* Creates an empty log. NULL on out of memory. Free with sl_keylog_destroy. */
sl_keylog_t *sl_keylog_new(void);

/* Frees the log and every record; NULL is a no-op. */
void sl_keylog_destroy(sl_keylog_t *kl);

/* Appends a live record for id[0..id_len) (copied) with `payload_len` bytes of payload
 * left for the caller to fill through sl_keylog_payload, arriving at `time`, indexed under
 * `hash` (= sl_keylog_hash(id, id_len)). It does not look for an existing record with the
 * same id: the owner decides what a repeated id means. Returns the record, valid until it is
 * removed or popped (records never move), or NULL: out of memory (*err = SL_ERR_NOMEM), an
 * id_len of 0 or over SL_KEYLOG_MAX_ID, or a record over 1 GiB (*err = SL_ERR_INVAL). On
 * failure the log is as it was. */
sl_keylog_rec_t *sl_keylog_append(sl_keylog_t *kl, const uint8_t *id, size_t id_len, uint64_t hash,
                                  size_t payload_len, int64_t time, sl_err_t *err);

/* The live record with this id (one of them if several share it), or NULL. */
sl_keylog_rec_t *sl_keylog_find(const sl_keylog_t *kl, const uint8_t *id, size_t id_len,
                                uint64_t hash);

/* Starts loading the index slots a find for `hash` reads first, and (once those are in) the
 * record it compares first: a caller handling a group of ids issues these for the whole group
 * before the finds, so their cache misses overlap. They change nothing. */
void sl_keylog_prefetch(const sl_keylog_t *kl, uint64_t hash);
void sl_keylog_prefetch_record(const sl_keylog_t *kl, uint64_t hash);
/* Then (once the record is in) what removing it writes: its neighbours and its page. */
void sl_keylog_prefetch_neighbours(const sl_keylog_t *kl, uint64_t hash);

/* Removes live record r (found in this log; hash is its id's hash); its slot is free for the
 * next append at once. Cannot fail. */
void sl_keylog_remove(sl_keylog_t *kl, sl_keylog_rec_t *r, uint64_t hash);

/* The oldest live record (first appended among those still in the log), or NULL. */
sl_keylog_rec_t *sl_keylog_oldest(const sl_keylog_t *kl);

/* Removes the oldest live record, if any. Cannot fail. */
void sl_keylog_pop(sl_keylog_t *kl);

/* Live records, and the bytes their slots take (size classes). */
size_t sl_keylog_count(const sl_keylog_t *kl);
uint64_t sl_keylog_bytes(const sl_keylog_t *kl);

/* Everything the log has allocated: pages (used and free slots), the index and the page
 * table. */
uint64_t sl_keylog_memory(const sl_keylog_t *kl);

/* Iterates over the live records, oldest first. Any change to the log ends the iteration's
 * validity. */
void sl_keylog_iter_init(const sl_keylog_t *kl, sl_keylog_iter_t *it);
sl_keylog_rec_t *sl_keylog_iter_next(sl_keylog_iter_t *it);

/* Debug check of every invariant (accounting, the arrival list, every live record indexed
 * exactly once, free lists, no index slot pointing at a free slot). Returns 0 when sound,
 * else -1 with errstr saying what is wrong. For tests; O(size). */
int sl_keylog_check(const sl_keylog_t *kl, char *errstr, size_t errstr_size);

#endif
