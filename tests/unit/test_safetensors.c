/* test_safetensors.c - safetensors export/import/infer and whole-file I/O. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "model/learner.h"
#include "model/model.h"
#include "model/safetensors.h"

/* A python-written file (scripts/gen_torch_fixtures.py) whose values the
 * generator also wrote as JSON (init.json): logistic, two tanh hidden layers. */
#define PY_CASE "torch/logistic_adagrad_2hidden_tanh_b4"

/* The small model every hand-made file below targets: dim 3, hidden [5],
 * softmax over 2 classes. Tensors and their byte ranges in the data section:
 * 0.weight [5,3] 0..60, 0.bias [5] 60..80, 2.weight [2,5] 80..120,
 * 2.bias [2] 120..128. */
#define SMALL_DATA 128

static sl_model_t *small_model(void) {
    sl_model_config_t cfg = {.head = SL_HEAD_SOFTMAX,
                             .dim = 3,
                             .classes = 2,
                             .n_hidden = 1,
                             .hidden = {5},
                             .activation = SL_ACT_TANH};
    char err[256];
    sl_model_t *m = sl_model_new(&cfg, err, sizeof err);
    assert_non_null(m);
    sl_model_init_seeded(m, 7);
    return m;
}

/* A copy of the model's parameters, to prove a failed import left them be. */
static float *snapshot(sl_model_t *m) {
    size_t n = sl_model_n_params(m);
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    memcpy(p, sl_model_params(m), n * sizeof *p);
    return p;
}

static void assert_untouched(sl_model_t *m, const float *before) {
    assert_memory_equal(sl_model_params(m), before, sl_model_n_params(m) * sizeof(float));
}

/* 8-byte LE length + header + data_len bytes of data (float32 0.25 + i),
 * in an allocation of exactly that size so ASan sees any over-read. */
static uint8_t *make_file(const char *header, size_t data_len, size_t *len) {
    size_t hlen = strlen(header);
    *len = 8 + hlen + data_len;
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    for (size_t i = 0; i + 4 <= data_len; i += 4) {
        float v = 0.25f + (float)(i / 4);
        memcpy(buf + 8 + hlen + i, &v, 4);
    }
    if (data_len % 4)
        memset(buf + 8 + hlen + data_len - data_len % 4, 0, data_len % 4);
    return buf;
}

#define T_W0 "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[5,3],\"data_offsets\":[0,60]}"
#define T_B0 "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[60,80]}"
#define T_W2 "\"2.weight\":{\"dtype\":\"F32\",\"shape\":[2,5],\"data_offsets\":[80,120]}"
#define T_B2 "\"2.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[120,128]}"
#define VALID "{" T_W0 "," T_B0 "," T_W2 "," T_B2 "}"

/* Imports a hand-made file into the small model; checks the code, that the
 * message contains `want` and that the model did not change. */
static void expect_failure(const char *header, size_t data_len, sl_err_t code, const char *want) {
    sl_model_t *m = small_model();
    float *before = snapshot(m);
    size_t len;
    uint8_t *buf = make_file(header, data_len, &len);
    char err[512] = "";
    assert_int_equal(sl_safetensors_import(m, buf, len, err, sizeof err), code);
    if (!strstr(err, want))
        fail_msg("message \"%s\" does not contain \"%s\"", err, want);
    assert_untouched(m, before);
    free(buf);
    free(before);
    sl_model_destroy(m);
}

static uint8_t *read_fixture(const char *rel, size_t *len) {
    const char *dir = getenv("SL_FIXTURES");
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", rel);
    uint8_t *buf;
    if (sl_fileio_read(path, 1 << 20, &buf, len, err, sizeof err) != SL_OK)
        fail_msg("%s", err);
    return buf;
}

static void test_handmade_valid_file_loads(void **state) {
    (void)state;
    sl_model_t *m = small_model();
    size_t len;
    uint8_t *buf = make_file(VALID, SMALL_DATA, &len);
    char err[256] = "";
    assert_int_equal(sl_safetensors_import(m, buf, len, err, sizeof err), SL_OK);
    /* make_file writes 0.25 + element index across the data section. */
    sl_layer_view_t v;
    assert_int_equal(sl_model_layer(m, 1, &v), SL_OK);
    const float *p = sl_model_params(m);
    assert_true(p[v.weight_offset] == 20.25f);   /* 2.weight starts at byte 80 */
    assert_true(p[v.bias_offset + 1] == 31.25f); /* last float of the file */
    assert_int_equal(sl_model_layer(m, 0, &v), SL_OK);
    assert_true(p[v.weight_offset + 14] == 14.25f); /* 0.weight[4][2] */
    free(buf);
    sl_model_destroy(m);
}

