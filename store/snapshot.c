/* snapshot.c - publishing immutable model versions in Redis: chunked blobs
 * written invisibly, then made head by one Lua script that checks parent and
 * lease and applies retention. Reads: snapshot_read.c; verbs: snapshot_ops.c. */

#include "snapshot.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <xxhash.h>

#include "common/log.h"
#include "store/keys.h"
#include "store/snapshot_internal.h"

/* KEYS: 1 head, 2 versions (zset), 3 pinned (set), 4 lease, 5 meta of the new
 * version. ARGV: 1 version, 2 parent, 3 lease token ('' = no check), 4 keep
 * (0 = all), 5 chunk count, 6 key prefix "{sl:<name>}:v:". Every check comes
 * before the first write, so a refused publish changes nothing. Chunk and
 * dropped-version keys are derived from the prefix: they share the model's
 * hash tag, hence its cluster slot. Returns {1, version, dropped} when
 * published, {0, head} when head is not the parent, {-1, head} when the lease
 * is not ours. */
static const char publish_script[] =
    "local head = redis.call('GET', KEYS[1])\n"
    "local cur = 0\n"
    "if head then\n"
    "  cur = tonumber(head)\n"
    "  if not cur then return redis.error_reply('head key ' .. KEYS[1] .. ' holds \"' .. "
    "string.sub(head, 1, 40) .. '\", not a version number') end\n"
    "end\n"
    "if cur ~= tonumber(ARGV[2]) then return {0, cur} end\n"
    "if ARGV[3] ~= '' and redis.call('GET', KEYS[4]) ~= ARGV[3] then return {-1, cur} "
    "end\n"
    "if redis.call('EXISTS', KEYS[5]) == 0 then\n"
    "  return redis.error_reply('staged metadata ' .. KEYS[5] .. ' is gone (expired?)')\n"
    "end\n"
    "local n = tonumber(ARGV[5])\n"
    "for i = 0, n - 1 do\n"
    "  local k = KEYS[5] .. ':c:' .. i\n"
    "  if redis.call('EXISTS', k) == 0 then\n"
    "    return redis.error_reply('staged chunk ' .. k .. ' is gone (expired?)')\n"
    "  end\n"
    "end\n"
    "for i = 0, n - 1 do redis.call('PERSIST', KEYS[5] .. ':c:' .. i) end\n"
    "redis.call('PERSIST', KEYS[5])\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])\n"
    "local dropped = 0\n"
    "local keep = tonumber(ARGV[4])\n"
    "if keep > 0 then\n"
    "  for _, v in ipairs(redis.call('ZREVRANGE', KEYS[2], keep, -1)) do\n"
    "    if v ~= ARGV[1] and redis.call('SISMEMBER', KEYS[3], v) == 0 then\n"
    "      local mk = ARGV[6] .. v\n"
    "      local nc = tonumber(redis.call('HGET', mk, 'nchunks') or '0') or 0\n"
    "      for i = 0, nc - 1 do redis.call('DEL', mk .. ':c:' .. i) end\n"
    "      redis.call('DEL', mk)\n"
    "      redis.call('ZREM', KEYS[2], v)\n"
    "      dropped = dropped + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {1, tonumber(ARGV[1]), dropped}\n";

/* KEYS: 1 counter. ARGV: 1 floor. The next version number: one above both
 * the counter and the floor, so numbers keep growing even if the counter was
 * lost while a writer still knows a higher version. */
static const char alloc_script[] =
    "local c = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if not c then return redis.error_reply('counter ' .. KEYS[1] .. ' is not a number') end\n"
    "local f = tonumber(ARGV[1])\n"
    "if c < f then c = f end\n"
    "c = c + 1\n"
    "redis.call('SET', KEYS[1], c)\n"
    "return c\n";

void sl_snap_meta_clear(sl_snap_meta_t *m) {
    if (!m)
        return;
    free(m->config);
    free(m->metrics);
    free(m->origin);
    free(m->offsets);
    free(m->annotations);
    free(m->parts);
    free(m->section_data);
    memset(m, 0, sizeof *m);
}

