/* Tests of proto/: the client protocol codec.
 *
 * Round trips build a message struct, encode it, check the frame header,
 * decode the payload and compare every field. Error paths write hostile
 * payloads as JSON with two escapes for what JSON cannot say:
 *   {"$bin": V}    bin holding the msgpack bytes of the JSON value V
 *   {"$raw": "hex"} bin holding those bytes
 * and check the code and the exact message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <msgpack.h>

#include "common/alloc.h"
#include "proto/proto.h"
#include "statemachine/keycodec.h"
#include "statemachine/value.h"

/* ---- helpers ---- */

struct keyb {
    uint8_t b[TKV_KEY_MAX];
    size_t n;
};

static void mkkey(const char *json, struct keyb *k)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    struct tkv_err err;
    assert_non_null(j);
    assert_int_equal(tkv_key_from_json(j, 1, k->b, &k->n, &err), 0);
    json_decref(j);
}

/* msgpack bytes of a JSON value, owned by the buf */
static void mkval(const char *json, struct tkv_buf *out)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &jerr);
    struct tkv_err err;
    assert_non_null(j);
    tkv_buf_init(out);
    assert_int_equal(tkv_value_from_json(j, out, &err), 0);
    json_decref(j);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    return c - 'a' + 10;
}

static void pack_json(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
        case JSON_OBJECT: {
            const char *k;
            json_t *x;
            json_t *bin = json_object_get(v, "$bin");
            json_t *raw = json_object_get(v, "$raw");
            if (bin != NULL) {
                struct tkv_buf b;
                struct tkv_err err;
                tkv_buf_init(&b);
                assert_int_equal(tkv_value_from_json(bin, &b, &err), 0);
                msgpack_pack_bin_with_body(pk, b.data, b.len);
                tkv_buf_close(&b);
                return;
            }
            if (raw != NULL) {
                const char *h = json_string_value(raw);
                size_t i, n = strlen(h) / 2;
                uint8_t *p = malloc(n + 1);
                for (i = 0; i < n; i++) {
                    p[i] =
                        (uint8_t)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
                }
                msgpack_pack_bin_with_body(pk, p, n);
                free(p);
                return;
            }
            msgpack_pack_map(pk, json_object_size(v));
            json_object_foreach((json_t *)v, k, x)
            {
                msgpack_pack_str_with_body(pk, k, strlen(k));
                pack_json(pk, x);
            }
            return;
        }
        case JSON_ARRAY: {
            size_t i;
            msgpack_pack_array(pk, json_array_size(v));
            for (i = 0; i < json_array_size(v); i++) {
                pack_json(pk, json_array_get(v, i));
            }
            return;
        }
        case JSON_STRING:
            msgpack_pack_str_with_body(pk, json_string_value(v),
                                       json_string_length(v));
            return;
        case JSON_INTEGER:
            msgpack_pack_int64(pk, json_integer_value(v));
            return;
        case JSON_REAL:
            msgpack_pack_double(pk, json_real_value(v));
            return;
        case JSON_TRUE:
            msgpack_pack_true(pk);
            return;
        case JSON_FALSE:
            msgpack_pack_false(pk);
            return;
        case JSON_NULL:
            msgpack_pack_nil(pk);
            return;
    }
}

/* A payload (no frame header) from JSON; the caller closes out. */
static void mp(const char *json, struct tkv_buf *out)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    msgpack_packer pk;
    if (j == NULL) {
        fail_msg("bad test JSON: %s: %s", json, jerr.text);
    }
    tkv_buf_init(out);
    msgpack_packer_init(&pk, out, tkv_buf_msgpack_write);
    pack_json(&pk, j);
    json_decref(j);
}

/* Payload from hex. */
static size_t unhex(const char *h, uint8_t *out)
{
    size_t i, n = strlen(h) / 2;
    for (i = 0; i < n; i++) {
        out[i] = (uint8_t)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
    }
    return n;
}

/* Decode a request given as JSON; returns the code, fills err. */
static int req_json(const char *json, struct tkv_req *req, struct tkv_err *err)
{
    struct tkv_buf b;
    int rv;
    mp(json, &b);
    tkv_req_init(req);
    tkv_err_clear(err);
    rv = tkv_req_decode(b.data, b.len, req, err);
    /* the payload must outlive the request: tests only keep ids/codes */
    tkv_buf_close(&b);
    return rv;
}

static void check_req_err(const char *json, int code, const char *msg)
{
    struct tkv_req req;
    struct tkv_err err;
    int rv = req_json(json, &req, &err);
    if (rv != code || (msg != NULL && strcmp(err.msg, msg) != 0)) {
        fail_msg("%s\n  got %s \"%s\"\n  want %s \"%s\"", json, tkv_errname(rv),
                 err.msg, tkv_errname(code), msg != NULL ? msg : "*");
    }
    assert_int_equal(err.code, code);
    tkv_req_close(&req);
}

static void check_req_prefix(const char *json, int code, const char *prefix)
{
    struct tkv_req req;
    struct tkv_err err;
    int rv = req_json(json, &req, &err);
    if (rv != code || strncmp(err.msg, prefix, strlen(prefix)) != 0) {
        fail_msg("%s\n  got %s \"%s\"\n  want %s \"%s...\"", json,
                 tkv_errname(rv), err.msg, tkv_errname(code), prefix);
    }
    tkv_req_close(&req);
}

static void check_req_ok(const char *json)
{
    struct tkv_req req;
    struct tkv_err err;
    int rv = req_json(json, &req, &err);
    if (rv != 0) {
        fail_msg("%s\n  got %s \"%s\"", json, tkv_errname(rv), err.msg);
    }
    tkv_req_close(&req);
}

static int rep_json(const char *json,
                    int op,
                    struct tkv_reply *rep,
                    struct tkv_err *err)
{
    struct tkv_buf b;
    int rv;
    mp(json, &b);
    tkv_reply_init(rep);
    rep->op = op;
    tkv_err_clear(err);
    rv = tkv_reply_decode(b.data, b.len, rep, err);
    tkv_buf_close(&b);
    return rv;
}

static void check_rep_err(const char *json, int op, int code, const char *msg)
{
    struct tkv_reply rep;
    struct tkv_err err;
    int rv = rep_json(json, op, &rep, &err);
    if (rv != code || (msg != NULL && strcmp(err.msg, msg) != 0)) {
        fail_msg("%s\n  got %s \"%s\"\n  want %s \"%s\"", json, tkv_errname(rv),
                 err.msg, tkv_errname(code), msg != NULL ? msg : "*");
    }
    tkv_reply_close(&rep);
}

/* Encode; check the header; return the payload (points into buf). */
static const uint8_t *frame_payload(const struct tkv_buf *b, size_t *len)
{
    assert_true(b->len >= TKV_FRAME_HDR);
    *len = b->len - TKV_FRAME_HDR;
    assert_int_equal(tkv_frame_get_len(b->data), *len);
    return b->data + TKV_FRAME_HDR;
}

static void assert_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
    assert_int_equal(alen, blen);
    if (alen > 0) {
        assert_memory_equal(a, b, alen);
    }
}

static void assert_opt_bytes(const void *a,
                             size_t alen,
                             const void *b,
                             size_t blen)
{
    assert_int_equal(a == NULL, b == NULL);
    if (a != NULL) {
        assert_bytes(a, alen, b, blen);
    }
}

static void assert_opt_str(const char *a, const char *b)
{
    assert_int_equal(a == NULL, b == NULL);
    if (a != NULL) {
        assert_string_equal(a, b);
    }
}

static void assert_req_equal(const struct tkv_req *a, const struct tkv_req *b)
{
    size_t i;
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->eventual, b->eventual);
    assert_opt_bytes(a->key, a->klen, b->key, b->klen);
    assert_opt_bytes(a->value, a->vlen, b->value, b->vlen);
    assert_int_equal(a->ttl_ms, b->ttl_ms);
    assert_int_equal(a->session, b->session);
    assert_int_equal(a->seq, b->seq);
    assert_int_equal(a->ack, b->ack);
    assert_int_equal(a->nkeys, b->nkeys);
    for (i = 0; i < a->nkeys; i++) {
        assert_bytes(a->keys[i].key, a->keys[i].klen, b->keys[i].key,
                     b->keys[i].klen);
    }
    assert_opt_bytes(a->list.prefix, a->list.prefix_len, b->list.prefix,
                     b->list.prefix_len);
    assert_opt_bytes(a->list.start, a->list.start_len, b->list.start,
                     b->list.start_len);
    assert_opt_bytes(a->list.end, a->list.end_len, b->list.end,
                     b->list.end_len);
    assert_int_equal(a->list.limit, b->list.limit);
    assert_int_equal(a->list.reverse, b->list.reverse);
    assert_opt_bytes(a->list.cursor, a->list.cursor_len, b->list.cursor,
                     b->list.cursor_len);
    assert_int_equal(a->nchecks, b->nchecks);
    for (i = 0; i < a->nchecks; i++) {
        assert_bytes(a->checks[i].key, a->checks[i].klen, b->checks[i].key,
                     b->checks[i].klen);
        assert_int_equal(a->checks[i].version, b->checks[i].version);
    }
    assert_int_equal(a->nmuts, b->nmuts);
    for (i = 0; i < a->nmuts; i++) {
        const struct tkv_mutation *x = &a->muts[i], *y = &b->muts[i];
        assert_int_equal(x->type, y->type);
        assert_bytes(x->key, x->klen, y->key, y->klen);
        if (x->type == 1) {
            assert_bytes(x->value, x->vlen, y->value, y->vlen);
            assert_int_equal(x->ttl_ms, y->ttl_ms);
        }
    }
    assert_int_equal(a->member_id, b->member_id);
    assert_opt_str(a->raft_address, b->raft_address);
    assert_opt_str(a->client_address, b->client_address);
    assert_int_equal(a->term, b->term);
}

