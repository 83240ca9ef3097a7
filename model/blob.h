/* blob.h - the framing of the state blobs of model/ parts other than the
 * learner (drift detectors, the guard): a little-endian writer and a
 * bounds-checked reader, magic + format version + length + xxh64 checksum. */
#ifndef SL_BLOB_H
#define SL_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

/* Layout of every blob, integers and floats little-endian:
 *   char magic[4] | u32 format version | u64 total length (incl. checksum)
 *   body
 *   u64 XXH64(seed 0) of every byte before it
 * Floats are written as their IEEE-754 bits, so a blob restores them exactly. */

/* A writer. Errors (out of memory) are sticky: after one, every put is a
 * no-op and sl_blob_finish returns the error. Plain data; start with
 * sl_blob_begin. */
typedef struct sl_blob_writer {
    sl_buf_t buf;
    sl_err_t err;
} sl_blob_writer_t;

/* Starts a blob with this 4-byte magic and format version. */
void sl_blob_begin(sl_blob_writer_t *w, const char magic[4], uint32_t version);
void sl_blob_put_u32(sl_blob_writer_t *w, uint32_t v);
void sl_blob_put_u64(sl_blob_writer_t *w, uint64_t v);
void sl_blob_put_f64(sl_blob_writer_t *w, double v);
void sl_blob_put_f32s(sl_blob_writer_t *w, const float *v, size_t n);
void sl_blob_put_u32s(sl_blob_writer_t *w, const uint32_t *v, size_t n);
/* A nested blob or any bytes: u64 length, then the bytes. */
void sl_blob_put_bytes(sl_blob_writer_t *w, const uint8_t *p, size_t n);

/* Writes the length and checksum and hands the bytes over: *buf is malloc'd
 * (caller frees with free()), *len its size. On an error returns it, frees
 * everything and leaves *buf NULL. */
sl_err_t sl_blob_finish(sl_blob_writer_t *w, uint8_t **buf, size_t *len);

/* A reader over a checked blob. Errors are sticky: the first failure is kept
 * in err (SL_ERR_DECODE, with errstr naming the field, prefixed by `what`),
 * and every later get returns zeros. */
typedef struct sl_blob_reader {
    const uint8_t *p;
    size_t off, end;
    uint32_t version; /* the blob's format version */
    sl_err_t err;
    const char *what;
    char *errstr;
    size_t errstr_size;
} sl_blob_reader_t;

/* Checks the frame of buf[0..len): magic, a version in 1..max_version,
 * length, checksum. On SL_OK the reader is positioned at the body. Errors:
 * SL_ERR_TRUNCATED, SL_ERR_DECODE (bad magic, length), SL_ERR_VERSION (newer
 * than this build reads), SL_ERR_CHECKSUM, SL_ERR_INVAL (buf NULL); errstr
 * says which, prefixed by `what` (e.g. "drift blob"). */
sl_err_t sl_blob_open(sl_blob_reader_t *r, const uint8_t *buf, size_t len, const char magic[4],
                      uint32_t max_version, const char *what, char *errstr, size_t errstr_size);

uint32_t sl_blob_get_u32(sl_blob_reader_t *r, const char *field);
uint64_t sl_blob_get_u64(sl_blob_reader_t *r, const char *field);
double sl_blob_get_f64(sl_blob_reader_t *r, const char *field);
/* Reads n floats into v (refusing non-finite ones) or n u32s. */
void sl_blob_get_f32s(sl_blob_reader_t *r, float *v, size_t n, const char *field);
void sl_blob_get_u32s(sl_blob_reader_t *r, uint32_t *v, size_t n, const char *field);
/* A nested length-prefixed byte run: points *p into the blob (valid as long
 * as the blob) and returns its length; 0 and *p NULL after an error. */
size_t sl_blob_get_bytes(sl_blob_reader_t *r, const uint8_t **p, const char *field);

/* Marks the blob bad: err = SL_ERR_DECODE with "<what>: field <field>: <why>"
 * (only the first failure is kept). Returns the reader's error. */
sl_err_t sl_blob_fail(sl_blob_reader_t *r, const char *field, const char *why);

/* SL_OK when the whole body was read without error; else the error (a body
 * longer than what was read is SL_ERR_DECODE). */
sl_err_t sl_blob_done(sl_blob_reader_t *r);

#endif