static void test_roundtrip_is_bit_exact(void **state) {
    (void)state;
    sl_model_config_t cfg = {.head = SL_HEAD_SOFTMAX,
                             .dim = 7,
                             .classes = 3,
                             .n_hidden = 2,
                             .hidden = {5, 4},
                             .activation = SL_ACT_RELU};
    char err[256];
    sl_model_t *a = sl_model_new(&cfg, err, sizeof err), *b = sl_model_new(&cfg, err, sizeof err);
    assert_non_null(a);
    assert_non_null(b);
    sl_model_init_seeded(a, 42);
    /* Values a text format would lose: denormals, -0, extremes. */
    float *pa = sl_model_params(a);
    pa[0] = 1e-45f;
    pa[1] = -0.0f;
    pa[2] = 3.4028235e38f;
    pa[3] = 0.1f;
    sl_buf_t out = {0};
    assert_int_equal(sl_safetensors_export(a, &out), SL_OK);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | out.data[i];
    assert_int_equal((8 + hlen) % 8, 0);
    assert_int_equal(out.len, 8 + hlen + 4 * sl_model_n_params(a));
    assert_int_equal(sl_safetensors_import(b, out.data, out.len, err, sizeof err), SL_OK);
    assert_memory_equal(sl_model_params(a), sl_model_params(b),
                        sl_model_n_params(a) * sizeof(float));
    sl_buf_free(&out);
    sl_model_destroy(a);
    sl_model_destroy(b);
}

static void test_export_appends_and_keeps_prefix(void **state) {
    (void)state;
    sl_model_t *m = small_model();
    sl_buf_t out = {0};
    assert_int_equal(sl_buf_append(&out, "abc", 3), SL_OK);
    assert_int_equal(sl_safetensors_export(m, &out), SL_OK);
    assert_memory_equal(out.data, "abc", 3);
    char err[256];
    assert_int_equal(sl_safetensors_import(m, out.data + 3, out.len - 3, err, sizeof err), SL_OK);
    sl_buf_free(&out);
    sl_model_destroy(m);
}

/* Reads init.json of the python case into a model-shaped float array. */
static void json_tensor(const cJSON *root, const char *name, const float *got, size_t n) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, name);
    assert_non_null(t);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    assert_int_equal((size_t)cJSON_GetArraySize(data), n);
    size_t i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, data) {
        float want = (float)v->valuedouble;
        if (got[i] != want)
            fail_msg("%s[%zu]: loaded %.9g, python wrote %.9g", name, i, got[i], want);
        i++;
    }
}

static void test_loads_python_written_file(void **state) {
    (void)state;
    size_t st_len, js_len;
    uint8_t *st = read_fixture(PY_CASE "/init.safetensors", &st_len);
    uint8_t *js = read_fixture(PY_CASE "/init.json", &js_len);
    cJSON *root = cJSON_ParseWithLength((const char *)js, js_len);
    assert_non_null(root);
    sl_model_config_t cfg = {.head = SL_HEAD_LOGISTIC,
                             .dim = 8,
                             .n_hidden = 2,
                             .hidden = {6, 4},
                             .activation = SL_ACT_TANH};
    char err[256] = "";
    sl_model_t *m = sl_model_new(&cfg, err, sizeof err);
    assert_non_null(m);
    assert_int_equal(sl_safetensors_import(m, st, st_len, err, sizeof err), SL_OK);
    const char *names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"};
    for (uint32_t i = 0; i < 3; i++) {
        sl_layer_view_t v;
        assert_int_equal(sl_model_layer(m, i, &v), SL_OK);
        const float *p = sl_model_params(m);
        json_tensor(root, names[2 * i], p + v.weight_offset, (size_t)v.out * v.in);
        json_tensor(root, names[2 * i + 1], p + v.bias_offset, v.out);
    }
    /* Our export lays the data out as python did (layer order, packed). */
    sl_buf_t out = {0};
    assert_int_equal(sl_safetensors_export(m, &out), SL_OK);
    size_t n = 4 * sl_model_n_params(m);
    assert_memory_equal(out.data + out.len - n, st + st_len - n, n);
    sl_buf_free(&out);
    cJSON_Delete(root);
    sl_model_destroy(m);
    free(st);
    free(js);
}

