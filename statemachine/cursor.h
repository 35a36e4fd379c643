/* List cursors: opaque base64url text that says where the next page starts.
 *
 * Bytes before base64url (no padding):
 *   format (1 byte, = 1) | flags (1 byte, bit 0 = reverse) |
 *   selector fingerprint (8 bytes, little-endian) | last key returned
 *
 * The fingerprint covers the whole selector (prefix, start, end, each with
 * its presence) and the direction, so a cursor handed to another selector or
 * the other direction is refused instead of silently returning the wrong
 * page. */
#ifndef TKV_CURSOR_H
#define TKV_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "sm.h"

/* Fingerprint of a list query's selector and direction. */
uint64_t tkv_cursor_selector_hash(const struct tkv_list_query *q);

/* Write the cursor text (NUL-terminated) into out[TKV_CURSOR_MAX]. */
void tkv_cursor_encode(uint64_t selector_hash, int reverse,
                       const uint8_t *key, size_t klen,
                       char out[TKV_CURSOR_MAX]);

/* Parse cursor text; on success *key points into keybuf (TKV_KEY_MAX
 * bytes) and holds a valid key encoding. Errors are TKV_EBAD_CURSOR with a
 * message: not base64url, wrong length, unknown format, belongs to another
 * selector or direction, invalid key. */
int tkv_cursor_decode(const char *text, size_t len, uint64_t selector_hash,
                      int reverse, uint8_t *keybuf, size_t *klen /* OUT */,
                      struct tkv_err *err);

/* base64url without padding. encode writes 4*ceil(n/3) - pad chars + NUL
 * and returns the length; decode returns the byte count or -1 on a bad
 * character, a bad length or non-canonical trailing bits. */
size_t tkv_base64url_encode(const uint8_t *in, size_t n, char *out);
long tkv_base64url_decode(const char *in, size_t n, uint8_t *out,
                          size_t outcap);

#endif /* TKV_CURSOR_H */
