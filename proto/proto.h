/* The client protocol codec, shared by the node and the client library.
 *
 * docs/protocol.md is the spec. A frame is a 4-byte big-endian payload
 * length and one msgpack map. Both directions of both messages are here, as
 * one struct each, so node and client cannot drift apart and every message
 * can be round-trip tested:
 *
 *   client: tkv_req_encode()  --frame-->  node: tkv_req_decode()
 *   node:   tkv_reply_encode() --frame--> client: tkv_reply_decode()
 *
 * In the structs, keys are always the order-preserving encoding of
 * statemachine/keycodec.h and values the msgpack bytes of one JSON value;
 * the codec converts keys to and from msgpack arrays on the wire.
 *
 * Decoded messages point into the payload buffer (values) and into an arena
 * owned by the message (encoded keys, arrays, strings copied NUL-terminated):
 * the payload must outlive the message, and the message is released with
 * *_close(). */
#ifndef TKV_PROTO_H
#define TKV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/buf.h"
#include "../common/error.h"
#include "../statemachine/command.h"
#include "../statemachine/sm.h"

#define TKV_FRAME_HDR 4
/* 4 MiB: a value at the seed's 1 MB JSON limit can take up to ~2.25x as
 * msgpack (e.g. an array of 0.1: 4 bytes of JSON, 9 of msgpack), and must
 * still fit in one set request. */
#define TKV_FRAME_MAX (4u * 1024u * 1024u)
#define TKV_GET_MANY_MAX 1000

/* X(ENUM, "wire name") */
#define TKV_OP_MAP(X)                     \
    X(GET, "get")                         \
    X(GET_MANY, "get_many")               \
    X(LIST, "list")                       \
    X(SET, "set")                         \
    X(DELETE, "delete")                   \
    X(ATOMIC, "atomic")                   \
    X(STATUS, "status")                   \
    X(MEMBERS, "members")                 \
    X(MEMBER_ADD, "member_add")           \
    X(MEMBER_REMOVE, "member_remove")     \
    X(TRANSFER, "transfer")               \
    X(CONFIRM, "confirm")

enum tkv_op {
    TKV_OP_NONE = 0,
#define TKV__OP_ENUM(e, name) TKV_OP_##e,
    TKV_OP_MAP(TKV__OP_ENUM)
#undef TKV__OP_ENUM
    TKV_OP__COUNT
};

const char *tkv_op_name(int op);               /* "get", ...; "?" if bad */
int tkv_op_lookup(const char *name, size_t len); /* TKV_OP_NONE if unknown */

/* 1 for ops that change state through the log (set, delete, atomic). */
int tkv_op_is_write(int op);

struct tkv_keyref {
    const uint8_t *key;
    size_t klen;
};

struct tkv_req {
    uint64_t id;
    int op;                 /* enum tkv_op */
    int eventual;           /* reads: 1 = "eventual", 0 = "strong" */

    /* get, set, delete */
    const uint8_t *key;
    size_t klen;
    /* set */
    const uint8_t *value;   /* msgpack bytes */
    size_t vlen;
    uint64_t ttl_ms;        /* 0 = none */
    /* set, delete, atomic */
    uint64_t session;       /* 0 = none */
    uint64_t seq;
    uint64_t ack;
    /* get_many */
    struct tkv_keyref *keys;
    size_t nkeys;
    /* list: prefix/start/end/limit/reverse/cursor (limit 0 = default) */
    struct tkv_list_query list;
    /* atomic */
    struct tkv_check *checks;
    uint32_t nchecks;
    struct tkv_mutation *muts;
    uint32_t nmuts;
    /* member_add, member_remove, transfer ("node_id" on the wire: "id" is
     * the request id) */
    uint64_t member_id;
    const char *raft_address;   /* NUL-terminated (arena) */
    const char *client_address; /* NUL-terminated (arena) */
    /* confirm (node to node, raft/confirm.c): the asking leader's term and
     * node id; the reply carries the answering node's term in
     * status.term */
    uint64_t term;

    struct tkv_arena arena;     /* owned: storage for decoded parts */
};

struct tkv_entry_ref {
    const uint8_t *key;
    size_t klen;
    const uint8_t *value;
    size_t vlen;
    uint64_t version;
    int present;            /* 0: this slot is nil (get / get_many miss) */
};

struct tkv_status {
    uint64_t node_id;
    const char *role;       /* "leader", "follower", "candidate", ... */
    uint64_t term;
    uint64_t leader_id;     /* 0 = unknown */
    const char *leader_address; /* NULL = unknown */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t snapshot_index;
    uint64_t keys;
    uint64_t data_bytes;
    int64_t sm_time_ms;
    uint64_t connections;
    uint64_t uptime_ms;
};

