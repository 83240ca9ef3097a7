/* test_optim.c - each update rule against the torch.optim / FTRL formulas evaluated in double. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/optim.h"

enum { N = 3, STEPS = 4 };

/* The gradients fed at each step: mixed signs and magnitudes, one zero. */
static const double GRADS[STEPS][N] = {
    {0.5, -1.25, 0.0}, {0.25, 2.0, -0.75}, {-1.5, 0.125, 0.5}, {0.75, -0.5, 1.0}};
static const double P0[N] = {0.3, -0.2, 0.7};

/* Runs STEPS updates of cfg from P0 and compares with want[] after each. */
typedef void (*ref_fn)(const sl_optim_config_t *c, int t, const double *g, double *p, double *s1,
                       double *s2);

static void check_rule(sl_optim_config_t cfg, ref_fn ref) {
    char err[256];
    sl_optim_t *o = sl_optim_new(&cfg, N, err, sizeof(err));
    assert_non_null(o);
    const sl_optim_config_t *c = sl_optim_config(o);
    float p[N];
    double rp[N], s1[N] = {0}, s2[N] = {0};
    for (int i = 0; i < N; i++)
        rp[i] = p[i] = (float)P0[i];
    for (int t = 1; t <= STEPS; t++) {
        float g[N];
        double gd[N];
        for (int i = 0; i < N; i++)
            gd[i] = g[i] = (float)GRADS[t - 1][i];
        if (c->clip_norm > 0) {
            double sum = 0;
            for (int i = 0; i < N; i++)
                sum += gd[i] * gd[i];
            double coef = c->clip_norm / (sqrt(sum) + 1e-6);
            for (int i = 0; coef < 1 && i < N; i++)
                gd[i] *= coef;
        }
        int refused = 1;
        sl_optim_step(o, p, g, NULL, 0, &refused);
        assert_int_equal(refused, 0);
        ref(c, t, gd, rp, s1, s2);
        for (int i = 0; i < N; i++)
            if (fabs(p[i] - rp[i]) > 1e-6 + 1e-5 * fabs(rp[i]))
                fail_msg("%s step %d p[%d] = %.9g, want %.9g", sl_optim_kind_name(c->kind), t, i,
                         p[i], rp[i]);
    }
    assert_int_equal(sl_optim_steps(o), STEPS);
    sl_optim_destroy(o);
}

static void ref_sgd(const sl_optim_config_t *c, int t, const double *g, double *p, double *buf,
                    double *unused) {
    (void)unused;
    for (int i = 0; i < N; i++) {
        double d = g[i] + c->weight_decay * p[i];
        if (c->momentum != 0) {
            buf[i] = t == 1 ? d : c->momentum * buf[i] + d;
            d = c->nesterov ? d + c->momentum * buf[i] : buf[i];
        }
        p[i] -= c->lr * d;
    }
}

static void ref_adam(const sl_optim_config_t *c, int t, const double *g, double *p, double *m,
                     double *v) {
    for (int i = 0; i < N; i++) {
        double gi = g[i];
        if (c->kind == SL_OPTIM_ADAMW)
            p[i] *= 1 - c->lr * c->weight_decay;
        else
            gi += c->weight_decay * p[i];
        m[i] = c->beta1 * m[i] + (1 - c->beta1) * gi;
        v[i] = c->beta2 * v[i] + (1 - c->beta2) * gi * gi;
        double bc1 = 1 - pow(c->beta1, t), bc2 = 1 - pow(c->beta2, t);
        double denom = sqrt(v[i]) / sqrt(bc2) + c->eps;
        p[i] -= (c->lr / bc1) * m[i] / denom;
    }
}

static void ref_adagrad(const sl_optim_config_t *c, int t, const double *g, double *p, double *sum,
                        double *unused) {
    (void)t;
    (void)unused;
    for (int i = 0; i < N; i++) {
        double gi = g[i] + c->weight_decay * p[i];
        sum[i] += gi * gi;
        p[i] -= c->lr * gi / (sqrt(sum[i]) + c->eps);
    }
}

