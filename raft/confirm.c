/* Strong reads without a log write: the leader confirms it is still the
 * leader by asking the other voters (the ReadIndex of the Raft thesis,
 * section 6.4), over the client protocol's `confirm` op.
 *
 *   round start   reads queued this turn move into a round; the round
 *                 records term T and read_index = the commit index now, and
 *                 sends {op: confirm, term: T, node_id: us} to every other
 *                 voter (id = the round's sequence number).
 *   confirm       a voter answers with its current term. An answer for
 *                 this round with term <= T counts for it: that voter, at a
 *                 moment after the reads arrived, had not joined any term
 *                 above T, so no leader of a later term can have been
 *                 elected before that moment without its vote. With the
 *                 leader itself, a majority of voters answering proves that
 *                 no write newer than read_index was committed before the
 *                 reads arrived. A term above T means we were deposed: the
 *                 round fails with NOT_LEADER.
 *   serve         once confirmed and last_applied >= read_index, the reads
 *                 are served from the local state (reads.c polls each turn).
 *
 * Preconditions, else reads use the barrier (reads.c): the leader has
 * committed an entry of its own term (its commit index is then the
 * cluster's), and a majority of voters, counting itself, have a known
 * client address (recorded in the replicated state) and have not refused
 * the op (a node of an older version answers INVALID). A round that gets no
 * majority within an election timeout gives its reads to the barrier, and
 * rounds stay off for a while (a voter reachable by raft but not on its
 * client port would otherwise stall every strong read).
 *
 * One round is in flight at a time; reads arriving meanwhile wait for the
 * next one, so at high load one round serves many reads. Connections to
 * the voters are kept open and re-dialled at most every
 * TKV__CONFIRM_REDIAL_MS. */
#include <assert.h>
#include <string.h>

#include "../common/addr.h"
#include "../common/alloc.h"
#include "../common/log.h"
#include "../proto/proto.h"
#include "../proto/stream.h"
#include "glue.h"

#define TKV__CONFIRM_REDIAL_MS 200
#define TKV__CONFIRM_OFF_MS 5000
#define TKV__CONFIRM_FRAME_MAX 4096 /* a confirm reply is ~30 bytes */

enum {
    TKV__PEER_DOWN = 0, /* no handle */
    TKV__PEER_CONNECTING,
    TKV__PEER_UP,
    TKV__PEER_CLOSING, /* uv_close pending */
};

struct tkv__peer {
    struct tkv_replica *rep;
    uint64_t id;
    char addr[TKV_ADDR_MAX + 1];
    int state;
    int voter;        /* in the current voter set with this address */
    int refused;      /* answered confirm with an error: older node */
    uint64_t acked;   /* last round sequence this peer confirmed */
    uint64_t dial_at; /* uv_now before which no new connect */
    uv_tcp_t tcp;
    uv_connect_t connect;
    struct tkv_buf in; /* bytes read, not yet a whole frame */
    char rbuf[512];
};

struct tkv__peer_write {
    uv_write_t req;
    uint8_t *data; /* owned */
};

static void tkv__peer_close(struct tkv__peer *p);

/* ---- rounds --------------------------------------------------------------
 */

static void tkv__round_free(struct tkv__round *rd)
{
    tkv_free(rd->waiters);
    tkv_free(rd);
}

static void tkv__round_finish(struct tkv_replica *r, int code, const char *msg)
{
    struct tkv__round *rd = r->round;
    size_t i;
    r->round = NULL;
    for (i = 0; i < rd->n; i++) {
        rd->waiters[i].cb(rd->waiters[i].data, code, msg);
    }
    tkv__round_free(rd);
}

void tkv__confirm_fail(struct tkv_replica *r, int code)
{
    if (r->round != NULL) {
        tkv__round_finish(r, code, tkv_strerror(code));
    }
}

/* ---- peer connections ----------------------------------------------------
 */

static void tkv__peer_send_probe(struct tkv__peer *p);

static void tkv__peer_closed_cb(uv_handle_t *h)
{
    struct tkv__peer *p = h->data;
    struct tkv_replica *r = p->rep;
    p->state = TKV__PEER_DOWN;
    tkv_buf_reset(&p->in);
    if (r->handles_closing) {
        tkv__replica_handle_closed(r);
    }
}

static void tkv__peer_close(struct tkv__peer *p)
{
    if (p->state == TKV__PEER_CONNECTING || p->state == TKV__PEER_UP) {
        p->state = TKV__PEER_CLOSING;
        uv_close((uv_handle_t *)&p->tcp, tkv__peer_closed_cb);
    }
}

