/* Tests of common/mpread.c, the strict msgpack cursor: every type byte,
 * every width, the integer edges, floats, truncation at every length with
 * the reason it reports, counts larger than the bytes, and skipping nested
 * data with and without a depth limit. The encodings are written out by
 * hand (not by msgpack-c) so that the tests do not share a bug with the
 * packer the rest of the tree uses. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "common/mpread.h"

/* ---- helpers ---- */

/* Hex digits (spaces ignored) into out; the number of bytes. */
static size_t unhex(const char *hex, uint8_t *out)
{
    size_t n = 0;
    int hi = -1;
    for (; *hex != '\0'; hex++) {
        int v;
        if (*hex == ' ') {
            continue;
        }
        v = *hex <= '9' ? *hex - '0' : (*hex | 0x20) - 'a' + 10;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    assert_true(hi < 0);
    return n;
}

/* A reader over hex bytes (kept in buf). */
static void reader(struct tkv_mpr *r, uint8_t *buf, const char *hex)
{
    tkv_mpr_init(r, buf, unhex(hex, buf));
}

/* The header of a sized item: type byte then an n-byte big-endian length
 * or count. */
static size_t put_head(uint8_t *p, uint8_t type, size_t n, uint64_t v)
{
    p[0] = type;
    for (size_t i = 0; i < n; i++) {
        p[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    }
    return 1 + n;
}

static void assert_failed(struct tkv_mpr *r,
                          int rv,
                          enum tkv_mpr_why why,
                          size_t off)
{
    assert_int_equal(rv, TKV_ECORRUPT);
    assert_int_equal(r->why, why);
    assert_int_equal(r->off, off); /* a failure does not move */
}

/* ---- peek ---- */

static void test_peek_every_byte(void **state)
{
    uint8_t buf[2] = {0};
    struct tkv_mpr r;
    (void)state;

    tkv_mpr_init(&r, buf, 0);
    assert_int_equal(tkv_mpr_peek(&r), TKV_MP_END);
    for (int b = 0; b < 256; b++) {
        enum tkv_mp_type want;
        if (b <= 0x7f || (b >= 0xcc && b <= 0xcf)) {
            want = TKV_MP_UINT;
        } else if (b <= 0x8f || b == 0xde || b == 0xdf) {
            want = TKV_MP_MAP;
        } else if (b <= 0x9f || b == 0xdc || b == 0xdd) {
            want = TKV_MP_ARRAY;
        } else if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) {
            want = TKV_MP_STR;
        } else if (b == 0xc0) {
            want = TKV_MP_NIL;
        } else if (b == 0xc1) {
            want = TKV_MP_BAD;
        } else if (b == 0xc2 || b == 0xc3) {
            want = TKV_MP_BOOL;
        } else if (b >= 0xc4 && b <= 0xc6) {
            want = TKV_MP_BIN;
        } else if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
            want = TKV_MP_EXT;
        } else if (b == 0xca || b == 0xcb) {
            want = TKV_MP_FLOAT;
        } else {
            want = TKV_MP_NINT; /* 0xd0-0xd3 with the sign set, 0xe0-0xff */
        }
        buf[0] = (uint8_t)b;
        buf[1] = 0xff;
        tkv_mpr_init(&r, buf, 2);
        assert_int_equal(tkv_mpr_peek(&r), want);
        assert_int_equal(r.off, 0);
    }

    /* a signed encoding's sign decides; a cut one is negative (and fails) */
    reader(&r, buf, "d0 01");
    assert_int_equal(tkv_mpr_peek(&r), TKV_MP_UINT);
    reader(&r, buf, "d0");
    assert_int_equal(tkv_mpr_peek(&r), TKV_MP_NINT);
}

/* ---- nil, bool ---- */

