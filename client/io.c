/* The client's I/O thread: one libuv loop that owns every connection.
 *
 * Happy path of one call:
 *   1. tkv__io_submit() (any thread) appends the call to the submit queue
 *      and wakes the loop (uv_async_send; from a callback on the I/O
 *      thread itself, an idle handle takes it at the next turn instead).
 *   2. wake_cb takes the whole queue, files each call in the id hash and the
 *      `all` list (deadlines), and puts it in `waiting`.
 *   3. pump() picks the current endpoint (the believed leader), opening a
 *      connection when there is none, and moves every waiting call onto it:
 *      the frames are appended to the connection's write buffer, which goes
 *      out as one uv_write (many requests in flight on one connection).
 *   4. read_cb cuts replies out of the byte stream, finds each one's call by
 *      id, decodes it (tkv_reply_decode) and finishes the call: done() runs
 *      the async callback or wakes the synchronous caller.
 *
 * Failures and what they become:
 *   - NOT_LEADER with an address: the address becomes the current endpoint
 *     (added to the list if new) and the call is re-sent there at once (after
 *     a few hops, with backoff); without an address: next endpoint, backoff.
 *   - UNAVAILABLE / BUSY (nothing was applied): backoff, resend.
 *   - TIMEOUT / UNKNOWN / SHUTDOWN from the node, or a connection lost with
 *     the call in flight: the attempt may have been applied. Reads and
 *     deduplicated writes are re-sent (the node answers a repeated (session,
 *     seq) with the first result); the write is marked maybe_applied.
 *     Membership changes are not deduplicated, so they finish TKV_EUNKNOWN.
 *   - a lost connection marks its endpoint down for a backoff that doubles
 *     with each failure; calls move to the next endpoint.
 *   - the tick timer (every 10 ms while calls are outstanding) finishes calls
 *     past their deadline: a write in flight or maybe applied gets
 *     TKV_EUNKNOWN, one never sent TKV_EUNAVAILABLE, a read TKV_ETIMEOUT or
 *     TKV_EUNAVAILABLE; it also drops a connection whose oldest request has
 *     waited longer than the attempt timeout (a hung node), and moves
 *     delayed calls whose backoff is over back to waiting.
 *   - pinned calls (status of one node) are never redirected or retried.
 *
 * Everything below except tkv__io_submit, tkv__io_start/stop and
 * tkv__io_on_thread runs on the I/O thread and needs no locks. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../common/alloc.h"
#include "../proto/stream.h"
#include "client.h"

#define TICK_MS 10
#define ATTEMPT_TIMEOUT_MS 2000 /* no reply at all for this long: hung node */
#define BACKOFF_BASE_MS 10
#define BACKOFF_MAX_MS 500
#define EP_DOWN_BASE_MS 50
#define EP_DOWN_MAX_MS 1000
#define READ_CHUNK 65536
#define MAX_QUICK_REDIRECTS 3

enum conn_state { CONN_CONNECTING, CONN_OPEN, CONN_CLOSING };

struct tkv__endpoint {
    char *addr; /* owned: "host:port" */
    struct sockaddr_storage sa;
    int resolved;
    struct tkv__conn *conn; /* open or opening connection, or NULL */
    uint64_t down_until;    /* ms: do not connect before */
    unsigned failures;
};

struct tkv__conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t timer; /* connect timeout */
    struct tkv_client *client;
    struct tkv__endpoint *ep; /* NULL once closing */
    char addr[128];           /* for messages, outlives ep link */
    enum conn_state state;
    int open_handles;          /* tcp + timer; freed when 0 */
    struct tkv__link inflight; /* calls sent here, in send order */
    size_t ninflight;
    struct tkv_buf rbuf; /* owned: received, not yet cut */
    struct tkv_buf wbuf; /* owned: frames not yet written */
    int writing;         /* a uv_write is outstanding */
};

struct write_req {
    uv_write_t req;
    struct tkv__conn *conn;
    uint8_t *data; /* owned */
    size_t len;
};

static _Thread_local const struct tkv_client *io_thread_client;

