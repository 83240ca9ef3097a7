/* decode.h - turns msgpack sample messages (README: "Samples and predictions") into batch rows, bad
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

/* --- label messages (delayed labels) --- */

/* One label of a label message. */
typedef struct sl_label {
    const uint8_t *id; /* raw msgpack bytes of its id, pointing into the message; NULL when the
                        * label is bad before its id could be read */
    size_t id_len;
    float y, w;        /* good labels: y valid for the head (as a sample's), w > 0 (default 1) */
    uint32_t index;    /* position in the message's array (0 for a lone map) */
    const char *error; /* NULL for a good label; else why it is bad ("y: missing", ...) */
} sl_label_t;

/* Decodes one label message: a map {id, y, w?} (other keys ignored, as in samples) or an
 * array of them. *labels receives *n entries, one per label in order, good or bad: a bad one
 * has `error` set (not a map, id missing, nil or not a scalar, y missing or invalid for the
 * head, w not a finite number > 0, a duplicate key, or an `x`: features on the label topic).
 * A message bad as a whole (over max_message_bytes, not msgpack, truncated, trailing bytes,
 * too deep, not a map or an array) gives exactly one bad label with no id. An empty array
 * gives none. Nothing is allocated from a declared length. The entries are owned by the
 * decoder and valid until its next sl_decode_labels call; their ids point into msg, so msg
 * must outlive their use. res counts good and bad labels and keeps the first error. Bad input
 * is not a failure: returns SL_OK; SL_ERR_NOMEM (then *n is 0). */
sl_err_t sl_decode_labels(sl_decoder_t *d, const uint8_t *msg, size_t len,
                          const sl_label_t **labels, size_t *n, sl_decode_result_t *res);

/* 1 if a replay record looks like a label rather than a sample: a map (or an array whose
 * first element is a map) with a `y` key and no `x` key. Only a cheap, bounds-checked look
 * at the keys: the record is then decoded, and judged, by sl_decode_labels. */
int sl_decode_is_label_record(const uint8_t *msg, size_t len);

#endif
