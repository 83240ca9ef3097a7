/* snapshot_read.c - reading versions back: metadata hashes checked field by
 * field, blobs reassembled from chunks and verified, head loaded with loud
 * fallback past unusable versions, learners described. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "common/log.h"
#include "store/snapshot_internal.h"

/* The value of `field` in an HGETALL reply, or NULL. */
static const redisReply *hash_field(const redisReply *rep, const char *field) {
    size_t flen = strlen(field);
    for (size_t i = 0; i + 1 < rep->elements; i += 2) {
        const redisReply *k = rep->element[i];
        if (k->type == REDIS_REPLY_STRING && k->len == flen && !memcmp(k->str, field, flen))
            return rep->element[i + 1];
    }
    return NULL;
}

static sl_err_t field_missing(const char *key, const char *field, char *errstr,
                              size_t errstr_size) {
    sl_errstr_set(errstr, errstr_size, "metadata %s: field \"%s\" missing or not a string", key,
                  field);
    return SL_ERR_DECODE;
}

static sl_err_t field_u64(const redisReply *rep, const char *key, const char *field, uint64_t *out,
                          char *errstr, size_t errstr_size) {
    const redisReply *v = hash_field(rep, field);
    if (!v || v->type != REDIS_REPLY_STRING)
        return field_missing(key, field, errstr, errstr_size);
    char what[SL_KEYS_MAX + 64];
    snprintf(what, sizeof what, "metadata %s field \"%s\"", key, field);
    return sl_redis_reply_u64(v, what, out, errstr, errstr_size) == SL_OK ? SL_OK : SL_ERR_DECODE;
}

static sl_err_t field_str(const redisReply *rep, const char *key, const char *field, char **out,
                          char *errstr, size_t errstr_size) {
    const redisReply *v = hash_field(rep, field);
    if (!v || v->type != REDIS_REPLY_STRING)
        return field_missing(key, field, errstr, errstr_size);
    *out = strndup(v->str, v->len);
    if (!*out) {
        sl_errstr_set(errstr, errstr_size, "out of memory reading %s", key);
        return SL_ERR_NOMEM;
    }
    return SL_OK;
}

/* The "sections" field: [{"name": "...", "bytes": N}, ...], whose sizes must
 * fit within the recorded blob size. */
static sl_err_t parse_sections(const char *text, const char *key, sl_snap_meta_t *m, char *errstr,
                               size_t errstr_size) {
    cJSON *arr = cJSON_Parse(text);
    if (!arr || !cJSON_IsArray(arr)) {
        cJSON_Delete(arr);
        sl_errstr_set(errstr, errstr_size, "metadata %s: field \"sections\" is not a JSON array",
                      key);
        return SL_ERR_DECODE;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    m->parts = n ? calloc(n, sizeof *m->parts) : NULL;
    if (n && !m->parts) {
        cJSON_Delete(arr);
        sl_errstr_set(errstr, errstr_size, "out of memory reading %s", key);
        return SL_ERR_NOMEM;
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(arr, (int)i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(o, "bytes");
        if (!cJSON_IsString(name) || strlen(name->valuestring) == 0 ||
            strlen(name->valuestring) > SL_SNAP_SECTION_NAME_MAX || !cJSON_IsNumber(bytes) ||
            bytes->valuedouble < 0 || bytes->valuedouble > (double)m->size ||
            (double)sum + bytes->valuedouble > (double)m->size) {
            cJSON_Delete(arr);
            sl_errstr_set(errstr, errstr_size,
                          "metadata %s: field \"sections\": entry %zu is not a name and a size "
                          "within the blob's %" PRIu64 " bytes",
                          key, i, m->size);
            return SL_ERR_DECODE;
        }
        snprintf(m->parts[i].name, sizeof m->parts[i].name, "%s", name->valuestring);
        m->parts[i].len = (uint64_t)bytes->valuedouble;
        sum += m->parts[i].len;
    }
    m->n_parts = n;
    cJSON_Delete(arr);
    return SL_OK;
}

static sl_err_t parse_offsets(const char *text, const char *key, sl_snap_meta_t *m, char *errstr,
                              size_t errstr_size) {
    cJSON *arr = cJSON_Parse(text);
    sl_err_t err = SL_OK;
    if (!cJSON_IsArray(arr)) {
        sl_errstr_set(errstr, errstr_size, "metadata %s: field \"offsets\" is not a JSON array",
                      key);
        cJSON_Delete(arr);
        return SL_ERR_DECODE;
    }
    size_t n = (size_t)cJSON_GetArraySize(arr);
    m->offsets = n ? calloc(n, sizeof *m->offsets) : NULL;
    if (n && !m->offsets) {
        cJSON_Delete(arr);
        sl_errstr_set(errstr, errstr_size, "out of memory reading %s", key);
        return SL_ERR_NOMEM;
    }
    size_t i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "topic");
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "partition");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(o, "offset");
        if (!cJSON_IsString(t) || strlen(t->valuestring) >= sizeof m->offsets[i].topic ||
            !cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble > INT32_MAX ||
            !cJSON_IsNumber(off) || off->valuedouble < -2 || off->valuedouble > 9.0e15) {
            sl_errstr_set(errstr, errstr_size,
                          "metadata %s: offsets[%zu] needs topic (string), partition and offset "
                          "(numbers in range)",
                          key, i);
            err = SL_ERR_DECODE;
            break;
        }
        snprintf(m->offsets[i].topic, sizeof m->offsets[i].topic, "%s", t->valuestring);
        m->offsets[i].partition = (int32_t)p->valuedouble;
        m->offsets[i].offset = (int64_t)off->valuedouble;
        i++;
    }
    m->n_offsets = i;
    cJSON_Delete(arr);
    return err;
}

