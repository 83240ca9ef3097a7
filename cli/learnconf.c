/* learnconf.c - learning flags -> sl_model_config_t / sl_optim_config_t -> learner. */

#include "learnconf.h"

#include <math.h>
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
    int choice;
    sl_err_t err;

    if ((err = sl_opts_choice(o, "model", &choice, errstr, errstr_size)) != SL_OK)
        return err;
    c->model.head = (sl_head_t)choice;
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
    if ((err = sl_opts_choice(o, "activation", &choice, errstr, errstr_size)) != SL_OK)
        return err;
    c->model.activation = (sl_act_t)choice;
    if ((err = sl_opts_uint(o, "seed", 0, UINT64_MAX, &c->seed, errstr, errstr_size)) != SL_OK)
        return err;
    if (sl_opts_str(o, "init", &c->init_path) != SL_OK)
        c->init_path = NULL;
    if ((err = sl_opts_choice(o, "scale", &choice, errstr, errstr_size)) != SL_OK)
        return err;
    c->scale = (sl_scale_mode_t)choice;

    if ((err = sl_opts_choice(o, "optimizer", &choice, errstr, errstr_size)) != SL_OK)
        return err;
    c->optim = sl_optim_config_default((sl_optim_kind_t)choice);
    const double inf = INFINITY;
    struct {
        const char *name;
        double *field;
    } reals[] = {
        {"lr", &c->optim.lr},
        {"momentum", &c->optim.momentum},
        {"beta1", &c->optim.beta1},
        {"beta2", &c->optim.beta2},
        {"alpha", &c->optim.alpha},
        {"eps", &c->optim.eps},
        {"weight-decay", &c->optim.weight_decay},
        {"ftrl-alpha", &c->optim.ftrl_alpha},
        {"ftrl-beta", &c->optim.ftrl_beta},
        {"l1", &c->optim.l1},
        {"l2", &c->optim.l2},
        {"clip-norm", &c->optim.clip_norm},
    };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        if ((err = opt_double(o, reals[i].name, -inf, inf, reals[i].field, errstr, errstr_size)) !=
            SL_OK)
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

sl_learner_t *sl_learnconf_create(const sl_learnconf_t *c, int *exit_code, char *errstr,
                                  size_t errstr_size) {
    *exit_code = 2;
    sl_linalg_set_threads((int)c->blas_threads);
    sl_learner_t *l =
        sl_learner_new(&c->model, &c->optim, c->seed, c->metrics_window, errstr, errstr_size);
    if (!l)
        return NULL;
    if (!c->init_path) {
        if (sl_learner_set_scale(l, c->scale, errstr, errstr_size) == SL_OK)
            return l;
        *exit_code = 1;
        goto fail;
    }

    uint8_t *buf = NULL;
    size_t len = 0;
    char why[256];
    sl_err_t err = sl_fileio_read(c->init_path, MAX_WEIGHTS_FILE, &buf, &len, why, sizeof why);
    if (err != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "--init: %s", why);
        *exit_code = err == SL_ERR_IO ? 1 : 2;
        goto fail;
    }
    int has_scaler = 0;
    err = sl_safetensors_import_learner(l, buf, len, &has_scaler, why, sizeof why);
    free(buf);
    if (err != SL_OK) {
        sl_errstr_set(errstr, errstr_size, "--init %s: %s", c->init_path, why);
        *exit_code = (err == SL_ERR_NOMEM) ? 1 : 2;
        goto fail;
    }
    if ((err = init_scale(l, c, has_scaler, errstr, errstr_size)) != SL_OK) {
        *exit_code = (err == SL_ERR_NOMEM) ? 1 : 2;
        goto fail;
    }
    sl_learner_params_changed(l);
    return l;

fail:
    sl_learner_destroy(l);
    return NULL;
}
