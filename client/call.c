/* Calls: from a filled struct tkv_req to a frame, and from a reply to what
 * the user gets back.
 *
 * Building runs in the calling thread, so validation errors come back
 * before anything is queued and encoding work is spread over the callers'
 * threads instead of loading the I/O thread:
 *   1. a request id from the client's counter;
 *   2. for writes, the next sequence number of the client's session and
 *      the ack (the lowest sequence number still unanswered); at most
 *      TKV__SEQ_WINDOW writes are unanswered at once;
 *   3. tkv_req_encode() into one frame, refused when over the frame limit.
 *
 * Completion runs on the I/O thread (done): an async call converts the
 * reply to JSON there and runs the user's callback; a sync call only wakes
 * its caller, which converts the reply in its own thread. */
#include <math.h>
#include <string.h>

#include "../common/alloc.h"
#include "../statemachine/keycodec.h"
#include "../statemachine/value.h"
#include "client.h"

/* ------------------------------------------------------------------ */
/* Session sequence numbers                                            */

static int seq_take(struct tkv_client *c,
                    int wait,
                    uint64_t deadline,
                    uint64_t *seq,
                    uint64_t *ack,
                    struct tkv_err *err)
{
    int rv = 0;
    pthread_mutex_lock(&c->seq_mu);
    while (c->seq_next - c->seq_low >= TKV__SEQ_WINDOW) {
        struct timespec ts;
        uint64_t now = tkv__now_ms();
        if (!wait) {
            rv = tkv_err_set(err, TKV_EBUSY, "too many writes in flight (%d)",
                             TKV__SEQ_WINDOW);
            goto out;
        }
        if (now >= deadline) {
            rv = tkv_err_set(err, TKV_EUNAVAILABLE,
                             "not applied: %d writes in flight did not "
                             "finish within the timeout",
                             TKV__SEQ_WINDOW);
            goto out;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)((deadline - now) / 1000);
        ts.tv_nsec += (long)((deadline - now) % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->seq_cv, &c->seq_mu, &ts);
    }
    *seq = c->seq_next++;
    *ack = c->seq_low;
out:
    pthread_mutex_unlock(&c->seq_mu);
    return rv;
}

void tkv__seq_release(struct tkv_client *c, uint64_t seq)
{
    int moved = 0;
    pthread_mutex_lock(&c->seq_mu);
    c->seq_done[seq % TKV__SEQ_WINDOW] = 1;
    while (c->seq_low < c->seq_next &&
           c->seq_done[c->seq_low % TKV__SEQ_WINDOW]) {
        c->seq_done[c->seq_low % TKV__SEQ_WINDOW] = 0;
        c->seq_low++;
        moved = 1;
    }
    if (moved) {
        pthread_cond_broadcast(&c->seq_cv);
    }
    pthread_mutex_unlock(&c->seq_mu);
}

/* ------------------------------------------------------------------ */
/* Building                                                            */

int tkv__eventual(const struct tkv_client *c, const struct tkv_opts *opts)
{
    if (opts != NULL) {
        return opts->consistency == TKV_EVENTUAL;
    }
    return c->consistency == TKV_EVENTUAL;
}

int tkv__ttl_ms(double ttl_seconds, uint64_t *ms, struct tkv_err *err)
{
    /* 100 years: far beyond any use, far below overflow */
    const double max = 100.0 * 365 * 24 * 3600;
    if (ttl_seconds == 0) {
        *ms = 0;
        return 0;
    }
    if (!isfinite(ttl_seconds) || ttl_seconds < 0 || ttl_seconds > max) {
        return tkv_err_set(err, TKV_EINVALID,
                           "ttlInSeconds must be a positive number of "
                           "seconds (at most %.0f), got %g",
                           max, ttl_seconds);
    }
    *ms = (uint64_t)llround(ttl_seconds * 1000.0);
    if (*ms == 0) {
        *ms = 1; /* a positive ttl below half a millisecond */
    }
    return 0;
}

int tkv__call_new(struct tkv_client *c,
                  struct tkv_req *req,
                  enum tkv__kind kind,
                  const struct tkv_opts *opts,
                  int wait,
                  struct tkv__call **out,
                  struct tkv_err *err)
{
    struct tkv__call *call;
    struct tkv_buf b;
    int timeout = c->timeout_ms;
    int rv;

