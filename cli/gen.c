/* gen.c - `streamlearn gen`: seeded synthetic sample streams (hyperplane,
 * Gaussian blobs, sparse named features) with concept drift, to a file or a topic. */
#include "gen.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/log.h"
#include "common/rng.h"
#include "consumer/kconf.h"

static const char usage[] =
    "usage: streamlearn gen [--model M --dim N --classes K] [--stream KIND] [--samples N]\n"
    "                       (--output FILE | --brokers LIST --topic T) [flags]\n\n"
    "Writes a seeded, reproducible synthetic stream of msgpack samples (maps with x,\n"
    "y and id, as `run` and `replay` read them) with an optional concept drift, and\n"
    "reports the rate it achieved.";

struct sl_gen {
    sl_gen_config_t c;
    uint32_t k;     /* label directions: classes for softmax, else 1 */
    uint32_t width; /* features the concept is defined over: dim, or vocab */
    float *a, *b;   /* concepts before and after the drift: [k][width] */
    float *cur;     /* the concept in force for the current sample */
    float *x;       /* dense features of the current sample */
    uint32_t *idx;  /* sparse: chosen feature names */
    sl_rng_t rng;
    sl_rng_t poison_rng; /* its own stream, so poisoning changes nothing else */
    uint64_t next;
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
};

void sl_gen_destroy(sl_gen_t *g) {
    if (!g)
        return;
    free(g->a);
    free(g->b);
    free(g->cur);
    free(g->x);
    free(g->idx);
    msgpack_sbuffer_destroy(&g->sbuf);
    free(g);
}

static void draw_concept(sl_gen_t *g, float *w) {
    for (size_t i = 0; i < (size_t)g->k * g->width; i++)
        w[i] = (float)sl_rng_normal(&g->rng);
}

sl_gen_t *sl_gen_new(const sl_gen_config_t *c, char *errstr, size_t errstr_size) {
    if (c->dim == 0) {
        sl_errstr_set(errstr, errstr_size, "--dim: required (number of features)");
        return NULL;
    }
    if (c->head == SL_HEAD_SOFTMAX && c->classes < 2) {
        sl_errstr_set(errstr, errstr_size, "--classes: required (>= 2) with --model softmax");
        return NULL;
    }
    if (c->stream == SL_GEN_BLOBS && c->head == SL_HEAD_LINEAR) {
        sl_errstr_set(errstr, errstr_size,
                      "--stream blobs: needs --model logistic or softmax (blobs are classes)");
        return NULL;
    }
    if (c->stream == SL_GEN_SPARSE && (c->nnz == 0 || c->nnz > c->vocab)) {
        sl_errstr_set(errstr, errstr_size, "--nnz: must be in 1..--vocab (%u)", c->vocab);
        return NULL;
    }
    if (c->per_message == 0) {
        sl_errstr_set(errstr, errstr_size, "--per-message: must be at least 1");
        return NULL;
    }
    sl_gen_t *g = calloc(1, sizeof *g);
    if (!g)
        goto nomem;
    g->c = *c;
    g->k = c->head == SL_HEAD_SOFTMAX ? c->classes : c->stream == SL_GEN_BLOBS ? 2 : 1;
    g->width = c->stream == SL_GEN_SPARSE ? c->vocab : c->dim;
    size_t n = (size_t)g->k * g->width;
    g->a = malloc(n * sizeof *g->a);
    g->b = malloc(n * sizeof *g->b);
    g->cur = malloc(n * sizeof *g->cur);
    g->x = malloc((size_t)c->dim * sizeof *g->x);
    g->idx = malloc((size_t)(c->nnz ? c->nnz : 1) * sizeof *g->idx);
    if (!g->a || !g->b || !g->cur || !g->x || !g->idx)
        goto nomem;
    sl_rng_seed(&g->rng, c->seed);
    sl_rng_seed(&g->poison_rng, c->seed ^ 0x706f69736f6eull); /* "poison" */
    draw_concept(g, g->a);
    draw_concept(g, g->b);
    msgpack_sbuffer_init(&g->sbuf);
    msgpack_packer_init(&g->pk, &g->sbuf, msgpack_sbuffer_write);
    return g;
nomem:
    sl_errstr_set(errstr, errstr_size, "out of memory");
    sl_gen_destroy(g);
    return NULL;
}

