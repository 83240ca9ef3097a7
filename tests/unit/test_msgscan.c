/* test_msgscan.c - the msgpack pre-scan: header reading, one-message checks, streaming framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "consumer/msgscan.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* --- header reader ----------------------------------------------------- */

static void test_head_reads_every_int_form(void **state) {
    (void)state;
    struct {
        uint8_t b[9];
        sl_mp_kind_t kind;
        int64_t v;
        int hl;
    } cases[] = {
        {{0x05}, SL_MP_UINT, 5, 1},
        {{0xff}, SL_MP_INT, -1, 1},
        {{0xcc, 0xc8}, SL_MP_UINT, 200, 2},
        {{0xcd, 0x12, 0x34}, SL_MP_UINT, 0x1234, 3},
        {{0xce, 0x01, 0x00, 0x00, 0x00}, SL_MP_UINT, 0x1000000, 5},
        {{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}, SL_MP_UINT, 0x100000000LL, 9},
        {{0xd0, 0x80}, SL_MP_INT, -128, 2},
        {{0xd0, 0x05}, SL_MP_UINT, 5, 2}, /* non-negative signed reads as unsigned */
        {{0xd1, 0xff, 0x00}, SL_MP_INT, -256, 3},
        {{0xd2, 0xff, 0xff, 0xff, 0xfe}, SL_MP_INT, -2, 5},
        {{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd}, SL_MP_INT, -3, 9},
    };
    for (size_t i = 0; i < LEN(cases); i++) {
        sl_mp_head_t h = {0};
        int hl = sl_mp_read_head(cases[i].b, (size_t)cases[i].hl, &h);
        assert_int_equal(hl, cases[i].hl);
        assert_int_equal(h.kind, cases[i].kind);
        if (h.kind == SL_MP_UINT)
            assert_int_equal(h.v.u, (uint64_t)cases[i].v);
        else
            assert_int_equal(h.v.i, cases[i].v);
        /* One byte short of the header: more bytes needed, nothing read beyond. */
        if (cases[i].hl > 1)
            assert_int_equal(sl_mp_read_head(cases[i].b, (size_t)cases[i].hl - 1, &h), 0);
    }
}

static void test_head_reads_floats_and_lengths(void **state) {
    (void)state;
    sl_mp_head_t h;
    const uint8_t f32[] = {0xca, 0x3f, 0xc0, 0x00, 0x00}; /* 1.5f */
    assert_int_equal(sl_mp_read_head(f32, sizeof(f32), &h), 5);
    assert_int_equal(h.kind, SL_MP_F32);
    assert_true(h.v.f == 1.5);
    const uint8_t f64[] = {0xcb, 0xc0, 0x04, 0, 0, 0, 0, 0, 0}; /* -2.5 */
    assert_int_equal(sl_mp_read_head(f64, sizeof(f64), &h), 9);
    assert_true(h.v.f == -2.5);
    const uint8_t bin16[] = {0xc5, 0x01, 0x00};
    assert_int_equal(sl_mp_read_head(bin16, sizeof(bin16), &h), 3);
    assert_int_equal(h.kind, SL_MP_BIN);
    assert_int_equal(h.len, 256);
    const uint8_t fixext4[] = {0xd6, 0x01};
    assert_int_equal(sl_mp_read_head(fixext4, sizeof(fixext4), &h), 2);
    assert_int_equal(h.kind, SL_MP_EXT);
    assert_int_equal(sl_mp_payload(&h), 4);
    const uint8_t map32[] = {0xdf, 0, 0, 1, 0};
    assert_int_equal(sl_mp_read_head(map32, sizeof(map32), &h), 5);
    assert_int_equal(h.kind, SL_MP_MAP);
    assert_int_equal(h.len, 256);
    const uint8_t reserved[] = {0xc1};
    assert_int_equal(sl_mp_read_head(reserved, 1, &h), -1);
}

/* --- one message ------------------------------------------------------- */

