/* fuzz_state.c - libFuzzer target for the model-state blob loader
 * (sl_learner_load): hostile blobs must give an error, never a crash, a leak
 * or a huge allocation.
 *
 * A random byte string almost never gets past the magic and the checksum, so
 * the input drives two modes (first byte):
 *   even: the rest is a whole blob whose trailing xxh64 is recomputed, so the
 *         field parser behind the checksum is what gets fuzzed;
 *   odd:  the rest is a list of (u16 offset, u8 value) edits applied to a
 *         valid blob of a trained 4-3-2 softmax model with standard scaling,
 *         checksum recomputed or (every other edit list) left stale. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "model/learner.h"

static uint8_t *g_base;
static size_t g_base_len;

static void fix_checksum(uint8_t *b, size_t len) {
    if (len < 8)
        return;
    uint64_t h = XXH64(b, len - 8, 0);
    for (int i = 0; i < 8; i++)
        b[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void build_base(void) {
    sl_model_config_t mc = {.head = SL_HEAD_SOFTMAX,
                            .dim = 4,
                            .classes = 2,
                            .n_hidden = 1,
                            .hidden = {3},
                            .activation = SL_ACT_TANH};
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_ADAM);
    char err[256];
    sl_learner_t *l = sl_learner_new(&mc, &oc, 1, 4, err, sizeof err);
    if (!l || sl_learner_set_scale(l, SL_SCALE_STANDARD, err, sizeof err) != SL_OK)
        abort();
    float x[8] = {1, 2, 3, 4, -1, 0.5f, 0, 2}, y[2] = {0, 1}, w[2] = {1, 1}, out[4];
    uint8_t lab[2] = {1, 1};
    sl_input_t in = {.n = 2, .dim = 4, .dense = x};
    sl_targets_t t = {y, w, lab};
    sl_batch_result_t res;
    for (int i = 0; i < 3; i++)
        sl_learner_batch(l, &in, &t, out, &res);
    if (sl_learner_save(l, &g_base, &g_base_len) != SL_OK)
        abort();
    sl_learner_destroy(l);
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
    sl_err_t err;
    char errstr[256];
    sl_learner_t *l = sl_learner_load(blob, len, NULL, &err, errstr, sizeof errstr);
    if (l) {
        /* A blob that loads must be usable: one more batch and a save. */
        float x[4] = {0.5f, 0.5f, 0.5f, 0.5f}, y = 1, w = 1, out[64];
        uint8_t lab = 1;
        const sl_model_config_t *mc = sl_model_config(sl_learner_model(l));
        if (mc->dim == 4 && sl_model_out_dim(sl_learner_model(l)) <= 64) {
            sl_input_t in = {.n = 1, .dim = 4, .dense = x};
            sl_targets_t t = {&y, &w, &lab};
            sl_batch_result_t res;
            sl_learner_batch(l, &in, &t, out, &res);
        }
        uint8_t *again;
        size_t again_len;
        if (sl_learner_save(l, &again, &again_len) == SL_OK)
            free(again);
        sl_learner_destroy(l);
    }
    free(blob);
    return 0;
}
