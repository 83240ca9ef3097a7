/* options.c - the option table and flag/env/INI resolution. */

#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

#define L SL_CMD_LEARN
#define R SL_CMD_RUN
#define P SL_CMD_REPLAY
#define M SL_CMD_MODELS
#define D SL_CMD_DEVKAFKA
#define G SL_CMD_GEN
#define A SL_CMD_ALL

/* clang-format off */
const sl_optdef_t sl_optdefs[] = {
    /* general */
    {"config", SL_OPT_STR, A, NULL, NULL, "general", "INI file with options (keys = flag names; [kafka] = librdkafka properties); also -c", 0},
    {"log-level", SL_OPT_CHOICE, A, "info", "debug|info|warn|error", "general", "lowest level logged (JSON lines on stderr)", 0},
    /* model */
    {"model", SL_OPT_CHOICE, L | G, "logistic", "linear|logistic|softmax", "model", "head: linear (MSE), logistic (BCE), softmax (cross-entropy)", 0},
    {"dim", SL_OPT_UINT, L | G, NULL, NULL, "model", "number of input features (required)", 0},
    {"classes", SL_OPT_UINT, L | G, NULL, NULL, "model", "classes K (softmax; required there, >= 2)", 0},
    {"hidden", SL_OPT_STR, L, "", NULL, "model", "hidden layer sizes, comma-separated (empty: none)", 0},
    {"activation", SL_OPT_CHOICE, L, "relu", "relu|tanh|sigmoid", "model", "activation between layers", 0},
    {"seed", SL_OPT_UINT, L | G, "0", NULL, "model", "seed of the weight initialisation (and of gen's stream)", 0},
    {"init", SL_OPT_STR, L, NULL, NULL, "model", "start from these weights (safetensors, nn.Sequential names)", 0},
    {"save", SL_OPT_STR, P, NULL, NULL, "model", "write the final weights here: safetensors, or ONNX when the file ends in .onnx", 0},
    {"scale", SL_OPT_CHOICE, L, "auto", "off|standard|maxabs|auto", "model", "online feature scaling, part of the model: standard (running mean and deviation), maxabs (divides by the largest absolute value seen: sparse inputs stay sparse), auto (standard for dense samples, maxabs for sparse ones; with --init, the file's scaler or none), off (raw features: with an explicit --optimizer, the PyTorch loop exactly)", 0},
    {"fold-scaler", SL_OPT_BOOL, P | M, "false", NULL, "model", "--save/export: fold the scaler into layer 0 (a plain nn.Sequential or ONNX graph on raw features) instead of writing scaler.* tensors or scaling nodes", 0},
    /* optimizer */
    {"optimizer", SL_OPT_CHOICE, L, "auto", "sgd|adam|adamw|adagrad|rmsprop|ftrl|auto", "optimizer", "auto: the stream default, normalized adaptive steps that need no tuning (docs/LEARNING.md); sgd..rmsprop: torch.optim's rules and defaults; ftrl: FTRL-Proximal", 0},
    {"lr", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "learning rate (default: auto 2, a base step normalized per layer; torch's for the others; sgd 0.01)", 0},
    {"momentum", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "momentum (auto 0.5, in [0, 1); sgd, rmsprop 0)", 0},
    {"nesterov", SL_OPT_BOOL, L, "false", NULL, "optimizer", "Nesterov momentum (sgd)", 0},
    {"beta1", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "Adam/AdamW beta1 (default 0.9)", 0},
    {"beta2", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "Adam/AdamW beta2 (default 0.999)", 0},
    {"alpha", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "RMSprop smoothing constant (default 0.99)", 0},
    {"eps", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "epsilon (default: torch's for the optimizer; auto 1e-10)", 0},
    {"weight-decay", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "weight decay (default 0; adamw 0.01)", 0},
    {"ftrl-alpha", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "FTRL alpha (default 0.1)", 0},
    {"ftrl-beta", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "FTRL beta (default 1)", 0},
    {"l1", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "FTRL L1 strength (default 0)", 0},
    {"l2", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "FTRL L2 strength (default 0)", 0},
    {"clip-norm", SL_OPT_DOUBLE, L, NULL, NULL, "optimizer", "clip the gradient's global L2 norm to this (default: no clipping)", 0},
    /* batching and input */
    {"batch-size", SL_OPT_UINT, L, "64", NULL, "batching", "samples per mini-batch", 0},
    {"linger-ms", SL_OPT_UINT, R, "20", NULL, "batching", "close a partial batch after this many ms", 0},
    {"max-message-bytes", SL_OPT_UINT, L, "1048576", NULL, "batching", "reject a message (or replay object) larger than this", 0},
    {"metrics-window", SL_OPT_UINT, L, "1000", NULL, "batching", "labelled samples in the sliding prequential-metrics window", 0},
    {"blas-threads", SL_OPT_UINT, L, "1", NULL, "batching", "OpenBLAS threads", 0},
    /* replay */
    {"input", SL_OPT_STR, P, NULL, NULL, "replay", "input file of msgpack samples (- = stdin; required)", 0},
    {"output", SL_OPT_STR, P, "-", NULL, "replay", "output file of msgpack predictions (- = stdout)", 0},
    {"report", SL_OPT_BOOL, P, "false", NULL, "replay", "print the prequential score and the settings that made it on stderr at the end", 0},
    /* gen */
    {"output", SL_OPT_STR, G, NULL, NULL, "gen", "write the samples to this file (- = stdout) instead of a topic", 0},
    {"topic", SL_OPT_STR, G, NULL, NULL, "gen", "produce the samples to this topic (with --brokers)", 0},
    {"samples", SL_OPT_UINT, G, "10000", NULL, "gen", "samples to generate", 0},
    {"stream", SL_OPT_CHOICE, G, "hyperplane", "hyperplane|blobs|sparse", "gen", "kind of stream: random hyperplane, Gaussian blobs (dense), or sparse named features", 0},
    {"labelled-fraction", SL_OPT_DOUBLE, G, "1", NULL, "gen", "fraction of samples that carry a label y", 0},
    {"noise", SL_OPT_DOUBLE, G, "0.05", NULL, "gen", "label noise: probability of a random label (regression: stddev)", 0},
    {"drift-at", SL_OPT_UINT, G, "0", NULL, "gen", "sample at which the concept changes (0 = never)", 0},
    {"drift-width", SL_OPT_UINT, G, "0", NULL, "gen", "samples over which the change is spread (0 = sudden)", 0},
    {"poison-from", SL_OPT_UINT, G, NULL, NULL, "gen", "first sample whose label is corrupted (with --poison-to)", 0},
    {"poison-to", SL_OPT_UINT, G, NULL, NULL, "gen", "labels of samples --poison-from .. this - 1 are corrupted", 0},
    {"poison", SL_OPT_CHOICE, G, "flip", "flip|random", "gen", "how: flip (logistic 1-y, softmax (y+1) mod K, linear -y) or random (a label drawn at random)", 0},
    {"rate", SL_OPT_DOUBLE, G, "0", NULL, "gen", "target samples/s (0 = as fast as possible)", 0},
    {"per-message", SL_OPT_UINT, G, "1", NULL, "gen", "samples per message (more than 1: an array of samples)", 0},
    {"form", SL_OPT_CHOICE, G, "array", "array|bin", "gen", "dense features as a float array or a float32 bin", 0},
    {"vocab", SL_OPT_UINT, G, "1000", NULL, "gen", "sparse: number of distinct feature names", 0},
    {"nnz", SL_OPT_UINT, G, "10", NULL, "gen", "sparse: features per sample", 0},
    /* run */
    {"brokers", SL_OPT_STR, R | G, NULL, NULL, "kafka", "bootstrap servers, or 'embedded' for an in-process dev cluster", 0},
    {"group", SL_OPT_STR, R, "streamlearn", NULL, "kafka", "consumer group", 0},
    {"input-topic", SL_OPT_STR, R, NULL, NULL, "kafka", "topic of samples", 0},
    {"output-topic", SL_OPT_STR, R, NULL, NULL, "kafka", "topic for predictions", 0},
    {"dlq-topic", SL_OPT_STR, R, NULL, NULL, "kafka", "dead-letter topic for bad samples (default: none, count and log)", 0},
    {"kafka-opt", SL_OPT_STR, R | G, NULL, NULL, "kafka", "librdkafka property name=value (repeatable)", 0},
    {"stats-interval-ms", SL_OPT_UINT, R, "5000", NULL, "kafka", "period of the stats log line (0 = off)", 0},
    {"redis", SL_OPT_STR, R | M, NULL, NULL, "redis", "redis://[user:password@]host:port[/db]", 1},
    {"model-name", SL_OPT_STR, R | M, "default", NULL, "redis", "name of the model in Redis", 0},
    {"snapshot-every-batches", SL_OPT_UINT, R, "100", NULL, "redis", "snapshot after this many batches (0 = off)", 0},
    {"snapshot-every-ms", SL_OPT_UINT, R, "10000", NULL, "redis", "snapshot at least this often (0 = off)", 0},
    {"keep-versions", SL_OPT_UINT, R | M, "20", NULL, "redis", "retention: keep the newest K versions (+ pinned + head)", 0},
    {"role", SL_OPT_CHOICE, R, "both", "trainer|predictor|both", "operations", "trainer: the one learner (a second is a hot standby); predictor: forward pass only, follows head; both: one process doing both", 0},
    {"http-port", SL_OPT_UINT, R, "0", NULL, "operations", "serve /healthz, /readyz, /metrics and a status page on this port (0 = off)", 0},
    {"http-bind", SL_OPT_STR, R, "127.0.0.1", NULL, "operations", "address the HTTP server listens on (0.0.0.0 in a pod)", 0},
    /* models */
    {"json", SL_OPT_BOOL, M, "false", NULL, "models", "machine-readable output", 0},
    {"reason", SL_OPT_STR, M, NULL, NULL, "models", "rollback: reason recorded in the audit log", 0},
    {"rewind", SL_OPT_BOOL, M, "false", NULL, "models", "rollback: also move consumers back to the version's offsets", 0},
    {"out", SL_OPT_STR, M, NULL, NULL, "models", "export: output file (safetensors, or ONNX when it ends in .onnx)", 0},
    {"format", SL_OPT_CHOICE, M, NULL, "safetensors|onnx", "models", "export: file format (default: from the --out extension, else safetensors)", 0},
    {"model", SL_OPT_CHOICE, M, NULL, "linear|logistic|softmax", "models", "import with no head: head of a one-output file without streamlearn metadata (default logistic)", 0},
    {"activation", SL_OPT_CHOICE, M, NULL, "relu|tanh|sigmoid", "models", "import with no head: activation when the file does not say (default relu)", 0},
    {"optimizer", SL_OPT_CHOICE, M, "auto", "sgd|adam|adamw|adagrad|rmsprop|ftrl|auto", "models", "import with no head: optimizer of the new version", 0},
    {"lr", SL_OPT_DOUBLE, M, NULL, NULL, "models", "import with no head: learning rate (default: the optimizer's)", 0},
    /* dev-kafka */
    {"broker-count", SL_OPT_UINT, D, "1", NULL, "dev-kafka", "number of embedded brokers (the flag --brokers N is still accepted)", 0},
    {"topics", SL_OPT_STR, D, NULL, NULL, "dev-kafka", "topics to create, NAME:PARTITIONS,...", 0},
    {"bootstrap-file", SL_OPT_STR, D, NULL, NULL, "dev-kafka", "also write the bootstrap address to this file", 0},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, 0},
};
/* clang-format on */

