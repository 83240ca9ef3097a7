/* rng.h - the project's deterministic random numbers: xoshiro256** seeded
 * through splitmix64 (Blackman and Vigna, 2018). Same seed, same sequence, on
 * every platform. */
#ifndef SL_RNG_H
#define SL_RNG_H

#include <stdint.h>

/* Plain data; set up with sl_rng_seed. */
typedef struct sl_rng {
    uint64_t s[4];
} sl_rng_t;

/* Expands `seed` into the generator state with splitmix64. */
void sl_rng_seed(sl_rng_t *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t sl_rng_next(sl_rng_t *r);

/* Uniform in [0, 1) from the top 24 bits of one output (float32 resolution). */
double sl_rng_uniform24(sl_rng_t *r);

/* Uniform in [0, 1) from the top 53 bits of one output. */
double sl_rng_uniform(sl_rng_t *r);

/* Standard normal (Box-Muller, two outputs per call). */
double sl_rng_normal(sl_rng_t *r);

/* Uniform integer in [0, n), n >= 1 (Lemire's multiply-shift; bias < 2^-32). */
uint32_t sl_rng_below(sl_rng_t *r, uint32_t n);

#endif
