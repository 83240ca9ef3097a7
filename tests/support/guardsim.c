/* guardsim.c - gen stream -> decode -> batches -> guard, with good versions in memory. */
#include "guardsim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer/batch.h"
#include "consumer/decode.h"
#include "model/learner.h"

#define MAX_KEPT 16

typedef struct kept {
    uint64_t version;
    sl_learner_t *l;
} kept_t;

typedef struct sim {
    const sl_gsim_config_t *c;
    sl_gsim_result_t *r;
    sl_learner_t *champ;
    sl_guard_t *guard;
    kept_t kept[MAX_KEPT];
    size_t n_kept;
    uint64_t version;
    size_t ev_cap;
    uint64_t labels_right;
} sim_t;

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void record(sim_t *s, const sl_guard_event_t *e, uint64_t pos) {
    sl_gsim_result_t *r = s->r;
    if (r->n_events == s->ev_cap) {
        s->ev_cap = s->ev_cap ? 2 * s->ev_cap : 64;
        r->events = realloc(r->events, s->ev_cap * sizeof *r->events);
    }
    r->events[r->n_events++] = (sl_gsim_event_t){e->kind, pos, e->version, e->challenger};
    switch (e->kind) {
    case SL_GUARD_ALARM: r->alarms++; break;
    case SL_GUARD_PROMOTED: r->promotions++; break;
    case SL_GUARD_SWITCHED: r->switches++; break;
    case SL_GUARD_KEPT: r->kept++; break;
    case SL_GUARD_RESOLVED: r->resolved++; break;
    }
    if (s->c->log)
        fprintf(s->c->log, "[%llu] %s\n", (unsigned long long)pos, e->reason);
}

static void record_all(sim_t *s, uint64_t pos) {
    const sl_guard_event_t *ev;
    size_t n = sl_guard_events(s->guard, &ev);
    for (size_t i = 0; i < n; i++)
        record(s, &ev[i], pos);
}

/* The decision after an alarm, with the wanted versions from memory (as
 * replay keeps them). */
static int decide(sim_t *s, uint64_t pos) {
    uint64_t ids[SL_GUARD_MAX_VERSIONS];
    size_t n = sl_guard_wanted_versions(s->guard, ids, SL_GUARD_MAX_VERSIONS);
    sl_learner_t *vs[SL_GUARD_MAX_VERSIONS];
    uint64_t got[SL_GUARD_MAX_VERSIONS];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < s->n_kept; k++)
            if (s->kept[k].version == ids[i] && (vs[m] = sl_learner_clone(s->kept[k].l)))
                got[m++] = ids[i];
    char err[256];
    if (sl_guard_decide(s->guard, s->champ, vs, got, m, err, sizeof err) != SL_OK) {
        fprintf(stderr, "guardsim: %s\n", err);
        return -1;
    }
    record_all(s, pos);
    return 0;
}

static void snapshot(sim_t *s) {
    s->r->snapshots++;
    int good = sl_guard_mark_snapshot(s->guard, NULL);
    s->version++;
    if (good) {
        s->r->good_versions++;
        if (s->n_kept == MAX_KEPT) {
            sl_learner_destroy(s->kept[0].l);
            memmove(s->kept, s->kept + 1, (MAX_KEPT - 1) * sizeof *s->kept);
            s->n_kept--;
        }
        s->kept[s->n_kept++] = (kept_t){s->version, sl_learner_clone(s->champ)};
    }
    sl_guard_version_published(s->guard, s->version, good);
}

/* Saves the champion and the guard, frees both, and loads them back. */
static int restart(sim_t *s) {
    uint8_t *lb, *gb;
    size_t ll, gl;
    if (sl_learner_save(s->champ, &lb, &ll) != SL_OK || sl_guard_save(s->guard, &gb, &gl) != SL_OK)
        return -1;
    sl_guard_config_t want = *sl_guard_config(s->guard);
    sl_guard_destroy(s->guard);
    sl_learner_destroy(s->champ);
    char err[256];
    s->champ = sl_learner_load(lb, ll, &s->c->model, NULL, err, sizeof err);
    s->guard = s->champ ? sl_guard_load(gb, gl, &want, s->champ, NULL, err, sizeof err) : NULL;
    free(lb);
    free(gb);
    if (!s->guard) {
        fprintf(stderr, "guardsim: restart: %s\n", err);
        return -1;
    }
    return 0;
}

/* One batch of rows [0, n): learn, score the served predictions against the truth. */
/* 1 when the prediction out (k outputs) is right for label y. */
static int right_for(sl_head_t head, const float *out, uint32_t k, float y) {
    if (head == SL_HEAD_SOFTMAX) {
        uint32_t best = 0;
        for (uint32_t j = 1; j < k; j++)
            if (out[j] > out[best])
                best = j;
        return best == (uint32_t)y;
    }
    if (head == SL_HEAD_LOGISTIC)
        return (out[0] >= 0.5f) == (y == 1.0f);
    return fabs(out[0] - y) < 0.5;
}

static int step(sim_t *s, sl_batch_t *b, const float *truth, size_t n, float *out,
                uint64_t *batches) {
    sl_input_t x;
    sl_targets_t t;
    sl_batch_view(b, 0, n, &x, &t);
    double t0 = cpu_now();
    sl_err_t err = s->guard ? sl_guard_batch(s->guard, s->champ, &x, &t, out, NULL)
                            : sl_learner_batch(s->champ, &x, &t, out, NULL);
    s->r->seconds += cpu_now() - t0;
    if (err != SL_OK) {
        fprintf(stderr, "guardsim: batch: %s\n", sl_err_str(err));
        return -1;
    }
    sl_head_t head = s->c->model.head;
    uint32_t k = head == SL_HEAD_SOFTMAX ? s->c->model.classes : 1;
    for (size_t i = 0; i < n; i++) {
        s->labels_right += right_for(head, out + i * k, k, t.y[i]);
        s->r->correct[s->r->samples++] = (uint8_t)right_for(head, out + i * k, k, truth[i]);
    }
    uint64_t pos = s->r->samples;
    if (s->guard) {
        record_all(s, pos);
        if (sl_guard_decision_pending(s->guard) && decide(s, pos) != 0)
            return -1;
        if (++*batches % s->c->snapshot_every == 0)
            snapshot(s);
        if (s->c->restart_at && *batches == s->c->restart_at && restart(s) != 0)
            return -1;
    }
    return 0;
}

