/* libtuplekv: the client library of tuplekv.
 *
 * Carries the API of the KV storage seed (get, getMany, set with TTL, delete,
 * list with prefix/start/end, limit, reverse, cursor and total, transactions)
 * into C, and handles the cluster for its user: any endpoint may be given,
 * NOT_LEADER redirects are followed, a lost connection is retried on the
 * other endpoints with backoff until the call's timeout, and writes carry a
 * session id and sequence number so a retry after a lost reply is applied at
 * most once.
 *
 * Keys and values are jansson json_t. A key is a JSON array of 1..N parts,
 * each a string, a number or a boolean:
 *
 *     json_t *key = json_pack("[ss]", "notes", id);
 *
 * Errors: every function that can fail returns 0 or a negative TKV_E... code
 * (the one table in tuplekv_error.h, which is also the protocol's) and, when
 * the caller passes a struct tkv_err, writes a message into it. Messages for
 * refused input are the seed's: "Value size (1234.56 KB) exceeds the maximum
 * allowed size of 1 MB (1024 KB)", "Value is not JSON serializable: ...".
 * tkv_strerror() names a code. The codes a user meets:
 *
 *   TKV_EINVALID      bad key, selector, option or argument (refused)
 *   TKV_ETOO_LARGE    value over 1 MB, key over 2 KiB, request over 2 MiB
 *   TKV_ENOT_JSON     value that JSON cannot carry
 *   TKV_EBAD_CURSOR   cursor not from a previous page of the same listing
 *   TKV_ECONFLICT     atomic check failed / transaction kept conflicting
 *   TKV_EUNAVAILABLE  no node could serve the call within its timeout (for a
 *                     write: it was never sent, so it was not applied)
 *   TKV_ETIMEOUT      a read got no answer within its timeout
 *   TKV_EUNKNOWN      a write whose outcome could not be learned within its
 *                     timeout: it may or may not have been applied
 *   TKV_EBUSY         async: too many calls in flight (max_inflight)
 *   TKV_EABORTED      the transaction function asked to abort
 *   TKV_ENOMEM        out of memory
 *
 * Ownership, in one rule: the library never takes over a json_t the caller
 * passes in (it copies what it needs before the call returns, so the caller
 * may change or free it right after); everything a call returns through an
 * OUT parameter belongs to the caller and is freed with the matching
 * tkv_*_free() function (json_t members with json_decref, which those
 * functions do).
 *
 * Threads: a struct tkv_client may be shared by any number of threads; every
 * call on it is thread safe except tkv_close(), which must be the last call
 * and must not run concurrently with any other. A client owns one background
 * I/O thread running a libuv loop, with one connection per node it talks to,
 * on which many requests are in flight at once. Async completion callbacks
 * run on that thread: they must not block, and must not make synchronous
 * calls on the same client (those return TKV_EINVALID there); they may
 * submit more async calls. A struct tkv_txn belongs to the thread running
 * the transaction function, and a struct tkv_atomic to one thread at a time.
 */
#ifndef TUPLEKV_H
#define TUPLEKV_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The error codes, struct tkv_err, tkv_strerror() and tkv_errname(). */
#include "tuplekv_error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TKV_DEFAULT_ENDPOINTS "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"
#define TKV_DEFAULT_TIMEOUT_MS 5000
#define TKV_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define TKV_DEFAULT_MAX_INFLIGHT 4096
#define TKV_DEFAULT_TXN_ATTEMPTS 10

/* Limits checked before anything is sent (the node checks them again). */
#define TKV_MAX_VALUE_BYTES (1024 * 1024) /* compact JSON serialization */
#define TKV_MAX_KEY_BYTES 2048            /* encoded key */
#define TKV_MAX_BATCH                  \
    1000 /* get_many keys, list limit, \
            atomic checks and mutations */

/* Read consistency, per call. */
enum tkv_consistency {
    TKV_STRONG = 0,   /* linearizable: served by the leader after a barrier */
    TKV_EVENTUAL = 1, /* served by the contacted node at once; may be stale */
};

/* ---------------------------------------------------------------------
 * Connecting
 * --------------------------------------------------------------------- */

struct tkv_client;

struct tkv_config {
    /* "host:port,host:port,...": any subset of the cluster's client
     * addresses; the others are learned from redirects. NULL: the
     * environment variable TUPLEKV_ENDPOINTS, else TKV_DEFAULT_ENDPOINTS.
     * Copied by tkv_connect(). */
    const char *endpoints;
    int timeout_ms;         /* default per call; 0: TKV_DEFAULT_TIMEOUT_MS */
    int connect_timeout_ms; /* one TCP connect; 0: the default */
    int max_inflight;       /* async calls at once; 0: the default */
    int txn_attempts;       /* transaction runs on conflict; 0: default */
    enum tkv_consistency consistency; /* default for reads: TKV_STRONG */
};

