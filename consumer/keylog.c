/* keylog.c - records in slab pages, an arrival-ordered list through them, an index by id. */

#include "keylog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define PAGE_MIN 4096u
#define PAGE_MAX 65536u /* a record larger than this gets a page of its own */
#define SLOT_BITS 12    /* slot index within a page: pages hold at most 4096 slots */
#define SLOT_MASK ((1u << SLOT_BITS) - 1)
/* Page table indices 0 .. MAX_PAGES - 1, so no handle is ever UINT32_MAX (NONE). */
#define MAX_PAGES ((1u << (32 - SLOT_BITS)) - 1)
#define NONE UINT32_MAX
#define MIN_INDEX 16u
#define MAX_RECORD (1u << 30)

/* A slab page: slots of one size class. Free slots form a list through their first 4 bytes
 * (the record's `size` field, holding the next free slot + 1) and have live = 0. */
typedef struct page {
    struct page *prev, *next; /* its class's pages with a free slot */
    uint32_t idx;             /* in the page table */
    uint32_t cls;             /* slot bytes */
    uint32_t nslots;
    uint32_t bump;      /* slots from here on were never used */
    uint32_t live;      /* slots holding records */
    uint32_t free_head; /* a freed slot + 1; 0: none */
    uint32_t bytes;     /* data bytes */
    uint32_t pad;
    uint8_t data[]; /* at offset 48: 8-aligned */
} page_t;

typedef struct cls {
    uint32_t size;
    page_t *avail; /* pages with a free slot */
} cls_t;

typedef struct slot {
    uint32_t ref; /* record handle: page index << SLOT_BITS | slot; NONE for a free slot */
    uint32_t h32; /* low 32 bits of the id hash: the home slot comes from it */
} slot_t;

struct sl_keylog {
    page_t **tab; /* page table: index -> page (NULL when free) */
    uint32_t *free_idx;
    uint32_t tab_cap, tab_top, nfree;
    cls_t *cls;
    size_t ncls, cls_cap;
    slot_t *slots;
    size_t nslots;       /* >= MIN_INDEX, or 0 before the first append */
    uint32_t head, tail; /* arrival list */
    size_t count;
    uint64_t live_bytes, page_bytes;
};

uint64_t sl_keylog_hash(const uint8_t *id, size_t len) {
    return XXH3_64bits(id, len);
}

static inline sl_keylog_rec_t *deref(const sl_keylog_t *kl, uint32_t h) {
    const page_t *p = kl->tab[h >> SLOT_BITS];
    return (sl_keylog_rec_t *)(p->data + (size_t)(h & SLOT_MASK) * p->cls);
}

/* The home slot: the stored 32 bits, mixed, scaled to the table (any size, so it can grow
 * by half: the index then takes 11-16 bytes per record instead of 11-21). */
static inline size_t home(const sl_keylog_t *kl, uint32_t h32) {
    return (size_t)(((uint64_t)(uint32_t)(h32 * 2654435769u) * kl->nslots) >> 32);
}

static inline size_t next_slot(const sl_keylog_t *kl, size_t i) {
    return i + 1 == kl->nslots ? 0 : i + 1;
}

sl_keylog_t *sl_keylog_new(void) {
    sl_keylog_t *kl = calloc(1, sizeof(*kl));
    if (kl)
        kl->head = kl->tail = NONE;
    return kl;
}

void sl_keylog_destroy(sl_keylog_t *kl) {
    if (!kl)
        return;
    for (uint32_t i = 0; i < kl->tab_top; i++)
        free(kl->tab[i]);
    free(kl->tab);
    free(kl->free_idx);
    free(kl->cls);
    free(kl->slots);
    free(kl);
}

/* ---- pages ---- */

static void avail_push(cls_t *c, page_t *p) {
    p->prev = NULL;
    p->next = c->avail;
    if (c->avail)
        c->avail->prev = p;
    c->avail = p;
}