static sl_err_t parse_meta(const redisReply *rep, const char *key, uint64_t v, sl_snap_meta_t *m,
                           char *errstr, size_t errstr_size) {
    uint64_t version = 0, nchunks = 0;
    sl_err_t err = field_u64(rep, key, "version", &version, errstr, errstr_size);
    if (err == SL_OK && version != v) {
        sl_errstr_set(errstr, errstr_size,
                      "metadata %s: field \"version\" is %" PRIu64 ", expected %" PRIu64, key,
                      version, v);
        err = SL_ERR_DECODE;
    }
    m->version = v;
    if (err == SL_OK)
        err = field_u64(rep, key, "parent", &m->parent, errstr, errstr_size);
    if (err == SL_OK)
        err = field_u64(rep, key, "step", &m->step, errstr, errstr_size);
    if (err == SL_OK)
        err = field_u64(rep, key, "samples", &m->samples, errstr, errstr_size);
    if (err == SL_OK)
        err = field_u64(rep, key, "size", &m->size, errstr, errstr_size);
    if (err == SL_OK)
        err = field_u64(rep, key, "nchunks", &nchunks, errstr, errstr_size);
    if (err == SL_OK && (nchunks == 0 || nchunks > UINT32_MAX)) {
        sl_errstr_set(errstr, errstr_size, "metadata %s: field \"nchunks\" out of range", key);
        err = SL_ERR_DECODE;
    }
    m->nchunks = (uint32_t)nchunks;
    const redisReply *c = hash_field(rep, "checksum");
    if (err == SL_OK) {
        char hex[17];
        char *end = NULL;
        if (!c || c->type != REDIS_REPLY_STRING || c->len != 16) {
            err = field_missing(key, "checksum", errstr, errstr_size);
        } else {
            memcpy(hex, c->str, 16);
            hex[16] = '\0';
            m->checksum = strtoull(hex, &end, 16);
            if (*end != '\0') {
                sl_errstr_set(errstr, errstr_size,
                              "metadata %s: field \"checksum\" is not 16 hex digits", key);
                err = SL_ERR_DECODE;
            }
        }
    }
    const redisReply *ca = hash_field(rep, "created_at");
    if (err == SL_OK && (!ca || ca->type != REDIS_REPLY_STRING || ca->len >= sizeof m->created_at))
        err = field_missing(key, "created_at", errstr, errstr_size);
    if (err == SL_OK)
        snprintf(m->created_at, sizeof m->created_at, "%.*s", (int)ca->len, ca->str);
    if (err == SL_OK)
        err = field_str(rep, key, "config", &m->config, errstr, errstr_size);
    if (err == SL_OK)
        err = field_str(rep, key, "metrics", &m->metrics, errstr, errstr_size);
    if (err == SL_OK)
        err = field_str(rep, key, "origin", &m->origin, errstr, errstr_size);
    char *offsets = NULL;
    if (err == SL_OK)
        err = field_str(rep, key, "offsets", &offsets, errstr, errstr_size);
    if (err == SL_OK)
        err = parse_offsets(offsets, key, m, errstr, errstr_size);
    free(offsets);
    /* annotations and sections came later: a version without them has none */
    if (err == SL_OK)
        err = hash_field(rep, "annotations")
                  ? field_str(rep, key, "annotations", &m->annotations, errstr, errstr_size)
                  : ((m->annotations = strdup("{}")) ? SL_OK : SL_ERR_NOMEM);
    char *sections = NULL;
    if (err == SL_OK && hash_field(rep, "sections"))
        err = field_str(rep, key, "sections", &sections, errstr, errstr_size);
    if (err == SL_OK && sections)
        err = parse_sections(sections, key, m, errstr, errstr_size);
    free(sections);
    return err;
}

