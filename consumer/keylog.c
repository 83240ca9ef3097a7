/* keylog.c - arrival-ordered records in segments, an open-addressing index by id, a cleaner. */

#include "keylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SEG_MIN 4096u
#define SEG_MAX 65536u /* normal segments; a record larger than this gets a segment of its own */
#define OFF_BITS 13    /* offset / 8 within a normal segment */
#define OFF_MASK ((1u << OFF_BITS) - 1)
/* Segment table indices 0 .. MAX_SEGS - 1, so no reference is ever UINT32_MAX (EMPTY). */
#define MAX_SEGS ((1u << (32 - OFF_BITS)) - 1)
#define EMPTY UINT32_MAX
#define MIN_SLOTS 16u

typedef struct seg {
    struct seg *prev, *next; /* append order */
    uint32_t cap;            /* data bytes */
    uint32_t head;           /* records before head were popped */
    uint32_t used;           /* bytes appended */
    uint32_t live;           /* bytes of live records in [head, used) */
    uint32_t idx;            /* slot in the segment table */
    uint32_t pad;
    uint8_t data[]; /* at offset 40: 8-aligned */
} seg_t;

typedef struct slot {
    uint32_t ref; /* segment index << OFF_BITS | offset / 8; EMPTY for a free slot */
    uint32_t h32; /* low 32 bits of the id hash: the home slot comes from it */
} slot_t;

struct sl_keylog {
    seg_t *first, *last;
    seg_t **tab; /* segment table: index -> segment (NULL when free) */
    uint32_t *free_idx;
    uint32_t tab_cap, tab_top, nfree;
    slot_t *slots;
    size_t nslots; /* a power of two >= MIN_SLOTS, or 0 before the first append */
    unsigned shift;
    size_t count;
    uint64_t live_bytes, dead_bytes, seg_bytes, cap_bytes;
    /* The cleaner's pass: the next segment to look at, and the segment receiving the live
     * records moved so far (it sits just before clean_cur). */
    seg_t *clean_cur, *clean_out;
    int cleaning;
};

uint64_t sl_keylog_hash(const uint8_t *id, size_t len) {
    return XXH3_64bits(id, len);
}

static inline sl_keylog_rec_t *at(const seg_t *s, uint32_t off) {
    return (sl_keylog_rec_t *)(s->data + off);
}

static inline uint32_t ref_of(const seg_t *s, uint32_t off) {
    return s->idx << OFF_BITS | off >> 3;
}

static inline seg_t *ref_seg(const sl_keylog_t *kl, uint32_t ref) {
    return kl->tab[ref >> OFF_BITS];
}

static inline sl_keylog_rec_t *deref(const sl_keylog_t *kl, uint32_t ref) {
    return at(ref_seg(kl, ref), (ref & OFF_MASK) << 3);
}

/* Fibonacci hashing of the stored 32 bits, so the whole h32 filters candidates. */
static inline size_t home(const sl_keylog_t *kl, uint32_t h32) {
    return (size_t)((uint32_t)(h32 * 2654435769u) >> kl->shift);
}

sl_keylog_t *sl_keylog_new(void) {
    return calloc(1, sizeof(sl_keylog_t));
}

void sl_keylog_destroy(sl_keylog_t *kl) {
    if (!kl)
        return;
    for (seg_t *s = kl->first, *n; s; s = n) {
        n = s->next;
        free(s);
    }
    free(kl->tab);
    free(kl->free_idx);
    free(kl->slots);
    free(kl);
}

/* ---- segments ---- */

static uint32_t pow2_at_least(uint64_t v) {
    uint32_t p = SEG_MIN;
    while (p < v && p < SEG_MAX)
        p <<= 1;
    return p;
}

/* Normal segments grow with the log (about 1/32 of its bytes, 4-64 KiB), so the free tail of
 * the last one stays small both for a tiny log and for a large one. */
static uint32_t seg_size_for(const sl_keylog_t *kl, uint32_t stride) {
    uint32_t c = pow2_at_least(kl->cap_bytes / 32);
    return c >= stride ? c : pow2_at_least(stride);
}