static void tkv__peer_fail(struct tkv__peer *p, const char *what, int uvrv)
{
    if (p->state == TKV__PEER_UP) {
        tkv_log_info("confirm connection to %llu (%s): %s: %s",
                     (unsigned long long)p->id, p->addr, what,
                     uv_strerror(uvrv));
    }
    tkv__peer_close(p);
}

/* One reply frame. */
static void tkv__peer_on_reply(struct tkv__peer *p,
                               const uint8_t *payload,
                               size_t len)
{
    struct tkv_replica *r = p->rep;
    struct tkv__round *rd = r->round;
    struct tkv_reply rep;
    struct tkv_err err;
    int rv;

    tkv_reply_init(&rep);
    tkv_err_clear(&err);
    rep.op = TKV_OP_CONFIRM;
    rv = tkv_reply_decode(payload, len, &rep, &err);
    if (rv != 0) {
        tkv_log_warn("confirm reply from %llu: %s", (unsigned long long)p->id,
                     err.msg);
        tkv_reply_close(&rep);
        tkv__peer_close(p);
        return;
    }
    if (rep.code != 0) {
        if (!p->refused) {
            tkv_log_warn(
                "node %llu refuses confirm (%s): strong reads use "
                "log barriers while it is needed for a majority",
                (unsigned long long)p->id,
                rep.message != NULL ? rep.message : "?");
        }
        p->refused = 1;
    } else if (rd != NULL && rep.id == rd->seq && p->acked != rd->seq) {
        if (rep.status.term > rd->term) {
            tkv_reply_close(&rep);
            tkv__round_finish(r, TKV_ENOT_LEADER,
                              "deposed: a voter is in a later term");
            return;
        }
        p->acked = rd->seq;
        rd->acks++;
        if (rd->acks >= rd->need) {
            rd->confirmed = 1;
        }
    }
    tkv_reply_close(&rep);
}

static void tkv__peer_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct tkv__peer *p = h->data;
    (void)hint;
    buf->base = p->rbuf;
    buf->len = sizeof p->rbuf;
}

static void tkv__peer_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tkv__peer *p = s->data;
    size_t off = 0;

    if (n < 0) {
        tkv__peer_fail(p, "read", (int)n);
        return;
    }
    if (tkv_buf_append(&p->in, buf->base, (size_t)n) != 0) {
        tkv__peer_fail(p, "read", UV_ENOMEM);
        return;
    }
    while (p->state == TKV__PEER_UP && p->in.len - off >= TKV_FRAME_HDR) {
        uint32_t len = tkv_frame_get_len(p->in.data + off);
        if (len > TKV__CONFIRM_FRAME_MAX) {
            tkv_log_warn("confirm reply from %llu: frame of %u bytes",
                         (unsigned long long)p->id, len);
            tkv__peer_close(p);
            return;
        }
        if (p->in.len - off - TKV_FRAME_HDR < len) {
            break;
        }
        tkv__peer_on_reply(p, p->in.data + off + TKV_FRAME_HDR, len);
        off += TKV_FRAME_HDR + len;
    }
    if (p->state == TKV__PEER_UP && off > 0) {
        memmove(p->in.data, p->in.data + off, p->in.len - off);
        p->in.len -= off;
    }
}

static void tkv__peer_write_cb(uv_write_t *req, int status)
{
    struct tkv__peer_write *w = req->data;
    struct tkv__peer *p = req->handle->data;
    if (status != 0 && status != UV_ECANCELED) {
        tkv__peer_fail(p, "write", status);
    }
    tkv_free(w->data);
    tkv_free(w);
}

