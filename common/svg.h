/* svg.h - renders small inline-SVG line charts (the status page's loss curve). */
#ifndef SL_SVG_H
#define SL_SVG_H

#include <stddef.h>

#include "common/buf.h"
#include "common/err.h"

/* Largest width or height accepted, in pixels. */
#define SL_SVG_MAX_SIDE 4096

/* Appends a self-contained <svg> element (no scripts, styles or external
 * references) plotting values[0..n) left to right, scaled to the finite
 * values' range, with the range written at the left edge. Non-finite values
 * (NaN, infinities) are skipped and break the line: each run of finite
 * values is one <polyline>, a lone finite value one <circle>. n = 0 (values
 * may then be NULL) or no finite value draws the frame with "no data".
 * `title` (NULL = none) is XML-escaped; control characters are dropped.
 * Pass at most a few thousand values: every one becomes a point. Returns
 * SL_ERR_INVAL when width or height is outside 16..SL_SVG_MAX_SIDE,
 * SL_ERR_NOMEM on allocation failure; on failure `out` is left as it was. */
sl_err_t sl_svg_line_chart(sl_buf_t *out, const double *values, size_t n, int width, int height,
                           const char *title);

/* Appends s with &, <, >, " and ' replaced by entities and ASCII control
 * characters other than tab and newline dropped (XML 1.0 forbids them), so
 * it is safe in both element text and attribute values. SL_ERR_NOMEM leaves
 * `out` as it was. */
sl_err_t sl_svg_escape(sl_buf_t *out, const char *s);

#endif
