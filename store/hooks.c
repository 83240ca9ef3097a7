/* hooks.c - the snapshot store wired into the worker: hot-standby lease,
 * recovery of head, snapshot jobs handed to the background writer
 * (writer.c), durable offsets, and rollbacks followed while running.
 *
 * Threads: every sl_worker_hooks_t callback runs on the worker's thread and
 * only copies state (sl_learner_copy: memcpy of weights and optimizer state
 * into a reused spare learner) into a job and collects results; it never
 * waits for deliveries: the job is held until the predictions of the batches
 * it covers are delivered, then posted. The writer serialises the copy
 * (sl_learner_save) and publishes it; the writer thread owns the Redis
 * connection, the lease and the snapshot store after sl_store_start. They
 * meet in a mailbox guarded by `mu`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"

#define DRAIN_TIMEOUT_MS 30000

void sl_store_note_lineage(sl_store_status_t *st, uint64_t version, uint64_t parent) {
    if (st->n_lineage > 0 && st->lineage[0] == version)
        return;
    if (st->n_lineage > 0 && st->lineage[0] == parent) {
        uint32_t keep = st->n_lineage < SL_STORE_LINEAGE ? st->n_lineage : SL_STORE_LINEAGE - 1;
        memmove(st->lineage + 1, st->lineage, keep * sizeof st->lineage[0]);
        st->lineage[0] = version;
        st->n_lineage = keep + 1;
        return;
    }
    st->lineage[0] = version;
    st->lineage[1] = parent;
    st->n_lineage = parent ? 2 : 1;
}

sl_store_t *sl_store_new(const sl_store_config_t *c, char *errstr, size_t errstr_size) {
    if (!c->topic || !*c->topic) {
        sl_errstr_set(errstr, errstr_size, "store: the input topic is required");
        return NULL;
    }
    sl_store_t *s = calloc(1, sizeof *s);
    if (!s) {
        sl_errstr_set(errstr, errstr_size, "out of memory creating the store");
        return NULL;
    }
    s->c = *c;
    if (!s->c.lease_ttl_ms)
        s->c.lease_ttl_ms = 10000;
    if (!s->c.poll_ms)
        s->c.poll_ms = 200;
    if (!s->c.final_timeout_ms)
        s->c.final_timeout_ms = 15000;
    s->url = c->redis_url ? strdup(c->redis_url) : NULL;
    s->name = c->model_name ? strdup(c->model_name) : NULL;
    s->topic = strdup(c->topic);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->fail_log = (sl_ratelimit_t){.interval_ms = 10000, .burst = 1};
    s->status.redis_ok = 1;
    sl_snapshot_opts_t so = {.chunk_bytes = c->chunk_bytes, .keep_versions = c->keep_versions};
    if (!s->topic || !c->redis_url || !s->url || !c->model_name || !s->name) {
        sl_errstr_set(errstr, errstr_size, "store: --redis and --model-name are required");
        goto fail;
    }
    s->redis = sl_redis_new(s->url, NULL, errstr, errstr_size);
    if (!s->redis)
        goto fail;
    s->snap = sl_snapshot_new(s->redis, s->name, &so, errstr, errstr_size);
    if (!s->snap)
        goto fail;
    s->lease = sl_lease_new(s->name, s->c.lease_ttl_ms, errstr, errstr_size);
    if (!s->lease)
        goto fail;
    return s;
fail:
    sl_store_destroy(s);
    return NULL;
}

void sl_store_cancel(sl_store_t *s) {
    atomic_store(&s->cancel, 1);
}

static void sleep_ms(uint64_t ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

sl_err_t sl_store_acquire(sl_store_t *s, char *errstr, size_t errstr_size) {
    int logged = 0;
    uint64_t wait = s->c.lease_ttl_ms / 4 < 500 ? s->c.lease_ttl_ms / 4 : 500;
    while (!atomic_load(&s->cancel)) {
        int held = 0;
        char err[512];
        if (sl_lease_acquire(s->lease, s->redis, &held, err, sizeof err) != SL_OK) {
            uint64_t suppressed;
            if (sl_ratelimit_allow(&s->fail_log, sl_now_ms(), &suppressed))
                sl_log(SL_LOG_WARN, "cannot reach redis for the lease, retrying",
                       SL_STR("error", err), SL_U64("suppressed", suppressed));
        } else if (held) {
            s->last_renew_ms = sl_now_ms();
            sl_log(SL_LOG_INFO, "lease acquired: this worker trains the model",
                   SL_STR("model", s->name), SL_U64("ttl_ms", s->c.lease_ttl_ms));
            return SL_OK;
        } else if (!logged) {
            sl_log(SL_LOG_INFO, "standby: another worker holds the model's lease",
                   SL_STR("model", s->name), SL_U64("ttl_ms", s->c.lease_ttl_ms));
            logged = 1;
        }
        sleep_ms(wait ? wait : 1);
    }
    sl_errstr_set(errstr, errstr_size, "cancelled while waiting for the lease of model \"%s\"",
                  s->name);
    return SL_ERR_STATE;
}

/* Sets partition p's next offset in the worker-thread map. */
static int map_set(sl_store_t *s, int32_t p, int64_t off) {
    for (size_t i = 0; i < s->nmap; i++)
        if (s->map[i].partition == p) {
            s->map[i].offset = off;
            return 0;
        }
    if (s->nmap == s->map_cap) {
        size_t cap = s->map_cap ? s->map_cap * 2 : 16;
        sl_partoff_t *m = realloc(s->map, cap * sizeof *m);
        if (!m)
            return -1;
        s->map = m;
        s->map_cap = cap;
    }
    s->map[s->nmap++] = (sl_partoff_t){p, off};
    return 0;
}

