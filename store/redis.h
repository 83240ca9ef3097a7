/* redis.h - one Redis connection (hiredis 0.14): URL parsing, AUTH/SELECT,
 * timeouts, reconnection with capped backoff, and reply-type checking. */
#ifndef SL_REDIS_H
#define SL_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "common/err.h"

/* A parsed redis://[user:password@]host:port[/db] URL. Plain data. user and
 * password are percent-decoded; an empty user with a password means plain
 * `AUTH password`, a user with a password means `AUTH user password` (ACL). */
typedef struct sl_redis_url {
    char user[128];
    char password[256];
    char host[256];
    int port; /* default 6379 */
    int db;   /* default 0 */
} sl_redis_url_t;

/* Parses `url`. Returns SL_ERR_INVAL with errstr saying what is wrong (and
 * quoting the URL with its password redacted) for: a scheme other than
 * redis:// (rediss:// is refused: hiredis 0.14 has no TLS), an empty host, a
 * port that is not 1..65535, a db that is not a number 0..65535, anything
 * after the db, a bad %XX escape, a part too long for the struct. *out is
 * zeroed first. */
sl_err_t sl_redis_url_parse(const char *url, sl_redis_url_t *out, char *errstr, size_t errstr_size);

/* Timeouts and backoff; a zeroed field takes the default in brackets. */
typedef struct sl_redis_opts {
    uint32_t connect_timeout_ms; /* [2000] */
    uint32_t command_timeout_ms; /* [5000] */
    uint32_t backoff_min_ms;     /* [100] first wait after a failed connect */
    uint32_t backoff_max_ms;     /* [5000] the wait doubles up to this */
} sl_redis_opts_t;

typedef struct sl_redis sl_redis_t;

/* Creates a connection object for `url` without connecting (the first
 * command, or sl_redis_connect, connects). opts may be NULL (defaults).
 * Returns NULL with errstr on a bad URL (see sl_redis_url_parse) or out of
 * memory. One object per thread: it is not thread-safe. Free with
 * sl_redis_destroy. */
sl_redis_t *sl_redis_new(const char *url, const sl_redis_opts_t *opts, char *errstr,
                         size_t errstr_size);

/* Closes the connection and frees r; NULL is a no-op. */
void sl_redis_destroy(sl_redis_t *r);

/* Connects now (dropping any current connection), ignoring the backoff:
 * TCP connect with the connect timeout, command timeout, AUTH, SELECT.
 * Returns SL_ERR_REDIS with errstr naming the server (password redacted) and
 * the step that failed; the next attempt is then subject to backoff. */
sl_err_t sl_redis_connect(sl_redis_t *r, char *errstr, size_t errstr_size);

/* 1 if a live context is held (it may still turn out dead on next use). */
int sl_redis_connected(const sl_redis_t *r);

/* The URL with its password replaced by "***" (owned by r). */
const char *sl_redis_name(const sl_redis_t *r);

/* How many commands or connects have failed at the connection level since
 * the last success. */
uint64_t sl_redis_failures(const sl_redis_t *r);

/* What a reply must look like; anything else is an error naming the command. */
typedef enum sl_reply_expect {
    SL_REPLY_ANY,        /* any non-error reply */
    SL_REPLY_STATUS,     /* +OK and friends */
    SL_REPLY_INT,        /* :n */
    SL_REPLY_STR,        /* a bulk string, not nil */
    SL_REPLY_STR_OR_NIL, /* a bulk string or nil */
    SL_REPLY_ARRAY,      /* an array, not nil */
    SL_REPLY_INT_OR_NIL, /* :n or nil */
} sl_reply_expect_t;

/* Sends argv[0..argc) (argvlen may be NULL: strlen of each) and checks the
 * reply against `expect`. Connects first if needed, unless a failed connect
 * asked to back off and the wait is not over (then fails at once).
 * On SL_OK *reply holds the reply; free it with sl_redis_reply_free.
 * Errors, *reply NULL, errstr naming the command and its first key:
 *  - SL_ERR_REDIS: no connection, I/O error or timeout (the connection is
 *    dropped: hiredis contexts are dead after any error, the next call
 *    reconnects), an error reply (its text kept, e.g. WRONGTYPE), or a
 *    reply of another type than expected ("expected an integer, got a
 *    string of 3 bytes").
 *  - SL_ERR_NOMEM. */
sl_err_t sl_redis_call(sl_redis_t *r, sl_reply_expect_t expect, redisReply **reply, char *errstr,
                       size_t errstr_size, int argc, const char **argv, const size_t *argvlen);

/* Frees a reply; NULL is a no-op. */
void sl_redis_reply_free(redisReply *reply);

/* Describes a reply for messages: "nil", "an integer (5)", "a string of 3
 * bytes", "an array of 2 elements", "a status (OK)", "an error (ERR ...)". */
void sl_redis_reply_describe(const redisReply *reply, char *out, size_t out_size);

/* Parses a bulk string reply holding a decimal unsigned integer (as Redis
 * stores numbers in strings and hashes). Returns SL_ERR_REDIS with errstr
 * naming `what` (a key or field) when the reply is not such a string. */
sl_err_t sl_redis_reply_u64(const redisReply *reply, const char *what, uint64_t *out, char *errstr,
                            size_t errstr_size);

#endif