struct tkv_member {
    uint64_t id;
    const char *raft_address;
    const char *client_address; /* NULL = unknown */
    const char *role;           /* "voter", "standby", "spare" */
};

struct tkv_reply {
    uint64_t id;
    int op;                 /* which fields to write/expect; not on the wire */
    int code;               /* 0 = ok, else a TKV_E... code */
    const char *message;    /* errors; NUL-terminated */
    const char *leader;     /* NOT_LEADER: leader's client address or NULL */
    const uint8_t *conflict; /* CONFLICT: encoded key, or NULL */
    size_t conflict_len;

    uint64_t version;       /* set, delete, atomic */
    struct tkv_entry_ref *entries; /* get (1 slot), get_many, list items */
    size_t nentries;
    uint64_t total;         /* list */
    const char *cursor;     /* list: NULL = no next page */
    struct tkv_status status;     /* status */
    struct tkv_member *members;   /* members */
    size_t nmembers;

    struct tkv_arena arena; /* owned */
};

/* Frame header: write the 4-byte length / read it back. */
void tkv_frame_put_len(uint8_t hdr[TKV_FRAME_HDR], uint32_t len);
uint32_t tkv_frame_get_len(const uint8_t hdr[TKV_FRAME_HDR]);

/* Initialise an empty message (zeroed, arena ready). */
void tkv_req_init(struct tkv_req *req);
void tkv_req_close(struct tkv_req *req);
void tkv_reply_init(struct tkv_reply *rep);
void tkv_reply_close(struct tkv_reply *rep);

/* Append one whole frame (header + payload) to out. The struct's keys must
 * be valid encodings and its values valid msgpack (the encoder trusts its
 * caller; it is not a validator). Returns 0, TKV_ENOMEM, or TKV_ETOO_LARGE
 * when the payload would exceed TKV_FRAME_MAX (e.g. a list page of big
 * values: the node then sends an error reply instead). On failure out->len
 * is back where it was; out of memory also leaves out->failed set (sticky
 * until tkv_buf_reset). Optional arguments are written only when set
 * (non-zero / non-NULL); a reply's cursor, leader_address and members'
 * client_address go out as nil when NULL or "". */
int tkv_req_encode(const struct tkv_req *req, struct tkv_buf *out);
int tkv_reply_encode(const struct tkv_reply *rep, struct tkv_buf *out);

/* Decode one payload (without the 4-byte header). Validates everything:
 * types, ranges, known keys of the map per op, keys via keycodec, values via
 * tkv_value_check_bytes (TOO_LARGE / NOT_JSON with the seed's messages),
 * limits (1..1000 keys, checks, mutations; list limit 1..1000). On error
 * returns the code with a message in err, and req->id holds the request id
 * when it could be read (else 0) so the node can address its error reply.
 * Codes: TKV_ETOO_LARGE over TKV_FRAME_MAX; TKV_EPROTO when the payload is
 * not exactly one msgpack map (the node closes the connection); else
 * TKV_EINVALID, or keycodec's / value.h's own codes (TOO_LARGE, NOT_JSON)
 * for keys and values; TKV_ENOMEM.
 * req must have been tkv_req_init()ed; close it in every case. */
int tkv_req_decode(const uint8_t *payload, size_t len, struct tkv_req *req,
                   struct tkv_err *err);

/* Decode a reply; rep->op must be set by the caller to the op of the
 * request it answers (from the id: see tkv_reply_peek_id), so the decoder
 * knows what to expect; TKV_OP_NONE is fine for an error reply (e.g. the
 * node's id-0 PROTO reply). Returns 0 for any well-formed reply, with
 * rep->code = 0 (ok) or the node's error code (an unknown code word reads
 * as TKV_EINTERNAL). A reply that breaks the protocol in any way (including
 * invalid keys or values) is TKV_EPROTO (TKV_ETOO_LARGE over TKV_FRAME_MAX,
 * TKV_ENOMEM out of memory): the client should drop the connection. An ok
 * reply with rep->op not a valid op is TKV_EINVALID. get's reply always
 * decodes into one slot of entries (present = 0 for nil). rep->id holds the
 * id when it could be read. */
int tkv_reply_decode(const uint8_t *payload, size_t len,
                     struct tkv_reply *rep, struct tkv_err *err);

/* The id of a reply, so the client can find the request (and its op) that
 * it answers before decoding it. Parses the whole payload once more; 0 or
 * TKV_EPROTO / TKV_ETOO_LARGE / TKV_ENOMEM. */
int tkv_reply_peek_id(const uint8_t *payload, size_t len,
                      uint64_t *id /* OUT */, struct tkv_err *err);

#endif /* TKV_PROTO_H */
