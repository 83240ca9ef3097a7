/* onnx.c - the ONNX writer: an ONNX ModelProto built with protobuf-c over the
 * model's own arrays, then packed once into the caller's buffer. */

#include "onnx.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "third_party/onnx/onnx.pb-c.h"

/* Upper bounds of what one graph holds: Sub and Mul, a Gemm per layer, an
 * activation between layers, two head nodes. */
#define MAX_NODES (2 + 2 * SL_MAX_LAYERS + 2)
#define MAX_INITS (2 + 2 * SL_MAX_LAYERS + 1)
#define MAX_PROPS 16
#define MAX_ATTRS 3
#define NAME_LEN 32

/* Bytes of a file besides the float32 arrays: names, shapes, metadata and
 * field headers, far less than this for the largest graph. */
#define OVERHEAD_BOUND ((uint64_t)1 << 16)

/* Every message lives in one builder, so nothing is allocated per node and
 * one free releases the lot. Names are built in the slots that use them. */
typedef struct node_slot {
    Onnx__NodeProto node;
    char *inputs[3];
    char *outputs[1];
    char name[NAME_LEN];
    char out[NAME_LEN];
    Onnx__AttributeProto attrs[MAX_ATTRS];
    Onnx__AttributeProto *attr_ptrs[MAX_ATTRS];
} node_slot_t;

typedef struct tensor_slot {
    Onnx__TensorProto tensor;
    int64_t dims[2];
    char name[NAME_LEN];
} tensor_slot_t;

typedef struct value_slot {
    Onnx__ValueInfoProto info;
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor;
    Onnx__TensorShapeProto shape;
    Onnx__TensorShapeProto__Dimension dims[2];
    Onnx__TensorShapeProto__Dimension *dim_ptrs[2];
} value_slot_t;

typedef struct prop_slot {
    Onnx__StringStringEntryProto entry;
    char text[SL_MAX_HIDDEN * 12 + 1];
} prop_slot_t;

typedef struct builder {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opset_ptr;
    node_slot_t nodes[MAX_NODES];
    Onnx__NodeProto *node_ptrs[MAX_NODES];
    tensor_slot_t inits[MAX_INITS];
    Onnx__TensorProto *init_ptrs[MAX_INITS];
    value_slot_t values[3]; /* x, pred, proba */
    Onnx__ValueInfoProto *input_ptrs[1], *output_ptrs[2];
    prop_slot_t props[MAX_PROPS];
    Onnx__StringStringEntryProto *prop_ptrs[MAX_PROPS];
    int64_t squeeze_axes[1];
    char doc[256];
} builder_t;

/* protobuf-c's message fields are not const; the writer only reads them. */
static char *str(const char *s) {
    return (char *)s;
}

static uint64_t file_bytes_bound(const sl_model_config_t *cfg, int scaled, uint64_t *params) {
    uint64_t total = 0, in = cfg->dim;
    for (uint32_t i = 0; i <= cfg->n_hidden; i++) {
        uint64_t out =
            i < cfg->n_hidden ? cfg->hidden[i] : (cfg->head == SL_HEAD_SOFTMAX ? cfg->classes : 1);
        total += out * in + out;
        in = out;
    }
    *params = total;
    return 4 * (total + (scaled ? 2 * (uint64_t)cfg->dim : 0)) + OVERHEAD_BOUND;
}

static sl_err_t too_big(uint64_t params, uint64_t bytes, char *errstr, size_t errstr_size) {
    sl_errstr_set(errstr, errstr_size,
                  "the model has %" PRIu64 " parameters, %.2f GiB as ONNX, and one ONNX file "
                  "holds at most 2 GiB (protobuf's limit): export it as safetensors instead",
                  params, (double)bytes / (double)(1u << 30));
    return SL_ERR_TOO_BIG;
}

sl_err_t sl_onnx_check(const sl_model_config_t *cfg, int scaled, char *errstr, size_t errstr_size) {
    uint64_t params;
    uint64_t bytes = file_bytes_bound(cfg, scaled, &params);
    return bytes > SL_ONNX_MAX_BYTES ? too_big(params, bytes, errstr, errstr_size) : SL_OK;
}

/* Appends a node reading up to three named values (NULL: fewer) and writing
 * one, `out`. Returns the slot so the caller can add attributes; its `out`
 * names the result for the next node. */
