/* join.c - the delayed-label join's stream side: adds, matches, expiry, caps, pops, stats. */

#include "join.h"

#include <stdlib.h>
#include <string.h>

#include "consumer/join_internal.h"

/* ---- config ---- */

sl_join_t *sl_join_new(const sl_join_config_t *cfg, char *errstr, size_t errstr_size) {
    if (cfg->dim == 0) {
        sl_errstr_set(errstr, errstr_size, "join config: dim must be >= 1");
        return NULL;
    }
    if (cfg->out_dim == 0 || cfg->out_dim > (1u << 20)) {
        sl_errstr_set(errstr, errstr_size, "join config: out_dim must be 1..%u, got %u", 1u << 20,
                      cfg->out_dim);
        return NULL;
    }
    if (cfg->window < 0) {
        sl_errstr_set(errstr, errstr_size, "join config: window must be >= 0, got %lld",
                      (long long)cfg->window);
        return NULL;
    }
    if (cfg->label_wait < 0) {
        sl_errstr_set(errstr, errstr_size, "join config: label_wait must be >= 0, got %lld",
                      (long long)cfg->label_wait);
        return NULL;
    }
    sl_join_t *j = calloc(1, sizeof(*j));
    if (!j) {
        sl_errstr_set(errstr, errstr_size, "join: out of memory");
        return NULL;
    }
    j->cfg = *cfg;
    if (j->cfg.max_bytes == 0)
        j->cfg.max_bytes = SL_JOIN_DEFAULT_MAX_BYTES;
    if (j->cfg.max_label_bytes == 0)
        j->cfg.max_label_bytes = j->cfg.max_bytes / 16 ? j->cfg.max_bytes / 16 : 1;
    if (j->cfg.max_matched_ids == 0)
        j->cfg.max_matched_ids = j->cfg.max_bytes / 256 ? j->cfg.max_bytes / 256 : 1;
    if (j->cfg.max_matched_ids > (1u << 30))
        j->cfg.max_matched_ids = 1u << 30;
    return j;
}

void sl_join_destroy(sl_join_t *j) {
    if (!j)
        return;
    for (size_t i = 0; i < j->nshards; i++)
        sl_join_shard_free(j, j->shards[i]);
    free(j->shards);
    for (size_t i = 0; i < j->nparked; i++) {
        free(j->parked[i].bytes);
        free(j->parked[i].hist);
    }
    free(j->parked);
    sl_buf_free(&j->ready);
    free(j);
}

const sl_join_config_t *sl_join_config(const sl_join_t *j) {
    return &j->cfg;
}

/* ---- time ---- */

/* now - t, or 0 when t is not before now; never overflows (times come from callers and from
 * saved states, so any int64 may show up). */
