/* Key codec: tuple keys (msgpack or jansson arrays) <-> order-preserving
 * bytes, and the strict checker for bytes that claim to be such a key.
 *
 * Encoding (see keycodec.h for the layout of each part):
 *   1. each part is checked (type, finite number, integer range, UTF-8)
 *      and appended to the output; writing stops at TKV_KEY_MAX but the
 *      length keeps counting, so the size error can say how large the key
 *      would have been;
 *   2. the first bad part, in part order, is the error reported; only when
 *      every part is fine is an oversized key reported.
 *
 * Decoding (pack, to_json) trusts its input: callers run tkv_key_validate
 * on bytes from the log, a snapshot or a cursor first. tkv_key_validate
 * accepts exactly what the encoder can produce, so the bytes of a key are
 * unique and two equal keys always compare equal with memcmp. */
#include "keycodec.h"

#include <assert.h>
#include <math.h>
#include <string.h>

/* Integers up to 2^53 in magnitude are exactly doubles and survive a trip
 * through JavaScript numbers; larger ones are refused rather than rounded,
 * so no two distinct integers ever map to one key. */
#define KEY_INT_MAX 9007199254740992LL /* 2^53 */

#define SIGN_BIT 0x8000000000000000ULL

/* An encoder writing into out[TKV_KEY_MAX] that keeps counting past it. */
struct enc {
    uint8_t *out;
    size_t len;
};

static void enc_byte(struct enc *e, uint8_t b)
{
    if (e->len < TKV_KEY_MAX) {
        e->out[e->len] = b;
    }
    e->len++;
}

static void enc_bytes(struct enc *e, const uint8_t *p, size_t n)
{
    if (e->len < TKV_KEY_MAX) {
        size_t room = TKV_KEY_MAX - e->len;
        memcpy(e->out + e->len, p, n < room ? n : room);
    }
    e->len += n;
}

/* Length of the well-formed UTF-8 sequence starting at p (n bytes
 * available), or 0 when there is none: overlong forms, surrogates
 * (U+D800..U+DFFF), code points above U+10FFFF, stray continuation bytes and
 * truncated sequences are all refused (Unicode 15, table 3-7). */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    uint8_t lo = 0x80;
    uint8_t hi = 0xBF;
    size_t need;
    size_t i;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) {
            lo = 0xA0; /* below is overlong */
        } else if (c == 0xED) {
            hi = 0x9F; /* above are surrogates */
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) {
            lo = 0x90; /* below is overlong */
        } else if (c == 0xF4) {
            hi = 0x8F; /* above is past U+10FFFF */
        }
    } else {
        return 0; /* 0x80..0xC1 and 0xF5..0xFF never start a sequence */
    }
    if (n < need || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (i = 2; i < need; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return need;
}

/* Length of the run of ASCII other than NUL that p[0..n) starts with:
 * bytes a string part holds as they are, with nothing to check or escape
 * (most of them). 8 bytes a step: a word has none of the other bytes when
 * no byte has its high bit set and none is 0 (with every byte below 0x80,
 * x - ONES sets a high bit exactly where a byte is 0). */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

static size_t plain_run(const uint8_t *p, size_t n)
{
    size_t i = 0;

    for (; n - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        if (((x | (x - ONES)) & HIGHS) != 0) {
            break;
        }
    }
    while (i < n && p[i] != 0x00 && p[i] < 0x80) {
        i++;
    }
    return i;
}

static int enc_string(struct enc *e,
                      size_t part,
                      const uint8_t *s,
                      size_t n,
                      struct tkv_err *err)
{
    size_t i = 0;

    enc_byte(e, TKV_KEY_TAG_STRING);
    while (i < n) {
        /* Copy runs of ASCII other than NUL in one go: the common case. */
        size_t run = plain_run(s + i, n - i);
        if (run > 0) {
            enc_bytes(e, s + i, run);
            i += run;
            continue;
        }
        if (s[i] == 0x00) {
            /* 0x00 0xFF sorts between the terminator (0x00 then a tag or
             * nothing) and every other byte, and 0xFF never occurs in
             * UTF-8, so the escape keeps order and stays unambiguous. */
            enc_byte(e, 0x00);
            enc_byte(e, 0xFF);
            i++;
            continue;
        }
        run = utf8_seq(s + i, n - i);
        if (run == 0) {
            return tkv_err_set(err, TKV_EINVALID,
                               "key part %zu is not valid UTF-8", part);
        }
        enc_bytes(e, s + i, run);
        i += run;
    }
    enc_byte(e, 0x00);
    return 0;
}

static int enc_number(struct enc *e, size_t part, double d, struct tkv_err *err)
{
    uint64_t bits;
    int i;

    if (!isfinite(d)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "key part %zu is not a finite number", part);
    }
    if (d == 0) {
        d = 0; /* -0 and 0 are one key */
    }
    memcpy(&bits, &d, sizeof bits);
    /* Flip so that unsigned big-endian order is numeric order: positives
     * above negatives, and larger magnitudes of negatives below. */
    bits = (bits & SIGN_BIT) ? ~bits : bits | SIGN_BIT;
    enc_byte(e, TKV_KEY_TAG_NUMBER);
    for (i = 7; i >= 0; i--) {
        enc_byte(e, (uint8_t)(bits >> (i * 8)));
    }
    return 0;
}

