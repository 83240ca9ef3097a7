/* fuzz_decode.c - libFuzzer target: arbitrary bytes through the decoder, the one-message
 * check, msgpack-c (only on what the check passed), the streaming framer, and replay's
 * stream path (sl_decode_next, the framer only where it declines) against framing every
 * object first. */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consumer/batch.h"
#include "consumer/decode.h"
#include "consumer/encode.h"
#include "consumer/msgscan.h"

#define FRAME_CAP 32

/* Invariants are checked with abort() so libFuzzer reports them as crashes. */
#define require(ok) require_at((ok), #ok, __LINE__)
static void require_at(int ok, const char *what, int line) {
    if (!ok) {
        fprintf(stderr, "fuzz_decode.c:%d: invariant failed: %s\n", line, what);
        abort();
    }
}

static void fuzz_decoder(uint8_t ctl, const uint8_t *msg, size_t len) {
    sl_decode_config_t cfg = {
        .dim = 1u + (ctl >> 2) % 8,
        .head = (sl_head_t)(ctl % 3),
        .classes = 3,
        .max_message_bytes = (ctl & 0x80) ? 64 : 4096,
    };
    sl_decoder_t *d = sl_decoder_new(&cfg, NULL, 0);
    sl_batch_t *b = sl_batch_new(cfg.dim, 2);
    require(d && b);
    /* A good sample first, so undoing a bad message is exercised too. */
    const float x[8] = {1, 0, 2, 0, 3, 0, 4, 0};
    require(sl_batch_push_dense(b, x, 0, 1, 0, 0, NULL, 0) == SL_OK);

    sl_decode_result_t res;
    require(sl_decode_message(d, msg, len, 1, b, &res) == SL_OK);
    require(sl_batch_slots(b) == 1 + res.good + res.bad);
    require(sl_batch_rows(b) == 1 + res.good);

    char err[160];
    sl_err_t chk =
        sl_msgscan_check(msg, len, cfg.max_message_bytes, SL_DECODE_MAX_DEPTH, err, sizeof(err));
    if (chk != SL_OK) {
        /* The decoder's own walk must reach the same verdict. */
        require(res.good == 0 && res.bad == 1);
        require(strncmp(res.first_error, "message: ", 9) == 0);
    } else {
        require(strncmp(res.first_error, "message: ", 9) != 0 ||
                strncmp(res.first_error, "message: expected", 17) == 0);
        /* What the pre-scan passes, msgpack-c parses without surprises. */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        require(msgpack_unpack_next(&u, (const char *)msg, len, &off) == MSGPACK_UNPACK_SUCCESS);
        require(off == len);
        msgpack_unpacked_destroy(&u);
    }

    /* Outputs for every slot, and views over every row. */
    sl_buf_t out = {0};
    float row[3] = {0.25f, 0.5f, 0.25f};
    for (size_t i = 0; i < sl_batch_slots(b); i++) {
        sl_slot_view_t v;
        sl_batch_slot(b, i, &v);
        if (v.good)
            require(sl_encode_prediction(&out, v.id, v.id_len, cfg.head, row,
                                         cfg.head == SL_HEAD_SOFTMAX ? 3 : 1, 1, 2) == SL_OK);
        else
            require(sl_encode_error(&out, v.id, v.id_len, v.error, 1, 2) == SL_OK);
    }
    size_t off = 0, n_out = 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    while (msgpack_unpack_next(&u, (const char *)out.data, out.len, &off) > 0)
        n_out++;
    msgpack_unpacked_destroy(&u);
    require(n_out == sl_batch_slots(b) && off == out.len);

    sl_input_t xin;
    sl_targets_t t;
    sl_batch_view(b, 0, sl_batch_rows(b), &xin, &t);
    for (size_t i = 0; b->sparse && i < xin.n; i++)
        for (size_t k = xin.row_ptr[i]; k < xin.row_ptr[i + 1]; k++)
            require(xin.col[k] < cfg.dim && xin.val[k] == xin.val[k]);
    size_t half = sl_batch_rows(b) / 2, cut = sl_batch_cut(b, half);
    size_t slots = sl_batch_slots(b);
    sl_batch_shift(b, half);
    require(sl_batch_slots(b) == slots - cut);

    sl_buf_free(&out);
    sl_batch_destroy(b);
    sl_decoder_destroy(d);
}

/* The same bytes as a replay stream, refilled `chunk` bytes at a time. */
static void fuzz_framer(uint8_t ctl, const uint8_t *data, size_t n) {
    size_t chunk = 1 + ctl % 16;
    uint8_t buf[FRAME_CAP + SL_MP_MAX_HEAD + 16];
    size_t held = 0, fed = 0;
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, FRAME_CAP, SL_DECODE_MAX_DEPTH);
    for (size_t guard = 0;; guard++) {
        require(guard < 4 * n + 16); /* never stalls */
        int eof = fed == n;
        sl_scan_status_t st = sl_msgscan_feed(&s, buf, held, eof, &r);
        if (st == SL_SCAN_END)
            break;
        size_t drop = st == SL_SCAN_OBJECT ? r.len : r.skip;
        require(drop <= held);
        if (st == SL_SCAN_OBJECT) {
            char err[160];
            require(sl_msgscan_check(buf, r.len, FRAME_CAP, SL_DECODE_MAX_DEPTH, err,
                                     sizeof(err)) == SL_OK);
        }
        if (st == SL_SCAN_INVALID)
            require(drop > 0);
        memmove(buf, buf + drop, held - drop);
        held -= drop;
        if (st == SL_SCAN_NEED_MORE) {
            require(!eof);
            size_t take = n - fed < chunk ? n - fed : chunk;
            require(held + take <= sizeof(buf)); /* the caller's buffer stays bounded */
            memcpy(buf + held, data + fed, take);
            held += take;
            fed += take;
        }
    }
}

