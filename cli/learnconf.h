/* learnconf.h - the learning flags shared by `run` and `replay`, turned into
 * model, optimizer and batching settings, and the learner they describe. */
#ifndef SL_LEARNCONF_H
#define SL_LEARNCONF_H

#include <stddef.h>
#include <stdint.h>

#include "cli/options.h"
#include "model/learner.h"

typedef struct sl_learnconf {
    sl_model_config_t model;
    sl_optim_config_t optim;
    sl_scale_mode_t scale;
    uint64_t seed;
    uint32_t batch_size;
    uint32_t metrics_window;
    uint32_t blas_threads;
    size_t max_message_bytes;
    const char *init_path; /* NULL = seeded initialisation; owned by the opts */
} sl_learnconf_t;

/* Reads and checks every learning flag of `o`. Returns SL_ERR_INVAL with
 * errstr naming the flag/variable/key and the problem (exit status 2). Logs a
 * warning for each setting that has no effect (an optimizer flag the chosen
 * optimizer does not use, --activation without hidden layers). */
sl_err_t sl_learnconf_load(const sl_opts_t *o, sl_learnconf_t *c, char *errstr, size_t errstr_size);

/* Creates the learner `c` describes into *out: seeded initialisation, then
 * the --init weights if given (a warning is logged when the file's recorded
 * head or activation differs from the flags'), and its scaling: --scale as
 * given, except that with --init, auto keeps the file's scaler (scaler.*
 * tensors) or, when it has none, means off (the weights are for raw
 * features), and off folds a file's scaler into layer 0. Sets the OpenBLAS
 * thread count. On failure *out is NULL, errstr says why and names the
 * --init file, and the result is: SL_ERR_INVAL (the learner cannot be built
 * from c, or --scale names another scaler than the --init file's), SL_ERR_IO
 * (the --init file cannot be read), SL_ERR_TOO_BIG, SL_ERR_DECODE (not a
 * safetensors file, or inconsistent scaler tensors), SL_ERR_MISMATCH (its
 * tensors do not fit the model: names the tensor and both shapes) or
 * SL_ERR_NOMEM. */
sl_err_t sl_learnconf_create(const sl_learnconf_t *c, sl_learner_t **out, char *errstr,
                             size_t errstr_size);

/* The exit status for a failed sl_learnconf_create: 1 when out of memory,
 * else 2 (the flags or the --init file they name are wrong). */
int sl_learnconf_exit_code(sl_err_t err);

#endif
