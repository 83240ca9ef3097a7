/* metrics.h - prequential (test-then-train) metrics: loss, accuracy, MAE and
 * RMSE over all time and over a sliding window of recent labelled samples. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_metrics sl_metrics_t;

/* A read-out. accuracy is NAN for regression; mae/rmse NAN for classification.
 * Values are weighted by sample weight. All NAN when count == 0. */
typedef struct sl_metrics_view {
    uint64_t count; /* labelled samples seen */
    double loss, accuracy, mae, rmse;
} sl_metrics_view_t;

/* Over all time and over the window. */
sl_metrics_view_t sl_metrics_total(const sl_metrics_t *m);
sl_metrics_view_t sl_metrics_window(const sl_metrics_t *m);

#include "common/err.h"

/* One labelled sample's contribution. */
typedef struct sl_metrics_sample {
    double weight; /* > 0 */
    double loss;   /* the per-sample training loss */
    double err;    /* regression: prediction - target; classification: 1 correct, 0 wrong */
} sl_metrics_sample_t;

/* The window's raw state, exposed for the model-state blob. Sums are over
 * ring[0..fill) and kept by add-and-subtract; every `window` insertions they
 * are recomputed from the ring so rounding never accumulates. */
typedef struct sl_metrics_state {
    int classification;
    uint32_t window;
    uint64_t count;                          /* all time */
    double sum_w, sum_loss, sum_err, sum_sq; /* all time; weighted */
    uint32_t head, fill, since_recompute;
    double win_w, win_loss, win_err, win_sq; /* window; weighted */
} sl_metrics_state_t;

#define SL_METRICS_DEFAULT_WINDOW 1000
#define SL_METRICS_MAX_WINDOW (1u << 20) /* 24 MiB of ring: a blob cannot ask for more */

/* Creates metrics for a classification (accuracy) or regression (MAE, RMSE)
 * model with a window of `window` labelled samples (0 = the default 1000;
 * at most SL_METRICS_MAX_WINDOW). Returns NULL on out of memory or a window
 * over the limit. Free with sl_metrics_destroy. */
sl_metrics_t *sl_metrics_new(int classification, uint32_t window);

/* Frees the metrics; NULL is a no-op. */
void sl_metrics_destroy(sl_metrics_t *m);

/* Forgets everything (totals and window). */
void sl_metrics_reset(sl_metrics_t *m);

/* Adds one labelled sample to the totals and the window (evicting the oldest
 * once the window is full). */
void sl_metrics_update(sl_metrics_t *m, const sl_metrics_sample_t *s);

/* Raw state for serialisation: the counters and sums, and the ring of the
 * window's samples (ring[i] for i < fill, valid until the next update). */
void sl_metrics_get_state(const sl_metrics_t *m, sl_metrics_state_t *st,
                          const sl_metrics_sample_t **ring);

/* Restores a state taken with sl_metrics_get_state (ring holds st->fill
 * samples). Returns SL_ERR_INVAL, leaving m unchanged, when st does not fit m
 * (window or kind differ, head/fill out of range). */
sl_err_t sl_metrics_set_state(sl_metrics_t *m, const sl_metrics_state_t *st,
                              const sl_metrics_sample_t *ring);

#endif
