/* kconf.h - librdkafka configurations for the worker's consumer and producer:
 * our defaults, the user's pass-through properties, and the settings the
 * worker's guarantees depend on. */
#ifndef SL_KCONF_H
#define SL_KCONF_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "common/err.h"

typedef enum sl_kconf_role {
    SL_KCONF_CONSUMER = 0,
    SL_KCONF_PRODUCER = 1,
} sl_kconf_role_t;

/* One pass-through property. A name starting with "consumer." or "producer."
 * applies (without that prefix) to that client only; others to both. */
typedef struct sl_kconf_prop {
    const char *name, *value;
} sl_kconf_prop_t;

/* What the configuration is built from. Strings are borrowed for the call. */
typedef struct sl_kconf_spec {
    const char *brokers; /* bootstrap.servers (required) */
    const char *group;   /* group.id (consumer; required there) */
    const sl_kconf_prop_t *props;
    size_t nprops;
} sl_kconf_spec_t;

/* Builds a configuration for `role`:
 *  - defaults: client.id streamlearn; consumer: partition.assignment.strategy
 *    range,roundrobin, auto.offset.reset earliest, queued.max.messages.kbytes
 *    32768, fetch.max.bytes 8388608; producer:
 *    linger.ms 5, queue.buffering.max.kbytes 16384; both log through the
 *    JSON logger (common/log.h);
 *  - then the pass-through properties in order (the user wins over defaults);
 *  - pinned, because offsets and delivery rely on them: consumer
 *    enable.auto.commit=false and enable.auto.offset.store=false, producer
 *    enable.idempotence=true. Setting one of them to another value, setting
 *    bootstrap.servers or group.id (use --brokers/--group), or choosing the
 *    cooperative-sticky assignor (hangs in librdkafka 2.0.2) is refused.
 * Returns NULL (exit status 2 for the caller) with errstr naming the property
 * and librdkafka's reason, e.g. "kafka property foo.bar: No such
 * configuration property: \"foo.bar\""; the value of a secret property
 * (sl_redact_key_is_secret) is never copied into errstr. On success the caller
 * owns the conf (rd_kafka_new takes it, or rd_kafka_conf_destroy). */
rd_kafka_conf_t *sl_kconf_build(const sl_kconf_spec_t *spec, sl_kconf_role_t role, char *errstr,
                                size_t errstr_size);

/* Routes a client's log lines (rd_kafka_conf_set_log_cb) to the JSON logger
 * with fields client and facility. Used by sl_kconf_build and the dev cluster. */
void sl_kconf_set_logger(rd_kafka_conf_t *conf);

#endif