static seg_t *alloc_seg(sl_keylog_t *kl, uint32_t cap) {
    uint32_t idx;
    if (kl->nfree > 0) {
        idx = kl->free_idx[--kl->nfree];
    } else {
        if (kl->tab_top >= MAX_SEGS)
            return NULL;
        if (kl->tab_top == kl->tab_cap) {
            uint32_t ncap = kl->tab_cap ? kl->tab_cap * 2 : 16;
            if (ncap > MAX_SEGS)
                ncap = MAX_SEGS;
            seg_t **t = realloc(kl->tab, (size_t)ncap * sizeof(*t));
            if (!t)
                return NULL;
            kl->tab = t;
            uint32_t *f = realloc(kl->free_idx, (size_t)ncap * sizeof(*f));
            if (!f)
                return NULL;
            kl->free_idx = f;
            kl->tab_cap = ncap;
        }
        idx = kl->tab_top++;
        kl->tab[idx] = NULL;
    }
    seg_t *s = malloc(sizeof(seg_t) + cap);
    if (!s) {
        kl->free_idx[kl->nfree++] = idx;
        return NULL;
    }
    s->prev = s->next = NULL;
    s->cap = cap;
    s->head = s->used = s->live = 0;
    s->idx = idx;
    s->pad = 0;
    kl->tab[idx] = s;
    kl->seg_bytes += sizeof(seg_t) + cap;
    kl->cap_bytes += cap;
    return s;
}

static void link_last(sl_keylog_t *kl, seg_t *s) {
    s->prev = kl->last;
    s->next = NULL;
    if (kl->last)
        kl->last->next = s;
    else
        kl->first = s;
    kl->last = s;
}

static void link_before(sl_keylog_t *kl, seg_t *s, seg_t *before) {
    s->next = before;
    s->prev = before->prev;
    if (before->prev)
        before->prev->next = s;
    else
        kl->first = s;
    before->prev = s;
}

static void free_seg(sl_keylog_t *kl, seg_t *s) {
    if (kl->clean_cur == s)
        kl->clean_cur = s->next;
    if (kl->clean_out == s)
        kl->clean_out = NULL;
    if (s->prev)
        s->prev->next = s->next;
    else
        kl->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        kl->last = s->prev;
    kl->dead_bytes -= s->used - s->head - s->live;
    kl->live_bytes -= s->live;
    kl->seg_bytes -= sizeof(seg_t) + s->cap;
    kl->cap_bytes -= s->cap;
    kl->tab[s->idx] = NULL;
    kl->free_idx[kl->nfree++] = s->idx;
    free(s);
}

/* ---- index ---- */

static sl_err_t index_resize(sl_keylog_t *kl, size_t n) {
    slot_t *ns = malloc(n * sizeof(*ns));
    if (!ns)
        return SL_ERR_NOMEM;
    memset(ns, 0xff, n * sizeof(*ns));
    slot_t *old = kl->slots;
    size_t oldn = kl->nslots;
    unsigned shift = 32;
    for (size_t v = n; v > 1; v >>= 1)
        shift--;
    kl->slots = ns;
    kl->nslots = n;
    kl->shift = shift;
    for (size_t i = 0; i < oldn; i++) {
        if (old[i].ref == EMPTY)
            continue;
        size_t j = home(kl, old[i].h32);
        while (ns[j].ref != EMPTY)
            j = (j + 1) & (n - 1);
        ns[j] = old[i];
    }
    free(old);
    return SL_OK;
}

/* The slot holding ref, searched from the home of h32; nslots when absent (a bug). */
static size_t index_slot_of(const sl_keylog_t *kl, uint32_t h32, uint32_t ref) {
    size_t mask = kl->nslots - 1;
    for (size_t i = home(kl, h32);; i = (i + 1) & mask) {
        if (kl->slots[i].ref == ref)
            return i;
        if (kl->slots[i].ref == EMPTY)
            return kl->nslots;
    }
}

/* Empties slot i, shifting later members of its probe run back so lookups never stop early. */
static void index_delete_at(sl_keylog_t *kl, size_t i) {
    size_t mask = kl->nslots - 1;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (kl->slots[j].ref == EMPTY)
            break;
        size_t k = home(kl, kl->slots[j].h32);
        /* slot j may move to i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            kl->slots[i] = kl->slots[j];
            i = j;
        }
    }
    kl->slots[i].ref = EMPTY;
    kl->slots[i].h32 = 0;
}

static void index_unlink(sl_keylog_t *kl, uint32_t h32, uint32_t ref) {
    size_t i = index_slot_of(kl, h32, ref);
    if (i < kl->nslots)
        index_delete_at(kl, i);
}

static void maybe_shrink(sl_keylog_t *kl) {
    if (kl->nslots > MIN_SLOTS && kl->count * 8 < kl->nslots)
        (void)index_resize(kl, kl->nslots / 2); /* failing leaves it larger: harmless */
}

/* ---- cleaning ---- */

static void end_pass(sl_keylog_t *kl) {
    kl->cleaning = 0;
    kl->clean_cur = kl->clean_out = NULL;
}

