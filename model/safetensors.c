/* safetensors.c - model parameters to and from safetensors buffers. */

#include "safetensors.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors_internal.h"

#define ST_MAX_EXACT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact */

void sl_st_free(st_file_t *f) {
    cJSON_Delete(f->root);
    free(f->entries);
    memset(f, 0, sizeof *f);
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

float sl_st_le_f32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A JSON number that is a non-negative integer JSON can hold exactly. */
static int json_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item))
        return 0;
    double d = item->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_EXACT) || d != floor(d))
        return 0;
    *out = (uint64_t)d;
    return 1;
}

/* "[10, 64]"; names more dims than it prints with ", ...". */
static void fmt_shape(char *out, size_t size, const uint64_t *shape, size_t ndim) {
    size_t pos = 0;
    int n = snprintf(out, size, "[");
    for (size_t i = 0; i < ndim && i < ST_MAX_DIMS && n >= 0; i++) {
        pos += (size_t)n;
        if (pos >= size)
            return;
        n = snprintf(out + pos, size - pos, "%s%" PRIu64, i ? ", " : "", shape[i]);
    }
    if (n < 0)
        return;
    pos += (size_t)n;
    if (pos < size)
        snprintf(out + pos, size - pos, "%s]", ndim > ST_MAX_DIMS ? ", ..." : "");
}

static int cmp_begin(const void *a, const void *b) {
    const st_entry_t *x = *(const st_entry_t *const *)a, *y = *(const st_entry_t *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int cmp_name(const void *a, const void *b) {
    const st_entry_t *x = *(const st_entry_t *const *)a, *y = *(const st_entry_t *const *)b;
    return strcmp(x->name, y->name);
}

/* Reads one tensor entry's fields; checks offsets against the data section
 * and, for F32, that they hold exactly the shape's elements. */
static sl_err_t parse_entry(const cJSON *item, size_t data_len, st_entry_t *e, char *errstr,
                            size_t errstr_size) {
    e->name = item->string;
    if (!cJSON_IsObject(item)) {
        sl_errstr_set(errstr, errstr_size, "tensor \"%.64s\": header entry is not an object",
                      e->name);
        return SL_ERR_DECODE;
    }
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dtype)) {
        sl_errstr_set(errstr, errstr_size, "tensor \"%.64s\": \"dtype\" missing or not a string",
                      e->name);
        return SL_ERR_DECODE;
    }
    e->dtype = dtype->valuestring;
    if (!cJSON_IsArray(shape)) {
        sl_errstr_set(errstr, errstr_size, "tensor \"%.64s\": \"shape\" missing or not an array",
                      e->name);
        return SL_ERR_DECODE;
    }
    /* numel saturates: anything over data_len / 4 cannot fit anyway. */
    uint64_t numel = 1;
    int huge = 0;
    e->ndim = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t d;
        if (!json_u64(dim, &d)) {
            sl_errstr_set(errstr, errstr_size,
                          "tensor \"%.64s\": shape entry %zu is not a non-negative integer",
                          e->name, e->ndim);
            return SL_ERR_DECODE;
        }
        if (e->ndim < ST_MAX_DIMS)
            e->shape[e->ndim] = d;
        e->ndim++;
        if (d == 0)
            numel = 0, huge = 0;
        else if (numel != 0 && (huge || numel > UINT64_MAX / 4 / d))
            huge = 1;
        else if (numel != 0)
            numel *= d;
    }
    uint64_t b, en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_u64(cJSON_GetArrayItem(offs, 0), &b) || !json_u64(cJSON_GetArrayItem(offs, 1), &en)) {
        sl_errstr_set(errstr, errstr_size,
                      "tensor \"%.64s\": \"data_offsets\" must be two non-negative integers",
                      e->name);
        return SL_ERR_DECODE;
    }
    if (b > en || en > data_len) {
        sl_errstr_set(errstr, errstr_size,
                      "tensor \"%.64s\": data_offsets [%" PRIu64 ", %" PRIu64
                      "] out of range of the %zu-byte data section",
                      e->name, b, en, data_len);
        return SL_ERR_DECODE;
    }
    e->begin = b;
    e->end = en;
    if (strcmp(e->dtype, "F32") == 0 && (huge || numel * 4 != en - b)) {
        char sh[96];
        fmt_shape(sh, sizeof sh, e->shape, e->ndim);
        sl_errstr_set(errstr, errstr_size,
                      "tensor \"%.64s\": shape %s of F32 does not match data_offsets [%" PRIu64
                      ", %" PRIu64 "] (%" PRIu64 " bytes)",
                      e->name, sh, b, en, en - b);
        return SL_ERR_DECODE;
    }
    return SL_OK;
}

