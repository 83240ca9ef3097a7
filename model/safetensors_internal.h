/* safetensors_internal.h - the safetensors reader's and writer's parts shared
 * by safetensors.c (the file format, a model's tensors) and
 * safetensors_learner.c (a learner's file: tensors and scaler) only. */
#ifndef SL_SAFETENSORS_INTERNAL_H
#define SL_SAFETENSORS_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "model/model.h"

#define ST_MAX_DIMS 8 /* dims kept for messages; our tensors have 1 or 2 */

/* One tensor entry of the header, validated against the file's bounds. */
typedef struct st_entry {
    const char *name;  /* owned by the cJSON tree */
    const char *dtype; /* owned by the cJSON tree */
    uint64_t shape[ST_MAX_DIMS];
    size_t ndim; /* may exceed ST_MAX_DIMS; only the first ST_MAX_DIMS are kept */
    uint64_t begin, end;
} st_entry_t;

typedef struct st_file {
    cJSON *root;
    const cJSON *meta; /* "__metadata__" or NULL */
    st_entry_t *entries;
    size_t n;
    const uint8_t *data; /* the data section */
    size_t data_len;
} st_file_t;

/* One tensor to write: its name, shape and F32 values. */
typedef struct st_out {
    char name[24];
    uint32_t shape[2];
    int ndim;
    const float *data;
} st_out_t;

/* Parses and validates everything the file says about itself (not yet what
 * a model needs). On error f is empty; otherwise free it with sl_st_free. */
sl_err_t sl_st_parse(const uint8_t *buf, size_t len, st_file_t *f, char *errstr,
                     size_t errstr_size);
void sl_st_free(st_file_t *f);

/* A little-endian float32. */
float sl_st_le_f32(const uint8_t *p);

/* Checks dtype (F32) and shape of a tensor the model needs; e NULL = missing. */
sl_err_t sl_st_check_tensor(const st_entry_t *e, const char *name, const uint64_t *want,
                            size_t want_ndim, char *errstr, size_t errstr_size);
/* SL_ERR_DECODE naming the element when a value is NaN or infinite. */
sl_err_t sl_st_check_finite(const st_file_t *f, const st_entry_t *e, char *errstr,
                            size_t errstr_size);
/* Copies a checked F32 tensor's values into dst. */
void sl_st_copy_tensor(const st_file_t *f, const st_entry_t *e, float *dst);

/* The metadata string `key`, or NULL; the entry named `name`, or NULL. */
const char *sl_st_meta_str(const st_file_t *f, const char *key);
const st_entry_t *sl_st_find(const st_file_t *f, const char *name);
/* 1 for a "scaler.*" name. */
int sl_st_is_scaler(const char *name);

/* Finds and checks the model's tensors into found[2 * n_layers] (nothing is
 * written to the model); with skip_scaler, scaler.* tensors are left for
 * the caller, else they have no place. sl_st_copy_weights then writes them. */
sl_err_t sl_st_check_weights(sl_model_t *m, const st_file_t *f, int skip_scaler,
                             const st_entry_t **found, char *errstr, size_t errstr_size);
void sl_st_copy_weights(sl_model_t *m, const st_file_t *f, const st_entry_t **found);

/* The model's tensors in nn.Sequential order into specs (2 per layer); the
 * count. */
size_t sl_st_layer_specs(const sl_model_t *m, const float *params, st_out_t *specs);
/* Appends the architecture metadata members ("format", "streamlearn.model", ...). */
sl_err_t sl_st_arch_meta(const sl_model_t *m, sl_buf_t *meta);
/* Appends a whole file: header length, header (metadata members `meta`, then
 * the tensors) padded to 8 bytes, data. SL_ERR_NOMEM leaves out as it was. */
sl_err_t sl_st_write(const char *meta, const st_out_t *specs, size_t n, sl_buf_t *out);

#endif
