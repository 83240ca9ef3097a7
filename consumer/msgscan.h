/* msgscan.h - structural pre-scan and framing of untrusted msgpack, before anything allocates. */
#ifndef SL_MSGSCAN_H
#define SL_MSGSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"

/* The scanner walks msgpack headers only: it never allocates and never reads
 * past the bytes it is given. It checks what msgpack-c and the decoder would
 * otherwise trust: every declared length or element count against the bytes
 * that can still follow (so no declared size can make anyone reserve memory
 * for elements that are not there), nesting depth, the reserved byte 0xc1,
 * and a per-object size cap. A complete object that passed holds at most one
 * element per byte, so any consumer's per-element cost is bounded by size. */

#define SL_MSGSCAN_DEPTH_LIMIT 32 /* hard bound on max_depth (state stack size) */
#define SL_MP_MAX_HEAD 9          /* longest msgpack header or scalar, in bytes */

/* --- One msgpack header ----------------------------------------------- */

typedef enum sl_mp_kind {
    SL_MP_NIL,
    SL_MP_BOOL,
    SL_MP_UINT,  /* v.u */
    SL_MP_INT,   /* v.i, negative */
    SL_MP_F32,   /* v.f */
    SL_MP_F64,   /* v.f */
    SL_MP_STR,   /* len payload bytes follow the header */
    SL_MP_BIN,   /* len payload bytes follow the header */
    SL_MP_EXT,   /* len data bytes follow the header (the type byte is in the header) */
    SL_MP_ARRAY, /* len elements follow */
    SL_MP_MAP,   /* len key/value pairs follow */
} sl_mp_kind_t;

/* A decoded header. For scalars the header is the whole value. */
typedef struct sl_mp_head {
    sl_mp_kind_t kind;
    uint32_t hlen; /* header bytes */
    uint64_t len;  /* str/bin/ext payload bytes, array elements or map pairs */
    union {
        uint64_t u;
        int64_t i;
        double f;
        int b;
    } v;
} sl_mp_head_t;

static inline uint16_t sl_mp_be16(const uint8_t *p) {
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}
static inline uint32_t sl_mp_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t sl_mp_be64(const uint8_t *p) {
    return (uint64_t)sl_mp_be32(p) << 32 | sl_mp_be32(p + 4);
}

/* Length of the header starting with byte b (0 for the reserved 0xc1). */
static inline uint32_t sl_mp_head_len(uint8_t b) {
    if (b <= 0xbf || b >= 0xe0)
        return 1; /* fixint, fixmap, fixarray, fixstr, negative fixint */
    static const uint8_t len_c0[32] = {
        1, 0, 1, 1,    /* nil, (reserved), false, true */
        2, 3, 5,       /* bin8/16/32 */
        3, 4, 6,       /* ext8/16/32 (length + type byte) */
        5, 9,          /* float32/64 */
        2, 3, 5, 9,    /* uint8..64 */
        2, 3, 5, 9,    /* int8..64 */
        2, 2, 2, 2, 2, /* fixext1/2/4/8/16: marker + type; data counted as payload */
        2, 3, 5,       /* str8/16/32 */
        3, 5, 3, 5,    /* array16/32, map16/32 */
    };
    return len_c0[b - 0xc0];
}

/* Decodes the header at p given `avail` readable bytes. Returns the header
 * length (> 0), 0 when more bytes are needed to read it, or -1 for the
 * reserved byte 0xc1. Reads nothing beyond min(avail, header length). */
