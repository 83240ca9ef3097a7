/* err.h - the one error enum of streamlearn and helpers to fill errstr buffers. */
#ifndef SL_ERR_H
#define SL_ERR_H

#include <stddef.h>

/* Every fallible call returns an sl_err_t: SL_OK (0) or a negative code.
 * Calls that can say more also fill a caller's `char *errstr, size_t
 * errstr_size` with a message naming what and where. */
typedef enum sl_err {
    SL_OK = 0,
    SL_ERR_NOMEM = -1,      /* allocation failed */
    SL_ERR_INVAL = -2,      /* invalid argument or configuration value */
    SL_ERR_IO = -3,         /* read/write/open failed (errno kept in errstr) */
    SL_ERR_DECODE = -4,     /* malformed input (sample, file, reply) */
    SL_ERR_TOO_BIG = -5,    /* input over a configured size limit */
    SL_ERR_TRUNCATED = -6,  /* input ended before it should */
    SL_ERR_CHECKSUM = -7,   /* checksum does not match the data */
    SL_ERR_VERSION = -8,    /* format version newer than this build reads */
    SL_ERR_MISMATCH = -9,   /* shape, name or architecture mismatch */
    SL_ERR_NONFINITE = -10, /* a value is NaN or infinite */
    SL_ERR_RANGE = -11,     /* an index or class out of range */
    SL_ERR_STATE = -12,     /* call not valid in the object's current state */
    SL_ERR_KAFKA = -13,     /* error from librdkafka (text kept in errstr) */
    SL_ERR_REDIS = -14,     /* error from Redis/hiredis (text kept in errstr) */
    SL_ERR_EOF = -15,       /* clean end of input (not a failure for streams) */
} sl_err_t;

/* Returns a static, human-readable description of err; never NULL. */
const char *sl_err_str(sl_err_t err);

/* Formats into errstr (truncating, always NUL-terminated when errstr_size > 0).
 * errstr may be NULL or errstr_size 0, then nothing is written. */
void sl_errstr_set(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
