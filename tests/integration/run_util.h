/* run_util.h - helpers for tests that drive `streamlearn run` processes:
 * spawn and reap the binary, a dev-kafka process, HTTP GET over a real
 * socket, Prometheus sample lookup, producing samples and reading
 * predictions. Header-only (static functions); include after cmocka.h. */
#ifndef SL_TEST_RUN_UTIL_H
#define SL_TEST_RUN_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

extern char **environ;

#define RU_DIM 4

static char ru_tmpdir[128];
static pid_t ru_live[32];

static inline void ru_sleep_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline uint64_t ru_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void ru_track(pid_t pid, int alive) {
    for (size_t i = 0; i < sizeof ru_live / sizeof ru_live[0]; i++)
        if (alive ? ru_live[i] == 0 : ru_live[i] == pid) {
            ru_live[i] = alive ? pid : 0;
            return;
        }
}

/* Kills (-9) every process still alive; for teardown and failed tests. */
static inline void ru_kill_all(void) {
    for (size_t i = 0; i < sizeof ru_live / sizeof ru_live[0]; i++)
        if (ru_live[i] > 0) {
            kill(ru_live[i], SIGKILL);
            waitpid(ru_live[i], NULL, 0);
            ru_live[i] = 0;
        }
}

/* Spawns argv (argv[0] a path) with stderr and stdout appended to
 * <tmpdir>/<log>. */
static inline pid_t ru_spawn(char *const argv[], const char *log) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", ru_tmpdir, log);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(rc, 0);
    ru_track(pid, 1);
    return pid;
}

/* Sends sig and reaps; returns the exit status (128 + signal when killed). */
static inline int ru_stop(pid_t pid, int sig) {
    int status = 0;
    kill(pid, sig);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    ru_track(pid, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline void ru_show_log(const char *log) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "echo '--- %s' >&2; tail -n 30 %s/%s >&2", log, ru_tmpdir, log);
    if (system(cmd) != 0)
        fprintf(stderr, "(no log %s)\n", log);
}

static inline const char *ru_bin(void) {
    const char *bin = getenv("SL_BIN");
    if (!bin) {
        fprintf(stderr, "SL_BIN is not set\n");
        exit(1);
    }
    return bin;
}

/* A port that was free a moment ago, for a child to listen on. Picked at
 * random below the kernel's ephemeral range (32768-60999 by default): a
 * port bound to 0 and closed goes back to that range, where any process's
 * next outgoing connection (Kafka clients make many in a parallel test run)
 * or bind(0) may take it before the child binds. */
static inline int ru_free_port(void) {
    static unsigned seed;
    if (!seed)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)ru_now_ms();
    for (int tries = 0; tries < 200; tries++) {
        seed = seed * 1103515245u + 12345u;
        int port = 20000 + (int)((seed >> 8) % 12000);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return port;
    }
    fail_msg("no free port below the ephemeral range");
    return -1;
}

/* How many lines of <tmpdir>/<log> contain needle (0 when there is no log). */
static inline int ru_log_count(const char *log, const char *needle) {
    char path[256], line[4096];
    snprintf(path, sizeof path, "%s/%s", ru_tmpdir, log);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* Starts `streamlearn dev-kafka --topics topics`; fills brokers. */
static inline pid_t ru_devkafka(const char *topics, char *brokers, size_t size) {
    char file[256];
    snprintf(file, sizeof file, "%s/bootstrap", ru_tmpdir);
    unlink(file);
    char *argv[] = {(char *)ru_bin(),   "dev-kafka", "--topics", (char *)topics,
                    "--bootstrap-file", file,        NULL};
    pid_t pid = ru_spawn(argv, "devkafka.log");
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(file, "r");
        if (f) {
            int ok = fgets(brokers, (int)size, f) != NULL;
            fclose(f);
            if (ok && strlen(brokers) > 1) {
                brokers[strcspn(brokers, "\r\n")] = '\0';
                return pid;
            }
        }
        ru_sleep_ms(50);
    }
    fail_msg("dev-kafka did not write its bootstrap file");
    return -1;
}

/* GET http://127.0.0.1:port/path. Returns the status (-1 when nothing
 * answers); the body (NUL-terminated, malloc'd) goes to *body if not NULL. */
static inline int ru_http_get(int port, const char *path, char **body) {
    if (body)
        *body = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        status = -1;
    char *sep = strstr(buf, "\r\n\r\n");
    if (body && sep)
        *body = strdup(sep + 4);
    free(buf);
    return status;
}

/* Waits until GET path answers `want` (up to timeout_ms); returns the last status. */
static inline int ru_wait_status(int port, const char *path, int want, int timeout_ms) {
    int st = -1;
    for (uint64_t end = ru_now_ms() + (uint64_t)timeout_ms; ru_now_ms() < end; ru_sleep_ms(100))
        if ((st = ru_http_get(port, path, NULL)) == want)
            break;
    return st;
}