static inline int sl_mp_read_head(const uint8_t *p, size_t avail, sl_mp_head_t *h) {
    if (avail == 0)
        return 0;
    uint8_t b = p[0];
    h->len = 0;
    if (b <= 0x7f) {
        h->kind = SL_MP_UINT, h->v.u = b, h->hlen = 1;
        return 1;
    }
    if (b >= 0xe0) {
        h->kind = SL_MP_INT, h->v.i = (int8_t)b, h->hlen = 1;
        return 1;
    }
    if (b <= 0x8f) {
        h->kind = SL_MP_MAP, h->len = b & 0x0f, h->hlen = 1;
        return 1;
    }
    if (b <= 0x9f) {
        h->kind = SL_MP_ARRAY, h->len = b & 0x0f, h->hlen = 1;
        return 1;
    }
    if (b <= 0xbf) {
        h->kind = SL_MP_STR, h->len = b & 0x1f, h->hlen = 1;
        return 1;
    }
    uint32_t hl = sl_mp_head_len(b);
    if (hl == 0)
        return -1;
    if (avail < hl)
        return 0;
    h->hlen = hl;
    const uint8_t *q = p + 1;
    switch (b) {
    case 0xc0: h->kind = SL_MP_NIL; break;
    case 0xc2: h->kind = SL_MP_BOOL, h->v.b = 0; break;
    case 0xc3: h->kind = SL_MP_BOOL, h->v.b = 1; break;
    case 0xc4: h->kind = SL_MP_BIN, h->len = q[0]; break;
    case 0xc5: h->kind = SL_MP_BIN, h->len = sl_mp_be16(q); break;
    case 0xc6: h->kind = SL_MP_BIN, h->len = sl_mp_be32(q); break;
    case 0xc7: h->kind = SL_MP_EXT, h->len = q[0]; break;
    case 0xc8: h->kind = SL_MP_EXT, h->len = sl_mp_be16(q); break;
    case 0xc9: h->kind = SL_MP_EXT, h->len = sl_mp_be32(q); break;
    case 0xca: {
        uint32_t bits = sl_mp_be32(q);
        float f;
        memcpy(&f, &bits, 4);
        h->kind = SL_MP_F32, h->v.f = f;
        break;
    }
    case 0xcb: {
        uint64_t bits = sl_mp_be64(q);
        memcpy(&h->v.f, &bits, 8);
        h->kind = SL_MP_F64;
        break;
    }
    case 0xcc: h->kind = SL_MP_UINT, h->v.u = q[0]; break;
    case 0xcd: h->kind = SL_MP_UINT, h->v.u = sl_mp_be16(q); break;
    case 0xce: h->kind = SL_MP_UINT, h->v.u = sl_mp_be32(q); break;
    case 0xcf: h->kind = SL_MP_UINT, h->v.u = sl_mp_be64(q); break;
    case 0xd0: h->kind = SL_MP_INT, h->v.i = (int8_t)q[0]; break;
    case 0xd1: h->kind = SL_MP_INT, h->v.i = (int16_t)sl_mp_be16(q); break;
    case 0xd2: h->kind = SL_MP_INT, h->v.i = (int32_t)sl_mp_be32(q); break;
    case 0xd3: h->kind = SL_MP_INT, h->v.i = (int64_t)sl_mp_be64(q); break;
    case 0xd4: h->kind = SL_MP_EXT, h->len = 1; break;
    case 0xd5: h->kind = SL_MP_EXT, h->len = 2; break;
    case 0xd6: h->kind = SL_MP_EXT, h->len = 4; break;
    case 0xd7: h->kind = SL_MP_EXT, h->len = 8; break;
    case 0xd8: h->kind = SL_MP_EXT, h->len = 16; break;
    case 0xd9: h->kind = SL_MP_STR, h->len = q[0]; break;
    case 0xda: h->kind = SL_MP_STR, h->len = sl_mp_be16(q); break;
    case 0xdb: h->kind = SL_MP_STR, h->len = sl_mp_be32(q); break;
    case 0xdc: h->kind = SL_MP_ARRAY, h->len = sl_mp_be16(q); break;
    case 0xdd: h->kind = SL_MP_ARRAY, h->len = sl_mp_be32(q); break;
    case 0xde: h->kind = SL_MP_MAP, h->len = sl_mp_be16(q); break;
    default: h->kind = SL_MP_MAP, h->len = sl_mp_be32(q); break; /* 0xdf */
    }
    /* Signed encodings of non-negative values read as unsigned, so a caller
     * sees one kind per sign. */
    if (h->kind == SL_MP_INT && h->v.i >= 0) {
        int64_t i = h->v.i;
        h->kind = SL_MP_UINT, h->v.u = (uint64_t)i;
    }
    return (int)hl;
}

/* Payload bytes following a header (str/bin/ext data), 0 for other kinds. */
static inline uint64_t sl_mp_payload(const sl_mp_head_t *h) {
    return (h->kind == SL_MP_STR || h->kind == SL_MP_BIN || h->kind == SL_MP_EXT) ? h->len : 0;
}

/* A short name of the kind for messages ("int", "float", "str", ...); static. */
const char *sl_mp_kind_name(sl_mp_kind_t kind);

/* --- Incremental framing ---------------------------------------------- */