static void test_weight_shape_mismatch_names_both_shapes(void **state) {
    (void)state;
    expect_failure("{" T_W0 "," T_B0 ","
                   "\"2.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[80,112]},"
                   "\"2.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[112,120]}}",
                   120, SL_ERR_MISMATCH,
                   "tensor \"2.weight\": file has shape [2, 4], model expects [2, 5]");
}

static void test_bias_rank_mismatch_names_both_shapes(void **state) {
    (void)state;
    expect_failure("{" T_W0 ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[5,1],\"data_offsets\":[60,"
                   "80]}," T_W2 "," T_B2 "}",
                   SMALL_DATA, SL_ERR_MISMATCH,
                   "tensor \"0.bias\": file has shape [5, 1], model expects [5]");
}

static void test_missing_tensor_is_named(void **state) {
    (void)state;
    expect_failure("{" T_W0 "," T_B0 "," T_W2 "}", SMALL_DATA, SL_ERR_MISMATCH,
                   "tensor \"2.bias\" (shape [2]) is missing");
}

static void test_extra_tensor_is_named(void **state) {
    (void)state;
    /* an extra layer: both layer counts, both name lists, the tensor and the flag to check */
    expect_failure("{" T_W0 "," T_B0 "," T_W2 "," T_B2
                   ",\"4.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[128,132]}}",
                   SMALL_DATA + 4, SL_ERR_MISMATCH,
                   "the file has 3 dense layers (0.weight .. 4.bias), the model 2 (0.weight, "
                   "0.bias, 2.weight, 2.bias): tensor \"4.weight\" has no place; check --hidden");
    /* a name that is no layer's */
    expect_failure("{" T_W0 "," T_B0 "," T_W2 "," T_B2
                   ",\"head.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[128,132]}}",
                   SMALL_DATA + 4, SL_ERR_MISMATCH,
                   "tensor \"head.weight\" in the file has no place in the model (2 dense layers: "
                   "0.weight, 0.bias, 2.weight, 2.bias)");
}

static void test_wrong_dtype_is_named(void **state) {
    (void)state;
    expect_failure("{" T_W0 ",\"0.bias\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[60,70]"
                   "}," T_W2 "," T_B2 "}",
                   SMALL_DATA, SL_ERR_MISMATCH, "tensor \"0.bias\": dtype F16");
}

static void test_truncated_at_every_length(void **state) {
    (void)state;
    size_t len;
    uint8_t *full = make_file(VALID, SMALL_DATA, &len);
    sl_model_t *m = small_model();
    float *before = snapshot(m);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *buf = malloc(cut ? cut : 1);
        assert_non_null(buf);
        memcpy(buf, full, cut);
        char err[256] = "";
        sl_err_t rc = sl_safetensors_import(m, buf, cut, err, sizeof err);
        if (rc != SL_ERR_DECODE)
            fail_msg("cut at %zu of %zu: got %d (%s)", cut, len, rc, err);
        assert_true(err[0] != 0);
        assert_untouched(m, before);
        free(buf);
    }
    free(before);
    free(full);
    sl_model_destroy(m);
}

static void test_huge_header_length(void **state) {
    (void)state;
    const uint64_t lens[] = {UINT64_MAX, (uint64_t)1 << 63, (uint64_t)1 << 32, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t len;
        uint8_t *buf = make_file(VALID, SMALL_DATA, &len);
        for (int b = 0; b < 8; b++)
            buf[b] = (uint8_t)(lens[i] >> (8 * b));
        sl_model_t *m = small_model();
        float *before = snapshot(m);
        char err[256] = "";
        assert_int_equal(sl_safetensors_import(m, buf, len, err, sizeof err), SL_ERR_DECODE);
        assert_non_null(strstr(err, "not a safetensors file"));
        assert_non_null(strstr(err, "beyond the end of the file"));
        assert_untouched(m, before);
        free(before);
        free(buf);
        sl_model_destroy(m);
    }
}

static void test_bad_json(void **state) {
    (void)state;
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",", SMALL_DATA, SL_ERR_DECODE,
                   "not valid JSON");
    expect_failure("[1,2,3]", SMALL_DATA, SL_ERR_DECODE,
                   "not a safetensors file: the header is not a JSON object");
    expect_failure(VALID "x", SMALL_DATA, SL_ERR_DECODE, "bytes after its JSON object");
    expect_failure("{\"0.weight\":[]}", SMALL_DATA, SL_ERR_DECODE, "not an object");
    expect_failure("{\"__metadata__\":{\"format\":1}}", SMALL_DATA, SL_ERR_DECODE,
                   "\"__metadata__\" value of \"format\" is not a string");
}

