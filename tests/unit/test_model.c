/* test_model.c - forward/backward against a double-precision reference, sparse vs dense, config
 * checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/linalg.h"
#include "model/model.h"

/* A small deterministic generator for test data, independent of the model's. */
static uint64_t rng_state = 12345;
static double urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* The reference: the same network evaluated naively in double. */
static double ref_act(sl_act_t a, double z) {
    switch (a) {
    case SL_ACT_RELU: return z > 0 ? z : 0;
    case SL_ACT_TANH: return tanh(z);
    case SL_ACT_SIGMOID: return 1 / (1 + exp(-z));
    }
    return NAN;
}

static void ref_forward(const sl_model_config_t *c, const double *p, const double *x, double *out) {
    double a[64], b[64];
    uint32_t in = c->dim;
    memcpy(a, x, in * sizeof(double));
    size_t off = 0;
    for (uint32_t l = 0; l <= c->n_hidden; l++) {
        uint32_t o = l < c->n_hidden ? c->hidden[l] : (c->head == SL_HEAD_SOFTMAX ? c->classes : 1);
        for (uint32_t j = 0; j < o; j++) {
            double z = p[off + (size_t)o * in + j];
            for (uint32_t k = 0; k < in; k++)
                z += p[off + (size_t)j * in + k] * a[k];
            b[j] = l < c->n_hidden ? ref_act(c->activation, z) : z;
        }
        off += (size_t)o * in + o;
        in = o;
        memcpy(a, b, o * sizeof(double));
    }
    memcpy(out, a, in * sizeof(double));
}

static double ref_loss(const sl_model_config_t *c, const double *p, const double *x, size_t n,
                       const float *y, const float *w, const uint8_t *lab) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lab[i])
            continue;
        double z[16], li;
        ref_forward(c, p, x + i * c->dim, z);
        if (c->head == SL_HEAD_LINEAR) {
            li = (z[0] - y[i]) * (z[0] - y[i]);
        } else if (c->head == SL_HEAD_LOGISTIC) {
            double pr = 1 / (1 + exp(-z[0]));
            li = -(y[i] * log(pr) + (1 - y[i]) * log(1 - pr));
        } else {
            double s = 0;
            for (uint32_t j = 0; j < c->classes; j++)
                s += exp(z[j]);
            li = log(s) - z[(int)y[i]];
        }
        num += w[i] * li;
        den += w[i];
    }
    return num / den;
}

static sl_model_config_t config(sl_head_t head, uint32_t dim, uint32_t n_hidden, sl_act_t act) {
    sl_model_config_t c = {.head = head, .dim = dim, .classes = 3, .activation = act};
    c.n_hidden = n_hidden;
    for (uint32_t i = 0; i < n_hidden; i++)
        c.hidden[i] = 5 - i;
    return c;
}