/* No two tensors may share a name or overlap in the data section. */
static sl_err_t check_layout(st_file_t *f, char *errstr, size_t errstr_size) {
    if (f->n < 2)
        return SL_OK;
    const st_entry_t **order = malloc(f->n * sizeof *order);
    if (!order) {
        sl_errstr_set(errstr, errstr_size, "out of memory for %zu header entries", f->n);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < f->n; i++)
        order[i] = &f->entries[i];
    sl_err_t err = SL_OK;
    qsort(order, f->n, sizeof *order, cmp_name);
    for (size_t i = 1; i < f->n && err == SL_OK; i++) {
        if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
            sl_errstr_set(errstr, errstr_size, "tensor \"%.64s\" appears twice in the header",
                          order[i]->name);
            err = SL_ERR_DECODE;
        }
    }
    qsort(order, f->n, sizeof *order, cmp_begin);
    for (size_t i = 1; i < f->n && err == SL_OK; i++) {
        if (order[i]->begin < order[i - 1]->end) {
            sl_errstr_set(errstr, errstr_size,
                          "tensors \"%.64s\" and \"%.64s\" overlap in the data section",
                          order[i - 1]->name, order[i]->name);
            err = SL_ERR_DECODE;
        }
    }
    free(order);
    return err;
}

/* Parses and validates everything the file says about itself (not yet what
 * a model needs). On error f is empty. */
sl_err_t sl_st_parse(const uint8_t *buf, size_t len, st_file_t *f, char *errstr,
                     size_t errstr_size) {
    memset(f, 0, sizeof *f);
    if (len < 8) {
        sl_errstr_set(errstr, errstr_size,
                      "not a safetensors file: %zu bytes, too short for the 8-byte header "
                      "length it starts with",
                      len);
        return SL_ERR_DECODE;
    }
    uint64_t hlen = le64(buf);
    if (hlen > len - 8) {
        sl_errstr_set(errstr, errstr_size,
                      "not a safetensors file: its first 8 bytes, read as the JSON header's "
                      "length, say %" PRIu64 " bytes, beyond the end of the file (%zu bytes)",
                      hlen, len);
        return SL_ERR_DECODE;
    }
    if (hlen > SL_SAFETENSORS_MAX_HEADER) {
        sl_errstr_set(errstr, errstr_size, "header length %" PRIu64 " is over the limit of %u",
                      hlen, SL_SAFETENSORS_MAX_HEADER);
        return SL_ERR_DECODE;
    }
    const char *json = (const char *)buf + 8;
    const char *end = NULL;
    f->root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!f->root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        sl_errstr_set(errstr, errstr_size,
                      "not a safetensors file: the header is not valid JSON (at byte %zu of "
                      "%" PRIu64 ")",
                      at, hlen);
        return SL_ERR_DECODE;
    }
    for (const char *p = end; p < json + hlen; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            sl_errstr_set(errstr, errstr_size,
                          "header has bytes after its JSON object (at byte %zu of %" PRIu64 ")",
                          (size_t)(p - json), hlen);
            sl_st_free(f);
            return SL_ERR_DECODE;
        }
    }
    if (!cJSON_IsObject(f->root)) {
        sl_errstr_set(errstr, errstr_size,
                      "not a safetensors file: the header is not a JSON object");
        sl_st_free(f);
        return SL_ERR_DECODE;
    }
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;

    size_t count = (size_t)cJSON_GetArraySize(f->root);
    f->entries = calloc(count ? count : 1, sizeof *f->entries);
    if (!f->entries) {
        sl_errstr_set(errstr, errstr_size, "out of memory for %zu header entries", count);
        sl_st_free(f);
        return SL_ERR_NOMEM;
    }
    sl_err_t err = SL_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, f->root) {
        if (strcmp(item->string, "__metadata__") == 0) {
            const cJSON *kv;
            if (!cJSON_IsObject(item)) {
                sl_errstr_set(errstr, errstr_size, "\"__metadata__\" is not an object");
                err = SL_ERR_DECODE;
                break;
            }
            cJSON_ArrayForEach(kv, item) {
                if (!cJSON_IsString(kv)) {
                    sl_errstr_set(errstr, errstr_size,
                                  "\"__metadata__\" value of \"%.64s\" is not a string",
                                  kv->string);
                    err = SL_ERR_DECODE;
                    break;
                }
            }
            if (err != SL_OK)
                break;
            f->meta = item;
            continue;
        }
        err = parse_entry(item, f->data_len, &f->entries[f->n], errstr, errstr_size);
        if (err != SL_OK)
            break;
        f->n++;
    }
    if (err == SL_OK)
        err = check_layout(f, errstr, errstr_size);
    if (err != SL_OK)
        sl_st_free(f);
    return err;
}

