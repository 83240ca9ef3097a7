/* safetensors.h - model parameters to and from safetensors buffers (8-byte LE
 * header length, JSON header, F32 data), named like torch.nn.Sequential. No I/O. */
#ifndef SL_SAFETENSORS_H
#define SL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "model/learner.h"
#include "model/model.h"

/* Largest JSON header accepted, as in the reference implementation. */
#define SL_SAFETENSORS_MAX_HEADER (100u * 1024u * 1024u)

/* Appends the model's parameters to `out` as a safetensors file: dense layer
 * i is "{2i}.weight" [out, in] and "{2i}.bias" [out], in layer order, F32
 * little-endian, the header padded with spaces so the data starts at a
 * multiple of 8. The header's "__metadata__" holds "format": "pt" and
 * "streamlearn.*" keys describing the architecture (head, activation, hidden)
 * that sl_safetensors_infer_config reads back. Returns SL_ERR_NOMEM (out is
 * left as it was) or SL_OK. The bytes belong to `out`. */
sl_err_t sl_safetensors_export(const sl_model_t *m, sl_buf_t *out);

/* Loads the weights in buf[0..len) into m, all or nothing: m changes only
 * when every tensor checks out. Errors, with errstr naming the tensor:
 *  - SL_ERR_MISMATCH: a tensor the model needs is missing, the file has a
 *    tensor the model has no place for, a dtype other than F32, or a shape
 *    other than the model's (`tensor "2.weight": file has shape [10, 64],
 *    model expects [10, 128]`);
 *  - SL_ERR_DECODE: a malformed file (header length beyond the file, invalid
 *    JSON, bad field types, data_offsets out of range, overlapping or not
 *    matching the shape, a NaN or infinite value);
 *  - SL_ERR_NOMEM.
 * Sizes in the file are checked against len before any allocation, so a
 * hostile file cannot make this allocate more than about len bytes. The
 * caller owns buf. A learner's optimizer state mirroring the weights must be
 * rebuilt afterwards (sl_learner_params_changed). */
sl_err_t sl_safetensors_import(sl_model_t *m, const uint8_t *buf, size_t len, char *errstr,
                               size_t errstr_size);

/* The learner's weights file: the model's tensors as sl_safetensors_export
 * writes them and, with scaling on, the scaler:
 *  - fold = 0: extra F32 tensors "scaler.shift" and "scaler.mult" [dim] (the
 *    transform x' = (x - shift) * mult applied before layer 0), plus the
 *    running statistics "scaler.var" [dim] (population variance; the mean is
 *    scaler.shift) for standard scaling or "scaler.maxabs" [dim] for maxabs
 *    scaling; metadata "streamlearn.scale" (the mode asked for: auto,
 *    standard or maxabs), "streamlearn.scale_weight" and
 *    "streamlearn.scale_count" (weight and number of samples behind the
 *    statistics) and "streamlearn.target" ("weight mean m2 count" of a
 *    linear head's target statistics);
 *  - fold = 1: the scaler folded into layer 0 (W0 * mult per column, b0 -
 *    (W0 * mult) shift) and no scaler tensors: a plain nn.Sequential on raw
 *    features, equal to the served model up to float rounding; metadata
 *    "streamlearn.scale" is "folded".
 * Without scaling, both are sl_safetensors_export's file. SL_ERR_NOMEM (out
 * as it was) or SL_OK. */
sl_err_t sl_safetensors_export_learner(const sl_learner_t *l, int fold, sl_buf_t *out);

/* Loads a weights file into a learner that has not trained yet, all or
 * nothing: the model's tensors as sl_safetensors_import reads them and, when
 * the file has scaler.* tensors (as sl_safetensors_export_learner writes
 * them), the scaler: its mode and statistics replace the learner's scaler
 * (the mean is scaler.shift and the variance 1 / scaler.mult^2, 0 where
 * scaler.var is 0, so the transform in force is the file's to the bit).
 * *has_scaler (may be NULL) says whether the file had one. Errors as
 * sl_safetensors_import's, plus SL_ERR_DECODE for scaler tensors that are
 * inconsistent (shapes, missing metadata, negative statistics) and
 * SL_ERR_STATE for a learner that has trained. */
sl_err_t sl_safetensors_import_learner(sl_learner_t *l, const uint8_t *buf, size_t len,
                                       int *has_scaler, char *errstr, size_t errstr_size);

/* Guesses the architecture of a safetensors buffer: dim from "0.weight",
 * hidden sizes and output count from the chain "0.weight", "2.weight", ...
 * (each layer's input must equal the previous layer's output; scaler.*
 * tensors are not part of it). More than one
 * output means softmax with that many classes. For one output, and for the
 * activation, the file's "streamlearn.model" / "streamlearn.activation"
 * metadata decides when present; otherwise cfg->head (must then be linear or
 * logistic) and cfg->activation keep the caller's values, so set them to the
 * defaults you want first. On error (SL_ERR_DECODE for a malformed file,
 * SL_ERR_MISMATCH for tensors that do not form such a chain, more than
 * SL_MAX_HIDDEN hidden layers) cfg is unchanged and errstr says why. */
sl_err_t sl_safetensors_infer_config(const uint8_t *buf, size_t len, sl_model_config_t *cfg,
                                     char *errstr, size_t errstr_size);

#endif
