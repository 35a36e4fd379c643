/* A strict, allocation-free msgpack reader over a byte buffer.
 *
 * msgpack-c's unpacker allocates count * sizeof(msgpack_object) for an
 * array or map header before checking that the bytes exist (5 bytes can ask
 * for 128 GB), so bytes from outside (frames, log entries, snapshots) are
 * read with this cursor instead: each call reads one item of the expected
 * type and moves on, strings and bins point into the buffer, and nothing is
 * allocated. It is the only hand-written msgpack parser in the tree: the
 * log entry codec, the value checker, the snapshot reader and the frame
 * pre-scan all read through it.
 *
 * Every failure (wrong type, truncated input) is TKV_ECORRUPT and leaves
 * the position where it was, so the caller can peek at what is there; the
 * outputs are then zero (NULL, TKV_MP_END). r->why says what went wrong,
 * for callers that word their own messages ("command 3: key is
 * truncated").
 *
 * The one-item readers are static inline (bottom of this file): every node
 * checks every value of every log entry with them, and with a call per item
 * the entry decoder ran 3% more instructions than the hand-written walkers
 * these readers replaced; inlined it runs 2-4% fewer (gcc and clang -O2). */
#ifndef TKV_MPREAD_H
#define TKV_MPREAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "error.h"

enum tkv_mp_type {
    TKV_MP_END = 0, /* no bytes left */
    TKV_MP_NIL,
    TKV_MP_BOOL,
    TKV_MP_UINT,  /* any non-negative integer encoding */
    TKV_MP_NINT,  /* a negative integer */
    TKV_MP_FLOAT, /* float32 or float64 */
    TKV_MP_STR,
    TKV_MP_BIN,
    TKV_MP_ARRAY,
    TKV_MP_MAP,
    TKV_MP_EXT,
    TKV_MP_BAD, /* 0xc1, never used by msgpack */
};

/* Why the last call failed. A header is the type byte and, for str, bin,
 * ext, array 16/32 and map 16/32, the length or count field after it;
 * everything else an item takes (a number's value bytes, a payload, an
 * ext's type byte and data) is its body. */
enum tkv_mpr_why {
    TKV_MPR_NONE = 0, /* no failure yet */
    TKV_MPR_END,      /* the input ends where an item should start */
    TKV_MPR_TYPE,     /* the item is of another type, or is 0xc1 */
    TKV_MPR_HEADER,   /* the length or count field is cut short */
    TKV_MPR_BODY,     /* the body is cut short: want bytes, have left */
    TKV_MPR_COUNT,    /* want elements (pairs for a map), have bytes left */
    TKV_MPR_RANGE,    /* an integer outside the type asked for */
    TKV_MPR_DEPTH,    /* tkv_mpr_skip_depth: nested deeper than allowed */
};

struct tkv_mpr {
    const uint8_t *p;
    size_t len;
    size_t off;
    /* Set by a failure, meaningful only right after one (see above). */
    enum tkv_mpr_why why;
    uint64_t want;
    size_t have; /* bytes left after the header */
};

/* One item of any type, as tkv_mpr_next() reads it. */
struct tkv_mp_item {
    enum tkv_mp_type type; /* TKV_MP_END after a failure, never BAD */
    union {
        int b;      /* BOOL */
        uint64_t u; /* UINT */
        int64_t i;  /* NINT */
        double f;   /* FLOAT (a float32 widened) */
        struct {
            const uint8_t *p; /* into the buffer */
            uint32_t n;
            int8_t type; /* EXT only: the application type */
        } raw;           /* STR, BIN, EXT (the data, without the type) */
        uint32_t count;  /* ARRAY, MAP: NOT checked, as tkv_mpr_container */
    } v;
};

void tkv_mpr_init(struct tkv_mpr *r, const void *p, size_t len);

static inline size_t tkv_mpr_remaining(const struct tkv_mpr *r)
{
    return r->len - r->off;
}

/* Type of the next item without consuming it. */
static inline enum tkv_mp_type tkv_mpr_peek(const struct tkv_mpr *r);

