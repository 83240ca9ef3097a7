/* models.c - `streamlearn models`: inspect and steer the versions of a model
 * in Redis (list, show, rollback, pin, unpin, export, import). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "cli/export.h"
#include "cli/options.h"
#include "common/fileio.h"
#include "model/safetensors.h"
#include "store/keys.h"
#include "store/redis.h"
#include "store/snapshot.h"

/* Largest safetensors file `import` reads. */
#define IMPORT_MAX_BYTES ((size_t)8 << 30)

static const char usage[] =
    "usage: streamlearn models <list|show V|rollback V|pin V|unpin V|export V|import FILE>\n"
    "                          --redis URL --model-name NAME [flags]\n\n"
    "Inspects and steers the versions of a model in Redis:\n"
    "  list                 every version, newest first (--json: a JSON array)\n"
    "  show V               metadata, metrics, offsets and lineage of version V\n"
    "  rollback V           make V head (--reason TEXT is audited; --rewind also moves\n"
    "                       running workers back to V's offsets); workers follow in ~1 s\n"
    "  pin V / unpin V      retention never drops a pinned version\n"
    "  export V --out F     V's weights as safetensors (torch.nn.Sequential names; the\n"
    "                       scaler as scaler.* tensors), or as ONNX with --format onnx\n"
    "                       or an F ending in .onnx (the scaler as its first nodes);\n"
    "                       --fold-scaler folds the scaler into layer 0 instead\n"
    "  import F             F's weights (and scaler.* tensors) as a new version whose\n"
    "                       parent is head; it becomes head (architecture from head,\n"
    "                       else from the file)";

/* What `export` was asked for, checked before Redis is reached. */
typedef struct export_args {
    uint64_t version;
    const char *out;
    sl_export_format_t format;
    int fold; /* --fold-scaler */
} export_args_t;

typedef struct models {
    sl_opts_t *opts;
    sl_redis_t *redis;
    sl_snapshot_t *snap;
    int json;
    export_args_t exp;
    char err[1024];
} models_t;

static int fail(models_t *m, int code) {
    fprintf(stderr, "streamlearn models: %s\n", m->err);
    return code;
}

static int parse_version(models_t *m, const char *sub, uint64_t *v) {
    if (sl_opts_npositional(m->opts) != 2) {
        snprintf(m->err, sizeof m->err, "%s: expected exactly one version number", sub);
        return -1;
    }
    const char *text = sl_opts_positional(m->opts, 1);
    char *end = NULL;
    errno = 0;
    unsigned long long x = strtoull(text, &end, 10);
    if (errno || !*text || *end || text[0] == '-' || x == 0) {
        snprintf(m->err, sizeof m->err, "%s: \"%s\" is not a version number (1, 2, ...)", sub,
                 text);
        return -1;
    }
    *v = x;
    return 0;
}

static int contains(const uint64_t *v, size_t n, uint64_t x) {
    for (size_t i = 0; i < n; i++)
        if (v[i] == x)
            return 1;
    return 0;
}

/* Verifies v's blob; 1 when it reads back with the recorded checksum. */
static int checksum_ok(models_t *m, const sl_snap_meta_t *meta) {
    uint8_t *blob = NULL;
    size_t len = 0;
    char err[512];
    sl_err_t rc = sl_snapshot_read_blob(m->snap, meta, &blob, &len, err, sizeof err);
    free(blob);
    return rc == SL_OK;
}

/* The scaler of a version (mode, statistics' weight, the transform x' = (x -
 * shift) * mult, and a linear head's target statistics); the transform's
 * first 8 features only unless `full`. NULL when the blob does not load. */
