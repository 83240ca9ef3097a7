/* test_httpd.c - the embedded HTTP server over real loopback sockets: routing to the handler,
 * statuses, HEAD, 405, concurrency, hostile requests, binding. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/httpd.h"

/* ---- the handler under the server ---- */

typedef struct served {
    atomic_int calls;
    pthread_mutex_t lock;
    char last_path[SL_HTTPD_MAX_PATH + 1];
} served_t;

static int handler(void *opaque, const char *path, sl_buf_t *body, const char **content_type) {
    served_t *s = opaque;
    atomic_fetch_add(&s->calls, 1);
    pthread_mutex_lock(&s->lock);
    snprintf(s->last_path, sizeof s->last_path, "%s", path);
    pthread_mutex_unlock(&s->lock);
    if (strcmp(path, "/x") == 0) {
        sl_buf_append(body, "hello x\n", 8);
        return 200;
    }
    if (strcmp(path, "/json") == 0) {
        *content_type = "application/json";
        sl_buf_append(body, "{\"a\":1}", 7);
        return 200;
    }
    if (strcmp(path, "/unready") == 0) {
        sl_buf_append(body, "no partitions assigned\n", 23);
        return 503;
    }
    if (strcmp(path, "/bogus-status") == 0)
        return 42;
    if (strncmp(path, "/echo/", 6) == 0) {
        sl_buf_append(body, path + 6, strlen(path + 6));
        return 200;
    }
    return 404;
}

typedef struct fixture {
    served_t served;
    sl_httpd_t *h;
    uint16_t port;
} fixture_t;

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->served.lock, NULL);
    char err[256] = "";
    f->h = sl_httpd_new("127.0.0.1", 0, handler, &f->served, err, sizeof err);
    if (!f->h)
        fail_msg("sl_httpd_new: %s", err);
    f->port = sl_httpd_port(f->h);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    sl_httpd_destroy(f->h);
    pthread_mutex_destroy(&f->served.lock);
    free(f);
    return 0;
}

/* ---- a plain socket client ---- */

typedef struct reply {
    int status; /* 0 when no status line came back */
    char headers[4096];
    char *body;
    size_t body_len;
    char raw[65536];
    size_t raw_len;
} reply_t;

static int connect_to(const char *ip, uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may close early on hostile input */
        p += w;
        n -= (size_t)w;
    }
}

/* Sends raw bytes (then, when `half_close`, half-closes and waits at most a
 * second for an answer), reads until the server closes, parses the status line. */
static void exchange_ex(uint16_t port, const char *req, size_t req_len, int half_close,
                        reply_t *r) {
    memset(r, 0, sizeof *r);
    int fd = connect_to("127.0.0.1", port);
    assert_true(fd >= 0);
    send_all(fd, req, req_len);
    if (half_close) {
        /* Some junk makes the server wait for more until its idle timeout;
         * no answer within a second counts as "not a 2xx" too. */
        struct timeval tv = {.tv_sec = 1};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        shutdown(fd, SHUT_WR);
    }
    for (;;) {
        ssize_t n = recv(fd, r->raw + r->raw_len, sizeof r->raw - 1 - r->raw_len, 0);
        if (n <= 0)
            break;
        r->raw_len += (size_t)n;
    }
    close(fd);
    r->raw[r->raw_len] = '\0';
    if (sscanf(r->raw, "HTTP/1.%*d %d", &r->status) != 1)
        r->status = 0;
    char *end = strstr(r->raw, "\r\n\r\n");
    if (end) {
        size_t hl = (size_t)(end - r->raw);
        if (hl >= sizeof r->headers)
            hl = sizeof r->headers - 1;
        memcpy(r->headers, r->raw, hl);
        r->body = end + 4;
        r->body_len = r->raw_len - (size_t)(r->body - r->raw);
    }
}

static void exchange(uint16_t port, const char *req, size_t req_len, reply_t *r) {
    exchange_ex(port, req, req_len, 0, r);
}

static void get(uint16_t port, const char *method, const char *path, reply_t *r) {
    char req[4096];
    int n =
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 method, path);
    exchange(port, req, (size_t)n, r);
}

static int has_header(const reply_t *r, const char *line) {
    return strcasestr(r->headers, line) != NULL;
}

/* ---- tests ---- */

