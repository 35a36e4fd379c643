/* The public calls of libtuplekv: connect/close, the seed's methods (sync
 * and async) and cluster administration.
 *
 * Each call validates its arguments and encodes them into a struct tkv_req
 * (keys with tkv_key_from_json, values with tkv_value_from_json, so the
 * messages are the seed's), then either runs it (sync: block until the I/O
 * thread finishes it, convert the reply here) or queues it (async: the
 * reply is converted and the callback run on the I/O thread). */
#include <stdlib.h>
#include <string.h>

#include "../common/alloc.h"
#include "../statemachine/keycodec.h"
#include "../statemachine/value.h"
#include "client.h"

/* ------------------------------------------------------------------ */
/* Connect / close                                                     */

void tkv_config_init(struct tkv_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
}

int tkv_connect(const struct tkv_config *cfg,
                struct tkv_client **out,
                struct tkv_err *err)
{
    struct tkv_config dflt;
    struct tkv_client *c;
    const char *endpoints;
    int rv;

    tkv_err_clear(err);
    if (out == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "out is NULL");
    }
    *out = NULL;
    if (cfg == NULL) {
        tkv_config_init(&dflt);
        cfg = &dflt;
    }
    if (cfg->timeout_ms < 0 || cfg->connect_timeout_ms < 0 ||
        cfg->max_inflight < 0 || cfg->txn_attempts < 0) {
        return tkv_err_set(err, TKV_EINVALID,
                           "timeouts, max_inflight and txn_attempts must "
                           "be >= 0 (0: the default)");
    }
    if (cfg->consistency != TKV_STRONG && cfg->consistency != TKV_EVENTUAL) {
        return tkv_err_set(err, TKV_EINVALID,
                           "consistency must be TKV_STRONG or TKV_EVENTUAL");
    }
    endpoints = cfg->endpoints;
    if (endpoints == NULL) {
        endpoints = getenv("TUPLEKV_ENDPOINTS");
    }
    if (endpoints == NULL || endpoints[0] == '\0') {
        endpoints = TKV_DEFAULT_ENDPOINTS;
    }

    c = tkv_calloc(1, sizeof *c);
    if (c == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    c->timeout_ms =
        cfg->timeout_ms > 0 ? cfg->timeout_ms : TKV_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0
                                ? cfg->connect_timeout_ms
                                : TKV_DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_inflight =
        cfg->max_inflight > 0 ? cfg->max_inflight : TKV_DEFAULT_MAX_INFLIGHT;
    c->txn_attempts =
        cfg->txn_attempts > 0 ? cfg->txn_attempts : TKV_DEFAULT_TXN_ATTEMPTS;
    c->consistency = cfg->consistency;
    c->session = tkv__random64();
    atomic_init(&c->next_id, 1);
    atomic_init(&c->inflight, 0);
    c->seq_next = 1;
    c->seq_low = 1;
    pthread_mutex_init(&c->qmu, NULL);
    pthread_mutex_init(&c->seq_mu, NULL);
    pthread_cond_init(&c->seq_cv, NULL);

    rv = tkv__io_start(c, endpoints, err);
    if (rv != 0) {
        goto err_after_alloc;
    }
    *out = c;
    return 0;

err_after_alloc:
    pthread_cond_destroy(&c->seq_cv);
    pthread_mutex_destroy(&c->seq_mu);
    pthread_mutex_destroy(&c->qmu);
    tkv_free(c);
    return rv;
}

void tkv_close(struct tkv_client *c)
{
    if (c == NULL) {
        return;
    }
    tkv__io_stop(c);
    pthread_cond_destroy(&c->seq_cv);
    pthread_mutex_destroy(&c->seq_mu);
    pthread_mutex_destroy(&c->qmu);
    tkv_free(c);
}

/* ------------------------------------------------------------------ */
/* Shared plumbing                                                     */

static int check_sync(struct tkv_client *c, struct tkv_err *err)
{
    tkv_err_clear(err);
    if (c == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "client is NULL");
    }
    if (tkv__io_on_thread(c)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "synchronous call from an async callback would "
                           "deadlock; use the _async variant");
    }
    return 0;
}

static int check_async(struct tkv_client *c,
                       tkv_done_cb cb,
                       struct tkv_err *err)
{
    tkv_err_clear(err);
    if (c == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "client is NULL");
    }
    if (cb == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "callback is NULL");
    }
    return 0;
}

/* Build and run a call synchronously; *out gets the finished call (also on
 * error, when it exists) for the caller to read and free. */