static void avail_unlink(cls_t *c, page_t *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        c->avail = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static cls_t *class_for(sl_keylog_t *kl, uint32_t size) {
    for (size_t i = 0; i < kl->ncls; i++)
        if (kl->cls[i].size == size)
            return &kl->cls[i];
    if (kl->ncls == kl->cls_cap) {
        size_t cap = kl->cls_cap ? kl->cls_cap * 2 : 4;
        cls_t *c = realloc(kl->cls, cap * sizeof(*c));
        if (!c)
            return NULL;
        kl->cls = c;
        kl->cls_cap = cap;
    }
    kl->cls[kl->ncls] = (cls_t){.size = size, .avail = NULL};
    return &kl->cls[kl->ncls++];
}

/* Pages grow with the log (about 1/32 of what it has allocated, 4-64 KiB), so the free
 * slots of a class's last page stay few both for a tiny log and for a large one. */
static uint32_t page_data_size(const sl_keylog_t *kl, uint32_t csize) {
    if (csize > PAGE_MAX)
        return csize;
    uint32_t d = PAGE_MIN;
    while (d < PAGE_MAX && (d < kl->page_bytes / 32 || d < csize))
        d <<= 1;
    return d;
}

static page_t *new_page(sl_keylog_t *kl, uint32_t csize) {
    uint32_t idx;
    if (kl->nfree > 0) {
        idx = kl->free_idx[--kl->nfree];
    } else {
        if (kl->tab_top >= MAX_PAGES)
            return NULL;
        if (kl->tab_top == kl->tab_cap) {
            uint32_t ncap = kl->tab_cap ? kl->tab_cap * 2 : 16;
            if (ncap > MAX_PAGES)
                ncap = MAX_PAGES;
            page_t **t = realloc(kl->tab, (size_t)ncap * sizeof(*t));
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
    uint32_t data = page_data_size(kl, csize);
    page_t *p = malloc(sizeof(page_t) + data);
    if (!p) {
        kl->free_idx[kl->nfree++] = idx;
        return NULL;
    }
    uint32_t n = data / csize;
    *p = (page_t){
        .idx = idx, .cls = csize, .nslots = n > SLOT_MASK + 1 ? SLOT_MASK + 1 : n, .bytes = data};
    kl->tab[idx] = p;
    kl->page_bytes += sizeof(page_t) + data;
    return p;
}

static void free_page(sl_keylog_t *kl, page_t *p) {
    kl->page_bytes -= sizeof(page_t) + p->bytes;
    kl->tab[p->idx] = NULL;
    kl->free_idx[kl->nfree++] = p->idx;
    free(p);
}

/* A free slot of class csize: its handle, or NONE on out of memory. */
static uint32_t alloc_slot(sl_keylog_t *kl, uint32_t csize) {
    cls_t *c = class_for(kl, csize);
    if (!c)
        return NONE;
    page_t *p = c->avail;
    if (!p) {
        if (!(p = new_page(kl, csize)))
            return NONE;
        avail_push(c, p);
    }
    uint32_t s;
    if (p->free_head) {
        s = p->free_head - 1;
        p->free_head = ((sl_keylog_rec_t *)(p->data + (size_t)s * p->cls))->size;
    } else {
        s = p->bump++;
    }
    p->live++;
    if (p->free_head == 0 && p->bump == p->nslots)
        avail_unlink(c, p);
    return p->idx << SLOT_BITS | s;
}

static void free_slot(sl_keylog_t *kl, uint32_t h) {
    page_t *p = kl->tab[h >> SLOT_BITS];
    uint32_t s = h & SLOT_MASK;
    sl_keylog_rec_t *r = (sl_keylog_rec_t *)(p->data + (size_t)s * p->cls);
    int was_full = p->free_head == 0 && p->bump == p->nslots;
    r->live = 0;
    r->size = p->free_head;
    p->free_head = s + 1;
    p->live--;
    cls_t *c = class_for(kl, p->cls); /* exists: the page was made for it */
    if (was_full)
        avail_push(c, p);
    /* An empty page goes back unless it is the only one of its class with room (a log that
     * empties and refills would otherwise free and allocate a page each time). */
    if (p->live == 0 && (c->avail != p || p->next)) {
        avail_unlink(c, p);
        free_page(kl, p);
    }
}

/* ---- the arrival list ---- */

static void list_append(sl_keylog_t *kl, uint32_t h, sl_keylog_rec_t *r) {
    r->prev = kl->tail;
    r->next = NONE;
    if (kl->tail != NONE)
        deref(kl, kl->tail)->next = h;
    else
        kl->head = h;
    kl->tail = h;
}

static void list_unlink(sl_keylog_t *kl, sl_keylog_rec_t *r) {
    if (r->prev != NONE)
        deref(kl, r->prev)->next = r->next;
    else
        kl->head = r->next;
    if (r->next != NONE)
        deref(kl, r->next)->prev = r->prev;
    else
        kl->tail = r->prev;
}

/* ---- index ---- */

static sl_err_t index_resize(sl_keylog_t *kl, size_t n) {
    slot_t *ns = malloc(n * sizeof(*ns));
    if (!ns)
        return SL_ERR_NOMEM;
    memset(ns, 0xff, n * sizeof(*ns));
    slot_t *old = kl->slots;
    size_t oldn = kl->nslots;
    kl->slots = ns;
    kl->nslots = n;
    for (size_t i = 0; i < oldn; i++) {
        if (old[i].ref == NONE)
            continue;
        size_t j = home(kl, old[i].h32);
        while (ns[j].ref != NONE)
            j = next_slot(kl, j);
        ns[j] = old[i];
    }
    free(old);
    return SL_OK;
}

/* Empties slot i, shifting later members of its probe run back so lookups never stop early. */
static void index_delete_at(sl_keylog_t *kl, size_t i) {
    size_t j = i;
    for (;;) {
        j = next_slot(kl, j);
        if (kl->slots[j].ref == NONE)
            break;
        size_t k = home(kl, kl->slots[j].h32);
        /* slot j may move to i unless its home lies cyclically in (i, j] */
        int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            kl->slots[i] = kl->slots[j];
            i = j;
        }
    }
    kl->slots[i].ref = NONE;
    kl->slots[i].h32 = NONE;
}

/* The index slot of live record r, searched from its hash; nslots if absent (a bug). */
static size_t slot_of_rec(const sl_keylog_t *kl, const sl_keylog_rec_t *r, uint32_t h32) {
    for (size_t i = home(kl, h32);; i = next_slot(kl, i)) {
        uint32_t ref = kl->slots[i].ref;
        if (ref == NONE)
            return kl->nslots;
        if (kl->slots[i].h32 == h32 && deref(kl, ref) == r)
            return i;
    }
}

/* ---- records ---- */

sl_keylog_rec_t *sl_keylog_append(sl_keylog_t *kl, const uint8_t *id, size_t id_len, uint64_t hash,
                                  size_t payload_len, int64_t time, sl_err_t *err) {
    sl_err_t dummy;
    if (!err)
        err = &dummy;
    if (id_len == 0 || id_len > SL_KEYLOG_MAX_ID ||
        payload_len > MAX_RECORD - sizeof(sl_keylog_rec_t) - id_len) {
        *err = SL_ERR_INVAL;
        return NULL;
    }
    uint32_t size = (uint32_t)(sizeof(sl_keylog_rec_t) + payload_len + id_len);
    uint32_t csize = sl_keylog_class(size);
    if ((kl->count + 1) * 4 > kl->nslots * 3 &&
        index_resize(kl, kl->nslots ? kl->nslots + kl->nslots / 2 : MIN_INDEX) != SL_OK) {
        *err = SL_ERR_NOMEM;
        return NULL;
    }
    uint32_t h = alloc_slot(kl, csize);
    if (h == NONE) {
        *err = SL_ERR_NOMEM;
        return NULL;
    }
    sl_keylog_rec_t *r = deref(kl, h);
    r->size = size;
    r->id_len = (uint16_t)id_len;
    r->live = 1;
    r->user = 0;
    r->time = time;
    memcpy((uint8_t *)r + size - id_len, id, id_len);
    list_append(kl, h, r);
    uint32_t h32 = (uint32_t)hash;
    size_t i = home(kl, h32);
    while (kl->slots[i].ref != NONE)
        i = next_slot(kl, i);
    kl->slots[i].ref = h;
    kl->slots[i].h32 = h32;
    kl->count++;
    kl->live_bytes += csize;
    *err = SL_OK;
    return r;
}

sl_keylog_rec_t *sl_keylog_find(const sl_keylog_t *kl, const uint8_t *id, size_t id_len,
                                uint64_t hash) {
    if (kl->count == 0)
        return NULL;
    uint32_t h32 = (uint32_t)hash;
    for (size_t i = home(kl, h32);; i = next_slot(kl, i)) {
        const slot_t *sl = &kl->slots[i];
        if (sl->ref == NONE)
            return NULL;
        if (sl->h32 == h32) {
            sl_keylog_rec_t *r = deref(kl, sl->ref);
            if (r->id_len == id_len && memcmp(sl_keylog_id(r), id, id_len) == 0)
                return r;
        }
    }
}

void sl_keylog_prefetch(const sl_keylog_t *kl, uint64_t hash) {
    if (kl->count)
        __builtin_prefetch(&kl->slots[home(kl, (uint32_t)hash)]);
}

void sl_keylog_prefetch_record(const sl_keylog_t *kl, uint64_t hash) {
    if (kl->count == 0)
        return;
    uint32_t h32 = (uint32_t)hash;
    for (size_t i = home(kl, h32);; i = next_slot(kl, i)) {
        const slot_t *sl = &kl->slots[i];
        if (sl->ref == NONE)
            return;
        if (sl->h32 == h32) {
            __builtin_prefetch(deref(kl, sl->ref));
            return;
        }
    }
}

void sl_keylog_prefetch_neighbours(const sl_keylog_t *kl, uint64_t hash) {
    if (kl->count == 0)
        return;
    uint32_t h32 = (uint32_t)hash;
    for (size_t i = home(kl, h32);; i = next_slot(kl, i)) {
        const slot_t *sl = &kl->slots[i];
        if (sl->ref == NONE)
            return;
        if (sl->h32 == h32) {
            const sl_keylog_rec_t *r = deref(kl, sl->ref);
            if (r->prev != NONE)
                __builtin_prefetch(deref(kl, r->prev), 1);
            if (r->next != NONE)
                __builtin_prefetch(deref(kl, r->next), 1);
            __builtin_prefetch(kl->tab[sl->ref >> SLOT_BITS], 1);
            return;
        }
    }
}

void sl_keylog_remove(sl_keylog_t *kl, sl_keylog_rec_t *r, uint64_t hash) {
    if (kl->count == 0 || !r->live)
        return;
    size_t i = slot_of_rec(kl, r, (uint32_t)hash);
    if (i == kl->nslots)
        return; /* not ours */
    uint32_t h = kl->slots[i].ref;
    index_delete_at(kl, i);
    list_unlink(kl, r);
    kl->count--;
    kl->live_bytes -= sl_keylog_stride(r);
    free_slot(kl, h);
    if (kl->nslots > MIN_INDEX && kl->count * 8 < kl->nslots)
        (void)index_resize(kl, kl->nslots / 2 > MIN_INDEX ? kl->nslots / 2 : MIN_INDEX);
}

sl_keylog_rec_t *sl_keylog_oldest(const sl_keylog_t *kl) {
    return kl->head == NONE ? NULL : deref(kl, kl->head);
}

void sl_keylog_pop(sl_keylog_t *kl) {
    sl_keylog_rec_t *r = sl_keylog_oldest(kl);
    if (r)
        sl_keylog_remove(kl, r, sl_keylog_hash(sl_keylog_id(r), r->id_len));
}

size_t sl_keylog_count(const sl_keylog_t *kl) {
    return kl->count;
}

uint64_t sl_keylog_bytes(const sl_keylog_t *kl) {
    return kl->live_bytes;
}

uint64_t sl_keylog_memory(const sl_keylog_t *kl) {
    return sizeof(*kl) + kl->page_bytes +
           (uint64_t)kl->tab_cap * (sizeof(page_t *) + sizeof(uint32_t)) +
           (uint64_t)kl->cls_cap * sizeof(cls_t) + (uint64_t)kl->nslots * sizeof(slot_t);
}

void sl_keylog_iter_init(const sl_keylog_t *kl, sl_keylog_iter_t *it) {
    it->kl = kl;
    it->next = kl->head;
}

sl_keylog_rec_t *sl_keylog_iter_next(sl_keylog_iter_t *it) {
    if (it->next == NONE)
        return NULL;
    sl_keylog_rec_t *r = deref(it->kl, it->next);
    it->next = r->next;
    return r;
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
    size_t count = 0;
    uint64_t live = 0;
    uint32_t prev = NONE;
    for (uint32_t h = kl->head; h != NONE;) {
        CHECK(count <= kl->count, "arrival list longer than the count (a cycle?)");
        CHECK((h >> SLOT_BITS) < kl->tab_top && kl->tab[h >> SLOT_BITS] &&
                  (h & SLOT_MASK) < kl->tab[h >> SLOT_BITS]->bump,
              "record %zu: bad handle", count);
        const sl_keylog_rec_t *r = deref(kl, h);
        CHECK(r->live == 1, "record %zu: on the list but free", count);
        CHECK(r->prev == prev, "record %zu: broken back link", count);
        CHECK(r->id_len >= 1 && r->size >= sizeof(*r) + r->id_len &&
                  sl_keylog_stride(r) <= kl->tab[h >> SLOT_BITS]->cls,
              "record %zu: bad size %u", count, r->size);
        uint32_t h32 = (uint32_t)sl_keylog_hash(sl_keylog_id(r), r->id_len);
        CHECK(slot_of_rec(kl, r, h32) < kl->nslots, "record %zu: not indexed", count);
        live += sl_keylog_stride(r);
        count++;
        prev = h;
        h = r->next;
    }
    CHECK(prev == kl->tail, "tail");
    CHECK(count == kl->count, "count %zu, listed %zu", kl->count, count);
    CHECK(live == kl->live_bytes, "live bytes %llu, counted %llu",
          (unsigned long long)kl->live_bytes, (unsigned long long)live);
    size_t slots_live = 0, npages = 0;
    for (uint32_t i = 0; i < kl->tab_top; i++) {
        const page_t *p = kl->tab[i];
        if (!p)
            continue;
        npages++;
        CHECK(p->idx == i && p->bump <= p->nslots && p->live <= p->bump, "page %u: counts", i);
        size_t nfree = 0;
        for (uint32_t f = p->free_head; f; nfree++) {
            CHECK(nfree < p->bump && f - 1 < p->bump, "page %u: free list", i);
            const sl_keylog_rec_t *r =
                (const sl_keylog_rec_t *)(p->data + (size_t)(f - 1) * p->cls);
            CHECK(r->live == 0, "page %u: a free slot is live", i);
            f = r->size;
        }
        CHECK(nfree + p->live == p->bump, "page %u: %zu free + %u live != %u used", i, nfree,
              p->live, p->bump);
        slots_live += p->live;
        int has_room = p->free_head != 0 || p->bump < p->nslots;
        int listed = 0;
        for (size_t c = 0; c < kl->ncls; c++)
            for (const page_t *q = kl->cls[c].avail; q; q = q->next)
                if (q == p) {
                    listed = 1;
                    CHECK(kl->cls[c].size == p->cls, "page %u: on another class's list", i);
                }
        CHECK(listed == has_room, "page %u: %s", i,
              has_room ? "has room but is not listed" : "is full but listed");
    }
    CHECK(slots_live == count, "pages hold %zu records, the list %zu", slots_live, count);
    CHECK(npages + kl->nfree == kl->tab_top, "page table accounting");
    size_t indexed = 0;
    for (size_t i = 0; i < kl->nslots; i++) {
        if (kl->slots[i].ref == NONE)
            continue;
        indexed++;
        uint32_t h = kl->slots[i].ref;
        CHECK((h >> SLOT_BITS) < kl->tab_top && kl->tab[h >> SLOT_BITS],
              "slot %zu: points at a freed page", i);
        const sl_keylog_rec_t *r = deref(kl, h);
        CHECK(r->live, "slot %zu: points at a free slot", i);
        CHECK((uint32_t)sl_keylog_hash(sl_keylog_id(r), r->id_len) == kl->slots[i].h32,
              "slot %zu: hash does not match the record", i);
    }
    CHECK(indexed == count, "index holds %zu, log %zu", indexed, count);
    CHECK(kl->nslots == 0 || indexed * 4 <= kl->nslots * 3, "index over 3/4 full");
    return 0;
}
