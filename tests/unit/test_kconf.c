/* test_kconf.c - librdkafka configurations: defaults, pass-through, pinned keys, errors that name
 * the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <string.h>

#include "consumer/kconf.h"

static void expect_prop(rd_kafka_conf_t *conf, const char *name, const char *want) {
    char got[256];
    size_t n = sizeof got;
    assert_int_equal(rd_kafka_conf_get(conf, name, got, &n), RD_KAFKA_CONF_OK);
    assert_string_equal(got, want);
}

static rd_kafka_conf_t *build(sl_kconf_role_t role, const sl_kconf_prop_t *props, size_t n,
                              char *errstr, size_t errstr_size) {
    sl_kconf_spec_t s = {.brokers = "127.0.0.1:9092", .group = "g1", .props = props, .nprops = n};
    return sl_kconf_build(&s, role, errstr, errstr_size);
}

static void test_consumer_defaults_and_pins(void **state) {
    (void)state;
    char errstr[512];
    rd_kafka_conf_t *c = build(SL_KCONF_CONSUMER, NULL, 0, errstr, sizeof errstr);
    assert_non_null(c);
    expect_prop(c, "bootstrap.servers", "127.0.0.1:9092");
    expect_prop(c, "group.id", "g1");
    expect_prop(c, "enable.auto.commit", "false");
    expect_prop(c, "enable.auto.offset.store", "false");
    expect_prop(c, "partition.assignment.strategy", "range,roundrobin");
    expect_prop(c, "queued.max.messages.kbytes", "32768");
    rd_kafka_conf_destroy(c);
}

static void test_producer_is_idempotent(void **state) {
    (void)state;
    char errstr[512];
    rd_kafka_conf_t *c = build(SL_KCONF_PRODUCER, NULL, 0, errstr, sizeof errstr);
    assert_non_null(c);
    expect_prop(c, "enable.idempotence", "true");
    rd_kafka_conf_destroy(c);
}

static void test_user_property_wins_over_default(void **state) {
    (void)state;
    char errstr[512];
    sl_kconf_prop_t p[] = {{"queued.max.messages.kbytes", "1000"},
                           {"heartbeat.interval.ms", "500"}};
    rd_kafka_conf_t *c = build(SL_KCONF_CONSUMER, p, 2, errstr, sizeof errstr);
    assert_non_null(c);
    expect_prop(c, "queued.max.messages.kbytes", "1000");
    expect_prop(c, "heartbeat.interval.ms", "500");
    rd_kafka_conf_destroy(c);
}

static void test_role_prefix_targets_one_client(void **state) {
    (void)state;
    char errstr[512];
    sl_kconf_prop_t p[] = {{"producer.linger.ms", "42"}};
    rd_kafka_conf_t *prod = build(SL_KCONF_PRODUCER, p, 1, errstr, sizeof errstr);
    rd_kafka_conf_t *cons = build(SL_KCONF_CONSUMER, p, 1, errstr, sizeof errstr);
    assert_non_null(prod);
    assert_non_null(cons);
    expect_prop(prod, "linger.ms", "42");
    char got[64];
    size_t n = sizeof got;
    assert_int_equal(rd_kafka_conf_get(cons, "linger.ms", got, &n), RD_KAFKA_CONF_OK);
    assert_string_not_equal(got, "42");
    rd_kafka_conf_destroy(prod);
    rd_kafka_conf_destroy(cons);
}

static void test_unknown_property_named(void **state) {
    (void)state;
    char errstr[512] = "";
    sl_kconf_prop_t p[] = {{"foo.bar", "1"}};
    assert_null(build(SL_KCONF_CONSUMER, p, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "kafka property foo.bar"));
    assert_non_null(strstr(errstr, "No such configuration property"));
}

static void test_bad_value_named(void **state) {
    (void)state;
    char errstr[512] = "";
    sl_kconf_prop_t p[] = {{"session.timeout.ms", "soon"}};
    assert_null(build(SL_KCONF_CONSUMER, p, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "session.timeout.ms"));
}

static void test_secret_value_never_in_error(void **state) {
    (void)state;
    char errstr[512] = "";
    sl_kconf_prop_t p[] = {{"sasl.password.typo", "hunter2"}};
    assert_null(build(SL_KCONF_CONSUMER, p, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "sasl.password.typo"));
    assert_null(strstr(errstr, "hunter2"));
}

static void test_pinned_conflict_refused(void **state) {
    (void)state;
    char errstr[512] = "";
    sl_kconf_prop_t p[] = {{"enable.auto.commit", "true"}};
    assert_null(build(SL_KCONF_CONSUMER, p, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "enable.auto.commit"));
    sl_kconf_prop_t q[] = {{"enable.idempotence", "false"}};
    assert_null(build(SL_KCONF_PRODUCER, q, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "enable.idempotence"));
    sl_kconf_prop_t same[] = {{"enable.auto.commit", "0"}};
    rd_kafka_conf_t *c = build(SL_KCONF_CONSUMER, same, 1, errstr, sizeof errstr);
    assert_non_null(c);
    rd_kafka_conf_destroy(c);
}

static void test_cooperative_and_owned_keys_refused(void **state) {
    (void)state;
    char errstr[512] = "";
    sl_kconf_prop_t p[] = {{"partition.assignment.strategy", "cooperative-sticky"}};
    assert_null(build(SL_KCONF_CONSUMER, p, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "cooperative"));
    sl_kconf_prop_t q[] = {{"group.id", "other"}};
    assert_null(build(SL_KCONF_CONSUMER, q, 1, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "--group"));
}

static void test_missing_brokers_and_group(void **state) {
    (void)state;
    char errstr[512] = "";
    sl_kconf_spec_t s = {.brokers = NULL, .group = "g"};
    assert_null(sl_kconf_build(&s, SL_KCONF_PRODUCER, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "--brokers"));
    s.brokers = "h:1";
    s.group = "";
    assert_null(sl_kconf_build(&s, SL_KCONF_CONSUMER, errstr, sizeof errstr));
    assert_non_null(strstr(errstr, "--group"));
    rd_kafka_conf_t *c = sl_kconf_build(&s, SL_KCONF_PRODUCER, errstr, sizeof errstr);
    assert_non_null(c); /* a producer needs no group */
    rd_kafka_conf_destroy(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consumer_defaults_and_pins),
        cmocka_unit_test(test_producer_is_idempotent),
        cmocka_unit_test(test_user_property_wins_over_default),
        cmocka_unit_test(test_role_prefix_targets_one_client),
        cmocka_unit_test(test_unknown_property_named),
        cmocka_unit_test(test_bad_value_named),
        cmocka_unit_test(test_secret_value_never_in_error),
        cmocka_unit_test(test_pinned_conflict_refused),
        cmocka_unit_test(test_cooperative_and_owned_keys_refused),
        cmocka_unit_test(test_missing_brokers_and_group),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