static int run_sync(struct tkv_client *c,
                    struct tkv_req *req,
                    enum tkv__kind kind,
                    const struct tkv_opts *opts,
                    struct tkv__call **out,
                    struct tkv_err *err)
{
    struct tkv__call *call;
    int rv;

    *out = NULL;
    rv = tkv__call_new(c, req, kind, opts, 1, &call, err);
    if (rv != 0) {
        return rv;
    }
    rv = tkv__call_run(call, err);
    *out = call;
    return rv;
}

static int run_async(struct tkv_client *c,
                     struct tkv_req *req,
                     enum tkv__kind kind,
                     const struct tkv_opts *opts,
                     tkv_done_cb cb,
                     void *arg,
                     struct tkv_err *err)
{
    struct tkv__call *call;
    int rv;

    if (atomic_fetch_add(&c->inflight, 1) >= c->max_inflight) {
        atomic_fetch_sub(&c->inflight, 1);
        return tkv_err_set(err, TKV_EBUSY,
                           "too many calls in flight (max_inflight %d)",
                           c->max_inflight);
    }
    rv = tkv__call_new(c, req, kind, opts, 0, &call, err);
    if (rv != 0) {
        atomic_fetch_sub(&c->inflight, 1);
        return rv;
    }
    tkv__call_start_async(call, cb, arg);
    return 0;
}

/* Encode a key, prefixing the message with what it is when not a plain
 * key argument. */
static int key_enc(const json_t *key,
                   int allow_empty,
                   const char *what,
                   uint8_t *buf,
                   size_t *len,
                   struct tkv_err *err)
{
    struct tkv_err e;
    int rv;

    if (key == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "%s is NULL",
                           what != NULL ? what : "key");
    }
    tkv_err_clear(&e);
    rv = tkv_key_from_json(key, allow_empty, buf, len, &e);
    if (rv != 0) {
        if (what != NULL) {
            return tkv_err_set(err, rv, "%s: %s", what, e.msg);
        }
        return tkv_err_set(err, rv, "%s", e.msg);
    }
    return 0;
}

/* Per-op argument storage that must live until the request is encoded. */
struct args {
    struct tkv_req req;
    uint8_t key[TKV_KEY_MAX];
    struct tkv_buf value;
    struct tkv_buf keys; /* get_many: encoded keys back to back */
    uint8_t sel[3][TKV_KEY_MAX];
};

static void args_init(struct args *a, int op)
{
    tkv_req_init(&a->req);
    a->req.op = op;
    tkv_buf_init(&a->value);
    tkv_buf_init(&a->keys);
}

static void args_close(struct args *a)
{
    tkv_free(a->req.keys);
    a->req.keys = NULL;
    tkv_req_close(&a->req);
    tkv_buf_close(&a->value);
    tkv_buf_close(&a->keys);
}

static int args_set(struct args *a,
                    const json_t *key,
                    const json_t *value,
                    double ttl,
                    struct tkv_err *err)
{
    int rv = key_enc(key, 0, NULL, a->key, &a->req.klen, err);
    if (rv != 0) {
        return rv;
    }
    a->req.key = a->key;
    if (value == NULL) {
        return tkv_err_set(err, TKV_EINVALID,
                           "value is NULL (use json_null() for null)");
    }
    rv = tkv__ttl_ms(ttl, &a->req.ttl_ms, err);
    if (rv != 0) {
        return rv;
    }
    rv = tkv_value_from_json(value, &a->value, err);
    if (rv != 0) {
        return rv;
    }
    a->req.value = a->value.data;
    a->req.vlen = a->value.len;
    return 0;
}

static int args_key(struct args *a, const json_t *key, struct tkv_err *err)
{
    int rv = key_enc(key, 0, NULL, a->key, &a->req.klen, err);
    if (rv == 0) {
        a->req.key = a->key;
    }
    return rv;
}