static void test_header_padding_is_accepted(void **state) {
    (void)state;
    sl_model_t *m = small_model();
    size_t len;
    uint8_t *buf = make_file(VALID "     ", SMALL_DATA, &len);
    char err[256] = "";
    assert_int_equal(sl_safetensors_import(m, buf, len, err, sizeof err), SL_OK);
    free(buf);
    sl_model_destroy(m);
}

static void test_bad_fields(void **state) {
    (void)state;
    expect_failure("{\"0.weight\":{\"shape\":[5,3],\"data_offsets\":[0,60]}}", SMALL_DATA,
                   SL_ERR_DECODE, "tensor \"0.weight\": \"dtype\" missing");
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[5,-3],\"data_offsets\":[0,60]}}",
                   SMALL_DATA, SL_ERR_DECODE, "shape entry 1 is not a non-negative integer");
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[5,3],\"data_offsets\":[0.5,60]}}",
                   SMALL_DATA, SL_ERR_DECODE, "\"data_offsets\" must be two");
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[5,3],\"data_offsets\":[0]}}",
                   SMALL_DATA, SL_ERR_DECODE, "\"data_offsets\" must be two");
}

static void test_offsets_out_of_range(void **state) {
    (void)state;
    expect_failure("{" T_W0 "," T_B0 "," T_W2 "," T_B2 "}", SMALL_DATA - 4, SL_ERR_DECODE,
                   "tensor \"2.bias\": data_offsets [120, 128] out of range of the 124-byte");
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[60,0]}}",
                   SMALL_DATA, SL_ERR_DECODE, "data_offsets [60, 0] out of range");
}

static void test_overlapping_offsets(void **state) {
    (void)state;
    expect_failure("{" T_W0 ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[5],\"data_offsets\":[40,60]"
                   "}," T_W2 "," T_B2 "}",
                   SMALL_DATA, SL_ERR_DECODE, "overlap");
}

static void test_offsets_not_matching_shape(void **state) {
    (void)state;
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[5,3],\"data_offsets\":[0,64]}," T_B0
                   "," T_W2 "," T_B2 "}",
                   SMALL_DATA, SL_ERR_DECODE,
                   "tensor \"0.weight\": shape [5, 3] of F32 does not match data_offsets [0, 64]");
}

static void test_hostile_shape_does_not_allocate(void **state) {
    (void)state;
    /* 2^52 * 2^52 elements would overflow any size computation. */
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[4503599627370496,"
                   "4503599627370496],\"data_offsets\":[0,60]}}",
                   SMALL_DATA, SL_ERR_DECODE, "does not match data_offsets");
    expect_failure("{\"0.weight\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,60]}}",
                   SMALL_DATA, SL_ERR_DECODE, "shape entry 0");
}

static void test_duplicate_name(void **state) {
    (void)state;
    expect_failure("{" T_W0 "," T_B0 "," T_W2 "," T_B2
                   ",\"0.bias\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[128,128]}}",
                   SMALL_DATA, SL_ERR_DECODE, "tensor \"0.bias\" appears twice");
}

static void test_non_finite_values(void **state) {
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    const char *what[] = {"element 3 is NaN", "element 3 is infinite", "element 3 is infinite"};
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *buf = make_file(VALID, SMALL_DATA, &len);
        /* element 3 of 2.weight: data bytes 80 + 12. */
        memcpy(buf + len - SMALL_DATA + 92, &bad[i], 4);
        sl_model_t *m = small_model();
        float *before = snapshot(m);
        char err[256] = "";
        assert_int_equal(sl_safetensors_import(m, buf, len, err, sizeof err), SL_ERR_DECODE);
        assert_non_null(strstr(err, "tensor \"2.weight\""));
        assert_non_null(strstr(err, what[i]));
        assert_untouched(m, before);
        free(before);
        free(buf);
        sl_model_destroy(m);
    }
}