typedef struct sl_optval {
    char *value;
    sl_opt_source_t source;
    char origin[96];
} sl_optval_t;

typedef struct sl_kv {
    char *name, *value;
    sl_opt_source_t source;
} sl_kv_t;

struct sl_opts {
    unsigned command;
    sl_optval_t *vals; /* one per sl_optdefs row */
    char **pos;
    size_t npos;
    sl_kv_t *kafka;
    size_t nkafka;
    char **ignored; /* INI keys that belong to other commands */
    size_t nignored;
};

/* Older flag names still accepted on the command line (never from the
 * environment or the INI file, where the old name meant something else). */
static const struct {
    unsigned commands;
    const char *old_name, *new_name;
} renamed_flags[] = {
    /* a count of brokers, not the bootstrap list --brokers means elsewhere */
    {SL_CMD_DEVKAFKA, "brokers", "broker-count"},
};

static size_t n_defs(void) {
    size_t n = 0;
    while (sl_optdefs[n].name)
        n++;
    return n;
}

/* The row of `name` for `command`, or -1. */
static long find_def(unsigned command, const char *name, size_t len) {
    for (size_t i = 0; sl_optdefs[i].name; i++) {
        const sl_optdef_t *d = &sl_optdefs[i];
        if ((d->commands & command) && strlen(d->name) == len && strncmp(d->name, name, len) == 0)
            return (long)i;
    }
    return -1;
}