static int args_keys(struct args *a, const json_t *keys, struct tkv_err *err)
{
    size_t n;
    size_t i;
    size_t off = 0;
    uint8_t kb[TKV_KEY_MAX];

    if (keys == NULL || !json_is_array(keys)) {
        return tkv_err_set(err, TKV_EINVALID, "keys must be an array of keys");
    }
    n = json_array_size(keys);
    if (n < 1 || n > TKV_GET_MANY_MAX) {
        return tkv_err_set(err, TKV_EINVALID,
                           "getMany takes 1 to %d keys, got %zu",
                           TKV_GET_MANY_MAX, n);
    }
    a->req.keys = tkv_calloc(n, sizeof *a->req.keys);
    if (a->req.keys == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    for (i = 0; i < n; i++) {
        size_t klen;
        char what[32];
        int rv;
        snprintf(what, sizeof what, "keys[%zu]", i);
        rv = key_enc(json_array_get(keys, i), 0, what, kb, &klen, err);
        if (rv != 0) {
            return rv;
        }
        if (tkv_buf_append(&a->keys, kb, klen) != 0) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        a->req.keys[i].klen = klen;
    }
    /* point into the final buffer only now: appends may move it */
    for (i = 0; i < n; i++) {
        a->req.keys[i].key = a->keys.data + off;
        off += a->req.keys[i].klen;
    }
    a->req.nkeys = n;
    return 0;
}

static int args_list(struct args *a,
                     const struct tkv_selector *sel,
                     const struct tkv_list_opts *lo,
                     struct tkv_err *err)
{
    struct tkv_list_query *q = &a->req.list;
    size_t len;
    int rv;

    if (sel == NULL ||
        (sel->prefix == NULL && sel->start == NULL && sel->end == NULL)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "list selector needs prefix, start or end");
    }
    if (sel->prefix != NULL) {
        rv = key_enc(sel->prefix, 1, "prefix", a->sel[0], &len, err);
        if (rv != 0) {
            return rv;
        }
        q->prefix = a->sel[0];
        q->prefix_len = len;
    }
    if (sel->start != NULL) {
        rv = key_enc(sel->start, 0, "start", a->sel[1], &len, err);
        if (rv != 0) {
            return rv;
        }
        q->start = a->sel[1];
        q->start_len = len;
    }
    if (sel->end != NULL) {
        rv = key_enc(sel->end, 0, "end", a->sel[2], &len, err);
        if (rv != 0) {
            return rv;
        }
        q->end = a->sel[2];
        q->end_len = len;
    }
    if (lo != NULL) {
        if (lo->limit > TKV_LIST_MAX_LIMIT) {
            return tkv_err_set(err, TKV_EINVALID,
                               "limit must be between 1 and %d, got %u",
                               TKV_LIST_MAX_LIMIT, lo->limit);
        }
        q->limit = lo->limit;
        q->reverse = lo->reverse != 0;
        if (lo->cursor != NULL) {
            size_t clen = strlen(lo->cursor);
            if (clen == 0 || clen >= TKV_CURSOR_MAX) {
                return tkv_err_set(err, TKV_EBAD_CURSOR, "invalid cursor: %s",
                                   clen == 0 ? "empty" : "too long");
            }
            q->cursor = lo->cursor;
            q->cursor_len = clen;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* The seed's methods, synchronous                                     */

int tkv_set(struct tkv_client *c,
            const json_t *key,
            const json_t *value,
            double ttl_seconds,
            const struct tkv_opts *opts,
            uint64_t *version,
            struct tkv_err *err)
{
    struct args a;
    struct tkv__call *call = NULL;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_SET);
    rv = args_set(&a, key, value, ttl_seconds, err);
    if (rv == 0) {
        rv = run_sync(c, &a.req, TKV__WRITE, opts, &call, err);
    }
    if (rv == 0 && version != NULL) {
        *version = call->reply.version;
    }
    tkv__call_free(call);
    args_close(&a);
    return rv;
}

int tkv_delete(struct tkv_client *c,
               const json_t *key,
               const struct tkv_opts *opts,
               struct tkv_err *err)
{
    struct args a;
    struct tkv__call *call = NULL;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_DELETE);
    rv = args_key(&a, key, err);
    if (rv == 0) {
        rv = run_sync(c, &a.req, TKV__WRITE, opts, &call, err);
    }
    tkv__call_free(call);
    args_close(&a);
    return rv;
}

/* Run a read and build its response in this thread. */
static int read_sync(struct tkv_client *c,
                     struct args *a,
                     const struct tkv_opts *opts,
                     struct tkv_response *res,
                     struct tkv_err *err)
{
    struct tkv__call *call = NULL;
    int rv;

    a->req.eventual = tkv__eventual(c, opts);
    rv = run_sync(c, &a->req, TKV__READ, opts, &call, err);
    if (rv == 0) {
        rv = tkv__response_build(call, res, err);
    }
    tkv__call_free(call);
    return rv;
}

int tkv_get(struct tkv_client *c,
            const json_t *key,
            const struct tkv_opts *opts,
            struct tkv_item **out,
            struct tkv_err *err)
{
    struct args a;
    struct tkv_response res;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (out == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "out is NULL");
    }
    *out = NULL;
    memset(&res, 0, sizeof res);
    args_init(&a, TKV_OP_GET);
    rv = args_key(&a, key, err);
    if (rv == 0) {
        rv = read_sync(c, &a, opts, &res, err);
    }
    if (rv == 0) {
        *out = res.item;
        res.item = NULL;
    }
    tkv__response_clear(&res);
    args_close(&a);
    return rv;
}

