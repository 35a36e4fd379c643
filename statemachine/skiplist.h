/* Indexable skiplist over byte keys, as Redis's t_zset.c: each forward link
 * carries a span (how many level-0 steps it skips), so the rank of any key is
 * found in O(log n), and so is the element at a rank. Like Redis's zset
 * (dict + skiplist), a list can also carry a hash index of its nodes, which
 * makes exact lookups and same-size replacements O(1).
 *
 * A node holds its key and value inline in one allocation, plus the 64-bit
 * version and the expiry (if any) of the entry it stores. Keys are compared as
 * by tkv_key_cmp (memcmp, shorter first on a common prefix). Levels are drawn
 * from a deterministic generator seeded at init, so two lists fed the same
 * operations have the same shape (the state machine must be deterministic).
 * The index is only ever probed for one key, never iterated, so hash order
 * cannot leak into what a caller sees.
 *
 * Ownership: the list owns its nodes and its index. A node pointer returned
 * by a lookup stays valid until that key is deleted or replaced, or the list
 * is closed; after a replace it may point to freed memory or to the node
 * holding the new value, so it must not be used either way. */
#ifndef TKV_SKIPLIST_H
#define TKV_SKIPLIST_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/error.h"

#define TKV_SKIPLIST_MAXLEVEL 32

/* One allocation per node, laid out to keep the per-entry overhead small
 * (16 bytes of fields, 8 per level, 4 per level above 0, and 8 for an
 * expiry only when the entry has one: most have none):
 *
 *   fields | next[height] | span[height - 1] | key | value | [expires_at]
 *
 * span[i - 1] is the number of level-0 steps from this node to next[i] (or
 * to the end, counted as one step past the last node). The level-0 span is
 * always 1, so it is not stored. There is no back link: tkv_sl_prev
 * searches, and the last node is kept in the list. */
#define TKV__SL_EXPIRES 1 /* flags: an expires_at follows the value */

struct tkv_sl_node {
    uint64_t version;
    uint32_t vlen;
    uint16_t klen;
    uint8_t height;             /* number of levels, 1..MAXLEVEL */
    uint8_t flags;              /* TKV__SL_EXPIRES */
    struct tkv_sl_node *next[]; /* height links, then spans, key, value */
};

/* Span of the link at level (1 <= level < height). */
static inline uint32_t *tkv__sl_span(const struct tkv_sl_node *n, int level)
{
    return (uint32_t *)(n->next + n->height) + (level - 1);
}

/* Key and value bytes of a node (inline after the links). */
static inline const uint8_t *tkv_sl_key(const struct tkv_sl_node *n)
{
    return (const uint8_t *)((const uint32_t *)(n->next + n->height) +
                             (n->height - 1));
}
static inline const uint8_t *tkv_sl_value(const struct tkv_sl_node *n)
{
    return tkv_sl_key(n) + n->klen;
}

/* ms of state machine time at which the entry expires, 0 = never. */
static inline int64_t tkv_sl_expires(const struct tkv_sl_node *n)
{
    int64_t v = 0;

    if (n->flags & TKV__SL_EXPIRES) {
        memcpy(&v, tkv_sl_value(n) + n->vlen, sizeof v); /* unaligned */
    }
    return v;
}

/* The hash index: open addressing with linear probing. A slot is 0 (empty)
 * or a node pointer (x86-64 user addresses fit in 48 bits) with a 16-bit
 * tag of the key's hash in the top bits, so most probes that are not the
 * key are rejected without touching the node. Deletion shifts later
 * entries back instead of leaving tombstones. The index grows by 1.5x
 * when an insert would take it past load 0.8, all at once (every key is
 * hashed again: ~0.1 s at a million entries), and never shrinks. */
#define TKV_SL_INDEX_PTR_BITS 48 /* low bits of a slot: the node */

struct tkv_sl_index {
    uint64_t *slots; /* owned; NULL when the list has no index */
    size_t cap;      /* number of slots (any size, not a power of two) */
    size_t grow_at;  /* length above which the index grows (load 0.8) */
    uint64_t seed;   /* of tkv_hash64 */
    int suspended;   /* tkv_sl_index_suspend: rebuilt by _resume */
};

