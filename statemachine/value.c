/* Values: the JSON rules and the size limit, checked on msgpack.
 *
 * Owns three things:
 *   - the exact length jansson's json_dumps(v, JSON_COMPACT |
 *     JSON_ENCODE_ANY) gives a value (the seed's "size after JSON
 *     serialization"), computed from msgpack without producing any text:
 *     strings as jansson's dump_string escapes them, integers as "%lld",
 *     reals as jansson 2.14's jsonp_dtostr ("%.17g", ".0" appended when
 *     there is neither a point nor an exponent, '+' and leading zeros
 *     stripped from the exponent);
 *   - what JSON cannot carry (NaN, infinities, invalid UTF-8, bin, ext,
 *     non-string or duplicate keys, integers above INT64_MAX, deep nesting);
 *   - the conversions between jansson and msgpack.
 *
 * Two walkers compute the same thing: one over an unpacked msgpack_object
 * (tkv_value_check) and one straight over the bytes (tkv_value_check_bytes).
 * The second exists because every value of every log entry is checked on
 * every node, and msgpack-c's unpacker (a) allocates a zone per call,
 * (b) allocates count * sizeof(msgpack_object) for an array header before
 * checking that the bytes exist (5 hostile bytes ask for 128 GB), and
 * (c) gives up at 32 nested containers with the same code as out of memory.
 * The byte walker reads through the strict cursor of common/mpread.h and
 * allocates nothing except for the duplicate-key check of big maps. fuzz_value
 * cross-checks the two walkers against each other and against json_dumps. */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/mpread.h"

#define NOT_JSON "Value is not JSON serializable: "

/* Most containers msgpack-c's unpacker can hold open at once
 * (MSGPACK_EMBED_STACK_SIZE, fixed when the library was built; msgpack.h
 * does not export it). test_value checks the boundary. */
#define MSGPACK_UNPACK_DEPTH 32

/* Nesting limit actually enforced. A value deeper than msgpack-c's unpacker
 * can go could be stored but never unpacked again by a reader, so the limit
 * is the smaller of the two. Depth counts containers: a scalar is 0, [] 1. */
#define DEPTH_MAX                                                     \
    (TKV_VALUE_MAX_DEPTH < MSGPACK_UNPACK_DEPTH ? TKV_VALUE_MAX_DEPTH \
                                                : MSGPACK_UNPACK_DEPTH)

/* Maps up to this size look for duplicate keys pairwise, without
 * allocating; bigger ones sort their keys. */
#define SMALL_MAP 8

static int not_json(struct tkv_err *err, const char *reason)
{
    tkv_err_set(err, TKV_ENOT_JSON, NOT_JSON "%s", reason);
    /* a constant, so the compiler sees every failure path return non-zero */
    return TKV_ENOT_JSON;
}

int tkv_value_too_large(size_t json_len, struct tkv_err *err)
{
    return tkv_err_set(err, TKV_ETOO_LARGE,
                       "Value size (%.2f KB) exceeds the maximum allowed "
                       "size of 1 MB (1024 KB)",
                       (double)json_len / 1024.0);
}

/* ---- lengths of scalars, as jansson writes them ---- */

static size_t uint_json_len(uint64_t u)
{
    size_t n = 1;
    while (u >= 10) {
        u /= 10;
        n++;
    }
    return n;
}

static size_t int_json_len(int64_t i)
{
    if (i < 0) {
        /* -(i + 1) + 1 avoids overflowing on INT64_MIN */
        return 1 + uint_json_len((uint64_t)(-(i + 1)) + 1);
    }
    return uint_json_len((uint64_t)i);
}

/* Length of "%.17g" as jansson 2.14's jsonp_dtostr() adjusts it: ".0"
 * appended when there is neither a point nor an exponent, '+' and leading
 * zeros dropped from the exponent. The slow, always right way. */