/* How far sample i is into the new concept: 0 before the drift, 1 after. */
static double drift_progress(const sl_gen_t *g, uint64_t i) {
    if (g->c.drift_at == 0 || i < g->c.drift_at)
        return 0.0;
    if (g->c.drift_width == 0)
        return 1.0;
    double p = (double)(i - g->c.drift_at) / (double)g->c.drift_width;
    return p > 1.0 ? 1.0 : p;
}

static void set_concept(sl_gen_t *g, double p) {
    size_t n = (size_t)g->k * g->width;
    for (size_t i = 0; i < n; i++)
        g->cur[i] = (float)((1.0 - p) * g->a[i] + p * g->b[i]);
}

/* Draws one sample's features; returns its per-direction scores in score[k]. */
static void draw_features(sl_gen_t *g, double *score) {
    uint32_t dim = g->c.dim;
    if (g->c.stream == SL_GEN_SPARSE) {
        for (uint32_t j = 0; j < g->c.nnz; j++)
            g->idx[j] = sl_rng_below(&g->rng, g->c.vocab);
        for (uint32_t c = 0; c < g->k; c++) {
            score[c] = 0;
            for (uint32_t j = 0; j < g->c.nnz; j++)
                score[c] += g->cur[(size_t)c * g->width + g->idx[j]];
            score[c] /= sqrt((double)g->c.nnz);
        }
        return;
    }
    if (g->c.stream == SL_GEN_BLOBS) {
        uint32_t cls = sl_rng_below(&g->rng, g->k);
        for (uint32_t j = 0; j < dim; j++)
            g->x[j] = (float)(g->cur[(size_t)cls * dim + j] * 1.5 + sl_rng_normal(&g->rng));
        for (uint32_t c = 0; c < g->k; c++)
            score[c] = c == cls ? 1.0 : 0.0;
        return;
    }
    for (uint32_t j = 0; j < dim; j++)
        g->x[j] = (float)sl_rng_normal(&g->rng);
    for (uint32_t c = 0; c < g->k; c++) {
        double s = 0;
        for (uint32_t j = 0; j < dim; j++)
            s += (double)g->cur[(size_t)c * dim + j] * g->x[j];
        score[c] = s / sqrt((double)dim);
    }
}

static double label_of(sl_gen_t *g, const double *score) {
    if (g->c.head == SL_HEAD_LINEAR)
        return score[0] + g->c.noise * sl_rng_normal(&g->rng);
    uint32_t classes = g->c.head == SL_HEAD_SOFTMAX ? g->k : 2;
    uint32_t y;
    if (g->c.head == SL_HEAD_SOFTMAX || g->c.stream == SL_GEN_BLOBS) {
        y = 0;
        for (uint32_t c = 1; c < g->k; c++)
            if (score[c] > score[y])
                y = c;
    } else {
        y = score[0] > 0;
    }
    if (sl_rng_uniform(&g->rng) < g->c.noise)
        y = sl_rng_below(&g->rng, classes);
    return y;
}

/* The label of sample i after --poison: unchanged outside [poison_from,
 * poison_to). Draws only from the poison generator. */
static double poisoned(sl_gen_t *g, uint64_t i, double y) {
    if (i < g->c.poison_from || i >= g->c.poison_to)
        return y;
    uint32_t classes = g->c.head == SL_HEAD_SOFTMAX ? g->k : 2;
    if (g->c.poison == SL_GEN_POISON_RANDOM)
        return g->c.head == SL_HEAD_LINEAR ? sl_rng_normal(&g->poison_rng)
                                           : (double)sl_rng_below(&g->poison_rng, classes);
    if (g->c.head == SL_HEAD_LINEAR)
        return -y;
    return (double)(((uint32_t)y + 1) % classes);
}

