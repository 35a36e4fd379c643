/* Test driver for the state machine (see smtest.h). */
#include "smtest.h"

#include <assert.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "statemachine/value.h"

void smt_init(struct smt *t)
{
    int rv = tkv_sm_init(&t->sm, NULL);
    assert(rv == 0);
    (void)rv;
    t->index = 0;
    t->ts = 1000;
}

void smt_close(struct smt *t)
{
    tkv_sm_close(&t->sm);
}

size_t smt_key(const char *json, uint8_t out[TKV_KEY_MAX])
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &jerr);
    size_t len = 0;
    int rv;
    assert(j != NULL);
    rv = tkv_key_from_json(j, 1, out, &len, NULL);
    assert(rv == 0);
    (void)rv;
    json_decref(j);
    return len;
}

struct tkv_result smt_apply_cmd(struct smt *t, const struct tkv_cmd *c)
{
    struct tkv_buf body, entry;
    const struct tkv_result *res;
    struct tkv_result r;
    size_t n;
    int rv;

    tkv_buf_init(&body);
    tkv_buf_init(&entry);
    rv = tkv_cmd_encode(c, &body);
    assert(rv == 0);
    rv = tkv_entry_encode(t->ts, 1, body.data, body.len, &entry);
    assert(rv == 0);
    rv = tkv_sm_apply(&t->sm, ++t->index, entry.data, entry.len, &res, &n,
                      NULL);
    assert(rv == 0 && n == 1);
    (void)rv;
    r = res[0];
    tkv_buf_close(&body);
    tkv_buf_close(&entry);
    return r;
}

struct tkv_result smt_set_s(struct smt *t, const char *key, const char *value,
                            uint64_t ttl_ms, uint64_t session, uint64_t seq,
                            uint64_t ack)
{
    uint8_t k[TKV_KEY_MAX];
    struct tkv_buf v;
    struct tkv_cmd c;
    struct tkv_result r;
    json_t *j = json_loads(value, JSON_DECODE_ANY, NULL);
    int rv;

    assert(j != NULL);
    tkv_buf_init(&v);
    rv = tkv_value_from_json(j, &v, NULL);
    assert(rv == 0);
    (void)rv;
    json_decref(j);
    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_SET;
    c.session = session;
    c.seq = seq;
    c.ack = ack;
    c.mut.type = TKV_CMD_SET;
    c.mut.key = k;
    c.mut.klen = (uint16_t)smt_key(key, k);
    c.mut.value = v.data;
    c.mut.vlen = (uint32_t)v.len;
    c.mut.ttl_ms = ttl_ms;
    r = smt_apply_cmd(t, &c);
    tkv_buf_close(&v);
    return r;
}

struct tkv_result smt_set(struct smt *t, const char *key, const char *value,
                          uint64_t ttl_ms)
{
    return smt_set_s(t, key, value, ttl_ms, 0, 0, 0);
}

struct tkv_result smt_del(struct smt *t, const char *key)
{
    uint8_t k[TKV_KEY_MAX];
    struct tkv_cmd c;
    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_DELETE;
    c.mut.type = TKV_CMD_DELETE;
    c.mut.key = k;
    c.mut.klen = (uint16_t)smt_key(key, k);
    return smt_apply_cmd(t, &c);
}

void smt_tick(struct smt *t, int64_t ts)
{
    struct tkv_cmd c;
    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_TICK;
    t->ts = ts;
    smt_apply_cmd(t, &c);
}

static char *value_text(const struct tkv_sl_node *n)
{
    msgpack_unpacked u;
    size_t off = 0;
    json_t *j;
    char *s;
    msgpack_unpacked_init(&u);
    msgpack_unpack_next(&u, (const char *)tkv_sl_value(n), n->vlen, &off);
    j = tkv_value_to_json(&u.data, NULL);
    assert(j != NULL);
    s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    msgpack_unpacked_destroy(&u);
    return s;
}

char *smt_get(struct smt *t, const char *key, uint64_t *version)
{
    uint8_t k[TKV_KEY_MAX];
    size_t klen = smt_key(key, k);
    const struct tkv_sl_node *n = tkv_sm_get(&t->sm, k, klen);
    if (n == NULL) {
        return NULL;
    }
    if (version != NULL) {
        *version = n->version;
    }
    return value_text(n);
}

int smt_list(struct smt *t, const char *prefix, const char *start,
             const char *end, int64_t limit, int reverse, const char *cursor,
             char **keys, size_t *total, char cursor_out[TKV_CURSOR_MAX])
{
    uint8_t p[TKV_KEY_MAX], s[TKV_KEY_MAX], e[TKV_KEY_MAX];
    struct tkv_list_query q;
    struct tkv_list_result *res = malloc(sizeof *res);
    json_t *arr;
    int rv;

    memset(&q, 0, sizeof q);
    if (prefix != NULL) {
        q.prefix = p;
        q.prefix_len = smt_key(prefix, p);
    }
    if (start != NULL) {
        q.start = s;
        q.start_len = smt_key(start, s);
    }
    if (end != NULL) {
        q.end = e;
        q.end_len = smt_key(end, e);
    }
    q.limit = limit;
    q.reverse = reverse;
    if (cursor != NULL) {
        q.cursor = cursor;
        q.cursor_len = strlen(cursor);
    }
    rv = tkv_sm_list(&t->sm, &q, res, NULL);
    if (rv != 0) {
        free(res);
        return rv;
    }
    arr = json_array();
    for (size_t i = 0; i < res->n; i++) {
        json_array_append_new(arr, tkv_key_to_json(tkv_sl_key(res->items[i]),
                                                   res->items[i]->klen));
    }
    *keys = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    *total = res->total;
    if (cursor_out != NULL) {
        strcpy(cursor_out, res->cursor);
    }
    free(res);
    return 0;
}