static void ref_rmsprop(const sl_optim_config_t *c, int t, const double *g, double *p, double *sq,
                        double *buf) {
    (void)t;
    for (int i = 0; i < N; i++) {
        double gi = g[i] + c->weight_decay * p[i];
        sq[i] = c->alpha * sq[i] + (1 - c->alpha) * gi * gi;
        double avg = sqrt(sq[i]) + c->eps;
        if (c->momentum > 0) {
            buf[i] = c->momentum * buf[i] + gi / avg;
            p[i] -= c->lr * buf[i];
        } else {
            p[i] -= c->lr * gi / avg;
        }
    }
}

/* The auto rule with layer scale `scale` (1 when no groups are set). */
static double g_auto_scale = 1;

static void ref_auto(const sl_optim_config_t *c, int t, const double *g, double *p, double *sum,
                     double *m) {
    for (int i = 0; i < N; i++) {
        double gi = g[i] + c->weight_decay * p[i];
        sum[i] += gi * gi;
        m[i] = c->momentum * m[i] + (1 - c->momentum) * gi;
        double step = c->lr * g_auto_scale / (1 - pow(c->momentum, t));
        p[i] -= step * m[i] / (sqrt(sum[i]) + c->eps);
    }
}

static sl_optim_config_t cfg_of(sl_optim_kind_t kind) {
    return sl_optim_config_default(kind);
}

static void test_sgd(void **state) {
    (void)state;
    check_rule(cfg_of(SL_OPTIM_SGD), ref_sgd);
    sl_optim_config_t c = cfg_of(SL_OPTIM_SGD);
    c.lr = 0.1;
    c.momentum = 0.9;
    check_rule(c, ref_sgd);
    c.nesterov = 1;
    check_rule(c, ref_sgd);
    c.weight_decay = 0.05;
    check_rule(c, ref_sgd);
    c = cfg_of(SL_OPTIM_SGD);
    c.weight_decay = 0.3;
    check_rule(c, ref_sgd);
}

static void test_sgd_first_momentum_step_copies_gradient(void **state) {
    (void)state;
    sl_optim_config_t c = cfg_of(SL_OPTIM_SGD);
    c.lr = 1;
    c.momentum = 0.5;
    sl_optim_t *o = sl_optim_new(&c, 1, NULL, 0);
    float p = 0, g = 2;
    int refused;
    sl_optim_step(o, &p, &g, NULL, 0, &refused);
    assert_true(p == -2.0f); /* buf = g, not (1 - dampening) g or momentum * 0 + g twice */
    assert_true(sl_optim_state(o, 0)[0] == 2.0f);
    g = 2;
    sl_optim_step(o, &p, &g, NULL, 0, &refused);
    assert_true(p == -5.0f); /* buf = 0.5 * 2 + 2 = 3 */
    sl_optim_destroy(o);
}

static void test_adam(void **state) {
    (void)state;
    check_rule(cfg_of(SL_OPTIM_ADAM), ref_adam);
    sl_optim_config_t c = cfg_of(SL_OPTIM_ADAM);
    c.lr = 0.05;
    c.beta1 = 0.8;
    c.beta2 = 0.9;
    c.eps = 1e-3;
    c.weight_decay = 0.1;
    check_rule(c, ref_adam);
}

static void test_adamw_decouples_decay(void **state) {
    (void)state;
    check_rule(cfg_of(SL_OPTIM_ADAMW), ref_adam);
    sl_optim_config_t c = cfg_of(SL_OPTIM_ADAMW);
    c.lr = 0.1;
    c.weight_decay = 0.5;
    check_rule(c, ref_adam);
    /* Zero gradient: Adam leaves p, AdamW shrinks it by exactly 1 - lr*wd. */
    sl_optim_t *o = sl_optim_new(&c, 1, NULL, 0);
    float p = 2, g = 0;
    int refused;
    sl_optim_step(o, &p, &g, NULL, 0, &refused);
    assert_true(fabsf(p - 2.0f * 0.95f) < 1e-7f);
    sl_optim_destroy(o);
}

