/* Key codec: tuple keys <-> order-preserving bytes.
 *
 * A key is an array of 1..N parts, each a UTF-8 string, a finite number
 * (double) or a boolean. Its encoding is a byte string whose memcmp order is
 * the key order, so the skiplist compares bytes only:
 *
 *   string   0x02, the bytes with every 0x00 written as 0x00 0xFF, then 0x00
 *   number   0x03, 8 bytes: the big-endian IEEE-754 double with the sign bit
 *            flipped (positive) or every bit flipped (negative); -0 is
 *            written as +0
 *   false    0x04
 *   true     0x05
 *
 * So strings < numbers < booleans, false < true, and a key sorts before every
 * key it is a prefix of. Byte prefix equals part prefix: the encoding of P is
 * a byte prefix of the encoding of K exactly when P's parts start K.
 *
 * Keys arrive as msgpack arrays (the wire) or jansson arrays (the client's
 * API); both are encoded straight to bytes and decoded straight back, without
 * a detour through the other format. The encoded key is at most
 * TKV_KEY_MAX bytes; the empty array is not a key.
 *
 * Nothing here allocates except tkv_key_to_json (which returns a new
 * reference). */
#ifndef TKV_KEYCODEC_H
#define TKV_KEYCODEC_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define TKV_KEY_MAX 2048

enum {
    TKV_KEY_TAG_STRING = 0x02,
    TKV_KEY_TAG_NUMBER = 0x03,
    TKV_KEY_TAG_FALSE = 0x04,
    TKV_KEY_TAG_TRUE = 0x05,
};

/* Encode a msgpack array into out[TKV_KEY_MAX]; *len gets the length.
 * allow_empty: accept [] (a list prefix selecting everything), else refuse.
 * Errors (TKV_EINVALID / TKV_ETOO_LARGE with a message naming the part):
 *   not an array, empty key, part of a wrong type (nil, map, array, bin,
 *   ext), NaN or infinite number, invalid UTF-8, encoding over TKV_KEY_MAX.
 * msgpack integers are accepted as numbers when exactly representable as a
 * double (|n| <= 2^53). */
int tkv_key_from_msgpack(const msgpack_object *obj, int allow_empty,
                         uint8_t *out /* OUT: TKV_KEY_MAX bytes */,
                         size_t *len /* OUT */, struct tkv_err *err);

/* Same for a jansson array (json_integer and json_real are numbers). */
int tkv_key_from_json(const json_t *arr, int allow_empty,
                      uint8_t *out /* OUT: TKV_KEY_MAX bytes */,
                      size_t *len /* OUT */, struct tkv_err *err);

/* Check that bytes are a canonical key encoding (what the encoder would
 * produce for some key): used on bytes from the log, snapshots and cursors.
 * allow_empty as above. 0 or TKV_ECORRUPT. */
int tkv_key_validate(const uint8_t *key, size_t len, int allow_empty,
                     struct tkv_err *err);

/* Number of parts in a valid encoding. */
size_t tkv_key_nparts(const uint8_t *key, size_t len);

/* Write a valid encoding as a msgpack array. Numbers that are integral and
 * within +-2^53 are written as msgpack integers, others as float64. Returns
 * 0 or the packer's failure as TKV_ENOMEM. */
int tkv_key_pack(const uint8_t *key, size_t len, msgpack_packer *pk);

/* Decode a valid encoding into a new jansson array (new reference), or NULL
 * when out of memory. Integral numbers within +-2^53 become json_integer. */
json_t *tkv_key_to_json(const uint8_t *key, size_t len);

/* Compare two encodings: memcmp order, shorter first on a common prefix. */
int tkv_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

#endif /* TKV_KEYCODEC_H */
