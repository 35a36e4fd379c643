/* Key choice for tuplekv-bench; see bench_keys.h. */
#include "bench_keys.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t bench_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t bench_rand_below(uint64_t *state, uint64_t n)
{
    /* Lemire's multiply-shift: unbiased enough for n far below 2^64. */
    return (uint64_t)(((unsigned __int128)bench_rand(state) * n) >> 64);
}

double bench_rand01(uint64_t *state)
{
    return (double)(bench_rand(state) >> 11) * 0x1.0p-53;
}

static double zeta(uint64_t n, double theta)
{
    double sum = 0;
    uint64_t i;
    for (i = 1; i <= n; i++) {
        sum += 1.0 / pow((double)i, theta);
    }
    return sum;
}

void bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta)
{
    double zeta2 = zeta(2, theta);
    z->n = n;
    z->theta = theta;
    z->alpha = 1.0 / (1.0 - theta);
    z->zetan = zeta(n, theta);
    z->eta =
        (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan);
    z->half_pow_theta = 1.0 + pow(0.5, theta);
}

uint64_t bench_zipf_next(const struct bench_zipf *z, uint64_t *state)
{
    double u = bench_rand01(state);
    double uz = u * z->zetan;
    uint64_t r;

    if (uz < 1.0) {
        return 0;
    }
    if (uz < z->half_pow_theta) {
        return z->n > 1 ? 1 : 0;
    }
    r = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
    return r < z->n ? r : z->n - 1;
}

uint64_t bench_fnv64(uint64_t x)
{
    uint64_t h = 0xCBF29CE484222325ull;
    int i;
    for (i = 0; i < 8; i++) {
        h ^= x & 0xff;
        h *= 1099511628211ull;
        x >>= 8;
    }
    return h;
}

uint64_t bench_zipf_scrambled(const struct bench_zipf *z, uint64_t *state)
{
    return bench_fnv64(bench_zipf_next(z, state)) % z->n;
}

size_t bench_key_plain(uint64_t k, size_t key_size, char *out)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)k);
    size_t pad = (size_t)n < key_size ? key_size - (size_t)n : 0;

    memset(out, '0', pad);
    memcpy(out + pad, digits, (size_t)n + 1);
    return pad + (size_t)n;
}

/* The splitmix64 finalizer is a bijection on 64 bits: distinct records get
 * distinct keys, in an order unrelated to their numbers. */
static uint64_t scramble(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

size_t bench_key_ycsb(uint64_t k, size_t key_size, char *out)
{
    int n = sprintf(out, "user%020llu", (unsigned long long)scramble(k));
    size_t len = (size_t)n;

    if (key_size > len) {
        memset(out + len, 'x', key_size - len);
        len = key_size;
        out[len] = '\0';
    }
    return len;
}
