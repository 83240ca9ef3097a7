/* replay.c - `streamlearn replay`: the learning pipeline over a file of msgpack
 * samples, streamed in bounded memory, one prediction per sample in order. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/export.h"
#include "cli/learnconf.h"
#include "cli/options.h"
#include "common/buf.h"
#include "common/log.h"
#include "consumer/batch.h"
#include "consumer/decode.h"
#include "consumer/encode.h"
#include "consumer/msgscan.h"
#include "consumer/runner.h"

#define OUT_FLUSH_BYTES ((size_t)1 << 20)
#define READ_CHUNK ((size_t)1 << 20)

static const char usage[] =
    "usage: streamlearn replay [learning flags] --input FILE [--output FILE] [--save FILE]\n\n"
    "Runs the learning pipeline over a file of concatenated msgpack samples (or arrays\n"
    "of samples): every sample is predicted with the weights before its batch's update,\n"
    "then labelled samples train the model, --batch-size consecutive samples at a time.\n"
    "Writes one msgpack prediction map per input sample, in input order (bad samples\n"
    "get a map with `error` instead of `pred`), and final metrics to stderr; --report\n"
    "adds the prequential score and the settings behind it, to compare settings in one\n"
    "command.";

typedef struct replay {
    sl_learnconf_t conf;
    sl_learner_t *learner;
    sl_decoder_t *decoder;
    sl_batch_t *batch;
    sl_runner_t *runner;
    FILE *in, *out;
    const char *in_name, *out_name;
    sl_buf_t outbuf;
    uint64_t objects;
    sl_ratelimit_t bad_log;
    int report;               /* --report: the labels' statistics are kept */
    double y_w, y_mean, y_m2; /* labels seen (weighted Welford), for the report's R^2 */
} replay_t;

static int flush_output(replay_t *r) {
    if (r->outbuf.len && fwrite(r->outbuf.data, 1, r->outbuf.len, r->out) != r->outbuf.len) {
        sl_log(SL_LOG_ERROR, "cannot write predictions", SL_STR("path", r->out_name),
               SL_STR("error", strerror(errno)));
        return -1;
    }
    sl_buf_reset(&r->outbuf);
    return 0;
}

static void log_bad(replay_t *r, const sl_slot_view_t *v) {
    uint64_t suppressed = 0;
    if (sl_ratelimit_allow(&r->bad_log, sl_now_ms(), &suppressed))
        sl_log(SL_LOG_WARN, "bad sample", SL_STR("error", v->error), SL_U64("object", v->tag),
               SL_U64("suppressed", suppressed));
}

/* Adds a labelled row's label to the report's statistics (the batch still
 * holds the row while its slot is emitted). */
static void count_label(replay_t *r, size_t row) {
    sl_input_t x;
    sl_targets_t t;
    sl_batch_view(r->batch, row, 1, &x, &t);
    if (!t.labelled[0])
        return;
    double d = t.y[0] - r->y_mean;
    r->y_w += t.w[0];
    r->y_mean += d * t.w[0] / r->y_w;
    r->y_m2 += t.w[0] * d * (t.y[0] - r->y_mean);
}

/* The runner's emit callback: one prediction (or error) map per sample. */
static sl_err_t emit(void *opaque, const sl_runner_item_t *it) {
    replay_t *r = opaque;
    if (it->slot.good && r->report)
        count_label(r, it->slot.row);
    if (it->slot.good)
        return sl_encode_prediction(&r->outbuf, it->slot.id, it->slot.id_len, r->conf.model.head,
                                    it->out, it->out_dim, 0, it->step);
    log_bad(r, &it->slot);
    return sl_encode_error(&r->outbuf, it->slot.id, it->slot.id_len, it->slot.error, 0, it->step);
}

/* Runs full batches (all that is left when flush), then writes the output
 * once it passes OUT_FLUSH_BYTES. */
static int run_batches(replay_t *r, int flush) {
    char why[256] = "";
    sl_err_t err = sl_runner_run(r->runner, r->batch, flush, emit, r, why, sizeof why);
    if (err != SL_OK) {
        sl_log(SL_LOG_ERROR, "replay stopped", SL_STR("error", why[0] ? why : sl_err_str(err)));
        return -1;
    }
    if (r->outbuf.len >= OUT_FLUSH_BYTES)
        return flush_output(r);
    return 0;
}

static int push_error(replay_t *r, const char *error) {
    if (sl_batch_push_error(r->batch, error, r->objects++, NULL, 0) != SL_OK) {
        sl_log(SL_LOG_ERROR, "out of memory", SL_STR("where", "replay"));
        return -1;
    }
    return 0;
}

/* Decodes the object at the front of the buffer in one pass when it is
 * whole and well-formed (sl_decode_next). Returns its length, 0 when the
 * scanner must frame it, -1 on a fatal error. */
