/* Strict msgpack cursor (see mpread.h).
 *
 * Every reader looks at the item where the position is and moves the
 * position once, after the whole item has been checked, so a failure
 * leaves it where it was and the caller can still peek at what is there.
 * The helpers below (header field, body, integer, str/bin, ext and
 * container headers) are shared by the typed readers and by the skipper,
 * so all of them accept exactly the same encodings. */
#include "mpread.h"

#include <assert.h>
#include <string.h>

#include "error.h"

void tkv_mpr_init(struct tkv_mpr *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->why = TKV_MPR_NONE;
    r->want = 0;
    r->have = 0;
}

static int fail(struct tkv_mpr *r,
                enum tkv_mpr_why why,
                uint64_t want,
                size_t have)
{
    r->why = why;
    r->want = want;
    r->have = have;
    return TKV_ECORRUPT;
}

/* The type byte of the next item. */
static inline int first(struct tkv_mpr *r, uint8_t *b)
{
    if (r->off >= r->len) {
        return fail(r, TKV_MPR_END, 0, 0);
    }
    *b = r->p[r->off];
    return 0;
}

static inline uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | p[i];
    }
    return v;
}

/* The n-byte big-endian number after the type byte: a length or a count
 * (cut short: TKV_MPR_HEADER) or a number's value (TKV_MPR_BODY). */
static inline int field(struct tkv_mpr *r,
                 size_t n,
                 enum tkv_mpr_why why,
                 uint64_t *v)
{
    size_t left = r->len - r->off - 1;
    if (left < n) {
        return fail(r, why, n, left);
    }
    *v = be(r->p + r->off + 1, n);
    return 0;
}

/* The len bytes after a header of hdr bytes (which are there): moves past
 * both. */
static inline int body(struct tkv_mpr *r,
                size_t hdr,
                uint64_t len,
                const uint8_t **p)
{
    size_t left = r->len - r->off - hdr;
    if (len > left) {
        return fail(r, TKV_MPR_BODY, len, left);
    }
    *p = r->p + r->off + hdr;
    r->off += hdr + (size_t)len;
    return 0;
}

static inline enum tkv_mp_type type_at(const struct tkv_mpr *r)
{
    uint8_t b;
    if (r->off >= r->len) {
        return TKV_MP_END;
    }
    b = r->p[r->off];
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf)) {
        return TKV_MP_UINT;
    }
    if (b >= 0xe0) {
        return TKV_MP_NINT;
    }
    if (b <= 0x8f || b == 0xde || b == 0xdf) {
        return TKV_MP_MAP;
    }
    if (b <= 0x9f || b == 0xdc || b == 0xdd) {
        return TKV_MP_ARRAY;
    }
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) {
        return TKV_MP_STR;
    }
    switch (b) {
        case 0xc0:
            return TKV_MP_NIL;
        case 0xc2:
        case 0xc3:
            return TKV_MP_BOOL;
        case 0xc4:
        case 0xc5:
        case 0xc6:
            return TKV_MP_BIN;
        case 0xca:
        case 0xcb:
            return TKV_MP_FLOAT;
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            /* signed encodings: the sign decides */
            size_t n = (size_t)1 << (b - 0xd0);
            if (r->len - r->off - 1 < n) {
                return TKV_MP_NINT; /* truncated: reads will fail */
            }
            return (r->p[r->off + 1] & 0x80) ? TKV_MP_NINT : TKV_MP_UINT;
        }
        case 0xc1:
            return TKV_MP_BAD;
    }
    return TKV_MP_EXT; /* 0xc7-0xc9, 0xd4-0xd8 */
}

enum tkv_mp_type tkv_mpr_peek(const struct tkv_mpr *r)
{
    return type_at(r);
}

int tkv_mpr_nil(struct tkv_mpr *r)
{
    uint8_t b = 0;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b != 0xc0) {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    r->off++;
    return 0;
}

int tkv_mpr_bool(struct tkv_mpr *r, int *v)
{
    uint8_t b = 0;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b != 0xc2 && b != 0xc3) {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    *v = b == 0xc3;
    r->off++;
    return 0;
}