static void test_nil_bool(void **state)
{
    uint8_t buf[8] = {0};
    struct tkv_mpr r;
    int v = -1;
    (void)state;

    reader(&r, buf, "c0 c2 c3");
    assert_int_equal(tkv_mpr_nil(&r), 0);
    assert_int_equal(tkv_mpr_bool(&r, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(tkv_mpr_bool(&r, &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(r.off, 3);
    assert_failed(&r, tkv_mpr_nil(&r), TKV_MPR_END, 3);
    assert_failed(&r, tkv_mpr_bool(&r, &v), TKV_MPR_END, 3);

    reader(&r, buf, "c3");
    assert_failed(&r, tkv_mpr_nil(&r), TKV_MPR_TYPE, 0);
    reader(&r, buf, "c0");
    assert_failed(&r, tkv_mpr_bool(&r, &v), TKV_MPR_TYPE, 0);
    reader(&r, buf, "c1");
    assert_failed(&r, tkv_mpr_nil(&r), TKV_MPR_TYPE, 0);
}

/* ---- integers ---- */

struct int_case {
    const char *hex;
    int neg;    /* read as int64 only */
    uint64_t u; /* the value as uint64 (two's complement when neg) */
};

static const struct int_case int_cases[] = {
    {"00", 0, 0},
    {"7f", 0, 127},
    {"ff", 1, (uint64_t)-1},
    {"e0", 1, (uint64_t)-32},
    {"cc 00", 0, 0},
    {"cc ff", 0, 255},
    {"cd ff ff", 0, 65535},
    {"cd 01 00", 0, 256},
    {"ce ff ff ff ff", 0, UINT32_MAX},
    {"cf 00 00 00 01 00 00 00 00", 0, (uint64_t)UINT32_MAX + 1},
    {"cf 7f ff ff ff ff ff ff ff", 0, INT64_MAX},
    {"cf 80 00 00 00 00 00 00 00", 0, (uint64_t)INT64_MAX + 1},
    {"cf ff ff ff ff ff ff ff ff", 0, UINT64_MAX},
    /* signed encodings of non-negative values are UINT */
    {"d0 00", 0, 0},
    {"d0 7f", 0, 127},
    {"d1 7f ff", 0, INT16_MAX},
    {"d2 7f ff ff ff", 0, INT32_MAX},
    {"d3 7f ff ff ff ff ff ff ff", 0, INT64_MAX},
    /* negative ones, every width, both ends */
    {"d0 ff", 1, (uint64_t)-1},
    {"d0 80", 1, (uint64_t)INT8_MIN},
    {"d1 ff ff", 1, (uint64_t)-1},
    {"d1 80 00", 1, (uint64_t)INT16_MIN},
    {"d2 ff ff ff ff", 1, (uint64_t)-1},
    {"d2 80 00 00 00", 1, (uint64_t)INT32_MIN},
    {"d3 ff ff ff ff ff ff ff ff", 1, (uint64_t)-1},
    {"d3 80 00 00 00 00 00 00 00", 1, (uint64_t)INT64_MIN},
};

static void test_integers(void **state)
{
    uint8_t buf[16] = {0};
    struct tkv_mpr r;
    (void)state;

    for (size_t c = 0; c < sizeof int_cases / sizeof int_cases[0]; c++) {
        const struct int_case *k = &int_cases[c];
        uint64_t u = 0;
        int64_t i = 0;
        size_t n;

        reader(&r, buf, k->hex);
        n = r.len;
        assert_int_equal(tkv_mpr_peek(&r), k->neg ? TKV_MP_NINT : TKV_MP_UINT);
        if (k->neg) {
            assert_failed(&r, tkv_mpr_uint(&r, &u), TKV_MPR_RANGE, 0);
        } else {
            assert_int_equal(tkv_mpr_uint(&r, &u), 0);
            assert_true(u == k->u);
            assert_int_equal(r.off, n);
            r.off = 0;
        }
        if (!k->neg && k->u > INT64_MAX) {
            assert_failed(&r, tkv_mpr_int(&r, &i), TKV_MPR_RANGE, 0);
        } else {
            assert_int_equal(tkv_mpr_int(&r, &i), 0);
            assert_true(i == (int64_t)k->u);
            assert_int_equal(r.off, n);
        }

        /* cut at every length: nothing, then the value bytes */
        for (size_t len = 0; len < n; len++) {
            tkv_mpr_init(&r, buf, len);
            assert_failed(&r, tkv_mpr_int(&r, &i),
                          len == 0 ? TKV_MPR_END : TKV_MPR_BODY, 0);
            assert_failed(&r, tkv_mpr_uint(&r, &u),
                          len == 0 ? TKV_MPR_END : TKV_MPR_BODY, 0);
            if (len > 0) {
                assert_int_equal(r.want, n - 1);
                assert_int_equal(r.have, len - 1);
            }
        }
    }

    /* not an integer */
    reader(&r, buf, "ca 00 00 00 00");
    {
        uint64_t u;
        int64_t i;
        assert_failed(&r, tkv_mpr_uint(&r, &u), TKV_MPR_TYPE, 0);
        assert_failed(&r, tkv_mpr_int(&r, &i), TKV_MPR_TYPE, 0);
    }
}

/* ---- floats ---- */

static void test_floats(void **state)
{
    uint8_t buf[16] = {0};
    struct tkv_mpr r;
    double d = 0;
    (void)state;

    reader(&r, buf, "ca 3f c0 00 00");
    assert_int_equal(tkv_mpr_peek(&r), TKV_MP_FLOAT);
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == 1.5);
    assert_int_equal(r.off, 5);

    /* a float32 widens exactly */
    reader(&r, buf, "ca 3d cc cc cd");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == (double)0.1f);
    reader(&r, buf, "ca 80 00 00 00");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == 0 && signbit(d));
    reader(&r, buf, "ca 7f 80 00 00");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(isinf(d) && d > 0);
    reader(&r, buf, "ca 7f c0 00 00");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(isnan(d));
    reader(&r, buf, "ca 00 00 00 01"); /* smallest float32 subnormal */
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == 0x1p-149);

    reader(&r, buf, "cb 3f b9 99 99 99 99 99 9a");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == 0.1);
    assert_int_equal(r.off, 9);
    reader(&r, buf, "cb ff ef ff ff ff ff ff ff");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == -1.7976931348623157e308);
    reader(&r, buf, "cb 00 00 00 00 00 00 00 01");
    assert_int_equal(tkv_mpr_float(&r, &d), 0);
    assert_true(d == 0x1p-1074);

    /* cut at every length */
    for (size_t len = 0; len < 9; len++) {
        unhex("cb 3f b9 99 99 99 99 99 9a", buf);
        tkv_mpr_init(&r, buf, len);
        assert_failed(&r, tkv_mpr_float(&r, &d),
                      len == 0 ? TKV_MPR_END : TKV_MPR_BODY, 0);
        if (len < 5) {
            buf[0] = 0xca;
            assert_failed(&r, tkv_mpr_float(&r, &d),
                          len == 0 ? TKV_MPR_END : TKV_MPR_BODY, 0);
        }
    }

    /* integers are not floats */
    reader(&r, buf, "01");
    assert_failed(&r, tkv_mpr_float(&r, &d), TKV_MPR_TYPE, 0);
}

