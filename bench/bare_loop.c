/* bare_loop.c - the floor for `streamlearn run`: a bare librdkafka
 * consume -> produce loop with no decoding and no learning. It consumes N
 * messages of an input topic in a consumer group and produces, for each, one
 * small fixed payload with the same key to an output topic, then flushes and
 * exits. It uses the client calls the worker uses where they are the cheaper
 * choice (messages taken from the consumer queue in batches, one producev
 * per output) and nothing the worker needs but a bare loop does not (no
 * headers, no delivery reports, offsets auto-committed). Not a test;
 * bench/kafka.sh and bench/latency.sh build it with:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE bench/bare_loop.c $(pkg-config --cflags --libs rdkafka)
 * usage: bare_loop BROKERS GROUP INPUT_TOPIC OUTPUT_TOPIC N [PROPERTY=VALUE ...]
 * (extra librdkafka properties: for the consumer, e.g. fetch.wait.max.ms=10,
 * or, prefixed with "producer.", for the producer).
 * Prints "assigned" on stderr once the group gave it partitions. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *why) {
    fprintf(stderr, "bare_loop: %s: %s\n", what, why);
    exit(1);
}

static void set(rd_kafka_conf_t *c, const char *name, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(c, name, value, err, sizeof err))
        die("config", err);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rd_kafka_assign(rk, parts);
        if (parts->cnt > 0)
            fprintf(stderr, "assigned %d partitions\n", parts->cnt);
    } else {
        rd_kafka_assign(rk, NULL);
    }
}

static rd_kafka_t *client(rd_kafka_type_t type, rd_kafka_conf_t *c) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk)
        die("client", err);
    return rk;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr,
                "usage: bare_loop BROKERS GROUP INPUT_TOPIC OUTPUT_TOPIC N [PROPERTY=VALUE ...]\n");
        return 2;
    }
    long n = atol(argv[5]), seen = 0;
    rd_kafka_conf_t *cc = rd_kafka_conf_new(), *pc = rd_kafka_conf_new();
    set(cc, "bootstrap.servers", argv[1]);
    set(cc, "group.id", argv[2]);
    set(cc, "auto.offset.reset", "earliest");
    set(cc, "enable.auto.commit", "true");
    set(pc, "bootstrap.servers", argv[1]);
    set(pc, "enable.idempotence", "true");
    set(pc, "linger.ms", "5");
    for (int i = 6; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            die("property without '='", argv[i]);
        *eq = '\0';
        if (!strncmp(argv[i], "producer.", 9))
            set(pc, argv[i] + 9, eq + 1);
        else
            set(cc, argv[i], eq + 1);
    }
    rd_kafka_conf_set_rebalance_cb(cc, rebalance_cb);
    rd_kafka_t *cons = client(RD_KAFKA_CONSUMER, cc);
    rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, pc);
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[3], RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(cons, topics))
        die("subscribe", argv[3]);
    rd_kafka_topic_partition_list_destroy(topics);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(cons);
    /* A prediction-sized payload: {"id": nil, "pred": 0.5f, "version": 0, "step": 0}. */
    static const char payload[] =
        "\x84\xa2id\xc0\xa4pred\xca\x3f\x00\x00\x00\xa7version\x00\xa4step\x00";
    rd_kafka_message_t *ms[256];
    while (seen < n) {
        /* what the queue holds now, else wait for one message (a call that
         * asks for more waits until it has them all) */
        ssize_t got = rd_kafka_consume_batch_queue(q, 0, ms, 256);
        if (got == 0)
            got = rd_kafka_consume_batch_queue(q, 100, ms, 1);
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = ms[i];
            if (!m->err) {
                seen++;
                while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(argv[4]),
                                         RD_KAFKA_V_KEY(m->key, m->key_len),
                                         RD_KAFKA_V_VALUE((void *)payload, sizeof payload - 1),
                                         RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                         RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    rd_kafka_poll(prod, 10);
            }
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(prod, 0);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_flush(prod, 60000);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return 0;
}