/* Replay's two ways through a stream, refilled `chunk` bytes at a time: with
 * fast = 0 the framer frames every object and sl_decode_message decodes it;
 * with fast = 1 sl_decode_next goes first whenever the framer is between
 * objects, as cli/replay.c does. Every slot goes to b, each object's tagged
 * with its index. */
static void stream_into(const sl_decode_config_t *cfg, int fast, size_t chunk, const uint8_t *data,
                        size_t n, sl_batch_t *b) {
    sl_decoder_t *d = sl_decoder_new(cfg, NULL, 0);
    require(d != NULL);
    uint8_t buf[FRAME_CAP + SL_MP_MAX_HEAD + 16];
    size_t held = 0, fed = 0;
    uint64_t objects = 0;
    int framing = 0;
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_decode_result_t res;
    sl_msgscan_init(&s, FRAME_CAP, SL_DECODE_MAX_DEPTH);
    for (size_t guard = 0;; guard++) {
        require(guard < 4 * n + 16);
        size_t drop;
        if (fast && !framing && held > 0) {
            size_t slots0 = sl_batch_slots(b);
            require(sl_decode_next(d, buf, held, objects, b, &res, &drop) == SL_OK);
            require(drop <= held);
            require(sl_batch_slots(b) == slots0 + res.good + res.bad);
            if (drop > 0) {
                objects++;
                memmove(buf, buf + drop, held - drop);
                held -= drop;
                continue;
            }
            require(res.good + res.bad == 0);
        }
        int eof = fed == n;
        sl_scan_status_t st = sl_msgscan_feed(&s, buf, held, eof, &r);
        if (st == SL_SCAN_END)
            break;
        framing = st == SL_SCAN_NEED_MORE || st == SL_SCAN_TOO_BIG;
        drop = st == SL_SCAN_OBJECT ? r.len : r.skip;
        if (st == SL_SCAN_OBJECT)
            require(sl_decode_message(d, buf, r.len, objects++, b, &res) == SL_OK);
        else if (st == SL_SCAN_INVALID || st == SL_SCAN_TOO_BIG)
            require(sl_batch_push_error(b, r.err, objects++, NULL, 0) == SL_OK);
        memmove(buf, buf + drop, held - drop);
        held -= drop;
        if (st == SL_SCAN_NEED_MORE) {
            size_t take = n - fed < chunk ? n - fed : chunk;
            require(held + take <= sizeof(buf));
            memcpy(buf + held, data + fed, take);
            held += take;
            fed += take;
        }
    }
    sl_decoder_destroy(d);
}

/* The fast stream path gives exactly the slots, rows and labels of framing first. */
static void fuzz_stream(uint8_t ctl, const uint8_t *data, size_t n) {
    sl_decode_config_t cfg = {
        .dim = 1u + (ctl >> 2) % 4,
        .head = (sl_head_t)(ctl % 3),
        .classes = 3,
        .max_message_bytes = FRAME_CAP,
    };
    size_t chunk = 1 + (ctl >> 4) % 16;
    sl_batch_t *a = sl_batch_new(cfg.dim, 2), *b = sl_batch_new(cfg.dim, 2);
    require(a && b);
    stream_into(&cfg, 0, chunk, data, n, a);
    stream_into(&cfg, 1, chunk, data, n, b);
    require(sl_batch_slots(a) == sl_batch_slots(b) && sl_batch_rows(a) == sl_batch_rows(b));
    require(a->sparse == b->sparse);
    for (size_t i = 0; i < sl_batch_slots(a); i++) {
        sl_slot_view_t va, vb;
        sl_batch_slot(a, i, &va);
        sl_batch_slot(b, i, &vb);
        require(va.tag == vb.tag && va.good == vb.good && va.row == vb.row);
        require(va.id_len == vb.id_len && (va.id_len == 0 || !memcmp(va.id, vb.id, va.id_len)));
        require(va.good || strcmp(va.error, vb.error) == 0);
    }
    size_t rows = sl_batch_rows(a);
    require(!memcmp(a->y, b->y, rows * sizeof(float)) &&
            !memcmp(a->w, b->w, rows * sizeof(float)) && !memcmp(a->labelled, b->labelled, rows));
    if (!a->sparse) {
        require(!memcmp(a->dense, b->dense, rows * cfg.dim * sizeof(float)));
    } else {
        size_t nnz = a->row_ptr[rows];
        require(!memcmp(a->row_ptr, b->row_ptr, (rows + 1) * sizeof(size_t)));
        require(!memcmp(a->col, b->col, nnz * sizeof(uint32_t)) &&
                !memcmp(a->val, b->val, nnz * sizeof(float)));
    }
    sl_batch_destroy(a);
    sl_batch_destroy(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    fuzz_decoder(data[0], data + 1, size - 1);
    fuzz_framer(data[0], data + 1, size - 1);
    fuzz_stream(data[0], data + 1, size - 1);
    return 0;
}
