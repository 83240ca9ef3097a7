/* redis.c - one Redis connection (hiredis 0.14): URL parsing, AUTH/SELECT,
 * timeouts, reconnection with capped backoff, and reply-type checking. */

#include "redis.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include "common/log.h"
#include "common/redact.h"

struct sl_redis {
    sl_redis_url_t url;
    char name[600]; /* the URL, password redacted */
    sl_redis_opts_t opts;
    redisContext *ctx;
    uint64_t next_attempt_ms; /* no connect before this (CLOCK_MONOTONIC) */
    uint32_t backoff_ms;
    uint64_t failures;
    char last_error[256];
};

static int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies src[0..n) into out (out_size bytes) percent-decoding it; -1 on a bad
 * escape, -2 when it does not fit. */
static int pct_decode(const char *src, size_t n, char *out, size_t out_size) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (o + 1 >= out_size)
            return -2;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

/* Parses digits s[0..n) as an integer in [lo, hi]; -1 if not. */
static long parse_num(const char *s, size_t n, long lo, long hi) {
    if (n == 0 || n > 9)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < lo || v > hi ? -1 : v;
}

static sl_err_t url_parse_userinfo(const char *p, size_t n, sl_redis_url_t *out, const char *shown,
                                   char *errstr, size_t errstr_size) {
    const char *colon = memchr(p, ':', n);
    size_t ulen = colon ? (size_t)(colon - p) : n;
    int rc = pct_decode(p, ulen, out->user, sizeof out->user);
    if (rc == 0 && colon)
        rc = pct_decode(colon + 1, n - ulen - 1, out->password, sizeof out->password);
    if (rc == -1) {
        sl_errstr_set(errstr, errstr_size, "redis URL %s: bad %%XX escape in user or password",
                      shown);
        return SL_ERR_INVAL;
    }
    if (rc == -2) {
        sl_errstr_set(errstr, errstr_size, "redis URL %s: user or password too long", shown);
        return SL_ERR_INVAL;
    }
    if (!colon) { /* redis://password@host is a common shorthand for AUTH password */
        snprintf(out->password, sizeof out->password, "%s", out->user);
        out->user[0] = '\0';
    }
    return SL_OK;
}

static sl_err_t url_parse_hostport(const char *p, size_t n, sl_redis_url_t *out, const char *shown,
                                   char *errstr, size_t errstr_size) {
    const char *host = p, *port = NULL;
    size_t hlen = n;
    if (n > 0 && p[0] == '[') { /* [ipv6]:port */
        const char *close = memchr(p, ']', n);
        if (!close) {
            sl_errstr_set(errstr, errstr_size, "redis URL %s: missing ']' after IPv6 host", shown);
            return SL_ERR_INVAL;
        }
        host = p + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < p + n) {
            if (close[1] != ':') {
                sl_errstr_set(errstr, errstr_size, "redis URL %s: expected ':' after ']'", shown);
                return SL_ERR_INVAL;
            }
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon) {
            hlen = (size_t)(colon - p);
            port = colon + 1;
        }
    }
    if (hlen == 0) {
        sl_errstr_set(errstr, errstr_size, "redis URL %s: empty host", shown);
        return SL_ERR_INVAL;
    }
    if (hlen >= sizeof out->host) {
        sl_errstr_set(errstr, errstr_size, "redis URL %s: host too long", shown);
        return SL_ERR_INVAL;
    }
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = 6379;
    if (port) {
        long v = parse_num(port, (size_t)(p + n - port), 1, 65535);
        if (v < 0) {
            sl_errstr_set(errstr, errstr_size,
                          "redis URL %s: port must be a number 1..65535 (got \"%.*s\")", shown,
                          (int)(p + n - port), port);
            return SL_ERR_INVAL;
        }
        out->port = (int)v;
    }
    return SL_OK;
}

