/* scaler.c - online feature scaling: running statistics and the transform they give. */
#include "scaler.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct sl_scaler {
    uint32_t dim;
    sl_scale_mode_t requested, mode; /* mode: AUTO while undecided */
    double weight;
    uint64_t count;      /* labelled rows seen: bounds the rounding error of the variance */
    double *mean, *m2;   /* STANDARD */
    float *maxabs;       /* MAXABS */
    float *shift, *mult; /* the transform in force */

    /* Scratch for one update. */
    double *bsum, *bsq, *bw; /* per-column batch sums (STANDARD); bw: weight of present entries */
    float *acc;              /* a CSR row's value per column, repeats added up */
    uint8_t *mark;           /* column present in acc */
    uint32_t *cols;          /* the row's distinct columns */
    size_t cap_cols;

    double y_weight, y_mean, y_m2;
    uint64_t y_count;
};

static const char *const mode_names[] = {"off", "standard", "maxabs", "auto"};

const char *sl_scaler_mode_name(sl_scale_mode_t mode) {
    return (unsigned)mode < 4 ? mode_names[mode] : "unknown";
}

sl_err_t sl_scaler_mode_parse(const char *name, sl_scale_mode_t *mode) {
    for (unsigned i = 0; name && i < 4; i++) {
        if (strcmp(name, mode_names[i]) == 0) {
            *mode = (sl_scale_mode_t)i;
            return SL_OK;
        }
    }
    return SL_ERR_INVAL;
}

/* Every array a mode needs, allocated once; NOMEM leaves what exists. */
static sl_err_t alloc_for(sl_scaler_t *s, sl_scale_mode_t mode) {
    size_t d = s->dim;
    if (mode == SL_SCALE_STANDARD) {
        if (!s->mean && !(s->mean = calloc(d, sizeof(double))))
            return SL_ERR_NOMEM;
        if (!s->m2 && !(s->m2 = calloc(d, sizeof(double))))
            return SL_ERR_NOMEM;
        if (!s->bsum && !(s->bsum = malloc(d * sizeof(double))))
            return SL_ERR_NOMEM;
        if (!s->bsq && !(s->bsq = malloc(d * sizeof(double))))
            return SL_ERR_NOMEM;
        if (!s->bw && !(s->bw = malloc(d * sizeof(double))))
            return SL_ERR_NOMEM;
    } else if (mode == SL_SCALE_MAXABS) {
        if (!s->maxabs && !(s->maxabs = calloc(d, sizeof(float))))
            return SL_ERR_NOMEM;
    }
    return SL_OK;
}

static void identity(sl_scaler_t *s) {
    for (uint32_t j = 0; j < s->dim; j++) {
        s->shift[j] = 0.0f;
        s->mult[j] = 1.0f;
    }
}

sl_scaler_t *sl_scaler_new(uint32_t dim, sl_scale_mode_t mode, char *errstr, size_t errstr_size) {
    if (dim < 1 || dim > SL_MODEL_MAX_DIM) {
        sl_errstr_set(errstr, errstr_size, "scaler: dim must be in [1, %u], got %u",
                      SL_MODEL_MAX_DIM, dim);
        return NULL;
    }
    if ((unsigned)mode > SL_SCALE_AUTO) {
        sl_errstr_set(errstr, errstr_size, "--scale: unknown mode %d", (int)mode);
        return NULL;
    }
    sl_scaler_t *s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->dim = dim;
    s->requested = s->mode = mode;
    s->shift = malloc(dim * sizeof(float));
    s->mult = malloc(dim * sizeof(float));
    if (!s->shift || !s->mult || alloc_for(s, mode) != SL_OK)
        goto nomem;
    identity(s);
    return s;
nomem:
    sl_scaler_destroy(s);
    sl_errstr_set(errstr, errstr_size, "scaler: out of memory for %u features", dim);
    return NULL;
}

void sl_scaler_destroy(sl_scaler_t *s) {
    if (!s)
        return;
    free(s->mean);
    free(s->m2);
    free(s->maxabs);
    free(s->shift);
    free(s->mult);
    free(s->bsum);
    free(s->bsq);
    free(s->bw);
    free(s->acc);
    free(s->mark);
    free(s->cols);
    free(s);
}

