/* Atomic batches and optimistic transactions.
 *
 * A struct tkv_atomic holds checks and mutations already validated and
 * encoded (keys with keycodec, values as msgpack), back to back in one
 * buffer; committing points a struct tkv_req at them and sends one `atomic`
 * request, which the state machine applies all or nothing.
 *
 * tkv_transaction() runs the user's function with a struct tkv_txn:
 *   1. get / get_many read through to the cluster (strong) the keys not
 *      seen before, and remember each key's version (absent = 0) and value;
 *      a key read again, or written earlier in the transaction, is answered
 *      from the transaction itself (reads see the transaction's writes);
 *   2. set / delete go into a tkv_atomic (a later write of the same key
 *      replaces the earlier one);
 *   3. when the function returns 0, commit sends one atomic request: a
 *      check of every version read, then the writes;
 *   4. CONFLICT: sleep a jittered, growing backoff and run the function
 *      again with an empty transaction, up to txn_attempts runs in all.
 * A function returning nonzero aborts: nothing is sent. A transaction with
 * no writes sends nothing either; when it read keys in more than one call,
 * one get_many re-reads them and a changed version counts as a conflict, so
 * what it saw was one snapshot. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "../common/alloc.h"
#include "../statemachine/keycodec.h"
#include "../statemachine/value.h"
#include "client.h"

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

struct a_check {
    size_t koff;
    uint16_t klen;
    uint64_t version;
};

struct a_mut {
    uint8_t type; /* TKV_CMD_SET / TKV_CMD_DELETE */
    uint16_t klen;
    uint32_t vlen;
    size_t koff;
    size_t voff;
    uint64_t ttl_ms;
};

struct tkv_atomic {
    struct tkv_buf data;    /* owned: keys and values back to back */
    struct a_check *checks; /* owned */
    size_t nchecks;
    size_t checks_cap;
    struct a_mut *muts; /* owned */
    size_t nmuts;
    size_t muts_cap;
};

struct tkv_atomic *tkv_atomic_new(void)
{
    struct tkv_atomic *a = tkv_calloc(1, sizeof *a);
    if (a != NULL) {
        tkv_buf_init(&a->data);
    }
    return a;
}

void tkv_atomic_free(struct tkv_atomic *a)
{
    if (a == NULL) {
        return;
    }
    tkv_buf_close(&a->data);
    tkv_free(a->checks);
    tkv_free(a->muts);
    tkv_free(a);
}