static void pump(struct tkv_client *c);
static void conn_fail(struct tkv__conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

uint64_t tkv__now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

uint64_t tkv__random64(void)
{
    uint64_t x = 0;
    if (getrandom(&x, sizeof x, 0) != (ssize_t)sizeof x || x == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^
            (uint64_t)(uintptr_t)&x;
        x ^= x >> 31;
        if (x == 0) {
            x = 1;
        }
    }
    return x;
}

static uint64_t rng_next(struct tkv_client *c)
{
    /* xorshift64*: jitter only, never for ids */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * 0x2545F4914F6CDD1Dull;
}

int tkv__io_on_thread(const struct tkv_client *c)
{
    return io_thread_client == c;
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */

static int ep_resolve(struct tkv__endpoint *ep, char *msg, size_t msgcap)
{
    char host[256];
    int port;
    struct tkv_err e;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    int rv;

    if (ep->resolved) {
        return 0;
    }
    if (tkv_addr_split(ep->addr, strlen(ep->addr), host, sizeof host,
                            &port, &e) != 0) {
        snprintf(msg, msgcap, "%.150s", e.msg);
        return -1;
    }
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ep->sa) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ep->sa) == 0) {
        ep->resolved = 1;
        return 0;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rv = getaddrinfo(host, NULL, &hints, &res);
    if (rv != 0 || res == NULL) {
        snprintf(msg, msgcap, "cannot resolve %.100s: %.60s", host,
                 rv != 0 ? gai_strerror(rv) : "no address");
        return -1;
    }
    memcpy(&ep->sa, res->ai_addr, res->ai_addrlen);
    if (res->ai_family == AF_INET) {
        ((struct sockaddr_in *)&ep->sa)->sin_port = htons((uint16_t)port);
    } else {
        ((struct sockaddr_in6 *)&ep->sa)->sin6_port = htons((uint16_t)port);
    }
    freeaddrinfo(res);
    ep->resolved = 1;
    return 0;
}

static struct tkv__endpoint *ep_find(struct tkv_client *c,
                                     const char *addr,
                                     size_t *idx)
{
    size_t i;
    for (i = 0; i < c->neps; i++) {
        if (strcmp(c->eps[i]->addr, addr) == 0) {
            if (idx != NULL) {
                *idx = i;
            }
            return c->eps[i];
        }
    }
    return NULL;
}

static struct tkv__endpoint *ep_add(struct tkv_client *c,
                                    const char *addr,
                                    size_t len)
{
    struct tkv__endpoint *ep;
    struct tkv__endpoint **eps;

    eps = tkv_realloc(c->eps, (c->neps + 1) * sizeof *eps);
    if (eps == NULL) {
        return NULL;
    }
    c->eps = eps;
    ep = tkv_calloc(1, sizeof *ep);
    if (ep == NULL) {
        return NULL;
    }
    ep->addr = tkv_malloc(len + 1);
    if (ep->addr == NULL) {
        tkv_free(ep);
        return NULL;
    }
    memcpy(ep->addr, addr, len);
    ep->addr[len] = '\0';
    c->eps[c->neps++] = ep;
    return ep;
}

/* The endpoint calls go to: the current one unless it is down, else the
 * next one that is up (which becomes current); NULL when all are down. */
static struct tkv__endpoint *ep_pick(struct tkv_client *c, uint64_t now)
{
    size_t i;
    for (i = 0; i < c->neps; i++) {
        size_t idx = (c->current + i) % c->neps;
        struct tkv__endpoint *ep = c->eps[idx];
        if (ep->conn != NULL || ep->down_until <= now) {
            c->current = idx;
            return ep;
        }
    }
    return NULL;
}

static void ep_mark_down(struct tkv_client *c, struct tkv__endpoint *ep)
{
    uint64_t d = EP_DOWN_BASE_MS << (ep->failures < 5 ? ep->failures : 5);
    if (d > EP_DOWN_MAX_MS) {
        d = EP_DOWN_MAX_MS;
    }
    ep->failures++;
    ep->down_until = tkv__now_ms() + d / 2 + rng_next(c) % (d / 2 + 1);
}

static void rotate_from(struct tkv_client *c, struct tkv__endpoint *ep)
{
    if (c->neps > 0 && c->eps[c->current] == ep) {
        c->current = (c->current + 1) % c->neps;
    }
}

/* ------------------------------------------------------------------ */
/* The id hash and finishing calls                                     */

static size_t hash_slot(const struct tkv_client *c, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (c->nbuckets - 1);
}

static int hash_insert(struct tkv_client *c, struct tkv__call *call)
{
    size_t slot;
    if (c->ncalls + 1 > c->nbuckets) {
        size_t n = c->nbuckets * 2;
        size_t i;
        struct tkv__call **b = tkv_calloc(n, sizeof *b);
        if (b == NULL) {
            return TKV_ENOMEM;
        }
        for (i = 0; i < c->nbuckets; i++) {
            struct tkv__call *x = c->buckets[i];
            while (x != NULL) {
                struct tkv__call *next = x->hnext;
                size_t s =
                    (size_t)((x->id * 0x9E3779B97F4A7C15ull) >> 20) & (n - 1);
                x->hnext = b[s];
                b[s] = x;
                x = next;
            }
        }
        tkv_free(c->buckets);
        c->buckets = b;
        c->nbuckets = n;
    }
    slot = hash_slot(c, call->id);
    call->hnext = c->buckets[slot];
    c->buckets[slot] = call;
    c->ncalls++;
    return 0;
}