int tkv_get_many(struct tkv_client *c,
                 const json_t *keys,
                 const struct tkv_opts *opts,
                 struct tkv_item ***out,
                 size_t *n,
                 struct tkv_err *err)
{
    struct args a;
    struct tkv_response res;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (out == NULL || n == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "out or n is NULL");
    }
    *out = NULL;
    *n = 0;
    memset(&res, 0, sizeof res);
    args_init(&a, TKV_OP_GET_MANY);
    rv = args_keys(&a, keys, err);
    if (rv == 0) {
        rv = read_sync(c, &a, opts, &res, err);
    }
    if (rv == 0) {
        *out = res.items;
        *n = res.nitems;
        res.items = NULL;
        res.nitems = 0;
    }
    tkv__response_clear(&res);
    args_close(&a);
    return rv;
}

int tkv_list(struct tkv_client *c,
             const struct tkv_selector *sel,
             const struct tkv_list_opts *lopts,
             const struct tkv_opts *opts,
             struct tkv_page **out,
             struct tkv_err *err)
{
    struct args a;
    struct tkv_response res;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (out == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "out is NULL");
    }
    *out = NULL;
    memset(&res, 0, sizeof res);
    args_init(&a, TKV_OP_LIST);
    rv = args_list(&a, sel, lopts, err);
    if (rv == 0) {
        rv = read_sync(c, &a, opts, &res, err);
    }
    if (rv == 0) {
        *out = res.page;
        res.page = NULL;
    }
    tkv__response_clear(&res);
    args_close(&a);
    return rv;
}

/* ------------------------------------------------------------------ */
/* Async                                                               */

int tkv_set_async(struct tkv_client *c,
                  const json_t *key,
                  const json_t *value,
                  double ttl_seconds,
                  const struct tkv_opts *opts,
                  tkv_done_cb cb,
                  void *arg,
                  struct tkv_err *err)
{
    struct args a;
    int rv = check_async(c, cb, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_SET);
    rv = args_set(&a, key, value, ttl_seconds, err);
    if (rv == 0) {
        rv = run_async(c, &a.req, TKV__WRITE, opts, cb, arg, err);
    }
    args_close(&a);
    return rv;
}

int tkv_delete_async(struct tkv_client *c,
                     const json_t *key,
                     const struct tkv_opts *opts,
                     tkv_done_cb cb,
                     void *arg,
                     struct tkv_err *err)
{
    struct args a;
    int rv = check_async(c, cb, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_DELETE);
    rv = args_key(&a, key, err);
    if (rv == 0) {
        rv = run_async(c, &a.req, TKV__WRITE, opts, cb, arg, err);
    }
    args_close(&a);
    return rv;
}

int tkv_get_async(struct tkv_client *c,
                  const json_t *key,
                  const struct tkv_opts *opts,
                  tkv_done_cb cb,
                  void *arg,
                  struct tkv_err *err)
{
    struct args a;
    int rv = check_async(c, cb, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_GET);
    rv = args_key(&a, key, err);
    if (rv == 0) {
        a.req.eventual = tkv__eventual(c, opts);
        rv = run_async(c, &a.req, TKV__READ, opts, cb, arg, err);
    }
    args_close(&a);
    return rv;
}

int tkv_get_many_async(struct tkv_client *c,
                       const json_t *keys,
                       const struct tkv_opts *opts,
                       tkv_done_cb cb,
                       void *arg,
                       struct tkv_err *err)
{
    struct args a;
    int rv = check_async(c, cb, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_GET_MANY);
    rv = args_keys(&a, keys, err);
    if (rv == 0) {
        a.req.eventual = tkv__eventual(c, opts);
        rv = run_async(c, &a.req, TKV__READ, opts, cb, arg, err);
    }
    args_close(&a);
    return rv;
}

