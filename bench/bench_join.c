/* bench_join.c - the delayed-label join alone: add, match and expire throughput, memory per
 * pending dim-32 sample (the join's own count and glibc's heap, which must agree), the
 * saved form's size and the save / restore + rebuild times recovery depends on, and a
 * steady stream with exponential label delays. Not a test. Build and run from the repo root:
 */
/* clang-format off */
/*   gcc -std=c11 -O2 -D_GNU_SOURCE -I. bench/bench_join.c consumer/{join,join_ids,join_read,join_state,keylog,batch}.c common/{err,buf}.c -lxxhash -lm -o /tmp/bench_join && /tmp/bench_join [pending] [partitions] */
/* clang-format on */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer/join.h"

#define DIM 32

/* CPU time of this process: the machine may be shared, and CPU per operation is the figure
 * that matters for the worker's budget. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static size_t heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* id i as msgpack: uint32 (5 bytes, what an int id above 65535 takes) */
static size_t id_of(uint64_t i, uint8_t *b) {
    b[0] = 0xce, b[1] = (uint8_t)(i >> 24), b[2] = (uint8_t)(i >> 16), b[3] = (uint8_t)(i >> 8),
    b[4] = (uint8_t)i;
    return 5;
}

static uint64_t rng = 88172645463325252ull;
static double uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

typedef struct due_s {
    int64_t t;
    uint64_t id;
} due_s;

static int cmp_due(const void *a, const void *b) {
    const due_s *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t ? 1 : (x->id > y->id) - (x->id < y->id);
}

static sl_join_t *make(uint32_t partitions, uint64_t max_bytes) {
    sl_join_config_t cfg = {.dim = DIM,
                            .out_dim = 1,
                            .window = SL_JOIN_DEFAULT_WINDOW_MS,
                            .label_wait = SL_JOIN_DEFAULT_LABEL_WAIT_MS,
                            .max_bytes = max_bytes};
    sl_join_t *j = sl_join_new(&cfg, NULL, 0);
    if (!j)
        abort();
    for (uint32_t p = 0; p < partitions; p++)
        if (sl_join_add_partition(j, (int32_t)p) != SL_OK)
            abort();
    return j;
}

static float X[DIM];

static void add(sl_join_t *j, uint32_t partitions, uint64_t i, int64_t t) {
    uint8_t id[8];
    float pred = 0.5f;
    X[0] = (float)i;
    sl_join_sample_t s = {.partition = (int32_t)(i % partitions),
                          .offset = (int64_t)(i / partitions),
                          .id = id,
                          .id_len = id_of(i, id),
                          .dense = X,
                          .pred = &pred};
    sl_join_outcome_t o;
    if (sl_join_add_features(j, &s, t, &o) != SL_OK)
        abort();
}

static int label(sl_join_t *j, uint32_t partitions, uint64_t i, int64_t off, int64_t t) {
    uint8_t id[8];
    sl_join_label_t l = {.partition = (int32_t)(i % partitions),
                         .offset = off,
                         .id = id,
                         .id_len = id_of(i, id),
                         .y = 1,
                         .w = 1};
    sl_join_outcome_t o;
    if (sl_join_add_label(j, &l, t, &o) != SL_OK)
        abort();
    return o == SL_JOIN_MATCHED;
}

#define GROUP 256

typedef struct grp {
    uint8_t id[GROUP][8];
    float pred;
    sl_join_sample_t s[GROUP];
    sl_join_label_t l[GROUP];
    sl_join_outcome_t o[GROUP];
    size_t ns, nl;
} grp_t;

static void grp_sample(grp_t *g, uint32_t partitions, uint64_t i) {
    size_t k = g->ns++;
    g->pred = 0.5f;
    g->s[k] = (sl_join_sample_t){.partition = (int32_t)(i % partitions),
                                 .offset = (int64_t)(i / partitions),
                                 .id = g->id[k],
                                 .id_len = id_of(i, g->id[k]),
                                 .dense = X,
                                 .pred = &g->pred};
}

static void grp_label(grp_t *g, uint32_t partitions, uint64_t i, int64_t off) {
    size_t k = g->nl++;
    g->l[k] = (sl_join_label_t){.partition = (int32_t)(i % partitions),
                                .offset = off,
                                .id = g->id[k],
                                .id_len = id_of(i, g->id[k]),
                                .y = 1,
                                .w = 1};
}

static void grp_add(sl_join_t *j, grp_t *g, int64_t t) {
    size_t done;
    if (g->ns && sl_join_add_features_n(j, g->s, g->ns, t, g->o, &done) != SL_OK)
        abort();
    if (g->nl && sl_join_add_labels_n(j, g->l, g->nl, t, g->o, &done) != SL_OK)
        abort();
    g->ns = g->nl = 0;
}