/* The row a command-line flag names: its own row, or the row it was renamed to. */
static long find_flag(unsigned command, const char *name, size_t len) {
    long i = find_def(command, name, len);
    for (size_t r = 0; i < 0 && r < sizeof renamed_flags / sizeof renamed_flags[0]; r++)
        if ((renamed_flags[r].commands & command) && strlen(renamed_flags[r].old_name) == len &&
            strncmp(renamed_flags[r].old_name, name, len) == 0)
            i = find_def(command, renamed_flags[r].new_name, strlen(renamed_flags[r].new_name));
    return i;
}

/* "true", "false", "yes", ...: a word that reads as a boolean value. */
static int is_bool_word(const char *s) {
    static const char *words[] = {"true", "false", "yes", "no", "on", "off"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasecmp(s, words[i]) == 0)
            return 1;
    return 0;
}

static int set_val(sl_opts_t *o, long i, const char *value, sl_opt_source_t src,
                   const char *origin) {
    sl_optval_t *v = &o->vals[i];
    if (v->value && v->source > src)
        return 0;
    char *copy = strdup(value);
    if (!copy)
        return -1;
    free(v->value);
    v->value = copy;
    v->source = src;
    snprintf(v->origin, sizeof v->origin, "%s", origin);
    return 0;
}