static size_t real_json_len_printf(double d)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", d);
    size_t len = (size_t)n;
    const char *e = NULL;
    int point = 0;
    int i;

    for (i = 0; i < n; i++) {
        char c = buf[i];
        if (c == 'e') {
            e = &buf[i];
            break;
        }
        /* the decimal point, whatever the locale makes it */
        if (c != '-' && (c < '0' || c > '9')) {
            point = 1;
        }
    }
    if (e == NULL) {
        return point ? len : len + 2;
    }
    e++;
    if (*e == '+') {
        len--;
    }
    if (*e == '+' || *e == '-') {
        e++;
    }
    while (*e == '0') {
        len--;
        e++;
    }
    return len;
}

/* 5^0 .. 5^27, the powers of five that fit in 64 bits. */
/* clang-format off */
static const uint64_t pow5[28] = {
    1ull, 5ull, 25ull,
    125ull, 625ull, 3125ull,
    15625ull, 78125ull, 390625ull,
    1953125ull, 9765625ull, 48828125ull,
    244140625ull, 1220703125ull, 6103515625ull,
    30517578125ull, 152587890625ull, 762939453125ull,
    3814697265625ull, 19073486328125ull, 95367431640625ull,
    476837158203125ull, 2384185791015625ull, 11920928955078125ull,
    59604644775390625ull, 298023223876953125ull, 1490116119384765625ull,
    7450580596923828125ull,
};
/* clang-format on */

#define E16 10000000000000000ull
#define E17 100000000000000000ull

/* The same length without printf, for 1e-15 <= a < 1e17 (a > 0): the 17
 * significant digits of a are round(a * 10^k) for the k that puts that
 * number in [1e16, 1e17), computed exactly as m * 5^k * 2^(e+k) in 128
 * bits and rounded half to even as glibc's printf does. 0 when a is out of
 * that range (the caller then uses printf). printf costs 0.3-1 us a call,
 * which made it most of the cost of checking a log entry. */
static size_t real_json_len_fast(double a)
{
    uint64_t bits;
    uint64_t m;
    int e;
    int k;
    int x;
    int tries;

    memcpy(&bits, &a, sizeof bits);
    if (((bits >> 52) & 0x7FF) == 0) {
        return 0; /* subnormal */
    }
    m = (bits & 0xFFFFFFFFFFFFFull) | (1ull << 52);
    e = (int)((bits >> 52) & 0x7FF) - 1075; /* a = m * 2^e */
    k = 16 - (int)floor(log10(a));          /* may be off by one */

    for (tries = 0; tries < 3; tries++) {
        unsigned __int128 p = m;
        uint64_t q;
        int sh = e + k;
        int i;
        int sig;
        int tz = 0;

        if (k < 0 || k > 31) {
            return 0; /* m * 5^k must fit in 128 bits */
        }
        p *= pow5[k < 27 ? k : 27];
        for (i = 27; i < k; i++) {
            p *= 5;
        }
        if (sh >= 0) {
            if (sh > 10) {
                return 0;
            }
            p <<= sh;
        } else {
            unsigned __int128 rem;
            unsigned __int128 half;
            if (-sh > 126) {
                return 0;
            }
            rem = p & ((((unsigned __int128)1) << -sh) - 1);
            half = ((unsigned __int128)1) << (-sh - 1);
            p >>= -sh;
            if (rem > half || (rem == half && (p & 1) != 0)) {
                p++;
            }
        }
        if (p < E16) {
            k++;
            continue;
        }
        if (p > E17 || (p == E17 && tries == 0)) {
            k--;
            continue;
        }
        /* rounding carried into an 18th digit: 1 followed by zeros */
        q = p == E17 ? E16 : (uint64_t)p;
        x = (p == E17 ? 17 : 16) - k; /* decimal exponent of the result */
        while (q % 10 == 0) {
            q /= 10;
            tz++;
        }
        sig = 17 - tz;
        if (x < -4) {
            /* d[.ddd]e-X: jansson drops the exponent's leading zeros */
            return (size_t)(sig + (sig > 1) + 2 +
                            (int)uint_json_len((uint64_t)-x));
        }
        if (x < 0) {
            return (size_t)(2 + (-x - 1) + sig); /* 0.000ddd */
        }
        if (sig > x + 1) {
            return (size_t)(sig + 1); /* ddd.ddd */
        }
        return (size_t)(x + 1 + 2); /* ddd and jansson's ".0" */
    }
    return 0;
}