static node_slot_t *add_node(builder_t *b, const char *op, const char *name, const char *in0,
                             const char *in1, const char *in2, const char *out) {
    size_t k = b->graph.n_node++;
    assert(k < MAX_NODES);
    node_slot_t *s = &b->nodes[k];
    onnx__node_proto__init(&s->node);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->out, sizeof s->out, "%s", out);
    const char *ins[3] = {in0, in1, in2};
    for (int i = 0; i < 3 && ins[i]; i++)
        s->inputs[s->node.n_input++] = str(ins[i]);
    s->outputs[0] = s->out;
    s->node.input = s->inputs;
    s->node.n_output = 1;
    s->node.output = s->outputs;
    s->node.name = s->name;
    s->node.op_type = str(op);
    s->node.attribute = s->attr_ptrs;
    b->node_ptrs[k] = &s->node;
    return s;
}

static void add_int_attr(node_slot_t *s, const char *name, int64_t value) {
    size_t k = s->node.n_attribute++;
    assert(k < MAX_ATTRS);
    Onnx__AttributeProto *a = &s->attrs[k];
    onnx__attribute_proto__init(a);
    a->name = str(name);
    a->has_type = 1;
    a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
    a->has_i = 1;
    a->i = value;
    s->attr_ptrs[k] = a;
}

/* A float32 initializer over the caller's array (packed float_data: protobuf-c
 * writes it little-endian on every host). dims1 == 0 makes it 1-D. */
static tensor_slot_t *add_init(builder_t *b, const char *name, int64_t dims0, int64_t dims1,
                               const float *data) {
    size_t k = b->graph.n_initializer++;
    assert(k < MAX_INITS);
    tensor_slot_t *s = &b->inits[k];
    onnx__tensor_proto__init(&s->tensor);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->dims[0] = dims0;
    s->dims[1] = dims1;
    s->tensor.name = s->name;
    s->tensor.n_dims = dims1 ? 2 : 1;
    s->tensor.dims = s->dims;
    s->tensor.has_data_type = 1;
    s->tensor.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    s->tensor.n_float_data = (size_t)(dims1 ? dims0 * dims1 : dims0);
    s->tensor.float_data = (float *)data;
    b->init_ptrs[k] = &s->tensor;
    return s;
}

