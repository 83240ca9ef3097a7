/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: arbitrary
 * files are imported into a 4-3-2 softmax model, into a fresh learner of that
 * shape (weights and scaler.* tensors), and have their config inferred;
 * errors are expected, crashes, leaks and huge allocations are not. A file
 * that imports must leave only finite weights and a usable learner. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "model/learner.h"
#include "model/model.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static sl_model_t *m;
    char err[256];
    if (!m) {
        sl_model_config_t mc = {.head = SL_HEAD_SOFTMAX,
                                .dim = 4,
                                .classes = 2,
                                .n_hidden = 1,
                                .hidden = {3},
                                .activation = SL_ACT_RELU};
        m = sl_model_new(&mc, err, sizeof err);
        if (!m)
            abort();
    }
    if (sl_safetensors_import(m, data, size, err, sizeof err) == SL_OK) {
        const float *p = sl_model_params(m);
        for (size_t i = 0; i < sl_model_n_params(m); i++)
            if (!isfinite(p[i]))
                abort();
    }
    sl_optim_config_t oc = sl_optim_config_default(SL_OPTIM_AUTO);
    sl_learner_t *l = sl_learner_new(sl_model_config(m), &oc, 1, 0, err, sizeof err);
    if (!l)
        abort();
    int has = 0;
    if (sl_safetensors_import_learner(l, data, size, &has, err, sizeof err) == SL_OK) {
        float x[4] = {1, -2, 0.5f, 3}, y = 1, w = 1, out[2];
        uint8_t lab = 1;
        sl_input_t in = {.n = 1, .dim = 4, .dense = x};
        sl_targets_t t = {&y, &w, &lab};
        if (sl_learner_batch(l, &in, &t, out, NULL) != SL_OK || !isfinite(out[0]))
            abort();
    }
    sl_learner_destroy(l);
    sl_model_config_t cfg = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_RELU};
    sl_safetensors_infer_config(data, size, &cfg, err, sizeof err);
    return 0;
}