static sl_err_t check(const uint8_t *b, size_t n, char *err) {
    return sl_msgscan_check(b, n, 1 << 20, 8, err, 160);
}

/* One object holding every kind of value, 2-level nesting. */
static const uint8_t every_kind[] = {
    0x8f,                                                /* map of 15 pairs */
    0x01, 0xc0,                                          /* nil */
    0x02, 0xc3,                                          /* true */
    0x03, 0xcb, 0,    0,    0,    0,    0,   0, 0, 0,    /* float64 */
    0x04, 0xca, 0,    0,    0,    0,                     /* float32 */
    0x05, 0xd9, 0x02, 'h',  'i',                         /* str8 */
    0x06, 0xda, 0x00, 0x01, 'z',                         /* str16 */
    0x07, 0xc4, 0x03, 1,    2,    3,                     /* bin8 */
    0x08, 0xd4, 0x7f, 0x00,                              /* fixext1 */
    0x09, 0xc7, 0x02, 0x05, 0xaa, 0xbb,                  /* ext8 */
    0x0a, 0xdc, 0x00, 0x02, 0x01, 0xa1, 'q',             /* array16 [1, "q"] */
    0x0b, 0x81, 0xa1, 'k',  0x90,                        /* {"k": []} */
    0x0c, 0xd8, 0x01, 0,    0,    0,    0,   0, 0, 0, 0, /* fixext16 */
    0,    0,    0,    0,    0,    0,    0,   0,          /* ... */
    0x0d, 0xd3, 0,    0,    0,    0,    0,   0, 0, 1,    /* int64 */
    0x0e, 0xdb, 0,    0,    0,    0,                     /* empty str32 */
    0x0f, 0x80,                                          /* empty map */
};

static void test_check_accepts_every_kind(void **state) {
    (void)state;
    char err[160] = "";
    assert_int_equal(check(every_kind, sizeof(every_kind), err), SL_OK);
}

static void test_check_every_prefix_is_truncated(void **state) {
    (void)state;
    char err[160];
    for (size_t n = 1; n < sizeof(every_kind); n++) {
        sl_err_t e = check(every_kind, n, err);
        if (e != SL_ERR_TRUNCATED)
            fail_msg("prefix %zu: got %d (%s)", n, e, err);
        assert_non_null(strstr(err, "message: truncated"));
    }
}

static void test_check_trailing_bytes(void **state) {
    (void)state;
    const uint8_t msg[] = {0x81, 0xa1, 'y', 0x01, 0x00, 0x00, 0x00};
    char err[160];
    assert_int_equal(check(msg, sizeof(msg), err), SL_ERR_DECODE);
    assert_string_equal(err, "message: 3 trailing bytes after the sample");
}

/* The 5-byte header that makes msgpack-c reserve ~400 MB is refused on sight. */
static void test_check_huge_declared_array(void **state) {
    (void)state;
    const uint8_t msg[] = {0xdd, 0x01, 0x00, 0x00, 0x00};
    char err[160];
    assert_int_equal(check(msg, sizeof(msg), err), SL_ERR_TRUNCATED);
    assert_string_equal(err, "message: truncated: array at offset 0 declares 16777216 "
                             "elements, only 0 bytes remain");
}