static void test_infer_config_from_own_export(void **state) {
    (void)state;
    sl_model_config_t cfg = {.head = SL_HEAD_LINEAR,
                             .dim = 9,
                             .n_hidden = 2,
                             .hidden = {6, 3},
                             .activation = SL_ACT_SIGMOID};
    char err[256];
    sl_model_t *m = sl_model_new(&cfg, err, sizeof err);
    assert_non_null(m);
    sl_buf_t out = {0};
    assert_int_equal(sl_safetensors_export(m, &out), SL_OK);
    sl_model_config_t got = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_RELU};
    assert_int_equal(sl_safetensors_infer_config(out.data, out.len, &got, err, sizeof err), SL_OK);
    assert_int_equal(got.head, SL_HEAD_LINEAR);
    assert_int_equal(got.activation, SL_ACT_SIGMOID);
    assert_int_equal(got.dim, 9);
    assert_int_equal(got.n_hidden, 2);
    assert_int_equal(got.hidden[0], 6);
    assert_int_equal(got.hidden[1], 3);
    sl_buf_free(&out);
    sl_model_destroy(m);
}

static void test_infer_config_from_python_file(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = read_fixture("torch/softmax_adam_relu_clip_b4/init.safetensors", &len);
    sl_model_config_t got = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_TANH};
    char err[256];
    assert_int_equal(sl_safetensors_infer_config(buf, len, &got, err, sizeof err), SL_OK);
    assert_int_equal(got.head, SL_HEAD_SOFTMAX);
    assert_int_equal(got.classes, 4);
    assert_int_equal(got.dim, 8);
    assert_int_equal(got.n_hidden, 1);
    assert_int_equal(got.hidden[0], 8);
    assert_int_equal(got.activation, SL_ACT_TANH); /* no metadata: caller's value stays */
    free(buf);
}

static void test_infer_config_rejects_broken_chain(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = make_file("{" T_W0 "," T_B0
                             ",\"2.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":"
                             "[80,112]},\"2.bias\":{\"dtype\":\"F32\",\"shape\":[2],"
                             "\"data_offsets\":[112,120]}}",
                             120, &len);
    sl_model_config_t got = {.head = SL_HEAD_LOGISTIC, .dim = 77};
    char err[256] = "";
    assert_int_equal(sl_safetensors_infer_config(buf, len, &got, err, sizeof err), SL_ERR_MISMATCH);
    assert_non_null(strstr(err, "\"2.weight\" does not chain"));
    assert_int_equal(got.dim, 77);
    free(buf);
}

static void test_file_roundtrip_through_disk(void **state) {
    (void)state;
    char dir[] = "/tmp/sl_test_safetensors_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    sl_model_t *a = small_model(), *b = small_model();
    sl_model_init_seeded(b, 99);
    sl_buf_t out = {0};
    assert_int_equal(sl_safetensors_export(a, &out), SL_OK);
    assert_int_equal(sl_fileio_write_atomic(path, out.data, out.len, err, sizeof err), SL_OK);
    /* Overwriting replaces the whole file. */
    assert_int_equal(sl_fileio_write_atomic(path, out.data, out.len, err, sizeof err), SL_OK);
    uint8_t *data;
    size_t len;
    assert_int_equal(sl_fileio_read(path, 1 << 20, &data, &len, err, sizeof err), SL_OK);
    assert_int_equal(len, out.len);
    assert_int_equal(sl_safetensors_import(b, data, len, err, sizeof err), SL_OK);
    assert_memory_equal(sl_model_params(a), sl_model_params(b),
                        sl_model_n_params(a) * sizeof(float));
    free(data);
    /* The size cap refuses before reading. */
    assert_int_equal(sl_fileio_read(path, len - 1, &data, &len, err, sizeof err), SL_ERR_TOO_BIG);
    assert_null(data);
    assert_non_null(strstr(err, path));
    unlink(path);
    rmdir(dir);
    sl_buf_free(&out);
    sl_model_destroy(a);
    sl_model_destroy(b);
}

static void test_fileio_errors_name_path(void **state) {
    (void)state;
    char err[512] = "";
    uint8_t dummy = 0;
    uint8_t *data = &dummy;
    size_t len = 5;
    assert_int_equal(
        sl_fileio_read("/nonexistent/dir/w.safetensors", 100, &data, &len, err, sizeof err),
        SL_ERR_IO);
    assert_null(data);
    assert_int_equal(len, 0);
    assert_non_null(strstr(err, "/nonexistent/dir/w.safetensors"));
    assert_non_null(strstr(err, "No such file or directory"));
    err[0] = 0;
    assert_int_equal(
        sl_fileio_write_atomic("/nonexistent/dir/w.safetensors", "ab", 2, err, sizeof err),
        SL_ERR_IO);
    assert_non_null(strstr(err, "/nonexistent/dir/w.safetensors"));
}

