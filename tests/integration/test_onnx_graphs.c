/* test_onnx_graphs.c - every head x {0, 1, 3} hidden layers x every
 * activation x feature scaling on and off, written by sl_onnx_export and
 * judged by ONNX's own checker and shape inference and by an independent
 * numpy evaluation of the graph (tests/integration/onnx_check.py), which
 * must equal the model's own forward pass on the same rows to 1e-5.
 *
 * Scaling is the transform the worker applies before layer 0,
 * x' = (x - shift) * mult in float32; the expected outputs here apply it in
 * C and then run the same forward pass and head as `replay`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/rng.h"
#include "model/model.h"
#include "model/onnx.h"

#define ROWS 41
#define DIM 7
#define CLASSES 4

static void write_f32(const char *path, const float *v, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        assert_int_equal(fwrite(le, 1, 4, f), 4);
    }
    assert_int_equal(fclose(f), 0);
}

static float uniform(sl_rng_t *rng, double lo, double hi) {
    return (float)(lo + (hi - lo) * sl_rng_uniform(rng));
}

/* Writes DIR/NAME.onnx, NAME.x and NAME.expect for one architecture. */
static void write_case(const char *dir, const sl_model_config_t *cfg, int scaled, uint64_t seed) {
    char err[512], name[128], path[512];
    snprintf(name, sizeof name, "%s_h%u_%s_%s", sl_model_head_name(cfg->head), cfg->n_hidden,
             cfg->n_hidden ? sl_model_act_name(cfg->activation) : "none",
             scaled ? "scaled" : "plain");
    sl_model_t *m = sl_model_new(cfg, err, sizeof err);
    assert_non_null(m);
    sl_model_init_seeded(m, seed);

    sl_rng_t rng;
    sl_rng_seed(&rng, seed * 7919 + 1);
    float shift[DIM], mult[DIM], x[ROWS * DIM], xs[ROWS * DIM];
    for (int j = 0; j < DIM; j++) {
        shift[j] = uniform(&rng, -1, 1);
        mult[j] = uniform(&rng, 0.25, 2);
    }
    for (int i = 0; i < ROWS * DIM; i++) {
        /* a quarter of the entries absent, as in sparse samples */
        x[i] = sl_rng_uniform(&rng) < 0.25 ? 0.0f : uniform(&rng, -3, 3);
        float centered = x[i] - shift[i % DIM];
        xs[i] = scaled ? centered * mult[i % DIM] : x[i];
    }

    sl_input_t in = {.n = ROWS, .dim = DIM, .dense = xs};
    const float *logits;
    assert_int_equal(sl_model_forward(m, &in, &logits, err, sizeof err), SL_OK);
    uint32_t k = sl_model_out_dim(m);
    float *expect = malloc((size_t)ROWS * k * sizeof *expect);
    assert_non_null(expect);
    sl_model_outputs(m, logits, ROWS, expect);

    sl_onnx_scaling_t sc = {.shift = shift, .mult = mult};
    sl_onnx_meta_t meta = {.model_name = "graphs",
                           .version = seed,
                           .parent = seed - 1,
                           .created_at = "2024-05-01T12:00:00.000Z",
                           .samples = 10 * seed,
                           .step = seed};
    sl_buf_t buf = {0};
    sl_err_t rc = sl_onnx_export(m, scaled ? &sc : NULL, &meta, &buf, err, sizeof err);
    if (rc != SL_OK)
        fail_msg("%s: %s", name, err);
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf.data, 1, buf.len, f), buf.len);
    assert_int_equal(fclose(f), 0);
    snprintf(path, sizeof path, "%s/%s.x", dir, name);
    write_f32(path, x, ROWS * DIM);
    snprintf(path, sizeof path, "%s/%s.expect", dir, name);
    write_f32(path, expect, (size_t)ROWS * k);
    free(expect);
    sl_buf_free(&buf);
    sl_model_destroy(m);
}

static void test_every_architecture(void **state) {
    (void)state;
    char dir[] = "/tmp/sl_onnx_graphs.XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const uint32_t hidden_counts[] = {0, 1, 3};
    static const uint32_t widths[] = {6, 5, 3};
    uint64_t seed = 1;
    int cases = 0;
    for (int head = SL_HEAD_LINEAR; head <= SL_HEAD_SOFTMAX; head++) {
        for (int h = 0; h < 3; h++) {
            for (int act = SL_ACT_RELU; act <= SL_ACT_SIGMOID; act++) {
                if (hidden_counts[h] == 0 && act != SL_ACT_RELU)
                    continue; /* no activation without hidden layers */
                sl_model_config_t cfg = {.head = (sl_head_t)head,
                                         .dim = DIM,
                                         .classes = CLASSES,
                                         .n_hidden = hidden_counts[h],
                                         .activation = (sl_act_t)act};
                for (uint32_t i = 0; i < cfg.n_hidden; i++)
                    cfg.hidden[i] = widths[i];
                for (int scaled = 0; scaled <= 1; scaled++, cases++)
                    write_case(dir, &cfg, scaled, seed++);
            }
        }
    }
    assert_int_equal(cases, 42);

    const char *src = getenv("SL_SOURCE_DIR");
    assert_non_null(src);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/integration/onnx_check.py graphs %s", src,
             dir);
    int status = system(cmd);
    if (status != 0)
        fail_msg("onnx_check.py failed (status %d); the files are in %s", status, dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_architecture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