/* Ask p to confirm the current round. */
static void tkv__peer_send_probe(struct tkv__peer *p)
{
    struct tkv_replica *r = p->rep;
    struct tkv__peer_write *w;
    struct tkv_req req;
    uv_buf_t b;
    int rv;

    if (r->round == NULL || p->state != TKV__PEER_UP) {
        return;
    }
    tkv_req_init(&req);
    req.id = r->round->seq;
    req.op = TKV_OP_CONFIRM;
    req.term = r->round->term;
    req.member_id = r->id;
    tkv_buf_reset(&r->confirm_frame);
    rv = tkv_req_encode(&req, &r->confirm_frame);
    tkv_req_close(&req);
    if (rv != 0) {
        return; /* out of memory: this peer does not count this round */
    }
    b = uv_buf_init((char *)r->confirm_frame.data,
                    (unsigned)r->confirm_frame.len);
    rv = tkv_stream_try_write((uv_stream_t *)&p->tcp, &b);
    if (rv <= 0) {
        if (rv < 0) {
            tkv__peer_fail(p, "write", rv);
        }
        return;
    }
    w = tkv_malloc(sizeof *w);
    if (w == NULL || (w->data = tkv_malloc(b.len)) == NULL) {
        tkv_free(w);
        tkv__peer_fail(p, "write", UV_ENOMEM);
        return;
    }
    memcpy(w->data, b.base, b.len);
    b.base = (char *)w->data;
    w->req.data = w;
    rv = uv_write(&w->req, (uv_stream_t *)&p->tcp, &b, 1, tkv__peer_write_cb);
    if (rv != 0) {
        tkv_free(w->data);
        tkv_free(w);
        tkv__peer_fail(p, "write", rv);
    }
}

static void tkv__peer_connect_cb(uv_connect_t *req, int status)
{
    struct tkv__peer *p = req->data;
    int rv;

    if (p->state != TKV__PEER_CONNECTING) {
        return; /* closed meanwhile */
    }
    if (status != 0) {
        tkv__peer_close(p);
        return;
    }
    p->state = TKV__PEER_UP;
    tkv_log_info("confirm connection to %llu (%s) open",
                 (unsigned long long)p->id, p->addr);
    uv_tcp_nodelay(&p->tcp, 1);
    rv = uv_read_start((uv_stream_t *)&p->tcp, tkv__peer_alloc_cb,
                       tkv__peer_read_cb);
    if (rv != 0) {
        tkv__peer_fail(p, "read", rv);
        return;
    }
    tkv__peer_send_probe(p);
}

static void tkv__peer_dial(struct tkv__peer *p)
{
    struct tkv_replica *r = p->rep;
    struct sockaddr_storage sa;
    struct tkv_err err;
    char host[TKV_ADDR_MAX + 1];
    int port;
    int rv;

    if (p->state != TKV__PEER_DOWN || uv_now(r->loop) < p->dial_at) {
        return;
    }
    p->dial_at = uv_now(r->loop) + TKV__CONFIRM_REDIAL_MS;
    if (tkv_addr_split(p->addr, strlen(p->addr), host, sizeof host, &port,
                       &err) != 0 ||
        (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
         uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)) {
        /* Client addresses are checked when recorded; a name (not an IP)
         * would need resolving, which this path does not do. */
        p->refused = 1;
        tkv_log_warn("confirm: client address of %llu is not an IP:port: %s",
                     (unsigned long long)p->id, p->addr);
        return;
    }
    rv = uv_tcp_init(r->loop, &p->tcp);
    if (rv != 0) {
        return;
    }
    p->tcp.data = p;
    p->connect.data = p;
    p->state = TKV__PEER_CONNECTING;
    rv = uv_tcp_connect(&p->connect, &p->tcp, (const struct sockaddr *)&sa,
                        tkv__peer_connect_cb);
    if (rv != 0) {
        tkv__peer_close(p);
    }
}

static struct tkv__peer *tkv__peer_get(struct tkv_replica *r,
                                       uint64_t id,
                                       const char *addr)
{
    struct tkv__peer *p;
    struct tkv__peer **grown;
    size_t i;

    for (i = 0; i < r->npeers; i++) {
        p = r->peers[i];
        if (p->id != id) {
            continue;
        }
        if (strcmp(p->addr, addr) != 0) {
            tkv__peer_close(p);
            snprintf(p->addr, sizeof p->addr, "%s", addr);
            p->refused = 0;
        }
        return p;
    }
    grown = tkv_realloc(r->peers, (r->npeers + 1) * sizeof *grown);
    if (grown == NULL) {
        return NULL;
    }
    r->peers = grown;
    p = tkv_calloc(1, sizeof *p);
    if (p == NULL) {
        return NULL;
    }
    p->rep = r;
    p->id = id;
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    tkv_buf_init(&p->in);
    r->peers[r->npeers++] = p;
    return p;
}

/* ---- the replica's side --------------------------------------------------
 */

void tkv__confirm_on_leader(struct tkv_replica *r)
{
    r->lead_term = raft_current_term(&r->raft);
    r->lead_base = raft_last_index(&r->raft);
}

/* Mark the peers that are voters now (creating them), and count the
 * voters and those that can answer. */
