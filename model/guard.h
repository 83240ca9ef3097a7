/* guard.h - guarded learning: a drift detector on the champion's prequential
 * error, challengers trained beside it on the same batches, a promotion test,
 * and the decision to switch to a stored good version on an alarm. Math
 * only: loading and publishing versions is the caller's (store/, replay). */
#ifndef SL_GUARD_H
#define SL_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "model/drift.h"
#include "model/learner.h"

#define SL_GUARD_MAX_CHALLENGERS 8
#define SL_GUARD_MAX_VERSIONS 4 /* stored versions held as candidates at once */

/* What an alarm does (--on-alarm). */
typedef enum sl_guard_on_alarm {
    SL_GUARD_SWITCH =
        0, /* decide among champion, challengers and good versions; switch to the best */
    SL_GUARD_ALERT = 1, /* report the alarm; change nothing */
    SL_GUARD_PAUSE = 2, /* the champion stops training (still predicts) while the alarm lasts */
} sl_guard_on_alarm_t;

typedef enum sl_challenger_kind {
    /* a copy of the champion whose optimizer takes larger (or smaller) steps:
     * step_factor times its learning rate (FTRL: its alpha) */
    SL_CHALLENGER_STEP = 0,
    /* a freshly initialised learner with the champion's config and feature
     * scaling (fresh statistics), started again from scratch at every alarm */
    SL_CHALLENGER_FRESH = 1,
} sl_challenger_kind_t;

typedef struct sl_challenger_spec {
    sl_challenger_kind_t kind;
    double step_factor; /* SL_CHALLENGER_STEP only, > 0 */
} sl_challenger_spec_t;

/* The guard's settings. Plain data; sl_guard_config_default fills it and
 * sl_guard_config_check checks it. Counts are of labelled samples. */
typedef struct sl_guard_config {
    sl_drift_config_t drift; /* kind SL_DRIFT_OFF: no alarms (challengers still run) */
    uint32_t drift_block;    /* the detector sees means of this many samples; 0 = 1 for
                              * ADWIN, 16 for Page-Hinkley */
    uint32_t n_challengers;  /* 0..SL_GUARD_MAX_CHALLENGERS */
    sl_challenger_spec_t challengers[SL_GUARD_MAX_CHALLENGERS];
    double promote_margin;     /* relative: a candidate must have a mean loss below
                                * (1 - margin) x the champion's; in [0, 1) */
    uint32_t window;           /* --guard-window: samples a test looks back over */
    double alpha;              /* one-sided level of every test, in (0, 0.5) */
    uint32_t hold;             /* samples held to score stored versions; 0 = window */
    uint64_t hold_max_bytes;   /* and at most this much of their features */
    uint64_t warmup;           /* no alarm or promotion before this many samples; 0 = 5 x window */
    uint64_t incident_timeout; /* an alarm unresolved this long ends; 0 = 100 x window */
    sl_guard_on_alarm_t on_alarm;
    uint64_t seed; /* initialisation of fresh challengers (the champion's --seed) */
} sl_guard_config_t;

/* The defaults: ADWIN, two challengers (step x3, fresh), margin 0.05, window
 * 1000, alpha 0.001, hold = window and 64 MiB, on-alarm switch. */
sl_guard_config_t sl_guard_config_default(void);

/* The default challengers for --challengers n: step x3, fresh, step x1/3,
 * step x9, step x1/9, ... (at most SL_GUARD_MAX_CHALLENGERS). */
void sl_guard_config_challengers(sl_guard_config_t *c, uint32_t n);

/* Checks c: SL_OK or SL_ERR_INVAL with errstr naming the field. */
sl_err_t sl_guard_config_check(const sl_guard_config_t *c, char *errstr, size_t errstr_size);

/* The optimizer config of a "larger step" challenger: base with its step
 * scaled by factor (lr for every rule with one; ftrl_alpha for FTRL).
 * Every optimizer kind must have a case here (the switch has no default, so
 * a new kind that does not fails the build with -Werror=switch). */
sl_optim_config_t sl_guard_step_config(const sl_optim_config_t *base, double factor);

typedef struct sl_guard sl_guard_t;

/* A guard for `champion` (borrowed; not kept): challengers are built from it
 * (step ones as copies, scaler statistics included, so they scale exactly as
 * it does; fresh ones from c->seed with its scaling mode), the detector from
 * c. NULL
 * with errstr on a bad config or out of memory. Free with
 * sl_guard_destroy. */
