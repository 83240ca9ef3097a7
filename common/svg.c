/* svg.c - inline-SVG line chart renderer. */

#include "svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PAD_LEFT 56 /* room for the range labels */
#define PAD 8

sl_err_t sl_svg_escape(sl_buf_t *out, const char *s) {
    size_t len0 = out->len;
    sl_err_t err = SL_OK;
    for (const unsigned char *p = (const unsigned char *)s; *p && err == SL_OK; p++) {
        switch (*p) {
        case '&': err = sl_buf_append(out, "&amp;", 5); break;
        case '<': err = sl_buf_append(out, "&lt;", 4); break;
        case '>': err = sl_buf_append(out, "&gt;", 4); break;
        case '"': err = sl_buf_append(out, "&quot;", 6); break;
        case '\'': err = sl_buf_append(out, "&#39;", 5); break;
        default:
            if (*p >= 0x20 || *p == '\t' || *p == '\n')
                err = sl_buf_append(out, p, 1);
        }
    }
    if (err != SL_OK)
        out->len = len0;
    return err;
}

/* Range of the finite values; returns how many there are. */
static size_t finite_range(const double *v, size_t n, double *lo, double *hi) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            continue;
        if (count == 0 || v[i] < *lo)
            *lo = v[i];
        if (count == 0 || v[i] > *hi)
            *hi = v[i];
        count++;
    }
    return count;
}

typedef struct plot {
    double x0, dx, y0, h, lo, span;
} plot_t;

static double px(const plot_t *p, size_t i) {
    return p->x0 + p->dx * (double)i;
}

/* Larger values are higher up (smaller y); a flat series sits mid-height. */
static double py(const plot_t *p, double v) {
    if (p->span <= 0)
        return p->y0 + p->h / 2;
    return p->y0 + p->h * (1 - (v - p->lo) / p->span);
}

/* One <polyline> per run of finite values, one <circle> per lone value. */
static sl_err_t draw_runs(sl_buf_t *out, const double *v, size_t n, const plot_t *p) {
    sl_err_t err = SL_OK;
    size_t i = 0;
    while (i < n && err == SL_OK) {
        if (!isfinite(v[i])) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < n && isfinite(v[end]))
            end++;
        if (end - i == 1) {
            err =
                sl_buf_appendf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"#1f77b4\"/>\n",
                               px(p, i), py(p, v[i]));
        } else {
            err = sl_buf_appendf(out,
                                 "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" "
                                 "points=\"");
            for (size_t k = i; k < end && err == SL_OK; k++)
                err = sl_buf_appendf(out, "%s%.1f,%.1f", k == i ? "" : " ", px(p, k), py(p, v[k]));
            if (err == SL_OK)
                err = sl_buf_appendf(out, "\"/>\n");
        }
        i = end;
    }
    return err;
}

static sl_err_t render(sl_buf_t *out, const double *values, size_t n, int width, int height,
                       const char *title) {
    sl_err_t err =
        sl_buf_appendf(out,
                       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                       "viewBox=\"0 0 %d %d\" role=\"img\" font-family=\"sans-serif\" "
                       "font-size=\"11\">\n",
                       width, height, width, height);
    if (err == SL_OK && title) {
        err = sl_buf_appendf(out, "<title>");
        if (err == SL_OK)
            err = sl_svg_escape(out, title);
        if (err == SL_OK)
            err = sl_buf_appendf(out, "</title>\n");
    }
    if (err == SL_OK)
        err = sl_buf_appendf(out,
                             "<rect x=\"0.5\" y=\"0.5\" width=\"%d\" height=\"%d\" fill=\"#fff\" "
                             "stroke=\"#ccc\"/>\n",
                             width - 1, height - 1);
    double lo = 0, hi = 0;
    size_t nfinite = values ? finite_range(values, n, &lo, &hi) : 0;
    if (err != SL_OK)
        return err;
    if (nfinite == 0)
        return sl_buf_appendf(
            out,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n"
            "</svg>\n",
            width / 2, height / 2);
    plot_t p = {.y0 = PAD, .h = height - 2 * PAD, .lo = lo, .span = hi - lo};
    double plot_w = width - PAD_LEFT - PAD;
    p.x0 = n == 1 ? PAD_LEFT + plot_w / 2 : PAD_LEFT;
    p.dx = n > 1 ? plot_w / (double)(n - 1) : 0;
    err = sl_buf_appendf(out,
                         "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">%.4g</text>\n"
                         "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">%.4g</text>\n",
                         PAD_LEFT - 4, PAD + 10, hi, PAD_LEFT - 4, height - PAD, lo);
    if (err == SL_OK)
        err = draw_runs(out, values, n, &p);
    if (err == SL_OK)
        err = sl_buf_appendf(out, "</svg>\n");
    return err;
}

sl_err_t sl_svg_line_chart(sl_buf_t *out, const double *values, size_t n, int width, int height,
                           const char *title) {
    if (width < 16 || height < 16 || width > SL_SVG_MAX_SIDE || height > SL_SVG_MAX_SIDE)
        return SL_ERR_INVAL;
    size_t len0 = out->len;
    sl_err_t err = render(out, values, n, width, height, title);
    if (err != SL_OK)
        out->len = len0;
    return err;
}
