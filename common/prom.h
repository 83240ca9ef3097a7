/* prom.h - writes metrics in the Prometheus text exposition format 0.0.4. */
#ifndef SL_PROM_H
#define SL_PROM_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* The Content-Type a /metrics response carries. */
#define SL_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef enum sl_prom_type {
    SL_PROM_COUNTER, /* only goes up (restarts at 0 with the process) */
    SL_PROM_GAUGE,   /* goes up and down */
} sl_prom_type_t;

/* One label of a sample. Both strings are borrowed for the call. */
typedef struct sl_prom_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" */
    const char *value; /* any UTF-8; escaped on output */
} sl_prom_label_t;

/* Appends the "# HELP" and "# TYPE" lines of metric family `name`. Write it
 * once per family, before that family's samples, and keep the family's
 * samples together (the format requires both). `help` may hold any text:
 * backslashes and newlines are escaped. Returns SL_ERR_INVAL (errstr names
 * the metric) for a name outside [a-zA-Z_:][a-zA-Z0-9_:]*, SL_ERR_NOMEM on
 * allocation failure; on any failure `out` is left as it was. */
sl_err_t sl_prom_family(sl_buf_t *out, const char *name, sl_prom_type_t type, const char *help,
                        char *errstr, size_t errstr_size);

/* Appends one sample line `name{l1="v1",...} value`. Label values are escaped
 * (backslash, double quote, newline); NaN and infinities are written as NaN,
 * +Inf and -Inf; other values in the shortest form that reads back to the
 * same double. nlabels may be 0 (labels may then be NULL). Returns
 * SL_ERR_INVAL (errstr names the metric and the label) for a bad metric or
 * label name or a label name given twice, SL_ERR_NOMEM on allocation failure;
 * on any failure `out` is left as it was. */
sl_err_t sl_prom_sample(sl_buf_t *out, const char *name, const sl_prom_label_t *labels,
                        size_t nlabels, double value, char *errstr, size_t errstr_size);

/* Formats v as the format writes sample values ("NaN", "+Inf", "-Inf", or the
 * shortest round-tripping decimal) into out (at least 32 bytes). */
void sl_prom_format_value(double v, char *out, size_t out_size);

#endif