static cJSON *scaler_json(models_t *m, const sl_snap_meta_t *meta, int full) {
    uint8_t *blob = NULL;
    size_t len = 0;
    char err[512];
    if (sl_snapshot_read_blob(m->snap, meta, &blob, &len, err, sizeof err) != SL_OK)
        return NULL;
    (void)len;
    sl_learner_t *l =
        sl_learner_load(blob, (size_t)sl_snap_meta_model_len(meta), NULL, NULL, err, sizeof err);
    free(blob);
    if (!l)
        return NULL;
    const sl_scaler_t *sc = sl_learner_scaler_const(l);
    sl_scaler_state_t st;
    sl_scaler_get_state(sc, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scale", sl_scaler_mode_name(st.requested));
    cJSON_AddStringToObject(o, "in_force", sl_scaler_mode_name(st.mode));
    const float *shift, *mult;
    if (sl_learner_input_transform(l, &shift, &mult)) {
        uint32_t dim = sl_scaler_dim(sc), shown = full || dim <= 8 ? dim : 8;
        cJSON_AddNumberToObject(o, "weight", st.weight);
        cJSON_AddNumberToObject(o, "samples", (double)st.count);
        cJSON_AddNumberToObject(o, "features", dim);
        cJSON *sh = cJSON_AddArrayToObject(o, "shift"), *mu = cJSON_AddArrayToObject(o, "mult");
        for (uint32_t j = 0; j < shown; j++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber(shift[j]));
            cJSON_AddItemToArray(mu, cJSON_CreateNumber(mult[j]));
        }
        if (sl_model_config(sl_learner_model(l))->head == SL_HEAD_LINEAR && st.y_weight > 0) {
            double w, mean, sd;
            sl_scaler_target(sc, &w, &mean, &sd);
            cJSON *t = cJSON_AddObjectToObject(o, "target");
            cJSON_AddNumberToObject(t, "mean", mean);
            cJSON_AddNumberToObject(t, "sd", sd);
        }
    }
    sl_learner_destroy(l);
    return o;
}

static cJSON *parse_or_empty(const char *text) {
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    return j ? j : cJSON_CreateObject();
}

/* The JSON object `list --json` prints for one version. */
static cJSON *version_json(const sl_snap_meta_t *meta, uint64_t head, int pinned, int ok) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", (double)meta->version);
    cJSON_AddNumberToObject(o, "parent", (double)meta->parent);
    cJSON_AddStringToObject(o, "created_at", meta->created_at);
    cJSON_AddNumberToObject(o, "samples", (double)meta->samples);
    cJSON_AddNumberToObject(o, "step", (double)meta->step);
    cJSON_AddBoolToObject(o, "head", meta->version == head);
    cJSON_AddBoolToObject(o, "pinned", pinned);
    cJSON_AddBoolToObject(o, "checksum_ok", ok);
    cJSON_AddItemToObject(o, "metrics", parse_or_empty(meta->metrics));
    cJSON_AddNumberToObject(o, "size", (double)meta->size);
    cJSON_AddStringToObject(o, "origin", meta->origin ? meta->origin : "");
    return o;
}

/* A version whose metadata cannot be read still appears, marked bad. */
static cJSON *broken_json(uint64_t v, uint64_t head, int pinned, const char *why) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", (double)v);
    cJSON_AddNullToObject(o, "parent");
    cJSON_AddNullToObject(o, "created_at");
    cJSON_AddNullToObject(o, "samples");
    cJSON_AddNullToObject(o, "step");
    cJSON_AddBoolToObject(o, "head", v == head);
    cJSON_AddBoolToObject(o, "pinned", pinned);
    cJSON_AddBoolToObject(o, "checksum_ok", 0);
    cJSON_AddItemToObject(o, "metrics", cJSON_CreateObject());
    cJSON_AddStringToObject(o, "error", why);
    return o;
}

static void print_json(cJSON *j) {
    char *text = cJSON_Print(j);
    if (text)
        printf("%s\n", text);
    free(text);
}

/* "0.1234" for a metric of the "total" object, "-" when absent. */
static void metric_text(const char *metrics, const char *name, char *out, size_t out_size) {
    cJSON *j = cJSON_Parse(metrics ? metrics : "");
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "total"), name);
    if (cJSON_IsNumber(v))
        snprintf(out, out_size, "%.4f", v->valuedouble);
    else
        snprintf(out, out_size, "-");
    cJSON_Delete(j);
}