/* Encode req, decode it back, compare, and check that the re-encoding is
 * byte for byte the same frame. */
static void roundtrip_req(const struct tkv_req *req)
{
    struct tkv_buf b, b2;
    struct tkv_req out;
    struct tkv_err err;
    const uint8_t *p;
    size_t n;
    int rv;

    tkv_buf_init(&b);
    tkv_buf_init(&b2);
    assert_int_equal(tkv_req_encode(req, &b), 0);
    p = frame_payload(&b, &n);
    tkv_req_init(&out);
    rv = tkv_req_decode(p, n, &out, &err);
    if (rv != 0) {
        fail_msg("%s: %s", tkv_op_name(req->op), err.msg);
    }
    assert_req_equal(req, &out);
    assert_int_equal(tkv_req_encode(&out, &b2), 0);
    assert_bytes(b.data, b.len, b2.data, b2.len);
    tkv_req_close(&out);
    tkv_buf_close(&b);
    tkv_buf_close(&b2);
}

static void assert_entry_equal(const struct tkv_entry_ref *a,
                               const struct tkv_entry_ref *b)
{
    assert_int_equal(a->present, b->present);
    if (a->present) {
        assert_bytes(a->key, a->klen, b->key, b->klen);
        assert_bytes(a->value, a->vlen, b->value, b->vlen);
        assert_int_equal(a->version, b->version);
    }
}

static void assert_reply_equal(const struct tkv_reply *a,
                               const struct tkv_reply *b)
{
    size_t i;
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->code, b->code);
    if (a->code != 0) {
        assert_string_equal(a->message, b->message);
        assert_opt_str(a->leader, b->leader);
        assert_opt_bytes(a->conflict, a->conflict_len, b->conflict,
                         b->conflict_len);
        return;
    }
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->nentries, b->nentries);
    for (i = 0; i < a->nentries; i++) {
        assert_entry_equal(&a->entries[i], &b->entries[i]);
    }
    assert_int_equal(a->total, b->total);
    assert_opt_str(a->cursor, b->cursor);
    if (a->op == TKV_OP_CONFIRM) {
        assert_int_equal(a->status.term, b->status.term);
    }
    if (a->op == TKV_OP_STATUS) {
        const struct tkv_status *x = &a->status, *y = &b->status;
        assert_int_equal(x->node_id, y->node_id);
        assert_string_equal(x->role, y->role);
        assert_int_equal(x->term, y->term);
        assert_int_equal(x->leader_id, y->leader_id);
        assert_opt_str(x->leader_address, y->leader_address);
        assert_int_equal(x->commit_index, y->commit_index);
        assert_int_equal(x->applied_index, y->applied_index);
        assert_int_equal(x->snapshot_index, y->snapshot_index);
        assert_int_equal(x->keys, y->keys);
        assert_int_equal(x->data_bytes, y->data_bytes);
        assert_int_equal(x->sm_time_ms, y->sm_time_ms);
        assert_int_equal(x->connections, y->connections);
        assert_int_equal(x->uptime_ms, y->uptime_ms);
    }
    assert_int_equal(a->nmembers, b->nmembers);
    for (i = 0; i < a->nmembers; i++) {
        assert_int_equal(a->members[i].id, b->members[i].id);
        assert_string_equal(a->members[i].raft_address,
                            b->members[i].raft_address);
        assert_opt_str(a->members[i].client_address,
                       b->members[i].client_address);
        assert_string_equal(a->members[i].role, b->members[i].role);
    }
}

static void roundtrip_reply(const struct tkv_reply *rep, int op)
{
    struct tkv_buf b, b2;
    struct tkv_reply out;
    struct tkv_err err;
    const uint8_t *p;
    size_t n;
    uint64_t id = 0;
    int rv;

    tkv_buf_init(&b);
    tkv_buf_init(&b2);
    assert_int_equal(tkv_reply_encode(rep, &b), 0);
    p = frame_payload(&b, &n);
    assert_int_equal(tkv_reply_peek_id(p, n, &id, &err), 0);
    assert_int_equal(id, rep->id);
    tkv_reply_init(&out);
    out.op = op;
    rv = tkv_reply_decode(p, n, &out, &err);
    if (rv != 0) {
        fail_msg("%s reply: %s", tkv_op_name(op), err.msg);
    }
    assert_reply_equal(rep, &out);
    assert_int_equal(tkv_reply_encode(&out, &b2), 0);
    assert_bytes(b.data, b.len, b2.data, b2.len);
    tkv_reply_close(&out);
    tkv_buf_close(&b);
    tkv_buf_close(&b2);
}

/* ---- ops, frames ---- */

static void test_op_names(void **state)
{
    int op;
    (void)state;
    for (op = TKV_OP_NONE + 1; op < TKV_OP__COUNT; op++) {
        const char *name = tkv_op_name(op);
        assert_int_equal(tkv_op_lookup(name, strlen(name)), op);
    }
    assert_string_equal(tkv_op_name(TKV_OP_GET_MANY), "get_many");
    assert_string_equal(tkv_op_name(TKV_OP_NONE), "?");
    assert_string_equal(tkv_op_name(TKV_OP__COUNT), "?");
    assert_string_equal(tkv_op_name(-5), "?");
    assert_int_equal(tkv_op_lookup("ge", 2), TKV_OP_NONE);
    assert_int_equal(tkv_op_lookup("gets", 4), TKV_OP_NONE);
    assert_int_equal(tkv_op_lookup("", 0), TKV_OP_NONE);
    assert_true(tkv_op_is_write(TKV_OP_SET));
    assert_true(tkv_op_is_write(TKV_OP_DELETE));
    assert_true(tkv_op_is_write(TKV_OP_ATOMIC));
    assert_false(tkv_op_is_write(TKV_OP_GET));
    assert_false(tkv_op_is_write(TKV_OP_LIST));
    assert_false(tkv_op_is_write(TKV_OP_MEMBER_ADD));
    assert_false(tkv_op_is_write(TKV_OP_NONE));
    assert_false(tkv_op_is_write(99));
}

static void test_frame_len(void **state)
{
    uint8_t h[TKV_FRAME_HDR];
    (void)state;
    tkv_frame_put_len(h, 0x01020304u);
    assert_int_equal(h[0], 1);
    assert_int_equal(h[3], 4);
    assert_int_equal(tkv_frame_get_len(h), 0x01020304u);
    tkv_frame_put_len(h, 0xffffffffu);
    assert_int_equal(tkv_frame_get_len(h), 0xffffffffu);
    tkv_frame_put_len(h, 0);
    assert_int_equal(tkv_frame_get_len(h), 0);
}

/* ---- request round trips ---- */

static void test_req_get(void **state)
{
    struct tkv_req r;
    struct keyb k;
    (void)state;
    mkkey("[\"notes\", \"a\\u0000b\", 42, -1.5, true, false]", &k);
    tkv_req_init(&r);
    r.id = 7;
    r.op = TKV_OP_GET;
    r.key = k.b;
    r.klen = k.n;
    roundtrip_req(&r);
    r.eventual = 1;
    r.id = UINT64_MAX;
    roundtrip_req(&r);
    tkv_req_close(&r);
}

static void test_req_get_many(void **state)
{
    static struct keyb ks[TKV_GET_MANY_MAX];
    struct tkv_keyref refs[TKV_GET_MANY_MAX];
    struct tkv_req r;
    char json[64];
    size_t i;
    (void)state;
    for (i = 0; i < TKV_GET_MANY_MAX; i++) {
        snprintf(json, sizeof json, "[\"k\", %zu]", i);
        mkkey(json, &ks[i]);
        refs[i].key = ks[i].b;
        refs[i].klen = ks[i].n;
    }
    tkv_req_init(&r);
    r.id = 1;
    r.op = TKV_OP_GET_MANY;
    r.keys = refs;
    r.nkeys = 1;
    roundtrip_req(&r);
    r.nkeys = TKV_GET_MANY_MAX;
    r.eventual = 1;
    roundtrip_req(&r);
}

static void test_req_list(void **state)
{
    struct tkv_req r;
    struct keyb p, s, e, empty;
    static const char cursor[] = "AQAxMjM0NTY3OAJub3RlcwA";
    (void)state;
    mkkey("[\"notes\"]", &p);
    mkkey("[\"notes\", \"b\"]", &s);
    mkkey("[\"notes\", \"n\"]", &e);
    mkkey("[]", &empty);
    assert_int_equal(empty.n, 0);

    tkv_req_init(&r);
    r.id = 3;
    r.op = TKV_OP_LIST;
    r.list.prefix = p.b;
    r.list.prefix_len = p.n;
    roundtrip_req(&r); /* defaults: nothing but the prefix on the wire */

    r.list.start = s.b;
    r.list.start_len = s.n;
    r.list.end = e.b;
    r.list.end_len = e.n;
    r.list.limit = 1000;
    r.list.reverse = 1;
    r.list.cursor = cursor;
    r.list.cursor_len = strlen(cursor);
    r.eventual = 1;
    roundtrip_req(&r);

    /* prefix [] selects everything: present with length 0 */
    r.list.prefix = empty.b;
    r.list.prefix_len = 0;
    r.list.limit = 1;
    roundtrip_req(&r);

    /* no selector at all still encodes (sm refuses it, not the codec) */
    memset(&r.list, 0, sizeof r.list);
    roundtrip_req(&r);
}

