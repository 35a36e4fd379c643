/* Key choice for tuplekv-bench: a per-worker random generator, YCSB's
 * zipfian and "latest" distributions, and the key strings.
 *
 * Keys are one-part tuple keys [STRING]. For put/range/txn the string is the
 * key number in decimal, zero-padded to --key-size bytes (as etcd's tool puts
 * --key-size bytes of key); for ycsb it is YCSB's "user<digits>" form, the
 * digits being a bijective scramble of the record number, so records sit in
 * hash order as with YCSB's default insertorder=hashed. Nothing here
 * allocates except bench_zipf_init (nothing to free: the struct is plain). */
#ifndef BENCH_KEYS_H
#define BENCH_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64: one 64-bit state, good enough for load generation. */
uint64_t bench_rand(uint64_t *state);
/* Uniform in [0, n); n > 0. */
uint64_t bench_rand_below(uint64_t *state, uint64_t n);
/* Uniform in [0, 1). */
double bench_rand01(uint64_t *state);

/* YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record
 * synthetic databases"): item 0 is the most popular. */
struct bench_zipf {
    uint64_t n;
    double theta, alpha, zetan, eta, half_pow_theta;
};

/* n >= 1 items, 0 < theta < 1 (YCSB: 0.99). O(n) once, for zeta(n). */
void bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta);
/* A zipfian draw in [0, z->n). */
uint64_t bench_zipf_next(const struct bench_zipf *z, uint64_t *state);

/* YCSB's ScrambledZipfianGenerator: the zipfian rank hashed (FNV-1a 64) into
 * [0, n), so popular records are spread over the key space. */
uint64_t bench_zipf_scrambled(const struct bench_zipf *z, uint64_t *state);

/* FNV-1a over the 8 bytes of x (YCSB's Utils.fnvhash64). */
uint64_t bench_fnv64(uint64_t x);

/* Write the key string of number k into out (NUL-terminated), padded with
 * '0' on the left to key_size bytes; longer when k needs more digits.
 * Returns the length. out must hold max(key_size, 20) + 1 bytes. */
size_t bench_key_plain(uint64_t k, size_t key_size, char *out);

/* YCSB record key: "user" + 20 digits of a bijective scramble of k, padded
 * with 'x' on the right to key_size bytes when key_size is larger. out
 * must hold max(key_size, 24) + 1 bytes. Returns the length. */
size_t bench_key_ycsb(uint64_t k, size_t key_size, char *out);

#endif /* BENCH_KEYS_H */
