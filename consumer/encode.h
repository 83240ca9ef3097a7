/* encode.h - prediction and error maps (README: "Samples and predictions") written as msgpack into
 * a byte buffer.
 */
#ifndef SL_ENCODE_H
#define SL_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "model/model.h"

/* Appends one prediction map to out:
 *   id      the raw msgpack bytes id[0 .. id_len) as given, or nil when id_len is 0
 *   pred    linear: row[0]; logistic: row[0] = P(y=1) (float32); softmax: the
 *           argmax of row[0 .. k) as an int (first maximum; NaN never wins)
 *   proba   softmax only: row[0 .. k) as an array of float32
 *   version, step as unsigned ints.
 * k is the number of outputs in row (1 for linear and logistic). The id
 * bytes must be one msgpack value (the decoder's ids are). Returns
 * SL_ERR_INVAL for softmax with k == 0, SL_ERR_NOMEM; on error out is as it
 * was. */
sl_err_t sl_encode_prediction(sl_buf_t *out, const uint8_t *id, size_t id_len, sl_head_t head,
                              const float *row, uint32_t k, uint64_t version, uint64_t step);

/* Appends {id, error, version, step} for a bad sample (error: a NUL-terminated
 * text, written as a str). Returns SL_ERR_NOMEM leaving out as it was. */
sl_err_t sl_encode_error(sl_buf_t *out, const uint8_t *id, size_t id_len, const char *error,
                         uint64_t version, uint64_t step);

#endif
