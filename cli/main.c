/* main.c - the streamlearn binary: dispatches to a subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/options.h"

/* Prints docs/CONFIGURATION.md (the option table as Markdown) on stdout. */
static int help_config(int argc, char **argv) {
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "usage: streamlearn help-config   (prints docs/CONFIGURATION.md)\n");
        return 2;
    }
    sl_opts_print_markdown(stdout);
    return 0;
}

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command_t;

static const command_t commands[] = {
    {"run", sl_cmd_run, "the worker: Kafka in, predictions out"},
    {"replay", sl_cmd_replay,
     "the learning pipeline over a file (backfill, debugging, benchmarks)"},
    {"gen", sl_cmd_gen, "synthetic sample streams with concept drift, to a file or a topic"},
    {"dev-kafka", sl_cmd_dev_kafka, "an embedded Kafka-protocol cluster for development and tests"},
    {"models", sl_cmd_models, "inspect and steer model versions in Redis"},
    {"help-config", help_config, "print the configuration reference (Markdown)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: streamlearn <command> [flags]   (streamlearn <command> --help)\n\n"
                 "Online learning on a stream: samples in, predictions out, the model\n"
                 "learning from every labelled sample.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  --version    print the version\n");
}

/* OpenBLAS sizes its thread pool in a library constructor, before main, from
 * OPENBLAS_NUM_THREADS (default: one thread per core). streamlearn runs BLAS
 * on --blas-threads threads (default 1), and the idle pool threads still cost
 * CPU: about 15% of the worker's CPU per sample in bench/kafka.sh. So when the
 * variable is unset, the binary re-executes itself once with it set to 1;
 * --blas-threads N > 1 grows the pool again (openblas_set_num_threads). An
 * operator's own OPENBLAS_NUM_THREADS is left alone. */
static void pin_openblas_pool(char **argv) {
    if (getenv("OPENBLAS_NUM_THREADS"))
        return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) != 0)
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the default pool */
}

int main(int argc, char **argv) {
    pin_openblas_pool(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("streamlearn %s\n", SL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 2, argv + 2);
    fprintf(stderr, "streamlearn: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