typedef enum sl_scan_status {
    /* A complete object is buf[0 .. r->len). Use it, drop r->len bytes from
     * the front of the buffer, call again for the next one. */
    SL_SCAN_OBJECT = 0,
    /* Every byte given belongs to the unfinished current object. Drop r->skip
     * bytes (non-zero only while discarding an oversize object), append more
     * input, call again. The scanner remembers how far it got: bytes are
     * scanned once however often they are re-offered. */
    SL_SCAN_NEED_MORE = 1,
    /* The bytes at the front are not a valid object (r->err says why: bad
     * byte, nesting, or - only when eof was set - truncation). Drop r->skip
     * bytes (>= 1: up to and including the failure point) and call again. */
    SL_SCAN_INVALID = 2,
    /* The current object is over max_bytes (r->err says so). Reported once,
     * as soon as it is known. Drop r->skip bytes; the scanner then discards
     * the rest of the object across further calls (SL_SCAN_NEED_MORE with
     * skip > 0), without the caller ever buffering it, and ends with
     * SL_SCAN_SKIPPED. */
    SL_SCAN_TOO_BIG = 3,
    /* The oversize object being discarded has ended (or the input ended, or
     * it turned out invalid). Drop r->skip bytes and call again. */
    SL_SCAN_SKIPPED = 4,
    /* eof was set and no bytes remain: the input ended cleanly. */
    SL_SCAN_END = 5,
} sl_scan_status_t;

/* What a call found; see sl_scan_status_t for which fields are set. */
typedef struct sl_scan_result {
    size_t len;    /* SL_SCAN_OBJECT: object length */
    size_t skip;   /* bytes to drop before the next call */
    sl_err_t code; /* SL_SCAN_INVALID: SL_ERR_DECODE or SL_ERR_TRUNCATED; TOO_BIG: SL_ERR_TOO_BIG */
    char err[160]; /* INVALID / TOO_BIG: "message: ..." */
} sl_scan_result_t;

/* Resumable scanner state. Plain data: set it up with sl_msgscan_init; no
 * destroy needed. One scanner follows one byte stream. */
typedef struct sl_msgscan {
    size_t max_bytes;   /* per-object cap */
    uint32_t max_depth; /* containers that may be open at once */
    size_t pos;         /* bytes of the current buffer already scanned */
    uint64_t dropped;   /* bytes of the current object already dropped (skip mode) */
    uint64_t payload_left;
    uint32_t depth;
    uint32_t outer; /* containers open around the object (sl_msgscan_nest) */
    int skipping;
    uint64_t left[SL_MSGSCAN_DEPTH_LIMIT]; /* items still due per open container */
} sl_msgscan_t;

/* Sets up a scanner for objects of at most max_bytes bytes and at most
 * max_depth nested containers (clamped to 1..SL_MSGSCAN_DEPTH_LIMIT). */
void sl_msgscan_init(sl_msgscan_t *s, size_t max_bytes, uint32_t max_depth);

/* Makes the next object count as a value nested inside `outer` containers
 * of an enclosing message, starting at byte `base_offset` of it: depth
 * limits count the outer containers and error texts give message offsets.
 * For checking one value inside a message; a stream scanner never needs it. */
void sl_msgscan_nest(sl_msgscan_t *s, uint32_t outer, size_t base_offset);

/* Scans the stream bytes buf[0 .. len) for the next top-level object. buf must
 * start where the previous call said the caller's data continues (after
 * dropping what it said to drop); it may hold more than one object. Set eof
 * when no more bytes will ever follow buf: an unfinished object is then
 * reported as truncated (SL_SCAN_INVALID, SL_ERR_TRUNCATED) and an empty
 * buffer as SL_SCAN_END. Because an object over max_bytes is reported as soon
 * as a header makes it so, the caller never has to hold more than
 * max_bytes + SL_MP_MAX_HEAD bytes. Cannot fail otherwise; never allocates. */
sl_scan_status_t sl_msgscan_feed(sl_msgscan_t *s, const uint8_t *buf, size_t len, int eof,
                                 sl_scan_result_t *r);

/* Checks that buf[0 .. len) is exactly one complete object within the limits
 * (a Kafka message). Returns SL_OK, or SL_ERR_TOO_BIG, SL_ERR_TRUNCATED,
 * SL_ERR_DECODE with errstr saying what and at which offset ("message: 3
 * trailing bytes after the sample", "message: nesting deeper than 8 levels").
 * Never allocates. */
sl_err_t sl_msgscan_check(const uint8_t *buf, size_t len, size_t max_bytes, uint32_t max_depth,
                          char *errstr, size_t errstr_size);

#endif
