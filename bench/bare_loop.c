/* bare_loop.c - the ceiling for `streamlearn run`: a bare librdkafka
 * consume -> produce loop with no decoding and no learning. It consumes N
 * messages of an input topic in a consumer group and produces, for each, one
 * small fixed payload with the same key to an output topic, then flushes and
 * exits. Not a test; bench/kafka.sh builds it with:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE bench/bare_loop.c $(pkg-config --cflags --libs rdkafka) -o
 * bare_loop usage: bare_loop BROKERS GROUP INPUT_TOPIC OUTPUT_TOPIC N */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, const char *why) {
    fprintf(stderr, "bare_loop: %s: %s\n", what, why);
    exit(1);
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *brokers, const char *group) {
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    if (rd_kafka_conf_set(c, "bootstrap.servers", brokers, err, sizeof err) ||
        (group && (rd_kafka_conf_set(c, "group.id", group, err, sizeof err) ||
                   rd_kafka_conf_set(c, "auto.offset.reset", "earliest", err, sizeof err) ||
                   rd_kafka_conf_set(c, "enable.auto.commit", "true", err, sizeof err))) ||
        (!group && (rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof err) ||
                    rd_kafka_conf_set(c, "linger.ms", "5", err, sizeof err))))
        die("config", err);
    rd_kafka_t *rk = rd_kafka_new(type, c, err, sizeof err);
    if (!rk)
        die("client", err);
    return rk;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: bare_loop BROKERS GROUP INPUT_TOPIC OUTPUT_TOPIC N\n");
        return 2;
    }
    long n = atol(argv[5]), seen = 0;
    rd_kafka_t *cons = client(RD_KAFKA_CONSUMER, argv[1], argv[2]);
    rd_kafka_t *prod = client(RD_KAFKA_PRODUCER, argv[1], NULL);
    rd_kafka_poll_set_consumer(cons);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, argv[3], RD_KAFKA_PARTITION_UA);
    if (rd_kafka_subscribe(cons, topics))
        die("subscribe", argv[3]);
    rd_kafka_topic_partition_list_destroy(topics);
    /* A prediction-sized payload: {"id": nil, "pred": 0.5f, "version": 0, "step": 0}. */
    static const char payload[] =
        "\x84\xa2id\xc0\xa4pred\xca\x3f\x00\x00\x00\xa7version\x00\xa4step\x00";
    while (seen < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(cons, 100);
        if (!m)
            continue;
        if (!m->err) {
            seen++;
            while (rd_kafka_producev(prod, RD_KAFKA_V_TOPIC(argv[4]),
                                     RD_KAFKA_V_KEY(m->key, m->key_len),
                                     RD_KAFKA_V_VALUE((void *)payload, sizeof payload - 1),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(prod, 10);
            rd_kafka_poll(prod, 0);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_flush(prod, 60000);
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    rd_kafka_destroy(prod);
    return 0;
}