int sl_snap_meta_section(const sl_snap_meta_t *m, const char *name, const uint8_t **data,
                         size_t *len) {
    if (!m->section_data)
        return 0;
    uint64_t off = 0;
    for (size_t i = 0; i < m->n_parts; i++) {
        if (!strcmp(m->parts[i].name, name)) {
            *data = m->section_data + off;
            *len = (size_t)m->parts[i].len;
            return 1;
        }
        off += m->parts[i].len;
    }
    return 0;
}

uint64_t sl_snap_meta_model_len(const sl_snap_meta_t *m) {
    uint64_t n = m->size;
    for (size_t i = 0; i < m->n_parts; i++)
        n -= m->parts[i].len < n ? m->parts[i].len : n;
    return n;
}

sl_snapshot_t *sl_snapshot_new(sl_redis_t *r, const char *name, const sl_snapshot_opts_t *opts,
                               char *errstr, size_t errstr_size) {
    if (sl_keys_check_name(name, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_snapshot_t *s = calloc(1, sizeof *s);
    if (!s) {
        sl_errstr_set(errstr, errstr_size, "out of memory creating the snapshot store");
        return NULL;
    }
    s->redis = r;
    snprintf(s->name, sizeof s->name, "%s", name);
    if (opts)
        s->opts = *opts;
    if (!s->opts.chunk_bytes)
        s->opts.chunk_bytes = SL_SNAPSHOT_DEFAULT_CHUNK;
    if (!s->opts.staging_ttl_ms)
        s->opts.staging_ttl_ms = 3600u * 1000u;
    sl_keys_model(s->k_head, name, "head");
    sl_keys_model(s->k_versions, name, "versions");
    sl_keys_model(s->k_pinned, name, "pinned");
    sl_keys_model(s->k_lease, name, "lease");
    sl_keys_model(s->k_counter, name, "counter");
    sl_keys_model(s->k_audit, name, "audit");
    sl_keys_model(s->k_rollbacks, name, "rollbacks");
    sl_keys_model(s->k_prefix, name, "v:");
    return s;
}

void sl_snapshot_destroy(sl_snapshot_t *s) {
    free(s);
}

/* Runs a command of string arguments expecting `expect`. */
sl_err_t sl_snapshot_call(sl_snapshot_t *s, sl_reply_expect_t expect, redisReply **rep,
                          char *errstr, size_t errstr_size, int argc, const char **argv) {
    return sl_redis_call(s->redis, expect, rep, errstr, errstr_size, argc, argv, NULL);
}

/* Runs a command whose integer reply is all we need. */
sl_err_t sl_snapshot_call_int(sl_snapshot_t *s, long long *out, char *errstr, size_t errstr_size,
                              int argc, const char **argv) {
    redisReply *rep;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_INT, &rep, errstr, errstr_size, argc, argv);
    if (err != SL_OK)
        return err;
    if (out)
        *out = rep->integer;
    sl_redis_reply_free(rep);
    return SL_OK;
}

/* Deletes a version's keys (metadata and chunks); best effort. */
static void delete_version_keys(sl_snapshot_t *s, uint64_t v, uint32_t nchunks) {
    char key[SL_KEYS_MAX], err[256];
    for (uint32_t i = 0; i < nchunks; i++) {
        sl_keys_chunk(key, s->name, v, i);
        const char *argv[] = {"DEL", key};
        sl_snapshot_call_int(s, NULL, err, sizeof err, 2, argv);
    }
    sl_keys_meta(key, s->name, v);
    const char *argv[] = {"DEL", key};
    sl_snapshot_call_int(s, NULL, err, sizeof err, 2, argv);
}

static char *offsets_json(const sl_snap_offset_t *offsets, size_t n) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o) ||
            !cJSON_AddStringToObject(o, "topic", offsets[i].topic) ||
            !cJSON_AddNumberToObject(o, "partition", offsets[i].partition) ||
            !cJSON_AddNumberToObject(o, "offset", (double)offsets[i].offset)) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return text;
}

/* The sections' layout as stored in the metadata: [{"name":..., "bytes":...}]. */
static char *sections_json(const sl_snap_section_t *sec, size_t n) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o) ||
            !cJSON_AddStringToObject(o, "name", sec[i].name) ||
            !cJSON_AddNumberToObject(o, "bytes", (double)sec[i].len)) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

