/* rng.c - xoshiro256** with splitmix64 seeding. */

#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

void sl_rng_seed(sl_rng_t *r, uint64_t seed) {
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&sm);
}

uint64_t sl_rng_next(sl_rng_t *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sl_rng_uniform24(sl_rng_t *r) {
    return (double)(sl_rng_next(r) >> 40) * (1.0 / 16777216.0);
}

double sl_rng_uniform(sl_rng_t *r) {
    return (double)(sl_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double sl_rng_normal(sl_rng_t *r) {
    double u1 = sl_rng_uniform(r), u2 = sl_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

uint32_t sl_rng_below(sl_rng_t *r, uint32_t n) {
    return (uint32_t)(((sl_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}
