/* drift.h - change detectors for a stream of numbers (a model's prequential
 * error or loss): Page-Hinkley and ADWIN, computed exactly as River does. No I/O. */
#ifndef SL_DRIFT_H
#define SL_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef enum sl_drift_kind {
    SL_DRIFT_OFF = 0,   /* never detects anything */
    SL_DRIFT_PH = 1,    /* Page-Hinkley (Page 1954), as river.drift.PageHinkley */
    SL_DRIFT_ADWIN = 2, /* ADWIN2 (Bifet and Gavalda 2007), as river.drift.ADWIN */
} sl_drift_kind_t;

/* Which changes Page-Hinkley watches: increases of the mean, decreases, or both. */
typedef enum sl_drift_mode {
    SL_DRIFT_UP = 0,
    SL_DRIFT_DOWN = 1,
    SL_DRIFT_BOTH = 2,
} sl_drift_mode_t;

/* Parameters, named as River names them. Plain data; sl_drift_config_check
 * checks it. */
typedef struct sl_drift_config {
    sl_drift_kind_t kind;
    /* Page-Hinkley: values before a detection is possible, tolerated change
     * per value, detection threshold (in the units of the values), fading
     * factor of the cumulative sums, and the direction watched. */
    uint32_t ph_min_instances;
    double ph_delta, ph_threshold, ph_alpha;
    sl_drift_mode_t ph_mode;
    /* ADWIN: significance, values between checks, buckets per row before two
     * merge, shortest sub-window tested, values before the first check. */
    double adwin_delta;
    uint32_t adwin_clock, adwin_max_buckets, adwin_min_window, adwin_grace;
} sl_drift_config_t;

/* River's defaults for `kind`: Page-Hinkley min_instances 30, delta 0.005,
 * threshold 50, alpha 1 - 1e-4; ADWIN delta 0.002, clock 32, max_buckets 5,
 * min_window_length 5, grace_period 10. One choice is ours: ph_mode is
 * SL_DRIFT_UP (River: both), because on a loss or error stream only a rise is
 * bad news, and "both" flags every model still learning (its loss falls). */
sl_drift_config_t sl_drift_config_default(sl_drift_kind_t kind);

/* Checks ranges: ph_delta >= 0, ph_threshold > 0, 0 < ph_alpha <= 1,
 * 0 < adwin_delta < 1, adwin_clock >= 1, 1 <= adwin_max_buckets <=
 * SL_DRIFT_MAX_BUCKETS, adwin_min_window >= 1. SL_ERR_INVAL with errstr
 * naming the field. */
sl_err_t sl_drift_config_check(const sl_drift_config_t *c, char *errstr, size_t errstr_size);

#define SL_DRIFT_MAX_BUCKETS 64

/* Name <-> kind: "off", "ph", "adwin". Parse returns SL_ERR_INVAL for an
 * unknown name and leaves *kind untouched. Names are static strings. */
const char *sl_drift_kind_name(sl_drift_kind_t kind);
sl_err_t sl_drift_kind_parse(const char *name, sl_drift_kind_t *kind);

typedef struct sl_drift sl_drift_t;

/* A detector with config c (copied). NULL with errstr on a bad config or out
 * of memory. Free with sl_drift_destroy. */
sl_drift_t *sl_drift_new(const sl_drift_config_t *c, char *errstr, size_t errstr_size);

/* Frees the detector; NULL is a no-op. */
void sl_drift_destroy(sl_drift_t *d);

/* A copy with the same config and state. NULL on out of memory. */
sl_drift_t *sl_drift_clone(const sl_drift_t *d);

/* The config it runs with (valid for its lifetime). */
const sl_drift_config_t *sl_drift_config(const sl_drift_t *d);

/* Forgets everything seen (the cumulative detection count stays). */
void sl_drift_reset(sl_drift_t *d);

/* Feeds the next value x (finite). Returns 1 when a change is detected at
 * this value, else 0. As in River, the value after a detection starts the
 * detector again from nothing (it has no memory of the old regime). */
int sl_drift_update(sl_drift_t *d, double x);

/* What the detector knows, for decisions and status pages. */
typedef struct sl_drift_info {
    int detected;        /* the last update detected a change */
    int direction;       /* of that change: +1 the mean rose, -1 it fell */
    uint64_t change_age; /* of that change: values since its estimated start (ADWIN: the
                          * window kept after the cut; PH: values since the cumulative sum
                          * was at its extreme) */
    uint64_t n;          /* values since the last reset */
    double estimate;     /* mean of those (ADWIN: of its window) */
    uint64_t detections; /* since creation */
} sl_drift_info_t;
void sl_drift_info(const sl_drift_t *d, sl_drift_info_t *info);

/* Exact state for snapshots: config and every number, bit for bit (format in
 * drift.c). Save returns a malloc'd blob in *buf (caller frees with free()),
 * SL_ERR_NOMEM. Load builds a new detector from a blob; on a truncated,
 * corrupted, newer or inconsistent blob returns NULL with *err (may be NULL)
 * and errstr saying which. */
sl_err_t sl_drift_save(const sl_drift_t *d, uint8_t **buf, size_t *len);
sl_drift_t *sl_drift_load(const uint8_t *buf, size_t len, sl_err_t *err, char *errstr,
                          size_t errstr_size);

#endif
