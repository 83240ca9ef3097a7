/* redis_server.c - a throwaway redis-server for tests. */

#include "redis_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define MAX_EXTRA 16

struct sl_test_redis {
    pid_t pid;
    int port;
    char dir[256];
    char url[64];
    char *extra[MAX_EXTRA + 1];
};

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static void sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* 1 once the server answers PING (any reply, even NOAUTH, means it is up). */
static int answers(int port) {
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    int ok = 0;
    if (c && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        ok = r != NULL;
        if (r)
            freeReplyObject(r);
    }
    if (c)
        redisFree(c);
    return ok;
}

static int spawn(sl_test_redis_t *t) {
    char port[16], log[300];
    snprintf(port, sizeof port, "%d", t->port);
    snprintf(log, sizeof log, "%s/redis.log", t->dir);
    const char *argv[8 + MAX_EXTRA + 8] = {"redis-server", "--port", port,  "--bind",
                                           "127.0.0.1",    "--save", "",    "--appendonly",
                                           "no",           "--dir",  t->dir};
    size_t n = 11;
    for (size_t i = 0; t->extra[i]; i++)
        argv[n++] = t->extra[i];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    t->pid = pid;
    for (int i = 0; i < 200; i++) {
        if (answers(t->port))
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            t->pid = 0;
            fprintf(stderr, "redis-server on port %d exited early (see %s)\n", t->port, log);
            return -1;
        }
        sleep_ms(50);
    }
    fprintf(stderr, "redis-server on port %d did not answer within 10 s\n", t->port);
    return -1;
}

sl_test_redis_t *sl_test_redis_start(const char *const *extra) {
    sl_test_redis_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    snprintf(t->dir, sizeof t->dir, "/tmp/sl_redis_XXXXXX");
    if (!mkdtemp(t->dir)) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        free(t);
        return NULL;
    }
    for (size_t i = 0; extra && extra[i] && i < MAX_EXTRA; i++)
        t->extra[i] = strdup(extra[i]);
    for (int attempt = 0; attempt < 5; attempt++) {
        t->port = free_port();
        snprintf(t->url, sizeof t->url, "redis://127.0.0.1:%d", t->port);
        if (t->port > 0 && spawn(t) == 0)
            return t;
        sl_test_redis_kill9(t);
    }
    sl_test_redis_destroy(t);
    return NULL;
}

const char *sl_test_redis_url(const sl_test_redis_t *t) {
    return t->url;
}

int sl_test_redis_port(const sl_test_redis_t *t) {
    return t->port;
}

static void signal_and_reap(sl_test_redis_t *t, int sig) {
    if (t->pid <= 0)
        return;
    kill(t->pid, sig);
    int status;
    while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
        ;
    t->pid = 0;
}

void sl_test_redis_stop(sl_test_redis_t *t) {
    signal_and_reap(t, SIGTERM);
}

void sl_test_redis_kill9(sl_test_redis_t *t) {
    signal_and_reap(t, SIGKILL);
}

int sl_test_redis_restart(sl_test_redis_t *t) {
    if (t->pid > 0)
        return 0;
    /* the port may linger in TIME_WAIT for a moment; redis sets SO_REUSEADDR */
    for (int attempt = 0; attempt < 5; attempt++) {
        if (spawn(t) == 0)
            return 0;
        sleep_ms(200);
    }
    return -1;
}

void sl_test_redis_destroy(sl_test_redis_t *t) {
    if (!t)
        return;
    sl_test_redis_stop(t);
    char path[400];
    snprintf(path, sizeof path, "%s/redis.log", t->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/dump.rdb", t->dir);
    unlink(path);
    rmdir(t->dir);
    for (size_t i = 0; t->extra[i]; i++)
        free(t->extra[i]);
    free(t);
}