static sl_err_t check_sections(const sl_snap_write_t *w, size_t *total, char *errstr,
                               size_t errstr_size) {
    *total = w->len;
    for (size_t i = 0; i < w->n_sections; i++) {
        const char *name = w->sections[i].name;
        size_t nl = name ? strlen(name) : 0;
        int ok = nl >= 1 && nl <= SL_SNAP_SECTION_NAME_MAX &&
                 strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == nl &&
                 (w->sections[i].data || w->sections[i].len == 0);
        for (size_t j = 0; ok && j < i; j++)
            ok = strcmp(w->sections[j].name, name) != 0;
        if (!ok) {
            sl_errstr_set(errstr, errstr_size,
                          "snapshot section %zu (\"%s\"): a name of 1-%d bytes of [a-z0-9_], "
                          "unique in the version, is required",
                          i, name ? name : "(null)", SL_SNAP_SECTION_NAME_MAX);
            return SL_ERR_INVAL;
        }
        if (w->sections[i].len > SIZE_MAX - *total) {
            sl_errstr_set(errstr, errstr_size, "snapshot sections too large");
            return SL_ERR_INVAL;
        }
        *total += w->sections[i].len;
    }
    return SL_OK;
}

static sl_err_t stage_chunks(sl_snapshot_t *s, const sl_snap_write_t *w, uint64_t v,
                             uint32_t nchunks, const char *ttl, char *errstr, size_t errstr_size) {
    char key[SL_KEYS_MAX];
    for (uint32_t i = 0; i < nchunks; i++) {
        size_t off = (size_t)i * s->opts.chunk_bytes;
        size_t n = w->len - off < s->opts.chunk_bytes ? w->len - off : s->opts.chunk_bytes;
        sl_keys_chunk(key, s->name, v, i);
        const char *argv[] = {"SET", key, (const char *)w->blob + off, "PX", ttl};
        size_t lens[] = {3, strlen(key), n, 2, strlen(ttl)};
        redisReply *rep;
        sl_err_t err =
            sl_redis_call(s->redis, SL_REPLY_STATUS, &rep, errstr, errstr_size, 5, argv, lens);
        if (err != SL_OK)
            return err;
        sl_redis_reply_free(rep);
    }
    return SL_OK;
}

static sl_err_t stage_meta(sl_snapshot_t *s, const sl_snap_write_t *w, uint64_t v, uint32_t nchunks,
                           const char *ttl, char *errstr, size_t errstr_size) {
    char key[SL_KEYS_MAX], version[24], parent[24], step[24], samples[24], size[24], chunks[16],
        chunk_bytes[24], created_ms[24], created_at[40], checksum[20];
    sl_keys_meta(key, s->name, v);
    uint64_t now = sl_wall_ms();
    sl_format_rfc3339(now, created_at, sizeof created_at);
    snprintf(version, sizeof version, "%" PRIu64, v);
    snprintf(parent, sizeof parent, "%" PRIu64, w->parent);
    snprintf(step, sizeof step, "%" PRIu64, w->step);
    snprintf(samples, sizeof samples, "%" PRIu64, w->samples);
    snprintf(size, sizeof size, "%zu", w->len);
    snprintf(chunks, sizeof chunks, "%" PRIu32, nchunks);
    snprintf(chunk_bytes, sizeof chunk_bytes, "%zu", s->opts.chunk_bytes);
    snprintf(created_ms, sizeof created_ms, "%" PRIu64, now);
    snprintf(checksum, sizeof checksum, "%016" PRIx64, (uint64_t)XXH64(w->blob, w->len, 0));
    char *offsets = offsets_json(w->offsets, w->n_offsets);
    char *sections = sections_json(w->sections, w->n_sections);
    if (!offsets || !sections) {
        free(offsets);
        free(sections);
        sl_errstr_set(errstr, errstr_size, "out of memory encoding offsets of version %" PRIu64, v);
        return SL_ERR_NOMEM;
    }
    const char *argv[] = {"HSET",        key,
                          "format",      "1",
                          "version",     version,
                          "parent",      parent,
                          "created_at",  created_at,
                          "created_ms",  created_ms,
                          "step",        step,
                          "samples",     samples,
                          "size",        size,
                          "nchunks",     chunks,
                          "chunk_bytes", chunk_bytes,
                          "checksum",    checksum,
                          "config",      w->config ? w->config : "{}",
                          "metrics",     w->metrics ? w->metrics : "{}",
                          "origin",      w->origin ? w->origin : "worker",
                          "offsets",     offsets,
                          "sections",    sections,
                          "annotations", w->annotations ? w->annotations : "{}"};
    sl_err_t err = sl_snapshot_call_int(s, NULL, errstr, errstr_size,
                                        (int)(sizeof argv / sizeof argv[0]), argv);
    free(offsets);
    free(sections);
    if (err != SL_OK)
        return err;
    const char *expire[] = {"PEXPIRE", key, ttl};
    return sl_snapshot_call_int(s, NULL, errstr, errstr_size, 3, expire);
}

