/* Blocking protocol client (see probe.h): poll()-based timeouts over a
 * non-blocking socket, frames encoded and decoded by proto/. The --probe
 * command line maps a few words to requests and prints the reply as
 * JSON. */
#include "probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../statemachine/keycodec.h"
#include "../statemachine/value.h"
#include "config.h"

static int64_t tkv__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tkv_probe_init(struct tkv_probe *p)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->next_id = 1;
    tkv_buf_init(&p->out);
}

static void tkv__probe_disconnect(struct tkv_probe *p)
{
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    p->inlen = 0;
    tkv_buf_reset(&p->out);
    memset(p->pend_id, 0, sizeof p->pend_id);
}

void tkv_probe_close(struct tkv_probe *p)
{
    tkv__probe_disconnect(p);
    tkv_buf_close(&p->out);
    tkv_free(p->in);
    tkv_free(p->payload);
    p->in = NULL;
    p->payload = NULL;
    p->incap = 0;
}

int tkv_probe_connect(struct tkv_probe *p,
                      const char *addr,
                      int timeout_ms,
                      struct tkv_err *err)
{
    struct sockaddr_in sa;
    char host[64];
    int port, fd, one = 1;
    struct pollfd pfd;
    socklen_t sl = sizeof one;
    int soerr = 0;

    tkv__probe_disconnect(p);
    if (tkv_node_parse_addr(addr, host, sizeof host, &port) != 0) {
        return tkv_err_set(err, TKV_EINVALID, "bad address %s", addr);
    }
    snprintf(p->addr, sizeof p->addr, "%s", addr);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return tkv_err_set(err, TKV_EUNAVAILABLE, "socket: %s",
                           strerror(errno));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return tkv_err_set(err, TKV_EUNAVAILABLE, "connect %s: %s", addr,
                           strerror(errno));
    }
    pfd.fd = fd;
    pfd.events = POLLOUT;
    if (poll(&pfd, 1, timeout_ms) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        close(fd);
        return tkv_err_set(err, TKV_EUNAVAILABLE, "connect %s: %s", addr,
                           soerr ? strerror(soerr) : "timed out");
    }
    p->fd = fd;
    return 0;
}

static int tkv__probe_flush(struct tkv_probe *p,
                            int timeout_ms,
                            struct tkv_err *err)
{
    int64_t deadline = tkv__now_ms() + timeout_ms;
    size_t off = 0;
    while (off < p->out.len) {
        ssize_t k =
            send(p->fd, p->out.data + off, p->out.len - off, MSG_NOSIGNAL);
        if (k > 0) {
            off += (size_t)k;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {p->fd, POLLOUT, 0};
            int left = (int)(deadline - tkv__now_ms());
            if (left <= 0 || poll(&pfd, 1, left) <= 0) {
                tkv_buf_reset(&p->out);
                return tkv_err_set(err, TKV_ETIMEOUT, "send timed out");
            }
            continue;
        }
        if (k < 0 && errno == EINTR) {
            continue;
        }
        tkv__probe_disconnect(p);
        return tkv_err_set(err, TKV_EUNAVAILABLE, "send: %s", strerror(errno));
    }
    tkv_buf_reset(&p->out);
    return 0;
}

int tkv_probe_send_raw(struct tkv_probe *p,
                       const void *buf,
                       size_t len,
                       int timeout_ms,
                       struct tkv_err *err)
{
    if (p->fd < 0) {
        return tkv_err_set(err, TKV_EUNAVAILABLE, "not connected");
    }
    if (tkv_buf_append(&p->out, buf, len) != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    return tkv__probe_flush(p, timeout_ms, err);
}

int tkv_probe_send(struct tkv_probe *p,
                   struct tkv_req *req,
                   uint64_t *id,
                   int timeout_ms,
                   struct tkv_err *err)
{
    size_t slot;
    if (p->fd < 0) {
        return tkv_err_set(err, TKV_EUNAVAILABLE, "not connected");
    }
    req->id = p->next_id++;
    slot = req->id % TKV_PROBE_MAX_PENDING;
    p->pend_id[slot] = req->id;
    p->pend_op[slot] = req->op;
    if (tkv_req_encode(req, &p->out) != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "encode request");
    }
    if (id != NULL) {
        *id = req->id;
    }
    return tkv__probe_flush(p, timeout_ms, err);
}