sl_err_t sl_snapshot_meta(sl_snapshot_t *s, uint64_t v, sl_snap_meta_t *m, char *errstr,
                          size_t errstr_size) {
    memset(m, 0, sizeof *m);
    int yes = 0;
    sl_err_t err = sl_snapshot_is_indexed(s, v, &yes, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (!yes) {
        sl_errstr_set(errstr, errstr_size,
                      "model \"%s\" has no version %" PRIu64 " (see `models list`)", s->name, v);
        return SL_ERR_RANGE;
    }
    char key[SL_KEYS_MAX];
    sl_keys_meta(key, s->name, v);
    const char *argv[] = {"HGETALL", key};
    redisReply *rep;
    err = sl_redis_call(s->redis, SL_REPLY_ARRAY, &rep, errstr, errstr_size, 2, argv, NULL);
    if (err != SL_OK)
        return err;
    if (rep->elements == 0) {
        sl_errstr_set(errstr, errstr_size, "metadata %s of indexed version %" PRIu64 " is missing",
                      key, v);
        err = SL_ERR_DECODE;
    } else {
        err = parse_meta(rep, key, v, m, errstr, errstr_size);
    }
    sl_redis_reply_free(rep);
    if (err != SL_OK)
        sl_snap_meta_clear(m);
    return err;
}

sl_err_t sl_snapshot_read_blob(sl_snapshot_t *s, const sl_snap_meta_t *m, uint8_t **blob,
                               size_t *len, char *errstr, size_t errstr_size) {
    *blob = NULL;
    *len = 0;
    if (m->size > SIZE_MAX / 2) {
        sl_errstr_set(errstr, errstr_size,
                      "version %" PRIu64 ": recorded size %" PRIu64 " is too large", m->version,
                      m->size);
        return SL_ERR_DECODE;
    }
    uint8_t *buf = malloc(m->size ? m->size : 1);
    if (!buf) {
        sl_errstr_set(errstr, errstr_size,
                      "out of memory reading version %" PRIu64 " (%" PRIu64 " bytes)", m->version,
                      m->size);
        return SL_ERR_NOMEM;
    }
    size_t got = 0;
    sl_err_t err = SL_OK;
    char key[SL_KEYS_MAX];
    for (uint32_t i = 0; i < m->nchunks && err == SL_OK; i++) {
        sl_keys_chunk(key, s->name, m->version, i);
        const char *argv[] = {"GET", key};
        redisReply *rep;
        err =
            sl_redis_call(s->redis, SL_REPLY_STR_OR_NIL, &rep, errstr, errstr_size, 2, argv, NULL);
        if (err != SL_OK)
            break;
        if (rep->type == REDIS_REPLY_NIL) {
            sl_errstr_set(errstr, errstr_size, "version %" PRIu64 ": chunk %s is missing",
                          m->version, key);
            err = SL_ERR_TRUNCATED;
        } else if (rep->len > m->size - got) {
            sl_errstr_set(errstr, errstr_size,
                          "version %" PRIu64 ": chunk %s makes the blob longer than the recorded "
                          "%" PRIu64 " bytes",
                          m->version, key, m->size);
            err = SL_ERR_CHECKSUM;
        } else {
            memcpy(buf + got, rep->str, rep->len);
            got += rep->len;
        }
        sl_redis_reply_free(rep);
    }
    if (err == SL_OK && got != m->size) {
        sl_errstr_set(errstr, errstr_size,
                      "version %" PRIu64 ": blob truncated: %zu of %" PRIu64 " bytes in %" PRIu32
                      " chunks under %s",
                      m->version, got, m->size, m->nchunks, key);
        err = SL_ERR_TRUNCATED;
    }
    if (err == SL_OK && (uint64_t)XXH64(buf, got, 0) != m->checksum) {
        sl_errstr_set(errstr, errstr_size,
                      "version %" PRIu64 ": checksum mismatch: chunks under {sl:%s}:v:%" PRIu64
                      " hash to %016" PRIx64 ", metadata says %016" PRIx64,
                      m->version, s->name, m->version, (uint64_t)XXH64(buf, got, 0), m->checksum);
        err = SL_ERR_CHECKSUM;
    }
    if (err != SL_OK) {
        free(buf);
        return err;
    }
    *blob = buf;
    *len = got;
    return SL_OK;
}

static cJSON *view_json(sl_metrics_view_t v) {
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "count", (double)v.count);
    const char *names[] = {"loss", "accuracy", "mae", "rmse"};
    double vals[] = {v.loss, v.accuracy, v.mae, v.rmse};
    for (size_t i = 0; i < 4; i++) {
        if (isfinite(vals[i]))
            cJSON_AddNumberToObject(o, names[i], vals[i]);
        else
            cJSON_AddNullToObject(o, names[i]);
    }
    return o;
}

