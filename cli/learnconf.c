/* learnconf.c - learning flags -> sl_model_config_t / sl_optim_config_t -> learner. */

#include "learnconf.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/fileio.h"
#include "common/log.h"
#include "model/linalg.h"
#include "model/safetensors.h"

/* "64,32" -> hidden sizes; "" -> none. */
static sl_err_t parse_hidden(const sl_opts_t *o, sl_model_config_t *m, char *errstr,
                             size_t errstr_size) {
    const char *s = "";
    sl_opts_str(o, "hidden", &s);
    m->n_hidden = 0;
    while (*s) {
        char *end = NULL;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || v == 0 || v > SL_MODEL_MAX_WIDTH || (*end && *end != ',')) {
            sl_errstr_set(errstr, errstr_size,
                          "%s: \"%s\" is not a comma-separated list of layer sizes 1..%u",
                          sl_opts_origin(o, "hidden"), s, SL_MODEL_MAX_WIDTH);
            return SL_ERR_INVAL;
        }
        if (m->n_hidden == SL_MAX_HIDDEN) {
            sl_errstr_set(errstr, errstr_size, "%s: at most %d hidden layers",
                          sl_opts_origin(o, "hidden"), SL_MAX_HIDDEN);
            return SL_ERR_INVAL;
        }
        m->hidden[m->n_hidden++] = (uint32_t)v;
        s = *end ? end + 1 : end;
    }
    return SL_OK;
}

/* A choice option turned into its enum by the owning module's parser. */
#define LOAD_CHOICE(o, name, parse, out)                                                           \
    do {                                                                                           \
        const char *value_ = NULL;                                                                 \
        if ((err = sl_opts_choice((o), (name), &value_, errstr, errstr_size)) != SL_OK)            \
            return err;                                                                            \
        if (parse(value_, (out)) != SL_OK) {                                                       \
            sl_errstr_set(errstr, errstr_size, "%s: \"%s\" is not known to this build",            \
                          sl_opts_origin((o), (name)), value_);                                    \
            return SL_ERR_INVAL;                                                                   \
        }                                                                                          \
    } while (0)

/* The optimizer's real-valued flags and the config field each sets. */
static const struct {
    const char *flag;
    size_t offset;
} optim_reals[] = {
    {"lr", offsetof(sl_optim_config_t, lr)},
    {"momentum", offsetof(sl_optim_config_t, momentum)},
    {"beta1", offsetof(sl_optim_config_t, beta1)},
    {"beta2", offsetof(sl_optim_config_t, beta2)},
    {"alpha", offsetof(sl_optim_config_t, alpha)},
    {"eps", offsetof(sl_optim_config_t, eps)},
    {"weight-decay", offsetof(sl_optim_config_t, weight_decay)},
    {"ftrl-alpha", offsetof(sl_optim_config_t, ftrl_alpha)},
    {"ftrl-beta", offsetof(sl_optim_config_t, ftrl_beta)},
    {"l1", offsetof(sl_optim_config_t, l1)},
    {"l2", offsetof(sl_optim_config_t, l2)},
    {"clip-norm", offsetof(sl_optim_config_t, clip_norm)},
};
#define N_OPTIM_REALS (sizeof optim_reals / sizeof optim_reals[0])

static double *optim_field(sl_optim_config_t *c, size_t i) {
    return (double *)((char *)c + optim_reals[i].offset);
}

/* Warns about optimizer flags the chosen optimizer does not use (--momentum
 * with adam, ...). Which flags an optimizer uses is model/optim's knowledge:
 * sl_optim_config_resolve zeroes the fields its rule does not use, so a
 * probe config with every field set shows them. */
static void warn_unused_optim_flags(const sl_opts_t *o, const sl_optim_config_t *chosen) {
    sl_optim_config_t probe = sl_optim_config_default(chosen->kind);
    for (size_t i = 0; i < N_OPTIM_REALS; i++)
        *optim_field(&probe, i) = 0.5;
    probe.nesterov = 1;
    char why[256];
    if (sl_optim_config_resolve(&probe, why, sizeof why) != SL_OK)
        return; /* cannot tell: say nothing rather than something wrong */
    const char *opt = sl_optim_kind_name(chosen->kind);
    for (size_t i = 0; i < N_OPTIM_REALS; i++)
        if (*optim_field(&probe, i) == 0 && sl_opts_given(o, optim_reals[i].flag))
            sl_log(SL_LOG_WARN, "setting ignored: the optimizer does not use it",
                   SL_STR("setting", sl_opts_origin(o, optim_reals[i].flag)),
                   SL_STR("optimizer", opt));
    int nesterov = 0;
    char err[64];
    if (!probe.nesterov && sl_opts_given(o, "nesterov") &&
        sl_opts_bool(o, "nesterov", &nesterov, err, sizeof err) == SL_OK && nesterov)
        sl_log(SL_LOG_WARN, "setting ignored: the optimizer does not use it",
               SL_STR("setting", sl_opts_origin(o, "nesterov")), SL_STR("optimizer", opt));
}