sl_guard_t *sl_guard_new(const sl_guard_config_t *c, const sl_learner_t *champion, char *errstr,
                         size_t errstr_size);

/* Frees the guard and everything it owns; NULL is a no-op. */
void sl_guard_destroy(sl_guard_t *g);

const sl_guard_config_t *sl_guard_config(const sl_guard_t *g);

/* ---- every batch ---- */

/* The test-then-train step of the champion and of every challenger, in
 * place of sl_learner_batch(champion, ...) (same arguments, same meaning of
 * out and res, which describe the champion). While training is paused
 * (--on-alarm pause during an alarm) the champion only predicts: out is
 * written, res->stepped is 0 and its prequential metrics do not advance.
 * Challengers train on every batch. Afterwards, each labelled sample's
 * losses feed the windows and the champion's error (loss, for regression)
 * the detector; then the tests run, and the champion may have been replaced
 * in place (its weights and optimizer state: see sl_guard_events). A rise
 * the detector flags becomes an alarm only when the champion's loss since
 * the estimated change also fails the guard (see sl_guard_mark_snapshot).
 * Errors as sl_learner_batch's: a bad batch (label, shape) changes nothing;
 * running out of memory midway can leave a challenger one batch behind. */
sl_err_t sl_guard_batch(sl_guard_t *g, sl_learner_t *champion, const sl_input_t *x,
                        const sl_targets_t *t, float *out, sl_batch_result_t *res);

typedef enum sl_guard_event_kind {
    SL_GUARD_ALARM = 1,    /* the detector flagged a rise of the champion's error */
    SL_GUARD_PROMOTED = 2, /* a challenger's weights became the champion's */
    SL_GUARD_SWITCHED = 3, /* a stored good version's weights became the champion's */
    SL_GUARD_KEPT = 4,     /* a decision after an alarm kept the champion */
    SL_GUARD_RESOLVED = 5, /* the alarm is over (a paused champion trains again) */
} sl_guard_event_kind_t;

typedef struct sl_guard_event {
    sl_guard_event_kind_t kind;
    uint64_t at;                     /* labelled samples the guard had seen */
    int challenger;                  /* PROMOTED: its index, else -1 */
    uint64_t version;                /* SWITCHED: the version, else 0 */
    uint64_t samples;                /* samples the numbers below are over */
    double champion_loss, best_loss; /* mean losses over them (best: the chosen candidate) */
    double z;                        /* the paired test's statistic for the chosen one */
    char reason[320];                /* PROMOTED, SWITCHED: "auto: ..." for the audit log;
                                      * others: a description with the same numbers */
} sl_guard_event_t;

/* The events of the last sl_guard_batch or sl_guard_decide call, in order;
 * *ev points into the guard, valid until the next call. */
size_t sl_guard_events(const sl_guard_t *g, const sl_guard_event_t **ev);

/* 1 when the champion trains on the next batch, 0 while paused. */
int sl_guard_training(const sl_guard_t *g);

/* ---- alarms and stored versions ---- */

/* With --on-alarm switch, an alarm leaves a decision pending: the caller
 * loads the versions sl_guard_wanted_versions names (those it can), hands
 * them to sl_guard_decide, and the guard scores every candidate on the held
 * samples since the estimated change and switches to the best one that beats
 * the champion and passes the guard (events PROMOTED, SWITCHED or KEPT). The
 * decision may come batches later (an asynchronous load): it then uses the
 * samples since the change up to that point, as far back as they are held.
 * While it is pending no promotion happens and the alarm cannot end, so the
 * caller must always answer it, with no versions if none could be loaded. */
int sl_guard_decision_pending(const sl_guard_t *g);

/* The good versions worth loading, newest first, at most max (and at most
 * SL_GUARD_MAX_VERSIONS): the newest good version and the newest good one
 * before each of the last two alarms, each named once. Versions the guard
 * holds already are left out. Returns the count. */
size_t sl_guard_wanted_versions(const sl_guard_t *g, uint64_t *ids, size_t max);

