/* drift.c - Page-Hinkley and ADWIN change detectors, arithmetic in River's order.
 *
 * Both follow River (river.drift, 0.22 and later) operation for operation so
 * that alarm positions match it exactly; scripts/drift_reference.py is the
 * same algorithm in Python, checked against River's documented examples, and
 * writes the vectors tests/unit/test_drift.c compares with. */
#include "drift.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/blob.h"

#define MAX_ROWS 64 /* rows of 2^i-value buckets: a window of up to 2^64 values */

/* Page-Hinkley: a running mean and two fading cumulative sums of the
 * deviations from it, with their running extremes. */
typedef struct ph {
    double n, mean, up, down, min_up, max_down;
    uint64_t n_min_up, n_max_down; /* n when the extremes were last set */
} ph_t;

/* One row of ADWIN's exponential histogram: buckets of 2^i values each,
 * oldest first; total and variance (sum of squared deviations) per bucket. */
typedef struct row {
    uint32_t count;
    double *total, *variance; /* max_buckets + 1 entries each */
} row_t;

typedef struct adwin {
    double width, total, variance;
    uint64_t tick;
    uint32_t n_rows;
    row_t rows[MAX_ROWS];
} adwin_t;

struct sl_drift {
    sl_drift_config_t c;
    int detected, direction;
    uint64_t change_age, detections;
    ph_t ph;
    adwin_t ad;
    double *cells; /* backing store of every row's arrays */
};

sl_drift_config_t sl_drift_config_default(sl_drift_kind_t kind) {
    return (sl_drift_config_t){.kind = kind,
                               .ph_min_instances = 30,
                               .ph_delta = 0.005,
                               .ph_threshold = 50,
                               .ph_alpha = 1 - 0.0001,
                               .ph_mode = SL_DRIFT_UP,
                               .adwin_delta = 0.002,
                               .adwin_clock = 32,
                               .adwin_max_buckets = 5,
                               .adwin_min_window = 5,
                               .adwin_grace = 10};
}

sl_err_t sl_drift_config_check(const sl_drift_config_t *c, char *errstr, size_t errstr_size) {
    const char *bad = NULL;
    if (c->kind != SL_DRIFT_OFF && c->kind != SL_DRIFT_PH && c->kind != SL_DRIFT_ADWIN)
        bad = "kind: must be off, ph or adwin";
    else if (!(c->ph_delta >= 0) || !isfinite(c->ph_delta))
        bad = "ph delta: must be finite and >= 0";
    else if (!(c->ph_threshold > 0) || !isfinite(c->ph_threshold))
        bad = "ph threshold: must be finite and > 0";
    else if (!(c->ph_alpha > 0 && c->ph_alpha <= 1))
        bad = "ph alpha: must be in (0, 1]";
    else if (c->ph_mode != SL_DRIFT_UP && c->ph_mode != SL_DRIFT_DOWN &&
             c->ph_mode != SL_DRIFT_BOTH)
        bad = "ph mode: must be up, down or both";
    else if (!(c->adwin_delta > 0 && c->adwin_delta < 1))
        bad = "adwin delta: must be in (0, 1)";
    else if (c->adwin_clock < 1)
        bad = "adwin clock: must be at least 1";
    else if (c->adwin_max_buckets < 1 || c->adwin_max_buckets > SL_DRIFT_MAX_BUCKETS)
        bad = "adwin max_buckets: must be in 1..64";
    else if (c->adwin_min_window < 1)
        bad = "adwin min_window_length: must be at least 1";
    if (bad) {
        sl_errstr_set(errstr, errstr_size, "drift detector: %s", bad);
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

const char *sl_drift_kind_name(sl_drift_kind_t kind) {
    switch (kind) {
    case SL_DRIFT_OFF: return "off";
    case SL_DRIFT_PH: return "ph";
    case SL_DRIFT_ADWIN: return "adwin";
    }
    return "unknown";
}

sl_err_t sl_drift_kind_parse(const char *name, sl_drift_kind_t *kind) {
    static const sl_drift_kind_t all[] = {SL_DRIFT_OFF, SL_DRIFT_PH, SL_DRIFT_ADWIN};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, sl_drift_kind_name(all[i])) == 0) {
            *kind = all[i];
            return SL_OK;
        }
    return SL_ERR_INVAL;
}

static void ph_reset(ph_t *p) {
    *p = (ph_t){.min_up = INFINITY, .max_down = -1}; /* River starts max(down) at -1 */
}

