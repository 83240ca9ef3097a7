/* decode.c - msgpack sample messages to batch rows and error slots. */

#include "decode.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/msgscan.h"
#include "consumer/murmur3.h"

/* One pass over the message does both jobs: it checks the structure
 * (every header and declared length against the bytes left, the reserved
 * byte, nesting; values of unknown keys through the msgscan pre-scan) and
 * extracts the fields. Nothing is allocated from a declared size, so
 * msgpack-c's hazard (reserving memory per declared element) does not arise;
 * msgpack-c is not used here because the raw id bytes must be kept and a
 * generic object tree costs more than the whole decode. A problem with the
 * message as a whole undoes the samples it had appended and leaves one
 * error slot instead. */

struct sl_decoder {
    sl_decode_config_t cfg;
    float *xrow;   /* dim floats: a dense sample when the batch has no row for it (CSR) */
    uint32_t *col; /* sparse entries of the sample being decoded */
    float *val;
    size_t sparse_cap;
    const uint8_t *msg; /* the message being decoded, for offsets */
    size_t msg_len;
    int msg_bad; /* the message as a whole is bad: msg_err says why */
    char msg_err[160];
    /* sl_decode_labels' output: the labels of the last message, and their error texts */
    sl_label_t *labels;
    size_t *label_err; /* offset of each label's error text in label_text; SIZE_MAX: none */
    size_t nlabels, labels_cap;
    sl_buf_t label_text;
};

/* A cursor over the message: every read is bounded by end. */
typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

/* The fields of one sample map as they are found. */
typedef struct sample {
    int have_x, have_y, have_w, have_id;
    int sparse;
    float *x; /* where a dense x goes: the batch's next row, or the decoder's xrow */
    size_t nnz;
    int labelled;
    float y, w;
    const uint8_t *id;
    size_t id_len;
    int bad;
    char err[160];
} sample_t;

sl_decoder_t *sl_decoder_new(const sl_decode_config_t *cfg, char *errstr, size_t errstr_size) {
    if (cfg->dim == 0) {
        sl_errstr_set(errstr, errstr_size, "decode config: dim must be >= 1");
        return NULL;
    }
    if (cfg->head != SL_HEAD_LINEAR && cfg->head != SL_HEAD_LOGISTIC &&
        cfg->head != SL_HEAD_SOFTMAX) {
        sl_errstr_set(errstr, errstr_size, "decode config: unknown head %d", (int)cfg->head);
        return NULL;
    }
    if (cfg->head == SL_HEAD_SOFTMAX && cfg->classes < 2) {
        sl_errstr_set(errstr, errstr_size, "decode config: softmax needs classes >= 2, got %u",
                      cfg->classes);
        return NULL;
    }
    sl_decoder_t *d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    d->cfg = *cfg;
    if (d->cfg.max_message_bytes == 0)
        d->cfg.max_message_bytes = SL_DECODE_DEFAULT_MAX_BYTES;
    d->xrow = calloc(cfg->dim, sizeof(float));
    if (!d->xrow)
        goto nomem;
    return d;
nomem:
    sl_decoder_destroy(d);
    sl_errstr_set(errstr, errstr_size, "decoder: out of memory");
    return NULL;
}

void sl_decoder_destroy(sl_decoder_t *d) {
    if (!d)
        return;
    free(d->xrow);
    free(d->col);
    free(d->val);
    free(d->labels);
    free(d->label_err);
    sl_buf_free(&d->label_text);
    free(d);
}

static int msg_fail(sl_decoder_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int msg_fail(sl_decoder_t *d, const char *fmt, ...) {
    if (!d->msg_bad) {
        d->msg_bad = 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->msg_err, sizeof(d->msg_err), fmt, ap);
        va_end(ap);
    }
    return 0;
}

/* Minimum bytes a header commits the message to after the header itself. */
static inline uint64_t declared_bytes(const sl_mp_head_t *h) {
    return h->kind == SL_MP_MAP ? 2 * h->len : h->kind == SL_MP_ARRAY ? h->len : sl_mp_payload(h);
}

/* Sets the message error for the header at the cursor that rd_head refused
 * (hl: what sl_mp_read_head returned). Returns 0. Out of line: bad input
 * is rare, and keeping its formatting apart lets rd_head inline. */
