/* msgscan.c - structural pre-scan and framing of untrusted msgpack. */

#include "msgscan.h"

#include <inttypes.h>
#include <stdio.h>

const char *sl_mp_kind_name(sl_mp_kind_t kind) {
    switch (kind) {
    case SL_MP_NIL: return "nil";
    case SL_MP_BOOL: return "bool";
    case SL_MP_UINT:
    case SL_MP_INT: return "int";
    case SL_MP_F32:
    case SL_MP_F64: return "float";
    case SL_MP_STR: return "str";
    case SL_MP_BIN: return "bin";
    case SL_MP_EXT: return "ext";
    case SL_MP_ARRAY: return "array";
    case SL_MP_MAP: return "map";
    }
    return "unknown";
}

void sl_msgscan_init(sl_msgscan_t *s, size_t max_bytes, uint32_t max_depth) {
    memset(s, 0, sizeof(*s));
    s->max_bytes = max_bytes;
    if (max_depth < 1)
        max_depth = 1;
    if (max_depth > SL_MSGSCAN_DEPTH_LIMIT)
        max_depth = SL_MSGSCAN_DEPTH_LIMIT;
    s->max_depth = max_depth;
}

void sl_msgscan_nest(sl_msgscan_t *s, uint32_t outer, size_t base_offset) {
    s->outer = outer;
    s->dropped = base_offset;
}

/* Forgets the current object, keeping the limits. */
static void reset_object(sl_msgscan_t *s) {
    s->outer = 0;
    s->pos = 0;
    s->dropped = 0;
    s->payload_left = 0;
    s->depth = 0;
    s->skipping = 0;
}

/* Total length of values whose length the first byte alone gives (ints,
 * floats, nil, bools, fixstr, fixext); 0 for everything else. */
static const uint8_t fixed_len[256] = {
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x00 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x10 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x20 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x30 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x40 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x50 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x60 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0x70 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x80 fixmap */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x90 fixarray */
    1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, /* 0xa0 fixstr */
    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, /* 0xb0 */
    1,  0,  1,  1,  0,  0,  0,  0,  0,  0,  5,  9,  2,  3,  5,  9,  /* 0xc0 */
    2,  3,  5,  9,  3,  4,  6,  10, 18, 0,  0,  0,  0,  0,  0,  0,  /* 0xd0 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0xe0 */
    1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  1,  /* 0xf0 */
};

/* Ends the call with the object complete or failed: the scanner is ready for
 * the next object. */
static sl_scan_status_t finish(sl_msgscan_t *s, sl_scan_status_t st, size_t skip,
                               sl_scan_result_t *r) {
    r->skip = skip;
    reset_object(s);
    return st;
}

/* Reports an invalid object. While discarding an oversize object (already
 * reported), the discard just ends there. */
static sl_scan_status_t invalid(sl_msgscan_t *s, size_t skip, sl_err_t code, sl_scan_result_t *r) {
    if (s->skipping)
        return finish(s, SL_SCAN_SKIPPED, skip, r);
    r->code = code;
    return finish(s, SL_SCAN_INVALID, skip, r);
}

/* Minimum bytes a header commits the object to after the header itself. */
static uint64_t declared_bytes(const sl_mp_head_t *h) {
    if (h->kind == SL_MP_ARRAY)
        return h->len;
    if (h->kind == SL_MP_MAP)
        return 2 * h->len;
    return sl_mp_payload(h);
}

static const char *declared_unit(const sl_mp_head_t *h) {
    return (h->kind == SL_MP_ARRAY || h->kind == SL_MP_MAP) ? "elements" : "bytes";
}

enum header_step {
    H_CONTINUE,  /* a container opened or a payload started */
    H_VALUE_END, /* a value ended (empty container) */
    H_NEED_MORE, /* the header is cut short */
    H_DONE,      /* the call ends with *status */
};

/* Handles a header that is not a fixed-size scalar: checks, then opens a
 * container or starts a payload. *pos and *depth are the caller's working
 * copies; *over is set when this header makes the object too big (the
 * scanner then discards it). */
