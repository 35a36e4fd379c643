/* libFuzzer target for the strict msgpack cursor (common/mpread.c), checked
 * against msgpack-c's unpacker.
 *
 * On every input: a failed read leaves the position where it was and says
 * why; a scalar read of the type tkv_mpr_peek() found ends where
 * tkv_mpr_skip() does; a depth limit only ever turns a success into
 * TKV_MPR_DEPTH. When the input cannot make msgpack-c allocate absurdly
 * (counts_bounded), msgpack_unpack_next() must agree with tkv_mpr_skip():
 * both accept with the same byte range (msgpack-c may also refuse nesting
 * deeper than it can hold), or both refuse; and when both accept, the
 * typed readers must give the very values msgpack-c unpacked. Anything
 * else aborts. */
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/mpread.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "tests/fuzz/fuzz.h"

/* Containers msgpack-c's unpacker holds open at once (its
 * MSGPACK_EMBED_STACK_SIZE); it refuses a 33rd non-empty one. */
#define UNPACK_DEPTH 32

/* msgpack-c allocates count * sizeof(msgpack_object) at each array or map
 * header it meets, before the elements. Which bytes are headers depends on
 * parsing, so this over-approximates on purpose, independently of the code
 * under test: every byte that could start a header must announce no more
 * elements than bytes follow it, and all of them together a small multiple
 * of the input. */
static int counts_bounded(const uint8_t *p, size_t n)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        uint64_t c = 0;
        if (b >= 0x80 && b <= 0x9f) {
            c = b & 0x0f;
        } else if (b >= 0xdc && b <= 0xdf) {
            size_t w = (b & 1) ? 4 : 2;
            if (n - i - 1 < w) {
                continue;
            }
            for (size_t k = 0; k < w; k++) {
                c = c << 8 | p[i + 1 + k];
            }
        }
        if (b <= 0x8f || b >= 0xde) {
            c *= 2; /* a map: keys and values */
        }
        if (c > n - i) {
            return 0;
        }
        sum += c;
    }
    return sum <= 32 * (uint64_t)n + 64;
}

/* Read the item at r's position with the typed reader of the type
 * tkv_mpr_peek() finds and compare it with o, recursively. */
static void same_as(struct tkv_mpr *r, const msgpack_object *o, int flip)
{
    const uint8_t *p = NULL;
    const char *s = NULL;
    uint32_t n = 0;
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    int8_t x = 0;
    int b = 0;
    enum tkv_mp_type t = TKV_MP_END;

    switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_NIL && tkv_mpr_nil(r) == 0);
            return;
        case MSGPACK_OBJECT_BOOLEAN:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_BOOL && tkv_mpr_bool(r, &b) == 0);
            REQUIRE(b == o->via.boolean);
            return;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_UINT);
            if (o->via.u64 > INT64_MAX) {
                REQUIRE(tkv_mpr_int(r, &i) == TKV_ECORRUPT);
                REQUIRE(r->why == TKV_MPR_RANGE);
            } else if (flip) {
                REQUIRE(tkv_mpr_int(r, &i) == 0 && (uint64_t)i == o->via.u64);
                return;
            }
            REQUIRE(tkv_mpr_uint(r, &u) == 0 && u == o->via.u64);
            return;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_NINT);
            REQUIRE(tkv_mpr_uint(r, &u) == TKV_ECORRUPT);
            REQUIRE(r->why == TKV_MPR_RANGE);
            REQUIRE(tkv_mpr_int(r, &i) == 0 && i == o->via.i64);
            return;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_FLOAT);
            REQUIRE(tkv_mpr_float(r, &d) == 0);
            REQUIRE(memcmp(&d, &o->via.f64, sizeof d) == 0);
            return;
        case MSGPACK_OBJECT_STR:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_STR);
            REQUIRE(tkv_mpr_str(r, &s, &n) == 0);
            REQUIRE(n == o->via.str.size && (n == 0 || s == o->via.str.ptr));
            return;
        case MSGPACK_OBJECT_BIN:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_BIN);
            REQUIRE(tkv_mpr_bin(r, &p, &n) == 0);
            REQUIRE(n == o->via.bin.size &&
                  (n == 0 || (const char *)p == o->via.bin.ptr));
            return;
        case MSGPACK_OBJECT_EXT:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_EXT);
            REQUIRE(tkv_mpr_ext_type(r, &x) == 0 && x == o->via.ext.type);
            REQUIRE(tkv_mpr_ext(r, &x, &p, &n) == 0 && x == o->via.ext.type);
            REQUIRE(n == o->via.ext.size &&
                  (n == 0 || (const char *)p == o->via.ext.ptr));
            return;
        case MSGPACK_OBJECT_ARRAY:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_ARRAY);
            REQUIRE(flip ? tkv_mpr_container(r, TKV_MP_END, &t, &n) == 0 &&
                             t == TKV_MP_ARRAY
                       : tkv_mpr_array(r, &n) == 0);
            REQUIRE(n == o->via.array.size);
            for (uint32_t k = 0; k < n; k++) {
                same_as(r, &o->via.array.ptr[k], !flip);
            }
            return;
        case MSGPACK_OBJECT_MAP:
            REQUIRE(tkv_mpr_peek(r) == TKV_MP_MAP);
            REQUIRE(flip ? tkv_mpr_container(r, TKV_MP_MAP, &t, &n) == 0 &&
                             t == TKV_MP_MAP
                       : tkv_mpr_map(r, &n) == 0);
            REQUIRE(n == o->via.map.size);
            for (uint32_t k = 0; k < n; k++) {
                same_as(r, &o->via.map.ptr[k].key, !flip);
                same_as(r, &o->via.map.ptr[k].val, flip);
            }
            return;
    }
    REQUIRE(0);
}

