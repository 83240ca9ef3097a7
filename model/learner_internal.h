/* learner_internal.h - the learner's fields, shared by learner.c and state.c only. */
#ifndef SL_LEARNER_INTERNAL_H
#define SL_LEARNER_INTERNAL_H

#include "model/learner.h"

struct sl_learner {
    sl_model_t *model;
    sl_optim_t *optim;
    sl_metrics_t *metrics;
    sl_learner_counters_t counters;
    sl_scaler_t *scaler; /* always present; SL_SCALE_OFF unless asked */

    /* Linear head with scaling on: the last layer still holds weights meant
     * for standardised targets (seeded initialisation), to be re-expressed
     * in target units when the target statistics are first seeded. 0 once
     * done, or when the weights came from outside (--init, import). */
    int target_reexpress;

    /* The auto optimizer's normalisation: sum over labelled rows of the
     * squared L2 norm of each layer's input, and the row count. */
    double norm_sum[SL_MAX_LAYERS];
    double norm_rows;

    /* Per-batch scratch, grown as needed and kept. */
    size_t cap_rows;
    double *sample_loss;
    float *dlogits;
    float *train_logits; /* the first target batch's logits in target units */
    size_t *idx;         /* coordinates with a gradient, for rules that use it */
    size_t cap_idx;
    float *xs; /* scaled input: dense rows, or CSR values */
    size_t cap_xs;
    size_t *xs_row_ptr; /* CSR row pointers rebased to 0 */
    size_t cap_row_ptr;
    float *offset; /* shift * mult per feature, for centred CSR batches */
    float *bias0;  /* layer 0's bias, kept while a centred CSR forward runs */
    float *saved;  /* the last layer before the target reparametrisation */
    size_t cap_saved;
    int centred;    /* the last forward was a centred CSR batch */
    float *row_acc; /* a CSR row's values per column, repeats added up (dim) */
    uint8_t *row_mark;
};

/* A learner with the given (checked) configs and scaling, zero weights and
 * fresh state, without the seeded initialisation. NULL with errstr on
 * failure. */
sl_learner_t *sl_learner_create(const sl_model_config_t *mcfg, const sl_optim_config_t *ocfg,
                                sl_scale_mode_t scale, uint32_t window, char *errstr,
                                size_t errstr_size);

#endif