static struct tkv__call *hash_find(struct tkv_client *c, uint64_t id)
{
    struct tkv__call *x = c->buckets[hash_slot(c, id)];
    while (x != NULL && x->id != id) {
        x = x->hnext;
    }
    return x;
}

static void hash_remove(struct tkv_client *c, struct tkv__call *call)
{
    struct tkv__call **p = &c->buckets[hash_slot(c, call->id)];
    while (*p != NULL) {
        if (*p == call) {
            *p = call->hnext;
            c->ncalls--;
            return;
        }
        p = &(*p)->hnext;
    }
}

static void call_detach(struct tkv__call *call)
{
    if (call->where == TKV__INFLIGHT) {
        call->conn->ninflight--;
        call->conn = NULL;
    }
    if (call->where == TKV__WAITING || call->where == TKV__DELAYED ||
        call->where == TKV__INFLIGHT) {
        tkv__list_remove(&call->q);
    }
}

/* Finish a registered call: rc 0 keeps the decoded reply; an error sets
 * err with the message. The call leaves every structure, then done() runs
 * (and may free it). */
static void finish(struct tkv__call *call, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void finish(struct tkv__call *call, int rc, const char *fmt, ...)
{
    struct tkv_client *c = call->client;

    call_detach(call);
    tkv__list_remove(&call->all);
    hash_remove(c, call);
    call->where = TKV__DONE;
    if (call->kind == TKV__WRITE) {
        tkv__seq_release(c, call->seq);
    }
    call->rc = rc;
    if (rc != 0 && fmt != NULL) {
        va_list ap;
        call->err.code = rc;
        va_start(ap, fmt);
        vsnprintf(call->err.msg, sizeof call->err.msg, fmt, ap);
        va_end(ap);
    } else if (rc == 0) {
        tkv_err_clear(&call->err);
    }
    atomic_fetch_sub(&c->inflight, 1);
    call->done(call);
}

static void drop_reply(struct tkv__call *call)
{
    if (call->have_reply) {
        tkv_reply_close(&call->reply);
        call->have_reply = 0;
    }
    tkv_free(call->payload);
    call->payload = NULL;
}

static void to_waiting(struct tkv_client *c, struct tkv__call *call)
{
    call_detach(call);
    call->where = TKV__WAITING;
    tkv__list_push(&c->waiting, &call->q);
}

static void to_delayed(struct tkv_client *c, struct tkv__call *call)
{
    uint64_t d;
    unsigned shift = call->attempts > 0 ? call->attempts - 1 : 0;

    d = (uint64_t)BACKOFF_BASE_MS << (shift < 8 ? shift : 8);
    if (d > BACKOFF_MAX_MS) {
        d = BACKOFF_MAX_MS;
    }
    call_detach(call);
    call->where = TKV__DELAYED;
    call->retry_at = tkv__now_ms() + d / 2 + rng_next(c) % (d / 2 + 1);
    tkv__list_push(&c->delayed, &call->q);
}

/* ------------------------------------------------------------------ */
/* Connections                                                         */

static void conn_closed_cb(uv_handle_t *h)
{
    struct tkv__conn *conn = h->data;
    if (--conn->open_handles == 0) {
        tkv_buf_close(&conn->rbuf);
        tkv_buf_close(&conn->wbuf);
        tkv_free(conn);
    }
}

static void conn_close_handles(struct tkv__conn *conn)
{
    uv_close((uv_handle_t *)&conn->timer, conn_closed_cb);
    uv_close((uv_handle_t *)&conn->tcp, conn_closed_cb);
}

/* The connection is gone (error, EOF, timeout): every call on it goes
 * elsewhere or finishes, its endpoint is marked down. */
static void conn_fail(struct tkv__conn *conn, const char *fmt, ...)
{
    struct tkv_client *c = conn->client;
    struct tkv__endpoint *ep = conn->ep;
    char why[200];
    struct tkv__link *l;
    va_list ap;

    if (conn->state == CONN_CLOSING) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);

    conn->state = CONN_CLOSING;
    ep->conn = NULL;
    conn->ep = NULL;
    ep_mark_down(c, ep);
    rotate_from(c, ep);

    while (!tkv__list_empty(&conn->inflight)) {
        struct tkv__call *call =
            TKV__CONTAINER(conn->inflight.next, struct tkv__call, q);
        snprintf(call->last_error, sizeof call->last_error, "%s", why);
        if (call->pin != NULL) {
            finish(call, TKV_EUNAVAILABLE, "%s", why);
        } else if (call->kind == TKV__ADMIN) {
            finish(call, TKV_EUNKNOWN,
                   "outcome unknown: %s with the request in flight", why);
        } else {
            if (call->kind == TKV__WRITE) {
                call->maybe_applied = 1;
            }
            to_waiting(c, call);
        }
    }
    /* calls that were waiting for this connection */
    l = c->waiting.next;
    while (l != &c->waiting) {
        struct tkv__call *call = TKV__CONTAINER(l, struct tkv__call, q);
        l = l->next;
        if (call->pin == ep) {
            finish(call, TKV_EUNAVAILABLE, "%s", why);
        } else if (call->pin == NULL) {
            snprintf(call->last_error, sizeof call->last_error, "%s", why);
        }
    }
    conn_close_handles(conn);
    pump(c);
}