/* Bytes that hold nothing live: dead records, space popped at the front, free tails of
 * segments other than the last (which appends fill). */
static uint64_t waste(const sl_keylog_t *kl) {
    uint64_t w = kl->cap_bytes - kl->live_bytes;
    return kl->last ? w - (kl->last->cap - kl->last->used) : w;
}

/* A pass starts when waste is over a quarter of the live bytes (a fifth of the total) and
 * more than what a packed log always has (a partly filled output, the popped front). */
static int over_threshold(const sl_keylog_t *kl) {
    uint64_t w = waste(kl);
    return w * 4 > kl->live_bytes && w > 4 * (uint64_t)seg_size_for(kl, 8);
}

/* One step of a pass that packs the log from the front, one segment per step: leading
 * segments without gaps stay where they are; from the first gap on, every live record slides
 * forward, in order, into the output segment (the free tail of the last packed segment, or a
 * fresh segment linked just before the one being emptied), and emptied segments are freed. A
 * record's own large segment stays where it is (the output closes before it). Order is kept
 * because the output only ever precedes the segment it takes records from. */
static void clean_step(sl_keylog_t *kl) {
    if (!kl->cleaning) {
        if (!over_threshold(kl))
            return;
        kl->cleaning = 1;
        kl->clean_cur = kl->first;
        kl->clean_out = NULL;
    }
    seg_t *s = kl->clean_cur;
    if (!s || s == kl->last) {
        end_pass(kl);
        return;
    }
    if (s->live == 0) {
        free_seg(kl, s); /* moves clean_cur on */
        return;
    }
    if (s->cap > SEG_MAX) {
        kl->clean_out = NULL;
        kl->clean_cur = s->next;
        return;
    }
    if (!kl->clean_out && s->used - s->head == s->live) { /* packed: stays */
        kl->clean_out = s->cap - s->used >= 8 ? s : NULL;
        kl->clean_cur = s->next;
        return;
    }
    for (uint32_t off = s->head; off < s->used;) {
        sl_keylog_rec_t *r = at(s, off);
        uint32_t st = sl_keylog_stride(r);
        if (r->live) {
            seg_t *o = kl->clean_out;
            if (!o || o->cap - o->used < st) {
                o = alloc_seg(kl, seg_size_for(kl, st));
                if (!o) { /* out of memory: stop here, everything is still consistent */
                    end_pass(kl);
                    return;
                }
                link_before(kl, o, s);
                kl->clean_out = o;
            }
            uint32_t h32 = (uint32_t)sl_keylog_hash(sl_keylog_id(r), r->id_len);
            size_t i = index_slot_of(kl, h32, ref_of(s, off));
            memcpy(o->data + o->used, r, st);
            if (i < kl->nslots)
                kl->slots[i].ref = ref_of(o, o->used);
            o->used += st;
            o->live += st;
            s->live -= st;
            r->live = 0;
            kl->dead_bytes += st;
        }
        off += st;
    }
    free_seg(kl, s);
}

void sl_keylog_compact(sl_keylog_t *kl, size_t steps) {
    for (size_t i = 0; i < steps && (kl->cleaning || over_threshold(kl)); i++)
        clean_step(kl);
}

/* ---- records ---- */

sl_keylog_rec_t *sl_keylog_append(sl_keylog_t *kl, const uint8_t *id, size_t id_len, uint64_t hash,
                                  size_t payload_len, int64_t time, sl_err_t *err) {
    sl_err_t dummy;
    if (!err)
        err = &dummy;
    if (id_len == 0 || id_len > SL_KEYLOG_MAX_ID ||
        payload_len > UINT32_MAX - 64 - sizeof(sl_keylog_rec_t) - id_len) {
        *err = SL_ERR_INVAL;
        return NULL;
    }
    uint32_t size = (uint32_t)(sizeof(sl_keylog_rec_t) + payload_len + id_len);
    uint32_t st = (size + 7u) & ~7u;
    clean_step(kl);
    if ((kl->count + 1) * 4 > kl->nslots * 3 &&
        index_resize(kl, kl->nslots ? kl->nslots * 2 : MIN_SLOTS) != SL_OK) {
        *err = SL_ERR_NOMEM;
        return NULL;
    }
    seg_t *s = kl->last;
    if (!s || s->cap > SEG_MAX || s->cap - s->used < st) {
        s = alloc_seg(kl, st > SEG_MAX ? st : seg_size_for(kl, st));
        if (!s) {
            *err = SL_ERR_NOMEM;
            return NULL;
        }
        link_last(kl, s);
    }
    if (kl->clean_out == s)
        kl->clean_out = NULL; /* new records must never precede ones the cleaner moves later */
    uint32_t off = s->used;
    sl_keylog_rec_t *r = at(s, off);
    r->size = size;
    r->id_len = (uint16_t)id_len;
    r->live = 1;
    r->user = 0;
    r->time = time;
    memcpy((uint8_t *)r + size - id_len, id, id_len);
    s->used += st;
    s->live += st;
    kl->live_bytes += st;
    kl->count++;
    uint32_t h32 = (uint32_t)hash;
    size_t mask = kl->nslots - 1;
    size_t i = home(kl, h32);
    while (kl->slots[i].ref != EMPTY)
        i = (i + 1) & mask;
    kl->slots[i].ref = ref_of(s, off);
    kl->slots[i].h32 = h32;
    *err = SL_OK;
    return r;
}