static void atomic_reset(struct tkv_atomic *a)
{
    tkv_buf_reset(&a->data);
    a->nchecks = 0;
    a->nmuts = 0;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    void *p;
    size_t ncap;
    if (n < *cap) {
        return 0;
    }
    ncap = *cap == 0 ? 8 : *cap * 2;
    p = tkv_realloc(*arr, ncap * size);
    if (p == NULL) {
        return TKV_ENOMEM;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Append bytes to a->data; their offset goes to *off. */
static int data_put(struct tkv_atomic *a, const void *p, size_t n, size_t *off)
{
    *off = a->data.len;
    return tkv_buf_append(&a->data, p, n);
}

int tkv_atomic_check(struct tkv_atomic *a,
                     const json_t *key,
                     uint64_t version,
                     struct tkv_err *err)
{
    uint8_t kb[TKV_KEY_MAX];
    size_t klen;
    size_t off;
    int rv;

    tkv_err_clear(err);
    if (a == NULL || key == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "batch or key is NULL");
    }
    if (a->nchecks >= TKV_ATOMIC_MAX_CHECKS) {
        return tkv_err_set(err, TKV_EINVALID,
                           "an atomic batch takes at most %d checks",
                           TKV_ATOMIC_MAX_CHECKS);
    }
    rv = tkv_key_from_json(key, 0, kb, &klen, err);
    if (rv != 0) {
        return rv;
    }
    if (grow((void **)&a->checks, &a->checks_cap, a->nchecks,
             sizeof *a->checks) != 0 ||
        data_put(a, kb, klen, &off) != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    a->checks[a->nchecks].koff = off;
    a->checks[a->nchecks].klen = (uint16_t)klen;
    a->checks[a->nchecks].version = version;
    a->nchecks++;
    return 0;
}

/* Add (or, when `replace`, overwrite the earlier mutation of the same key)
 * a mutation with an encoded key and value. */
static int atomic_put(struct tkv_atomic *a,
                      uint8_t type,
                      const uint8_t *kb,
                      size_t klen,
                      const uint8_t *vb,
                      size_t vlen,
                      uint64_t ttl_ms,
                      int replace,
                      struct tkv_err *err)
{
    struct a_mut *m = NULL;
    size_t i;

    if (replace) {
        for (i = 0; i < a->nmuts; i++) {
            if (a->muts[i].klen == klen &&
                memcmp(a->data.data + a->muts[i].koff, kb, klen) == 0) {
                m = &a->muts[i];
                break;
            }
        }
    }
    if (m == NULL) {
        if (a->nmuts >= TKV_ATOMIC_MAX_MUTATIONS) {
            return tkv_err_set(err, TKV_EINVALID,
                               "an atomic batch takes at most %d mutations",
                               TKV_ATOMIC_MAX_MUTATIONS);
        }
        if (grow((void **)&a->muts, &a->muts_cap, a->nmuts, sizeof *a->muts) !=
            0) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        m = &a->muts[a->nmuts];
        memset(m, 0, sizeof *m);
        if (data_put(a, kb, klen, &m->koff) != 0) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        m->klen = (uint16_t)klen;
        a->nmuts++;
    }
    m->type = type;
    m->ttl_ms = ttl_ms;
    m->vlen = (uint32_t)vlen;
    m->voff = 0;
    if (type == TKV_CMD_SET && data_put(a, vb, vlen, &m->voff) != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    return 0;
}

static int atomic_set(struct tkv_atomic *a,
                      const json_t *key,
                      const json_t *value,
                      double ttl_seconds,
                      int replace,
                      struct tkv_err *err)
{
    uint8_t kb[TKV_KEY_MAX];
    size_t klen;
    uint64_t ttl_ms;
    struct tkv_buf vb;
    int rv;

    if (a == NULL || key == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "key is NULL");
    }
    if (value == NULL) {
        return tkv_err_set(err, TKV_EINVALID,
                           "value is NULL (use json_null() for null)");
    }
    rv = tkv_key_from_json(key, 0, kb, &klen, err);
    if (rv != 0) {
        return rv;
    }
    rv = tkv__ttl_ms(ttl_seconds, &ttl_ms, err);
    if (rv != 0) {
        return rv;
    }
    tkv_buf_init(&vb);
    rv = tkv_value_from_json(value, &vb, err);
    if (rv == 0) {
        rv = atomic_put(a, TKV_CMD_SET, kb, klen, vb.data, vb.len, ttl_ms,
                        replace, err);
    }
    tkv_buf_close(&vb);
    return rv;
}

static int atomic_del(struct tkv_atomic *a,
                      const json_t *key,
                      int replace,
                      struct tkv_err *err)
{
    uint8_t kb[TKV_KEY_MAX];
    size_t klen;
    int rv;

    if (a == NULL || key == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "key is NULL");
    }
    rv = tkv_key_from_json(key, 0, kb, &klen, err);
    if (rv != 0) {
        return rv;
    }
    return atomic_put(a, TKV_CMD_DELETE, kb, klen, NULL, 0, 0, replace, err);
}

int tkv_atomic_set(struct tkv_atomic *a,
                   const json_t *key,
                   const json_t *value,
                   double ttl_seconds,
                   struct tkv_err *err)
{
    tkv_err_clear(err);
    return atomic_set(a, key, value, ttl_seconds, 0, err);
}

int tkv_atomic_delete(struct tkv_atomic *a,
                      const json_t *key,
                      struct tkv_err *err)
{
    tkv_err_clear(err);
    return atomic_del(a, key, 0, err);
}

/* Point req at a's checks and mutations (arrays owned by the caller's
 * *checks / *muts, freed with tkv_free). */
static int atomic_fill(const struct tkv_atomic *a,
                       struct tkv_req *req,
                       struct tkv_check **checks,
                       struct tkv_mutation **muts,
                       struct tkv_err *err)
{
    size_t i;

    *checks = NULL;
    *muts = NULL;
    if (a->nmuts == 0) {
        return tkv_err_set(err, TKV_EINVALID,
                           "an atomic batch needs at least one mutation");
    }
    *checks = tkv_calloc(a->nchecks > 0 ? a->nchecks : 1, sizeof **checks);
    *muts = tkv_calloc(a->nmuts, sizeof **muts);
    if (*checks == NULL || *muts == NULL) {
        tkv_free(*checks);
        tkv_free(*muts);
        *checks = NULL;
        *muts = NULL;
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    for (i = 0; i < a->nchecks; i++) {
        (*checks)[i].key = a->data.data + a->checks[i].koff;
        (*checks)[i].klen = a->checks[i].klen;
        (*checks)[i].version = a->checks[i].version;
    }
    for (i = 0; i < a->nmuts; i++) {
        const struct a_mut *m = &a->muts[i];
        (*muts)[i].type = m->type;
        (*muts)[i].key = a->data.data + m->koff;
        (*muts)[i].klen = m->klen;
        if (m->type == TKV_CMD_SET) {
            (*muts)[i].value = a->data.data + m->voff;
            (*muts)[i].vlen = m->vlen;
            (*muts)[i].ttl_ms = m->ttl_ms;
        }
    }
    tkv_req_init(req);
    req->op = TKV_OP_ATOMIC;
    req->checks = *checks;
    req->nchecks = (uint32_t)a->nchecks;
    req->muts = *muts;
    req->nmuts = (uint32_t)a->nmuts;
    return 0;
}

int tkv_atomic_commit(struct tkv_client *c,
                      const struct tkv_atomic *a,
                      const struct tkv_opts *opts,
                      uint64_t *version,
                      json_t **conflict,
                      struct tkv_err *err)
{
    struct tkv_req req;
    struct tkv_check *checks;
    struct tkv_mutation *muts;
    int rv;

    tkv_err_clear(err);
    if (conflict != NULL) {
        *conflict = NULL;
    }
    if (a == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "batch is NULL");
    }
    rv = atomic_fill(a, &req, &checks, &muts, err);
    if (rv != 0) {
        return rv;
    }
    rv = tkv__atomic_run(c, &req, opts, version, conflict, err);
    tkv_req_close(&req);
    tkv_free(checks);
    tkv_free(muts);
    return rv;
}

int tkv_atomic_commit_async(struct tkv_client *c,
                            const struct tkv_atomic *a,
                            const struct tkv_opts *opts,
                            tkv_done_cb cb,
                            void *arg,
                            struct tkv_err *err)
{
    struct tkv_req req;
    struct tkv_check *checks;
    struct tkv_mutation *muts;
    int rv;

    tkv_err_clear(err);
    if (a == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "batch is NULL");
    }
    rv = atomic_fill(a, &req, &checks, &muts, err);
    if (rv != 0) {
        return rv;
    }
    rv = tkv__atomic_start(c, &req, opts, cb, arg, err);
    tkv_req_close(&req);
    tkv_free(checks);
    tkv_free(muts);
    return rv;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

/* A key the transaction has read. */
struct t_read {
    size_t koff; /* in tx->keys */
    uint16_t klen;
    uint64_t version; /* 0: absent */
    json_t *key;      /* owned */
    json_t *value;    /* owned; NULL: absent */
};

struct tkv_txn {
    struct tkv_client *c;
    const struct tkv_opts *opts;
    int attempt;
    struct tkv_buf keys;  /* owned: encoded keys of reads */
    struct t_read *reads; /* owned */
    size_t nreads;
    size_t reads_cap;
    unsigned read_calls;  /* how many calls went to the cluster */
    struct tkv_atomic *w; /* owned: buffered writes */
    int failed;           /* a tx call failed: commit refuses */
    struct tkv_err fail_err;
};

static void txn_reset(struct tkv_txn *tx)
{
    size_t i;
    for (i = 0; i < tx->nreads; i++) {
        json_decref(tx->reads[i].key);
        json_decref(tx->reads[i].value);
    }
    tx->nreads = 0;
    tx->read_calls = 0;
    tkv_buf_reset(&tx->keys);
    atomic_reset(tx->w);
    tx->failed = 0;
    tkv_err_clear(&tx->fail_err);
}

/* Remember a failure so that commit refuses; returns rv. */
static int txn_fail(struct tkv_txn *tx,
                    int rv,
                    const struct tkv_err *e,
                    struct tkv_err *err)
{
    if (!tx->failed) {
        tx->failed = 1;
        tx->fail_err.code = rv;
        snprintf(tx->fail_err.msg, sizeof tx->fail_err.msg, "%s",
                 e != NULL ? e->msg : tkv_strerror(rv));
    }
    if (err != NULL && e != err) {
        err->code = rv;
        snprintf(err->msg, sizeof err->msg, "%s",
                 e != NULL ? e->msg : tkv_strerror(rv));
    }
    return rv;
}

static struct t_read *read_find(struct tkv_txn *tx,
                                const uint8_t *kb,
                                size_t klen)
{
    size_t i;
    for (i = 0; i < tx->nreads; i++) {
        if (tx->reads[i].klen == klen &&
            memcmp(tx->keys.data + tx->reads[i].koff, kb, klen) == 0) {
            return &tx->reads[i];
        }
    }
    return NULL;
}

static const struct a_mut *write_find(const struct tkv_txn *tx,
                                      const uint8_t *kb,
                                      size_t klen)
{
    size_t i;
    for (i = 0; i < tx->w->nmuts; i++) {
        const struct a_mut *m = &tx->w->muts[i];
        if (m->klen == klen &&
            memcmp(tx->w->data.data + m->koff, kb, klen) == 0) {
            return m;
        }
    }
    return NULL;
}

/* Record a read; takes the references in it (also on failure). */
static int read_add(struct tkv_txn *tx,
                    const uint8_t *kb,
                    size_t klen,
                    struct tkv_item *it,
                    const json_t *key)
{
    struct t_read *r;
    size_t off;

    if (grow((void **)&tx->reads, &tx->reads_cap, tx->nreads,
             sizeof *tx->reads) != 0) {
        return TKV_ENOMEM;
    }
    off = tx->keys.len;
    if (tkv_buf_append(&tx->keys, kb, klen) != 0) {
        return TKV_ENOMEM;
    }
    r = &tx->reads[tx->nreads];
    r->koff = off;
    r->klen = (uint16_t)klen;
    if (it != NULL) {
        r->version = it->version;
        r->key = json_incref(it->key);
        r->value = json_incref(it->value);
    } else {
        r->version = 0;
        r->key = json_deep_copy(key);
        r->value = NULL;
        if (r->key == NULL) {
            return TKV_ENOMEM;
        }
    }
    tx->nreads++;
    return 0;
}

/* An item the caller owns, with copies (the caller may change them). */
static struct tkv_item *item_copy(const json_t *key,
                                  const json_t *value,
                                  uint64_t version)
{
    struct tkv_item *it = tkv_calloc(1, sizeof *it);
    if (it == NULL) {
        return NULL;
    }
    it->key = json_deep_copy(key);
    it->value = json_deep_copy(value);
    it->version = version;
    if (it->key == NULL || it->value == NULL) {
        tkv_item_free(it);
        return NULL;
    }
    return it;
}

/* Answer a key from the transaction itself: 1 (with *out set, NULL for
 * absent) when it can, 0 when the cluster must be asked, <0 on error. */
static int local_lookup(struct tkv_txn *tx,
                        const uint8_t *kb,
                        size_t klen,
                        struct tkv_item **out,
                        struct tkv_err *err)
{
    const struct a_mut *m = write_find(tx, kb, klen);
    const struct t_read *r;

    *out = NULL;
    if (m != NULL) {
        json_t *key;
        json_t *value;
        if (m->type == TKV_CMD_DELETE) {
            return 1;
        }
        key = tkv_key_to_json(kb, klen);
        value = tkv__value_to_json(tx->w->data.data + m->voff, m->vlen, err);
        if (key == NULL || value == NULL) {
            json_decref(key);
            json_decref(value);
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        *out = tkv_calloc(1, sizeof **out);
        if (*out == NULL) {
            json_decref(key);
            json_decref(value);
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        (*out)->key = key;
        (*out)->value = value;
        (*out)->version = 0; /* not committed yet: no version */
        return 1;
    }
    r = read_find(tx, kb, klen);
    if (r != NULL) {
        if (r->value != NULL) {
            *out = item_copy(r->key, r->value, r->version);
            if (*out == NULL) {
                return tkv_err_set(err, TKV_ENOMEM, "out of memory");
            }
        }
        return 1;
    }
    return 0;
}

static struct tkv_opts strong_opts(const struct tkv_txn *tx)
{
    struct tkv_opts o;
    memset(&o, 0, sizeof o);
    o.consistency = TKV_STRONG;
    o.timeout_ms = tx->opts != NULL ? tx->opts->timeout_ms : 0;
    return o;
}

int tkv_txn_get(struct tkv_txn *tx,
                const json_t *key,
                struct tkv_item **out,
                struct tkv_err *err)
{
    uint8_t kb[TKV_KEY_MAX];
    size_t klen;
    struct tkv_item *it = NULL;
    struct tkv_opts o;
    struct tkv_err e;
    int rv;

    tkv_err_clear(err);
    if (tx == NULL || out == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "tx or out is NULL");
    }
    *out = NULL;
    if (key == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "key is NULL");
    }
    tkv_err_clear(&e);
    rv = tkv_key_from_json(key, 0, kb, &klen, &e);
    if (rv != 0) {
        return txn_fail(tx, rv, &e, err);
    }
    rv = local_lookup(tx, kb, klen, out, &e);
    if (rv < 0) {
        return txn_fail(tx, rv, &e, err);
    }
    if (rv == 1) {
        return 0;
    }
    o = strong_opts(tx);
    rv = tkv_get(tx->c, key, &o, &it, &e);
    if (rv != 0) {
        return txn_fail(tx, rv, &e, err);
    }
    tx->read_calls++;
    if (read_add(tx, kb, klen, it, key) != 0) {
        tkv_item_free(it);
        tkv_err_set(&e, TKV_ENOMEM, "out of memory");
        return txn_fail(tx, TKV_ENOMEM, &e, err);
    }
    if (it != NULL) {
        /* the caller gets copies; the originals stay in the read set */
        *out = item_copy(it->key, it->value, it->version);
        tkv_item_free(it);
        if (*out == NULL) {
            tkv_err_set(&e, TKV_ENOMEM, "out of memory");
            return txn_fail(tx, TKV_ENOMEM, &e, err);
        }
    }
    return 0;
}

int tkv_txn_get_many(struct tkv_txn *tx,
                     const json_t *keys,
                     struct tkv_item ***out,
                     size_t *n,
                     struct tkv_err *err)
{
    struct tkv_item **res = NULL;
    struct tkv_item **fetched = NULL;
    size_t nfetched = 0;
    json_t *missing = NULL;
    size_t *slot = NULL; /* res index of each missing key */
    uint8_t kb[TKV_KEY_MAX];
    size_t klen;
    size_t nk;
    size_t i;
    struct tkv_opts o;
    struct tkv_err e;
    int rv;

    tkv_err_clear(err);
    tkv_err_clear(&e);
    if (tx == NULL || out == NULL || n == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "tx, out or n is NULL");
    }
    *out = NULL;
    *n = 0;
    if (keys == NULL || !json_is_array(keys) || json_array_size(keys) < 1 ||
        json_array_size(keys) > TKV_GET_MANY_MAX) {
        tkv_err_set(&e, TKV_EINVALID, "getMany takes an array of 1 to %d keys",
                    TKV_GET_MANY_MAX);
        return txn_fail(tx, TKV_EINVALID, &e, err);
    }
    nk = json_array_size(keys);
    res = tkv_calloc(nk, sizeof *res);
    slot = tkv_calloc(nk, sizeof *slot);
    missing = json_array();
    if (res == NULL || slot == NULL || missing == NULL) {
        rv = tkv_err_set(&e, TKV_ENOMEM, "out of memory");
        goto err;
    }
    for (i = 0; i < nk; i++) {
        const json_t *k = json_array_get(keys, i);
        rv = tkv_key_from_json(k, 0, kb, &klen, &e);
        if (rv != 0) {
            char m[TKV_ERRMSG_SIZE];
            snprintf(m, sizeof m, "%s", e.msg);
            tkv_err_set(&e, rv, "keys[%zu]: %s", i, m);
            goto err;
        }
        rv = local_lookup(tx, kb, klen, &res[i], &e);
        if (rv < 0) {
            goto err;
        }
        if (rv == 0) {
            slot[json_array_size(missing)] = i;
            if (json_array_append(missing, (json_t *)k) != 0) {
                rv = tkv_err_set(&e, TKV_ENOMEM, "out of memory");
                goto err;
            }
        }
    }
    if (json_array_size(missing) > 0) {
        o = strong_opts(tx);
        rv = tkv_get_many(tx->c, missing, &o, &fetched, &nfetched, &e);
        if (rv != 0) {
            goto err;
        }
        tx->read_calls++;
        for (i = 0; i < nfetched; i++) {
            const json_t *k = json_array_get(missing, i);
            struct tkv_item *it = fetched[i];
            /* a key twice in the request: the first read is recorded */
            tkv_key_from_json(k, 0, kb, &klen, NULL);
            if (read_find(tx, kb, klen) == NULL &&
                read_add(tx, kb, klen, it, k) != 0) {
                rv = tkv_err_set(&e, TKV_ENOMEM, "out of memory");
                goto err;
            }
            if (it != NULL) {
                res[slot[i]] = item_copy(it->key, it->value, it->version);
                if (res[slot[i]] == NULL) {
                    rv = tkv_err_set(&e, TKV_ENOMEM, "out of memory");
                    goto err;
                }
            }
        }
    }
    tkv_items_free(fetched, nfetched);
    json_decref(missing);
    tkv_free(slot);
    *out = res;
    *n = nk;
    return 0;

err:
    tkv_items_free(fetched, nfetched);
    tkv_items_free(res, nk);
    json_decref(missing);
    tkv_free(slot);
    return txn_fail(tx, rv, &e, err);
}

