/* guard_bench.c - guarded vs unguarded learning on seeded gen streams, in one
 * run: detection delay, false alarms, recovery after an event, accuracy over
 * the whole stream, and the learning step's CPU per sample with and without
 * challengers. Built and run by bench/guard.sh.
 *   guard_bench SCENARIO [SAMPLES] [SEED] [DETECTOR]
 * SCENARIO: stationary | sudden | gradual | poison | poison-random | cpu.
 * Prints one JSON object per line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/guardsim.h"

static sl_gsim_config_t base(uint64_t samples, uint64_t seed, sl_drift_kind_t det) {
    sl_gsim_config_t c = {0};
    c.gen = (sl_gen_config_t){.head = SL_HEAD_LOGISTIC,
                              .dim = 32,
                              .classes = 2,
                              .seed = seed,
                              .samples = samples,
                              .stream = SL_GEN_HYPERPLANE,
                              .labelled_fraction = 1,
                              .noise = 0.05,
                              .per_message = 1,
                              .vocab = 1000,
                              .nnz = 10};
    c.model = (sl_model_config_t){.head = SL_HEAD_LOGISTIC, .dim = 32};
    c.optim = sl_optim_config_default(SL_OPTIM_ADAM);
    c.seed = seed;
    c.batch_size = 64;
    c.guard = sl_guard_config_default();
    c.guard.drift = sl_drift_config_default(det);
    /* overrides, to explore settings: GUARD_ALPHA, GUARD_MARGIN, GUARD_WINDOW, GUARD_WARMUP */
    const char *v;
    if ((v = getenv("GUARD_ALPHA")))
        c.guard.alpha = atof(v);
    if ((v = getenv("GUARD_MARGIN")))
        c.guard.promote_margin = atof(v);
    if ((v = getenv("GUARD_WINDOW")))
        c.guard.window = (uint32_t)atoi(v);
    if ((v = getenv("GUARD_WARMUP")))
        c.guard.warmup = strtoull(v, NULL, 10);
    if ((v = getenv("GUARD_ON_ALARM")))
        c.guard.on_alarm = strcmp(v, "pause") == 0   ? SL_GUARD_PAUSE
                           : strcmp(v, "alert") == 0 ? SL_GUARD_ALERT
                                                     : SL_GUARD_SWITCH;
    return c;
}

static uint64_t first_after(const sl_gsim_result_t *r, sl_guard_event_kind_t kind, uint64_t from) {
    for (size_t i = 0; i < r->n_events; i++)
        if (r->events[i].kind == kind && r->events[i].sample >= from)
            return r->events[i].sample - from;
    return UINT64_MAX;
}

static void print_u64(const char *key, uint64_t v) {
    if (v == UINT64_MAX)
        printf("\"%s\":null,", key);
    else
        printf("\"%s\":%llu,", key, (unsigned long long)v);
}

/* One scenario: the event spans [from, to) (to = end of a poisoned stretch,
 * or of a gradual drift); recovery is measured from `to`. */
