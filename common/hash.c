/* Word-at-a-time multiply/xor-shift hash with a streaming front end. Bytes
 * are read as little-endian words explicitly, so the result does not depend
 * on the host or on how the input is chunked. */
#include "hash.h"

#include <string.h>

#define K1 0x9E3779B97F4A7C15ull
#define K2 0xBF58476D1CE4E5B9ull

static inline uint64_t load_le64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
           (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
           (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w * K2;
    h = (h << 31 | h >> 33) * K1;
    return h;
}

void tkv_hash_init(struct tkv_hash *s, uint64_t seed)
{
    s->h = seed ^ K1;
    s->total = 0;
    s->ntail = 0;
}

void tkv_hash_update(struct tkv_hash *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    s->total += n;
    if (s->ntail > 0) {
        size_t take = 8 - s->ntail;
        if (take > n) {
            take = n;
        }
        memcpy(s->tail + s->ntail, b, take);
        s->ntail += take;
        b += take;
        n -= take;
        if (s->ntail < 8) {
            return;
        }
        s->h = mix(s->h, load_le64(s->tail));
        s->ntail = 0;
    }
    while (n >= 8) {
        s->h = mix(s->h, load_le64(b));
        b += 8;
        n -= 8;
    }
    memcpy(s->tail, b, n);
    s->ntail = n;
}

void tkv_hash_u64(struct tkv_hash *s, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)(v >> (8 * i));
    }
    tkv_hash_update(s, b, 8);
}

/* The last partial word (zero-padded) and the length, then avalanche. */
static inline uint64_t finish(uint64_t h, const uint8_t *tail, size_t ntail,
                              uint64_t total)
{
    uint8_t last[8] = {0};
    if (ntail > 0) {
        memcpy(last, tail, ntail); /* tail may be NULL when n is 0 */
    }
    h = mix(h, load_le64(last));
    h = mix(h, total);
    h ^= h >> 33;
    h *= K2;
    h ^= h >> 29;
    return h;
}

uint64_t tkv_hash_final(const struct tkv_hash *s)
{
    return finish(s->h, s->tail, s->ntail, s->total);
}

/* The streaming interface's result without its state: keys are hashed
 * twice per set, and the copies into the tail cost most of a short key's
 * time. */
uint64_t tkv_hash64(uint64_t seed, const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = seed ^ K1;
    size_t left = n;

    while (left >= 8) {
        h = mix(h, load_le64(b));
        b += 8;
        left -= 8;
    }
    return finish(h, b, left, n);
}
