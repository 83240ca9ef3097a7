/* test_svg.c - inline-SVG line charts: well-formed, escaped, scaled, gaps at NaN, edge sizes. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/svg.h"

static const char *text(sl_buf_t *b) {
    assert_int_equal(sl_buf_append(b, "", 1), SL_OK);
    b->len--;
    return (const char *)b->data;
}

/* A small XML well-formedness check: tags balance, attribute values are
 * quoted, '<' never appears inside them, and every '&' starts an entity. */
static int well_formed(const char *s) {
    const char *stack[64];
    size_t depth = 0;
    int saw_root = 0;
    for (const char *p = s; *p;) {
        if (*p == '&') {
            if (strncmp(p, "&amp;", 5) && strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) &&
                strncmp(p, "&quot;", 6) && strncmp(p, "&#39;", 5))
                return 0;
            p++;
            continue;
        }
        if (*p == '>')
            return 0;
        if (*p != '<') {
            if (depth == 0 && *p != '\n')
                return 0;
            p++;
            continue;
        }
        int closing = p[1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strspn(name, "abcdefghijklmnopqrstuvwxyz");
        if (len == 0)
            return 0;
        const char *q = name + len;
        while (*q && *q != '>') {
            if (*q == '"') {
                const char *end = strchr(q + 1, '"');
                if (!end || memchr(q + 1, '<', (size_t)(end - q - 1)))
                    return 0;
                q = end;
            } else if (*q == '<') {
                return 0;
            }
            q++;
        }
        if (!*q)
            return 0;
        int self_closing = q[-1] == '/';
        if (closing) {
            if (depth == 0 || strspn(stack[depth - 1], "abcdefghijklmnopqrstuvwxyz") != len ||
                strncmp(stack[depth - 1], name, len) != 0)
                return 0;
            depth--;
        } else if (!self_closing) {
            if (depth == 0 && saw_root)
                return 0;
            if (depth == 64)
                return 0;
            stack[depth++] = name;
            saw_root = 1;
        }
        p = q + 1;
    }
    return depth == 0 && saw_root;
}