/* "{2i}.weight" / "{2i}.bias" -> layer i; 0 for any other name. */
static int parse_name(const char *name, uint32_t n_layers, uint32_t *layer, int *is_bias) {
    const char *p = name;
    uint64_t idx = 0;
    if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
        return 0;
    while (*p >= '0' && *p <= '9') {
        idx = idx * 10 + (uint64_t)(*p - '0');
        if (idx > 2u * SL_MAX_LAYERS)
            return 0;
        p++;
    }
    if (strcmp(p, ".weight") == 0)
        *is_bias = 0;
    else if (strcmp(p, ".bias") == 0)
        *is_bias = 1;
    else
        return 0;
    if (idx % 2 != 0 || idx / 2 >= n_layers)
        return 0;
    *layer = (uint32_t)(idx / 2);
    return 1;
}

/* Finds the entry named "{2i}.weight" or "{2i}.bias"; NULL when absent. */
static const st_entry_t *find_tensor(const st_file_t *f, uint32_t layer, int is_bias) {
    char name[32];
    snprintf(name, sizeof name, "%u.%s", 2 * layer, is_bias ? "bias" : "weight");
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0)
            return &f->entries[i];
    return NULL;
}

/* Checks dtype and shape of a tensor the model needs. */
sl_err_t sl_st_check_tensor(const st_entry_t *e, const char *name, const uint64_t *want,
                            size_t want_ndim, char *errstr, size_t errstr_size) {
    char have_s[96], want_s[96];
    fmt_shape(want_s, sizeof want_s, want, want_ndim);
    if (!e) {
        sl_errstr_set(errstr, errstr_size, "tensor \"%s\" (shape %s) is missing from the file",
                      name, want_s);
        return SL_ERR_MISMATCH;
    }
    if (strcmp(e->dtype, "F32") != 0) {
        sl_errstr_set(errstr, errstr_size,
                      "tensor \"%s\": dtype %.16s, but streamlearn reads only F32", name, e->dtype);
        return SL_ERR_MISMATCH;
    }
    int same = e->ndim == want_ndim;
    for (size_t i = 0; same && i < want_ndim; i++)
        same = e->shape[i] == want[i];
    if (!same) {
        fmt_shape(have_s, sizeof have_s, e->shape, e->ndim);
        sl_errstr_set(errstr, errstr_size, "tensor \"%s\": file has shape %s, model expects %s",
                      name, have_s, want_s);
        return SL_ERR_MISMATCH;
    }
    return SL_OK;
}

