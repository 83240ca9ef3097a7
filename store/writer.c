/* writer.c - the store's background writer: publishes snapshots with its own
 * Redis connection, renews the lease, and follows head (rollbacks, other
 * writers), posting results for the worker thread to take (hooks.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "store/store_internal.h"

void sl_store_job_clear(job_t *j) {
    sl_learner_destroy(j->copy);
    free(j->blob);
    free(j->config);
    free(j->metrics);
    free(j->offs);
    for (size_t i = 0; i < j->n_sections; i++)
        free((void *)j->sections[i].data);
    free(j->sections);
    memset(j, 0, sizeof *j);
}

static void note_failure(sl_store_t *s, const char *what, const char *err) {
    pthread_mutex_lock(&s->mu);
    s->status.failed++;
    s->status.redis_ok = 0;
    snprintf(s->status.last_error, sizeof s->status.last_error, "%s", err);
    pthread_mutex_unlock(&s->mu);
    uint64_t suppressed;
    if (sl_ratelimit_allow(&s->fail_log, sl_now_ms(), &suppressed))
        sl_log(SL_LOG_ERROR, what, SL_STR("model", s->name), SL_STR("error", err),
               SL_U64("suppressed", suppressed));
}

static void note_ok(sl_store_t *s) {
    pthread_mutex_lock(&s->mu);
    int was_down = !s->status.redis_ok;
    s->status.redis_ok = 1;
    s->status.last_error[0] = '\0';
    pthread_mutex_unlock(&s->mu);
    if (was_down)
        sl_log(SL_LOG_INFO, "redis is back", SL_STR("model", s->name));
}

/* Rewind requested by the rollback that made `version` head? */
static int rollback_rewinds(sl_store_t *s, uint64_t version) {
    char **entries = NULL, err[256];
    size_t n = 0;
    int rewind = 0;
    if (sl_snapshot_audit(s->snap, 1, &entries, &n, err, sizeof err) == SL_OK && n == 1) {
        cJSON *e = cJSON_Parse(entries[0]);
        const cJSON *to = cJSON_GetObjectItem(e, "to");
        rewind = cJSON_IsNumber(to) && (uint64_t)to->valuedouble == version &&
                 cJSON_IsTrue(cJSON_GetObjectItem(e, "rewind"));
        cJSON_Delete(e);
    }
    sl_snapshot_strings_free(entries, n);
    return rewind;
}

/* Loads head and posts it for the worker to swap in. */
static void load_and_post(sl_store_t *s, int rewind) {
    sl_learner_t *l = NULL;
    sl_snap_meta_t m;
    char err[1024];
    sl_err_t rc = sl_snapshot_load_head(s->snap, s->have_expect ? &s->expect : NULL, 1, &l, &m, err,
                                        sizeof err);
    if (rc != SL_OK) {
        note_failure(s, "cannot load the new head", err);
        return;
    }
    s->known_head = m.version;
    sl_log(s->c.follower ? SL_LOG_INFO : SL_LOG_WARN, "head changed: switching to it",
           SL_STR("model", s->name), SL_U64("version", m.version), SL_BOOL("rewind", rewind));
    pthread_mutex_lock(&s->mu);
    sl_learner_destroy(s->sw_learner); /* an older switch not yet taken */
    sl_snap_meta_clear(&s->sw_meta);
    s->sw_learner = l;
    s->sw_meta = m;
    s->sw_rewind = rewind;
    pthread_mutex_unlock(&s->mu);
}

/* Follows head when it moved away from what this worker descends from (or
 * called after a publish was refused as stale). A move made by `models
 * rollback` keeps its --rewind choice; any other move (an import, another
 * writer) is followed with a rewind to the new head's offsets, so every
 * sample is still trained exactly once along the lineage that won. */