/* Reads an EVAL reply {a, b[, c]} of integers. */
sl_err_t sl_snapshot_int_array(const redisReply *rep, const char *what, long long *out, size_t n,
                               char *errstr, size_t errstr_size) {
    if (rep->elements < n) {
        sl_errstr_set(errstr, errstr_size, "%s: expected %zu integers, got %zu elements", what, n,
                      rep->elements);
        return SL_ERR_REDIS;
    }
    for (size_t i = 0; i < n; i++) {
        if (rep->element[i]->type != REDIS_REPLY_INTEGER) {
            char desc[200];
            sl_redis_reply_describe(rep->element[i], desc, sizeof desc);
            sl_errstr_set(errstr, errstr_size, "%s: element %zu: expected an integer, got %s", what,
                          i, desc);
            return SL_ERR_REDIS;
        }
        out[i] = rep->element[i]->integer;
    }
    return SL_OK;
}

static sl_err_t run_publish(sl_snapshot_t *s, const sl_snap_write_t *w, uint64_t v,
                            uint32_t nchunks, long long res[3], char *errstr, size_t errstr_size) {
    char meta[SL_KEYS_MAX], version[24], parent[24], keep[16], chunks[16];
    sl_keys_meta(meta, s->name, v);
    snprintf(version, sizeof version, "%" PRIu64, v);
    snprintf(parent, sizeof parent, "%" PRIu64, w->parent);
    snprintf(keep, sizeof keep, "%" PRIu32, s->opts.keep_versions);
    snprintf(chunks, sizeof chunks, "%" PRIu32, nchunks);
    const char *argv[] = {"EVAL",
                          publish_script,
                          "5",
                          s->k_head,
                          s->k_versions,
                          s->k_pinned,
                          s->k_lease,
                          meta,
                          version,
                          parent,
                          w->lease_token ? w->lease_token : "",
                          keep,
                          chunks,
                          s->k_prefix};
    redisReply *rep;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size,
                                    (int)(sizeof argv / sizeof argv[0]), argv);
    if (err != SL_OK)
        return err;
    res[2] = 0;
    err = sl_snapshot_int_array(rep, "publish script", res, rep->elements >= 3 ? 3 : 2, errstr,
                                errstr_size);
    sl_redis_reply_free(rep);
    return err;
}

static sl_err_t publish_blob(sl_snapshot_t *s, const sl_snap_write_t *w,
                             sl_publish_status_t *status, uint64_t *version, uint64_t *head,
                             char *errstr, size_t errstr_size);