static int add_kafka(sl_opts_t *o, const char *name, size_t name_len, const char *value,
                     sl_opt_source_t src) {
    for (size_t i = 0; i < o->nkafka; i++) {
        if (strlen(o->kafka[i].name) == name_len && !strncmp(o->kafka[i].name, name, name_len)) {
            if (o->kafka[i].source > src)
                return 0;
            char *copy = strdup(value);
            if (!copy)
                return -1;
            free(o->kafka[i].value);
            o->kafka[i].value = copy;
            o->kafka[i].source = src;
            return 0;
        }
    }
    sl_kv_t *k = realloc(o->kafka, (o->nkafka + 1) * sizeof *k);
    if (!k)
        return -1;
    o->kafka = k;
    k[o->nkafka].name = strndup(name, name_len);
    k[o->nkafka].value = strdup(value);
    k[o->nkafka].source = src;
    if (!k[o->nkafka].name || !k[o->nkafka].value) {
        free(k[o->nkafka].name);
        free(k[o->nkafka].value);
        return -1;
    }
    o->nkafka++;
    return 0;
}

/* "name=value" for --kafka-opt. */
static int add_kafka_pair(sl_opts_t *o, const char *pair, sl_opt_source_t src, char *errstr,
                          size_t errstr_size, const char *origin) {
    const char *eq = strchr(pair, '=');
    if (!eq || eq == pair) {
        sl_errstr_set(errstr, errstr_size, "%s: expected name=value, got \"%s\"", origin,
                      sl_redact_key_is_secret(pair) ? "***" : pair);
        return -1;
    }
    if (add_kafka(o, pair, (size_t)(eq - pair), eq + 1, src) != 0) {
        sl_errstr_set(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

void sl_opts_destroy(sl_opts_t *o) {
    if (!o)
        return;
    size_t n = n_defs();
    if (o->vals)
        for (size_t i = 0; i < n; i++)
            free(o->vals[i].value);
    free(o->vals);
    for (size_t i = 0; i < o->nkafka; i++) {
        free(o->kafka[i].name);
        free(o->kafka[i].value);
    }
    free(o->kafka);
    for (size_t i = 0; i < o->nignored; i++)
        free(o->ignored[i]);
    free(o->ignored);
    free(o->pos);
    free(o);
}

/* Remembers an INI key of another command, for the debug note. */
static int add_ignored(sl_opts_t *o, const char *name) {
    char **k = realloc(o->ignored, (o->nignored + 1) * sizeof *k);
    if (!k)
        return -1;
    o->ignored = k;
    if (!(k[o->nignored] = strdup(name)))
        return -1;
    o->nignored++;
    return 0;
}

typedef struct ini_ctx {
    sl_opts_t *o;
    const char *path;
    char *errstr;
    size_t errstr_size;
    int failed;
} ini_ctx_t;

static int on_ini_key(void *user, const char *section, const char *name, const char *value) {
    ini_ctx_t *c = user;
    if (c->failed)
        return 0;
    if (strcasecmp(section, "kafka") == 0) {
        if (add_kafka(c->o, name, strlen(name), value, SL_SRC_FILE) != 0) {
            sl_errstr_set(c->errstr, c->errstr_size, "out of memory");
            c->failed = 1;
            return 0;
        }
        return 1;
    }
    long i = find_def(c->o->command, name, strlen(name));
    int reserved = strcmp(name, "config") == 0 || strcmp(name, "kafka-opt") == 0;
    if (i < 0 && !reserved && find_def(SL_CMD_ALL, name, strlen(name)) >= 0) {
        /* One file serves every command: another command's key is not ours to check. */
        if (add_ignored(c->o, name) != 0) {
            sl_errstr_set(c->errstr, c->errstr_size, "out of memory");
            c->failed = 1;
            return 0;
        }
        return 1;
    }
    if (i < 0 || reserved) {
        sl_errstr_set(c->errstr, c->errstr_size,
                      "%s: unknown key \"%s\"%s%s%s (keys are flag names of streamlearn's "
                      "commands; librdkafka properties go in [kafka])",
                      c->path, name, *section ? " in [" : "", section, *section ? "]" : "");
        c->failed = 1;
        return 0;
    }
    char origin[96];
    snprintf(origin, sizeof origin, "config key %s", name);
    if (set_val(c->o, i, value, SL_SRC_FILE, origin) != 0) {
        c->failed = 1;
        return 0;
    }
    return 1;
}

static void env_name(const char *name, char *out, size_t out_size) {
    size_t n = (size_t)snprintf(out, out_size, "STREAMLEARN_");
    for (const char *p = name; *p && n + 1 < out_size; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = '\0';
}

extern char **environ;

/* STREAMLEARN_KAFKA_SASL_PASSWORD=... sets librdkafka's sasl.password. */
static int load_kafka_env(sl_opts_t *o) {
    static const char prefix[] = "STREAMLEARN_KAFKA_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0)
            continue;
        const char *name = *e + sizeof prefix - 1;
        const char *eq = strchr(name, '=');
        if (!eq || eq == name || (eq - name == 3 && !strncmp(name, "OPT", 3)))
            continue;
        char prop[128];
        size_t n = (size_t)(eq - name);
        if (n >= sizeof prop)
            continue;
        for (size_t i = 0; i < n; i++)
            prop[i] = name[i] == '_' ? '.' : (char)tolower((unsigned char)name[i]);
        if (add_kafka(o, prop, n, eq + 1, SL_SRC_ENV) != 0)
            return -1;
    }
    return 0;
}

sl_opts_t *sl_opts_parse(unsigned command, int argc, char **argv, int *help, char *errstr,
                         size_t errstr_size) {
    size_t ndefs = n_defs();
    *help = 0;
    sl_opts_t *o = calloc(1, sizeof *o);
    if (!o)
        goto nomem;
    o->command = command;
    o->vals = calloc(ndefs, sizeof *o->vals);
    o->pos = calloc((size_t)argc + 1, sizeof *o->pos);
    if (!o->vals || !o->pos)
        goto nomem;

    /* 1. flags */
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = 1;
            continue;
        }
        if (strcmp(arg, "-c") == 0) {
            if (a + 1 >= argc) {
                sl_errstr_set(errstr, errstr_size, "-c: missing file name");
                goto fail;
            }
            if (set_val(o, find_def(command, "config", 6), argv[++a], SL_SRC_FLAG, "-c") != 0)
                goto nomem;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            if (strcmp(arg, "--") == 0) {
                while (++a < argc)
                    o->pos[o->npos++] = argv[a];
                break;
            }
            o->pos[o->npos++] = argv[a];
            continue;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        long i = find_flag(command, name, name_len);
        if (i < 0) {
            sl_errstr_set(errstr, errstr_size, "--%.*s: unknown option (see --help)", (int)name_len,
                          name);
            goto fail;
        }
        const sl_optdef_t *d = &sl_optdefs[i];
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (d->type == SL_OPT_BOOL) {
            /* "--json false" would silently turn --json on and pass "false" on as an argument */
            if (a + 1 < argc && is_bool_word(argv[a + 1])) {
                sl_errstr_set(errstr, errstr_size,
                              "--%s takes no separate value: write --%s to turn it on, "
                              "--%s=%s to set it",
                              d->name, d->name, d->name, argv[a + 1]);
                goto fail;
            }
            value = "true";
        } else if (a + 1 < argc) {
            value = argv[++a];
        } else {
            sl_errstr_set(errstr, errstr_size, "--%s: missing value", d->name);
            goto fail;
        }
        char origin[96]; /* as typed: an older name stays recognisable in messages */
        snprintf(origin, sizeof origin, "--%.*s", (int)name_len, name);
        if (strcmp(d->name, "kafka-opt") == 0) {
            if (add_kafka_pair(o, value, SL_SRC_FLAG, errstr, errstr_size, origin) != 0)
                goto fail;
            continue;
        }
        if (set_val(o, i, value, SL_SRC_FLAG, origin) != 0)
            goto nomem;
    }

    /* 2. environment */
    for (size_t i = 0; i < ndefs; i++) {
        if (!(sl_optdefs[i].commands & command) || !strcmp(sl_optdefs[i].name, "kafka-opt"))
            continue;
        char name[96];
        env_name(sl_optdefs[i].name, name, sizeof name);
        const char *v = getenv(name);
        if (v && set_val(o, (long)i, v, SL_SRC_ENV, name) != 0)
            goto nomem;
    }
    if (load_kafka_env(o) != 0)
        goto nomem;

    /* 3. config file */
    long ci = find_def(command, "config", 6);
    if (o->vals[ci].value) {
        ini_ctx_t ctx = {o, o->vals[ci].value, errstr, errstr_size, 0};
        int rc = ini_parse(o->vals[ci].value, on_ini_key, &ctx);
        if (rc < 0) {
            sl_errstr_set(errstr, errstr_size, "%s: cannot read config file: %s", o->vals[ci].value,
                          strerror(errno));
            goto fail;
        }
        if (ctx.failed)
            goto fail;
        if (rc > 0) {
            sl_errstr_set(errstr, errstr_size, "%s:%d: syntax error", o->vals[ci].value, rc);
            goto fail;
        }
    }

    /* 4. defaults */
    for (size_t i = 0; i < ndefs; i++) {
        if ((sl_optdefs[i].commands & command) && sl_optdefs[i].defval && !o->vals[i].value &&
            set_val(o, (long)i, sl_optdefs[i].defval, SL_SRC_DEFAULT, "default") != 0)
            goto nomem;
    }
    return o;

nomem:
    sl_errstr_set(errstr, errstr_size, "out of memory");
fail:
    sl_opts_destroy(o);
    return NULL;
}

sl_opts_t *sl_opts_start(unsigned command, const char *name, const char *usage, int argc,
                         char **argv, int *exit_code) {
    char errstr[512];
    int help = 0;
    sl_opts_t *o = sl_opts_parse(command, argc, argv, &help, errstr, sizeof errstr);
    if (!o) {
        fprintf(stderr, "streamlearn %s: %s\n", name, errstr);
        *exit_code = 2;
        return NULL;
    }
    if (help) {
        sl_opts_print_help(command, usage, stdout);
        sl_opts_destroy(o);
        *exit_code = 0;
        return NULL;
    }
    if (sl_opts_npositional(o) > 0) {
        fprintf(stderr, "streamlearn %s: unexpected argument \"%s\"\n", name,
                sl_opts_positional(o, 0));
        sl_opts_destroy(o);
        *exit_code = 2;
        return NULL;
    }
    if (sl_opts_setup_logging(o, errstr, sizeof errstr) != SL_OK) {
        fprintf(stderr, "streamlearn %s: %s\n", name, errstr);
        sl_opts_destroy(o);
        *exit_code = 2;
        return NULL;
    }
    return o;
}

sl_err_t sl_opts_setup_logging(const sl_opts_t *o, char *errstr, size_t errstr_size) {
    const char *name = NULL;
    sl_log_level_t level = SL_LOG_INFO;
    sl_err_t err = sl_opts_choice(o, "log-level", &name, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (sl_log_level_parse(name, &level) != 0) {
        sl_errstr_set(errstr, errstr_size, "%s: no log level is called \"%s\"",
                      sl_opts_origin(o, "log-level"), name);
        return SL_ERR_INVAL;
    }
    sl_log_set_level(level);
    for (size_t i = 0; i < o->nignored; i++)
        sl_log(SL_LOG_DEBUG, "config key ignored: it belongs to another command",
               SL_STR("key", o->ignored[i]),
               SL_STR("file", o->vals[find_def(o->command, "config", 6)].value));
    return SL_OK;
}

static const sl_optval_t *get(const sl_opts_t *o, const char *name) {
    long i = find_def(o->command, name, strlen(name));
    if (i < 0) {
        fprintf(stderr, "streamlearn: internal error: option %s not defined for command\n", name);
        abort();
    }
    return &o->vals[i];
}

int sl_opts_isset(const sl_opts_t *o, const char *name) {
    return get(o, name)->value != NULL;
}

int sl_opts_given(const sl_opts_t *o, const char *name) {
    const sl_optval_t *v = get(o, name);
    return v->value != NULL && v->source != SL_SRC_DEFAULT;
}

const char *sl_opts_origin(const sl_opts_t *o, const char *name) {
    return get(o, name)->origin;
}

sl_err_t sl_opts_str(const sl_opts_t *o, const char *name, const char **out) {
    const sl_optval_t *v = get(o, name);
    if (!v->value)
        return SL_ERR_EOF;
    *out = v->value;
    return SL_OK;
}

sl_err_t sl_opts_uint(const sl_opts_t *o, const char *name, uint64_t min, uint64_t max,
                      uint64_t *out, char *errstr, size_t errstr_size) {
    const sl_optval_t *v = get(o, name);
    if (!v->value)
        return SL_ERR_EOF;
    const char *s = v->value;
    while (isspace((unsigned char)*s))
        s++;
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*s == '-' || !isdigit((unsigned char)*s) || errno || end == s || *end != '\0') {
        sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not a non-negative integer", v->origin,
                      v->value);
        return SL_ERR_INVAL;
    }
    if (x < min || x > max) {
        sl_errstr_set(errstr, errstr_size, "%s: %llu is out of range %llu..%llu", v->origin, x,
                      (unsigned long long)min, (unsigned long long)max);
        return SL_ERR_INVAL;
    }
    *out = x;
    return SL_OK;
}

sl_err_t sl_opts_double(const sl_opts_t *o, const char *name, double min, double max, double *out,
                        char *errstr, size_t errstr_size) {
    const sl_optval_t *v = get(o, name);
    if (!v->value)
        return SL_ERR_EOF;
    char *end = NULL;
    errno = 0;
    double x = strtod(v->value, &end);
    if (errno || end == v->value || *end != '\0' || !isfinite(x)) {
        sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not a finite number", v->origin,
                      v->value);
        return SL_ERR_INVAL;
    }
    if (x < min || x > max) {
        sl_errstr_set(errstr, errstr_size, "%s: %g is out of range [%g, %g]", v->origin, x, min,
                      max);
        return SL_ERR_INVAL;
    }
    *out = x;
    return SL_OK;
}

