/* libFuzzer target for the key codec (statemachine/keycodec.c).
 *
 * The input is used three ways:
 *   1. as encoded key bytes (what a log entry, snapshot or cursor carries):
 *      tkv_key_validate must never crash, and a key it accepts must come
 *      back to the same bytes through msgpack (tkv_key_pack, unpack,
 *      tkv_key_from_msgpack) and through JSON (tkv_key_to_json,
 *      tkv_key_from_json);
 *   2. as a msgpack buffer (what a client sends): each object in it goes
 *      to tkv_key_from_msgpack, and whatever it accepts must validate and
 *      survive the same round trip;
 *   3. as JSON text (what kvctl and the client API take), likewise.
 * Any disagreement aborts. */
#include <jansson.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "statemachine/keycodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "tests/fuzz/fuzz.h"

/* key is a valid encoding: both round trips must give the same bytes. */
static void round_trip(const uint8_t *key, size_t len)
{
    uint8_t again[TKV_KEY_MAX];
    size_t len2 = 0;
    struct tkv_err err;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    size_t off = 0;
    json_t *j;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    REQUIRE(tkv_key_pack(key, len, &pk) == 0);
    msgpack_unpacked_init(&u);
    REQUIRE(msgpack_unpack_next(&u, sb.data, sb.size, &off) ==
            MSGPACK_UNPACK_SUCCESS);
    REQUIRE(off == sb.size);
    REQUIRE(u.data.type == MSGPACK_OBJECT_ARRAY);
    REQUIRE(u.data.via.array.size == tkv_key_nparts(key, len));
    REQUIRE(tkv_key_from_msgpack(&u.data, 1, again, &len2, &err) == 0);
    REQUIRE(len2 == len && memcmp(again, key, len) == 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);

    j = tkv_key_to_json(key, len);
    REQUIRE(j != NULL);
    REQUIRE(tkv_key_from_json(j, 1, again, &len2, &err) == 0);
    REQUIRE(len2 == len && memcmp(again, key, len) == 0);
    json_decref(j);
}

static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* msgpack_unpack_next allocates room for every element a container header
 * declares as soon as it sees the header, so a 5-byte input can make it ask
 * for 100 GB. Every element takes at least one byte, so in a well-formed
 * buffer the declared counts add up to at most its size: refuse inputs
 * whose headers declare more. (A decoder of client frames needs the same
 * guard.) Truncated headers are let through: the unpacker refuses them
 * without allocating. */
static int msgpack_counts_fit(const uint8_t *p, size_t n)
{
    uint64_t total = 0;
    size_t pos = 0;

    while (pos < n) {
        uint8_t b = p[pos++];
        uint64_t count = 0;
        size_t lenbytes = 0; /* size of a length field before a payload */
        uint64_t skip = 0;   /* fixed payload */

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc1 || b == 0xc2 ||
            b == 0xc3) {
            continue;
        } else if (b <= 0x8f) {
            count = (uint64_t)(b & 0x0f) * 2;
        } else if (b <= 0x9f) {
            count = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else if (b >= 0xc4 && b <= 0xc6) { /* bin */
            lenbytes = (size_t)1 << (b - 0xc4);
        } else if (b >= 0xc7 && b <= 0xc9) { /* ext: length, type */
            lenbytes = (size_t)1 << (b - 0xc7);
            skip = 1;
        } else if (b == 0xca || b == 0xcb) {
            skip = b == 0xca ? 4 : 8;
        } else if (b >= 0xcc && b <= 0xd3) { /* ints */
            skip = (uint64_t)1 << ((b - 0xcc) & 3);
        } else if (b >= 0xd4 && b <= 0xd8) { /* fixext: type, data */
            skip = 1 + ((uint64_t)1 << (b - 0xd4));
        } else if (b >= 0xd9 && b <= 0xdb) { /* str */
            lenbytes = (size_t)1 << (b - 0xd9);
        } else { /* 0xdc..0xdf: array16/32, map16/32 */
            size_t w = (b & 1) ? 4 : 2;
            if (n - pos < w) {
                return 1;
            }
            count = be(p + pos, w) * (b >= 0xde ? 2 : 1);
            pos += w;
        }
        if (lenbytes > 0) {
            if (n - pos < lenbytes) {
                return 1;
            }
            skip += be(p + pos, lenbytes);
            pos += lenbytes;
        }
        total += count;
        if (total > n) {
            return 0;
        }
        if (skip > n - pos) {
            return 1; /* truncated payload */
        }
        pos += (size_t)skip;
    }
    return 1;
}

/* Encoded by one of our encoders: must be valid, then round trip. */
static void check_encoded(int rv,
                          const uint8_t *out,
                          size_t len,
                          const struct tkv_err *err)
{
    if (rv != 0) {
        REQUIRE(rv == TKV_EINVALID || rv == TKV_ETOO_LARGE);
        REQUIRE(err->msg[0] != '\0');
        return;
    }
    REQUIRE(len <= TKV_KEY_MAX);
    REQUIRE(tkv_key_validate(out, len, 1, NULL) == 0);
    round_trip(out, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[TKV_KEY_MAX];
    size_t len = 0;
    struct tkv_err err;
    int rv;

    /* 1. bytes claiming to be an encoded key */
    rv = tkv_key_validate(data, size, 1, &err);
    REQUIRE(rv == 0 || rv == TKV_ECORRUPT);
    REQUIRE((tkv_key_validate(data, size, 0, NULL) == 0) ==
            (rv == 0 && size > 0));
    if (rv == 0) {
        round_trip(data, size);
    }

    /* 2. a msgpack buffer, every object in it */
    {
        msgpack_unpacked u;
        size_t off = 0;
        int n = 0;
        msgpack_unpacked_init(&u);
        while (msgpack_counts_fit(data, size) && n++ < 16 &&
               msgpack_unpack_next(&u, (const char *)data, size, &off) ==
                   MSGPACK_UNPACK_SUCCESS) {
            tkv_err_clear(&err);
            rv = tkv_key_from_msgpack(&u.data, n & 1, out, &len, &err);
            check_encoded(rv, out, len, &err);
        }
        msgpack_unpacked_destroy(&u);
    }

    /* 3. JSON text */
    {
        json_error_t jerr;
        json_t *j = json_loadb((const char *)data, size,
                               JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (j != NULL) {
            tkv_err_clear(&err);
            rv = tkv_key_from_json(j, 0, out, &len, &err);
            check_encoded(rv, out, len, &err);
            json_decref(j);
        }
    }
    return 0;
}
