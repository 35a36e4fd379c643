/* A fast, deterministic, non-cryptographic 64-bit hash, streaming or one
 * shot: checksums of snapshots, cursor selector fingerprints and state
 * digests. The same bytes give the same value on every machine no matter
 * how they are split into chunks. */
#ifndef TKV_HASH_H
#define TKV_HASH_H

#include <stddef.h>
#include <stdint.h>

struct tkv_hash {
    uint64_t h;
    uint64_t total;     /* bytes fed so far */
    uint8_t tail[8];    /* bytes of an unfinished 8-byte word */
    size_t ntail;
};

void tkv_hash_init(struct tkv_hash *s, uint64_t seed);
void tkv_hash_update(struct tkv_hash *s, const void *p, size_t n);
void tkv_hash_u64(struct tkv_hash *s, uint64_t v); /* fixed little-endian */
uint64_t tkv_hash_final(const struct tkv_hash *s);

uint64_t tkv_hash64(uint64_t seed, const void *p, size_t n);

#endif /* TKV_HASH_H */