static size_t real_json_len(double d)
{
    double a = fabs(d);
    size_t n;
    if (a == 0) {
        return signbit(d) ? 4 : 3; /* "-0.0", "0.0" */
    }
    n = real_json_len_fast(a);
    if (n == 0) {
        return real_json_len_printf(d);
    }
    return n + (d < 0);
}

/* Extra bytes dump_string writes for an ASCII byte: \" \\ \b \f \n \r \t
 * take one more, other control characters become \u00XX (five more). 0x7F
 * and '/' are written as they are. */
/* clang-format off */
static const uint8_t escape_extra[128] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5, /* 0x00 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* 0x10 */
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20 " */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50 \ */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x70 */
};
/* clang-format on */

/* JSON length of a string, quotes included; -1 when it is not UTF-8 as
 * jansson's utf8_iterate() accepts it (no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
/* Nonzero when a byte of x (all bytes < 0x80) is below n (n <= 0x80). */
#define HAS_LESS(x, n) (((x) - ONES * (n)) & ~(x) & HIGHS)

/* 1 when the 8 bytes at s are ASCII that JSON writes as is: no control
 * character, quote, backslash or byte >= 0x80. */
static int plain8(const uint8_t *s)
{
    uint64_t x;
    memcpy(&x, s, 8);
    return (x & HIGHS) == 0 && HAS_LESS(x, 0x20) == 0 &&
           HAS_LESS(x ^ (ONES * '"'), 1) == 0 &&
           HAS_LESS(x ^ (ONES * '\\'), 1) == 0;
}

/* plain8 on 16 bytes at once, with the compiler's vector extension (one
 * SSE2 register on x86-64): bytes in 0x20..0x7F, and no quote or
 * backslash. */
typedef uint8_t u8x16 __attribute__((vector_size(16)));

static int plain16(const uint8_t *s)
{
    u8x16 v;
    u8x16 bad;
    uint64_t w[2];

    memcpy(&v, s, sizeof v);
    bad = (u8x16)((u8x16)(v - 0x20) >= 0x60) | (u8x16)(v == '"') |
          (u8x16)(v == '\\');
    memcpy(w, &bad, sizeof w);
    return (w[0] | w[1]) == 0;
}

static int string_json_len(const uint8_t *s, size_t n, size_t *out)
{
    size_t extra = 0;
    size_t i = 0;

    while (i < n) {
        uint8_t c;
        uint32_t cp;
        uint32_t min;
        size_t need;
        size_t k;

        /* most text: 16, then 8 bytes a step */
        if (n - i >= 16 && plain16(s + i)) {
            i += 16;
            continue;
        }
        if (n - i >= 8 && plain8(s + i)) {
            i += 8;
            continue;
        }
        c = s[i];
        if (c < 0x80) {
            extra += escape_extra[c];
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            need = 2, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 3, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4, cp = c & 0x07, min = 0x10000;
        } else {
            return -1;
        }
        if (n - i < need) {
            return -1;
        }
        for (k = 1; k < need; k++) {
            uint8_t b = s[i + k];
            if ((b & 0xC0) != 0x80) {
                return -1;
            }
            cp = (cp << 6) | (b & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return -1;
        }
        i += need;
    }
    *out = n + extra + 2;
    return 0;
}

/* ---- duplicate object keys ---- */

struct keyref {
    const uint8_t *p;
    size_t n;
};

static int keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a;
    const struct keyref *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = n > 0 ? memcmp(x->p, y->p, n) : 0;
    if (c != 0) {
        return c;
    }
    return x->n < y->n ? -1 : x->n > y->n;
}