static long decode_next(replay_t *r, const uint8_t *p, size_t avail) {
    sl_decode_result_t dr;
    size_t used;
    sl_err_t err = sl_decode_next(r->decoder, p, avail, r->objects, r->batch, &dr, &used);
    if (err != SL_OK) {
        sl_log(SL_LOG_ERROR, "cannot decode", SL_STR("error", sl_err_str(err)));
        return -1;
    }
    if (used == 0)
        return 0;
    r->objects++;
    if (sl_batch_rows(r->batch) >= r->conf.batch_size && run_batches(r, 0) != 0)
        return -1;
    return (long)used;
}

/* Streams the input through the decoder, which frames whole well-formed
 * objects itself; the scanner frames the rest (objects cut by the end of
 * the buffer, bad ones) and says what is wrong with them. The buffer never
 * holds more than one object over the size cap plus one read chunk. */
static int replay_stream(replay_t *r) {
    size_t max_bytes = r->conf.max_message_bytes;
    size_t cap = max_bytes + SL_MP_MAX_HEAD + READ_CHUNK;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        sl_log(SL_LOG_ERROR, "out of memory", SL_STR("where", "replay input buffer"));
        return -1;
    }
    sl_msgscan_t scan;
    sl_msgscan_init(&scan, max_bytes, SL_DECODE_MAX_DEPTH);
    size_t start = 0, end = 0;
    int eof = 0, rc = -1;
    int framing = 0; /* the scanner is inside an object: it goes on with it */
    for (;;) {
        if (!framing && start < end) {
            long used = decode_next(r, buf + start, end - start);
            if (used < 0)
                goto out;
            if (used > 0) {
                start += (size_t)used;
                continue;
            }
        }
        sl_scan_result_t sr;
        sl_scan_status_t st = sl_msgscan_feed(&scan, buf + start, end - start, eof, &sr);
        if (st == SL_SCAN_END)
            break;
        framing = st == SL_SCAN_NEED_MORE || st == SL_SCAN_TOO_BIG;
        switch (st) {
        case SL_SCAN_OBJECT: {
            sl_decode_result_t dr;
            sl_err_t err =
                sl_decode_message(r->decoder, buf + start, sr.len, r->objects++, r->batch, &dr);
            if (err != SL_OK) {
                sl_log(SL_LOG_ERROR, "cannot decode", SL_STR("error", sl_err_str(err)));
                goto out;
            }
            start += sr.len;
            if (sl_batch_rows(r->batch) >= r->conf.batch_size && run_batches(r, 0) != 0)
                goto out;
            break;
        }
        case SL_SCAN_INVALID:
        case SL_SCAN_TOO_BIG:
            if (push_error(r, sr.err) != 0)
                goto out;
            start += sr.skip;
            break;
        case SL_SCAN_SKIPPED: start += sr.skip; break;
        case SL_SCAN_NEED_MORE:
        default:
            start += sr.skip;
            if (start > 0) {
                memmove(buf, buf + start, end - start);
                end -= start;
                start = 0;
            }
            if (end == cap) { /* cannot happen: the scanner reports TOO_BIG first */
                sl_log(SL_LOG_ERROR, "internal error: input buffer full",
                       SL_U64("bytes", (uint64_t)end));
                goto out;
            }
            size_t want = cap - end < READ_CHUNK ? cap - end : READ_CHUNK;
            size_t got = fread(buf + end, 1, want, r->in);
            end += got;
            if (got == 0) {
                if (ferror(r->in)) {
                    sl_log(SL_LOG_ERROR, "cannot read input", SL_STR("path", r->in_name),
                           SL_STR("error", strerror(errno)));
                    goto out;
                }
                eof = 1;
            }
            break;
        }
    }
    if (run_batches(r, 1) != 0 || flush_output(r) != 0)
        goto out;
    rc = 0;
out:
    free(buf);
    return rc;
}

static void log_summary(replay_t *r, double seconds) {
    const sl_metrics_t *m = sl_learner_metrics(r->learner);
    sl_metrics_view_t all = sl_metrics_total(m), win = sl_metrics_window(m);
    sl_learner_counters_t c = sl_learner_counters(r->learner);
    sl_runner_counts_t n = sl_runner_counts(r->runner);
    sl_log(SL_LOG_INFO, "replay finished", SL_U64("objects", r->objects),
           SL_U64("samples", n.predicted), SL_U64("labelled", n.labelled), SL_U64("bad", n.bad),
           SL_U64("steps", c.step), SL_U64("refused_steps", n.refused), SL_DBL("seconds", seconds),
           SL_DBL("samples_per_s", seconds > 0 ? (double)n.predicted / seconds : 0),
           SL_DBL("loss", all.loss), SL_DBL("accuracy", all.accuracy), SL_DBL("mae", all.mae),
           SL_DBL("rmse", all.rmse), SL_DBL("window_loss", win.loss),
           SL_DBL("window_accuracy", win.accuracy), SL_DBL("window_mae", win.mae),
           SL_DBL("window_rmse", win.rmse));
}

