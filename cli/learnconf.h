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
 * errstr naming the flag/variable/key and the problem (exit status 2). */
sl_err_t sl_learnconf_load(const sl_opts_t *o, sl_learnconf_t *c, char *errstr, size_t errstr_size);

/* Creates the learner `c` describes: seeded initialisation, then the --init
 * weights if given, and its scaling: --scale as given, except that with
 * --init, auto keeps the file's scaler (scaler.* tensors) or, when it has
 * none, means off (the weights are for raw features), and off folds a
 * file's scaler into layer 0. Sets the OpenBLAS thread count. On failure
 * returns NULL, fills errstr, and sets *exit_code: 2 for a bad config or a
 * weights file that does not match the model (names the tensor and both
 * shapes), 1 otherwise. */
sl_learner_t *sl_learnconf_create(const sl_learnconf_t *c, int *exit_code, char *errstr,
                                  size_t errstr_size);

#endif