/* The value of the first sample of metric `name` on /metrics; NAN if absent. */
static inline double ru_metric(int port, const char *name) {
    char *body;
    double v = 0.0 / 0.0;
    if (ru_http_get(port, "/metrics", &body) != 200 || !body) {
        free(body);
        return v;
    }
    size_t nl = strlen(name);
    for (char *line = body; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (!strncmp(line, name, nl) && (line[nl] == '{' || line[nl] == ' ')) {
            char *sp = strchr(line, '}');
            sp = sp ? sp + 1 : line + nl;
            v = strtod(sp, NULL);
            break;
        }
    }
    free(body);
    return v;
}

/* Waits until metric `name` reaches want exactly (up to timeout_ms); returns the last value. */
static inline double ru_wait_metric(int port, const char *name, double want, int timeout_ms) {
    double v = 0.0 / 0.0;
    for (uint64_t end = ru_now_ms() + (uint64_t)timeout_ms; ru_now_ms() < end; ru_sleep_ms(100))
        if ((v = ru_metric(port, name)) == want)
            break;
    return v;
}

/* Produces samples [first, last) to `topic` (any partition), keyed "k<i>",
 * each a labelled dense sample; `bad` of them (the first ones) instead have
 * a wrong-length x (bad samples). */
static inline void ru_produce(const char *brokers, const char *topic, int first, int last,
                              int bad) {
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    assert_non_null(p);
    for (int i = first; i < last; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        int dim = i - first < bad ? RU_DIM + 1 : RU_DIM;
        float x[RU_DIM + 1];
        for (int j = 0; j <= RU_DIM; j++)
            x[j] = (float)((i * 7 + j * 3) % 11 - 5) / 4.0f;
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str(&pk, 1);
        msgpack_pack_str_body(&pk, "x", 1);
        msgpack_pack_array(&pk, (size_t)dim);
        for (int j = 0; j < dim; j++)
            msgpack_pack_float(&pk, x[j]);
        msgpack_pack_str(&pk, 1);
        msgpack_pack_str_body(&pk, "y", 1);
        msgpack_pack_int(&pk, x[0] - x[1] > 0);
        msgpack_pack_str(&pk, 2);
        msgpack_pack_str_body(&pk, "id", 2);
        msgpack_pack_int(&pk, i);
        char key[32];
        snprintf(key, sizeof key, "k%d", i);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE(sb.data, sb.size), RD_KAFKA_V_END);
        assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
        msgpack_sbuffer_destroy(&sb);
    }
    assert_int_equal(rd_kafka_flush(p, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* Reads predictions from every partition of a topic from the beginning,
 * without a group: per sample id, how many predictions and the version of
 * the last one. */
#define RU_MAX_IDS 20000
typedef struct ru_reader {
    rd_kafka_t *rk;
    int count[RU_MAX_IDS];
    uint64_t version[RU_MAX_IDS];
    size_t total;
} ru_reader_t;

static inline ru_reader_t *ru_reader_new(const char *brokers, const char *topic, int partitions) {
    ru_reader_t *r = calloc(1, sizeof *r);
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "ru-reader-unused", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    r->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    assert_non_null(r->rk);
    rd_kafka_poll_set_consumer(r->rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(r->rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    return r;
}

static inline void ru_reader_destroy(ru_reader_t *r) {
    if (!r)
        return;
    rd_kafka_consumer_close(r->rk);
    rd_kafka_destroy(r->rk);
    free(r);
}

static inline void ru_reader_take(ru_reader_t *r, const rd_kafka_message_t *m) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, m->payload, m->len, NULL) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        int64_t id = -1;
        uint64_t version = 0;
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            if (kv->key.via.str.size == 2 && !memcmp(kv->key.via.str.ptr, "id", 2) &&
                kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                id = (int64_t)kv->val.via.u64;
            if (kv->key.via.str.size == 7 && !memcmp(kv->key.via.str.ptr, "version", 7) &&
                kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                version = kv->val.via.u64;
        }
        if (id >= 0 && id < RU_MAX_IDS) {
            r->count[id]++;
            r->version[id] = version;
            r->total++;
        }
    }
    msgpack_unpacked_destroy(&u);
}

/* Reads for up to timeout_ms, or until every id in [first, last) has a prediction. */
static inline int ru_reader_wait(ru_reader_t *r, int first, int last, int timeout_ms) {
    for (uint64_t end = ru_now_ms() + (uint64_t)timeout_ms; ru_now_ms() < end;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (m) {
            if (!m->err)
                ru_reader_take(r, m);
            rd_kafka_message_destroy(m);
            continue;
        }
        int missing = 0;
        for (int i = first; i < last && !missing; i++)
            missing = r->count[i] == 0;
        if (!missing)
            return 0;
    }
    return -1;
}

static inline void ru_setup_tmpdir(const char *name) {
    snprintf(ru_tmpdir, sizeof ru_tmpdir, "/tmp/%s.XXXXXX", name);
    assert_non_null(mkdtemp(ru_tmpdir));
}

static inline void ru_remove_tmpdir(void) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ru_tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", ru_tmpdir);
}

#endif
