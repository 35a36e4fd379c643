/* libFuzzer target: snapshot restore. Arbitrary bytes must either restore
 * or fail with TKV_ECORRUPT leaving the old state intact; a restored state
 * must snapshot and restore again to the same digest. */
#include <stdint.h>
#include <stdlib.h>

#include "common/buf.h"
#include "statemachine/sm.h"

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tkv_sm sm, again;
    struct tkv_buf b;
    msgpack_packer pk;
    uint64_t before;
    int rv;

    REQUIRE(tkv_sm_init(&sm, NULL) == 0);
    before = tkv_sm_hash(&sm);
    rv = tkv_sm_restore(&sm, data, size, NULL);
    if (rv != 0) {
        REQUIRE(rv == TKV_ECORRUPT);
        REQUIRE(tkv_sm_hash(&sm) == before);
        tkv_sm_close(&sm);
        return 0;
    }
    tkv_buf_init(&b);
    msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
    REQUIRE(tkv_sm_snapshot(&sm, &pk) == 0);
    REQUIRE(tkv_sm_init(&again, NULL) == 0);
    REQUIRE(tkv_sm_restore(&again, b.data, b.len, NULL) == 0);
    REQUIRE(tkv_sm_hash(&again) == tkv_sm_hash(&sm));
    tkv_sm_close(&again);
    tkv_buf_close(&b);
    tkv_sm_close(&sm);
    return 0;
}
