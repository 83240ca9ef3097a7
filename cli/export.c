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

/* The learner's feature scaling as the ONNX writer takes it: NULL while
 * learners have none. When the model gains online scaling, its effective
 * per-feature shift and mult arrays go here (and nowhere else). */
static const sl_onnx_scaling_t *learner_scaling(sl_learner_t *l) {
    (void)l;
    return NULL;
}

sl_err_t sl_export_check(sl_export_format_t fmt, const sl_model_config_t *cfg, int scaled,
                         char *errstr, size_t errstr_size) {
    if (fmt != SL_EXPORT_ONNX)
        return SL_OK;
    return sl_onnx_check(cfg, scaled, errstr, errstr_size);
}

sl_err_t sl_export_write(sl_learner_t *l, sl_export_format_t fmt, const sl_onnx_meta_t *meta,
                         const char *path, char *errstr, size_t errstr_size) {
    sl_buf_t buf = {0};
    const sl_model_t *m = sl_learner_model(l);
    sl_err_t err;
    if (fmt == SL_EXPORT_ONNX) {
        err = sl_onnx_export(m, learner_scaling(l), meta, &buf, errstr, errstr_size);
    } else {
        err = sl_safetensors_export(m, &buf);
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