/* /proc files report size 0 but have content: read until EOF, same cap. */
static void test_fileio_reads_files_without_size(void **state) {
    (void)state;
    char err[512] = "";
    uint8_t *data;
    size_t len;
    assert_int_equal(sl_fileio_read("/proc/self/status", 1 << 20, &data, &len, err, sizeof err),
                     SL_OK);
    assert_true(len > 100);
    assert_non_null(strstr((const char *)data, "Name:"));
    assert_int_equal(data[len], 0);
    free(data);
    assert_int_equal(sl_fileio_read("/proc/self/status", 10, &data, &len, err, sizeof err),
                     SL_ERR_TOO_BIG);
    assert_null(data);
}

/* A small learner (dim 3, hidden 5, softmax 2, or linear) with scaling,
 * trained on features of very different scales. */
static sl_learner_t *scaled_learner(sl_head_t head, sl_scale_mode_t mode, int batches) {
    sl_model_config_t cfg = {.head = head,
                             .dim = 3,
                             .classes = 2,
                             .n_hidden = 1,
                             .hidden = {5},
                             .activation = SL_ACT_TANH};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_AUTO);
    char err[256];
    sl_learner_t *l = sl_learner_new(&cfg, &oc, 3, 0, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(sl_learner_set_scale(l, mode, err, sizeof err), SL_OK);
    for (int b = 0; b < batches; b++) {
        float x[6 * 3], y[6], w[6] = {1, 1, 2, 1, 1, 1}, out[12];
        uint8_t lab[6] = {1, 1, 1, 1, 0, 1};
        for (int i = 0; i < 6; i++) {
            x[i * 3] = 1000 + 300 * sinf((float)(b * 6 + i));
            x[i * 3 + 1] = 0.01f * cosf((float)(b * 6 + i) * 1.7f);
            x[i * 3 + 2] = (float)((b + i) % 2);
            y[i] = head == SL_HEAD_LINEAR ? 50 + x[i * 3] * 0.1f : (float)(x[i * 3] > 1000);
        }
        sl_input_t in = {.n = 6, .dim = 3, .dense = x};
        sl_targets_t t = {y, w, lab};
        assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    }
    return l;
}

static const float PROBE[4 * 3] = {1200, 0.005f, 1, 800, -0.01f, 0, 1000, 0, 1, 1500, 0.02f, 0};

static void predict(sl_learner_t *l, float *out) {
    sl_input_t in = {.n = 4, .dim = 3, .dense = PROBE};
    assert_int_equal(sl_learner_predict(l, &in, out), SL_OK);
}

static int header_has(const sl_buf_t *b, const char *text) {
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | b->data[i];
    char *h = strndup((const char *)b->data + 8, hlen);
    int found = strstr(h, text) != NULL;
    free(h);
    return found;
}

/* The scaler travels as scaler.* tensors with its metadata; a fresh learner
 * that imports the file has the same transform to the bit, predicts what the
 * original does and keeps training. */
static void test_scaler_tensors_round_trip(void **state) {
    (void)state;
    sl_scale_mode_t modes[] = {SL_SCALE_STANDARD, SL_SCALE_MAXABS, SL_SCALE_AUTO};
    const char *stat[] = {"scaler.var", "scaler.maxabs", "scaler.var"};
    for (int k = 0; k < 3; k++) {
        sl_head_t head = k == 0 ? SL_HEAD_LINEAR : SL_HEAD_SOFTMAX;
        sl_learner_t *a = scaled_learner(head, modes[k], 5);
        sl_buf_t out = {0};
        assert_int_equal(sl_safetensors_export_learner(a, 0, &out), SL_OK);
        assert_true(header_has(&out, "\"scaler.shift\":{\"dtype\":\"F32\",\"shape\":[3]"));
        assert_true(header_has(&out, "\"scaler.mult\":{\"dtype\":\"F32\",\"shape\":[3]"));
        assert_true(header_has(&out, stat[k]));
        assert_true(header_has(&out, "\"streamlearn.scale\":\""));
        sl_learner_t *b = scaled_learner(head, SL_SCALE_OFF, 0);
        char err[256];
        int has = 0;
        assert_int_equal(sl_safetensors_import_learner(b, out.data, out.len, &has, err, sizeof err),
                         SL_OK);
        assert_int_equal(has, 1);
        const sl_scaler_t *sa = sl_learner_scaler_const(a), *sb = sl_learner_scaler_const(b);
        assert_int_equal(sl_scaler_requested(sb), modes[k]);
        assert_int_equal(sl_scaler_mode(sb), sl_scaler_mode(sa));
        assert_true(sl_scaler_weight(sb) == sl_scaler_weight(sa));
        for (int j = 0; j < 3; j++) {
            assert_true(sl_scaler_shift(sb)[j] == sl_scaler_shift(sa)[j]);
            assert_true(sl_scaler_mult(sb)[j] == sl_scaler_mult(sa)[j]);
        }
        if (head == SL_HEAD_LINEAR) {
            double wa, ma, da, wb, mb, db;
            sl_scaler_target(sa, &wa, &ma, &da);
            sl_scaler_target(sb, &wb, &mb, &db);
            assert_true(wa == wb && ma == mb && da == db); /* exact decimal doubles */
        }
        float pa[8], pb[8];
        predict(a, pa);
        predict(b, pb);
        assert_memory_equal(pa, pb, 4 * (head == SL_HEAD_SOFTMAX ? 2 : 1) * sizeof(float));
        sl_buf_free(&out);
        sl_learner_destroy(a);
        sl_learner_destroy(b);
    }
}