/* Read until a whole frame is buffered. */
static int tkv__probe_read_frame(struct tkv_probe *p,
                                 uint32_t *len,
                                 int timeout_ms,
                                 struct tkv_err *err)
{
    int64_t deadline = tkv__now_ms() + timeout_ms;
    for (;;) {
        struct pollfd pfd;
        ssize_t k;
        int left;
        if (p->inlen >= TKV_FRAME_HDR) {
            *len = tkv_frame_get_len(p->in);
            if (*len > TKV_FRAME_MAX) {
                tkv__probe_disconnect(p);
                return tkv_err_set(err, TKV_EPROTO, "frame too large");
            }
            if (p->inlen >= TKV_FRAME_HDR + (size_t)*len) {
                return 0;
            }
        }
        if (p->incap - p->inlen < 65536) {
            size_t cap = p->incap < 65536 ? 131072 : p->incap * 2;
            uint8_t *nb = tkv_realloc(p->in, cap);
            if (nb == NULL) {
                return tkv_err_set(err, TKV_ENOMEM, "out of memory");
            }
            p->in = nb;
            p->incap = cap;
        }
        k = recv(p->fd, p->in + p->inlen, p->incap - p->inlen, 0);
        if (k > 0) {
            p->inlen += (size_t)k;
            continue;
        }
        if (k == 0) {
            tkv__probe_disconnect(p);
            return tkv_err_set(err, TKV_EUNAVAILABLE,
                               "connection closed by the node");
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            tkv__probe_disconnect(p);
            return tkv_err_set(err, TKV_EUNAVAILABLE, "recv: %s", strerror(e));
        }
        left = (int)(deadline - tkv__now_ms());
        pfd.fd = p->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (left <= 0 || poll(&pfd, 1, left) == 0) {
            return tkv_err_set(err, TKV_ETIMEOUT, "no reply within %d ms",
                               timeout_ms);
        }
    }
}

int tkv_probe_recv(struct tkv_probe *p,
                   struct tkv_reply *rep,
                   int timeout_ms,
                   struct tkv_err *err)
{
    uint32_t len = 0;
    uint64_t id = 0;
    size_t slot;
    int rv;

    if (p->fd < 0) {
        return tkv_err_set(err, TKV_EUNAVAILABLE, "not connected");
    }
    rv = tkv__probe_read_frame(p, &len, timeout_ms, err);
    if (rv != 0) {
        return rv;
    }
    tkv_free(p->payload);
    p->payload = tkv_memdup(p->in + TKV_FRAME_HDR, len > 0 ? len : 1);
    memmove(p->in, p->in + TKV_FRAME_HDR + len, p->inlen - TKV_FRAME_HDR - len);
    p->inlen -= TKV_FRAME_HDR + len;
    if (p->payload == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    /* The decoder needs the op of the request this answers: by id. */
    rv = tkv_reply_peek_id(p->payload, len, &id, err);
    if (rv != 0) {
        tkv__probe_disconnect(p);
        return rv;
    }
    slot = id % TKV_PROBE_MAX_PENDING;
    tkv_reply_close(rep);
    tkv_reply_init(rep);
    rep->op =
        p->pend_id[slot] == id && id != 0 ? p->pend_op[slot] : TKV_OP_NONE;
    return tkv_reply_decode(p->payload, len, rep, err);
}

int tkv_probe_call(struct tkv_probe *p,
                   struct tkv_req *req,
                   struct tkv_reply *rep,
                   int timeout_ms,
                   struct tkv_err *err)
{
    uint64_t id;
    int rv = tkv_probe_send(p, req, &id, timeout_ms, err);
    if (rv != 0) {
        return rv;
    }
    for (;;) {
        rv = tkv_probe_recv(p, rep, timeout_ms, err);
        if (rv != 0 || rep->id == id || rep->id == 0) {
            return rv;
        }
    }
}

int tkv_probe_call_leader(struct tkv_probe *p,
                          const char *addr,
                          struct tkv_req *req,
                          struct tkv_reply *rep,
                          int hops,
                          int timeout_ms,
                          struct tkv_err *err)
{
    char target[TKV_ADDR_MAX + 1];
    int rv = 0;
    int i;

    snprintf(target, sizeof target, "%s", addr);
    for (i = 0; i <= hops; i++) {
        if (p->fd < 0 || strcmp(p->addr, target) != 0) {
            rv = tkv_probe_connect(p, target, timeout_ms, err);
            if (rv != 0) {
                return rv;
            }
        }
        rv = tkv_probe_call(p, req, rep, timeout_ms, err);
        if (rv != 0) {
            return rv;
        }
        if (rep->code != TKV_ENOT_LEADER || rep->leader == NULL) {
            return 0;
        }
        snprintf(target, sizeof target, "%s", rep->leader);
    }
    return 0;
}

/* ---- --probe command line -------------------------------------------------
 */

static json_t *tkv__entry_json(const struct tkv_entry_ref *e)
{
    msgpack_unpacked u;
    json_t *o, *v;
    char ver[17];

    if (!e->present) {
        return json_null();
    }
    o = json_object();
    json_object_set_new(o, "key", tkv_key_to_json(e->key, e->klen));
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, (const char *)e->value, e->vlen, NULL) ==
        MSGPACK_UNPACK_SUCCESS) {
        v = tkv_value_to_json(&u.data, NULL);
        json_object_set_new(o, "value", v != NULL ? v : json_null());
    }
    msgpack_unpacked_destroy(&u);
    tkv_version_format(e->version, ver);
    json_object_set_new(o, "version", json_string(ver));
    return o;
}

