/* test_export.c - which format an export writes (--format, the file's
 * extension) and what cannot be written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "cli/export.h"

static sl_export_format_t pick_ok(const char *format, const char *path) {
    sl_export_format_t f = (sl_export_format_t)-1;
    char err[256];
    assert_int_equal(sl_export_pick(format, path, "--out", &f, err, sizeof err), SL_OK);
    return f;
}

static void test_from_extension(void **state) {
    (void)state;
    assert_int_equal(pick_ok(NULL, "m.onnx"), SL_EXPORT_ONNX);
    assert_int_equal(pick_ok(NULL, "/tmp/dir.x/M.ONNX"), SL_EXPORT_ONNX);
    assert_int_equal(pick_ok(NULL, "m.safetensors"), SL_EXPORT_SAFETENSORS);
    assert_int_equal(pick_ok(NULL, "weights.bin"), SL_EXPORT_SAFETENSORS);
    assert_int_equal(pick_ok(NULL, "onnx"), SL_EXPORT_SAFETENSORS);
    assert_int_equal(pick_ok(NULL, "m.onnx.tmp"), SL_EXPORT_SAFETENSORS);
}

static void test_explicit_format(void **state) {
    (void)state;
    assert_int_equal(pick_ok("onnx", "model.bin"), SL_EXPORT_ONNX);
    assert_int_equal(pick_ok("onnx", "model.onnx"), SL_EXPORT_ONNX);
    assert_int_equal(pick_ok("safetensors", "model"), SL_EXPORT_SAFETENSORS);
}

static void test_refused(void **state) {
    (void)state;
    sl_export_format_t f = SL_EXPORT_SAFETENSORS;
    char err[256] = "";
    assert_int_equal(sl_export_pick("safetensors", "m.onnx", "--out", &f, err, sizeof err),
                     SL_ERR_INVAL);
    assert_non_null(strstr(err, "--out m.onnx"));
    assert_int_equal(sl_export_pick("onnx", "m.safetensors", "--save", &f, err, sizeof err),
                     SL_ERR_INVAL);
    assert_non_null(strstr(err, "--save m.safetensors"));
    assert_int_equal(sl_export_pick("torchscript", "m.pt", "--out", &f, err, sizeof err),
                     SL_ERR_INVAL);
    assert_non_null(strstr(err, "torchscript"));
    assert_int_equal(f, SL_EXPORT_SAFETENSORS); /* untouched */
    assert_int_equal(sl_export_exit_code(SL_ERR_INVAL), 2);
}

static void test_size_check(void **state) {
    (void)state;
    char err[256] = "";
    sl_model_config_t big = {.head = SL_HEAD_LINEAR, .dim = 1u << 26, .n_hidden = 1, .hidden = {9}};
    assert_int_equal(sl_export_check(SL_EXPORT_ONNX, &big, 0, err, sizeof err), SL_ERR_TOO_BIG);
    assert_int_equal(sl_export_exit_code(SL_ERR_TOO_BIG), 2);
    assert_int_equal(sl_export_check(SL_EXPORT_SAFETENSORS, &big, 0, err, sizeof err), SL_OK);
    assert_int_equal(sl_export_exit_code(SL_ERR_IO), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_extension),
        cmocka_unit_test(test_explicit_format),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_size_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