/* Folded: a plain nn.Sequential on raw features that predicts what the
 * scaled learner predicts (to float rounding); no scaler tensors. */
static void test_fold_gives_a_plain_sequential(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        sl_learner_t *a =
            scaled_learner(k ? SL_HEAD_SOFTMAX : SL_HEAD_LINEAR, SL_SCALE_STANDARD, 5);
        sl_buf_t out = {0};
        assert_int_equal(sl_safetensors_export_learner(a, 1, &out), SL_OK);
        assert_false(header_has(&out, "scaler."));
        assert_true(header_has(&out, "\"streamlearn.scale\":\"folded\""));
        sl_model_t *m = sl_model_new(sl_model_config(sl_learner_model(a)), NULL, 0);
        char err[256];
        assert_int_equal(sl_safetensors_import(m, out.data, out.len, err, sizeof err), SL_OK);
        sl_input_t in = {.n = 4, .dim = 3, .dense = PROBE};
        const float *logits;
        assert_int_equal(sl_model_forward(m, &in, &logits, err, sizeof err), SL_OK);
        float raw[8], pa[8];
        sl_model_outputs(m, logits, 4, raw);
        predict(a, pa);
        for (int i = 0; i < 4 * (k ? 2 : 1); i++)
            if (!(fabsf(raw[i] - pa[i]) <= 1e-4f * (1 + fabsf(pa[i]))))
                fail_msg("folded output %d: %.9g, served %.9g", i, raw[i], pa[i]);
        sl_model_config_t got = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_RELU};
        assert_int_equal(sl_safetensors_infer_config(out.data, out.len, &got, err, sizeof err),
                         SL_OK);
        assert_int_equal(got.dim, 3);
        sl_model_destroy(m);
        sl_buf_free(&out);
        sl_learner_destroy(a);
    }
}

#define S_SHIFT "\"scaler.shift\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[128,140]}"
#define S_MULT "\"scaler.mult\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[140,152]}"
#define S_VAR "\"scaler.var\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[152,164]}"
#define S_META                                                                                     \
    "\"__metadata__\":{\"streamlearn.scale\":\"standard\",\"streamlearn.scale_weight\":\"10\","    \
    "\"streamlearn.scale_count\":\"10\"}"
#define SCALED "{" S_META "," T_W0 "," T_B0 "," T_W2 "," T_B2 "," S_SHIFT "," S_MULT "," S_VAR "}"

/* Imports a hand-made file into a fresh small learner; checks the code, the
 * message, and that nothing changed on failure. */
static void expect_learner_failure(uint8_t *buf, size_t len, sl_err_t code, const char *want) {
    sl_learner_t *l = scaled_learner(SL_HEAD_SOFTMAX, SL_SCALE_OFF, 0);
    float *before = snapshot(sl_learner_model(l));
    char err[512] = "";
    int has = 7;
    assert_int_equal(sl_safetensors_import_learner(l, buf, len, &has, err, sizeof err), code);
    if (!strstr(err, want))
        fail_msg("message \"%s\" does not contain \"%s\"", err, want);
    assert_int_equal(has, 0);
    assert_untouched(sl_learner_model(l), before);
    assert_false(sl_scaler_on(sl_learner_scaler_const(l)));
    free(before);
    sl_learner_destroy(l);
}

