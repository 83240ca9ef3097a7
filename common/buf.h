/* buf.h - a growable byte buffer (appends only), used for encoded output. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Plain data: data[0..len) is valid; cap is the allocation. A zeroed
 * sl_buf_t is an empty buffer. */
typedef struct sl_buf {
    uint8_t *data;
    size_t len, cap;
} sl_buf_t;

/* Grows the allocation to hold `extra` more bytes (sl_buf_reserve's slow
 * path); SL_ERR_NOMEM leaves the buffer as it was. */
sl_err_t sl_buf_grow(sl_buf_t *b, size_t extra);

/* Makes room for `extra` more bytes; SL_ERR_NOMEM leaves the buffer as it
 * was. Inline: encoders call it for every value they write. */
static inline sl_err_t sl_buf_reserve(sl_buf_t *b, size_t extra) {
    return extra <= b->cap - b->len ? SL_OK : sl_buf_grow(b, extra);
}

/* Appends n bytes; SL_ERR_NOMEM leaves the buffer as it was. */
sl_err_t sl_buf_append(sl_buf_t *b, const void *p, size_t n);

/* Appends printf-formatted text (no NUL kept); SL_ERR_NOMEM leaves the
 * buffer as it was, SL_ERR_INVAL for a format error. */
sl_err_t sl_buf_appendf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties the buffer, keeping its allocation. */
static inline void sl_buf_reset(sl_buf_t *b) {
    b->len = 0;
}

/* Frees the allocation and zeroes *b; NULL is a no-op. */
void sl_buf_free(sl_buf_t *b);

#endif