static void test_adagrad(void **state) {
    (void)state;
    check_rule(cfg_of(SL_OPTIM_ADAGRAD), ref_adagrad);
    sl_optim_config_t c = cfg_of(SL_OPTIM_ADAGRAD);
    c.lr = 0.5;
    c.weight_decay = 0.2;
    check_rule(c, ref_adagrad);
}

static void test_rmsprop(void **state) {
    (void)state;
    check_rule(cfg_of(SL_OPTIM_RMSPROP), ref_rmsprop);
    sl_optim_config_t c = cfg_of(SL_OPTIM_RMSPROP);
    c.momentum = 0.9;
    c.alpha = 0.9;
    c.weight_decay = 0.1;
    check_rule(c, ref_rmsprop);
}

static void test_auto(void **state) {
    (void)state;
    g_auto_scale = 1;
    check_rule(cfg_of(SL_OPTIM_AUTO), ref_auto);
    sl_optim_config_t c = cfg_of(SL_OPTIM_AUTO);
    c.momentum = 0; /* plain Adagrad */
    c.lr = 0.3;
    check_rule(c, ref_auto);
    check_rule(cfg_of(SL_OPTIM_ADAGRAD), ref_adagrad);
    c = cfg_of(SL_OPTIM_AUTO);
    c.momentum = 0.9;
    c.weight_decay = 0.1;
    check_rule(c, ref_auto);
}

/* Layer scales: each group steps with lr * its scale; bad groups refused. */
static void test_auto_layer_scales(void **state) {
    (void)state;
    char err[256];
    sl_optim_config_t c = cfg_of(SL_OPTIM_AUTO);
    sl_optim_t *a = sl_optim_new(&c, N, err, sizeof err), *b = sl_optim_new(&c, N, err, sizeof err);
    size_t ends[2] = {1, N};
    float scales[2] = {0.25f, 3.0f};
    assert_int_equal(sl_optim_set_layer_scales(a, 2, ends, scales), SL_OK);
    float pa[N], pb[N], g[N];
    for (int i = 0; i < N; i++)
        pa[i] = pb[i] = (float)P0[i];
    int refused;
    for (int t = 0; t < STEPS; t++) {
        /* Without weight decay a step depends on the gradients only. */
        float da[N], db[N];
        memcpy(da, pa, sizeof da);
        memcpy(db, pb, sizeof db);
        for (int i = 0; i < N; i++)
            g[i] = (float)GRADS[t][i];
        sl_optim_step(a, pa, g, NULL, 0, &refused);
        for (int i = 0; i < N; i++)
            g[i] = (float)GRADS[t][i];
        sl_optim_step(b, pb, g, NULL, 0, &refused);
        for (int i = 0; i < N; i++) {
            double want = ((double)pb[i] - db[i]) * (i < 1 ? 0.25 : 3.0);
            assert_true(fabs(((double)pa[i] - da[i]) - want) < 1e-5);
        }
    }
    size_t bad_ends[2] = {2, 2};
    assert_int_equal(sl_optim_set_layer_scales(a, 2, bad_ends, scales), SL_ERR_INVAL);
    size_t short_ends[1] = {N - 1};
    assert_int_equal(sl_optim_set_layer_scales(a, 1, short_ends, scales), SL_ERR_INVAL);
    float neg[2] = {-1, 1};
    assert_int_equal(sl_optim_set_layer_scales(a, 2, ends, neg), SL_ERR_INVAL);
    assert_int_equal(sl_optim_set_layer_scales(a, 0, ends, scales), SL_ERR_INVAL);
    sl_optim_destroy(a);
    sl_optim_destroy(b);
}