static void follow_head(sl_store_t *s) {
    uint64_t head, rollbacks;
    char err[512];
    s->last_poll_ms = sl_now_ms();
    if (sl_snapshot_poll(s->snap, &head, &rollbacks, err, sizeof err) != SL_OK) {
        note_failure(s, "cannot poll head", err);
        return;
    }
    note_ok(s);
    if (s->c.follower) {
        /* a predictor serves whatever head is: new versions and rollbacks alike */
        if (head != 0 && head != s->known_head)
            load_and_post(s, 0);
        return;
    }
    int first = s->known_rollbacks == UINT64_MAX;
    int rolled = !first && rollbacks != s->known_rollbacks;
    s->known_rollbacks = rollbacks;
    if (head == 0 || first)
        return;
    if (rolled) {
        int rewind = rollback_rewinds(s, head);
        if (head != s->known_head || rewind)
            load_and_post(s, rewind);
    } else if (head != s->known_head) {
        load_and_post(s, 1);
    }
}

static void renew_lease(sl_store_t *s) {
    int held = 0;
    char err[512];
    s->last_renew_ms = sl_now_ms();
    if (sl_lease_renew(s->lease, s->redis, &held, err, sizeof err) != SL_OK) {
        note_failure(s, "cannot renew the lease", err);
        return;
    }
    if (!held && sl_lease_acquire(s->lease, s->redis, &held, err, sizeof err) == SL_OK && held) {
        /* the key was gone (expired during an outage, or Redis lost it) and
         * nobody else took it: ours again */
        sl_log(SL_LOG_WARN, "lease re-acquired after it lapsed", SL_STR("model", s->name));
        return;
    }
    if (!held) {
        sl_log(SL_LOG_ERROR, "lease lost: another worker may train this model now",
               SL_STR("model", s->name));
        pthread_mutex_lock(&s->mu);
        s->lease_lost = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Serialises the job's learner copy (once: a retried job keeps its blob) and
 * hands the copy back as the spare for the next snapshot. Returns SL_OK or
 * SL_ERR_NOMEM. This is the expensive part of a snapshot (encoding and
 * hashing every weight), done here so the worker only pays for a memcpy. */
static sl_err_t serialise_job(sl_store_t *s, job_t *j) {
    if (j->blob || !j->copy)
        return SL_OK;
    sl_err_t err = sl_learner_save(j->copy, &j->blob, &j->len);
    if (err == SL_OK)
        err = sl_snapshot_describe(j->copy, &j->config, &j->metrics, &j->step, &j->samples);
    pthread_mutex_lock(&s->mu);
    if (!s->spare) {
        s->spare = j->copy;
        j->copy = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    sl_learner_destroy(j->copy);
    j->copy = NULL;
    return err;
}

/* Publishes the running job; called without mu. Returns 1 when the job is
 * finished (published or refused), 0 to retry it later. */
static int run_job(sl_store_t *s, job_t *j) {
    if (serialise_job(s, j) != SL_OK) {
        note_failure(s, "snapshot dropped", "out of memory serialising the model");
        return 1;
    }
    sl_snap_write_t w = {.blob = j->blob,
                         .len = j->len,
                         .parent = j->parent,
                         .step = j->step,
                         .samples = j->samples,
                         .config = j->config,
                         .metrics = j->metrics,
                         .offsets = j->offs,
                         .n_offsets = j->n,
                         .sections = j->sections,
                         .n_sections = j->n_sections,
                         .lease_token = sl_lease_token(s->lease),
                         .version_floor = j->version_floor};
    /* The offsets to report as durable, made before publishing: a version
     * whose offsets could not be reported would stay in Redis while its
     * Kafka offsets never commit. */
    sl_partoff_t *offs = malloc((j->n ? j->n : 1) * sizeof *offs);
    if (!offs) {
        note_failure(s, "snapshot postponed", "out of memory for its offsets");
        return 0;
    }
    for (size_t i = 0; i < j->n; i++)
        offs[i] = (sl_partoff_t){j->offs[i].partition, j->offs[i].offset};
    sl_publish_status_t st;
    uint64_t v = 0, head = 0;
    char err[1024];
    uint64_t t0 = sl_now_ms();
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    if (sl_snapshot_publish(s->snap, &w, &st, &v, &head, err, sizeof err) != SL_OK) {
        free(offs);
        note_failure(s, "snapshot failed; training goes on, offsets stay at the last snapshot",
                     err);
        return 0;
    }
    note_ok(s);
    if (st != SL_PUBLISH_DONE) {
        free(offs);
        offs = NULL;
    }
    if (st == SL_PUBLISH_NO_LEASE) {
        int held = 0;
        if (sl_lease_acquire(s->lease, s->redis, &held, err, sizeof err) == SL_OK && held) {
            sl_log(SL_LOG_WARN, "lease re-acquired after it lapsed", SL_STR("model", s->name));
            return 0; /* publish again, now holding it */
        }
        sl_log(SL_LOG_ERROR, "snapshot refused: the lease is no longer ours",
               SL_STR("model", s->name));
        pthread_mutex_lock(&s->mu);
        s->lease_lost = 1;
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    if (st == SL_PUBLISH_STALE && head == 0 && j->parent != 0) {
        /* Redis lost every version (restarted without persistence, flushed):
         * this worker holds the only state; publish it as a new root. */
        sl_log(SL_LOG_ERROR, "head is gone from redis: publishing this state as a new root",
               SL_STR("model", s->name), SL_U64("parent_was", j->parent));
        j->version_floor = j->parent;
        j->parent = 0;
        return 0;
    }
    if (st == SL_PUBLISH_STALE) {
        sl_log(SL_LOG_WARN, "snapshot refused: head moved; dropping this lineage",
               SL_STR("model", s->name), SL_U64("parent", j->parent), SL_U64("head", head));
        follow_head(s);
        return 1;
    }
    s->known_head = v;
    sl_log(SL_LOG_INFO, "snapshot published", SL_STR("model", s->name), SL_U64("version", v),
           SL_U64("parent", j->parent), SL_U64("step", j->step), SL_U64("samples", j->samples),
           SL_U64("bytes", j->len), SL_U64("ms", sl_now_ms() - t0));
    pthread_mutex_lock(&s->mu);
    s->status.published++;
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    s->status.snapshot_seconds =
        (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9;
    s->status.parent = j->parent;
    sl_store_note_lineage(&s->status, v, j->parent);
    free(s->done_offs);
    s->done_offs = offs;
    s->done_n = j->n;
    s->done_version = v;
    s->have_done = 1;
    pthread_mutex_unlock(&s->mu);
    return 1;
}

void *sl_store_writer_main(void *arg) {
    sl_store_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->job_state == JOB_PENDING) {
            job_t j = s->job;
            memset(&s->job, 0, sizeof s->job);
            s->job_state = JOB_RUNNING;
            int final = s->stopping;
            pthread_mutex_unlock(&s->mu);
            int finished = run_job(s, &j);
            pthread_mutex_lock(&s->mu);
            if (finished || final || s->job_state == JOB_PENDING) {
                /* done, or superseded by a newer job while writing */
                if (finished)
                    s->finished_job = j.id;
                sl_store_job_clear(&j);
                if (s->job_state == JOB_RUNNING)
                    s->job_state = JOB_NONE;
            } else {
                s->job = j; /* retry after a pause */
                s->job_state = JOB_PENDING;
            }
            pthread_cond_broadcast(&s->cv);
            if (!finished && !final) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += (long)s->c.poll_ms * 1000000L;
                ts.tv_sec += ts.tv_nsec / 1000000000L;
                ts.tv_nsec %= 1000000000L;
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            }
            continue;
        }
        if (s->stopping)
            break; /* a pending job was tried once more above */
        uint64_t now = sl_now_ms();
        int renew_due = !s->c.follower && now - s->last_renew_ms >= s->c.lease_ttl_ms / 3;
        int poll_due = now - s->last_poll_ms >= s->c.poll_ms;
        if (renew_due || poll_due) {
            pthread_mutex_unlock(&s->mu);
            if (renew_due)
                renew_lease(s);
            if (poll_due)
                follow_head(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        ts.tv_sec += ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