sl_err_t sl_opts_bool(const sl_opts_t *o, const char *name, int *out, char *errstr,
                      size_t errstr_size) {
    static const char *yes[] = {"true", "1", "yes", "on"};
    static const char *no[] = {"false", "0", "no", "off"};
    const sl_optval_t *v = get(o, name);
    if (!v->value)
        return SL_ERR_EOF;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v->value, yes[i]) == 0) {
            *out = 1;
            return SL_OK;
        }
        if (strcasecmp(v->value, no[i]) == 0) {
            *out = 0;
            return SL_OK;
        }
    }
    sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not a boolean (true/false)", v->origin,
                  v->value);
    return SL_ERR_INVAL;
}

sl_err_t sl_opts_choice(const sl_opts_t *o, const char *name, const char **out, char *errstr,
                        size_t errstr_size) {
    long di = find_def(o->command, name, strlen(name));
    const sl_optval_t *v = get(o, name);
    if (!v->value)
        return SL_ERR_EOF;
    const char *c = sl_optdefs[di].choices;
    size_t len = strlen(v->value);
    while (c && *c) {
        const char *bar = strchr(c, '|');
        size_t clen = bar ? (size_t)(bar - c) : strlen(c);
        if (clen == len && strncasecmp(c, v->value, len) == 0) {
            memcpy(v->value, c, len); /* the table's spelling: "LOGISTIC" -> "logistic" */
            *out = v->value;
            return SL_OK;
        }
        c = bar ? bar + 1 : NULL;
    }
    sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not one of %s", v->origin, v->value,
                  sl_optdefs[di].choices);
    return SL_ERR_INVAL;
}