    if (opts != NULL) {
        if (opts->timeout_ms < 0) {
            return tkv_err_set(err, TKV_EINVALID,
                               "timeout_ms must be >= 0 (0: the default)");
        }
        if (opts->consistency != TKV_STRONG &&
            opts->consistency != TKV_EVENTUAL) {
            return tkv_err_set(err, TKV_EINVALID,
                               "consistency must be TKV_STRONG or "
                               "TKV_EVENTUAL");
        }
        if (opts->timeout_ms > 0) {
            timeout = opts->timeout_ms;
        }
    }
    call = tkv_calloc(1, sizeof *call);
    if (call == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    call->client = c;
    call->id = atomic_fetch_add(&c->next_id, 1);
    call->op = req->op;
    call->kind = kind;
    call->deadline = tkv__now_ms() + (uint64_t)timeout;
    req->id = call->id;

    if (kind == TKV__WRITE) {
        uint64_t ack = 0;
        rv = seq_take(c, wait, call->deadline, &call->seq, &ack, err);
        if (rv != 0) {
            goto err_after_alloc;
        }
        req->session = c->session;
        req->seq = call->seq;
        req->ack = ack;
    }

    tkv_buf_init(&b);
    rv = tkv_req_encode(req, &b);
    if (rv == TKV_ETOO_LARGE) {
        tkv_buf_close(&b);
        rv = tkv_err_set(err, TKV_ETOO_LARGE,
                         "request too large: over the protocol's limit of "
                         "%u bytes (2 MiB) once encoded",
                         TKV_FRAME_MAX);
        goto err_after_seq;
    }
    if (rv != 0) {
        tkv_buf_close(&b);
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory encoding a request");
        goto err_after_seq;
    }
    call->frame = tkv_buf_steal(&b, &call->frame_len);
    *out = call;
    return 0;

err_after_seq:
    if (kind == TKV__WRITE) {
        tkv__seq_release(c, call->seq);
    }
err_after_alloc:
    tkv_free(call);
    return rv;
}

void tkv__call_free(struct tkv__call *call)
{
    if (call == NULL) {
        return;
    }
    if (call->have_reply) {
        tkv_reply_close(&call->reply);
    }
    tkv_free(call->payload);
    tkv_free(call->frame);
    tkv_free(call->pin_addr);
    tkv_free(call);
}

/* ------------------------------------------------------------------ */
/* Running                                                             */

static void sync_done(struct tkv__call *call)
{
    pthread_mutex_lock(&call->mu);
    call->finished = 1;
    pthread_cond_signal(&call->cv);
    pthread_mutex_unlock(&call->mu);
}

int tkv__call_run(struct tkv__call *call, struct tkv_err *err)
{
    struct tkv_client *c = call->client;

    pthread_mutex_init(&call->mu, NULL);
    pthread_cond_init(&call->cv, NULL);
    call->done = sync_done;
    atomic_fetch_add(&c->inflight, 1);
    tkv__io_submit(c, call);
    pthread_mutex_lock(&call->mu);
    while (!call->finished) {
        pthread_cond_wait(&call->cv, &call->mu);
    }
    pthread_mutex_unlock(&call->mu);
    pthread_cond_destroy(&call->cv);
    pthread_mutex_destroy(&call->mu);
    if (call->rc != 0 && err != NULL) {
        *err = call->err;
    }
    return call->rc;
}

static void async_done(struct tkv__call *call)
{
    struct tkv_response res;
    struct tkv_err e;
    int rc = call->rc;

    memset(&res, 0, sizeof res);
    e = call->err;
    if (rc == 0 || rc == TKV_ECONFLICT) {
        int rv = tkv__response_build(call, &res, &e);
        if (rv != 0) {
            rc = rv;
        }
    }
    call->cb(call->arg, rc, &res, &e);
    tkv__response_clear(&res);
    tkv__call_free(call);
}

void tkv__call_start_async(struct tkv__call *call, tkv_done_cb cb, void *arg)
{
    call->cb = cb;
    call->arg = arg;
    call->done = async_done;
    /* the count was taken by the async entry point (max_inflight) */
    tkv__io_submit(call->client, call);
}

/* ------------------------------------------------------------------ */
/* Replies -> JSON                                                     */

json_t *tkv__value_to_json(const uint8_t *v, size_t len, struct tkv_err *err)
{
    msgpack_unpacked u;
    size_t off = 0;
    json_t *j = NULL;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)v, len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        tkv_err_set(err, TKV_EPROTO, "malformed value in reply");
    } else {
        j = tkv_value_to_json(&u.data, err);
    }
    msgpack_unpacked_destroy(&u);
    return j;
}