sl_keylog_rec_t *sl_keylog_find(const sl_keylog_t *kl, const uint8_t *id, size_t id_len,
                                uint64_t hash) {
    if (kl->count == 0)
        return NULL;
    uint32_t h32 = (uint32_t)hash;
    size_t mask = kl->nslots - 1;
    for (size_t i = home(kl, h32);; i = (i + 1) & mask) {
        const slot_t *sl = &kl->slots[i];
        if (sl->ref == EMPTY)
            return NULL;
        if (sl->h32 == h32) {
            sl_keylog_rec_t *r = deref(kl, sl->ref);
            if (r->id_len == id_len && memcmp(sl_keylog_id(r), id, id_len) == 0)
                return r;
        }
    }
}

/* Index slot of record r (which must be live and indexed), searched from its hash. */
static size_t slot_of_rec(const sl_keylog_t *kl, const sl_keylog_rec_t *r, uint32_t h32) {
    size_t mask = kl->nslots - 1;
    for (size_t i = home(kl, h32);; i = (i + 1) & mask) {
        uint32_t ref = kl->slots[i].ref;
        if (ref == EMPTY)
            return kl->nslots;
        if (deref(kl, ref) == r)
            return i;
    }
}

void sl_keylog_remove(sl_keylog_t *kl, sl_keylog_rec_t *r, uint64_t hash) {
    size_t i = slot_of_rec(kl, r, (uint32_t)hash);
    if (i == kl->nslots || !r->live)
        return; /* not ours or already gone */
    seg_t *s = ref_seg(kl, kl->slots[i].ref);
    index_delete_at(kl, i);
    uint32_t st = sl_keylog_stride(r);
    r->live = 0;
    s->live -= st;
    kl->live_bytes -= st;
    kl->dead_bytes += st;
    kl->count--;
    maybe_shrink(kl);
}

sl_keylog_rec_t *sl_keylog_oldest(sl_keylog_t *kl) {
    seg_t *s = kl->first;
    while (s) {
        while (s->head < s->used) {
            sl_keylog_rec_t *r = at(s, s->head);
            if (r->live)
                return r;
            uint32_t st = sl_keylog_stride(r);
            s->head += st;
            kl->dead_bytes -= st;
        }
        seg_t *n = s->next;
        if (s == kl->last && s->cap <= SEG_MAX) {
            s->head = s->used = 0; /* keep the empty tail for the next append */
            if (kl->clean_out == s)
                kl->clean_out = NULL;
            return NULL;
        }
        free_seg(kl, s);
        s = n;
    }
    return NULL;
}

void sl_keylog_pop(sl_keylog_t *kl) {
    sl_keylog_rec_t *r = sl_keylog_oldest(kl);
    if (!r)
        return;
    seg_t *s = kl->first; /* oldest() left the record at the head of the first segment */
    uint32_t h32 = (uint32_t)sl_keylog_hash(sl_keylog_id(r), r->id_len);
    index_unlink(kl, h32, ref_of(s, s->head));
    uint32_t st = sl_keylog_stride(r);
    r->live = 0;
    s->head += st;
    s->live -= st;
    kl->live_bytes -= st;
    kl->count--;
    maybe_shrink(kl);
}

size_t sl_keylog_count(const sl_keylog_t *kl) {
    return kl->count;
}

uint64_t sl_keylog_bytes(const sl_keylog_t *kl) {
    return kl->live_bytes;
}

uint64_t sl_keylog_memory(const sl_keylog_t *kl) {
    return sizeof(*kl) + kl->seg_bytes +
           (uint64_t)kl->tab_cap * (sizeof(seg_t *) + sizeof(uint32_t)) +
           (uint64_t)kl->nslots * sizeof(slot_t);
}