static void test_check_huge_declared_map_and_str(void **state) {
    (void)state;
    char err[160];
    /* [ {2^32-1 pairs} ] with 3 bytes after the map header */
    const uint8_t map[] = {0x91, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
    assert_int_equal(check(map, sizeof(map), err), SL_ERR_TRUNCATED);
    assert_non_null(strstr(err, "map at offset 1 declares 4294967295 elements"));
    const uint8_t str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    assert_int_equal(check(str, sizeof(str), err), SL_ERR_TRUNCATED);
    assert_non_null(strstr(err, "str at offset 0 declares 2147483647 bytes, only 1 bytes remain"));
}

static void test_check_reserved_byte(void **state) {
    (void)state;
    const uint8_t msg[] = {0x92, 0x01, 0xc1};
    char err[160];
    assert_int_equal(check(msg, sizeof(msg), err), SL_ERR_DECODE);
    assert_string_equal(err, "message: reserved byte 0xc1 at offset 2");
}

static void test_check_nesting_bound(void **state) {
    (void)state;
    uint8_t msg[16];
    char err[160];
    /* 8 nested arrays, innermost empty: allowed with max_depth 8. */
    memset(msg, 0x91, 7);
    msg[7] = 0x90;
    assert_int_equal(check(msg, 8, err), SL_OK);
    /* 9 levels: refused, whatever follows. */
    memset(msg, 0x91, 8);
    msg[8] = 0x90;
    assert_int_equal(check(msg, 9, err), SL_ERR_DECODE);
    assert_string_equal(err, "message: nesting deeper than 8 levels");
}

static void test_check_size_limit(void **state) {
    (void)state;
    uint8_t msg[40] = {0xd9, 38};
    char err[160];
    assert_int_equal(sl_msgscan_check(msg, sizeof(msg), 40, 8, err, sizeof(err)), SL_OK);
    assert_int_equal(sl_msgscan_check(msg, sizeof(msg), 39, 8, err, sizeof(err)), SL_ERR_TOO_BIG);
    assert_string_equal(err, "message: 40 bytes over the 39-byte limit");
}

static void test_check_empty(void **state) {
    (void)state;
    char err[160];
    assert_int_equal(check((const uint8_t *)"", 0, err), SL_ERR_TRUNCATED);
    assert_string_equal(err, "message: empty");
}

/* --- streaming --------------------------------------------------------- */

typedef struct event {
    sl_scan_status_t st;
    size_t off; /* stream offset of the object (OBJECT) or of the front (others) */
    size_t len; /* OBJECT: length; others: bytes dropped */
} event_t;

typedef struct run {
    event_t ev[64];
    size_t n_ev;
    size_t max_held; /* most bytes the caller ever held */
} run_t;

/* Feeds stream[0..n) through a scanner the way a file reader would: refill
 * `chunk` bytes at a time, drop what the scanner says. */
static void drive(const uint8_t *stream, size_t n, size_t chunk, size_t max_bytes, run_t *run) {
    uint8_t buf[4096];
    size_t held = 0, fed = 0, front = 0;
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, max_bytes, 8);
    memset(run, 0, sizeof(*run));
    for (int guard = 0; guard < 100000; guard++) {
        int eof = fed == n;
        sl_scan_status_t st = sl_msgscan_feed(&s, buf, held, eof, &r);
        size_t drop = st == SL_SCAN_OBJECT ? r.len : r.skip;
        assert_true(drop <= held);
        if (st != SL_SCAN_NEED_MORE) {
            assert_true(run->n_ev < LEN(run->ev));
            run->ev[run->n_ev++] = (event_t){st, front, drop};
        }
        if (st == SL_SCAN_END)
            return;
        if (st == SL_SCAN_INVALID || st == SL_SCAN_SKIPPED || st == SL_SCAN_TOO_BIG)
            assert_true(st == SL_SCAN_TOO_BIG || drop > 0); /* progress is guaranteed */
        memmove(buf, buf + drop, held - drop);
        held -= drop;
        front += drop;
        if (st == SL_SCAN_NEED_MORE) {
            assert_false(eof);
            size_t take = n - fed < chunk ? n - fed : chunk;
            assert_true(held + take <= sizeof(buf));
            memcpy(buf + held, stream + fed, take);
            held += take;
            fed += take;
        }
        if (held > run->max_held)
            run->max_held = held;
    }
    fail_msg("scanner made no progress");
}

static const uint8_t three_objects[] = {
    0x82, 0xa1, 'x',  0x92, 0x01, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xa1, 'y', 0x00, /* 17 */
    0x91, 0x80,                                                                        /* 2 */
    0xcd, 0x01, 0x00,                                                                  /* 3 */
};