size_t sl_opts_npositional(const sl_opts_t *o) {
    return o->npos;
}

const char *sl_opts_positional(const sl_opts_t *o, size_t i) {
    return i < o->npos ? o->pos[i] : NULL;
}

size_t sl_opts_nkafka(const sl_opts_t *o) {
    return o->nkafka;
}

void sl_opts_kafka(const sl_opts_t *o, size_t i, const char **name, const char **value) {
    *name = o->kafka[i].name;
    *value = o->kafka[i].value;
}

static const char *type_hint(const sl_optdef_t *d) {
    switch (d->type) {
    case SL_OPT_UINT: return " N";
    case SL_OPT_DOUBLE: return " X";
    case SL_OPT_BOOL: return "";
    case SL_OPT_CHOICE: return " CHOICE";
    case SL_OPT_STR: return " VALUE";
    }
    return "";
}

void sl_opts_print_help(unsigned command, const char *usage, FILE *out) {
    fprintf(out, "%s\n", usage);
    const char *group = NULL;
    for (size_t i = 0; sl_optdefs[i].name; i++) {
        const sl_optdef_t *d = &sl_optdefs[i];
        if (!(d->commands & command))
            continue;
        if (!group || strcmp(group, d->group) != 0) {
            group = d->group;
            fprintf(out, "\n%s:\n", group);
        }
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s", d->name, type_hint(d));
        fprintf(out, "  %-28s %s", flag, d->help);
        if (d->type == SL_OPT_CHOICE)
            fprintf(out, " [%s]", d->choices);
        if (d->defval && *d->defval && !d->secret)
            fprintf(out, " (default %s)", d->defval);
        fputc('\n', out);
    }
    fprintf(out, "\nEvery flag can also come from the environment (STREAMLEARN_<FLAG>, dashes as\n"
                 "underscores) or the -c INI file (key = flag name); flags win, then the\n"
                 "environment, then the file. One INI file can serve every command: keys of\n"
                 "other commands are skipped. A boolean flag alone turns it on; --flag=false\n"
                 "turns it off (environment and file: true/false, 1/0, yes/no, on/off).\n"
                 "librdkafka properties: --kafka-opt name=value, the INI [kafka] section, or\n"
                 "STREAMLEARN_KAFKA_<NAME> (dots as underscores).\n");
}

