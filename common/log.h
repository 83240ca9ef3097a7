/* log.h - structured logs: one JSON object per line on stderr. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum sl_log_level {
    SL_LOG_DEBUG = 0,
    SL_LOG_INFO = 1,
    SL_LOG_WARN = 2,
    SL_LOG_ERROR = 3,
} sl_log_level_t;

typedef enum sl_field_type {
    SL_FIELD_STR,
    SL_FIELD_I64,
    SL_FIELD_U64,
    SL_FIELD_DBL,
    SL_FIELD_BOOL,
} sl_field_type_t;

/* One key/value of a log line. Strings are borrowed for the call. */
typedef struct sl_field {
    const char *key;
    sl_field_type_t type;
    union {
        const char *s;
        int64_t i;
        uint64_t u;
        double d;
    } v;
} sl_field_t;

#define SL_STR(k, x) ((sl_field_t){.key = (k), .type = SL_FIELD_STR, .v.s = (x)})
#define SL_I64(k, x) ((sl_field_t){.key = (k), .type = SL_FIELD_I64, .v.i = (int64_t)(x)})
#define SL_U64(k, x) ((sl_field_t){.key = (k), .type = SL_FIELD_U64, .v.u = (uint64_t)(x)})
#define SL_DBL(k, x) ((sl_field_t){.key = (k), .type = SL_FIELD_DBL, .v.d = (double)(x)})
#define SL_BOOL(k, x) ((sl_field_t){.key = (k), .type = SL_FIELD_BOOL, .v.i = !!(x)})

/* Lines below `level` are dropped. Default SL_LOG_INFO. Not thread-safe to
 * change while other threads log. */
void sl_log_set_level(sl_log_level_t level);
sl_log_level_t sl_log_get_level(void);

/* Parses "debug|info|warn|error"; returns 0 on success, -1 otherwise. */
int sl_log_level_parse(const char *name, sl_log_level_t *level);

/* Writes {"time":..., "level":..., "msg":..., <fields>} and a newline to
 * stderr in one write (lines from several threads never interleave).
 * Non-finite doubles are written as null. */
void sl_log_fields(sl_log_level_t level, const char *msg, const sl_field_t *fields, size_t n);

/* sl_log(level, msg, SL_STR("path", p), SL_U64("n", n)) - at least one field;
 * use sl_log_msg for none. */
#define sl_log(level, msg, ...)                                                                    \
    do {                                                                                           \
        const sl_field_t sl_log_f_[] = {__VA_ARGS__};                                              \
        sl_log_fields((level), (msg), sl_log_f_, sizeof sl_log_f_ / sizeof sl_log_f_[0]);          \
    } while (0)
#define sl_log_msg(level, msg) sl_log_fields((level), (msg), NULL, 0)

/* Rate limiting for per-message errors: at most `burst` lines per
 * `interval_ms`; the rest are counted and reported as `suppressed` on the next
 * line let through. Plain data; zero-initialise then set the two limits. */
typedef struct sl_ratelimit {
    uint64_t interval_ms;
    uint32_t burst;
    uint64_t window_start_ms;
    uint32_t in_window;
    uint64_t suppressed;
} sl_ratelimit_t;

/* Returns 1 if a line may be logged now (and sets *suppressed to the number of
 * lines dropped since the last one let through), else 0 and counts the drop. */
int sl_ratelimit_allow(sl_ratelimit_t *rl, uint64_t now_ms, uint64_t *suppressed);

/* Milliseconds on CLOCK_MONOTONIC, and wall-clock milliseconds since the epoch. */
uint64_t sl_now_ms(void);
uint64_t sl_wall_ms(void);

/* Formats wall-clock ms as RFC 3339 UTC with milliseconds into out (>= 32 bytes). */
void sl_format_rfc3339(uint64_t wall_ms, char *out, size_t out_size);

#endif