static void test_stream_same_objects_whatever_the_chunking(void **state) {
    (void)state;
    for (size_t chunk = 1; chunk <= sizeof(three_objects); chunk++) {
        run_t run;
        drive(three_objects, sizeof(three_objects), chunk, 1 << 20, &run);
        assert_int_equal(run.n_ev, 4);
        assert_int_equal(run.ev[0].st, SL_SCAN_OBJECT);
        assert_int_equal(run.ev[0].off, 0);
        assert_int_equal(run.ev[0].len, 17);
        assert_int_equal(run.ev[1].st, SL_SCAN_OBJECT);
        assert_int_equal(run.ev[1].off, 17);
        assert_int_equal(run.ev[1].len, 2);
        assert_int_equal(run.ev[2].st, SL_SCAN_OBJECT);
        assert_int_equal(run.ev[2].off, 19);
        assert_int_equal(run.ev[2].len, 3);
        assert_int_equal(run.ev[3].st, SL_SCAN_END);
    }
}

static void test_stream_skips_garbage_and_resyncs(void **state) {
    (void)state;
    const uint8_t stream[] = {0x92, 0xc1, 0x81, 0xa1, 'y', 0x01};
    for (size_t chunk = 1; chunk <= sizeof(stream); chunk++) {
        run_t run;
        drive(stream, sizeof(stream), chunk, 1 << 20, &run);
        assert_int_equal(run.n_ev, 3);
        assert_int_equal(run.ev[0].st, SL_SCAN_INVALID);
        assert_int_equal(run.ev[0].len, 2); /* up to and including the 0xc1 */
        assert_int_equal(run.ev[1].st, SL_SCAN_OBJECT);
        assert_int_equal(run.ev[1].off, 2);
        assert_int_equal(run.ev[1].len, 4);
        assert_int_equal(run.ev[2].st, SL_SCAN_END);
    }
}

static void test_stream_reports_invalid_text(void **state) {
    (void)state;
    const uint8_t buf[] = {0xc1};
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, 100, 8);
    assert_int_equal(sl_msgscan_feed(&s, buf, 1, 0, &r), SL_SCAN_INVALID);
    assert_int_equal(r.skip, 1);
    assert_int_equal(r.code, SL_ERR_DECODE);
    assert_string_equal(r.err, "message: reserved byte 0xc1 at offset 0");
}

/* An oversize object is dropped as it streams past: the caller never holds
 * more than the cap plus one header, and the next object is found. */
static void test_stream_skips_oversize_object(void **state) {
    (void)state;
    uint8_t stream[400];
    size_t n = 0;
    /* [ "300 bytes of str", 1, 2 ] then {"y": 1} */
    stream[n++] = 0x93;
    stream[n++] = 0xda, stream[n++] = 0x01, stream[n++] = 0x2c;
    memset(stream + n, 'a', 300);
    n += 300;
    stream[n++] = 0x01, stream[n++] = 0x02;
    size_t big = n;
    stream[n++] = 0x81, stream[n++] = 0xa1, stream[n++] = 'y', stream[n++] = 0x01;
    for (size_t chunk = 1; chunk <= 64; chunk += 7) {
        run_t run;
        drive(stream, n, chunk, 32, &run);
        assert_int_equal(run.ev[0].st, SL_SCAN_TOO_BIG);
        assert_int_equal(run.ev[run.n_ev - 3].st, SL_SCAN_SKIPPED);
        size_t dropped = 0;
        for (size_t i = 0; i + 2 < run.n_ev; i++)
            dropped += run.ev[i].len;
        event_t obj = run.ev[run.n_ev - 2];
        assert_int_equal(obj.st, SL_SCAN_OBJECT);
        assert_int_equal(obj.off, big);
        assert_int_equal(obj.len, 4);
        assert_int_equal(run.ev[run.n_ev - 1].st, SL_SCAN_END);
        assert_true(run.max_held <= 32 + SL_MP_MAX_HEAD + chunk);
    }
}