void sl_scaler_reset(sl_scaler_t *s) {
    size_t d = s->dim;
    s->mode = s->requested;
    s->weight = 0;
    s->count = 0;
    if (s->mean)
        memset(s->mean, 0, d * sizeof(double));
    if (s->m2)
        memset(s->m2, 0, d * sizeof(double));
    if (s->maxabs)
        memset(s->maxabs, 0, d * sizeof(float));
    s->y_weight = s->y_mean = s->y_m2 = 0;
    s->y_count = 0;
    identity(s);
}

uint32_t sl_scaler_dim(const sl_scaler_t *s) {
    return s->dim;
}

sl_scale_mode_t sl_scaler_requested(const sl_scaler_t *s) {
    return s->requested;
}

sl_scale_mode_t sl_scaler_mode(const sl_scaler_t *s) {
    return s->mode;
}

int sl_scaler_on(const sl_scaler_t *s) {
    return s->requested != SL_SCALE_OFF;
}

double sl_scaler_weight(const sl_scaler_t *s) {
    return s->weight;
}

const float *sl_scaler_shift(const sl_scaler_t *s) {
    return s->shift;
}

const float *sl_scaler_mult(const sl_scaler_t *s) {
    return s->mult;
}

void sl_scaler_apply_dense(const sl_scaler_t *s, const float *x, size_t n, float *out) {
    const float *sh = s->shift, *mu = s->mult;
    uint32_t d = s->dim;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *oi = out + i * d;
        for (uint32_t j = 0; j < d; j++)
            oi[j] = (xi[j] - sh[j]) * mu[j];
    }
}

void sl_scaler_apply_sparse(const sl_scaler_t *s, const sl_input_t *x, float *out) {
    size_t k0 = x->n ? x->row_ptr[0] : 0, k1 = x->n ? x->row_ptr[x->n] : 0;
    for (size_t k = k0; k < k1; k++)
        out[k - k0] = x->val[k] * s->mult[x->col[k]];
}

/* A variance indistinguishable from zero given the rounding of `count`
 * updates in double: scikit-learn's test for constant features
 * (sklearn.preprocessing._data._is_constant_feature). */
static int is_constant(double var, double mean, uint64_t count) {
    double eps = DBL_EPSILON, n = (double)count;
    return !(var > n * eps * var + (n * mean * eps) * (n * mean * eps));
}

static void refresh_standard(sl_scaler_t *s, uint32_t j) {
    double var = s->m2[j] / s->weight;
    float mult = 1.0f;
    if (!is_constant(var, s->mean[j], s->count)) {
        float m = (float)(1.0 / sqrt(var));
        if (isfinite(m))
            mult = m;
    }
    s->shift[j] = (float)s->mean[j];
    s->mult[j] = mult;
}

static void refresh_maxabs(sl_scaler_t *s, uint32_t j) {
    float m = s->maxabs[j] > 0 ? (float)(1.0 / s->maxabs[j]) : 1.0f;
    s->shift[j] = 0.0f;
    s->mult[j] = isfinite(m) ? m : 1.0f;
}

static void refresh_all(sl_scaler_t *s) {
    for (uint32_t j = 0; j < s->dim; j++) {
        if (s->mode == SL_SCALE_STANDARD)
            refresh_standard(s, j);
        else if (s->mode == SL_SCALE_MAXABS)
            refresh_maxabs(s, j);
    }
    if (s->mode != SL_SCALE_STANDARD && s->mode != SL_SCALE_MAXABS)
        identity(s);
}

