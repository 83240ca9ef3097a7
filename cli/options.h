/* options.h - the option table of every command and its resolution:
 * flags > STREAMLEARN_* environment > INI file (-c) > defaults. */
#ifndef SL_OPTIONS_H
#define SL_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"
#include "common/redact.h"

/* Which commands an option belongs to (bit mask). */
enum {
    SL_CMD_RUN = 1u << 0,
    SL_CMD_REPLAY = 1u << 1,
    SL_CMD_MODELS = 1u << 2,
    SL_CMD_DEVKAFKA = 1u << 3,
    SL_CMD_GEN = 1u << 4,
    SL_CMD_LEARN = SL_CMD_RUN | SL_CMD_REPLAY,
    SL_CMD_ALL = 0x1f,
};

typedef enum sl_opt_type {
    SL_OPT_STR,    /* any string */
    SL_OPT_UINT,   /* unsigned integer, range-checked by the getter */
    SL_OPT_DOUBLE, /* finite real number */
    SL_OPT_BOOL,   /* --flag alone is true; --flag=false, and in the environment or the
                      INI file: true/false/1/0/yes/no/on/off */
    SL_OPT_CHOICE, /* one of `choices` (a '|'-separated list) */
} sl_opt_type_t;

/* One row of the option table: the single source of --help, environment
 * names, INI keys and docs/CONFIGURATION.md. */
typedef struct sl_optdef {
    const char *name; /* flag without dashes: "batch-size" */
    sl_opt_type_t type;
    unsigned commands;   /* SL_CMD_* mask */
    const char *defval;  /* default as text; NULL = unset */
    const char *choices; /* SL_OPT_CHOICE: "linear|logistic|softmax" */
    const char *group;   /* help section: "model", "optimizer", ... */
    const char *help;    /* one line */
    int secret;          /* never printed: values shown as *** */
} sl_optdef_t;

/* The table, terminated by a row with name == NULL. */
extern const sl_optdef_t sl_optdefs[];

typedef enum sl_opt_source {
    SL_SRC_DEFAULT = 0,
    SL_SRC_FILE = 1,
    SL_SRC_ENV = 2,
    SL_SRC_FLAG = 3,
} sl_opt_source_t;

typedef struct sl_opts sl_opts_t;

/* Resolves the options of `command` (an SL_CMD_* bit) from argv (after the
 * command name), the environment and the INI file named by -c/--config.
 * Positional arguments are collected (sl_opts_positional). `--kafka-opt k=v`
 * (repeatable) and the INI `[kafka]` section collect librdkafka properties
 * (flags win over the file per property). One INI file serves every command:
 * a key that is a flag of another command is skipped (noted at debug level by
 * sl_opts_setup_logging); a key no command has is an error. Returns NULL with
 * errstr naming the flag, variable or file key on: unknown flag, missing
 * value, a boolean flag followed by a separate true/false word (it must be
 * --flag=false), unknown INI key, unreadable config file. Values are checked
 * by the getters. Sets *help = 1 (and returns the object) when --help/-h was
 * given. Free with sl_opts_destroy. */
sl_opts_t *sl_opts_parse(unsigned command, int argc, char **argv, int *help, char *errstr,
                         size_t errstr_size);
void sl_opts_destroy(sl_opts_t *o);

/* The common start of a command that takes no positional arguments: parses
 * its options (errors on stderr as "streamlearn NAME: ...", exit status 2),
 * prints --help (exit status 0), refuses positional arguments (2) and calls
 * sl_opts_setup_logging (2 on a bad --log-level). Returns the options, or
 * NULL with *exit_code set. */
sl_opts_t *sl_opts_start(unsigned command, const char *name, const char *usage, int argc,
                         char **argv, int *exit_code);

/* Applies --log-level, then logs at debug level the INI keys skipped because
 * they belong to other commands. SL_ERR_INVAL with errstr for a bad level. */
sl_err_t sl_opts_setup_logging(const sl_opts_t *o, char *errstr, size_t errstr_size);

/* Typed getters. `name` must be in the table for this command (a programming
 * error otherwise: aborts). A value that fails the check returns SL_ERR_INVAL
 * with errstr naming where it came from ("--dim", "STREAMLEARN_DIM",
 * "config file key dim") and why. Unset options (no default, not given)
 * return SL_ERR_EOF from the getters and leave *out untouched. Strings are
 * owned by the opts object. */
int sl_opts_isset(const sl_opts_t *o, const char *name);
/* 1 when `name` was given by a flag, the environment or the file (not a default). */
int sl_opts_given(const sl_opts_t *o, const char *name);
sl_err_t sl_opts_str(const sl_opts_t *o, const char *name, const char **out);
sl_err_t sl_opts_uint(const sl_opts_t *o, const char *name, uint64_t min, uint64_t max,
                      uint64_t *out, char *errstr, size_t errstr_size);
sl_err_t sl_opts_double(const sl_opts_t *o, const char *name, double min, double max, double *out,
                        char *errstr, size_t errstr_size);
sl_err_t sl_opts_bool(const sl_opts_t *o, const char *name, int *out, char *errstr,
                      size_t errstr_size);
/* The value of a choice option, checked against the row's `choices` and
 * spelled as there ("LOGISTIC" -> "logistic"); owned by o. The module that
 * owns the matching enum turns the name into a value (sl_model_head_parse,
 * sl_optim_kind_parse, ...), so the order of `choices` never matters.
 * SL_ERR_INVAL with errstr naming the origin and the choices. */
sl_err_t sl_opts_choice(const sl_opts_t *o, const char *name, const char **out, char *errstr,
                        size_t errstr_size);
/* Where a value came from, for messages: "--dim", "STREAMLEARN_DIM", "config key dim",
 * "default". Static or owned by o. */
const char *sl_opts_origin(const sl_opts_t *o, const char *name);

/* Positional arguments, in order. */
size_t sl_opts_npositional(const sl_opts_t *o);
const char *sl_opts_positional(const sl_opts_t *o, size_t i);

/* librdkafka pass-through properties: count, and the i-th name/value. */
size_t sl_opts_nkafka(const sl_opts_t *o);
void sl_opts_kafka(const sl_opts_t *o, size_t i, const char **name, const char **value);

/* Prints `streamlearn <command>` usage with every option of the command,
 * grouped, with defaults (secret defaults never shown). */
void sl_opts_print_help(unsigned command, const char *usage, FILE *out);

/* Writes the Markdown configuration reference (docs/CONFIGURATION.md) from the table. */
void sl_opts_print_markdown(FILE *out);

#endif