static void test_get_serves_handler_body(void **state) {
    fixture_t *f = *state;
    assert_true(f->port != 0);
    reply_t r;
    get(f->port, "GET", "/x", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 8);
    assert_memory_equal(r.body, "hello x\n", 8);
    assert_true(has_header(&r, "Content-Type: text/plain; charset=utf-8"));
    assert_true(has_header(&r, "Content-Length: 8"));
    get(f->port, "GET", "/json", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"a\":1}");
}

static void test_unknown_path_is_404(void **state) {
    fixture_t *f = *state;
    reply_t r;
    get(f->port, "GET", "/nope", &r);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.body, "not found\n");
}

static void test_handler_status_passes_through(void **state) {
    fixture_t *f = *state;
    reply_t r;
    get(f->port, "GET", "/unready", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "no partitions assigned\n");
    get(f->port, "GET", "/bogus-status", &r);
    assert_int_equal(r.status, 500);
}

static void test_query_stripped_and_path_decoded(void **state) {
    fixture_t *f = *state;
    reply_t r;
    get(f->port, "GET", "/x?debug=1&y=%20", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(f->served.last_path, "/x");
    get(f->port, "GET", "/echo/a%20b", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "a b");
}

static void test_head_has_length_but_no_body(void **state) {
    fixture_t *f = *state;
    reply_t r;
    get(f->port, "HEAD", "/x", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Length: 8"));
    assert_int_equal(r.body_len, 0);
}

static void test_other_methods_are_405_without_calling_handler(void **state) {
    fixture_t *f = *state;
    const char *methods[] = {"PUT", "DELETE", "OPTIONS", "PATCH", "FOO"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++) {
        reply_t r;
        get(f->port, methods[i], "/x", &r);
        assert_int_equal(r.status, 405);
        assert_true(has_header(&r, "Allow: GET, HEAD"));
    }
    const char post[] = "POST /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                        "Content-Length: 11\r\n\r\nhello=world";
    reply_t r;
    exchange(f->port, post, sizeof post - 1, &r);
    assert_int_equal(r.status, 405);
    assert_int_equal(atomic_load(&f->served.calls), 0);
}

/* A GET carrying a body is refused without calling the handler. */
static void test_get_with_body_is_413(void **state) {
    fixture_t *f = *state;
    const char req[] = "GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
    reply_t r;
    exchange(f->port, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 413);
    assert_int_equal(atomic_load(&f->served.calls), 0);
}

typedef struct worker_arg {
    uint16_t port;
    int ok;
} worker_arg_t;

static void *worker(void *p) {
    worker_arg_t *a = p;
    for (int i = 0; i < 25; i++) {
        reply_t *r = malloc(sizeof *r);
        if (!r)
            return NULL;
        get(a->port, "GET", "/x", r);
        if (r->status == 200 && r->body_len == 8 && memcmp(r->body, "hello x\n", 8) == 0)
            a->ok++;
        free(r);
    }
    return NULL;
}

/* Requests from several clients at once are all answered; the handler's
 * calls never overlap (the server has one thread). */
static void test_concurrent_clients(void **state) {
    fixture_t *f = *state;
    enum { THREADS = 8 };
    pthread_t t[THREADS];
    worker_arg_t args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg_t){.port = f->port};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &args[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += args[i].ok;
    }
    assert_int_equal(ok, THREADS * 25);
    assert_int_equal(atomic_load(&f->served.calls), THREADS * 25);
}

/* A keep-alive connection serves several requests in a row. */
static void test_keep_alive_pipelined(void **state) {
    fixture_t *f = *state;
    const char req[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /json HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    reply_t r;
    exchange(f->port, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.raw, "hello x\n"));
    assert_non_null(strstr(r.raw, "{\"a\":1}"));
}

static void test_hostile_requests(void **state) {
    fixture_t *f = *state;
    reply_t r;
    /* Garbage and binary request lines: an error status or a closed connection, never a 2xx. */
#define RAW(s)                                                                                     \
    { s, sizeof s - 1 }
    const struct {
        const char *s;
        size_t n;
    } junk[] = {RAW("\x00\x01\x02garbage\r\n\r\n"),
                RAW("GET\r\n\r\n"),
                RAW("GET /x\r\n\r\n"),
                RAW("GET /x HTTP/9.9\r\nHost: a\r\n\r\n"),
                RAW("\r\n\r\n\r\n"),
                RAW("GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n"),
                RAW("GET /x HTTP/1.1\r\nHost: a\r\nBad Header Without Colon\r\n\r\n")};
#undef RAW
    for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
        exchange_ex(f->port, junk[i].s, junk[i].n, 1, &r);
        if (r.status != 0 && r.status < 400)
            fail_msg("junk request %zu answered %d", i, r.status);
    }
    /* An over-long path never reaches the handler. */
    int calls = atomic_load(&f->served.calls);
    char *long_path = malloc(SL_HTTPD_MAX_PATH + 64);
    assert_non_null(long_path);
    long_path[0] = '/';
    memset(long_path + 1, 'a', SL_HTTPD_MAX_PATH + 10);
    long_path[SL_HTTPD_MAX_PATH + 11] = '\0';
    get(f->port, "GET", long_path, &r);
    assert_int_equal(r.status, 414);
    free(long_path);
    /* Headers beyond the per-connection memory: refused, handler not called. */
    size_t big = SL_HTTPD_CONN_MEMORY * 2;
    char *req = malloc(big + 128);
    assert_non_null(req);
    int n = snprintf(req, 128, "GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(req + n, 'b', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    exchange(f->port, req, (size_t)n + big + 4, &r);
    assert_true(r.status == 0 || r.status == 431 || r.status == 414 || r.status == 413);
    free(req);
    assert_int_equal(atomic_load(&f->served.calls), calls);
    /* Connections dropped before, and in the middle of, a request. */
    for (int i = 0; i < 20; i++) {
        int fd = connect_to("127.0.0.1", f->port);
        assert_true(fd >= 0);
        if (i % 2)
            send_all(fd, "GET /x HTTP/1.1\r\nHo", 19);
        close(fd);
    }
    /* A NUL smuggled in by percent-encoding only shortens the path. */
    get(f->port, "GET", "/x%00/../../etc/passwd", &r);
    assert_true(r.status == 200 || r.status == 404 || r.status == 400);
    /* The server is still fine. */
    get(f->port, "GET", "/x", &r);
    assert_int_equal(r.status, 200);
}

static void test_bind_errors(void **state) {
    fixture_t *f = *state;
    char err[256] = "";
    assert_null(sl_httpd_new("not-an-ip", 0, handler, &f->served, err, sizeof err));
    assert_non_null(strstr(err, "not-an-ip"));
    err[0] = '\0';
    assert_null(sl_httpd_new("127.0.0.1", f->port, handler, &f->served, err, sizeof err));
    assert_non_null(strstr(err, "127.0.0.1"));
    assert_null(sl_httpd_new(NULL, 0, NULL, NULL, err, sizeof err));
    sl_httpd_destroy(NULL);
}

/* Loopback by default: the port is not reachable on another local address. */
static void test_default_bind_is_loopback(void **state) {
    fixture_t *f = *state;
    char err[256] = "";
    sl_httpd_t *h = sl_httpd_new(NULL, 0, handler, &f->served, err, sizeof err);
    assert_non_null(h);
    uint16_t port = sl_httpd_port(h);
    reply_t r;
    get(port, "GET", "/x", &r);
    assert_int_equal(r.status, 200);
    char other[INET_ADDRSTRLEN] = "";
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i && !other[0]; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
                continue;
            struct in_addr a = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
            if ((ntohl(a.s_addr) >> 24) != 127)
                inet_ntop(AF_INET, &a, other, sizeof other);
        }
        freeifaddrs(ifs);
    }
    if (other[0]) {
        int fd = connect_to(other, port);
        assert_int_equal(fd, -1);
    }
    sl_httpd_destroy(h);
    if (!other[0])
        skip();
}

/* After destroy nothing listens on the port any more. */
static void test_destroy_closes_port(void **state) {
    fixture_t *f = *state;
    char err[256] = "";
    sl_httpd_t *h = sl_httpd_new("127.0.0.1", 0, handler, &f->served, err, sizeof err);
    assert_non_null(h);
    uint16_t port = sl_httpd_port(h);
    sl_httpd_destroy(h);
    int fd = connect_to("127.0.0.1", port);
    assert_int_equal(fd, -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_serves_handler_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_is_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_status_passes_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_stripped_and_path_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_has_length_but_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_methods_are_405_without_calling_handler, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_get_with_body_is_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_pipelined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_bind_is_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_closes_port, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
