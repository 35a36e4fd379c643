/* libFuzzer target for the value checker (statemachine/value.c).
 *
 * When tkv_value_check_bytes accepts bytes (or finds them only too large),
 * msgpack-c must unpack them, the object walker must give the same answer
 * and length, and the length must be what jansson's json_dumps really
 * writes for the value; packing that JSON again must give the same length.
 * Anything else aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "statemachine/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tkv_err err;
    msgpack_unpacked u;
    size_t len = 0;
    size_t olen = 0;
    size_t off = 0;
    json_t *v;
    char *text;
    struct tkv_buf b;
    int rv = tkv_value_check_bytes(data, size, &len, &err);

    if (rv == TKV_ENOT_JSON || rv == TKV_ENOMEM) {
        REQUIRE(err.code == rv && err.msg[0] != '\0');
        return 0;
    }
    REQUIRE(rv == 0 || rv == TKV_ETOO_LARGE);
    REQUIRE(rv == 0 ? len <= TKV_VALUE_MAX : len > TKV_VALUE_MAX);

    /* the walk has vouched for every count, so msgpack-c is safe here */
    msgpack_unpacked_init(&u);
    REQUIRE(msgpack_unpack_next(&u, (const char *)data, size, &off) ==
          MSGPACK_UNPACK_SUCCESS);
    REQUIRE(off == size);
    REQUIRE(tkv_value_check(&u.data, &olen, &err) == rv);
    REQUIRE(olen == len);
    if (rv == 0) {
        v = tkv_value_to_json(&u.data, &err);
        REQUIRE(v != NULL);
        text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        REQUIRE(text != NULL);
        REQUIRE(strlen(text) == len);
        free(text);

        tkv_buf_init(&b);
        REQUIRE(tkv_value_from_json(v, &b, &err) == 0);
        olen = 0;
        REQUIRE(tkv_value_check_bytes(b.data, b.len, &olen, &err) == 0);
        REQUIRE(olen == len);
        tkv_buf_close(&b);
        json_decref(v);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}
