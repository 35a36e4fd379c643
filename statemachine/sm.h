/* The deterministic state machine every node runs.
 *
 * Owns the data (an indexable skiplist of encoded keys), the expiry index,
 * the state machine clock, the client session table (for at-most-once
 * writes) and the members' client addresses. It is pure: no sockets, no
 * clocks, no randomness, no iteration in hash order. Given the same entries
 * in the same order every replica reaches the same bytes (tkv_sm_hash).
 *
 * Flow: raft/ hands each committed entry to tkv_sm_apply(), which
 *   1. decodes the whole entry (strict; a corrupt entry changes nothing),
 *   2. advances now = max(now, entry timestamp),
 *   3. purges every key with expires_at <= now (expiry index, not a scan)
 *      and every session idle for longer than the session timeout,
 *   4. applies each command, producing one result per command.
 * Reads (get, list) run against the current state between applies.
 *
 * Versionstamps: index << 16 | position of the command in its entry. */
#ifndef TKV_SM_H
#define TKV_SM_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../common/error.h"
#include "command.h"
#include "keycodec.h"
#include "skiplist.h"

#define TKV_LIST_DEFAULT_LIMIT 100
#define TKV_LIST_MAX_LIMIT 1000
/* Per-item allowance for a reply's framing, used with max_bytes. */
#define TKV_LIST_ITEM_OVERHEAD 32
/* base64url of: 1 format byte + 1 flag byte + 8 selector hash + key */
#define TKV_CURSOR_MAX (((2 + 8 + TKV_KEY_MAX) * 4 + 2) / 3 + 1)

struct tkv_sm_config {
    int64_t session_idle_ms; /* forget sessions idle this long (sm time) */
    size_t max_sessions;     /* evict least recently used beyond this */
    size_t session_window;   /* results remembered per session */
};

/* Defaults: 10 minutes, 100000 sessions, 1024 results per session. Every
 * replica must use the same configuration. */
void tkv_sm_config_default(struct tkv_sm_config *cfg);

struct tkv_result {
    int code;          /* 0, TKV_ECONFLICT, TKV_EINVALID, TKV_ESTALE, ... */
    uint32_t conflict; /* CONFLICT: index of the first failed check */
    uint64_t version;  /* versionstamp of the write when code == 0 */
};

struct tkv_session;

struct tkv_member_addr {
    uint64_t id;
    char addr[TKV_ADDR_MAX + 1];
};

struct tkv_sm {
    struct tkv_sm_config cfg;
    struct tkv_skiplist data;    /* owned: key -> value, version, expiry */
    struct tkv_skiplist expiry;  /* owned: (expires_at BE, key) -> nothing */
    int64_t now;                 /* state machine clock, ms, never decreases */
    uint64_t applied_index;      /* index of the last applied entry */
    /* sessions: open-addressing table by id + LRU list by last use */
    struct tkv_session **sess_table; /* owned */
    size_t sess_cap;
    size_t sess_count;
    struct tkv_session *lru_head;    /* least recently used */
    struct tkv_session *lru_tail;
    /* members' client addresses, sorted by id */
    struct tkv_member_addr *members; /* owned */
    size_t nmembers;
    /* results of the last apply, valid until the next one */
    struct tkv_result *results;      /* owned */
    size_t results_cap;
    struct tkv_sm_snap *snap;        /* owned: a stepped snapshot, or NULL */
};

int tkv_sm_init(struct tkv_sm *sm, const struct tkv_sm_config *cfg);
void tkv_sm_close(struct tkv_sm *sm);

/* Apply one committed entry at raft index `index`. On success returns 0 and
 * sets *results to an array of *nresults results (one per command, owned by
 * sm, valid until the next apply). A corrupt entry returns TKV_ECORRUPT and
 * changes nothing but applied_index (every replica sees the same bytes, so
 * every replica skips it alike). TKV_ENOMEM means the entry may be applied
 * in part: replicas would diverge, so the caller must stop the node (it
 * recovers from its snapshot and log on restart). */
int tkv_sm_apply(struct tkv_sm *sm, uint64_t index, const uint8_t *buf,
                 size_t len, const struct tkv_result **results /* OUT */,
                 size_t *nresults /* OUT */, struct tkv_err *err);