static void test_clipping(void **state) {
    (void)state;
    sl_optim_config_t c = cfg_of(SL_OPTIM_SGD);
    c.lr = 1;
    c.clip_norm = 0.5; /* every step's gradient is longer: clipped */
    check_rule(c, ref_sgd);
    c.clip_norm = 100; /* never reached: unchanged */
    check_rule(c, ref_sgd);
    c = cfg_of(SL_OPTIM_ADAM);
    c.clip_norm = 1.0;
    check_rule(c, ref_adam);
    /* Exact case: g = (3, 4), norm 5, clip 1 -> g * 1/(5 + 1e-6). */
    c = cfg_of(SL_OPTIM_SGD);
    c.lr = 1;
    c.clip_norm = 1;
    sl_optim_t *o = sl_optim_new(&c, 2, NULL, 0);
    float p[2] = {0, 0}, g[2] = {3, 4};
    int refused;
    sl_optim_step(o, p, g, NULL, 0, &refused);
    assert_true(fabs(p[0] + 3 / (5 + 1e-6)) < 1e-7 && fabs(p[1] + 4 / (5 + 1e-6)) < 1e-7);
    sl_optim_destroy(o);
}

/* FTRL-Proximal per coordinate, McMahan et al. 2013 Algorithm 1, in double. */
static void ref_ftrl(const sl_optim_config_t *c, double g, double *w, double *z, double *n) {
    if (g == 0)
        return;
    double sigma = (sqrt(*n + g * g) - sqrt(*n)) / c->ftrl_alpha;
    *z += g - sigma * *w;
    *n += g * g;
    if (fabs(*z) <= c->l1)
        *w = 0;
    else
        *w =
            -(*z - (*z < 0 ? -1 : 1) * c->l1) / ((c->ftrl_beta + sqrt(*n)) / c->ftrl_alpha + c->l2);
}

static void run_ftrl(sl_optim_config_t cfg) {
    sl_optim_t *o = sl_optim_new(&cfg, N, NULL, 0);
    assert_non_null(o);
    const sl_optim_config_t *c = sl_optim_config(o);
    float p[N] = {0};
    double w[N] = {0}, z[N] = {0}, n[N] = {0};
    for (int t = 0; t < STEPS; t++) {
        float g[N];
        for (int i = 0; i < N; i++) {
            g[i] = (float)GRADS[t][i];
            ref_ftrl(c, GRADS[t][i], &w[i], &z[i], &n[i]);
        }
        int refused;
        sl_optim_step(o, p, g, NULL, 0, &refused);
        assert_int_equal(refused, 0);
        for (int i = 0; i < N; i++) {
            assert_true(fabs(p[i] - w[i]) <= 1e-6 + 1e-5 * fabs(w[i]));
            assert_true((p[i] == 0.0f) == (w[i] == 0.0));
            assert_true(fabs(sl_optim_state(o, 0)[i] - z[i]) <= 1e-6 + 1e-5 * fabs(z[i]));
            assert_true(fabs(sl_optim_state(o, 1)[i] - n[i]) <= 1e-6 + 1e-5 * fabs(n[i]));
        }
    }
    sl_optim_destroy(o);
}

static void test_ftrl(void **state) {
    (void)state;
    run_ftrl(cfg_of(SL_OPTIM_FTRL));
    sl_optim_config_t c = cfg_of(SL_OPTIM_FTRL);
    c.ftrl_alpha = 0.5;
    c.ftrl_beta = 0.5;
    c.l2 = 0.25;
    run_ftrl(c);
}

static void test_ftrl_l1_gives_exact_zeros(void **state) {
    (void)state;
    sl_optim_config_t c = cfg_of(SL_OPTIM_FTRL);
    c.l1 = 1.0;
    run_ftrl(c);
    /* One step with |g| < l1: |z| = |g| <= l1, so w is exactly 0. */
    sl_optim_t *o = sl_optim_new(&c, 2, NULL, 0);
    float p[2] = {0, 0}, g[2] = {0.9f, 3.0f};
    int refused;
    sl_optim_step(o, p, g, NULL, 0, &refused);
    assert_true(p[0] == 0.0f);
    /* z = 3, n = 9: w = -(3 - 1) / ((1 + 3) / 0.1) = -0.05 */
    assert_true(fabsf(p[1] + 0.05f) < 1e-7f);
    sl_optim_destroy(o);
}

