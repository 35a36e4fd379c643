/* tuplekv-load: protocol-level load generator, on libuv and the shared
 * codec (proto/). Keeps a fixed number of requests in flight over one or
 * more connections to one node and reports throughput and latency.
 *
 *   tuplekv-load --addr 127.0.0.1:7001 --op set --inflight 16
 *                [--conns 1] [--seconds 5] [--value-size 256] [--keys 100000]
 *                [--sequential 1] (keys 0, 1, 2... instead of random)
 *   ops: set (writes), get (strong reads), get-eventual (local reads)
 *
 * Writes and strong reads go to the leader: the tool asks --addr for the
 * leader's address first (status) and connects there. Each reply is
 * matched by id; latency is send-to-reply in a microsecond histogram. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/alloc.h"
#include "node/config.h"
#include "node/probe.h"
#include "proto/proto.h"

#define HIST_US 2000000 /* latencies up to 2 s, 1 us buckets */

struct lconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct lrun *run;
    uint8_t *rbuf;
    size_t rlen, rcap;
    struct tkv_buf out;
    struct tkv_buf writing;
    uv_write_t wreq;
    int write_busy;
    uint64_t *sent_at; /* by slot: id % inflight */
    unsigned inflight;
    uint64_t next_id;
};

struct lrun {
    uv_loop_t *loop;
    int op;
    int eventual;
    unsigned inflight;
    unsigned nconns;
    unsigned keys;
    size_t value_size;
    uint8_t value[70000];
    size_t vlen;
    uint64_t start_ns, end_ns;
    int stopping;
    uint64_t done, errors, err_codes[32];
    uint32_t *hist;
    uint64_t over;
    struct lconn *conns;
    uv_timer_t timer;
    uint64_t rng;
    int sequential; /* keys 0, 1, 2, ... instead of random */
    uint64_t counter;
};

static void send_one(struct lconn *c);
static void flush_out(struct lconn *c);