static json_t *tkv__reply_json(const struct tkv_reply *rep, int op)
{
    json_t *o = json_object();
    size_t i;

    json_object_set_new(o, "ok", json_boolean(rep->code == 0));
    if (rep->code != 0) {
        json_object_set_new(o, "code", json_string(tkv_errname(rep->code)));
        json_object_set_new(o, "message",
                            json_string(rep->message ? rep->message : ""));
        if (rep->leader != NULL) {
            json_object_set_new(o, "leader", json_string(rep->leader));
        }
        if (rep->conflict != NULL) {
            json_object_set_new(
                o, "conflict",
                tkv_key_to_json(rep->conflict, rep->conflict_len));
        }
        return o;
    }
    switch (op) {
        case TKV_OP_STATUS: {
            const struct tkv_status *s = &rep->status;
            json_object_set_new(o, "node_id",
                                json_integer((json_int_t)s->node_id));
            json_object_set_new(o, "role", json_string(s->role ? s->role : ""));
            json_object_set_new(o, "term", json_integer((json_int_t)s->term));
            json_object_set_new(o, "leader_id",
                                json_integer((json_int_t)s->leader_id));
            json_object_set_new(o, "leader_address",
                                s->leader_address
                                    ? json_string(s->leader_address)
                                    : json_null());
            json_object_set_new(o, "commit_index",
                                json_integer((json_int_t)s->commit_index));
            json_object_set_new(o, "applied_index",
                                json_integer((json_int_t)s->applied_index));
            json_object_set_new(o, "snapshot_index",
                                json_integer((json_int_t)s->snapshot_index));
            json_object_set_new(o, "keys", json_integer((json_int_t)s->keys));
            json_object_set_new(o, "data_bytes",
                                json_integer((json_int_t)s->data_bytes));
            json_object_set_new(o, "sm_time_ms",
                                json_integer((json_int_t)s->sm_time_ms));
            json_object_set_new(o, "connections",
                                json_integer((json_int_t)s->connections));
            json_object_set_new(o, "uptime_ms",
                                json_integer((json_int_t)s->uptime_ms));
            break;
        }
        case TKV_OP_MEMBERS: {
            json_t *arr = json_array();
            for (i = 0; i < rep->nmembers; i++) {
                const struct tkv_member *m = &rep->members[i];
                json_t *mo = json_object();
                json_object_set_new(mo, "id", json_integer((json_int_t)m->id));
                json_object_set_new(mo, "raft_address",
                                    json_string(m->raft_address));
                json_object_set_new(mo, "client_address",
                                    m->client_address
                                        ? json_string(m->client_address)
                                        : json_null());
                json_object_set_new(mo, "role", json_string(m->role));
                json_array_append_new(arr, mo);
            }
            json_object_set_new(o, "members", arr);
            break;
        }
        case TKV_OP_GET:
            json_object_set_new(o, "entry",
                                rep->nentries > 0
                                    ? tkv__entry_json(&rep->entries[0])
                                    : json_null());
            break;
        case TKV_OP_LIST: {
            json_t *arr = json_array();
            for (i = 0; i < rep->nentries; i++) {
                json_array_append_new(arr, tkv__entry_json(&rep->entries[i]));
            }
            json_object_set_new(o, "items", arr);
            json_object_set_new(o, "total",
                                json_integer((json_int_t)rep->total));
            json_object_set_new(
                o, "cursor",
                rep->cursor ? json_string(rep->cursor) : json_null());
            break;
        }
        case TKV_OP_SET:
        case TKV_OP_DELETE: {
            char ver[17];
            tkv_version_format(rep->version, ver);
            json_object_set_new(o, "version", json_string(ver));
            break;
        }
        default:
            break;
    }
    return o;
}

static int tkv__probe_usage(void)
{
    fprintf(stderr,
            "tuplekv-node --probe ADDR [status | members | get KEY | "
            "list PREFIX | set KEY VALUE [TTL_MS] | delete KEY |\n"
            "                           add ID RAFT_ADDR CLIENT_ADDR | "
            "remove ID | transfer [ID]]\n"
            "KEY and VALUE are JSON, e.g. '[\"users\",1]' '{\"a\":1}'\n");
    return 2;
}

