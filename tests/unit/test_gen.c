/* test_gen.c - the synthetic stream generator: --poison corrupts exactly the
 * labels of its range, reproducibly, and leaves every other byte alone. */
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/gen.h"

#define N 400

typedef struct sample {
    int labelled;
    double y;
    uint8_t raw_x[512]; /* the packed x, compared byte for byte */
    size_t x_len;
} sample_t;

static sl_gen_config_t config(sl_head_t head) {
    return (sl_gen_config_t){.head = head,
                             .dim = 6,
                             .classes = 4,
                             .seed = 11,
                             .samples = N,
                             .labelled_fraction = 0.9,
                             .noise = 0.05,
                             .per_message = 1,
                             .vocab = 1000,
                             .nnz = 10};
}

/* Generates the stream of c and decodes every sample. */
static void run(const sl_gen_config_t *c, sample_t *out) {
    char err[256];
    sl_gen_t *g = sl_gen_new(c, err, sizeof err);
    if (!g)
        fail_msg("sl_gen_new: %s", err);
    const uint8_t *msg;
    size_t len;
    for (int i = 0; i < N; i++) {
        assert_int_equal(sl_gen_message(g, &msg, &len), 1);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        assert_int_equal(msgpack_unpack_next(&u, (const char *)msg, len, NULL),
                         MSGPACK_UNPACK_SUCCESS);
        const msgpack_object_map *m = &u.data.via.map;
        memset(&out[i], 0, sizeof out[i]);
        for (uint32_t k = 0; k < m->size; k++) {
            const msgpack_object *key = &m->ptr[k].key, *v = &m->ptr[k].val;
            if (key->via.str.size == 1 && key->via.str.ptr[0] == 'y') {
                out[i].labelled = 1;
                out[i].y = v->type == MSGPACK_OBJECT_FLOAT64 || v->type == MSGPACK_OBJECT_FLOAT32
                               ? v->via.f64
                               : (double)v->via.u64;
            } else if (key->via.str.size == 1 && key->via.str.ptr[0] == 'x') {
                msgpack_sbuffer sb;
                msgpack_sbuffer_init(&sb);
                msgpack_packer pk;
                msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
                msgpack_pack_object(&pk, *v);
                assert_true(sb.size <= sizeof out[i].raw_x);
                memcpy(out[i].raw_x, sb.data, sb.size);
                out[i].x_len = sb.size;
                msgpack_sbuffer_destroy(&sb);
            }
        }
        msgpack_unpacked_destroy(&u);
    }
    assert_int_equal(sl_gen_message(g, &msg, &len), 0);
    sl_gen_destroy(g);
}

static void check_head(sl_head_t head) {
    static sample_t clean[N], flip[N], rnd[N], rnd2[N];
    sl_gen_config_t c = config(head);
    run(&c, clean);
    c.poison_from = 100;
    c.poison_to = 250;
    run(&c, flip);
    c.poison = SL_GEN_POISON_RANDOM;
    run(&c, rnd);
    run(&c, rnd2);
    int changed = 0;
    for (int i = 0; i < N; i++) {
        /* features and which samples carry labels never change */
        assert_int_equal(flip[i].x_len, clean[i].x_len);
        assert_memory_equal(flip[i].raw_x, clean[i].raw_x, clean[i].x_len);
        assert_memory_equal(rnd[i].raw_x, clean[i].raw_x, clean[i].x_len);
        assert_int_equal(flip[i].labelled, clean[i].labelled);
        assert_int_equal(rnd[i].labelled, clean[i].labelled);
        assert_true(rnd[i].y == rnd2[i].y); /* seeded: the same every time */
        if (i < 100 || i >= 250 || !clean[i].labelled) {
            assert_true(flip[i].y == clean[i].y);
            assert_true(rnd[i].y == clean[i].y);
            continue;
        }
        double want = head == SL_HEAD_LINEAR     ? -clean[i].y
                      : head == SL_HEAD_LOGISTIC ? 1 - clean[i].y
                                                 : (double)(((int)clean[i].y + 1) % 4);
        assert_true(flip[i].y == want);
        changed += rnd[i].y != clean[i].y;
        if (head != SL_HEAD_LINEAR)
            assert_true(rnd[i].y >= 0 && rnd[i].y < (head == SL_HEAD_SOFTMAX ? 4 : 2));
    }
    /* random labels: about half (logistic), 3/4 (softmax), all (linear) differ */
    assert_true(changed > 40);
}

static void test_poison_logistic(void **state) {
    (void)state;
    check_head(SL_HEAD_LOGISTIC);
}

static void test_poison_softmax(void **state) {
    (void)state;
    check_head(SL_HEAD_SOFTMAX);
}

static void test_poison_linear(void **state) {
    (void)state;
    check_head(SL_HEAD_LINEAR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poison_logistic),
        cmocka_unit_test(test_poison_softmax),
        cmocka_unit_test(test_poison_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