static char *config_json(const sl_learner_t *l) {
    /* sl_learner_model has no const form; the model is only read here */
    const sl_model_config_t *mc = sl_model_config(sl_learner_model((sl_learner_t *)l));
    const sl_optim_config_t *oc = sl_learner_optim_config(l);
    cJSON *o = cJSON_CreateObject(), *opt = cJSON_CreateObject(), *hidden = cJSON_CreateArray();
    if (!o || !opt || !hidden) {
        cJSON_Delete(o);
        cJSON_Delete(opt);
        cJSON_Delete(hidden);
        return NULL;
    }
    cJSON_AddStringToObject(o, "model", sl_model_head_name(mc->head));
    cJSON_AddNumberToObject(o, "dim", mc->dim);
    if (mc->head == SL_HEAD_SOFTMAX)
        cJSON_AddNumberToObject(o, "classes", mc->classes);
    for (uint32_t i = 0; i < mc->n_hidden; i++)
        cJSON_AddItemToArray(hidden, cJSON_CreateNumber(mc->hidden[i]));
    cJSON_AddItemToObject(o, "hidden", hidden);
    cJSON_AddStringToObject(o, "activation", sl_model_act_name(mc->activation));
    cJSON_AddStringToObject(opt, "name", sl_optim_kind_name(oc->kind));
    const char *names[] = {"lr",        "momentum", "beta1",        "beta2",
                           "alpha",     "eps",      "weight_decay", "ftrl_alpha",
                           "ftrl_beta", "l1",       "l2",           "clip_norm"};
    double vals[] = {oc->lr,        oc->momentum, oc->beta1,        oc->beta2,
                     oc->alpha,     oc->eps,      oc->weight_decay, oc->ftrl_alpha,
                     oc->ftrl_beta, oc->l1,       oc->l2,           oc->clip_norm};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (isfinite(vals[i]))
            cJSON_AddNumberToObject(opt, names[i], vals[i]);
    cJSON_AddBoolToObject(opt, "nesterov", oc->nesterov);
    cJSON_AddItemToObject(o, "optimizer", opt);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

sl_err_t sl_snapshot_describe(const sl_learner_t *l, char **config, char **metrics, uint64_t *step,
                              uint64_t *samples) {
    *config = config_json(l);
    cJSON *m = cJSON_CreateObject();
    if (m) {
        const sl_metrics_t *mt = sl_learner_metrics(l);
        cJSON_AddItemToObject(m, "total", view_json(sl_metrics_total(mt)));
        cJSON_AddItemToObject(m, "window", view_json(sl_metrics_window(mt)));
    }
    *metrics = m ? cJSON_PrintUnformatted(m) : NULL;
    cJSON_Delete(m);
    if (!*config || !*metrics) {
        free(*config);
        free(*metrics);
        *config = *metrics = NULL;
        return SL_ERR_NOMEM;
    }
    sl_learner_counters_t c = sl_learner_counters(l);
    *step = c.step;
    *samples = c.samples;
    return SL_OK;
}

/* Index of the previous version to try after `v` failed: its parent when
 * still indexed, else the newest indexed version below v; 0 when none. */
static sl_err_t previous_version(sl_snapshot_t *s, uint64_t v, uint64_t parent, uint64_t *prev,
                                 char *errstr, size_t errstr_size) {
    *prev = 0;
    if (parent) {
        int yes = 0;
        sl_err_t err = sl_snapshot_is_indexed(s, parent, &yes, errstr, errstr_size);
        if (err != SL_OK)
            return err;
        if (yes) {
            *prev = parent;
            return SL_OK;
        }
    }
    char max[24];
    snprintf(max, sizeof max, "(%" PRIu64, v);
    const char *argv[] = {"ZREVRANGEBYSCORE", s->k_versions, max, "-inf", "LIMIT", "0", "1"};
    redisReply *rep;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size, 7, argv);
    if (err != SL_OK)
        return err;
    if (rep->elements > 0)
        err = sl_redis_reply_u64(rep->element[0], s->k_versions, prev, errstr, errstr_size);
    sl_redis_reply_free(rep);
    return err;
}

