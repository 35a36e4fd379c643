/* The client-facing side of a node: listener, connections, frames,
 * requests and replies.
 *
 * Data flow of one request:
 *   read_cb        bytes land in the connection's read buffer
 *   frame parsing  4-byte length; over TKV_FRAME_MAX -> TOO_LARGE reply and
 *                  close; a complete payload is copied into a new
 *                  tkv_request and decoded (tkv_req_decode): malformed
 *                  msgpack -> PROTO reply and close; bad arguments -> error
 *                  reply, connection kept
 *   dispatch       the op table (dispatch.c) runs the handler, which either
 *                  replies at once or hands the request to the replica
 *   reply          tkv_server_reply() appends one frame to the connection's
 *                  out buffer; buffers are written at the end of the loop
 *                  turn (uv_check, and uv_prepare for replies produced by
 *                  later check handles), one uv_write per connection.
 * Backpressure: a connection stops reading (and parsing what it buffered)
 * while it has TKV_CONN_MAX_INFLIGHT requests unanswered or
 * TKV_CONN_MAX_OUT bytes of replies unwritten, and resumes at half.
 * Memory per connection is thus bounded by one frame + the limits.
 * A request outlives its connection if needed: the connection is reference
 * counted and replies to a closed connection are dropped. */
#ifndef TKV_NODE_SERVER_H
#define TKV_NODE_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../common/buf.h"
#include "../proto/proto.h"
#include "../raft/replica.h"

#define TKV_CONN_MAX_INFLIGHT 1024
#define TKV_CONN_MAX_OUT (8u * 1024u * 1024u)
#define TKV_CONN_READ_CHUNK (64u * 1024u)

struct tkv_server;

struct tkv_conn {
    uv_tcp_t tcp;
    struct tkv_server *srv;
    struct tkv_conn *prev, *next; /* all connections */
    struct tkv_conn *dirty_next;  /* has output or wants to resume */
    int dirty;
    uint8_t *rbuf; /* owned: read buffer */
    size_t rlen;
    size_t rcap;
    struct tkv_buf out;     /* owned: replies not yet written */
    struct tkv_buf writing; /* owned: replies being written */
    uv_write_t wreq;
    int write_busy;
    size_t inflight; /* requests not yet answered */
    int reading;     /* uv_read_start active */
    int paused;      /* backpressure */
    int closing;     /* close once out is written */
    int closed;      /* uv_close called */
    unsigned refs;   /* 1 while open + 1 per request */
};

struct tkv_request {
    struct tkv_conn *conn; /* reference held */
    uint8_t *payload;      /* owned: the frame's payload */
    size_t len;
    struct tkv_req req; /* owned: decoded from payload */
};

struct tkv_server {
    uv_loop_t *loop;         /* not owned */
    struct tkv_replica *rep; /* not owned */
    uv_tcp_t listener;
    uv_check_t flush;
    uv_prepare_t flush_prepare;
    struct tkv_conn *conns;
    size_t nconns;
    size_t max_conns;
    struct tkv_conn *dirty;
    uint64_t start_ms;
    size_t inflight; /* all connections */
    int stopping;
    int listening;
    int handles_open;
    void (*close_cb)(void *data);
    void *close_data;
    /* scratch for building replies (one loop thread) */
    struct tkv_list_result *list; /* owned */
    struct tkv_entry_ref *refs;   /* owned: TKV_LIST_MAX_LIMIT slots */
};

int tkv_server_start(struct tkv_server *s,
                     uv_loop_t *loop,
                     struct tkv_replica *rep,
                     const char *address,
                     size_t max_conns,
                     struct tkv_err *err);
/* Stop accepting and reading; in-flight requests still get replies. */
void tkv_server_stop_accepting(struct tkv_server *s);
/* Close every connection and handle; cb when done. */
void tkv_server_close(struct tkv_server *s, void (*cb)(void *data), void *data);

/* Reply to a request and release it (its connection may be gone). */
void tkv_server_reply(struct tkv_request *r, struct tkv_reply *rep);
/* Error reply; NOT_LEADER gets the leader's address (or becomes
 * UNAVAILABLE when no leader is known). */
void tkv_server_reply_error(struct tkv_request *r, int code, const char *msg);
void tkv_request_free(struct tkv_request *r);

/* dispatch.c: run the op of a decoded request; replies now or later. */
void tkv_dispatch(struct tkv_server *s, struct tkv_request *r);

#endif /* TKV_NODE_SERVER_H */