/* Each reads one item of its type or returns TKV_ECORRUPT. A signed
 * encoding of a non-negative value counts as UINT; tkv_mpr_int accepts any
 * integer within int64; a negative value asked as uint, or one above
 * INT64_MAX asked as int, is TKV_MPR_RANGE. A float32 is widened to double.
 * Array/map counts are checked against the bytes left (each element takes
 * at least one byte). An ext's *p and *n are its data, without the type. */
static inline int tkv_mpr_nil(struct tkv_mpr *r);
static inline int tkv_mpr_bool(struct tkv_mpr *r, int *v /* OUT */);
static inline int tkv_mpr_uint(struct tkv_mpr *r, uint64_t *v /* OUT */);
static inline int tkv_mpr_int(struct tkv_mpr *r, int64_t *v /* OUT */);
static inline int tkv_mpr_float(struct tkv_mpr *r, double *v /* OUT */);
static inline int tkv_mpr_str(struct tkv_mpr *r,
                              const char **s /* OUT */,
                              uint32_t *n /* OUT */);
static inline int tkv_mpr_bin(struct tkv_mpr *r,
                              const uint8_t **p /* OUT */,
                              uint32_t *n /* OUT */);
static inline int tkv_mpr_ext(struct tkv_mpr *r,
                              int8_t *type /* OUT */,
                              const uint8_t **p /* OUT */,
                              uint32_t *n /* OUT */);
static inline int tkv_mpr_array(struct tkv_mpr *r, uint32_t *n /* OUT */);
static inline int tkv_mpr_map(struct tkv_mpr *r, uint32_t *n /* OUT */);

/* Read the header of an array or a map: of type want (TKV_MP_ARRAY or
 * TKV_MP_MAP), or of either with want TKV_MP_END; *type says which came.
 * Unlike tkv_mpr_array/map the count is NOT checked against the bytes
 * left, for walkers that read the elements one by one and report an
 * element's own fault before the end of the input (each element read fails
 * there anyway). Never size an allocation by *n without bounding it by
 * tkv_mpr_remaining(). */
static inline int tkv_mpr_container(struct tkv_mpr *r,
                                    enum tkv_mp_type want,
                                    enum tkv_mp_type *type /* OUT */,
                                    uint32_t *n /* OUT */);

/* The application type of the ext at the position, from its header alone
 * (the data is not checked), without moving: to dispatch on it before
 * reading, or to name an ext whose data is cut short. TKV_ECORRUPT when
 * the next item is not an ext or is cut short before its type byte; does
 * not set r->why (r is not changed). */
static inline int tkv_mpr_ext_type(const struct tkv_mpr *r,
                                   int8_t *type /* OUT */);

/* Read the next item whatever its type, for walkers that dispatch on it:
 * a whole scalar, str, bin or ext, or the header of an array or map (the
 * caller reads the elements). One dispatch instead of tkv_mpr_peek() and
 * a typed read. 0xc1 is TKV_MPR_TYPE. */
static inline int tkv_mpr_next(struct tkv_mpr *r,
                               struct tkv_mp_item *it /* OUT */);

/* Skip one whole item (nested items included), without recursion. On
 * success start and end (if not NULL) give its byte range. A failure is
 * that of the first part that cannot be read, in order; a container's
 * count is checked when its header is read. */
int tkv_mpr_skip(struct tkv_mpr *r,
                 size_t *start /* OUT */,
                 size_t *end /* OUT */);

/* Most containers tkv_mpr_skip_depth can track (one counter each on the
 * stack). */
#define TKV_MPR_DEPTH_MAX 64

/* tkv_mpr_skip, also failing with TKV_MPR_DEPTH on a container (empty or
 * not) inside max_depth others: max_depth is the most containers open at
 * once, 0 accepts only a scalar. Requires max_depth <= TKV_MPR_DEPTH_MAX.
 * The depth is checked after the container's header is read and before
 * its count is. */
int tkv_mpr_skip_depth(struct tkv_mpr *r,
                       unsigned max_depth,
                       size_t *start /* OUT */,
                       size_t *end /* OUT */);