static void test_scaler_tensors_checked(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = make_file(SCALED, 164, &len);
    sl_learner_t *l = scaled_learner(SL_HEAD_SOFTMAX, SL_SCALE_OFF, 0);
    char err[512];
    int has = 0;
    assert_int_equal(sl_safetensors_import_learner(l, buf, len, &has, err, sizeof err), SL_OK);
    assert_int_equal(has, 1);
    /* The file's transform is in force as written: shift 0.25 + 32.., mult
     * 0.25 + 35.. (the statistics behind it: mean = shift, variance = 1 /
     * mult^2 where scaler.var is not 0). */
    for (int j = 0; j < 3; j++) {
        assert_true(sl_scaler_shift(sl_learner_scaler_const(l))[j] == 32.25f + (float)j);
        assert_true(sl_scaler_mult(sl_learner_scaler_const(l))[j] == 35.25f + (float)j);
    }
    /* The scaler is part of a trained model: a second import is refused. */
    float x[3] = {1, 2, 3}, y = 1, w = 1, out[2];
    uint8_t lab = 1;
    sl_input_t in = {.n = 1, .dim = 3, .dense = x};
    sl_targets_t t = {&y, &w, &lab};
    assert_int_equal(sl_learner_batch(l, &in, &t, out, NULL), SL_OK);
    assert_int_equal(sl_safetensors_import_learner(l, buf, len, &has, err, sizeof err),
                     SL_ERR_STATE);
    sl_learner_destroy(l);
    /* A plain model has no place for them. */
    expect_failure(SCALED, 164, SL_ERR_MISMATCH, "scaler.shift");
    free(buf);

    buf = make_file(SCALED, 164, &len);
    float neg = -1;
    memcpy(buf + len - 4, &neg, 4);
    expect_learner_failure(buf, len, SL_ERR_DECODE, "negative");
    free(buf);
    buf = make_file("{" T_W0 "," T_B0 "," T_W2 "," T_B2 "," S_SHIFT "," S_MULT "}", 152, &len);
    expect_learner_failure(buf, len, SL_ERR_DECODE, "streamlearn.scale");
    free(buf);
    buf =
        make_file("{" S_META "," T_W0 "," T_B0 "," T_W2 "," T_B2 "," S_SHIFT
                  ",\"scaler.bogus\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[140,152]}}",
                  152, &len);
    expect_learner_failure(buf, len, SL_ERR_MISMATCH, "scaler.bogus");
    free(buf);
    buf =
        make_file("{" S_META "," T_W0 "," T_B0 "," T_W2 "," T_B2
                  ",\"scaler.shift\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[128,136]},"
                  "\"scaler.mult\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[136,148]}}",
                  148, &len);
    expect_learner_failure(buf, len, SL_ERR_MISMATCH, "scaler.shift");
    free(buf);
    buf = make_file("{" S_META "," T_W0 "," T_B0 "," T_W2 "," T_B2 "," S_SHIFT "," S_MULT "}", 152,
                    &len);
    expect_learner_failure(buf, len, SL_ERR_DECODE, "scaler.var");
    free(buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handmade_valid_file_loads),
        cmocka_unit_test(test_roundtrip_is_bit_exact),
        cmocka_unit_test(test_export_appends_and_keeps_prefix),
        cmocka_unit_test(test_loads_python_written_file),
        cmocka_unit_test(test_weight_shape_mismatch_names_both_shapes),
        cmocka_unit_test(test_bias_rank_mismatch_names_both_shapes),
        cmocka_unit_test(test_missing_tensor_is_named),
        cmocka_unit_test(test_extra_tensor_is_named),
        cmocka_unit_test(test_wrong_dtype_is_named),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_huge_header_length),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_header_padding_is_accepted),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_offsets_out_of_range),
        cmocka_unit_test(test_overlapping_offsets),
        cmocka_unit_test(test_offsets_not_matching_shape),
        cmocka_unit_test(test_hostile_shape_does_not_allocate),
        cmocka_unit_test(test_duplicate_name),
        cmocka_unit_test(test_non_finite_values),
        cmocka_unit_test(test_infer_config_from_own_export),
        cmocka_unit_test(test_scaler_tensors_round_trip),
        cmocka_unit_test(test_fold_gives_a_plain_sequential),
        cmocka_unit_test(test_scaler_tensors_checked),
        cmocka_unit_test(test_infer_config_from_python_file),
        cmocka_unit_test(test_infer_config_rejects_broken_chain),
        cmocka_unit_test(test_file_roundtrip_through_disk),
        cmocka_unit_test(test_fileio_errors_name_path),
        cmocka_unit_test(test_fileio_reads_files_without_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
