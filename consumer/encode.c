/* encode.c - prediction and error maps as msgpack, packed by hand into an sl_buf_t. */

#include "encode.h"

#include <string.h>

/* Each writer assumes the caller reserved room; these bound the room needed. */
#define UINT_MAX_BYTES 9
#define F32_BYTES 5

static uint8_t *put_u8(uint8_t *p, uint8_t v) {
    *p++ = v;
    return p;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_uint(uint8_t *p, uint64_t v) {
    if (v < 128)
        return put_u8(p, (uint8_t)v);
    if (v <= UINT8_MAX)
        return put_be(put_u8(p, 0xcc), v, 1);
    if (v <= UINT16_MAX)
        return put_be(put_u8(p, 0xcd), v, 2);
    if (v <= UINT32_MAX)
        return put_be(put_u8(p, 0xce), v, 4);
    return put_be(put_u8(p, 0xcf), v, 8);
}

static uint8_t *put_f32(uint8_t *p, float f) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    return put_be(put_u8(p, 0xca), bits, 4);
}

/* A key is a short fixstr. */
static uint8_t *put_key(uint8_t *p, const char *key) {
    size_t n = strlen(key);
    *p++ = (uint8_t)(0xa0 | n);
    memcpy(p, key, n);
    return p + n;
}

static uint8_t *put_id(uint8_t *p, const uint8_t *id, size_t id_len) {
    p = put_key(p, "id");
    if (id_len == 0)
        return put_u8(p, 0xc0);
    memcpy(p, id, id_len);
    return p + id_len;
}

static uint8_t *put_version_step(uint8_t *p, uint64_t version, uint64_t step) {
    p = put_key(p, "version");
    p = put_uint(p, version);
    p = put_key(p, "step");
    return put_uint(p, step);
}

/* Room for the fixed parts: map header, keys (<= 8 bytes each), id nil,
 * version and step. */
#define FIXED_BYTES (1 + 5 * 8 + 1 + 2 * UINT_MAX_BYTES)

static uint32_t argmax(const float *row, uint32_t k) {
    uint32_t best = 0;
    for (uint32_t j = 1; j < k; j++)
        if (row[j] > row[best] || (row[best] != row[best] && row[j] == row[j]))
            best = j;
    return best;
}

sl_err_t sl_encode_prediction(sl_buf_t *out, const uint8_t *id, size_t id_len, sl_head_t head,
                              const float *row, uint32_t k, uint64_t version, uint64_t step) {
    int softmax = head == SL_HEAD_SOFTMAX;
    if (softmax && k == 0)
        return SL_ERR_INVAL;
    size_t need =
        FIXED_BYTES + id_len + (softmax ? 5 + (size_t)k * F32_BYTES + UINT_MAX_BYTES : F32_BYTES);
    if (need < id_len || sl_buf_reserve(out, need) != SL_OK)
        return SL_ERR_NOMEM;
    uint8_t *p = out->data + out->len;
    p = put_u8(p, softmax ? 0x85 : 0x84);
    p = put_id(p, id, id_len);
    p = put_key(p, "pred");
    if (softmax) {
        p = put_uint(p, argmax(row, k));
        p = put_key(p, "proba");
        if (k < 16)
            p = put_u8(p, (uint8_t)(0x90 | k));
        else if (k <= UINT16_MAX)
            p = put_be(put_u8(p, 0xdc), k, 2);
        else
            p = put_be(put_u8(p, 0xdd), k, 4);
        for (uint32_t j = 0; j < k; j++)
            p = put_f32(p, row[j]);
    } else {
        p = put_f32(p, row[0]);
    }
    p = put_version_step(p, version, step);
    out->len = (size_t)(p - out->data);
    return SL_OK;
}

sl_err_t sl_encode_error(sl_buf_t *out, const uint8_t *id, size_t id_len, const char *error,
                         uint64_t version, uint64_t step) {
    size_t n = strlen(error);
    if (n > UINT32_MAX)
        n = UINT32_MAX;
    size_t need = FIXED_BYTES + id_len + 5 + n;
    if (need < n || sl_buf_reserve(out, need) != SL_OK)
        return SL_ERR_NOMEM;
    uint8_t *p = out->data + out->len;
    p = put_u8(p, 0x84);
    p = put_id(p, id, id_len);
    p = put_key(p, "error");
    if (n < 32)
        p = put_u8(p, (uint8_t)(0xa0 | n));
    else if (n <= UINT8_MAX)
        p = put_be(put_u8(p, 0xd9), n, 1);
    else if (n <= UINT16_MAX)
        p = put_be(put_u8(p, 0xda), n, 2);
    else
        p = put_be(put_u8(p, 0xdb), n, 4);
    memcpy(p, error, n);
    p += n;
    p = put_version_step(p, version, step);
    out->len = (size_t)(p - out->data);
    return SL_OK;
}
