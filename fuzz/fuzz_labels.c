/* fuzz_labels.c - libFuzzer target: arbitrary bytes through the label decoder
 * (sl_decode_labels) and the replay record classifier; every label handed out must be
 * well-formed, and what the pre-scan passes must parse with msgpack-c too. The first byte
 * picks the head, the class count and the size cap. */
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/decode.h"
#include "consumer/msgscan.h"

/* Invariants are checked with abort() so libFuzzer reports them as crashes. */
#define require(ok) require_at((ok), #ok, __LINE__)
static void require_at(int ok, const char *what, int line) {
    if (!ok) {
        fprintf(stderr, "fuzz_labels.c:%d: invariant failed: %s\n", line, what);
        abort();
    }
}

static void fuzz_labels(uint8_t ctl, const uint8_t *msg, size_t len) {
    sl_decode_config_t cfg = {
        .dim = 4,
        .head = (sl_head_t)(ctl % 3),
        .classes = 2 + (ctl >> 2) % 4,
        .max_message_bytes = (ctl & 0x80) ? 64 : 4096,
    };
    sl_decoder_t *d = sl_decoder_new(&cfg, NULL, 0);
    require(d != NULL);
    const sl_label_t *l = NULL;
    size_t n = 0;
    sl_decode_result_t res;
    /* twice: the second call must not see anything of the first */
    for (int pass = 0; pass < 2; pass++) {
        require(sl_decode_labels(d, msg, len, &l, &n, &res) == SL_OK);
        require(n == res.good + res.bad);
        require(n <= len + 1); /* never more labels than bytes */
        for (size_t i = 0; i < n; i++) {
            if (l[i].id) {
                require(l[i].id_len > 0);
                require(l[i].id >= msg && l[i].id + l[i].id_len <= msg + len);
            }
            if (l[i].error) {
                require(strlen(l[i].error) > 0);
                continue;
            }
            require(l[i].id != NULL);
            require(isfinite(l[i].y) && isfinite(l[i].w) && l[i].w > 0.0f);
            if (cfg.head == SL_HEAD_LOGISTIC)
                require(l[i].y == 0.0f || l[i].y == 1.0f);
            if (cfg.head == SL_HEAD_SOFTMAX)
                require(l[i].y >= 0.0f && l[i].y < (float)cfg.classes && l[i].y == floorf(l[i].y));
            /* a good label's id is one whole msgpack scalar */
            char err[160];
            require(sl_msgscan_check(l[i].id, l[i].id_len, SIZE_MAX, 1, err, sizeof(err)) == SL_OK);
        }
        if (res.bad)
            require(res.first_error[0] != '\0');
    }

    char err[160];
    if (sl_msgscan_check(msg, len, cfg.max_message_bytes, SL_DECODE_MAX_DEPTH, err, sizeof(err)) !=
        SL_OK) {
        /* The decoder's own walk reaches the same verdict: one bad label, no id. */
        require(n == 1 && res.bad == 1 && l[0].id == NULL);
        require(strncmp(l[0].error, "message: ", 9) == 0);
    } else {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        require(msgpack_unpack_next(&u, (const char *)msg, len, &off) == MSGPACK_UNPACK_SUCCESS);
        require(off == len);
        msgpack_unpacked_destroy(&u);
    }
    (void)sl_decode_is_label_record(msg, len);
    sl_decoder_destroy(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    fuzz_labels(data[0], data + 1, size - 1);
    return 0;
}