static int enc_integer_range(size_t part, struct tkv_err *err)
{
    return tkv_err_set(err, TKV_EINVALID,
                       "key part %zu is an integer outside +-2^53, which a "
                       "number cannot hold exactly",
                       part);
}

static int enc_integer(struct enc *e,
                       size_t part,
                       int64_t v,
                       struct tkv_err *err)
{
    if (v < -KEY_INT_MAX || v > KEY_INT_MAX) {
        return enc_integer_range(part, err);
    }
    return enc_number(e, part, (double)v, err);
}

static int enc_wrong_type(size_t part, const char *type, struct tkv_err *err)
{
    return tkv_err_set(err, TKV_EINVALID,
                       "key part %zu has type %s; key parts must be string, "
                       "number or boolean",
                       part, type);
}

/* Shared tail of both encoders: the checks on the whole key. */
static int enc_finish(const struct enc *e, size_t *len, struct tkv_err *err)
{
    if (e->len > TKV_KEY_MAX) {
        return tkv_err_set(err, TKV_ETOO_LARGE,
                           "key is too large: %zu bytes encoded, the limit "
                           "is %d",
                           e->len, TKV_KEY_MAX);
    }
    *len = e->len;
    return 0;
}

static const char *msgpack_type_name(msgpack_object_type t)
{
    switch (t) {
        case MSGPACK_OBJECT_NIL:
            return "null";
        case MSGPACK_OBJECT_ARRAY:
            return "array";
        case MSGPACK_OBJECT_MAP:
            return "map";
        case MSGPACK_OBJECT_BIN:
            return "binary";
        case MSGPACK_OBJECT_EXT:
            return "ext";
        case MSGPACK_OBJECT_BOOLEAN:
            return "boolean";
        case MSGPACK_OBJECT_STR:
            return "string";
        default:
            return "number";
    }
}

int tkv_key_from_msgpack(const msgpack_object *obj,
                         int allow_empty,
                         uint8_t *out,
                         size_t *len,
                         struct tkv_err *err)
{
    struct enc e = {out, 0};
    uint32_t i;
    int rv;

    if (obj->type != MSGPACK_OBJECT_ARRAY) {
        return tkv_err_set(err, TKV_EINVALID,
                           "key must be an array, not type %s",
                           msgpack_type_name(obj->type));
    }
    if (obj->via.array.size == 0 && !allow_empty) {
        return tkv_err_set(err, TKV_EINVALID, "key must not be empty");
    }
    for (i = 0; i < obj->via.array.size; i++) {
        const msgpack_object *p = &obj->via.array.ptr[i];
        switch (p->type) {
            case MSGPACK_OBJECT_STR:
                rv = enc_string(&e, i, (const uint8_t *)p->via.str.ptr,
                                p->via.str.size, err);
                break;
            case MSGPACK_OBJECT_POSITIVE_INTEGER:
                rv = p->via.u64 > (uint64_t)KEY_INT_MAX
                         ? enc_integer_range(i, err)
                         : enc_integer(&e, i, (int64_t)p->via.u64, err);
                break;
            case MSGPACK_OBJECT_NEGATIVE_INTEGER:
                rv = enc_integer(&e, i, p->via.i64, err);
                break;
            case MSGPACK_OBJECT_FLOAT32:
            case MSGPACK_OBJECT_FLOAT64:
                rv = enc_number(&e, i, p->via.f64, err);
                break;
            case MSGPACK_OBJECT_BOOLEAN:
                enc_byte(&e,
                         p->via.boolean ? TKV_KEY_TAG_TRUE : TKV_KEY_TAG_FALSE);
                rv = 0;
                break;
            default:
                rv = enc_wrong_type(i, msgpack_type_name(p->type), err);
                break;
        }
        if (rv != 0) {
            return rv;
        }
    }
    return enc_finish(&e, len, err);
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
        case JSON_OBJECT:
            return "object";
        case JSON_ARRAY:
            return "array";
        case JSON_STRING:
            return "string";
        case JSON_INTEGER:
        case JSON_REAL:
            return "number";
        case JSON_TRUE:
        case JSON_FALSE:
            return "boolean";
        default:
            return "null";
    }
}

