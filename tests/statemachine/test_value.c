/* Tests of statemachine/value.c: JSON length against jansson itself, the
 * size limit's boundary and message, every reason a value is not JSON, and
 * the jansson <-> msgpack round trip. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "statemachine/value.h"

#define FLAGS (JSON_COMPACT | JSON_ENCODE_ANY)

/* ---- helpers ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic across platforms */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
    return rnd() % n;
}

static size_t dumped_len(const json_t *v)
{
    char *s = json_dumps(v, FLAGS);
    size_t n;
    assert_non_null(s);
    n = strlen(s);
    free(s);
    return n;
}

/* Deep equality. json_equal() of jansson 2.14 looks object keys up as
 * NUL-terminated strings, so it calls equal objects with "a\0b" keys
 * different; reals are compared bit for bit (-0.0 is not 0.0 here). */
static int same_json(const json_t *a, const json_t *b)
{
    if (json_typeof(a) != json_typeof(b)) {
        return 0;
    }
    if (json_is_object(a)) {
        const char *key;
        size_t klen;
        json_t *va;
        if (json_object_size(a) != json_object_size(b)) {
            return 0;
        }
        json_object_keylen_foreach((json_t *)a, key, klen, va)
        {
            json_t *vb = json_object_getn(b, key, klen);
            if (vb == NULL || !same_json(va, vb)) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_array(a)) {
        size_t i;
        if (json_array_size(a) != json_array_size(b)) {
            return 0;
        }
        for (i = 0; i < json_array_size(a); i++) {
            if (!same_json(json_array_get(a, i), json_array_get(b, i))) {
                return 0;
            }
        }
        return 1;
    }
    if (json_is_real(a)) {
        double x = json_real_value(a);
        double y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* Packs v, checks the computed length against json_dumps on every path
 * (bytes walker, object walker), and the round trip back to jansson. */
static void check_json(const json_t *v)
{
    struct tkv_buf b;
    struct tkv_err err;
    msgpack_unpacked u;
    size_t off = 0;
    size_t len = 0;
    size_t olen = 0;
    size_t want = dumped_len(v);
    json_t *back;
    int rv;

    tkv_buf_init(&b);
    tkv_err_clear(&err);
    rv = tkv_value_from_json(v, &b, &err);
    if (want > TKV_VALUE_MAX) {
        assert_int_equal(rv, TKV_ETOO_LARGE);
        tkv_buf_close(&b);
        return;
    }
    if (rv != 0) {
        fail_msg("from_json: %s", err.msg);
    }
    rv = tkv_value_check_bytes(b.data, b.len, &len, &err);
    if (rv != 0) {
        fail_msg("check_bytes: %s", err.msg);
    }
    if (len != want) {
        char *s = json_dumps(v, FLAGS);
        fail_msg("json_len %zu, jansson wrote %zu: %s", len, want, s);
    }

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.data, b.len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b.len);
    assert_int_equal(tkv_value_check(&u.data, &olen, &err), 0);
    assert_int_equal(olen, want);
    back = tkv_value_to_json(&u.data, &err);
    if (back == NULL) {
        fail_msg("to_json: %s", err.msg);
    }
    assert_true(same_json(v, back));
    assert_int_equal(dumped_len(back), want);
    json_decref(back);
    msgpack_unpacked_destroy(&u);
    tkv_buf_close(&b);
}

/* Bytes from a hex string ("c3 a9" or "c3a9"). */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*hex != '\0') {
        unsigned v;
        if (*hex == ' ') {
            hex++;
            continue;
        }
        assert_true(sscanf(hex, "%2x", &v) == 1);
        assert_true(n < cap);
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

/* ---- random JSON ---- */

/* clang-format off */
static const double special_reals[] = {
    0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1.5, 1e300, -1e300, 5e-324, -5e-324,
    2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 1e17, 1e21, 1e22,
    123456789012345678.0, 1e-4, 1e-5, 0.0001234, 1.5e-7, 100000.0, 3.14159,
    9007199254740993.0, 1e-10, 1e100, 4.35, 0.3, 2.5e-5,
};
/* clang-format on */

/* clang-format off */
static const int64_t special_ints[] = {
    0, 1, -1, 9, 10, -10, 99, 100, 127, 128, -32, -33, 255, 256, 65535, 65536,
    INT32_MAX, INT32_MIN, (int64_t)UINT32_MAX, INT64_MAX, INT64_MIN,
    INT64_MAX - 1, INT64_MIN + 1, 1000000000000000000ll,
    -1000000000000000000ll, 999999999999999999ll,
};
/* clang-format on */

static double rand_real(void)
{
    union {
        uint64_t u;
        double d;
    } v;
    switch (rnd_below(5)) {
        case 0:
            return special_reals[rnd_below(sizeof special_reals /
                                           sizeof special_reals[0])];
        case 1: /* short decimals */
            return (double)((int64_t)rnd_below(2000001) - 1000000) /
                   pow(10, (double)rnd_below(12));
        case 2: /* integral */
            return (double)((int64_t)rnd() >> rnd_below(64));
        default: /* any finite bit pattern: every magnitude */
            do {
                v.u = rnd();
            } while (!isfinite(v.d));
            return v.d;
    }
}

static int64_t rand_int(void)
{
    switch (rnd_below(3)) {
        case 0:
            return special_ints[rnd_below(sizeof special_ints /
                                          sizeof special_ints[0])];
        case 1:
            return (int64_t)rnd_below(1000) - 500;
        default:
            return (int64_t)rnd() >> rnd_below(64);
    }
}

/* Appends one code point as UTF-8. */
static size_t put_utf8(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static uint32_t rand_codepoint(void)
{
    static const char special[] = "\"\\/\b\f\n\r\t\x7f";
    uint32_t cp;
    switch (rnd_below(8)) {
        case 0:
            return (uint32_t)rnd_below(0x20); /* control, NUL included */
        case 1:
            return (uint8_t)special[rnd_below(sizeof special - 1)];
        case 2:
            return 0x80 + (uint32_t)rnd_below(0x780);
        case 3:
            do {
                cp = 0x800 + (uint32_t)rnd_below(0x10000 - 0x800);
            } while (cp >= 0xD800 && cp <= 0xDFFF);
            return cp;
        case 4:
            return 0x10000 + (uint32_t)rnd_below(0x100000);
        default:
            return 0x20 + (uint32_t)rnd_below(0x5F);
    }
}

static json_t *rand_string(void)
{
    char buf[1024];
    size_t n = 0;
    size_t count = rnd_below(8) == 0 ? rnd_below(200) : rnd_below(12);
    size_t i;
    for (i = 0; i < count; i++) {
        n += put_utf8(rand_codepoint(), buf + n);
    }
    return json_stringn(buf, n);
}

static json_t *rand_json(int depth)
{
    size_t i;
    size_t n;
    json_t *v;
    unsigned kind = (unsigned)rnd_below(depth >= 6 ? 6 : 9);

    switch (kind) {
        case 0:
            return json_null();
        case 1:
            return json_boolean(rnd() & 1);
        case 2:
            return json_integer(rand_int());
        case 3:
        case 4:
            return json_real(rand_real());
        case 5:
            return rand_string();
        case 6:
        case 7:
            v = json_array();
            n = rnd_below(6);
            for (i = 0; i < n; i++) {
                json_array_append_new(v, rand_json(depth + 1));
            }
            return v;
        default:
            v = json_object();
            n = rnd_below(rnd_below(4) == 0 ? 20 : 6);
            for (i = 0; i < n; i++) {
                json_t *k = rand_string();
                json_object_setn_new(v, json_string_value(k),
                                     json_string_length(k),
                                     rand_json(depth + 1));
                json_decref(k);
            }
            return v;
    }
}

/* ---- tests: lengths ---- */

static void test_random_values(void **state)
{
    int i;
    rng_state = 1;
    for (i = 0; i < 5000; i++) {
        json_t *v = rand_json(0);
        assert_non_null(v);
        check_json(v);
        json_decref(v);
    }
}

static void test_reals(void **state)
{
    size_t i;
    rng_state = 2;
    for (i = 0; i < sizeof special_reals / sizeof special_reals[0]; i++) {
        json_t *v = json_real(special_reals[i]);
        check_json(v);
        json_decref(v);
    }
    for (i = 0; i < 100000; i++) {
        json_t *v = json_real(rand_real());
        struct tkv_err err;
        size_t len;
        uint8_t mp[9];
        union {
            uint64_t u;
            double d;
        } d;
        int k;

        /* the byte walker alone, on a hand-packed float64 */
        d.d = json_real_value(v);
        mp[0] = 0xCB;
        for (k = 0; k < 8; k++) {
            mp[1 + k] = (uint8_t)(d.u >> (56 - 8 * k));
        }
        assert_int_equal(tkv_value_check_bytes(mp, 9, &len, &err), 0);
        assert_int_equal(len, dumped_len(v));
        json_decref(v);
    }
}

/* float32 is widened to a double, as tkv_value_to_json does. */
static void test_float32(void **state)
{
    int i;
    rng_state = 3;
    for (i = 0; i < 20000; i++) {
        union {
            uint32_t u;
            float f;
        } f;
        uint8_t mp[5];
        size_t len;
        struct tkv_err err;
        json_t *v;

        do {
            f.u = (uint32_t)rnd();
        } while (!isfinite(f.f));
        mp[0] = 0xCA;
        mp[1] = (uint8_t)(f.u >> 24);
        mp[2] = (uint8_t)(f.u >> 16);
        mp[3] = (uint8_t)(f.u >> 8);
        mp[4] = (uint8_t)f.u;
        assert_int_equal(tkv_value_check_bytes(mp, 5, &len, &err), 0);
        v = json_real((double)f.f);
        assert_int_equal(len, dumped_len(v));
        json_decref(v);
    }
}

/* Every msgpack integer width, signed and unsigned forms. */
static void test_integers(void **state)
{
    static const char *const cases[][2] = {
        {"00", "0"},
        {"7f", "127"},
        {"ff", "-1"},
        {"e0", "-32"},
        {"cc ff", "255"},
        {"cd ffff", "65535"},
        {"ce ffffffff", "4294967295"},
        {"cf 7fffffffffffffff", "9223372036854775807"},
        {"d0 80", "-128"},
        {"d0 05", "5"},
        {"d1 8000", "-32768"},
        {"d2 80000000", "-2147483648"},
        {"d3 8000000000000000", "-9223372036854775808"},
        {"d3 0000000000000010", "16"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t mp[16];
        size_t n = unhex(cases[i][0], mp, sizeof mp);
        size_t len;
        struct tkv_err err;
        assert_int_equal(tkv_value_check_bytes(mp, n, &len, &err), 0);
        assert_int_equal(len, strlen(cases[i][1]));
    }
    for (i = 0; i < sizeof special_ints / sizeof special_ints[0]; i++) {
        json_t *v = json_integer(special_ints[i]);
        check_json(v);
        json_decref(v);
    }
}

/* Every code point of the BMP and a sample above, each alone in a string
 * and then between other characters. */
static void test_strings(void **state)
{
    uint32_t cp;
    for (cp = 0; cp < 0x110000; cp += cp < 0x10000 ? 1 : 97) {
        char buf[16];
        size_t n;
        json_t *v;
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            continue;
        }
        n = put_utf8(cp, buf);
        buf[n++] = 'x';
        n += put_utf8(cp, buf + n);
        v = json_stringn(buf, n);
        assert_non_null(v);
        check_json(v);
        json_decref(v);
    }
}

/* Every ASCII byte and a 2, 3 and 4-byte character at every offset of a
 * 24-byte string, so each lands in each lane of the 8-bytes-at-a-time scan
 * and in the tail; and a stray byte at every offset is refused. */
static void test_strings_every_offset(void **state)
{
    static const uint32_t wide[] = {0xE9, 0x20AC, 0x1F600};
    size_t pos, i;
    (void)state;
    for (pos = 0; pos < 24; pos++) {
        char buf[32];
        struct tkv_buf b;
        struct tkv_err err;
        size_t len;
        json_t *v;
        for (i = 0; i < 128 + 3; i++) {
            size_t n = pos;
            memset(buf, 'a', sizeof buf);
            if (i < 128) {
                buf[n++] = (char)i;
            } else {
                n += put_utf8(wide[i - 128], buf + n);
            }
            v = json_stringn(buf, n > 24 ? n : 24);
            assert_non_null(v);
            check_json(v);
            json_decref(v);
        }
        memset(buf, 'a', sizeof buf);
        buf[pos] = (char)0xFF;
        tkv_buf_init(&b);
        {
            msgpack_packer pk;
            msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
            msgpack_pack_str_with_body(&pk, buf, 24);
        }
        assert_int_equal(tkv_value_check_bytes(b.data, b.len, &len, &err),
                         TKV_ENOT_JSON);
        tkv_buf_close(&b);
    }
}

/* ---- tests: the size limit ---- */

static json_t *string_of_json_len(size_t json_len)
{
    size_t n = json_len - 2; /* the quotes */
    char *s = malloc(n);
    json_t *v;
    memset(s, 'a', n);
    v = json_stringn(s, n);
    free(s);
    return v;
}

static void expect_too_large(size_t json_len)
{
    char want[256];
    struct tkv_buf b;
    struct tkv_err err;
    size_t len = 0;
    json_t *v = string_of_json_len(json_len);
    int rv;

    snprintf(want, sizeof want,
             "Value size (%.2f KB) exceeds the maximum allowed size of 1 MB "
             "(1024 KB)",
             (double)json_len / 1024.0);
    tkv_buf_init(&b);
    rv = tkv_value_from_json(v, &b, &err);
    assert_int_equal(rv, TKV_ETOO_LARGE);
    assert_string_equal(err.msg, want);
    assert_int_equal(b.len, 0); /* nothing left behind */

    /* the node's check on the bytes says the same */
    tkv_buf_reset(&b);
    {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
        msgpack_pack_str_with_body(&pk, json_string_value(v),
                                   json_string_length(v));
    }
    rv = tkv_value_check_bytes(b.data, b.len, &len, &err);
    assert_int_equal(rv, TKV_ETOO_LARGE);
    assert_int_equal(len, json_len);
    assert_string_equal(err.msg, want);

    assert_int_equal(tkv_value_too_large(json_len, &err), TKV_ETOO_LARGE);
    assert_string_equal(err.msg, want);
    tkv_buf_close(&b);
    json_decref(v);
}

static void test_size_boundary(void **state)
{
    struct tkv_buf b;
    struct tkv_err err;
    size_t len;
    json_t *v = string_of_json_len(TKV_VALUE_MAX);

    assert_int_equal(TKV_VALUE_MAX, 1048576);
    tkv_buf_init(&b);
    assert_int_equal(tkv_value_from_json(v, &b, &err), 0);
    assert_int_equal(tkv_value_check_bytes(b.data, b.len, &len, &err), 0);
    assert_int_equal(len, 1048576);
    assert_int_equal(dumped_len(v), 1048576);
    tkv_buf_close(&b);
    json_decref(v);

    expect_too_large(TKV_VALUE_MAX + 1);
    expect_too_large(2000000);
    assert_int_equal(tkv_value_too_large(1048577, &err), TKV_ETOO_LARGE);
    assert_string_equal(err.msg,
                        "Value size (1024.00 KB) exceeds the maximum allowed "
                        "size of 1 MB (1024 KB)");
    tkv_value_too_large(1264189, &err);
    assert_string_equal(err.msg,
                        "Value size (1234.56 KB) exceeds the maximum allowed "
                        "size of 1 MB (1024 KB)");
}

/* The limit counts escapes: 174763 control characters make a 1 MB JSON
 * string out of 170 KB of msgpack. */
static void test_size_counts_escapes(void **state)
{
    size_t n = (TKV_VALUE_MAX - 2) / 6 + 1;
    char *s = malloc(n);
    json_t *v;
    struct tkv_buf b;
    struct tkv_err err;

    memset(s, 0x01, n);
    v = json_stringn(s, n);
    tkv_buf_init(&b);
    assert_int_equal(tkv_value_from_json(v, &b, &err), TKV_ETOO_LARGE);
    assert_int_equal(dumped_len(v), n * 6 + 2);
    tkv_buf_close(&b);
    json_decref(v);
    free(s);
}

/* ---- tests: what is not JSON ---- */

struct bad {
    const char *hex;
    int code;
    const char *reason; /* after "Value is not JSON serializable: " */
};

static const struct bad bad_values[] = {
    {"", TKV_ENOT_JSON, "empty msgpack"},
    {"cb 7ff8000000000000", TKV_ENOT_JSON, "number is NaN"},
    {"cb fff8000000000001", TKV_ENOT_JSON, "number is NaN"},
    {"cb 7ff0000000000000", TKV_ENOT_JSON, "number is infinite"},
    {"cb fff0000000000000", TKV_ENOT_JSON, "number is infinite"},
    {"ca 7fc00000", TKV_ENOT_JSON, "number is NaN"},
    {"ca ff800000", TKV_ENOT_JSON, "number is infinite"},
    {"91 cb 7ff8000000000000", TKV_ENOT_JSON, "number is NaN"},
    {"c4 01 00", TKV_ENOT_JSON, "binary data"},
    {"c5 0001 00", TKV_ENOT_JSON, "binary data"},
    {"c6 00000001 00", TKV_ENOT_JSON, "binary data"},
    {"81 a1 61 c4 00", TKV_ENOT_JSON, "binary data"},
    {"d4 05 00", TKV_ENOT_JSON, "extension type 5"},
    {"d6 ff 00000000", TKV_ENOT_JSON, "extension type -1"}, /* timestamp */
    {"c7 01 07 00", TKV_ENOT_JSON, "extension type 7"},
    {"c8 0001 07 00", TKV_ENOT_JSON, "extension type 7"},
    {"c9 00000001 07 00", TKV_ENOT_JSON, "extension type 7"},
    {"81 01 c0", TKV_ENOT_JSON, "object key is not a string"},
    {"81 c0 c0", TKV_ENOT_JSON, "object key is not a string"},
    {"81 c4 01 61 c0", TKV_ENOT_JSON, "object key is not a string"},
    {"81 91 a1 61 c0", TKV_ENOT_JSON, "object key is not a string"},
    {"82 a1 61 01 a1 61 02", TKV_ENOT_JSON, "duplicate object key"},
    {"83 a0 01 a1 00 02 a0 03", TKV_ENOT_JSON, "duplicate object key"},
    {"82 a1 61 01 d9 01 61 02", TKV_ENOT_JSON, "duplicate object key"},
    {"a1 80", TKV_ENOT_JSON, "invalid UTF-8 in a string"},
    {"a2 c0 80", TKV_ENOT_JSON, "invalid UTF-8 in a string"},    /* overlong */
    {"a3 e0 80 80", TKV_ENOT_JSON, "invalid UTF-8 in a string"}, /* overlong */
    {"a4 f0 80 80 80", TKV_ENOT_JSON, "invalid UTF-8 in a string"},
    {"a3 ed a0 80", TKV_ENOT_JSON, "invalid UTF-8 in a string"}, /* surrogate */
    {"a4 f4 90 80 80", TKV_ENOT_JSON,
     "invalid UTF-8 in a string"}, /* >10FFFF */
    {"a1 f5", TKV_ENOT_JSON, "invalid UTF-8 in a string"},
    {"a1 ff", TKV_ENOT_JSON, "invalid UTF-8 in a string"},
    {"a2 c3 41", TKV_ENOT_JSON, "invalid UTF-8 in a string"},
    {"a2 61 c3", TKV_ENOT_JSON, "invalid UTF-8 in a string"}, /* cut */
    {"a2 e2 82", TKV_ENOT_JSON, "invalid UTF-8 in a string"}, /* cut */
    {"81 a1 ff c0", TKV_ENOT_JSON, "invalid UTF-8 in an object key"},
    {"cf 8000000000000000", TKV_ENOT_JSON,
     "integer 9223372036854775808 out of range (above 2^63-1)"},
    {"cf ffffffffffffffff", TKV_ENOT_JSON,
     "integer 18446744073709551615 out of range (above 2^63-1)"},
    {"c1", TKV_ENOT_JSON, "malformed msgpack (byte 0xC1)"},
    {"91 c1", TKV_ENOT_JSON, "malformed msgpack (byte 0xC1)"},
    {"92 01", TKV_ENOT_JSON, "truncated msgpack"},
    {"a5 61 62", TKV_ENOT_JSON, "truncated msgpack"},
    {"cb 00 00", TKV_ENOT_JSON, "truncated msgpack"},
    {"dd ffffffff", TKV_ENOT_JSON, "truncated msgpack"},
    {"df ffffffff", TKV_ENOT_JSON, "truncated msgpack"},
    {"db ffffffff 61", TKV_ENOT_JSON, "truncated msgpack"},
    {"d9", TKV_ENOT_JSON, "truncated msgpack"},
    {"81 a1 61", TKV_ENOT_JSON, "truncated msgpack"},
    {"c0 c0", TKV_ENOT_JSON, "trailing bytes after the value"},
    {"90 00", TKV_ENOT_JSON, "trailing bytes after the value"},
};

static void test_not_json(void **state)
{
    size_t i;
    for (i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        const struct bad *b = &bad_values[i];
        uint8_t mp[64];
        char want[256];
        struct tkv_err err;
        size_t n = unhex(b->hex, mp, sizeof mp);
        int rv = tkv_value_check_bytes(mp, n, NULL, &err);
        snprintf(want, sizeof want, "Value is not JSON serializable: %s",
                 b->reason);
        if (rv != b->code || strcmp(err.msg, want) != 0) {
            fail_msg("case %zu (%s): got %d \"%s\", want %d \"%s\"", i, b->hex,
                     rv, err.msg, b->code, want);
        }

        /* where msgpack-c can unpack the bytes, the object walker agrees */
        {
            msgpack_unpacked u;
            size_t off = 0;
            msgpack_unpacked_init(&u);
            /* not on truncated input: msgpack-c would size an allocation
             * from the bogus count (the reason the byte walker exists) */
            if (n > 0 && strstr(b->reason, "truncated") == NULL &&
                msgpack_unpack_next(&u, (const char *)mp, n, &off) ==
                    MSGPACK_UNPACK_SUCCESS &&
                off == n) {
                json_t *v;
                assert_int_equal(tkv_value_check(&u.data, NULL, &err), rv);
                assert_string_equal(err.msg, want);
                v = tkv_value_to_json(&u.data, &err);
                assert_null(v);
                assert_string_equal(err.msg, want);
            }
            msgpack_unpacked_destroy(&u);
        }
    }
}

/* Duplicate keys in maps big enough to be sorted, in every position. */
static void test_duplicate_keys_big_map(void **state)
{
    int nkeys;
    for (nkeys = 2; nkeys < 40; nkeys++) {
        int dup;
        for (dup = 0; dup < nkeys; dup++) {
            struct tkv_buf b;
            msgpack_packer pk;
            struct tkv_err err;
            size_t len;
            int i;

            tkv_buf_init(&b);
            msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
            msgpack_pack_map(&pk, (size_t)nkeys);
            for (i = 0; i < nkeys; i++) {
                /* keys "k0", "k1", ... except one that repeats "k" + dup
                 * (or, for dup == i, a key that only shares a prefix) */
                char key[16];
                int kn;
                if (i == nkeys - 1 && dup != nkeys - 1) {
                    kn = snprintf(key, sizeof key, "k%d", dup);
                } else {
                    kn = snprintf(key, sizeof key, "k%d", i);
                }
                msgpack_pack_str_with_body(&pk, key, (size_t)kn);
                msgpack_pack_int(&pk, i);
            }
            if (dup == nkeys - 1) {
                assert_int_equal(
                    tkv_value_check_bytes(b.data, b.len, &len, &err), 0);
            } else {
                assert_int_equal(
                    tkv_value_check_bytes(b.data, b.len, &len, &err),
                    TKV_ENOT_JSON);
                assert_string_equal(err.msg,
                                    "Value is not JSON serializable: "
                                    "duplicate object key");
            }
            tkv_buf_close(&b);
        }
    }
}

/* Depth 32 is the most msgpack-c's unpacker can read back: accepted and
 * readable; one more is refused by every path. */
static void test_depth(void **state)
{
    int depth;
    for (depth = 1; depth <= 40; depth++) {
        uint8_t mp[64];
        struct tkv_err err;
        msgpack_unpacked u;
        size_t off = 0;
        json_t *v = json_array();
        json_t *inner = v;
        struct tkv_buf b;
        int ok = depth <= 32 && depth <= TKV_VALUE_MAX_DEPTH;
        int i;
        int rv;

        /* [[[...[]...]]] with `depth` arrays */
        memset(mp, 0x91, (size_t)depth);
        mp[depth - 1] = 0x90;
        rv = tkv_value_check_bytes(mp, (size_t)depth, NULL, &err);
        msgpack_unpacked_init(&u);
        if (ok) {
            assert_int_equal(rv, 0);
            /* and a reader can unpack it again */
            assert_int_equal(
                msgpack_unpack_next(&u, (const char *)mp, (size_t)depth, &off),
                MSGPACK_UNPACK_SUCCESS);
            assert_int_equal(tkv_value_check(&u.data, NULL, &err), 0);
        } else {
            assert_int_equal(rv, TKV_ENOT_JSON);
            assert_string_equal(err.msg,
                                "Value is not JSON serializable: "
                                "nesting deeper than 32 levels");
        }
        msgpack_unpacked_destroy(&u);

        for (i = 1; i < depth; i++) {
            json_t *next = (i % 2 == 0) ? json_array() : json_object();
            if (json_is_array(inner)) {
                json_array_append_new(inner, next);
            } else {
                json_object_set_new(inner, "k", next);
            }
            inner = next;
        }
        tkv_buf_init(&b);
        rv = tkv_value_from_json(v, &b, &err);
        assert_int_equal(rv, ok ? 0 : TKV_ENOT_JSON);
        if (ok) {
            check_json(v);
        } else {
            assert_int_equal(b.len, 0);
        }
        tkv_buf_close(&b);
        json_decref(v);
    }
    /* msgpack-c itself stops at 33: the reason for the limit */
    {
        uint8_t mp[33];
        msgpack_unpacked u;
        size_t off = 0;
        memset(mp, 0x91, sizeof mp);
        mp[32] = 0x90;
        msgpack_unpacked_init(&u);
        assert_true(msgpack_unpack_next(&u, (const char *)mp, sizeof mp, &off) <
                    0);
        msgpack_unpacked_destroy(&u);
    }
}

/* Every strict prefix of a valid value is truncated; one byte more is
 * trailing. */
static void test_prefixes_and_trailing(void **state)
{
    int i;
    rng_state = 4;
    for (i = 0; i < 300; i++) {
        json_t *v = rand_json(0);
        struct tkv_buf b;
        struct tkv_err err;
        size_t n;
        tkv_buf_init(&b);
        if (tkv_value_from_json(v, &b, &err) == 0) {
            for (n = 0; n < b.len; n++) {
                int rv = tkv_value_check_bytes(b.data, n, NULL, &err);
                assert_int_equal(rv, TKV_ENOT_JSON);
            }
            tkv_buf_append(&b, "\xc0", 1);
            assert_int_equal(tkv_value_check_bytes(b.data, b.len, NULL, &err),
                             TKV_ENOT_JSON);
            assert_string_equal(err.msg,
                                "Value is not JSON serializable: "
                                "trailing bytes after the value");
        }
        tkv_buf_close(&b);
        json_decref(v);
    }
}

/* tkv_value_to_json refuses what tkv_value_check refuses, on hand-built
 * objects too (not only what msgpack-c unpacks). */
static void test_to_json_refuses(void **state)
{
    msgpack_object o;
    msgpack_object_kv kv[2];
    struct tkv_err err;

    memset(&o, 0, sizeof o);
    o.type = MSGPACK_OBJECT_FLOAT64;
    o.via.f64 = NAN;
    assert_null(tkv_value_to_json(&o, &err));
    assert_int_equal(err.code, TKV_ENOT_JSON);

    o.type = MSGPACK_OBJECT_FLOAT32;
    o.via.f64 = -INFINITY;
    assert_null(tkv_value_to_json(&o, &err));
    assert_string_equal(err.msg,
                        "Value is not JSON serializable: number is infinite");

    o.type = MSGPACK_OBJECT_BIN;
    o.via.bin.size = 0;
    assert_null(tkv_value_to_json(&o, &err));
    assert_string_equal(err.msg, "Value is not JSON serializable: binary data");

    memset(kv, 0, sizeof kv);
    kv[0].key.type = MSGPACK_OBJECT_STR;
    kv[0].key.via.str.ptr = "a";
    kv[0].key.via.str.size = 1;
    kv[1] = kv[0];
    o.type = MSGPACK_OBJECT_MAP;
    o.via.map.size = 2;
    o.via.map.ptr = kv;
    assert_null(tkv_value_to_json(&o, &err));
    assert_string_equal(err.msg,
                        "Value is not JSON serializable: duplicate object key");
    kv[1].key.via.str.ptr = "b";
    {
        json_t *v = tkv_value_to_json(&o, &err);
        assert_non_null(v);
        assert_int_equal(json_object_size(v), 2);
        json_decref(v);
    }
}

/* Keys with NUL bytes and keys that are prefixes of others are distinct. */
static void test_tricky_keys(void **state)
{
    json_t *v = json_object();
    json_object_setn_new(v, "a\0b", 3, json_integer(1));
    json_object_setn_new(v, "a", 1, json_integer(2));
    json_object_setn_new(v, "a\0", 2, json_integer(3));
    json_object_setn_new(v, "", 0, json_integer(4));
    json_object_setn_new(v, "\x7f/\"", 3, json_integer(5));
    check_json(v);
    json_decref(v);
}

/* Allocation failures unwind without leaks (ASan checks the leaks). */
static void test_alloc_failure(void **state)
{
    json_t *v = json_object();
    struct tkv_buf b;
    struct tkv_err err;
    long n;
    int i;

    for (i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        json_object_set_new(v, k, json_integer(i));
    }
    for (n = 0; n < 10; n++) {
        int rv;
        tkv_buf_init(&b);
        tkv_alloc_fail_after(n);
        rv = tkv_value_from_json(v, &b, &err);
        tkv_alloc_fail_reset();
        if (rv == 0) {
            assert_int_equal(tkv_value_check_bytes(b.data, b.len, NULL, &err),
                             0);
        } else {
            assert_int_equal(rv, TKV_ENOMEM);
            assert_int_equal(b.len, 0);
        }
        tkv_buf_close(&b);
    }

    /* the key sort of a big map is the byte walker's only allocation */
    tkv_buf_init(&b);
    assert_int_equal(tkv_value_from_json(v, &b, &err), 0);
    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_value_check_bytes(b.data, b.len, NULL, &err),
                     TKV_ENOMEM);
    tkv_alloc_fail_reset();
    tkv_buf_close(&b);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_reals),
        cmocka_unit_test(test_float32),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_strings_every_offset),
        cmocka_unit_test(test_size_boundary),
        cmocka_unit_test(test_size_counts_escapes),
        cmocka_unit_test(test_not_json),
        cmocka_unit_test(test_duplicate_keys_big_map),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_prefixes_and_trailing),
        cmocka_unit_test(test_to_json_refuses),
        cmocka_unit_test(test_tricky_keys),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