/* Checks forward outputs, loss and every gradient coordinate of one model. */
static void grad_check(const sl_model_config_t *c) {
    enum { N = 7 };
    char err[256];
    sl_model_t *m = sl_model_new(c, err, sizeof(err));
    assert_non_null(m);
    sl_model_init_seeded(m, 7);
    size_t np = sl_model_n_params(m);
    float *params = sl_model_params(m);
    float x[N * 4], y[N], w[N];
    double xd[N * 4];
    uint8_t lab[N] = {1, 0, 1, 1, 0, 1, 1};
    for (size_t i = 0; i < N * c->dim; i++)
        xd[i] = x[i] = (float)(urand() * 4 - 2);
    for (size_t i = 0; i < N; i++) {
        w[i] = (float)(0.5 + urand() * 1.5);
        if (c->head == SL_HEAD_LINEAR)
            y[i] = (float)(urand() * 2 - 1);
        else if (c->head == SL_HEAD_LOGISTIC)
            y[i] = (float)(i % 2);
        else
            y[i] = (float)(i % 3);
    }
    sl_input_t in = {.n = N, .dim = c->dim, .dense = x};
    const float *logits;
    assert_int_equal(sl_model_forward(m, &in, &logits, err, sizeof(err)), SL_OK);
    uint32_t k = sl_model_out_dim(m);
    double *p = malloc(np * sizeof(double));
    for (size_t j = 0; j < np; j++)
        p[j] = params[j];
    for (size_t i = 0; i < N; i++) {
        double z[16];
        ref_forward(c, p, xd + i * c->dim, z);
        for (uint32_t j = 0; j < k; j++)
            assert_true(fabs(logits[i * k + j] - z[j]) <= 1e-5 * (1 + fabs(z[j])));
    }
    float dlogits[N * 3];
    double loss, sample_loss[N];
    size_t n_lab;
    assert_int_equal(
        sl_model_loss(m, logits, N, y, w, lab, NULL, sample_loss, dlogits, &loss, &n_lab), SL_OK);
    assert_int_equal(n_lab, 5);
    double want_loss = ref_loss(c, p, xd, N, y, w, lab);
    assert_true(fabs(loss - want_loss) <= 1e-5 * (1 + fabs(want_loss)));
    assert_true(sample_loss[1] == 0 && sample_loss[4] == 0);
    assert_int_equal(sl_model_backward(m, &in, dlogits), SL_OK);
    const float *g = sl_model_grad(m);
    for (size_t j = 0; j < np; j++) {
        double h = 1e-6, save = p[j];
        p[j] = save + h;
        double up = ref_loss(c, p, xd, N, y, w, lab);
        p[j] = save - h;
        double down = ref_loss(c, p, xd, N, y, w, lab);
        p[j] = save;
        double num = (up - down) / (2 * h);
        if (fabs(g[j] - num) > 1e-4 + 1e-3 * fabs(num))
            fail_msg("head %d hidden %u act %d: grad[%zu] = %g, numeric %g", c->head, c->n_hidden,
                     c->activation, j, g[j], num);
    }
    free(p);
    sl_model_destroy(m);
}

static void test_gradients_match_numeric(void **state) {
    (void)state;
    for (int head = 0; head < 3; head++) {
        for (uint32_t nh = 0; nh <= 2; nh++) {
            for (int act = 0; act < (nh ? 3 : 1); act++) {
                sl_model_config_t c = config((sl_head_t)head, 4, nh, (sl_act_t)act);
                grad_check(&c);
            }
        }
    }
}