static enum header_step slow_header(sl_msgscan_t *s, const uint8_t *buf, size_t len, int eof,
                                    size_t *pos, uint32_t *depth, int *over,
                                    sl_scan_status_t *status, sl_scan_result_t *r) {
    size_t at = *pos;
    uint64_t obj_at = s->dropped + at; /* offset within the object */
    sl_mp_head_t h;
    int hl = sl_mp_read_head(buf + at, len - at, &h);
    if (hl == 0)
        return H_NEED_MORE;
    if (hl < 0) {
        snprintf(r->err, sizeof(r->err), "message: reserved byte 0xc1 at offset %" PRIu64, obj_at);
        *status = invalid(s, at + 1, SL_ERR_DECODE, r);
        return H_DONE;
    }
    int is_container = h.kind == SL_MP_ARRAY || h.kind == SL_MP_MAP;
    if (is_container && *depth + s->outer >= s->max_depth) {
        snprintf(r->err, sizeof(r->err), "message: nesting deeper than %" PRIu32 " levels",
                 s->max_depth);
        *status = invalid(s, at + 1, SL_ERR_DECODE, r);
        return H_DONE;
    }
    uint64_t need = declared_bytes(&h);
    size_t remain = len - at - (size_t)hl;
    if (eof && need > remain) {
        snprintf(r->err, sizeof(r->err),
                 "message: truncated: %s at offset %" PRIu64 " declares %" PRIu64
                 " %s, only %zu bytes remain",
                 sl_mp_kind_name(h.kind), obj_at, h.len, declared_unit(&h), remain);
        *status = invalid(s, len, SL_ERR_TRUNCATED, r);
        return H_DONE;
    }
    if (!s->skipping &&
        (obj_at + (uint64_t)hl > s->max_bytes || need > s->max_bytes - obj_at - (uint64_t)hl)) {
        snprintf(r->err, sizeof(r->err), "message: over the %zu-byte limit", s->max_bytes);
        r->code = SL_ERR_TOO_BIG;
        s->skipping = 1;
        *over = 1;
    }
    *pos = at + (size_t)hl;
    if (is_container && h.len > 0) {
        s->left[(*depth)++] = h.kind == SL_MP_MAP ? 2 * h.len : h.len;
        return H_CONTINUE;
    }
    if (sl_mp_payload(&h) > 0) {
        s->payload_left = h.len;
        return H_CONTINUE;
    }
    return H_VALUE_END;
}