/* --report: the prequential score (accuracy, or R^2 for regression) over all
 * labelled samples and over the window, and what produced it. */
static void print_report(replay_t *r) {
    const sl_learnconf_t *c = &r->conf;
    const sl_metrics_t *m = sl_learner_metrics(r->learner);
    sl_metrics_view_t all = sl_metrics_total(m), win = sl_metrics_window(m);
    sl_learner_counters_t k = sl_learner_counters(r->learner);
    sl_runner_counts_t n = sl_runner_counts(r->runner);
    const sl_optim_config_t *oc = sl_learner_optim_config(r->learner);
    const sl_scaler_t *sc = sl_learner_scaler_const(r->learner);
    char hidden[128] = "-";
    for (uint32_t i = 0, pos = 0; i < c->model.n_hidden; i++)
        pos += (uint32_t)snprintf(hidden + pos, sizeof hidden - pos, "%s%u", i ? "," : "",
                                  c->model.hidden[i]);
    FILE *f = stderr;
    fprintf(f, "prequential report (every sample scored before it was trained on)\n");
    fprintf(f, "  model      %s, dim %u", sl_model_head_name(c->model.head), c->model.dim);
    if (c->model.head == SL_HEAD_SOFTMAX)
        fprintf(f, ", classes %u", c->model.classes);
    fprintf(f, ", hidden %s; scale %s", hidden, sl_scaler_mode_name(sl_scaler_requested(sc)));
    if (sl_scaler_mode(sc) != sl_scaler_requested(sc))
        fprintf(f, " (%s)", sl_scaler_mode_name(sl_scaler_mode(sc)));
    fprintf(f, "\n  optimizer  %s, lr %g, batch %u\n", sl_optim_kind_name(oc->kind), oc->lr,
            c->batch_size);
    fprintf(f,
            "  samples    %" PRIu64 " (%" PRIu64 " labelled), %" PRIu64 " steps, %" PRIu64
            " refused, %" PRIu64 " bad\n",
            n.predicted, n.labelled, k.step, n.refused, n.bad);
    if (all.count == 0) {
        fprintf(f, "  score      - (no labelled samples)\n");
        return;
    }
    if (c->model.head == SL_HEAD_LINEAR) {
        double var = r->y_w > 0 ? r->y_m2 / r->y_w : 0;
        fprintf(f, "  score      R^2 %.4f (1 - MSE / variance of y, all labelled samples)\n",
                var > 0 ? 1 - all.rmse * all.rmse / var : NAN);
        fprintf(f, "  all        rmse %.6g  mae %.6g  loss %.6g  (%" PRIu64 " samples)\n", all.rmse,
                all.mae, all.loss, all.count);
        fprintf(f, "  window     rmse %.6g  mae %.6g  loss %.6g  (last %" PRIu64 ")\n", win.rmse,
                win.mae, win.loss, win.count);
    } else {
        fprintf(f, "  score      accuracy %.4f (all labelled samples)\n", all.accuracy);
        fprintf(f, "  all        accuracy %.4f  loss %.6g  (%" PRIu64 " samples)\n", all.accuracy,
                all.loss, all.count);
        fprintf(f, "  window     accuracy %.4f  loss %.6g  (last %" PRIu64 ")\n", win.accuracy,
                win.loss, win.count);
    }
}

/* Writes the final weights to `path` in fmt (ONNX: with what replay knows of
 * their provenance), the scaler folded into layer 0 when `fold`. */
static int save_weights(replay_t *r, const char *path, sl_export_format_t fmt, int fold) {
    char why[512], now[40];
    sl_format_rfc3339(sl_wall_ms(), now, sizeof now);
    sl_learner_counters_t c = sl_learner_counters(r->learner);
    sl_onnx_meta_t meta = {.created_at = now, .samples = c.samples, .step = c.step};
    sl_err_t err = sl_export_write(r->learner, fmt, fold, &meta, path, why, sizeof why);
    if (err != SL_OK) {
        sl_log(SL_LOG_ERROR, "cannot save weights", SL_STR("path", path), SL_STR("error", why));
        return -1;
    }
    return 0;
}

