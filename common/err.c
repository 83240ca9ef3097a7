/* err.c - messages for sl_err_t and the errstr formatter. */

#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *sl_err_str(sl_err_t err) {
    switch (err) {
    case SL_OK: return "success";
    case SL_ERR_NOMEM: return "out of memory";
    case SL_ERR_INVAL: return "invalid argument";
    case SL_ERR_IO: return "input/output error";
    case SL_ERR_DECODE: return "malformed input";
    case SL_ERR_TOO_BIG: return "input over the size limit";
    case SL_ERR_TRUNCATED: return "input truncated";
    case SL_ERR_CHECKSUM: return "checksum mismatch";
    case SL_ERR_VERSION: return "unsupported format version";
    case SL_ERR_MISMATCH: return "shape or architecture mismatch";
    case SL_ERR_NONFINITE: return "non-finite value";
    case SL_ERR_RANGE: return "value out of range";
    case SL_ERR_STATE: return "invalid state for this call";
    case SL_ERR_KAFKA: return "kafka error";
    case SL_ERR_REDIS: return "redis error";
    case SL_ERR_EOF: return "end of input";
    }
    return "unknown error";
}

void sl_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...) {
    if (!errstr || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}