/* Fill cfg with the defaults above (all zero / NULL). */
void tkv_config_init(struct tkv_config *cfg);

/* Parse the endpoints and start the I/O thread. Connections are made lazily
 * by the first call, so this succeeds while the cluster is down; only bad
 * configuration (TKV_EINVALID: an endpoint that is not host:port) or
 * TKV_ENOMEM fail. *out gets the client, which the caller owns and releases
 * with tkv_close(). cfg may be NULL (all defaults). */
int tkv_connect(const struct tkv_config *cfg,
                struct tkv_client **out,
                struct tkv_err *err);

/* Stop the I/O thread, fail the async calls still in flight with
 * TKV_ESHUTDOWN (their callbacks run before this returns), close the
 * connections and free the client. NULL is a no-op. */
void tkv_close(struct tkv_client *c);

/* Options of one call; NULL everywhere means the client's defaults. */
struct tkv_opts {
    int timeout_ms;                   /* 0: the client's default */
    enum tkv_consistency consistency; /* reads only */
};

/* ---------------------------------------------------------------------
 * Entries
 * --------------------------------------------------------------------- */

/* One stored entry, as get, get_many and list return it. */
struct tkv_item {
    json_t *key;      /* owned reference: the key, a JSON array */
    json_t *value;    /* owned reference: the value */
    uint64_t version; /* versionstamp of the write that stored it */
};

/* Free an item and drop its references. NULL is a no-op. */
void tkv_item_free(struct tkv_item *item);

/* Free an array of n item pointers (NULL slots allowed) and the array. */
void tkv_items_free(struct tkv_item **items, size_t n);

/* A version as users see it: 16 lowercase hex digits and a NUL. */
void tkv_version_str(uint64_t version, char out[17]);
/* Parse 16 hex digits; 0 or TKV_EINVALID. */
int tkv_version_from_str(const char *s, uint64_t *version /* OUT */);

/* ---------------------------------------------------------------------
 * The seed's methods (synchronous; they block the calling thread)
 * --------------------------------------------------------------------- */

/* Create or replace key's value. ttl_seconds > 0 makes the entry expire
 * that many seconds (fractions allowed, rounded to milliseconds) after the
 * write is committed; 0 keeps it until deleted. *version (may be NULL) gets
 * the write's versionstamp. */
int tkv_set(struct tkv_client *c,
            const json_t *key,
            const json_t *value,
            double ttl_seconds,
            const struct tkv_opts *opts,
            uint64_t *version /* OUT */,
            struct tkv_err *err);

/* Read one key. An absent key is not an error: it returns 0 with
 * *out == NULL. Otherwise *out gets an item the caller frees with
 * tkv_item_free(). */
int tkv_get(struct tkv_client *c,
            const json_t *key,
            const struct tkv_opts *opts,
            struct tkv_item **out /* OUT */,
            struct tkv_err *err);

/* Read 1..1000 keys (keys is a JSON array of keys) as one consistent
 * snapshot. *out gets an array of *n == json_array_size(keys) slots in the
 * order of keys, NULL for an absent key; free with tkv_items_free(). */
int tkv_get_many(struct tkv_client *c,
                 const json_t *keys,
                 const struct tkv_opts *opts,
                 struct tkv_item ***out /* OUT */,
                 size_t *n /* OUT */,
                 struct tkv_err *err);

/* Delete a key; deleting an absent key is not an error. */
int tkv_delete(struct tkv_client *c,
               const json_t *key,
               const struct tkv_opts *opts,
               struct tkv_err *err);

/* Which keys a listing selects (seed's KvListSelector). Each member may be
 * NULL; at least one must be given. prefix: keys that start with all of its
 * parts and are longer than it ([] selects every key); start: inclusive;
 * end: exclusive. */
struct tkv_selector {
    const json_t *prefix;
    const json_t *start;
    const json_t *end;
};

/* Seed's KvListOptions. */
struct tkv_list_opts {
    unsigned limit;     /* 1..1000; 0: 100 */
    int reverse;        /* nonzero: descending key order */
    const char *cursor; /* NULL: first page; else a page's cursor */
};

/* One page of a listing (seed's KvListResponse). */
struct tkv_page {
    struct tkv_item *items; /* owned: n items in listing order */
    size_t n;
    uint64_t total; /* entries matching the selector, all pages */
    char *cursor;   /* owned: next page, NULL when there is none */
};

/* List a page. lopts may be NULL (defaults). *out gets a page the caller
 * frees with tkv_page_free(). The page is one consistent snapshot; a cursor
 * continues after the last key of its page, so later pages see later
 * states. */