/* ---- implementation: not part of the API ----
 *
 * Every reader takes the type byte at the position (first), hands it to
 * the helper for its kind of item (integer, real, raw for str/bin, ext,
 * container_head), which checks that the byte is of that kind, reads what
 * follows and moves the position once, after the whole item has been
 * checked: a failure leaves the position where it was. The typed readers,
 * tkv_mpr_next() and the skipper all go through these helpers, so they
 * accept exactly the same encodings. */

/* The helpers go into every reader, and the readers into their callers:
 * left to itself the compiler keeps the bigger ones out of line, which
 * costs a call per item. */
#define TKV__MPR_INLINE static inline __attribute__((always_inline))

/* Type of each type byte (mpread.c); TKV__MP_SIGNED (int 8..64) is UINT
 * or NINT by its sign. */
#define TKV__MP_SIGNED (TKV_MP_BAD + 1)
extern const uint8_t tkv__mp_types[256];

/* Record why a read failed; returns TKV_ECORRUPT. Three stores, no call:
 * a call on the failure paths would make every reader save registers. */
TKV__MPR_INLINE int tkv__mpr_fail(struct tkv_mpr *r,
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
TKV__MPR_INLINE int tkv__mpr_first(struct tkv_mpr *r, uint8_t *b)
{
    if (r->off >= r->len) {
        return tkv__mpr_fail(r, TKV_MPR_END, 0, 0);
    }
    *b = r->p[r->off];
    return 0;
}

/* Type of the item whose type byte b is at the position. */
TKV__MPR_INLINE enum tkv_mp_type tkv__mpr_type_of(const struct tkv_mpr *r,
                                                  uint8_t b)
{
    size_t n;
    if (tkv__mp_types[b] != TKV__MP_SIGNED) {
        return (enum tkv_mp_type)tkv__mp_types[b];
    }
    n = (size_t)1 << (b - 0xd0);
    if (r->len - r->off - 1 < n) {
        return TKV_MP_NINT; /* truncated: reads will fail */
    }
    return (r->p[r->off + 1] & 0x80) ? TKV_MP_NINT : TKV_MP_UINT;
}

TKV__MPR_INLINE uint32_t tkv__mpr_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* Big-endian number of n = 1, 2, 4 or 8 bytes (a switch, not a loop: the
 * widths are fixed). */
TKV__MPR_INLINE uint64_t tkv__mpr_be(const uint8_t *p, size_t n)
{
    switch (n) {
        case 1:
            return p[0];
        case 2:
            return (uint64_t)p[0] << 8 | p[1];
        case 4:
            return tkv__mpr_be32(p);
        default:
            return (uint64_t)tkv__mpr_be32(p) << 32 | tkv__mpr_be32(p + 4);
    }
}

/* The n-byte big-endian number after the type byte: a length or a count
 * (cut short: TKV_MPR_HEADER) or a number's value (TKV_MPR_BODY). */
TKV__MPR_INLINE int tkv__mpr_field(struct tkv_mpr *r,
                                   size_t n,
                                   enum tkv_mpr_why why,
                                   uint64_t *v)
{
    size_t left = r->len - r->off - 1;
    if (left < n) {
        return tkv__mpr_fail(r, why, n, left);
    }
    *v = tkv__mpr_be(r->p + r->off + 1, n);
    return 0;
}

/* The len bytes after a header of hdr bytes (which are there): moves past
 * both. */
TKV__MPR_INLINE int tkv__mpr_body(struct tkv_mpr *r,
                                  size_t hdr,
                                  uint64_t len,
                                  const uint8_t **p)
{
    size_t left = r->len - r->off - hdr;
    if (len > left) {
        return tkv__mpr_fail(r, TKV_MPR_BODY, len, left);
    }
    *p = r->p + r->off + hdr;
    r->off += hdr + (size_t)len;
    return 0;
}

/* Any integer, without moving: *neg says whether it is negative (then *u
 * holds the two's complement bits of an int64), *size how many bytes it
 * takes. */
TKV__MPR_INLINE int tkv__mpr_integer(struct tkv_mpr *r,
                                     uint8_t b,
                                     uint64_t *u,
                                     int *neg,
                                     size_t *size)
{
    uint64_t v = 0;
    size_t n;
    if (b <= 0x7f || b >= 0xe0) {
        *u = (uint64_t)(int64_t)(int8_t)b; /* fixints */
        *neg = b >= 0xe0;
        *size = 1;
        return 0;
    }
    if (b < 0xcc || b > 0xd3) {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    n = (size_t)1 << ((b - 0xcc) & 3);
    if (tkv__mpr_field(r, n, TKV_MPR_BODY, &v) != 0) {
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

/* float32 (widened) or float64. */
TKV__MPR_INLINE int tkv__mpr_real(struct tkv_mpr *r, uint8_t b, double *v)
{
    uint64_t bits = 0;
    if (b != 0xca && b != 0xcb) {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (tkv__mpr_field(r, b == 0xca ? 4 : 8, TKV_MPR_BODY, &bits) != 0) {
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

/* A str (str 1) or a bin (str 0) and its payload. */
TKV__MPR_INLINE int tkv__mpr_raw(struct tkv_mpr *r,
                                 uint8_t b,
                                 int str,
                                 const uint8_t **p,
                                 uint32_t *n)
{
    uint64_t len = 0;
    size_t w = 0;
    if (str && b >= 0xa0 && b <= 0xbf) {
        len = b & 0x1f;
    } else if (str ? (b >= 0xd9 && b <= 0xdb) : (b >= 0xc4 && b <= 0xc6)) {
        w = (size_t)1 << (b - (str ? 0xd9 : 0xc4));
        if (tkv__mpr_field(r, w, TKV_MPR_HEADER, &len) != 0) {
            return TKV_ECORRUPT;
        }
    } else {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (tkv__mpr_body(r, 1 + w, len, p) != 0) {
        return TKV_ECORRUPT;
    }
    *n = (uint32_t)len;
    return 0;
}

/* An ext header, without moving: *hdr its length, *len that of its body
 * (the type byte and the data). */
TKV__MPR_INLINE int tkv__mpr_ext_head(struct tkv_mpr *r,
                                      uint8_t b,
                                      size_t *hdr,
                                      uint64_t *len)
{
    uint64_t size = 0;
    size_t w;
    if (b >= 0xd4 && b <= 0xd8) {
        *hdr = 1;
        *len = 1 + ((uint64_t)1 << (b - 0xd4)); /* fixext 1..16 */
        return 0;
    }
    if (b < 0xc7 || b > 0xc9) {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    w = (size_t)1 << (b - 0xc7);
    if (tkv__mpr_field(r, w, TKV_MPR_HEADER, &size) != 0) {
        return TKV_ECORRUPT;
    }
    *hdr = 1 + w;
    *len = size + 1;
    return 0;
}

TKV__MPR_INLINE int tkv__mpr_ext(struct tkv_mpr *r,
                                 uint8_t b,
                                 int8_t *type,
                                 const uint8_t **p,
                                 uint32_t *n)
{
    const uint8_t *q = NULL;
    uint64_t len = 0;
    size_t hdr = 0;
    if (tkv__mpr_ext_head(r, b, &hdr, &len) != 0 ||
        tkv__mpr_body(r, hdr, len, &q) != 0) {
        return TKV_ECORRUPT;
    }
    *type = (int8_t)q[0];
    *p = q + 1;
    *n = (uint32_t)(len - 1);
    return 0;
}

/* An array or map header (of type want; TKV_MP_END for either), without
 * moving: its type, its count and its length. */
TKV__MPR_INLINE int tkv__mpr_container_head(struct tkv_mpr *r,
                                            uint8_t b,
                                            enum tkv_mp_type want,
                                            enum tkv_mp_type *type,
                                            uint32_t *n,
                                            size_t *hdr)
{
    enum tkv_mp_type t;
    uint64_t count = 0;
    size_t w = 0;
    if (b >= 0x80 && b <= 0x9f) {
        t = b <= 0x8f ? TKV_MP_MAP : TKV_MP_ARRAY;
        count = b & 0x0f;
    } else if (b >= 0xdc && b <= 0xdf) {
        t = b <= 0xdd ? TKV_MP_ARRAY : TKV_MP_MAP;
        w = (b & 1) ? 4 : 2;
    } else {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (want != TKV_MP_END && t != want) {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    if (w > 0 && tkv__mpr_field(r, w, TKV_MPR_HEADER, &count) != 0) {
        return TKV_ECORRUPT;
    }
    *type = t;
    *n = (uint32_t)count;
    *hdr = 1 + w;
    return 0;
}

/* Fails unless left bytes can hold the n elements of a container of type
 * t: every element takes at least one byte. */
TKV__MPR_INLINE int tkv__mpr_backed(struct tkv_mpr *r,
                                    enum tkv_mp_type t,
                                    uint32_t n,
                                    size_t left)
{
    if ((t == TKV_MP_MAP ? 2 * (uint64_t)n : n) > left) {
        return tkv__mpr_fail(r, TKV_MPR_COUNT, n, left);
    }
    return 0;
}

TKV__MPR_INLINE int tkv__mpr_checked_container(struct tkv_mpr *r,
                                               enum tkv_mp_type want,
                                               uint32_t *n)
{
    enum tkv_mp_type t = TKV_MP_END;
    size_t hdr = 0;
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 ||
        tkv__mpr_container_head(r, b, want, &t, n, &hdr) != 0 ||
        tkv__mpr_backed(r, t, *n, r->len - r->off - hdr) != 0) {
        *n = 0;
        return TKV_ECORRUPT;
    }
    r->off += hdr;
    return 0;
}

/* ---- the readers ---- */

static inline enum tkv_mp_type tkv_mpr_peek(const struct tkv_mpr *r)
{
    if (r->off >= r->len) {
        return TKV_MP_END;
    }
    return tkv__mpr_type_of(r, r->p[r->off]);
}

static inline int tkv_mpr_nil(struct tkv_mpr *r)
{
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0) {
        return TKV_ECORRUPT;
    }
    if (b != 0xc0) {
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    r->off++;
    return 0;
}

static inline int tkv_mpr_bool(struct tkv_mpr *r, int *v)
{
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0) {
        *v = 0;
        return TKV_ECORRUPT;
    }
    if (b != 0xc2 && b != 0xc3) {
        *v = 0;
        return tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0);
    }
    *v = b == 0xc3;
    r->off++;
    return 0;
}

static inline int tkv_mpr_uint(struct tkv_mpr *r, uint64_t *v)
{
    uint64_t u = 0;
    size_t size = 0;
    int neg = 0;
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 ||
        tkv__mpr_integer(r, b, &u, &neg, &size) != 0) {
        *v = 0;
        return TKV_ECORRUPT;
    }
    if (neg) {
        *v = 0;
        return tkv__mpr_fail(r, TKV_MPR_RANGE, 0, 0);
    }
    *v = u;
    r->off += size;
    return 0;
}

static inline int tkv_mpr_int(struct tkv_mpr *r, int64_t *v)
{
    uint64_t u = 0;
    size_t size = 0;
    int neg = 0;
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 ||
        tkv__mpr_integer(r, b, &u, &neg, &size) != 0) {
        *v = 0;
        return TKV_ECORRUPT;
    }
    if (!neg && u > (uint64_t)INT64_MAX) {
        *v = 0;
        return tkv__mpr_fail(r, TKV_MPR_RANGE, 0, 0);
    }
    *v = (int64_t)u;
    r->off += size;
    return 0;
}

static inline int tkv_mpr_float(struct tkv_mpr *r, double *v)
{
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 || tkv__mpr_real(r, b, v) != 0) {
        *v = 0;
        return TKV_ECORRUPT;
    }
    return 0;
}

static inline int tkv_mpr_str(struct tkv_mpr *r, const char **s, uint32_t *n)
{
    const uint8_t *p = NULL;
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 || tkv__mpr_raw(r, b, 1, &p, n) != 0) {
        *s = NULL;
        *n = 0;
        return TKV_ECORRUPT;
    }
    *s = (const char *)p;
    return 0;
}

static inline int tkv_mpr_bin(struct tkv_mpr *r, const uint8_t **p, uint32_t *n)
{
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 || tkv__mpr_raw(r, b, 0, p, n) != 0) {
        *p = NULL;
        *n = 0;
        return TKV_ECORRUPT;
    }
    return 0;
}

static inline int tkv_mpr_ext(struct tkv_mpr *r,
                              int8_t *type,
                              const uint8_t **p,
                              uint32_t *n)
{
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 || tkv__mpr_ext(r, b, type, p, n) != 0) {
        *type = 0;
        *p = NULL;
        *n = 0;
        return TKV_ECORRUPT;
    }
    return 0;
}

static inline int tkv_mpr_ext_type(const struct tkv_mpr *r, int8_t *type)
{
    struct tkv_mpr c = *r; /* the helpers record failures: not in *r */
    uint64_t len = 0;
    size_t hdr = 0;
    uint8_t b = 0;
    if (tkv__mpr_first(&c, &b) != 0 ||
        tkv__mpr_ext_head(&c, b, &hdr, &len) != 0 || c.len - c.off <= hdr) {
        *type = 0;
        return TKV_ECORRUPT;
    }
    *type = (int8_t)c.p[c.off + hdr];
    return 0;
}

static inline int tkv_mpr_array(struct tkv_mpr *r, uint32_t *n)
{
    return tkv__mpr_checked_container(r, TKV_MP_ARRAY, n);
}

static inline int tkv_mpr_map(struct tkv_mpr *r, uint32_t *n)
{
    return tkv__mpr_checked_container(r, TKV_MP_MAP, n);
}

static inline int tkv_mpr_container(struct tkv_mpr *r,
                                    enum tkv_mp_type want,
                                    enum tkv_mp_type *type,
                                    uint32_t *n)
{
    size_t hdr = 0;
    uint8_t b = 0;
    if (tkv__mpr_first(r, &b) != 0 ||
        tkv__mpr_container_head(r, b, want, type, n, &hdr) != 0) {
        *type = TKV_MP_END;
        *n = 0;
        return TKV_ECORRUPT;
    }
    r->off += hdr;
    return 0;
}

static inline int tkv_mpr_next(struct tkv_mpr *r, struct tkv_mp_item *it)
{
    size_t size = 0;
    int neg = 0;
    uint8_t b = 0;
    int rv = tkv__mpr_first(r, &b);

    /* zero first (raw spans the whole union): the helpers set their
     * outputs only on success, and callers read v by type */
    it->v.raw.p = NULL;
    it->v.raw.n = 0;
    it->v.raw.type = 0;
    it->type = rv == 0 ? tkv__mpr_type_of(r, b) : TKV_MP_END;
    switch (it->type) {
        case TKV_MP_END:
            break;
        case TKV_MP_NIL:
            r->off++;
            break;
        case TKV_MP_BOOL:
            it->v.b = b == 0xc3;
            r->off++;
            break;
        case TKV_MP_UINT:
        case TKV_MP_NINT:
            /* v.i shares v.u's bits */
            rv = tkv__mpr_integer(r, b, &it->v.u, &neg, &size);
            r->off += rv == 0 ? size : 0;
            break;
        case TKV_MP_FLOAT:
            rv = tkv__mpr_real(r, b, &it->v.f);
            break;
        case TKV_MP_STR:
        case TKV_MP_BIN:
            rv = tkv__mpr_raw(r, b, it->type == TKV_MP_STR, &it->v.raw.p,
                              &it->v.raw.n);
            break;
        case TKV_MP_EXT:
            rv =
                tkv__mpr_ext(r, b, &it->v.raw.type, &it->v.raw.p, &it->v.raw.n);
            break;
        case TKV_MP_ARRAY:
        case TKV_MP_MAP:
            rv = tkv__mpr_container_head(r, b, it->type, &it->type,
                                         &it->v.count, &size);
            r->off += rv == 0 ? size : 0;
            break;
        default:
            rv = tkv__mpr_fail(r, TKV_MPR_TYPE, 0, 0); /* 0xc1 */
            break;
    }
    if (rv != 0) {
        it->type = TKV_MP_END; /* the helpers set v only on success */
    }
    return rv;
}

#endif /* TKV_MPREAD_H */
