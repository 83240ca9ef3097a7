/* decode.h - turns msgpack sample messages (CONTRACT section 2) into batch rows, bad
 * samples into error slots, never trusting the bytes. */
#ifndef SL_DECODE_H
#define SL_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "consumer/batch.h"
#include "model/model.h"

#define SL_DECODE_DEFAULT_MAX_BYTES ((size_t)1 << 20)

/* Containers that may be open at once in a message. A sample needs 3
 * (message array -> sample map -> x array/map); the margin lets values of
 * unknown keys nest a little, up to this fixed bound. */
#define SL_DECODE_MAX_DEPTH 8

typedef struct sl_decode_config {
    uint32_t dim;             /* features, >= 1 */
    sl_head_t head;           /* decides which labels are valid */
    uint32_t classes;         /* softmax: K >= 2; ignored otherwise */
    size_t max_message_bytes; /* 0: SL_DECODE_DEFAULT_MAX_BYTES */
} sl_decode_config_t;

/* What one message gave. */
typedef struct sl_decode_result {
    size_t good;           /* rows appended */
    size_t bad;            /* error slots appended */
    char first_error[160]; /* text of the first bad sample; "" when bad == 0 */
} sl_decode_result_t;

typedef struct sl_decoder sl_decoder_t;

/* Checks cfg and creates a decoder (it owns scratch space so decoding does
 * not allocate per sample). Returns NULL with errstr naming the bad field, or
 * on out of memory. Free with sl_decoder_destroy. */
sl_decoder_t *sl_decoder_new(const sl_decode_config_t *cfg, char *errstr, size_t errstr_size);

/* Frees the decoder; NULL is a no-op. */
void sl_decoder_destroy(sl_decoder_t *d);

/* Decodes one message (a Kafka value or one top-level replay object) of len
 * bytes and appends one slot per sample to b, in order, each tagged `tag`:
 * a row for a good sample, an error slot (with a reason naming the key and
 * the problem, and the sample's id when it could be read) for a bad one. A
 * message that is bad as a whole (over max_message_bytes, not msgpack,
 * truncated, trailing bytes, too deep, not a map or array of maps) appends
 * exactly one error slot with no id. An empty array appends nothing. The
 * message bytes are only read during the call (ids are copied).
 * Bad input is not a failure: returns SL_OK and res counts it. Returns
 * SL_ERR_MISMATCH if b->dim differs from the config (nothing appended), or
 * SL_ERR_NOMEM (nothing of this message appended: the batch is as before the
 * call). */
sl_err_t sl_decode_message(sl_decoder_t *d, const uint8_t *msg, size_t len, uint64_t tag,
                           sl_batch_t *b, sl_decode_result_t *res);

/* The fast path for a stream of concatenated messages (replay's input):
 * decodes the message at the front of buf[0 .. avail) in the same single
 * pass, without framing it first. When that message is complete within
 * avail bytes, no longer than max_message_bytes and well-formed as a whole,
 * appends its slots exactly as sl_decode_message would for its bytes, sets
 * *used to its length (> 0) and returns SL_OK. Otherwise - the message goes
 * on past buf, or it is bad as a whole - appends nothing and sets *used to
 * 0: the caller frames it (sl_msgscan_feed) and decodes it with
 * sl_decode_message, which reports the problem. Bad samples inside a good
 * message are appended as error slots, as there. Returns SL_ERR_MISMATCH or
 * SL_ERR_NOMEM as sl_decode_message does (nothing appended, *used 0). */
sl_err_t sl_decode_next(sl_decoder_t *d, const uint8_t *buf, size_t avail, uint64_t tag,
                        sl_batch_t *b, sl_decode_result_t *res, size_t *used);

#endif
