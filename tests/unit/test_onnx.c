/* test_onnx.c - the ONNX writer: the ModelProto it packs, read back with
 * protobuf-c (graph, weights bit for bit, shapes, metadata), and its errors.
 * ONNX's own checker and a numpy evaluation run in test_onnx_graphs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "model/model.h"
#include "model/onnx.h"
#include "third_party/onnx/onnx.pb-c.h"

static sl_model_t *make_model(sl_head_t head, uint32_t n_hidden, sl_act_t act) {
    sl_model_config_t cfg = {
        .head = head, .dim = 5, .classes = 3, .n_hidden = n_hidden, .activation = act};
    for (uint32_t i = 0; i < n_hidden; i++)
        cfg.hidden[i] = 4 - i;
    char err[256];
    sl_model_t *m = sl_model_new(&cfg, err, sizeof err);
    assert_non_null(m);
    sl_model_init_seeded(m, 11);
    return m;
}

static Onnx__ModelProto *export_and_read(const sl_model_t *m, const sl_onnx_scaling_t *sc,
                                         const sl_onnx_meta_t *meta, sl_buf_t *buf) {
    char err[256];
    assert_int_equal(sl_onnx_export(m, sc, meta, buf, err, sizeof err), SL_OK);
    Onnx__ModelProto *p = onnx__model_proto__unpack(NULL, buf->len, buf->data);
    assert_non_null(p);
    return p;
}

static const char *prop(const Onnx__ModelProto *p, const char *key) {
    for (size_t i = 0; i < p->n_metadata_props; i++)
        if (strcmp(p->metadata_props[i]->key, key) == 0)
            return p->metadata_props[i]->value;
    return NULL;
}

static const Onnx__TensorProto *init(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strcmp(g->initializer[i]->name, name) == 0)
            return g->initializer[i];
    return NULL;
}

static int64_t attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i]->i;
    fail_msg("node %s has no attribute %s", n->name, name);
    return -1;
}

/* The node ops in order, joined with spaces. */
static void ops(const Onnx__GraphProto *g, char *out, size_t size) {
    size_t pos = 0;
    out[0] = '\0';
    for (size_t i = 0; i < g->n_node; i++)
        pos += (size_t)snprintf(out + pos, size - pos, "%s%s", i ? " " : "", g->node[i]->op_type);
}

static void assert_value(const Onnx__ValueInfoProto *v, const char *name, int32_t elem,
                         int64_t dim1) {
    assert_string_equal(v->name, name);
    assert_int_equal(v->type->value_case, ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE);
    const Onnx__TypeProto__Tensor *t = v->type->tensor_type;
    assert_int_equal(t->elem_type, elem);
    assert_int_equal(t->shape->n_dim, dim1 ? 2 : 1);
    assert_int_equal(t->shape->dim[0]->value_case,
                     ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM);
    assert_string_equal(t->shape->dim[0]->dim_param, "N");
    if (dim1) {
        assert_int_equal(t->shape->dim[1]->value_case,
                         ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE);
        assert_int_equal(t->shape->dim[1]->dim_value, dim1);
    }
}

/* Every layer's weight and bias are initializers "{2i}.weight" [out, in]
 * and "{2i}.bias" [out] holding the model's floats bit for bit. */
