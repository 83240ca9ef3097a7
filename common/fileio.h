/* fileio.h - whole-file reads with a size cap and atomic whole-file writes. */
#ifndef SL_FILEIO_H
#define SL_FILEIO_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Reads the whole file at `path` into a malloc'd buffer. On success *data
 * holds *len bytes (plus a NUL byte after them, not counted, so text can be
 * parsed in place) and the caller frees it with free(). A file larger than
 * `max_size` bytes is refused with SL_ERR_TOO_BIG before anything is read
 * into memory. Errors: SL_ERR_IO (open/read failed; errstr names the path and
 * strerror), SL_ERR_TOO_BIG, SL_ERR_NOMEM. On failure *data is NULL and *len 0. */
sl_err_t sl_fileio_read(const char *path, size_t max_size, uint8_t **data, size_t *len,
                        char *errstr, size_t errstr_size);

/* Writes len bytes to `path` atomically: to a temporary file in the same
 * directory, fsync'd, then renamed over `path`, so a reader sees either the
 * old file or the whole new one. The file is created with mode 0644 (minus
 * umask). Errors: SL_ERR_IO with errstr naming the path and strerror;
 * SL_ERR_NOMEM. On failure `path` is unchanged and no temporary is left. */
sl_err_t sl_fileio_write_atomic(const char *path, const void *data, size_t len, char *errstr,
                                size_t errstr_size);

#endif