/* --poison-from, --poison-to (both or neither) and --poison. */
static sl_err_t load_poison(const sl_opts_t *o, sl_gen_config_t *c, char *errstr,
                            size_t errstr_size) {
    sl_err_t from =
        sl_opts_uint(o, "poison-from", 0, UINT64_MAX, &c->poison_from, errstr, errstr_size);
    sl_err_t to = sl_opts_uint(o, "poison-to", 0, UINT64_MAX, &c->poison_to, errstr, errstr_size);
    if (from != SL_OK && from != SL_ERR_EOF)
        return from;
    if (to != SL_OK && to != SL_ERR_EOF)
        return to;
    if ((from == SL_OK) != (to == SL_OK) || (to == SL_OK && c->poison_to <= c->poison_from)) {
        sl_errstr_set(errstr, errstr_size,
                      "--poison-from/--poison-to: give both, with --poison-to above --poison-from");
        return SL_ERR_INVAL;
    }
    const char *how = "flip";
    sl_opts_str(o, "poison", &how);
    if (strcmp(how, "flip") != 0 && strcmp(how, "random") != 0) {
        sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not one of flip, random",
                      sl_opts_origin(o, "poison"), how);
        return SL_ERR_INVAL;
    }
    c->poison = strcmp(how, "random") == 0 ? SL_GEN_POISON_RANDOM : SL_GEN_POISON_FLIP;
    return SL_OK;
}

