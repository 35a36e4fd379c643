/* Log entry codec: the bytes raft replicates.
 *
 * One log entry is a batch: the leader's timestamp and the commands that
 * arrived in one loop turn. Wire form (msgpack), then zero padding to a
 * multiple of 8 bytes (raft refuses other lengths):
 *
 *   entry    [1, timestamp_ms, [cmd, ...]]           (1 = format version)
 *   set      [1, session, seq, ack, key, value, ttl_ms]
 *   delete   [2, session, seq, ack, key]
 *   atomic   [3, session, seq, ack, [[key, version], ...],
 *                                    [[1, key, value, ttl_ms] | [2, key], ...]]
 *   tick     [4]
 *   member   [5, id, client_address]   (record a member's client address)
 *            [6, id]                   (forget it)
 *
 * key      bin: the order-preserving encoding of statemachine/keycodec.h
 * value    bin: the msgpack bytes of the value (one object, checked with
 *          tkv_value_check_bytes)
 * version  uint: a versionstamp, 0 = the key must be absent
 * session  uint: client session id, 0 = no session (no deduplication)
 * seq      uint: the write's sequence number in its session
 * ack      uint: every seq < ack has been answered to the client, so the
 *          state machine may forget those results
 * ttl_ms   uint: 0 = no expiry
 *
 * The decoder is strict: truncated input, trailing bytes other than the
 * zero padding, wrong types, unknown command types, invalid key encodings,
 * values that are not JSON or too large, and counts over the limits below
 * are TKV_ECORRUPT, never a crash. Decoded commands point into the input
 * buffer (zero copy), which must outlive the decoded entry. */
#ifndef TKV_COMMAND_H
#define TKV_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/error.h"

#define TKV_ENTRY_FORMAT 1
#define TKV_ATOMIC_MAX_CHECKS 1000
#define TKV_ATOMIC_MAX_MUTATIONS 1000
#define TKV_ENTRY_MAX_CMDS 65535 /* position must fit the versionstamp */
#define TKV_ADDR_MAX 255

enum tkv_cmd_type {
    TKV_CMD_SET = 1,
    TKV_CMD_DELETE = 2,
    TKV_CMD_ATOMIC = 3,
    TKV_CMD_TICK = 4,
    TKV_CMD_MEMBER_SET = 5,
    TKV_CMD_MEMBER_DEL = 6,
};

struct tkv_mutation {
    uint8_t type;          /* TKV_CMD_SET or TKV_CMD_DELETE */
    uint16_t klen;
    uint32_t vlen;         /* SET only */
    const uint8_t *key;    /* encoded key */
    const uint8_t *value;  /* msgpack bytes of the value, SET only */
    uint64_t ttl_ms;       /* SET only, 0 = none */
};

struct tkv_check {
    const uint8_t *key;
    uint16_t klen;
    uint64_t version;      /* 0 = must be absent */
};

struct tkv_cmd {
    uint8_t type;          /* enum tkv_cmd_type */
    uint64_t session;
    uint64_t seq;
    uint64_t ack;
    /* SET / DELETE */
    struct tkv_mutation mut;
    /* ATOMIC */
    const struct tkv_check *checks;
    uint32_t nchecks;
    const struct tkv_mutation *muts;
    uint32_t nmuts;
    /* MEMBER_SET / MEMBER_DEL */
    uint64_t member_id;
    const char *addr;      /* not NUL-terminated */
    uint16_t addrlen;
};

/* A decoded entry. */
struct tkv_entry {
    uint64_t format;
    int64_t timestamp_ms;
    struct tkv_cmd *cmds;  /* owned */
    size_t ncmds;
    struct tkv_check *checks;    /* owned: storage for every atomic's checks */
    struct tkv_mutation *muts;   /* owned: storage for every atomic's muts */
};

/* Encoding. A batch is built as: tkv_cmd_encode() for each command into a
 * body buffer, then tkv_entry_encode() which writes the header, the body and
 * the padding. */
int tkv_cmd_encode(const struct tkv_cmd *cmd, struct tkv_buf *body);
int tkv_entry_encode(int64_t timestamp_ms, size_t ncmds, const uint8_t *body,
                     size_t body_len, struct tkv_buf *out);

/* Decode; on success *e must be released with tkv_entry_close(). On error
 * *e needs no release. */
int tkv_entry_decode(const uint8_t *buf, size_t len,
                     struct tkv_entry *e /* OUT */, struct tkv_err *err);
void tkv_entry_close(struct tkv_entry *e);

#endif /* TKV_COMMAND_H */
