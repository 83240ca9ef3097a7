/* test_redis_url.c - redis:// URL parsing, password redaction, model-name
 * checks and reply decoding of the store's connection module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/redact.h"
#include "store/keys.h"
#include "store/redis.h"

static void parse_ok(const char *url, sl_redis_url_t *u) {
    char err[512] = "";
    sl_err_t rc = sl_redis_url_parse(url, u, err, sizeof err);
    if (rc != SL_OK)
        fail_msg("%s: %s", url, err);
}

/* Parses a bad URL, checks the code, that the message mentions `needle` and
 * never the secret "hunter2". */
static void parse_bad(const char *url, const char *needle) {
    sl_redis_url_t u;
    char err[512] = "";
    assert_int_equal(sl_redis_url_parse(url, &u, err, sizeof err), SL_ERR_INVAL);
    if (!strstr(err, needle))
        fail_msg("%s: message \"%s\" lacks \"%s\"", url, err, needle);
    assert_null(strstr(err, "hunter2"));
}

static void test_full_url(void **state) {
    (void)state;
    sl_redis_url_t u;
    parse_ok("redis://alice:hunter2@cache.example:7000/3", &u);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "hunter2");
    assert_string_equal(u.host, "cache.example");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.db, 3);
}

static void test_defaults(void **state) {
    (void)state;
    sl_redis_url_t u;
    parse_ok("redis://localhost", &u);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");
    parse_ok("redis://localhost:6380/", &u);
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 0);
}

static void test_password_only_forms(void **state) {
    (void)state;
    sl_redis_url_t u;
    parse_ok("redis://:hunter2@h:1", &u);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "hunter2");
    parse_ok("redis://hunter2@h:1", &u);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "hunter2");
}

static void test_percent_and_at_in_password(void **state) {
    (void)state;
    sl_redis_url_t u;
    parse_ok("redis://bob:p%40ss%3Aw@h:2", &u);
    assert_string_equal(u.password, "p@ss:w");
    parse_ok("redis://bob:a@b@h:2", &u); /* the last '@' ends the user info */
    assert_string_equal(u.password, "a@b");
    assert_string_equal(u.host, "h");
}

static void test_ipv6(void **state) {
    (void)state;
    sl_redis_url_t u;
    parse_ok("redis://[::1]:7001/2", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7001);
    assert_int_equal(u.db, 2);
}

static void test_bad_urls(void **state) {
    (void)state;
    parse_bad("http://h:1", "redis://");
    parse_bad("rediss://u:hunter2@h:1", "TLS");
    parse_bad("redis://", "empty host");
    parse_bad("redis://u:hunter2@:6379", "empty host");
    parse_bad("redis://h:0", "port");
    parse_bad("redis://h:70000", "port");
    parse_bad("redis://u:hunter2@h:abc", "port");
    parse_bad("redis://h:", "port");
    parse_bad("redis://h:1/x", "database");
    parse_bad("redis://h:1/0/extra", "database");
    parse_bad("redis://u:hunter2@h:1/99999999", "database");
    parse_bad("redis://u:pw%zz@h:1", "escape");
    parse_bad("redis://u:pw%4@h:1", "escape");
    parse_bad("redis://[::1:7000", "]");
}

static void test_null_url(void **state) {
    (void)state;
    sl_redis_url_t u;
    char err[128];
    assert_int_equal(sl_redis_url_parse(NULL, &u, err, sizeof err), SL_ERR_INVAL);
    assert_null(sl_redis_new(NULL, NULL, err, sizeof err));
}

static void test_redaction(void **state) {
    (void)state;
    char out[256];
    sl_redact_url("redis://alice:hunter2@h:1/2", out, sizeof out);
    assert_string_equal(out, "redis://alice:***@h:1/2");
    sl_redact_url("redis://h:1", out, sizeof out);
    assert_string_equal(out, "redis://h:1");
    char err[256];
    sl_redis_t *r = sl_redis_new("redis://alice:hunter2@h:1/2", NULL, err, sizeof err);
    assert_non_null(r);
    assert_string_equal(sl_redis_name(r), "redis://alice:***@h:1/2");
    sl_redis_destroy(r);
    sl_redis_destroy(NULL);
}

static void test_unreachable_server(void **state) {
    (void)state;
    char err[512] = "";
    /* port 1 on loopback: nothing listens there (reserved, needs root) */
    sl_redis_t *r = sl_redis_new("redis://u:hunter2@127.0.0.1:1", NULL, err, sizeof err);
    assert_non_null(r);
    const char *argv[] = {"PING"};
    redisReply *rep = (redisReply *)1;
    assert_int_equal(sl_redis_call(r, SL_REPLY_STATUS, &rep, err, sizeof err, 1, argv, NULL),
                     SL_ERR_REDIS);
    assert_null(rep);
    assert_non_null(strstr(err, "127.0.0.1:1"));
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(sl_redis_connected(r), 0);
    assert_true(sl_redis_failures(r) >= 1);
    /* the immediate retry is refused by the backoff, with a message saying so */
    assert_int_equal(sl_redis_call(r, SL_REPLY_STATUS, &rep, err, sizeof err, 1, argv, NULL),
                     SL_ERR_REDIS);
    assert_non_null(strstr(err, "next attempt"));
    sl_redis_destroy(r);
}

static void test_model_names(void **state) {
    (void)state;
    char err[256];
    assert_int_equal(sl_keys_check_name("fraud-v2.eu_1", err, sizeof err), SL_OK);
    assert_int_equal(sl_keys_check_name("", err, sizeof err), SL_ERR_INVAL);
    assert_int_equal(sl_keys_check_name("a{b}", err, sizeof err), SL_ERR_INVAL);
    assert_int_equal(sl_keys_check_name("a b", err, sizeof err), SL_ERR_INVAL);
    char key[SL_KEYS_MAX];
    sl_keys_chunk(key, "m", 12, 3);
    assert_string_equal(key, "{sl:m}:v:12:c:3");
}

static void test_reply_u64(void **state) {
    (void)state;
    char err[256];
    uint64_t v = 0;
    char digits[] = "18446744073709551615", big[] = "18446744073709551616", neg[] = "-1";
    redisReply s = {.type = REDIS_REPLY_STRING, .str = digits, .len = strlen(digits)};
    assert_int_equal(sl_redis_reply_u64(&s, "k", &v, err, sizeof err), SL_OK);
    assert_true(v == UINT64_MAX);
    s.str = big;
    s.len = strlen(big);
    assert_int_equal(sl_redis_reply_u64(&s, "k", &v, err, sizeof err), SL_ERR_REDIS);
    s.str = neg;
    s.len = strlen(neg);
    assert_int_equal(sl_redis_reply_u64(&s, "mykey", &v, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "mykey"));
    redisReply nil = {.type = REDIS_REPLY_NIL};
    assert_int_equal(sl_redis_reply_u64(&nil, "k2", &v, err, sizeof err), SL_ERR_REDIS);
    assert_non_null(strstr(err, "nil"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_url),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_password_only_forms),
        cmocka_unit_test(test_percent_and_at_in_password),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_bad_urls),
        cmocka_unit_test(test_null_url),
        cmocka_unit_test(test_redaction),
        cmocka_unit_test(test_unreachable_server),
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_reply_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
