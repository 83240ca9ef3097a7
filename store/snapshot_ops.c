/* snapshot_ops.c - the operator's verbs on versions: list, pins, rollback
 * with its audit list (also used to move head past an unusable version). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "store/snapshot_internal.h"

/* KEYS: 1 head, 2 versions, 3 audit (list), 4 rollback counter. ARGV: 1
 * version, 2 time (RFC 3339), 3 reason, 4 rewind ('1'/'0'), 5 only-if-head
 * ('' = unconditional). Returns {from, counter}, or {-1, head} when
 * only-if-head no longer holds. */
static const char rollback_script[] =
    "if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then\n"
    "  return redis.error_reply('version ' .. ARGV[1] .. ' is not in ' .. KEYS[2])\n"
    "end\n"
    "local head = redis.call('GET', KEYS[1])\n"
    "local from = 0\n"
    "if head then from = tonumber(head) or 0 end\n"
    "if ARGV[5] ~= '' and from ~= tonumber(ARGV[5]) then return {-1, from} end\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "local entry = cjson.encode({time = ARGV[2], from = from, to = tonumber(ARGV[1]),\n"
    "  reason = ARGV[3], rewind = (ARGV[4] == '1')})\n"
    "redis.call('LPUSH', KEYS[3], entry)\n"
    "redis.call('LTRIM', KEYS[3], 0, 999)\n"
    "local c = redis.call('INCR', KEYS[4])\n"
    "return {from, c}\n";

/* KEYS: 1 versions, 2 pinned. ARGV: 1 version. Pins only indexed versions. */
static const char pin_script[] = "if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end\n"
                                 "redis.call('SADD', KEYS[2], ARGV[1])\n"
                                 "return 1\n";

/* Reads a set or zset reply of version numbers. */
static sl_err_t version_array(const redisReply *rep, const char *key, uint64_t **out, size_t *n,
                              char *errstr, size_t errstr_size) {
    *out = NULL;
    *n = 0;
    if (rep->elements == 0)
        return SL_OK;
    uint64_t *v = malloc(rep->elements * sizeof *v);
    if (!v) {
        sl_errstr_set(errstr, errstr_size, "out of memory reading %s", key);
        return SL_ERR_NOMEM;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        sl_err_t err = sl_redis_reply_u64(rep->element[i], key, &v[i], errstr, errstr_size);
        if (err != SL_OK) {
            free(v);
            return err;
        }
    }
    *out = v;
    *n = rep->elements;
    return SL_OK;
}

sl_err_t sl_snapshot_list(sl_snapshot_t *s, uint64_t **versions, size_t *n, char *errstr,
                          size_t errstr_size) {
    const char *argv[] = {"ZREVRANGE", s->k_versions, "0", "-1"};
    redisReply *rep;
    *versions = NULL;
    *n = 0;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size, 4, argv);
    if (err != SL_OK)
        return err;
    err = version_array(rep, s->k_versions, versions, n, errstr, errstr_size);
    sl_redis_reply_free(rep);
    return err;
}

sl_err_t sl_snapshot_pinned(sl_snapshot_t *s, uint64_t **versions, size_t *n, char *errstr,
                            size_t errstr_size) {
    const char *argv[] = {"SMEMBERS", s->k_pinned};
    redisReply *rep;
    *versions = NULL;
    *n = 0;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size, 2, argv);
    if (err != SL_OK)
        return err;
    err = version_array(rep, s->k_pinned, versions, n, errstr, errstr_size);
    sl_redis_reply_free(rep);
    return err;
}

static sl_err_t not_indexed(sl_snapshot_t *s, uint64_t v, char *errstr, size_t errstr_size) {
    sl_errstr_set(errstr, errstr_size,
                  "model \"%s\" has no version %" PRIu64 " (see `models list`)", s->name, v);
    return SL_ERR_RANGE;
}

sl_err_t sl_snapshot_is_indexed(sl_snapshot_t *s, uint64_t v, int *yes, char *errstr,
                                size_t errstr_size) {
    char version[24];
    snprintf(version, sizeof version, "%" PRIu64, v);
    const char *argv[] = {"ZSCORE", s->k_versions, version};
    redisReply *rep;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_STR_OR_NIL, &rep, errstr, errstr_size, 3, argv);
    if (err != SL_OK)
        return err;
    *yes = rep->type == REDIS_REPLY_STRING;
    sl_redis_reply_free(rep);
    return SL_OK;
}