int tkv_list(struct tkv_client *c,
             const struct tkv_selector *sel,
             const struct tkv_list_opts *lopts,
             const struct tkv_opts *opts,
             struct tkv_page **out /* OUT */,
             struct tkv_err *err);

void tkv_page_free(struct tkv_page *page);

/* ---------------------------------------------------------------------
 * Atomic batches (checks + mutations, all or nothing; Deno's atomic())
 * --------------------------------------------------------------------- */

struct tkv_atomic;

/* A new empty batch, or NULL when out of memory. The caller owns it and
 * frees it with tkv_atomic_free(); it may be committed several times. */
struct tkv_atomic *tkv_atomic_new(void);
void tkv_atomic_free(struct tkv_atomic *a);

/* Add a check: key must hold exactly this version when the batch applies;
 * version 0 means the key must be absent. At most 1000 checks. */
int tkv_atomic_check(struct tkv_atomic *a,
                     const json_t *key,
                     uint64_t version,
                     struct tkv_err *err);

/* Add mutations, applied in order. At most 1000 in all. The key and value
 * are validated and copied now. */
int tkv_atomic_set(struct tkv_atomic *a,
                   const json_t *key,
                   const json_t *value,
                   double ttl_seconds,
                   struct tkv_err *err);
int tkv_atomic_delete(struct tkv_atomic *a,
                      const json_t *key,
                      struct tkv_err *err);

/* Commit: 0 and *version (may be NULL) the batch's versionstamp when every
 * check held and every mutation was applied; TKV_ECONFLICT and nothing
 * written when a check failed, with *conflict (may be NULL; a new reference
 * the caller owns) the key of the first failed check. A batch needs at
 * least one mutation. */
int tkv_atomic_commit(struct tkv_client *c,
                      const struct tkv_atomic *a,
                      const struct tkv_opts *opts,
                      uint64_t *version /* OUT */,
                      json_t **conflict /* OUT */,
                      struct tkv_err *err);

/* ---------------------------------------------------------------------
 * Transactions (optimistic, FoundationDB / Deno KV style)
 * --------------------------------------------------------------------- */

struct tkv_txn;

/* The transaction function. Return 0 to commit; a negative TKV_E... code
 * aborts and is returned by tkv_transaction() as is; any positive value
 * aborts with TKV_EABORTED. It may run several times (once per conflict),
 * so it must not have effects outside the transaction except through arg,
 * and a run must leave arg as if it were the only one. */
typedef int (*tkv_txn_fn)(struct tkv_txn *tx, void *arg);

/* Run fn with a transaction handle; reads go to the cluster (strong) and
 * record each key's version; writes are buffered and seen by later reads of
 * the same transaction; commit sends the writes with checks of every
 * version read, all or nothing. On conflict fn runs again after a jittered
 * backoff, at most cfg.txn_attempts times in all (then TKV_ECONFLICT). When
 * fn aborts nothing is written. A transaction that wrote nothing commits
 * nothing but still checks, with one more read, that its reads were a
 * consistent snapshot. *version (may be NULL) gets the commit's
 * versionstamp, 0 for a read-only transaction. opts->timeout_ms bounds
 * each call the transaction makes, not the whole transaction.
 * Any tx call failing makes the commit fail with the same error. */
int tkv_transaction(struct tkv_client *c,
                    tkv_txn_fn fn,
                    void *arg,
                    const struct tkv_opts *opts,
                    uint64_t *version /* OUT */,
                    struct tkv_err *err);

/* Inside fn only. Same contracts as tkv_get / tkv_get_many (items owned by
 * the caller) and tkv_set / tkv_delete (buffered until commit). */
int tkv_txn_get(struct tkv_txn *tx,
                const json_t *key,
                struct tkv_item **out /* OUT */,
                struct tkv_err *err);
int tkv_txn_get_many(struct tkv_txn *tx,
                     const json_t *keys,
                     struct tkv_item ***out /* OUT */,
                     size_t *n /* OUT */,
                     struct tkv_err *err);
int tkv_txn_set(struct tkv_txn *tx,
                const json_t *key,
                const json_t *value,
                double ttl_seconds,
                struct tkv_err *err);
int tkv_txn_delete(struct tkv_txn *tx, const json_t *key, struct tkv_err *err);
/* Which run this is: 1 for the first, 2 after one conflict, ... */
int tkv_txn_attempt(const struct tkv_txn *tx);

/* ---------------------------------------------------------------------
 * Asynchronous calls (pipelined on the client's connection)
 * --------------------------------------------------------------------- */

/* What a call produced; only the members of its kind are set. The library
 * owns it and frees what is left in it when the callback returns; to keep a
 * part, take it and set the member to NULL (e.g. `it = res->item;
 * res->item = NULL;`). */