int tkv_key_from_json(const json_t *arr,
                      int allow_empty,
                      uint8_t *out,
                      size_t *len,
                      struct tkv_err *err)
{
    struct enc e = {out, 0};
    size_t n;
    size_t i;
    int rv;

    if (arr == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "key must be an array");
    }
    if (!json_is_array(arr)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "key must be an array, not type %s",
                           json_type_name(arr));
    }
    n = json_array_size(arr);
    if (n == 0 && !allow_empty) {
        return tkv_err_set(err, TKV_EINVALID, "key must not be empty");
    }
    for (i = 0; i < n; i++) {
        const json_t *p = json_array_get(arr, i);
        switch (json_typeof(p)) {
            case JSON_STRING:
                rv = enc_string(&e, i, (const uint8_t *)json_string_value(p),
                                json_string_length(p), err);
                break;
            case JSON_INTEGER:
                rv = enc_integer(&e, i, (int64_t)json_integer_value(p), err);
                break;
            case JSON_REAL:
                rv = enc_number(&e, i, json_real_value(p), err);
                break;
            case JSON_TRUE:
            case JSON_FALSE:
                enc_byte(
                    &e, json_is_true(p) ? TKV_KEY_TAG_TRUE : TKV_KEY_TAG_FALSE);
                rv = 0;
                break;
            default:
                rv = enc_wrong_type(i, json_type_name(p), err);
                break;
        }
        if (rv != 0) {
            return rv;
        }
    }
    return enc_finish(&e, len, err);
}

/* The double stored in the 8 payload bytes at p. */
static double number_at(const uint8_t *p)
{
    uint64_t bits = 0;
    double d;
    int i;

    for (i = 0; i < 8; i++) {
        bits = (bits << 8) | p[i];
    }
    bits = (bits & SIGN_BIT) ? bits & ~SIGN_BIT : ~bits;
    memcpy(&d, &bits, sizeof d);
    return d;
}

int tkv_key_validate(const uint8_t *key,
                     size_t len,
                     int allow_empty,
                     struct tkv_err *err)
{
    size_t pos = 0;
    size_t part = 0;

    if (len == 0) {
        if (allow_empty) {
            return 0;
        }
        return tkv_err_set(err, TKV_ECORRUPT, "key must not be empty");
    }
    if (len > TKV_KEY_MAX) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "key is too large: %zu bytes encoded, the limit "
                           "is %d",
                           len, TKV_KEY_MAX);
    }
    while (pos < len) {
        uint8_t tag = key[pos++];
        switch (tag) {
            case TKV_KEY_TAG_STRING:
                for (;;) {
                    size_t n;
                    pos += plain_run(key + pos, len - pos);
                    if (pos == len) {
                        return tkv_err_set(err, TKV_ECORRUPT,
                                           "key part %zu: string has no "
                                           "terminator",
                                           part);
                    }
                    if (key[pos] == 0x00) {
                        if (pos + 1 < len && key[pos + 1] == 0xFF) {
                            pos += 2; /* an escaped NUL */
                            continue;
                        }
                        pos++; /* the terminator */
                        break;
                    }
                    /* The terminator is never a continuation byte, so a
                     * sequence cannot run across it. */
                    n = utf8_seq(key + pos, len - pos);
                    if (n == 0) {
                        return tkv_err_set(err, TKV_ECORRUPT,
                                           "key part %zu is not valid UTF-8",
                                           part);
                    }
                    pos += n;
                }
                break;
            case TKV_KEY_TAG_NUMBER: {
                double d;
                if (len - pos < 8) {
                    return tkv_err_set(err, TKV_ECORRUPT,
                                       "key part %zu: number is truncated",
                                       part);
                }
                d = number_at(key + pos);
                if (!isfinite(d)) {
                    return tkv_err_set(err, TKV_ECORRUPT,
                                       "key part %zu is not a finite number",
                                       part);
                }
                if (d == 0 && signbit(d)) {
                    return tkv_err_set(err, TKV_ECORRUPT,
                                       "key part %zu is -0, which is encoded "
                                       "as 0",
                                       part);
                }
                pos += 8;
                break;
            }
            case TKV_KEY_TAG_FALSE:
            case TKV_KEY_TAG_TRUE:
                break;
            default:
                return tkv_err_set(err, TKV_ECORRUPT,
                                   "key part %zu has unknown tag 0x%02x at "
                                   "byte %zu",
                                   part, tag, pos - 1);
        }
        part++;
    }
    return 0;
}

/* Scan the string payload starting at p (after the tag) of a valid
 * encoding: *raw gets its unescaped length; returns the bytes consumed,
 * terminator included. */
static size_t string_span(const uint8_t *p, size_t n, size_t *raw)
{
    size_t pos = 0;
    size_t count = 0;

    for (;;) {
        assert(pos < n);
        if (p[pos] == 0x00) {
            if (pos + 1 < n && p[pos + 1] == 0xFF) {
                pos += 2;
                count++;
                continue;
            }
            *raw = count;
            return pos + 1;
        }
        pos++;
        count++;
    }
}

