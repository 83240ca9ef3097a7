/* join_state.c - the delayed-label join's saved form, and restoring and rebuilding from it. */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "consumer/join_internal.h"

/* The saved form (all integers little-endian; "var" is LEB128, "zz" a zigzag var):
 *
 *   "SLJN" | u32 format (1) | u32 dim | u32 out_dim | u32 sections | sections | u64 xxh64
 *
 * The checksum (seed 0) covers every byte before it. A section is one partition:
 *
 *   u32 body length | zz partition | zz label_next | 9 var counters (sl_join_counts_t order)
 *   | var buckets, then per non-empty delay bucket: var bucket, var count (increasing)
 *   | var features, each: u8 flags (1: ready) | zz offset delta | var sub | zz time delta
 *       | f32 pred[out_dim] | ready only: f32 y | f32 w | zz label offset | zz label delay
 *   | var labels, each: zz offset delta | zz time delta | f32 y | f32 w | var id length | id
 *   | var matched ids, each: u64 hash | zz time delta
 *
 * Deltas are from the previous entry of the same list (the first from 0). Features are in
 * increasing (offset, sub) order; they hold no feature values: a restore gets those by
 * re-reading the input, which is what keeps the saved form at a few bytes per sample. */

#define MAGIC "SLJN"
#define FORMAT 1u
#define N_COUNTERS 9

/* ---- writing ---- */

typedef struct wr {
    sl_buf_t *b;
    int failed;
} wr_t;

static void w_bytes(wr_t *w, const void *p, size_t n) {
    if (!w->failed && sl_buf_append(w->b, p, n) != SL_OK)
        w->failed = 1;
}

static void w_u32(wr_t *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    w_bytes(w, b, 4);
}

static void w_u64(wr_t *w, uint64_t v) {
    w_u32(w, (uint32_t)v);
    w_u32(w, (uint32_t)(v >> 32));
}

static void w_f32(wr_t *w, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    w_u32(w, u);
}

static void w_var(wr_t *w, uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    w_bytes(w, b, n);
}