sl_err_t sl_scaler_reserve(sl_scaler_t *s, const sl_input_t *x) {
    if (s->requested == SL_SCALE_OFF)
        return SL_OK;
    sl_scale_mode_t mode = s->mode;
    if (mode == SL_SCALE_AUTO)
        mode = x->dense ? SL_SCALE_STANDARD : SL_SCALE_MAXABS;
    if (alloc_for(s, mode) != SL_OK)
        return SL_ERR_NOMEM;
    if (x->dense || x->n == 0)
        return SL_OK;
    if (!s->acc && !(s->acc = malloc((size_t)s->dim * sizeof(float))))
        return SL_ERR_NOMEM;
    if (!s->mark && !(s->mark = calloc(s->dim, 1)))
        return SL_ERR_NOMEM;
    size_t widest = 0;
    for (size_t i = 0; i < x->n; i++)
        if (x->row_ptr[i + 1] - x->row_ptr[i] > widest)
            widest = x->row_ptr[i + 1] - x->row_ptr[i];
    if (widest > s->dim)
        widest = s->dim;
    if (widest > s->cap_cols) {
        uint32_t *c = realloc(s->cols, widest * sizeof(uint32_t));
        if (!c)
            return SL_ERR_NOMEM;
        s->cols = c;
        s->cap_cols = widest;
    }
    return SL_OK;
}

/* Chan et al.'s pairwise update: merges a batch of weight wb, per-column
 * mean bsum[j] and sum of squared deviations bsq[j] into the totals. */
static void merge_standard(sl_scaler_t *s, double wb) {
    double w = s->weight, total = w + wb;
    for (uint32_t j = 0; j < s->dim; j++) {
        double delta = s->bsum[j] - s->mean[j];
        s->mean[j] += delta * (wb / total);
        s->m2[j] += s->bsq[j] + delta * delta * (w * wb / total);
    }
    s->weight = total;
}

/* Two passes over the labelled dense rows: batch means, then deviations. */
static void update_dense_standard(sl_scaler_t *s, const sl_input_t *x, const float *w,
                                  const uint8_t *labelled, double wb) {
    uint32_t d = s->dim;
    memset(s->bsum, 0, d * sizeof(double));
    memset(s->bsq, 0, d * sizeof(double));
    for (size_t i = 0; i < x->n; i++) {
        if (!labelled[i])
            continue;
        const float *xi = x->dense + i * d;
        double wi = w[i];
        for (uint32_t j = 0; j < d; j++)
            s->bsum[j] += wi * xi[j];
    }
    for (uint32_t j = 0; j < d; j++)
        s->bsum[j] /= wb;
    for (size_t i = 0; i < x->n; i++) {
        if (!labelled[i])
            continue;
        const float *xi = x->dense + i * d;
        double wi = w[i];
        for (uint32_t j = 0; j < d; j++) {
            double dev = xi[j] - s->bsum[j];
            s->bsq[j] += wi * dev * dev;
        }
    }
    merge_standard(s, wb);
}

static void update_dense_maxabs(sl_scaler_t *s, const sl_input_t *x, const uint8_t *labelled) {
    uint32_t d = s->dim;
    for (size_t i = 0; i < x->n; i++) {
        if (!labelled[i])
            continue;
        const float *xi = x->dense + i * d;
        for (uint32_t j = 0; j < d; j++) {
            float a = fabsf(xi[j]);
            s->maxabs[j] = a > s->maxabs[j] ? a : s->maxabs[j];
        }
    }
}

/* One CSR row's distinct columns with repeats added up: fills s->cols and
 * s->acc, returns the count. The caller clears mark for each column. */
static size_t gather_row(sl_scaler_t *s, const sl_input_t *x, size_t i) {
    size_t nc = 0;
    for (size_t k = x->row_ptr[i]; k < x->row_ptr[i + 1]; k++) {
        uint32_t c = x->col[k];
        if (!s->mark[c]) {
            s->mark[c] = 1;
            s->acc[c] = 0.0f;
            s->cols[nc++] = c;
        }
        s->acc[c] += x->val[k];
    }
    return nc;
}

/* MAXABS over CSR rows: the touched columns' maxima and transform. */
static void update_sparse_maxabs(sl_scaler_t *s, const sl_input_t *x, const uint8_t *labelled) {
    for (size_t i = 0; i < x->n; i++) {
        if (!labelled[i])
            continue;
        size_t nc = gather_row(s, x, i);
        for (size_t t = 0; t < nc; t++) {
            uint32_t c = s->cols[t];
            float a = fabsf(s->acc[c]);
            s->mark[c] = 0;
            if (a > s->maxabs[c]) {
                s->maxabs[c] = a;
                refresh_maxabs(s, c);
            }
        }
    }
}