/* A CSR batch with a repeated column and an empty row, and its dense twin. */
static void test_sparse_matches_dense(void **state) {
    (void)state;
    sl_model_config_t c = config(SL_HEAD_SOFTMAX, 6, 1, SL_ACT_TANH);
    char err[256];
    sl_model_t *m = sl_model_new(&c, err, sizeof(err));
    assert_non_null(m);
    sl_model_init_seeded(m, 3);
    size_t row_ptr[] = {0, 3, 3, 5};
    uint32_t col[] = {1, 4, 1, 0, 4};
    float val[] = {0.5f, -1.0f, 0.25f, 2.0f, 1.5f};
    float dense[3 * 6] = {0};
    for (size_t i = 0; i < 3; i++)
        for (size_t e = row_ptr[i]; e < row_ptr[i + 1]; e++)
            dense[i * 6 + col[e]] += val[e];
    float y[] = {0, 2, 1}, w[] = {1, 2, 0.5f};
    uint8_t lab[] = {1, 1, 1};
    sl_input_t xd = {.n = 3, .dim = 6, .dense = dense};
    sl_input_t xs = {.n = 3, .dim = 6, .row_ptr = row_ptr, .col = col, .val = val};
    size_t np = sl_model_n_params(m);
    float logits_d[9], logits_s[9], dl[9], *grad_d = malloc(np * sizeof(float));
    const float *lg;
    double loss;
    size_t nl;
    assert_int_equal(sl_model_forward(m, &xd, &lg, err, sizeof(err)), SL_OK);
    memcpy(logits_d, lg, sizeof(logits_d));
    assert_int_equal(sl_model_loss(m, lg, 3, y, w, lab, NULL, NULL, dl, &loss, &nl), SL_OK);
    assert_int_equal(sl_model_backward(m, &xd, dl), SL_OK);
    memcpy(grad_d, sl_model_grad(m), np * sizeof(float));
    size_t n_touched;
    assert_null(sl_model_touched(m, &n_touched));
    assert_int_equal(n_touched, 0);

    assert_int_equal(sl_model_forward(m, &xs, &lg, err, sizeof(err)), SL_OK);
    memcpy(logits_s, lg, sizeof(logits_s));
    for (int i = 0; i < 9; i++)
        assert_true(fabsf(logits_s[i] - logits_d[i]) <= 1e-6f * (1 + fabsf(logits_d[i])));
    assert_int_equal(sl_model_loss(m, lg, 3, y, w, lab, NULL, NULL, dl, &loss, &nl), SL_OK);
    assert_int_equal(sl_model_backward(m, &xs, dl), SL_OK);
    const float *g = sl_model_grad(m);
    for (size_t j = 0; j < np; j++)
        assert_true(fabsf(g[j] - grad_d[j]) <= 1e-6f * (1 + fabsf(grad_d[j])));
    const uint32_t *t = sl_model_touched(m, &n_touched);
    assert_int_equal(n_touched, 3);
    uint32_t seen = 0;
    for (size_t i = 0; i < n_touched; i++)
        seen |= 1u << t[i];
    assert_int_equal(seen, (1u << 0) | (1u << 1) | (1u << 4));
    /* Columns no row uses have a zero gradient even after the dense pass. */
    sl_layer_view_t v0;
    assert_int_equal(sl_model_layer(m, 0, &v0), SL_OK);
    for (uint32_t o = 0; o < v0.out; o++) {
        assert_true(g[v0.weight_offset + o * 6 + 2] == 0.0f);
        assert_true(g[v0.weight_offset + o * 6 + 5] == 0.0f);
    }
    sl_model_grad_release(m);
    assert_null(sl_model_touched(m, &n_touched));
    for (size_t j = 0; j < (size_t)v0.out * v0.in; j++)
        assert_true(sl_model_grad(m)[v0.weight_offset + j] == 0.0f);
    free(grad_d);
    sl_model_destroy(m);
}

static void test_forward_rejects_bad_input(void **state) {
    (void)state;
    sl_model_config_t c = config(SL_HEAD_LOGISTIC, 4, 0, SL_ACT_RELU);
    char err[256] = "";
    sl_model_t *m = sl_model_new(&c, err, sizeof(err));
    float x[4] = {0};
    const float *lg;
    sl_input_t wrong_dim = {.n = 1, .dim = 3, .dense = x};
    assert_int_equal(sl_model_forward(m, &wrong_dim, &lg, err, sizeof(err)), SL_ERR_MISMATCH);
    assert_non_null(strstr(err, "dim 4"));
    size_t row_ptr[] = {0, 1};
    uint32_t col[] = {4};
    float val[] = {1};
    sl_input_t bad_col = {.n = 1, .dim = 4, .row_ptr = row_ptr, .col = col, .val = val};
    assert_int_equal(sl_model_forward(m, &bad_col, &lg, err, sizeof(err)), SL_ERR_RANGE);
    size_t back[] = {1, 0};
    sl_input_t bad_rows = {.n = 1, .dim = 4, .row_ptr = back, .col = col, .val = val};
    assert_int_equal(sl_model_forward(m, &bad_rows, &lg, err, sizeof(err)), SL_ERR_RANGE);
    sl_model_destroy(m);
}

static void test_backward_needs_matching_forward(void **state) {
    (void)state;
    sl_model_config_t c = config(SL_HEAD_LINEAR, 2, 0, SL_ACT_RELU);
    sl_model_t *m = sl_model_new(&c, NULL, 0);
    float x[4] = {1, 2, 3, 4}, dl[2] = {1, 1};
    sl_input_t in = {.n = 2, .dim = 2, .dense = x};
    assert_int_equal(sl_model_backward(m, &in, dl), SL_ERR_STATE);
    const float *lg;
    assert_int_equal(sl_model_forward(m, &in, &lg, NULL, 0), SL_OK);
    sl_input_t one = {.n = 1, .dim = 2, .dense = x};
    assert_int_equal(sl_model_backward(m, &one, dl), SL_ERR_STATE);
    assert_int_equal(sl_model_backward(m, &in, dl), SL_OK);
    sl_model_destroy(m);
}