sl_err_t sl_redis_url_parse(const char *url, sl_redis_url_t *out, char *errstr,
                            size_t errstr_size) {
    memset(out, 0, sizeof *out);
    if (!url) {
        sl_errstr_set(errstr, errstr_size, "redis URL missing");
        return SL_ERR_INVAL;
    }
    char shown[512];
    sl_redact_url(url, shown, sizeof shown);
    static const char scheme[] = "redis://";
    if (!strncmp(url, "rediss://", 9)) {
        sl_errstr_set(errstr, errstr_size,
                      "redis URL %s: rediss:// (TLS) is not supported by this build (hiredis 0.14)",
                      shown);
        return SL_ERR_INVAL;
    }
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        sl_errstr_set(errstr, errstr_size,
                      "redis URL %s: must start with redis:// "
                      "(redis://[user:password@]host:port[/db])",
                      shown);
        return SL_ERR_INVAL;
    }
    const char *auth = url + sizeof scheme - 1;
    const char *slash = strchr(auth, '/');
    const char *end = slash ? slash : auth + strlen(auth);
    const char *at = NULL;
    for (const char *q = auth; q < end; q++)
        if (*q == '@')
            at = q; /* the last '@' ends the user info */
    sl_err_t err;
    if (at) {
        err = url_parse_userinfo(auth, (size_t)(at - auth), out, shown, errstr, errstr_size);
        if (err != SL_OK)
            return err;
    }
    const char *hp = at ? at + 1 : auth;
    err = url_parse_hostport(hp, (size_t)(end - hp), out, shown, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    if (slash && slash[1] != '\0') {
        long v = parse_num(slash + 1, strlen(slash + 1), 0, 65535);
        if (v < 0) {
            sl_errstr_set(errstr, errstr_size,
                          "redis URL %s: database after '/' must be a number 0..65535 (got \"%s\")",
                          shown, slash + 1);
            return SL_ERR_INVAL;
        }
        out->db = (int)v;
    }
    return SL_OK;
}

