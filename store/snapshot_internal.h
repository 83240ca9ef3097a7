/* snapshot_internal.h - the snapshot store's fields, shared by snapshot.c
 * (writes, operator verbs) and snapshot_read.c (metadata and blob reads). */
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

#endif
