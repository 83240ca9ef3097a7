/* guard_internal.h - the guard's fields and helpers, shared by guard.c,
 * guard_decide.c, guard_versions.c and guard_state.c only. */
#ifndef SL_GUARD_INTERNAL_H
#define SL_GUARD_INTERNAL_H

#include "model/guard.h"
#include "model/holdbuf.h"
#include "model/score.h"

#define SLOTS (1 + SL_GUARD_MAX_CHALLENGERS + SL_GUARD_MAX_VERSIONS)
#define MAX_EVENTS 8
#define MAX_GOOD 16   /* good versions remembered */
#define MIN_DECIDE 30 /* fewest samples a decision after an alarm compares */

typedef enum slot_kind { SLOT_FREE = 0, SLOT_CHAMPION, SLOT_CHALLENGER, SLOT_VERSION } slot_kind_t;

/* One sample as a window sees it. For the champion: d = a = b = its loss.
 * For a candidate: d = (1 - margin) L_champion - L_candidate, a = L_champion,
 * b = L_candidate, e = E_champion - E_candidate (errors, 0/1; classifiers). */
typedef struct gval {
    double d, a, b, e;
} gval_t;

/* A sliding window over the samples numbered [max(start, seq - W), seq),
 * summing d, d^2, a, b, b^2, e, e^2 over samples where both were scored. */
typedef struct gwin {
    uint64_t start, n;
    double sd, sd2, sa, sb, sb2, se, se2;
    uint32_t since_recompute;
} gwin_t;

typedef struct slot {
    slot_kind_t kind;
    sl_learner_t *l; /* challengers and versions (owned); NULL for the champion */
    uint32_t spec;   /* challengers: index into config.challengers */
    uint64_t version;
    double *loss;  /* ring[hold]: prequential loss of sample s at s % hold; NAN = unscored */
    double *wrong; /* ring[hold]: its error (1 wrong, 0 right; regression: prediction - y) */
    gwin_t win;
} slot_t;

typedef struct good_version {
    uint64_t version;
    uint64_t alarms; /* alarms that had happened when it was published */
} good_version_t;

struct sl_guard {
    sl_guard_config_t c;
    double z_alpha; /* the one-sided critical value of alpha */
    uint32_t block; /* the resolved drift_block */
    uint64_t hold;  /* the resolved hold (>= window) */
    uint64_t warmup, timeout;
    sl_model_config_t mcfg; /* the champion's, for fresh challengers and checks */
    sl_optim_config_t ocfg;
    sl_scale_mode_t scale; /* the champion's feature scaling, as asked for */
    uint32_t metrics_window;
    int classification;

    sl_drift_t *drift;
    double blk_sum; /* the detector's current block */
    uint32_t blk_n;

    slot_t slot[SLOTS]; /* 0: champion; 1..n_challengers: challengers; then versions */
    double *signal;     /* ring[hold]: the champion's error (loss for regression) */
    sl_holdbuf_t *held; /* only with on-alarm switch and a detector */

    uint64_t seq; /* labelled samples seen */
    uint64_t alarms, promotions, switches, kept, resolved;
    uint64_t dismissed; /* detections not raised: in the warm-up, or within the guard */
    uint64_t alarm_at;
    int incident, paused, pending;
    uint64_t incident_start, decide_from;
    int has_ref;
    double ref_loss;
    uint64_t last_good_seq;
    good_version_t good[MAX_GOOD];
    uint32_t n_good;

    /* per call */
    sl_guard_event_t ev[MAX_EVENTS];
    size_t n_ev;
    sl_score_scratch_t scratch;
    double *b_loss, *b_wrong; /* per batch row */
    float *b_out;
    size_t b_cap;
};

/* guard.c */
sl_guard_t *guard_alloc(const sl_guard_config_t *c, const sl_learner_t *champion, char *errstr,
                        size_t errstr_size);
double *guard_nan_ring(uint64_t n);
sl_err_t guard_make_challenger(sl_guard_t *g, uint32_t spec, const sl_learner_t *src,
                               sl_learner_t **out);
sl_err_t guard_grow_batch(sl_guard_t *g, size_t n);
sl_err_t guard_fresh_learner(sl_guard_t *g, uint32_t spec, sl_learner_t **out);
void guard_free_slot(slot_t *s);
sl_guard_event_t *guard_event(sl_guard_t *g, sl_guard_event_kind_t kind);

/* guard_decide.c */
int guard_value(const sl_guard_t *g, const slot_t *s, uint64_t seq, gval_t *v);
void guard_restart_fresh(sl_guard_t *g);
void guard_win_evict(sl_guard_t *g, slot_t *s, uint64_t seq);
void guard_win_add(sl_guard_t *g, slot_t *s, uint64_t seq);
void guard_win_restart(sl_guard_t *g, slot_t *s, uint64_t start);
void guard_restart_all(sl_guard_t *g, uint64_t start);
double guard_win_z(const gwin_t *w);
double guard_win_z_err(const gwin_t *w);
int guard_passes(const sl_guard_t *g, uint64_t n, double s, double s2);
void guard_after_batch(sl_guard_t *g, sl_learner_t *champion, int fired, int direction,
                       uint64_t fired_at, uint64_t change_age);
/* Scores every candidate against the champion over [start, seq) and takes
 * the best that wins (after_alarm: then fresh challengers start again). */
sl_err_t guard_decide_now(sl_guard_t *g, sl_learner_t *champion, uint64_t start, const char *why,
                          int after_alarm);

#endif