static void assert_weights(sl_model_t *m, const Onnx__GraphProto *g) {
    const float *params = sl_model_params(m);
    for (uint32_t i = 0; i < sl_model_n_layers(m); i++) {
        sl_layer_view_t v;
        assert_int_equal(sl_model_layer(m, i, &v), SL_OK);
        char name[32];
        snprintf(name, sizeof name, "%u.weight", 2 * i);
        const Onnx__TensorProto *w = init(g, name);
        assert_non_null(w);
        assert_int_equal(w->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
        assert_int_equal(w->n_dims, 2);
        assert_int_equal(w->dims[0], v.out);
        assert_int_equal(w->dims[1], v.in);
        assert_int_equal(w->n_float_data, (size_t)v.out * v.in);
        assert_memory_equal(w->float_data, params + v.weight_offset,
                            (size_t)v.out * v.in * sizeof(float));
        snprintf(name, sizeof name, "%u.bias", 2 * i);
        const Onnx__TensorProto *b = init(g, name);
        assert_non_null(b);
        assert_int_equal(b->n_dims, 1);
        assert_int_equal(b->dims[0], v.out);
        assert_memory_equal(b->float_data, params + v.bias_offset, v.out * sizeof(float));
    }
}

static void test_softmax_graph(void **state) {
    (void)state;
    sl_model_t *m = make_model(SL_HEAD_SOFTMAX, 2, SL_ACT_TANH);
    sl_buf_t buf = {0};
    Onnx__ModelProto *p = export_and_read(m, NULL, NULL, &buf);
    assert_int_equal(p->ir_version, SL_ONNX_IR_VERSION);
    assert_int_equal(p->n_opset_import, 1);
    assert_string_equal(p->opset_import[0]->domain, "");
    assert_int_equal(p->opset_import[0]->version, 13);
    assert_string_equal(p->producer_name, "streamlearn");
    assert_string_equal(p->producer_version, SL_VERSION);
    const Onnx__GraphProto *g = p->graph;
    char text[256];
    ops(g, text, sizeof text);
    assert_string_equal(text, "Gemm Tanh Gemm Tanh Gemm Softmax ArgMax");
    for (size_t i = 0; i < g->n_node; i += 2)
        if (strcmp(g->node[i]->op_type, "Gemm") == 0)
            assert_int_equal(attr(g->node[i], "transB"), 1);
    assert_int_equal(attr(g->node[5], "axis"), 1);
    assert_int_equal(attr(g->node[6], "axis"), 1);
    assert_int_equal(attr(g->node[6], "keepdims"), 0);
    assert_int_equal(attr(g->node[6], "select_last_index"), 0); /* the first maximum wins */
    assert_string_equal(g->node[0]->input[0], "x");
    assert_string_equal(g->node[6]->input[0], "proba"); /* argmax of proba, as served */
    assert_int_equal(g->n_input, 1);
    assert_value(g->input[0], "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 5);
    assert_int_equal(g->n_output, 2);
    assert_value(g->output[0], "pred", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 0);
    assert_value(g->output[1], "proba", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 3);
    assert_int_equal(g->n_initializer, 6);
    assert_weights(m, g);
    assert_string_equal(prop(p, "head"), "softmax");
    assert_string_equal(prop(p, "activation"), "tanh");
    assert_string_equal(prop(p, "hidden"), "4,3");
    assert_string_equal(prop(p, "classes"), "3");
    assert_string_equal(prop(p, "scaling"), "none");
    assert_string_equal(prop(p, "feature_hash"), "MurmurHash3_x86_32");
    assert_string_equal(prop(p, "feature_hash_seed"), "0");
    assert_string_equal(prop(p, "feature_dim"), "5");
    assert_string_equal(prop(p, "streamlearn_version"), SL_VERSION);
    assert_null(prop(p, "version")); /* no meta: no provenance */
    assert_null(prop(p, "model_name"));
    onnx__model_proto__free_unpacked(p, NULL);
    sl_buf_free(&buf);
    sl_model_destroy(m);
}

static void test_one_output_heads(void **state) {
    (void)state;
    static const char *const want[] = {"Gemm Squeeze", "Gemm Squeeze Sigmoid"};
    for (int head = SL_HEAD_LINEAR; head <= SL_HEAD_LOGISTIC; head++) {
        sl_model_t *m = make_model((sl_head_t)head, 0, SL_ACT_RELU);
        sl_buf_t buf = {0};
        Onnx__ModelProto *p = export_and_read(m, NULL, NULL, &buf);
        const Onnx__GraphProto *g = p->graph;
        char text[256];
        ops(g, text, sizeof text);
        assert_string_equal(text, want[head]);
        assert_int_equal(g->n_output, 1);
        assert_value(g->output[0], "pred", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0);
        const Onnx__TensorProto *axes = init(g, "head.axes");
        assert_non_null(axes);
        assert_int_equal(axes->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__INT64);
        assert_int_equal(axes->n_int64_data, 1);
        assert_int_equal(axes->int64_data[0], 1);
        assert_string_equal(g->node[1]->input[1], "head.axes");
        assert_string_equal(g->node[g->n_node - 1]->output[0], "pred");
        assert_weights(m, g);
        assert_string_equal(prop(p, "activation"), "none");
        assert_string_equal(prop(p, "hidden"), "");
        assert_string_equal(prop(p, "classes"), "1");
        onnx__model_proto__free_unpacked(p, NULL);
        sl_buf_free(&buf);
        sl_model_destroy(m);
    }
}

static void test_scaling_nodes(void **state) {
    (void)state;
    sl_model_t *m = make_model(SL_HEAD_LOGISTIC, 1, SL_ACT_SIGMOID);
    float shift[5] = {0.5f, -1.0f, 0.0f, 3.25f, 1e-3f}, mult[5] = {2.0f, 0.5f, 1.0f, 0.1f, 7.0f};
    sl_onnx_scaling_t sc = {.shift = shift, .mult = mult};
    sl_buf_t buf = {0};
    Onnx__ModelProto *p = export_and_read(m, &sc, NULL, &buf);
    const Onnx__GraphProto *g = p->graph;
    char text[256];
    ops(g, text, sizeof text);
    assert_string_equal(text, "Sub Mul Gemm Sigmoid Gemm Squeeze Sigmoid");
    /* (x - shift) * mult, in that order, before layer 0 */
    assert_string_equal(g->node[0]->input[0], "x");
    assert_string_equal(g->node[0]->input[1], "scaler.shift");
    assert_string_equal(g->node[1]->input[0], g->node[0]->output[0]);
    assert_string_equal(g->node[1]->input[1], "scaler.mult");
    assert_string_equal(g->node[2]->input[0], g->node[1]->output[0]);
    const Onnx__TensorProto *s = init(g, "scaler.shift"), *u = init(g, "scaler.mult");
    assert_non_null(s);
    assert_non_null(u);
    assert_int_equal(s->n_dims, 1);
    assert_int_equal(s->dims[0], 5);
    assert_memory_equal(s->float_data, shift, sizeof shift);
    assert_memory_equal(u->float_data, mult, sizeof mult);
    assert_string_equal(prop(p, "scaling"), "shift_mult");
    onnx__model_proto__free_unpacked(p, NULL);
    sl_buf_free(&buf);
    sl_model_destroy(m);
}

static void test_metadata(void **state) {
    (void)state;
    sl_model_t *m = make_model(SL_HEAD_LINEAR, 3, SL_ACT_RELU);
    sl_onnx_meta_t meta = {.model_name = "clicks",
                           .version = 42,
                           .parent = 41,
                           .created_at = "2024-05-01T12:00:00.123Z",
                           .samples = 123456789012ull,
                           .step = 98765};
    sl_buf_t buf = {0};
    Onnx__ModelProto *p = export_and_read(m, NULL, &meta, &buf);
    assert_string_equal(prop(p, "model_name"), "clicks");
    assert_string_equal(prop(p, "version"), "42");
    assert_string_equal(prop(p, "parent"), "41");
    assert_string_equal(prop(p, "created_at"), "2024-05-01T12:00:00.123Z");
    assert_string_equal(prop(p, "samples"), "123456789012");
    assert_string_equal(prop(p, "step"), "98765");
    assert_string_equal(prop(p, "hidden"), "4,3,2");
    assert_true(p->has_model_version);
    assert_int_equal(p->model_version, 42);
    assert_string_equal(p->graph->name, "clicks");
    onnx__model_proto__free_unpacked(p, NULL);

    /* no name, no created_at (replay): those keys are left out */
    sl_onnx_meta_t bare = {.samples = 3, .step = 1};
    sl_buf_free(&buf);
    p = export_and_read(m, NULL, &bare, &buf);
    assert_null(prop(p, "model_name"));
    assert_null(prop(p, "created_at"));
    assert_string_equal(prop(p, "version"), "0");
    assert_false(p->has_model_version);
    assert_string_equal(p->graph->name, "streamlearn");
    onnx__model_proto__free_unpacked(p, NULL);
    sl_buf_free(&buf);
    sl_model_destroy(m);
}

/* The writer appends: what the buffer held stays in front. */
static void test_appends(void **state) {
    (void)state;
    sl_model_t *m = make_model(SL_HEAD_LOGISTIC, 0, SL_ACT_RELU);
    sl_buf_t alone = {0}, after = {0};
    char err[256];
    assert_int_equal(sl_onnx_export(m, NULL, NULL, &alone, err, sizeof err), SL_OK);
    assert_int_equal(sl_buf_append(&after, "abc", 3), SL_OK);
    assert_int_equal(sl_onnx_export(m, NULL, NULL, &after, err, sizeof err), SL_OK);
    assert_int_equal(after.len, 3 + alone.len);
    assert_memory_equal(after.data, "abc", 3);
    assert_memory_equal(after.data + 3, alone.data, alone.len);
    sl_buf_free(&alone);
    sl_buf_free(&after);
    sl_model_destroy(m);
}

static void test_bad_scaling(void **state) {
    (void)state;
    sl_model_t *m = make_model(SL_HEAD_SOFTMAX, 1, SL_ACT_RELU);
    float shift[5] = {0}, mult[5] = {1, 1, 1, 1, 1};
    sl_buf_t buf = {0};
    assert_int_equal(sl_buf_append(&buf, "keep", 4), SL_OK);
    char err[256] = "";

    sl_onnx_scaling_t no_mult = {.shift = shift};
    assert_int_equal(sl_onnx_export(m, &no_mult, NULL, &buf, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "mult"));

    mult[3] = INFINITY;
    sl_onnx_scaling_t inf = {.shift = shift, .mult = mult};
    assert_int_equal(sl_onnx_export(m, &inf, NULL, &buf, err, sizeof err), SL_ERR_NONFINITE);
    assert_non_null(strstr(err, "feature 3"));

    mult[3] = 1;
    shift[0] = NAN;
    assert_int_equal(sl_onnx_export(m, &inf, NULL, &buf, err, sizeof err), SL_ERR_NONFINITE);
    assert_non_null(strstr(err, "feature 0"));

    assert_int_equal(buf.len, 4); /* left as it was */
    sl_buf_free(&buf);
    sl_model_destroy(m);
}

/* Sizes are judged from the config alone, so no 2 GiB model is needed. */
static void test_size_limit(void **state) {
    (void)state;
    char err[256] = "";
    /* 2^26 features x 9 hidden units: 604M parameters, 2.25 GiB */
    sl_model_config_t big = {
        .head = SL_HEAD_LOGISTIC, .dim = 1u << 26, .n_hidden = 1, .hidden = {9}};
    assert_int_equal(sl_onnx_check(&big, 0, err, sizeof err), SL_ERR_TOO_BIG);
    assert_non_null(strstr(err, "603979795 parameters"));
    assert_non_null(strstr(err, "safetensors"));
    /* 7 hidden units: 470M parameters, 1.75 GiB, fits; scaling adds 512 MiB */
    big.hidden[0] = 7;
    assert_int_equal(sl_onnx_check(&big, 0, err, sizeof err), SL_OK);
    assert_int_equal(sl_onnx_check(&big, 1, err, sizeof err), SL_ERR_TOO_BIG);
    sl_model_config_t small = {.head = SL_HEAD_SOFTMAX, .dim = 784, .classes = 10};
    assert_int_equal(sl_onnx_check(&small, 1, err, sizeof err), SL_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_graph), cmocka_unit_test(test_one_output_heads),
        cmocka_unit_test(test_scaling_nodes), cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_appends),       cmocka_unit_test(test_bad_scaling),
        cmocka_unit_test(test_size_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