static void pack_key(msgpack_packer *pk, const char *k) {
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void pack_sample(sl_gen_t *g) {
    uint64_t i = g->next++;
    double p = drift_progress(g, i);
    if (i == 0 || p != drift_progress(g, i - 1))
        set_concept(g, p);
    double score[g->k];
    draw_features(g, score);
    double y = label_of(g, score);
    int labelled = sl_rng_uniform(&g->rng) < g->c.labelled_fraction;
    if (labelled)
        y = poisoned(g, i, y);
    msgpack_packer *pk = &g->pk;
    msgpack_pack_map(pk, labelled ? 3 : 2);
    pack_key(pk, "id");
    msgpack_pack_uint64(pk, i);
    pack_key(pk, "x");
    if (g->c.stream == SL_GEN_SPARSE) {
        msgpack_pack_map(pk, g->c.nnz);
        for (uint32_t j = 0; j < g->c.nnz; j++) {
            char name[16];
            snprintf(name, sizeof name, "f%u", g->idx[j]);
            pack_key(pk, name);
            msgpack_pack_float(pk, 1.0f);
        }
    } else if (g->c.bin_form) {
        msgpack_pack_bin(pk, (size_t)g->c.dim * 4);
        msgpack_pack_bin_body(pk, g->x, (size_t)g->c.dim * 4); /* little-endian hosts */
    } else {
        msgpack_pack_array(pk, g->c.dim);
        for (uint32_t j = 0; j < g->c.dim; j++)
            msgpack_pack_float(pk, g->x[j]);
    }
    if (labelled) {
        pack_key(pk, "y");
        if (g->c.head == SL_HEAD_LINEAR)
            msgpack_pack_float(pk, (float)y);
        else
            msgpack_pack_uint32(pk, (uint32_t)y);
    }
}

size_t sl_gen_message(sl_gen_t *g, const uint8_t **msg, size_t *len) {
    uint64_t left = g->c.samples - g->next;
    size_t n = left < g->c.per_message ? (size_t)left : g->c.per_message;
    msgpack_sbuffer_clear(&g->sbuf);
    if (n == 0)
        return 0;
    if (g->c.per_message > 1)
        msgpack_pack_array(&g->pk, n);
    for (size_t i = 0; i < n; i++)
        pack_sample(g);
    *msg = (const uint8_t *)g->sbuf.data;
    *len = g->sbuf.size;
    return n;
}

uint64_t sl_gen_produced(const sl_gen_t *g) {
    return g->next;
}

static const char *const stream_names[] = {"hyperplane", "blobs", "sparse"};

sl_err_t sl_gen_stream_parse(const char *name, sl_gen_stream_t *out) {
    for (size_t i = 0; i < sizeof stream_names / sizeof stream_names[0]; i++) {
        if (strcmp(name, stream_names[i]) == 0) {
            *out = (sl_gen_stream_t)i;
            return SL_OK;
        }
    }
    return SL_ERR_INVAL;
}

sl_err_t sl_gen_config_load(const sl_opts_t *o, sl_gen_config_t *c, char *errstr,
                            size_t errstr_size) {
    memset(c, 0, sizeof *c);
    uint64_t u;
    sl_err_t err;
#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((err = (call)) != SL_OK && err != SL_ERR_EOF)                                          \
            return err;                                                                            \
    } while (0)
#define CHOICE(name, parse, out)                                                                   \
    do {                                                                                           \
        const char *v_ = NULL;                                                                     \
        TRY(sl_opts_choice(o, (name), &v_, errstr, errstr_size));                                  \
        if (v_ && parse(v_, (out)) != SL_OK) {                                                     \
            sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not known to this build",            \
                          sl_opts_origin(o, (name)), v_);                                          \
            return SL_ERR_INVAL;                                                                   \
        }                                                                                          \
    } while (0)
    CHOICE("model", sl_model_head_parse, &c->head);
    u = 0;
    TRY(sl_opts_uint(o, "dim", 1, 1u << 24, &u, errstr, errstr_size));
    c->dim = (uint32_t)u;
    u = 0;
    TRY(sl_opts_uint(o, "classes", 2, 1u << 16, &u, errstr, errstr_size));
    c->classes = (uint32_t)u;
    TRY(sl_opts_uint(o, "seed", 0, UINT64_MAX, &c->seed, errstr, errstr_size));
    TRY(sl_opts_uint(o, "samples", 0, UINT64_MAX, &c->samples, errstr, errstr_size));
    CHOICE("stream", sl_gen_stream_parse, &c->stream);
    TRY(sl_opts_double(o, "labelled-fraction", 0, 1, &c->labelled_fraction, errstr, errstr_size));
    TRY(sl_opts_double(o, "noise", 0, 1e6, &c->noise, errstr, errstr_size));
    TRY(sl_opts_uint(o, "drift-at", 0, UINT64_MAX, &c->drift_at, errstr, errstr_size));
    TRY(sl_opts_uint(o, "drift-width", 0, UINT64_MAX, &c->drift_width, errstr, errstr_size));
    if ((err = load_poison(o, c, errstr, errstr_size)) != SL_OK)
        return err;
    TRY(sl_opts_double(o, "rate", 0, 1e9, &c->rate, errstr, errstr_size));
    TRY(sl_opts_uint(o, "per-message", 1, 1u << 16, &u, errstr, errstr_size));
    c->per_message = (uint32_t)u;
    const char *form = "array";
    TRY(sl_opts_choice(o, "form", &form, errstr, errstr_size));
    c->bin_form = strcmp(form, "bin") == 0;
    TRY(sl_opts_uint(o, "vocab", 1, 1u << 24, &u, errstr, errstr_size));
    c->vocab = (uint32_t)u;
    TRY(sl_opts_uint(o, "nnz", 1, 1u << 16, &u, errstr, errstr_size));
    c->nnz = (uint32_t)u;
#undef CHOICE
#undef TRY
    return SL_OK;
}

static uint64_t now_ns(void);

/* Sleeps until `due_ns` on CLOCK_MONOTONIC, but only once it is at least
 * 1 ms ahead: a sleep per message costs a syscall and a wakeup every 50 us
 * at 20,000 samples/s (half a core, taken from the worker measured beside
 * it), so messages go out in bursts of at most 1 ms worth. */
static void sleep_until(uint64_t due_ns) {
    if (due_ns < now_ns() + 1000000u)
        return;
    struct timespec ts = {(time_t)(due_ns / 1000000000u), (long)(due_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Where gen's messages go: a file, or a topic through an idempotent producer. */
typedef struct sink {
    FILE *file;
    const char *path;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uint64_t failed; /* delivery failures reported by librdkafka */
} sink_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    sink_t *s = opaque;
    if (m->err) {
        if (s->failed++ == 0)
            sl_log(SL_LOG_ERROR, "gen: message not delivered",
                   SL_STR("error", rd_kafka_err2str(m->err)));
    }
}

static int sink_open_topic(sink_t *s, const sl_opts_t *o, const char *topic, char *errstr,
                           size_t errstr_size) {
    const char *brokers = NULL;
    if (sl_opts_str(o, "brokers", &brokers) != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "--topic: needs --brokers");
        return 2;
    }
    size_t n = sl_opts_nkafka(o);
    sl_kconf_prop_t props[n ? n : 1];
    for (size_t i = 0; i < n; i++)
        sl_opts_kafka(o, i, &props[i].name, &props[i].value);
    sl_kconf_spec_t spec = {.brokers = brokers, .props = props, .nprops = n};
    rd_kafka_conf_t *conf = sl_kconf_build(&spec, SL_KCONF_PRODUCER, errstr, errstr_size);
    if (!conf)
        return 2;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, s);
    s->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!s->rk) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    s->rkt = rd_kafka_topic_new(s->rk, topic, NULL);
    return s->rkt ? 0 : 1;
}

/* Sends one message; a full producer queue is waited out, never dropped. */
static int sink_write(sink_t *s, const uint8_t *msg, size_t len, uint64_t key) {
    if (s->file) {
        if (fwrite(msg, 1, len, s->file) != len) {
            sl_log(SL_LOG_ERROR, "gen: cannot write", SL_STR("path", s->path),
                   SL_STR("error", strerror(errno)));
            return -1;
        }
        return 0;
    }
    char k[24];
    int klen = snprintf(k, sizeof k, "%llu", (unsigned long long)key);
    for (;;) {
        if (rd_kafka_produce(s->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)msg, len,
                             k, (size_t)klen, NULL) == 0)
            break;
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            sl_log(SL_LOG_ERROR, "gen: cannot produce", SL_STR("error", rd_kafka_err2str(err)));
            return -1;
        }
        rd_kafka_poll(s->rk, 50);
    }
    rd_kafka_poll(s->rk, 0);
    return 0;
}