int sl_gsim_run(const sl_gsim_config_t *c0, sl_gsim_result_t *r) {
    sl_gsim_config_t c = *c0;
    if (!c.batch_size)
        c.batch_size = 64;
    if (!c.snapshot_every)
        c.snapshot_every = 100;
    memset(r, 0, sizeof *r);
    sim_t s = {.c = &c, .r = r};
    char err[256];
    sl_gen_config_t clean = c.gen;
    clean.poison_from = clean.poison_to = 0;
    sl_gen_t *gen = sl_gen_new(&c.gen, err, sizeof err);
    sl_gen_t *truth_gen = gen ? sl_gen_new(&clean, err, sizeof err) : NULL;
    sl_decode_config_t dc = {.dim = c.model.dim, .head = c.model.head, .classes = c.model.classes};
    sl_decoder_t *dec = truth_gen ? sl_decoder_new(&dc, err, sizeof err) : NULL;
    sl_batch_t *b = sl_batch_new(c.model.dim, c.batch_size);
    sl_batch_t *tb = sl_batch_new(c.model.dim, c.batch_size);
    s.champ = dec ? sl_learner_new(&c.model, &c.optim, c.seed, 0, err, sizeof err) : NULL;
    uint32_t k = c.model.head == SL_HEAD_SOFTMAX ? c.model.classes : 1;
    float *out = malloc((size_t)c.batch_size * k * sizeof *out);
    r->correct = malloc(c.gen.samples ? c.gen.samples : 1);
    int rc = -1;
    if (!s.champ || !b || !tb || !out || !r->correct) {
        fprintf(stderr, "guardsim: %s\n", err);
        goto done;
    }
    if (c.guarded) {
        c.guard.seed = c.seed;
        if (!(s.guard = sl_guard_new(&c.guard, s.champ, err, sizeof err))) {
            fprintf(stderr, "guardsim: %s\n", err);
            goto done;
        }
    }
    uint64_t batches = 0;
    const uint8_t *msg;
    size_t len;
    for (;;) {
        int more = sl_gen_message(gen, &msg, &len) > 0;
        if (more) {
            sl_decode_result_t dr;
            sl_decode_message(dec, msg, len, 0, b, &dr);
            sl_gen_message(truth_gen, &msg, &len);
            sl_decode_message(dec, msg, len, 0, tb, &dr);
        }
        /* full batches as they fill, then the short last one (as replay cuts them) */
        while (sl_batch_rows(b) >= c.batch_size || (!more && sl_batch_rows(b) > 0)) {
            size_t n = sl_batch_rows(b) < c.batch_size ? sl_batch_rows(b) : c.batch_size;
            if (step(&s, b, tb->y, n, out, &batches) != 0)
                goto done;
            sl_batch_shift(b, n);
            sl_batch_shift(tb, n);
        }
        if (!more)
            break;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < r->samples; i++)
        total += r->correct[i];
    r->accuracy = r->samples ? (double)total / r->samples : NAN;
    r->accuracy_labels = r->samples ? (double)s.labels_right / r->samples : NAN;
    if (sl_learner_save(s.champ, &r->final_state, &r->final_len) != SL_OK)
        goto done;
    rc = 0;
done:
    for (size_t i = 0; i < s.n_kept; i++)
        sl_learner_destroy(s.kept[i].l);
    sl_guard_destroy(s.guard);
    sl_learner_destroy(s.champ);
    free(out);
    sl_batch_destroy(b);
    sl_batch_destroy(tb);
    sl_decoder_destroy(dec);
    sl_gen_destroy(gen);
    sl_gen_destroy(truth_gen);
    return rc;
}

void sl_gsim_free(sl_gsim_result_t *r) {
    free(r->correct);
    free(r->events);
    free(r->final_state);
    memset(r, 0, sizeof *r);
}

size_t sl_gsim_count(const sl_gsim_result_t *r, sl_guard_event_kind_t kind, uint64_t from,
                     uint64_t to) {
    size_t n = 0;
    for (size_t i = 0; i < r->n_events; i++)
        n += r->events[i].kind == kind && r->events[i].sample >= from && r->events[i].sample < to;
    return n;
}

double sl_gsim_accuracy(const sl_gsim_result_t *r, uint64_t from, uint64_t to) {
    if (to > r->samples)
        to = r->samples;
    uint64_t right = 0;
    for (uint64_t i = from; i < to; i++)
        right += r->correct[i];
    return to > from ? (double)right / (double)(to - from) : NAN;
}

uint64_t sl_gsim_recovery(const sl_gsim_result_t *r, uint64_t from, double level, uint64_t window) {
    uint64_t right = 0;
    for (uint64_t t = from; t < r->samples; t++) {
        right += r->correct[t];
        if (t + 1 - from > window)
            right -= r->correct[t - window];
        uint64_t n = t + 1 - from < window ? t + 1 - from : window;
        if (n >= window / 5 && (double)right / (double)n >= level)
            return t + 1 - from;
    }
    return UINT64_MAX;
}