void sl_opts_print_markdown(FILE *out) {
    static const struct {
        unsigned bit;
        const char *name;
    } cmds[] = {{SL_CMD_RUN, "run"},
                {SL_CMD_REPLAY, "replay"},
                {SL_CMD_MODELS, "models"},
                {SL_CMD_DEVKAFKA, "dev-kafka"},
                {SL_CMD_GEN, "gen"}};
    fprintf(out, "# Configuration reference\n\n"
                 "Generated by `streamlearn help-config` from the option table in "
                 "`cli/options.c`; a test keeps this file equal to its output.\n\n"
                 "Precedence: flags > environment (`STREAMLEARN_<FLAG>`, dashes as underscores) "
                 "> INI file (`-c FILE`, key = flag name, any section but `[kafka]`) > "
                 "defaults. librdkafka properties: `--kafka-opt name=value` (repeatable), the "
                 "INI `[kafka]` section, or `STREAMLEARN_KAFKA_<NAME>` (dots as underscores).\n\n"
                 "- **One INI file for every command.** A key that is a flag of another command "
                 "is skipped (`--log-level debug` names each one); a key that no command has is "
                 "an error (exit status 2), so typos are caught. Where commands share a flag "
                 "name, the `commands` column and the meaning say how each uses it (`--seed` "
                 "seeds both `gen`'s stream and the learners' initialisation).\n"
                 "- **Boolean flags.** `--json` alone turns it on, `--json=false` turns it off. "
                 "A separate word (`--json false`) is refused, so it cannot be mistaken for an "
                 "argument. In the environment and the INI file: `true`/`false`, `1`/`0`, "
                 "`yes`/`no`, `on`/`off`.\n"
                 "- **Values** are checked when the command starts; a bad one exits with status 2 "
                 "and names where it came from (`--lr`, `STREAMLEARN_LR` or `config key lr`).\n");
    for (size_t r = 0; r < sizeof renamed_flags / sizeof renamed_flags[0]; r++) {
        fprintf(out, "- **Renamed.** `--%s` of", renamed_flags[r].old_name);
        for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++)
            if (renamed_flags[r].commands & cmds[c].bit)
                fprintf(out, " `%s`", cmds[c].name);
        fprintf(out,
                " is now `--%s`; the old name still works as a flag, but not in the "
                "environment or the INI file.\n",
                renamed_flags[r].new_name);
    }
    const char *group = NULL;
    for (size_t i = 0; sl_optdefs[i].name; i++) {
        const sl_optdef_t *d = &sl_optdefs[i];
        if (!group || strcmp(group, d->group) != 0) {
            group = d->group;
            fprintf(out,
                    "\n## %s\n\n| flag | environment | default | commands | meaning |\n"
                    "| --- | --- | --- | --- | --- |\n",
                    group);
        }
        char env[96];
        env_name(d->name, env, sizeof env);
        fprintf(out, "| `--%s` | `%s` | %s%s%s | ", d->name, env, d->defval ? "`" : "",
                d->defval ? (*d->defval ? d->defval : "(empty)") : "-", d->defval ? "`" : "");
        int first = 1;
        for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
            if (d->commands & cmds[c].bit) {
                fprintf(out, "%s%s", first ? "" : ", ", cmds[c].name);
                first = 0;
            }
        }
        fprintf(out, " | %s", d->help);
        if (d->type == SL_OPT_CHOICE) {
            fprintf(out, "; one of ");
            for (const char *c = d->choices; *c; c++) {
                if (c == d->choices)
                    fputc('`', out);
                if (*c == '|')
                    fputs("`, `", out);
                else
                    fputc(*c, out);
            }
            fputc('`', out);
        }
        fprintf(out, " |\n");
    }
}
