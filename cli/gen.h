/* gen.h - synthetic sample streams for demos, tests and load: the generator
 * behind `streamlearn gen`, usable by other commands (the demo). */
#ifndef SL_GEN_H
#define SL_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "cli/options.h"
#include "common/err.h"
#include "model/model.h"

typedef enum sl_gen_stream {
    SL_GEN_HYPERPLANE = 0, /* x ~ N(0, I); label from random directions */
    SL_GEN_BLOBS = 1,      /* one Gaussian blob per class */
    SL_GEN_SPARSE = 2,     /* nnz named features "f<i>" out of vocab, value 1 */
} sl_gen_stream_t;

/* How --poison corrupts a label: flip it (logistic 1 - y, softmax (y + 1)
 * mod K, linear -y), or replace it with a random one (a uniform class, or a
 * standard normal target). */
typedef enum sl_gen_poison {
    SL_GEN_POISON_FLIP = 0,
    SL_GEN_POISON_RANDOM = 1,
} sl_gen_poison_t;

typedef struct sl_gen_config {
    sl_head_t head; /* label kind: linear (real), logistic (0/1), softmax (0..K-1) */
    uint32_t dim, classes;
    uint64_t seed, samples;
    sl_gen_stream_t stream;
    double labelled_fraction, noise, rate;
    uint64_t drift_at, drift_width; /* drift: concept A before drift_at, B after,
                                       blended linearly over drift_width samples */
    uint32_t per_message, vocab, nnz;
    int bin_form;
    uint64_t poison_from,
        poison_to; /* labels of samples [from, to) corrupted; none if to <= from */
    sl_gen_poison_t poison;
} sl_gen_config_t;

typedef struct sl_gen sl_gen_t;

/* "hyperplane" | "blobs" | "sparse" -> the stream; SL_ERR_INVAL for another name. */
sl_err_t sl_gen_stream_parse(const char *name, sl_gen_stream_t *out);

/* Reads gen's flags. SL_ERR_INVAL with errstr naming the flag. */
sl_err_t sl_gen_config_load(const sl_opts_t *o, sl_gen_config_t *c, char *errstr,
                            size_t errstr_size);

/* A generator for c (copied). NULL with errstr on a bad config or no memory.
 * The same config (seed included) always yields the same bytes. */
sl_gen_t *sl_gen_new(const sl_gen_config_t *c, char *errstr, size_t errstr_size);
void sl_gen_destroy(sl_gen_t *g);

/* Encodes the next message (per_message samples, fewer at the end) and points
 * *msg at it (owned by g, valid until the next call). Returns the number of
 * samples in it; 0 when `samples` have all been produced. */
size_t sl_gen_message(sl_gen_t *g, const uint8_t **msg, size_t *len);

/* Samples produced so far. */
uint64_t sl_gen_produced(const sl_gen_t *g);

#endif