/* Monotonic seconds, finer than sl_now_ms: a benchmark's replay takes ~0.2 s. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static FILE *open_stream(const char *path, int writing) {
    if (strcmp(path, "-") == 0)
        return writing ? stdout : stdin;
    return fopen(path, writing ? "wb" : "rb");
}

int sl_cmd_replay(int argc, char **argv) {
    char errstr[512];
    int code = 2;
    replay_t r = {0};
    r.bad_log.interval_ms = 1000;
    r.bad_log.burst = 10;
    sl_opts_t *o = sl_opts_start(SL_CMD_REPLAY, "replay", usage, argc, argv, &code);
    if (!o)
        return code;
    if (sl_learnconf_load(o, &r.conf, errstr, sizeof errstr) != SL_OK) {
        fprintf(stderr, "streamlearn replay: %s\n", errstr);
        goto out;
    }
    if (sl_opts_str(o, "input", &r.in_name) != SL_OK) {
        fprintf(stderr, "streamlearn replay: --input: required (a file, or - for stdin)\n");
        goto out;
    }
    sl_opts_str(o, "output", &r.out_name);
    const char *save = NULL;
    sl_opts_str(o, "save", &save);
    int fold = 0;
    if (sl_opts_bool(o, "report", &r.report, errstr, sizeof errstr) != SL_OK ||
        sl_opts_bool(o, "fold-scaler", &fold, errstr, sizeof errstr) != SL_OK) {
        fprintf(stderr, "streamlearn replay: %s\n", errstr);
        goto out;
    }
    /* Scaling nodes count only when on and not folded (with --init and
     * --scale auto, the file may turn it off: the check is then generous). */
    int scaled = r.conf.scale != SL_SCALE_OFF && !fold;
    sl_export_format_t save_fmt = SL_EXPORT_SAFETENSORS;
    if (save &&
        (sl_export_pick(NULL, save, "--save", &save_fmt, errstr, sizeof errstr) != SL_OK ||
         sl_export_check(save_fmt, &r.conf.model, scaled, errstr, sizeof errstr) != SL_OK)) {
        fprintf(stderr, "streamlearn replay: --save %s: %s\n", save, errstr);
        goto out;
    }

    sl_err_t err = sl_learnconf_create(&r.conf, &r.learner, errstr, sizeof errstr);
    if (err != SL_OK) {
        fprintf(stderr, "streamlearn replay: %s\n", errstr);
        code = sl_learnconf_exit_code(err);
        goto out;
    }
    sl_decode_config_t dc = {.dim = r.conf.model.dim,
                             .head = r.conf.model.head,
                             .classes = r.conf.model.classes,
                             .max_message_bytes = r.conf.max_message_bytes};
    code = 1;
    sl_runner_config_t rc = {.batch_size = r.conf.batch_size};
    r.decoder = sl_decoder_new(&dc, errstr, sizeof errstr);
    r.runner = r.decoder ? sl_runner_new(&rc, r.learner, errstr, sizeof errstr) : NULL;
    r.batch = sl_batch_new(r.conf.model.dim, r.conf.batch_size);
    if (!r.decoder || !r.runner || !r.batch) {
        fprintf(stderr, "streamlearn replay: %s\n",
                r.decoder && r.runner ? "out of memory" : errstr);
        goto out;
    }
    r.in = open_stream(r.in_name, 0);
    if (!r.in) { /* the file the command names is wrong: usage, not a runtime failure */
        fprintf(stderr, "streamlearn replay: --input %s: cannot open the samples file: %s\n",
                r.in_name, strerror(errno));
        code = 2;
        goto out;
    }
    r.out = open_stream(r.out_name, 1);
    if (!r.out) {
        fprintf(stderr, "streamlearn replay: --output %s: %s\n", r.out_name, strerror(errno));
        goto out;
    }

    double t0 = now_s();
    if (replay_stream(&r) != 0)
        goto out;
    if (fflush(r.out) != 0) {
        fprintf(stderr, "streamlearn replay: --output %s: %s\n", r.out_name, strerror(errno));
        goto out;
    }
    log_summary(&r, now_s() - t0);
    if (r.report)
        print_report(&r);
    if (save && save_weights(&r, save, save_fmt, fold) != 0)
        goto out;
    code = 0;
    sl_runner_counts_t counts = sl_runner_counts(r.runner);
    if (counts.bad > 0 &&
        counts.predicted == 0) { /* nothing usable: wrong flags or not a samples file */
        fprintf(stderr,
                "streamlearn replay: --input %s: all %" PRIu64 " samples were bad (see the "
                "warnings above); check --dim, --model and --classes, and that the file holds "
                "msgpack samples\n",
                r.in_name, counts.bad);
        code = 2;
    }
out:
    if (r.in && r.in != stdin)
        fclose(r.in);
    if (r.out && r.out != stdout && fclose(r.out) != 0 && code == 0) {
        fprintf(stderr, "streamlearn replay: --output %s: %s\n", r.out_name, strerror(errno));
        code = 1;
    }
    sl_buf_free(&r.outbuf);
    sl_runner_destroy(r.runner);
    sl_batch_destroy(r.batch);
    sl_decoder_destroy(r.decoder);
    sl_learner_destroy(r.learner);
    sl_opts_destroy(o);
    return code;
}