static size_t count(const char *s, const char *needle) {
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Reads the points="x,y x,y ..." of the k-th polyline into xs/ys. */
static size_t polyline_points(const char *s, size_t k, double *xs, double *ys, size_t max) {
    const char *p = s;
    for (size_t i = 0; i <= k; i++) {
        p = strstr(p, "<polyline");
        assert_non_null(p);
        p++;
    }
    p = strstr(p, "points=\"");
    assert_non_null(p);
    p += 8;
    size_t n = 0;
    while (*p != '"') {
        char *end;
        assert_true(n < max);
        xs[n] = strtod(p, &end);
        assert_true(*end == ',');
        ys[n] = strtod(end + 1, &end);
        n++;
        p = *end == ' ' ? end + 1 : end;
    }
    return n;
}

static void test_checker_rejects_broken_markup(void **state) {
    (void)state;
    assert_true(well_formed("<svg a=\"1\"><g/></svg>\n"));
    assert_false(well_formed("<svg><g></svg>"));
    assert_false(well_formed("<svg>a & b</svg>"));
    assert_false(well_formed("<svg a=\"<\"></svg>"));
    assert_false(well_formed("<svg></svg><svg></svg>"));
}

static void test_series_is_one_polyline_scaled_to_range(void **state) {
    (void)state;
    sl_buf_t b = {0};
    double v[] = {4, 1, 3, 2};
    assert_int_equal(sl_svg_line_chart(&b, v, 4, 400, 120, "loss"), SL_OK);
    const char *s = text(&b);
    assert_true(well_formed(s));
    assert_true(strncmp(s, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    assert_non_null(strstr(s, "width=\"400\" height=\"120\""));
    assert_non_null(strstr(s, "<title>loss</title>"));
    assert_int_equal(count(s, "<polyline"), 1);
    double xs[8], ys[8];
    assert_int_equal(polyline_points(s, 0, xs, ys, 8), 4);
    for (int i = 0; i < 4; i++) {
        assert_true(xs[i] >= 0 && xs[i] <= 400 && ys[i] >= 0 && ys[i] <= 120);
        if (i > 0)
            assert_true(xs[i] > xs[i - 1]);
    }
    /* Higher values are drawn higher (smaller y): order 4 > 3 > 2 > 1. */
    assert_true(ys[0] < ys[2] && ys[2] < ys[3] && ys[3] < ys[1]);
    /* The extremes span the plot; the range labels say what they are. */
    assert_true(ys[1] - ys[0] > 80);
    assert_non_null(strstr(s, ">4</text>"));
    assert_non_null(strstr(s, ">1</text>"));
    /* No external assets. */
    assert_null(strstr(s, "href"));
    assert_null(strstr(s, "<script"));
    sl_buf_free(&b);
}

static void test_title_is_escaped(void **state) {
    (void)state;
    sl_buf_t b = {0};
    double v[] = {1, 2};
    assert_int_equal(sl_svg_line_chart(&b, v, 2, 100, 50, "<b>\"a\" & 'b'</b>\x01"), SL_OK);
    const char *s = text(&b);
    assert_true(well_formed(s));
    assert_non_null(strstr(s, "<title>&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;</title>"));
    assert_null(strstr(s, "\x01"));
    sl_buf_free(&b);
}

static void test_nan_breaks_the_line(void **state) {
    (void)state;
    sl_buf_t b = {0};
    double v[] = {1, 2, NAN, 3, 4, INFINITY, 5};
    assert_int_equal(sl_svg_line_chart(&b, v, 7, 300, 100, NULL), SL_OK);
    const char *s = text(&b);
    assert_true(well_formed(s));
    assert_null(strstr(s, "<title>"));
    assert_null(strstr(s, "nan"));
    assert_null(strstr(s, "inf"));
    assert_int_equal(count(s, "<polyline"), 2);
    assert_int_equal(count(s, "<circle"), 1);
    double xs[4], ys[4], xs2[4], ys2[4];
    assert_int_equal(polyline_points(s, 0, xs, ys, 4), 2);
    assert_int_equal(polyline_points(s, 1, xs2, ys2, 4), 2);
    /* The skipped index keeps its place on the x axis. */
    assert_true(xs2[0] - xs[1] > 1.5 * (xs[1] - xs[0]));
    sl_buf_free(&b);
}

static void test_empty_and_all_nan_say_no_data(void **state) {
    (void)state;
    sl_buf_t b = {0};
    assert_int_equal(sl_svg_line_chart(&b, NULL, 0, 200, 80, "t"), SL_OK);
    assert_true(well_formed(text(&b)));
    assert_non_null(strstr(text(&b), "no data"));
    sl_buf_reset(&b);
    double v[] = {NAN, NAN};
    assert_int_equal(sl_svg_line_chart(&b, v, 2, 200, 80, "t"), SL_OK);
    assert_true(well_formed(text(&b)));
    assert_non_null(strstr(text(&b), "no data"));
    assert_int_equal(count(text(&b), "<polyline"), 0);
    sl_buf_free(&b);
}

static void test_single_value_and_flat_series(void **state) {
    (void)state;
    sl_buf_t b = {0};
    double one = 0.25;
    assert_int_equal(sl_svg_line_chart(&b, &one, 1, 200, 80, "t"), SL_OK);
    assert_true(well_formed(text(&b)));
    assert_int_equal(count(text(&b), "<circle"), 1);
    assert_int_equal(count(text(&b), "<polyline"), 0);
    sl_buf_reset(&b);
    double flat[] = {2, 2, 2};
    assert_int_equal(sl_svg_line_chart(&b, flat, 3, 200, 80, "t"), SL_OK);
    double xs[4], ys[4];
    assert_int_equal(polyline_points(text(&b), 0, xs, ys, 4), 3);
    assert_true(ys[0] == ys[1] && ys[1] == ys[2]);
    assert_true(ys[0] > 0 && ys[0] < 80);
    sl_buf_free(&b);
}

static void test_bad_size_leaves_buffer(void **state) {
    (void)state;
    sl_buf_t b = {0};
    double v[] = {1, 2};
    assert_int_equal(sl_buf_append(&b, "x", 1), SL_OK);
    assert_int_equal(sl_svg_line_chart(&b, v, 2, 0, 80, "t"), SL_ERR_INVAL);
    assert_int_equal(sl_svg_line_chart(&b, v, 2, 100, -5, "t"), SL_ERR_INVAL);
    assert_int_equal(sl_svg_line_chart(&b, v, 2, SL_SVG_MAX_SIDE + 1, 80, "t"), SL_ERR_INVAL);
    assert_int_equal(b.len, 1);
    sl_buf_free(&b);
}

/* Appending to a buffer that already holds a page keeps what was there. */
static void test_appends(void **state) {
    (void)state;
    sl_buf_t b = {0};
    double v[] = {1, 2, 3};
    assert_int_equal(sl_buf_append(&b, "<p>", 3), SL_OK);
    assert_int_equal(sl_svg_line_chart(&b, v, 3, 100, 50, NULL), SL_OK);
    assert_true(strncmp(text(&b), "<p><svg ", 8) == 0);
    sl_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects_broken_markup),
        cmocka_unit_test(test_series_is_one_polyline_scaled_to_range),
        cmocka_unit_test(test_title_is_escaped),
        cmocka_unit_test(test_nan_breaks_the_line),
        cmocka_unit_test(test_empty_and_all_nan_say_no_data),
        cmocka_unit_test(test_single_value_and_flat_series),
        cmocka_unit_test(test_bad_size_leaves_buffer),
        cmocka_unit_test(test_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
