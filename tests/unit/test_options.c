/* test_options.c - option resolution: flags > environment > INI file > defaults,
 * errors naming the key, one INI file shared by every command, boolean flag
 * syntax, renamed flags, choices parsed by name, librdkafka pass-through,
 * secret redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/gen.h"
#include "cli/options.h"
#include "common/log.h"
#include "model/model.h"
#include "model/optim.h"
#include "model/scaler.h"

static char g_ini[64];

/* Writes text to a fresh temp INI file whose path is g_ini. */
static void write_ini(const char *text) {
    snprintf(g_ini, sizeof g_ini, "/tmp/sl-test-opts-XXXXXX");
    int fd = mkstemp(g_ini);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static int teardown(void **state) {
    (void)state;
    if (g_ini[0])
        unlink(g_ini);
    g_ini[0] = '\0';
    unsetenv("STREAMLEARN_DIM");
    unsetenv("STREAMLEARN_LR");
    unsetenv("STREAMLEARN_BATCH_SIZE");
    unsetenv("STREAMLEARN_KAFKA_SASL_PASSWORD");
    unsetenv("STREAMLEARN_KAFKA_CLIENT_ID");
    unsetenv("STREAMLEARN_BROKERS");
    return 0;
}

static sl_opts_t *parse(unsigned cmd, int argc, char **argv, char *err, size_t n) {
    int help = 0;
    sl_opts_t *o = sl_opts_parse(cmd, argc, argv, &help, err, n);
    if (o)
        assert_int_equal(help, 0);
    return o;
}

static uint64_t get_uint(sl_opts_t *o, const char *name) {
    uint64_t v = 0;
    char err[256];
    assert_int_equal(sl_opts_uint(o, name, 0, UINT64_MAX, &v, err, sizeof err), SL_OK);
    return v;
}

static void test_defaults_apply_when_nothing_given(void **state) {
    (void)state;
    char err[256];
    char *argv[] = {NULL};
    sl_opts_t *o = parse(SL_CMD_REPLAY, 0, argv, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(get_uint(o, "batch-size"), 64);
    assert_string_equal(sl_opts_origin(o, "batch-size"), "default");
    assert_false(sl_opts_isset(o, "dim"));
    uint64_t v = 7;
    assert_int_equal(sl_opts_uint(o, "dim", 1, 10, &v, err, sizeof err), SL_ERR_EOF);
    assert_int_equal(v, 7);
    sl_opts_destroy(o);
}

static void test_flag_beats_env_beats_file(void **state) {
    (void)state;
    char err[256];
    write_ini("[model]\ndim = 3\nbatch-size = 5\nlr = 0.5\n");
    setenv("STREAMLEARN_DIM", "4", 1);
    setenv("STREAMLEARN_LR", "0.25", 1);
    char *argv[] = {"-c", g_ini, "--dim", "6"};
    sl_opts_t *o = parse(SL_CMD_REPLAY, 4, argv, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(get_uint(o, "dim"), 6); /* flag over env and file */
    assert_string_equal(sl_opts_origin(o, "dim"), "--dim");
    double lr = 0;
    assert_int_equal(sl_opts_double(o, "lr", 0, 1, &lr, err, sizeof err), SL_OK);
    assert_true(lr == 0.25); /* env over file */
    assert_string_equal(sl_opts_origin(o, "lr"), "STREAMLEARN_LR");
    assert_int_equal(get_uint(o, "batch-size"), 5); /* file over default */
    assert_string_equal(sl_opts_origin(o, "batch-size"), "config key batch-size");
    sl_opts_destroy(o);
}

static void test_equals_form_and_bool_flags(void **state) {
    (void)state;
    char err[256];
    char *argv[] = {"--dim=9", "--nesterov", "--model", "softmax"};
    sl_opts_t *o = parse(SL_CMD_REPLAY, 4, argv, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(get_uint(o, "dim"), 9);
    int b = 0;
    const char *c = NULL;
    assert_int_equal(sl_opts_bool(o, "nesterov", &b, err, sizeof err), SL_OK);
    assert_int_equal(b, 1);
    assert_int_equal(sl_opts_choice(o, "model", &c, err, sizeof err), SL_OK);
    assert_string_equal(c, "softmax");
    sl_opts_destroy(o);

    /* --flag=false turns a boolean off; a choice is spelled as in the table */
    char *argv2[] = {"--nesterov=false", "--model=LOGISTIC"};
    o = parse(SL_CMD_REPLAY, 2, argv2, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(sl_opts_bool(o, "nesterov", &b, err, sizeof err), SL_OK);
    assert_int_equal(b, 0);
    assert_int_equal(sl_opts_choice(o, "model", &c, err, sizeof err), SL_OK);
    assert_string_equal(c, "logistic");
    sl_opts_destroy(o);
}

static void test_bool_flag_refuses_a_separate_value(void **state) {
    (void)state;
    char err[256] = "";
    char *argv[] = {"list", "--json", "false"};
    assert_null(parse(SL_CMD_MODELS, 3, argv, err, sizeof err));
    assert_non_null(strstr(err, "--json takes no separate value"));
    assert_non_null(strstr(err, "--json=false"));
    /* a number after a boolean flag stays a positional argument (models show --json 3) */
    char *argv2[] = {"show", "--json", "3"};
    sl_opts_t *o = parse(SL_CMD_MODELS, 3, argv2, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(sl_opts_npositional(o), 2);
    assert_string_equal(sl_opts_positional(o, 1), "3");
    sl_opts_destroy(o);
}

static void test_unknown_flag_is_named(void **state) {
    (void)state;
    char err[256] = "";
    char *argv[] = {"--dimm", "3"};
    assert_null(parse(SL_CMD_REPLAY, 2, argv, err, sizeof err));
    assert_non_null(strstr(err, "--dimm"));
    /* a run-only flag is unknown to replay */
    char *argv2[] = {"--group", "g"};
    assert_null(parse(SL_CMD_REPLAY, 2, argv2, err, sizeof err));
    assert_non_null(strstr(err, "--group"));
}

static void test_missing_value_is_named(void **state) {
    (void)state;
    char err[256] = "";
    char *argv[] = {"--dim"};
    assert_null(parse(SL_CMD_REPLAY, 1, argv, err, sizeof err));
    assert_non_null(strstr(err, "--dim"));
    assert_non_null(strstr(err, "missing value"));
}

static void test_bad_values_name_their_origin(void **state) {
    (void)state;
    char err[256] = "";
    setenv("STREAMLEARN_BATCH_SIZE", "12x", 1);
    char *argv[] = {"--lr", "fast", "--model", "tree"};
    sl_opts_t *o = parse(SL_CMD_REPLAY, 4, argv, err, sizeof err);
    assert_non_null(o);
    uint64_t u;
    double d;
    const char *c;
    assert_int_equal(sl_opts_uint(o, "batch-size", 1, 100, &u, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "STREAMLEARN_BATCH_SIZE"));
    assert_int_equal(sl_opts_double(o, "lr", 0, 1, &d, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "--lr"));
    assert_non_null(strstr(err, "fast"));
    assert_int_equal(sl_opts_choice(o, "model", &c, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "linear|logistic|softmax"));
    sl_opts_destroy(o);

    char *argv2[] = {"--dim", "-3"};
    o = parse(SL_CMD_REPLAY, 2, argv2, err, sizeof err);
    assert_int_equal(sl_opts_uint(o, "dim", 1, 100, &u, err, sizeof err), SL_ERR_INVAL);
    char *argv3[] = {"--dim", "300"};
    sl_opts_destroy(o);
    o = parse(SL_CMD_REPLAY, 2, argv3, err, sizeof err);
    assert_int_equal(sl_opts_uint(o, "dim", 1, 100, &u, err, sizeof err), SL_ERR_INVAL);
    assert_non_null(strstr(err, "out of range"));
    sl_opts_destroy(o);

    char *argv4[] = {"--lr", "nan"};
    o = parse(SL_CMD_REPLAY, 2, argv4, err, sizeof err);
    assert_int_equal(sl_opts_double(o, "lr", 0, 1, &d, err, sizeof err), SL_ERR_INVAL);
    sl_opts_destroy(o);
}

static void test_ini_unknown_key_and_syntax_error(void **state) {
    (void)state;
    char err[512] = "";
    write_ini("[model]\ndimension = 3\n");
    char *argv[] = {"-c", g_ini};
    assert_null(parse(SL_CMD_REPLAY, 2, argv, err, sizeof err));
    assert_non_null(strstr(err, "dimension"));
    assert_non_null(strstr(err, g_ini));
    teardown(NULL);

    write_ini("dim = 3\nthis line has no equals sign\n");
    char *argv2[] = {"-c", g_ini};
    assert_null(parse(SL_CMD_REPLAY, 2, argv2, err, sizeof err));
    assert_non_null(strstr(err, ":2:"));

    char *argv3[] = {"-c", "/nonexistent/streamlearn.ini"};
    assert_null(parse(SL_CMD_REPLAY, 2, argv3, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/streamlearn.ini"));
}

/* One file for `run`, `models`, `replay` and `dev-kafka`: each takes its own
 * keys and skips the others'; a key no command has is still an error. */
static void test_ini_shared_between_commands(void **state) {
    (void)state;
    char err[512] = "";
    write_ini("brokers = k:9092\ninput-topic = in\nmodel-name = m\ndim = 4\n"
              "input = s.msgpack\njson = true\n[kafka]\nacks = all\n");
    char *argv[] = {"-c", g_ini};
    static const unsigned cmds[] = {SL_CMD_RUN, SL_CMD_REPLAY, SL_CMD_MODELS, SL_CMD_DEVKAFKA,
                                    SL_CMD_GEN};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        sl_opts_t *o = parse(cmds[i], 2, argv, err, sizeof err);
        if (!o)
            fail_msg("command %u refused the shared file: %s", cmds[i], err);
        sl_opts_destroy(o);
    }
    sl_opts_t *o = parse(SL_CMD_MODELS, 2, argv, err, sizeof err);
    const char *name = NULL;
    assert_int_equal(sl_opts_str(o, "model-name", &name), SL_OK);
    assert_string_equal(name, "m");
    assert_int_equal(sl_opts_setup_logging(o, err, sizeof err), SL_OK);
    sl_opts_destroy(o);
    /* dev-kafka's count is not the bootstrap list of the file or the environment */
    setenv("STREAMLEARN_BROKERS", "k:9092", 1);
    o = parse(SL_CMD_DEVKAFKA, 2, argv, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(get_uint(o, "broker-count"), 1);
    sl_opts_destroy(o);
    teardown(NULL);

    write_ini("dim = 4\nbrokerz = k:9092\n");
    char *argv2[] = {"-c", g_ini};
    assert_null(parse(SL_CMD_RUN, 2, argv2, err, sizeof err));
    assert_non_null(strstr(err, "unknown key \"brokerz\""));
}

static void test_renamed_flag_still_works_as_a_flag(void **state) {
    (void)state;
    char err[256] = "";
    char *argv[] = {"--brokers", "3"};
    sl_opts_t *o = parse(SL_CMD_DEVKAFKA, 2, argv, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(get_uint(o, "broker-count"), 3);
    sl_opts_destroy(o);
    char *argv2[] = {"--broker-count=2"};
    o = parse(SL_CMD_DEVKAFKA, 1, argv2, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(get_uint(o, "broker-count"), 2);
    sl_opts_destroy(o);
    /* models has no --brokers: it never talks to Kafka */
    char *argv3[] = {"list", "--brokers", "k:9092"};
    assert_null(parse(SL_CMD_MODELS, 3, argv3, err, sizeof err));
    assert_non_null(strstr(err, "--brokers: unknown option"));
}

/* Every choice in the table parses with the parser of the module that owns
 * its enum, so the table's order never decides a value. */
static void test_every_choice_parses_by_name(void **state) {
    (void)state;
    for (size_t i = 0; sl_optdefs[i].name; i++) {
        const sl_optdef_t *d = &sl_optdefs[i];
        if (d->type != SL_OPT_CHOICE)
            continue;
        char list[256];
        snprintf(list, sizeof list, "%s", d->choices);
        for (char *save = NULL, *c = strtok_r(list, "|", &save); c;
             c = strtok_r(NULL, "|", &save)) {
            int ok = -1;
            sl_head_t head;
            sl_act_t act;
            sl_optim_kind_t kind;
            sl_log_level_t level;
            sl_gen_stream_t stream;
            sl_scale_mode_t scale;
            if (!strcmp(d->name, "model"))
                ok = sl_model_head_parse(c, &head) == SL_OK;
            else if (!strcmp(d->name, "activation"))
                ok = sl_model_act_parse(c, &act) == SL_OK;
            else if (!strcmp(d->name, "optimizer"))
                ok = sl_optim_kind_parse(c, &kind) == SL_OK;
            else if (!strcmp(d->name, "log-level"))
                ok = sl_log_level_parse(c, &level) == 0;
            else if (!strcmp(d->name, "stream"))
                ok = sl_gen_stream_parse(c, &stream) == SL_OK;
            else if (!strcmp(d->name, "scale"))
                ok = sl_scaler_mode_parse(c, &scale) == SL_OK;
            if (ok == 0)
                fail_msg("--%s: choice \"%s\" does not parse", d->name, c);
        }
    }
}

static const char *kafka_value(sl_opts_t *o, const char *name) {
    for (size_t i = 0; i < sl_opts_nkafka(o); i++) {
        const char *k, *v;
        sl_opts_kafka(o, i, &k, &v);
        if (!strcmp(k, name))
            return v;
    }
    return NULL;
}

static void test_kafka_properties_pass_through_with_precedence(void **state) {
    (void)state;
    char err[256];
    write_ini("[kafka]\nclient.id = from-file\nsocket.timeout.ms = 1000\nsasl.password = f\n");
    setenv("STREAMLEARN_KAFKA_SASL_PASSWORD", "from-env", 1);
    setenv("STREAMLEARN_KAFKA_CLIENT_ID", "from-env", 1);
    char *argv[] = {"-c", g_ini, "--kafka-opt", "client.id=from-flag", "--kafka-opt", "acks=all"};
    sl_opts_t *o = parse(SL_CMD_RUN, 6, argv, err, sizeof err);
    assert_non_null(o);
    assert_string_equal(kafka_value(o, "client.id"), "from-flag");
    assert_string_equal(kafka_value(o, "sasl.password"), "from-env");
    assert_string_equal(kafka_value(o, "socket.timeout.ms"), "1000");
    assert_string_equal(kafka_value(o, "acks"), "all");
    assert_int_equal(sl_opts_nkafka(o), 4);
    sl_opts_destroy(o);

    char *bad[] = {"--kafka-opt", "novalue"};
    assert_null(parse(SL_CMD_RUN, 2, bad, err, sizeof err));
    assert_non_null(strstr(err, "name=value"));
}

static void test_secret_keys_and_url_redaction(void **state) {
    (void)state;
    assert_true(sl_redact_key_is_secret("sasl.password"));
    assert_true(sl_redact_key_is_secret("ssl.key.password"));
    assert_true(sl_redact_key_is_secret("sasl.oauthbearer.client.secret"));
    assert_false(sl_redact_key_is_secret("bootstrap.servers"));
    char out[128];
    sl_redact_url("redis://user:hunter2@db:6379/2", out, sizeof out);
    assert_string_equal(out, "redis://user:***@db:6379/2");
    sl_redact_url("redis://:hunter2@db:6379", out, sizeof out);
    assert_string_equal(out, "redis://:***@db:6379");
    sl_redact_url("redis://db:6379/0", out, sizeof out);
    assert_string_equal(out, "redis://db:6379/0");
    sl_redact_url("redis://user@db:6379", out, sizeof out);
    assert_string_equal(out, "redis://user@db:6379");
}

static void test_help_lists_only_the_commands_flags(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sl_opts_print_help(SL_CMD_RUN, "usage", f);
    fclose(f);
    assert_non_null(strstr(buf, "--redis"));
    assert_non_null(strstr(buf, "--batch-size"));
    assert_null(strstr(buf, "--input ")); /* replay-only flag not in run's help */
    free(buf);
}

static void test_positional_and_help(void **state) {
    (void)state;
    char err[256];
    int help = 0;
    char *argv[] = {"list", "--json", "--help"};
    sl_opts_t *o = sl_opts_parse(SL_CMD_MODELS, 3, argv, &help, err, sizeof err);
    assert_non_null(o);
    assert_int_equal(help, 1);
    assert_int_equal(sl_opts_npositional(o), 1);
    assert_string_equal(sl_opts_positional(o, 0), "list");
    sl_opts_destroy(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults_apply_when_nothing_given, teardown),
        cmocka_unit_test_teardown(test_flag_beats_env_beats_file, teardown),
        cmocka_unit_test_teardown(test_equals_form_and_bool_flags, teardown),
        cmocka_unit_test_teardown(test_unknown_flag_is_named, teardown),
        cmocka_unit_test_teardown(test_missing_value_is_named, teardown),
        cmocka_unit_test_teardown(test_bad_values_name_their_origin, teardown),
        cmocka_unit_test_teardown(test_ini_unknown_key_and_syntax_error, teardown),
        cmocka_unit_test_teardown(test_ini_shared_between_commands, teardown),
        cmocka_unit_test_teardown(test_bool_flag_refuses_a_separate_value, teardown),
        cmocka_unit_test_teardown(test_renamed_flag_still_works_as_a_flag, teardown),
        cmocka_unit_test_teardown(test_every_choice_parses_by_name, teardown),
        cmocka_unit_test_teardown(test_kafka_properties_pass_through_with_precedence, teardown),
        cmocka_unit_test_teardown(test_secret_keys_and_url_redaction, teardown),
        cmocka_unit_test_teardown(test_help_lists_only_the_commands_flags, teardown),
        cmocka_unit_test_teardown(test_positional_and_help, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