static void encode_key(unsigned k, uint8_t *out, size_t *len)
{
    /* ["bench", k] */
    double d = (double)k;
    uint64_t bits;
    int i;
    memcpy(out,
           "\x02"
           "bench"
           "\x00",
           7);
    out[7] = 0x03;
    memcpy(&bits, &d, sizeof bits);
    bits ^= 0x8000000000000000ull;
    for (i = 0; i < 8; i++) {
        out[8 + i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    *len = 16;
}

static void on_write(uv_write_t *req, int status)
{
    struct lconn *c = req->data;
    c->write_busy = 0;
    tkv_buf_reset(&c->writing);
    if (status < 0) {
        fprintf(stderr, "write: %s\n", uv_strerror(status));
        exit(1);
    }
    flush_out(c);
}

static void flush_out(struct lconn *c)
{
    struct tkv_buf tmp;
    uv_buf_t b;
    if (c->write_busy || c->out.len == 0) {
        return;
    }
    tmp = c->writing;
    c->writing = c->out;
    c->out = tmp;
    b = uv_buf_init((char *)c->writing.data, (unsigned)c->writing.len);
    c->wreq.data = c;
    c->write_busy = 1;
    uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
}

static void send_one(struct lconn *c)
{
    struct lrun *r = c->run;
    struct tkv_req req;
    uint8_t key[32];
    size_t klen;
    r->rng = r->rng * 6364136223846793005ull + 1442695040888963407ull;
    encode_key(r->sequential ? (unsigned)(r->counter++ % r->keys)
                             : (unsigned)((r->rng >> 33) % r->keys),
               key, &klen);
    tkv_req_init(&req);
    req.id = ++c->next_id;
    req.op = r->op;
    req.key = key;
    req.klen = klen;
    req.eventual = r->eventual;
    if (r->op == TKV_OP_SET) {
        req.value = r->value;
        req.vlen = r->vlen;
    }
    c->sent_at[req.id % r->inflight] = uv_hrtime();
    tkv_req_encode(&req, &c->out);
    tkv_req_close(&req);
    c->inflight++;
}

static void on_reply(struct lconn *c, const uint8_t *p, size_t len)
{
    struct lrun *r = c->run;
    struct tkv_reply rep;
    struct tkv_err err;
    uint64_t now = uv_hrtime(), us;

    tkv_reply_init(&rep);
    rep.op = r->op;
    if (tkv_reply_decode(p, len, &rep, &err) != 0) {
        fprintf(stderr, "bad reply: %s\n", err.msg);
        exit(1);
    }
    c->inflight--;
    if (now >= r->start_ns && !r->stopping) {
        us = (now - c->sent_at[rep.id % r->inflight]) / 1000;
        if (us < HIST_US) {
            r->hist[us]++;
        } else {
            r->over++;
        }
        r->done++;
        if (rep.code != 0) {
            r->errors++;
            r->err_codes[(-rep.code) & 31]++;
        }
    }
    tkv_reply_close(&rep);
    if (!r->stopping) {
        send_one(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct lconn *c = h->data;
    (void)suggested;
    if (c->rcap - c->rlen < 65536) {
        c->rcap = c->rcap ? c->rcap * 2 : 1 << 20;
        c->rbuf = realloc(c->rbuf, c->rcap);
    }
    *buf =
        uv_buf_init((char *)c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct lconn *c = s->data;
    size_t off = 0;
    (void)buf;
    if (n < 0) {
        if (!c->run->stopping) {
            fprintf(stderr, "read: %s\n", uv_strerror((int)n));
            exit(1);
        }
        return;
    }
    c->rlen += (size_t)n;
    while (c->rlen - off >= 4) {
        uint32_t len = tkv_frame_get_len(c->rbuf + off);
        if (c->rlen - off - 4 < len) {
            break;
        }
        on_reply(c, c->rbuf + off + 4, len);
        off += 4 + (size_t)len;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    flush_out(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct lconn *c = req->data;
    unsigned i;
    if (status < 0) {
        fprintf(stderr, "connect: %s\n", uv_strerror(status));
        exit(1);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    for (i = 0; i < c->run->inflight; i++) {
        send_one(c);
    }
    flush_out(c);
}

static void on_timer(uv_timer_t *t)
{
    struct lrun *r = t->data;
    unsigned i;
    r->stopping = 1;
    r->end_ns = uv_hrtime();
    for (i = 0; i < r->nconns; i++) {
        uv_read_stop((uv_stream_t *)&r->conns[i].tcp);
        uv_close((uv_handle_t *)&r->conns[i].tcp, NULL);
    }
    uv_close((uv_handle_t *)t, NULL);
}

static double pct(struct lrun *r, double q)
{
    uint64_t total = r->done, want = (uint64_t)(q * (double)total), acc = 0;
    size_t i;
    for (i = 0; i < HIST_US; i++) {
        acc += r->hist[i];
        if (acc > want) {
            return (double)i / 1000.0;
        }
    }
    return (double)HIST_US / 1000.0;
}

/* Ask addr who leads; writes and strong reads must go there. */
static void find_leader(const char *addr, char *out, size_t outlen)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    struct tkv_err err;
    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_STATUS;
    snprintf(out, outlen, "%s", addr);
    if (tkv_probe_connect(&p, addr, 2000, &err) == 0 &&
        tkv_probe_call(&p, &req, &rep, 5000, &err) == 0 && rep.code == 0 &&
        rep.status.leader_address != NULL) {
        snprintf(out, outlen, "%s", rep.status.leader_address);
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
}

int main(int argc, char **argv)
{
    static struct lrun run;
    struct lrun *r = &run;
    const char *addr = "127.0.0.1:7001";
    const char *opname = "set";
    char target[64], host[64];
    double seconds = 5, warmup = 1;
    unsigned i;
    int port;
    struct sockaddr_in sa;
    uv_loop_t loop;

    r->inflight = 16;
    r->nconns = 1;
    r->keys = 100000;
    r->value_size = 256;
    for (i = 1; i + 1 < (unsigned)argc; i += 2) {
        if (strcmp(argv[i], "--addr") == 0) {
            addr = argv[i + 1];
        } else if (strcmp(argv[i], "--op") == 0) {
            opname = argv[i + 1];
        } else if (strcmp(argv[i], "--inflight") == 0) {
            r->inflight = (unsigned)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--conns") == 0) {
            r->nconns = (unsigned)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--seconds") == 0) {
            seconds = atof(argv[i + 1]);
        } else if (strcmp(argv[i], "--value-size") == 0) {
            r->value_size = (size_t)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--sequential") == 0) {
            r->sequential = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--keys") == 0) {
            r->keys = (unsigned)atoi(argv[i + 1]);
        } else {
            fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (r->inflight == 0 || r->nconns == 0 || r->keys == 0 ||
        r->value_size < 3 || r->value_size > 65535) {
        fprintf(stderr, "bad numbers\n");
        return 2;
    }
    if (strcmp(opname, "set") == 0) {
        r->op = TKV_OP_SET;
    } else if (strcmp(opname, "get") == 0) {
        r->op = TKV_OP_GET;
    } else if (strcmp(opname, "get-eventual") == 0) {
        r->op = TKV_OP_GET;
        r->eventual = 1;
    } else {
        fprintf(stderr, "--op: set, get or get-eventual\n");
        return 2;
    }
    /* the value: one msgpack str of value_size bytes in all (str16) */
    r->value[0] = 0xda;
    r->value[1] = (uint8_t)((r->value_size - 3) >> 8);
    r->value[2] = (uint8_t)(r->value_size - 3);
    memset(r->value + 3, 'v', r->value_size - 3);
    r->vlen = r->value_size;
    r->hist = calloc(HIST_US, sizeof *r->hist);
    r->rng = 42;

    if (r->eventual) {
        snprintf(target, sizeof target, "%s", addr);
    } else {
        find_leader(addr, target, sizeof target);
    }
    if (tkv_node_parse_addr(target, host, sizeof host, &port) != 0) {
        fprintf(stderr, "bad address %s\n", target);
        return 2;
    }
    uv_loop_init(&loop);
    r->loop = &loop;
    uv_ip4_addr(host, port, &sa);
    r->conns = calloc(r->nconns, sizeof *r->conns);
    for (i = 0; i < r->nconns; i++) {
        struct lconn *c = &r->conns[i];
        c->run = r;
        c->sent_at = calloc(r->inflight, sizeof *c->sent_at);
        tkv_buf_init(&c->out);
        tkv_buf_init(&c->writing);
        uv_tcp_init(&loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&sa,
                       on_connect);
    }
    r->start_ns = uv_hrtime() + (uint64_t)(warmup * 1e9);
    uv_timer_init(&loop, &r->timer);
    r->timer.data = r;
    uv_timer_start(&r->timer, on_timer, (uint64_t)((warmup + seconds) * 1000),
                   0);
    uv_run(&loop, UV_RUN_DEFAULT);

    {
        double secs = (double)(r->end_ns - r->start_ns) / 1e9;
        printf(
            "%-12s inflight %4u conns %u -> %s: %9.0f ops/s  p50 %.3f ms  "
            "p99 %.3f ms  (%llu ops, %llu errors)\n",
            opname, r->inflight * r->nconns, r->nconns, target,
            (double)r->done / secs, pct(r, 0.50), pct(r, 0.99),
            (unsigned long long)r->done, (unsigned long long)r->errors);
        for (i = 0; i < 32; i++) {
            if (r->err_codes[i] > 0) {
                printf("  %s: %llu\n", tkv_errname(-(int)i),
                       (unsigned long long)r->err_codes[i]);
            }
        }
    }
    return 0;
}