/* ---- str, bin, ext ---- */

/* One sized item: its type byte, the width of its length field, and for an
 * ext the extra type byte in its body. */
struct raw_case {
    uint8_t type;
    size_t width;
    enum tkv_mp_type kind;
};

static const struct raw_case raw_cases[] = {
    {0xa0, 0, TKV_MP_STR}, {0xd9, 1, TKV_MP_STR}, {0xda, 2, TKV_MP_STR},
    {0xdb, 4, TKV_MP_STR}, {0xc4, 1, TKV_MP_BIN}, {0xc5, 2, TKV_MP_BIN},
    {0xc6, 4, TKV_MP_BIN}, {0xc7, 1, TKV_MP_EXT}, {0xc8, 2, TKV_MP_EXT},
    {0xc9, 4, TKV_MP_EXT},
};

/* Read buf[0..len) as kind; the result of the typed reader. */
static int read_raw(struct tkv_mpr *r,
                    enum tkv_mp_type kind,
                    const uint8_t **p,
                    uint32_t *n,
                    int8_t *x)
{
    const char *s = NULL;
    int rv;
    switch (kind) {
        case TKV_MP_STR:
            rv = tkv_mpr_str(r, &s, n);
            *p = (const uint8_t *)s;
            return rv;
        case TKV_MP_BIN:
            return tkv_mpr_bin(r, p, n);
        default:
            return tkv_mpr_ext(r, x, p, n);
    }
}