int tkv_txn_set(struct tkv_txn *tx,
                const json_t *key,
                const json_t *value,
                double ttl_seconds,
                struct tkv_err *err)
{
    struct tkv_err e;
    int rv;
    tkv_err_clear(err);
    if (tx == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "tx is NULL");
    }
    tkv_err_clear(&e);
    rv = atomic_set(tx->w, key, value, ttl_seconds, 1, &e);
    return rv != 0 ? txn_fail(tx, rv, &e, err) : 0;
}

int tkv_txn_delete(struct tkv_txn *tx, const json_t *key, struct tkv_err *err)
{
    struct tkv_err e;
    int rv;
    tkv_err_clear(err);
    if (tx == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "tx is NULL");
    }
    tkv_err_clear(&e);
    rv = atomic_del(tx->w, key, 1, &e);
    return rv != 0 ? txn_fail(tx, rv, &e, err) : 0;
}

int tkv_txn_attempt(const struct tkv_txn *tx)
{
    return tx != NULL ? tx->attempt : 0;
}

/* Read-only transaction that read in several calls: were its reads one
 * snapshot? 0, TKV_ECONFLICT (with *conflict) or another error. */
static int txn_validate_reads(struct tkv_txn *tx,
                              json_t **conflict,
                              struct tkv_err *err)
{
    size_t start;
    struct tkv_opts o = strong_opts(tx);