static void test_req_set_delete(void **state)
{
    struct tkv_req r;
    struct keyb k;
    struct tkv_buf v;
    (void)state;
    mkkey("[\"users\", \"john\", \"preferences\"]", &k);
    mkval("{\"theme\": \"dark\", \"n\": [1, 2.5, null, true]}", &v);

    tkv_req_init(&r);
    r.id = 10;
    r.op = TKV_OP_SET;
    r.key = k.b;
    r.klen = k.n;
    r.value = v.data;
    r.vlen = v.len;
    roundtrip_req(&r);
    r.ttl_ms = 1800 * 1000;
    r.session = 0x1234567890abcdefULL;
    r.seq = 5;
    r.ack = 3;
    roundtrip_req(&r);

    r.op = TKV_OP_DELETE;
    r.value = NULL;
    r.vlen = 0;
    r.ttl_ms = 0;
    roundtrip_req(&r);
    r.session = r.seq = r.ack = 0;
    roundtrip_req(&r);
    tkv_buf_close(&v);
}

static void test_req_atomic(void **state)
{
    static struct keyb ks[TKV_ATOMIC_MAX_MUTATIONS];
    static struct tkv_check checks[TKV_ATOMIC_MAX_CHECKS];
    static struct tkv_mutation muts[TKV_ATOMIC_MAX_MUTATIONS];
    struct tkv_buf v;
    struct tkv_req r;
    char json[64];
    size_t i;
    (void)state;
    mkval("[\"x\"]", &v);
    for (i = 0; i < TKV_ATOMIC_MAX_MUTATIONS; i++) {
        snprintf(json, sizeof json, "[\"acct\", %zu]", i);
        mkkey(json, &ks[i]);
        checks[i].key = ks[i].b;
        checks[i].klen = (uint16_t)ks[i].n;
        checks[i].version = i % 3 == 0 ? 0 : (uint64_t)i << 16 | 7;
        memset(&muts[i], 0, sizeof muts[i]);
        muts[i].key = ks[i].b;
        muts[i].klen = (uint16_t)ks[i].n;
        if (i % 2 == 0) {
            muts[i].type = TKV_CMD_SET;
            muts[i].value = v.data;
            muts[i].vlen = (uint32_t)v.len;
            muts[i].ttl_ms = i % 4 == 0 ? 0 : 60000;
        } else {
            muts[i].type = TKV_CMD_DELETE;
        }
    }
    tkv_req_init(&r);
    r.id = 99;
    r.op = TKV_OP_ATOMIC;
    r.muts = muts;
    r.nmuts = 1;
    roundtrip_req(&r); /* no checks */
    r.checks = checks;
    r.nchecks = 2;
    r.nmuts = 2;
    r.session = 77;
    r.seq = 1;
    r.ack = 1;
    roundtrip_req(&r);
    r.nchecks = TKV_ATOMIC_MAX_CHECKS;
    r.nmuts = TKV_ATOMIC_MAX_MUTATIONS;
    roundtrip_req(&r);
    tkv_buf_close(&v);
}

static void test_req_admin(void **state)
{
    struct tkv_req r;
    (void)state;
    tkv_req_init(&r);
    r.id = 1;
    r.op = TKV_OP_STATUS;
    roundtrip_req(&r);
    r.op = TKV_OP_MEMBERS;
    roundtrip_req(&r);
    r.op = TKV_OP_TRANSFER;
    roundtrip_req(&r); /* node_id absent */
    r.member_id = 3;
    roundtrip_req(&r);
    r.op = TKV_OP_MEMBER_REMOVE;
    roundtrip_req(&r);
    r.op = TKV_OP_MEMBER_ADD;
    r.member_id = 4;
    r.raft_address = "127.0.0.1:9004";
    r.client_address = "127.0.0.1:7004";
    roundtrip_req(&r);
    r.raft_address = NULL;
    r.client_address = NULL;
    r.op = TKV_OP_CONFIRM;
    r.term = 9;
    r.member_id = 1;
    roundtrip_req(&r);
    r.op = TKV_OP_MEMBERS;
    r.eventual = 1;
    r.term = 0;
    r.member_id = 0;
    roundtrip_req(&r);
}

/* ---- reply round trips ---- */

static void test_reply_reads(void **state)
{
    struct tkv_reply r;
    struct tkv_entry_ref es[4];
    struct keyb k1, k2;
    struct tkv_buf v1, v2;
    (void)state;
    mkkey("[\"notes\", \"a\"]", &k1);
    mkkey("[\"notes\", 2]", &k2);
    mkval("{\"title\": \"First\"}", &v1);
    mkval("null", &v2);
    memset(es, 0, sizeof es);
    es[0] = (struct tkv_entry_ref){k1.b, k1.n, v1.data, v1.len, 1 << 16, 1};
    es[2] = (struct tkv_entry_ref){k2.b, k2.n, v2.data, v2.len, 5, 1};
    es[3] = es[0];

    tkv_reply_init(&r);
    r.id = 5;
    r.op = TKV_OP_GET;
    r.entries = es;
    r.nentries = 1;
    roundtrip_reply(&r, TKV_OP_GET);
    r.entries = &es[1]; /* nil */
    roundtrip_reply(&r, TKV_OP_GET);

    r.op = TKV_OP_GET_MANY;
    r.entries = es;
    r.nentries = 4;
    roundtrip_reply(&r, TKV_OP_GET_MANY);

    r.op = TKV_OP_LIST;
    r.entries = &es[2];
    r.nentries = 2;
    r.total = 12345;
    r.cursor = "AQAxMjM0NTY3OAJub3RlcwA";
    roundtrip_reply(&r, TKV_OP_LIST);
    r.cursor = NULL;
    r.nentries = 0;
    roundtrip_reply(&r, TKV_OP_LIST);
    tkv_buf_close(&v1);
    tkv_buf_close(&v2);
}

static void test_reply_get_nil_slot(void **state)
{
    struct tkv_reply r, out;
    struct tkv_buf b;
    struct tkv_err err;
    const uint8_t *p;
    size_t n;
    (void)state;
    /* no slot at all encodes as nil and decodes into one absent slot */
    tkv_reply_init(&r);
    r.op = TKV_OP_GET;
    tkv_buf_init(&b);
    assert_int_equal(tkv_reply_encode(&r, &b), 0);
    p = frame_payload(&b, &n);
    tkv_reply_init(&out);
    out.op = TKV_OP_GET;
    assert_int_equal(tkv_reply_decode(p, n, &out, &err), 0);
    assert_int_equal(out.nentries, 1);
    assert_int_equal(out.entries[0].present, 0);
    tkv_reply_close(&out);
    tkv_buf_close(&b);
}

static void test_reply_writes_admin(void **state)
{
    struct tkv_reply r;
    struct tkv_member ms[3] = {
        {1, "10.0.0.1:9001", "10.0.0.1:7001", "voter"},
        {2, "10.0.0.2:9001", NULL, "standby"},
        {3, "10.0.0.3:9001", "10.0.0.3:7001", "spare"},
    };
    int op;
    (void)state;
    tkv_reply_init(&r);
    r.id = 9;
    r.version = (uint64_t)123456 << 16 | 3;
    roundtrip_reply(&r, r.op = TKV_OP_SET);
    roundtrip_reply(&r, r.op = TKV_OP_DELETE);
    roundtrip_reply(&r, r.op = TKV_OP_ATOMIC);
    r.version = 0;
    for (op = TKV_OP_MEMBER_ADD; op <= TKV_OP_TRANSFER; op++) {
        r.op = op;
        roundtrip_reply(&r, op);
    }
    r.op = TKV_OP_MEMBERS;
    r.members = ms;
    r.nmembers = 3;
    roundtrip_reply(&r, TKV_OP_MEMBERS);
    r.nmembers = 0;
    roundtrip_reply(&r, TKV_OP_MEMBERS);
    r.members = NULL;

    r.op = TKV_OP_STATUS;
    r.status = (struct tkv_status){
        .node_id = 2,
        .role = "follower",
        .term = 7,
        .leader_id = 1,
        .leader_address = "10.0.0.1:7001",
        .commit_index = 1000,
        .applied_index = 999,
        .snapshot_index = 512,
        .keys = 42,
        .data_bytes = 1 << 20,
        .sm_time_ms = 1700000000000,
        .connections = 3,
        .uptime_ms = UINT64_MAX,
    };
    roundtrip_reply(&r, TKV_OP_STATUS);
    r.status.leader_address = NULL;
    r.status.leader_id = 0;
    r.status.role = "unavailable";
    r.status.sm_time_ms = -5; /* not expected, but an int64 */
    roundtrip_reply(&r, TKV_OP_STATUS);
    r.op = TKV_OP_CONFIRM;
    r.status.term = 12;
    roundtrip_reply(&r, TKV_OP_CONFIRM);
}

static void test_reply_errors(void **state)
{
    struct tkv_reply r;
    struct keyb k;
    int code;
    (void)state;
    mkkey("[\"accounts\", \"alice\"]", &k);
    tkv_reply_init(&r);
    r.id = 4;
    r.op = TKV_OP_SET;
    /* every code of the table survives the trip */
    for (code = TKV_ENOMEM; code >= TKV_EINTERNAL; code--) {
        r.code = code;
        r.message = tkv_strerror(code);
        roundtrip_reply(&r, TKV_OP_SET);
    }
    r.code = TKV_ENOT_LEADER;
    r.message = "not the leader";
    r.leader = "10.0.0.1:7001";
    roundtrip_reply(&r, TKV_OP_SET);
    r.leader = NULL;
    r.code = TKV_ECONFLICT;
    r.message = "check failed";
    r.conflict = k.b;
    r.conflict_len = k.n;
    roundtrip_reply(&r, TKV_OP_ATOMIC);
    /* error replies decode whatever op the caller names, even none */
    roundtrip_reply(&r, TKV_OP_NONE);
}

