/* A minimal blocking client of the protocol, on the shared codec
 * (proto/): one TCP connection, frames out, frames in, with timeouts.
 * Used by `tuplekv-node --probe` (cluster.sh's status and first command),
 * by the --join thread, and by the integration tests. Not the client
 * library: no pooling, no sessions, no retries beyond following a
 * NOT_LEADER redirect in tkv_probe_call_leader(). */
#ifndef TKV_NODE_PROBE_H
#define TKV_NODE_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../proto/proto.h"

#define TKV_PROBE_MAX_PENDING 4096

struct tkv_probe {
    int fd; /* -1 when not connected */
    char addr[TKV_ADDR_MAX + 1];
    uint64_t next_id;
    struct tkv_buf out; /* owned: frames to send */
    uint8_t *in;        /* owned: bytes received */
    size_t inlen, incap;
    uint8_t *payload; /* owned: payload of the last reply */
    /* op of each request sent and not yet answered, by id (ring) */
    uint64_t pend_id[TKV_PROBE_MAX_PENDING];
    int pend_op[TKV_PROBE_MAX_PENDING];
};

void tkv_probe_init(struct tkv_probe *p);
void tkv_probe_close(struct tkv_probe *p);

/* Connect to "IPV4:PORT" within timeout_ms. 0 or TKV_EUNAVAILABLE. */
int tkv_probe_connect(struct tkv_probe *p,
                      const char *addr,
                      int timeout_ms,
                      struct tkv_err *err);

/* Queue one request (its id is assigned and returned) and write
 * everything queued. */
int tkv_probe_send(struct tkv_probe *p,
                   struct tkv_req *req,
                   uint64_t *id /* OUT */,
                   int timeout_ms,
                   struct tkv_err *err);
/* Send raw bytes (tests of protocol abuse). */
int tkv_probe_send_raw(struct tkv_probe *p,
                       const void *buf,
                       size_t len,
                       int timeout_ms,
                       struct tkv_err *err);

/* Wait for the next reply (any id); rep must be tkv_reply_init()ed and is
 * decoded with the op of the request it answers (unknown ids decode as
 * errors only). Points into p->payload until the next recv. TKV_ETIMEOUT,
 * TKV_EUNAVAILABLE (connection closed) or TKV_EPROTO. */
int tkv_probe_recv(struct tkv_probe *p,
                   struct tkv_reply *rep,
                   int timeout_ms,
                   struct tkv_err *err);

/* send + recv of one request on an idle connection. */
int tkv_probe_call(struct tkv_probe *p,
                   struct tkv_req *req,
                   struct tkv_reply *rep,
                   int timeout_ms,
                   struct tkv_err *err);

/* Connect to addr (reusing p's connection when it is there), call, and on
 * NOT_LEADER with a leader address reconnect there and retry, up to
 * `hops` times. */
int tkv_probe_call_leader(struct tkv_probe *p,
                          const char *addr,
                          struct tkv_req *req,
                          struct tkv_reply *rep,
                          int hops,
                          int timeout_ms,
                          struct tkv_err *err);

/* `tuplekv-node --probe ADDR ARGS...`: returns the exit code. */
int tkv_probe_main(const char *addr, int argc, char **argv);

#endif /* TKV_NODE_PROBE_H */