static void test_stream_too_big_text(void **state) {
    (void)state;
    const uint8_t buf[] = {0xdd, 0x01, 0x00, 0x00, 0x00};
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, 1000, 8);
    assert_int_equal(sl_msgscan_feed(&s, buf, sizeof(buf), 0, &r), SL_SCAN_TOO_BIG);
    assert_int_equal(r.code, SL_ERR_TOO_BIG);
    assert_string_equal(r.err, "message: over the 1000-byte limit");
    assert_int_equal(r.skip, 5);
    /* The rest of the input ends mid-object: the discard ends too. */
    assert_int_equal(sl_msgscan_feed(&s, buf, 0, 1, &r), SL_SCAN_SKIPPED);
    assert_int_equal(sl_msgscan_feed(&s, buf, 0, 1, &r), SL_SCAN_END);
}

static void test_stream_truncated_at_eof(void **state) {
    (void)state;
    const uint8_t stream[] = {0x01, 0x92, 0x01};
    run_t run;
    drive(stream, sizeof(stream), 1, 100, &run);
    assert_int_equal(run.n_ev, 3);
    assert_int_equal(run.ev[0].st, SL_SCAN_OBJECT);
    assert_int_equal(run.ev[1].st, SL_SCAN_INVALID);
    assert_int_equal(run.ev[1].len, 2);
    assert_int_equal(run.ev[2].st, SL_SCAN_END);

    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, 100, 8);
    assert_int_equal(sl_msgscan_feed(&s, stream + 1, 2, 1, &r), SL_SCAN_INVALID);
    assert_int_equal(r.code, SL_ERR_TRUNCATED);
    assert_string_equal(r.err, "message: truncated: array at offset 0 declares 2 elements, "
                               "only 1 bytes remain");
    /* Counts that fit, but a header cut short. */
    const uint8_t cut[] = {0x92, 0xcd, 0x01};
    assert_int_equal(sl_msgscan_feed(&s, cut, sizeof(cut), 1, &r), SL_SCAN_INVALID);
    assert_int_equal(r.skip, 3);
    assert_string_equal(r.err, "message: truncated after 3 bytes");
}

/* Bytes re-offered after NEED_MORE are not scanned again (the state keeps
 * its place): offering a different prefix shows it. */
static void test_stream_resumes_where_it_stopped(void **state) {
    (void)state;
    sl_msgscan_t s;
    sl_scan_result_t r;
    sl_msgscan_init(&s, 100, 8);
    uint8_t buf[4] = {0x92, 0x01};
    assert_int_equal(sl_msgscan_feed(&s, buf, 2, 0, &r), SL_SCAN_NEED_MORE);
    assert_int_equal(r.skip, 0);
    buf[1] = 0xc1; /* already scanned: not looked at again */
    buf[2] = 0x02;
    assert_int_equal(sl_msgscan_feed(&s, buf, 3, 0, &r), SL_SCAN_OBJECT);
    assert_int_equal(r.len, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_reads_every_int_form),
        cmocka_unit_test(test_head_reads_floats_and_lengths),
        cmocka_unit_test(test_check_accepts_every_kind),
        cmocka_unit_test(test_check_every_prefix_is_truncated),
        cmocka_unit_test(test_check_trailing_bytes),
        cmocka_unit_test(test_check_huge_declared_array),
        cmocka_unit_test(test_check_huge_declared_map_and_str),
        cmocka_unit_test(test_check_reserved_byte),
        cmocka_unit_test(test_check_nesting_bound),
        cmocka_unit_test(test_check_size_limit),
        cmocka_unit_test(test_check_empty),
        cmocka_unit_test(test_stream_same_objects_whatever_the_chunking),
        cmocka_unit_test(test_stream_skips_garbage_and_resyncs),
        cmocka_unit_test(test_stream_reports_invalid_text),
        cmocka_unit_test(test_stream_skips_oversize_object),
        cmocka_unit_test(test_stream_too_big_text),
        cmocka_unit_test(test_stream_truncated_at_eof),
        cmocka_unit_test(test_stream_resumes_where_it_stopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