static __attribute__((noinline, cold)) int head_fail(sl_decoder_t *d, const rd_t *r,
                                                     const sl_mp_head_t *h, int hl) {
    size_t at = (size_t)(r->p - d->msg);
    if (hl == 0)
        return msg_fail(d, "message: truncated after %zu bytes", d->msg_len);
    if (hl < 0)
        return msg_fail(d, "message: reserved byte 0xc1 at offset %zu", at);
    return msg_fail(
        d, "message: truncated: %s at offset %zu declares %" PRIu64 " %s, only %zu bytes remain",
        sl_mp_kind_name(h->kind), at, h->len,
        h->kind == SL_MP_MAP || h->kind == SL_MP_ARRAY ? "elements" : "bytes",
        (size_t)(r->end - r->p) - (size_t)hl);
}

/* Reads the header at the cursor and checks what it declares against the
 * bytes left; advances past the header only. Returns 0 (message error set)
 * when the message is bad there. */
static inline int rd_head(sl_decoder_t *d, rd_t *r, sl_mp_head_t *h) {
    size_t avail = (size_t)(r->end - r->p);
    int hl = sl_mp_read_head(r->p, avail, h);
    if (hl <= 0 || declared_bytes(h) > avail - (size_t)hl)
        return head_fail(d, r, h, hl);
    r->p += hl;
    return 1;
}

/* Checks and steps over one whole value nested inside `open` containers.
 * Returns 0 (message error set) when it is malformed. */
static int rd_skip(sl_decoder_t *d, rd_t *r, uint32_t open) {
    if (r->p == r->end) /* the scanner would call this a clean end */
        return msg_fail(d, "message: truncated after %zu bytes", d->msg_len);
    sl_msgscan_t s;
    sl_scan_result_t res;
    sl_msgscan_init(&s, SIZE_MAX, SL_DECODE_MAX_DEPTH);
    sl_msgscan_nest(&s, open, (size_t)(r->p - d->msg));
    if (sl_msgscan_feed(&s, r->p, (size_t)(r->end - r->p), 1, &res) != SL_SCAN_OBJECT)
        return msg_fail(d, "%s", res.err);
    r->p += res.len;
    return 1;
}

static int is_number(const sl_mp_head_t *h) {
    return h->kind == SL_MP_UINT || h->kind == SL_MP_INT || h->kind == SL_MP_F32 ||
           h->kind == SL_MP_F64;
}

static double number(const sl_mp_head_t *h) {
    switch (h->kind) {
    case SL_MP_UINT: return (double)h->v.u;
    case SL_MP_INT: return (double)h->v.i;
    default: return h->v.f;
    }
}