/* Every typed reader at the start: a failure does not move and says why;
 * a scalar of the peeked type ends where skip ends. */
static void check_readers(const uint8_t *data,
                          size_t size,
                          int skipped,
                          size_t end)
{
    enum tkv_mp_type peek, t;
    struct tkv_mpr r;
    const uint8_t *p;
    const char *s;
    uint32_t n;
    uint64_t u;
    int64_t i;
    double d;
    int8_t x;
    int b;

    tkv_mpr_init(&r, data, size);
    peek = tkv_mpr_peek(&r);
    for (int k = 0; k < 11; k++) {
        enum tkv_mp_type want = TKV_MP_END;
        int rv;
        r.off = 0;
        r.why = TKV_MPR_NONE;
        switch (k) {
            case 0:
                rv = tkv_mpr_nil(&r), want = TKV_MP_NIL;
                break;
            case 1:
                rv = tkv_mpr_bool(&r, &b), want = TKV_MP_BOOL;
                break;
            case 2:
                rv = tkv_mpr_uint(&r, &u), want = TKV_MP_UINT;
                break;
            case 3:
                rv = tkv_mpr_int(&r, &i), want = TKV_MP_NINT;
                break;
            case 4:
                rv = tkv_mpr_float(&r, &d), want = TKV_MP_FLOAT;
                break;
            case 5:
                rv = tkv_mpr_str(&r, &s, &n), want = TKV_MP_STR;
                break;
            case 6:
                rv = tkv_mpr_bin(&r, &p, &n), want = TKV_MP_BIN;
                break;
            case 7:
                rv = tkv_mpr_ext(&r, &x, &p, &n), want = TKV_MP_EXT;
                break;
            case 8:
                rv = tkv_mpr_array(&r, &n);
                break;
            case 9:
                rv = tkv_mpr_map(&r, &n);
                break;
            default:
                rv = tkv_mpr_container(&r, TKV_MP_END, &t, &n);
                break;
        }
        if (rv != 0) {
            REQUIRE(rv == TKV_ECORRUPT && r.off == 0);
            REQUIRE(r.why >= TKV_MPR_END && r.why <= TKV_MPR_RANGE);
            REQUIRE((r.why == TKV_MPR_END) == (size == 0));
            continue;
        }
        REQUIRE(r.off > 0 && r.off <= size);
        /* a scalar of the type found is the whole item */
        if (want == peek || (k == 3 && peek == TKV_MP_UINT)) {
            REQUIRE(skipped && r.off == end);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tkv_mpr r;
    msgpack_unpacked u;
    size_t start = 1, end = 0, dend = 0, off = 0;
    int rv, drv;
    enum tkv_mpr_why why, dwhy;
    uint64_t dwant;
    msgpack_unpack_return m;

    tkv_mpr_init(&r, data, size);
    rv = tkv_mpr_skip(&r, &start, &end);
    why = r.why;
    if (rv == 0) {
        REQUIRE(start == 0 && end > 0 && end <= size && r.off == end);
    } else {
        REQUIRE(rv == TKV_ECORRUPT && r.off == 0);
        REQUIRE(why != TKV_MPR_NONE && why != TKV_MPR_RANGE &&
              why != TKV_MPR_DEPTH);
    }
    check_readers(data, size, rv == 0, end);

    /* a depth limit only turns a success into TKV_MPR_DEPTH */
    tkv_mpr_init(&r, data, size);
    drv = tkv_mpr_skip_depth(&r, UNPACK_DEPTH, NULL, &dend);
    dwhy = r.why;
    dwant = r.want;
    if (rv != 0) {
        REQUIRE(drv == rv && (dwhy == why || dwhy == TKV_MPR_DEPTH));
    } else if (drv == 0) {
        REQUIRE(dend == end);
    } else {
        REQUIRE(dwhy == TKV_MPR_DEPTH && r.off == 0);
    }

    if (!counts_bounded(data, size)) {
        return 0;
    }
    msgpack_unpacked_init(&u);
    m = msgpack_unpack_next(&u, (const char *)data, size, &off);
    if (drv == 0) {
        REQUIRE(m == MSGPACK_UNPACK_SUCCESS && off == end);
    } else if (m == MSGPACK_UNPACK_SUCCESS) {
        /* only an empty 33rd container gets past msgpack-c */
        REQUIRE(rv == 0 && dwhy == TKV_MPR_DEPTH && off == end);
    } else if (dwhy == TKV_MPR_TYPE) {
        REQUIRE(m == MSGPACK_UNPACK_PARSE_ERROR); /* 0xc1 */
    } else if (dwhy == TKV_MPR_BODY && dwant == (uint64_t)UINT32_MAX + 1) {
        /* ext 32 of 2^32 - 1 bytes: its body (type byte included) is past
         * the 32 bits msgpack-c counts it in, so it refuses the header */
        REQUIRE(m == MSGPACK_UNPACK_PARSE_ERROR);
    } else if (dwhy != TKV_MPR_COUNT && dwhy != TKV_MPR_DEPTH) {
        REQUIRE(m == MSGPACK_UNPACK_CONTINUE); /* wants more bytes */
    } else {
        /* a count beyond the bytes: msgpack-c reads on to what stops it */
        REQUIRE(m == MSGPACK_UNPACK_CONTINUE || m == MSGPACK_UNPACK_PARSE_ERROR ||
              m == MSGPACK_UNPACK_NOMEM_ERROR);
    }
    if (m == MSGPACK_UNPACK_SUCCESS) {
        tkv_mpr_init(&r, data, size);
        same_as(&r, &u.data, size > 0 && (data[size - 1] & 1));
        REQUIRE(r.off == end);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}
