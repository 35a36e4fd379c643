/* A small seeded random number generator (xoshiro256**, seeded through
 * splitmix64), one per thread: the runner's choices (ops, keys, faults,
 * targets) follow from --seed, while the interleaving of threads does not. */
#ifndef TKVJ_RNG_H
#define TKVJ_RNG_H

#include <stdint.h>

struct tkvj_rng {
    uint64_t s[4];
};

static inline uint64_t tkvj__splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Seed from the run's seed and a stream number (worker slot, nemesis...). */
static inline void tkvj_rng_seed(struct tkvj_rng *r, uint64_t seed,
                                 uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xd1b54a32d192ed03ULL);
    int i;
    for (i = 0; i < 4; i++) {
        r->s[i] = tkvj__splitmix(&x);
    }
}

static inline uint64_t tkvj__rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t tkvj_rng_next(struct tkvj_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = tkvj__rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = tkvj__rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t tkvj_rng_below(struct tkvj_rng *r, uint64_t n)
{
    return tkvj_rng_next(r) % n;
}

/* Uniform in [lo, hi] (inclusive). */
static inline int64_t tkvj_rng_range(struct tkvj_rng *r, int64_t lo,
                                     int64_t hi)
{
    return lo + (int64_t)tkvj_rng_below(r, (uint64_t)(hi - lo + 1));
}

/* Uniform in [0, 1). */
static inline double tkvj_rng_double(struct tkvj_rng *r)
{
    return (double)(tkvj_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Pick an index with the given weights (n > 0, sum > 0). */
static inline int tkvj_rng_weighted(struct tkvj_rng *r, const int *w, int n)
{
    int sum = 0;
    int i;
    int64_t x;
    for (i = 0; i < n; i++) {
        sum += w[i];
    }
    x = (int64_t)tkvj_rng_below(r, (uint64_t)sum);
    for (i = 0; i < n; i++) {
        if (x < w[i]) {
            return i;
        }
        x -= w[i];
    }
    return n - 1;
}

/* Shuffle an int array in place. */
static inline void tkvj_rng_shuffle(struct tkvj_rng *r, int *a, int n)
{
    int i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)tkvj_rng_below(r, (uint64_t)i + 1);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

#endif /* TKVJ_RNG_H */