sl_scan_status_t sl_msgscan_feed(sl_msgscan_t *s, const uint8_t *buf, size_t len, int eof,
                                 sl_scan_result_t *r) {
    r->len = 0;
    r->skip = 0;
    r->code = SL_OK;
    r->err[0] = '\0';
    if (s->pos > len) /* the caller offered fewer bytes than it kept: start over */
        reset_object(s);

    /* Working copies: stores through s would force reloads on every byte. */
    size_t pos = s->pos;
    uint32_t depth = s->depth;
    uint64_t *left = s->left;
    const uint64_t base = s->dropped;
    const uint64_t cap = s->skipping ? UINT64_MAX : s->max_bytes;
    int too_big = 0;

    for (;;) {
        if (s->payload_left > 0) {
            size_t avail = len - pos;
            size_t take = s->payload_left < avail ? (size_t)s->payload_left : avail;
            pos += take;
            s->payload_left -= take;
            if (s->payload_left > 0)
                break;
        } else {
            if (pos == len)
                break;
            /* Predictable branches for the common scalars let the CPU run
             * ahead instead of waiting on each table load. */
            uint8_t b0 = buf[pos];
            uint32_t fl = b0 == 0xcb ? 9 : b0 == 0xca ? 5 : b0 < 0x80 ? 1 : fixed_len[b0];
            uint32_t n = b0 & 0x0f;
            if (fl != 0 && fl <= len - pos && base + pos + fl <= cap) {
                pos += fl;
            } else if ((b0 & 0xe0) == 0x80 && n > 0 && depth + s->outer < s->max_depth &&
                       base + pos + 1 + 2 * n <= cap && (!eof || 2 * n < len - pos)) {
                /* fixmap / fixarray (the bound of 2n items is loose for an
                 * array: the slow path gives the exact answer) */
                left[depth++] = b0 < 0x90 ? 2 * n : n;
                pos++;
                continue;
            } else if ((b0 == 0xc4 || b0 == 0xd9) && len - pos >= 2 &&
                       (size_t)buf[pos + 1] + 2 <= len - pos &&
                       base + pos + 2 + buf[pos + 1] <= cap) {
                pos += 2 + (size_t)buf[pos + 1]; /* bin8 / str8, whole */
            } else {
                sl_scan_status_t status;
                enum header_step step =
                    slow_header(s, buf, len, eof, &pos, &depth, &too_big, &status, r);
                if (step == H_NEED_MORE)
                    break;
                if (step == H_DONE)
                    return status;
                if (step == H_CONTINUE) {
                    if (too_big)
                        goto report_too_big;
                    continue;
                }
            }
        }
        /* One value has ended: count it, closing complete containers. */
        for (;;) {
            if (depth == 0)
                goto complete;
            if (--left[depth - 1] > 0)
                break;
            depth--;
        }
        if (too_big)
            goto report_too_big;
    }

    /* Out of bytes inside an object (or before one). */
    s->depth = depth;
    if (s->skipping) {
        if (eof)
            return finish(s, SL_SCAN_SKIPPED, len, r);
        r->skip = pos;
        s->dropped += pos;
        s->pos = 0;
        return SL_SCAN_NEED_MORE;
    }
    if (eof) {
        if (len == 0)
            return finish(s, SL_SCAN_END, 0, r);
        snprintf(r->err, sizeof(r->err), "message: truncated after %" PRIu64 " bytes",
                 s->dropped + len);
        r->code = SL_ERR_TRUNCATED;
        return finish(s, SL_SCAN_INVALID, len, r);
    }
    s->pos = pos;
    return SL_SCAN_NEED_MORE;

report_too_big:
    /* Reported once, as soon as a header made the object too big; the rest
     * is discarded on later calls. */
    s->depth = depth;
    r->skip = pos;
    s->dropped += pos;
    s->pos = 0;
    return SL_SCAN_TOO_BIG;

complete:
    if (s->skipping) {
        if (too_big) { /* it ended at the very header that made it too big */
            r->skip = pos;
            reset_object(s);
            return SL_SCAN_TOO_BIG;
        }
        return finish(s, SL_SCAN_SKIPPED, pos, r);
    }
    r->len = pos;
    return finish(s, SL_SCAN_OBJECT, 0, r);
}

sl_err_t sl_msgscan_check(const uint8_t *buf, size_t len, size_t max_bytes, uint32_t max_depth,
                          char *errstr, size_t errstr_size) {
    if (len > max_bytes) {
        sl_errstr_set(errstr, errstr_size, "message: %zu bytes over the %zu-byte limit", len,
                      max_bytes);
        return SL_ERR_TOO_BIG;
    }
    if (len == 0) {
        sl_errstr_set(errstr, errstr_size, "message: empty");
        return SL_ERR_TRUNCATED;
    }
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, max_bytes, max_depth);
    sl_scan_status_t st = sl_msgscan_feed(&s, buf, len, 1, &r);
    if (st == SL_SCAN_OBJECT) {
        if (r.len == len)
            return SL_OK;
        sl_errstr_set(errstr, errstr_size, "message: %zu trailing bytes after the %s", len - r.len,
                      (buf[0] & 0xf0) == 0x90 || buf[0] == 0xdc || buf[0] == 0xdd ? "sample array"
                                                                                  : "sample");
        return SL_ERR_DECODE;
    }
    /* len <= max_bytes, so only INVALID is possible here. */
    sl_errstr_set(errstr, errstr_size, "%s", r.err);
    return r.code != SL_OK ? r.code : SL_ERR_DECODE;
}