sl_err_t sl_snapshot_pin(sl_snapshot_t *s, uint64_t v, int on, char *errstr, size_t errstr_size) {
    char version[24];
    snprintf(version, sizeof version, "%" PRIu64, v);
    long long res;
    if (!on) {
        const char *argv[] = {"SREM", s->k_pinned, version};
        return sl_snapshot_call_int(s, NULL, errstr, errstr_size, 3, argv);
    }
    const char *argv[] = {"EVAL", pin_script, "2", s->k_versions, s->k_pinned, version};
    sl_err_t err = sl_snapshot_call_int(s, &res, errstr, errstr_size, 6, argv);
    if (err == SL_OK && res != 1)
        return not_indexed(s, v, errstr, errstr_size);
    return err;
}

sl_err_t sl_snapshot_rollback(sl_snapshot_t *s, uint64_t v, const char *reason, int rewind,
                              uint64_t *from, char *errstr, size_t errstr_size) {
    int yes = 0;
    sl_err_t err = sl_snapshot_is_indexed(s, v, &yes, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (!yes)
        return not_indexed(s, v, errstr, errstr_size);
    char version[24], now[40];
    snprintf(version, sizeof version, "%" PRIu64, v);
    sl_format_rfc3339(sl_wall_ms(), now, sizeof now);
    const char *argv[] = {"EVAL",
                          rollback_script,
                          "4",
                          s->k_head,
                          s->k_versions,
                          s->k_audit,
                          s->k_rollbacks,
                          version,
                          now,
                          reason ? reason : "",
                          rewind ? "1" : "0",
                          ""};
    redisReply *rep;
    err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size,
                           (int)(sizeof argv / sizeof argv[0]), argv);
    if (err != SL_OK)
        return err;
    long long res[2];
    err = sl_snapshot_int_array(rep, "rollback script", res, 2, errstr, errstr_size);
    sl_redis_reply_free(rep);
    if (err == SL_OK && from)
        *from = res[0] > 0 ? (uint64_t)res[0] : 0;
    return err;
}

/* Moves head from `bad` to `good` after a fallback, only if head is still
 * `bad`, with an audit entry; a failure here is logged, not fatal. */
void sl_snapshot_repair_head(sl_snapshot_t *s, uint64_t bad, uint64_t good, const char *why) {
    char version[24], only[24], now[40], reason[600], err[512];
    snprintf(version, sizeof version, "%" PRIu64, good);
    snprintf(only, sizeof only, "%" PRIu64, bad);
    snprintf(reason, sizeof reason, "automatic: version %" PRIu64 " unusable: %s", bad, why);
    sl_format_rfc3339(sl_wall_ms(), now, sizeof now);
    const char *argv[] = {
        "EVAL",         rollback_script, "4", s->k_head, s->k_versions, s->k_audit,
        s->k_rollbacks, version,         now, reason,    "0",           only};
    redisReply *rep;
    if (sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, err, sizeof err,
                         (int)(sizeof argv / sizeof argv[0]), argv) != SL_OK) {
        sl_log(SL_LOG_ERROR, "cannot move head past an unusable version", SL_STR("model", s->name),
               SL_U64("bad", bad), SL_U64("good", good), SL_STR("error", err));
        return;
    }
    sl_redis_reply_free(rep);
    sl_log(SL_LOG_WARN, "head moved past an unusable version", SL_STR("model", s->name),
           SL_U64("from", bad), SL_U64("to", good));
}

sl_err_t sl_snapshot_audit(sl_snapshot_t *s, size_t max, char ***entries, size_t *n, char *errstr,
                           size_t errstr_size) {
    char stop[24];
    snprintf(stop, sizeof stop, "%zu", max ? max - 1 : 0);
    const char *argv[] = {"LRANGE", s->k_audit, "0", stop};
    redisReply *rep;
    *entries = NULL;
    *n = 0;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size, 4, argv);
    if (err != SL_OK || rep->elements == 0) {
        sl_redis_reply_free(rep);
        return err;
    }
    char **out = calloc(rep->elements, sizeof *out);
    for (size_t i = 0; out && i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        out[i] = e->type == REDIS_REPLY_STRING ? strndup(e->str, e->len) : strdup("{}");
        if (!out[i]) {
            sl_snapshot_strings_free(out, i);
            out = NULL;
        }
    }
    if (!out) {
        sl_redis_reply_free(rep);
        sl_errstr_set(errstr, errstr_size, "out of memory reading %s", s->k_audit);
        return SL_ERR_NOMEM;
    }
    *entries = out;
    *n = rep->elements;
    sl_redis_reply_free(rep);
    return SL_OK;
}

void sl_snapshot_strings_free(char **strings, size_t n) {
    if (!strings)
        return;
    for (size_t i = 0; i < n; i++)
        free(strings[i]);
    free(strings);
}
