/* redis_server.h - a throwaway redis-server for tests: free loopback port,
 * temp dir, no persistence; stop, kill -9 and restart on the same port. */
#ifndef SL_TEST_REDIS_SERVER_H
#define SL_TEST_REDIS_SERVER_H

#include <sys/types.h>

typedef struct sl_test_redis sl_test_redis_t;

/* Starts `redis-server` (from PATH) on a free 127.0.0.1 port in a new temp
 * dir with --save '' --appendonly no, plus `extra` arguments (NULL-terminated
 * list, may be NULL; e.g. {"--requirepass", "pw", NULL}), and waits until it
 * answers PING (up to 10 s). Returns NULL (with the reason on stderr) on
 * failure. Free with sl_test_redis_destroy. */
sl_test_redis_t *sl_test_redis_start(const char *const *extra);

/* redis://127.0.0.1:<port> (owned by t). */
const char *sl_test_redis_url(const sl_test_redis_t *t);
int sl_test_redis_port(const sl_test_redis_t *t);

/* SIGTERM (stop) or SIGKILL (kill9) and reap; no-ops when not running. */
void sl_test_redis_stop(sl_test_redis_t *t);
void sl_test_redis_kill9(sl_test_redis_t *t);

/* Starts the server again on the same port and dir (after stop/kill9) and
 * waits until it answers. Returns 0, or -1 with the reason on stderr. */
int sl_test_redis_restart(sl_test_redis_t *t);

/* Stops the server, removes its dir and frees t; NULL is a no-op. */
void sl_test_redis_destroy(sl_test_redis_t *t);

#endif
