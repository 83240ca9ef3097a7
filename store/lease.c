/* lease.c - one trainer per model name: a lease in Redis (SET NX PX with a
 * random token, renewed by compare-and-pexpire, checked on every publish). */

#include "lease.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/keys.h"

struct sl_lease {
    char key[SL_KEYS_MAX];
    char token[33];
    char ttl[16];
    uint32_t ttl_ms;
};

/* KEYS[1] lease, ARGV[1] token, ARGV[2] ttl ms: extend only our own lease. */
static const char renew_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                   "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                                   "  return 1\n"
                                   "end\n"
                                   "return 0\n";

/* KEYS[1] lease, ARGV[1] token: delete only our own lease. */
static const char release_script[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                                     "  return redis.call('DEL', KEYS[1])\n"
                                     "end\n"
                                     "return 0\n";

static int random_token(char out[33]) {
    unsigned char raw[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = read(fd, raw + got, sizeof raw - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

sl_lease_t *sl_lease_new(const char *name, uint32_t ttl_ms, char *errstr, size_t errstr_size) {
    if (sl_keys_check_name(name, errstr, errstr_size) != SL_OK)
        return NULL;
    sl_lease_t *l = calloc(1, sizeof *l);
    if (!l) {
        sl_errstr_set(errstr, errstr_size, "out of memory creating the lease");
        return NULL;
    }
    if (random_token(l->token) != 0) {
        sl_errstr_set(errstr, errstr_size, "lease: cannot read /dev/urandom: %s",
                      strerror(errno ? errno : EIO));
        free(l);
        return NULL;
    }
    sl_keys_model(l->key, name, "lease");
    l->ttl_ms = ttl_ms ? ttl_ms : SL_LEASE_DEFAULT_TTL_MS;
    snprintf(l->ttl, sizeof l->ttl, "%u", (unsigned)l->ttl_ms);
    return l;
}

void sl_lease_destroy(sl_lease_t *l) {
    free(l);
}

const char *sl_lease_token(const sl_lease_t *l) {
    return l->token;
}

static sl_err_t run_script(sl_lease_t *l, sl_redis_t *r, const char *script, int with_ttl,
                           long long *result, char *errstr, size_t errstr_size) {
    const char *argv[] = {"EVAL", script, "1", l->key, l->token, l->ttl};
    redisReply *rep;
    sl_err_t err =
        sl_redis_call(r, SL_REPLY_INT, &rep, errstr, errstr_size, with_ttl ? 6 : 5, argv, NULL);
    if (err != SL_OK)
        return err;
    *result = rep->integer;
    sl_redis_reply_free(rep);
    return SL_OK;
}

sl_err_t sl_lease_renew(sl_lease_t *l, sl_redis_t *r, int *held, char *errstr, size_t errstr_size) {
    long long res = 0;
    *held = 0;
    sl_err_t err = run_script(l, r, renew_script, 1, &res, errstr, errstr_size);
    if (err == SL_OK)
        *held = res == 1;
    return err;
}

sl_err_t sl_lease_acquire(sl_lease_t *l, sl_redis_t *r, int *held, char *errstr,
                          size_t errstr_size) {
    sl_err_t err = sl_lease_renew(l, r, held, errstr, errstr_size);
    if (err != SL_OK || *held)
        return err;
    const char *argv[] = {"SET", l->key, l->token, "NX", "PX", l->ttl};
    redisReply *rep;
    err = sl_redis_call(r, SL_REPLY_ANY, &rep, errstr, errstr_size, 6, argv, NULL);
    if (err != SL_OK)
        return err;
    if (rep->type == REDIS_REPLY_STATUS && rep->len == 2 && !memcmp(rep->str, "OK", 2)) {
        *held = 1;
    } else if (rep->type != REDIS_REPLY_NIL) {
        char desc[300];
        sl_redis_reply_describe(rep, desc, sizeof desc);
        sl_errstr_set(errstr, errstr_size, "redis SET %s NX: expected OK or nil, got %s", l->key,
                      desc);
        err = SL_ERR_REDIS;
    }
    sl_redis_reply_free(rep);
    return err;
}

sl_err_t sl_lease_release(sl_lease_t *l, sl_redis_t *r, char *errstr, size_t errstr_size) {
    long long res = 0;
    return run_script(l, r, release_script, 0, &res, errstr, errstr_size);
}