/* Flushes and closes; returns 0 when everything was written or delivered. */
static int sink_close(sink_t *s) {
    int rc = 0;
    if (s->file && s->file != stdout) {
        if (fclose(s->file) != 0)
            rc = -1;
    } else if (s->file && fflush(s->file) != 0) {
        rc = -1;
    }
    if (s->rk) {
        if (rd_kafka_flush(s->rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            sl_log(SL_LOG_ERROR, "gen: messages still undelivered after 30 s",
                   SL_I64("in_queue", rd_kafka_outq_len(s->rk)));
            rc = -1;
        }
        if (s->failed)
            rc = -1;
        if (s->rkt)
            rd_kafka_topic_destroy(s->rkt);
        rd_kafka_destroy(s->rk);
    }
    return rc;
}

int sl_cmd_gen(int argc, char **argv) {
    char errstr[512];
    int code = 2;
    sl_gen_t *g = NULL;
    sink_t sink = {0};
    sl_opts_t *o = sl_opts_start(SL_CMD_GEN, "gen", usage, argc, argv, &code);
    if (!o)
        return code;
    sl_gen_config_t c;
    const char *topic = NULL;
    if (sl_gen_config_load(o, &c, errstr, sizeof errstr) != SL_OK ||
        !(g = sl_gen_new(&c, errstr, sizeof errstr))) {
        fprintf(stderr, "streamlearn gen: %s\n", errstr);
        goto done;
    }
    int has_file = sl_opts_str(o, "output", &sink.path) == SL_OK;
    int has_topic = sl_opts_str(o, "topic", &topic) == SL_OK;
    if (has_file == has_topic) {
        fprintf(stderr, "streamlearn gen: give exactly one of --output FILE or --topic T\n");
        goto done;
    }
    if (has_topic) {
        int rc = sink_open_topic(&sink, o, topic, errstr, sizeof errstr);
        if (rc != 0) {
            fprintf(stderr, "streamlearn gen: %s\n", errstr);
            code = rc;
            goto done;
        }
    } else {
        sink.file = strcmp(sink.path, "-") == 0 ? stdout : fopen(sink.path, "wb");
        if (!sink.file) {
            fprintf(stderr, "streamlearn gen: --output %s: %s\n", sink.path, strerror(errno));
            code = 1;
            goto done;
        }
    }
    code = 1;
    uint64_t t0 = now_ns(), messages = 0;
    const uint8_t *msg;
    size_t len;
    while (sl_gen_message(g, &msg, &len) > 0) {
        if (sink_write(&sink, msg, len, messages++) != 0)
            goto done;
        if (c.rate > 0)
            sleep_until(t0 + (uint64_t)((double)sl_gen_produced(g) / c.rate * 1e9));
    }
    int closed = sink_close(&sink);
    memset(&sink, 0, sizeof sink);
    if (closed != 0) {
        fprintf(stderr, "streamlearn gen: not every message was written or delivered\n");
        goto done;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    sl_log(SL_LOG_INFO, "gen finished", SL_U64("samples", sl_gen_produced(g)),
           SL_U64("messages", messages), SL_DBL("seconds", secs),
           SL_DBL("samples_per_s", secs > 0 ? (double)sl_gen_produced(g) / secs : 0));
    code = 0;
done:
    sink_close(&sink);
    sl_gen_destroy(g);
    sl_opts_destroy(o);
    return code;
}