static void test_str_bin_ext(void **state)
{
    static uint8_t buf[1 + 4 + 1 + 300];
    (void)state;

    for (size_t c = 0; c < sizeof raw_cases / sizeof raw_cases[0]; c++) {
        const struct raw_case *k = &raw_cases[c];
        int ext = k->kind == TKV_MP_EXT;
        /* a fixstr holds at most 31 bytes; the others get past 255 */
        uint32_t lens[] = {0, 1, 31, k->width == 0 ? 31 : 300};
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            uint32_t len = lens[li];
            struct tkv_mpr r;
            const uint8_t *p = NULL;
            uint32_t n = 0;
            int8_t x = 0;
            size_t hdr, total;

            if (k->width == 1 && len > 255) {
                len = 255;
            }
            if (k->width == 0) {
                buf[0] = (uint8_t)(k->type | len);
                hdr = 1;
            } else {
                hdr = put_head(buf, k->type, k->width, len);
            }
            if (ext) {
                buf[hdr] = 0xfe; /* application type -2 */
            }
            for (uint32_t i = 0; i < len; i++) {
                buf[hdr + ext + i] = (uint8_t)('a' + i % 26);
            }
            total = hdr + ext + len;

            tkv_mpr_init(&r, buf, total);
            assert_int_equal(tkv_mpr_peek(&r), k->kind);
            assert_int_equal(read_raw(&r, k->kind, &p, &n, &x), 0);
            assert_ptr_equal(p, buf + hdr + ext);
            assert_int_equal(n, len);
            assert_int_equal(r.off, total);
            if (ext) {
                assert_int_equal(x, -2);
                r.off = 0;
                x = 0;
                assert_int_equal(tkv_mpr_ext_type(&r, &x), 0);
                assert_int_equal(x, -2);
                assert_int_equal(r.off, 0);
            }

            /* cut at every length: the length field, then the body */
            for (size_t cut = 0; cut < total; cut++) {
                enum tkv_mpr_why why = cut == 0    ? TKV_MPR_END
                                       : cut < hdr ? TKV_MPR_HEADER
                                                   : TKV_MPR_BODY;
                tkv_mpr_init(&r, buf, cut);
                assert_failed(&r, read_raw(&r, k->kind, &p, &n, &x), why, 0);
                if (why == TKV_MPR_BODY) {
                    assert_int_equal(r.want, len + (uint64_t)ext);
                    assert_int_equal(r.have, cut - hdr);
                }
                if (ext) {
                    /* the type is there once its byte is */
                    assert_int_equal(tkv_mpr_ext_type(&r, &x) == 0, cut > hdr);
                }
            }

            /* the other two kinds refuse it */
            tkv_mpr_init(&r, buf, total);
            for (size_t o = 0; o < 3; o++) {
                const enum tkv_mp_type kinds[] = {TKV_MP_STR, TKV_MP_BIN,
                                                  TKV_MP_EXT};
                if (kinds[o] != k->kind) {
                    assert_failed(&r, read_raw(&r, kinds[o], &p, &n, &x),
                                  TKV_MPR_TYPE, 0);
                }
            }
        }
    }
}

static void test_fixext(void **state)
{
    uint8_t buf[1 + 1 + 16] = {0};
    (void)state;

    for (int i = 0; i < 5; i++) {
        uint32_t size = 1u << i;
        struct tkv_mpr r;
        const uint8_t *p = NULL;
        uint32_t n = 0;
        int8_t x = 0;

        buf[0] = (uint8_t)(0xd4 + i);
        buf[1] = 0x05;
        memset(buf + 2, 0xee, size);
        tkv_mpr_init(&r, buf, 2 + size);
        assert_int_equal(tkv_mpr_peek(&r), TKV_MP_EXT);
        assert_int_equal(tkv_mpr_ext(&r, &x, &p, &n), 0);
        assert_int_equal(x, 5);
        assert_ptr_equal(p, buf + 2);
        assert_int_equal(n, size);
        assert_int_equal(r.off, 2 + size);
        for (size_t cut = 0; cut < 2 + size; cut++) {
            tkv_mpr_init(&r, buf, cut);
            assert_failed(&r, tkv_mpr_ext(&r, &x, &p, &n),
                          cut == 0 ? TKV_MPR_END : TKV_MPR_BODY, 0);
            assert_int_equal(tkv_mpr_ext_type(&r, &x) == 0, cut >= 2);
        }
    }
    {
        struct tkv_mpr r;
        int8_t x;
        reader(&r, buf, "a0");
        assert_int_equal(tkv_mpr_ext_type(&r, &x), TKV_ECORRUPT);
    }
}