static int cmd_list(models_t *m) {
    uint64_t *versions = NULL, *pinned = NULL, head = 0;
    size_t n = 0, np = 0;
    sl_err_t err = sl_snapshot_head(m->snap, &head, m->err, sizeof m->err);
    if (err == SL_OK)
        err = sl_snapshot_list(m->snap, &versions, &n, m->err, sizeof m->err);
    if (err == SL_OK)
        err = sl_snapshot_pinned(m->snap, &pinned, &np, m->err, sizeof m->err);
    if (err != SL_OK) {
        free(versions);
        return fail(m, 1);
    }
    cJSON *arr = cJSON_CreateArray();
    if (!m->json)
        printf("%-8s %-8s %-24s %12s %10s %10s %-6s %-6s %-5s\n", "VERSION", "PARENT", "CREATED",
               "SAMPLES", "STEP", "LOSS", "HEAD", "PINNED", "OK");
    for (size_t i = 0; i < n; i++) {
        sl_snap_meta_t meta;
        char why[512];
        int pin = contains(pinned, np, versions[i]);
        err = sl_snapshot_meta(m->snap, versions[i], &meta, why, sizeof why);
        if (err == SL_ERR_REDIS) {
            snprintf(m->err, sizeof m->err, "%s", why);
            cJSON_Delete(arr);
            free(versions);
            free(pinned);
            return fail(m, 1);
        }
        if (err != SL_OK) {
            if (m->json)
                cJSON_AddItemToArray(arr, broken_json(versions[i], head, pin, why));
            else
                printf("%-8" PRIu64 " unreadable: %s\n", versions[i], why);
            continue;
        }
        int ok = checksum_ok(m, &meta);
        if (m->json) {
            cJSON_AddItemToArray(arr, version_json(&meta, head, pin, ok));
        } else {
            char loss[32];
            metric_text(meta.metrics, "loss", loss, sizeof loss);
            printf("%-8" PRIu64 " %-8" PRIu64 " %-24s %12" PRIu64 " %10" PRIu64
                   " %10s %-6s %-6s %-5s\n",
                   meta.version, meta.parent, meta.created_at, meta.samples, meta.step, loss,
                   meta.version == head ? "head" : "", pin ? "pinned" : "", ok ? "ok" : "BAD");
        }
        sl_snap_meta_clear(&meta);
    }
    if (m->json)
        print_json(arr);
    cJSON_Delete(arr);
    free(versions);
    free(pinned);
    return 0;
}

/* Parents of v that are still stored, nearest first, into a JSON array. */
static cJSON *lineage_json(models_t *m, uint64_t parent) {
    cJSON *arr = cJSON_CreateArray();
    for (int hops = 0; parent && hops < 10000; hops++) {
        cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)parent));
        sl_snap_meta_t meta;
        char why[512];
        if (sl_snapshot_meta(m->snap, parent, &meta, why, sizeof why) != SL_OK)
            break; /* dropped by retention or unreadable: the chain ends here */
        parent = meta.parent;
        sl_snap_meta_clear(&meta);
    }
    return arr;
}

static int cmd_show(models_t *m) {
    uint64_t v, head = 0, *pinned = NULL;
    size_t np = 0;
    if (parse_version(m, "show", &v) != 0)
        return fail(m, 2);
    sl_snap_meta_t meta;
    sl_err_t err = sl_snapshot_head(m->snap, &head, m->err, sizeof m->err);
    if (err == SL_OK)
        err = sl_snapshot_pinned(m->snap, &pinned, &np, m->err, sizeof m->err);
    if (err == SL_OK)
        err = sl_snapshot_meta(m->snap, v, &meta, m->err, sizeof m->err);
    if (err != SL_OK) {
        free(pinned);
        return fail(m, 1);
    }
    cJSON *o = version_json(&meta, head, contains(pinned, np, v), checksum_ok(m, &meta));
    free(pinned);
    cJSON_AddItemToObject(o, "config", parse_or_empty(meta.config));
    cJSON *scaler = scaler_json(m, &meta, m->json);
    if (scaler)
        cJSON_AddItemToObject(o, "scaler", scaler);
    else
        cJSON_AddNullToObject(o, "scaler");
    cJSON *offs = cJSON_CreateArray();
    for (size_t i = 0; i < meta.n_offsets; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "topic", meta.offsets[i].topic);
        cJSON_AddNumberToObject(e, "partition", meta.offsets[i].partition);
        cJSON_AddNumberToObject(e, "offset", (double)meta.offsets[i].offset);
        cJSON_AddItemToArray(offs, e);
    }
    cJSON_AddItemToObject(o, "offsets", offs);
    cJSON_AddItemToObject(o, "lineage", lineage_json(m, meta.parent));
    char sum[20];
    snprintf(sum, sizeof sum, "%016" PRIx64, meta.checksum);
    cJSON_AddStringToObject(o, "checksum", sum);
    if (m->json) {
        print_json(o);
    } else {
        const cJSON *item;
        cJSON_ArrayForEach(item, o) {
            char *text = cJSON_IsString(item) ? NULL : cJSON_PrintUnformatted(item);
            printf("%-12s %s\n", item->string, text ? text : item->valuestring);
            free(text);
        }
    }
    cJSON_Delete(o);
    sl_snap_meta_clear(&meta);
    return 0;
}

