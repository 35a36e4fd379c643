/* libFuzzer target: tkv_req_decode on arbitrary payloads (the bytes a
 * client sends the node, after the 4-byte frame header).
 *
 * Any input must either fail with one of the decoder's codes and a message,
 * or decode into a request that survives encode -> decode unchanged, with
 * the second encoding byte for byte equal to the first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const void *a, size_t alen, const void *b, size_t blen)
{
    if ((a == NULL) != (b == NULL)) {
        return 0;
    }
    return a == NULL ||
           (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0));
}

static int same_str(const char *a, const char *b)
{
    if ((a == NULL) != (b == NULL)) {
        return 0;
    }
    return a == NULL || strcmp(a, b) == 0;
}

static void compare(const struct tkv_req *a, const struct tkv_req *b)
{
    size_t i;
    REQUIRE(a->id == b->id && a->op == b->op && a->eventual == b->eventual);
    REQUIRE(same(a->key, a->klen, b->key, b->klen));
    REQUIRE(same(a->value, a->vlen, b->value, b->vlen));
    REQUIRE(a->ttl_ms == b->ttl_ms && a->session == b->session &&
          a->seq == b->seq && a->ack == b->ack);
    REQUIRE(a->nkeys == b->nkeys);
    for (i = 0; i < a->nkeys; i++) {
        REQUIRE(same(a->keys[i].key, a->keys[i].klen, b->keys[i].key,
                   b->keys[i].klen));
    }
    REQUIRE(same(a->list.prefix, a->list.prefix_len, b->list.prefix,
               b->list.prefix_len));
    REQUIRE(same(a->list.start, a->list.start_len, b->list.start,
               b->list.start_len));
    REQUIRE(same(a->list.end, a->list.end_len, b->list.end, b->list.end_len));
    REQUIRE(same(a->list.cursor, a->list.cursor_len, b->list.cursor,
               b->list.cursor_len));
    REQUIRE(a->list.limit == b->list.limit && a->list.reverse == b->list.reverse);
    REQUIRE(a->list.limit >= 0 && a->list.limit <= TKV_LIST_MAX_LIMIT);
    REQUIRE(a->nchecks == b->nchecks && a->nchecks <= TKV_ATOMIC_MAX_CHECKS);
    for (i = 0; i < a->nchecks; i++) {
        REQUIRE(same(a->checks[i].key, a->checks[i].klen, b->checks[i].key,
                   b->checks[i].klen));
        REQUIRE(a->checks[i].version == b->checks[i].version);
    }
    REQUIRE(a->nmuts == b->nmuts && a->nmuts <= TKV_ATOMIC_MAX_MUTATIONS);
    for (i = 0; i < a->nmuts; i++) {
        const struct tkv_mutation *x = &a->muts[i], *y = &b->muts[i];
        REQUIRE(x->type == y->type);
        REQUIRE(x->type == TKV_CMD_SET || x->type == TKV_CMD_DELETE);
        REQUIRE(same(x->key, x->klen, y->key, y->klen));
        REQUIRE(same(x->value, x->vlen, y->value, y->vlen));
        REQUIRE(x->ttl_ms == y->ttl_ms);
    }
    REQUIRE(a->member_id == b->member_id);
    REQUIRE(same_str(a->raft_address, b->raft_address));
    REQUIRE(same_str(a->client_address, b->client_address));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tkv_req a, b;
    struct tkv_buf e1, e2;
    struct tkv_err err;
    int rv;

    tkv_err_clear(&err);
    tkv_req_init(&a);
    rv = tkv_req_decode(data, size, &a, &err);
    if (rv != 0) {
        REQUIRE(rv == TKV_EPROTO || rv == TKV_EINVALID || rv == TKV_ETOO_LARGE ||
              rv == TKV_ENOT_JSON);
        REQUIRE(err.code == rv && err.msg[0] != '\0');
        tkv_req_close(&a);
        return 0;
    }
    REQUIRE(a.op > TKV_OP_NONE && a.op < TKV_OP__COUNT);

    tkv_buf_init(&e1);
    tkv_buf_init(&e2);
    rv = tkv_req_encode(&a, &e1);
    /* a float32 key part comes back as float64: the frame may grow */
    REQUIRE(rv == 0 || rv == TKV_ETOO_LARGE);
    if (rv == 0) {
        REQUIRE(tkv_frame_get_len(e1.data) == e1.len - TKV_FRAME_HDR);
        tkv_req_init(&b);
        rv = tkv_req_decode(e1.data + TKV_FRAME_HDR, e1.len - TKV_FRAME_HDR, &b,
                            &err);
        REQUIRE(rv == 0);
        compare(&a, &b);
        REQUIRE(tkv_req_encode(&b, &e2) == 0);
        REQUIRE(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
        tkv_req_close(&b);
    }
    tkv_buf_close(&e1);
    tkv_buf_close(&e2);
    tkv_req_close(&a);
    return 0;
}
