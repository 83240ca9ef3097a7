/* join_read.c - the delayed-label join's read-outs: counters, delay quantiles, memory,
 * recovery offsets, and the debug check. */

#include <math.h>
#include <string.h>

#include "consumer/join_internal.h"

/* The middle of bucket b. */
static int64_t hist_value(int b) {
    if (b < 16)
        return b;
    int e = (b - 16) / 8 + 4, sub = (b - 16) % 8;
    int64_t lo = (int64_t)(8 + sub) << (e - 3), width = (int64_t)1 << (e - 3);
    return lo + width / 2;
}

static void add_counts(sl_join_counts_t *a, const sl_join_counts_t *b) {
    a->added += b->added;
    a->matched += b->matched;
    a->expired += b->expired;
    a->expired_cap += b->expired_cap;
    a->unmatched += b->unmatched;
    a->unmatched_cap += b->unmatched_cap;
    a->duplicate += b->duplicate;
    a->dup_features += b->dup_features;
    a->lost += b->lost;
}

static int64_t quantile(const uint64_t *hist, uint64_t total, double q) {
    if (total == 0)
        return -1;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank == 0)
        rank = 1;
    uint64_t cum = 0;
    for (int b = 0; b < HIST_N; b++) {
        cum += hist[b];
        if (cum >= rank)
            return hist_value(b);
    }
    return hist_value(HIST_N - 1);
}

void sl_join_stats(const sl_join_t *j, sl_join_stats_t *st) {
    memset(st, 0, sizeof(*st));
    uint64_t hist[HIST_N] = {0}, total = 0;
    uint64_t mem = sizeof(*j) + j->nshards * sizeof(shard_t *) + j->ready.cap +
                   j->parked_cap * sizeof(parked_t);
    for (size_t i = 0; i < j->nshards; i++) {
        const shard_t *sh = j->shards[i];
        if (!sh)
            continue;
        st->partitions++;
        st->rebuilding += sh->rebuilding != 0;
        st->pending += sl_keylog_count(sh->feat);
        st->held += sl_keylog_count(sh->lab);
        add_counts(&st->c, &sh->c);
        if (sh->hist)
            for (int b = 0; b < HIST_N; b++)
                hist[b] += sh->hist[b];
        st->memory_ids += sl_join_ids_memory(&sh->m);
        mem += sizeof(*sh) + sl_keylog_memory(sh->feat) + sl_keylog_memory(sh->lab) +
               sl_join_ids_memory(&sh->m) + (sh->hist ? HIST_N * 8 : 0) +
               sh->plan.n * (sizeof(plan_ent_t) + (size_t)j->cfg.out_dim * 4);
    }
    for (size_t i = 0; i < j->nparked; i++) {
        const parked_t *pk = &j->parked[i];
        add_counts(&st->c, &pk->c);
        if (pk->hist)
            for (int b = 0; b < HIST_N; b++)
                hist[b] += pk->hist[b];
        mem += pk->len + (pk->hist ? HIST_N * 8 : 0);
    }
    for (int b = 0; b < HIST_N; b++)
        total += hist[b];
    st->pending_bytes = j->feat_bytes;
    st->held_bytes = j->lab_bytes;
    st->ready = j->ready_count;
    st->matched_ids = j->matched_ids;
    st->memory = mem;
    st->rebuilt = j->rebuilt;
    st->delay_p50 = quantile(hist, total, 0.50);
    st->delay_p99 = quantile(hist, total, 0.99);
}

int64_t sl_join_oldest_offset(const sl_join_t *j, int32_t p) {
    const shard_t *sh = sl_join_shard(j, p);
    if (!sh)
        return SL_JOIN_OFFSET_NONE;
    int64_t best = SL_JOIN_OFFSET_NONE;
    sl_keylog_iter_t it;
    sl_keylog_iter_init(sh->feat, &it);
    sl_keylog_rec_t *r = sl_keylog_iter_next(&it); /* records are in offset order */
    if (r)
        memcpy(&best, sl_keylog_payload(r), 8);
    if (sh->rebuilding && sh->plan.cur < sh->plan.n &&
        (best == SL_JOIN_OFFSET_NONE || sh->plan.e[sh->plan.cur].offset < best))
        best = sh->plan.e[sh->plan.cur].offset;
    for (size_t off = j->ready_head; off < j->ready.len;) {
        const ready_hdr_t *h = (const ready_hdr_t *)(j->ready.data + off);
        if (h->partition == p && (best == SL_JOIN_OFFSET_NONE || h->offset < best))
            best = h->offset;
        off += h->stride;
    }
    return best;
}