struct tkv_item *tkv__item_from_entry(const struct tkv_entry_ref *e,
                                      struct tkv_err *err)
{
    struct tkv_item *it = tkv_calloc(1, sizeof *it);
    if (it == NULL) {
        tkv_err_set(err, TKV_ENOMEM, "out of memory");
        return NULL;
    }
    it->key = tkv_key_to_json(e->key, e->klen);
    if (it->key == NULL) {
        tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto err_after_alloc;
    }
    it->value = tkv__value_to_json(e->value, e->vlen, err);
    if (it->value == NULL) {
        goto err_after_key;
    }
    it->version = e->version;
    return it;

err_after_key:
    json_decref(it->key);
err_after_alloc:
    tkv_free(it);
    return NULL;
}

static int page_build(const struct tkv_reply *r,
                      struct tkv_page **out,
                      struct tkv_err *err)
{
    struct tkv_page *pg = tkv_calloc(1, sizeof *pg);
    size_t i;

    if (pg == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    pg->total = r->total;
    if (r->nentries > 0) {
        pg->items = tkv_calloc(r->nentries, sizeof *pg->items);
        if (pg->items == NULL) {
            tkv_free(pg);
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
    }
    for (i = 0; i < r->nentries; i++) {
        struct tkv_item *it = tkv__item_from_entry(&r->entries[i], err);
        if (it == NULL) {
            tkv_page_free(pg);
            return err != NULL ? err->code : TKV_ENOMEM;
        }
        pg->items[i] = *it;
        pg->n++;
        tkv_free(it);
    }
    if (r->cursor != NULL) {
        pg->cursor = tkv_strdup(r->cursor);
        if (pg->cursor == NULL) {
            tkv_page_free(pg);
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
    }
    *out = pg;
    return 0;
}

int tkv__response_build(struct tkv__call *call,
                        struct tkv_response *res,
                        struct tkv_err *err)
{
    const struct tkv_reply *r = &call->reply;
    size_t i;

    if (!call->have_reply) {
        return 0;
    }
    res->version = r->version;
    switch (call->op) {
        case TKV_OP_GET:
            if (r->nentries > 0 && r->entries[0].present) {
                res->item = tkv__item_from_entry(&r->entries[0], err);
                if (res->item == NULL) {
                    return err != NULL ? err->code : TKV_ENOMEM;
                }
            }
            break;
        case TKV_OP_GET_MANY:
            res->items = tkv_calloc(r->nentries > 0 ? r->nentries : 1,
                                    sizeof *res->items);
            if (res->items == NULL) {
                return tkv_err_set(err, TKV_ENOMEM, "out of memory");
            }
            res->nitems = r->nentries;
            for (i = 0; i < r->nentries; i++) {
                if (!r->entries[i].present) {
                    continue;
                }
                res->items[i] = tkv__item_from_entry(&r->entries[i], err);
                if (res->items[i] == NULL) {
                    return err != NULL ? err->code : TKV_ENOMEM;
                }
            }
            break;
        case TKV_OP_LIST:
            return page_build(r, &res->page, err);
        case TKV_OP_ATOMIC:
            if (call->rc == TKV_ECONFLICT && r->conflict != NULL) {
                res->conflict = tkv_key_to_json(r->conflict, r->conflict_len);
            }
            break;
        default:
            break;
    }
    return 0;
}

void tkv__response_clear(struct tkv_response *res)
{
    tkv_item_free(res->item);
    tkv_items_free(res->items, res->nitems);
    tkv_page_free(res->page);
    json_decref(res->conflict);
    memset(res, 0, sizeof *res);
}

/* ------------------------------------------------------------------ */
/* Public helpers for results                                          */

void tkv_item_free(struct tkv_item *item)
{
    if (item == NULL) {
        return;
    }
    json_decref(item->key);
    json_decref(item->value);
    tkv_free(item);
}

void tkv_items_free(struct tkv_item **items, size_t n)
{
    size_t i;
    if (items == NULL) {
        return;
    }
    for (i = 0; i < n; i++) {
        tkv_item_free(items[i]);
    }
    tkv_free(items);
}

void tkv_page_free(struct tkv_page *page)
{
    size_t i;
    if (page == NULL) {
        return;
    }
    for (i = 0; i < page->n; i++) {
        json_decref(page->items[i].key);
        json_decref(page->items[i].value);
    }
    tkv_free(page->items);
    tkv_free(page->cursor);
    tkv_free(page);
}

void tkv_version_str(uint64_t version, char out[17])
{
    tkv_version_format(version, out);
}

int tkv_version_from_str(const char *s, uint64_t *version)
{
    if (s == NULL) {
        return TKV_EINVALID;
    }
    return tkv_version_parse(s, strlen(s), version);
}