static int cmd_rollback(models_t *m) {
    uint64_t v, from = 0;
    if (parse_version(m, "rollback", &v) != 0)
        return fail(m, 2);
    const char *reason = "";
    sl_opts_str(m->opts, "reason", &reason);
    int rewind = 0;
    if (sl_opts_bool(m->opts, "rewind", &rewind, m->err, sizeof m->err) != SL_OK)
        return fail(m, 2);
    /* refuse to make head a version no worker could load */
    sl_learner_t *l = NULL;
    sl_snap_meta_t meta;
    sl_err_t err = sl_snapshot_load(m->snap, v, NULL, &l, &meta, m->err, sizeof m->err);
    if (err != SL_OK)
        return fail(m, 1);
    sl_learner_destroy(l);
    sl_snap_meta_clear(&meta);
    err = sl_snapshot_rollback(m->snap, v, reason, rewind, &from, m->err, sizeof m->err);
    if (err != SL_OK)
        return fail(m, 1);
    if (m->json)
        printf("{\"from\": %" PRIu64 ", \"to\": %" PRIu64 ", \"rewind\": %s}\n", from, v,
               rewind ? "true" : "false");
    else
        printf("head: %" PRIu64 " -> %" PRIu64 "%s\n", from, v, rewind ? " (rewind)" : "");
    return 0;
}

static int cmd_pin(models_t *m, int on) {
    uint64_t v;
    if (parse_version(m, on ? "pin" : "unpin", &v) != 0)
        return fail(m, 2);
    sl_err_t err = sl_snapshot_pin(m->snap, v, on, m->err, sizeof m->err);
    if (err != SL_OK)
        return fail(m, 1);
    printf("version %" PRIu64 " %s\n", v, on ? "pinned" : "unpinned");
    return 0;
}

/* Reads export's version, --out and --format into m->exp; 0, or 2 (usage)
 * with m->err set. Needs no connection, so usage errors come first. */
static int export_usage(models_t *m) {
    export_args_t *a = &m->exp;
    if (parse_version(m, "export", &a->version) != 0)
        return 2;
    if (sl_opts_str(m->opts, "out", &a->out) != SL_OK || !a->out || !*a->out) {
        snprintf(m->err, sizeof m->err,
                 "export: --out FILE is required (FILE.safetensors, or FILE.onnx for ONNX)");
        return 2;
    }
    const char *format = NULL;
    char why[512];
    sl_err_t err = sl_opts_bool(m->opts, "fold-scaler", &a->fold, why, sizeof why);
    if (err != SL_OK)
        goto bad;
    err = sl_opts_choice(m->opts, "format", &format, why, sizeof why);
    if (err != SL_OK && err != SL_ERR_EOF)
        goto bad;
    if (sl_export_pick(format, a->out, "--out", &a->format, why, sizeof why) == SL_OK)
        return 0;
bad:
    snprintf(m->err, sizeof m->err, "export: %s", why);
    return 2;
}

static int cmd_export(models_t *m) {
    const export_args_t *a = &m->exp;
    const char *name = NULL, *fmt_name = a->format == SL_EXPORT_ONNX ? "ONNX" : "safetensors";
    sl_opts_str(m->opts, "model-name", &name);
    sl_learner_t *l = NULL;
    sl_snap_meta_t meta;
    sl_err_t err = sl_snapshot_load(m->snap, a->version, NULL, &l, &meta, m->err, sizeof m->err);
    if (err != SL_OK)
        return fail(m, 1);
    sl_onnx_meta_t om = {.model_name = name,
                         .version = meta.version,
                         .parent = meta.parent,
                         .created_at = meta.created_at,
                         .samples = meta.samples,
                         .step = meta.step};
    char why[512];
    err = sl_export_write(l, a->format, a->fold, &om, a->out, why, sizeof why);
    sl_learner_destroy(l);
    sl_snap_meta_clear(&meta);
    if (err != SL_OK) {
        snprintf(m->err, sizeof m->err, "export %" PRIu64 " as %s: %s", a->version, fmt_name, why);
        return fail(m, sl_export_exit_code(err));
    }
    printf("version %" PRIu64 " exported to %s (%s)\n", a->version, a->out, fmt_name);
    return 0;
}

/* The learner a headless import starts from: architecture from the file,
 * what it does not say from --model/--activation, optimizer from flags. */