sl_err_t sl_snapshot_load(sl_snapshot_t *s, uint64_t v, const sl_model_config_t *expect,
                          sl_learner_t **learner, sl_snap_meta_t *m, char *errstr,
                          size_t errstr_size) {
    *learner = NULL;
    sl_err_t err = sl_snapshot_meta(s, v, m, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    uint8_t *blob = NULL;
    size_t len = 0;
    err = sl_snapshot_read_blob(s, m, &blob, &len, errstr, errstr_size);
    size_t model_len = (size_t)sl_snap_meta_model_len(m);
    if (err == SL_OK && m->n_parts > 0) { /* the sections, kept with the metadata */
        m->section_data = malloc(len - model_len ? len - model_len : 1);
        if (m->section_data)
            memcpy(m->section_data, blob + model_len, len - model_len);
        else
            err = SL_ERR_NOMEM;
        if (err != SL_OK)
            sl_errstr_set(errstr, errstr_size, "out of memory reading version %" PRIu64, v);
    }
    if (err == SL_OK) {
        char why[400];
        *learner = sl_learner_load(blob, model_len, expect, &err, why, sizeof why);
        if (!*learner)
            sl_errstr_set(errstr, errstr_size, "version %" PRIu64 " of model \"%s\": %s", v,
                          s->name, why);
    }
    free(blob);
    if (err != SL_OK)
        sl_snap_meta_clear(m);
    return err;
}

/* Errors that mean "this version is unusable, try an older one". */
static int skippable(sl_err_t err) {
    return err == SL_ERR_CHECKSUM || err == SL_ERR_TRUNCATED || err == SL_ERR_DECODE ||
           err == SL_ERR_VERSION || err == SL_ERR_RANGE || err == SL_ERR_INVAL;
}

sl_err_t sl_snapshot_load_head(sl_snapshot_t *s, const sl_model_config_t *expect, int repair,
                               sl_learner_t **learner, sl_snap_meta_t *m, char *errstr,
                               size_t errstr_size) {
    *learner = NULL;
    memset(m, 0, sizeof *m);
    uint64_t head;
    sl_err_t err = sl_snapshot_head(s, &head, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (head == 0) {
        sl_errstr_set(errstr, errstr_size, "model \"%s\" has no version yet", s->name);
        return SL_ERR_EOF;
    }
    char failures[1024] = "", first_why[400] = "";
    for (uint64_t v = head; v;) {
        char why[400];
        err = sl_snapshot_load(s, v, expect, learner, m, why, sizeof why);
        if (err == SL_OK) {
            if (v != head) {
                sl_log(SL_LOG_ERROR, "loaded an older version after unusable ones",
                       SL_STR("model", s->name), SL_U64("head", head), SL_U64("loaded", v));
                if (repair)
                    sl_snapshot_repair_head(s, head, v, first_why);
            }
            return SL_OK;
        }
        if (!skippable(err)) {
            sl_errstr_set(errstr, errstr_size, "%s", why);
            return err;
        }
        sl_log(SL_LOG_ERROR, "snapshot version unusable, falling back", SL_STR("model", s->name),
               SL_U64("version", v), SL_STR("error", why));
        if (!first_why[0])
            snprintf(first_why, sizeof first_why, "%s", why);
        size_t used = strlen(failures);
        snprintf(failures + used, sizeof failures - used, "%s%" PRIu64 ": %s", used ? "; " : "", v,
                 why);
        /* the parent is in the metadata; a version whose metadata is unreadable
         * falls back to the newest older one */
        uint64_t parent = 0;
        sl_snap_meta_t pm;
        char ignored[256];
        if (sl_snapshot_meta(s, v, &pm, ignored, sizeof ignored) == SL_OK)
            parent = pm.parent;
        sl_snap_meta_clear(&pm);
        err = previous_version(s, v, parent, &v, errstr, errstr_size);
        if (err != SL_OK)
            return err;
    }
    sl_errstr_set(errstr, errstr_size, "model \"%s\": no version loads: %s", s->name, failures);
    return SL_ERR_CHECKSUM;
}