sl_err_t sl_st_check_finite(const st_file_t *f, const st_entry_t *e, char *errstr,
                            size_t errstr_size) {
    const uint8_t *p = f->data + e->begin;
    uint64_t n = (e->end - e->begin) / 4;
    for (uint64_t i = 0; i < n; i++) {
        float v = sl_st_le_f32(p + 4 * i);
        if (!isfinite(v)) {
            sl_errstr_set(errstr, errstr_size, "tensor \"%.64s\": element %" PRIu64 " is %s",
                          e->name, i, isnan(v) ? "NaN" : "infinite");
            return SL_ERR_DECODE;
        }
    }
    return SL_OK;
}

void sl_st_copy_tensor(const st_file_t *f, const st_entry_t *e, float *dst) {
    const uint8_t *p = f->data + e->begin;
    size_t n = (size_t)((e->end - e->begin) / 4);
    for (size_t i = 0; i < n; i++)
        dst[i] = sl_st_le_f32(p + 4 * i);
}

int sl_st_is_scaler(const char *name) {
    return strncmp(name, "scaler.", 7) == 0;
}

/* "0.weight, 0.bias" / "0.weight, 0.bias, 2.weight, 2.bias" / "0.weight .. 4.bias":
 * the tensors of n dense layers. */
static void layer_names(uint32_t n, char *out, size_t out_size) {
    if (n <= 2)
        snprintf(out, out_size, n == 1 ? "0.weight, 0.bias" : "0.weight, 0.bias, 2.weight, 2.bias");
    else
        snprintf(out, out_size, "0.weight .. %u.bias", 2 * (n - 1));
}

/* The message for a tensor the model has no place for: the model's layers
 * against the file's, when the file's names count layers; with_scaler when
 * scaler.* tensors have a place too. */
static void no_place_error(const st_file_t *f, const char *name, uint32_t n_layers, int with_scaler,
                           char *errstr, size_t errstr_size) {
    uint32_t file_layers = 0, layer;
    int is_bias;
    for (size_t i = 0; i < f->n; i++)
        if (parse_name(f->entries[i].name, SL_MAX_LAYERS, &layer, &is_bias) &&
            layer + 1 > file_layers)
            file_layers = layer + 1;
    char model_names[64], file_names[64];
    layer_names(n_layers, model_names, sizeof model_names);
    if (file_layers > n_layers) {
        layer_names(file_layers, file_names, sizeof file_names);
        sl_errstr_set(errstr, errstr_size,
                      "the file has %u dense layers (%s), the model %u (%s): tensor \"%.64s\" "
                      "has no place; check --hidden (one hidden layer per extra Linear)",
                      file_layers, file_names, n_layers, model_names, name);
    } else {
        sl_errstr_set(errstr, errstr_size,
                      "tensor \"%.64s\" in the file has no place in the model (%u dense "
                      "layer%s: %s%s)",
                      name, n_layers, n_layers == 1 ? "" : "s", model_names,
                      with_scaler ? ", scaler.*" : "");
    }
}

/* Finds the model's tensors in f and checks them (dtype, shape, finite
 * values) into found[2 * n_layers]; with skip_scaler, scaler.* tensors are
 * left for the caller. Nothing is written to the model. */
sl_err_t sl_st_check_weights(sl_model_t *m, const st_file_t *f, int skip_scaler,
                             const st_entry_t **found, char *errstr, size_t errstr_size) {
    uint32_t n_layers = sl_model_n_layers(m);
    for (uint32_t i = 0; i < 2 * n_layers; i++)
        found[i] = NULL;
    for (size_t i = 0; i < f->n; i++) {
        uint32_t layer;
        int is_bias;
        if (skip_scaler && sl_st_is_scaler(f->entries[i].name))
            continue;
        if (!parse_name(f->entries[i].name, n_layers, &layer, &is_bias)) {
            no_place_error(f, f->entries[i].name, n_layers, skip_scaler, errstr, errstr_size);
            return SL_ERR_MISMATCH;
        }
        found[2 * layer + (uint32_t)is_bias] = &f->entries[i];
    }
    sl_err_t err;
    for (uint32_t i = 0; i < n_layers; i++) {
        sl_layer_view_t v;
        sl_model_layer(m, i, &v);
        char name[32];
        uint64_t wshape[2] = {v.out, v.in}, bshape[1] = {v.out};
        snprintf(name, sizeof name, "%u.weight", 2 * i);
        if ((err = sl_st_check_tensor(found[2 * i], name, wshape, 2, errstr, errstr_size)) != SL_OK)
            return err;
        snprintf(name, sizeof name, "%u.bias", 2 * i);
        if ((err = sl_st_check_tensor(found[2 * i + 1], name, bshape, 1, errstr, errstr_size)) !=
            SL_OK)
            return err;
    }
    for (uint32_t i = 0; i < 2 * n_layers; i++)
        if ((err = sl_st_check_finite(f, found[i], errstr, errstr_size)) != SL_OK)
            return err;
    return SL_OK;
}