/* ---- arrays and maps ---- */

static void test_containers(void **state)
{
    static uint8_t buf[1 + 4 + 2 * 65536];
    const size_t widths[] = {0, 2, 4};
    (void)state;

    for (int map = 0; map <= 1; map++) {
        for (size_t wi = 0; wi < 3; wi++) {
            size_t w = widths[wi];
            uint32_t counts[] = {0, 1, 15, w == 0 ? 15 : 16,
                                 w == 4 ? 65536 : 15};
            for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
                uint32_t count = counts[ci];
                size_t items = map ? 2 * (size_t)count : count;
                enum tkv_mp_type t = TKV_MP_END;
                struct tkv_mpr r;
                size_t hdr, total, start = 99, end = 0;
                uint32_t n = 0;

                if (w == 0) {
                    buf[0] = (uint8_t)((map ? 0x80 : 0x90) | count);
                    hdr = 1;
                } else {
                    hdr =
                        put_head(buf, (uint8_t)((map ? 0xde : 0xdc) + (w == 4)),
                                 w, count);
                }
                memset(buf + hdr, 0xc0, items); /* nils */
                total = hdr + items;

                tkv_mpr_init(&r, buf, total);
                assert_int_equal(tkv_mpr_peek(&r),
                                 map ? TKV_MP_MAP : TKV_MP_ARRAY);
                assert_int_equal(
                    map ? tkv_mpr_map(&r, &n) : tkv_mpr_array(&r, &n), 0);
                assert_int_equal(n, count);
                assert_int_equal(r.off, hdr);
                r.off = 0;
                assert_int_equal(tkv_mpr_container(&r, TKV_MP_END, &t, &n), 0);
                assert_int_equal(t, map ? TKV_MP_MAP : TKV_MP_ARRAY);
                assert_int_equal(r.off, hdr);
                r.off = 0;
                assert_int_equal(tkv_mpr_skip(&r, &start, &end), 0);
                assert_int_equal(start, 0);
                assert_int_equal(end, total);

                /* the wrong one of the two */
                r.off = 0;
                assert_failed(&r,
                              map ? tkv_mpr_array(&r, &n) : tkv_mpr_map(&r, &n),
                              TKV_MPR_TYPE, 0);
                assert_failed(&r,
                              tkv_mpr_container(
                                  &r, map ? TKV_MP_ARRAY : TKV_MP_MAP, &t, &n),
                              TKV_MPR_TYPE, 0);

                /* cut at every length (only the first ones of big ones) */
                for (size_t cut = 0; cut < total && cut < hdr + 40; cut++) {
                    enum tkv_mpr_why why = cut == 0    ? TKV_MPR_END
                                           : cut < hdr ? TKV_MPR_HEADER
                                                       : TKV_MPR_COUNT;
                    tkv_mpr_init(&r, buf, cut);
                    assert_failed(
                        &r, map ? tkv_mpr_map(&r, &n) : tkv_mpr_array(&r, &n),
                        why, 0);
                    if (why == TKV_MPR_COUNT) {
                        assert_int_equal(r.want, count);
                        assert_int_equal(r.have, cut - hdr);
                    }
                    /* the header alone reads without the count check */
                    assert_int_equal(
                        tkv_mpr_container(&r, TKV_MP_END, &t, &n) == 0,
                        cut >= hdr);
                    r.off = 0;
                    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL),
                                  why == TKV_MPR_COUNT ? TKV_MPR_COUNT : why,
                                  0);
                }
            }
        }
    }
}