    for (start = 0; start < tx->nreads; start += TKV_GET_MANY_MAX) {
        size_t end = start + TKV_GET_MANY_MAX;
        struct tkv_item **items = NULL;
        size_t n = 0;
        json_t *keys = json_array();
        size_t i;
        int rv;

        if (end > tx->nreads) {
            end = tx->nreads;
        }
        if (keys == NULL) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        for (i = start; i < end; i++) {
            json_array_append(keys, tx->reads[i].key);
        }
        rv = tkv_get_many(tx->c, keys, &o, &items, &n, err);
        json_decref(keys);
        if (rv != 0) {
            return rv;
        }
        for (i = 0; i < n; i++) {
            uint64_t now = items[i] != NULL ? items[i]->version : 0;
            if (now != tx->reads[start + i].version) {
                *conflict = json_incref(tx->reads[start + i].key);
                tkv_items_free(items, n);
                return TKV_ECONFLICT;
            }
        }
        tkv_items_free(items, n);
    }
    return 0;
}

static int txn_commit(struct tkv_txn *tx,
                      uint64_t *version,
                      json_t **conflict,
                      struct tkv_err *err)
{
    size_t i;
    int rv;

    *version = 0;
    if (tx->failed) {
        *err = tx->fail_err;
        return tx->fail_err.code;
    }
    if (tx->w->nmuts == 0) {
        if (tx->read_calls > 1) {
            return txn_validate_reads(tx, conflict, err);
        }
        return 0;
    }
    if (tx->nreads > TKV_ATOMIC_MAX_CHECKS) {
        return tkv_err_set(err, TKV_EINVALID,
                           "a transaction that writes may read at most %d "
                           "keys (it read %zu)",
                           TKV_ATOMIC_MAX_CHECKS, tx->nreads);
    }
    tx->w->nchecks = 0;
    for (i = 0; i < tx->nreads; i++) {
        size_t off;
        if (grow((void **)&tx->w->checks, &tx->w->checks_cap, tx->w->nchecks,
                 sizeof *tx->w->checks) != 0 ||
            data_put(tx->w, tx->keys.data + tx->reads[i].koff,
                     tx->reads[i].klen, &off) != 0) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        tx->w->checks[i].koff = off;
        tx->w->checks[i].klen = tx->reads[i].klen;
        tx->w->checks[i].version = tx->reads[i].version;
        tx->w->nchecks++;
    }
    rv = tkv_atomic_commit(tx->c, tx->w, tx->opts, version, conflict, err);
    return rv;
}