/* Any integer, without moving: *neg says whether it is negative (then *u
 * holds the two's complement bits of an int64), *size how many bytes it
 * takes. */
static inline int integer(struct tkv_mpr *r, uint64_t *u, int *neg, size_t *size)
{
    uint8_t b = 0;
    uint64_t v = 0;
    size_t n;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b <= 0x7f || b >= 0xe0) {
        *u = (uint64_t)(int64_t)(int8_t)b; /* fixints */
        *neg = b >= 0xe0;
        *size = 1;
        return 0;
    }
    if (b < 0xcc || b > 0xd3) {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    n = (size_t)1 << ((b - 0xcc) & 3);
    if (field(r, n, TKV_MPR_BODY, &v) != 0) {
        return TKV_ECORRUPT;
    }
    *neg = 0;
    if (b >= 0xd0) {
        if (n < 8 && (v >> (8 * n - 1)) != 0) {
            v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
        }
        *neg = (v >> 63) != 0;
    }
    *u = v;
    *size = 1 + n;
    return 0;
}

int tkv_mpr_uint(struct tkv_mpr *r, uint64_t *v)
{
    uint64_t u = 0;
    size_t size = 0;
    int neg = 0;
    if (integer(r, &u, &neg, &size) != 0) {
        return TKV_ECORRUPT;
    }
    if (neg) {
        return fail(r, TKV_MPR_RANGE, 0, 0);
    }
    *v = u;
    r->off += size;
    return 0;
}

int tkv_mpr_int(struct tkv_mpr *r, int64_t *v)
{
    uint64_t u = 0;
    size_t size = 0;
    int neg = 0;
    if (integer(r, &u, &neg, &size) != 0) {
        return TKV_ECORRUPT;
    }
    if (!neg && u > (uint64_t)INT64_MAX) {
        return fail(r, TKV_MPR_RANGE, 0, 0);
    }
    *v = (int64_t)u;
    r->off += size;
    return 0;
}

static inline int real(struct tkv_mpr *r, double *v)
{
    uint64_t bits = 0;
    uint8_t b = 0;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b != 0xca && b != 0xcb) {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (field(r, b == 0xca ? 4 : 8, TKV_MPR_BODY, &bits) != 0) {
        return TKV_ECORRUPT;
    }
    if (b == 0xca) {
        uint32_t w = (uint32_t)bits;
        float f;
        memcpy(&f, &w, sizeof f);
        *v = f;
        r->off += 5;
    } else {
        memcpy(v, &bits, sizeof *v);
        r->off += 9;
    }
    return 0;
}

int tkv_mpr_float(struct tkv_mpr *r, double *v)
{
    return real(r, v);
}

