/* A strict, allocation-free msgpack reader over a byte buffer.
 *
 * msgpack-c's unpacker allocates count * sizeof(msgpack_object) for an
 * array or map header before checking that the bytes exist (5 bytes can ask
 * for 128 GB), so bytes from outside (frames, log entries, snapshots) are
 * read with this cursor instead: each call reads one item of the expected
 * type and moves on, strings and bins point into the buffer, and nothing is
 * allocated. It is the only msgpack byte parser in the tree: the log entry
 * codec, the value checker, the snapshot reader and the frame pre-scan all
 * read through it.
 *
 * Every failure (wrong type, truncated input) is TKV_ECORRUPT and leaves
 * the position where it was, so the caller can peek at what is there; the
 * outputs are then unspecified. r->why says what went wrong, for callers
 * that word their own messages ("command 3: key is truncated"). */
#ifndef TKV_MPREAD_H
#define TKV_MPREAD_H

#include <stddef.h>
#include <stdint.h>

enum tkv_mp_type {
    TKV_MP_END = 0, /* no bytes left */
    TKV_MP_NIL,
    TKV_MP_BOOL,
    TKV_MP_UINT, /* any non-negative integer encoding */
    TKV_MP_NINT, /* a negative integer */
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

void tkv_mpr_init(struct tkv_mpr *r, const void *p, size_t len);

static inline size_t tkv_mpr_remaining(const struct tkv_mpr *r)
{
    return r->len - r->off;
}

/* Type of the next item without consuming it. */
enum tkv_mp_type tkv_mpr_peek(const struct tkv_mpr *r);

/* Each reads one item of its type or returns TKV_ECORRUPT. A signed
 * encoding of a non-negative value counts as UINT; tkv_mpr_int accepts any
 * integer within int64; a negative value asked as uint, or one above
 * INT64_MAX asked as int, is TKV_MPR_RANGE. A float32 is widened to double.
 * Array/map counts are checked against the bytes left (each element takes
 * at least one byte). An ext's *p and *n are its data, without the type. */
int tkv_mpr_nil(struct tkv_mpr *r);
int tkv_mpr_bool(struct tkv_mpr *r, int *v /* OUT */);
int tkv_mpr_uint(struct tkv_mpr *r, uint64_t *v /* OUT */);
int tkv_mpr_int(struct tkv_mpr *r, int64_t *v /* OUT */);
int tkv_mpr_float(struct tkv_mpr *r, double *v /* OUT */);
int tkv_mpr_str(struct tkv_mpr *r, const char **s /* OUT */,
                uint32_t *n /* OUT */);
int tkv_mpr_bin(struct tkv_mpr *r, const uint8_t **p /* OUT */,
                uint32_t *n /* OUT */);
int tkv_mpr_ext(struct tkv_mpr *r, int8_t *type /* OUT */,
                const uint8_t **p /* OUT */, uint32_t *n /* OUT */);
int tkv_mpr_array(struct tkv_mpr *r, uint32_t *n /* OUT */);
int tkv_mpr_map(struct tkv_mpr *r, uint32_t *n /* OUT */);

/* Read the header of an array or a map: of type want (TKV_MP_ARRAY or
 * TKV_MP_MAP), or of either with want TKV_MP_END; *type says which came.
 * Unlike tkv_mpr_array/map the count is NOT checked against the bytes
 * left, for walkers that read the elements one by one and report an
 * element's own fault before the end of the input (each element read fails
 * there anyway). Never size an allocation by *n without bounding it by
 * tkv_mpr_remaining(). */
int tkv_mpr_container(struct tkv_mpr *r, enum tkv_mp_type want,
                      enum tkv_mp_type *type /* OUT */, uint32_t *n /* OUT */);

/* The application type of the ext at the position, from its header alone
 * (the data is not checked), without moving: to dispatch on it before
 * reading, or to name an ext whose data is cut short. TKV_ECORRUPT when
 * the next item is not an ext or is cut short before its type byte; does
 * not set r->why (r is not changed). */
int tkv_mpr_ext_type(const struct tkv_mpr *r, int8_t *type /* OUT */);

/* One item of any type, as tkv_mpr_next() reads it. */
struct tkv_mp_item {
    enum tkv_mp_type type; /* never TKV_MP_END or TKV_MP_BAD */
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

/* Read the next item whatever its type, for walkers that dispatch on it:
 * a whole scalar, str, bin or ext, or the header of an array or map (the
 * caller reads the elements). One dispatch instead of tkv_mpr_peek() and
 * a typed read. 0xc1 is TKV_MPR_TYPE. */
int tkv_mpr_next(struct tkv_mpr *r, struct tkv_mp_item *it /* OUT */);

/* Skip one whole item (nested items included), without recursion. On
 * success start and end (if not NULL) give its byte range. A failure is
 * that of the first part that cannot be read, in order; a container's
 * count is checked when its header is read. */
int tkv_mpr_skip(struct tkv_mpr *r, size_t *start /* OUT */,
                 size_t *end /* OUT */);

/* Most containers tkv_mpr_skip_depth can track (one counter each on the
 * stack). */
#define TKV_MPR_DEPTH_MAX 64

/* tkv_mpr_skip, also failing with TKV_MPR_DEPTH on a container (empty or
 * not) inside max_depth others: max_depth is the most containers open at
 * once, 0 accepts only a scalar. Requires max_depth <= TKV_MPR_DEPTH_MAX.
 * The depth is checked after the container's header is read and before
 * its count is. */
int tkv_mpr_skip_depth(struct tkv_mpr *r, unsigned max_depth,
                       size_t *start /* OUT */, size_t *end /* OUT */);

#endif /* TKV_MPREAD_H */