static void drain(sl_join_t *j, sl_batch_t *b, float *served) {
    size_t n;
    do {
        sl_batch_clear(b);
        if (sl_join_pop(j, b, served, 256, 0, NULL, &n) != SL_OK)
            abort();
    } while (n == 256);
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 500000;
    uint32_t parts = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 8;
    for (int k = 0; k < DIM; k++)
        X[k] = (float)k * 0.1f;
    sl_batch_t *b = sl_batch_new(DIM, 256);
    float served[256];
    printf("join bench: %llu pending dim-32 dense samples, 5-byte ids, 1 output, %u partitions\n",
           (unsigned long long)n, parts);

    /* 1. adds, memory */
    size_t heap0 = heap_in_use();
    sl_join_t *j = make(parts, (uint64_t)1 << 34);
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++)
        add(j, parts, i, (int64_t)(i / 50)); /* 50 samples per ms */
    double t_add = now_s() - t0;
    sl_join_stats_t st;
    sl_join_stats(j, &st);
    size_t heap = heap_in_use() - heap0;
    double raw = 128.0 + 5.0;
    printf("add:      %8.2f M samples/s   (%.0f ns each, one at a time, first fill)\n",
           (double)n / t_add / 1e6, t_add / (double)n * 1e9);
    printf("memory:   %8.1f bytes per pending sample (join's count), %.1f (heap in use), "
           "%.2fx of %.0f raw\n",
           (double)st.memory / (double)n, (double)heap / (double)n, (double)heap / (double)n / raw,
           raw);
    printf("          record bytes %.1f per sample (what --join-max-bytes counts)\n",
           (double)st.pending_bytes / (double)n);

    /* 2. save, restore + rebuild (what a restart does, without the Kafka re-read) */
    sl_buf_t blob = {0};
    t0 = now_s();
    if (sl_join_save(j, &blob) != SL_OK)
        abort();
    double t_save = now_s() - t0;
    sl_join_t *r = make(0, (uint64_t)1 << 34);
    t0 = now_s();
    for (uint32_t p = 0; p < parts; p++) {
        sl_join_resume_t rs;
        if (sl_join_restore(r, (int32_t)p, blob.data, blob.len, (int64_t)(n / parts + 1), &rs, NULL,
                            0) != SL_OK)
            abort();
    }
    for (uint64_t i = 0; i < n; i++) {
        uint8_t id[8];
        float pred = 0;
        X[0] = (float)i;
        sl_join_sample_t s = {.partition = (int32_t)(i % parts),
                              .offset = (int64_t)(i / parts),
                              .id = id,
                              .id_len = id_of(i, id),
                              .dense = X,
                              .pred = &pred};
        sl_join_outcome_t o;
        if (sl_join_rebuild_add(r, &s, (int64_t)(n / 50), &o) != SL_OK || o != SL_JOIN_PENDING)
            abort();
    }
    for (uint32_t p = 0; p < parts; p++)
        sl_join_rebuild_seen(r, (int32_t)p, (int64_t)(n / parts + 1));
    double t_restore = now_s() - t0;
    printf("save:     %8.1f ms, %.1f bytes per pending sample saved\n", t_save * 1e3,
           (double)blob.len / (double)n);
    printf("restore:  %8.1f ms for restore + rebuild of all (re-reading the input not included)\n",
           t_restore * 1e3);
    sl_join_destroy(r);
    sl_buf_free(&blob);

    /* 3. matches: labels in arrival order with some jitter, pairs popped in batches of 256 */
    t0 = now_s();
    uint64_t matched = 0;
    for (uint64_t i = 0; i + 1 < n; i += 2) { /* neighbours swap half the time */
        int swap = uniform() < 0.5;
        matched += (uint64_t)label(j, parts, i + swap, (int64_t)i, (int64_t)(n / 50 + 1));
        matched += (uint64_t)label(j, parts, i + !swap, (int64_t)i + 1, (int64_t)(n / 50 + 1));
        if (i % 256 == 254)
            drain(j, b, served);
    }
    drain(j, b, served);
    double t_match = now_s() - t0;
    printf(
        "match:    %8.2f M labels/s    (%.0f ns each, one at a time, pop included; %llu matched)\n",
        (double)n / t_match / 1e6, t_match / (double)n * 1e9, (unsigned long long)matched);
    sl_join_destroy(j);

    /* 4. expiry: fill, then let the window pass */
    j = make(parts, (uint64_t)1 << 34);
    for (uint64_t i = 0; i < n; i++)
        add(j, parts, i, 0);
    t0 = now_s();
    sl_join_expire(j, SL_JOIN_DEFAULT_WINDOW_MS + 1);
    double t_exp = now_s() - t0;
    sl_join_stats(j, &st);
    printf("expire:   %8.2f M samples/s   (%.0f ns each; %llu expired)\n", (double)n / t_exp / 1e6,
           t_exp / (double)n * 1e9, (unsigned long long)st.c.expired);
    sl_join_destroy(j);

    /* 5. the same adds and matches, a group of 256 at a time (as the worker hands them) */
    static grp_t g;
    j = make(parts, (uint64_t)1 << 34);
    t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        grp_sample(&g, parts, i);
        if (g.ns == GROUP || i + 1 == n)
            grp_add(j, &g, (int64_t)(i / 50));
    }
    double t_gadd = now_s() - t0;
    t0 = now_s();
    for (uint64_t i = 0; i + 1 < n; i += 2) {
        int swap = uniform() < 0.5;
        grp_label(&g, parts, i + swap, (int64_t)i);
        grp_label(&g, parts, i + !swap, (int64_t)i + 1);
        if (g.nl == GROUP || i + 2 >= n) {
            grp_add(j, &g, (int64_t)(n / 50 + 1));
            drain(j, b, served);
        }
    }
    double t_gmatch = now_s() - t0;
    sl_join_stats(j, &st);
    printf("add:      %8.2f M samples/s   (%.0f ns each, in groups of %d)\n",
           (double)n / t_gadd / 1e6, t_gadd / (double)n * 1e9, GROUP);
    printf("match:    %8.2f M labels/s    (%.0f ns each, in groups of %d, pop included; %llu "
           "matched)\n",
           (double)n / t_gmatch / 1e6, t_gmatch / (double)n * 1e9, GROUP,
           (unsigned long long)st.c.matched);
    sl_join_destroy(j);

    /* 6. a stream: 50,000 samples/s, every label delayed (exponential, mean 10 s), so about
     * 500,000 pending; ticks every 200 ms; 2,000,000 samples. The schedule is made before
     * the clock starts, so the loop is the join's work only. */
    const uint64_t total = 2000000, rate = 50000;
    j = make(parts, SL_JOIN_DEFAULT_MAX_BYTES);
    typedef struct due {
        int64_t t;
        uint64_t id;
    } due_t;
    due_t *lab = malloc(total * sizeof(*lab));
    for (uint64_t i = 0; i < total; i++)
        lab[i] =
            (due_t){(int64_t)(i * 1000 / rate) + (int64_t)(-log(1.0 - uniform()) * 10000.0), i};
    qsort(lab, total, sizeof(*lab), cmp_due);
    uint64_t peak_pending = 0, nl = 0;
    /* memory per pending sample, over ticks with at least 100,000 pending */
    double worst = 0;
    int64_t next_tick = 0;
    t0 = now_s();
    for (uint64_t i = 0; i < total; i++) {
        grp_sample(&g, parts, i);
        if (g.ns < GROUP && i + 1 < total)
            continue;
        int64_t t = (int64_t)(i * 1000 / rate);
        grp_add(j, &g, t);
        for (; nl < total && lab[nl].t <= t; nl++) {
            grp_label(&g, parts, lab[nl].id, (int64_t)nl);
            if (g.nl == GROUP)
                grp_add(j, &g, t);
        }
        grp_add(j, &g, t);
        drain(j, b, served);
        if (t >= next_tick) {
            sl_join_expire(j, t);
            next_tick = t + 200;
            sl_join_stats(j, &st);
            if (st.pending > peak_pending)
                peak_pending = st.pending;
            double per = (double)(st.memory - st.memory_ids) / (double)st.pending;
            if (st.pending >= 100000 && per > worst)
                worst = per;
        }
    }
    double t_stream = now_s() - t0;
    sl_join_stats(j, &st);
    printf(
        "stream:   %8.2f M samples/s   (%.0f ns per sample: add, its label, pop, ticks; groups)\n",
        (double)total / t_stream / 1e6, t_stream / (double)total * 1e9);
    printf("          peak %llu pending, at most %.1f bytes per pending sample; label delay p50 "
           "%lld ms, p99 %lld ms; %llu matched\n",
           (unsigned long long)peak_pending, worst, (long long)st.delay_p50,
           (long long)st.delay_p99, (unsigned long long)st.c.matched);
    printf("          matched-id memory: %llu ids remembered (the cap), %.1f bytes each\n",
           (unsigned long long)st.matched_ids,
           (double)st.memory_ids / (double)(st.matched_ids ? st.matched_ids : 1));
    free(lab);
    sl_join_destroy(j);
    sl_batch_destroy(b);
    return 0;
}