static void w_zz(wr_t *w, int64_t v) {
    w_var(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static uint64_t *counter_ptr(sl_join_counts_t *c, int i) {
    uint64_t *f[N_COUNTERS] = {&c->added,       &c->matched,      &c->expired,
                               &c->expired_cap, &c->unmatched,    &c->unmatched_cap,
                               &c->duplicate,   &c->dup_features, &c->lost};
    return f[i];
}

/* One pending sample as the save writes it, from any of its three sources. */
typedef struct sent {
    int64_t offset, time;
    uint32_t sub;
    int ready;
    float y, w;
    int64_t label_offset, label_time;
    const float *pred;
} sent_t;

static int sent_before(const sent_t *a, const sent_t *b) {
    return a->offset < b->offset || (a->offset == b->offset && a->sub < b->sub);
}

static int cmp_ready(const void *a, const void *b) {
    const ready_hdr_t *x = *(const ready_hdr_t *const *)a, *y = *(const ready_hdr_t *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->sub < y->sub ? -1 : x->sub > y->sub;
}

/* The three sorted sources of a shard's pending samples, merged. */
typedef struct merge {
    const sl_join_t *j;
    const shard_t *sh;
    sl_keylog_iter_t it;
    sl_keylog_rec_t *rec; /* next from the log */
    size_t plan_i;
    const ready_hdr_t **ready;
    size_t nready, ready_i;
} merge_t;

static void from_rec(const merge_t *m, sent_t *e) {
    const uint8_t *p = sl_keylog_payload(m->rec);
    memset(e, 0, sizeof(*e));
    memcpy(&e->offset, p, 8);
    memcpy(&e->sub, p + 8, 4);
    e->time = m->rec->time;
    e->pred = (const float *)(p + FEAT_FIXED);
}

static void from_plan(const merge_t *m, sent_t *e) {
    const plan_ent_t *pe = &m->sh->plan.e[m->plan_i];
    *e = (sent_t){.offset = pe->offset,
                  .time = pe->time,
                  .sub = pe->sub,
                  .ready = (int)pe->ready,
                  .y = pe->y,
                  .w = pe->w,
                  .label_offset = pe->label_offset,
                  .label_time = pe->label_time,
                  .pred = m->sh->plan.pred + m->plan_i * m->j->cfg.out_dim};
}

static void from_ready(const merge_t *m, sent_t *e) {
    const ready_hdr_t *h = m->ready[m->ready_i];
    *e = (sent_t){.offset = h->offset,
                  .time = h->time,
                  .sub = h->sub,
                  .ready = 1,
                  .y = h->y,
                  .w = h->w,
                  .label_offset = h->label_offset,
                  .label_time = h->label_time,
                  .pred = (const float *)(h + 1)};
}

/* The next pending sample in (offset, sub) order; 0 when all are out. */
static int merge_next(merge_t *m, sent_t *out) {
    sent_t c[3];
    int have[3] = {0, 0, 0}, best = -1;
    if (m->rec)
        from_rec(m, &c[0]), have[0] = 1;
    if (m->sh->rebuilding && m->plan_i < m->sh->plan.n)
        from_plan(m, &c[1]), have[1] = 1;
    if (m->ready_i < m->nready)
        from_ready(m, &c[2]), have[2] = 1;
    for (int i = 0; i < 3; i++)
        if (have[i] && (best < 0 || sent_before(&c[i], &c[best])))
            best = i;
    if (best < 0)
        return 0;
    *out = c[best];
    if (best == 0)
        m->rec = sl_keylog_iter_next(&m->it);
    else if (best == 1)
        m->plan_i++;
    else
        m->ready_i++;
    return 1;
}

sl_err_t sl_join_write_section(const sl_join_t *j, const shard_t *sh, sl_buf_t *out) {
    size_t len0 = out->len;
    wr_t w = {out, 0};
    merge_t m = {.j = j, .sh = sh, .plan_i = sh->plan.cur};
    for (size_t off = j->ready_head; off < j->ready.len;) {
        const ready_hdr_t *h = (const ready_hdr_t *)(j->ready.data + off);
        m.nready += h->partition == sh->partition;
        off += h->stride;
    }
    if (m.nready) {
        m.ready = malloc(m.nready * sizeof(*m.ready));
        if (!m.ready)
            return SL_ERR_NOMEM;
        size_t k = 0;
        for (size_t off = j->ready_head; off < j->ready.len;) {
            const ready_hdr_t *h = (const ready_hdr_t *)(j->ready.data + off);
            if (h->partition == sh->partition)
                m.ready[k++] = h;
            off += h->stride;
        }
        qsort(m.ready, m.nready, sizeof(*m.ready), cmp_ready);
    }
    sl_keylog_iter_init(sh->feat, &m.it);
    m.rec = sl_keylog_iter_next(&m.it);

    w_u32(&w, 0); /* body length, patched below */
    w_zz(&w, sh->partition);
    w_zz(&w, sh->label_next);
    for (int i = 0; i < N_COUNTERS; i++)
        w_var(&w, *counter_ptr((sl_join_counts_t *)&sh->c, i));
    size_t nb = 0;
    for (int b = 0; sh->hist && b < HIST_N; b++)
        nb += sh->hist[b] != 0;
    w_var(&w, nb);
    for (int b = 0; sh->hist && b < HIST_N; b++) {
        if (sh->hist[b]) {
            w_var(&w, (uint64_t)b);
            w_var(&w, sh->hist[b]);
        }
    }
    size_t nfeat =
        sl_keylog_count(sh->feat) + m.nready + (sh->rebuilding ? sh->plan.n - sh->plan.cur : 0);
    w_var(&w, nfeat);
    sent_t e;
    int64_t po = 0, pt = 0;
    size_t written = 0;
    while (merge_next(&m, &e)) {
        uint8_t flags = e.ready ? 1 : 0;
        w_bytes(&w, &flags, 1);
        w_zz(&w, (int64_t)((uint64_t)e.offset - (uint64_t)po));
        w_var(&w, e.sub);
        w_zz(&w, (int64_t)((uint64_t)e.time - (uint64_t)pt));
        for (uint32_t k = 0; k < j->cfg.out_dim; k++)
            w_f32(&w, e.pred[k]);
        if (e.ready) {
            w_f32(&w, e.y);
            w_f32(&w, e.w);
            w_zz(&w, e.label_offset);
            w_zz(&w, (int64_t)((uint64_t)e.label_time - (uint64_t)e.time));
        }
        po = e.offset;
        pt = e.time;
        written++;
    }
    free(m.ready);

    w_var(&w, sl_keylog_count(sh->lab));
    sl_keylog_iter_t it;
    sl_keylog_iter_init(sh->lab, &it);
    po = pt = 0;
    for (sl_keylog_rec_t *r; (r = sl_keylog_iter_next(&it));) {
        lab_t l;
        memcpy(&l, sl_keylog_payload(r), sizeof(l));
        w_zz(&w, (int64_t)((uint64_t)l.offset - (uint64_t)po));
        w_zz(&w, (int64_t)((uint64_t)r->time - (uint64_t)pt));
        w_f32(&w, l.y);
        w_f32(&w, l.w);
        w_var(&w, r->id_len);
        w_bytes(&w, sl_keylog_id(r), r->id_len);
        po = l.offset;
        pt = r->time;
    }
    w_var(&w, sh->m.count);
    pt = 0;
    for (uint32_t k = 0; k < sh->m.count; k++) {
        const mid_t *e2 = &sh->m.ring[((uint64_t)sh->m.head + k) % sh->m.cap];
        w_u64(&w, e2->hash);
        w_zz(&w, (int64_t)((uint64_t)e2->time - (uint64_t)pt));
        pt = e2->time;
    }
    size_t body = out->len - len0 - 4;
    if (w.failed || written != nfeat || body > UINT32_MAX) {
        out->len = len0;
        return w.failed ? SL_ERR_NOMEM : SL_ERR_STATE;
    }
    uint8_t *lp = out->data + len0;
    lp[0] = (uint8_t)body, lp[1] = (uint8_t)(body >> 8), lp[2] = (uint8_t)(body >> 16),
    lp[3] = (uint8_t)(body >> 24);
    return SL_OK;
}

sl_err_t sl_join_save(const sl_join_t *j, sl_buf_t *out) {
    size_t len0 = out->len;
    wr_t w = {out, 0};
    uint32_t nsec = (uint32_t)j->nparked;
    for (size_t i = 0; i < j->nshards; i++)
        nsec += j->shards[i] != NULL;
    w_bytes(&w, MAGIC, 4);
    w_u32(&w, FORMAT);
    w_u32(&w, j->cfg.dim);
    w_u32(&w, j->cfg.out_dim);
    w_u32(&w, nsec);
    sl_err_t err = w.failed ? SL_ERR_NOMEM : SL_OK;
    for (size_t i = 0; i < j->nshards && err == SL_OK; i++)
        if (j->shards[i])
            err = sl_join_write_section(j, j->shards[i], out);
    for (size_t i = 0; i < j->nparked && err == SL_OK; i++)
        w_bytes(&w, j->parked[i].bytes, j->parked[i].len);
    if (err == SL_OK && !w.failed)
        w_u64(&w, XXH64(out->data + len0, out->len - len0, 0));
    if (err == SL_OK && w.failed)
        err = SL_ERR_NOMEM;
    if (err != SL_OK)
        out->len = len0;
    return err;
}

/* ---- reading ---- */

typedef struct rd {
    const uint8_t *p, *end, *start;
    sl_err_t err;
    char *errstr;
    size_t errstr_size;
} rd_t;

static int r_fail(rd_t *r, sl_err_t err, const char *what) {
    if (r->err == SL_OK) {
        r->err = err;
        sl_errstr_set(r->errstr, r->errstr_size, "join state: %s at byte %zu", what,
                      (size_t)(r->p - r->start));
    }
    return 0;
}

static int r_bytes(rd_t *r, const uint8_t **p, size_t n, const char *what) {
    if ((size_t)(r->end - r->p) < n)
        return r_fail(r, SL_ERR_TRUNCATED, what);
    *p = r->p;
    r->p += n;
    return 1;
}

static int r_u32(rd_t *r, uint32_t *v, const char *what) {
    const uint8_t *b;
    if (!r_bytes(r, &b, 4, what))
        return 0;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static int r_u64(rd_t *r, uint64_t *v, const char *what) {
    uint32_t lo, hi;
    if (!r_u32(r, &lo, what) || !r_u32(r, &hi, what))
        return 0;
    *v = (uint64_t)hi << 32 | lo;
    return 1;
}

static int r_f32(rd_t *r, float *f, const char *what) {
    uint32_t u;
    if (!r_u32(r, &u, what))
        return 0;
    memcpy(f, &u, 4);
    return 1;
}

static int r_var(rd_t *r, uint64_t *v, const char *what) {
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->p == r->end)
            return r_fail(r, SL_ERR_TRUNCATED, what);
        uint8_t b = *r->p++;
        if (shift == 63 && b > 1)
            return r_fail(r, SL_ERR_DECODE, what);
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return r_fail(r, SL_ERR_DECODE, what);
}

static int r_zz(rd_t *r, int64_t *v, const char *what) {
    uint64_t u;
    if (!r_var(r, &u, what))
        return 0;
    *v = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return 1;
}

/* A count of entries of at least `min` bytes each, checked against the bytes left, so no
 * allocation is ever sized by a number the bytes could not back. */
static int r_count(rd_t *r, uint64_t *n, size_t min, const char *what) {
    if (!r_var(r, n, what))
        return 0;
    if (*n > (uint64_t)(r->end - r->p) / min)
        return r_fail(r, SL_ERR_DECODE, what);
    return 1;
}

static int good_weight(float y, float w) {
    return isfinite(y) && isfinite(w) && w > 0.0f;
}

/* Reads a section body into a new detached shard for partition p. */
static shard_t *parse_body(const sl_join_t *j, int32_t p, rd_t *r, int64_t live_from) {
    shard_t *sh = sl_join_shard_alloc(p);
    if (!sh) {
        r->err = SL_ERR_NOMEM;
        sl_errstr_set(r->errstr, r->errstr_size, "join state: out of memory");
        return NULL;
    }
    int64_t part, v;
    uint64_t u, n;
    if (!r_zz(r, &part, "partition") || !r_zz(r, &sh->label_next, "label offset"))
        goto fail;
    if (part != p) {
        r_fail(r, SL_ERR_DECODE, "section of another partition");
        goto fail;
    }
    for (int i = 0; i < N_COUNTERS; i++)
        if (!r_var(r, counter_ptr(&sh->c, i), "counters"))
            goto fail;
    if (!r_count(r, &n, 2, "delay histogram"))
        goto fail;
    if (n) {
        if (n > HIST_N || !(sh->hist = calloc(HIST_N, sizeof(*sh->hist)))) {
            r_fail(r, n > HIST_N ? SL_ERR_DECODE : SL_ERR_NOMEM, "delay histogram");
            goto fail;
        }
        int prev = -1;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t cnt;
            if (!r_var(r, &u, "delay bucket") || !r_var(r, &cnt, "delay count"))
                goto fail;
            if (u >= HIST_N || (int)u <= prev) {
                r_fail(r, SL_ERR_DECODE, "delay buckets out of order");
                goto fail;
            }
            sh->hist[u] = cnt;
            prev = (int)u;
        }
    }

    uint32_t k = j->cfg.out_dim;
    if (!r_count(r, &n, 4 + (size_t)k * 4, "pending samples"))
        goto fail;
    if (n) {
        sh->plan.e = malloc(n * sizeof(*sh->plan.e));
        sh->plan.pred = malloc(n * (size_t)k * sizeof(float));
        if (!sh->plan.e || !sh->plan.pred) {
            r_fail(r, SL_ERR_NOMEM, "pending samples");
            goto fail;
        }
    }
    int64_t po = 0, pt = 0;
    for (uint64_t i = 0; i < n; i++) {
        plan_ent_t *e = &sh->plan.e[i];
        const uint8_t *flags;
        int64_t doff, dt;
        uint64_t sub;
        memset(e, 0, sizeof(*e));
        if (!r_bytes(r, &flags, 1, "pending sample") || !r_zz(r, &doff, "pending offset") ||
            !r_var(r, &sub, "pending index") || !r_zz(r, &dt, "pending time"))
            goto fail;
        if (*flags > 1 || sub > UINT32_MAX) {
            r_fail(r, SL_ERR_DECODE, "pending sample flags");
            goto fail;
        }
        e->offset = (int64_t)((uint64_t)po + (uint64_t)doff);
        e->time = (int64_t)((uint64_t)pt + (uint64_t)dt);
        e->sub = (uint32_t)sub;
        e->ready = *flags;
        for (uint32_t q = 0; q < k; q++)
            if (!r_f32(r, &sh->plan.pred[i * k + q], "served prediction"))
                goto fail;
        if (e->ready) {
            int64_t dl;
            if (!r_f32(r, &e->y, "label") || !r_f32(r, &e->w, "label") ||
                !r_zz(r, &e->label_offset, "label offset") || !r_zz(r, &dl, "label delay"))
                goto fail;
            e->label_time = (int64_t)((uint64_t)e->time + (uint64_t)dl);
            if (!good_weight(e->y, e->w) || e->label_offset < 0) {
                r_fail(r, SL_ERR_DECODE, "matched label");
                goto fail;
            }
        }
        if (e->offset < 0 ||
            (i > 0 && !(e->offset > po || (e->offset == po && e->sub > sh->plan.e[i - 1].sub)))) {
            r_fail(r, SL_ERR_DECODE, "pending samples out of order");
            goto fail;
        }
        if (live_from < 0 || e->offset >= live_from) {
            r_fail(r, SL_ERR_RANGE, "a pending offset at or past the resume offset");
            goto fail;
        }
        po = e->offset;
        pt = e->time;
    }
    sh->plan.n = (size_t)n;

    if (!r_count(r, &n, 12, "waiting labels"))
        goto fail;
    po = pt = 0;
    for (uint64_t i = 0; i < n; i++) {
        int64_t doff, dt;
        lab_t l;
        const uint8_t *id;
        if (!r_zz(r, &doff, "label offset") || !r_zz(r, &dt, "label time") ||
            !r_f32(r, &l.y, "label") || !r_f32(r, &l.w, "label") || !r_var(r, &u, "label id"))
            goto fail;
        if (u == 0 || u > SL_JOIN_MAX_ID) {
            r_fail(r, SL_ERR_DECODE, "label id length");
            goto fail;
        }
        if (!r_bytes(r, &id, (size_t)u, "label id"))
            goto fail;
        l.offset = (int64_t)((uint64_t)po + (uint64_t)doff);
        int64_t t = (int64_t)((uint64_t)pt + (uint64_t)dt);
        if (!good_weight(l.y, l.w) || l.offset < 0) {
            r_fail(r, SL_ERR_DECODE, "waiting label");
            goto fail;
        }
        sl_err_t e;
        sl_keylog_rec_t *lr = sl_keylog_append(sh->lab, id, (size_t)u,
                                               sl_keylog_hash(id, (size_t)u), sizeof(l), t, &e);
        if (!lr) {
            r_fail(r, e, "waiting label");
            goto fail;
        }
        memcpy(sl_keylog_payload(lr), &l, sizeof(l));
        po = l.offset;
        pt = t;
    }

    if (!r_count(r, &n, 9, "matched ids"))
        goto fail;
    pt = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t h;
        if (!r_u64(r, &h, "matched id") || !r_zz(r, &v, "matched time"))
            goto fail;
        pt = (int64_t)((uint64_t)pt + (uint64_t)v);
        if (sl_join_ids_add(&sh->m, h, pt) != SL_OK) {
            r_fail(r, SL_ERR_NOMEM, "matched ids");
            goto fail;
        }
    }
    if (r->p != r->end) {
        r_fail(r, SL_ERR_DECODE, "trailing bytes in a section");
        goto fail;
    }
    return sh;
fail:
    sl_join_shard_free(NULL, sh);
    return NULL;
}

/* Finds p's section body in a whole blob (checksum, header, framing checked). Sets *body
 * NULL when the blob holds no section for p. Returns 0 (r->err set) when the blob is bad. */
static int find_section(const sl_join_t *j, rd_t *r, int32_t p, const uint8_t **body,
                        size_t *body_len) {
    *body = NULL;
    size_t len = (size_t)(r->end - r->p);
    if (len < 28)
        return r_fail(r, SL_ERR_TRUNCATED, "shorter than a header");
    if (memcmp(r->p, MAGIC, 4) != 0)
        return r_fail(r, SL_ERR_DECODE, "not a join state (magic)");
    const uint8_t *ck = r->end - 8;
    uint64_t want = (uint64_t)ck[0] | (uint64_t)ck[1] << 8 | (uint64_t)ck[2] << 16 |
                    (uint64_t)ck[3] << 24 | (uint64_t)ck[4] << 32 | (uint64_t)ck[5] << 40 |
                    (uint64_t)ck[6] << 48 | (uint64_t)ck[7] << 56;
    if (XXH64(r->p, len - 8, 0) != want)
        return r_fail(r, SL_ERR_CHECKSUM, "checksum mismatch");
    r->end = ck;
    r->p += 4;
    uint32_t format, dim, out_dim, nsec;
    if (!r_u32(r, &format, "format") || !r_u32(r, &dim, "dim") || !r_u32(r, &out_dim, "out_dim") ||
        !r_u32(r, &nsec, "sections"))
        return 0;
    if (format != FORMAT)
        return r_fail(r, format > FORMAT ? SL_ERR_VERSION : SL_ERR_DECODE, "format version");
    if (dim != j->cfg.dim || out_dim != j->cfg.out_dim)
        return r_fail(r, SL_ERR_MISMATCH, "saved for another dim or output size");
    for (uint32_t i = 0; i < nsec; i++) {
        uint32_t blen;
        const uint8_t *b;
        if (!r_u32(r, &blen, "section length") || !r_bytes(r, &b, blen, "section"))
            return 0;
        rd_t sr = {b, b + blen, r->start, SL_OK, NULL, 0};
        int64_t part;
        if (!r_zz(&sr, &part, "partition"))
            return r_fail(r, SL_ERR_DECODE, "section without a partition");
        if (part == p) {
            if (*body)
                return r_fail(r, SL_ERR_DECODE, "two sections for one partition");
            *body = b;
            *body_len = blen;
        }
    }
    if (r->p != r->end)
        return r_fail(r, SL_ERR_DECODE, "trailing bytes");
    return 1;
}

sl_err_t sl_join_restore(sl_join_t *j, int32_t p, const uint8_t *blob, size_t len,
                         int64_t live_from, sl_join_resume_t *resume, char *errstr,
                         size_t errstr_size) {
    if (p < 0) {
        sl_errstr_set(errstr, errstr_size, "join state: partition %d", p);
        return SL_ERR_INVAL;
    }
    const uint8_t *body = NULL;
    size_t body_len = 0;
    if (blob) {
        rd_t r = {blob, blob + len, blob, SL_OK, errstr, errstr_size};
        if (!find_section(j, &r, p, &body, &body_len))
            return r.err;
    } else {
        for (size_t i = 0; i < j->nparked; i++) {
            if (j->parked[i].partition == p) {
                body = j->parked[i].bytes + 4;
                body_len = j->parked[i].len - 4;
            }
        }
    }
    shard_t *sh;
    if (body) {
        rd_t r = {body, body + body_len, blob ? blob : body, SL_OK, errstr, errstr_size};
        sh = parse_body(j, p, &r, live_from);
        if (!sh)
            return r.err;
    } else {
        sh = sl_join_shard_alloc(p);
        if (!sh) {
            sl_errstr_set(errstr, errstr_size, "join state: out of memory");
            return SL_ERR_NOMEM;
        }
    }
    if (sl_join_table_reserve(j, p) != SL_OK) {
        sl_join_shard_free(j, sh);
        sl_errstr_set(errstr, errstr_size, "join state: out of memory");
        return SL_ERR_NOMEM;
    }
    sl_join_shard_remove(j, p);
    sl_join_unpark(j, p);
    sh->rebuilding = sh->plan.n > 0;
    sh->live_from = sh->rebuilding ? live_from : SL_JOIN_OFFSET_NONE;
    (void)sl_join_shard_install(j, sh); /* the table already reaches p: cannot fail */
    sl_join_trim_matched(j, j->cfg.max_matched_ids);
    sl_join_enforce_caps(j);
    if (resume) {
        resume->input_from = sh->plan.n ? sh->plan.e[0].offset : live_from;
        resume->label_from = sh->label_next;
        resume->planned = sh->plan.n;
    }
    return SL_OK;
}

/* ---- rebuild ---- */

/* Counts saved samples before (offset, sub) as lost. */
static void plan_skip_below(shard_t *sh, int64_t offset, uint32_t sub) {
    while (sh->plan.cur < sh->plan.n) {
        const plan_ent_t *e = &sh->plan.e[sh->plan.cur];
        if (e->offset > offset || (e->offset == offset && e->sub >= sub))
            break;
        sh->c.lost++;
        sh->plan.cur++;
    }
}

int64_t sl_join_rebuild_next(const sl_join_t *j, int32_t p) {
    const shard_t *sh = sl_join_shard(j, p);
    if (!sh || !sh->rebuilding || sh->plan.cur >= sh->plan.n)
        return SL_JOIN_OFFSET_NONE;
    return sh->plan.e[sh->plan.cur].offset;
}

sl_err_t sl_join_rebuild_add(sl_join_t *j, const sl_join_sample_t *s, int64_t now,
                             sl_join_outcome_t *outcome) {
    shard_t *sh = sl_join_shard(j, s->partition);
    if (!sh || !sh->rebuilding || s->offset >= sh->live_from)
        return SL_ERR_STATE;
    sl_join_sample_t c = *s;
    float dummy = 0;
    if (!c.pred)
        c.pred = &dummy; /* the saved prediction is used */
    sl_err_t e = sl_join_check_sample(j, &c);
    if (e != SL_OK)
        return e;
    plan_skip_below(sh, s->offset, s->sub);
    const plan_ent_t *pe = sh->plan.cur < sh->plan.n ? &sh->plan.e[sh->plan.cur] : NULL;
    if (!pe || pe->offset != s->offset || pe->sub != s->sub) {
        *outcome = SL_JOIN_SKIPPED;
        return SL_OK;
    }
    const float *pred = sh->plan.pred + sh->plan.cur * j->cfg.out_dim;
    if (pe->ready) {
        e = sl_join_ready_from_sample(j, sh, &c, pred, pe->time, pe->y, pe->w, pe->label_offset,
                                      pe->label_time, 0, 1);
        if (e == SL_OK)
            *outcome = SL_JOIN_MATCHED;
    } else {
        e = sl_join_keep(j, sh, &c, sl_keylog_hash(c.id, c.id_len), pred, pe->time, now, 1,
                         outcome);
    }
    if (e != SL_OK)
        return e;
    sh->plan.cur++;
    sh->last_offset = s->offset;
    sh->last_sub = s->sub;
    j->rebuilt++;
    return SL_OK;
}

void sl_join_rebuild_seen(sl_join_t *j, int32_t p, int64_t next_offset) {
    shard_t *sh = sl_join_shard(j, p);
    if (!sh || !sh->rebuilding)
        return;
    plan_skip_below(sh, next_offset, 0);
    if (next_offset >= sh->live_from)
        sl_join_end_rebuild(sh);
}
