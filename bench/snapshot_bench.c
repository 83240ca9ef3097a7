/* snapshot_bench.c - times the snapshot path against a real redis-server, with
 * plain SET/GET of the same bytes on the same connection as the ceiling. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/learner.h"
#include "store/redis.h"
#include "store/snapshot.h"

/* Wall milliseconds since an arbitrary start (CLOCK_MONOTONIC). */
static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One SET (or GET when blob is NULL) of key; returns 0 on success. */
static int redis_setget(sl_redis_t *r, const char *key, const uint8_t *blob, size_t len) {
    char err[256];
    redisReply *rep = NULL;
    const char *argv[3] = {blob ? "SET" : "GET", key, (const char *)blob};
    size_t argvlen[3] = {3, strlen(key), len};
    sl_err_t e = sl_redis_call(r, blob ? SL_REPLY_STATUS : SL_REPLY_STR, &rep, err, sizeof err,
                               blob ? 3 : 2, argv, argvlen);
    sl_redis_reply_free(rep);
    if (e != SL_OK) {
        fprintf(stderr, "snapshot_bench: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: snapshot_bench REDIS_URL PARAMS REPEATS\n"
                        "  a logistic model with PARAMS parameters (Adam state included)\n");
        return 2;
    }
    long long params = atoll(argv[2]);
    int repeats = atoi(argv[3]);
    if (params < 2 || params > (1LL << 26) || repeats < 1 || repeats > 100) {
        fprintf(stderr, "snapshot_bench: PARAMS in [2, 2^26], REPEATS in [1, 100]\n");
        return 2;
    }
    char err[512];
    int rc = 1;
    sl_model_config_t mc = {.head = SL_HEAD_LOGISTIC, .dim = (uint32_t)(params - 1)};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    sl_learner_t *l = sl_learner_new(&mc, &oc, 1, 0, err, sizeof err);
    sl_redis_t *r = l ? sl_redis_new(argv[1], NULL, err, sizeof err) : NULL;
    sl_snapshot_opts_t so = {.keep_versions = 2};
    sl_snapshot_t *s = r ? sl_snapshot_new(r, "bench", &so, err, sizeof err) : NULL;
    double *pause = calloc((size_t)repeats, sizeof *pause);
    double *publish = calloc((size_t)repeats, sizeof *publish);
    double *load = calloc((size_t)repeats, sizeof *load);
    double *set = calloc((size_t)repeats, sizeof *set);
    double *get = calloc((size_t)repeats, sizeof *get);
    size_t bytes = 0;
    if (!s || !pause || !publish || !load || !set || !get) {
        fprintf(stderr, "snapshot_bench: %s\n", s ? "out of memory" : err);
        goto done;
    }
    uint64_t head = 0;
    if (sl_snapshot_head(s, &head, err, sizeof err) != SL_OK) {
        fprintf(stderr, "snapshot_bench: %s\n", err);
        goto done;
    }
    sl_learner_t *spare = sl_learner_clone(l); /* the store keeps one between snapshots */
    if (!spare) {
        fprintf(stderr, "snapshot_bench: out of memory cloning the learner\n");
        goto done;
    }
    for (int i = 0; i < repeats; i++) {
        /* What the worker thread does before handing the job to the writer
         * (store/hooks.c): copy the learner into the spare. */
        double t0 = now_ms();
        if (sl_learner_copy(spare, l) != SL_OK) {
            fprintf(stderr, "snapshot_bench: copy failed\n");
            sl_learner_destroy(spare);
            goto done;
        }
        double t1 = now_ms();
        /* The writer thread (store/writer.c): serialise the copy, publish. */
        uint8_t *blob = NULL;
        char *config = NULL, *metrics = NULL;
        uint64_t step = 0, samples = 0;
        if (sl_learner_save(spare, &blob, &bytes) != SL_OK ||
            sl_snapshot_describe(spare, &config, &metrics, &step, &samples) != SL_OK) {
            fprintf(stderr, "snapshot_bench: out of memory saving the learner\n");
            free(blob);
            free(config);
            free(metrics);
            sl_learner_destroy(spare);
            goto done;
        }
        sl_snap_write_t w = {.blob = blob,
                             .len = bytes,
                             .parent = head,
                             .step = step,
                             .samples = samples,
                             .config = config,
                             .metrics = metrics};
        sl_publish_status_t st;
        uint64_t v = 0;
        sl_err_t e = sl_snapshot_publish(s, &w, &st, &v, NULL, err, sizeof err);
        double t2 = now_ms();
        free(config);
        free(metrics);
        if (e != SL_OK || st != SL_PUBLISH_DONE) {
            fprintf(stderr, "snapshot_bench: publish: %s\n", e != SL_OK ? err : "not head");
            free(blob);
            sl_learner_destroy(spare);
            goto done;
        }
        head = v;
        sl_learner_t *back = NULL;
        sl_snap_meta_t m = {0};
        e = sl_snapshot_load(s, v, &mc, &back, &m, err, sizeof err);
        double t3 = now_ms();
        sl_learner_destroy(back);
        sl_snap_meta_clear(&m);
        if (e != SL_OK) {
            fprintf(stderr, "snapshot_bench: load: %s\n", err);
            free(blob);
            sl_learner_destroy(spare);
            goto done;
        }
        int bad = redis_setget(r, "bench:ceiling", blob, bytes);
        double t4 = now_ms();
        bad = bad || redis_setget(r, "bench:ceiling", NULL, 0);
        double t5 = now_ms();
        free(blob);
        if (bad) {
            sl_learner_destroy(spare);
            goto done;
        }
        pause[i] = t1 - t0;
        publish[i] = t2 - t1;
        load[i] = t3 - t2;
        set[i] = t4 - t3;
        get[i] = t5 - t4;
    }
    sl_learner_destroy(spare);
    printf("{\"params\":%lld,\"bytes\":%zu,\"repeats\":%d,\"pause_ms\":%.3f,\"publish_ms\":%.3f,"
           "\"load_ms\":%.3f,\"redis_set_ms\":%.3f,\"redis_get_ms\":%.3f}\n",
           params, bytes, repeats, median(pause, repeats), median(publish, repeats),
           median(load, repeats), median(set, repeats), median(get, repeats));
    rc = 0;
done:
    free(pause);
    free(publish);
    free(load);
    free(set);
    free(get);
    sl_snapshot_destroy(s);
    sl_redis_destroy(r);
    sl_learner_destroy(l);
    return rc;
}