/* A typed value of rank 1 or 2 whose first dimension is the batch "N". */
static Onnx__ValueInfoProto *value_info(value_slot_t *v, const char *name, int32_t elem_type,
                                        int64_t dim1) {
    onnx__value_info_proto__init(&v->info);
    onnx__type_proto__init(&v->type);
    onnx__type_proto__tensor__init(&v->tensor);
    onnx__tensor_shape_proto__init(&v->shape);
    for (int i = 0; i < 2; i++) {
        onnx__tensor_shape_proto__dimension__init(&v->dims[i]);
        v->dim_ptrs[i] = &v->dims[i];
    }
    v->dims[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    v->dims[0].dim_param = str("N");
    v->dims[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    v->dims[1].dim_value = dim1;
    v->shape.n_dim = dim1 ? 2 : 1;
    v->shape.dim = v->dim_ptrs;
    v->tensor.has_elem_type = 1;
    v->tensor.elem_type = elem_type;
    v->tensor.shape = &v->shape;
    v->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    v->type.tensor_type = &v->tensor;
    v->info.name = str(name);
    v->info.type = &v->type;
    return &v->info;
}

/* A metadata entry. value is borrowed (it outlives the packing), or NULL
 * when the caller formats the value into the returned slot's `text` and
 * points entry.value at it. */
static prop_slot_t *add_prop(builder_t *b, const char *key, const char *value) {
    size_t k = b->model.n_metadata_props++;
    assert(k < MAX_PROPS);
    prop_slot_t *p = &b->props[k];
    onnx__string_string_entry_proto__init(&p->entry);
    p->entry.key = str(key);
    p->entry.value = str(value);
    b->prop_ptrs[k] = &p->entry;
    return p;
}

static void add_prop_u64(builder_t *b, const char *key, uint64_t value) {
    prop_slot_t *p = add_prop(b, key, NULL);
    snprintf(p->text, sizeof p->text, "%" PRIu64, value);
    p->entry.value = p->text;
}

static void add_props(builder_t *b, const sl_model_config_t *cfg, int scaled,
                      const sl_onnx_meta_t *meta) {
    b->model.metadata_props = b->prop_ptrs;
    if (meta) {
        if (meta->model_name)
            add_prop(b, "model_name", meta->model_name);
        add_prop_u64(b, "version", meta->version);
        add_prop_u64(b, "parent", meta->parent);
        if (meta->created_at)
            add_prop(b, "created_at", meta->created_at);
        add_prop_u64(b, "samples", meta->samples);
        add_prop_u64(b, "step", meta->step);
    }
    add_prop(b, "head", sl_model_head_name(cfg->head));
    add_prop(b, "activation", cfg->n_hidden ? sl_model_act_name(cfg->activation) : "none");
    prop_slot_t *hidden = add_prop(b, "hidden", NULL);
    size_t pos = 0;
    for (uint32_t i = 0; i < cfg->n_hidden; i++)
        pos += (size_t)snprintf(hidden->text + pos, sizeof hidden->text - pos, "%s%u", i ? "," : "",
                                cfg->hidden[i]);
    hidden->entry.value = hidden->text;
    add_prop_u64(b, "classes", cfg->head == SL_HEAD_SOFTMAX ? cfg->classes : 1);
    add_prop(b, "scaling",
             scaled                         ? "shift_mult"
             : meta && meta->scaling_folded ? "folded"
                                            : "none");
    add_prop(b, "feature_hash", "MurmurHash3_x86_32");
    add_prop(b, "feature_hash_seed", "0");
    add_prop_u64(b, "feature_dim", cfg->dim);
    add_prop(b, "streamlearn_version", SL_VERSION);
}

static sl_err_t check_scaling(const sl_onnx_scaling_t *sc, uint32_t dim, char *errstr,
                              size_t errstr_size) {
    if (!sc->shift || !sc->mult) {
        sl_errstr_set(errstr, errstr_size, "feature scaling without its %s array",
                      sc->shift ? "mult" : "shift");
        return SL_ERR_INVAL;
    }
    for (uint32_t j = 0; j < dim; j++) {
        if (!isfinite(sc->shift[j]) || !isfinite(sc->mult[j])) {
            sl_errstr_set(errstr, errstr_size,
                          "feature scaling of feature %u is not finite (shift %g, mult %g)", j,
                          sc->shift[j], sc->mult[j]);
            return SL_ERR_NONFINITE;
        }
    }
    return SL_OK;
}

static const char *act_op(sl_act_t act) {
    switch (act) {
    case SL_ACT_TANH: return "Tanh";
    case SL_ACT_SIGMOID: return "Sigmoid";
    case SL_ACT_RELU: break;
    }
    return "Relu";
}

/* The layers: Gemm per layer, the activation between them. Returns the name
 * of the last layer's output ("logits"). */
static const char *add_layers(builder_t *b, const sl_model_t *m, const char *h) {
    const sl_model_config_t *cfg = sl_model_config(m);
    /* sl_model_params takes a non-const model; here it is only read. */
    const float *params = sl_model_params((sl_model_t *)m);
    uint32_t n_layers = sl_model_n_layers(m);
    for (uint32_t i = 0; i < n_layers; i++) {
        sl_layer_view_t v;
        sl_model_layer(m, i, &v);
        char name[NAME_LEN], out[NAME_LEN];
        snprintf(name, sizeof name, "%u.weight", 2 * i);
        const char *w = add_init(b, name, v.out, v.in, params + v.weight_offset)->name;
        snprintf(name, sizeof name, "%u.bias", 2 * i);
        const char *bias = add_init(b, name, v.out, 0, params + v.bias_offset)->name;
        snprintf(name, sizeof name, "%u.gemm", 2 * i);
        snprintf(out, sizeof out, "%u.out", 2 * i);
        node_slot_t *g = add_node(b, "Gemm", name, h, w, bias, i + 1 < n_layers ? out : "logits");
        add_int_attr(g, "transB", 1);
        h = g->out;
        if (i + 1 < n_layers) {
            const char *op = act_op(cfg->activation);
            snprintf(name, sizeof name, "%u.%s", 2 * i + 1, sl_model_act_name(cfg->activation));
            snprintf(out, sizeof out, "%u.out", 2 * i + 1);
            h = add_node(b, op, name, h, NULL, NULL, out)->out;
        }
    }
    return h;
}

/* The head: logits [N, K] to pred [N] (and proba [N, K] for softmax). */
static void add_head(builder_t *b, const sl_model_config_t *cfg, const char *logits) {
    b->graph.output = b->output_ptrs;
    if (cfg->head == SL_HEAD_SOFTMAX) {
        node_slot_t *s = add_node(b, "Softmax", "head.softmax", logits, NULL, NULL, "proba");
        add_int_attr(s, "axis", 1);
        node_slot_t *a = add_node(b, "ArgMax", "head.argmax", s->out, NULL, NULL, "pred");
        add_int_attr(a, "axis", 1);
        add_int_attr(a, "keepdims", 0);
        add_int_attr(a, "select_last_index", 0);
        b->output_ptrs[0] =
            value_info(&b->values[1], "pred", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 0);
        b->output_ptrs[1] =
            value_info(&b->values[2], "proba", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, cfg->classes);
        b->graph.n_output = 2;
        return;
    }
    /* One output column: Squeeze(axes = [1]) makes it [N]. */
    size_t k = b->graph.n_initializer++;
    assert(k < MAX_INITS);
    tensor_slot_t *axes = &b->inits[k];
    onnx__tensor_proto__init(&axes->tensor);
    snprintf(axes->name, sizeof axes->name, "head.axes");
    b->squeeze_axes[0] = 1;
    axes->dims[0] = 1;
    axes->tensor.name = axes->name;
    axes->tensor.n_dims = 1;
    axes->tensor.dims = axes->dims;
    axes->tensor.has_data_type = 1;
    axes->tensor.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
    axes->tensor.n_int64_data = 1;
    axes->tensor.int64_data = b->squeeze_axes;
    b->init_ptrs[k] = &axes->tensor;
    if (cfg->head == SL_HEAD_LOGISTIC) {
        const char *z =
            add_node(b, "Squeeze", "head.squeeze", logits, axes->name, NULL, "logit")->out;
        add_node(b, "Sigmoid", "head.sigmoid", z, NULL, NULL, "pred");
    } else {
        add_node(b, "Squeeze", "head.squeeze", logits, axes->name, NULL, "pred");
    }
    b->output_ptrs[0] = value_info(&b->values[1], "pred", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 0);
    b->graph.n_output = 1;
}

static void build(builder_t *b, const sl_model_t *m, const sl_onnx_scaling_t *scaling,
                  const sl_onnx_meta_t *meta) {
    const sl_model_config_t *cfg = sl_model_config(m);
    onnx__model_proto__init(&b->model);
    onnx__graph_proto__init(&b->graph);
    onnx__operator_set_id_proto__init(&b->opset);
    b->opset.domain = str("");
    b->opset.has_version = 1;
    b->opset.version = SL_ONNX_OPSET;
    b->opset_ptr = &b->opset;
    b->model.has_ir_version = 1;
    b->model.ir_version = SL_ONNX_IR_VERSION;
    b->model.n_opset_import = 1;
    b->model.opset_import = &b->opset_ptr;
    b->model.producer_name = str("streamlearn");
    b->model.producer_version = str(SL_VERSION);
    if (meta && meta->version) {
        b->model.has_model_version = 1;
        b->model.model_version = (int64_t)meta->version;
    }
    snprintf(b->doc, sizeof b->doc, "streamlearn %s model over %u features%s",
             sl_model_head_name(cfg->head), cfg->dim, scaling ? ", scaled" : "");
    b->model.doc_string = b->doc;
    b->model.graph = &b->graph;
    b->graph.name = str(meta && meta->model_name ? meta->model_name : "streamlearn");
    b->graph.node = b->node_ptrs;
    b->graph.initializer = b->init_ptrs;
    b->input_ptrs[0] =
        value_info(&b->values[0], "x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, cfg->dim);
    b->graph.n_input = 1;
    b->graph.input = b->input_ptrs;

    const char *h = "x";
    if (scaling) {
        /* the safetensors export's names for the same two arrays */
        const char *shift = add_init(b, "scaler.shift", cfg->dim, 0, scaling->shift)->name;
        const char *mult = add_init(b, "scaler.mult", cfg->dim, 0, scaling->mult)->name;
        h = add_node(b, "Sub", "scaler.sub", h, shift, NULL, "x.centered")->out;
        h = add_node(b, "Mul", "scaler.mul", h, mult, NULL, "x.scaled")->out;
    }
    add_head(b, cfg, add_layers(b, m, h));
    add_props(b, cfg, scaling != NULL, meta);
}

sl_err_t sl_onnx_export(const sl_model_t *m, const sl_onnx_scaling_t *scaling,
                        const sl_onnx_meta_t *meta, sl_buf_t *out, char *errstr,
                        size_t errstr_size) {
    const sl_model_config_t *cfg = sl_model_config(m);
    sl_err_t err = sl_onnx_check(cfg, scaling != NULL, errstr, errstr_size);
    if (err == SL_OK && scaling)
        err = check_scaling(scaling, cfg->dim, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    builder_t *b = calloc(1, sizeof *b);
    if (!b) {
        sl_errstr_set(errstr, errstr_size, "out of memory building the ONNX model");
        return SL_ERR_NOMEM;
    }
    build(b, m, scaling, meta);
    size_t size = protobuf_c_message_get_packed_size(&b->model.base);
    if (size > SL_ONNX_MAX_BYTES) {
        uint64_t params;
        file_bytes_bound(cfg, scaling != NULL, &params);
        err = too_big(params, size, errstr, errstr_size);
    } else if (sl_buf_reserve(out, size) != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "out of memory for an ONNX file of %zu bytes", size);
        err = SL_ERR_NOMEM;
    } else {
        out->len += protobuf_c_message_pack(&b->model.base, out->data + out->len);
    }
    free(b);
    return err;
}