static void fail(sample_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(sample_t *s, const char *fmt, ...) {
    if (s->bad)
        return; /* the first problem is the one reported */
    s->bad = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

/* Reads one number at the cursor. Returns 1 with *out set, 0 when the value
 * is not a number (sample error set; the caller re-skips x), or 0 with a
 * message error set. */
static inline int rd_number(sl_decoder_t *d, sample_t *s, rd_t *r, double *out, const char *what,
                            uint32_t i) {
    const uint8_t *p = r->p;
    /* float64, float32 and fixint are what producers write: keep them cheap. */
    if (r->end - p >= 9 && p[0] == 0xcb) {
        uint64_t bits = sl_mp_be64(p + 1);
        memcpy(out, &bits, 8);
        r->p = p + 9;
        return 1;
    }
    if (r->end - p >= 5 && p[0] == 0xca) {
        uint32_t bits = sl_mp_be32(p + 1);
        float f;
        memcpy(&f, &bits, 4);
        *out = f;
        r->p = p + 5;
        return 1;
    }
    if (r->end - p >= 1 && p[0] < 0x80) {
        *out = p[0];
        r->p = p + 1;
        return 1;
    }
    sl_mp_head_t h;
    if (!rd_head(d, r, &h))
        return 0;
    switch (h.kind) {
    case SL_MP_UINT: *out = (double)h.v.u; return 1;
    case SL_MP_INT: *out = (double)h.v.i; return 1;
    case SL_MP_F32:
    case SL_MP_F64: *out = h.v.f; return 1;
    default:
        if (what)
            fail(s, "%s: expected a number, got %s", what, sl_mp_kind_name(h.kind));
        else
            fail(s, "x[%" PRIu32 "]: expected a number, got %s", i, sl_mp_kind_name(h.kind));
        return 0;
    }
}

/* 1 when every one of x[0 .. n) is finite. One pass with no early exit, so
 * that the compiler vectorises it. */
static int all_finite(const float *x, uint32_t n) {
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        bad |= (bits & 0x7f800000u) == 0x7f800000u; /* exponent all ones: Inf or NaN */
    }
    return !bad;
}

/* Reads a dense x of dim elements that are all float32 (0xca) or all
 * float64 (0xcb) - the forms producers write - into row, with one bounds
 * check for the whole array and no exit inside the loop. Returns 1 with
 * the cursor after x; 0, cursor unchanged, for any other x (mixed forms,
 * ints, a non-finite value, too few bytes): the general loop then reads it
 * and words any error. */
static int x_float_run(float *row, uint32_t dim, rd_t *r) {
    const uint8_t *p = r->p;
    size_t avail = (size_t)(r->end - p);
    uint8_t other = 0; /* non-zero when some element has another marker */
    if (avail >= (size_t)dim * 5 && p[0] == 0xca) {
        for (uint32_t i = 0; i < dim; i++, p += 5) {
            uint32_t bits = sl_mp_be32(p + 1);
            other |= (uint8_t)(p[0] ^ 0xca);
            memcpy(&row[i], &bits, 4);
        }
    } else if (avail >= (size_t)dim * 9 && p[0] == 0xcb) {
        for (uint32_t i = 0; i < dim; i++, p += 9) {
            uint64_t bits = sl_mp_be64(p + 1);
            double v;
            memcpy(&v, &bits, 8);
            other |= (uint8_t)(p[0] ^ 0xcb);
            row[i] = (float)v; /* a finite double can round to Inf: the floats are checked */
        }
    } else {
        return 0;
    }
    if (other || !all_finite(row, dim))
        return 0;
    r->p = p;
    return 1;
}

static int x_array(sl_decoder_t *d, sample_t *s, rd_t *r, uint64_t n) {
    uint32_t dim = d->cfg.dim;
    if (n != dim) {
        fail(s, "x: expected %" PRIu32 " features, got %" PRIu64, dim, n);
        return 0;
    }
    if (x_float_run(s->x, dim, r))
        return 1;
    for (uint32_t i = 0; i < dim; i++) {
        double v;
        if (!rd_number(d, s, r, &v, NULL, i))
            return 0;
        float f = (float)v;
        if (!isfinite(f)) {
            fail(s, "x[%" PRIu32 "]: not a finite number", i);
            return 0;
        }
        s->x[i] = f;
    }
    return 1;
}

static int x_bin(sl_decoder_t *d, sample_t *s, rd_t *r, uint64_t n) {
    uint32_t dim = d->cfg.dim;
    if (n != (uint64_t)dim * 4) {
        fail(s, "x: expected %" PRIu64 " bytes (%" PRIu32 " float32), got %" PRIu64,
             (uint64_t)dim * 4, dim, n);
        return 0;
    }
    memcpy(s->x, r->p, (size_t)dim * 4); /* rd_head checked the payload is there */
    r->p += (size_t)dim * 4;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (uint32_t i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &s->x[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&s->x[i], &u, 4);
    }
#endif
    if (all_finite(s->x, dim))
        return 1;
    for (uint32_t i = 0; i < dim; i++) {
        if (!isfinite(s->x[i])) {
            fail(s, "x[%" PRIu32 "]: not a finite number", i);
            break;
        }
    }
    return 0;
}

static int x_map(sl_decoder_t *d, sample_t *s, rd_t *r, uint64_t pairs) {
    uint32_t dim = d->cfg.dim;
    if (pairs > d->sparse_cap) {
        /* At most one pair per two bytes of the message (rd_head checked). */
        uint32_t *col = realloc(d->col, (size_t)pairs * sizeof(uint32_t));
        if (col)
            d->col = col;
        float *val = realloc(d->val, (size_t)pairs * sizeof(float));
        if (val)
            d->val = val;
        if (!col || !val)
            return -1;
        d->sparse_cap = (size_t)pairs;
    }
    for (uint64_t k = 0; k < pairs; k++) {
        sl_mp_head_t h;
        if (!rd_head(d, r, &h))
            return 0;
        uint32_t idx;
        char what[64];
        if (h.kind == SL_MP_UINT) {
            if (h.v.u >= dim) {
                fail(s, "x: index %" PRIu64 " out of range 0..%" PRIu32, h.v.u, dim - 1);
                return 0;
            }
            idx = (uint32_t)h.v.u;
            snprintf(what, sizeof(what), "x[%" PRIu32 "]", idx);
        } else if (h.kind == SL_MP_INT) {
            fail(s, "x: index %" PRId64 " out of range 0..%" PRIu32, h.v.i, dim - 1);
            return 0;
        } else if (h.kind == SL_MP_STR) {
            idx = sl_murmur3_32(r->p, (size_t)h.len, 0) % dim;
            snprintf(what, sizeof(what), "x[\"%.*s\"]", h.len > 40 ? 40 : (int)h.len,
                     (const char *)r->p);
            r->p += h.len;
        } else {
            fail(s, "x: expected int or str keys, got a %s key", sl_mp_kind_name(h.kind));
            return 0;
        }
        double v;
        if (!rd_number(d, s, r, &v, what, 0))
            return 0;
        float f = (float)v;
        if (!isfinite(f)) {
            fail(s, "%s: not a finite number", what);
            return 0;
        }
        d->col[k] = idx;
        d->val[k] = f;
    }
    s->sparse = 1;
    s->nnz = (size_t)pairs;
    return 1;
}

/* Decodes x at the cursor. Returns 1 when good, 0 when the sample or the
 * message is bad (the caller re-skips x from its start to tell which), -1 on
 * out of memory. */
static int field_x(sl_decoder_t *d, sample_t *s, rd_t *r) {
    sl_mp_head_t h;
    if (!rd_head(d, r, &h))
        return 0;
    switch (h.kind) {
    case SL_MP_ARRAY: return x_array(d, s, r, h.len);
    case SL_MP_BIN: return x_bin(d, s, r, h.len);
    case SL_MP_MAP: return x_map(d, s, r, h.len);
    default: fail(s, "x: expected an array, bin or map, got %s", sl_mp_kind_name(h.kind)); return 0;
    }
}

static void field_y(const sl_decoder_t *d, sample_t *s, const sl_mp_head_t *h) {
    if (h->kind == SL_MP_NIL)
        return;
    if (!is_number(h)) {
        fail(s, "y: expected a number, got %s", sl_mp_kind_name(h->kind));
        return;
    }
    double v = number(h);
    switch (d->cfg.head) {
    case SL_HEAD_LINEAR:
        if (!isfinite((float)v)) {
            fail(s, "y: not a finite number");
            return;
        }
        break;
    case SL_HEAD_LOGISTIC:
        if (v != 0.0 && v != 1.0) {
            fail(s, "y: expected 0 or 1 for a logistic model, got %g", v);
            return;
        }
        break;
    case SL_HEAD_SOFTMAX: {
        uint32_t k = d->cfg.classes;
        if (!isfinite(v)) {
            fail(s, "y: not a finite number");
            return;
        }
        if (v != floor(v)) {
            fail(s, "y: class %g is not an integer", v);
            return;
        }
        if (h->kind == SL_MP_UINT && h->v.u >= k) {
            fail(s, "y: class %" PRIu64 " out of range 0..%" PRIu32, h->v.u, k - 1);
            return;
        }
        if (h->kind == SL_MP_INT) {
            fail(s, "y: class %" PRId64 " out of range 0..%" PRIu32, h->v.i, k - 1);
            return;
        }
        if (v < 0 || v >= k) {
            fail(s, "y: class %g out of range 0..%" PRIu32, v, k - 1);
            return;
        }
        break;
    }
    }
    s->labelled = 1;
    s->y = (float)v;
}

static void field_w(sample_t *s, const sl_mp_head_t *h) {
    if (h->kind == SL_MP_NIL)
        return;
    if (!is_number(h)) {
        fail(s, "w: expected a number, got %s", sl_mp_kind_name(h->kind));
        return;
    }
    double v = number(h);
    float w = (float)v;
    if (!isfinite(w) || !(w > 0.0f)) {
        fail(s, "w: expected a finite number > 0, got %g", v);
        return;
    }
    s->w = w;
}

static void field_id(sample_t *s, const sl_mp_head_t *h, const uint8_t *p, const uint8_t *vend) {
    switch (h->kind) {
    case SL_MP_ARRAY:
    case SL_MP_MAP:
    case SL_MP_EXT: fail(s, "id: expected a scalar, got %s", sl_mp_kind_name(h->kind)); return;
    default: s->id = p; s->id_len = (size_t)(vend - p);
    }
}

/* Which of the known keys a key is: 'x', 'y', 'w', 'i' (id), or 0. */
static int key_name(const sl_mp_head_t *h, const uint8_t *p) {
    if (h->kind != SL_MP_STR)
        return 0;
    if (h->len == 1 && (p[0] == 'x' || p[0] == 'y' || p[0] == 'w'))
        return p[0];
    if (h->len == 2 && p[0] == 'i' && p[1] == 'd')
        return 'i';
    return 0;
}

static sl_err_t push_bad(sl_batch_t *b, sl_decode_result_t *res, uint64_t tag, const char *err,
                         const uint8_t *id, size_t id_len) {
    sl_err_t e = sl_batch_push_error(b, err, tag, id, id_len);
    if (e != SL_OK)
        return e;
    if (res->bad++ == 0)
        snprintf(res->first_error, sizeof(res->first_error), "%s", err);
    return SL_OK;
}

/* Decodes the sample at the cursor (any value, nested in `open`
 * containers), appends its slot and leaves the cursor after it. A message
 * error (d->msg_bad) stops it; the caller then undoes the message. */
static sl_err_t decode_sample(sl_decoder_t *d, rd_t *r, uint32_t open, uint64_t tag, sl_batch_t *b,
                              sl_decode_result_t *res) {
    const uint8_t *start = r->p;
    sl_mp_head_t h;
    if (!rd_head(d, r, &h))
        return SL_OK;
    if (h.kind != SL_MP_MAP) {
        r->p = start;
        if (!rd_skip(d, r, open))
            return SL_OK;
        char err[96];
        snprintf(err, sizeof(err), "sample: expected a map, got %s", sl_mp_kind_name(h.kind));
        return push_bad(b, res, tag, err, NULL, 0);
    }
    open++;
    sample_t s;
    s.have_x = s.have_y = s.have_w = s.have_id = 0;
    s.sparse = 0;
    s.x = sl_batch_next_row(b); /* decoded in place: no copy on the way into the batch */
    if (!s.x)
        s.x = d->xrow;
    s.nnz = 0;
    s.labelled = 0;
    s.y = 0.0f;
    s.w = 1.0f;
    s.id = NULL;
    s.id_len = 0;
    s.bad = 0;
    s.err[0] = '\0';

    for (uint64_t i = 0; i < h.len; i++) {
        const uint8_t *kstart = r->p;
        sl_mp_head_t kh, vh;
        int name = 0;
        if (r->p < r->end && (r->p[0] & 0xe0) == 0xa0 &&
            (size_t)(r->p[0] & 0x1f) < (size_t)(r->end - r->p)) {
            /* fixstr keys, the usual case */
            kh.kind = SL_MP_STR;
            kh.len = r->p[0] & 0x1f;
            name = key_name(&kh, r->p + 1);
            r->p += 1 + kh.len;
        } else if (!rd_head(d, r, &kh)) {
            return SL_OK;
        } else if (kh.kind == SL_MP_ARRAY || kh.kind == SL_MP_MAP) {
            r->p = kstart; /* a container as a key: an unknown key */
            if (!rd_skip(d, r, open))
                return SL_OK;
        } else {
            name = key_name(&kh, r->p);
            r->p += sl_mp_payload(&kh);
        }
        int *have = name == 'x'   ? &s.have_x
                    : name == 'y' ? &s.have_y
                    : name == 'w' ? &s.have_w
                    : name == 'i' ? &s.have_id
                                  : NULL;
        const uint8_t *vstart = r->p;
        if (have && *have)
            fail(&s, "sample: duplicate key %s",
                 name == 'x'   ? "x"
                 : name == 'y' ? "y"
                 : name == 'w' ? "w"
                               : "id");
        if (!have || *have) {
            if (!rd_skip(d, r, open))
                return SL_OK;
            continue;
        }
        *have = 1;
        if (name == 'x') {
            int ok = field_x(d, &s, r);
            if (ok < 0)
                return SL_ERR_NOMEM;
            if (d->msg_bad)
                return SL_OK;
            if (!ok) { /* bad x: step over it whole, checking its structure */
                r->p = vstart;
                if (!rd_skip(d, r, open))
                    return SL_OK;
            }
            continue;
        }
        if (!rd_head(d, r, &vh))
            return SL_OK;
        if (vh.kind == SL_MP_ARRAY || vh.kind == SL_MP_MAP) {
            r->p = vstart;
            if (!rd_skip(d, r, open))
                return SL_OK;
        } else {
            r->p += sl_mp_payload(&vh);
        }
        if (name == 'y')
            field_y(d, &s, &vh);
        else if (name == 'w')
            field_w(&s, &vh);
        else
            field_id(&s, &vh, vstart, r->p);
    }
    if (!s.have_x)
        fail(&s, "x: missing");
    if (s.bad)
        return push_bad(b, res, tag, s.err, s.id, s.id_len);

    sl_err_t e = s.sparse ? sl_batch_push_sparse(b, d->col, d->val, s.nnz, s.y, s.w, s.labelled,
                                                 tag, s.id, s.id_len)
                          : sl_batch_push_dense(b, s.x, s.y, s.w, s.labelled, tag, s.id, s.id_len);
    if (e != SL_OK)
        return e;
    res->good++;
    return SL_OK;
}

/* Decodes the top-level value at the cursor when it is a sample map or an
 * array of them (*h: its header, already read), leaving the cursor after it.
 * A message error (d->msg_bad) stops it. */
static sl_err_t decode_samples(sl_decoder_t *d, rd_t *r, const sl_mp_head_t *h, uint64_t tag,
                               sl_batch_t *b, sl_decode_result_t *res) {
    if (h->kind == SL_MP_MAP) {
        r->p = d->msg;
        return decode_sample(d, r, 0, tag, b, res);
    }
    sl_err_t e = SL_OK;
    for (uint64_t i = 0; i < h->len && e == SL_OK && !d->msg_bad; i++)
        e = decode_sample(d, r, 1, tag, b, res);
    return e;
}

/* Walks the message, appending its samples; leaves d->msg_bad set when the
 * message is bad as a whole. */
static sl_err_t decode_body(sl_decoder_t *d, const uint8_t *msg, size_t len, uint64_t tag,
                            sl_batch_t *b, sl_decode_result_t *res) {
    if (len > d->cfg.max_message_bytes) {
        msg_fail(d, "message: %zu bytes over the %zu-byte limit", len, d->cfg.max_message_bytes);
        return SL_OK;
    }
    if (len == 0) {
        msg_fail(d, "message: empty");
        return SL_OK;
    }
    rd_t r = {msg, msg + len};
    sl_mp_head_t h;
    if (!rd_head(d, &r, &h))
        return SL_OK;
    sl_err_t e = SL_OK;
    if (h.kind == SL_MP_MAP || h.kind == SL_MP_ARRAY) {
        e = decode_samples(d, &r, &h, tag, b, res);
    } else {
        r.p = msg;
        if (!rd_skip(d, &r, 0))
            return SL_OK;
        if (r.p == r.end) {
            msg_fail(d, "message: expected a sample map or an array of sample maps, got %s",
                     sl_mp_kind_name(h.kind));
            return SL_OK;
        }
    }
    if (e == SL_OK && !d->msg_bad && r.p != r.end)
        msg_fail(d, "message: %zu trailing bytes after the %s", (size_t)(r.end - r.p),
                 h.kind == SL_MP_ARRAY ? "sample array" : "sample");
    return e;
}

/* Clears res and points the decoder at a new message. */
static void begin(sl_decoder_t *d, const uint8_t *msg, size_t len, sl_decode_result_t *res) {
    res->good = res->bad = 0;
    res->first_error[0] = '\0';
    d->msg = msg;
    d->msg_len = len;
    d->msg_bad = 0;
}

/* Undoes what the current message appended (the batch held `slots0` slots before it). */
static void undo(sl_batch_t *b, size_t slots0, sl_decode_result_t *res) {
    sl_batch_truncate(b, slots0);
    res->good = res->bad = 0;
    res->first_error[0] = '\0';
}

sl_err_t sl_decode_message(sl_decoder_t *d, const uint8_t *msg, size_t len, uint64_t tag,
                           sl_batch_t *b, sl_decode_result_t *res) {
    begin(d, msg, len, res);
    if (b->dim != d->cfg.dim)
        return SL_ERR_MISMATCH;
    size_t slots0 = sl_batch_slots(b);
    sl_err_t e = decode_body(d, msg, len, tag, b, res);
    if (e != SL_OK) { /* out of memory: the batch is as it was */
        undo(b, slots0, res);
        return e;
    }
    if (!d->msg_bad)
        return e;
    undo(b, slots0, res);
    return push_bad(b, res, tag, d->msg_err, NULL, 0);
}

/* Why this agrees with framing first: a well-formed value is the same
 * bytes however many follow it, and every check that could go differently
 * with more or fewer bytes in view (a declared length or nested value
 * running past the end, the size cap, nesting, a top-level scalar) is a
 * message error here, which declines and leaves the verdict to the framer. */
sl_err_t sl_decode_next(sl_decoder_t *d, const uint8_t *buf, size_t avail, uint64_t tag,
                        sl_batch_t *b, sl_decode_result_t *res, size_t *used) {
    *used = 0;
    size_t len = avail < d->cfg.max_message_bytes ? avail : d->cfg.max_message_bytes;
    begin(d, buf, len, res);
    if (b->dim != d->cfg.dim)
        return SL_ERR_MISMATCH;
    rd_t r = {buf, buf + len};
    sl_mp_head_t h;
    /* A header cut short or declaring more than is in view, or a top-level
     * scalar: the framer's to judge. */
    if (!rd_head(d, &r, &h) || (h.kind != SL_MP_MAP && h.kind != SL_MP_ARRAY))
        return SL_OK;
    size_t slots0 = sl_batch_slots(b);
    sl_err_t e = decode_samples(d, &r, &h, tag, b, res);
    if (e != SL_OK || d->msg_bad) {
        undo(b, slots0, res);
        return e;
    }
    *used = (size_t)(r.p - buf);
    return SL_OK;
}

/* ---- label messages ---- */

/* A label map is read with the sample's field rules (y checked for the head, w > 0, id a
 * scalar), in the same bounds-checked pass; `x` is not skipped silently because features on
 * the label topic mean a producer wrote to the wrong topic. */

static sl_err_t push_label(sl_decoder_t *d, sl_decode_result_t *res, uint32_t index,
                           const sample_t *s) {
    if (d->nlabels == d->labels_cap) {
        size_t cap = d->labels_cap ? d->labels_cap * 2 : 16;
        sl_label_t *l = realloc(d->labels, cap * sizeof(*l));
        if (l)
            d->labels = l;
        size_t *e = realloc(d->label_err, cap * sizeof(*e));
        if (e)
            d->label_err = e;
        if (!l || !e)
            return SL_ERR_NOMEM;
        d->labels_cap = cap;
    }
    size_t err_off = SIZE_MAX;
    if (s->bad) {
        err_off = d->label_text.len;
        if (sl_buf_append(&d->label_text, s->err, strlen(s->err) + 1) != SL_OK)
            return SL_ERR_NOMEM;
        if (res->bad++ == 0)
            snprintf(res->first_error, sizeof(res->first_error), "%s", s->err);
    } else {
        res->good++;
    }
    d->labels[d->nlabels] = (sl_label_t){
        .id = s->id, .id_len = s->id_len, .y = s->y, .w = s->w, .index = index, .error = NULL};
    d->label_err[d->nlabels] = err_off;
    d->nlabels++;
    return SL_OK;
}

/* Decodes the label at the cursor (any value, nested in `open` containers) and appends it.
 * A message error (d->msg_bad) stops it; the caller then undoes the message. */
static sl_err_t decode_label(sl_decoder_t *d, rd_t *r, uint32_t open, uint32_t index,
                             sl_decode_result_t *res) {
    const uint8_t *start = r->p;
    sl_mp_head_t h;
    sample_t s;
    memset(&s, 0, sizeof(s));
    s.w = 1.0f;
    if (!rd_head(d, r, &h))
        return SL_OK;
    if (h.kind != SL_MP_MAP) {
        r->p = start;
        if (!rd_skip(d, r, open))
            return SL_OK;
        fail(&s, "label: expected a map {id, y, w?}, got %s", sl_mp_kind_name(h.kind));
        return push_label(d, res, index, &s);
    }
    open++;
    int id_nil = 0;
    for (uint64_t i = 0; i < h.len; i++) {
        const uint8_t *kstart = r->p;
        sl_mp_head_t kh, vh;
        int name = 0;
        if (!rd_head(d, r, &kh))
            return SL_OK;
        if (kh.kind == SL_MP_ARRAY || kh.kind == SL_MP_MAP) {
            r->p = kstart; /* a container as a key: an unknown key */
            if (!rd_skip(d, r, open))
                return SL_OK;
        } else {
            name = key_name(&kh, r->p);
            r->p += sl_mp_payload(&kh);
        }
        int *have = name == 'x'   ? &s.have_x
                    : name == 'y' ? &s.have_y
                    : name == 'w' ? &s.have_w
                    : name == 'i' ? &s.have_id
                                  : NULL;
        const uint8_t *vstart = r->p;
        if (have && *have)
            fail(&s, "label: duplicate key %s",
                 name == 'x'   ? "x"
                 : name == 'y' ? "y"
                 : name == 'w' ? "w"
                               : "id");
        if (!have || *have || name == 'x') {
            if (have)
                *have = 1;
            if (!rd_skip(d, r, open))
                return SL_OK;
            continue;
        }
        *have = 1;
        if (!rd_head(d, r, &vh))
            return SL_OK;
        if (vh.kind == SL_MP_ARRAY || vh.kind == SL_MP_MAP) {
            r->p = vstart;
            if (!rd_skip(d, r, open))
                return SL_OK;
        } else {
            r->p += sl_mp_payload(&vh);
        }
        if (name == 'y')
            field_y(d, &s, &vh);
        else if (name == 'w')
            field_w(&s, &vh);
        else if (vh.kind == SL_MP_NIL)
            id_nil = 1;
        else
            field_id(&s, &vh, vstart, r->p);
    }
    if (s.have_x)
        fail(&s, "label: has x; a label carries only id, y and w (a sample on the label topic?)");
    if (!s.have_id || id_nil)
        fail(&s, "id: missing; a label needs the id of its sample");
    if (!s.labelled)
        fail(&s, "y: missing");
    return push_label(d, res, index, &s);
}

static sl_err_t decode_labels_body(sl_decoder_t *d, const uint8_t *msg, size_t len,
                                   sl_decode_result_t *res) {
    if (len > d->cfg.max_message_bytes) {
        msg_fail(d, "message: %zu bytes over the %zu-byte limit", len, d->cfg.max_message_bytes);
        return SL_OK;
    }
    if (len == 0) {
        msg_fail(d, "message: empty");
        return SL_OK;
    }
    rd_t r = {msg, msg + len};
    sl_mp_head_t h;
    if (!rd_head(d, &r, &h))
        return SL_OK;
    sl_err_t e = SL_OK;
    if (h.kind == SL_MP_MAP) {
        r.p = msg;
        e = decode_label(d, &r, 0, 0, res);
    } else if (h.kind == SL_MP_ARRAY) {
        for (uint64_t i = 0; i < h.len && e == SL_OK && !d->msg_bad; i++)
            e = decode_label(d, &r, 1, (uint32_t)i, res);
    } else {
        r.p = msg;
        if (!rd_skip(d, &r, 0))
            return SL_OK;
        if (r.p == r.end) {
            msg_fail(d, "message: expected a label map or an array of label maps, got %s",
                     sl_mp_kind_name(h.kind));
            return SL_OK;
        }
    }
    if (e == SL_OK && !d->msg_bad && r.p != r.end)
        msg_fail(d, "message: %zu trailing bytes after the %s", (size_t)(r.end - r.p),
                 h.kind == SL_MP_ARRAY ? "label array" : "label");
    return e;
}

sl_err_t sl_decode_labels(sl_decoder_t *d, const uint8_t *msg, size_t len,
                          const sl_label_t **labels, size_t *n, sl_decode_result_t *res) {
    res->good = res->bad = 0;
    res->first_error[0] = '\0';
    d->msg = msg;
    d->msg_len = len;
    d->msg_bad = 0;
    d->nlabels = 0;
    sl_buf_reset(&d->label_text);
    *labels = NULL;
    *n = 0;
    sl_err_t e = decode_labels_body(d, msg, len, res);
    if (e == SL_OK && d->msg_bad) {
        d->nlabels = 0;
        sl_buf_reset(&d->label_text);
        res->good = res->bad = 0;
        sample_t s;
        memset(&s, 0, sizeof(s));
        fail(&s, "%s", d->msg_err);
        e = push_label(d, res, 0, &s);
    }
    if (e != SL_OK) {
        d->nlabels = 0;
        return e;
    }
    for (size_t i = 0; i < d->nlabels; i++)
        d->labels[i].error =
            d->label_err[i] == SIZE_MAX ? NULL : (const char *)d->label_text.data + d->label_err[i];
    *labels = d->labels;
    *n = d->nlabels;
    return SL_OK;
}

int sl_decode_is_label_record(const uint8_t *msg, size_t len) {
    sl_mp_head_t h;
    const uint8_t *p = msg, *end = msg + len;
    int hl = sl_mp_read_head(p, len, &h);
    if (hl <= 0)
        return 0;
    if (h.kind == SL_MP_ARRAY) { /* an array of labels: judge by its first element */
        if (h.len == 0)
            return 0;
        p += hl;
        hl = sl_mp_read_head(p, (size_t)(end - p), &h);
        if (hl <= 0)
            return 0;
    }
    if (h.kind != SL_MP_MAP)
        return 0;
    p += hl;
    int has_y = 0;
    for (uint64_t i = 0; i < h.len; i++) {
        sl_mp_head_t kh;
        int kl = sl_mp_read_head(p, (size_t)(end - p), &kh);
        if (kl <= 0 || kh.kind == SL_MP_ARRAY || kh.kind == SL_MP_MAP ||
            sl_mp_payload(&kh) > (uint64_t)(end - p) - (uint64_t)kl)
            return 0; /* unusual keys: leave the verdict to the sample decoder */
        int name = key_name(&kh, p + kl);
        if (name == 'x')
            return 0;
        has_y |= name == 'y';
        p += kl + sl_mp_payload(&kh);
        sl_msgscan_t s;
        sl_scan_result_t res;
        sl_msgscan_init(&s, SIZE_MAX, SL_DECODE_MAX_DEPTH);
        sl_msgscan_nest(&s, 1, 0);
        if (p == end || sl_msgscan_feed(&s, p, (size_t)(end - p), 1, &res) != SL_SCAN_OBJECT)
            return 0;
        p += res.len;
    }
    return has_y;
}
