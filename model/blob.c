/* blob.c - little-endian, checksummed framing for the state blobs of model/ parts. */
#include "blob.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define HEADER_LEN 16
#define CHECKSUM_LEN 8

static void put_raw(sl_blob_writer_t *w, const void *p, size_t n) {
    if (w->err == SL_OK)
        w->err = sl_buf_append(&w->buf, p, n);
}

void sl_blob_begin(sl_blob_writer_t *w, const char magic[4], uint32_t version) {
    memset(w, 0, sizeof *w);
    put_raw(w, magic, 4);
    sl_blob_put_u32(w, version);
    sl_blob_put_u64(w, 0); /* total length, patched by sl_blob_finish */
}

void sl_blob_put_u32(sl_blob_writer_t *w, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put_raw(w, b, 4);
}

void sl_blob_put_u64(sl_blob_writer_t *w, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put_raw(w, b, 8);
}

void sl_blob_put_f64(sl_blob_writer_t *w, double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    sl_blob_put_u64(w, u);
}

void sl_blob_put_f32s(sl_blob_writer_t *w, const float *v, size_t n) {
    if (w->err == SL_OK && n > 0)
        w->err = sl_buf_reserve(&w->buf, 4 * n);
    for (size_t i = 0; i < n && w->err == SL_OK; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        sl_blob_put_u32(w, u);
    }
}

void sl_blob_put_u32s(sl_blob_writer_t *w, const uint32_t *v, size_t n) {
    if (w->err == SL_OK && n > 0)
        w->err = sl_buf_reserve(&w->buf, 4 * n);
    for (size_t i = 0; i < n && w->err == SL_OK; i++)
        sl_blob_put_u32(w, v[i]);
}

void sl_blob_put_bytes(sl_blob_writer_t *w, const uint8_t *p, size_t n) {
    sl_blob_put_u64(w, n);
    put_raw(w, p, n);
}

sl_err_t sl_blob_finish(sl_blob_writer_t *w, uint8_t **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    if (w->err == SL_OK)
        w->err = sl_buf_reserve(&w->buf, CHECKSUM_LEN);
    if (w->err != SL_OK) {
        sl_buf_free(&w->buf);
        return w->err;
    }
    uint64_t total = (uint64_t)w->buf.len + CHECKSUM_LEN;
    for (int i = 0; i < 8; i++)
        w->buf.data[8 + i] = (uint8_t)(total >> (8 * i));
    sl_blob_put_u64(w, XXH64(w->buf.data, w->buf.len, 0));
    *buf = w->buf.data;
    *len = w->buf.len;
    memset(&w->buf, 0, sizeof w->buf);
    return SL_OK;
}

static uint32_t rd_u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd_u64_at(const uint8_t *p) {
    return (uint64_t)rd_u32_at(p) | (uint64_t)rd_u32_at(p + 4) << 32;
}

sl_err_t sl_blob_open(sl_blob_reader_t *r, const uint8_t *buf, size_t len, const char magic[4],
                      uint32_t max_version, const char *what, char *errstr, size_t errstr_size) {
    memset(r, 0, sizeof *r);
    r->what = what;
    r->errstr = errstr;
    r->errstr_size = errstr_size;
    if (!buf) {
        sl_errstr_set(errstr, errstr_size, "%s: no data", what);
        return r->err = SL_ERR_INVAL;
    }
    if (len < HEADER_LEN + CHECKSUM_LEN) {
        sl_errstr_set(errstr, errstr_size, "%s: %zu bytes, shorter than any blob (%d)", what, len,
                      HEADER_LEN + CHECKSUM_LEN);
        return r->err = SL_ERR_TRUNCATED;
    }
    if (memcmp(buf, magic, 4) != 0) {
        sl_errstr_set(errstr, errstr_size, "%s: bad magic (not a %.4s blob)", what, magic);
        return r->err = SL_ERR_DECODE;
    }
    uint32_t version = rd_u32_at(buf + 4);
    if (version == 0 || version > max_version) {
        sl_errstr_set(errstr, errstr_size, "%s: format version %u; this build reads 1..%u", what,
                      version, max_version);
        return r->err = version == 0 ? SL_ERR_DECODE : SL_ERR_VERSION;
    }
    uint64_t total = rd_u64_at(buf + 8);
    if (total > len) {
        sl_errstr_set(errstr, errstr_size, "%s: truncated: %zu of %llu bytes", what, len,
                      (unsigned long long)total);
        return r->err = SL_ERR_TRUNCATED;
    }
    if (total != len) {
        sl_errstr_set(errstr, errstr_size, "%s: %zu bytes but its header says %llu", what, len,
                      (unsigned long long)total);
        return r->err = SL_ERR_DECODE;
    }
    if (XXH64(buf, len - CHECKSUM_LEN, 0) != rd_u64_at(buf + len - CHECKSUM_LEN)) {
        sl_errstr_set(errstr, errstr_size, "%s: checksum mismatch (corrupted)", what);
        return r->err = SL_ERR_CHECKSUM;
    }
    r->p = buf;
    r->off = HEADER_LEN;
    r->end = len - CHECKSUM_LEN;
    r->version = version;
    return SL_OK;
}