/* A str (str 1) or a bin (str 0) and its payload. */
static inline int raw(struct tkv_mpr *r, int str, const uint8_t **p, uint32_t *n)
{
    uint8_t b = 0;
    uint64_t len = 0;
    size_t w = 0;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (str && b >= 0xa0 && b <= 0xbf) {
        len = b & 0x1f;
    } else if (str ? (b >= 0xd9 && b <= 0xdb) : (b >= 0xc4 && b <= 0xc6)) {
        w = (size_t)1 << (b - (str ? 0xd9 : 0xc4));
        if (field(r, w, TKV_MPR_HEADER, &len) != 0) {
            return TKV_ECORRUPT;
        }
    } else {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (body(r, 1 + w, len, p) != 0) {
        return TKV_ECORRUPT;
    }
    *n = (uint32_t)len;
    return 0;
}

int tkv_mpr_str(struct tkv_mpr *r, const char **s, uint32_t *n)
{
    const uint8_t *p = NULL;
    if (raw(r, 1, &p, n) != 0) {
        return TKV_ECORRUPT;
    }
    *s = (const char *)p;
    return 0;
}

int tkv_mpr_bin(struct tkv_mpr *r, const uint8_t **p, uint32_t *n)
{
    return raw(r, 0, p, n);
}

/* An ext header, without moving: *hdr its length, *len that of its body
 * (the type byte and the data). */
static inline int ext_head(struct tkv_mpr *r, size_t *hdr, uint64_t *len)
{
    uint8_t b = 0;
    uint64_t size = 0;
    size_t w;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b >= 0xd4 && b <= 0xd8) {
        *hdr = 1;
        *len = 1 + ((uint64_t)1 << (b - 0xd4)); /* fixext 1..16 */
        return 0;
    }
    if (b < 0xc7 || b > 0xc9) {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    w = (size_t)1 << (b - 0xc7);
    if (field(r, w, TKV_MPR_HEADER, &size) != 0) {
        return TKV_ECORRUPT;
    }
    *hdr = 1 + w;
    *len = size + 1;
    return 0;
}

static inline int ext(struct tkv_mpr *r,
                      int8_t *type,
                      const uint8_t **p,
                      uint32_t *n)
{
    const uint8_t *q = NULL;
    uint64_t len = 0;
    size_t hdr = 0;
    if (ext_head(r, &hdr, &len) != 0 || body(r, hdr, len, &q) != 0) {
        return TKV_ECORRUPT;
    }
    *type = (int8_t)q[0];
    *p = q + 1;
    *n = (uint32_t)(len - 1);
    return 0;
}

int tkv_mpr_ext(struct tkv_mpr *r,
                int8_t *type,
                const uint8_t **p,
                uint32_t *n)
{
    return ext(r, type, p, n);
}

int tkv_mpr_ext_type(const struct tkv_mpr *r, int8_t *type)
{
    struct tkv_mpr c = *r; /* ext_head records failures: not in *r */
    uint64_t len = 0;
    size_t hdr = 0;
    if (ext_head(&c, &hdr, &len) != 0 || c.len - c.off <= hdr) {
        return TKV_ECORRUPT;
    }
    *type = (int8_t)c.p[c.off + hdr];
    return 0;
}

/* An array or map header (of type want; TKV_MP_END for either), without
 * moving: its type, its count and its length. */
static inline int container_head(struct tkv_mpr *r,
                          enum tkv_mp_type want,
                          enum tkv_mp_type *type,
                          uint32_t *n,
                          size_t *hdr)
{
    enum tkv_mp_type t;
    uint64_t count = 0;
    size_t w = 0;
    uint8_t b = 0;
    if (first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b >= 0x80 && b <= 0x9f) {
        t = b <= 0x8f ? TKV_MP_MAP : TKV_MP_ARRAY;
        count = b & 0x0f;
    } else if (b >= 0xdc && b <= 0xdf) {
        t = b <= 0xdd ? TKV_MP_ARRAY : TKV_MP_MAP;
        w = (b & 1) ? 4 : 2;
    } else {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (want != TKV_MP_END && t != want) {
        return fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (w > 0 && field(r, w, TKV_MPR_HEADER, &count) != 0) {
        return TKV_ECORRUPT;
    }
    *type = t;
    *n = (uint32_t)count;
    *hdr = 1 + w;
    return 0;
}

/* Fails unless left bytes can hold the n elements of a container of type
 * t: every element takes at least one byte. */
static inline int backed(struct tkv_mpr *r, enum tkv_mp_type t, uint32_t n, size_t left)
{
    if ((t == TKV_MP_MAP ? 2 * (uint64_t)n : n) > left) {
        return fail(r, TKV_MPR_COUNT, n, left);
    }
    return 0;
}

static int checked_container(struct tkv_mpr *r,
                             enum tkv_mp_type want,
                             uint32_t *n)
{
    enum tkv_mp_type t = TKV_MP_END;
    uint32_t count = 0;
    size_t hdr = 0;
    if (container_head(r, want, &t, &count, &hdr) != 0 ||
        backed(r, t, count, r->len - r->off - hdr) != 0) {
        return TKV_ECORRUPT;
    }
    r->off += hdr;
    *n = count;
    return 0;
}

int tkv_mpr_array(struct tkv_mpr *r, uint32_t *n)
{
    return checked_container(r, TKV_MP_ARRAY, n);
}

int tkv_mpr_map(struct tkv_mpr *r, uint32_t *n)
{
    return checked_container(r, TKV_MP_MAP, n);
}

int tkv_mpr_container(struct tkv_mpr *r,
                      enum tkv_mp_type want,
                      enum tkv_mp_type *type,
                      uint32_t *n)
{
    size_t hdr = 0;
    if (container_head(r, want, type, n, &hdr) != 0) {
        return TKV_ECORRUPT;
    }
    r->off += hdr;
    return 0;
}

int tkv_mpr_next(struct tkv_mpr *r, struct tkv_mp_item *it)
{
    size_t size = 0;
    size_t hdr = 0;
    int neg = 0;

    /* the helpers, not the public readers: one call for the whole item */
    it->type = type_at(r);
    switch (it->type) {
        case TKV_MP_END:
            return fail(r, TKV_MPR_END, 0, 0);
        case TKV_MP_NIL:
            r->off++;
            return 0;
        case TKV_MP_BOOL:
            it->v.b = r->p[r->off++] == 0xc3;
            return 0;
        case TKV_MP_UINT:
        case TKV_MP_NINT:
            /* v.i shares v.u's bits */
            if (integer(r, &it->v.u, &neg, &size) != 0) {
                return TKV_ECORRUPT;
            }
            r->off += size;
            return 0;
        case TKV_MP_FLOAT:
            return real(r, &it->v.f);
        case TKV_MP_STR:
            return raw(r, 1, &it->v.raw.p, &it->v.raw.n);
        case TKV_MP_BIN:
            return raw(r, 0, &it->v.raw.p, &it->v.raw.n);
        case TKV_MP_EXT:
            return ext(r, &it->v.raw.type, &it->v.raw.p, &it->v.raw.n);
        case TKV_MP_ARRAY:
        case TKV_MP_MAP:
            if (container_head(r, it->type, &it->type, &it->v.count, &hdr) !=
                0) {
                return TKV_ECORRUPT;
            }
            r->off += hdr;
            return 0;
        default:
            return fail(r, TKV_MPR_TYPE, 0, 0); /* 0xc1 */
    }
}

/* Both skippers. Items still to read are counted per open container when
 * the depth is limited; without a limit one counter serves them all. */
static int skip(struct tkv_mpr *r,
                int limited,
                unsigned max_depth,
                size_t *start,
                size_t *end)
{
    uint64_t left[TKV_MPR_DEPTH_MAX + 1];
    size_t begin = r->off;
    unsigned depth = 0;

    assert(!limited || max_depth <= TKV_MPR_DEPTH_MAX);
    left[0] = 1;
    for (;;) {
        struct tkv_mp_item it;
        uint64_t items;
        int rv;

        while (left[depth] == 0) {
            if (depth == 0) {
                if (start != NULL) {
                    *start = begin;
                }
                if (end != NULL) {
                    *end = r->off;
                }
                return 0;
            }
            depth--;
        }
        left[depth]--;
        rv = tkv_mpr_next(r, &it);
        if (rv == 0 && (it.type == TKV_MP_ARRAY || it.type == TKV_MP_MAP)) {
            items = it.type == TKV_MP_MAP ? 2 * (uint64_t)it.v.count
                                          : it.v.count;
            if (limited && depth == max_depth) {
                rv = fail(r, TKV_MPR_DEPTH, 0, 0);
            } else if (backed(r, it.type, it.v.count, r->len - r->off) != 0) {
                rv = TKV_ECORRUPT;
            } else if (limited) {
                if (items > 0) {
                    left[++depth] = items;
                }
            } else if (items > UINT64_MAX - left[0]) {
                /* only past 4 GB of input: each count is backed */
                rv = fail(r, TKV_MPR_COUNT, it.v.count, r->len - r->off);
            } else {
                left[0] += items;
            }
        }
        if (rv != 0) {
            r->off = begin;
            return TKV_ECORRUPT;
        }
    }
}

int tkv_mpr_skip(struct tkv_mpr *r, size_t *start, size_t *end)
{
    return skip(r, 0, 0, start, end);
}

int tkv_mpr_skip_depth(struct tkv_mpr *r,
                       unsigned max_depth,
                       size_t *start,
                       size_t *end)
{
    return skip(r, 1, max_depth, start, end);
}