sl_redis_t *sl_redis_new(const char *url, const sl_redis_opts_t *opts, char *errstr,
                         size_t errstr_size) {
    sl_redis_url_t u;
    if (sl_redis_url_parse(url, &u, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_redis_t *r = calloc(1, sizeof *r);
    if (!r) {
        sl_errstr_set(errstr, errstr_size, "out of memory creating the redis connection");
        return NULL;
    }
    r->url = u;
    sl_redact_url(url, r->name, sizeof r->name);
    if (opts)
        r->opts = *opts;
    if (!r->opts.connect_timeout_ms)
        r->opts.connect_timeout_ms = 2000;
    if (!r->opts.command_timeout_ms)
        r->opts.command_timeout_ms = 5000;
    if (!r->opts.backoff_min_ms)
        r->opts.backoff_min_ms = 100;
    if (!r->opts.backoff_max_ms)
        r->opts.backoff_max_ms = 5000;
    if (r->opts.backoff_max_ms < r->opts.backoff_min_ms)
        r->opts.backoff_max_ms = r->opts.backoff_min_ms;
    r->backoff_ms = r->opts.backoff_min_ms;
    return r;
}

static void drop_context(sl_redis_t *r) {
    if (r->ctx)
        redisFree(r->ctx);
    r->ctx = NULL;
}

void sl_redis_destroy(sl_redis_t *r) {
    if (!r)
        return;
    drop_context(r);
    /* the password should not linger in freed memory */
    memset(&r->url, 0, sizeof r->url);
    free(r);
}

static struct timeval ms_tv(uint32_t ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Records a connection-level failure: the text goes to last_error and errstr. */
static sl_err_t conn_fail(sl_redis_t *r, int connecting, char *errstr, size_t errstr_size,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static sl_err_t conn_fail(sl_redis_t *r, int connecting, char *errstr, size_t errstr_size,
                          const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->last_error, sizeof r->last_error, fmt, ap);
    va_end(ap);
    sl_errstr_set(errstr, errstr_size, "%s", r->last_error);
    drop_context(r);
    r->failures++;
    uint64_t now = sl_now_ms();
    if (connecting) {
        r->next_attempt_ms = now + r->backoff_ms;
        r->backoff_ms = r->backoff_ms >= r->opts.backoff_max_ms / 2 ? r->opts.backoff_max_ms
                                                                    : r->backoff_ms * 2;
    } else {
        r->next_attempt_ms = now; /* a dropped connection may be retried at once */
    }
    return SL_ERR_REDIS;
}

/* Runs one setup command (AUTH, SELECT) on a fresh context. */
static sl_err_t setup_command(sl_redis_t *r, const char *what, int argc, const char **argv,
                              char *errstr, size_t errstr_size) {
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, NULL);
    if (!rep)
        return conn_fail(r, 1, errstr, errstr_size, "redis %s: %s failed: %s", r->name, what,
                         r->ctx->errstr[0] ? r->ctx->errstr : "no reply");
    if (rep->type == REDIS_REPLY_ERROR) {
        char desc[200];
        snprintf(desc, sizeof desc, "%.*s", (int)rep->len, rep->str);
        freeReplyObject(rep);
        return conn_fail(r, 1, errstr, errstr_size, "redis %s: %s refused: %s", r->name, what,
                         desc);
    }
    freeReplyObject(rep);
    return SL_OK;
}

sl_err_t sl_redis_connect(sl_redis_t *r, char *errstr, size_t errstr_size) {
    drop_context(r);
    r->ctx = redisConnectWithTimeout(r->url.host, r->url.port, ms_tv(r->opts.connect_timeout_ms));
    if (!r->ctx)
        return conn_fail(r, 1, errstr, errstr_size, "redis %s: cannot allocate a context", r->name);
    if (r->ctx->err) /* host and port as tried: a URL without a port means 6379 */
        return conn_fail(r, 1, errstr, errstr_size, "redis %s: cannot connect to %s%s%s:%d: %s",
                         r->name, strchr(r->url.host, ':') ? "[" : "", r->url.host,
                         strchr(r->url.host, ':') ? "]" : "", r->url.port, r->ctx->errstr);
    if (redisSetTimeout(r->ctx, ms_tv(r->opts.command_timeout_ms)) != REDIS_OK)
        return conn_fail(r, 1, errstr, errstr_size, "redis %s: cannot set the command timeout",
                         r->name);
    sl_err_t err = SL_OK;
    if (r->url.password[0] && r->url.user[0]) {
        const char *argv[] = {"AUTH", r->url.user, r->url.password};
        err = setup_command(r, "AUTH (ACL user)", 3, argv, errstr, errstr_size);
    } else if (r->url.password[0]) {
        const char *argv[] = {"AUTH", r->url.password};
        err = setup_command(r, "AUTH", 2, argv, errstr, errstr_size);
    }
    if (err == SL_OK && r->url.db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->url.db);
        const char *argv[] = {"SELECT", db};
        err = setup_command(r, "SELECT", 2, argv, errstr, errstr_size);
    }
    if (err != SL_OK)
        return err;
    if (r->failures)
        sl_log(SL_LOG_INFO, "redis reconnected", SL_STR("redis", r->name),
               SL_U64("failures", r->failures));
    r->failures = 0;
    r->last_error[0] = '\0';
    r->backoff_ms = r->opts.backoff_min_ms;
    return SL_OK;
}

int sl_redis_connected(const sl_redis_t *r) {
    return r->ctx != NULL;
}

const char *sl_redis_name(const sl_redis_t *r) {
    return r->name;
}

uint64_t sl_redis_failures(const sl_redis_t *r) {
    return r->failures;
}

void sl_redis_reply_free(redisReply *reply) {
    if (reply)
        freeReplyObject(reply);
}

void sl_redis_reply_describe(const redisReply *reply, char *out, size_t out_size) {
    if (!reply) {
        snprintf(out, out_size, "no reply");
        return;
    }
    switch (reply->type) {
    case REDIS_REPLY_NIL: snprintf(out, out_size, "nil"); break;
    case REDIS_REPLY_INTEGER: snprintf(out, out_size, "an integer (%lld)", reply->integer); break;
    case REDIS_REPLY_STRING: snprintf(out, out_size, "a string of %zu bytes", reply->len); break;
    case REDIS_REPLY_ARRAY:
        snprintf(out, out_size, "an array of %zu elements", reply->elements);
        break;
    case REDIS_REPLY_STATUS:
        snprintf(out, out_size, "a status (%.*s)", (int)(reply->len > 60 ? 60 : reply->len),
                 reply->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(out, out_size, "an error (%.*s)", (int)(reply->len > 200 ? 200 : reply->len),
                 reply->str);
        break;
    default: snprintf(out, out_size, "a reply of unknown type %d", reply->type); break;
    }
}

static int reply_fits(const redisReply *rep, sl_reply_expect_t expect) {
    switch (expect) {
    case SL_REPLY_ANY: return 1;
    case SL_REPLY_STATUS: return rep->type == REDIS_REPLY_STATUS;
    case SL_REPLY_INT: return rep->type == REDIS_REPLY_INTEGER;
    case SL_REPLY_STR: return rep->type == REDIS_REPLY_STRING;
    case SL_REPLY_STR_OR_NIL:
        return rep->type == REDIS_REPLY_STRING || rep->type == REDIS_REPLY_NIL;
    case SL_REPLY_ARRAY: return rep->type == REDIS_REPLY_ARRAY;
    case SL_REPLY_INT_OR_NIL:
        return rep->type == REDIS_REPLY_INTEGER || rep->type == REDIS_REPLY_NIL;
    }
    return 0;
}

static const char *expect_name(sl_reply_expect_t expect) {
    static const char *names[] = {"any reply",       "a status", "an integer",       "a string",
                                  "a string or nil", "an array", "an integer or nil"};
    return names[expect];
}

/* "EVAL" names itself by its first key (argv[3]); others by argv[1]. */
static void command_label(int argc, const char **argv, const size_t *argvlen, char *out,
                          size_t out_size) {
    int key =
        (argc > 3 && (!strcasecmp(argv[0], "EVAL") || !strcasecmp(argv[0], "EVALSHA"))) ? 3 : 1;
    if (argc > key) {
        size_t klen = argvlen ? argvlen[key] : strlen(argv[key]);
        snprintf(out, out_size, "%s %.*s", argv[0], (int)(klen > 300 ? 300 : klen), argv[key]);
    } else {
        snprintf(out, out_size, "%s", argc > 0 ? argv[0] : "(empty command)");
    }
}

sl_err_t sl_redis_call(sl_redis_t *r, sl_reply_expect_t expect, redisReply **reply, char *errstr,
                       size_t errstr_size, int argc, const char **argv, const size_t *argvlen) {
    *reply = NULL;
    char label[400];
    command_label(argc, argv, argvlen, label, sizeof label);
    if (!r->ctx) {
        uint64_t now = sl_now_ms();
        if (now < r->next_attempt_ms) {
            sl_errstr_set(errstr, errstr_size,
                          "redis %s: %s: not connected (next attempt in %" PRIu64
                          " ms; last error: %s)",
                          r->name, label, r->next_attempt_ms - now, r->last_error);
            return SL_ERR_REDIS;
        }
        sl_err_t err = sl_redis_connect(r, errstr, errstr_size);
        if (err != SL_OK)
            return err;
    }
    redisReply *rep = redisCommandArgv(r->ctx, argc, argv, argvlen);
    if (!rep) {
        int oom = r->ctx->err == REDIS_ERR_OOM;
        sl_err_t err = conn_fail(r, 0, errstr, errstr_size, "redis %s: %s: %s", r->name, label,
                                 r->ctx->errstr[0] ? r->ctx->errstr : "connection lost");
        return oom ? SL_ERR_NOMEM : err;
    }
    if (rep->type == REDIS_REPLY_ERROR || !reply_fits(rep, expect)) {
        char desc[300];
        sl_redis_reply_describe(rep, desc, sizeof desc);
        if (rep->type == REDIS_REPLY_ERROR)
            sl_errstr_set(errstr, errstr_size, "redis %s: %s: %.*s", r->name, label,
                          (int)(rep->len > 300 ? 300 : rep->len), rep->str);
        else
            sl_errstr_set(errstr, errstr_size, "redis %s: %s: expected %s, got %s", r->name, label,
                          expect_name(expect), desc);
        freeReplyObject(rep);
        return SL_ERR_REDIS;
    }
    *reply = rep;
    return SL_OK;
}

sl_err_t sl_redis_reply_u64(const redisReply *reply, const char *what, uint64_t *out, char *errstr,
                            size_t errstr_size) {
    if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
        *out = (uint64_t)reply->integer;
        return SL_OK;
    }
    if (reply && reply->type == REDIS_REPLY_STRING && reply->len > 0 && reply->len <= 20) {
        uint64_t v = 0;
        size_t i;
        for (i = 0; i < reply->len; i++) {
            char c = reply->str[i];
            if (c < '0' || c > '9' || v > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
                break;
            v = v * 10 + (uint64_t)(c - '0');
        }
        if (i == reply->len) {
            *out = v;
            return SL_OK;
        }
        sl_errstr_set(errstr, errstr_size, "%s: expected a non-negative integer, got \"%.*s\"",
                      what, (int)(reply->len > 40 ? 40 : reply->len), reply->str);
        return SL_ERR_REDIS;
    }
    char desc[300];
    sl_redis_reply_describe(reply, desc, sizeof desc);
    sl_errstr_set(errstr, errstr_size, "%s: expected a non-negative integer, got %s", what, desc);
    return SL_ERR_REDIS;
}
