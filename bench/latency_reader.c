/* latency_reader.c - reads an input topic and one or more output topics
 * while they are written and reports, as JSON on stdout, per output topic
 * the latency from each input message's timestamp to its output's:
 * p50/p90/p99/p99.9/max over all matched messages, and per 10 s of input the
 * p99 and max (where the spikes sit). With two output topics fed from the
 * same input at the same time (the worker and the bare loop) it also reports
 * the per-message difference first - second: what the first adds on top of
 * the second under the same broker and machine load.
 *
 * Keys match them: `streamlearn gen` keys message i with the decimal i, the
 * worker and bench/bare_loop.c key each output like its input; a repeated
 * output counts once. Written in C so that reading tens of thousands of
 * messages a second takes little of the CPU the measured loops run on. Not a
 * test; bench/latency.sh builds it with
 *   gcc -O2 -std=c11 -D_GNU_SOURCE bench/latency_reader.c $(pkg-config --cflags --libs rdkafka)
 * usage: latency_reader BROKERS IN_TOPIC N TIMEOUT_S OUT_TOPIC [OUT_TOPIC]
 * It stops when every output topic matched N messages, at TIMEOUT_S, or
 * 15 s after the last match. */
#include <librdkafka/rdkafka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MS 60000 /* histogram range; anything later counts as MAX_MS */
#ifndef WINDOW_MS
#define WINDOW_MS 10000
#endif
#define MAX_OUT 2
#define NONE INT32_MIN /* no timestamp yet */

static void die(const char *what, const char *why) {
    fprintf(stderr, "latency_reader: %s: %s\n", what, why);
    exit(1);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The key as a message index; -1 when it is not a decimal below n. */
static int64_t key_index(const rd_kafka_message_t *m, int64_t n) {
    const char *k = m->key;
    if (!k || m->key_len == 0 || m->key_len > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < m->key_len; i++) {
        if (k[i] < '0' || k[i] > '9')
            return -1;
        v = v * 10 + (k[i] - '0');
    }
    return v < n ? v : -1;
}

/* Counts per ms in [-MAX_MS, MAX_MS] (differences may be negative). */
typedef struct hist {
    uint64_t *c; /* 2 * MAX_MS + 1 */
    uint64_t n;
} hist_t;

static void hist_init(hist_t *h) {
    h->c = calloc(2 * MAX_MS + 1, sizeof *h->c);
    h->n = 0;
    if (!h->c)
        die("memory", "histogram");
}

static void hist_add(hist_t *h, int64_t ms) {
    ms = ms < -MAX_MS ? -MAX_MS : ms > MAX_MS ? MAX_MS : ms;
    h->c[ms + MAX_MS]++;
    h->n++;
}

static int64_t quantile(const hist_t *h, double q) {
    uint64_t want = (uint64_t)(q * (double)h->n), seen = 0;
    for (int64_t i = 0; i <= 2 * MAX_MS; i++) {
        seen += h->c[i];
        if (seen > want)
            return i - MAX_MS;
    }
    return MAX_MS;
}

static int64_t maximum(const hist_t *h) {
    for (int64_t i = 2 * MAX_MS; i > 0; i--)
        if (h->c[i])
            return i - MAX_MS;
    return -MAX_MS;
}

static void print_stats(const hist_t *h) {
    printf("\"n\": %llu, \"p50_ms\": %lld, \"p90_ms\": %lld, \"p99_ms\": %lld, \"p999_ms\": %lld, "
           "\"max_ms\": %lld",
           (unsigned long long)h->n, (long long)quantile(h, 0.5), (long long)quantile(h, 0.9),
           (long long)quantile(h, 0.99), (long long)quantile(h, 0.999), (long long)maximum(h));
}

/* One output topic: its timestamps by message index, which were counted (a
 * repeated output is not), overall and per-window latencies. */
typedef struct out {
    const char *topic;
    int32_t *ts;
    uint8_t *done;
    hist_t all;
    hist_t *win;
    size_t nwin;
} out_t;

static void out_add(out_t *o, int64_t window, int64_t lat) {
    if ((size_t)window >= o->nwin) {
        hist_t *nw = realloc(o->win, ((size_t)window + 1) * sizeof *nw);
        if (!nw)
            die("memory", "windows");
        for (size_t w = o->nwin; w <= (size_t)window; w++)
            nw[w] = (hist_t){0};
        o->win = nw;
        o->nwin = (size_t)window + 1;
    }
    if (!o->win[window].c)
        hist_init(&o->win[window]);
    hist_add(&o->all, lat);
    hist_add(&o->win[window], lat);
}

static void assign_all(rd_kafka_t *rk, const char **topics, int ntopics) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(64);
    for (int t = 0; t < ntopics; t++) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topics[t], NULL);
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) || md->topic_cnt != 1 ||
            md->topics[0].partition_cnt == 0)
            die("metadata", topics[t]);
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(l, topics[t], p)->offset = RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    if (rd_kafka_assign(rk, l))
        die("assign", topics[0]);
    rd_kafka_topic_partition_list_destroy(l);
}

