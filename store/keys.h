/* keys.h - the Redis key names of a model, all under one hash tag {sl:<name>}
 * so every key of a model lands in one Redis Cluster slot (docs/REDIS.md). */
#ifndef SL_KEYS_H
#define SL_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Longest model name accepted. */
#define SL_KEYS_MAX_NAME 200

/* Room for any key this module builds. */
#define SL_KEYS_MAX (SL_KEYS_MAX_NAME + 64)

/* Checks a model name: 1..SL_KEYS_MAX_NAME bytes of printable ASCII without
 * '{' or '}' (they would break the hash tag) or spaces. Returns SL_ERR_INVAL
 * with errstr saying why. */
sl_err_t sl_keys_check_name(const char *name, char *errstr, size_t errstr_size);

/* Writes "{sl:<name>}:<suffix>" into out (SL_KEYS_MAX bytes), e.g. suffix
 * "head", "versions", "lease". The name must have passed sl_keys_check_name. */
void sl_keys_model(char *out, const char *name, const char *suffix);

/* "{sl:<name>}:v:<version>" (the metadata hash of a version). */
void sl_keys_meta(char *out, const char *name, uint64_t version);

/* "{sl:<name>}:v:<version>:c:<index>" (chunk `index` of a version's blob). */
void sl_keys_chunk(char *out, const char *name, uint64_t version, uint32_t index);

#endif
