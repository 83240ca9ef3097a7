/* commands.h - the subcommands of the streamlearn binary. Each takes the
 * arguments after its name and returns the process exit status: 0 success,
 * 1 a runtime failure, 2 bad usage or config (README.md, "Exit status"). */
#ifndef SL_COMMANDS_H
#define SL_COMMANDS_H

int sl_cmd_replay(int argc, char **argv);

/* The Kafka worker (cli/run.c). */
int sl_cmd_run(int argc, char **argv);

/* The embedded Kafka-protocol cluster for development (cli/devkafka_cmd.c). */
int sl_cmd_dev_kafka(int argc, char **argv);

/* Synthetic sample streams with drift, to a file or a topic (cli/gen.c). */
int sl_cmd_gen(int argc, char **argv);

/* Versions in Redis: list, show, rollback, pin, unpin, export, import (cli/models.c). */
int sl_cmd_models(int argc, char **argv);

#endif
