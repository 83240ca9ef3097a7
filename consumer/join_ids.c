/* join_ids.c - the delayed-label join's memory of matched ids: a FIFO ring of (hash, match
 * time) and a tagged open-addressing set over it, bounded in count and in age. */

#include <stdlib.h>
#include <string.h>

#include "consumer/join_internal.h"

/* The ring is circular over positions 0..cap-1 (entry k, oldest first, at (head + k) % cap)
 * and grows by half; index slots hold a ring position (bit 31 set, so 0 means empty) in the
 * high half and the high 32 bits of the hash in the low half. The home slot comes from those
 * 32 bits, so probes and deletions never read the ring unless the tag matches; the index
 * also grows by half and stays between 1/2 and 3/4 full. About 27-40 bytes per id. */
static inline uint32_t m_tag(uint64_t h) {
    return (uint32_t)(h >> 32);
}

static inline size_t m_home(const matched_t *m, uint32_t tag) {
    return (size_t)(((uint64_t)(uint32_t)(tag * 2654435769u) * m->nidx) >> 32);
}

static inline size_t m_next(const matched_t *m, size_t i) {
    return i + 1 == m->nidx ? 0 : i + 1;
}

static inline uint64_t m_slot(uint32_t pos, uint32_t tag) {
    return (uint64_t)(pos | 0x80000000u) << 32 | tag;
}

static inline const mid_t *m_entry(const matched_t *m, uint64_t slot) {
    return &m->ring[(uint32_t)(slot >> 32) & 0x7fffffffu];
}

/* The oldest remembered entry (count > 0). */
const mid_t *sl_join_ids_oldest(const matched_t *m) {
    return &m->ring[m->head];
}

int sl_join_ids_has(const matched_t *m, uint64_t h) {
    if (m->count == 0)
        return 0;
    uint32_t tag = m_tag(h);
    for (size_t i = m_home(m, tag);; i = m_next(m, i)) {
        uint64_t v = m->idx[i];
        if (v == 0)
            return 0;
        if ((uint32_t)v == tag && m_entry(m, v)->hash == h)
            return 1;
    }
}

static void m_insert_slot(matched_t *m, uint64_t v) {
    size_t i = m_home(m, (uint32_t)v);
    while (m->idx[i] != 0)
        i = m_next(m, i);
    m->idx[i] = v;
}

/* A new index of n slots over the ring as it is. */
static sl_err_t m_reindex(matched_t *m, uint32_t n) {
    uint64_t *idx = calloc(n, sizeof(*idx));
    if (!idx)
        return SL_ERR_NOMEM;
    free(m->idx);
    m->idx = idx;
    m->nidx = n;
    for (uint32_t k = 0; k < m->count; k++) {
        uint32_t pos = (uint32_t)(((uint64_t)m->head + k) % m->cap);
        m_insert_slot(m, m_slot(pos, m_tag(m->ring[pos].hash)));
    }
    return SL_OK;
}

/* Room for one more; on failure nothing changed. */
static sl_err_t m_grow(matched_t *m) {
    uint32_t want_idx = m->nidx;
    if ((uint64_t)(m->count + 1) * 4 > (uint64_t)m->nidx * 3)
        want_idx = m->nidx ? m->nidx + m->nidx / 2 : 64;
    if (m->count < m->cap)
        return want_idx != m->nidx ? m_reindex(m, want_idx) : SL_OK;
    /* the ring grows, positions change, the index is rebuilt */
    uint32_t ncap = m->cap ? m->cap + m->cap / 2 : 32;
    if (ncap > 0x7fffffffu)
        return SL_ERR_NOMEM;
    mid_t *r = malloc((size_t)ncap * sizeof(*r));
    uint64_t *idx = calloc(want_idx, sizeof(*idx));
    if (!r || !idx) {
        free(r);
        free(idx);
        return SL_ERR_NOMEM;
    }
    for (uint32_t k = 0; k < m->count; k++)
        r[k] = m->ring[((uint64_t)m->head + k) % m->cap];
    free(m->ring);
    free(m->idx);
    m->ring = r;
    m->cap = ncap;
    m->head = 0;
    m->idx = idx;
    m->nidx = want_idx;
    for (uint32_t k = 0; k < m->count; k++)
        m_insert_slot(m, m_slot(k, m_tag(r[k].hash)));
    return SL_OK;
}

sl_err_t sl_join_ids_add(matched_t *m, uint64_t h, int64_t t) {
    sl_err_t e = m_grow(m);
    if (e != SL_OK)
        return e;
    uint32_t pos = (uint32_t)(((uint64_t)m->head + m->count) % m->cap);
    m->ring[pos] = (mid_t){h, t};
    m_insert_slot(m, m_slot(pos, m_tag(h)));
    m->count++;
    return SL_OK;
}

/* Forgets the oldest remembered id. */
void sl_join_ids_pop(matched_t *m) {
    uint64_t v = m_slot(m->head, m_tag(m->ring[m->head].hash));
    size_t i = m_home(m, (uint32_t)v);
    while (m->idx[i] != v && m->idx[i] != 0)
        i = m_next(m, i);
    if (m->idx[i] == v) { /* backward-shift deletion */
        size_t jx = i;
        for (;;) {
            jx = m_next(m, jx);
            if (m->idx[jx] == 0)
                break;
            size_t k = m_home(m, (uint32_t)m->idx[jx]);
            int stays = i <= jx ? (i < k && k <= jx) : (i < k || k <= jx);
            if (!stays) {
                m->idx[i] = m->idx[jx];
                i = jx;
            }
        }
        m->idx[i] = 0;
    }
    m->head = m->head + 1 == m->cap ? 0 : m->head + 1;
    m->count--;
    if (m->count) /* the next one to go: start loading its slot now */
        __builtin_prefetch(&m->idx[m_home(m, m_tag(m->ring[m->head].hash))]);
}

void sl_join_ids_free(matched_t *m) {
    free(m->ring);
    free(m->idx);
    memset(m, 0, sizeof(*m));
}

uint64_t sl_join_ids_memory(const matched_t *m) {
    return (uint64_t)m->cap * sizeof(mid_t) + (uint64_t)m->nidx * sizeof(uint64_t);
}

void sl_join_trim_matched(sl_join_t *j, uint64_t limit) {
    while (j->matched_ids > limit) {
        shard_t *oldest = NULL;
        for (size_t i = 0; i < j->nshards; i++) {
            shard_t *s = j->shards[i];
            if (s && s->m.count &&
                (!oldest || sl_join_ids_oldest(&s->m)->time < sl_join_ids_oldest(&oldest->m)->time))
                oldest = s;
        }
        if (!oldest)
            break;
        sl_join_ids_pop(&oldest->m);
        j->matched_ids--;
    }
}

sl_err_t sl_join_remember(sl_join_t *j, shard_t *sh, uint64_t hash, int64_t time) {
    sl_err_t e = sl_join_ids_add(&sh->m, hash, time); /* first: a failure forgets nothing */
    if (e != SL_OK)
        return e;
    j->matched_ids++;
    sl_join_trim_matched(j, j->cfg.max_matched_ids);
    return SL_OK;
}

void sl_join_ids_prefetch(const matched_t *m, uint64_t h) {
    if (m->count)
        __builtin_prefetch(&m->idx[m_home(m, m_tag(h))]);
}
