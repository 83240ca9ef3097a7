/* ops.h - the operations surface of `streamlearn run`: /healthz, /readyz,
 * /metrics (Prometheus) and a status page, served from what the worker
 * publishes through its observer callbacks. */
#ifndef SL_OPS_H
#define SL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "consumer/worker.h"
#include "store/store.h"

typedef struct sl_ops sl_ops_t;

/* Where the process is; /readyz and /healthz answer from it. */
typedef enum sl_ops_phase {
    SL_OPS_STARTING = 0, /* loading the model, connecting: alive, not ready */
    SL_OPS_STANDBY,      /* a trainer waiting for the lease: alive, ready but idle */
    SL_OPS_RUNNING,      /* the worker loop runs: alive while its heartbeat is recent */
    SL_OPS_STOPPING,     /* after a stop was asked: alive, not ready */
} sl_ops_phase_t;

typedef struct sl_ops_config {
    const char *bind_addr; /* numeric address; NULL = 127.0.0.1 */
    uint16_t port;         /* 0 picks a free port (tests) */
    const char *model;     /* the `model` label (--model-name; "" without one) */
    const char *role;      /* the `role` label: trainer, predictor or both */
    uint32_t stale_ms;     /* a RUNNING loop silent this long fails /healthz; 0 = 30000 */
} sl_ops_config_t;

/* Starts the HTTP server (common/httpd.h) on c->bind_addr:c->port in phase
 * SL_OPS_STARTING. Strings are copied. Returns NULL with errstr naming the
 * address on failure (port in use, bad address, out of memory). Free with
 * sl_ops_destroy. */
sl_ops_t *sl_ops_new(const sl_ops_config_t *c, char *errstr, size_t errstr_size);

/* Stops the server (waiting for a request in hand) and frees o; NULL is a
 * no-op. Destroy it before the store it reads. */
void sl_ops_destroy(sl_ops_t *o);

/* The port served (the chosen one when started with port 0). */
uint16_t sl_ops_port(const sl_ops_t *o);

/* Moves to `phase`; callable from any thread (async-signal-safe). */
void sl_ops_set_phase(sl_ops_t *o, sl_ops_phase_t phase);

/* Makes /metrics and the status page read `store` (sl_store_status) for the
 * version, lineage, Redis health and snapshot figures; NULL: none. Borrowed:
 * it must outlive o. Callable from any thread. */
void sl_ops_set_store(sl_ops_t *o, sl_store_t *store);

/* Fills *obs with callbacks that publish the worker's status to o (for
 * sl_worker_config_t.observer). o must outlive the worker's run. */
void sl_ops_observer(sl_ops_t *o, sl_worker_observer_t *obs);

#endif
