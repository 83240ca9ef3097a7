/* httpd.c - embedded HTTP server on libmicrohttpd: GET/HEAD to one handler, bounded requests. */

#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

struct sl_httpd {
    struct MHD_Daemon *daemon;
    sl_httpd_handler_fn fn;
    void *opaque;
    uint16_t port;
};

/* libmicrohttpd's own diagnostics (malformed requests, resource limits) are
 * about clients, not about us: keep them at debug level. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    if (sl_log_get_level() > SL_LOG_DEBUG)
        return;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    sl_log(SL_LOG_DEBUG, "http server", SL_STR("detail", line));
}

static const char *reason(int status) {
    switch (status) {
    case 404: return "not found";
    case 405: return "method not allowed (GET and HEAD only)";
    case 413: return "a GET or HEAD request carries no body";
    case 414: return "request path too long";
    case 503: return "service unavailable";
    default: return status >= 500 ? "internal server error" : "request failed";
    }
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, int status, const char *content_type,
                                  sl_buf_t *body) {
    if (status < 200 || status > 599)
        status = 500;
    if (status >= 300 && body->len == 0) {
        const char *r = reason(status);
        content_type = TEXT_PLAIN;
        if (sl_buf_append(body, r, strlen(r)) != SL_OK || sl_buf_append(body, "\n", 1) != SL_OK)
            return MHD_NO;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    enum MHD_Result ok = MHD_YES;
    if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES ||
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES ||
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff") != MHD_YES ||
        (status == 405 &&
         MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") != MHD_YES))
        ok = MHD_NO;
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);
    return ok;
}

/* Does the request announce a body (which GET and HEAD never need)? */
static int has_body(struct MHD_Connection *conn) {
    const char *len =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    return (len && strcmp(len, "0") != 0) ||
           MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/* Refusals (another method: 405; a GET or HEAD with a body: 413) are queued
 * on the first call, before any body is read; the connection then closes. A
 * GET or HEAD is answered on the second call, once the request is complete,
 * so the connection can stay open for the next request. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls) {
    static int headers_seen;
    (void)version;
    (void)upload_data;
    sl_httpd_t *h = cls;
    sl_buf_t body = {0};
    const char *content_type = TEXT_PLAIN;
    int status;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        status = 405;
    } else if (*req_cls == NULL && has_body(conn)) {
        status = 413;
    } else if (*req_cls == NULL) {
        *req_cls = &headers_seen;
        return MHD_YES;
    } else if (*upload_data_size != 0) {
        return MHD_NO; /* a body that was not announced: drop the connection */
    } else if (!url || strnlen(url, SL_HTTPD_MAX_PATH + 1) > SL_HTTPD_MAX_PATH) {
        status = 414;
    } else {
        status = h->fn(h->opaque, url, &body, &content_type);
    }
    if (!content_type)
        content_type = TEXT_PLAIN;
    enum MHD_Result ok = send_reply(conn, status, content_type, &body);
    sl_buf_free(&body);
    return ok;
}

/* Parses a numeric address into ss; returns its length, 0 if not numeric. */
static socklen_t parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return sizeof *v6;
    }
    return 0;
}

sl_httpd_t *sl_httpd_new(const char *bind_addr, uint16_t port, sl_httpd_handler_fn fn, void *opaque,
                         char *errstr, size_t errstr_size) {
    if (!bind_addr)
        bind_addr = "127.0.0.1";
    struct sockaddr_storage ss;
    if (!fn || parse_addr(bind_addr, port, &ss) == 0) {
        sl_errstr_set(errstr, errstr_size,
                      "http server: \"%s\" is not a numeric IPv4 or IPv6 address%s", bind_addr,
                      fn ? "" : " (or no handler)");
        return NULL;
    }
    sl_httpd_t *h = calloc(1, sizeof *h);
    if (!h) {
        sl_errstr_set(errstr, errstr_size, "http server: out of memory");
        return NULL;
    }
    h->fn = fn;
    h->opaque = opaque;
    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    errno = 0;
    h->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)SL_HTTPD_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)SL_HTTPD_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)SL_HTTPD_TIMEOUT_S, MHD_OPTION_END);
    if (!h->daemon) {
        int e = errno;
        sl_errstr_set(errstr, errstr_size, "http server: cannot listen on %s%s%s:%u: %s",
                      ss.ss_family == AF_INET6 ? "[" : "", bind_addr,
                      ss.ss_family == AF_INET6 ? "]" : "", (unsigned)port,
                      e ? strerror(e) : "libmicrohttpd failed to start");
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : port;
    return h;

fail:
    sl_httpd_destroy(h);
    return NULL;
}

uint16_t sl_httpd_port(const sl_httpd_t *h) {
    return h->port;
}

void sl_httpd_destroy(sl_httpd_t *h) {
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    free(h);
}
