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
 * The byte walker allocates nothing except for the duplicate-key check of
 * big maps. fuzz_value cross-checks the two walkers against each other and
 * against json_dumps. */
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"

#define NOT_JSON "Value is not JSON serializable: "

/* Most containers msgpack-c's unpacker can hold open at once
 * (MSGPACK_EMBED_STACK_SIZE, fixed when the library was built; msgpack.h
 * does not export it). test_value checks the boundary. */
#define MSGPACK_UNPACK_DEPTH 32

/* Nesting limit actually enforced. A value deeper than msgpack-c's unpacker
 * can go could be stored but never unpacked again by a reader, so the limit
 * is the smaller of the two. Depth counts containers: a scalar is 0, [] 1. */
#define DEPTH_MAX                                \
    (TKV_VALUE_MAX_DEPTH < MSGPACK_UNPACK_DEPTH \
         ? TKV_VALUE_MAX_DEPTH                  \
         : MSGPACK_UNPACK_DEPTH)

/* Maps up to this size look for duplicate keys pairwise, without
 * allocating; bigger ones sort their keys. */
#define SMALL_MAP 8

static int not_json(struct tkv_err *err, const char *reason)
{
    return tkv_err_set(err, TKV_ENOT_JSON, NOT_JSON "%s", reason);
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

/* Mirrors the snprintf branch of jansson 2.14's jsonp_dtostr(). The caller
 * has refused NaN and infinities. */
static size_t real_json_len(double d)
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
        return point ? len : len + 2; /* ".0" appended */
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

/* Extra bytes dump_string writes for an ASCII byte: \" \\ \b \f \n \r \t
 * take one more, other control characters become \u00XX (five more). 0x7F
 * and '/' are written as they are. */
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

/* JSON length of a string, quotes included; -1 when it is not UTF-8 as
 * jansson's utf8_iterate() accepts it (no overlong forms, no surrogates,
 * nothing above U+10FFFF). */
static int string_json_len(const uint8_t *s, size_t n, size_t *out)
{
    size_t extra = 0;
    size_t i = 0;

    while (i < n) {
        uint8_t c = s[i];
        uint32_t cp;
        uint32_t min;
        size_t need;
        size_t k;

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

static int obj_len(const msgpack_object *o, int depth, size_t *len,
                   struct tkv_err *err);

static int obj_map_len(const msgpack_object_map *m, int depth, size_t *len,
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

static int obj_len(const msgpack_object *o, int depth, size_t *len,
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
            return tkv_err_set(err, TKV_ENOT_JSON,
                               NOT_JSON "extension type %d", o->via.ext.type);
    }
    return tkv_err_set(err, TKV_ENOT_JSON, NOT_JSON "unknown msgpack type %d",
                       (int)o->type);
}

int tkv_value_check(const msgpack_object *obj, size_t *json_len,
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
    const uint8_t *p;
    const uint8_t *end;
    struct tkv_err *err;
};

static int truncated(struct walk *w)
{
    return not_json(w->err, "truncated msgpack");
}

/* Big-endian unsigned of n (1, 2, 4 or 8) bytes; the caller checked room. */
static uint64_t be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Consume n bytes of payload after a header; NULL when they are missing. */
static const uint8_t *take(struct walk *w, uint64_t n)
{
    const uint8_t *p = w->p;
    if (n > (uint64_t)(w->end - w->p)) {
        return NULL;
    }
    w->p += n;
    return p;
}

/* Reads a str header at w->p (the type byte already consumed as `c`):
 * 1 if c starts a str, with *s and *n set; 0 if c is not a str; negative
 * on truncation. */
static int walk_str(struct walk *w, uint8_t c, const uint8_t **s, size_t *n)
{
    size_t hdr;
    const uint8_t *h;
    if (c >= 0xA0 && c <= 0xBF) {
        *n = c & 0x1F;
    } else if (c >= 0xD9 && c <= 0xDB) {
        hdr = (size_t)1 << (c - 0xD9);
        h = take(w, hdr);
        if (h == NULL) {
            return truncated(w);
        }
        *n = (size_t)be(h, hdr);
    } else {
        return 0;
    }
    *s = take(w, *n);
    if (*s == NULL) {
        return truncated(w);
    }
    return 1;
}

static int walk_value(struct walk *w, int depth, size_t *len);

static int walk_array(struct walk *w, uint64_t count, int depth, size_t *len)
{
    size_t total = 2 + (count > 0 ? count - 1 : 0);
    uint64_t i;
    int rv;

    if (depth >= DEPTH_MAX) {
        return depth_error(w->err);
    }
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

static int walk_map(struct walk *w, uint64_t count, int depth, size_t *len)
{
    struct keyset ks;
    size_t total = 2 + (count > 0 ? count - 1 : 0);
    uint64_t i;
    int rv;

    if (depth >= DEPTH_MAX) {
        return depth_error(w->err);
    }
    /* every key and value takes at least one byte: a bigger count is a
     * truncated map, and must not size an allocation */
    if (count > (uint64_t)(w->end - w->p) / 2) {
        return truncated(w);
    }
    rv = keyset_init(&ks, (size_t)count, w->err);
    if (rv != 0) {
        return rv;
    }
    for (i = 0; i < count; i++) {
        const uint8_t *k;
        size_t kn;
        size_t klen;
        size_t vlen;
        uint8_t c;

        if (w->p == w->end) {
            rv = truncated(w);
            goto out;
        }
        c = *w->p++;
        rv = walk_str(w, c, &k, &kn);
        if (rv < 0) {
            goto out;
        }
        if (rv == 0) {
            rv = not_json(w->err, "object key is not a string");
            goto out;
        }
        if (string_json_len(k, kn, &klen) != 0) {
            rv = not_json(w->err, "invalid UTF-8 in an object key");
            goto out;
        }
        ks.keys[i].p = k;
        ks.keys[i].n = kn;
        rv = walk_value(w, depth + 1, &vlen);
        if (rv != 0) {
            goto out;
        }
        total += klen + 1 + vlen;
    }
    if (has_duplicate(ks.keys, (size_t)count)) {
        rv = not_json(w->err, "duplicate object key");
        goto out;
    }
    *len = total;
out:
    keyset_close(&ks);
    return rv;
}

static int walk_value(struct walk *w, int depth, size_t *len)
{
    const uint8_t *h;
    const uint8_t *s;
    size_t n;
    uint8_t c;
    int rv;

    if (w->p == w->end) {
        return truncated(w);
    }
    c = *w->p++;
    if (c <= 0x7F) {
        *len = uint_json_len(c);
        return 0;
    }
    if (c >= 0xE0) {
        *len = int_json_len((int8_t)c);
        return 0;
    }
    if (c <= 0x8F) {
        return walk_map(w, c & 0x0F, depth, len);
    }
    if (c <= 0x9F) {
        return walk_array(w, c & 0x0F, depth, len);
    }
    rv = walk_str(w, c, &s, &n);
    if (rv < 0) {
        return rv;
    }
    if (rv > 0) {
        if (string_json_len(s, n, len) != 0) {
            return not_json(w->err, "invalid UTF-8 in a string");
        }
        return 0;
    }
    switch (c) {
        case 0xC0:
            *len = 4;
            return 0;
        case 0xC2:
            *len = 5;
            return 0;
        case 0xC3:
            *len = 4;
            return 0;
        case 0xC4:
        case 0xC5:
        case 0xC6:
            return not_json(w->err, "binary data");
        case 0xC7:
        case 0xC8:
        case 0xC9:
        case 0xD4:
        case 0xD5:
        case 0xD6:
        case 0xD7:
        case 0xD8: {
            /* the ext type byte follows the length (if any) */
            size_t skip = c <= 0xC9 ? (size_t)1 << (c - 0xC7) : 0;
            h = take(w, skip + 1);
            if (h == NULL) {
                return truncated(w);
            }
            return tkv_err_set(w->err, TKV_ENOT_JSON,
                               NOT_JSON "extension type %d",
                               (int)(int8_t)h[skip]);
        }
        case 0xCA: {
            union {
                uint32_t u;
                float f;
            } v;
            h = take(w, 4);
            if (h == NULL) {
                return truncated(w);
            }
            v.u = (uint32_t)be(h, 4);
            if (!isfinite(v.f)) {
                return real_error(v.f, w->err);
            }
            *len = real_json_len(v.f);
            return 0;
        }
        case 0xCB: {
            union {
                uint64_t u;
                double d;
            } v;
            h = take(w, 8);
            if (h == NULL) {
                return truncated(w);
            }
            v.u = be(h, 8);
            if (!isfinite(v.d)) {
                return real_error(v.d, w->err);
            }
            *len = real_json_len(v.d);
            return 0;
        }
        case 0xCC:
        case 0xCD:
        case 0xCE:
        case 0xCF: {
            size_t sz = (size_t)1 << (c - 0xCC);
            uint64_t u;
            h = take(w, sz);
            if (h == NULL) {
                return truncated(w);
            }
            u = be(h, sz);
            if (u > INT64_MAX) {
                return range_error(u, w->err);
            }
            *len = uint_json_len(u);
            return 0;
        }
        case 0xD0:
        case 0xD1:
        case 0xD2:
        case 0xD3: {
            size_t sz = (size_t)1 << (c - 0xD0);
            uint64_t u;
            int64_t i;
            h = take(w, sz);
            if (h == NULL) {
                return truncated(w);
            }
            u = be(h, sz);
            /* sign-extend from sz bytes */
            if (sz < 8 && (u >> (sz * 8 - 1)) != 0) {
                u |= ~(uint64_t)0 << (sz * 8);
            }
            memcpy(&i, &u, sizeof i);
            *len = int_json_len(i);
            return 0;
        }
        case 0xDC:
        case 0xDD:
        case 0xDE:
        case 0xDF: {
            size_t sz = (c == 0xDC || c == 0xDE) ? 2 : 4;
            uint64_t count;
            h = take(w, sz);
            if (h == NULL) {
                return truncated(w);
            }
            count = be(h, sz);
            if (c <= 0xDD) {
                return walk_array(w, count, depth, len);
            }
            return walk_map(w, count, depth, len);
        }
    }
    /* 0xC1: never used by msgpack */
    return tkv_err_set(w->err, TKV_ENOT_JSON,
                       NOT_JSON "malformed msgpack (byte 0x%02X)", c);
}

int tkv_value_check_bytes(const uint8_t *mp, size_t len, size_t *json_len,
                          struct tkv_err *err)
{
    struct walk w;
    size_t n = 0;
    int rv;

    if (len == 0) {
        return not_json(err, "empty msgpack");
    }
    w.p = mp;
    w.end = mp + len;
    w.err = err;
    rv = walk_value(&w, 0, &n);
    if (rv != 0) {
        return rv;
    }
    if (w.p != w.end) {
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

static int pack_json(const json_t *v, msgpack_packer *pk, int depth,
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
                    rv = msgpack_pack_str_body(pk, json_object_iter_key(it),
                                               kn);
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

int tkv_value_from_json(const json_t *v, struct tkv_buf *out,
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
            return json_stringn_nocheck(str_ptr(&o->via.str),
                                        o->via.str.size);
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