/* 1 if two keys are equal; sorts keys when there are many. */
static int has_duplicate(struct keyref *keys, size_t n)
{
    size_t i;
    size_t j;

    if (n <= SMALL_MAP) {
        for (i = 0; i < n; i++) {
            for (j = i + 1; j < n; j++) {
                if (keyref_cmp(&keys[i], &keys[j]) == 0) {
                    return 1;
                }
            }
        }
        return 0;
    }
    qsort(keys, n, sizeof *keys, keyref_cmp);
    for (i = 1; i < n; i++) {
        if (keyref_cmp(&keys[i - 1], &keys[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Storage for the keys of one map: inline for small maps. */
struct keyset {
    struct keyref small[SMALL_MAP];
    struct keyref *keys;
};

static int keyset_init(struct keyset *ks, size_t n, struct tkv_err *err)
{
    ks->keys = ks->small;
    if (n > SMALL_MAP) {
        ks->keys = tkv_malloc(n * sizeof *ks->keys);
        if (ks->keys == NULL) {
            return tkv_err_set(err, TKV_ENOMEM,
                               "out of memory checking object keys");
        }
    }
    return 0;
}

static void keyset_close(struct keyset *ks)
{
    if (ks->keys != ks->small) {
        tkv_free(ks->keys);
    }
}

static int depth_error(struct tkv_err *err)
{
    return tkv_err_set(err, TKV_ENOT_JSON,
                       NOT_JSON "nesting deeper than %d levels", DEPTH_MAX);
}

static int real_error(double d, struct tkv_err *err)
{
    return not_json(err, isnan(d) ? "number is NaN" : "number is infinite");
}

static int range_error(uint64_t u, struct tkv_err *err)
{
    return tkv_err_set(err, TKV_ENOT_JSON,
                       NOT_JSON "integer %llu out of range (above 2^63-1)",
                       (unsigned long long)u);
}

/* ---- walker over an unpacked object ---- */

static int obj_len(const msgpack_object *o,
                   int depth,
                   size_t *len,
                   struct tkv_err *err);

static int obj_map_len(const msgpack_object_map *m,
                       int depth,
                       size_t *len,
                       struct tkv_err *err)
{
    struct keyset ks;
    size_t total = 2 + (m->size > 0 ? m->size - 1 : 0);
    uint32_t i;
    int rv;

    rv = keyset_init(&ks, m->size, err);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        size_t klen;
        size_t vlen;
        if (k->type != MSGPACK_OBJECT_STR) {
            rv = not_json(err, "object key is not a string");
            goto out;
        }
        if (string_json_len((const uint8_t *)k->via.str.ptr, k->via.str.size,
                            &klen) != 0) {
            rv = not_json(err, "invalid UTF-8 in an object key");
            goto out;
        }
        ks.keys[i].p = (const uint8_t *)k->via.str.ptr;
        ks.keys[i].n = k->via.str.size;
        rv = obj_len(&m->ptr[i].val, depth, &vlen, err);
        if (rv != 0) {
            goto out;
        }
        total += klen + 1 + vlen;
    }
    if (has_duplicate(ks.keys, m->size)) {
        rv = not_json(err, "duplicate object key");
        goto out;
    }
    *len = total;
out:
    keyset_close(&ks);
    return rv;
}

static int obj_len(const msgpack_object *o,
                   int depth,
                   size_t *len,
                   struct tkv_err *err)
{
    uint32_t i;
    int rv;

    switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            *len = 4;
            return 0;
        case MSGPACK_OBJECT_BOOLEAN:
            *len = o->via.boolean ? 4 : 5;
            return 0;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            if (o->via.u64 > INT64_MAX) {
                return range_error(o->via.u64, err);
            }
            *len = uint_json_len(o->via.u64);
            return 0;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            *len = int_json_len(o->via.i64);
            return 0;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (!isfinite(o->via.f64)) {
                return real_error(o->via.f64, err);
            }
            *len = real_json_len(o->via.f64);
            return 0;
        case MSGPACK_OBJECT_STR:
            if (string_json_len((const uint8_t *)o->via.str.ptr,
                                o->via.str.size, len) != 0) {
                return not_json(err, "invalid UTF-8 in a string");
            }
            return 0;
        case MSGPACK_OBJECT_ARRAY: {
            size_t total;
            if (depth >= DEPTH_MAX) {
                return depth_error(err);
            }
            total = 2 + (o->via.array.size > 0 ? o->via.array.size - 1 : 0);
            for (i = 0; i < o->via.array.size; i++) {
                size_t n;
                rv = obj_len(&o->via.array.ptr[i], depth + 1, &n, err);
                if (rv != 0) {
                    return rv;
                }
                total += n;
            }
            *len = total;
            return 0;
        }
        case MSGPACK_OBJECT_MAP:
            if (depth >= DEPTH_MAX) {
                return depth_error(err);
            }
            return obj_map_len(&o->via.map, depth + 1, len, err);
        case MSGPACK_OBJECT_BIN:
            return not_json(err, "binary data");
        case MSGPACK_OBJECT_EXT:
            return tkv_err_set(err, TKV_ENOT_JSON, NOT_JSON "extension type %d",
                               o->via.ext.type);
    }
    return tkv_err_set(err, TKV_ENOT_JSON, NOT_JSON "unknown msgpack type %d",
                       (int)o->type);
}

int tkv_value_check(const msgpack_object *obj,
                    size_t *json_len,
                    struct tkv_err *err)
{
    size_t len = 0;
    int rv = obj_len(obj, 0, &len, err);
    if (rv != 0) {
        return rv;
    }
    if (json_len != NULL) {
        *json_len = len;
    }
    if (len > TKV_VALUE_MAX) {
        return tkv_value_too_large(len, err);
    }
    return 0;
}

/* ---- walker over msgpack bytes ---- */

struct walk {
    struct tkv_mpr r;
    struct tkv_err *err;
};

static int truncated(struct walk *w)
{
    return not_json(w->err, "truncated msgpack");
}

static int walk_value(struct walk *w, int depth, size_t *len);

static int walk_array(struct walk *w, uint32_t count, int depth, size_t *len)
{
    size_t total = 2 + (count > 0 ? count - 1 : 0);
    uint32_t i;
    int rv;

    for (i = 0; i < count; i++) {
        size_t n;
        rv = walk_value(w, depth + 1, &n);
        if (rv != 0) {
            return rv;
        }
        total += n;
    }
    *len = total;
    return 0;
}

static int walk_map(struct walk *w, uint32_t count, int depth, size_t *len)
{
    struct keyset ks;
    size_t total = 2 + (count > 0 ? count - 1 : 0);
    uint32_t i;
    int rv;

    /* every key and value takes at least one byte: a bigger count is a
     * truncated map, and must not size an allocation */
    if (count > tkv_mpr_remaining(&w->r) / 2) {
        return truncated(w);
    }
    rv = keyset_init(&ks, count, w->err);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < count; i++) {
        const char *k;
        uint32_t kn;
        size_t klen;
        size_t vlen;

        if (tkv_mpr_str(&w->r, &k, &kn) != 0) {
            rv = w->r.why == TKV_MPR_TYPE
                     ? not_json(w->err, "object key is not a string")
                     : truncated(w);
            goto out;
        }
        if (string_json_len((const uint8_t *)k, kn, &klen) != 0) {
            rv = not_json(w->err, "invalid UTF-8 in an object key");
            goto out;
        }
        ks.keys[i].p = (const uint8_t *)k;
        ks.keys[i].n = kn;
        rv = walk_value(w, depth + 1, &vlen);
        if (rv != 0) {
            goto out;
        }
        total += klen + 1 + vlen;
    }
    if (has_duplicate(ks.keys, count)) {
        rv = not_json(w->err, "duplicate object key");
        goto out;
    }
    *len = total;
out:
    keyset_close(&ks);
    return rv;
}

static int ext_error(int8_t type, struct tkv_err *err)
{
    return tkv_err_set(err, TKV_ENOT_JSON, NOT_JSON "extension type %d",
                       (int)type);
}

/* The item at the position could not be read: a bin or an ext is refused
 * for what it is even when cut short (an ext is named from its header),
 * anything else is truncated. Out of line: walk_value recurses, and its
 * frame is paid on every item. */
__attribute__((cold, noinline)) static int unreadable(struct walk *w)
{
    int8_t x = 0;
    switch (tkv_mpr_peek(&w->r)) {
        case TKV_MP_BIN:
            return not_json(w->err, "binary data");
        case TKV_MP_EXT:
            if (tkv_mpr_ext_type(&w->r, &x) != 0) {
                return truncated(w);
            }
            return ext_error(x, w->err);
        case TKV_MP_BAD:
            /* 0xc1: never used by msgpack */
            return not_json(w->err, "malformed msgpack (byte 0xC1)");
        default:
            return truncated(w);
    }
}

static int walk_value(struct walk *w, int depth, size_t *len)
{
    struct tkv_mp_item it;

    if (tkv_mpr_next(&w->r, &it) != 0) {
        return unreadable(w);
    }
    switch (it.type) {
        case TKV_MP_NIL:
            *len = 4;
            return 0;
        case TKV_MP_BOOL:
            *len = it.v.b ? 4 : 5;
            return 0;
        case TKV_MP_UINT:
            if (it.v.u > INT64_MAX) {
                return range_error(it.v.u, w->err);
            }
            *len = uint_json_len(it.v.u);
            return 0;
        case TKV_MP_NINT:
            *len = int_json_len(it.v.i);
            return 0;
        case TKV_MP_FLOAT:
            if (!isfinite(it.v.f)) {
                return real_error(it.v.f, w->err);
            }
            *len = real_json_len(it.v.f);
            return 0;
        case TKV_MP_STR:
            if (string_json_len(it.v.raw.p, it.v.raw.n, len) != 0) {
                return not_json(w->err, "invalid UTF-8 in a string");
            }
            return 0;
        case TKV_MP_BIN:
            return not_json(w->err, "binary data");
        case TKV_MP_EXT:
            return ext_error(it.v.raw.type, w->err);
        default: /* TKV_MP_ARRAY, TKV_MP_MAP: just the header */
            if (depth >= DEPTH_MAX) {
                return depth_error(w->err);
            }
            if (it.type == TKV_MP_ARRAY) {
                return walk_array(w, it.v.count, depth, len);
            }
            return walk_map(w, it.v.count, depth, len);
    }
}

int tkv_value_check_bytes(const uint8_t *mp,
                          size_t len,
                          size_t *json_len,
                          struct tkv_err *err)
{
    struct walk w;
    size_t n = 0;
    int rv;

    if (len == 0) {
        return not_json(err, "empty msgpack");
    }
    tkv_mpr_init(&w.r, mp, len);
    w.err = err;
    rv = walk_value(&w, 0, &n);
    if (rv != 0) {
        return rv;
    }
    if (tkv_mpr_remaining(&w.r) != 0) {
        return not_json(err, "trailing bytes after the value");
    }
    if (json_len != NULL) {
        *json_len = n;
    }
    if (n > TKV_VALUE_MAX) {
        return tkv_value_too_large(n, err);
    }
    return 0;
}

/* ---- jansson -> msgpack ---- */

static int pack_json(const json_t *v,
                     msgpack_packer *pk,
                     int depth,
                     struct tkv_err *err)
{
    int rv = 0;

    switch (json_typeof(v)) {
        case JSON_NULL:
            rv = msgpack_pack_nil(pk);
            break;
        case JSON_TRUE:
            rv = msgpack_pack_true(pk);
            break;
        case JSON_FALSE:
            rv = msgpack_pack_false(pk);
            break;
        case JSON_INTEGER:
            rv = msgpack_pack_int64(pk, json_integer_value(v));
            break;
        case JSON_REAL: {
            double d = json_real_value(v);
            if (!isfinite(d)) {
                return real_error(d, err);
            }
            rv = msgpack_pack_double(pk, d);
            break;
        }
        case JSON_STRING: {
            size_t n = json_string_length(v);
            rv = msgpack_pack_str(pk, n);
            if (rv == 0) {
                rv = msgpack_pack_str_body(pk, json_string_value(v), n);
            }
            break;
        }
        case JSON_ARRAY: {
            size_t i;
            size_t n = json_array_size(v);
            int r;
            if (depth >= DEPTH_MAX) {
                return depth_error(err);
            }
            rv = msgpack_pack_array(pk, n);
            for (i = 0; rv == 0 && i < n; i++) {
                r = pack_json(json_array_get(v, i), pk, depth + 1, err);
                if (r != 0) {
                    return r;
                }
            }
            break;
        }
        case JSON_OBJECT: {
            void *it;
            int r;
            if (depth >= DEPTH_MAX) {
                return depth_error(err);
            }
            rv = msgpack_pack_map(pk, json_object_size(v));
            it = json_object_iter((json_t *)v);
            for (; rv == 0 && it != NULL;
                 it = json_object_iter_next((json_t *)v, it)) {
                size_t kn = json_object_iter_key_len(it);
                rv = msgpack_pack_str(pk, kn);
                if (rv == 0) {
                    rv =
                        msgpack_pack_str_body(pk, json_object_iter_key(it), kn);
                }
                if (rv == 0) {
                    r = pack_json(json_object_iter_value(it), pk, depth + 1,
                                  err);
                    if (r != 0) {
                        return r;
                    }
                }
            }
            break;
        }
    }
    if (rv != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory packing a value");
    }
    return 0;
}

int tkv_value_from_json(const json_t *v,
                        struct tkv_buf *out,
                        struct tkv_err *err)
{
    msgpack_packer pk;
    size_t start = out->len;
    int rv;

    if (v == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "no value");
    }
    msgpack_packer_init(&pk, out, tkv_buf_msgpack_write);
    rv = pack_json(v, &pk, 0, err);
    if (rv == 0) {
        /* the same walk the node runs, so client and node agree on the
         * size to the byte and on what is refused */
        rv = tkv_value_check_bytes(out->data + start, out->len - start, NULL,
                                   err);
    }
    if (rv != 0) {
        out->len = start;
    }
    return rv;
}

/* ---- msgpack -> jansson ---- */

/* msgpack-c leaves ptr NULL for an empty str; jansson wants a pointer. */
static const char *str_ptr(const msgpack_object_str *s)
{
    return s->size > 0 ? s->ptr : "";
}

/* obj has passed tkv_value_check: only allocation can fail. */
static json_t *to_json(const msgpack_object *o)
{
    json_t *v = NULL;
    uint32_t i;

    switch (o->type) {
        case MSGPACK_OBJECT_NIL:
            return json_null();
        case MSGPACK_OBJECT_BOOLEAN:
            return json_boolean(o->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return json_integer((json_int_t)o->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return json_integer((json_int_t)o->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            return json_real(o->via.f64);
        case MSGPACK_OBJECT_STR:
            /* UTF-8 already checked */
            return json_stringn_nocheck(str_ptr(&o->via.str), o->via.str.size);
        case MSGPACK_OBJECT_ARRAY:
            v = json_array();
            if (v == NULL) {
                return NULL;
            }
            for (i = 0; i < o->via.array.size; i++) {
                if (json_array_append_new(v, to_json(&o->via.array.ptr[i])) !=
                    0) {
                    goto err_after_alloc;
                }
            }
            return v;
        case MSGPACK_OBJECT_MAP:
            v = json_object();
            if (v == NULL) {
                return NULL;
            }
            for (i = 0; i < o->via.map.size; i++) {
                const msgpack_object_kv *kv = &o->via.map.ptr[i];
                if (json_object_setn_new_nocheck(v, str_ptr(&kv->key.via.str),
                                                 kv->key.via.str.size,
                                                 to_json(&kv->val)) != 0) {
                    goto err_after_alloc;
                }
            }
            return v;
        default:
            return NULL; /* refused by tkv_value_check */
    }
err_after_alloc:
    json_decref(v);
    return NULL;
}

json_t *tkv_value_to_json(const msgpack_object *obj, struct tkv_err *err)
{
    json_t *v;
    if (tkv_value_check(obj, NULL, err) != 0) {
        return NULL;
    }
    v = to_json(obj);
    if (v == NULL) {
        tkv_err_set(err, TKV_ENOMEM, "out of memory converting a value");
    }
    return v;
}