void sl_st_copy_weights(sl_model_t *m, const st_file_t *f, const st_entry_t **found) {
    float *params = sl_model_params(m);
    for (uint32_t i = 0; i < sl_model_n_layers(m); i++) {
        sl_layer_view_t v;
        sl_model_layer(m, i, &v);
        sl_st_copy_tensor(f, found[2 * i], params + v.weight_offset);
        sl_st_copy_tensor(f, found[2 * i + 1], params + v.bias_offset);
    }
}

sl_err_t sl_safetensors_import(sl_model_t *m, const uint8_t *buf, size_t len, char *errstr,
                               size_t errstr_size) {
    st_file_t f;
    sl_err_t err = sl_st_parse(buf, len, &f, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    const st_entry_t *found[2 * SL_MAX_LAYERS];
    err = sl_st_check_weights(m, &f, 0, found, errstr, errstr_size);
    if (err == SL_OK) /* every check passed: only now does the model change */
        sl_st_copy_weights(m, &f, found);
    sl_st_free(&f);
    return err;
}

/* The model's tensors in nn.Sequential order: {2i}.weight, {2i}.bias. */
size_t sl_st_layer_specs(const sl_model_t *m, const float *params, st_out_t *specs) {
    size_t n = 0;
    for (uint32_t i = 0; i < sl_model_n_layers(m); i++) {
        sl_layer_view_t v;
        sl_model_layer(m, i, &v);
        specs[n] = (st_out_t){.shape = {v.out, v.in}, .ndim = 2, .data = params + v.weight_offset};
        snprintf(specs[n++].name, sizeof specs[0].name, "%u.weight", 2 * i);
        specs[n] = (st_out_t){.shape = {v.out}, .ndim = 1, .data = params + v.bias_offset};
        snprintf(specs[n++].name, sizeof specs[0].name, "%u.bias", 2 * i);
    }
    return n;
}

/* The JSON header, unpadded: metadata (already JSON members, without braces)
 * then the tensors. Names and values are generated here and need no
 * escaping. */
static sl_err_t build_header(const char *meta, const st_out_t *specs, size_t n, sl_buf_t *h) {
    sl_err_t err = sl_buf_appendf(h, "{\"__metadata__\":{%s}", meta);
    uint64_t off = 0;
    for (size_t i = 0; err == SL_OK && i < n; i++) {
        uint64_t bytes =
            4 * (uint64_t)specs[i].shape[0] * (specs[i].ndim == 2 ? specs[i].shape[1] : 1);
        if (specs[i].ndim == 2)
            err = sl_buf_appendf(h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%u,%u],", specs[i].name,
                                 specs[i].shape[0], specs[i].shape[1]);
        else
            err = sl_buf_appendf(h, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%u],", specs[i].name,
                                 specs[i].shape[0]);
        if (err == SL_OK)
            err =
                sl_buf_appendf(h, "\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes);
        off += bytes;
    }
    if (err == SL_OK)
        err = sl_buf_append(h, "}", 1);
    return err;
}

static void put_f32s(uint8_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        dst[4 * i] = (uint8_t)u;
        dst[4 * i + 1] = (uint8_t)(u >> 8);
        dst[4 * i + 2] = (uint8_t)(u >> 16);
        dst[4 * i + 3] = (uint8_t)(u >> 24);
    }
}