struct tkv_skiplist {
    struct tkv_sl_node *head; /* owned; sentinel with MAXLEVEL links */
    struct tkv_sl_node *tail; /* last node or NULL */
    size_t length;
    int level;    /* highest level in use, >= 1 */
    uint64_t rng; /* deterministic level generator state */
    size_t bytes; /* sum of klen + vlen over nodes */
    uint64_t frees; /* nodes freed so far (a tkv_sl_path goes stale) */
    struct tkv_sl_index index;
};

/* indexed != 0 gives the list a hash index: tkv_sl_get becomes O(1), and so
 * do a tkv_sl_put that replaces in place and a tkv_sl_delete of an absent
 * key, at a cost of 10 to 15 bytes per entry. Returns 0 or TKV_ENOMEM. */
int tkv_sl_init(struct tkv_skiplist *sl, uint64_t seed, int indexed);
void tkv_sl_close(struct tkv_skiplist *sl);

/* Insert or replace the entry for key. A replace that keeps the node's size
 * (a value of the same length, and an expiry if and only if the old entry
 * had one) updates the node in place; otherwise the node is reallocated.
 * Either way old node pointers for this key must not be used any more.
 * *replaced (if not NULL) is set to 1 when the key existed. Returns 0 or
 * TKV_ENOMEM (list unchanged; its index may have grown). klen <= UINT16_MAX,
 * vlen <= UINT32_MAX. */
int tkv_sl_put(struct tkv_skiplist *sl,
               const uint8_t *key,
               size_t klen,
               const uint8_t *val,
               size_t vlen,
               uint64_t version,
               int64_t expires_at,
               int *replaced /* OUT */);

/* The search path tkv_sl_prefetch walked for one operation: per level,
 * the last node before the key. Valid for a put of that key into that list
 * as long as the list frees no node and gains no level (nodes inserted
 * since are stepped over); the put checks, and searches when it is not. */
struct tkv_sl_path {
    const struct tkv_skiplist *sl; /* NULL: no path was walked */
    const uint8_t *key;            /* the operation's key (same pointer) */
    size_t klen;
    uint64_t frees; /* sl->frees when walked */
    int level;      /* sl->level when walked */
    struct tkv_sl_node *update[TKV_SKIPLIST_MAXLEVEL];
};

/* tkv_sl_put, with the path tkv_sl_prefetch recorded for this key (or
 * NULL): an insert of a height-1 node (three in four) or a replace that
 * reallocates then steps from the path instead of searching from the
 * top. Same result as tkv_sl_put, with or without a (stale) path. */
int tkv_sl_put_path(struct tkv_skiplist *sl,
                    const uint8_t *key,
                    size_t klen,
                    const uint8_t *val,
                    size_t vlen,
                    uint64_t version,
                    int64_t expires_at,
                    const struct tkv_sl_path *path,
                    int *replaced /* OUT */);

/* Bulk loads (a snapshot restore): tkv_sl_index_suspend frees the index,
 * so that appends skip it (lookups meanwhile search, as in a list without
 * an index), and tkv_sl_index_resume builds it again from the nodes in one
 * pass, with the cache misses of several slots in flight at once instead
 * of one per insert. resume: 0, or TKV_ENOMEM and the list stays without
 * an index (correct, slower). Both are no-ops on a list made without one. */
void tkv_sl_index_suspend(struct tkv_skiplist *sl);
int tkv_sl_index_resume(struct tkv_skiplist *sl);

/* Insert key after every key in the list (a bulk load of sorted entries,
 * e.g. a snapshot restore): the same result as tkv_sl_put, without a
 * search (the path is the list's right edge, walked by links alone).
 * Returns 0, TKV_ENOMEM, or TKV_EINVALID when key is not above the last
 * key (list unchanged). */
int tkv_sl_append(struct tkv_skiplist *sl,
                  const uint8_t *key,
                  size_t klen,
                  const uint8_t *val,
                  size_t vlen,
                  uint64_t version,
                  int64_t expires_at);

