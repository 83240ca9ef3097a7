/* export.c - writing a learner's weights as safetensors or ONNX. */

#include "export.h"

#include <string.h>
#include <strings.h>

#include "common/buf.h"
#include "common/fileio.h"
#include "model/safetensors.h"

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

sl_err_t sl_export_pick(const char *format, const char *path, const char *flag,
                        sl_export_format_t *out, char *errstr, size_t errstr_size) {
    int onnx_ext = ends_with(path, ".onnx"), st_ext = ends_with(path, ".safetensors");
    if (!format) {
        *out = onnx_ext ? SL_EXPORT_ONNX : SL_EXPORT_SAFETENSORS;
        return SL_OK;
    }
    if (strcmp(format, "onnx") != 0 && strcmp(format, "safetensors") != 0) {
        sl_errstr_set(errstr, errstr_size,
                      "--format: \"%s\" is not a format streamlearn writes (safetensors, onnx)",
                      format);
        return SL_ERR_INVAL;
    }
    sl_export_format_t f = strcmp(format, "onnx") == 0 ? SL_EXPORT_ONNX : SL_EXPORT_SAFETENSORS;
    if ((f == SL_EXPORT_ONNX && st_ext) || (f == SL_EXPORT_SAFETENSORS && onnx_ext)) {
        sl_errstr_set(errstr, errstr_size,
                      "--format %s contradicts %s %s: rename the file or drop --format", format,
                      flag, path);
        return SL_ERR_INVAL;
    }
    *out = f;
    return SL_OK;
}

/* The learner's feature scaling as the ONNX writer takes it: its input
 * transform (shift and mult, borrowed from the learner), or NULL when scaling
 * is off or folded into layer 0. */
static const sl_onnx_scaling_t *learner_scaling(const sl_learner_t *l, int fold,
                                                sl_onnx_scaling_t *sc) {
    if (fold || !sl_learner_input_transform(l, &sc->shift, &sc->mult))
        return NULL;
    return sc;
}

sl_err_t sl_export_check(sl_export_format_t fmt, const sl_model_config_t *cfg, int scaled,
                         char *errstr, size_t errstr_size) {
    if (fmt != SL_EXPORT_ONNX)
        return SL_OK;
    return sl_onnx_check(cfg, scaled, errstr, errstr_size);
}

/* The ONNX file of l: the scaling as nodes before layer 0, or folded into
 * layer 0 of a copy of the model. */
static sl_err_t onnx_bytes(sl_learner_t *l, int fold, const sl_onnx_meta_t *meta, sl_buf_t *buf,
                           char *errstr, size_t errstr_size) {
    const sl_model_t *m = sl_learner_model(l);
    const float *shift, *mult;
    if (!fold || !sl_learner_input_transform(l, &shift, &mult)) {
        sl_onnx_scaling_t sc;
        return sl_onnx_export(m, learner_scaling(l, fold, &sc), meta, buf, errstr, errstr_size);
    }
    sl_model_t *folded = sl_model_folded(m, shift, mult);
    if (!folded) {
        sl_errstr_set(errstr, errstr_size, "out of memory for the folded model");
        return SL_ERR_NOMEM;
    }
    sl_onnx_meta_t folded_meta = meta ? *meta : (sl_onnx_meta_t){0};
    folded_meta.scaling_folded = 1;
    sl_err_t err = sl_onnx_export(folded, NULL, &folded_meta, buf, errstr, errstr_size);
    sl_model_destroy(folded);
    return err;
}

sl_err_t sl_export_write(sl_learner_t *l, sl_export_format_t fmt, int fold,
                         const sl_onnx_meta_t *meta, const char *path, char *errstr,
                         size_t errstr_size) {
    sl_buf_t buf = {0};
    sl_err_t err;
    if (fmt == SL_EXPORT_ONNX) {
        err = onnx_bytes(l, fold, meta, &buf, errstr, errstr_size);
    } else {
        err = sl_safetensors_export_learner(l, fold, &buf);
        if (err != SL_OK)
            sl_errstr_set(errstr, errstr_size, "safetensors export: %s", sl_err_str(err));
    }
    if (err == SL_OK)
        err = sl_fileio_write_atomic(path, buf.data, buf.len, errstr, errstr_size);
    sl_buf_free(&buf);
    return err;
}

int sl_export_exit_code(sl_err_t err) {
    return err == SL_ERR_TOO_BIG || err == SL_ERR_INVAL ? 2 : 1;
}