static int scenario(const char *name, sl_gsim_config_t c, uint64_t from, uint64_t to) {
    sl_gsim_result_t r[2];
    for (int guarded = 0; guarded < 2; guarded++) {
        c.guarded = guarded;
        if (getenv("GUARD_LOG") && guarded)
            c.log = stderr;
        if (sl_gsim_run(&c, &r[guarded]) != 0)
            return -1;
    }
    uint64_t n = r[0].samples, win = 1000;
    for (int g = 0; g < 2; g++) {
        const sl_gsim_result_t *x = &r[g];
        printf("{\"scenario\":\"%s\",\"detector\":\"%s\",\"guarded\":%s,\"samples\":%llu,", name,
               sl_drift_kind_name(c.guard.drift.kind), g ? "true" : "false", (unsigned long long)n);
        double before = from ? sl_gsim_accuracy(x, from > 5000 ? from - 5000 : 0, from) : NAN;
        uint64_t rec = from ? sl_gsim_recovery(x, to, before - 0.01, win) : UINT64_MAX;
        /* alarms before the event, or long after it, are false alarms */
        uint64_t settle = to + 20000;
        size_t false_alarms = sl_gsim_count(x, SL_GUARD_ALARM, 0, from ? from : n) +
                              (from ? sl_gsim_count(x, SL_GUARD_ALARM, settle, n) : 0);
        uint64_t clean = from ? from + (n > settle ? n - settle : 0) : n;
        printf("\"accuracy\":%.5f,\"accuracy_labels\":%.5f,\"accuracy_before\":%.5f,"
               "\"accuracy_during\":%.5f,",
               x->accuracy, x->accuracy_labels, before,
               from ? sl_gsim_accuracy(x, from, to > from ? to : from + 20000) : NAN);
        print_u64("recovery_samples", rec);
        print_u64("detection_delay", from && g ? first_after(x, SL_GUARD_ALARM, from) : UINT64_MAX);
        printf("\"false_alarms\":%zu,\"false_alarms_per_1M\":%.3f,", false_alarms,
               clean ? false_alarms * 1e6 / clean : 0);
        printf("\"mtfa\":%.0f,", false_alarms ? (double)clean / false_alarms : INFINITY);
        printf("\"alarms\":%llu,\"promotions\":%llu,\"switches\":%llu,\"kept\":%llu,"
               "\"resolved\":%llu,\"good_versions\":%llu,\"cpu_s\":%.3f}\n",
               (unsigned long long)x->alarms, (unsigned long long)x->promotions,
               (unsigned long long)x->switches, (unsigned long long)x->kept,
               (unsigned long long)x->resolved, (unsigned long long)x->good_versions, x->seconds);
    }
    fflush(stdout);
    sl_gsim_free(&r[0]);
    sl_gsim_free(&r[1]);
    return 0;
}

/* CPU of the learning step per sample: plain, guarded with 0 and with 2
 * challengers (best of `reps` runs each, alternating). */
static int cpu(uint64_t samples, uint64_t seed, sl_drift_kind_t det) {
    double best[3] = {INFINITY, INFINITY, INFINITY};
    for (int rep = 0; rep < 3; rep++)
        for (int v = 0; v < 3; v++) {
            sl_gsim_config_t c = base(samples, seed, det);
            c.guarded = v > 0;
            sl_guard_config_challengers(&c.guard, v == 2 ? 2 : 0);
            sl_gsim_result_t r;
            if (sl_gsim_run(&c, &r) != 0)
                return -1;
            if (r.seconds < best[v])
                best[v] = r.seconds;
            sl_gsim_free(&r);
        }
    printf("{\"scenario\":\"cpu\",\"detector\":\"%s\",\"samples\":%llu,"
           "\"ns_per_sample_plain\":%.1f,\"ns_per_sample_guard0\":%.1f,"
           "\"ns_per_sample_guard2\":%.1f}\n",
           sl_drift_kind_name(det), (unsigned long long)samples, best[0] * 1e9 / samples,
           best[1] * 1e9 / samples, best[2] * 1e9 / samples);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: guard_bench stationary|sudden|gradual|poison|poison-random|cpu "
                        "[SAMPLES] [SEED] [adwin|ph]\n");
        return 2;
    }
    const char *s = argv[1];
    uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
    sl_drift_kind_t det = SL_DRIFT_ADWIN;
    if (argc > 4 && sl_drift_kind_parse(argv[4], &det) != SL_OK)
        return 2;
    uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 0;
    if (strcmp(s, "stationary") == 0)
        return scenario(s, base(n ? n : 2000000, seed, det), 0, 0) ? 1 : 0;
    if (strcmp(s, "cpu") == 0)
        return cpu(n ? n : 1000000, seed, det) ? 1 : 0;
    n = n ? n : 400000;
    sl_gsim_config_t c = base(n, seed, det);
    uint64_t at = n / 2;
    if (strcmp(s, "sudden") == 0) {
        c.gen.drift_at = at;
        return scenario(s, c, at, at) ? 1 : 0;
    }
    if (strcmp(s, "gradual") == 0) {
        c.gen.drift_at = at;
        c.gen.drift_width = 20000;
        return scenario(s, c, at, at + 20000) ? 1 : 0;
    }
    if (strcmp(s, "poison") == 0 || strcmp(s, "poison-random") == 0) {
        c.gen.poison_from = at;
        c.gen.poison_to = at + 50000;
        c.gen.poison = strcmp(s, "poison") == 0 ? SL_GEN_POISON_FLIP : SL_GEN_POISON_RANDOM;
        return scenario(s, c, at, at + 50000) ? 1 : 0;
    }
    fprintf(stderr, "guard_bench: unknown scenario %s\n", s);
    return 2;
}