/* STANDARD over CSR rows, two passes like the dense one: absent columns are
 * zeros, which add weight (wb - bw[j]) at value 0 to every column. */
static void update_sparse_standard(sl_scaler_t *s, const sl_input_t *x, const float *w,
                                   const uint8_t *labelled, double wb) {
    uint32_t d = s->dim;
    memset(s->bsum, 0, d * sizeof(double));
    memset(s->bsq, 0, d * sizeof(double));
    memset(s->bw, 0, d * sizeof(double));
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < x->n; i++) {
            if (!labelled[i])
                continue;
            size_t nc = gather_row(s, x, i);
            for (size_t t = 0; t < nc; t++) {
                uint32_t c = s->cols[t];
                double v = s->acc[c];
                s->mark[c] = 0;
                if (pass == 0) {
                    s->bsum[c] += w[i] * v;
                    s->bw[c] += w[i];
                } else {
                    s->bsq[c] += w[i] * (v - s->bsum[c]) * (v - s->bsum[c]);
                }
            }
        }
        for (uint32_t j = 0; pass == 0 && j < d; j++)
            s->bsum[j] /= wb;
    }
    for (uint32_t j = 0; j < d; j++)
        s->bsq[j] += (wb - s->bw[j]) * s->bsum[j] * s->bsum[j];
    merge_standard(s, wb);
}

void sl_scaler_update(sl_scaler_t *s, const sl_input_t *x, const float *w,
                      const uint8_t *labelled) {
    if (s->requested == SL_SCALE_OFF)
        return;
    double wb = 0;
    uint64_t nb = 0;
    for (size_t i = 0; i < x->n; i++) {
        if (labelled[i]) {
            wb += w[i];
            nb++;
        }
    }
    if (nb == 0)
        return;
    if (s->mode == SL_SCALE_AUTO)
        s->mode = x->dense ? SL_SCALE_STANDARD : SL_SCALE_MAXABS;
    s->count += nb;
    if (!x->dense && s->mode == SL_SCALE_MAXABS) {
        update_sparse_maxabs(s, x, labelled);
        s->weight += wb;
        return; /* touched columns were refreshed as they changed */
    }
    if (!x->dense) {
        update_sparse_standard(s, x, w, labelled, wb);
    } else if (s->mode == SL_SCALE_STANDARD) {
        update_dense_standard(s, x, w, labelled, wb);
    } else {
        update_dense_maxabs(s, x, labelled);
        s->weight += wb;
    }
    refresh_all(s);
}

void sl_scaler_update_target(sl_scaler_t *s, const float *y, const float *w,
                             const uint8_t *labelled, size_t n) {
    double wb = 0, sum = 0;
    uint64_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        if (labelled[i]) {
            wb += w[i];
            sum += (double)w[i] * y[i];
            nb++;
        }
    }
    if (nb == 0)
        return;
    double mb = sum / wb, sq = 0;
    for (size_t i = 0; i < n; i++) {
        if (labelled[i]) {
            double dev = y[i] - mb;
            sq += w[i] * dev * dev;
        }
    }
    double total = s->y_weight + wb, delta = mb - s->y_mean;
    s->y_mean += delta * (wb / total);
    s->y_m2 += sq + delta * delta * (s->y_weight * wb / total);
    s->y_weight = total;
    s->y_count += nb;
}

void sl_scaler_target(const sl_scaler_t *s, double *weight, double *mean, double *sd) {
    *weight = s->y_weight;
    *mean = s->y_mean;
    double var = s->y_weight > 0 ? s->y_m2 / s->y_weight : 0;
    *sd = is_constant(var, s->y_mean, s->y_count) ? 1.0 : sqrt(var);
}

