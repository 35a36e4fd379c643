/* Listener, connections, frames, replies; see server.h for the data flow.
 *
 * Connection lifecycle: accepted (reading) -> [paused <-> reading] ->
 * closing (no more reads; close once its out buffer is written) -> closed
 * (uv_close called) -> freed when the last reference (the handle's, the
 * dirty list's, each request's) is dropped. */
#include "server.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/log.h"
#include "../proto/stream.h"
#include "config.h"

static void tkv__conn_read_cb(uv_stream_t *st,
                              ssize_t nread,
                              const uv_buf_t *buf);
static void tkv__conn_parse(struct tkv_conn *c);

static void tkv__conn_unref(struct tkv_conn *c)
{
    assert(c->refs > 0);
    if (--c->refs > 0) {
        return;
    }
    tkv_free(c->rbuf);
    tkv_buf_close(&c->out);
    tkv_buf_close(&c->writing);
    tkv_free(c);
}

static void tkv__conn_mark_dirty(struct tkv_conn *c)
{
    if (c->dirty || c->closed) {
        return;
    }
    c->dirty = 1;
    c->refs++;
    c->dirty_next = c->srv->dirty;
    c->srv->dirty = c;
}

static void tkv__conn_close_cb(uv_handle_t *h)
{
    tkv__conn_unref(h->data);
}

static void tkv__conn_close(struct tkv_conn *c)
{
    struct tkv_server *s = c->srv;
    if (c->closed) {
        return;
    }
    c->closed = 1;
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    s->nconns--;
    uv_close((uv_handle_t *)&c->tcp, tkv__conn_close_cb);
}

static size_t tkv__conn_out_bytes(const struct tkv_conn *c)
{
    return c->out.len + c->writing.len;
}

/* Append an error frame that answers no particular request. */
static void tkv__conn_send_error(struct tkv_conn *c,
                                 uint64_t id,
                                 int code,
                                 const char *msg)
{
    struct tkv_reply rep;
    tkv_reply_init(&rep);
    rep.id = id;
    rep.code = code;
    rep.message = msg;
    if (tkv_reply_encode(&rep, &c->out) != 0) {
        c->closing = 1;
    }
    tkv_reply_close(&rep);
    tkv__conn_mark_dirty(c);
}

/* ---- writing ----------------------------------------------------------------
 */

/* The writing buffer is out (status 0) or the stream broke. */
static void tkv__conn_wrote(struct tkv_conn *c, int status)
{
    c->write_busy = 0;
    tkv_buf_reset(&c->writing);
    if (c->writing.cap > TKV_CONN_READ_CHUNK * 16) {
        tkv_buf_close(&c->writing); /* do not keep a big idle buffer */
    }
    if (status < 0) {
        tkv__conn_close(c);
        return;
    }
    if (c->out.len > 0 || c->closing || c->paused) {
        tkv__conn_mark_dirty(c);
    }
}

static void tkv__conn_write_cb(uv_write_t *req, int status)
{
    tkv__conn_wrote(req->data, status);
}

static void tkv__conn_start_write(struct tkv_conn *c)
{
    struct tkv_buf tmp;
    uv_buf_t b;
    int rv;

    if (c->write_busy) {
        return;
    }
    if (c->out.len == 0) {
        if (c->closing) {
            tkv__conn_close(c);
        }
        return;
    }
    tmp = c->writing;
    c->writing = c->out;
    c->out = tmp;
    b = uv_buf_init((char *)c->writing.data, (unsigned)c->writing.len);
    rv = tkv_stream_try_write((uv_stream_t *)&c->tcp, &b);
    if (rv <= 0) {
        tkv__conn_wrote(c, rv);
        return;
    }
    c->wreq.data = c;
    rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, tkv__conn_write_cb);
    if (rv != 0) {
        tkv__conn_close(c);
        return;
    }
    c->write_busy = 1;
}

/* ---- backpressure ---------------------------------------------------------
 */

static int tkv__conn_over(const struct tkv_conn *c, size_t div)
{
    return c->inflight >= TKV_CONN_MAX_INFLIGHT / div ||
           tkv__conn_out_bytes(c) >= TKV_CONN_MAX_OUT / div;
}

static void tkv__conn_pause(struct tkv_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
    c->paused = 1;
}