/* Takes the decision (pending or not). versions[i] (ownership passes to the
 * guard, also on error) is stored version ids[i], one of those asked for; a
 * version with a different architecture or optimizer kind than the champion
 * is refused (freed, SL_ERR_MISMATCH, nothing else done). n may be 0 (none
 * could be loaded). The guard keeps the versions and scores them as the
 * stream goes on, until the alarm is resolved, switching to one of them if
 * it later beats the champion (the poisoned stretch ended). Fresh
 * challengers start again after it. SL_ERR_STATE without --on-alarm switch
 * and a detector (nothing is held to score versions on). Events as for a
 * batch. */
sl_err_t sl_guard_decide(sl_guard_t *g, sl_learner_t *champion, sl_learner_t *const *versions,
                         const uint64_t *ids, size_t n, char *errstr, size_t errstr_size);

/* The good-version test, at snapshot time, for the champion as it is now: 1
 * when no alarm is in force or pending and its loss over the window (at
 * least half full since the last alarm or change of champion) is not
 * significantly above (1 + margin) x the reference (the windowed loss of the
 * last good version; the first version with a window passes; after 100
 * windows without a good version and without an alarm, the next one passes:
 * a slow change became the norm). A good verdict makes that loss the new
 * reference. *window_loss (may be NULL) gets the loss tested. Call it just
 * before sl_guard_save for that snapshot. */
int sl_guard_mark_snapshot(sl_guard_t *g, double *window_loss);

/* Tells the guard the number the store gave a snapshot and whether it was
 * good, once known (also after a restart, for the version restored from). */
void sl_guard_version_published(sl_guard_t *g, uint64_t version, int good);

/* The champion was replaced from outside (a manual rollback, an imported
 * version): forget the alarm, the pending decision and held versions, start
 * the windows and the detector again, and rebuild the challengers from it. */
sl_err_t sl_guard_champion_replaced(sl_guard_t *g, const sl_learner_t *champion);

/* ---- status ---- */

typedef struct sl_guard_candidate_status {
    char name[32];        /* "champion", "step x3", "fresh", "version 17" */
    uint64_t window_n;    /* samples in its window */
    double window_loss;   /* its mean loss over them (NAN when none) */
    double champion_loss; /* the champion's over the same samples */
    double z;             /* the promotion test's statistic (NAN for the champion) */
} sl_guard_candidate_status_t;

typedef struct sl_guard_status {
    int alarm, paused, decision_pending;
    uint64_t labelled, alarms, promotions, switches, kept, resolved;
    uint64_t dismissed;    /* detections that raised no alarm: in the warm-up, or while the
                            * champion's loss since the change still passed the guard */
    uint64_t alarm_at;     /* labelled samples at the last alarm (0: none) */
    double reference_loss; /* NAN until the first good version */
    sl_drift_info_t detector;
    size_t n_candidates; /* champion first, then challengers, then held versions */
    sl_guard_candidate_status_t cand[1 + SL_GUARD_MAX_CHALLENGERS + SL_GUARD_MAX_VERSIONS];
} sl_guard_status_t;
void sl_guard_status(const sl_guard_t *g, sl_guard_status_t *st);

/* Challenger i's learner (owned by the guard; valid until the next call that
 * can rebuild it: sl_guard_batch, sl_guard_decide, sl_guard_champion_replaced). */
const sl_learner_t *sl_guard_challenger(const sl_guard_t *g, size_t i);

/* ---- state ---- */

/* Everything the guard decides from, exactly: config, counters, detector,
 * challengers (model-state blobs), held versions, held samples and every
 * window (format in guard_state.c). Save returns a malloc'd blob (caller
 * frees with free()); SL_ERR_NOMEM. Load rebuilds a guard from it for
 * `champion` (the learner restored from the same snapshot); when `want` is
 * not NULL and differs from the saved config in anything, it is refused with
 * SL_ERR_MISMATCH naming the field (then start a fresh guard with
 * sl_guard_new). Other errors: SL_ERR_DECODE, SL_ERR_TRUNCATED,
 * SL_ERR_CHECKSUM, SL_ERR_VERSION, SL_ERR_NOMEM, with errstr. */
sl_err_t sl_guard_save(const sl_guard_t *g, uint8_t **buf, size_t *len);
sl_guard_t *sl_guard_load(const uint8_t *buf, size_t len, const sl_guard_config_t *want,
                          const sl_learner_t *champion, sl_err_t *err, char *errstr,
                          size_t errstr_size);

#endif
