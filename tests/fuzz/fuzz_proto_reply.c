/* libFuzzer target: tkv_reply_decode on arbitrary payloads (the bytes a
 * possibly hostile node sends the client).
 *
 * Input: one byte choosing the op the client expects (modulo the number of
 * ops, TKV_OP_NONE included), then the payload. Any input must either fail
 * cleanly or decode into a reply that survives encode -> decode unchanged,
 * with the second encoding byte for byte equal to the first.
 * tkv_reply_peek_id must agree with the decoder on the id. */
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

static void compare(const struct tkv_reply *a, const struct tkv_reply *b)
{
    const struct tkv_status *x = &a->status, *y = &b->status;
    size_t i;

    REQUIRE(a->id == b->id && a->code == b->code);
    REQUIRE(same_str(a->message, b->message));
    REQUIRE(same_str(a->leader, b->leader));
    REQUIRE(same(a->conflict, a->conflict_len, b->conflict, b->conflict_len));
    REQUIRE(a->version == b->version && a->total == b->total);
    REQUIRE(same_str(a->cursor, b->cursor));
    REQUIRE(a->nentries == b->nentries);
    for (i = 0; i < a->nentries; i++) {
        const struct tkv_entry_ref *e = &a->entries[i], *f = &b->entries[i];
        REQUIRE(e->present == f->present);
        if (e->present) {
            REQUIRE(same(e->key, e->klen, f->key, f->klen));
            REQUIRE(same(e->value, e->vlen, f->value, f->vlen));
            REQUIRE(e->version == f->version);
        }
    }
    REQUIRE(x->node_id == y->node_id && x->term == y->term &&
          x->leader_id == y->leader_id && x->commit_index == y->commit_index &&
          x->applied_index == y->applied_index &&
          x->snapshot_index == y->snapshot_index && x->keys == y->keys &&
          x->data_bytes == y->data_bytes && x->sm_time_ms == y->sm_time_ms &&
          x->connections == y->connections && x->uptime_ms == y->uptime_ms);
    REQUIRE(same_str(x->role, y->role));
    REQUIRE(same_str(x->leader_address, y->leader_address));
    REQUIRE(a->nmembers == b->nmembers);
    for (i = 0; i < a->nmembers; i++) {
        REQUIRE(a->members[i].id == b->members[i].id);
        REQUIRE(same_str(a->members[i].raft_address, b->members[i].raft_address));
        REQUIRE(same_str(a->members[i].client_address,
                       b->members[i].client_address));
        REQUIRE(same_str(a->members[i].role, b->members[i].role));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tkv_reply a, b;
    struct tkv_buf e1, e2;
    struct tkv_err err;
    uint64_t id = 0;
    int op;
    int rv;

    if (size < 1) {
        return 0;
    }
    op = data[0] % TKV_OP__COUNT;
    data++;
    size--;

    tkv_err_clear(&err);
    tkv_reply_init(&a);
    a.op = op;
    rv = tkv_reply_decode(data, size, &a, &err);
    if (rv != 0) {
        REQUIRE(rv == TKV_EPROTO || rv == TKV_ETOO_LARGE ||
              (rv == TKV_EINVALID && op == TKV_OP_NONE));
        REQUIRE(err.code == rv && err.msg[0] != '\0');
        tkv_reply_close(&a);
        return 0;
    }
    REQUIRE(tkv_reply_peek_id(data, size, &id, &err) == 0 && id == a.id);
    REQUIRE(a.code <= 0 && (a.code != 0 || op != TKV_OP_NONE));

    tkv_buf_init(&e1);
    tkv_buf_init(&e2);
    rv = tkv_reply_encode(&a, &e1);
    REQUIRE(rv == 0 || rv == TKV_ETOO_LARGE);
    if (rv == 0) {
        tkv_reply_init(&b);
        b.op = op;
        rv = tkv_reply_decode(e1.data + TKV_FRAME_HDR, e1.len - TKV_FRAME_HDR,
                              &b, &err);
        REQUIRE(rv == 0);
        compare(&a, &b);
        REQUIRE(tkv_reply_encode(&b, &e2) == 0);
        REQUIRE(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
        tkv_reply_close(&b);
    }
    tkv_buf_close(&e1);
    tkv_buf_close(&e2);
    tkv_reply_close(&a);
    return 0;
}