struct tkv_response {
    uint64_t version;        /* set, delete, atomic */
    struct tkv_item *item;   /* get: NULL when absent */
    struct tkv_item **items; /* get_many: nitems slots, NULL when absent */
    size_t nitems;
    struct tkv_page *page; /* list */
    json_t *conflict;      /* atomic, TKV_ECONFLICT: first failed key */
};

/* Called exactly once per submitted call, on the client's I/O thread
 * (possibly before the submitting function has returned). rc is 0 or a
 * TKV_E... code with err->msg saying why; res is never NULL. */
typedef void (*tkv_done_cb)(void *arg,
                            int rc,
                            struct tkv_response *res,
                            const struct tkv_err *err);

/* Each validates and encodes its arguments in the calling thread and
 * queues the call: 0 means cb will be called; a nonzero return (invalid
 * input, TKV_EBUSY at max_inflight, TKV_ENOMEM) means it will not be. */
int tkv_set_async(struct tkv_client *c,
                  const json_t *key,
                  const json_t *value,
                  double ttl_seconds,
                  const struct tkv_opts *opts,
                  tkv_done_cb cb,
                  void *arg,
                  struct tkv_err *err);
int tkv_get_async(struct tkv_client *c,
                  const json_t *key,
                  const struct tkv_opts *opts,
                  tkv_done_cb cb,
                  void *arg,
                  struct tkv_err *err);
int tkv_get_many_async(struct tkv_client *c,
                       const json_t *keys,
                       const struct tkv_opts *opts,
                       tkv_done_cb cb,
                       void *arg,
                       struct tkv_err *err);
int tkv_delete_async(struct tkv_client *c,
                     const json_t *key,
                     const struct tkv_opts *opts,
                     tkv_done_cb cb,
                     void *arg,
                     struct tkv_err *err);
int tkv_list_async(struct tkv_client *c,
                   const struct tkv_selector *sel,
                   const struct tkv_list_opts *lopts,
                   const struct tkv_opts *opts,
                   tkv_done_cb cb,
                   void *arg,
                   struct tkv_err *err);
int tkv_atomic_commit_async(struct tkv_client *c,
                            const struct tkv_atomic *a,
                            const struct tkv_opts *opts,
                            tkv_done_cb cb,
                            void *arg,
                            struct tkv_err *err);

/* ---------------------------------------------------------------------
 * Cluster administration
 * --------------------------------------------------------------------- */

/* One node's view of itself (the `status` op). */
struct tkv_node_status {
    char *endpoint; /* owned: the address asked */
    uint64_t node_id;
    char *role; /* owned: "leader", "follower", "candidate", ... */
    uint64_t term;
    uint64_t leader_id;   /* 0: unknown */
    char *leader_address; /* owned, NULL: unknown */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t snapshot_index;
    uint64_t keys;
    uint64_t data_bytes;
    int64_t sm_time_ms;
    uint64_t connections;
    uint64_t uptime_ms;
};

/* Ask the node at endpoint ("host:port") for its status, without
 * redirects or failover. *out is freed with tkv_node_status_free(). */
int tkv_node_status(struct tkv_client *c,
                    const char *endpoint,
                    const struct tkv_opts *opts,
                    struct tkv_node_status **out /* OUT */,
                    struct tkv_err *err);
void tkv_node_status_free(struct tkv_node_status *st);

struct tkv_member_info {
    uint64_t id;
    char *raft_address;   /* owned */
    char *client_address; /* owned, NULL: unknown */
    char *role;           /* owned: "voter", "standby", "spare" */
};

/* The cluster's configuration, from the leader. */
int tkv_members(struct tkv_client *c,
                const struct tkv_opts *opts,
                struct tkv_member_info **out /* OUT */,
                size_t *n /* OUT */,
                struct tkv_err *err);
void tkv_members_free(struct tkv_member_info *m, size_t n);

/* Add a node (it joins as a spare, then becomes a voter), remove one, or
 * hand leadership to node id (0: the most up-to-date voter). These are not
 * deduplicated: when one cannot be confirmed it returns TKV_EUNKNOWN. */
int tkv_member_add(struct tkv_client *c,
                   uint64_t id,
                   const char *raft_addr,
                   const char *client_addr,
                   const struct tkv_opts *opts,
                   struct tkv_err *err);
int tkv_member_remove(struct tkv_client *c,
                      uint64_t id,
                      const struct tkv_opts *opts,
                      struct tkv_err *err);
int tkv_transfer(struct tkv_client *c,
                 uint64_t id,
                 const struct tkv_opts *opts,
                 struct tkv_err *err);

#ifdef __cplusplus
}
#endif

#endif /* TUPLEKV_H */
