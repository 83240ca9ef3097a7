/* fuzz_joinstate.c - libFuzzer target for the delayed-label join's saved form
 * (sl_join_restore): hostile bytes must give an error, never a crash, a leak or a huge
 * allocation; what is accepted must be a sound join that rebuilds, saves and restores again.
 *
 * A random byte string almost never gets past the checksum, so the first byte picks a mode:
 *   even: the rest is a whole saved form whose trailing xxh64 is recomputed;
 *   odd:  the rest is a list of (u16 offset, u8 value) edits applied to a valid saved form
 *         (pending samples, a ready pair, waiting labels, matched ids, a parked partition),
 *         checksum recomputed or (every other edit list) left stale.
 * Bits 2-3 of the first byte pick the partition restored. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "consumer/join.h"

#define DIM 4
#define LIVE_FROM 1000

#define require(ok) require_at((ok), #ok, __LINE__)
static void require_at(int ok, const char *what, int line) {
    if (!ok) {
        fprintf(stderr, "fuzz_joinstate.c:%d: invariant failed: %s\n", line, what);
        abort();
    }
}

static uint8_t *g_base;
static size_t g_base_len;

static void fix_checksum(uint8_t *b, size_t len) {
    if (len < 8)
        return;
    uint64_t h = XXH64(b, len - 8, 0);
    for (int i = 0; i < 8; i++)
        b[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static sl_join_t *make(void) {
    sl_join_config_t cfg = {.dim = DIM,
                            .out_dim = 2,
                            .window = 1000,
                            .label_wait = 100,
                            .max_bytes = 1 << 20,
                            .max_matched_ids = 64};
    sl_join_t *j = sl_join_new(&cfg, NULL, 0);
    require(j != NULL);
    return j;
}

static void add(sl_join_t *j, int32_t p, int64_t off, uint8_t id, int64_t now) {
    float x[DIM] = {1, 2, 3, 4}, pred[2] = {0.25f, 0.75f};
    sl_join_sample_t s = {
        .partition = p, .offset = off, .id = &id, .id_len = 1, .dense = x, .pred = pred};
    sl_join_outcome_t o;
    require(sl_join_add_features(j, &s, now, &o) == SL_OK);
}

static void label(sl_join_t *j, int32_t p, int64_t off, uint8_t id, int64_t now) {
    sl_join_label_t l = {.partition = p, .offset = off, .id = &id, .id_len = 1, .y = 1, .w = 2};
    sl_join_outcome_t o;
    require(sl_join_add_label(j, &l, now, &o) == SL_OK);
}

static void build_base(void) {
    sl_join_t *j = make();
    for (int32_t p = 0; p < 3; p++)
        require(sl_join_add_partition(j, p) == SL_OK);
    for (int i = 0; i < 30; i++)
        add(j, i % 3, 10 + i, (uint8_t)i, i);
    for (int i = 0; i < 30; i += 4)
        label(j, i % 3, 5 + i, (uint8_t)i, 40); /* matched, ready */
    label(j, 1, 100, 99, 41);                   /* waiting */
    require(sl_join_drop_partition(j, 2) == SL_OK);
    sl_buf_t b = {0};
    require(sl_join_save(j, &b) == SL_OK);
    g_base = b.data;
    g_base_len = b.len;
    sl_join_destroy(j);
}

static void exercise(const uint8_t *blob, size_t len, int32_t p) {
    sl_join_t *j = make();
    sl_join_resume_t r;
    char err[160];
    if (sl_join_restore(j, p, blob, len, LIVE_FROM, &r, err, sizeof(err)) != SL_OK) {
        require(!sl_join_has_partition(j, p));
        sl_join_destroy(j);
        return;
    }
    require(sl_join_check(j, err, sizeof(err)) == 0);
    require(r.planned == 0 || (r.input_from >= 0 && r.input_from < LIVE_FROM));
    /* a short rebuild, then everything else counts as lost */
    float x[DIM] = {0};
    for (int64_t off = r.planned ? r.input_from : LIVE_FROM;
         off < LIVE_FROM && off < r.input_from + 48; off++) {
        uint8_t id = (uint8_t)(off - 10);
        sl_join_sample_t s = {.partition = p, .offset = off, .id = &id, .id_len = 1, .dense = x};
        sl_join_outcome_t o;
        require(sl_join_rebuild_add(j, &s, 50, &o) == SL_OK);
        sl_join_rebuild_seen(j, p, off + 1);
    }
    sl_join_rebuild_seen(j, p, LIVE_FROM);
    require(!sl_join_rebuilding(j, p));
    label(j, p, 1 << 20, 3, 60);
    sl_join_expire(j, 100000);
    require(sl_join_check(j, err, sizeof(err)) == 0);
    sl_batch_t *b = sl_batch_new(DIM, 4);
    float served[2 * 64];
    size_t n;
    require(sl_join_pop(j, b, served, 64, 0, NULL, &n) == SL_OK);
    /* what was accepted saves and restores again */
    sl_buf_t again = {0};
    require(sl_join_save(j, &again) == SL_OK);
    sl_join_t *k = make();
    require(sl_join_restore(k, p, again.data, again.len, LIVE_FROM, &r, err, sizeof(err)) == SL_OK);
    require(sl_join_check(k, err, sizeof(err)) == 0);
    sl_buf_free(&again);
    sl_batch_destroy(b);
    sl_join_destroy(k);
    sl_join_destroy(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_base)
        build_base();
    if (size < 1)
        return 0;
    uint8_t *blob;
    size_t len;
    if ((data[0] & 1) == 0) {
        len = size - 1;
        blob = malloc(len ? len : 1);
        memcpy(blob, data + 1, len);
        fix_checksum(blob, len);
    } else {
        len = g_base_len;
        blob = malloc(len);
        memcpy(blob, g_base, len);
        for (size_t i = 1; i + 3 <= size; i += 3)
            blob[((size_t)data[i] | (size_t)data[i + 1] << 8) % len] = data[i + 2];
        if ((data[0] & 2) == 0)
            fix_checksum(blob, len);
    }
    exercise(blob, len, (int32_t)((data[0] >> 2) & 3));
    free(blob);
    return 0;
}
