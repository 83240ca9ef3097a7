/* bench_decode.c - throughput of framing + decoding + encoding predictions, against msgpack-c's
 * own generic decode. Not a test. Build and run from the repo root (bash):
 */
/* clang-format off */
/*   gcc -std=c11 -O2 -D_GNU_SOURCE -I. bench/bench_decode.c consumer/{msgscan,batch,decode,encode,murmur3}.c common/{err,buf}.c $(pkg-config --cflags --libs msgpack) -lm -o /tmp/bench_decode && /tmp/bench_decode [samples] */
/* clang-format on */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer/batch.h"
#include "consumer/decode.h"
#include "consumer/encode.h"
#include "consumer/msgscan.h"

#define DIM 32
#define BATCH 256

enum form { F64_ARRAY, F32_ARRAY, BIN };
static const char *form_name[] = {"array of float64", "array of float32", "bin float32"};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* n samples {"id": i, "x": ..., "y": 0/1}, concatenated, as python's msgpack writes them. */
static msgpack_sbuffer make_stream(size_t n, enum form form) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    srand(1);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 3);
        msgpack_pack_str_with_body(&pk, "id", 2);
        msgpack_pack_uint64(&pk, 1000000 + i);
        msgpack_pack_str_with_body(&pk, "x", 1);
        float x[DIM];
        for (int j = 0; j < DIM; j++)
            x[j] = (float)rand() / RAND_MAX - 0.5f;
        if (form == BIN) {
            msgpack_pack_bin_with_body(&pk, x, sizeof(x)); /* little-endian host */
        } else {
            msgpack_pack_array(&pk, DIM);
            for (int j = 0; j < DIM; j++) {
                if (form == F64_ARRAY)
                    msgpack_pack_double(&pk, x[j]);
                else
                    msgpack_pack_float(&pk, x[j]);
            }
        }
        msgpack_pack_str_with_body(&pk, "y", 1);
        msgpack_pack_int(&pk, (int)(i & 1));
    }
    return sb;
}

/* The replay path without file I/O and model: decode (sl_decode_next frames whole
 * objects itself; the scanner only what it declines), encode one output per slot. */
static double run_pipeline(const msgpack_sbuffer *sb, size_t n) {
    sl_decode_config_t cfg = {.dim = DIM, .head = SL_HEAD_LOGISTIC};
    sl_decoder_t *d = sl_decoder_new(&cfg, NULL, 0);
    sl_batch_t *b = sl_batch_new(DIM, BATCH);
    sl_buf_t out = {0};
    sl_msgscan_t scan;
    sl_scan_result_t r;
    sl_msgscan_init(&scan, SL_DECODE_DEFAULT_MAX_BYTES, SL_DECODE_MAX_DEPTH);
    const uint8_t *p = (const uint8_t *)sb->data, *end = p + sb->size;
    size_t good = 0, outputs = 0;
    float pred[1] = {0.5f};
    double t0 = now();
    for (;;) {
        sl_decode_result_t res;
        size_t used = 0;
        if (p < end && sl_decode_next(d, p, (size_t)(end - p), 0, b, &res, &used) != SL_OK)
            exit(1);
        if (used > 0) {
            good += res.good;
            p += used;
            goto run;
        }
        sl_scan_status_t st = sl_msgscan_feed(&scan, p, (size_t)(end - p), 1, &r);
        if (st == SL_SCAN_END)
            break;
        if (st != SL_SCAN_OBJECT) {
            fprintf(stderr, "unexpected scan status %d: %s\n", st, r.err);
            exit(1);
        }
        sl_decode_message(d, p, r.len, 0, b, &res);
        good += res.good;
        p += r.len;
    run:
        if (sl_batch_rows(b) >= BATCH || p == end) {
            for (size_t i = 0; i < sl_batch_slots(b); i++) {
                sl_slot_view_t v;
                sl_batch_slot(b, i, &v);
                sl_encode_prediction(&out, v.id, v.id_len, SL_HEAD_LOGISTIC, pred, 1, 1, 2);
                outputs++;
            }
            sl_batch_clear(b);
            sl_buf_reset(&out);
        }
    }
    double dt = now() - t0;
    if (good != n || outputs != n) {
        fprintf(stderr, "decoded %zu of %zu\n", good, n);
        exit(1);
    }
    sl_buf_free(&out);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
    return dt;
}

/* msgpack-c's generic decode of the same stream, one reused result. */
static double run_msgpack_c(const msgpack_sbuffer *sb, size_t n) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0, count = 0;
    double t0 = now();
    while (msgpack_unpack_next(&u, sb->data, sb->size, &off) > 0)
        count++;
    double dt = now() - t0;
    msgpack_unpacked_destroy(&u);
    if (count != n)
        exit(1);
    return dt;
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    for (int f = F64_ARRAY; f <= BIN; f++) {
        msgpack_sbuffer sb = make_stream(n, (enum form)f);
        double best = 1e9, best_c = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double dt = run_pipeline(&sb, n), dc = run_msgpack_c(&sb, n);
            best = dt < best ? dt : best;
            best_c = dc < best_c ? dc : best_c;
        }
        printf("%-18s %5.1f bytes/sample  frame+decode+encode %6.2f M samples/s  "
               "(msgpack-c unpack alone %5.2f M/s)\n",
               form_name[f], (double)sb.size / n, n / best / 1e6, n / best_c / 1e6);
        msgpack_sbuffer_destroy(&sb);
    }
    return 0;
}
