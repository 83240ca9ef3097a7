/* runner.c - chunks a batch into learner steps and emits every slot in order. */

#include "runner.h"

#include <stdlib.h>

#include "common/log.h"

struct sl_runner {
    sl_runner_config_t c;
    sl_learner_t *learner;
    uint32_t out_dim;
    float *out; /* batch_size * out_dim */
    sl_runner_counts_t n;
    sl_ratelimit_t refused_log;
};

sl_runner_t *sl_runner_new(const sl_runner_config_t *c, sl_learner_t *learner, char *errstr,
                           size_t errstr_size) {
    if (c->batch_size == 0) {
        sl_errstr_set(errstr, errstr_size, "--batch-size: must be at least 1");
        return NULL;
    }
    sl_runner_t *r = calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    r->c = *c;
    r->learner = learner;
    r->out_dim = sl_model_out_dim(sl_learner_model(learner));
    r->out = malloc((size_t)c->batch_size * r->out_dim * sizeof *r->out);
    if (!r->out)
        goto nomem;
    r->refused_log = (sl_ratelimit_t){.interval_ms = 1000, .burst = 10};
    return r;
nomem:
    sl_runner_destroy(r);
    sl_errstr_set(errstr, errstr_size, "runner: out of memory for %u rows", c->batch_size);
    return NULL;
}

void sl_runner_destroy(sl_runner_t *r) {
    if (!r)
        return;
    free(r->out);
    free(r);
}

sl_err_t sl_runner_set_learner(sl_runner_t *r, sl_learner_t *learner) {
    if (sl_model_out_dim(sl_learner_model(learner)) != r->out_dim)
        return SL_ERR_MISMATCH;
    r->learner = learner;
    return SL_OK;
}

sl_runner_counts_t sl_runner_counts(const sl_runner_t *r) {
    return r->n;
}

/* Emits slots [0, nslots) of the batch, made with the weights at `step`. */
static sl_err_t emit_slots(sl_runner_t *r, sl_batch_t *b, size_t nslots, uint64_t step,
                           sl_runner_emit_fn emit, void *opaque) {
    sl_runner_item_t it = {.out_dim = r->out_dim, .step = step};
    for (size_t i = 0; i < nslots; i++) {
        sl_batch_slot(b, i, &it.slot);
        it.out = it.slot.good ? r->out + it.slot.row * r->out_dim : NULL;
        sl_err_t err = emit(opaque, &it);
        if (err != SL_OK)
            return err;
        if (it.slot.good)
            r->n.predicted++;
        else
            r->n.bad++;
    }
    return SL_OK;
}

/* One step over rows [0, nrows), then its slots out and off the batch. */
static sl_err_t step(sl_runner_t *r, sl_batch_t *b, size_t nrows, sl_runner_emit_fn emit,
                     void *opaque, char *errstr, size_t errstr_size) {
    uint64_t before = sl_learner_counters(r->learner).step;
    sl_input_t x;
    sl_targets_t t;
    sl_batch_view(b, 0, nrows, &x, &t);
    sl_batch_result_t res = {0};
    sl_err_t err = r->c.predict_only ? sl_learner_predict(r->learner, &x, r->out)
                                     : sl_learner_batch(r->learner, &x, &t, r->out, &res);
    if (err != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "learning step failed: %s", sl_err_str(err));
        return err;
    }
    r->n.steps++;
    if (res.stepped)
        r->n.labelled += res.n_labelled;
    if (res.refused) {
        uint64_t suppressed = 0;
        r->n.refused++;
        if (sl_ratelimit_allow(&r->refused_log, sl_now_ms(), &suppressed))
            sl_log(SL_LOG_WARN, "optimizer step refused: it would make weights non-finite",
                   SL_U64("step", before), SL_DBL("loss", res.loss),
                   SL_U64("suppressed", suppressed));
    }
    size_t cut = sl_batch_cut(b, nrows);
    err = emit_slots(r, b, cut, before, emit, opaque);
    if (err != SL_OK)
        return err;
    sl_batch_shift(b, nrows);
    return SL_OK;
}

sl_err_t sl_runner_run(sl_runner_t *r, sl_batch_t *b, int flush, sl_runner_emit_fn emit,
                       void *opaque, char *errstr, size_t errstr_size) {
    while (sl_batch_rows(b) >= r->c.batch_size) {
        sl_err_t err = step(r, b, r->c.batch_size, emit, opaque, errstr, errstr_size);
        if (err != SL_OK)
            return err;
    }
    if (!flush)
        return SL_OK;
    if (sl_batch_rows(b) > 0) {
        sl_err_t err = step(r, b, sl_batch_rows(b), emit, opaque, errstr, errstr_size);
        if (err != SL_OK)
            return err;
    }
    /* bad samples after the last row */
    sl_err_t err =
        emit_slots(r, b, sl_batch_slots(b), sl_learner_counters(r->learner).step, emit, opaque);
    if (err != SL_OK)
        return err;
    sl_batch_clear(b);
    return SL_OK;
}
