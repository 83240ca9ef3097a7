/* test_torch_equivalence.c - `streamlearn replay` against the PyTorch loop:
 * every case under $SL_FIXTURES/torch (scripts/gen_torch_fixtures.py) must
 * give the same predictions and final weights to 1e-4 relative. Every case
 * names its optimizer; the test adds --scale off (the PyTorch-exact loop:
 * the default scales features online, which PyTorch's loop does not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <msgpack.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fileio.h"
#include "model/model.h"
#include "model/safetensors.h"

extern char **environ;

/* The README's promise ("From PyTorch and back"): |got - want| <= TOL * max(1, |want|). */
#define TOL 1e-4
#define MAX_FILE (64u << 20)
#define MAX_ARGS 64
#define MAX_REPORTED 8 /* differences listed per case before "... and N more" */

typedef struct tcase {
    char name[256];
    char dir[1400];
} tcase_t;

/* A growing report of everything that differed in one case. */
typedef struct report {
    char text[8192];
    size_t len;
    unsigned count;
} report_t;

static void report_add(report_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report_add(report_t *r, const char *fmt, ...) {
    r->count++;
    if (r->count > MAX_REPORTED || r->len >= sizeof r->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof r->text - r->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        r->len += (size_t)n;
    if (r->len < sizeof r->text - 1) {
        r->text[r->len++] = '\n';
        r->text[r->len] = 0;
    }
}

static int close_enough(double got, double want) {
    return fabs(got - want) <= TOL * fmax(1.0, fabs(want));
}

static uint8_t *read_or_fail(const char *path, size_t *len) {
    uint8_t *buf;
    char err[512];
    if (sl_fileio_read(path, MAX_FILE, &buf, len, err, sizeof err) != SL_OK)
        fail_msg("%s", err);
    return buf;
}

/* Runs argv[0] with argv, stdout and stderr to `log`; returns the exit
 * status, or -1 when it did not exit normally. */
static int run(char **argv, const char *log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("cannot start %s: %s", argv[0], strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail_msg("waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const msgpack_object *map_get(const msgpack_object *map, const char *key) {
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static int as_number(const msgpack_object *o, double *out) {
    if (!o)
        return 0;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 1;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 1;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 1;
    default: return 0;
    }
}

/* Same scalar id: nil, integer (any encoding) or string. */
static int same_id(const msgpack_object *got, const msgpack_object *want) {
    int got_nil = !got || got->type == MSGPACK_OBJECT_NIL;
    int want_nil = !want || want->type == MSGPACK_OBJECT_NIL;
    if (got_nil || want_nil)
        return got_nil == want_nil;
    if (want->type == MSGPACK_OBJECT_STR)
        return got->type == MSGPACK_OBJECT_STR && got->via.str.size == want->via.str.size &&
               memcmp(got->via.str.ptr, want->via.str.ptr, want->via.str.size) == 0;
    double a, b;
    return as_number(got, &a) && as_number(want, &b) && a == b;
}

static void id_text(const msgpack_object *id, char *out, size_t size) {
    if (!id || id->type == MSGPACK_OBJECT_NIL)
        snprintf(out, size, "nil");
    else if (id->type == MSGPACK_OBJECT_STR)
        snprintf(out, size, "\"%.*s\"", (int)id->via.str.size, id->via.str.ptr);
    else if (id->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        snprintf(out, size, "%llu", (unsigned long long)id->via.u64);
    else
        snprintf(out, size, "(type %d)", (int)id->type);
}

/* Compares one prediction map against the expected one. */
static void compare_prediction(report_t *r, size_t i, const msgpack_object *got,
                               const msgpack_object *want) {
    char id[64];
    id_text(map_get(want, "id"), id, sizeof id);
    if (got->type != MSGPACK_OBJECT_MAP) {
        report_add(r, "sample %zu (id %s): output is not a map (type %d)", i, id, (int)got->type);
        return;
    }
    const msgpack_object *err = map_get(got, "error");
    if (err && err->type == MSGPACK_OBJECT_STR) {
        report_add(r, "sample %zu (id %s): output has error \"%.*s\"", i, id,
                   (int)err->via.str.size, err->via.str.ptr);
        return;
    }
    if (!same_id(map_get(got, "id"), map_get(want, "id"))) {
        char gid[64];
        id_text(map_get(got, "id"), gid, sizeof gid);
        report_add(r, "sample %zu: id %s, expected %s", i, gid, id);
    }
    double gs, ws = -1, gv;
    as_number(map_get(want, "step"), &ws);
    if (!as_number(map_get(got, "step"), &gs))
        report_add(r, "sample %zu (id %s): step missing, expected %.0f", i, id, ws);
    else if (gs != ws)
        report_add(r, "sample %zu (id %s): step %.0f, expected %.0f", i, id, gs, ws);
    if (!as_number(map_get(got, "version"), &gv) || gv != 0)
        report_add(r, "sample %zu (id %s): version missing or not 0", i, id);

    double gp, wp;
    if (!as_number(map_get(got, "pred"), &gp) || !as_number(map_get(want, "pred"), &wp))
        report_add(r, "sample %zu (id %s): pred missing or not a number", i, id);
    else if (!close_enough(gp, wp))
        report_add(r, "sample %zu (id %s): pred %.9g, torch %.9g (diff %.3g)", i, id, gp, wp,
                   fabs(gp - wp));

    const msgpack_object *wpr = map_get(want, "proba"), *gpr = map_get(got, "proba");
    if (!wpr)
        return;
    if (!gpr || gpr->type != MSGPACK_OBJECT_ARRAY || gpr->via.array.size != wpr->via.array.size) {
        report_add(r, "sample %zu (id %s): proba missing or not %u numbers", i, id,
                   wpr->via.array.size);
        return;
    }
    for (uint32_t k = 0; k < wpr->via.array.size; k++) {
        double a, b;
        if (!as_number(&gpr->via.array.ptr[k], &a) || !as_number(&wpr->via.array.ptr[k], &b))
            report_add(r, "sample %zu (id %s): proba[%u] not a number", i, id, k);
        else if (!close_enough(a, b))
            report_add(r, "sample %zu (id %s): proba[%u] %.9g, torch %.9g (diff %.3g)", i, id, k, a,
                       b, fabs(a - b));
    }
}

static void compare_predictions(report_t *r, const char *got_path, const char *want_path) {
    size_t glen, wlen, goff = 0, woff = 0, i = 0;
    uint8_t *gbuf = read_or_fail(got_path, &glen), *wbuf = read_or_fail(want_path, &wlen);
    msgpack_unpacked g, w;
    msgpack_unpacked_init(&g);
    msgpack_unpacked_init(&w);
    for (;; i++) {
        int wrc = msgpack_unpack_next(&w, (const char *)wbuf, wlen, &woff);
        int grc = msgpack_unpack_next(&g, (const char *)gbuf, glen, &goff);
        if (wrc != MSGPACK_UNPACK_SUCCESS) {
            if (grc == MSGPACK_UNPACK_SUCCESS)
                report_add(r, "output has more than the %zu expected predictions", i);
            break;
        }
        if (grc != MSGPACK_UNPACK_SUCCESS) {
            report_add(r, "output ends after %zu predictions (%s); more expected", i,
                       grc == MSGPACK_UNPACK_CONTINUE ? "truncated" : "clean end or parse error");
            break;
        }
        compare_prediction(r, i, &g.data, &w.data);
    }
    msgpack_unpacked_destroy(&g);
    msgpack_unpacked_destroy(&w);
    free(gbuf);
    free(wbuf);
}

/* Loads a weights file into a model shaped by the expected file. */
static sl_model_t *load_weights(const sl_model_config_t *cfg, const char *path, report_t *r) {
    char err[512];
    size_t len;
    uint8_t *buf = read_or_fail(path, &len);
    sl_model_t *m = sl_model_new(cfg, err, sizeof err);
    if (!m)
        fail_msg("model from %s: %s", path, err);
    sl_err_t rc = sl_safetensors_import(m, buf, len, err, sizeof err);
    free(buf);
    if (rc != SL_OK) {
        report_add(r, "%s: %s", path, err);
        sl_model_destroy(m);
        return NULL;
    }
    return m;
}

static void compare_tensor(report_t *r, const char *name, const float *got, const float *want,
                           size_t n) {
    size_t worst = 0, bad = 0;
    double worst_rel = 0;
    for (size_t i = 0; i < n; i++) {
        double rel = fabs((double)got[i] - want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(rel <= TOL))
            bad++;
        if (!(rel <= worst_rel)) {
            worst_rel = rel;
            worst = i;
        }
    }
    if (bad)
        report_add(r,
                   "final tensor \"%s\": %zu of %zu elements differ; worst [%zu] %.9g, torch "
                   "%.9g (relative diff %.3g)",
                   name, bad, n, worst, got[worst], want[worst], worst_rel);
}

static void compare_weights(report_t *r, const char *got_path, const char *want_path) {
    size_t len;
    char err[512];
    uint8_t *buf = read_or_fail(want_path, &len);
    sl_model_config_t cfg = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_RELU};
    if (sl_safetensors_infer_config(buf, len, &cfg, err, sizeof err) != SL_OK)
        fail_msg("%s: %s", want_path, err);
    free(buf);
    sl_model_t *want = load_weights(&cfg, want_path, r);
    sl_model_t *got = want ? load_weights(&cfg, got_path, r) : NULL;
    for (uint32_t i = 0; got && i < sl_model_n_layers(want); i++) {
        sl_layer_view_t v;
        assert_int_equal(sl_model_layer(want, i, &v), SL_OK);
        char name[32];
        snprintf(name, sizeof name, "%u.weight", 2 * i);
        compare_tensor(r, name, sl_model_params(got) + v.weight_offset,
                       sl_model_params(want) + v.weight_offset, (size_t)v.out * v.in);
        snprintf(name, sizeof name, "%u.bias", 2 * i);
        compare_tensor(r, name, sl_model_params(got) + v.bias_offset,
                       sl_model_params(want) + v.bias_offset, v.out);
    }
    sl_model_destroy(got);
    sl_model_destroy(want);
}

/* args.txt: one line of flags separated by blanks (no quoting needed). */
static int read_args(const char *path, char *text, char *line, size_t size, char **argv, int max) {
    size_t len;
    uint8_t *buf = read_or_fail(path, &len);
    if (len >= size)
        fail_msg("%s: longer than %zu bytes", path, size - 1);
    memcpy(line, buf, len + 1);
    free(buf);
    snprintf(text, size, "%.*s", (int)strcspn(line, "\r\n"), line);
    int n = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
        if (n == max)
            fail_msg("%s: more than %d words", path, max);
        argv[n++] = tok;
    }
    return n;
}

static void rm_tree(const char *dir) {
    const char *files[] = {"out.msgpack", "final.safetensors", "replay.log"};
    char path[1500];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_case(void **state) {
    const tcase_t *c = *state;
    const char *bin = getenv("SL_BIN");
    if (!bin || access(bin, X_OK) != 0)
        fail_msg("SL_BIN (%s) is not an executable streamlearn binary", bin ? bin : "unset");
    char tmp[] = "/tmp/sl_torch_eq_XXXXXX";
    assert_non_null(mkdtemp(tmp));
    char args_path[1500], init[1500], input[1500], expected[1500], final[1500];
    char out[1500], save[1500], log[1500], line[4096], args_text[4096];
    snprintf(args_path, sizeof args_path, "%s/args.txt", c->dir);
    snprintf(init, sizeof init, "%s/init.safetensors", c->dir);
    snprintf(input, sizeof input, "%s/input.msgpack", c->dir);
    snprintf(expected, sizeof expected, "%s/expected.msgpack", c->dir);
    snprintf(final, sizeof final, "%s/final.safetensors", c->dir);
    snprintf(out, sizeof out, "%s/out.msgpack", tmp);
    snprintf(save, sizeof save, "%s/final.safetensors", tmp);
    snprintf(log, sizeof log, "%s/replay.log", tmp);

    char *argv[MAX_ARGS + 16];
    int argc = 0;
    argv[argc++] = (char *)bin;
    argv[argc++] = "replay";
    argc += read_args(args_path, args_text, line, sizeof line, argv + argc, MAX_ARGS);
    if (!strstr(args_text, "--optimizer "))
        fail_msg("%s: args.txt must name its --optimizer (the default is not torch's)", c->name);
    char *tail[] = {"--scale", "off",      "--init", init,     "--input",
                    input,     "--output", out,      "--save", save};
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
        argv[argc++] = tail[i];
    argv[argc] = NULL;

    int status = run(argv, log);
    if (status != 0) {
        size_t len = 0;
        uint8_t *text = NULL;
        char err[512];
        sl_fileio_read(log, 1 << 16, &text, &len, err, sizeof err);
        fail_msg("%s: streamlearn replay exited with %d; output kept in %s:\n%.2000s", c->name,
                 status, tmp, text ? (const char *)text : "");
    }
    report_t r = {.len = 0, .count = 0};
    r.text[0] = 0;
    compare_predictions(&r, out, expected);
    compare_weights(&r, save, final);
    if (r.count) {
        fail_msg("%s (%s): %u difference(s) from torch beyond %g relative; files kept in %s\n%s%s",
                 c->name, args_text, r.count, TOL, tmp, r.text,
                 r.count > MAX_REPORTED ? "...\n" : "");
    }
    rm_tree(tmp);
}

static int cmp_case(const void *a, const void *b) {
    return strcmp(((const tcase_t *)a)->name, ((const tcase_t *)b)->name);
}

int main(void) {
    const char *fixtures = getenv("SL_FIXTURES");
    char root[1024];
    snprintf(root, sizeof root, "%s/torch", fixtures ? fixtures : "tests/fixtures");
    DIR *d = opendir(root);
    if (!d) {
        fprintf(stderr, "cannot open %s (set SL_FIXTURES): %s\n", root, strerror(errno));
        return 1;
    }
    size_t n = 0, cap = 0;
    tcase_t *cases = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char args[1400];
        struct stat st;
        snprintf(args, sizeof args, "%s/%s/args.txt", root, e->d_name);
        if (stat(args, &st) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            tcase_t *nc = realloc(cases, cap * sizeof *cases);
            if (!nc)
                return 1;
            cases = nc;
        }
        snprintf(cases[n].name, sizeof cases[n].name, "%s", e->d_name);
        snprintf(cases[n].dir, sizeof cases[n].dir, "%s/%s", root, e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "no cases (directories with args.txt) under %s\n", root);
        free(cases);
        return 1;
    }
    qsort(cases, n, sizeof *cases, cmp_case);
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    if (!tests)
        return 1;
    for (size_t i = 0; i < n; i++) {
        tests[i].name = cases[i].name;
        tests[i].test_func = test_case;
        tests[i].initial_state = &cases[i];
    }
    int failed = _cmocka_run_group_tests("torch_equivalence", tests, n, NULL, NULL);
    free(tests);
    free(cases);
    return failed;
}
