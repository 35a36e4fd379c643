/* Indexable skiplist over byte keys, as Redis's t_zset.c: each forward link
 * carries a span (how many level-0 steps it skips), so the rank of any key is
 * found in O(log n), and so is the element at a rank.
 *
 * A node holds its key and value inline in one allocation, plus the 64-bit
 * version and expiry of the entry it stores. Keys are compared with memcmp,
 * shorter first on a common prefix (tkv_key_cmp). Levels are drawn from a
 * deterministic generator seeded at init, so two lists fed the same
 * operations have the same shape (the state machine must be deterministic).
 *
 * Ownership: the list owns its nodes. Pointers to nodes returned by lookups
 * stay valid until that key is deleted or replaced, or the list is closed. */
#ifndef TKV_SKIPLIST_H
#define TKV_SKIPLIST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define TKV_SKIPLIST_MAXLEVEL 32

/* One allocation per node, laid out to keep the per-entry overhead small
 * (32 bytes of fields, 8 per level, 4 per level above 0):
 *
 *   fields | next[height] | span[height - 1] | key | value
 *
 * span[i - 1] is the number of level-0 steps from this node to next[i] (or
 * to the end, counted as one step past the last node). The level-0 span is
 * always 1, so it is not stored. */
struct tkv_sl_node {
    struct tkv_sl_node *prev; /* level-0 predecessor, NULL for first */
    uint64_t version;
    int64_t expires_at; /* ms of state machine time, 0 = never */
    uint32_t vlen;
    uint16_t klen;
    uint8_t height; /* number of levels, 1..MAXLEVEL */
    uint8_t _pad;
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

struct tkv_skiplist {
    struct tkv_sl_node *head; /* owned; sentinel with MAXLEVEL links */
    struct tkv_sl_node *tail; /* last node or NULL */
    size_t length;
    int level;    /* highest level in use, >= 1 */
    uint64_t rng; /* deterministic level generator state */
    size_t bytes; /* sum of klen + vlen over nodes */
};

int tkv_sl_init(struct tkv_skiplist *sl, uint64_t seed);
void tkv_sl_close(struct tkv_skiplist *sl);

/* Insert or replace the entry for key. On replace the node is reallocated
 * (old node pointers for this key become invalid). *replaced (if not NULL)
 * is set to 1 when the key existed. Returns 0 or TKV_ENOMEM (list
 * unchanged). klen <= UINT16_MAX, vlen <= UINT32_MAX. */
int tkv_sl_put(struct tkv_skiplist *sl,
               const uint8_t *key,
               size_t klen,
               const uint8_t *val,
               size_t vlen,
               uint64_t version,
               int64_t expires_at,
               int *replaced /* OUT */);

/* Delete key; returns 1 if it was there, 0 if not. */
int tkv_sl_delete(struct tkv_skiplist *sl, const uint8_t *key, size_t klen);

/* Exact lookup; NULL when absent. */
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

/* Iteration. */
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
static inline struct tkv_sl_node *tkv_sl_prev(const struct tkv_sl_node *n)
{
    return n->prev;
}

/* Check every invariant (order, spans, prev links, length, bytes, levels);
 * returns 0 or TKV_ECORRUPT with a message saying what is broken. For
 * tests. */
int tkv_sl_check(const struct tkv_skiplist *sl, struct tkv_err *err);

#endif /* TKV_SKIPLIST_H */
