/* learner_internal.h - the learner's fields, shared by learner.c and state.c only. */
#ifndef SL_LEARNER_INTERNAL_H
#define SL_LEARNER_INTERNAL_H

#include "model/learner.h"

struct sl_learner {
    sl_model_t *model;
    sl_optim_t *optim;
    sl_metrics_t *metrics;
    sl_learner_counters_t counters;

    /* Per-batch scratch, grown as needed and kept. */
    size_t cap_rows;
    double *sample_loss;
    float *dlogits;
    size_t *idx; /* coordinates with a gradient, for rules that use it */
    size_t cap_idx;
};

/* A learner with the given (checked) configs, zero weights and fresh state,
 * without the seeded initialisation. NULL with errstr on failure. */
sl_learner_t *sl_learner_create(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                                uint32_t window, char *errstr, size_t errstr_size);

#endif