void sl_keylog_iter_init(const sl_keylog_t *kl, sl_keylog_iter_t *it) {
    it->seg = kl->first;
    it->off = kl->first ? kl->first->head : 0;
}

sl_keylog_rec_t *sl_keylog_iter_next(sl_keylog_iter_t *it) {
    const seg_t *s = it->seg;
    while (s) {
        while (it->off < s->used) {
            sl_keylog_rec_t *r = at(s, it->off);
            it->off += sl_keylog_stride(r);
            if (r->live)
                return r;
        }
        s = s->next;
        it->seg = s;
        it->off = s ? s->head : 0;
    }
    return NULL;
}

/* ---- debug check ---- */

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            if (errstr && errstr_size)                                                             \
                snprintf(errstr, errstr_size, __VA_ARGS__);                                        \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int sl_keylog_check(const sl_keylog_t *kl, char *errstr, size_t errstr_size) {
    uint64_t live = 0, dead = 0, segb = 0;
    size_t count = 0, nseg = 0;
    const seg_t *prev = NULL;
    int saw_cur = kl->clean_cur == NULL, saw_out = kl->clean_out == NULL;
    for (const seg_t *s = kl->first; s; prev = s, s = s->next) {
        nseg++;
        CHECK(s->prev == prev, "segment %zu: broken back link", nseg);
        CHECK(s->idx < kl->tab_top && kl->tab[s->idx] == s, "segment %zu: not in the table", nseg);
        CHECK(s->head <= s->used && s->used <= s->cap, "segment %zu: head/used/cap", nseg);
        CHECK(s->cap <= SEG_MAX || s->used == 0 || s->used == s->cap,
              "segment %zu: a large segment holds one record", nseg);
        saw_cur |= s == kl->clean_cur;
        saw_out |= s == kl->clean_out;
        uint32_t seg_live = 0;
        for (uint32_t off = s->head; off < s->used;) {
            const sl_keylog_rec_t *r = at(s, off);
            uint32_t st = sl_keylog_stride(r);
            CHECK(r->size >= sizeof(*r) + r->id_len && st <= s->used - off,
                  "segment %zu offset %u: bad record size %u", nseg, off, r->size);
            if (r->live) {
                CHECK(r->id_len >= 1, "segment %zu offset %u: empty id", nseg, off);
                seg_live += st;
                count++;
                uint32_t h32 = (uint32_t)sl_keylog_hash(sl_keylog_id(r), r->id_len);
                CHECK(index_slot_of(kl, h32, ref_of(s, off)) < kl->nslots,
                      "segment %zu offset %u: live record not indexed", nseg, off);
            }
            off += st;
        }
        CHECK(seg_live == s->live, "segment %zu: live bytes %u, counted %u", nseg, s->live,
              seg_live);
        live += s->live;
        dead += s->used - s->head - s->live;
        segb += sizeof(seg_t) + s->cap;
    }
    CHECK(prev == kl->last, "last segment pointer");
    CHECK(saw_cur && saw_out, "cleaner points at a segment not in the log");
    CHECK(live == kl->live_bytes, "live bytes %llu, counted %llu",
          (unsigned long long)kl->live_bytes, (unsigned long long)live);
    CHECK(dead == kl->dead_bytes, "dead bytes %llu, counted %llu",
          (unsigned long long)kl->dead_bytes, (unsigned long long)dead);
    CHECK(segb == kl->seg_bytes, "segment bytes");
    CHECK(count == kl->count, "count %zu, counted %zu", kl->count, count);
    CHECK(nseg + kl->nfree == kl->tab_top, "segment table: %zu segments, %u free, %u used", nseg,
          kl->nfree, kl->tab_top);
    size_t indexed = 0;
    for (size_t i = 0; i < kl->nslots; i++) {
        if (kl->slots[i].ref == EMPTY)
            continue;
        indexed++;
        const seg_t *s = ref_seg(kl, kl->slots[i].ref);
        CHECK(s != NULL, "slot %zu: points at a freed segment", i);
        const sl_keylog_rec_t *r = deref(kl, kl->slots[i].ref);
        CHECK(r->live, "slot %zu: points at a dead record", i);
        CHECK((uint32_t)sl_keylog_hash(sl_keylog_id(r), r->id_len) == kl->slots[i].h32,
              "slot %zu: hash does not match the record", i);
    }
    CHECK(indexed == count, "index holds %zu, log %zu", indexed, count);
    CHECK(kl->nslots == 0 || indexed * 4 <= kl->nslots * 3, "index over 3/4 full");
    return 0;
}