/* Copies a version's offsets for our topic into a partoff array (malloc'd). */
static sl_partoff_t *topic_offsets(const sl_store_t *s, const sl_snap_meta_t *m, size_t *n) {
    sl_partoff_t *out = malloc((m->n_offsets ? m->n_offsets : 1) * sizeof *out);
    *n = 0;
    for (size_t i = 0; out && i < m->n_offsets; i++)
        if (!strcmp(m->offsets[i].topic, s->topic))
            out[(*n)++] = (sl_partoff_t){m->offsets[i].partition, m->offsets[i].offset};
    return out;
}

sl_err_t sl_store_add_section(sl_store_t *s, const sl_store_section_source_t *src, char *errstr,
                              size_t errstr_size) {
    size_t nl = src->name ? strlen(src->name) : 0;
    int ok = nl >= 1 && nl <= SL_SNAP_SECTION_NAME_MAX && src->save && src->restore &&
             strspn(src->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == nl;
    for (size_t i = 0; ok && i < s->n_sources; i++)
        ok = strcmp(s->sources[i].name, src->name) != 0;
    if (!ok) {
        sl_errstr_set(errstr, errstr_size,
                      "snapshot section \"%s\": needs a new name of 1-%d bytes of [a-z0-9_] and "
                      "both calls",
                      src->name ? src->name : "(null)", SL_SNAP_SECTION_NAME_MAX);
        return SL_ERR_INVAL;
    }
    section_source_t *n = realloc(s->sources, (s->n_sources + 1) * sizeof *n);
    if (!n) {
        sl_errstr_set(errstr, errstr_size, "out of memory adding snapshot section \"%s\"",
                      src->name);
        return SL_ERR_NOMEM;
    }
    s->sources = n;
    snprintf(n[s->n_sources].name, sizeof n[s->n_sources].name, "%s", src->name);
    n[s->n_sources].src = *src;
    n[s->n_sources].src.name = n[s->n_sources].name;
    s->n_sources++;
    return SL_OK;
}

/* Gives every section source its part of version m (data NULL when m has
 * none). The first error is returned, with errstr naming the section. */
static sl_err_t restore_sections(sl_store_t *s, const sl_snap_meta_t *m, char *errstr,
                                 size_t errstr_size) {
    for (size_t i = 0; i < s->n_sources; i++) {
        const uint8_t *data = NULL;
        size_t len = 0;
        if (!sl_snap_meta_section(m, s->sources[i].name, &data, &len))
            data = NULL, len = 0;
        sl_err_t err = s->sources[i].src.restore(s->sources[i].src.opaque, m->version, data, len);
        if (err != SL_OK) {
            sl_errstr_set(errstr, errstr_size,
                          "version %" PRIu64 " of model \"%s\": its \"%s\" state: %s", m->version,
                          s->name, s->sources[i].name, sl_err_str(err));
            return err;
        }
    }
    return SL_OK;
}

/* Asks every section source for its state, into j. SL_OK, or the first
 * source's error (j's sections so far are freed with the job). */
static sl_err_t save_sections(sl_store_t *s, job_t *j) {
    if (s->n_sources == 0)
        return SL_OK;
    j->sections = calloc(s->n_sources, sizeof *j->sections);
    if (!j->sections)
        return SL_ERR_NOMEM;
    for (size_t i = 0; i < s->n_sources; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        sl_err_t err = s->sources[i].src.save(s->sources[i].src.opaque, &data, &len);
        if (err != SL_OK) {
            free(data);
            return err;
        }
        j->sections[j->n_sections++] = (sl_snap_section_t){s->sources[i].name, data, len};
    }
    return SL_OK;
}

sl_err_t sl_store_load(sl_store_t *s, const sl_model_config_t *expect, sl_learner_t **learner,
                       char *errstr, size_t errstr_size) {
    sl_snap_meta_t m;
    if (expect) {
        s->expect = *expect;
        s->have_expect = 1;
    }
    sl_err_t err =
        sl_snapshot_load_head(s->snap, expect, !s->c.follower, learner, &m, errstr, errstr_size);
    if (err != SL_OK)
        return err;
    size_t n;
    sl_partoff_t *offs = topic_offsets(s, &m, &n);
    for (size_t i = 0; offs && i < n; i++)
        if (map_set(s, offs[i].partition, offs[i].offset) != 0)
            err = SL_ERR_NOMEM;
    free(offs);
    if (!offs || err != SL_OK) {
        sl_learner_destroy(*learner);
        *learner = NULL;
        sl_snap_meta_clear(&m);
        sl_errstr_set(errstr, errstr_size, "out of memory loading offsets");
        return SL_ERR_NOMEM;
    }
    if ((err = restore_sections(s, &m, errstr, errstr_size)) != SL_OK) {
        sl_learner_destroy(*learner);
        *learner = NULL;
        sl_snap_meta_clear(&m);
        return err;
    }
    s->version = s->known_head = m.version;
    pthread_mutex_lock(&s->mu);
    s->status.version = m.version;
    s->status.parent = m.parent;
    sl_store_note_lineage(&s->status, m.version, m.parent);
    pthread_mutex_unlock(&s->mu);
    s->initial_durable = s->nmap > 0 && !s->c.follower;
    sl_log(SL_LOG_INFO, "resuming from snapshot", SL_STR("model", s->name),
           SL_U64("version", m.version), SL_U64("step", m.step), SL_U64("samples", m.samples),
           SL_U64("partitions", n));
    sl_snap_meta_clear(&m);
    return SL_OK;
}

/* --- worker thread --- */

/* Takes results from the writer: durable offsets, learner swaps, lease loss. */
static sl_err_t apply_results(sl_store_t *s, sl_worker_t *w) {
    if (s->initial_durable) {
        sl_worker_set_durable(w, s->map, s->nmap);
        s->initial_durable = 0;
    }
    int nomem = 0;
    pthread_mutex_lock(&s->mu);
    int lost = s->lease_lost;
    sl_partoff_t *done = NULL;
    size_t ndone = 0;
    if (s->have_done) {
        done = s->done_offs;
        ndone = s->done_n;
        s->version = s->done_version;
        s->done_offs = NULL;
        s->have_done = 0;
    }
    sl_learner_t *l = s->sw_learner;
    sl_snap_meta_t m = s->sw_meta;
    int rewind = s->sw_rewind;
    s->sw_learner = NULL;
    memset(&s->sw_meta, 0, sizeof s->sw_meta);
    pthread_mutex_unlock(&s->mu);
    if (done)
        sl_worker_set_durable(w, done, ndone);
    free(done);
    if (l) {
        size_t n = 0;
        sl_partoff_t *offs = rewind ? topic_offsets(s, &m, &n) : NULL;
        sl_err_t err = rewind && !offs ? SL_ERR_NOMEM : sl_worker_replace_learner(w, l, offs, n);
        char why[512] = "";
        if (err == SL_OK && (err = restore_sections(s, &m, why, sizeof why)) != SL_OK) {
            /* the learner is the worker's now, its companions' state is not: stop */
            free(offs);
            sl_snap_meta_clear(&m);
            sl_worker_fail(w, err, "%s", why);
            return err;
        }
        if (err != SL_OK) {
            sl_log(SL_LOG_ERROR, "cannot switch to the new head", SL_STR("model", s->name),
                   SL_U64("version", m.version), SL_STR("error", sl_err_str(err)));
            sl_learner_destroy(l);
        } else {
            s->version = m.version;
            for (size_t i = 0; i < n; i++)
                if (map_set(s, offs[i].partition, offs[i].offset) != 0)
                    nomem = 1;
            s->dirty = 0;
            pthread_mutex_lock(&s->mu);
            s->status.parent = m.parent;
            sl_store_note_lineage(&s->status, m.version, m.parent);
            s->status.switches++;
            pthread_mutex_unlock(&s->mu);
        }
        free(offs);
    }
    sl_snap_meta_clear(&m);
    pthread_mutex_lock(&s->mu);
    s->status.version = s->version;
    pthread_mutex_unlock(&s->mu);
    if (nomem) {
        sl_worker_fail(w, SL_ERR_NOMEM, "out of memory recording the offsets of version %llu",
                       (unsigned long long)s->version);
        return SL_ERR_NOMEM;
    }
    if (lost) {
        sl_worker_fail(w, SL_ERR_STATE, "the lease of model \"%s\" is held by another worker",
                       s->name);
        return SL_ERR_STATE;
    }
    return SL_OK;
}

/* Records the trained offsets for the next snapshot. SL_ERR_NOMEM (the
 * worker must stop: a snapshot without this offset would train its samples
 * again after a restart). */
static sl_err_t note_trained(sl_store_t *s, sl_worker_t *w, const sl_partoff_t *trained, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (trained[i].offset != SL_OFFSET_NONE &&
            map_set(s, trained[i].partition, trained[i].offset) != 0) {
            sl_worker_fail(w, SL_ERR_NOMEM,
                           "out of memory recording the trained offset of partition %d",
                           (int)trained[i].partition);
            return SL_ERR_NOMEM;
        }
    return SL_OK;
}

/* Drops the held snapshot (superseded, or its lineage moved on): what it
 * covered is in no job now, so the state is dirty again and a snapshot is
 * due at once. */
static void drop_held(sl_store_t *s) {
    if (!s->holding)
        return;
    sl_store_job_clear(&s->held);
    s->holding = 0;
    s->dirty = 1;
    s->batches_since = s->c.every_batches;
    s->last_snap_ms = 0;
}

/* Hands the held snapshot to the writer once every prediction of the
 * batches it covers is delivered: its offsets become durable only then, so
 * a restart never skips a sample whose prediction was lost, and the worker
 * never waits for deliveries. Returns the job's id, or 0 when it stays held
 * (in flight, or the writer busy with an older job) or was dropped. */
static uint64_t post_held(sl_store_t *s, sl_worker_t *w) {
    if (!s->holding)
        return 0;
    if (s->held.parent != s->version) { /* a publish or a switch since the copy */
        drop_held(s);
        return 0;
    }
    if (!sl_worker_delivered(w, s->held_mark))
        return 0;
    pthread_mutex_lock(&s->mu);
    if (s->job_state != JOB_NONE || s->have_done || s->sw_learner) {
        /* the writer has a job or posted a result not yet taken:
         * apply_results takes it first, then the parent check decides */
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    uint64_t id = s->held.id = ++s->job_seq;
    s->job = s->held;
    s->job_state = JOB_PENDING;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    memset(&s->held, 0, sizeof s->held);
    s->holding = 0;
    return id;
}

/* Copies the learner and offsets into the held snapshot (post_held sends
 * it on). Returns its job id if it went to the writer at once, else 0
 * (held, nothing new, the writer busy, or failure). One snapshot at a time:
 * none is copied while the writer still has one (waiting for Redis or being
 * written), so each names the version just published as its parent; while
 * Redis is down the job in hand is retried and newer state waits for it. */
static uint64_t queue_snapshot(sl_store_t *s, sl_worker_t *w) {
    pthread_mutex_lock(&s->mu);
    int busy = s->job_state != JOB_NONE;
    pthread_mutex_unlock(&s->mu);
    if (busy || s->holding || !s->dirty)
        return 0;
    /* The writer posts a finished job's result before it goes idle: take it
     * now, so the new job's parent is the version just published. */
    if (apply_results(s, w) != SL_OK || !s->dirty)
        return 0;
    /* apply_results may have swapped the learner: read the worker's own. */
    const sl_learner_t *learner = sl_worker_learner(w);
    job_t j = {0};
    j.offs = calloc(s->nmap ? s->nmap : 1, sizeof *j.offs);
    pthread_mutex_lock(&s->mu);
    j.copy = s->spare;
    s->spare = NULL;
    pthread_mutex_unlock(&s->mu);
    if (j.copy && sl_learner_copy(j.copy, learner) != SL_OK) {
        sl_learner_destroy(j.copy); /* the learner was swapped for another shape */
        j.copy = NULL;
    }
    if (!j.copy)
        j.copy = sl_learner_clone(learner);
    if (!j.offs || !j.copy) {
        sl_store_job_clear(&j);
        sl_log(SL_LOG_ERROR, "snapshot skipped: out of memory copying the model",
               SL_STR("model", s->name));
        return 0;
    }
    sl_err_t serr = save_sections(s, &j);
    if (serr != SL_OK) {
        sl_store_job_clear(&j);
        sl_log(SL_LOG_ERROR, "snapshot skipped: a section's state could not be saved",
               SL_STR("model", s->name), SL_STR("error", sl_err_str(serr)));
        return 0;
    }
    for (size_t i = 0; i < s->nmap; i++) {
        snprintf(j.offs[i].topic, sizeof j.offs[i].topic, "%s", s->topic);
        j.offs[i].partition = s->map[i].partition;
        j.offs[i].offset = s->map[i].offset;
    }
    j.n = s->nmap;
    j.parent = s->version;
    s->held = j;
    s->holding = 1;
    s->held_mark = sl_worker_output_mark(w);
    s->batches_since = 0;
    s->last_snap_ms = sl_now_ms();
    s->dirty = 0;
    return post_held(s, w);
}

static int snapshot_due(const sl_store_t *s) {
    if (!s->dirty)
        return 0;
    if (s->c.every_batches && s->batches_since >= s->c.every_batches)
        return 1;
    return s->c.every_ms && sl_now_ms() - s->last_snap_ms >= s->c.every_ms;
}

/* Waits on the writer's condition variable (with mu held) until it
 * signals or `until_ms` (sl_now_ms time) passes. */
static void wait_writer(sl_store_t *s, uint64_t until_ms) {
    uint64_t now = sl_now_ms();
    if (now >= until_ms)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (until_ms - now) * 1000000ull;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Revoke and stop: wait for the writer, snapshot, wait until it is durable. */
static sl_err_t snapshot_now(sl_store_t *s, sl_worker_t *w) {
    uint64_t deadline = sl_now_ms() + s->c.final_timeout_ms;
    uint64_t id = 0;
    drop_held(s); /* the final snapshot covers it */
    /* The worker settled before this hook; outputs a timeout left in flight
     * get one more wait, since nothing is published ahead of them. */
    if (sl_worker_drain(w, DRAIN_TIMEOUT_MS) != SL_OK) {
        sl_log(SL_LOG_WARN, "final snapshot skipped: predictions not yet delivered",
               SL_STR("model", s->name));
        return apply_results(s, w);
    }
    /* queue_snapshot declines while the writer is busy or has just posted a
     * result (taken at the next turn): wait for the writer to move */
    while (s->dirty && sl_now_ms() < deadline) {
        sl_err_t err = apply_results(s, w);
        if (err != SL_OK)
            return err;
        if ((id = queue_snapshot(s, w)) != 0)
            break;
        pthread_mutex_lock(&s->mu);
        if (s->job_state != JOB_NONE && !s->have_done && !s->sw_learner)
            wait_writer(s, deadline);
        else
            wait_writer(s, sl_now_ms() + 10); /* declined for another reason: retry soon */
        pthread_mutex_unlock(&s->mu);
    }
    if (id == 0)
        return apply_results(s, w);
    pthread_mutex_lock(&s->mu);
    while (s->finished_job < id && !s->lease_lost && sl_now_ms() < deadline)
        wait_writer(s, deadline);
    int ok = s->finished_job >= id;
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        sl_log(SL_LOG_ERROR, "final snapshot not written in time; offsets stay at the last one",
               SL_STR("model", s->name), SL_U64("timeout_ms", s->c.final_timeout_ms));
    return apply_results(s, w);
}

static sl_err_t hook_assign(void *opaque, sl_worker_t *w, const char *topic,
                            const int32_t *partitions, size_t n, int64_t *offsets_out) {
    sl_store_t *s = opaque;
    sl_err_t err = apply_results(s, w);
    if (err != SL_OK || strcmp(topic, s->topic) != 0)
        return err;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < s->nmap; j++)
            if (s->map[j].partition == partitions[i] && s->map[j].offset >= 0)
                offsets_out[i] = s->map[j].offset;
    return SL_OK;
}

static sl_err_t hook_batch_done(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                                const sl_partoff_t *trained, size_t n, uint64_t batch_index) {
    (void)learner; /* read through sl_worker_learner: a swap may replace it */
    (void)batch_index;
    sl_store_t *s = opaque;
    sl_err_t err = note_trained(s, w, trained, n);
    if (err != SL_OK)
        return err;
    s->batches_since++;
    s->dirty = 1;
    err = apply_results(s, w);
    if (err == SL_OK)
        post_held(s, w);
    if (err == SL_OK && snapshot_due(s))
        queue_snapshot(s, w);
    return err;
}

static sl_err_t hook_tick(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                          const sl_partoff_t *trained, size_t n) {
    (void)learner; /* read through sl_worker_learner: a swap may replace it */
    sl_store_t *s = opaque;
    sl_err_t err = note_trained(s, w, trained, n);
    if (err == SL_OK)
        err = apply_results(s, w);
    if (err == SL_OK)
        post_held(s, w);
    if (err == SL_OK && snapshot_due(s))
        queue_snapshot(s, w);
    return err;
}

static sl_err_t hook_revoke(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                            const sl_partoff_t *trained, size_t n, const int32_t *revoked,
                            size_t nrevoked) {
    (void)learner; /* read through sl_worker_learner: a swap may replace it */
    (void)revoked;
    (void)nrevoked;
    sl_store_t *s = opaque;
    sl_err_t err = note_trained(s, w, trained, n);
    return err != SL_OK ? err : snapshot_now(s, w);
}

static sl_err_t hook_stop(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                          const sl_partoff_t *trained, size_t n) {
    (void)learner; /* read through sl_worker_learner: a swap may replace it */
    sl_store_t *s = opaque;
    sl_err_t err = note_trained(s, w, trained, n);
    return err != SL_OK ? err : snapshot_now(s, w);
}

static uint64_t hook_version(void *opaque) {
    return ((sl_store_t *)opaque)->version;
}

static void hook_health(void *opaque, int *redis_ok, uint64_t *failed, char *last_error,
                        size_t last_error_size) {
    sl_store_status_t st;
    sl_store_status(opaque, &st);
    *redis_ok = st.redis_ok;
    *failed = st.failed;
    snprintf(last_error, last_error_size, "%s", st.last_error);
}

/* A follower's batch and tick hooks: take a new head the writer loaded. */
static sl_err_t hook_follow_batch(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                                  const sl_partoff_t *trained, size_t n, uint64_t batch_index) {
    (void)learner;
    (void)trained;
    (void)n;
    (void)batch_index;
    return apply_results(opaque, w);
}

static sl_err_t hook_follow_tick(void *opaque, sl_worker_t *w, const sl_learner_t *learner,
                                 const sl_partoff_t *trained, size_t n) {
    (void)learner;
    (void)trained;
    (void)n;
    return apply_results(opaque, w);
}

sl_err_t sl_store_start(sl_store_t *s, sl_worker_hooks_t *hooks, char *errstr, size_t errstr_size) {
    if (s->started) {
        sl_errstr_set(errstr, errstr_size, "store: already started");
        return SL_ERR_STATE;
    }
    /* Learn the rollback counter now, so a rollback after this is noticed
     * with its rewind flag; if Redis does not answer, the first poll learns it. */
    uint64_t head, rollbacks;
    char err[256];
    s->known_rollbacks = UINT64_MAX;
    if (sl_snapshot_poll(s->snap, &head, &rollbacks, err, sizeof err) == SL_OK)
        s->known_rollbacks = rollbacks;
    s->last_poll_ms = sl_now_ms();
    s->last_snap_ms = sl_now_ms();
    if (pthread_create(&s->thread, NULL, sl_store_writer_main, s) != 0) {
        sl_errstr_set(errstr, errstr_size, "store: cannot start the snapshot thread");
        return SL_ERR_NOMEM;
    }
    s->started = 1;
    if (s->c.follower) {
        *hooks = (sl_worker_hooks_t){.opaque = s,
                                     .on_batch_done = hook_follow_batch,
                                     .on_tick = hook_follow_tick,
                                     .version = hook_version,
                                     .health = hook_health};
        return SL_OK;
    }
    *hooks = (sl_worker_hooks_t){.opaque = s,
                                 .health = hook_health,
                                 .on_assign = hook_assign,
                                 .on_batch_done = hook_batch_done,
                                 .on_tick = hook_tick,
                                 .on_revoke = hook_revoke,
                                 .on_stop = hook_stop,
                                 .version = hook_version};
    return SL_OK;
}

void sl_store_status(sl_store_t *s, sl_store_status_t *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->status;
    pthread_mutex_unlock(&s->mu);
}

void sl_store_destroy(sl_store_t *s) {
    if (!s)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    if (s->lease && s->redis && !s->lease_lost && !s->c.follower) {
        char err[256];
        sl_lease_release(s->lease, s->redis, err, sizeof err);
    }
    sl_store_job_clear(&s->job);
    sl_store_job_clear(&s->held);
    sl_learner_destroy(s->spare);
    free(s->done_offs);
    sl_learner_destroy(s->sw_learner);
    sl_snap_meta_clear(&s->sw_meta);
    sl_lease_destroy(s->lease);
    sl_snapshot_destroy(s->snap);
    sl_redis_destroy(s->redis);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->map);
    free(s->sources);
    free(s->url);
    free(s->name);
    free(s->topic);
    free(s);
}