static void test_reply_error_defaults(void **state)
{
    struct tkv_reply r, out;
    struct tkv_buf b;
    struct tkv_err err;
    const uint8_t *p;
    size_t n;
    (void)state;
    tkv_reply_init(&r);
    r.code = TKV_ETIMEOUT; /* no message: the code's text goes out */
    tkv_buf_init(&b);
    assert_int_equal(tkv_reply_encode(&r, &b), 0);
    p = frame_payload(&b, &n);
    tkv_reply_init(&out);
    assert_int_equal(tkv_reply_decode(p, n, &out, &err), 0);
    assert_int_equal(out.code, TKV_ETIMEOUT);
    assert_string_equal(out.message, "timed out");
    tkv_reply_close(&out);

    /* a code outside the table goes out as ERROR, comes back INTERNAL */
    r.code = -1000;
    r.message = "odd";
    tkv_buf_reset(&b);
    assert_int_equal(tkv_reply_encode(&r, &b), 0);
    p = frame_payload(&b, &n);
    tkv_reply_init(&out);
    assert_int_equal(tkv_reply_decode(p, n, &out, &err), 0);
    assert_int_equal(out.code, TKV_EINTERNAL);
    tkv_reply_close(&out);
    tkv_buf_close(&b);

    /* "" cursor and leader_address are nil on the wire */
    tkv_reply_init(&r);
    r.op = TKV_OP_LIST;
    r.cursor = "";
    tkv_buf_init(&b);
    assert_int_equal(tkv_reply_encode(&r, &b), 0);
    p = frame_payload(&b, &n);
    tkv_reply_init(&out);
    out.op = TKV_OP_LIST;
    assert_int_equal(tkv_reply_decode(p, n, &out, &err), 0);
    assert_null(out.cursor);
    tkv_reply_close(&out);
    tkv_buf_close(&b);
}

/* ---- request error paths ---- */

static void test_req_framing_errors(void **state)
{
    static uint8_t big[TKV_FRAME_MAX + 1];
    uint8_t p[64];
    struct tkv_req req;
    struct tkv_err err;
    size_t n;
    (void)state;

    /* not a map */
    check_req_err("[1, \"get\"]", TKV_EPROTO, "request must be a msgpack map");
    check_req_err("\"get\"", TKV_EPROTO, "request must be a msgpack map");
    check_req_err("null", TKV_EPROTO, "request must be a msgpack map");

    /* empty, malformed, truncated */
    tkv_req_init(&req);
    assert_int_equal(tkv_req_decode(p, 0, &req, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "request is not msgpack (truncated)");
    n = unhex("c1", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "request is not msgpack (malformed)");

    /* a 5-byte map claiming 4 billion pairs: refused before any
     * allocation */
    n = unhex("dfffffffff", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "request is not msgpack (truncated)");
    n = unhex("81a26964dd7fffffff", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EPROTO);
    n = unhex("c6ffffffff00", p); /* bin32 claiming 4 GB */
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EPROTO);

    /* nesting: 16 containers are fine for the scan, 17 are not */
    memset(p, 0x91, 16);
    p[16] = 0xc0;
    assert_int_equal(tkv_req_decode(p, 17, &req, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "request must be a msgpack map");
    memset(p, 0x91, 17);
    p[17] = 0xc0;
    assert_int_equal(tkv_req_decode(p, 18, &req, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "request is not msgpack (nested too deep)");
    memset(p, 0x91, 16);
    p[16] = 0x90; /* an empty 17th container is too deep as well */
    assert_int_equal(tkv_req_decode(p, 17, &req, &err), TKV_EPROTO);

    /* trailing bytes: PROTO, but the id is read for the error reply */
    n = unhex("82a2696407a26f70a6737461747573c0", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "1 trailing bytes after the request");
    assert_int_equal(req.id, 7);
    tkv_req_close(&req);
    assert_int_equal(tkv_req_decode(p, n - 1, &req, &err), 0);
    assert_int_equal(req.op, TKV_OP_STATUS);
    tkv_req_close(&req);

    /* over the frame limit */
    assert_int_equal(tkv_req_decode(big, sizeof big, &req, &err),
                     TKV_ETOO_LARGE);
    {
        char want[128];
        snprintf(want, sizeof want,
                 "request of %u bytes exceeds the limit of %u bytes",
                 TKV_FRAME_MAX + 1, TKV_FRAME_MAX);
        assert_string_equal(err.msg, want);
    }
    tkv_req_close(&req);
}

static void test_req_id_op_errors(void **state)
{
    struct tkv_req req;
    struct tkv_err err;
    uint8_t p[64];
    size_t n;
    (void)state;
    check_req_err("{\"op\": \"status\"}", TKV_EINVALID,
                  "missing argument 'id': expected an unsigned integer");
    check_req_err("{\"id\": -1, \"op\": \"status\"}", TKV_EINVALID,
                  "id must be an unsigned integer");
    check_req_err("{\"id\": \"1\", \"op\": \"status\"}", TKV_EINVALID,
                  "id must be an unsigned integer");
    check_req_err("{\"id\": 1.0, \"op\": \"status\"}", TKV_EINVALID,
                  "id must be an unsigned integer");
    check_req_err("{\"id\": 1}", TKV_EINVALID,
                  "missing argument 'op': expected a string");
    check_req_err("{\"id\": 1, \"op\": 3}", TKV_EINVALID,
                  "op must be a string");
    check_req_err("{\"id\": 1, \"op\": \"xyz\"}", TKV_EINVALID,
                  "unknown op 'xyz'");
    check_req_err("{\"id\": 1, \"op\": \"GET\"}", TKV_EINVALID,
                  "unknown op 'GET'");
    check_req_err("{\"id\": 1, \"op\": \"g\\u0000t\\n\"}", TKV_EINVALID,
                  "unknown op 'g?t?'");
    check_req_err(
        "{\"id\": 1, \"op\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaa\"}",
        TKV_EINVALID,
        "unknown op 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...'");

    /* the id is kept when something else is wrong */
    assert_int_equal(req_json("{\"id\": 12, \"op\": \"nope\"}", &req, &err),
                     TKV_EINVALID);
    assert_int_equal(req.id, 12);
    tkv_req_close(&req);

    /* duplicate id / op (JSON cannot say it: hex) */
    tkv_req_init(&req);
    n = unhex("83a2696401a2696402a26f70a6737461747573", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EINVALID);
    assert_string_equal(err.msg, "duplicate argument 'id'");
    assert_int_equal(req.id, 0);
    n = unhex("83a2696401a26f70a6737461747573a26f70a6737461747573", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EINVALID);
    assert_string_equal(err.msg, "duplicate argument 'op'");
    /* duplicate argument */
    n = unhex(
        "84a2696401a26f70a87472616e73666572a76e6f64655f696401"
        "a76e6f64655f696402",
        p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EINVALID);
    assert_string_equal(err.msg,
                        "duplicate argument 'node_id' for op 'transfer'");
    /* non-string argument name */
    n = unhex("83a2696401a26f70a673746174757301c0", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), TKV_EINVALID);
    assert_string_equal(err.msg,
                        "argument names must be strings for op 'status'");
    /* id as the largest uint */
    n = unhex("82a26964cfffffffffffffffffa26f70a6737461747573", p);
    assert_int_equal(tkv_req_decode(p, n, &req, &err), 0);
    assert_int_equal(req.id, UINT64_MAX);
    tkv_req_close(&req);
}

static void test_req_unknown_and_missing(void **state)
{
    (void)state;
    check_req_err(
        "{\"id\": 1, \"op\": \"get\", \"key\": [\"a\"], "
        "\"foo\": 1}",
        TKV_EINVALID, "unknown argument 'foo' for op 'get'");
    /* arguments of another op are unknown here */
    check_req_err(
        "{\"id\": 1, \"op\": \"get\", \"key\": [\"a\"], "
        "\"ttl_ms\": 1}",
        TKV_EINVALID, "unknown argument 'ttl_ms' for op 'get'");
    check_req_err("{\"id\": 1, \"op\": \"status\", \"key\": [\"a\"]}",
                  TKV_EINVALID, "unknown argument 'key' for op 'status'");
    check_req_err(
        "{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], "
        "\"value\": {\"$bin\": 1}, \"consistency\": \"strong\"}",
        TKV_EINVALID, "unknown argument 'consistency' for op 'set'");
    check_req_err(
        "{\"id\": 1, \"op\": \"delete\", \"key\": [\"a\"], "
        "\"value\": {\"$bin\": 1}}",
        TKV_EINVALID, "unknown argument 'value' for op 'delete'");

    check_req_err("{\"id\": 1, \"op\": \"get\"}", TKV_EINVALID,
                  "missing argument 'key' for op 'get': expected a key "
                  "(array of str, number or bool parts)");
    check_req_err("{\"id\": 1, \"op\": \"get_many\"}", TKV_EINVALID,
                  "missing argument 'keys' for op 'get_many': expected an "
                  "array of 1 to 1000 keys");
    check_req_err("{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"]}",
                  TKV_EINVALID,
                  "missing argument 'value' for op 'set': expected bin (the "
                  "msgpack bytes of a JSON value)");
    check_req_err("{\"id\": 1, \"op\": \"set\", \"value\": {\"$bin\": 1}}",
                  TKV_EINVALID,
                  "missing argument 'key' for op 'set': expected a key "
                  "(array of str, number or bool parts)");
    check_req_err("{\"id\": 1, \"op\": \"delete\"}", TKV_EINVALID,
                  "missing argument 'key' for op 'delete': expected a key "
                  "(array of str, number or bool parts)");
    check_req_err("{\"id\": 1, \"op\": \"atomic\", \"checks\": []}",
                  TKV_EINVALID,
                  "missing argument 'mutations' for op 'atomic': expected "
                  "an array of 1 to 1000 mutations");
    check_req_err(
        "{\"id\": 1, \"op\": \"atomic\", \"mutations\": [[2, "
        "[\"a\"]]]}",
        TKV_EINVALID,
        "missing argument 'checks' for op 'atomic': expected an "
        "array of at most 1000 [key, version] pairs");
    check_req_err(
        "{\"id\": 1, \"op\": \"member_add\", \"node_id\": 4, "
        "\"raft_address\": \"a:1\"}",
        TKV_EINVALID,
        "missing argument 'client_address' for op 'member_add': "
        "expected a string of 1 to 255 bytes");
    check_req_err("{\"id\": 1, \"op\": \"member_remove\"}", TKV_EINVALID,
                  "missing argument 'node_id' for op 'member_remove': "
                  "expected an integer > 0");
    /* everything optional */
    check_req_ok("{\"id\": 1, \"op\": \"list\"}");
    check_req_ok("{\"id\": 1, \"op\": \"transfer\"}");
}

