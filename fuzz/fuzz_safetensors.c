/* fuzz_safetensors.c - libFuzzer target for the safetensors reader: arbitrary
 * files are imported into a 4-3-2 softmax model and have their config
 * inferred; errors are expected, crashes, leaks and huge allocations are not.
 * A file that imports must leave only finite weights. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

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
    sl_model_config_t cfg = {.head = SL_HEAD_LOGISTIC, .activation = SL_ACT_RELU};
    sl_safetensors_infer_config(data, size, &cfg, err, sizeof err);
    return 0;
}