static sl_learner_t *headless_learner(models_t *m, const uint8_t *buf, size_t len, int *code) {
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_RELU};
    sl_optim_kind_t kind = SL_OPTIM_ADAM;
    const char *name = NULL;
    *code = 2;
    sl_err_t err = sl_opts_choice(m->opts, "model", &name, m->err, sizeof m->err);
    if (err == SL_OK && sl_model_head_parse(name, &mc.head) != SL_OK)
        err = SL_ERR_INVAL;
    if (err == SL_OK || err == SL_ERR_EOF)
        err = sl_opts_choice(m->opts, "activation", &name, m->err, sizeof m->err);
    if (err == SL_OK && sl_model_act_parse(name, &mc.activation) != SL_OK)
        err = SL_ERR_INVAL;
    if (err == SL_OK || err == SL_ERR_EOF)
        err = sl_opts_choice(m->opts, "optimizer", &name, m->err, sizeof m->err);
    if (err == SL_OK && sl_optim_kind_parse(name, &kind) != SL_OK)
        err = SL_ERR_INVAL;
    if (err != SL_OK && err != SL_ERR_EOF)
        return NULL;
    if (mc.head == SL_HEAD_SOFTMAX)
        mc.head = SL_HEAD_LOGISTIC; /* softmax is read from the file's output count */
    char why[512];
    if (sl_safetensors_infer_config(buf, len, &mc, why, sizeof why) != SL_OK) {
        snprintf(m->err, sizeof m->err, "import %s: %s", sl_opts_positional(m->opts, 1), why);
        return NULL;
    }
    sl_optim_config_t oc = sl_optim_config_default(kind);
    double lr;
    err = sl_opts_double(m->opts, "lr", 0, 1e9, &lr, m->err, sizeof m->err);
    if (err == SL_OK)
        oc.lr = lr;
    else if (err != SL_ERR_EOF)
        return NULL;
    return sl_learner_new(&mc, &oc, 0, 0, m->err, sizeof m->err);
}

static int import_publish(models_t *m, sl_learner_t *l, const sl_snap_meta_t *head_meta,
                          const char *path) {
    uint8_t *blob = NULL;
    size_t len = 0;
    char *config = NULL, *metrics = NULL;
    uint64_t step, samples, v = 0, head = 0;
    sl_err_t err = sl_learner_save(l, &blob, &len);
    if (err == SL_OK)
        err = sl_snapshot_describe(l, &config, &metrics, &step, &samples);
    if (err != SL_OK) {
        free(blob);
        snprintf(m->err, sizeof m->err, "import: out of memory");
        return fail(m, 1);
    }
    sl_snap_write_t w = {.blob = blob,
                         .len = len,
                         .parent = head_meta ? head_meta->version : 0,
                         .step = step,
                         .samples = samples,
                         .config = config,
                         .metrics = metrics,
                         .origin = "import",
                         .offsets = head_meta ? head_meta->offsets : NULL,
                         .n_offsets = head_meta ? head_meta->n_offsets : 0};
    sl_publish_status_t st;
    err = sl_snapshot_publish(m->snap, &w, &st, &v, &head, m->err, sizeof m->err);
    free(blob);
    free(config);
    free(metrics);
    if (err != SL_OK)
        return fail(m, 1);
    if (st != SL_PUBLISH_DONE) {
        snprintf(m->err, sizeof m->err,
                 "import: head moved to %" PRIu64 " while importing; nothing published, retry",
                 head);
        return fail(m, 1);
    }
    printf("%s imported as version %" PRIu64 " (parent %" PRIu64 "), now head\n", path, v,
           w.parent);
    return 0;
}

static int cmd_import(models_t *m) {
    if (sl_opts_npositional(m->opts) != 2) {
        snprintf(m->err, sizeof m->err, "import: expected exactly one FILE.safetensors");
        return fail(m, 2);
    }
    const char *path = sl_opts_positional(m->opts, 1);
    uint8_t *buf = NULL;
    size_t len = 0;
    sl_err_t rerr = sl_fileio_read(path, IMPORT_MAX_BYTES, &buf, &len, m->err, sizeof m->err);
    if (rerr != SL_OK) /* the file the command names is wrong: usage (2) */
        return fail(m, rerr == SL_ERR_NOMEM ? 1 : 2);
    sl_learner_t *head_l = NULL, *l = NULL;
    sl_snap_meta_t meta = {0};
    int code = 1, have_head = 0;
    sl_err_t err = sl_snapshot_load_head(m->snap, NULL, 0, &head_l, &meta, m->err, sizeof m->err);
    if (err == SL_OK) {
        have_head = 1;
        l = sl_learner_new(sl_model_config(sl_learner_model(head_l)),
                           sl_learner_optim_config(head_l), 0, 0, m->err, sizeof m->err);
    } else if (err == SL_ERR_EOF) {
        l = headless_learner(m, buf, len, &code);
    } else {
        free(buf);
        return fail(m, 1);
    }
    if (l) {
        char why[512];
        err = sl_safetensors_import_learner(l, buf, len, NULL, why, sizeof why);
        if (err != SL_OK) {
            snprintf(m->err, sizeof m->err, "import %s: %s", path, why);
            sl_learner_destroy(l);
            l = NULL;
            code = err == SL_ERR_NOMEM ? 1 : 2;
        } else {
            sl_learner_params_changed(l);
        }
    }
    free(buf);
    sl_learner_destroy(head_l);
    int rc = l ? import_publish(m, l, have_head ? &meta : NULL, path) : fail(m, code);
    sl_learner_destroy(l);
    sl_snap_meta_clear(&meta);
    return rc;
}

