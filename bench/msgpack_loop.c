/* msgpack_loop.c - the C comparison loop for `replay`: what a msgpack-c user
 * writes without streamlearn. Streams a file of msgpack objects through
 * msgpack-c's generic unpacker (a msgpack_object tree per object), and for
 * every sample map packs one prediction map {id, pred, version, step} into a
 * buffer written to the output. No learning: the floor of decode + encode
 * through msgpack-c. bench/replay.sh builds it with:
 *   gcc -O2 -std=c11 -D_GNU_SOURCE bench/msgpack_loop.c \
 *       $(pkg-config --cflags --libs msgpack) -o msgpack_loop
 * usage: msgpack_loop INPUT OUTPUT   (prints "N samples/s" on stderr) */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void predict(const msgpack_object *m, msgpack_packer *pk, unsigned long *n) {
    if (m->type != MSGPACK_OBJECT_MAP)
        return;
    const msgpack_object *id = NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object_kv *kv = &m->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 2 &&
            !memcmp(kv->key.via.str.ptr, "id", 2))
            id = &kv->val;
    }
    msgpack_pack_map(pk, 4);
    msgpack_pack_str_with_body(pk, "id", 2);
    if (id)
        msgpack_pack_object(pk, *id);
    else
        msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "pred", 4);
    msgpack_pack_float(pk, 0.5f);
    msgpack_pack_str_with_body(pk, "version", 7);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_str_with_body(pk, "step", 4);
    msgpack_pack_uint64(pk, 0);
    (*n)++;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: msgpack_loop INPUT OUTPUT\n");
        return 2;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        perror("msgpack_loop");
        return 1;
    }
    double t0 = now_s();
    msgpack_unpacker up;
    msgpack_unpacker_init(&up, 1 << 20);
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    unsigned long n = 0;
    for (;;) {
        msgpack_unpacker_reserve_buffer(&up, 1 << 20);
        size_t got =
            fread(msgpack_unpacker_buffer(&up), 1, msgpack_unpacker_buffer_capacity(&up), in);
        if (got == 0)
            break;
        msgpack_unpacker_buffer_consumed(&up, got);
        while (msgpack_unpacker_next(&up, &res) == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *o = &res.data;
            if (o->type == MSGPACK_OBJECT_ARRAY)
                for (uint32_t i = 0; i < o->via.array.size; i++)
                    predict(&o->via.array.ptr[i], &pk, &n);
            else
                predict(o, &pk, &n);
            if (sb.size >= (1 << 20)) {
                fwrite(sb.data, 1, sb.size, out);
                msgpack_sbuffer_clear(&sb);
            }
        }
    }
    fwrite(sb.data, 1, sb.size, out);
    fclose(out);
    fclose(in);
    double secs = now_s() - t0;
    fprintf(stderr, "%lu samples in %.3f s: %.0f samples/s\n", n, secs, (double)n / secs);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&res);
    msgpack_unpacker_destroy(&up);
    return 0;
}