/* Wrong types and ranges, argument by argument. */
static void test_req_wrong_types(void **state)
{
    static const struct {
        const char *json;
        const char *msg;
    } cases[] = {
        {"{\"id\": 1, \"op\": \"get\", \"key\": [\"a\"], \"consistency\": "
         "\"weak\"}",
         "consistency must be \"strong\" or \"eventual\""},
        {"{\"id\": 1, \"op\": \"get\", \"key\": [\"a\"], \"consistency\": "
         "true}",
         "consistency must be \"strong\" or \"eventual\""},
        {"{\"id\": 1, \"op\": \"get_many\", \"keys\": []}",
         "keys must be an array of 1 to 1000 keys"},
        {"{\"id\": 1, \"op\": \"get_many\", \"keys\": [\"a\"]}",
         "keys[0]: key must be an array, not type string"},
        {"{\"id\": 1, \"op\": \"get_many\", \"keys\": {\"a\": 1}}",
         "keys must be an array of 1 to 1000 keys"},
        {"{\"id\": 1, \"op\": \"list\", \"limit\": 0}",
         "limit must be an integer between 1 and 1000"},
        {"{\"id\": 1, \"op\": \"list\", \"limit\": 1001}",
         "limit must be an integer between 1 and 1000"},
        {"{\"id\": 1, \"op\": \"list\", \"limit\": -3}",
         "limit must be an integer between 1 and 1000"},
        {"{\"id\": 1, \"op\": \"list\", \"limit\": 10.0}",
         "limit must be an integer between 1 and 1000"},
        {"{\"id\": 1, \"op\": \"list\", \"limit\": \"10\"}",
         "limit must be an integer between 1 and 1000"},
        {"{\"id\": 1, \"op\": \"list\", \"reverse\": 1}",
         "reverse must be a bool"},
        {"{\"id\": 1, \"op\": \"list\", \"cursor\": 5}",
         "cursor must be a string"},
        {"{\"id\": 1, \"op\": \"list\", \"cursor\": \"ab\\u0000c\"}",
         "cursor must not contain NUL bytes"},
        {"{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": 1}",
         "value must be bin (the msgpack bytes of a JSON value)"},
        {"{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": \"x\"}",
         "value must be bin (the msgpack bytes of a JSON value)"},
        {"{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": "
         "{\"$bin\": 1}, \"ttl_ms\": 0}",
         "ttl_ms must be an integer > 0"},
        {"{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": "
         "{\"$bin\": 1}, \"ttl_ms\": -1000}",
         "ttl_ms must be an integer > 0"},
        {"{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": "
         "{\"$bin\": 1}, \"ttl_ms\": 1.5}",
         "ttl_ms must be an integer > 0"},
        {"{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": "
         "{\"$bin\": 1}, \"session\": -1}",
         "session must be an unsigned integer"},
        {"{\"id\": 1, \"op\": \"delete\", \"key\": [\"a\"], \"seq\": "
         "\"1\"}",
         "seq must be an unsigned integer"},
        {"{\"id\": 1, \"op\": \"delete\", \"key\": [\"a\"], \"ack\": null}",
         "ack must be an unsigned integer"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": {}, \"mutations\": "
         "[[2, [\"a\"]]]}",
         "checks must be an array of at most 1000 [key, version] pairs"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [[[\"a\"]]], "
         "\"mutations\": [[2, [\"a\"]]]}",
         "checks[0] must be a [key, version] pair"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [[[\"a\"], -1]], "
         "\"mutations\": [[2, [\"a\"]]]}",
         "checks[0] version must be an unsigned integer"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [[[\"a\"], 1], "
         "[[], 1]], \"mutations\": [[2, [\"a\"]]]}",
         "checks[1]: key must not be empty"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[]}",
         "mutations must be an array of 1 to 1000 mutations"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[3, [\"a\"]]]}",
         "mutations[0] must be [1, key, value, ttl_ms] or [2, key]"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[1, [\"a\"], {\"$bin\": 1}]]}",
         "mutations[0] must be [1, key, value, ttl_ms] or [2, key]"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[2, [\"a\"], 0]]}",
         "mutations[0] must be [1, key, value, ttl_ms] or [2, key]"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[-1, [\"a\"]]]}",
         "mutations[0] must be [1, key, value, ttl_ms] or [2, key]"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[\"set\"]}",
         "mutations[0] must be [1, key, value, ttl_ms] or [2, key]"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[2, [\"a\"]], [1, [\"b\"], 5, 0]]}",
         "mutations[1] must be bin (the msgpack bytes of a JSON value)"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[1, [\"b\"], {\"$bin\": 5}, -1]]}",
         "mutations[0] ttl_ms must be an unsigned integer"},
        {"{\"id\": 1, \"op\": \"atomic\", \"checks\": [], \"mutations\": "
         "[[1, [null], {\"$bin\": 5}, 0]]}",
         "mutations[0]: key part 0 has type null; key parts must be "
         "string, number or boolean"},
        {"{\"id\": 1, \"op\": \"member_add\", \"node_id\": 0, "
         "\"raft_address\": \"a:1\", \"client_address\": \"a:2\"}",
         "node_id must be an integer > 0"},
        {"{\"id\": 1, \"op\": \"member_add\", \"node_id\": 4, "
         "\"raft_address\": \"\", \"client_address\": \"a:2\"}",
         "raft_address must be a string of 1 to 255 bytes"},
        {"{\"id\": 1, \"op\": \"member_add\", \"node_id\": 4, "
         "\"raft_address\": \"a:1\", \"client_address\": 7}",
         "client_address must be a string of 1 to 255 bytes"},
        {"{\"id\": 1, \"op\": \"member_add\", \"node_id\": 4, "
         "\"raft_address\": \"a\\u0000:1\", \"client_address\": \"a:2\"}",
         "raft_address must not contain NUL bytes"},
        {"{\"id\": 1, \"op\": \"member_remove\", \"node_id\": \"4\"}",
         "node_id must be an integer > 0"},
        {"{\"id\": 1, \"op\": \"transfer\", \"node_id\": -2}",
         "node_id must be an unsigned integer"},
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_req_err(cases[i].json, TKV_EINVALID, cases[i].msg);
    }
    check_req_ok("{\"id\": 1, \"op\": \"transfer\", \"node_id\": 0}");
    check_req_ok(
        "{\"id\": 1, \"op\": \"list\", \"limit\": 1000, "
        "\"reverse\": false, \"consistency\": \"strong\"}");
}

static void test_req_keys(void **state)
{
    char json[4200];
    struct tkv_req req;
    struct tkv_err err;
    int n;
    (void)state;
    check_req_prefix("{\"id\": 1, \"op\": \"get\", \"key\": []}", TKV_EINVALID,
                     "key: ");
    check_req_prefix("{\"id\": 1, \"op\": \"get\", \"key\": \"a\"}",
                     TKV_EINVALID, "key: ");
    check_req_prefix("{\"id\": 1, \"op\": \"get\", \"key\": [[\"a\"]]}",
                     TKV_EINVALID, "key: ");
    check_req_prefix("{\"id\": 1, \"op\": \"get\", \"key\": [{}]}",
                     TKV_EINVALID, "key: ");
    check_req_prefix(
        "{\"id\": 1, \"op\": \"set\", \"key\": [{\"$bin\": 1}],"
        " \"value\": {\"$bin\": 1}}",
        TKV_EINVALID, "key: ");
    check_req_prefix("{\"id\": 1, \"op\": \"list\", \"start\": []}",
                     TKV_EINVALID, "start: ");
    check_req_prefix("{\"id\": 1, \"op\": \"list\", \"end\": [null]}",
                     TKV_EINVALID, "end: ");
    check_req_prefix("{\"id\": 1, \"op\": \"list\", \"prefix\": 1}",
                     TKV_EINVALID, "prefix: ");
    check_req_prefix(
        "{\"id\": 1, \"op\": \"delete\", \"key\": "
        "[9007199254740993]}",
        TKV_EINVALID, "key: ");
    /* NaN and infinity can't be written in JSON: hex */
    {
        uint8_t p[64];
        size_t len = unhex(
            "83a2696401a26f70a3676574a36b657991cb7ff8000000"
            "000000",
            p);
        tkv_req_init(&req);
        assert_int_equal(tkv_req_decode(p, len, &req, &err), TKV_EINVALID);
        assert_string_equal(err.msg, "key: key part 0 is not a finite number");
        /* invalid UTF-8 in a string part */
        len = unhex("83a2696401a26f70a3676574a36b657991a1ff", p);
        assert_int_equal(tkv_req_decode(p, len, &req, &err), TKV_EINVALID);
        assert_string_equal(err.msg, "key: key part 0 is not valid UTF-8");
        tkv_req_close(&req);
    }
    /* prefix [] is allowed, and only for prefix */
    assert_int_equal(
        req_json("{\"id\": 1, \"op\": \"list\", \"prefix\": []}", &req, &err),
        0);
    assert_non_null(req.list.prefix);
    assert_int_equal(req.list.prefix_len, 0);
    assert_null(req.list.start);
    tkv_req_close(&req);

    /* a key over TKV_KEY_MAX keeps keycodec's TOO_LARGE */
    n = snprintf(json, sizeof json,
                 "{\"id\": 1, \"op\": \"get\", \"key\": [\"");
    memset(json + n, 'x', 2100);
    snprintf(json + n + 2100, sizeof json - (size_t)n - 2100, "\"]}");
    check_req_prefix(json, TKV_ETOO_LARGE, "key: key is too large");
    json[n + 2040] = '\0';
    strcat(json, "\"]}");
    check_req_ok(json);
}

static void test_req_values(void **state)
{
    struct tkv_buf b;
    struct tkv_req req;
    struct tkv_err err;
    msgpack_packer pk;
    char *big;
    size_t n = 1024 * 1024; /* JSON "..." is n + 2 bytes: 1024.00 KB */
    (void)state;

    /* too large: the seed's exact text, for set and for atomic */
    big = malloc(n);
    memset(big, 'a', n);
    tkv_buf_init(&b);
    msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "set", 3);
    msgpack_pack_str_with_body(&pk, "key", 3);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_str_with_body(&pk, "value", 5);
    msgpack_pack_bin(&pk, n + 5);
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, big, n);
    tkv_req_init(&req);
    assert_int_equal(tkv_req_decode(b.data, b.len, &req, &err), TKV_ETOO_LARGE);
    assert_string_equal(err.msg,
                        "Value size (1024.00 KB) exceeds the maximum "
                        "allowed size of 1 MB (1024 KB)");
    assert_int_equal(req.id, 3);
    tkv_req_close(&req);

    /* the largest value that fits: JSON of exactly 1 MB */
    tkv_buf_reset(&b);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 3);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "atomic", 6);
    msgpack_pack_str_with_body(&pk, "checks", 6);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_str_with_body(&pk, "mutations", 9);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_bin(&pk, n - 2 + 5);
    msgpack_pack_str(&pk, n - 2);
    msgpack_pack_str_body(&pk, big, n - 2);
    msgpack_pack_uint8(&pk, 0);
    tkv_req_init(&req);
    assert_int_equal(tkv_req_decode(b.data, b.len, &req, &err), 0);
    assert_int_equal(req.nmuts, 1);
    assert_int_equal(req.muts[0].vlen, n - 2 + 5);
    tkv_req_close(&req);
    free(big);
    tkv_buf_close(&b);

    /* not JSON: value.h's message unchanged */
    check_req_err(
        "{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": "
        "{\"$raw\": \"cb7ff8000000000000\"}}",
        TKV_ENOT_JSON, "Value is not JSON serializable: number is NaN");
    check_req_err(
        "{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], \"value\": "
        "{\"$raw\": \"\"}}",
        TKV_ENOT_JSON, "Value is not JSON serializable: empty msgpack");
    check_req_prefix(
        "{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], "
        "\"value\": {\"$raw\": \"0101\"}}",
        TKV_ENOT_JSON, "Value is not JSON serializable: ");
    check_req_prefix(
        "{\"id\": 1, \"op\": \"set\", \"key\": [\"a\"], "
        "\"value\": {\"$raw\": \"ddffffffff\"}}",
        TKV_ENOT_JSON, "Value is not JSON serializable: ");
    check_req_prefix(
        "{\"id\": 1, \"op\": \"atomic\", \"checks\": [], "
        "\"mutations\": [[1, [\"a\"], {\"$raw\": \"c400\"}, "
        "0]]}",
        TKV_ENOT_JSON, "Value is not JSON serializable: ");
}

static void test_req_counts(void **state)
{
    struct tkv_buf b;
    struct tkv_req req;
    struct tkv_err err;
    msgpack_packer pk;
    int i;
    (void)state;

    /* 1001 keys */
    tkv_buf_init(&b);
    msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "get_many", 8);
    msgpack_pack_str_with_body(&pk, "keys", 4);
    msgpack_pack_array(&pk, TKV_GET_MANY_MAX + 1);
    for (i = 0; i < TKV_GET_MANY_MAX + 1; i++) {
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int(&pk, i);
    }
    tkv_req_init(&req);
    assert_int_equal(tkv_req_decode(b.data, b.len, &req, &err), TKV_EINVALID);
    assert_string_equal(err.msg, "keys must be an array of 1 to 1000 keys");
    tkv_req_close(&req);

    /* 1001 checks, 1001 mutations */
    tkv_buf_reset(&b);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "atomic", 6);
    msgpack_pack_str_with_body(&pk, "checks", 6);
    msgpack_pack_array(&pk, TKV_ATOMIC_MAX_CHECKS + 1);
    for (i = 0; i < TKV_ATOMIC_MAX_CHECKS + 1; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int(&pk, i);
        msgpack_pack_uint8(&pk, 0);
    }
    msgpack_pack_str_with_body(&pk, "mutations", 9);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 0);
    tkv_req_init(&req);
    assert_int_equal(tkv_req_decode(b.data, b.len, &req, &err), TKV_EINVALID);
    assert_string_equal(
        err.msg,
        "checks must be an array of at most 1000 [key, version] "
        "pairs");
    tkv_req_close(&req);

    tkv_buf_reset(&b);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "op", 2);
    msgpack_pack_str_with_body(&pk, "atomic", 6);
    msgpack_pack_str_with_body(&pk, "checks", 6);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_str_with_body(&pk, "mutations", 9);
    msgpack_pack_array(&pk, TKV_ATOMIC_MAX_MUTATIONS + 1);
    for (i = 0; i < TKV_ATOMIC_MAX_MUTATIONS + 1; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint8(&pk, 2);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int(&pk, i);
    }
    tkv_req_init(&req);
    assert_int_equal(tkv_req_decode(b.data, b.len, &req, &err), TKV_EINVALID);
    assert_string_equal(err.msg,
                        "mutations must be an array of 1 to 1000 mutations");
    tkv_req_close(&req);
    tkv_buf_close(&b);
}

/* Every prefix of every valid request is refused as PROTO, never a crash,
 * and every single flipped byte decodes or fails cleanly. */
static void truncations(const struct tkv_req *r)
{
    struct tkv_buf b;
    struct tkv_req out;
    struct tkv_err err;
    const uint8_t *p;
    uint8_t *copy;
    size_t n, k;
    tkv_buf_init(&b);
    assert_int_equal(tkv_req_encode(r, &b), 0);
    p = frame_payload(&b, &n);
    for (k = 0; k < n; k++) {
        tkv_req_init(&out);
        assert_int_equal(tkv_req_decode(p, k, &out, &err), TKV_EPROTO);
        tkv_req_close(&out);
    }
    copy = malloc(n);
    for (k = 0; k < n; k++) {
        int rv;
        memcpy(copy, p, n);
        copy[k] ^= 0xff;
        tkv_req_init(&out);
        rv = tkv_req_decode(copy, n, &out, &err);
        assert_true(rv <= 0);
        tkv_req_close(&out);
    }
    free(copy);
    tkv_buf_close(&b);
}

static void test_req_truncated(void **state)
{
    struct tkv_req r;
    struct keyb k, k2;
    struct tkv_buf v;
    struct tkv_keyref refs[2];
    struct tkv_check checks[1];
    struct tkv_mutation muts[2];
    (void)state;
    mkkey("[\"a\", 1, true]", &k);
    mkkey("[\"b\"]", &k2);
    mkval("{\"x\": [1, \"y\"]}", &v);
    refs[0] = (struct tkv_keyref){k.b, k.n};
    refs[1] = (struct tkv_keyref){k2.b, k2.n};
    checks[0] = (struct tkv_check){k.b, (uint16_t)k.n, 5};
    muts[0] = (struct tkv_mutation){TKV_CMD_SET, (uint16_t)k.n, (uint32_t)v.len,
                                    k.b,         v.data,        10};
    muts[1] =
        (struct tkv_mutation){TKV_CMD_DELETE, (uint16_t)k2.n, 0, k2.b, NULL, 0};

    tkv_req_init(&r);
    r.id = 300;
    r.op = TKV_OP_GET;
    r.key = k.b;
    r.klen = k.n;
    r.eventual = 1;
    truncations(&r);
    r.op = TKV_OP_SET;
    r.value = v.data;
    r.vlen = v.len;
    r.ttl_ms = 5;
    r.session = 1;
    r.seq = 2;
    r.ack = 1;
    truncations(&r);
    r.op = TKV_OP_DELETE;
    truncations(&r);
    memset(&r, 0, sizeof r);
    r.op = TKV_OP_GET_MANY;
    r.keys = refs;
    r.nkeys = 2;
    truncations(&r);
    memset(&r, 0, sizeof r);
    r.op = TKV_OP_LIST;
    r.list.prefix = k2.b;
    r.list.prefix_len = k2.n;
    r.list.start = k.b;
    r.list.start_len = k.n;
    r.list.limit = 10;
    r.list.reverse = 1;
    r.list.cursor = "abc";
    r.list.cursor_len = 3;
    truncations(&r);
    memset(&r, 0, sizeof r);
    r.op = TKV_OP_ATOMIC;
    r.checks = checks;
    r.nchecks = 1;
    r.muts = muts;
    r.nmuts = 2;
    truncations(&r);
    memset(&r, 0, sizeof r);
    r.op = TKV_OP_MEMBER_ADD;
    r.member_id = 2;
    r.raft_address = "h:1";
    r.client_address = "h:2";
    truncations(&r);
    r.op = TKV_OP_STATUS;
    truncations(&r);
    tkv_buf_close(&v);
}

/* ---- reply error paths ---- */

static void test_reply_decode_errors(void **state)
{
    static const struct {
        int op;
        const char *json;
        const char *msg;
    } cases[] = {
        {TKV_OP_SET, "[]", "reply must be a msgpack map"},
        {TKV_OP_SET, "{\"ok\": true, \"version\": 1}",
         "missing field 'id': expected an unsigned integer"},
        {TKV_OP_SET, "{\"id\": \"x\", \"ok\": true, \"version\": 1}",
         "id must be an unsigned integer"},
        {TKV_OP_SET, "{\"id\": 1, \"version\": 1}",
         "missing field 'ok': expected a bool"},
        {TKV_OP_SET, "{\"id\": 1, \"ok\": 1, \"version\": 1}",
         "ok must be a bool"},
        {TKV_OP_SET, "{\"id\": 1, \"ok\": true}",
         "missing field 'version' in the 'set' reply: expected an unsigned "
         "integer"},
        {TKV_OP_SET, "{\"id\": 1, \"ok\": true, \"version\": -1}",
         "version must be an unsigned integer"},
        {TKV_OP_SET, "{\"id\": 1, \"ok\": true, \"version\": 1, \"x\": 1}",
         "unknown field 'x' in the 'set' reply"},
        {TKV_OP_SET,
         "{\"id\": 1, \"ok\": true, \"version\": 1, \"code\": "
         "\"INVALID\"}",
         "unknown field 'code' in the 'set' reply"},
        {TKV_OP_GET, "{\"id\": 1, \"ok\": true, \"entry\": []}",
         "entry must be [key, value, version]"},
        {TKV_OP_GET, "{\"id\": 1, \"ok\": true, \"entry\": [[\"a\"], 1, 1]}",
         "entry must be bin (the msgpack bytes of a JSON value)"},
        {TKV_OP_GET,
         "{\"id\": 1, \"ok\": true, \"entry\": [[\"a\"], "
         "{\"$bin\": 1}, -1]}",
         "entry version must be an unsigned integer"},
        {TKV_OP_GET,
         "{\"id\": 1, \"ok\": true, \"entry\": [[], "
         "{\"$bin\": 1}, 1]}",
         "entry: key must not be empty"},
        {TKV_OP_GET,
         "{\"id\": 1, \"ok\": true, \"entry\": [[\"a\"], "
         "{\"$raw\": \"c1\"}, 1]}",
         NULL},
        {TKV_OP_GET_MANY, "{\"id\": 1, \"ok\": true, \"entries\": 5}",
         "entries must be an array of at most 1000 entries or nils"},
        {TKV_OP_GET_MANY,
         "{\"id\": 1, \"ok\": true, \"entries\": [null, "
         "7]}",
         "entries[1] must be [key, value, version]"},
        {TKV_OP_LIST,
         "{\"id\": 1, \"ok\": true, \"items\": [null], "
         "\"total\": 0, \"cursor\": null}",
         "items[0] must be [key, value, version]"},
        {TKV_OP_LIST, "{\"id\": 1, \"ok\": true, \"items\": [], \"total\": 0}",
         "missing field 'cursor' in the 'list' reply: expected a string or "
         "nil"},
        {TKV_OP_LIST,
         "{\"id\": 1, \"ok\": true, \"items\": [], \"total\": 0, "
         "\"cursor\": 3}",
         "cursor must be a string or nil"},
        {TKV_OP_STATUS, "{\"id\": 1, \"ok\": true}",
         "missing field 'node_id' in the 'status' reply: expected an "
         "unsigned integer"},
        {TKV_OP_MEMBERS, "{\"id\": 1, \"ok\": true, \"members\": [1]}",
         "members[0] must be a map"},
        {TKV_OP_MEMBERS,
         "{\"id\": 1, \"ok\": true, \"members\": [{\"id\": "
         "1, \"raft_address\": \"a\", \"client_address\": "
         "null}]}",
         "missing field 'role' in members[0]: expected a string"},
        {TKV_OP_MEMBERS,
         "{\"id\": 1, \"ok\": true, \"members\": [{\"id\": "
         "1, \"raft_address\": \"a\", \"client_address\": "
         "null, \"role\": 5}]}",
         "members[0].role must be a string"},
        {TKV_OP_MEMBERS,
         "{\"id\": 1, \"ok\": true, \"members\": [{\"id\": "
         "1, \"raft_address\": \"a\", \"client_address\": "
         "null, \"role\": \"voter\", \"zone\": 1}]}",
         "unknown field 'zone' in members[0]"},
        {TKV_OP_MEMBER_ADD, "{\"id\": 1, \"ok\": true, \"version\": 1}",
         "unknown field 'version' in the 'member_add' reply"},
        {TKV_OP_SET, "{\"id\": 1, \"ok\": false}",
         "missing field 'code' in the error reply: expected an error code "
         "word"},
        {TKV_OP_SET, "{\"id\": 1, \"ok\": false, \"code\": \"INVALID\"}",
         "missing field 'message' in the error reply: expected a string"},
        {TKV_OP_SET,
         "{\"id\": 1, \"ok\": false, \"code\": \"OK\", "
         "\"message\": \"\"}",
         "error reply with code OK"},
        {TKV_OP_SET,
         "{\"id\": 1, \"ok\": false, \"code\": 3, \"message\": "
         "\"\"}",
         "code must be an error code word"},
        {TKV_OP_SET,
         "{\"id\": 1, \"ok\": false, \"code\": \"CONFLICT\", "
         "\"message\": \"\", \"conflict\": \"a\"}",
         "conflict: key must be an array, not type string"},
        {TKV_OP_SET,
         "{\"id\": 1, \"ok\": false, \"code\": \"NOT_LEADER\", "
         "\"message\": \"\", \"leader\": null}",
         "leader must be a string"},
        {TKV_OP_SET,
         "{\"id\": 1, \"ok\": false, \"code\": \"NOT_LEADER\", "
         "\"message\": \"\", \"version\": 3}",
         "unknown field 'version' in the error reply"},
    };
    struct tkv_reply rep;
    struct tkv_err err;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_rep_err(cases[i].json, cases[i].op, TKV_EPROTO, cases[i].msg);
    }
    /* an unknown code word is an internal error, not a broken reply */
    assert_int_equal(rep_json("{\"id\": 1, \"ok\": false, \"code\": "
                              "\"FROBNICATED\", \"message\": \"m\"}",
                              TKV_OP_SET, &rep, &err),
                     0);
    assert_int_equal(rep.code, TKV_EINTERNAL);
    assert_string_equal(rep.message, "m");
    tkv_reply_close(&rep);
    /* "" reads as nil where nil is allowed */
    assert_int_equal(rep_json("{\"id\": 1, \"ok\": true, \"items\": [], "
                              "\"total\": 0, \"cursor\": \"\"}",
                              TKV_OP_LIST, &rep, &err),
                     0);
    assert_null(rep.cursor);
    tkv_reply_close(&rep);
    /* an ok reply needs the op */
    assert_int_equal(
        rep_json("{\"id\": 1, \"ok\": true}", TKV_OP_NONE, &rep, &err),
        TKV_EINVALID);
    assert_int_equal(rep.id, 1);
    tkv_reply_close(&rep);
}

static void test_reply_hostile(void **state)
{
    struct tkv_buf b;
    struct tkv_reply rep;
    struct tkv_err err;
    msgpack_packer pk;
    uint8_t p[64];
    uint64_t id = 0;
    size_t n;
    int i;
    (void)state;

    /* 1001 list items */
    tkv_buf_init(&b);
    msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "ok", 2);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "items", 5);
    msgpack_pack_array(&pk, 1001);
    for (i = 0; i < 1001; i++) {
        msgpack_pack_nil(&pk);
    }
    msgpack_pack_str_with_body(&pk, "total", 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "cursor", 6);
    msgpack_pack_nil(&pk);
    tkv_reply_init(&rep);
    rep.op = TKV_OP_LIST;
    assert_int_equal(tkv_reply_decode(b.data, b.len, &rep, &err), TKV_EPROTO);
    assert_string_equal(err.msg,
                        "items must be an array of at most 1000 "
                        "[key, value, version] entries");
    tkv_reply_close(&rep);

    /* 1025 members */
    tkv_buf_reset(&b);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "ok", 2);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "members", 7);
    msgpack_pack_array(&pk, 1025);
    for (i = 0; i < 1025; i++) {
        msgpack_pack_map(&pk, 0);
    }
    tkv_reply_init(&rep);
    rep.op = TKV_OP_MEMBERS;
    assert_int_equal(tkv_reply_decode(b.data, b.len, &rep, &err), TKV_EPROTO);
    tkv_reply_close(&rep);
    tkv_buf_close(&b);

    /* framing, as for requests */
    tkv_reply_init(&rep);
    rep.op = TKV_OP_GET;
    n = unhex("dfffffffff", p);
    assert_int_equal(tkv_reply_decode(p, n, &rep, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "reply is not msgpack (truncated)");
    n = unhex("82a2696409a26f6bc3c3", p);
    assert_int_equal(tkv_reply_decode(p, n, &rep, &err), TKV_EPROTO);
    assert_string_equal(err.msg, "1 trailing bytes after the reply");
    assert_int_equal(rep.id, 9);
    tkv_reply_close(&rep);

    /* peek */
    n = unhex("82a2696409a26f6bc3", p);
    assert_int_equal(tkv_reply_peek_id(p, n, &id, &err), 0);
    assert_int_equal(id, 9);
    n = unhex("81a26f6bc3", p);
    assert_int_equal(tkv_reply_peek_id(p, n, &id, &err), TKV_EPROTO);
    n = unhex("81a269643f", p);
    assert_int_equal(tkv_reply_peek_id(p, n, &id, &err), 0);
    assert_int_equal(id, 63);
    n = unhex("91c0", p);
    assert_int_equal(tkv_reply_peek_id(p, n, &id, &err), TKV_EPROTO);
    assert_int_equal(tkv_reply_peek_id(p, 0, &id, &err), TKV_EPROTO);
}

/* Every prefix of every reply fails as PROTO. */
static void reply_truncations(const struct tkv_reply *r)
{
    struct tkv_buf b;
    struct tkv_reply out;
    struct tkv_err err;
    const uint8_t *p;
    size_t n, k;
    tkv_buf_init(&b);
    assert_int_equal(tkv_reply_encode(r, &b), 0);
    p = frame_payload(&b, &n);
    for (k = 0; k < n; k++) {
        tkv_reply_init(&out);
        out.op = r->op;
        assert_int_equal(tkv_reply_decode(p, k, &out, &err), TKV_EPROTO);
        tkv_reply_close(&out);
    }
    tkv_buf_close(&b);
}

static void test_reply_truncated(void **state)
{
    struct tkv_reply r;
    struct tkv_entry_ref es[2];
    struct tkv_member ms[1] = {{1, "a:1", NULL, "voter"}};
    struct keyb k;
    struct tkv_buf v;
    (void)state;
    mkkey("[\"a\", 2]", &k);
    mkval("[1, 2]", &v);
    es[0] = (struct tkv_entry_ref){k.b, k.n, v.data, v.len, 77, 1};
    es[1] = (struct tkv_entry_ref){0};
    tkv_reply_init(&r);
    r.id = 1000;
    r.op = TKV_OP_GET;
    r.entries = es;
    r.nentries = 1;
    reply_truncations(&r);
    r.op = TKV_OP_GET_MANY;
    r.nentries = 2;
    reply_truncations(&r);
    r.op = TKV_OP_LIST;
    r.nentries = 1;
    r.total = 1;
    r.cursor = "xyz";
    reply_truncations(&r);
    r.op = TKV_OP_MEMBERS;
    r.members = ms;
    r.nmembers = 1;
    reply_truncations(&r);
    r.op = TKV_OP_STATUS;
    r.status.role = "leader";
    reply_truncations(&r);
    r.code = TKV_ECONFLICT;
    r.message = "m";
    r.conflict = k.b;
    r.conflict_len = k.n;
    r.leader = "x:1";
    reply_truncations(&r);
    tkv_buf_close(&v);
}

/* ---- encoder limits ---- */

static void test_encode_too_large(void **state)
{
    struct tkv_buf b;
    struct tkv_req r;
    struct tkv_reply rep;
    struct keyb k;
    uint8_t *v = calloc(1, TKV_FRAME_MAX);
    (void)state;
    mkkey("[\"a\"]", &k);
    tkv_buf_init(&b);
    assert_int_equal(tkv_buf_append(&b, "xy", 2), 0);
    tkv_req_init(&r);
    r.op = TKV_OP_SET;
    r.key = k.b;
    r.klen = k.n;
    r.value = v;
    r.vlen = TKV_FRAME_MAX;
    assert_int_equal(tkv_req_encode(&r, &b), TKV_ETOO_LARGE);
    assert_int_equal(b.len, 2); /* untouched */
    assert_false(b.failed);
    r.vlen = TKV_FRAME_MAX - 64;
    assert_int_equal(tkv_req_encode(&r, &b), 0);
    assert_true(b.len - 2 - TKV_FRAME_HDR <= TKV_FRAME_MAX);

    tkv_reply_init(&rep);
    rep.code = TKV_ETOO_LARGE;
    rep.message = "reply too large";
    b.len = 2;
    assert_int_equal(tkv_reply_encode(&rep, &b), 0);
    assert_int_equal(tkv_frame_get_len(b.data + 2), b.len - 2 - 4);
    tkv_buf_close(&b);
    free(v);
}

/* ---- allocation failures ---- */

static void test_alloc_failures(void **state)
{
    static struct keyb ks[200];
    static struct tkv_mutation muts[200];
    struct tkv_buf v, b, b2;
    struct tkv_req r, out;
    struct tkv_err err;
    const uint8_t *p;
    char json[64];
    size_t n, i;
    long fail_at;
    int rv, saw_nomem = 0;
    (void)state;
    mkval("{\"a\": \"b\"}", &v);
    for (i = 0; i < 200; i++) {
        snprintf(json, sizeof json, "[\"some key\", %zu, \"more\"]", i);
        mkkey(json, &ks[i]);
        muts[i] = (struct tkv_mutation){TKV_CMD_SET,     (uint16_t)ks[i].n,
                                        (uint32_t)v.len, ks[i].b,
                                        v.data,          0};
    }
    tkv_req_init(&r);
    r.id = 1;
    r.op = TKV_OP_ATOMIC;
    r.muts = muts;
    r.nmuts = 200;

    /* decoding: the arena's blocks fail one after the other */
    tkv_buf_init(&b);
    assert_int_equal(tkv_req_encode(&r, &b), 0);
    p = frame_payload(&b, &n);
    for (fail_at = 0;; fail_at++) {
        tkv_req_init(&out);
        tkv_alloc_fail_after(fail_at);
        rv = tkv_req_decode(p, n, &out, &err);
        tkv_alloc_fail_reset();
        if (rv == 0) {
            assert_req_equal(&r, &out);
            tkv_req_close(&out);
            break;
        }
        assert_int_equal(rv, TKV_ENOMEM);
        assert_string_equal(err.msg, "out of memory");
        assert_int_equal(out.id, 1);
        saw_nomem = 1;
        tkv_req_close(&out);
    }
    assert_true(saw_nomem);

    /* encoding: the buffer's growth fails; out is cut back */
    for (fail_at = 0;; fail_at++) {
        tkv_buf_init(&b2);
        tkv_alloc_fail_after(fail_at);
        rv = tkv_req_encode(&r, &b2);
        tkv_alloc_fail_reset();
        if (rv == 0) {
            assert_bytes(b.data, b.len, b2.data, b2.len);
            tkv_buf_close(&b2);
            break;
        }
        assert_int_equal(rv, TKV_ENOMEM);
        assert_int_equal(b2.len, 0);
        tkv_buf_close(&b2);
    }
    assert_true(fail_at > 0);

    /* reply decoding */
    {
        struct tkv_reply rep, rout;
        static struct tkv_entry_ref es[200];
        for (i = 0; i < 200; i++) {
            es[i] =
                (struct tkv_entry_ref){ks[i].b, ks[i].n, v.data, v.len, i, 1};
        }
        tkv_reply_init(&rep);
        rep.op = TKV_OP_LIST;
        rep.entries = es;
        rep.nentries = 200;
        rep.cursor = "c";
        tkv_buf_reset(&b);
        assert_int_equal(tkv_reply_encode(&rep, &b), 0);
        p = frame_payload(&b, &n);
        saw_nomem = 0;
        for (fail_at = 0;; fail_at++) {
            tkv_reply_init(&rout);
            rout.op = TKV_OP_LIST;
            tkv_alloc_fail_after(fail_at);
            rv = tkv_reply_decode(p, n, &rout, &err);
            tkv_alloc_fail_reset();
            if (rv == 0) {
                assert_reply_equal(&rep, &rout);
                tkv_reply_close(&rout);
                break;
            }
            assert_int_equal(rv, TKV_ENOMEM);
            saw_nomem = 1;
            tkv_reply_close(&rout);
        }
        assert_true(saw_nomem);
    }
    tkv_buf_close(&b);
    tkv_buf_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_frame_len),
        cmocka_unit_test(test_req_get),
        cmocka_unit_test(test_req_get_many),
        cmocka_unit_test(test_req_list),
        cmocka_unit_test(test_req_set_delete),
        cmocka_unit_test(test_req_atomic),
        cmocka_unit_test(test_req_admin),
        cmocka_unit_test(test_reply_reads),
        cmocka_unit_test(test_reply_get_nil_slot),
        cmocka_unit_test(test_reply_writes_admin),
        cmocka_unit_test(test_reply_errors),
        cmocka_unit_test(test_reply_error_defaults),
        cmocka_unit_test(test_req_framing_errors),
        cmocka_unit_test(test_req_id_op_errors),
        cmocka_unit_test(test_req_unknown_and_missing),
        cmocka_unit_test(test_req_wrong_types),
        cmocka_unit_test(test_req_keys),
        cmocka_unit_test(test_req_values),
        cmocka_unit_test(test_req_counts),
        cmocka_unit_test(test_req_truncated),
        cmocka_unit_test(test_reply_decode_errors),
        cmocka_unit_test(test_reply_hostile),
        cmocka_unit_test(test_reply_truncated),
        cmocka_unit_test(test_encode_too_large),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
