/* prom.c - Prometheus text exposition format 0.0.4 writer. */

#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_name_char(char c, int first, int colon_ok) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return 1;
    if (colon_ok && c == ':')
        return 1;
    return !first && c >= '0' && c <= '9';
}

static int valid_name(const char *name, int colon_ok) {
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++)
        if (!is_name_char(*p, p == name, colon_ok))
            return 0;
    return 1;
}

static int valid_metric_name(const char *name) {
    return valid_name(name, 1);
}

/* Label names starting with "__" are reserved for Prometheus itself. */
static int valid_label_name(const char *name) {
    return valid_name(name, 0) && strncmp(name, "__", 2) != 0;
}

static sl_err_t put(sl_buf_t *out, const char *s) {
    return sl_buf_append(out, s, strlen(s));
}

/* Appends s with backslash and newline escaped, and double quote too when
 * `quote` (label values escape it, HELP text does not). */
static sl_err_t put_escaped(sl_buf_t *out, const char *s, int quote) {
    sl_err_t err = SL_OK;
    const char *run = s;
    for (const char *p = s; *p && err == SL_OK; p++) {
        const char *esc = NULL;
        if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (quote && *p == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        err = sl_buf_append(out, run, (size_t)(p - run));
        if (err == SL_OK)
            err = put(out, esc);
        run = p + 1;
    }
    if (err == SL_OK)
        err = put(out, run);
    return err;
}

void sl_prom_format_value(double v, char *out, size_t out_size) {
    if (isnan(v)) {
        snprintf(out, out_size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, out_size, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* The shortest of %.15g..%.17g that parses back to v exactly. */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, out_size, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

sl_err_t sl_prom_family(sl_buf_t *out, const char *name, sl_prom_type_t type, const char *help,
                        char *errstr, size_t errstr_size) {
    if (!valid_metric_name(name)) {
        sl_errstr_set(errstr, errstr_size, "prometheus family: invalid metric name \"%s\"",
                      name ? name : "(null)");
        return SL_ERR_INVAL;
    }
    size_t len0 = out->len;
    sl_err_t err = put(out, "# HELP ");
    if (err == SL_OK)
        err = put(out, name);
    if (err == SL_OK)
        err = put(out, " ");
    if (err == SL_OK)
        err = put_escaped(out, help ? help : "", 0);
    if (err == SL_OK)
        err = put(out, "\n# TYPE ");
    if (err == SL_OK)
        err = put(out, name);
    if (err == SL_OK)
        err = put(out, type == SL_PROM_COUNTER ? " counter\n" : " gauge\n");
    if (err != SL_OK) {
        out->len = len0;
        sl_errstr_set(errstr, errstr_size, "prometheus family %s: out of memory", name);
    }
    return err;
}

/* Checks every label name and that none repeats. */
static sl_err_t check_labels(const char *name, const sl_prom_label_t *labels, size_t nlabels,
                             char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < nlabels; i++) {
        if (!valid_label_name(labels[i].name) || !labels[i].value) {
            sl_errstr_set(errstr, errstr_size,
                          "prometheus sample %s: invalid label name \"%s\" or missing value", name,
                          labels[i].name ? labels[i].name : "(null)");
            return SL_ERR_INVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(labels[i].name, labels[j].name) == 0) {
                sl_errstr_set(errstr, errstr_size, "prometheus sample %s: label \"%s\" given twice",
                              name, labels[i].name);
                return SL_ERR_INVAL;
            }
        }
    }
    return SL_OK;
}

sl_err_t sl_prom_sample(sl_buf_t *out, const char *name, const sl_prom_label_t *labels,
                        size_t nlabels, double value, char *errstr, size_t errstr_size) {
    if (!valid_metric_name(name)) {
        sl_errstr_set(errstr, errstr_size, "prometheus sample: invalid metric name \"%s\"",
                      name ? name : "(null)");
        return SL_ERR_INVAL;
    }
    sl_err_t err = check_labels(name, labels, nlabels, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    size_t len0 = out->len;
    err = put(out, name);
    for (size_t i = 0; i < nlabels && err == SL_OK; i++) {
        err = put(out, i == 0 ? "{" : ",");
        if (err == SL_OK)
            err = put(out, labels[i].name);
        if (err == SL_OK)
            err = put(out, "=\"");
        if (err == SL_OK)
            err = put_escaped(out, labels[i].value, 1);
        if (err == SL_OK)
            err = put(out, "\"");
    }
    if (err == SL_OK && nlabels > 0)
        err = put(out, "}");
    char num[40];
    sl_prom_format_value(value, num, sizeof num);
    if (err == SL_OK)
        err = put(out, " ");
    if (err == SL_OK)
        err = put(out, num);
    if (err == SL_OK)
        err = put(out, "\n");
    if (err != SL_OK) {
        out->len = len0;
        sl_errstr_set(errstr, errstr_size, "prometheus sample %s: out of memory", name);
    }
    return err;
}