static void backoff_sleep(struct tkv_client *c, int attempt)
{
    /* 2, 4, 8 ... ms, at most 200, a random point in [d/2, d] */
    uint64_t d = 2u << (attempt < 7 ? attempt : 7);
    uint64_t r = tkv__random64();
    struct timespec ts;
    (void)c;
    if (d > 200) {
        d = 200;
    }
    d = d / 2 + r % (d / 2 + 1);
    ts.tv_sec = (time_t)(d / 1000);
    ts.tv_nsec = (long)(d % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

int tkv_transaction(struct tkv_client *c,
                    tkv_txn_fn fn,
                    void *arg,
                    const struct tkv_opts *opts,
                    uint64_t *version,
                    struct tkv_err *err)
{
    struct tkv_txn tx;
    json_t *conflict = NULL;
    uint64_t v = 0;
    int rv;

    tkv_err_clear(err);
    if (version != NULL) {
        *version = 0;
    }
    if (c == NULL || fn == NULL) {
        return tkv_err_set(err, TKV_EINVALID, "client or fn is NULL");
    }
    if (tkv__io_on_thread(c)) {
        return tkv_err_set(err, TKV_EINVALID,
                           "a transaction cannot run in an async callback");
    }
    memset(&tx, 0, sizeof tx);
    tx.c = c;
    tx.opts = opts;
    tkv_buf_init(&tx.keys);
    tx.w = tkv_atomic_new();
    if (tx.w == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    for (tx.attempt = 1;; tx.attempt++) {
        struct tkv_err e;
        txn_reset(&tx);
        json_decref(conflict);
        conflict = NULL;
        rv = fn(&tx, arg);
        if (rv != 0) {
            if (rv > 0) {
                rv = tkv_err_set(err, TKV_EABORTED,
                                 "transaction aborted: its function "
                                 "returned %d",
                                 rv);
            } else if (tx.failed && rv == tx.fail_err.code) {
                *err = tx.fail_err;
            } else {
                tkv_err_set(err, rv,
                            "transaction aborted: its function returned "
                            "%d (%s)",
                            rv, tkv_strerror(rv));
            }
            break;
        }
        tkv_err_clear(&e);
        rv = txn_commit(&tx, &v, &conflict, &e);
        if (rv != TKV_ECONFLICT) {
            if (rv != 0 && err != NULL) {
                *err = e;
            }
            break;
        }
        if (tx.attempt >= c->txn_attempts) {
            char *k = conflict != NULL
                          ? json_dumps(conflict, JSON_COMPACT | JSON_ENCODE_ANY)
                          : NULL;
            tkv_err_set(err, TKV_ECONFLICT,
                        "transaction conflicted %d times; last conflict on "
                        "key %s",
                        tx.attempt, k != NULL ? k : "?");
            free(k);
            break;
        }
        backoff_sleep(c, tx.attempt);
    }
    if (rv == 0 && version != NULL) {
        *version = v;
    }
    json_decref(conflict);
    txn_reset(&tx);
    tkv_free(tx.reads);
    tkv_buf_close(&tx.keys);
    tkv_atomic_free(tx.w);
    return rv;
}
