/* tkv_hash (common/hash.h): its values are pinned, because they are
 * stored (snapshot manifests carry the hash of their state file) and
 * compared across nodes (tkv_sm_hash); the one-shot tkv_hash64 and the
 * streaming interface agree for every length and every way of cutting
 * the input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/hash.h"

static const char *const inputs[] = {
    "",
    "a",
    "12345678",
    "users/0123456789abcdef..",
    ("The quick brown fox jumps over the lazy dog, again and again, until "
     "the line is long enough: 100 b"),
};

/* Computed with the streaming implementation as it stood when manifests
 * first stored these hashes. */
static const struct {
    uint64_t seed;
    int input;
    uint64_t hash;
} pinned[] = {
    {0ull, 0, 0x9900e8e85c7b493bull},
    {0ull, 1, 0xc1f5d850421c0a07ull},
    {0ull, 2, 0x8235192816345e17ull},
    {0ull, 3, 0x894bbafb59efb0acull},
    {0ull, 4, 0x3fb6f0ae231e8806ull},
    {1ull, 0, 0xb176498c29a07b42ull},
    {1ull, 1, 0x72b500b8aab23c44ull},
    {1ull, 2, 0xbe3ee81f6dbf5beeull},
    {1ull, 3, 0x2228d3715b605d00ull},
    {1ull, 4, 0xbd4f46a3f9aa613cull},
    {0x9E3779B97F4A7C15ull, 0, 0x0000000000000000ull},
    {0x9E3779B97F4A7C15ull, 1, 0x3645d10d25e7d4a9ull},
    {0x9E3779B97F4A7C15ull, 2, 0x855da96d827cf333ull},
    {0x9E3779B97F4A7C15ull, 3, 0xbc63f57f0c986f7cull},
    {0x9E3779B97F4A7C15ull, 4, 0xaff839bf5419b515ull},
};

static uint64_t streamed(uint64_t seed, const uint8_t *p, size_t n,
                         size_t cut)
{
    struct tkv_hash s;
    size_t off = 0;

    tkv_hash_init(&s, seed);
    while (off < n) {
        size_t k = n - off < cut ? n - off : cut;
        tkv_hash_update(&s, p + off, k);
        off += k;
    }
    return tkv_hash_final(&s);
}

static void test_pinned(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof pinned / sizeof pinned[0]; i++) {
        const char *in = inputs[pinned[i].input];
        assert_int_equal(tkv_hash64(pinned[i].seed, in, strlen(in)),
                         pinned[i].hash);
        assert_int_equal(streamed(pinned[i].seed, (const uint8_t *)in,
                                  strlen(in), 3),
                         pinned[i].hash);
    }
}

/* Every length 0..300, cut in pieces of 1..17 bytes and whole. */
static void test_one_shot_is_streaming(void **state)
{
    uint8_t buf[300];
    size_t n, cut;
    uint64_t x = 0x0123456789abcdefull;

    (void)state;
    for (n = 0; n < sizeof buf; n++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        buf[n] = (uint8_t)(x >> 56);
    }
    for (n = 0; n <= sizeof buf; n++) {
        uint64_t want = tkv_hash64(7, buf, n);
        for (cut = 1; cut <= 17; cut++) {
            assert_int_equal(streamed(7, buf, n, cut), want);
        }
        assert_int_equal(streamed(7, buf, n, sizeof buf), want);
    }
}

/* tkv_hash_u64 hashes the value's 8 little-endian bytes. */
static void test_u64(void **state)
{
    static const uint8_t le[8] = {0xef, 0xcd, 0xab, 0x89,
                                  0x67, 0x45, 0x23, 0x01};
    struct tkv_hash s;

    (void)state;
    tkv_hash_init(&s, 5);
    tkv_hash_u64(&s, 0x0123456789abcdefull);
    assert_int_equal(tkv_hash_final(&s), tkv_hash64(5, le, 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_one_shot_is_streaming),
        cmocka_unit_test(test_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