void sl_scaler_get_state(const sl_scaler_t *s, sl_scaler_state_t *st) {
    *st = (sl_scaler_state_t){.requested = s->requested,
                              .mode = s->mode,
                              .weight = s->weight,
                              .count = s->count,
                              .y_weight = s->y_weight,
                              .y_mean = s->y_mean,
                              .y_m2 = s->y_m2,
                              .y_count = s->y_count};
    if (s->mode == SL_SCALE_STANDARD) {
        st->mean = s->mean;
        st->m2 = s->m2;
    } else if (s->mode == SL_SCALE_MAXABS) {
        st->maxabs = s->maxabs;
    }
}

static int finite_nonneg(double v) {
    return isfinite(v) && v >= 0;
}

static sl_err_t check_state(const sl_scaler_t *s, const sl_scaler_state_t *st, char *errstr,
                            size_t errstr_size) {
    sl_scale_mode_t want = s->requested;
    int mode_ok =
        st->mode == want ||
        (want == SL_SCALE_AUTO && (st->mode == SL_SCALE_STANDARD || st->mode == SL_SCALE_MAXABS));
    if (st->requested != want || !mode_ok) {
        sl_errstr_set(errstr, errstr_size,
                      "scaler state: mode %s (asked %s) does not fit a %s scaler",
                      sl_scaler_mode_name(st->mode), sl_scaler_mode_name(st->requested),
                      sl_scaler_mode_name(want));
        return SL_ERR_INVAL;
    }
    if (!finite_nonneg(st->weight) || !finite_nonneg(st->y_weight) || !isfinite(st->y_mean) ||
        !finite_nonneg(st->y_m2)) {
        sl_errstr_set(errstr, errstr_size,
                      "scaler state: a weight or target statistic is negative "
                      "or not finite");
        return SL_ERR_INVAL;
    }
    if ((st->mode == SL_SCALE_STANDARD && (!st->mean || !st->m2)) ||
        (st->mode == SL_SCALE_MAXABS && !st->maxabs)) {
        sl_errstr_set(errstr, errstr_size, "scaler state: statistics missing for mode %s",
                      sl_scaler_mode_name(st->mode));
        return SL_ERR_INVAL;
    }
    for (uint32_t j = 0; j < s->dim; j++) {
        int ok = st->mode == SL_SCALE_STANDARD ? isfinite(st->mean[j]) && finite_nonneg(st->m2[j])
                 : st->mode == SL_SCALE_MAXABS ? finite_nonneg(st->maxabs[j])
                                               : 1;
        if (!ok) {
            sl_errstr_set(errstr, errstr_size,
                          "scaler state: feature %u statistic is negative or not finite", j);
            return SL_ERR_INVAL;
        }
    }
    return SL_OK;
}

sl_err_t sl_scaler_set_state(sl_scaler_t *s, const sl_scaler_state_t *st, char *errstr,
                             size_t errstr_size) {
    sl_err_t err = check_state(s, st, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (alloc_for(s, st->mode) != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "scaler state: out of memory");
        return SL_ERR_NOMEM;
    }
    size_t d = s->dim;
    s->mode = st->mode;
    s->weight = st->weight;
    s->count = st->count;
    if (st->mode == SL_SCALE_STANDARD) {
        memmove(s->mean, st->mean, d * sizeof(double));
        memmove(s->m2, st->m2, d * sizeof(double));
    } else if (st->mode == SL_SCALE_MAXABS) {
        memmove(s->maxabs, st->maxabs, d * sizeof(float));
    }
    s->y_weight = st->y_weight;
    s->y_mean = st->y_mean;
    s->y_m2 = st->y_m2;
    s->y_count = st->y_count;
    refresh_all(s);
    return SL_OK;
}

sl_err_t sl_scaler_copy(sl_scaler_t *dst, const sl_scaler_t *src) {
    if (dst->dim != src->dim || dst->requested != src->requested)
        return SL_ERR_MISMATCH;
    sl_scaler_state_t st;
    sl_scaler_get_state(src, &st);
    if (alloc_for(dst, st.mode) != SL_OK)
        return SL_ERR_NOMEM;
    sl_err_t err = sl_scaler_set_state(dst, &st, NULL, 0);
    return err == SL_ERR_INVAL ? SL_ERR_MISMATCH : err;
}
