/* lease.h - one trainer per model name: a lease in Redis (SET NX PX with a
 * random token, renewed by compare-and-pexpire, checked on every publish). */
#ifndef SL_LEASE_H
#define SL_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "store/redis.h"

#define SL_LEASE_DEFAULT_TTL_MS 10000u

typedef struct sl_lease sl_lease_t;

/* Creates a lease object for model `name` with a fresh random token (32 hex
 * digits from /dev/urandom) and `ttl_ms` (0 = SL_LEASE_DEFAULT_TTL_MS). Does
 * not touch Redis. Returns NULL with errstr on a bad name, when
 * /dev/urandom cannot be read, or out of memory. Free with sl_lease_destroy. */
sl_lease_t *sl_lease_new(const char *name, uint32_t ttl_ms, char *errstr, size_t errstr_size);

/* Frees the object (does not release the lease in Redis); NULL is a no-op. */
void sl_lease_destroy(sl_lease_t *l);

/* Takes the lease if it is free (SET key token NX PX ttl), or extends it if
 * this object already holds it. *held = 1 if this object holds the lease
 * afterwards, 0 if another holder has it. SL_ERR_REDIS (errstr from
 * sl_redis_call) when Redis cannot answer; *held is then 0. */
sl_err_t sl_lease_acquire(sl_lease_t *l, sl_redis_t *r, int *held, char *errstr,
                          size_t errstr_size);

/* Extends the lease by its TTL only if the key still holds this token (a Lua
 * compare-and-pexpire). *held = 0 when the lease was lost (expired and maybe
 * taken by another worker). Errors as sl_lease_acquire. */
sl_err_t sl_lease_renew(sl_lease_t *l, sl_redis_t *r, int *held, char *errstr, size_t errstr_size);

/* Deletes the key only if it still holds this token (compare-and-delete), so
 * a standby can take over at once. Errors as sl_lease_acquire. */
sl_err_t sl_lease_release(sl_lease_t *l, sl_redis_t *r, char *errstr, size_t errstr_size);

/* The token (owned by l). */
const char *sl_lease_token(const sl_lease_t *l);

#endif