int tkv_list_async(struct tkv_client *c,
                   const struct tkv_selector *sel,
                   const struct tkv_list_opts *lopts,
                   const struct tkv_opts *opts,
                   tkv_done_cb cb,
                   void *arg,
                   struct tkv_err *err)
{
    struct args a;
    int rv = check_async(c, cb, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_LIST);
    rv = args_list(&a, sel, lopts, err);
    if (rv == 0) {
        a.req.eventual = tkv__eventual(c, opts);
        rv = run_async(c, &a.req, TKV__READ, opts, cb, arg, err);
    }
    args_close(&a);
    return rv;
}

/* Used by txn.c: run a filled atomic request. */
int tkv__atomic_run(struct tkv_client *c,
                    struct tkv_req *req,
                    const struct tkv_opts *opts,
                    uint64_t *version,
                    json_t **conflict,
                    struct tkv_err *err);
int tkv__atomic_start(struct tkv_client *c,
                      struct tkv_req *req,
                      const struct tkv_opts *opts,
                      tkv_done_cb cb,
                      void *arg,
                      struct tkv_err *err);

int tkv__atomic_run(struct tkv_client *c,
                    struct tkv_req *req,
                    const struct tkv_opts *opts,
                    uint64_t *version,
                    json_t **conflict,
                    struct tkv_err *err)
{
    struct tkv__call *call = NULL;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    rv = run_sync(c, req, TKV__WRITE, opts, &call, err);
    if (rv == 0 && version != NULL) {
        *version = call->reply.version;
    }
    if (rv == TKV_ECONFLICT && conflict != NULL && call != NULL &&
        call->have_reply && call->reply.conflict != NULL) {
        *conflict =
            tkv_key_to_json(call->reply.conflict, call->reply.conflict_len);
    }
    tkv__call_free(call);
    return rv;
}

int tkv__atomic_start(struct tkv_client *c,
                      struct tkv_req *req,
                      const struct tkv_opts *opts,
                      tkv_done_cb cb,
                      void *arg,
                      struct tkv_err *err)
{
    int rv = check_async(c, cb, err);
    if (rv != 0) {
        return rv;
    }
    return run_async(c, req, TKV__WRITE, opts, cb, arg, err);
}

/* ------------------------------------------------------------------ */
/* Administration                                                      */

static char *dup_or_null(const char *s)
{
    return s != NULL ? tkv_strdup(s) : NULL;
}

int tkv_node_status(struct tkv_client *c,
                    const char *endpoint,
                    const struct tkv_opts *opts,
                    struct tkv_node_status **out,
                    struct tkv_err *err)
{
    struct args a;
    struct tkv__call *call = NULL;
    struct tkv_node_status *st;
    const struct tkv_status *s;
    char host[256];
    int port;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (out == NULL || endpoint == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "endpoint or out is NULL");
    }
    *out = NULL;
    rv = tkv_addr_split(endpoint, strlen(endpoint), host, sizeof host,
                             &port, err);
    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_STATUS);
    rv = tkv__call_new(c, &a.req, TKV__READ, opts, 1, &call, err);
    args_close(&a);
    if (rv != 0) {
        return rv;
    }
    call->pin_addr = tkv_strdup(endpoint);
    if (call->pin_addr == NULL) {
        tkv__call_free(call);
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    rv = tkv__call_run(call, err);
    if (rv != 0) {
        goto out;
    }
    s = &call->reply.status;
    st = tkv_calloc(1, sizeof *st);
    if (st == NULL) {
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto out;
    }
    st->endpoint = tkv_strdup(endpoint);
    st->role = tkv_strdup(s->role != NULL ? s->role : "unknown");
    st->leader_address = dup_or_null(s->leader_address);
    if (st->endpoint == NULL || st->role == NULL ||
        (s->leader_address != NULL && st->leader_address == NULL)) {
        tkv_node_status_free(st);
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto out;
    }
    st->node_id = s->node_id;
    st->term = s->term;
    st->leader_id = s->leader_id;
    st->commit_index = s->commit_index;
    st->applied_index = s->applied_index;
    st->snapshot_index = s->snapshot_index;
    st->keys = s->keys;
    st->data_bytes = s->data_bytes;
    st->sm_time_ms = s->sm_time_ms;
    st->connections = s->connections;
    st->uptime_ms = s->uptime_ms;
    *out = st;
out:
    tkv__call_free(call);
    return rv;
}

void tkv_node_status_free(struct tkv_node_status *st)
{
    if (st == NULL) {
        return;
    }
    tkv_free(st->endpoint);
    tkv_free(st->role);
    tkv_free(st->leader_address);
    tkv_free(st);
}