static void tkv__confirm_sync(struct tkv_replica *r,
                              unsigned *nvoters,
                              unsigned *reachable)
{
    const struct raft_configuration *c = &r->raft.configuration;
    size_t i;
    unsigned j;

    *nvoters = 0;
    *reachable = 0;
    for (i = 0; i < r->npeers; i++) {
        r->peers[i]->voter = 0;
    }
    for (j = 0; j < c->n; j++) {
        const char *addr;
        struct tkv__peer *p;
        if (c->servers[j].role != RAFT_VOTER) {
            continue;
        }
        (*nvoters)++;
        if (c->servers[j].id == r->id) {
            (*reachable)++;
            continue;
        }
        addr = tkv_sm_member_addr(&r->fsm.sm, c->servers[j].id);
        if (addr == NULL ||
            (p = tkv__peer_get(r, c->servers[j].id, addr)) == NULL) {
            continue;
        }
        p->voter = 1;
        if (!p->refused) {
            (*reachable)++;
        }
    }
    for (i = 0; i < r->npeers; i++) {
        if (!r->peers[i]->voter) {
            tkv__peer_close(r->peers[i]);
        }
    }
}

int tkv__confirm_start(struct tkv_replica *r)
{
    struct tkv__round *rd;
    unsigned nvoters, reachable;
    size_t i;

    assert(r->round == NULL && r->nreads > 0);
    if (raft_current_term(&r->raft) != r->lead_term ||
        raft_commit_index(&r->raft) <= r->lead_base ||
        uv_now(r->loop) < r->confirm_off_until) {
        return TKV_EUNAVAILABLE;
    }
    tkv__confirm_sync(r, &nvoters, &reachable);
    if (reachable < nvoters / 2 + 1) {
        return TKV_EUNAVAILABLE;
    }
    rd = tkv_calloc(1, sizeof *rd);
    if (rd == NULL) {
        return TKV_ENOMEM;
    }
    rd->seq = ++r->round_seq;
    rd->term = r->lead_term;
    rd->read_index = raft_commit_index(&r->raft);
    rd->started_ms = uv_now(r->loop);
    rd->need = nvoters / 2 + 1;
    rd->acks = 1; /* this leader */
    rd->confirmed = rd->acks >= rd->need;
    rd->waiters = r->reads;
    rd->n = r->nreads;
    r->reads = NULL;
    r->nreads = 0;
    r->reads_cap = 0;
    r->round = rd;
    for (i = 0; i < r->npeers; i++) {
        struct tkv__peer *p = r->peers[i];
        if (!p->voter || p->refused) {
            continue;
        }
        if (p->state == TKV__PEER_UP) {
            tkv__peer_send_probe(p);
        } else {
            tkv__peer_dial(p); /* probes once connected */
        }
    }
    return 0;
}

void tkv__confirm_poll(struct tkv_replica *r)
{
    struct tkv__round *rd = r->round;
    uint64_t now;

    if (rd == NULL) {
        return;
    }
    if (rd->confirmed) {
        if (raft_last_applied(&r->raft) >= rd->read_index) {
            tkv__round_finish(r, 0, "");
        }
        return;
    }
    now = uv_now(r->loop);
    if (now - rd->started_ms < r->election_timeout_ms) {
        return;
    }
    /* No majority answered: hand the reads to the barrier path. */
    tkv_log_warn(
        "confirm: %zu of the %zu answers needed in %u ms; strong reads "
        "use log barriers for %u s",
        rd->acks, rd->need, r->election_timeout_ms, TKV__CONFIRM_OFF_MS / 1000);
    r->confirm_off_until = now + TKV__CONFIRM_OFF_MS;
    r->round = NULL;
    tkv__reads_requeue(r, rd->waiters, rd->n);
    tkv__round_free(rd);
}

unsigned tkv__confirm_close(struct tkv_replica *r)
{
    unsigned closing = 0;
    size_t i;
    for (i = 0; i < r->npeers; i++) {
        struct tkv__peer *p = r->peers[i];
        tkv__peer_close(p);
        if (p->state == TKV__PEER_CLOSING) {
            closing++;
        }
    }
    return closing;
}

void tkv__confirm_free(struct tkv_replica *r)
{
    size_t i;
    assert(r->round == NULL);
    for (i = 0; i < r->npeers; i++) {
        assert(r->peers[i]->state == TKV__PEER_DOWN);
        tkv_buf_close(&r->peers[i]->in);
        tkv_free(r->peers[i]);
    }
    tkv_free(r->peers);
    r->peers = NULL;
    r->npeers = 0;
    tkv_buf_close(&r->confirm_frame);
}