static void test_counts_larger_than_bytes(void **state)
{
    uint8_t buf[16] = {0};
    struct tkv_mpr r;
    enum tkv_mp_type t;
    uint32_t n = 0;
    (void)state;

    /* 5 bytes asking for 4 billion elements */
    reader(&r, buf, "dd ff ff ff ff");
    assert_failed(&r, tkv_mpr_array(&r, &n), TKV_MPR_COUNT, 0);
    assert_true(r.want == UINT32_MAX);
    assert_int_equal(r.have, 0);
    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL), TKV_MPR_COUNT, 0);
    assert_int_equal(tkv_mpr_container(&r, TKV_MP_ARRAY, &t, &n), 0);
    assert_true(n == UINT32_MAX);

    /* a map's pairs take two bytes at least */
    reader(&r, buf, "df 00 00 00 02 c0 c0 c0");
    assert_failed(&r, tkv_mpr_map(&r, &n), TKV_MPR_COUNT, 0);
    reader(&r, buf, "82 c0 c0 c0");
    assert_failed(&r, tkv_mpr_map(&r, &n), TKV_MPR_COUNT, 0);
    reader(&r, buf, "82 c0 c0 c0 c0");
    assert_int_equal(tkv_mpr_map(&r, &n), 0);
    assert_int_equal(n, 2);

    /* backed by bytes, but the elements are not all there */
    reader(&r, buf, "92 a5 61 62");
    assert_int_equal(tkv_mpr_array(&r, &n), 0);
    r.off = 0;
    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL), TKV_MPR_BODY, 0);
    reader(&r, buf, "92 c0");
    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL), TKV_MPR_COUNT, 0);
    /* each level checks its own count, in order */
    reader(&r, buf, "92 92 c1 c0");
    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL), TKV_MPR_TYPE, 0);
    reader(&r, buf, "92 92 c0 c0");
    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL), TKV_MPR_END, 0);
}

/* ---- skip ---- */

static void test_skip_nested(void **state)
{
    uint8_t buf[256] = {0};
    struct tkv_mpr r;
    size_t start = 0, end = 0;
    size_t n;
    (void)state;

    /* {"a": [1, -2, 3.5, nil, true, "xy", bin[2], {}, [[]]],
     *  "b": ext(7, 4 bytes), "c": {"d": {"e": [uint64]}}} then 0x2a */
    n = unhex(
        "83"
        "a1 61 99 01 fe cb 40 0c 00 00 00 00 00 00 c0 c3 a2 78 79"
        "   c4 02 00 01 80 91 90"
        "a1 62 d6 07 de ad be ef"
        "a1 63 81 a1 64 81 a1 65 91 cf ff ff ff ff ff ff ff ff"
        "2a",
        buf);
    tkv_mpr_init(&r, buf, n);
    assert_int_equal(tkv_mpr_skip(&r, &start, &end), 0);
    assert_int_equal(start, 0);
    assert_int_equal(end, n - 1);
    assert_int_equal(r.off, n - 1);
    assert_int_equal(tkv_mpr_skip(&r, &start, &end), 0);
    assert_int_equal(start, n - 1);
    assert_int_equal(end, n);
    assert_failed(&r, tkv_mpr_skip(&r, &start, &end), TKV_MPR_END, n);

    /* from inside: the map's first value */
    r.off = 3;
    assert_int_equal(tkv_mpr_skip(&r, &start, &end), 0);
    assert_int_equal(start, 3);
    assert_int_equal(buf[end], 0xa1); /* at "b" */

    /* needs 4 open containers; nothing goes past the end when cut */
    tkv_mpr_init(&r, buf, n - 1);
    assert_int_equal(tkv_mpr_skip_depth(&r, 4, NULL, &end), 0);
    assert_int_equal(end, n - 1);
    r.off = 0;
    assert_failed(&r, tkv_mpr_skip_depth(&r, 3, NULL, NULL), TKV_MPR_DEPTH, 0);
    for (size_t cut = 0; cut < n - 1; cut++) {
        tkv_mpr_init(&r, buf, cut);
        assert_int_equal(tkv_mpr_skip(&r, NULL, NULL), TKV_ECORRUPT);
        assert_int_equal(r.off, 0);
        assert_true(r.why != TKV_MPR_NONE && r.why != TKV_MPR_TYPE &&
                    r.why != TKV_MPR_DEPTH && r.why != TKV_MPR_RANGE);
    }

    /* 0xc1 anywhere is refused */
    reader(&r, buf, "92 c0 c1");
    assert_failed(&r, tkv_mpr_skip(&r, NULL, NULL), TKV_MPR_TYPE, 0);
}