int tkv_members(struct tkv_client *c,
                const struct tkv_opts *opts,
                struct tkv_member_info **out,
                size_t *n,
                struct tkv_err *err)
{
    struct args a;
    struct tkv__call *call = NULL;
    struct tkv_member_info *m = NULL;
    size_t i;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (out == NULL || n == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "out or n is NULL");
    }
    *out = NULL;
    *n = 0;
    args_init(&a, TKV_OP_MEMBERS);
    /* The leader's view: a follower redirects (NOT_LEADER), which the call
     * follows. An eventual request may be answered by any node once the
     * protocol carries consistency for members (proto/ encodes only the
     * arguments an op accepts, so this is inert until then). */
    a.req.eventual = tkv__eventual(c, opts);
    rv = run_sync(c, &a.req, TKV__READ, opts, &call, err);
    args_close(&a);
    if (rv != 0) {
        goto out;
    }
    m = tkv_calloc(call->reply.nmembers > 0 ? call->reply.nmembers : 1,
                   sizeof *m);
    if (m == NULL) {
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto out;
    }
    for (i = 0; i < call->reply.nmembers; i++) {
        const struct tkv_member *x = &call->reply.members[i];
        m[i].id = x->id;
        m[i].raft_address = dup_or_null(x->raft_address);
        m[i].client_address = dup_or_null(x->client_address);
        m[i].role = dup_or_null(x->role);
        if ((x->raft_address != NULL && m[i].raft_address == NULL) ||
            (x->client_address != NULL && m[i].client_address == NULL) ||
            (x->role != NULL && m[i].role == NULL)) {
            tkv_members_free(m, i + 1);
            rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
            goto out;
        }
    }
    *out = m;
    *n = call->reply.nmembers;
out:
    tkv__call_free(call);
    return rv;
}

void tkv_members_free(struct tkv_member_info *m, size_t n)
{
    size_t i;
    if (m == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        tkv_free(m[i].raft_address);
        tkv_free(m[i].client_address);
        tkv_free(m[i].role);
    }
    tkv_free(m);
}

static int admin(struct tkv_client *c,
                 struct args *a,
                 const struct tkv_opts *opts,
                 struct tkv_err *err)
{
    struct tkv__call *call = NULL;
    int rv = run_sync(c, &a->req, TKV__ADMIN, opts, &call, err);
    tkv__call_free(call);
    return rv;
}

static int check_addr(const char *what, const char *addr, struct tkv_err *err)
{
    char host[256];
    int port;
    struct tkv_err e;
    if (addr == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "%s is NULL", what);
    }
    if (strlen(addr) > TKV_ADDR_MAX ||
        tkv_addr_split(addr, strlen(addr), host, sizeof host, &port, &e) !=
            0) {
        return tkv_err_set(err, TKV_EINVALID, "%s '%s' is not host:port", what,
                           addr);
    }
    return 0;
}

int tkv_member_add(struct tkv_client *c,
                   uint64_t id,
                   const char *raft_addr,
                   const char *client_addr,
                   const struct tkv_opts *opts,
                   struct tkv_err *err)
{
    struct args a;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (id == 0) {
        return tkv_err_set(err, TKV_EINVALID, "member id must be > 0");
    }
    rv = check_addr("raft address", raft_addr, err);
    if (rv == 0) {
        rv = check_addr("client address", client_addr, err);
    }
    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_MEMBER_ADD);
    a.req.member_id = id;
    a.req.raft_address = raft_addr;
    a.req.client_address = client_addr;
    rv = admin(c, &a, opts, err);
    /* the strings are the caller's: keep args_close from seeing them */
    a.req.raft_address = NULL;
    a.req.client_address = NULL;
    args_close(&a);
    return rv;
}

int tkv_member_remove(struct tkv_client *c,
                      uint64_t id,
                      const struct tkv_opts *opts,
                      struct tkv_err *err)
{
    struct args a;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    if (id == 0) {
        return tkv_err_set(err, TKV_EINVALID, "member id must be > 0");
    }
    args_init(&a, TKV_OP_MEMBER_REMOVE);
    a.req.member_id = id;
    rv = admin(c, &a, opts, err);
    args_close(&a);
    return rv;
}

int tkv_transfer(struct tkv_client *c,
                 uint64_t id,
                 const struct tkv_opts *opts,
                 struct tkv_err *err)
{
    struct args a;
    int rv = check_sync(c, err);

    if (rv != 0) {
        return rv;
    }
    args_init(&a, TKV_OP_TRANSFER);
    a.req.member_id = id;
    rv = admin(c, &a, opts, err);
    args_close(&a);
    return rv;
}
