/* httpd.h - a small embedded HTTP server (libmicrohttpd) for probes, metrics and a status page. */
#ifndef SL_HTTPD_H
#define SL_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"

typedef struct sl_httpd sl_httpd_t;

/* Longest request path passed to a handler; longer ones get 414. */
#define SL_HTTPD_MAX_PATH 1024
/* Memory per connection (request line + headers must fit; else 414/431). */
#define SL_HTTPD_CONN_MEMORY (16 * 1024)
/* Connections served at once; more wait in the listen backlog or are refused. */
#define SL_HTTPD_MAX_CONNECTIONS 64
/* An idle or trickling connection is closed after this many seconds. */
#define SL_HTTPD_TIMEOUT_S 10

/* Renders the response to a GET (or HEAD) of `path` (the URL path, percent-
 * decoded, without the query string). Appends the body to `body` (empty on
 * entry; the server frees it), may point *content_type at a string with
 * static storage duration (preset to "text/plain; charset=utf-8"), and returns
 * the HTTP status: 200, 404 for a path it does not serve, 503 for "not ready",
 * ... A status outside 200..599 is sent as 500. When the status is not 2xx
 * and the body is empty the server writes a one-line reason.
 *
 * Threading contract: the handler runs on the server's one internal thread,
 * never two calls at once, but concurrently with every thread of the caller.
 * It must read only state that is safe to read from another thread (atomics,
 * or a snapshot copied under a mutex), and return quickly: while it runs no
 * other request is served, and Kubernetes probes time out. */
typedef int (*sl_httpd_handler_fn)(void *opaque, const char *path, sl_buf_t *body,
                                   const char **content_type);

/* Starts serving on bind_addr:port. bind_addr is a numeric IPv4 or IPv6
 * address ("0.0.0.0" or "::" for every interface); NULL means loopback
 * (127.0.0.1). port 0 picks a free port (see sl_httpd_port). Only GET and
 * HEAD reach the handler; other methods get 405 with "Allow: GET, HEAD".
 * Requests are bounded by the SL_HTTPD_* limits above. Returns NULL with
 * errstr naming the address on: a bad address, a port in use or denied, or
 * libmicrohttpd failing to start. Free with sl_httpd_destroy. `opaque` is
 * passed to fn unchanged and must outlive the server. */
sl_httpd_t *sl_httpd_new(const char *bind_addr, uint16_t port, sl_httpd_handler_fn fn, void *opaque,
                         char *errstr, size_t errstr_size);

/* The port the server listens on (the chosen one when started with 0). */
uint16_t sl_httpd_port(const sl_httpd_t *h);

/* Stops serving: closes the listening socket and every connection, waits for
 * a running handler call to return, and frees h. After it returns the
 * handler is never called again. NULL is a no-op. */
void sl_httpd_destroy(sl_httpd_t *h);

#endif
