/* onnx.h - a model, its optional feature scaling and its provenance as an
 * ONNX ModelProto (opset 13): weights in, bytes out. No I/O. */
#ifndef SL_ONNX_H
#define SL_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "model/model.h"

#define SL_ONNX_OPSET 13
#define SL_ONNX_IR_VERSION 7 /* the IR version that introduced opset 13 */

/* Protobuf cannot parse a message of 2 GiB or more (ONNX Runtime, onnx.load
 * and every other reader use it), so no file larger than this is written. */
#define SL_ONNX_MAX_BYTES ((size_t)INT32_MAX)

/* The feature scaling the worker applies before layer 0, as its effective
 * per-feature transform: x'[j] = (x[j] - shift[j]) * mult[j], in float32, in
 * that order. Both arrays hold the model's dim floats and are borrowed for
 * the call. */
typedef struct sl_onnx_scaling {
    const float *shift;
    const float *mult;
} sl_onnx_scaling_t;

/* Where the weights come from, written as the model's metadata_props. Plain
 * data, borrowed for the call. NULL strings are left out. */
typedef struct sl_onnx_meta {
    const char *model_name; /* the --model-name of the versions in Redis */
    uint64_t version;       /* snapshot version (0: none, e.g. replay) */
    uint64_t parent;        /* its parent (0: none) */
    const char *created_at; /* RFC 3339 UTC */
    uint64_t samples;       /* labelled samples trained on */
    uint64_t step;          /* optimizer steps applied */
    int scaling_folded;     /* 1: the model's feature scaling is folded into layer 0 */
} sl_onnx_meta_t;

/* Checks, from the architecture alone and without allocating, that a model
 * of this config (with feature scaling when `scaled`) fits in one ONNX file
 * of at most SL_ONNX_MAX_BYTES. Returns SL_OK, or SL_ERR_TOO_BIG with errstr
 * giving the parameter count, the size and the limit. Callers use it to
 * refuse an impossible export before doing the work that leads to it. */
sl_err_t sl_onnx_check(const sl_model_config_t *cfg, int scaled, char *errstr, size_t errstr_size);

/* Appends to `out` an ONNX ModelProto computing what the worker serves for
 * a dense input:
 *   input  x      float32 [N, dim] (N is dynamic)
 *   Sub(x, scaler.shift), Mul(., scaler.mult)        only when scaling != NULL
 *   Gemm(h, "{2i}.weight", "{2i}.bias", transB=1)    layer i, weights [out, in]
 *   Relu | Tanh | Sigmoid                            between layers
 *   output pred   linear: float32 [N], the value; logistic: float32 [N],
 *                 Sigmoid of the logit = P(y=1); softmax: int64 [N], the
 *                 first argmax of proba
 *   output proba  softmax only: float32 [N, K], Softmax over axis 1
 * Initializers carry the nn.Sequential names of the safetensors export.
 * metadata_props: model_name, version, parent, created_at, samples, step,
 * head, activation, hidden, classes, scaling ("shift_mult" with the nodes,
 * "folded" when meta->scaling_folded says the weights hold it, else
 * "none"), feature_hash ("MurmurHash3_x86_32"), feature_hash_seed ("0"),
 * feature_dim and
 * streamlearn_version; meta may be NULL (then only the model's own keys).
 * Errors, with `out` left as it was and errstr saying why:
 *  - SL_ERR_TOO_BIG: the file would reach SL_ONNX_MAX_BYTES (sl_onnx_check);
 *  - SL_ERR_INVAL: scaling given with a NULL shift or mult;
 *  - SL_ERR_NONFINITE: a scaling value is NaN or infinite (names the feature);
 *  - SL_ERR_NOMEM.
 * The bytes belong to `out`; m and scaling are only read. */
sl_err_t sl_onnx_export(const sl_model_t *m, const sl_onnx_scaling_t *scaling,
                        const sl_onnx_meta_t *meta, sl_buf_t *out, char *errstr,
                        size_t errstr_size);

#endif