/* Optional double: unset keeps NAN (the optimizer's default). */
static sl_err_t opt_double(const sl_opts_t *o, const char *name, double min, double max,
                           double *out, char *errstr, size_t errstr_size) {
    sl_err_t err = sl_opts_double(o, name, min, max, out, errstr, errstr_size);
    return err == SL_ERR_EOF ? SL_OK : err;
}

sl_err_t sl_learnconf_load(const sl_opts_t *o, sl_learnconf_t *c, char *errstr,
                           size_t errstr_size) {
    memset(c, 0, sizeof *c);
    uint64_t u;
    sl_err_t err;

    LOAD_CHOICE(o, "model", sl_model_head_parse, &c->model.head);
    err = sl_opts_uint(o, "dim", 1, SL_MODEL_MAX_DIM, &u, errstr, errstr_size);
    if (err == SL_ERR_EOF) {
        sl_errstr_set(errstr, errstr_size, "--dim: required (number of input features)");
        return SL_ERR_INVAL;
    }
    if (err != SL_OK)
        return err;
    c->model.dim = (uint32_t)u;
    err = sl_opts_uint(o, "classes", 2, SL_MODEL_MAX_WIDTH, &u, errstr, errstr_size);
    if (c->model.head == SL_HEAD_SOFTMAX) {
        if (err == SL_ERR_EOF) {
            sl_errstr_set(errstr, errstr_size, "--classes: required with --model softmax");
            return SL_ERR_INVAL;
        }
        if (err != SL_OK)
            return err;
        c->model.classes = (uint32_t)u;
    } else if (err != SL_ERR_EOF) {
        sl_errstr_set(errstr, errstr_size, "%s: only applies to --model softmax",
                      sl_opts_origin(o, "classes"));
        return SL_ERR_INVAL;
    } else {
        c->model.classes = 1;
    }
    if ((err = parse_hidden(o, &c->model, errstr, errstr_size)) != SL_OK)
        return err;
    LOAD_CHOICE(o, "activation", sl_model_act_parse, &c->model.activation);
    if (c->model.n_hidden == 0 && sl_opts_given(o, "activation"))
        sl_log(SL_LOG_WARN,
               "setting ignored: an activation applies between layers, and "
               "there is no hidden layer (--hidden)",
               SL_STR("setting", sl_opts_origin(o, "activation")));
    if ((err = sl_opts_uint(o, "seed", 0, UINT64_MAX, &c->seed, errstr, errstr_size)) != SL_OK)
        return err;
    if (sl_opts_str(o, "init", &c->init_path) != SL_OK)
        c->init_path = NULL;
    LOAD_CHOICE(o, "scale", sl_scaler_mode_parse, &c->scale);

    sl_optim_kind_t kind;
    LOAD_CHOICE(o, "optimizer", sl_optim_kind_parse, &kind);
    c->optim = sl_optim_config_default(kind);
    for (size_t i = 0; i < N_OPTIM_REALS; i++)
        if ((err = opt_double(o, optim_reals[i].flag, -INFINITY, INFINITY,
                              optim_field(&c->optim, i), errstr, errstr_size)) != SL_OK)
            return err;
    if ((err = sl_opts_bool(o, "nesterov", &c->optim.nesterov, errstr, errstr_size)) != SL_OK)
        return err;
    /* Before auto was the default, --lr alone set Adam's: say what it sets now. */
    if (c->optim.kind == SL_OPTIM_AUTO && !isnan(c->optim.lr) &&
        strcmp(sl_opts_origin(o, "optimizer"), "default") == 0)
        sl_log(SL_LOG_WARN,
               "--lr without --optimizer sets the auto optimizer's base step (default 2), not "
               "Adam's learning rate; add --optimizer adam for that",
               SL_STR("lr_from", sl_opts_origin(o, "lr")), SL_DBL("lr", c->optim.lr));
    if ((err = sl_optim_config_resolve(&c->optim, errstr, errstr_size)) != SL_OK)
        return err;
    warn_unused_optim_flags(o, &c->optim);

    if ((err = sl_opts_uint(o, "batch-size", 1, 1u << 20, &u, errstr, errstr_size)) != SL_OK)
        return err;
    c->batch_size = (uint32_t)u;
    if ((err = sl_opts_uint(o, "metrics-window", 1, SL_METRICS_MAX_WINDOW, &u, errstr,
                            errstr_size)) != SL_OK)
        return err;
    c->metrics_window = (uint32_t)u;
    if ((err = sl_opts_uint(o, "blas-threads", 1, 256, &u, errstr, errstr_size)) != SL_OK)
        return err;
    c->blas_threads = (uint32_t)u;
    if ((err = sl_opts_uint(o, "max-message-bytes", 16, 1u << 30, &u, errstr, errstr_size)) !=
        SL_OK)
        return err;
    c->max_message_bytes = (size_t)u;
    return SL_OK;
}