/* Delete key; returns 1 if it was there, 0 if not. */
int tkv_sl_delete(struct tkv_skiplist *sl, const uint8_t *key, size_t klen);

/* Exact lookup; NULL when absent. O(1) with an index, else O(log n). */
struct tkv_sl_node *tkv_sl_get(const struct tkv_skiplist *sl,
                               const uint8_t *key,
                               size_t klen);

/* First node with key >= given key (lower bound); NULL when none. If rank is
 * not NULL it gets the 0-based rank of that position (== length when
 * NULL is returned): the number of nodes with key < given key. */
struct tkv_sl_node *tkv_sl_seek(const struct tkv_skiplist *sl,
                                const uint8_t *key,
                                size_t klen,
                                size_t *rank /* OUT */);

/* Number of nodes with key < given key, O(log n). */
size_t tkv_sl_rank(const struct tkv_skiplist *sl,
                   const uint8_t *key,
                   size_t klen);

/* Node at 0-based rank, or NULL when rank >= length. O(log n). */
struct tkv_sl_node *tkv_sl_at(const struct tkv_skiplist *sl, size_t rank);

/* Iteration. next is O(1); prev is a search, O(log n) (nodes have no back
 * link): to go backwards over many nodes, take them forwards with
 * tkv_sl_range from the lowest rank and read them backwards. */
static inline struct tkv_sl_node *tkv_sl_first(const struct tkv_skiplist *sl)
{
    return sl->head->next[0];
}
static inline struct tkv_sl_node *tkv_sl_last(const struct tkv_skiplist *sl)
{
    return sl->tail;
}
static inline struct tkv_sl_node *tkv_sl_next(const struct tkv_sl_node *n)
{
    return n->next[0];
}
struct tkv_sl_node *tkv_sl_prev(const struct tkv_skiplist *sl,
                                const struct tkv_sl_node *n);

/* The nodes at ranks [rank, rank + n), in order, into out[]; returns how
 * many there are (fewer than n where the list ends). Cost O(log n + n),
 * like tkv_sl_at and n - 1 tkv_sl_next, but the nodes are fetched along
 * several chains at once (from the nodes of higher levels in the range)
 * instead of one after the other, which at a million nodes makes it
 * several times faster. For a backward page, take the range and read it
 * backwards. */
size_t tkv_sl_range(const struct tkv_skiplist *sl,
                    size_t rank,
                    size_t n,
                    const struct tkv_sl_node **out /* OUT */);

/* An operation about to be applied, for tkv_sl_prefetch. */
enum tkv_sl_op { TKV_SL_GET, TKV_SL_PUT, TKV_SL_DELETE };
struct tkv_sl_intent {
    const uint8_t *key;
    size_t klen;
    enum tkv_sl_op op;
    size_t vlen;        /* TKV_SL_PUT: length of the value it will store */
    int64_t expires_at; /* TKV_SL_PUT: the expiry it will store */
    struct tkv_sl_path *path; /* OUT (or NULL): the path walked, if any */
};

/* Bring into the cache what the given operations will read: their index
 * slots and nodes, and the search path of those that need one (an insert,
 * a put that changes the node's size, a delete of a present key, any
 * operation on a list without an index). The searches of a batch are
 * walked together, so their cache misses overlap instead of following one
 * another; the operations themselves then hit the cache. Changes nothing:
 * results are the same with or without it (it only costs time when the
 * operations do not follow). Call it for the next 32 or so operations
 * right before applying them: the paths of many more would not all stay
 * cached until their turn. An operation with a path pointer gets the
 * path it walked there (path->sl NULL when it needed none), for
 * tkv_sl_put_path. */
void tkv_sl_prefetch(const struct tkv_skiplist *sl,
                     const struct tkv_sl_intent *ops,
                     size_t n);

/* Check every invariant (order, spans, tail, length, bytes, levels, flags,
 * and the index: every node findable under the right tag, nothing else in
 * it); returns 0 or TKV_ECORRUPT with a message saying what is broken. For
 * tests. */
int tkv_sl_check(const struct tkv_skiplist *sl, struct tkv_err *err);

#endif /* TKV_SKIPLIST_H */
