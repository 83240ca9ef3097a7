/* guardsim.h - replay-like runs of the guard for tests and benchmarks: a
 * seeded `gen` stream decoded into batches exactly as `replay` does, stepped
 * through sl_guard_batch (or plain sl_learner_batch), with good versions kept
 * in memory as replay will keep them, and every served prediction scored
 * against the stream's true (unpoisoned) labels. */
#ifndef SL_TEST_GUARDSIM_H
#define SL_TEST_GUARDSIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/gen.h"
#include "model/guard.h"

typedef struct sl_gsim_config {
    sl_gen_config_t gen; /* the stream (poison included); the truth is the same without poison */
    sl_model_config_t model;
    sl_optim_config_t optim;
    uint64_t seed;
    uint32_t batch_size;     /* 64 when 0 */
    int guarded;             /* 0: sl_learner_batch only */
    sl_guard_config_t guard; /* seed and metrics window filled in from the above */
    uint32_t snapshot_every; /* batches between snapshots (good-version tests); 100 when 0 */
    uint64_t restart_at;     /* > 0: after this many batches, save everything, free it and
                              * carry on from the blobs (a restart) */
    FILE *log;               /* events are printed here when not NULL */
} sl_gsim_config_t;

typedef struct sl_gsim_event {
    sl_guard_event_kind_t kind;
    uint64_t sample; /* stream position when it happened */
    uint64_t version;
    int challenger;
} sl_gsim_event_t;

typedef struct sl_gsim_result {
    uint64_t samples;
    uint8_t *correct;       /* [samples]: served prediction right against the true label */
    double accuracy;        /* over the whole stream, against the true labels */
    double accuracy_labels; /* over the whole stream, against the stream's (poisoned) labels:
                             * the prequential accuracy River's evaluation reports */
    sl_gsim_event_t *events;
    size_t n_events;
    uint64_t alarms, promotions, switches, kept, resolved, good_versions, snapshots;
    double seconds;       /* CPU time in the learning step (sl_guard_batch / sl_learner_batch) */
    uint8_t *final_state; /* the champion's model-state blob at the end */
    size_t final_len;
} sl_gsim_result_t;

/* Runs c. Returns 0, or -1 with the reason on stderr. Free r with sl_gsim_free. */
int sl_gsim_run(const sl_gsim_config_t *c, sl_gsim_result_t *r);
void sl_gsim_free(sl_gsim_result_t *r);

/* Counts events of `kind` in [from, to) stream positions. */
size_t sl_gsim_count(const sl_gsim_result_t *r, sl_guard_event_kind_t kind, uint64_t from,
                     uint64_t to);

/* Accuracy of the served predictions over positions [from, to). */
double sl_gsim_accuracy(const sl_gsim_result_t *r, uint64_t from, uint64_t to);

/* Samples from `from` until the accuracy over the trailing `window`
 * positions (only those >= from) first reaches `level`, needing at least
 * window / 5 of them; UINT64_MAX if never. */
uint64_t sl_gsim_recovery(const sl_gsim_result_t *r, uint64_t from, double level, uint64_t window);

#endif