static int setup(models_t *m, const char *sub) {
    const char *url = NULL, *name = NULL;
    if (sl_opts_str(m->opts, "redis", &url) != SL_OK || !url || !*url) {
        snprintf(m->err, sizeof m->err, "%s: --redis URL is required", sub);
        return 2;
    }
    sl_opts_str(m->opts, "model-name", &name);
    uint64_t keep = 0;
    if (sl_opts_bool(m->opts, "json", &m->json, m->err, sizeof m->err) != SL_OK ||
        sl_opts_uint(m->opts, "keep-versions", 0, UINT32_MAX, &keep, m->err, sizeof m->err) !=
            SL_OK ||
        sl_keys_check_name(name, m->err, sizeof m->err) != SL_OK)
        return 2;
    m->redis = sl_redis_new(url, NULL, m->err, sizeof m->err);
    if (!m->redis)
        return 2;
    if (sl_redis_connect(m->redis, m->err, sizeof m->err) != SL_OK)
        return 1;
    sl_snapshot_opts_t so = {.keep_versions = (uint32_t)keep};
    m->snap = sl_snapshot_new(m->redis, name, &so, m->err, sizeof m->err);
    return m->snap ? 0 : 1;
}

int sl_cmd_models(int argc, char **argv) {
    models_t m = {0};
    int help = 0;
    m.opts = sl_opts_parse(SL_CMD_MODELS, argc, argv, &help, m.err, sizeof m.err);
    if (!m.opts)
        return fail(&m, 2);
    if (sl_opts_setup_logging(m.opts, m.err, sizeof m.err) != SL_OK) {
        sl_opts_destroy(m.opts);
        return fail(&m, 2);
    }
    int rc;
    const char *sub = sl_opts_npositional(m.opts) ? sl_opts_positional(m.opts, 0) : NULL;
    if (help) {
        sl_opts_print_help(SL_CMD_MODELS, usage, stdout);
        rc = 0;
    } else if (!sub) {
        fprintf(stderr, "%s\n", usage);
        rc = 2;
    } else if (strcmp(sub, "list") && strcmp(sub, "show") && strcmp(sub, "rollback") &&
               strcmp(sub, "pin") && strcmp(sub, "unpin") && strcmp(sub, "export") &&
               strcmp(sub, "import")) {
        snprintf(m.err, sizeof m.err, "unknown subcommand \"%s\" (see streamlearn models --help)",
                 sub);
        rc = fail(&m, 2);
    } else if (!strcmp(sub, "export") && (rc = export_usage(&m)) != 0) {
        rc = fail(&m, rc);
    } else if ((rc = setup(&m, sub)) != 0) {
        rc = fail(&m, rc);
    } else if (!strcmp(sub, "list")) {
        if (sl_opts_npositional(m.opts) == 1) {
            rc = cmd_list(&m);
        } else {
            snprintf(m.err, sizeof m.err, "list: takes no arguments");
            rc = fail(&m, 2);
        }
    } else if (!strcmp(sub, "show")) {
        rc = cmd_show(&m);
    } else if (!strcmp(sub, "rollback")) {
        rc = cmd_rollback(&m);
    } else if (!strcmp(sub, "pin") || !strcmp(sub, "unpin")) {
        rc = cmd_pin(&m, !strcmp(sub, "pin"));
    } else if (!strcmp(sub, "export")) {
        rc = cmd_export(&m);
    } else {
        rc = cmd_import(&m);
    }
    sl_snapshot_destroy(m.snap);
    sl_redis_destroy(m.redis);
    sl_opts_destroy(m.opts);
    return rc;
}
