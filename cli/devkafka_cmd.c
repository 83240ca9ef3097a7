/* devkafka_cmd.c - `streamlearn dev-kafka`: serves an embedded Kafka-protocol
 * cluster until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "common/fileio.h"
#include "common/log.h"
#include "consumer/devkafka.h"

static const char usage[] =
    "usage: streamlearn dev-kafka [--broker-count N] [--topics NAME:PARTITIONS,...] "
    "[--bootstrap-file PATH]\n\n"
    "Serves an embedded Kafka-protocol cluster on loopback (librdkafka's mock cluster)\n"
    "for development and tests: prints the bootstrap address on the first line of\n"
    "stdout (and writes it to PATH), then serves until SIGINT or SIGTERM. Any Kafka\n"
    "client can produce, consume and join groups. Limits: random ports, no TLS/SASL,\n"
    "about 5 MB kept per partition (older data is dropped). Not for production.";

int sl_cmd_dev_kafka(int argc, char **argv) {
    char errstr[512];
    int code = 2;
    sl_devkafka_t *d = NULL;
    sl_opts_t *o = sl_opts_start(SL_CMD_DEVKAFKA, "dev-kafka", usage, argc, argv, &code);
    if (!o)
        return code;
    uint64_t brokers = 1;
    const char *topics = NULL, *file = NULL;
    if (sl_opts_npositional(o) > 0) {
        fprintf(stderr, "streamlearn dev-kafka: unexpected argument \"%s\"\n",
                sl_opts_positional(o, 0));
        goto out;
    }
    if (sl_opts_uint(o, "broker-count", 1, 16, &brokers, errstr, sizeof errstr) != SL_OK) {
        fprintf(stderr, "streamlearn dev-kafka: %s\n", errstr);
        goto out;
    }
    sl_opts_str(o, "topics", &topics);
    sl_opts_str(o, "bootstrap-file", &file);

    /* Block the stop signals before librdkafka starts its threads, so they
     * inherit the mask and sigwait below receives them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    code = 1;
    d = sl_devkafka_new((int)brokers, errstr, sizeof errstr);
    if (!d) {
        fprintf(stderr, "streamlearn dev-kafka: %s\n", errstr);
        goto out;
    }
    sl_err_t err = sl_devkafka_create_topics(d, topics, errstr, sizeof errstr);
    if (err != SL_OK) {
        fprintf(stderr, "streamlearn dev-kafka: %s\n", errstr);
        code = err == SL_ERR_INVAL ? 2 : 1;
        goto out;
    }
    const char *bootstraps = sl_devkafka_bootstraps(d);
    if (file) {
        char line[1024];
        int n = snprintf(line, sizeof line, "%s\n", bootstraps);
        if (sl_fileio_write_atomic(file, line, (size_t)n, errstr, sizeof errstr) != SL_OK) {
            fprintf(stderr, "streamlearn dev-kafka: --bootstrap-file: %s\n", errstr);
            goto out;
        }
    }
    printf("%s\n", bootstraps);
    fflush(stdout);
    sl_log(SL_LOG_INFO, "dev-kafka serving", SL_STR("bootstrap", bootstraps),
           SL_U64("brokers", brokers), SL_STR("topics", topics ? topics : ""));
    int sig = 0;
    sigwait(&stop, &sig);
    sl_log(SL_LOG_INFO, "dev-kafka stopping",
           SL_STR("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    code = 0;
out:
    sl_devkafka_destroy(d);
    sl_opts_destroy(o);
    return code;
}
