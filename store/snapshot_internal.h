/* snapshot_internal.h - the snapshot store's fields and shared helpers, for
 * snapshot.c (publish), snapshot_read.c (reads, loading head) and
 * snapshot_ops.c (list, pins, rollback, audit). */
#ifndef SL_SNAPSHOT_INTERNAL_H
#define SL_SNAPSHOT_INTERNAL_H

#include "store/keys.h"
#include "store/snapshot.h"

struct sl_snapshot {
    sl_redis_t *redis;
    char name[SL_KEYS_MAX_NAME + 1];
    sl_snapshot_opts_t opts;
    char k_head[SL_KEYS_MAX], k_versions[SL_KEYS_MAX], k_pinned[SL_KEYS_MAX];
    char k_lease[SL_KEYS_MAX], k_counter[SL_KEYS_MAX], k_audit[SL_KEYS_MAX];
    char k_rollbacks[SL_KEYS_MAX], k_prefix[SL_KEYS_MAX];
};

/* Runs a command of string arguments expecting `expect` (sl_redis_call). */
sl_err_t sl_snapshot_call(sl_snapshot_t *s, sl_reply_expect_t expect, redisReply **rep,
                          char *errstr, size_t errstr_size, int argc, const char **argv);

/* Runs a command whose integer reply is all we need (*out may be NULL). */
sl_err_t sl_snapshot_call_int(sl_snapshot_t *s, long long *out, char *errstr, size_t errstr_size,
                              int argc, const char **argv);

/* Reads the first n integers of an EVAL array reply; SL_ERR_REDIS naming
 * `what` when there are fewer or they are not integers. */
sl_err_t sl_snapshot_int_array(const redisReply *rep, const char *what, long long *out, size_t n,
                               char *errstr, size_t errstr_size);

/* After a fallback: moves head from `bad` to `good` only if head is still
 * `bad`, with an audit entry. Failures are logged, not returned. */
void sl_snapshot_repair_head(sl_snapshot_t *s, uint64_t bad, uint64_t good, const char *why);

#endif