static void tkv__conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tkv_conn *c = h->data;
    (void)suggested;
    if (c->rcap - c->rlen < TKV_CONN_READ_CHUNK / 4) {
        size_t cap = c->rcap == 0 ? TKV_CONN_READ_CHUNK : c->rcap * 2;
        uint8_t *p;
        if (cap > TKV_FRAME_MAX + 2 * TKV_CONN_READ_CHUNK) {
            cap = TKV_FRAME_MAX + 2 * TKV_CONN_READ_CHUNK;
        }
        p = cap > c->rcap ? tkv_realloc(c->rbuf, cap) : NULL;
        if (p != NULL) {
            c->rbuf = p;
            c->rcap = cap;
        }
    }
    *buf =
        uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void tkv__conn_maybe_resume(struct tkv_conn *c)
{
    if (!c->paused || c->closing || c->srv->stopping || tkv__conn_over(c, 2)) {
        return;
    }
    c->paused = 0;
    tkv__conn_parse(c);
    if (!c->paused && !c->closing && !c->closed && !c->reading) {
        uv_read_start((uv_stream_t *)&c->tcp, tkv__conn_alloc_cb,
                      tkv__conn_read_cb);
        c->reading = 1;
    }
}

static void tkv__flush_dirty(struct tkv_server *s)
{
    struct tkv_conn *c;
    while ((c = s->dirty) != NULL) {
        s->dirty = c->dirty_next;
        c->dirty = 0;
        if (!c->closed) {
            tkv__conn_maybe_resume(c);
            tkv__conn_start_write(c);
        }
        tkv__conn_unref(c);
    }
}

static void tkv__flush_cb(uv_check_t *h)
{
    tkv__flush_dirty(h->data);
}

/* Replies produced by other check handles (the replica's turn, which
 * delivers applied writes and served reads) are written here, right
 * before the loop blocks, not one wakeup later. */
static void tkv__flush_prepare_cb(uv_prepare_t *h)
{
    struct tkv_server *s = h->data;
    tkv__flush_dirty(s);
    /* A connection resumed just now may have queued writes or reads: hand
     * them to raft before the loop blocks. */
    tkv_replica_flush(s->rep);
}

/* ---- requests ---------------------------------------------------------------
 */

void tkv_request_free(struct tkv_request *r)
{
    struct tkv_conn *c = r->conn;
    c->inflight--;
    c->srv->inflight--;
    if (c->paused) {
        tkv__conn_mark_dirty(c);
    }
    tkv_req_close(&r->req);
    tkv_free(r->payload);
    tkv_free(r);
    tkv__conn_unref(c);
}

void tkv_server_reply(struct tkv_request *r, struct tkv_reply *rep)
{
    struct tkv_conn *c = r->conn;
    int rv;

    if (!c->closed) {
        rep->id = r->req.id;
        rep->op = r->req.op;
        rv = tkv_reply_encode(rep, &c->out);
        if (rv == TKV_ETOO_LARGE) {
            tkv__conn_send_error(c, r->req.id, TKV_ETOO_LARGE,
                                 "reply exceeds the frame size limit");
        } else if (rv != 0) {
            tkv_log_warn("encode reply: %s; closing connection",
                         tkv_strerror(rv));
            c->closing = 1;
        }
        tkv__conn_mark_dirty(c);
    }
    tkv_request_free(r);
}

void tkv_server_reply_error(struct tkv_request *r, int code, const char *msg)
{
    struct tkv_reply rep;
    tkv_reply_init(&rep);
    rep.code = code;
    rep.message = msg != NULL && msg[0] != '\0' ? msg : tkv_strerror(code);
    if (code == TKV_ENOT_LEADER) {
        const char *addr = NULL;
        uint64_t lid = tkv_replica_leader(r->conn->srv->rep, &addr);
        if (lid == 0) {
            rep.code = TKV_EUNAVAILABLE;
            rep.message = "no leader is known; retry shortly";
        } else {
            rep.leader = addr;
        }
    }
    tkv_server_reply(r, &rep);
    tkv_reply_close(&rep);
}