static void adwin_reset(adwin_t *a) {
    a->width = a->total = a->variance = 0;
    a->tick = 0;
    for (uint32_t i = 0; i < a->n_rows; i++)
        a->rows[i].count = 0;
    a->n_rows = 1;
}

void sl_drift_reset(sl_drift_t *d) {
    ph_reset(&d->ph);
    adwin_reset(&d->ad);
    d->detected = 0;
    d->direction = 0;
    d->change_age = 0;
}

sl_drift_t *sl_drift_new(const sl_drift_config_t *c, char *errstr, size_t errstr_size) {
    if (sl_drift_config_check(c, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_drift_t *d = calloc(1, sizeof *d);
    size_t per_row = (size_t)c->adwin_max_buckets + 1;
    double *cells = d ? calloc(MAX_ROWS * 2 * per_row, sizeof *cells) : NULL;
    if (!cells) {
        free(d);
        sl_errstr_set(errstr, errstr_size, "drift detector: out of memory");
        return NULL;
    }
    d->c = *c;
    d->cells = cells;
    for (size_t i = 0; i < MAX_ROWS; i++) {
        d->ad.rows[i].total = cells + 2 * i * per_row;
        d->ad.rows[i].variance = cells + (2 * i + 1) * per_row;
    }
    d->ad.n_rows = MAX_ROWS; /* so the reset clears every row */
    sl_drift_reset(d);
    return d;
}

void sl_drift_destroy(sl_drift_t *d) {
    if (!d)
        return;
    free(d->cells);
    free(d);
}

sl_drift_t *sl_drift_clone(const sl_drift_t *d) {
    sl_drift_t *c = sl_drift_new(&d->c, NULL, 0);
    if (!c)
        return NULL;
    c->detected = d->detected;
    c->direction = d->direction;
    c->change_age = d->change_age;
    c->detections = d->detections;
    c->ph = d->ph;
    c->ad.width = d->ad.width;
    c->ad.total = d->ad.total;
    c->ad.variance = d->ad.variance;
    c->ad.tick = d->ad.tick;
    c->ad.n_rows = d->ad.n_rows;
    for (size_t i = 0; i < MAX_ROWS; i++)
        c->ad.rows[i].count = d->ad.rows[i].count;
    memcpy(c->cells, d->cells,
           MAX_ROWS * 2 * ((size_t)d->c.adwin_max_buckets + 1) * sizeof *c->cells);
    return c;
}

const sl_drift_config_t *sl_drift_config(const sl_drift_t *d) {
    return &d->c;
}

/* ---- Page-Hinkley ---- */

static int ph_update(sl_drift_t *d, double x) {
    ph_t *p = &d->ph;
    const sl_drift_config_t *c = &d->c;
    p->n += 1.0;
    p->mean += 1.0 * (x - p->mean) / p->n;
    double dev = x - p->mean;
    p->up = c->ph_alpha * p->up + dev - c->ph_delta;
    p->down = c->ph_alpha * p->down + dev + c->ph_delta;
    if (p->up < p->min_up) {
        p->min_up = p->up;
        p->n_min_up = (uint64_t)p->n;
    }
    if (p->down > p->max_down) {
        p->max_down = p->down;
        p->n_max_down = (uint64_t)p->n;
    }
    if (!(p->n >= c->ph_min_instances))
        return 0;
    int up = p->up - p->min_up > c->ph_threshold;
    int down = p->max_down - p->down > c->ph_threshold;
    if (c->ph_mode == SL_DRIFT_UP)
        down = 0;
    else if (c->ph_mode == SL_DRIFT_DOWN)
        up = 0;
    if (!up && !down)
        return 0;
    d->direction = up ? 1 : -1;
    d->change_age = (uint64_t)p->n - (up ? p->n_min_up : p->n_max_down);
    return 1;
}

/* ---- ADWIN ---- */

static void row_push(row_t *r, double total, double variance) {
    r->total[r->count] = total;
    r->variance[r->count] = variance;
    r->count++;
}

static void row_drop_front(row_t *r, uint32_t k) {
    memmove(r->total, r->total + k, (r->count - k) * sizeof *r->total);
    memmove(r->variance, r->variance + k, (r->count - k) * sizeof *r->variance);
    r->count -= k;
}

/* Merges the two oldest buckets of every row that has max_buckets + 1 into
 * one bucket of the next row, carrying on while the next row overflows. */
static void adwin_compress(sl_drift_t *d) {
    adwin_t *a = &d->ad;
    for (uint32_t i = 0; i < a->n_rows && a->rows[i].count == d->c.adwin_max_buckets + 1; i++) {
        if (i + 1 == a->n_rows) {
            if (a->n_rows == MAX_ROWS)
                return; /* 2^64 values: cannot happen in practice */
            a->rows[a->n_rows++].count = 0;
        }
        row_t *r = &a->rows[i], *next = &a->rows[i + 1];
        double n1 = (double)((uint64_t)1 << i);
        double mu1 = r->total[0] / n1, mu2 = r->total[1] / n1;
        double total12 = r->total[0] + r->total[1];
        double temp = n1 * 0.5 * (mu1 - mu2) * (mu1 - mu2);
        row_push(next, total12, r->variance[0] + r->variance[1] + temp);
        row_drop_front(r, 2);
        if (next->count <= d->c.adwin_max_buckets)
            break;
    }
}

static void adwin_insert(sl_drift_t *d, double x) {
    adwin_t *a = &d->ad;
    row_push(&a->rows[0], x, 0.0);
    a->width += 1;
    double inc = 0.0;
    if (a->width > 1.0) {
        double dx = x - a->total / (a->width - 1.0);
        inc = (a->width - 1.0) * dx * dx / a->width;
    }
    a->variance += inc;
    a->total += x;
    adwin_compress(d);
}

/* Drops the oldest bucket (the first of the last row); returns its size. */
static double adwin_drop_oldest(adwin_t *a) {
    uint32_t last = a->n_rows - 1;
    row_t *r = &a->rows[last];
    double n = (double)((uint64_t)1 << last);
    double u = r->total[0], mu = u / n, v = r->variance[0];
    a->width -= n;
    a->total -= u;
    double mu_window = a->total / a->width;
    a->variance -= v + n * a->width * (mu - mu_window) * (mu - mu_window) / (n + a->width);
    row_drop_front(r, 1);
    if (r->count == 0 && a->n_rows > 1)
        a->n_rows--;
    return n;
}

/* River's cut test. delta_prime = log(2 log(width) / delta) and the
 * window's variance / width are the same for every cut of one pass (the
 * window only changes when a pass ends), so the caller computes them once
 * per pass: the same operations on the same operands as River's. */
static int adwin_cut(const sl_drift_t *d, double delta_prime, double var_w, double n0, double n1,
                     double delta_mean) {
    double mwl = d->c.adwin_min_window;
    double m_recip = (1.0 / (n0 - mwl + 1)) + (1.0 / (n1 - mwl + 1));
    double epsilon = sqrt(2 * m_recip * var_w * delta_prime) + 2.0 / 3.0 * delta_prime * m_recip;
    return fabs(delta_mean) > epsilon;
}

/* One scan over every cut, oldest bucket first; a significant cut drops the
 * oldest bucket and the scan starts again. Returns 1 if any cut was found. */
static int adwin_detect(sl_drift_t *d) {
    adwin_t *a = &d->ad;
    int found = 0;
    a->tick++;
    if (a->tick % d->c.adwin_clock != 0 || !(a->width > d->c.adwin_grace))
        return 0;
    for (int again = 1; again;) {
        again = 0;
        double n0 = 0, n1 = a->width, u0 = 0, u1 = a->total;
        double delta_prime = log(2 * log(a->width) / d->c.adwin_delta);
        double var_w = a->variance / a->width;
        int done = 0;
        for (int i = (int)a->n_rows - 1; i >= 0 && !done; i--) {
            const row_t *r = &a->rows[i];
            double size = (double)((uint64_t)1 << i);
            uint32_t count = r->count;
            for (uint32_t k = 0; k < count; k++) {
                n0 += size;
                n1 -= size;
                u0 += r->total[k];
                u1 -= r->total[k];
                if (i == 0 && k == count - 1) {
                    done = 1;
                    break;
                }
                if (n1 < d->c.adwin_min_window || n0 < d->c.adwin_min_window)
                    continue;
                double delta_mean = (u0 / n0) - (u1 / n1);
                if (adwin_cut(d, delta_prime, var_w, n0, n1, delta_mean)) {
                    if (!found)
                        d->direction = delta_mean < 0 ? 1 : -1; /* W1 is the newer part */
                    again = found = 1;
                    if (a->width > 0) {
                        n0 -= adwin_drop_oldest(a);
                        done = 1;
                        break;
                    }
                }
            }
        }
    }
    if (found)
        d->change_age = (uint64_t)a->width;
    return found;
}

int sl_drift_update(sl_drift_t *d, double x) {
    if (d->detected)
        sl_drift_reset(d);
    int hit = 0;
    switch (d->c.kind) {
    case SL_DRIFT_OFF: break;
    case SL_DRIFT_PH: hit = ph_update(d, x); break;
    case SL_DRIFT_ADWIN:
        adwin_insert(d, x);
        hit = adwin_detect(d);
        break;
    }
    d->detected = hit;
    if (hit)
        d->detections++;
    return hit;
}

void sl_drift_info(const sl_drift_t *d, sl_drift_info_t *info) {
    *info = (sl_drift_info_t){.detected = d->detected,
                              .direction = d->detected ? d->direction : 0,
                              .change_age = d->detected ? d->change_age : 0,
                              .detections = d->detections};
    if (d->c.kind == SL_DRIFT_PH) {
        info->n = (uint64_t)d->ph.n;
        info->estimate = d->ph.mean;
    } else if (d->c.kind == SL_DRIFT_ADWIN) {
        info->n = (uint64_t)d->ad.width;
        info->estimate = d->ad.width > 0 ? d->ad.total / d->ad.width : 0;
    }
}

/* ---- state blob ----
 * "SLDR", format version 1, little-endian:
 *   config: u32 kind, ph_min_instances, ph_mode; f64 ph_delta, ph_threshold,
 *           ph_alpha, adwin_delta; u32 adwin_clock, adwin_max_buckets,
 *           adwin_min_window, adwin_grace
 *   u32 detected, direction + 1; u64 change_age, detections
 *   Page-Hinkley: f64 n, mean, up, down, min_up, max_down; u64 n_min_up, n_max_down
 *   ADWIN: f64 width, total, variance; u64 tick; u32 n_rows;
 *          per row: u32 count, count x (f64 total, f64 variance) */
#define DRIFT_MAGIC "SLDR"
#define DRIFT_VERSION 1u

sl_err_t sl_drift_save(const sl_drift_t *d, uint8_t **buf, size_t *len) {
    const sl_drift_config_t *c = &d->c;
    sl_blob_writer_t w;
    sl_blob_begin(&w, DRIFT_MAGIC, DRIFT_VERSION);
    sl_blob_put_u32(&w, c->kind);
    sl_blob_put_u32(&w, c->ph_min_instances);
    sl_blob_put_u32(&w, c->ph_mode);
    sl_blob_put_f64(&w, c->ph_delta);
    sl_blob_put_f64(&w, c->ph_threshold);
    sl_blob_put_f64(&w, c->ph_alpha);
    sl_blob_put_f64(&w, c->adwin_delta);
    sl_blob_put_u32(&w, c->adwin_clock);
    sl_blob_put_u32(&w, c->adwin_max_buckets);
    sl_blob_put_u32(&w, c->adwin_min_window);
    sl_blob_put_u32(&w, c->adwin_grace);
    sl_blob_put_u32(&w, (uint32_t)d->detected);
    sl_blob_put_u32(&w, (uint32_t)(d->direction + 1));
    sl_blob_put_u64(&w, d->change_age);
    sl_blob_put_u64(&w, d->detections);
    const ph_t *p = &d->ph;
    double phs[] = {p->n, p->mean, p->up, p->down, p->min_up, p->max_down};
    for (size_t i = 0; i < 6; i++)
        sl_blob_put_f64(&w, phs[i]);
    sl_blob_put_u64(&w, p->n_min_up);
    sl_blob_put_u64(&w, p->n_max_down);
    const adwin_t *a = &d->ad;
    sl_blob_put_f64(&w, a->width);
    sl_blob_put_f64(&w, a->total);
    sl_blob_put_f64(&w, a->variance);
    sl_blob_put_u64(&w, a->tick);
    sl_blob_put_u32(&w, a->n_rows);
    for (uint32_t i = 0; i < a->n_rows; i++) {
        sl_blob_put_u32(&w, a->rows[i].count);
        for (uint32_t k = 0; k < a->rows[i].count; k++) {
            sl_blob_put_f64(&w, a->rows[i].total[k]);
            sl_blob_put_f64(&w, a->rows[i].variance[k]);
        }
    }
    return sl_blob_finish(&w, buf, len);
}

/* Reads the config and the state into d (made from that config). */
static void read_state(sl_blob_reader_t *r, sl_drift_t *d) {
    d->detected = sl_blob_get_u32(r, "detected") != 0;
    d->direction = (int)sl_blob_get_u32(r, "direction") - 1;
    d->change_age = sl_blob_get_u64(r, "change_age");
    d->detections = sl_blob_get_u64(r, "detections");
    ph_t *p = &d->ph;
    double *phs[] = {&p->n, &p->mean, &p->up, &p->down, &p->min_up, &p->max_down};
    static const char *names[] = {"ph n",    "ph mean",   "ph up",
                                  "ph down", "ph min_up", "ph max_down"};
    for (size_t i = 0; i < 6; i++) {
        *phs[i] = sl_blob_get_f64(r, names[i]);
        /* min_up is +inf until the first value */
        if (isnan(*phs[i]) || (isinf(*phs[i]) && !(i == 4 && *phs[i] > 0)))
            sl_blob_fail(r, names[i], "not finite");
    }
    p->n_min_up = sl_blob_get_u64(r, "ph n_min_up");
    p->n_max_down = sl_blob_get_u64(r, "ph n_max_down");
    if (d->direction < -1 || d->direction > 1)
        sl_blob_fail(r, "direction", "must be -1, 0 or 1");
    adwin_t *a = &d->ad;
    a->width = sl_blob_get_f64(r, "adwin width");
    a->total = sl_blob_get_f64(r, "adwin total");
    a->variance = sl_blob_get_f64(r, "adwin variance");
    a->tick = sl_blob_get_u64(r, "adwin tick");
    uint32_t n_rows = sl_blob_get_u32(r, "adwin rows");
    if (!isfinite(a->width) || !isfinite(a->total) || !isfinite(a->variance) || a->width < 0)
        sl_blob_fail(r, "adwin window", "not finite or negative");
    if (n_rows < 1 || n_rows > MAX_ROWS)
        sl_blob_fail(r, "adwin rows", "must be in 1..64");
    if (r->err != SL_OK)
        return;
    a->n_rows = n_rows;
    double counted = 0;
    for (uint32_t i = 0; i < n_rows && r->err == SL_OK; i++) {
        uint32_t count = sl_blob_get_u32(r, "adwin bucket count");
        if (count > d->c.adwin_max_buckets) {
            sl_blob_fail(r, "adwin bucket count", "more than max_buckets");
            return;
        }
        a->rows[i].count = count;
        for (uint32_t k = 0; k < count; k++) {
            a->rows[i].total[k] = sl_blob_get_f64(r, "adwin bucket total");
            a->rows[i].variance[k] = sl_blob_get_f64(r, "adwin bucket variance");
            if (!isfinite(a->rows[i].total[k]) || !isfinite(a->rows[i].variance[k]))
                sl_blob_fail(r, "adwin bucket", "not finite");
        }
        counted += (double)count * (double)((uint64_t)1 << i);
    }
    if (r->err == SL_OK && counted != a->width)
        sl_blob_fail(r, "adwin width", "does not match its buckets");
}

sl_drift_t *sl_drift_load(const uint8_t *buf, size_t len, sl_err_t *err, char *errstr,
                          size_t errstr_size) {
    sl_blob_reader_t r;
    sl_drift_t *d = NULL;
    sl_err_t e =
        sl_blob_open(&r, buf, len, DRIFT_MAGIC, DRIFT_VERSION, "drift blob", errstr, errstr_size);
    if (e == SL_OK) {
        sl_drift_config_t c = {0};
        c.kind = (sl_drift_kind_t)sl_blob_get_u32(&r, "kind");
        c.ph_min_instances = sl_blob_get_u32(&r, "ph min_instances");
        c.ph_mode = (sl_drift_mode_t)sl_blob_get_u32(&r, "ph mode");
        c.ph_delta = sl_blob_get_f64(&r, "ph delta");
        c.ph_threshold = sl_blob_get_f64(&r, "ph threshold");
        c.ph_alpha = sl_blob_get_f64(&r, "ph alpha");
        c.adwin_delta = sl_blob_get_f64(&r, "adwin delta");
        c.adwin_clock = sl_blob_get_u32(&r, "adwin clock");
        c.adwin_max_buckets = sl_blob_get_u32(&r, "adwin max_buckets");
        c.adwin_min_window = sl_blob_get_u32(&r, "adwin min_window_length");
        c.adwin_grace = sl_blob_get_u32(&r, "adwin grace_period");
        char why[200];
        if (r.err == SL_OK && sl_drift_config_check(&c, why, sizeof why) != SL_OK)
            sl_blob_fail(&r, "config", why);
        if (r.err == SL_OK && !(d = sl_drift_new(&c, NULL, 0))) {
            sl_errstr_set(errstr, errstr_size, "drift blob: out of memory");
            r.err = SL_ERR_NOMEM;
        }
        if (r.err == SL_OK)
            read_state(&r, d);
        e = sl_blob_done(&r);
    }
    if (e != SL_OK) {
        sl_drift_destroy(d);
        d = NULL;
    }
    if (err)
        *err = e;
    return d;
}
