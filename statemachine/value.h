/* Values: JSON documents carried and stored as msgpack.
 *
 * The seed's limits apply to the compact JSON serialization of a value, as
 * jansson's json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes it. The node
 * only ever sees msgpack, so tkv_value_check() walks the msgpack form and
 * computes exactly the length jansson would write (same escaping, same
 * number formatting), and refuses what JSON cannot carry. The client uses
 * tkv_value_from_json()/tkv_value_to_json() to cross between jansson and
 * msgpack without going through text. */
#ifndef TKV_VALUE_H
#define TKV_VALUE_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/error.h"

/* 1 MB as the seed counts it: 1024 KB of 1024 bytes. */
#define TKV_VALUE_MAX (1024u * 1024u)

/* Deepest nesting accepted (arrays/objects): msgpack-c's unpacker reads
 * at most 32 levels back, and recursion stays bounded. */
#define TKV_VALUE_MAX_DEPTH 32

/* Check an unpacked msgpack object is a JSON value within the size limit.
 * *json_len (if not NULL) gets its compact JSON length.
 * Errors, with the seed's exact messages:
 *   TKV_ETOO_LARGE "Value size (1234.56 KB) exceeds the maximum allowed size
 *                   of 1 MB (1024 KB)"   (real size, two decimals)
 *   TKV_ENOT_JSON  "Value is not JSON serializable: <reason>" where reason
 *                   names the problem: NaN or infinite number, invalid UTF-8
 *                   in a string, binary data, extension type, non-string
 *                   object key, duplicate object key, integer out of range,
 *                   nesting deeper than TKV_VALUE_MAX_DEPTH. */
int tkv_value_check(const msgpack_object *obj, size_t *json_len /* OUT */,
                    struct tkv_err *err);

/* Same, on raw msgpack bytes that must hold exactly one object (no trailing
 * bytes). Truncated or malformed msgpack is TKV_ENOT_JSON too. */
int tkv_value_check_bytes(const uint8_t *mp, size_t len,
                          size_t *json_len /* OUT */, struct tkv_err *err);

/* Message for a too-large value of json_len bytes (shared by node and
 * client so the text is identical). Returns TKV_ETOO_LARGE. */
int tkv_value_too_large(size_t json_len, struct tkv_err *err);

/* jansson -> msgpack bytes appended to out. json_integer -> msgpack int,
 * json_real -> float64 (NaN/inf refused), strings must be UTF-8 (jansson
 * guarantees it). Checks the size limit with the same messages as above. */
int tkv_value_from_json(const json_t *v, struct tkv_buf *out,
                        struct tkv_err *err);

/* msgpack object -> new jansson reference (NULL + err on failure: what
 * tkv_value_check refuses is refused here too). */
json_t *tkv_value_to_json(const msgpack_object *obj, struct tkv_err *err);

#endif /* TKV_VALUE_H */