int main(int argc, char **argv) {
    if (argc < 6 || argc > 5 + MAX_OUT) {
        fprintf(stderr,
                "usage: latency_reader BROKERS IN_TOPIC N TIMEOUT_S OUT_TOPIC [OUT_TOPIC]\n");
        return 2;
    }
    const char *in = argv[2];
    int64_t n = atoll(argv[3]), timeout_ms = atoll(argv[4]) * 1000;
    int nout = argc - 5;
    if (n <= 0)
        die("N", argv[3]);
    char err[512];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    /* fetch.wait.max.ms: the mock broker holds a fetch that finds nothing that long */
    if (rd_kafka_conf_set(c, "bootstrap.servers", argv[1], err, sizeof err) ||
        rd_kafka_conf_set(c, "group.id", "latency-reader", err, sizeof err) ||
        rd_kafka_conf_set(c, "enable.auto.commit", "false", err, sizeof err) ||
        rd_kafka_conf_set(c, "fetch.wait.max.ms", "50", err, sizeof err))
        die("config", err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof err);
    if (!rk)
        die("client", err);
    const char *topics[1 + MAX_OUT] = {in};
    out_t outs[MAX_OUT] = {{0}};
    for (int o = 0; o < nout; o++) {
        topics[1 + o] = outs[o].topic = argv[5 + o];
        outs[o].ts = malloc((size_t)n * sizeof *outs[o].ts);
        outs[o].done = calloc((size_t)n, 1);
        hist_init(&outs[o].all);
        if (!outs[o].ts || !outs[o].done)
            die("memory", "timestamps");
        for (int64_t i = 0; i < n; i++)
            outs[o].ts[i] = NONE;
    }
    int32_t *in_ts = malloc((size_t)n * sizeof *in_ts);
    if (!in_ts)
        die("memory", "timestamps");
    for (int64_t i = 0; i < n; i++)
        in_ts[i] = NONE;
    hist_t delta; /* first output's timestamp - second's, per message */
    hist_init(&delta);
    assign_all(rk, topics, 1 + nout);

    /* Timestamps are kept in ms from `base` (int32: runs of up to 24 days). */
    int64_t base = -1, first_in = INT64_MAX, start = now_ms(), last_match = start;
    uint64_t matched = 0;
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_message_t *ms[1024];
    while (matched < (uint64_t)(n * nout) && now_ms() - start < timeout_ms &&
           (matched == 0 || now_ms() - last_match < 15000)) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, ms, 1024);
        for (ssize_t k = 0; k < got; k++) {
            rd_kafka_message_t *m = ms[k];
            int64_t i = m->err ? -1 : key_index(m, n);
            if (i >= 0) {
                int64_t ts = rd_kafka_message_timestamp(m, NULL);
                if (base < 0)
                    base = ts - 3600000;
                const char *t = rd_kafka_topic_name(m->rkt);
                int is_in = !strcmp(t, in);
                if (is_in) {
                    in_ts[i] = (int32_t)(ts - base);
                    if (ts < first_in)
                        first_in = ts;
                }
                for (int o = 0; o < nout; o++) {
                    out_t *op = &outs[o];
                    if (op->done[i] || (!is_in && strcmp(t, op->topic)))
                        continue;
                    if (!is_in)
                        op->ts[i] = (int32_t)(ts - base);
                    if (in_ts[i] == NONE || op->ts[i] == NONE)
                        continue;
                    out_add(op, (base + in_ts[i] - first_in) / WINDOW_MS,
                            (int64_t)op->ts[i] - in_ts[i]);
                    op->done[i] = 1;
                    matched++;
                    last_match = now_ms();
                    if (nout == 2 && outs[0].done[i] && outs[1].done[i])
                        hist_add(&delta, (int64_t)outs[0].ts[i] - outs[1].ts[i]);
                }
            }
            rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (matched == 0)
        die("no output matched an input", in);

    printf("{\"expected\": %lld, \"windows_s\": %d, \"outputs\": {", (long long)n,
           WINDOW_MS / 1000);
    for (int o = 0; o < nout; o++) {
        out_t *op = &outs[o];
        printf("%s\"%s\": {", o ? ", " : "", op->topic);
        print_stats(&op->all);
        printf(", \"windows\": [");
        for (size_t w = 0; w < op->nwin; w++) {
            hist_t *h = &op->win[w];
            if (h->c)
                printf("%s{\"n\": %llu, \"p99_ms\": %lld, \"max_ms\": %lld}", w ? ", " : "",
                       (unsigned long long)h->n, (long long)quantile(h, 0.99),
                       (long long)maximum(h));
            else
                printf("%s{\"n\": 0}", w ? ", " : "");
            free(h->c);
        }
        printf("]}");
        free(op->win);
        free(op->all.c);
        free(op->ts);
        free(op->done);
    }
    printf("}");
    if (nout == 2 && delta.n > 0) {
        printf(", \"first_minus_second\": {");
        print_stats(&delta);
        printf("}");
    }
    printf("}\n");
    free(delta.c);
    free(in_ts);
    return 0;
}