/* Header length, header padded with spaces to 8 bytes, then the data. */
sl_err_t sl_st_write(const char *meta, const st_out_t *specs, size_t n, sl_buf_t *out) {
    sl_buf_t h = {0};
    sl_err_t err = build_header(meta, specs, n, &h);
    while (err == SL_OK && h.len % 8 != 0)
        err = sl_buf_append(&h, " ", 1);
    size_t floats = 0;
    for (size_t i = 0; i < n; i++)
        floats += (size_t)specs[i].shape[0] * (specs[i].ndim == 2 ? specs[i].shape[1] : 1);
    if (err == SL_OK && floats > (SIZE_MAX - 8 - h.len) / 4)
        err = SL_ERR_NOMEM;
    if (err == SL_OK)
        err = sl_buf_reserve(out, 8 + h.len + 4 * floats);
    if (err != SL_OK) {
        sl_buf_free(&h);
        return err;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
    sl_buf_append(out, len8, 8);
    sl_buf_append(out, h.data, h.len);
    sl_buf_free(&h);
    for (size_t i = 0; i < n; i++) {
        size_t count = (size_t)specs[i].shape[0] * (specs[i].ndim == 2 ? specs[i].shape[1] : 1);
        put_f32s(out->data + out->len, specs[i].data, count);
        out->len += 4 * count;
    }
    return SL_OK;
}

/* "format", "streamlearn.model", "streamlearn.hidden", "streamlearn.activation". */
sl_err_t sl_st_arch_meta(const sl_model_t *m, sl_buf_t *meta) {
    const sl_model_config_t *cfg = sl_model_config(m);
    char hidden[SL_MAX_HIDDEN * 12 + 1] = "";
    size_t pos = 0;
    for (uint32_t i = 0; i < cfg->n_hidden; i++)
        pos += (size_t)snprintf(hidden + pos, sizeof hidden - pos, "%s%u", i ? "," : "",
                                cfg->hidden[i]);
    return sl_buf_appendf(meta,
                          "\"format\":\"pt\",\"streamlearn.model\":\"%s\","
                          "\"streamlearn.hidden\":\"%s\",\"streamlearn.activation\":\"%s\"",
                          sl_model_head_name(cfg->head), hidden,
                          sl_model_act_name(cfg->activation));
}

sl_err_t sl_safetensors_export(const sl_model_t *m, sl_buf_t *out) {
    st_out_t specs[2 * SL_MAX_LAYERS];
    sl_buf_t meta = {0};
    sl_err_t err = sl_st_arch_meta(m, &meta);
    if (err == SL_OK) {
        /* sl_model_params takes a non-const model; here it is only read. */
        size_t n = sl_st_layer_specs(m, sl_model_params((sl_model_t *)m), specs);
        err = sl_st_write((const char *)meta.data, specs, n, out);
    }
    sl_buf_free(&meta);
    return err;
}

/* The metadata string `key`, or NULL. */
const char *sl_st_meta_str(const st_file_t *f, const char *key) {
    if (!f->meta)
        return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(f->meta, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const st_entry_t *sl_st_find(const st_file_t *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0)
            return &f->entries[i];
    return NULL;
}

/* Checks one tensor of the chain in infer_config: present, F32, `ndim` dims. */
static sl_err_t chain_tensor(const st_entry_t *e, uint32_t layer, int is_bias, size_t ndim,
                             char *errstr, size_t errstr_size) {
    if (!e) {
        sl_errstr_set(errstr, errstr_size, "tensor \"%u.%s\" is missing", 2 * layer,
                      is_bias ? "bias" : "weight");
        return SL_ERR_MISMATCH;
    }
    if (strcmp(e->dtype, "F32") != 0) {
        sl_errstr_set(errstr, errstr_size,
                      "tensor \"%s\": dtype %.16s, but streamlearn reads only F32", e->name,
                      e->dtype);
        return SL_ERR_MISMATCH;
    }
    if (e->ndim != ndim || e->shape[0] == 0 || e->shape[0] > UINT32_MAX ||
        (ndim == 2 && (e->shape[1] == 0 || e->shape[1] > UINT32_MAX))) {
        char sh[96];
        fmt_shape(sh, sizeof sh, e->shape, e->ndim);
        sl_errstr_set(errstr, errstr_size, "tensor \"%s\": shape %s is not a %s", e->name, sh,
                      ndim == 2 ? "non-empty [out, in] weight" : "non-empty [out] bias");
        return SL_ERR_MISMATCH;
    }
    return SL_OK;
}

sl_err_t sl_safetensors_infer_config(const uint8_t *buf, size_t len, sl_model_config_t *cfg,
                                     char *errstr, size_t errstr_size) {
    st_file_t f;
    sl_err_t err = sl_st_parse(buf, len, &f, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    sl_model_config_t c = *cfg;
    uint32_t n_layers = 0, prev_out = 0;
    for (uint32_t i = 0; i < SL_MAX_LAYERS + 1; i++) {
        const st_entry_t *w = find_tensor(&f, i, 0), *b = find_tensor(&f, i, 1);
        if (!w && !b && i > 0)
            break;
        if (i == SL_MAX_LAYERS) {
            sl_errstr_set(errstr, errstr_size, "more than %d hidden layers", SL_MAX_HIDDEN);
            err = SL_ERR_MISMATCH;
            goto done;
        }
        if ((err = chain_tensor(w, i, 0, 2, errstr, errstr_size)) != SL_OK ||
            (err = chain_tensor(b, i, 1, 1, errstr, errstr_size)) != SL_OK)
            goto done;
        if (b->shape[0] != w->shape[0] || (i > 0 && w->shape[1] != prev_out)) {
            sl_errstr_set(errstr, errstr_size,
                          "tensor \"%u.%s\" does not chain: expected %s %u, file has %" PRIu64,
                          2 * i, b->shape[0] != w->shape[0] ? "bias" : "weight",
                          b->shape[0] != w->shape[0] ? "length" : "input size",
                          b->shape[0] != w->shape[0] ? (uint32_t)w->shape[0] : prev_out,
                          b->shape[0] != w->shape[0] ? b->shape[0] : w->shape[1]);
            err = SL_ERR_MISMATCH;
            goto done;
        }
        if (i == 0)
            c.dim = (uint32_t)w->shape[1];
        else
            c.hidden[i - 1] = prev_out;
        prev_out = (uint32_t)w->shape[0];
        n_layers = i + 1;
    }
    size_t n_scaler = 0;
    for (size_t i = 0; i < f.n; i++)
        n_scaler += sl_st_is_scaler(f.entries[i].name);
    if (f.n - n_scaler != 2 * (size_t)n_layers) {
        for (size_t i = 0; i < f.n; i++) {
            uint32_t layer;
            int is_bias;
            if (!sl_st_is_scaler(f.entries[i].name) &&
                !parse_name(f.entries[i].name, n_layers, &layer, &is_bias)) {
                sl_errstr_set(
                    errstr, errstr_size,
                    "tensor \"%.64s\" is not part of a Linear chain 0.weight, 2.weight, ..",
                    f.entries[i].name);
                break;
            }
        }
        err = SL_ERR_MISMATCH;
        goto done;
    }
    c.n_hidden = n_layers - 1;
    for (uint32_t i = c.n_hidden; i < SL_MAX_HIDDEN; i++)
        c.hidden[i] = 0;
    const char *model = sl_st_meta_str(&f, "streamlearn.model");
    const char *act_name = sl_st_meta_str(&f, "streamlearn.activation");
    sl_head_t head;
    sl_act_t act;
    if (prev_out > 1) {
        c.head = SL_HEAD_SOFTMAX;
        c.classes = prev_out;
    } else {
        if (model && sl_model_head_parse(model, &head) == SL_OK)
            c.head = head;
        if (c.head == SL_HEAD_SOFTMAX) {
            sl_errstr_set(errstr, errstr_size,
                          "the last layer has one output: not a softmax model (K >= 2)");
            err = SL_ERR_MISMATCH;
            goto done;
        }
    }
    if (act_name && sl_model_act_parse(act_name, &act) == SL_OK)
        c.activation = act;
    *cfg = c;
done:
    sl_st_free(&f);
    return err;
}
