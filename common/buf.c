/* buf.c - growable byte buffer. */

#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sl_err_t sl_buf_grow(sl_buf_t *b, size_t extra) {
    if (extra <= b->cap - b->len)
        return SL_OK;
    if (extra > SIZE_MAX / 2 - b->len)
        return SL_ERR_NOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return SL_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return SL_OK;
}

sl_err_t sl_buf_append(sl_buf_t *b, const void *p, size_t n) {
    if (n == 0)
        return SL_OK;
    sl_err_t err = sl_buf_reserve(b, n);
    if (err != SL_OK)
        return err;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return SL_OK;
}

sl_err_t sl_buf_appendf(sl_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return SL_ERR_INVAL;
    sl_err_t err = sl_buf_reserve(b, (size_t)n + 1);
    if (err != SL_OK)
        return err;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return SL_OK;
}

void sl_buf_free(sl_buf_t *b) {
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