static void test_skip_depth(void **state)
{
    uint8_t buf[TKV_MPR_DEPTH_MAX + 8] = {0};
    struct tkv_mpr r;
    size_t end = 0;
    (void)state;

    /* scalars need no depth; any container needs one */
    reader(&r, buf, "c0");
    assert_int_equal(tkv_mpr_skip_depth(&r, 0, NULL, &end), 0);
    assert_int_equal(end, 1);
    reader(&r, buf, "90");
    assert_failed(&r, tkv_mpr_skip_depth(&r, 0, NULL, NULL), TKV_MPR_DEPTH, 0);
    assert_int_equal(tkv_mpr_skip_depth(&r, 1, NULL, &end), 0);

    for (unsigned d = 1; d <= TKV_MPR_DEPTH_MAX; d++) {
        /* d arrays of one element around nil, then d around [] */
        memset(buf, 0x91, d);
        buf[d] = 0xc0;
        tkv_mpr_init(&r, buf, d + 1);
        assert_int_equal(tkv_mpr_skip_depth(&r, d, NULL, &end), 0);
        assert_int_equal(end, d + 1);
        r.off = 0;
        if (d > 1) {
            assert_failed(&r, tkv_mpr_skip_depth(&r, d - 1, NULL, NULL),
                          TKV_MPR_DEPTH, 0);
        }
        buf[d - 1] = 0x90; /* the d-th container is empty */
        tkv_mpr_init(&r, buf, d);
        assert_int_equal(tkv_mpr_skip_depth(&r, d, NULL, &end), 0);
        assert_int_equal(end, d);
        if (d > 1) {
            r.off = 0;
            assert_failed(&r, tkv_mpr_skip_depth(&r, d - 1, NULL, NULL),
                          TKV_MPR_DEPTH, 0);
        }
        r.off = 0;
        assert_int_equal(tkv_mpr_skip(&r, NULL, &end), 0);
        assert_int_equal(end, d);
    }

    /* closed containers no longer count */
    reader(&r, buf, "93 91 90 91 90 91 90");
    assert_int_equal(tkv_mpr_skip_depth(&r, 3, NULL, &end), 0);
    assert_int_equal(end, 7);
    r.off = 0;
    assert_failed(&r, tkv_mpr_skip_depth(&r, 2, NULL, NULL), TKV_MPR_DEPTH, 0);

    /* order of the checks: the header, then the depth, then the count */
    reader(&r, buf, "91 dd 00");
    assert_failed(&r, tkv_mpr_skip_depth(&r, 1, NULL, NULL), TKV_MPR_HEADER, 0);
    reader(&r, buf, "91 dd ff ff ff ff");
    assert_failed(&r, tkv_mpr_skip_depth(&r, 1, NULL, NULL), TKV_MPR_DEPTH, 0);
    r.off = 0;
    assert_failed(&r, tkv_mpr_skip_depth(&r, 2, NULL, NULL), TKV_MPR_COUNT, 0);
}

/* ---- failures keep the position ---- */

