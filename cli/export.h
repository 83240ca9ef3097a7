/* export.h - a learner's weights to a file, as safetensors or ONNX (format
 * from a --format value or the file's extension): what `models export` and
 * `replay --save` share. */
#ifndef SL_EXPORT_H
#define SL_EXPORT_H

#include <stddef.h>

#include "common/err.h"
#include "model/learner.h"
#include "model/onnx.h"

typedef enum sl_export_format {
    SL_EXPORT_SAFETENSORS = 0,
    SL_EXPORT_ONNX = 1,
} sl_export_format_t;

/* The format of a file written to `path`: `format` is the --format value
 * ("safetensors" or "onnx") or NULL; without one, a path ending in ".onnx"
 * (any case) is ONNX and anything else safetensors. `flag` names the path's
 * flag in messages ("--out", "--save"). Returns SL_ERR_INVAL (a usage error)
 * with errstr for an unknown format or one that contradicts the extension
 * (--format safetensors with a .onnx file, or onnx with .safetensors). */
sl_err_t sl_export_pick(const char *format, const char *path, const char *flag,
                        sl_export_format_t *out, char *errstr, size_t errstr_size);

/* Checks from the architecture alone, before the work that leads to the
 * export (replay checks before it reads its input), that a model of config
 * cfg - with feature scaling nodes when `scaled` (scaling on and not
 * folded) - can be written in fmt.
 * SL_ERR_TOO_BIG (a usage error: ask for another format) with errstr when it
 * cannot. sl_export_write checks again, exactly. */
sl_err_t sl_export_check(sl_export_format_t fmt, const sl_model_config_t *cfg, int scaled,
                         char *errstr, size_t errstr_size);

/* Encodes l's model in fmt and writes the file atomically (the old file
 * stays whole until the new one is complete). With feature scaling on, the
 * scaler goes with it: safetensors scaler.* tensors
 * (sl_safetensors_export_learner) or ONNX Sub/Mul nodes before layer 0; with
 * `fold`, folded into layer 0 instead (a model on raw features, equal up to
 * float rounding). ONNX carries `meta` (may be NULL) as metadata. l is only
 * read. Errors: SL_ERR_TOO_BIG (the model cannot be written in fmt),
 * SL_ERR_IO (errstr names the path and the system's reason), SL_ERR_NOMEM. */
sl_err_t sl_export_write(sl_learner_t *l, sl_export_format_t fmt, int fold,
                         const sl_onnx_meta_t *meta, const char *path, char *errstr,
                         size_t errstr_size);

/* The exit status for an error of the calls above: 2 for a request that
 * cannot be met as given (bad format, too big for it), 1 otherwise. */
int sl_export_exit_code(sl_err_t err);

#endif
