/* murmur3.h - MurmurHash3_x86_32 (Austin Appleby's reference), used to hash named features. */
#ifndef SL_MURMUR3_H
#define SL_MURMUR3_H

#include <stddef.h>
#include <stdint.h>

/* Hashes len bytes at key with the given seed, exactly as the reference
 * MurmurHash3_x86_32 on a little-endian host: blocks are read as
 * little-endian 32-bit words on every host, so results are portable. key may
 * be NULL when len is 0. Cannot fail. */
uint32_t sl_murmur3_32(const void *key, size_t len, uint32_t seed);

#endif