sl_err_t sl_snapshot_publish(sl_snapshot_t *s, const sl_snap_write_t *w,
                             sl_publish_status_t *status, uint64_t *version, uint64_t *head,
                             char *errstr, size_t errstr_size) {
    *status = SL_PUBLISH_STALE;
    *version = 0;
    size_t total;
    sl_err_t err = check_sections(w, &total, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (w->n_sections > 0) {
        /* stored as one blob: the model's state, then each section's bytes */
        uint8_t *all = malloc(total ? total : 1);
        if (!all) {
            sl_errstr_set(errstr, errstr_size, "out of memory joining %zu snapshot sections",
                          w->n_sections);
            return SL_ERR_NOMEM;
        }
        memcpy(all, w->blob, w->len);
        size_t off = w->len;
        for (size_t i = 0; i < w->n_sections; i++) {
            if (w->sections[i].len)
                memcpy(all + off, w->sections[i].data, w->sections[i].len);
            off += w->sections[i].len;
        }
        sl_snap_write_t joined = *w;
        joined.blob = all;
        joined.len = total;
        err = publish_blob(s, &joined, status, version, head, errstr, errstr_size);
        free(all);
        return err;
    }
    return publish_blob(s, w, status, version, head, errstr, errstr_size);
}

/* sl_snapshot_publish of w->blob as the whole stored blob (sections already in it). */
static sl_err_t publish_blob(sl_snapshot_t *s, const sl_snap_write_t *w,
                             sl_publish_status_t *status, uint64_t *version, uint64_t *head,
                             char *errstr, size_t errstr_size) {
    uint64_t nchunks64 = (w->len + s->opts.chunk_bytes - 1) / s->opts.chunk_bytes;
    if (nchunks64 == 0 || nchunks64 > UINT32_MAX) {
        sl_errstr_set(errstr, errstr_size, "snapshot of %zu bytes: cannot be chunked", w->len);
        return SL_ERR_INVAL;
    }
    uint32_t nchunks = (uint32_t)nchunks64;
    long long v;
    char floor[24];
    snprintf(floor, sizeof floor, "%" PRIu64,
             w->parent > w->version_floor ? w->parent : w->version_floor);
    const char *alloc[] = {"EVAL", alloc_script, "1", s->k_counter, floor};
    sl_err_t err = sl_snapshot_call_int(s, &v, errstr, errstr_size, 5, alloc);
    if (err != SL_OK)
        return err;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%" PRIu32, s->opts.staging_ttl_ms);
    long long res[3] = {0, 0, 0};
    err = stage_chunks(s, w, (uint64_t)v, nchunks, ttl, errstr, errstr_size);
    if (err == SL_OK)
        err = stage_meta(s, w, (uint64_t)v, nchunks, ttl, errstr, errstr_size);
    if (err == SL_OK)
        err = run_publish(s, w, (uint64_t)v, nchunks, res, errstr, errstr_size);
    if (err != SL_OK || res[0] != 1) {
        /* Staged keys would expire anyway; deleting them now saves memory. */
        if (sl_redis_connected(s->redis))
            delete_version_keys(s, (uint64_t)v, nchunks);
        if (err != SL_OK)
            return err;
        *status = res[0] == 0 ? SL_PUBLISH_STALE : SL_PUBLISH_NO_LEASE;
        if (head)
            *head = (uint64_t)res[1];
        return SL_OK;
    }
    *status = SL_PUBLISH_DONE;
    *version = (uint64_t)v;
    if (head)
        *head = (uint64_t)v;
    if (res[2] > 0)
        sl_log(SL_LOG_INFO, "retention dropped versions", SL_STR("model", s->name),
               SL_I64("dropped", res[2]), SL_U64("head", (uint64_t)v));
    return SL_OK;
}

sl_err_t sl_snapshot_head(sl_snapshot_t *s, uint64_t *head, char *errstr, size_t errstr_size) {
    const char *argv[] = {"GET", s->k_head};
    redisReply *rep;
    *head = 0;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_STR_OR_NIL, &rep, errstr, errstr_size, 2, argv);
    if (err != SL_OK)
        return err;
    if (rep->type == REDIS_REPLY_STRING)
        err = sl_redis_reply_u64(rep, s->k_head, head, errstr, errstr_size);
    sl_redis_reply_free(rep);
    return err;
}

sl_err_t sl_snapshot_poll(sl_snapshot_t *s, uint64_t *head, uint64_t *rollbacks, char *errstr,
                          size_t errstr_size) {
    const char *argv[] = {"MGET", s->k_head, s->k_rollbacks};
    redisReply *rep;
    *head = *rollbacks = 0;
    sl_err_t err = sl_snapshot_call(s, SL_REPLY_ARRAY, &rep, errstr, errstr_size, 3, argv);
    if (err != SL_OK)
        return err;
    if (rep->elements != 2) {
        sl_errstr_set(errstr, errstr_size, "redis MGET %s: expected 2 elements, got %zu", s->k_head,
                      rep->elements);
        err = SL_ERR_REDIS;
    }
    if (err == SL_OK && rep->element[0]->type != REDIS_REPLY_NIL)
        err = sl_redis_reply_u64(rep->element[0], s->k_head, head, errstr, errstr_size);
    if (err == SL_OK && rep->element[1]->type != REDIS_REPLY_NIL)
        err = sl_redis_reply_u64(rep->element[1], s->k_rollbacks, rollbacks, errstr, errstr_size);
    sl_redis_reply_free(rep);
    return err;
}