static void write_cb(uv_write_t *req, int status);

static void conn_flush(struct tkv__conn *conn)
{
    struct write_req *w;
    uv_buf_t b;
    int rv;

    if (conn->state != CONN_OPEN || conn->writing || conn->wbuf.len == 0) {
        return;
    }
    b = uv_buf_init((char *)conn->wbuf.data, (unsigned)conn->wbuf.len);
    rv = tkv_stream_try_write((uv_stream_t *)&conn->tcp, &b);
    if (rv == 0) {
        tkv_buf_reset(&conn->wbuf);
        return;
    }
    if (rv < 0) {
        conn_fail(conn, "write to %s: %s", conn->addr, uv_strerror(rv));
        return;
    }
    w = tkv_malloc(sizeof *w);
    if (w == NULL) {
        conn_fail(conn, "out of memory writing to %s", conn->addr);
        return;
    }
    w->conn = conn;
    /* b, what is left, points into the bytes the request now owns */
    w->data = tkv_buf_steal(&conn->wbuf, &w->len);
    rv = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, write_cb);
    if (rv != 0) {
        tkv_free(w->data);
        tkv_free(w);
        conn_fail(conn, "write to %s: %s", conn->addr, uv_strerror(rv));
        return;
    }
    conn->writing = 1;
}

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct tkv__conn *conn = w->conn;

    tkv_free(w->data);
    tkv_free(w);
    conn->writing = 0;
    if (status < 0) {
        conn_fail(conn, "write to %s: %s", conn->addr, uv_strerror(status));
        return;
    }
    conn_flush(conn);
}

static void conn_send(struct tkv__conn *conn, struct tkv__call *call)
{
    if (tkv_buf_append(&conn->wbuf, call->frame, call->frame_len) != 0) {
        /* The buffer is sticky-failed: drop what it held. The calls whose
         * frames were in it are in flight without having been sent, so the
         * attempt timeout drops the connection and they are re-sent. */
        tkv_buf_reset(&conn->wbuf);
        finish(call,
               call->kind == TKV__READ || !call->ever_sent ? TKV_ENOMEM
                                                           : TKV_EUNKNOWN,
               "out of memory sending a request");
        return;
    }
    call_detach(call);
    call->where = TKV__INFLIGHT;
    call->conn = conn;
    conn->ninflight++;
    tkv__list_push(&conn->inflight, &call->q);
    call->sent_at = tkv__now_ms();
    call->attempts++;
    call->ever_sent = 1;
}

/* A node's error answer that says nothing was applied and another try (here
 * or elsewhere) may succeed. */
static void retry_after_error(struct tkv_client *c,
                              struct tkv__call *call,
                              struct tkv__endpoint *ep,
                              int code,
                              int maybe_applied)
{
    snprintf(
        call->last_error, sizeof call->last_error, "%s: %s",
        ep != NULL ? ep->addr : "?",
        call->reply.message != NULL ? call->reply.message : tkv_strerror(code));
    if (call->pin != NULL) {
        char msg[sizeof call->last_error];
        memcpy(msg, call->last_error, sizeof msg);
        drop_reply(call);
        finish(call, code, "%s", msg);
        return;
    }
    if (maybe_applied && call->kind == TKV__ADMIN) {
        char msg[sizeof call->last_error];
        memcpy(msg, call->last_error, sizeof msg);
        drop_reply(call);
        finish(call, TKV_EUNKNOWN, "outcome unknown: %s", msg);
        return;
    }
    if (maybe_applied && call->kind == TKV__WRITE) {
        call->maybe_applied = 1;
    }
    drop_reply(call);
    if (code == TKV_EUNAVAILABLE || code == TKV_ESHUTDOWN) {
        rotate_from(c, ep);
    }
    to_delayed(c, call);
}

static void redirect(struct tkv_client *c,
                     struct tkv__call *call,
                     struct tkv__endpoint *from)
{
    const char *leader = call->reply.leader;
    struct tkv__endpoint *to = NULL;
    size_t idx = 0;