int64_t sl_join_label_next(const sl_join_t *j, int32_t p) {
    const shard_t *sh = sl_join_shard(j, p);
    return sh ? sh->label_next : SL_JOIN_OFFSET_NONE;
}

int sl_join_rebuilding(const sl_join_t *j, int32_t p) {
    const shard_t *sh = sl_join_shard(j, p);
    return sh && sh->rebuilding;
}

int64_t sl_join_live_from(const sl_join_t *j, int32_t p) {
    const shard_t *sh = sl_join_shard(j, p);
    return sh && sh->rebuilding ? sh->live_from : SL_JOIN_OFFSET_NONE;
}

/* ---- debug check ---- */

int sl_join_check(const sl_join_t *j, char *errstr, size_t errstr_size) {
    uint64_t fb = 0, lb = 0, mids = 0;
    char why[160];
    for (size_t i = 0; i < j->nshards; i++) {
        const shard_t *sh = j->shards[i];
        if (!sh)
            continue;
        if (sh->partition != (int32_t)i) {
            sl_errstr_set(errstr, errstr_size, "shard %zu: partition %d", i, sh->partition);
            return -1;
        }
        if (sl_keylog_check(sh->feat, why, sizeof(why)) ||
            sl_keylog_check(sh->lab, why, sizeof(why))) {
            sl_errstr_set(errstr, errstr_size, "partition %zu: %s", i, why);
            return -1;
        }
        fb += sl_keylog_bytes(sh->feat);
        lb += sl_keylog_bytes(sh->lab);
        mids += sh->m.count;
        sl_keylog_iter_t it;
        sl_keylog_iter_init(sh->feat, &it);
        int64_t po = -1;
        uint32_t ps = 0;
        for (sl_keylog_rec_t *r; (r = sl_keylog_iter_next(&it));) {
            sl_join_sample_t s;
            sl_join_feat_view(j, sh->partition, r, &s);
            if (s.offset < po || (s.offset == po && s.sub <= ps)) {
                sl_errstr_set(errstr, errstr_size, "partition %zu: features out of order at %lld",
                              i, (long long)s.offset);
                return -1;
            }
            po = s.offset;
            ps = s.sub;
            if (sl_join_ids_has(&sh->m, sl_keylog_hash(s.id, s.id_len))) {
                sl_errstr_set(errstr, errstr_size, "partition %zu: a pending id is also matched",
                              i);
                return -1;
            }
        }
        for (uint32_t k = 0; k < sh->m.count; k++) {
            const mid_t *e = &sh->m.ring[((uint64_t)sh->m.head + k) % sh->m.cap];
            if (!sl_join_ids_has(&sh->m, e->hash)) {
                sl_errstr_set(errstr, errstr_size, "partition %zu: matched id %u not indexed", i,
                              k);
                return -1;
            }
        }
        if (!sh->rebuilding && sh->plan.n) {
            sl_errstr_set(errstr, errstr_size, "partition %zu: a plan without a rebuild", i);
            return -1;
        }
    }
    if (fb != j->feat_bytes || lb != j->lab_bytes || mids != j->matched_ids) {
        sl_errstr_set(errstr, errstr_size, "byte or id accounting is off");
        return -1;
    }
    size_t n = 0;
    for (size_t off = j->ready_head; off < j->ready.len; n++) {
        const ready_hdr_t *h = (const ready_hdr_t *)(j->ready.data + off);
        if (h->stride < sizeof(*h) || h->stride > j->ready.len - off ||
            !sl_join_shard(j, h->partition)) {
            sl_errstr_set(errstr, errstr_size, "ready pair %zu is broken", n);
            return -1;
        }
        off += h->stride;
    }
    if (n != j->ready_count) {
        sl_errstr_set(errstr, errstr_size, "ready count %zu, counted %zu", j->ready_count, n);
        return -1;
    }
    return 0;
}