/* Point read: the live entry for key, or NULL. Valid until the next apply. */
const struct tkv_sl_node *tkv_sm_get(const struct tkv_sm *sm,
                                     const uint8_t *key, size_t klen);

struct tkv_list_query {
    const uint8_t *prefix; /* NULL = no prefix; may have len 0 (all keys) */
    size_t prefix_len;
    const uint8_t *start;  /* NULL = none; inclusive */
    size_t start_len;
    const uint8_t *end;    /* NULL = none; exclusive */
    size_t end_len;
    int64_t limit;         /* 0 = default (100); else 1..1000 */
    int reverse;
    const char *cursor;    /* NULL = first page; base64url text */
    size_t cursor_len;
    size_t max_bytes;      /* 0 = no budget; else end the page (after at
                              least one item) before the items' key + value
                              + TKV_LIST_ITEM_OVERHEAD bytes exceed it */
};

struct tkv_list_result {
    const struct tkv_sl_node *items[TKV_LIST_MAX_LIMIT];
    size_t n;
    size_t total;                /* all entries matching the selector */
    char cursor[TKV_CURSOR_MAX]; /* next page, "" when there is none */
};

/* List with the seed's semantics: prefix selects keys that start with the
 * prefix and are longer than it; start inclusive; end exclusive; every
 * combination of the three is allowed (at least one must be given); limit
 * 1..1000 (default 100); reverse; cursor from a previous page of the same
 * selector and direction (else TKV_EBAD_CURSOR). total ignores cursor and
 * limit and is computed from ranks. */
int tkv_sm_list(const struct tkv_sm *sm, const struct tkv_list_query *q,
                struct tkv_list_result *out /* OUT */, struct tkv_err *err);

/* Client address of a member, or NULL. */
const char *tkv_sm_member_addr(const struct tkv_sm *sm, uint64_t id);

/* Snapshot: the whole state as a stream of msgpack objects written to pk.
 * The stream is versioned and ends with a trailer holding counts and a
 * checksum. */
int tkv_sm_snapshot(const struct tkv_sm *sm, msgpack_packer *pk);

/* The same stream, of the state as it is now, written in steps while
 * entries go on being applied (see sm.c): begin writes the header to pk;
 * each step writes up to max entries, and the last one the rest, sets
 * *done and ends the snapshot. pk must be the same packer (or one with the
 * same destination) at every step. Entries changed or deleted before the
 * cursor reaches them are copied first, inside apply, so memory grows by
 * what changes while it runs. A step returns TKV_ENOMEM when such a copy
 * failed, TKV_EINTERNAL when the count came out wrong; abort then. One at a
 * time: begin ends one running; close and restore end it too. */
int tkv_sm_snap_begin(struct tkv_sm *sm, msgpack_packer *pk);
int tkv_sm_snap_step(struct tkv_sm *sm, msgpack_packer *pk, size_t max,
                     int *done /* OUT */);
int tkv_sm_snap_running(const struct tkv_sm *sm);
void tkv_sm_snap_abort(struct tkv_sm *sm);

/* Replace the state with a snapshot's. Corrupt, truncated or otherwise
 * invalid data returns TKV_ECORRUPT and leaves the old state intact. */
int tkv_sm_restore(struct tkv_sm *sm, const uint8_t *buf, size_t len,
                   struct tkv_err *err);

/* 64-bit digest of the whole replicated state (data, versions, expiry,
 * clock, sessions, members): equal on replicas at equal applied index. */
uint64_t tkv_sm_hash(const struct tkv_sm *sm);

static inline size_t tkv_sm_count(const struct tkv_sm *sm)
{
    return sm->data.length;
}
static inline size_t tkv_sm_bytes(const struct tkv_sm *sm)
{
    return sm->data.bytes;
}

/* Versionstamp as 16 lowercase hex digits + NUL. */
void tkv_version_format(uint64_t version, char out[17]);
/* Parse 16 hex digits (either case); 0 or TKV_EINVALID. */
int tkv_version_parse(const char *s, size_t len, uint64_t *version /* OUT */);

#endif /* TKV_SM_H */
