/* List cursors and the base64url codec they are written in. */
#include "cursor.h"

#include <string.h>

#include "../common/hash.h"
#include "keycodec.h"

#define CURSOR_FORMAT 1
#define CURSOR_HDR 10 /* format + flags + fingerprint */

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t tkv_base64url_encode(const uint8_t *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

long tkv_base64url_decode(const char *in, size_t n, uint8_t *out,
                          size_t outcap)
{
    size_t i, o = 0, rem = n % 4;
    uint32_t v;
    if (rem == 1) {
        return -1;
    }
    if ((n / 4) * 3 + (rem ? rem - 1 : 0) > outcap) {
        return -1;
    }
    for (i = 0; i + 4 <= n; i += 4) {
        int a = b64val(in[i]), b = b64val(in[i + 1]);
        int c = b64val(in[i + 2]), d = b64val(in[i + 3]);
        if ((a | b | c | d) < 0) {
            return -1;
        }
        v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (rem >= 2) {
        int a = b64val(in[i]), b = b64val(in[i + 1]);
        int c = rem == 3 ? b64val(in[i + 2]) : 0;
        if ((a | b | c) < 0) {
            return -1;
        }
        v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6;
        /* Non-canonical: bits below the last whole byte must be zero, so
         * every cursor has exactly one spelling. */
        if ((rem == 2 && (v & 0xFFFF)) || (rem == 3 && (v & 0xFF))) {
            return -1;
        }
        out[o++] = (uint8_t)(v >> 16);
        if (rem == 3) {
            out[o++] = (uint8_t)(v >> 8);
        }
    }
    return (long)o;
}

static void hash_part(struct tkv_hash *h, const uint8_t *p, size_t n)
{
    tkv_hash_u64(h, p == NULL ? UINT64_MAX : n);
    if (p != NULL) {
        tkv_hash_update(h, p, n);
    }
}

uint64_t tkv_cursor_selector_hash(const struct tkv_list_query *q)
{
    struct tkv_hash h;
    tkv_hash_init(&h, 0x637572736f72ull); /* "cursor" */
    hash_part(&h, q->prefix, q->prefix_len);
    hash_part(&h, q->start, q->start_len);
    hash_part(&h, q->end, q->end_len);
    tkv_hash_u64(&h, q->reverse ? 1 : 0);
    return tkv_hash_final(&h);
}

void tkv_cursor_encode(uint64_t selector_hash, int reverse,
                       const uint8_t *key, size_t klen,
                       char out[TKV_CURSOR_MAX])
{
    uint8_t raw[CURSOR_HDR + TKV_KEY_MAX];
    raw[0] = CURSOR_FORMAT;
    raw[1] = reverse ? 1 : 0;
    for (int i = 0; i < 8; i++) {
        raw[2 + i] = (uint8_t)(selector_hash >> (8 * i));
    }
    memcpy(raw + CURSOR_HDR, key, klen);
    tkv_base64url_encode(raw, CURSOR_HDR + klen, out);
}

int tkv_cursor_decode(const char *text, size_t len, uint64_t selector_hash,
                      int reverse, uint8_t *keybuf, size_t *klen,
                      struct tkv_err *err)
{
    uint8_t raw[CURSOR_HDR + TKV_KEY_MAX];
    uint64_t fp = 0;
    long n;

    if (len == 0 || len >= TKV_CURSOR_MAX) {
        return tkv_err_set(err, TKV_EBAD_CURSOR,
                           "invalid cursor: wrong length (%zu characters)",
                           len);
    }
    n = tkv_base64url_decode(text, len, raw, sizeof raw);
    if (n < 0) {
        return tkv_err_set(err, TKV_EBAD_CURSOR,
                           "invalid cursor: not base64url text");
    }
    if (n <= CURSOR_HDR || raw[0] != CURSOR_FORMAT || raw[1] > 1) {
        return tkv_err_set(err, TKV_EBAD_CURSOR,
                           "invalid cursor: unknown format");
    }
    for (int i = 0; i < 8; i++) {
        fp |= (uint64_t)raw[2 + i] << (8 * i);
    }
    if (fp != selector_hash || raw[1] != (reverse ? 1 : 0)) {
        return tkv_err_set(err, TKV_EBAD_CURSOR,
                           "invalid cursor: it belongs to another selector "
                           "or direction");
    }
    if (tkv_key_validate(raw + CURSOR_HDR, (size_t)n - CURSOR_HDR, 0,
                         NULL) != 0) {
        return tkv_err_set(err, TKV_EBAD_CURSOR,
                           "invalid cursor: it does not hold a valid key");
    }
    *klen = (size_t)n - CURSOR_HDR;
    memcpy(keybuf, raw + CURSOR_HDR, *klen);
    return 0;
}