/* Unescape the string payload at p (after the tag) into out, which has room
 * for the raw length. Returns the bytes consumed, terminator included. */
static size_t string_unescape(const uint8_t *p, size_t n, uint8_t *out)
{
    size_t pos = 0;

    for (;;) {
        assert(pos < n);
        if (p[pos] == 0x00) {
            if (pos + 1 < n && p[pos + 1] == 0xFF) {
                *out++ = 0x00;
                pos += 2;
                continue;
            }
            return pos + 1;
        }
        *out++ = p[pos++];
    }
}

size_t tkv_key_nparts(const uint8_t *key, size_t len)
{
    size_t pos = 0;
    size_t parts = 0;
    size_t raw;

    while (pos < len) {
        switch (key[pos++]) {
            case TKV_KEY_TAG_STRING:
                pos += string_span(key + pos, len - pos, &raw);
                break;
            case TKV_KEY_TAG_NUMBER:
                pos += 8;
                break;
            default:
                break;
        }
        parts++;
    }
    assert(pos == len);
    return parts;
}

/* The integer value of d when it is one within +-2^53: those are written
 * as integers so that a key made of integers comes back as integers. */
static int as_integer(double d, int64_t *v)
{
    if (d >= -(double)KEY_INT_MAX && d <= (double)KEY_INT_MAX &&
        d == floor(d)) {
        *v = (int64_t)d;
        return 1;
    }
    return 0;
}

int tkv_key_pack(const uint8_t *key, size_t len, msgpack_packer *pk)
{
    size_t pos = 0;
    int rv;

    if (msgpack_pack_array(pk, tkv_key_nparts(key, len)) != 0) {
        return TKV_ENOMEM;
    }
    while (pos < len) {
        uint8_t tag = key[pos++];
        rv = 0;
        switch (tag) {
            case TKV_KEY_TAG_STRING: {
                size_t raw;
                size_t used = string_span(key + pos, len - pos, &raw);
                size_t start = pos;
                size_t end = pos + used - 1; /* the terminator */
                rv = msgpack_pack_str(pk, raw);
                /* Write the runs between escapes straight from the key. */
                while (rv == 0 && start < end) {
                    size_t run = start;
                    while (run < end && key[run] != 0x00) {
                        run++;
                    }
                    if (run > start) {
                        rv =
                            msgpack_pack_str_body(pk, key + start, run - start);
                    }
                    if (rv == 0 && run < end) {
                        rv = msgpack_pack_str_body(pk, "", 1);
                        run += 2;
                    }
                    start = run;
                }
                pos += used;
                break;
            }
            case TKV_KEY_TAG_NUMBER: {
                double d = number_at(key + pos);
                int64_t v;
                rv = as_integer(d, &v) ? msgpack_pack_int64(pk, v)
                                       : msgpack_pack_double(pk, d);
                pos += 8;
                break;
            }
            case TKV_KEY_TAG_FALSE:
                rv = msgpack_pack_false(pk);
                break;
            default:
                assert(tag == TKV_KEY_TAG_TRUE);
                rv = msgpack_pack_true(pk);
                break;
        }
        if (rv != 0) {
            return TKV_ENOMEM;
        }
    }
    return 0;
}

json_t *tkv_key_to_json(const uint8_t *key, size_t len)
{
    /* A valid key is at most TKV_KEY_MAX bytes, so any string in it is
     * shorter than that once unescaped. */
    uint8_t raw[TKV_KEY_MAX];
    json_t *arr;
    size_t pos = 0;

    assert(len <= TKV_KEY_MAX);
    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    while (pos < len) {
        uint8_t tag = key[pos++];
        json_t *v;
        switch (tag) {
            case TKV_KEY_TAG_STRING: {
                size_t n;
                size_t used = string_span(key + pos, len - pos, &n);
                string_unescape(key + pos, len - pos, raw);
                /* Checked as UTF-8 when the key was encoded or validated. */
                v = json_stringn_nocheck((const char *)raw, n);
                pos += used;
                break;
            }
            case TKV_KEY_TAG_NUMBER: {
                double d = number_at(key + pos);
                int64_t i;
                v = as_integer(d, &i) ? json_integer((json_int_t)i)
                                      : json_real(d);
                pos += 8;
                break;
            }
            case TKV_KEY_TAG_FALSE:
                v = json_false();
                break;
            default:
                assert(tag == TKV_KEY_TAG_TRUE);
                v = json_true();
                break;
        }
        if (json_array_append_new(arr, v) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

int tkv_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;

    if (c != 0) {
        return c;
    }
    return (alen > blen) - (alen < blen);
}