/* --scale after --init: the file's scaler (has_scaler) or none, reconciled
 * with the flag (see learnconf.h). */
static sl_err_t init_scale(sl_learner_t *l, const sl_learnconf_t *c, int has_scaler, char *errstr,
                           size_t errstr_size) {
    sl_scale_mode_t file = sl_scaler_requested(sl_learner_scaler(l));
    sl_scale_mode_t in_force = sl_scaler_mode(sl_learner_scaler(l));
    if (!has_scaler)
        return c->scale == SL_SCALE_AUTO ? SL_OK
                                         : sl_learner_set_scale(l, c->scale, errstr, errstr_size);
    if (c->scale == SL_SCALE_OFF) {
        const float *shift, *mult;
        sl_learner_input_transform(l, &shift, &mult);
        sl_model_fold_input(sl_learner_model(l), shift, mult);
        /* the statistics are in layer 0 now: forget them, so that the
         * learner, which has not trained, takes no scaling */
        sl_scaler_reset(sl_learner_scaler(l));
        return sl_learner_set_scale(l, SL_SCALE_OFF, errstr, errstr_size);
    }
    if (c->scale != SL_SCALE_AUTO && c->scale != file && c->scale != in_force) {
        sl_errstr_set(errstr, errstr_size,
                      "--scale %s: the --init file carries a %s scaler; use --scale auto to keep "
                      "it, or off to fold it into layer 0",
                      sl_scaler_mode_name(c->scale),
                      sl_scaler_mode_name(in_force == SL_SCALE_AUTO ? file : in_force));
        return SL_ERR_INVAL;
    }
    return SL_OK;
}

/* Weights files beyond this are refused before reading (a 2^28-float model). */
#define MAX_WEIGHTS_FILE ((size_t)1 << 30)

/* Warns when the --init file records a head or activation (streamlearn's
 * metadata) other than the flags': the weights load, but they were trained
 * for another function. */
static void warn_init_metadata(const sl_learnconf_t *c, const uint8_t *buf, size_t len) {
    sl_model_config_t file = c->model;
    char why[256];
    if (sl_safetensors_infer_config(buf, len, &file, why, sizeof why) != SL_OK)
        return;
    if (c->model.n_hidden > 0 && file.activation != c->model.activation)
        sl_log(SL_LOG_WARN, "--init file was saved with another activation; using the flag's",
               SL_STR("path", c->init_path), SL_STR("file", sl_model_act_name(file.activation)),
               SL_STR("activation", sl_model_act_name(c->model.activation)));
    if (file.head != c->model.head)
        sl_log(SL_LOG_WARN, "--init file was saved with another head; using the flag's",
               SL_STR("path", c->init_path), SL_STR("file", sl_model_head_name(file.head)),
               SL_STR("model", sl_model_head_name(c->model.head)));
}

sl_err_t sl_learnconf_create(const sl_learnconf_t *c, sl_learner_t **out, char *errstr,
                             size_t errstr_size) {
    *out = NULL;
    sl_linalg_set_threads((int)c->blas_threads);
    sl_learner_t *l =
        sl_learner_new(&c->model, &c->optim, c->seed, c->metrics_window, errstr, errstr_size);
    if (!l) /* errstr says why; sl_learner_new does not tell a refused config (ftrl with
             * hidden layers) from out of memory, and a refused config is what happens */
        return SL_ERR_INVAL;
    sl_err_t err;
    if (!c->init_path) {
        if ((err = sl_learner_set_scale(l, c->scale, errstr, errstr_size)) != SL_OK)
            goto fail;
        *out = l;
        return SL_OK;
    }

    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    err = sl_fileio_read(c->init_path, MAX_WEIGHTS_FILE, &buf, &len, why, sizeof why);
    if (err != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "--init: %s", why);
        goto fail;
    }
    int has_scaler = 0;
    err = sl_safetensors_import_learner(l, buf, len, &has_scaler, why, sizeof why);
    if (err == SL_OK)
        warn_init_metadata(c, buf, len);
    free(buf);
    if (err != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "--init %s: %s", c->init_path, why);
        goto fail;
    }
    if ((err = init_scale(l, c, has_scaler, errstr, errstr_size)) != SL_OK)
        goto fail;
    sl_learner_params_changed(l);
    *out = l;
    return SL_OK;

fail:
    sl_learner_destroy(l);
    return err;
}

int sl_learnconf_exit_code(sl_err_t err) {
    return err == SL_ERR_NOMEM ? 1 : 2;
}
