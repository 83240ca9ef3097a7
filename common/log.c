/* log.c - JSON-lines logger, rate limiter and clocks. */

#include "log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"

static sl_log_level_t g_level = SL_LOG_INFO;

void sl_log_set_level(sl_log_level_t level) {
    g_level = level;
}

sl_log_level_t sl_log_get_level(void) {
    return g_level;
}

int sl_log_level_parse(const char *name, sl_log_level_t *level) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *level = (sl_log_level_t)i;
            return 0;
        }
    }
    return -1;
}

uint64_t sl_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sl_wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sl_format_rfc3339(uint64_t wall_ms, char *out, size_t out_size) {
    time_t secs = (time_t)(wall_ms / 1000u);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, out_size, "%s.%03uZ", date, (unsigned)(wall_ms % 1000u));
}

/* Appends s as a JSON string literal (quotes included). */
static void put_json_str(sl_buf_t *b, const char *s) {
    sl_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': sl_buf_append(b, "\\\"", 2); break;
        case '\\': sl_buf_append(b, "\\\\", 2); break;
        case '\n': sl_buf_append(b, "\\n", 2); break;
        case '\r': sl_buf_append(b, "\\r", 2); break;
        case '\t': sl_buf_append(b, "\\t", 2); break;
        default:
            if (*p < 0x20) {
                int n = snprintf(esc, sizeof esc, "\\u%04x", *p);
                sl_buf_append(b, esc, (size_t)n);
            } else {
                sl_buf_append(b, p, 1);
            }
        }
    }
    sl_buf_append(b, "\"", 1);
}

void sl_log_fields(sl_log_level_t level, const char *msg, const sl_field_t *fields, size_t n) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < g_level)
        return;
    char stamp[40];
    sl_format_rfc3339(sl_wall_ms(), stamp, sizeof stamp);
    sl_buf_t b = {0};
    sl_buf_appendf(&b, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":", stamp, names[level]);
    put_json_str(&b, msg);
    for (size_t i = 0; i < n; i++) {
        sl_buf_append(&b, ",", 1);
        put_json_str(&b, fields[i].key);
        sl_buf_append(&b, ":", 1);
        switch (fields[i].type) {
        case SL_FIELD_STR:
            if (fields[i].v.s)
                put_json_str(&b, fields[i].v.s);
            else
                sl_buf_append(&b, "null", 4);
            break;
        case SL_FIELD_I64: sl_buf_appendf(&b, "%lld", (long long)fields[i].v.i); break;
        case SL_FIELD_U64: sl_buf_appendf(&b, "%llu", (unsigned long long)fields[i].v.u); break;
        case SL_FIELD_DBL:
            if (isfinite(fields[i].v.d))
                sl_buf_appendf(&b, "%.6g", fields[i].v.d);
            else
                sl_buf_append(&b, "null", 4);
            break;
        case SL_FIELD_BOOL: sl_buf_appendf(&b, "%s", fields[i].v.i ? "true" : "false"); break;
        }
    }
    sl_buf_append(&b, "}\n", 2);
    if (b.data) {
        ssize_t off = 0;
        while ((size_t)off < b.len) {
            ssize_t w = write(STDERR_FILENO, b.data + off, b.len - (size_t)off);
            if (w <= 0)
                break;
            off += w;
        }
    }
    sl_buf_free(&b);
}

int sl_ratelimit_allow(sl_ratelimit_t *rl, uint64_t now_ms, uint64_t *suppressed) {
    if (now_ms - rl->window_start_ms >= rl->interval_ms || rl->window_start_ms == 0) {
        rl->window_start_ms = now_ms ? now_ms : 1;
        rl->in_window = 0;
    }
    if (rl->in_window < rl->burst) {
        rl->in_window++;
        if (suppressed)
            *suppressed = rl->suppressed;
        rl->suppressed = 0;
        return 1;
    }
    rl->suppressed++;
    return 0;
}