static void test_config_checks(void **state) {
    (void)state;
    char err[256];
    sl_model_config_t c = config(SL_HEAD_SOFTMAX, 4, 0, SL_ACT_RELU);
    c.classes = 1;
    assert_null(sl_model_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "--classes"));
    c = config(SL_HEAD_LINEAR, 0, 0, SL_ACT_RELU);
    assert_null(sl_model_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "--dim"));
    c = config(SL_HEAD_LINEAR, 4, 1, SL_ACT_RELU);
    c.hidden[0] = 0;
    assert_int_equal(sl_model_config_check(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--hidden"));
    c.n_hidden = SL_MAX_HIDDEN + 1;
    assert_int_equal(sl_model_config_check(&c, err, sizeof(err)), SL_ERR_INVAL);
    c = config(SL_HEAD_LINEAR, 4, 1, (sl_act_t)9);
    assert_int_equal(sl_model_config_check(&c, err, sizeof(err)), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--activation"));
    c = config(SL_HEAD_LINEAR, SL_MODEL_MAX_DIM, 2, SL_ACT_RELU);
    c.hidden[0] = c.hidden[1] = SL_MODEL_MAX_WIDTH;
    assert_int_equal(sl_model_config_check(&c, err, sizeof(err)), SL_ERR_INVAL);
    sl_model_destroy(NULL);
}

static void test_layout_is_torch_linear(void **state) {
    (void)state;
    sl_model_config_t c = config(SL_HEAD_SOFTMAX, 4, 2, SL_ACT_RELU); /* 4-5-4-3 */
    sl_model_t *m = sl_model_new(&c, NULL, 0);
    assert_int_equal(sl_model_n_layers(m), 3);
    assert_int_equal(sl_model_out_dim(m), 3);
    assert_int_equal(sl_model_n_params(m), 5 * 4 + 5 + 4 * 5 + 4 + 3 * 4 + 3);
    sl_layer_view_t v;
    assert_int_equal(sl_model_layer(m, 1, &v), SL_OK);
    assert_int_equal(v.in, 5);
    assert_int_equal(v.out, 4);
    assert_int_equal(v.weight_offset, 25);
    assert_int_equal(v.bias_offset, 45);
    assert_int_equal(sl_model_layer(m, 3, &v), SL_ERR_RANGE);
    /* Row-major [out][in]: W1[2][3] feeds unit 2 from input 3. */
    float *p = sl_model_params(m);
    memset(p, 0, sl_model_n_params(m) * sizeof(float));
    for (int j = 0; j < 5; j++)
        p[5 * 4 + j] = 1.0f;  /* b0 = 1: every hidden unit outputs 1 */
    p[25 + 2 * 5 + 3] = 2.0f; /* so hidden-2 unit 2 outputs relu(2) = 2 */
    p[49 + 1 * 4 + 2] = 3.0f; /* W2[1][2]: logit 1 = 3 * 2 */
    float x[4] = {0}, pred[4];
    sl_input_t in = {.n = 1, .dim = 4, .dense = x};
    const float *lg;
    assert_int_equal(sl_model_forward(m, &in, &lg, NULL, 0), SL_OK);
    assert_true(lg[0] == 0.0f && lg[1] == 6.0f && lg[2] == 0.0f);
    sl_model_destroy(m);
    /* One layer, known numbers: z = W x + b. */
    c = config(SL_HEAD_SOFTMAX, 2, 0, SL_ACT_RELU);
    c.classes = 2;
    m = sl_model_new(&c, NULL, 0);
    p = sl_model_params(m);
    float wts[] = {1, 2, 3, 4, 10, 20};
    memcpy(p, wts, sizeof(wts));
    float x2[] = {1, -1, 2, 0.5f};
    sl_input_t in2 = {.n = 2, .dim = 2, .dense = x2};
    assert_int_equal(sl_model_forward(m, &in2, &lg, NULL, 0), SL_OK);
    assert_true(lg[0] == 10 - 1 && lg[1] == 20 - 1 && lg[2] == 10 + 3 && lg[3] == 20 + 8);
    sl_model_outputs(m, lg, 2, pred);
    assert_true(fabsf(pred[0] - 1 / (1 + expf(10))) < 1e-6f);
    assert_true(fabsf(pred[0] + pred[1] - 1) < 1e-6f);
    sl_model_destroy(m);
}

/* The outputs sl_model_loss writes beside the loss are sl_model_outputs'
 * bit for bit, labelled rows and unlabelled ones, every head; its loss and
 * gradient are the same with or without them. */
static void test_loss_outputs_equal_outputs(void **state) {
    (void)state;
    enum { N = 6 };
    float logits[N * 3] = {0.5f,  -2.0f, 3.0f,  -40.0f, 0.0f,  1e-3f, 7.5f, -0.25f, 2.0f,
                           -1.0f, 1.0f,  -3.5f, 0.75f,  12.0f, -6.0f, 4.0f, 4.0f,   -4.0f};
    float w[N] = {1, 2, 0.5f, 1, 1, 3};
    uint8_t lab[N] = {1, 0, 1, 1, 0, 1};
    for (int head = 0; head < 3; head++) {
        float y[N] = {1, 0, head == SL_HEAD_SOFTMAX ? 2 : 0, 1, 0, 1};
        sl_model_config_t c = config((sl_head_t)head, 2, 0, SL_ACT_RELU);
        sl_model_t *m = sl_model_new(&c, NULL, 0);
        assert_non_null(m);
        uint32_t k = sl_model_out_dim(m);
        float want[N * 3], got[N * 3], dl_a[N * 3], dl_b[N * 3];
        double la, lb, sa[N], sb[N];
        size_t na, nb;
        sl_model_outputs(m, logits, N, want);
        assert_int_equal(sl_model_loss(m, logits, N, y, w, lab, got, sa, dl_a, &la, &na), SL_OK);
        assert_int_equal(sl_model_loss(m, logits, N, y, w, lab, NULL, sb, dl_b, &lb, &nb), SL_OK);
        assert_memory_equal(got, want, N * k * sizeof(float));
        assert_memory_equal(dl_a, dl_b, N * k * sizeof(float));
        assert_memory_equal(sa, sb, sizeof(sa));
        assert_true(la == lb && na == nb && na == 4);
        sl_model_destroy(m);
    }
}

static void test_init_is_seeded_and_bounded(void **state) {
    (void)state;
    sl_model_config_t c = config(SL_HEAD_LOGISTIC, 16, 1, SL_ACT_RELU); /* 16-5-1 */
    sl_model_t *a = sl_model_new(&c, NULL, 0), *b = sl_model_new(&c, NULL, 0);
    sl_model_t *d = sl_model_new(&c, NULL, 0);
    sl_model_init_seeded(a, 42);
    sl_model_init_seeded(b, 42);
    sl_model_init_seeded(d, 43);
    size_t np = sl_model_n_params(a);
    assert_memory_equal(sl_model_params(a), sl_model_params(b), np * sizeof(float));
    assert_memory_not_equal(sl_model_params(a), sl_model_params(d), np * sizeof(float));
    sl_layer_view_t v;
    for (uint32_t l = 0; l < 2; l++) {
        sl_model_layer(a, l, &v);
        float bound = 1.0f / sqrtf((float)v.in), lo = 1, hi = -1;
        for (size_t j = v.weight_offset; j < v.bias_offset + v.out; j++) {
            float x = sl_model_params(a)[j];
            assert_true(x >= -bound && x <= bound);
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        if (l == 0) /* 85 draws spread over the interval */
            assert_true(lo < -bound / 2 && hi > bound / 2);
    }
    sl_model_destroy(a);
    sl_model_destroy(b);
    sl_model_destroy(d);
}

static void test_linalg_gemm(void **state) {
    (void)state;
    /* a = [[1,2,3],[4,5,6]], b = [[1,0],[0,1],[1,1]] */
    float a[] = {1, 2, 3, 4, 5, 6}, b[] = {1, 0, 0, 1, 1, 1}, c[4] = {1, 1, 1, 1};
    sl_mat_t A = {a, 2, 3}, B = {b, 3, 2};
    assert_int_equal(sl_linalg_gemm(0, A, 0, B, 1, 1, c, 2, 2), SL_OK);
    float want[] = {1 + 4, 1 + 5, 1 + 10, 1 + 11};
    assert_memory_equal(c, want, sizeof(want));
    /* a^T a (3x3), diagonal 17, 29, 45 */
    float ata[9];
    assert_int_equal(sl_linalg_gemm(1, A, 0, A, 1, 0, ata, 3, 3), SL_OK);
    assert_true(ata[0] == 17 && ata[4] == 29 && ata[8] == 45 && ata[1] == 22);
    /* a a^T (2x2) */
    float aat[4];
    assert_int_equal(sl_linalg_gemm(0, A, 1, A, 1, 0, aat, 2, 2), SL_OK);
    assert_true(aat[0] == 14 && aat[1] == 32 && aat[3] == 77);
    assert_int_equal(sl_linalg_gemm(0, A, 0, A, 1, 0, c, 2, 3), SL_ERR_MISMATCH);
    assert_int_equal(sl_linalg_gemm(0, A, 0, B, 1, 0, c, 2, 3), SL_ERR_MISMATCH);
}

/* Products with a one-row or one-column result (matrix-vector, taken by
 * sgemv) equal the plain sums, for every transpose combination, with beta
 * 0 (c's old contents, NaN included, ignored) and beta 1. */
static void test_linalg_vector_shapes(void **state) {
    (void)state;
    float a[12], b[12];
    for (int i = 0; i < 12; i++) {
        a[i] = (float)(i % 5) - 1.5f;
        b[i] = (float)(i % 3) + 0.25f * (float)i;
    }
    /* (m, n, k): a column, a row, a single value */
    const size_t shapes[3][3] = {{4, 1, 3}, {1, 4, 3}, {1, 1, 6}};
    for (int s = 0; s < 3; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        for (int ta = 0; ta < 2; ta++) {
            for (int tb = 0; tb < 2; tb++) {
                for (int beta = 0; beta < 2; beta++) {
                    sl_mat_t A = {a, ta ? k : m, ta ? m : k}, B = {b, tb ? n : k, tb ? k : n};
                    float c[4], want[4];
                    for (size_t i = 0; i < m; i++) {
                        for (size_t j = 0; j < n; j++) {
                            double sum = 0;
                            for (size_t p = 0; p < k; p++)
                                sum += (double)(ta ? a[p * m + i] : a[i * k + p]) *
                                       (tb ? b[j * k + p] : b[p * n + j]);
                            c[i * n + j] = beta ? 1.0f : NAN;
                            want[i * n + j] = (float)(2.0 * sum + (beta ? 1.0 : 0.0));
                        }
                    }
                    assert_int_equal(sl_linalg_gemm(ta, A, tb, B, 2.0f, (float)beta, c, m, n),
                                     SL_OK);
                    for (size_t i = 0; i < m * n; i++)
                        assert_float_equal(c[i], want[i], 1e-5);
                }
            }
        }
    }
}

int main(void) {
    sl_linalg_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients_match_numeric),
        cmocka_unit_test(test_sparse_matches_dense),
        cmocka_unit_test(test_forward_rejects_bad_input),
        cmocka_unit_test(test_backward_needs_matching_forward),
        cmocka_unit_test(test_config_checks),
        cmocka_unit_test(test_layout_is_torch_linear),
        cmocka_unit_test(test_init_is_seeded_and_bounded),
        cmocka_unit_test(test_loss_outputs_equal_outputs),
        cmocka_unit_test(test_linalg_gemm),
        cmocka_unit_test(test_linalg_vector_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