static int tkv__parse_key(const char *text,
                          int allow_empty,
                          uint8_t *out,
                          size_t *len)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
    struct tkv_err err;
    int rv;
    if (j == NULL) {
        fprintf(stderr, "tuplekv-node: key is not JSON: %s\n", jerr.text);
        return -1;
    }
    rv = tkv_key_from_json(j, allow_empty, out, len, &err);
    json_decref(j);
    if (rv != 0) {
        fprintf(stderr, "tuplekv-node: bad key: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int tkv_probe_main(const char *addr, int argc, char **argv)
{
    static uint8_t key[TKV_KEY_MAX];
    const char *word = argc > 0 ? argv[0] : "status";
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    struct tkv_buf value;
    struct tkv_err err;
    size_t klen = 0;
    json_t *out;
    int rv, attempt, code = 0;

    tkv_req_init(&req);
    tkv_buf_init(&value);
    if (strcmp(word, "status") == 0) {
        req.op = TKV_OP_STATUS;
    } else if (strcmp(word, "members") == 0) {
        req.op = TKV_OP_MEMBERS;
    } else if ((strcmp(word, "get") == 0 || strcmp(word, "delete") == 0) &&
               argc == 2) {
        req.op = word[0] == 'g' ? TKV_OP_GET : TKV_OP_DELETE;
        if (tkv__parse_key(argv[1], 0, key, &klen) != 0) {
            return 2;
        }
        req.key = key;
        req.klen = klen;
    } else if (strcmp(word, "list") == 0 && argc == 2) {
        req.op = TKV_OP_LIST;
        if (tkv__parse_key(argv[1], 1, key, &klen) != 0) {
            return 2;
        }
        req.list.prefix = key;
        req.list.prefix_len = klen;
    } else if (strcmp(word, "set") == 0 && (argc == 3 || argc == 4)) {
        json_error_t jerr;
        json_t *v = json_loads(argv[2], JSON_DECODE_ANY, &jerr);
        req.op = TKV_OP_SET;
        if (tkv__parse_key(argv[1], 0, key, &klen) != 0) {
            return 2;
        }
        if (v == NULL || tkv_value_from_json(v, &value, &err) != 0) {
            fprintf(stderr, "tuplekv-node: bad value: %s\n",
                    v == NULL ? jerr.text : err.msg);
            json_decref(v);
            return 2;
        }
        json_decref(v);
        req.key = key;
        req.klen = klen;
        req.value = value.data;
        req.vlen = value.len;
        if (argc == 4) {
            req.ttl_ms = strtoull(argv[3], NULL, 10);
        }
    } else if (strcmp(word, "add") == 0 && argc == 4) {
        req.op = TKV_OP_MEMBER_ADD;
        req.member_id = strtoull(argv[1], NULL, 10);
        req.raft_address = argv[2];
        req.client_address = argv[3];
    } else if (strcmp(word, "remove") == 0 && argc == 2) {
        req.op = TKV_OP_MEMBER_REMOVE;
        req.member_id = strtoull(argv[1], NULL, 10);
    } else if (strcmp(word, "transfer") == 0 && argc <= 2) {
        req.op = TKV_OP_TRANSFER;
        req.member_id = argc == 2 ? strtoull(argv[1], NULL, 10) : 0;
    } else {
        return tkv__probe_usage();
    }

    tkv_probe_init(&p);
    tkv_reply_init(&rep);
    /* Retry a while when there is no leader yet (fresh cluster). */
    for (attempt = 0; attempt < 50; attempt++) {
        tkv_err_clear(&err);
        rv = tkv_probe_call_leader(&p, addr, &req, &rep, 5, 5000, &err);
        if (rv == 0 && rep.code != TKV_EUNAVAILABLE &&
            rep.code != TKV_ENOT_LEADER && rep.code != TKV_EBUSY) {
            break;
        }
        if (rv != 0 && (rv != TKV_EUNAVAILABLE || attempt >= 5)) {
            break;
        }
        tkv__probe_disconnect(&p);
        usleep(200 * 1000);
    }
    if (rv != 0) {
        fprintf(stderr, "tuplekv-node: %s: %s\n", addr, err.msg);
        code = 1;
    } else {
        out = tkv__reply_json(&rep, req.op);
        json_dumpf(out, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(out);
        code = rep.code == 0 ? 0 : 1;
    }
    tkv_reply_close(&rep);
    tkv_probe_close(&p);
    tkv_buf_close(&value);
    tkv_req_close(&req);
    return code;
}