static inline int64_t age(int64_t now, int64_t t) {
    if (t >= now)
        return 0;
    uint64_t d = (uint64_t)now - (uint64_t)t;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

/* ---- shards ---- */

shard_t *sl_join_shard(const sl_join_t *j, int32_t p) {
    return p >= 0 && (size_t)p < j->nshards ? j->shards[p] : NULL;
}

shard_t *sl_join_shard_alloc(int32_t p) {
    shard_t *sh = calloc(1, sizeof(*sh));
    if (!sh)
        return NULL;
    sh->partition = p;
    sh->feat = sl_keylog_new();
    sh->lab = sl_keylog_new();
    if (!sh->feat || !sh->lab) {
        sl_join_shard_free(NULL, sh);
        return NULL;
    }
    sh->last_offset = -1;
    sh->label_next = SL_JOIN_OFFSET_NONE;
    sh->live_from = SL_JOIN_OFFSET_NONE;
    return sh;
}

sl_err_t sl_join_table_reserve(sl_join_t *j, int32_t p) {
    if ((size_t)p >= j->nshards) {
        size_t n = (size_t)p + 1;
        shard_t **t = realloc(j->shards, n * sizeof(*t));
        if (!t)
            return SL_ERR_NOMEM;
        for (size_t i = j->nshards; i < n; i++)
            t[i] = NULL;
        j->shards = t;
        j->nshards = n;
    }
    return SL_OK;
}

sl_err_t sl_join_shard_install(sl_join_t *j, shard_t *sh) {
    int32_t p = sh->partition;
    if (sl_join_table_reserve(j, p) != SL_OK)
        return SL_ERR_NOMEM;
    j->shards[p] = sh;
    j->feat_bytes += sl_keylog_bytes(sh->feat);
    j->lab_bytes += sl_keylog_bytes(sh->lab);
    j->matched_ids += sh->m.count;
    return SL_OK;
}

shard_t *sl_join_shard_new(sl_join_t *j, int32_t p) {
    shard_t *sh = sl_join_shard_alloc(p);
    if (sh && sl_join_shard_install(j, sh) != SL_OK) {
        sl_join_shard_free(j, sh);
        return NULL;
    }
    return sh;
}

void sl_join_shard_free(sl_join_t *j, shard_t *sh) {
    (void)j;
    if (!sh)
        return;
    sl_keylog_destroy(sh->feat);
    sl_keylog_destroy(sh->lab);
    sl_join_ids_free(&sh->m);
    free(sh->plan.e);
    free(sh->plan.pred);
    free(sh->hist);
    free(sh);
}

/* Drops the ready pairs of partition p from the FIFO, keeping the others in order. */
static void ready_drop_partition(sl_join_t *j, int32_t p) {
    size_t w = j->ready_head, r = j->ready_head;
    while (r < j->ready.len) {
        ready_hdr_t *h = (ready_hdr_t *)(j->ready.data + r);
        size_t st = h->stride;
        if (h->partition == p) {
            j->ready_count--;
        } else {
            if (w != r)
                memmove(j->ready.data + w, h, st);
            w += st;
        }
        r += st;
    }
    j->ready.len = w;
}

void sl_join_shard_remove(sl_join_t *j, int32_t p) {
    shard_t *sh = sl_join_shard(j, p);
    if (!sh)
        return;
    ready_drop_partition(j, p);
    j->feat_bytes -= sl_keylog_bytes(sh->feat);
    j->lab_bytes -= sl_keylog_bytes(sh->lab);
    j->matched_ids -= sh->m.count;
    j->shards[p] = NULL;
    sl_join_shard_free(j, sh);
}

void sl_join_unpark(sl_join_t *j, int32_t p) {
    for (size_t i = 0; i < j->nparked; i++) {
        if (j->parked[i].partition == p) {
            free(j->parked[i].bytes);
            free(j->parked[i].hist);
            j->parked[i] = j->parked[--j->nparked];
            return;
        }
    }
}

sl_err_t sl_join_add_partition(sl_join_t *j, int32_t p) {
    if (p < 0)
        return SL_ERR_INVAL;
    if (sl_join_shard(j, p))
        return SL_ERR_STATE;
    if (!sl_join_shard_new(j, p))
        return SL_ERR_NOMEM;
    sl_join_unpark(j, p);
    return SL_OK;
}

sl_err_t sl_join_drop_partition(sl_join_t *j, int32_t p) {
    shard_t *sh = sl_join_shard(j, p);
    if (!sh)
        return SL_OK;
    sl_err_t err = SL_ERR_NOMEM;
    sl_buf_t sec = {0};
    if (j->nparked == j->parked_cap) {
        size_t cap = j->parked_cap ? j->parked_cap * 2 : 8;
        parked_t *pk = realloc(j->parked, cap * sizeof(*pk));
        if (pk) {
            j->parked = pk;
            j->parked_cap = cap;
        }
    }
    if (j->nparked < j->parked_cap && sl_join_write_section(j, sh, &sec) == SL_OK) {
        uint64_t *hist = NULL;
        if (sh->hist && (hist = malloc(HIST_N * sizeof(*hist))))
            memcpy(hist, sh->hist, HIST_N * sizeof(*hist));
        if (!sh->hist || hist) {
            j->parked[j->nparked++] = (parked_t){
                .partition = p, .bytes = sec.data, .len = sec.len, .c = sh->c, .hist = hist};
            sec.data = NULL;
            err = SL_OK;
        }
    }
    sl_buf_free(&sec);
    sl_join_shard_remove(j, p);
    return err;
}

int sl_join_has_partition(const sl_join_t *j, int32_t p) {
    return sl_join_shard(j, p) != NULL;
}

/* ---- records ---- */

static size_t feat_payload_len(const sl_join_t *j, const sl_join_sample_t *s) {
    size_t n = FEAT_FIXED + (size_t)j->cfg.out_dim * 4;
    return s->dense ? n + (size_t)j->cfg.dim * 4 : n + 4 + s->nnz * 8;
}

static void feat_fill(const sl_join_t *j, sl_keylog_rec_t *r, const sl_join_sample_t *s,
                      const float *pred) {
    uint8_t *p = sl_keylog_payload(r);
    memcpy(p, &s->offset, 8);
    memcpy(p + 8, &s->sub, 4);
    memcpy(p + FEAT_FIXED, pred, (size_t)j->cfg.out_dim * 4);
    p += FEAT_FIXED + (size_t)j->cfg.out_dim * 4;
    if (s->dense) {
        memcpy(p, s->dense, (size_t)j->cfg.dim * 4);
    } else {
        uint32_t nnz = (uint32_t)s->nnz;
        memcpy(p, &nnz, 4);
        if (nnz) {
            memcpy(p + 4, s->col, (size_t)nnz * 4);
            memcpy(p + 4 + (size_t)nnz * 4, s->val, (size_t)nnz * 4);
        }
        r->user = FEAT_SPARSE;
    }
}

/* A view of a feature record as a sample (pointers into the record). */
void sl_join_feat_view(const sl_join_t *j, int32_t partition, sl_keylog_rec_t *r,
                       sl_join_sample_t *s) {
    const uint8_t *p = sl_keylog_payload(r);
    memset(s, 0, sizeof(*s));
    s->partition = partition;
    memcpy(&s->offset, p, 8);
    memcpy(&s->sub, p + 8, 4);
    s->pred = (const float *)(p + FEAT_FIXED);
    p += FEAT_FIXED + (size_t)j->cfg.out_dim * 4;
    if (!(r->user & FEAT_SPARSE)) {
        s->dense = (const float *)p;
    } else {
        uint32_t nnz;
        memcpy(&nnz, p, 4);
        s->nnz = nnz;
        s->col = (const uint32_t *)(p + 4);
        s->val = (const float *)(p + 4 + (size_t)nnz * 4);
    }
    s->id = sl_keylog_id(r);
    s->id_len = r->id_len;
}

sl_err_t sl_join_check_sample(const sl_join_t *j, const sl_join_sample_t *s) {
    if (!s->id || s->id_len == 0 || s->id_len > SL_JOIN_MAX_ID || s->offset < 0 || !s->pred)
        return SL_ERR_INVAL;
    if (!s->dense) {
        if (s->nnz > UINT32_MAX / 8 || (s->nnz && (!s->col || !s->val)))
            return SL_ERR_INVAL;
        for (size_t i = 0; i < s->nnz; i++)
            if (s->col[i] >= j->cfg.dim)
                return SL_ERR_INVAL;
    }
    return SL_OK;
}

int sl_join_hist_bucket(int64_t v) {
    if (v < 16)
        return v < 0 ? 0 : (int)v;
    int e = 63 - __builtin_clzll((unsigned long long)v);
    return 16 + (e - 4) * 8 + (int)((v >> (e - 3)) & 7);
}

static void count_delay(shard_t *sh, int64_t delay) {
    if (!sh->hist)
        sh->hist = calloc(HIST_N, sizeof(*sh->hist));
    if (sh->hist) /* without memory for it, the delay goes uncounted: no error for that */
        sh->hist[sl_join_hist_bucket(delay)]++;
}

/* ---- the ready FIFO ---- */

static size_t ready_stride(const sl_join_t *j, const sl_join_sample_t *s) {
    size_t n = sizeof(ready_hdr_t) + (size_t)j->cfg.out_dim * 4 +
               (s->dense ? (size_t)j->cfg.dim * 4 : s->nnz * 8) + s->id_len;
    return (n + 7) & ~(size_t)7;
}

sl_err_t sl_join_ready_from_sample(sl_join_t *j, shard_t *sh, const sl_join_sample_t *s,
                                   const float *pred, int64_t time, float y, float w,
                                   int64_t label_offset, int64_t label_time, uint64_t hash,
                                   int restored) {
    size_t st = ready_stride(j, s);
    if (st > UINT32_MAX)
        return SL_ERR_INVAL;
    if (j->ready_count == 0) {
        j->ready.len = j->ready_head = 0;
    } else if (j->ready_head > 65536 && j->ready_head * 2 > j->ready.len) {
        memmove(j->ready.data, j->ready.data + j->ready_head, j->ready.len - j->ready_head);
        j->ready.len -= j->ready_head;
        j->ready_head = 0;
    }
    if (sl_buf_reserve(&j->ready, st) != SL_OK)
        return SL_ERR_NOMEM;
    if (!restored && sl_join_remember(j, sh, hash, label_time > time ? label_time : time))
        return SL_ERR_NOMEM;
    uint8_t *p = j->ready.data + j->ready.len;
    ready_hdr_t *h = (ready_hdr_t *)p;
    *h = (ready_hdr_t){.partition = sh->partition,
                       .sub = s->sub,
                       .offset = s->offset,
                       .time = time,
                       .label_offset = label_offset,
                       .label_time = label_time,
                       .y = y,
                       .w = w,
                       .nnz = s->dense ? UINT32_MAX : (uint32_t)s->nnz,
                       .id_len = (uint32_t)s->id_len,
                       .stride = (uint32_t)st};
    p += sizeof(*h);
    memcpy(p, pred, (size_t)j->cfg.out_dim * 4);
    p += (size_t)j->cfg.out_dim * 4;
    if (s->dense) {
        memcpy(p, s->dense, (size_t)j->cfg.dim * 4);
        p += (size_t)j->cfg.dim * 4;
    } else if (s->nnz) {
        memcpy(p, s->col, s->nnz * 4);
        memcpy(p + s->nnz * 4, s->val, s->nnz * 4);
        p += s->nnz * 8;
    }
    memcpy(p, s->id, s->id_len);
    j->ready.len += st;
    j->ready_count++;
    if (!restored) {
        sh->c.matched++;
        count_delay(sh, age(label_time, time));
    }
    return SL_OK;
}

size_t sl_join_ready(const sl_join_t *j) {
    return j->ready_count;
}

sl_err_t sl_join_pop(sl_join_t *j, sl_batch_t *b, float *served, size_t max, uint64_t tag,
                     sl_join_pair_t *pairs, size_t *n) {
    *n = 0;
    if (b->dim != j->cfg.dim)
        return SL_ERR_MISMATCH;
    uint32_t k = j->cfg.out_dim;
    sl_err_t err = SL_OK;
    while (*n < max && j->ready_count > 0) {
        const ready_hdr_t *h = (const ready_hdr_t *)(j->ready.data + j->ready_head);
        const uint8_t *p = (const uint8_t *)(h + 1);
        const float *pred = (const float *)p;
        p += (size_t)k * 4;
        const uint8_t *id;
        if (h->nnz == UINT32_MAX) {
            id = p + (size_t)j->cfg.dim * 4;
            err = sl_batch_push_dense(b, (const float *)p, h->y, h->w, 1, tag, id, h->id_len);
        } else {
            id = p + (size_t)h->nnz * 8;
            err = sl_batch_push_sparse(b, (const uint32_t *)p, (const float *)(p + h->nnz * 4),
                                       h->nnz, h->y, h->w, 1, tag, id, h->id_len);
        }
        if (err != SL_OK)
            break;
        memcpy(served + *n * k, pred, (size_t)k * 4);
        if (pairs) {
            int64_t d = age(h->label_time, h->time);
            pairs[*n] = (sl_join_pair_t){.partition = h->partition,
                                         .offset = h->offset,
                                         .sub = h->sub,
                                         .label_offset = h->label_offset,
                                         .delay = d > 0 ? d : 0};
        }
        j->ready_head += h->stride;
        j->ready_count--;
        (*n)++;
    }
    if (j->ready_count == 0)
        j->ready.len = j->ready_head = 0;
    return err;
}

/* ---- caps ---- */

static void pop_feature(sl_join_t *j, shard_t *sh, int cap) {
    sl_keylog_rec_t *r = sl_keylog_oldest(sh->feat);
    if (!r)
        return;
    j->feat_bytes -= sl_keylog_stride(r);
    sl_keylog_pop(sh->feat);
    sh->c.expired++;
    if (cap)
        sh->c.expired_cap++;
}

static void pop_label(sl_join_t *j, shard_t *sh, int cap) {
    sl_keylog_rec_t *r = sl_keylog_oldest(sh->lab);
    if (!r)
        return;
    j->lab_bytes -= sl_keylog_stride(r);
    sl_keylog_pop(sh->lab);
    sh->c.unmatched++;
    if (cap)
        sh->c.unmatched_cap++;
}

/* The shard whose oldest record in the chosen log is the oldest of all. */
static shard_t *oldest_shard(sl_join_t *j, int labels) {
    shard_t *best = NULL;
    int64_t best_t = 0;
    for (size_t i = 0; i < j->nshards; i++) {
        shard_t *sh = j->shards[i];
        if (!sh)
            continue;
        sl_keylog_rec_t *r = sl_keylog_oldest(labels ? sh->lab : sh->feat);
        if (r && (!best || r->time < best_t)) {
            best = sh;
            best_t = r->time;
        }
    }
    return best;
}

void sl_join_enforce_caps(sl_join_t *j) {
    while (j->feat_bytes > j->cfg.max_bytes) {
        shard_t *sh = oldest_shard(j, 0);
        if (!sh)
            break;
        pop_feature(j, sh, 1);
    }
    while (j->lab_bytes > j->cfg.max_label_bytes) {
        shard_t *sh = oldest_shard(j, 1);
        if (!sh)
            break;
        pop_label(j, sh, 1);
    }
}

/* ---- adds ---- */

static int labels_expire(const shard_t *sh) {
    return !sh->rebuilding; /* while rebuilding, labels wait for the re-read features */
}

sl_err_t sl_join_keep(sl_join_t *j, shard_t *sh, const sl_join_sample_t *s, uint64_t h,
                      const float *pred, int64_t time, int64_t now, int rebuild,
                      sl_join_outcome_t *outcome) {
    if (!rebuild && (sl_keylog_find(sh->feat, s->id, s->id_len, h) || sl_join_ids_has(&sh->m, h))) {
        sh->c.dup_features++;
        *outcome = SL_JOIN_DUPLICATE;
        return SL_OK;
    }
    sl_keylog_rec_t *lr = sl_keylog_find(sh->lab, s->id, s->id_len, h);
    if (lr && labels_expire(sh) && age(now, lr->time) > j->cfg.label_wait) {
        j->lab_bytes -= sl_keylog_stride(lr);
        sl_keylog_remove(sh->lab, lr, h);
        sh->c.unmatched++;
        lr = NULL;
    }
    if (lr) {
        lab_t l;
        memcpy(&l, sl_keylog_payload(lr), sizeof(l));
        sl_err_t e =
            sl_join_ready_from_sample(j, sh, s, pred, time, l.y, l.w, l.offset, lr->time, h, 0);
        if (e != SL_OK)
            return e;
        j->lab_bytes -= sl_keylog_stride(lr);
        sl_keylog_remove(sh->lab, lr, h);
        if (!rebuild)
            sh->c.added++;
        *outcome = SL_JOIN_MATCHED;
        return SL_OK;
    }
    size_t plen = feat_payload_len(j, s);
    uint64_t st = (sizeof(sl_keylog_rec_t) + plen + s->id_len + 7) & ~(uint64_t)7;
    if (st > j->cfg.max_bytes) {
        if (!rebuild)
            sh->c.added++;
        sh->c.expired++;
        sh->c.expired_cap++;
        *outcome = SL_JOIN_TOO_BIG;
        return SL_OK;
    }
    sl_err_t e;
    sl_keylog_rec_t *r = sl_keylog_append(sh->feat, s->id, s->id_len, h, plen, time, &e);
    if (!r)
        return e;
    feat_fill(j, r, s, pred);
    j->feat_bytes += sl_keylog_stride(r);
    if (!rebuild)
        sh->c.added++;
    *outcome = SL_JOIN_PENDING;
    sl_join_enforce_caps(j);
    return SL_OK;
}

void sl_join_end_rebuild(shard_t *sh) {
    if (!sh->rebuilding)
        return;
    sh->c.lost += sh->plan.n - sh->plan.cur;
    free(sh->plan.e);
    free(sh->plan.pred);
    memset(&sh->plan, 0, sizeof(sh->plan));
    sh->rebuilding = 0;
    sh->live_from = SL_JOIN_OFFSET_NONE;
}

static sl_err_t add_features_h(sl_join_t *j, const sl_join_sample_t *s, uint64_t h, int64_t now,
                               sl_join_outcome_t *outcome) {
    shard_t *sh = sl_join_shard(j, s->partition);
    if (!sh)
        return SL_ERR_STATE;
    sl_err_t e = sl_join_check_sample(j, s);
    if (e != SL_OK)
        return e;
    if (sh->rebuilding) {
        if (s->offset < sh->live_from)
            return SL_ERR_STATE;
        sl_join_end_rebuild(sh);
    }
    if (sh->last_offset >= 0 &&
        (s->offset < sh->last_offset || (s->offset == sh->last_offset && s->sub <= sh->last_sub)))
        return SL_ERR_RANGE;
    e = sl_join_keep(j, sh, s, h, s->pred, now, now, 0, outcome);
    if (e == SL_OK) {
        sh->last_offset = s->offset;
        sh->last_sub = s->sub;
    }
    return e;
}

sl_err_t sl_join_add_features(sl_join_t *j, const sl_join_sample_t *s, int64_t now,
                              sl_join_outcome_t *outcome) {
    if (!s->id)
        return SL_ERR_INVAL;
    return add_features_h(j, s, sl_keylog_hash(s->id, s->id_len), now, outcome);
}

sl_err_t sl_join_sample_from_batch(const sl_batch_t *b, size_t slot, sl_join_sample_t *s) {
    if (slot >= sl_batch_slots(b))
        return SL_ERR_INVAL;
    sl_slot_view_t v;
    sl_batch_slot(b, slot, &v);
    if (!v.good || v.id_len == 0)
        return SL_ERR_INVAL;
    s->id = v.id;
    s->id_len = v.id_len;
    if (!b->sparse) {
        s->dense = b->dense + v.row * b->dim;
        s->col = NULL;
        s->val = NULL;
        s->nnz = 0;
    } else {
        size_t a = b->row_ptr[v.row], z = b->row_ptr[v.row + 1];
        s->dense = NULL;
        s->col = b->col + a;
        s->val = b->val + a;
        s->nnz = z - a;
    }
    return SL_OK;
}

static sl_err_t add_label_h(sl_join_t *j, const sl_join_label_t *l, uint64_t h, int64_t now,
                            sl_join_outcome_t *outcome) {
    shard_t *sh = sl_join_shard(j, l->partition);
    if (!sh)
        return SL_ERR_STATE;
    if (!l->id || l->id_len == 0 || l->id_len > SL_JOIN_MAX_ID || l->offset < 0)
        return SL_ERR_INVAL;
    sl_keylog_rec_t *fr = sl_keylog_find(sh->feat, l->id, l->id_len, h);
    if (fr && age(now, fr->time) > j->cfg.window) {
        j->feat_bytes -= sl_keylog_stride(fr);
        sl_keylog_remove(sh->feat, fr, h);
        sh->c.expired++;
        fr = NULL;
    }
    sl_err_t e = SL_OK;
    if (fr) {
        sl_join_sample_t s;
        sl_join_feat_view(j, sh->partition, fr, &s);
        e = sl_join_ready_from_sample(j, sh, &s, s.pred, fr->time, l->y, l->w, l->offset, now, h,
                                      0);
        if (e != SL_OK)
            return e;
        j->feat_bytes -= sl_keylog_stride(fr);
        sl_keylog_remove(sh->feat, fr, h);
        *outcome = SL_JOIN_MATCHED;
    } else if (sl_join_ids_has(&sh->m, h)) {
        sh->c.duplicate++;
        *outcome = SL_JOIN_DUPLICATE;
    } else {
        sl_keylog_rec_t *lr = sl_keylog_find(sh->lab, l->id, l->id_len, h);
        if (lr && labels_expire(sh) && age(now, lr->time) > j->cfg.label_wait) {
            j->lab_bytes -= sl_keylog_stride(lr);
            sl_keylog_remove(sh->lab, lr, h);
            sh->c.unmatched++;
            lr = NULL;
        }
        if (lr) {
            sh->c.duplicate++;
            *outcome = SL_JOIN_DUPLICATE;
        } else if (j->cfg.label_wait == 0 && labels_expire(sh)) {
            sh->c.unmatched++;
            *outcome = SL_JOIN_UNMATCHED;
        } else {
            lab_t pl = {.offset = l->offset, .y = l->y, .w = l->w};
            lr = sl_keylog_append(sh->lab, l->id, l->id_len, h, sizeof(pl), now, &e);
            if (!lr)
                return e;
            memcpy(sl_keylog_payload(lr), &pl, sizeof(pl));
            j->lab_bytes += sl_keylog_stride(lr);
            *outcome = SL_JOIN_HELD;
            sl_join_enforce_caps(j);
        }
    }
    if (sh->label_next < l->offset + 1)
        sh->label_next = l->offset + 1;
    return SL_OK;
}

sl_err_t sl_join_add_label(sl_join_t *j, const sl_join_label_t *l, int64_t now,
                           sl_join_outcome_t *outcome) {
    if (!l->id)
        return SL_ERR_INVAL;
    return add_label_h(j, l, sl_keylog_hash(l->id, l->id_len), now, outcome);
}

/* ---- groups ---- */

/* A group is a software pipeline: while entry k is processed - exactly as a single call
 * would, in order - the lookups of the entries after it are under way, a stage of LOOKAHEAD
 * entries apart for each dependent load (index slots, then the record they point at, then
 * what removing it touches). Prefetches change nothing, so the outcome is the same. */
#define LOOKAHEAD 8
#define RING (4 * LOOKAHEAD)

sl_err_t sl_join_add_features_n(sl_join_t *j, const sl_join_sample_t *s, size_t n, int64_t now,
                                sl_join_outcome_t *outcomes, size_t *done) {
    uint64_t h[RING];
    for (size_t k = 0; k < n + LOOKAHEAD; k++) {
        if (k < n) {
            const sl_join_sample_t *x = &s[k];
            h[k % RING] = x->id ? sl_keylog_hash(x->id, x->id_len) : 0;
            const shard_t *sh = sl_join_shard(j, x->partition);
            if (sh) {
                sl_keylog_prefetch(sh->feat, h[k % RING]);
                sl_keylog_prefetch(sh->lab, h[k % RING]);
                sl_join_ids_prefetch(&sh->m, h[k % RING]);
            }
        }
        if (k >= LOOKAHEAD) {
            size_t i = k - LOOKAHEAD;
            sl_err_t e =
                s[i].id ? add_features_h(j, &s[i], h[i % RING], now, &outcomes[i]) : SL_ERR_INVAL;
            if (e != SL_OK) {
                *done = i;
                return e;
            }
        }
    }
    *done = n;
    return SL_OK;
}

sl_err_t sl_join_add_labels_n(sl_join_t *j, const sl_join_label_t *l, size_t n, int64_t now,
                              sl_join_outcome_t *outcomes, size_t *done) {
    uint64_t h[RING];
    for (size_t k = 0; k < n + 3 * LOOKAHEAD; k++) {
        if (k < n) {
            h[k % RING] = l[k].id ? sl_keylog_hash(l[k].id, l[k].id_len) : 0;
            const shard_t *sh = sl_join_shard(j, l[k].partition);
            if (sh) {
                sl_keylog_prefetch(sh->feat, h[k % RING]);
                sl_join_ids_prefetch(&sh->m, h[k % RING]);
            }
        }
        if (k >= LOOKAHEAD && k - LOOKAHEAD < n) { /* its index slots are in: the record */
            size_t i = k - LOOKAHEAD;
            const shard_t *sh = sl_join_shard(j, l[i].partition);
            if (sh)
                sl_keylog_prefetch_record(sh->feat, h[i % RING]);
        }
        if (k >= 2 * LOOKAHEAD && k - 2 * LOOKAHEAD < n) { /* the record is in: its neighbours */
            size_t i = k - 2 * LOOKAHEAD;
            const shard_t *sh = sl_join_shard(j, l[i].partition);
            if (sh)
                sl_keylog_prefetch_neighbours(sh->feat, h[i % RING]);
        }
        if (k >= 3 * LOOKAHEAD) {
            size_t i = k - 3 * LOOKAHEAD;
            sl_err_t e =
                l[i].id ? add_label_h(j, &l[i], h[i % RING], now, &outcomes[i]) : SL_ERR_INVAL;
            if (e != SL_OK) {
                *done = i;
                return e;
            }
        }
    }
    *done = n;
    return SL_OK;
}

void sl_join_label_seen(sl_join_t *j, int32_t p, int64_t next_offset) {
    shard_t *sh = sl_join_shard(j, p);
    if (sh && sh->label_next < next_offset)
        sh->label_next = next_offset;
}

void sl_join_expire(sl_join_t *j, int64_t now) {
    for (size_t i = 0; i < j->nshards; i++) {
        shard_t *sh = j->shards[i];
        if (!sh)
            continue;
        sl_keylog_rec_t *r;
        while ((r = sl_keylog_oldest(sh->feat)) && age(now, r->time) > j->cfg.window)
            pop_feature(j, sh, 0);
        while (labels_expire(sh) && (r = sl_keylog_oldest(sh->lab)) &&
               age(now, r->time) > j->cfg.label_wait)
            pop_label(j, sh, 0);
        while (sh->m.count && age(now, sl_join_ids_oldest(&sh->m)->time) > j->cfg.window) {
            sl_join_ids_pop(&sh->m);
            j->matched_ids--;
        }
    }
}