static void tkv__conn_frame(struct tkv_conn *c, const uint8_t *p, size_t len)
{
    struct tkv_server *s = c->srv;
    struct tkv_request *r;
    struct tkv_err err;
    int rv;

    r = tkv_calloc(1, sizeof *r);
    if (r == NULL) {
        tkv__conn_send_error(c, 0, TKV_ENOMEM, "out of memory");
        c->closing = 1;
        return;
    }
    r->payload = tkv_memdup(p, len > 0 ? len : 1);
    r->len = len;
    r->conn = c;
    c->refs++;
    c->inflight++;
    s->inflight++;
    tkv_req_init(&r->req);
    if (r->payload == NULL) {
        c->closing = 1;
        tkv_server_reply_error(r, TKV_ENOMEM, "out of memory");
        return;
    }
    tkv_err_clear(&err);
    rv = tkv_req_decode(r->payload, len, &r->req, &err);
    if (rv != 0) {
        if (rv == TKV_EPROTO || rv == TKV_ENOMEM) {
            c->closing = 1; /* garbage: answer, then hang up */
        }
        tkv_server_reply_error(r, rv, err.msg);
        return;
    }
    if (s->stopping) {
        tkv_server_reply_error(r, TKV_ESHUTDOWN, "node is shutting down");
        return;
    }
    tkv_dispatch(s, r);
}

static void tkv__conn_parse(struct tkv_conn *c)
{
    size_t off = 0;

    while (!c->closing && !c->closed) {
        uint32_t len;
        if (tkv__conn_over(c, 1)) {
            tkv__conn_pause(c);
            break;
        }
        if (c->rlen - off < TKV_FRAME_HDR) {
            break;
        }
        len = tkv_frame_get_len(c->rbuf + off);
        if (len > TKV_FRAME_MAX) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "frame of %u bytes exceeds the limit of %u bytes", len,
                     TKV_FRAME_MAX);
            tkv__conn_send_error(c, 0, TKV_ETOO_LARGE, msg);
            c->closing = 1;
            break;
        }
        if (c->rlen - off - TKV_FRAME_HDR < len) {
            size_t need = TKV_FRAME_HDR + (size_t)len;
            if (need > c->rcap) {
                uint8_t *nb;
                memmove(c->rbuf, c->rbuf + off, c->rlen - off);
                c->rlen -= off;
                off = 0;
                nb = tkv_realloc(c->rbuf, need + TKV_CONN_READ_CHUNK / 4);
                if (nb == NULL) {
                    tkv__conn_send_error(c, 0, TKV_ENOMEM, "out of memory");
                    c->closing = 1;
                    break;
                }
                c->rbuf = nb;
                c->rcap = need + TKV_CONN_READ_CHUNK / 4;
            }
            break;
        }
        tkv__conn_frame(c, c->rbuf + off + TKV_FRAME_HDR, len);
        off += TKV_FRAME_HDR + (size_t)len;
    }
    if (off > 0 && !c->closed) {
        memmove(c->rbuf, c->rbuf + off, c->rlen - off);
        c->rlen -= off;
        if (c->rcap > 4 * TKV_CONN_READ_CHUNK &&
            c->rlen < TKV_CONN_READ_CHUNK / 2) {
            uint8_t *nb = tkv_realloc(c->rbuf, TKV_CONN_READ_CHUNK);
            if (nb != NULL) {
                c->rbuf = nb;
                c->rcap = TKV_CONN_READ_CHUNK;
            }
        }
    }
    if (c->closing && !c->closed) {
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        tkv__conn_mark_dirty(c);
    }
}

static void tkv__conn_read_cb(uv_stream_t *st,
                              ssize_t nread,
                              const uv_buf_t *buf)
{
    struct tkv_conn *c = st->data;
    (void)buf;
    if (nread < 0) {
        if (nread != UV_EOF) {
            tkv_log_debug("connection read: %s", uv_strerror((int)nread));
        }
        tkv__conn_close(c);
        return;
    }
    if (nread == 0) {
        return;
    }
    c->rlen += (size_t)nread;
    tkv__conn_parse(c);
}