static void test_wrong_type_keeps_position(void **state)
{
    uint8_t buf[8] = {0};
    struct tkv_mpr r;
    const uint8_t *p;
    const char *s;
    uint32_t n;
    uint64_t u;
    int64_t i;
    double d;
    int8_t x;
    int b;
    (void)state;

    /* after a nil, every other reader fails at the str and leaves it */
    reader(&r, buf, "c0 a1 7a");
    assert_int_equal(tkv_mpr_nil(&r), 0);
    assert_failed(&r, tkv_mpr_nil(&r), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_bool(&r, &b), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_uint(&r, &u), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_int(&r, &i), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_float(&r, &d), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_bin(&r, &p, &n), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_ext(&r, &x, &p, &n), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_array(&r, &n), TKV_MPR_TYPE, 1);
    assert_failed(&r, tkv_mpr_map(&r, &n), TKV_MPR_TYPE, 1);
    assert_int_equal(tkv_mpr_peek(&r), TKV_MP_STR);
    assert_int_equal(tkv_mpr_str(&r, &s, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s[0], 'z');
    assert_int_equal(tkv_mpr_remaining(&r), 0);

    /* the outputs of a failed read are zero */
    reader(&r, buf, "c0");
    u = 1;
    i = 1;
    d = 1;
    b = 1;
    n = 1;
    x = 1;
    s = "x";
    p = buf;
    assert_int_equal(tkv_mpr_uint(&r, &u), TKV_ECORRUPT);
    assert_int_equal(tkv_mpr_int(&r, &i), TKV_ECORRUPT);
    assert_int_equal(tkv_mpr_float(&r, &d), TKV_ECORRUPT);
    assert_int_equal(tkv_mpr_bool(&r, &b), TKV_ECORRUPT);
    assert_true(u == 0 && i == 0 && d == 0 && b == 0);
    assert_int_equal(tkv_mpr_str(&r, &s, &n), TKV_ECORRUPT);
    assert_true(s == NULL && n == 0);
    n = 1;
    assert_int_equal(tkv_mpr_ext(&r, &x, &p, &n), TKV_ECORRUPT);
    assert_true(x == 0 && p == NULL && n == 0);

    /* a wrong type is named before its cut header is */
    reader(&r, buf, "df 00");
    assert_failed(&r, tkv_mpr_array(&r, &n), TKV_MPR_TYPE, 0);
    reader(&r, buf, "c5 00");
    assert_failed(&r, tkv_mpr_str(&r, &s, &n), TKV_MPR_TYPE, 0);
}

/* ---- tkv_mpr_next ---- */

static void test_next(void **state)
{
    uint8_t buf[64] = {0};
    struct tkv_mpr r;
    struct tkv_mp_item it;
    (void)state;

    /* one of each, in a row */
    reader(&r, buf,
           "c0 c3 cd 01 00 d0 80 ca 3f c0 00 00 a2 68 69 c4 01 ff"
           "d5 fe aa bb 93 de 00 01 dd ff ff ff ff");
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_NIL);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_BOOL);
    assert_int_equal(it.v.b, 1);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_UINT);
    assert_true(it.v.u == 256);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_NINT);
    assert_true(it.v.i == -128);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_FLOAT);
    assert_true(it.v.f == 1.5);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_STR);
    assert_int_equal(it.v.raw.n, 2);
    assert_memory_equal(it.v.raw.p, "hi", 2);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_BIN);
    assert_int_equal(it.v.raw.n, 1);
    assert_int_equal(it.v.raw.p[0], 0xff);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_EXT);
    assert_int_equal(it.v.raw.type, -2);
    assert_int_equal(it.v.raw.n, 2);
    assert_int_equal(it.v.raw.p[1], 0xbb);
    /* containers: just the header, the count unchecked */
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_ARRAY);
    assert_int_equal(it.v.count, 3);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_MAP);
    assert_int_equal(it.v.count, 1);
    assert_int_equal(tkv_mpr_next(&r, &it), 0);
    assert_int_equal(it.type, TKV_MP_ARRAY);
    assert_true(it.v.count == UINT32_MAX);
    assert_int_equal(tkv_mpr_remaining(&r), 0);
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_END, r.len);
    assert_int_equal(it.type, TKV_MP_END);

    /* failures: what the typed reader would say, nothing moves */
    reader(&r, buf, "c1");
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_TYPE, 0);
    assert_int_equal(it.type, TKV_MP_END);
    reader(&r, buf, "d1 ff");
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_BODY, 0);
    reader(&r, buf, "da 00");
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_HEADER, 0);
    reader(&r, buf, "a3 61");
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_BODY, 0);
    assert_int_equal(r.want, 3);
    assert_int_equal(r.have, 1);
    reader(&r, buf, "de 00");
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_HEADER, 0);
    reader(&r, buf, "c7 05 01 00");
    assert_failed(&r, tkv_mpr_next(&r, &it), TKV_MPR_BODY, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peek_every_byte),
        cmocka_unit_test(test_nil_bool),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_str_bin_ext),
        cmocka_unit_test(test_fixext),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_counts_larger_than_bytes),
        cmocka_unit_test(test_skip_nested),
        cmocka_unit_test(test_skip_depth),
        cmocka_unit_test(test_wrong_type_keeps_position),
        cmocka_unit_test(test_next),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
