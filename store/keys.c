/* keys.c - the Redis key names of a model, all under one hash tag {sl:<name>}. */

#include "keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

sl_err_t sl_keys_check_name(const char *name, char *errstr, size_t errstr_size) {
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > SL_KEYS_MAX_NAME) {
        sl_errstr_set(errstr, errstr_size, "--model-name: must be 1..%d bytes (got %zu)",
                      SL_KEYS_MAX_NAME, n);
        return SL_ERR_INVAL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 0x7f || c == '{' || c == '}') {
            sl_errstr_set(errstr, errstr_size,
                          "--model-name \"%s\": byte %zu is not allowed (printable ASCII "
                          "without spaces, '{' or '}')",
                          name, i);
            return SL_ERR_INVAL;
        }
    }
    return SL_OK;
}

void sl_keys_model(char *out, const char *name, const char *suffix) {
    snprintf(out, SL_KEYS_MAX, "{sl:%s}:%s", name, suffix);
}

void sl_keys_meta(char *out, const char *name, uint64_t version) {
    snprintf(out, SL_KEYS_MAX, "{sl:%s}:v:%" PRIu64, name, version);
}

void sl_keys_chunk(char *out, const char *name, uint64_t version, uint32_t index) {
    snprintf(out, SL_KEYS_MAX, "{sl:%s}:v:%" PRIu64 ":c:%" PRIu32, name, version, index);
}