static void tkv__on_connection(uv_stream_t *listener, int status)
{
    struct tkv_server *s = listener->data;
    struct tkv_conn *c;

    if (status < 0) {
        tkv_log_warn("accept: %s", uv_strerror(status));
        return;
    }
    c = tkv_calloc(1, sizeof *c);
    if (c == NULL) {
        tkv_log_error("accept: out of memory");
        return;
    }
    c->srv = s;
    c->refs = 1;
    tkv_buf_init(&c->out);
    tkv_buf_init(&c->writing);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        tkv__conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->nconns > s->max_conns) {
        char msg[96];
        snprintf(msg, sizeof msg, "too many connections (limit %zu)",
                 s->max_conns);
        tkv__conn_send_error(c, 0, TKV_EBUSY, msg);
        c->closing = 1;
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, tkv__conn_alloc_cb,
                  tkv__conn_read_cb);
    c->reading = 1;
}

/* ---- server lifecycle ------------------------------------------------------
 */

int tkv_server_start(struct tkv_server *s,
                     uv_loop_t *loop,
                     struct tkv_replica *rep,
                     const char *address,
                     size_t max_conns,
                     struct tkv_err *err)
{
    struct sockaddr_in sa;
    char host[64];
    int port;
    int rv;

    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->rep = rep;
    s->max_conns = max_conns;
    s->start_ms = uv_now(loop);
    s->list = tkv_malloc(sizeof *s->list);
    s->refs = tkv_calloc(TKV_LIST_MAX_LIMIT, sizeof *s->refs);
    if (s->list == NULL || s->refs == NULL) {
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto err_after_alloc;
    }
    if (tkv_node_parse_addr(address, host, sizeof host, &port) != 0) {
        rv = tkv_err_set(err, TKV_EINVALID, "bad client address %s", address);
        goto err_after_alloc;
    }
    uv_ip4_addr(host, port, &sa);
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->handles_open++;
    rv = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (rv == 0) {
        rv = uv_listen((uv_stream_t *)&s->listener, 1024, tkv__on_connection);
    }
    if (rv != 0) {
        rv = tkv_err_set(err, TKV_EIO, "listen on %s: %s", address,
                         uv_strerror(rv));
        goto err_after_listener_init;
    }
    s->listening = 1;
    uv_check_init(loop, &s->flush);
    s->flush.data = s;
    s->handles_open++;
    uv_check_start(&s->flush, tkv__flush_cb);
    uv_prepare_init(loop, &s->flush_prepare);
    s->flush_prepare.data = s;
    s->handles_open++;
    uv_prepare_start(&s->flush_prepare, tkv__flush_prepare_cb);
    tkv_log_info("serving clients on %s", address);
    return 0;

err_after_listener_init:
    uv_close((uv_handle_t *)&s->listener, NULL);
    s->handles_open = 0;
err_after_alloc:
    tkv_free(s->list);
    tkv_free(s->refs);
    s->list = NULL;
    s->refs = NULL;
    return rv;
}

void tkv_server_stop_accepting(struct tkv_server *s)
{
    struct tkv_conn *c;
    if (s->stopping) {
        return;
    }
    s->stopping = 1;
    if (s->listening) {
        uv_close((uv_handle_t *)&s->listener, NULL);
        s->listening = 0;
        s->handles_open--;
    }
    for (c = s->conns; c != NULL; c = c->next) {
        tkv__conn_pause(c);
    }
}

static void tkv__server_handle_close_cb(uv_handle_t *h)
{
    struct tkv_server *s = h->data;
    if (--s->handles_open > 0) {
        return;
    }
    tkv_free(s->list);
    tkv_free(s->refs);
    s->list = NULL;
    s->refs = NULL;
    if (s->close_cb != NULL) {
        s->close_cb(s->close_data);
    }
}

void tkv_server_close(struct tkv_server *s, void (*cb)(void *data), void *data)
{
    tkv_server_stop_accepting(s);
    while (s->conns != NULL) {
        tkv__conn_close(s->conns);
    }
    /* Drop the dirty list's references: nothing more will be written. */
    while (s->dirty != NULL) {
        struct tkv_conn *c = s->dirty;
        s->dirty = c->dirty_next;
        c->dirty = 0;
        tkv__conn_unref(c);
    }
    s->close_cb = cb;
    s->close_data = data;
    uv_close((uv_handle_t *)&s->flush, tkv__server_handle_close_cb);
    uv_close((uv_handle_t *)&s->flush_prepare, tkv__server_handle_close_cb);
}