    snprintf(call->last_error, sizeof call->last_error,
             "%s is not the leader (leader %s)", from->addr,
             leader != NULL && leader[0] != '\0' ? leader : "unknown");
    if (call->pin != NULL) {
        retry_after_error(c, call, from, TKV_ENOT_LEADER, 0);
        return;
    }
    if (leader != NULL && leader[0] != '\0') {
        char host[256];
        int port;
        if (tkv_addr_split(leader, strlen(leader), host, sizeof host,
                                &port, NULL) == 0) {
            to = ep_find(c, leader, &idx);
            if (to == NULL) {
                to = ep_add(c, leader, strlen(leader));
                idx = c->neps - 1;
            }
        }
    }
    drop_reply(call);
    if (to != NULL && to != from) {
        c->current = idx;
        to->down_until = 0; /* a node says it leads: try it now */
        call->redirects++;
        if (call->redirects <= MAX_QUICK_REDIRECTS) {
            to_waiting(c, call);
        } else {
            to_delayed(c, call);
        }
        return;
    }
    rotate_from(c, from);
    to_delayed(c, call);
}

static int handle_reply(struct tkv__conn *conn, const uint8_t *p, size_t len)
{
    struct tkv_client *c = conn->client;
    struct tkv__endpoint *ep = conn->ep;
    struct tkv__call *call;
    struct tkv_err e;
    uint64_t id = 0;
    int rv;

    tkv_err_clear(&e);
    if (tkv_reply_peek_id(p, len, &id, &e) != 0) {
        conn_fail(conn, "bad reply from %s: %s", conn->addr, e.msg);
        return -1;
    }
    if (id == 0) {
        /* a connection-level error (the node closes next); we never send
         * what provokes one, so just note it */
        return 0;
    }
    call = hash_find(c, id);
    if (call == NULL || call->where != TKV__INFLIGHT || call->conn != conn) {
        return 0; /* answer to a call that already gave up */
    }
    call->payload = tkv_memdup(p, len);
    if (call->payload == NULL) {
        finish(call, call->kind == TKV__READ ? TKV_ENOMEM : TKV_EUNKNOWN,
               "out of memory reading a reply");
        return 0;
    }
    tkv_reply_init(&call->reply);
    call->reply.op = call->op;
    call->have_reply = 1;
    tkv_err_clear(&e);
    rv = tkv_reply_decode(call->payload, len, &call->reply, &e);
    if (rv != 0) {
        /* the node broke the protocol: this call cannot be trusted to any
         * retry, and the connection is dropped */
        drop_reply(call);
        if (call->kind == TKV__READ) {
            finish(call, TKV_EPROTO, "bad reply from %s: %s", conn->addr,
                   e.msg);
        } else {
            finish(call, TKV_EUNKNOWN, "outcome unknown: bad reply from %s: %s",
                   conn->addr, e.msg);
        }
        conn_fail(conn, "bad reply from %s: %s", conn->addr, e.msg);
        return -1;
    }
    ep->failures = 0;
    switch (call->reply.code) {
        case 0:
            finish(call, 0, NULL);
            break;
        case TKV_ENOT_LEADER:
            redirect(c, call, ep);
            break;
        case TKV_EUNAVAILABLE:
        case TKV_EBUSY:
            retry_after_error(c, call, ep, call->reply.code, 0);
            break;
        case TKV_ETIMEOUT:
        case TKV_EUNKNOWN:
        case TKV_ESHUTDOWN:
            retry_after_error(c, call, ep, call->reply.code, 1);
            break;
        case TKV_ESTALE: {
            /* the node forgot this write's result: it was applied once,
             * long ago, but what it returned is lost */
            char msg[256];
            snprintf(msg, sizeof msg, "%s",
                     call->reply.message != NULL ? call->reply.message : "");
            drop_reply(call);
            finish(call, TKV_EUNKNOWN, "outcome unknown: %s", msg);
            break;
        }
        default:
            /* a definite answer: keep the reply (CONFLICT has a key) */
            finish(call, call->reply.code, "%s",
                   call->reply.message != NULL && call->reply.message[0]
                       ? call->reply.message
                       : tkv_strerror(call->reply.code));
            break;
    }
    return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tkv__conn *conn = h->data;
    (void)suggested;
    if (tkv_buf_reserve(&conn->rbuf, READ_CHUNK) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)conn->rbuf.data + conn->rbuf.len;
    buf->len = conn->rbuf.cap - conn->rbuf.len;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct tkv__conn *conn = s->data;
    size_t off = 0;
    (void)buf;

    if (nread < 0) {
        if (nread == UV_EOF) {
            conn_fail(conn, "connection closed by %s", conn->addr);
        } else {
            conn_fail(conn, "read from %s: %s", conn->addr,
                      uv_strerror((int)nread));
        }
        return;
    }
    conn->rbuf.len += (size_t)nread;
    while (conn->rbuf.len - off >= TKV_FRAME_HDR) {
        uint32_t flen = tkv_frame_get_len(conn->rbuf.data + off);
        if (flen > TKV_FRAME_MAX) {
            conn_fail(conn, "reply from %s too large (%u bytes)", conn->addr,
                      flen);
            return;
        }
        if (conn->rbuf.len - off - TKV_FRAME_HDR < flen) {
            break;
        }
        if (handle_reply(conn, conn->rbuf.data + off + TKV_FRAME_HDR, flen) !=
                0 ||
            conn->state == CONN_CLOSING) {
            return;
        }
        off += TKV_FRAME_HDR + flen;
    }
    if (off > 0) {
        memmove(conn->rbuf.data, conn->rbuf.data + off, conn->rbuf.len - off);
        conn->rbuf.len -= off;
    }
    /* replies may have sent calls back to waiting */
    pump(conn->client);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct tkv__conn *conn = req->data;
    int rv;

    if (conn->state == CONN_CLOSING) {
        return; /* timed out already */
    }
    uv_timer_stop(&conn->timer);
    if (status < 0) {
        conn_fail(conn, "connect to %s: %s", conn->addr, uv_strerror(status));
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    rv = uv_read_start((uv_stream_t *)&conn->tcp, alloc_cb, read_cb);
    if (rv != 0) {
        conn_fail(conn, "read from %s: %s", conn->addr, uv_strerror(rv));
        return;
    }
    conn->state = CONN_OPEN;
    pump(conn->client);
}

static void connect_timeout_cb(uv_timer_t *t)
{
    struct tkv__conn *conn = t->data;
    conn_fail(conn, "connect to %s: timed out after %d ms", conn->addr,
              conn->client->connect_timeout_ms);
}

/* Start connecting to ep; NULL when that fails at once (ep marked down). */
static struct tkv__conn *conn_open(struct tkv_client *c,
                                   struct tkv__endpoint *ep,
                                   char *why,
                                   size_t whycap)
{
    struct tkv__conn *conn;
    int rv;

    if (ep_resolve(ep, why, whycap) != 0) {
        goto err;
    }
    conn = tkv_calloc(1, sizeof *conn);
    if (conn == NULL) {
        snprintf(why, whycap, "out of memory");
        goto err;
    }
    conn->client = c;
    conn->ep = ep;
    snprintf(conn->addr, sizeof conn->addr, "%s", ep->addr);
    tkv__list_init(&conn->inflight);
    tkv_buf_init(&conn->rbuf);
    tkv_buf_init(&conn->wbuf);
    uv_tcp_init(&c->loop, &conn->tcp);
    uv_timer_init(&c->loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->creq.data = conn;
    conn->open_handles = 2;
    conn->state = CONN_CONNECTING;
    rv = uv_tcp_connect(&conn->creq, &conn->tcp,
                        (const struct sockaddr *)&ep->sa, connect_cb);
    if (rv != 0) {
        snprintf(why, whycap, "connect to %s: %s", ep->addr, uv_strerror(rv));
        conn->state = CONN_CLOSING;
        conn_close_handles(conn);
        goto err;
    }
    uv_timer_start(&conn->timer, connect_timeout_cb,
                   (uint64_t)c->connect_timeout_ms, 0);
    ep->conn = conn;
    return conn;

err:
    ep_mark_down(c, ep);
    rotate_from(c, ep);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */

static void pump(struct tkv_client *c)
{
    uint64_t now = tkv__now_ms();
    struct tkv__endpoint *cur = NULL;
    struct tkv__link *l;
    char why[200];
    size_t tries;
    size_t i;

    if (tkv__list_empty(&c->waiting)) {
        return;
    }
    for (tries = 0; tries < c->neps; tries++) {
        cur = ep_pick(c, now);
        if (cur == NULL || cur->conn != NULL) {
            break;
        }
        if (conn_open(c, cur, why, sizeof why) != NULL) {
            break;
        }
        /* failed at once: note it on the waiting calls, try the next */
        for (l = c->waiting.next; l != &c->waiting; l = l->next) {
            struct tkv__call *call = TKV__CONTAINER(l, struct tkv__call, q);
            if (call->pin == NULL) {
                snprintf(call->last_error, sizeof call->last_error, "%s", why);
            }
        }
        cur = NULL;
    }

    l = c->waiting.next;
    while (l != &c->waiting) {
        struct tkv__call *call = TKV__CONTAINER(l, struct tkv__call, q);
        struct tkv__endpoint *ep = call->pin != NULL ? call->pin : cur;
        l = l->next;
        if (ep == NULL) {
            continue;
        }
        if (ep->conn == NULL) {
            /* only pinned calls get here: connect regardless of backoff */
            if (conn_open(c, ep, why, sizeof why) == NULL) {
                finish(call, TKV_EUNAVAILABLE, "%s", why);
                continue;
            }
        }
        if (ep->conn->state == CONN_OPEN) {
            conn_send(ep->conn, call);
        }
    }
    for (i = 0; i < c->neps; i++) {
        if (c->eps[i]->conn != NULL) {
            conn_flush(c->eps[i]->conn);
        }
    }
}

static void tick_cb(uv_timer_t *t)
{
    struct tkv_client *c = t->data;
    uint64_t now = tkv__now_ms();
    struct tkv__link *l;
    size_t i;

    /* deadlines */
    l = c->all.next;
    while (l != &c->all) {
        struct tkv__call *call = TKV__CONTAINER(l, struct tkv__call, all);
        int in_flight;
        l = l->next;
        if (now < call->deadline) {
            continue;
        }
        in_flight = call->where == TKV__INFLIGHT;
        if (call->kind != TKV__READ) {
            if (in_flight || call->maybe_applied) {
                finish(call, TKV_EUNKNOWN,
                       "outcome unknown: no answer within the timeout "
                       "(%s)",
                       in_flight ? "request in flight" : call->last_error);
            } else {
                finish(
                    call, TKV_EUNAVAILABLE,
                    "not applied: no node took the request within the "
                    "timeout (%s)",
                    call->last_error[0] ? call->last_error : "no connection");
            }
        } else if (in_flight) {
            finish(call, TKV_ETIMEOUT, "no answer within the timeout");
        } else {
            finish(call, TKV_EUNAVAILABLE,
                   "no node could serve the request within the timeout "
                   "(%s)",
                   call->last_error[0] ? call->last_error : "no connection");
        }
    }

    /* hung connections */
    for (i = 0; i < c->neps; i++) {
        struct tkv__conn *conn = c->eps[i]->conn;
        if (conn != NULL && conn->state == CONN_OPEN &&
            !tkv__list_empty(&conn->inflight)) {
            struct tkv__call *oldest =
                TKV__CONTAINER(conn->inflight.next, struct tkv__call, q);
            if (now - oldest->sent_at >= ATTEMPT_TIMEOUT_MS) {
                conn_fail(conn, "no answer from %s within %d ms", conn->addr,
                          ATTEMPT_TIMEOUT_MS);
            }
        }
    }

    /* backoffs that are over */
    l = c->delayed.next;
    while (l != &c->delayed) {
        struct tkv__call *call = TKV__CONTAINER(l, struct tkv__call, q);
        l = l->next;
        if (now >= call->retry_at) {
            to_waiting(c, call);
        }
    }
    pump(c);

    if (c->ncalls == 0) {
        uv_timer_stop(&c->tick);
        c->tick_active = 0;
    }
}

static void register_call(struct tkv_client *c, struct tkv__call *call)
{
    tkv__list_init(&call->q);
    tkv__list_push(&c->all, &call->all);
    if (hash_insert(c, call) != 0) {
        tkv__list_remove(&call->all);
        call->where = TKV__DONE;
        if (call->kind == TKV__WRITE) {
            tkv__seq_release(c, call->seq);
        }
        call->rc = tkv_err_set(&call->err, TKV_ENOMEM, "out of memory");
        atomic_fetch_sub(&c->inflight, 1);
        call->done(call);
        return;
    }
    if (call->pin_addr != NULL) {
        call->pin = ep_find(c, call->pin_addr, NULL);
        if (call->pin == NULL) {
            call->pin = ep_add(c, call->pin_addr, strlen(call->pin_addr));
        }
        if (call->pin == NULL) {
            call->where = TKV__WAITING;
            tkv__list_push(&c->waiting, &call->q);
            finish(call, TKV_ENOMEM, "out of memory");
            return;
        }
    }
    call->where = TKV__WAITING;
    tkv__list_push(&c->waiting, &call->q);
}

static void shutdown_all(struct tkv_client *c)
{
    size_t i;
    while (!tkv__list_empty(&c->all)) {
        struct tkv__call *call =
            TKV__CONTAINER(c->all.next, struct tkv__call, all);
        finish(call, TKV_ESHUTDOWN, "client closed");
    }
    for (i = 0; i < c->neps; i++) {
        struct tkv__conn *conn = c->eps[i]->conn;
        if (conn != NULL) {
            conn->state = CONN_CLOSING;
            conn->ep = NULL;
            c->eps[i]->conn = NULL;
            conn_close_handles(conn);
        }
    }
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->kick, NULL);
}

/* Take the submit queue: file each call and pump. */
static void take_queue(struct tkv_client *c)
{
    struct tkv__link q;
    int stopping;

    tkv__list_init(&q);
    pthread_mutex_lock(&c->qmu);
    if (!tkv__list_empty(&c->queue)) {
        /* splice the whole queue into q */
        q.next = c->queue.next;
        q.prev = c->queue.prev;
        q.next->prev = &q;
        q.prev->next = &q;
        tkv__list_init(&c->queue);
    }
    stopping = c->stopping;
    pthread_mutex_unlock(&c->qmu);

    while (!tkv__list_empty(&q)) {
        struct tkv__call *call = TKV__CONTAINER(q.next, struct tkv__call, q);
        tkv__list_remove(&call->q);
        register_call(c, call);
    }
    if (stopping) {
        shutdown_all(c);
        return;
    }
    pump(c);
    if (c->ncalls > 0 && !c->tick_active) {
        uv_timer_start(&c->tick, tick_cb, TICK_MS, TICK_MS);
        c->tick_active = 1;
    }
}

static void wake_cb(uv_async_t *a)
{
    take_queue(a->data);
}

static void kick_cb(uv_idle_t *h)
{
    uv_idle_stop(h);
    take_queue(h->data);
}

static void io_thread(void *arg)
{
    struct tkv_client *c = arg;
    io_thread_client = c;
    uv_run(&c->loop, UV_RUN_DEFAULT);
}

void tkv__io_submit(struct tkv_client *c, struct tkv__call *call)
{
    pthread_mutex_lock(&c->qmu);
    tkv__list_push(&c->queue, &call->q);
    pthread_mutex_unlock(&c->qmu);
    if (io_thread_client == c) {
        /* a callback submitting again; after the shutdown no turn comes */
        if (!uv_is_closing((uv_handle_t *)&c->kick)) {
            uv_idle_start(&c->kick, kick_cb);
        }
    } else {
        uv_async_send(&c->wake);
    }
}

int tkv__io_start(struct tkv_client *c,
                  const char *endpoints,
                  struct tkv_err *err)
{
    const char *p = endpoints;
    int rv;

    tkv__list_init(&c->queue);
    tkv__list_init(&c->waiting);
    tkv__list_init(&c->delayed);
    tkv__list_init(&c->all);
    c->rng = tkv__random64();

    /* endpoints: comma separated, blanks around items ignored */
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        char host[256];
        int port;
        while (len > 0 && (*s == ' ' || *s == '\t')) {
            s++;
            len--;
        }
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
            len--;
        }
        if (len == 0) {
            rv = tkv_err_set(err, TKV_EINVALID, "empty endpoint in list '%s'",
                             endpoints);
            goto err_after_eps;
        }
        rv = tkv_addr_split(s, len, host, sizeof host, &port, err);
        if (rv != 0) {
            goto err_after_eps;
        }
        if (ep_add(c, s, len) == NULL) {
            rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
            goto err_after_eps;
        }
        if (end == NULL) {
            break;
        }
        p = end + 1;
    }
    c->neps_config = c->neps;
    /* spread clients over the endpoints until they learn the leader */
    c->current = (size_t)(c->rng % c->neps);

    c->nbuckets = 256;
    c->buckets = tkv_calloc(c->nbuckets, sizeof *c->buckets);
    if (c->buckets == NULL) {
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto err_after_eps;
    }
    rv = uv_loop_init(&c->loop);
    if (rv != 0) {
        rv = tkv_err_set(err, TKV_EIO, "uv_loop_init: %s", uv_strerror(rv));
        goto err_after_buckets;
    }
    uv_async_init(&c->loop, &c->wake, wake_cb);
    c->wake.data = c;
    uv_idle_init(&c->loop, &c->kick);
    c->kick.data = c;
    uv_timer_init(&c->loop, &c->tick);
    c->tick.data = c;
    rv = uv_thread_create(&c->thread, io_thread, c);
    if (rv != 0) {
        rv = tkv_err_set(err, TKV_EIO, "cannot start the I/O thread: %s",
                         uv_strerror(rv));
        goto err_after_loop;
    }
    return 0;

err_after_loop:
    uv_close((uv_handle_t *)&c->wake, NULL);
    uv_close((uv_handle_t *)&c->kick, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
err_after_buckets:
    tkv_free(c->buckets);
    c->buckets = NULL;
err_after_eps:
    while (c->neps > 0) {
        struct tkv__endpoint *ep = c->eps[--c->neps];
        tkv_free(ep->addr);
        tkv_free(ep);
    }
    tkv_free(c->eps);
    c->eps = NULL;
    return rv;
}

void tkv__io_stop(struct tkv_client *c)
{
    pthread_mutex_lock(&c->qmu);
    c->stopping = 1;
    pthread_mutex_unlock(&c->qmu);
    uv_async_send(&c->wake);
    uv_thread_join(&c->thread);
    uv_loop_close(&c->loop);
    while (c->neps > 0) {
        struct tkv__endpoint *ep = c->eps[--c->neps];
        tkv_free(ep->addr);
        tkv_free(ep);
    }
    tkv_free(c->eps);
    tkv_free(c->buckets);
}
