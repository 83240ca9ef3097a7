/* kconf.c - defaults, pass-through and pinned properties of the worker's librdkafka clients. */

#include "kconf.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "common/redact.h"

typedef struct kv {
    const char *name, *value;
} kv_t;

static const kv_t consumer_defaults[] = {
    {"partition.assignment.strategy", "range,roundrobin"},
    {"auto.offset.reset", "earliest"},
    /* Prefetch bounded at 32 MB. queued.min.messages stays at librdkafka's
     * 100000: lowering it starves the fetcher across many partitions (10000
     * made the worker 4x slower on 32 partitions in bench/kafka.sh). */
    {"queued.max.messages.kbytes", "32768"},
    {"fetch.max.bytes", "8388608"},
};

static const kv_t producer_defaults[] = {
    {"linger.ms", "5"},
    {"queue.buffering.max.kbytes", "16384"},
};

/* Pinned booleans: the worker's offset and delivery guarantees depend on them. */
static const kv_t consumer_pinned[] = {
    {"enable.auto.commit", "false"},
    {"enable.auto.offset.store", "false"},
};

static const kv_t producer_pinned[] = {
    {"enable.idempotence", "true"},
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    /* A property without a role prefix goes to both clients; the one it
     * does not apply to says so at startup: expected, not a warning. */
    if (!strcmp(fac, "CONFWARN") && strstr(buf, "property and will be ignored by this"))
        level = 7;
    sl_log_level_t l = level <= 3   ? SL_LOG_ERROR
                       : level == 4 ? SL_LOG_WARN
                       : level <= 6 ? SL_LOG_INFO
                                    : SL_LOG_DEBUG;
    sl_log(l, buf, SL_STR("client", rk ? rd_kafka_name(rk) : "librdkafka"),
           SL_STR("facility", fac));
}

void sl_kconf_set_logger(rd_kafka_conf_t *conf) {
    rd_kafka_conf_set_log_cb(conf, log_cb);
}

/* Sets one property, translating librdkafka's error into ours. */
static int set_prop(rd_kafka_conf_t *conf, const char *shown, const char *name, const char *value,
                    char *errstr, size_t errstr_size) {
    char why[512];
    if (rd_kafka_conf_set(conf, name, value, why, sizeof why) == RD_KAFKA_CONF_OK)
        return 0;
    if (sl_redact_key_is_secret(name))
        sl_errstr_set(errstr, errstr_size, "kafka property %s: invalid value (not shown: secret)",
                      shown);
    else
        sl_errstr_set(errstr, errstr_size, "kafka property %s: %s", shown, why);
    return -1;
}

static int parse_bool(const char *v) {
    static const char *yes[] = {"true", "1", "yes", "on"}, *no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i]))
            return 1;
        if (!strcasecmp(v, no[i]))
            return 0;
    }
    return -1;
}

/* Refuses properties the worker owns or cannot work with. */
static int check_user_prop(const char *shown, const char *name, const char *value,
                           const kv_t *pinned, size_t npinned, char *errstr, size_t errstr_size) {
    if (!strcmp(name, "bootstrap.servers") || !strcmp(name, "metadata.broker.list")) {
        sl_errstr_set(errstr, errstr_size, "kafka property %s: set the brokers with --brokers",
                      shown);
        return -1;
    }
    if (!strcmp(name, "group.id")) {
        sl_errstr_set(errstr, errstr_size, "kafka property %s: set the group with --group", shown);
        return -1;
    }
    if (!strcmp(name, "partition.assignment.strategy") && strstr(value, "cooperative")) {
        sl_errstr_set(errstr, errstr_size,
                      "kafka property %s: cooperative-sticky has known hangs in librdkafka %s; "
                      "use range and/or roundrobin",
                      shown, rd_kafka_version_str());
        return -1;
    }
    for (size_t i = 0; i < npinned; i++) {
        if (strcmp(name, pinned[i].name))
            continue;
        if (parse_bool(value) != parse_bool(pinned[i].value)) {
            sl_errstr_set(errstr, errstr_size,
                          "kafka property %s: must be %s (the worker's offset and delivery "
                          "guarantees depend on it)",
                          shown, pinned[i].value);
            return -1;
        }
    }
    return 0;
}

/* The property name for `role`, or NULL when it targets the other client. */
static const char *role_name(const char *name, sl_kconf_role_t role) {
    static const char cpre[] = "consumer.", ppre[] = "producer.";
    if (!strncmp(name, cpre, sizeof cpre - 1))
        return role == SL_KCONF_CONSUMER ? name + sizeof cpre - 1 : NULL;
    if (!strncmp(name, ppre, sizeof ppre - 1))
        return role == SL_KCONF_PRODUCER ? name + sizeof ppre - 1 : NULL;
    return name;
}

rd_kafka_conf_t *sl_kconf_build(const sl_kconf_spec_t *spec, sl_kconf_role_t role, char *errstr,
                                size_t errstr_size) {
    int consumer = role == SL_KCONF_CONSUMER;
    const kv_t *defaults = consumer ? consumer_defaults : producer_defaults;
    size_t ndefaults = consumer ? sizeof consumer_defaults / sizeof *consumer_defaults
                                : sizeof producer_defaults / sizeof *producer_defaults;
    const kv_t *pinned = consumer ? consumer_pinned : producer_pinned;
    size_t npinned = consumer ? sizeof consumer_pinned / sizeof *consumer_pinned
                              : sizeof producer_pinned / sizeof *producer_pinned;

    if (!spec->brokers || !*spec->brokers) {
        sl_errstr_set(errstr, errstr_size, "--brokers: required");
        return NULL;
    }
    if (consumer && (!spec->group || !*spec->group)) {
        sl_errstr_set(errstr, errstr_size, "--group: required");
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        sl_errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    sl_kconf_set_logger(conf);
    if (set_prop(conf, "client.id", "client.id", "streamlearn", errstr, errstr_size) ||
        set_prop(conf, "--brokers", "bootstrap.servers", spec->brokers, errstr, errstr_size) ||
        (consumer && set_prop(conf, "--group", "group.id", spec->group, errstr, errstr_size)))
        goto fail;
    for (size_t i = 0; i < ndefaults; i++)
        if (set_prop(conf, defaults[i].name, defaults[i].name, defaults[i].value, errstr,
                     errstr_size))
            goto fail;
    for (size_t i = 0; i < spec->nprops; i++) {
        const sl_kconf_prop_t *p = &spec->props[i];
        const char *name = role_name(p->name, role);
        if (!name)
            continue;
        if (check_user_prop(p->name, name, p->value, pinned, npinned, errstr, errstr_size) ||
            set_prop(conf, p->name, name, p->value, errstr, errstr_size))
            goto fail;
    }
    for (size_t i = 0; i < npinned; i++)
        if (set_prop(conf, pinned[i].name, pinned[i].name, pinned[i].value, errstr, errstr_size))
            goto fail;
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