sl_err_t sl_blob_fail(sl_blob_reader_t *r, const char *field, const char *why) {
    if (r->err == SL_OK) {
        sl_errstr_set(r->errstr, r->errstr_size, "%s: field %s: %s", r->what, field, why);
        r->err = SL_ERR_DECODE;
    }
    return r->err;
}

/* 1 when n more bytes can be read; else fails the reader naming the field. */
static int need(sl_blob_reader_t *r, size_t n, const char *field) {
    if (r->err != SL_OK)
        return 0;
    if (r->end - r->off < n) {
        sl_errstr_set(r->errstr, r->errstr_size, "%s: field %s needs %zu bytes, only %zu remain",
                      r->what, field, n, r->end - r->off);
        r->err = SL_ERR_DECODE;
        return 0;
    }
    return 1;
}

uint32_t sl_blob_get_u32(sl_blob_reader_t *r, const char *field) {
    if (!need(r, 4, field))
        return 0;
    uint32_t v = rd_u32_at(r->p + r->off);
    r->off += 4;
    return v;
}

uint64_t sl_blob_get_u64(sl_blob_reader_t *r, const char *field) {
    if (!need(r, 8, field))
        return 0;
    uint64_t v = rd_u64_at(r->p + r->off);
    r->off += 8;
    return v;
}

double sl_blob_get_f64(sl_blob_reader_t *r, const char *field) {
    uint64_t u = sl_blob_get_u64(r, field);
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

void sl_blob_get_f32s(sl_blob_reader_t *r, float *v, size_t n, const char *field) {
    if (n > SIZE_MAX / 4 || !need(r, 4 * n, field))
        return (void)need(r, SIZE_MAX, field);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = rd_u32_at(r->p + r->off + 4 * i);
        memcpy(&v[i], &u, sizeof u);
        if (!isfinite(v[i])) {
            sl_blob_fail(r, field, "not finite");
            return;
        }
    }
    r->off += 4 * n;
}

void sl_blob_get_u32s(sl_blob_reader_t *r, uint32_t *v, size_t n, const char *field) {
    if (n > SIZE_MAX / 4 || !need(r, 4 * n, field))
        return (void)need(r, SIZE_MAX, field);
    for (size_t i = 0; i < n; i++)
        v[i] = rd_u32_at(r->p + r->off + 4 * i);
    r->off += 4 * n;
}

size_t sl_blob_get_bytes(sl_blob_reader_t *r, const uint8_t **p, const char *field) {
    *p = NULL;
    uint64_t n = sl_blob_get_u64(r, field);
    if (!need(r, n > SIZE_MAX ? SIZE_MAX : (size_t)n, field))
        return 0;
    *p = r->p + r->off;
    r->off += (size_t)n;
    return (size_t)n;
}

sl_err_t sl_blob_done(sl_blob_reader_t *r) {
    if (r->err == SL_OK && r->off != r->end) {
        sl_errstr_set(r->errstr, r->errstr_size, "%s: %zu bytes left over after the last field",
                      r->what, r->end - r->off);
        r->err = SL_ERR_DECODE;
    }
    return r->err;
}