static void test_ftrl_idx_and_zero_gradient(void **state) {
    (void)state;
    sl_optim_config_t c = cfg_of(SL_OPTIM_FTRL);
    sl_optim_t *o = sl_optim_new(&c, 4, NULL, 0);
    float p[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    sl_optim_params_changed(o, p);
    /* Coordinates outside idx (here 0 and 3) are not visited; a zero gradient
     * at a listed one (1) changes nothing either. */
    float g[4] = {0, 0, 1, 0};
    size_t idx[] = {1, 2};
    int refused;
    sl_optim_step(o, p, g, idx, 2, &refused);
    assert_true(p[0] == 0.5f && p[1] == 0.5f && p[3] == 0.5f);
    /* Coordinate 2 as the paper: z0 = -0.5 * 10, then sigma = 10, z = -5 + 1 - 5. */
    double z = -0.5 * 10 + 1 - 10 * 0.5, w = -z / ((1 + 1) / 0.1);
    assert_true(fabs(p[2] - w) < 1e-7);
    sl_optim_destroy(o);
}

static void test_ftrl_params_changed_reproduces_weights(void **state) {
    (void)state;
    sl_optim_config_t c = cfg_of(SL_OPTIM_FTRL);
    c.l1 = 0.5;
    c.l2 = 0.2;
    sl_optim_t *o = sl_optim_new(&c, 3, NULL, 0);
    float p[3] = {0.75f, -1.5f, 0.0f};
    sl_optim_params_changed(o, p);
    const float *z = sl_optim_state(o, 0), *n = sl_optim_state(o, 1);
    const sl_optim_config_t *r = sl_optim_config(o);
    for (int i = 0; i < 3; i++) {
        assert_true(n[i] == 0.0f);
        double w = fabs(z[i]) <= r->l1 ? 0
                                       : -(z[i] - (z[i] < 0 ? -1 : 1) * r->l1) /
                                             (r->ftrl_beta / r->ftrl_alpha + r->l2);
        assert_true(fabs(w - p[i]) < 1e-6);
    }
    sl_optim_destroy(o);
}

static void expect_refusal(sl_optim_config_t c, float gval) {
    sl_optim_t *o = sl_optim_new(&c, N, NULL, 0);
    float p[N] = {1, 2, 3}, g[N] = {1, 1, 1};
    int refused;
    sl_optim_step(o, p, g, NULL, 0, &refused); /* a normal step first: state non-zero */
    assert_int_equal(refused, 0);
    size_t ns = sl_optim_n_state(o);
    float before_p[N], before_s[2][N];
    memcpy(before_p, p, sizeof(p));
    for (size_t s = 0; s < ns; s++)
        memcpy(before_s[s], sl_optim_state(o, s), sizeof(p));
    uint64_t steps = sl_optim_steps(o);
    g[0] = 1;
    g[1] = gval;
    g[2] = -gval;
    sl_optim_step(o, p, g, NULL, 0, &refused);
    assert_int_equal(refused, 1);
    assert_memory_equal(p, before_p, sizeof(p));
    for (size_t s = 0; s < ns; s++)
        assert_memory_equal(sl_optim_state(o, s), before_s[s], sizeof(p));
    assert_int_equal(sl_optim_steps(o), steps);
    sl_optim_destroy(o);
}

static void test_nonfinite_step_is_refused(void **state) {
    (void)state;
    sl_optim_config_t c = cfg_of(SL_OPTIM_SGD);
    c.lr = 1e38;
    c.momentum = 0.5;
    expect_refusal(c, 1e10f); /* p overflows to inf */
    expect_refusal(cfg_of(SL_OPTIM_ADAM), NAN);
    expect_refusal(cfg_of(SL_OPTIM_ADAM), 1e30f); /* g*g overflows v */
    expect_refusal(cfg_of(SL_OPTIM_RMSPROP), INFINITY);
    expect_refusal(cfg_of(SL_OPTIM_ADAGRAD), 1e30f);
    expect_refusal(cfg_of(SL_OPTIM_FTRL), 1e30f);
    c = cfg_of(SL_OPTIM_SGD);
    c.clip_norm = 1;
    expect_refusal(c, INFINITY);
}

static void test_config_resolve(void **state) {
    (void)state;
    char err[256];
    sl_optim_config_t c = cfg_of(SL_OPTIM_ADAMW);
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_OK);
    assert_true(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 &&
                c.weight_decay == 1e-2 && c.clip_norm == 0);
    c = cfg_of(SL_OPTIM_ADAGRAD);
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_OK);
    assert_true(c.lr == 1e-2 && c.eps == 1e-10 && c.weight_decay == 0);
    c = cfg_of(SL_OPTIM_RMSPROP);
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_OK);
    assert_true(c.lr == 1e-2 && c.alpha == 0.99 && c.eps == 1e-8 && c.momentum == 0);
    c = cfg_of(SL_OPTIM_FTRL);
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_OK);
    assert_true(c.ftrl_alpha == 0.1 && c.ftrl_beta == 1 && c.l1 == 0 && c.l2 == 0);
    c = cfg_of(SL_OPTIM_SGD);
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_OK);
    assert_true(c.lr == 0.01 && c.momentum == 0 && c.weight_decay == 0);
    c = cfg_of(SL_OPTIM_AUTO);
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_OK);
    assert_true(c.lr == 2 && c.momentum == 0.5 && c.eps == 1e-10 && c.weight_decay == 0);
    c.momentum = 1;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--momentum: must be in [0, 1)"));

    c = cfg_of(SL_OPTIM_ADAM);
    c.beta1 = 1.0;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--beta1"));
    c = cfg_of(SL_OPTIM_SGD);
    c.nesterov = 1;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--nesterov"));
    c = cfg_of(SL_OPTIM_SGD);
    c.lr = -1;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--lr"));
    c = cfg_of(SL_OPTIM_FTRL);
    c.ftrl_alpha = 0;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--ftrl-alpha"));
    c = cfg_of(SL_OPTIM_ADAM);
    c.clip_norm = INFINITY;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--clip-norm"));
    c.kind = (sl_optim_kind_t)17;
    assert_int_equal(sl_optim_config_resolve(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_null(sl_optim_new(&c, 3, err, sizeof(err)));
}

static void test_kind_names(void **state) {
    (void)state;
    for (int k = 0; k <= SL_OPTIM_AUTO; k++) {
        sl_optim_kind_t back;
        assert_int_equal(sl_optim_kind_parse(sl_optim_kind_name((sl_optim_kind_t)k), &back), SL_OK);
        assert_int_equal(back, k);
    }
    sl_optim_kind_t kind = SL_OPTIM_ADAM;
    assert_int_equal(sl_optim_kind_parse("lbfgs", &kind), SL_ERR_INVAL);
    assert_int_equal(kind, SL_OPTIM_ADAM);
    sl_optim_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_sgd_first_momentum_step_copies_gradient),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_adamw_decouples_decay),
        cmocka_unit_test(test_adagrad),
        cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_auto),
        cmocka_unit_test(test_auto_layer_scales),
        cmocka_unit_test(test_clipping),
        cmocka_unit_test(test_ftrl),
        cmocka_unit_test(test_ftrl_l1_gives_exact_zeros),
        cmocka_unit_test(test_ftrl_idx_and_zero_gradient),
        cmocka_unit_test(test_ftrl_params_changed_reproduces_weights),
        cmocka_unit_test(test_nonfinite_step_is_refused),
        cmocka_unit_test(test_config_resolve),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
