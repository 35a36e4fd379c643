/* Indexable skiplist over byte keys (Redis t_zset.c style, with spans).
 *
 * Owns the nodes of one ordered map: key -> value, version, expiry. Every
 * lookup walks from the highest level of the head sentinel down, and the
 * spans it crosses add up to the rank of where it stops, which is what
 * makes rank, at-rank and the list totals O(log n).
 *
 * Positions are 1-based with the head at 0, and the end (past the last
 * node) at length + 1, so every span is "position of next minus position of
 * this", also for links that point to the end. That makes level 0 uniformly
 * 1, which is why level-0 spans are not stored.
 *
 * put, in steps:
 *   1. one search records, per level, the last node before the key
 *      (update[]) and its position (rank[]);
 *   2. the new node is allocated before anything changes, so an allocation
 *      failure leaves the list (and the level generator) as it was;
 *   3. a replace copies the old node's links into a node of the same height
 *      and relinks the predecessors to it: spans do not change;
 *      an insert links the node in and fixes spans as Redis does. */
#include "skiplist.h"

#include <assert.h>
#include <string.h>

#include "../common/alloc.h"
#include "keycodec.h"

/* splitmix64: tiny, fast, and every seed (0 included) gives a good stream. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Level with P(level >= k) = (1/4)^(k-1): one more level for each pair of
 * zero bits. 64 bits give 32 pairs, exactly MAXLEVEL. */
static int random_level(uint64_t *state)
{
    uint64_t z = rng_next(state);
    int level = 1;

    while ((z & 3) == 0 && level < TKV_SKIPLIST_MAXLEVEL) {
        level++;
        z >>= 2;
    }
    return level;
}

static inline uint32_t span_of(const struct tkv_sl_node *n, int level)
{
    return level == 0 ? 1 : *tkv__sl_span(n, level);
}

static size_t node_size(int height, size_t klen, size_t vlen)
{
    return sizeof(struct tkv_sl_node) +
           (size_t)height * sizeof(struct tkv_sl_node *) +
           (size_t)(height - 1) * sizeof(uint32_t) + klen + vlen;
}

static struct tkv_sl_node *node_new(int height,
                                    const uint8_t *key,
                                    size_t klen,
                                    const uint8_t *val,
                                    size_t vlen,
                                    uint64_t version,
                                    int64_t expires_at)
{
    struct tkv_sl_node *n = tkv_malloc(node_size(height, klen, vlen));

    if (n == NULL) {
        return NULL;
    }
    n->prev = NULL;
    n->version = version;
    n->expires_at = expires_at;
    n->vlen = (uint32_t)vlen;
    n->klen = (uint16_t)klen;
    n->height = (uint8_t)height;
    n->_pad = 0;
    if (klen > 0) {
        memcpy((uint8_t *)tkv_sl_key(n), key, klen);
    }
    if (vlen > 0) {
        memcpy((uint8_t *)tkv_sl_value(n), val, vlen);
    }
    return n;
}

/* tkv_key_cmp's order, inlined: it is the inner loop of every lookup. */
static inline int node_cmp(const struct tkv_sl_node *n,
                           const uint8_t *key,
                           size_t klen)
{
    size_t nk = n->klen;
    int c = memcmp(tkv_sl_key(n), key, nk < klen ? nk : klen);

    if (c != 0) {
        return c;
    }
    return (nk > klen) - (nk < klen);
}

int tkv_sl_init(struct tkv_skiplist *sl, uint64_t seed)
{
    int i;

    sl->head = node_new(TKV_SKIPLIST_MAXLEVEL, NULL, 0, NULL, 0, 0, 0);
    if (sl->head == NULL) {
        return TKV_ENOMEM;
    }
    for (i = 0; i < TKV_SKIPLIST_MAXLEVEL; i++) {
        sl->head->next[i] = NULL;
        if (i > 0) {
            *tkv__sl_span(sl->head, i) = 1; /* empty: the end is at 1 */
        }
    }
    sl->tail = NULL;
    sl->length = 0;
    sl->level = 1;
    sl->rng = seed;
    sl->bytes = 0;
    return 0;
}

void tkv_sl_close(struct tkv_skiplist *sl)
{
    struct tkv_sl_node *n;

    if (sl->head == NULL) {
        return;
    }
    n = sl->head->next[0];
    while (n != NULL) {
        struct tkv_sl_node *next = n->next[0];
        tkv_free(n);
        n = next;
    }
    tkv_free(sl->head);
    sl->head = NULL;
    sl->tail = NULL;
    sl->length = 0;
    sl->bytes = 0;
}

/* Step 1 of put and delete: fill update[] and rank[] for levels below
 * sl->level and return the first node with key >= the given key. */
static struct tkv_sl_node *search(const struct tkv_skiplist *sl,
                                  const uint8_t *key,
                                  size_t klen,
                                  struct tkv_sl_node **update,
                                  size_t *rank)
{
    struct tkv_sl_node *x = sl->head;
    const struct tkv_sl_node *bound = NULL; /* known >= key */
    size_t traversed = 0;
    int i;

    for (i = sl->level - 1; i >= 0; i--) {
        struct tkv_sl_node *next;
        /* One level down, the walk often meets the node that stopped it
         * above: it is known to be >= key, so it needs no compare. */
        while ((next = x->next[i]) != bound && node_cmp(next, key, klen) < 0) {
            traversed += span_of(x, i);
            x = next;
        }
        bound = next;
        update[i] = x;
        if (rank != NULL) {
            rank[i] = traversed;
        }
    }
    return x->next[0];
}

static void replace_node(struct tkv_skiplist *sl,
                         struct tkv_sl_node **update,
                         struct tkv_sl_node *old,
                         struct tkv_sl_node *n)
{
    int i;

    /* Same height, same position: the links and spans carry over. */
    memcpy(n->next, old->next,
           (size_t)old->height * sizeof(struct tkv_sl_node *) +
               (size_t)(old->height - 1) * sizeof(uint32_t));
    n->prev = old->prev;
    for (i = 0; i < old->height; i++) {
        assert(update[i]->next[i] == old);
        update[i]->next[i] = n;
    }
    if (n->next[0] != NULL) {
        n->next[0]->prev = n;
    } else {
        sl->tail = n;
    }
    sl->bytes = sl->bytes - old->klen - old->vlen + n->klen + n->vlen;
    tkv_free(old);
}

static void insert_node(struct tkv_skiplist *sl,
                        struct tkv_sl_node **update,
                        size_t *rank,
                        struct tkv_sl_node *x)
{
    int level = x->height;
    int i;

    if (level > sl->level) {
        for (i = sl->level; i < level; i++) {
            update[i] = sl->head;
            rank[i] = 0;
            *tkv__sl_span(sl->head, i) = (uint32_t)(sl->length + 1);
        }
        sl->level = level;
    }
    for (i = 0; i < level; i++) {
        x->next[i] = update[i]->next[i];
        update[i]->next[i] = x;
        if (i > 0) {
            /* x lands at position rank[0] + 1; the predecessor at level i
             * sits at rank[i]. */
            uint32_t *uspan = tkv__sl_span(update[i], i);
            *tkv__sl_span(x, i) = (uint32_t)(*uspan - (rank[0] - rank[i]));
            *uspan = (uint32_t)(rank[0] - rank[i] + 1);
        }
    }
    /* Links above x's height now jump over one more node. */
    for (i = level; i < sl->level; i++) {
        (*tkv__sl_span(update[i], i))++;
    }
    x->prev = update[0] == sl->head ? NULL : update[0];
    if (x->next[0] != NULL) {
        x->next[0]->prev = x;
    } else {
        sl->tail = x;
    }
    sl->length++;
    sl->bytes += (size_t)x->klen + x->vlen;
}

int tkv_sl_put(struct tkv_skiplist *sl,
               const uint8_t *key,
               size_t klen,
               const uint8_t *val,
               size_t vlen,
               uint64_t version,
               int64_t expires_at,
               int *replaced)
{
    struct tkv_sl_node *update[TKV_SKIPLIST_MAXLEVEL];
    size_t rank[TKV_SKIPLIST_MAXLEVEL];
    struct tkv_sl_node *x;
    struct tkv_sl_node *n;
    uint64_t rng_saved = sl->rng;
    int found;
    int height;

    assert(klen <= UINT16_MAX);
    assert(vlen <= UINT32_MAX);
    x = search(sl, key, klen, update, rank);
    found = x != NULL && node_cmp(x, key, klen) == 0;
    height = found ? x->height : random_level(&sl->rng);
    n = node_new(height, key, klen, val, vlen, version, expires_at);
    if (n == NULL) {
        sl->rng = rng_saved;
        return TKV_ENOMEM;
    }
    if (found) {
        replace_node(sl, update, x, n);
    } else {
        insert_node(sl, update, rank, n);
    }
    if (replaced != NULL) {
        *replaced = found;
    }
    return 0;
}

int tkv_sl_delete(struct tkv_skiplist *sl, const uint8_t *key, size_t klen)
{
    struct tkv_sl_node *update[TKV_SKIPLIST_MAXLEVEL];
    struct tkv_sl_node *x;
    int i;

    x = search(sl, key, klen, update, NULL);
    if (x == NULL || node_cmp(x, key, klen) != 0) {
        return 0;
    }
    for (i = 0; i < sl->level; i++) {
        if (update[i]->next[i] == x) {
            if (i > 0) {
                *tkv__sl_span(update[i], i) += *tkv__sl_span(x, i) - 1;
            }
            update[i]->next[i] = x->next[i];
        } else if (i > 0) {
            (*tkv__sl_span(update[i], i))--;
        }
    }
    if (x->next[0] != NULL) {
        x->next[0]->prev = x->prev;
    } else {
        sl->tail = x->prev;
    }
    while (sl->level > 1 && sl->head->next[sl->level - 1] == NULL) {
        sl->level--;
    }
    sl->length--;
    sl->bytes -= (size_t)x->klen + x->vlen;
    tkv_free(x);
    return 1;
}

struct tkv_sl_node *tkv_sl_seek(const struct tkv_skiplist *sl,
                                const uint8_t *key,
                                size_t klen,
                                size_t *rank)
{
    const struct tkv_sl_node *x = sl->head;
    const struct tkv_sl_node *bound = NULL; /* known >= key, as in search */
    size_t traversed = 0;
    int i;

    for (i = sl->level - 1; i >= 0; i--) {
        struct tkv_sl_node *next;
        while ((next = x->next[i]) != bound && node_cmp(next, key, klen) < 0) {
            traversed += span_of(x, i);
            x = next;
        }
        bound = next;
    }
    if (rank != NULL) {
        *rank = traversed;
    }
    return x->next[0];
}

struct tkv_sl_node *tkv_sl_get(const struct tkv_skiplist *sl,
                               const uint8_t *key,
                               size_t klen)
{
    const struct tkv_sl_node *x = sl->head;
    const struct tkv_sl_node *bound = NULL; /* known > key */
    int i;

    /* Stop early on an exact hit at a high level. */
    for (i = sl->level - 1; i >= 0; i--) {
        struct tkv_sl_node *next;
        while ((next = x->next[i]) != bound) {
            int c = node_cmp(next, key, klen);
            if (c == 0) {
                return next;
            }
            if (c > 0) {
                break;
            }
            x = next;
        }
        bound = next;
    }
    return NULL;
}

size_t tkv_sl_rank(const struct tkv_skiplist *sl,
                   const uint8_t *key,
                   size_t klen)
{
    size_t rank;

    tkv_sl_seek(sl, key, klen, &rank);
    return rank;
}

struct tkv_sl_node *tkv_sl_at(const struct tkv_skiplist *sl, size_t rank)
{
    const struct tkv_sl_node *x = sl->head;
    size_t want = rank + 1; /* 1-based position */
    size_t traversed = 0;
    int i;

    if (rank >= sl->length) {
        return NULL;
    }
    for (i = sl->level - 1; i >= 0; i--) {
        while (x->next[i] != NULL && traversed + span_of(x, i) <= want) {
            traversed += span_of(x, i);
            x = x->next[i];
        }
        if (traversed == want) {
            return (struct tkv_sl_node *)x;
        }
    }
    assert(0 && "span counts disagree with length");
    return NULL;
}

/* Level i (>= 1) against level 0: from each node on level i, walking level
 * 0 must reach its next[i] after exactly span steps (or the end), and
 * every node passed on the way must be lower than i + 1. */
static int check_level(const struct tkv_skiplist *sl,
                       int i,
                       struct tkv_err *err)
{
    const struct tkv_sl_node *x = sl->head;
    size_t pos = 0;

    while (x != NULL) {
        const struct tkv_sl_node *target = x->next[i];
        const struct tkv_sl_node *y = x->next[0];
        size_t steps = 1;
        while (y != target) {
            if (y == NULL) {
                return tkv_err_set(err, TKV_ECORRUPT,
                                   "level %d link at position %zu points to "
                                   "a node not on level 0 after it",
                                   i, pos);
            }
            if (y->height > i) {
                return tkv_err_set(err, TKV_ECORRUPT,
                                   "node at position %zu has height %d but "
                                   "is skipped on level %d",
                                   pos + steps, y->height, i);
            }
            y = y->next[0];
            steps++;
        }
        if (span_of(x, i) != steps) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "level %d span at position %zu is %u, the "
                               "distance is %zu",
                               i, pos, span_of(x, i), steps);
        }
        pos += steps;
        if (target != NULL && target->height <= i) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "level %d links to the node at position %zu, "
                               "whose height is %d",
                               i, pos, target->height);
        }
        x = target;
    }
    if (pos != sl->length + 1) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "level %d ends at position %zu, not %zu", i, pos,
                           sl->length + 1);
    }
    return 0;
}

int tkv_sl_check(const struct tkv_skiplist *sl, struct tkv_err *err)
{
    const struct tkv_sl_node *prev = NULL;
    const struct tkv_sl_node *n;
    size_t count = 0;
    size_t bytes = 0;
    int top = 1;
    int i;

    if (sl->head == NULL || sl->head->height != TKV_SKIPLIST_MAXLEVEL) {
        return tkv_err_set(err, TKV_ECORRUPT, "head sentinel is broken");
    }
    if (sl->level < 1 || sl->level > TKV_SKIPLIST_MAXLEVEL) {
        return tkv_err_set(err, TKV_ECORRUPT, "level %d is out of range",
                           sl->level);
    }
    for (i = sl->level; i < TKV_SKIPLIST_MAXLEVEL; i++) {
        if (sl->head->next[i] != NULL) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "head links level %d above level %d", i,
                               sl->level);
        }
    }
    /* Level 0 first: it bounds every other walk, so a cycle or a wrong
     * length is caught before the per-level checks rely on it. */
    for (n = sl->head->next[0]; n != NULL; n = n->next[0]) {
        if (count == sl->length) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "more nodes than the length %zu", sl->length);
        }
        if (n->height < 1 || n->height > sl->level) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "node at position %zu has height %d, level "
                               "is %d",
                               count + 1, n->height, sl->level);
        }
        if (n->prev != prev) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "node at position %zu has a wrong prev link",
                               count + 1);
        }
        if (prev != NULL && tkv_key_cmp(tkv_sl_key(prev), prev->klen,
                                        tkv_sl_key(n), n->klen) >= 0) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "node at position %zu is not after the one "
                               "before it",
                               count + 1);
        }
        if (n->height > top) {
            top = n->height;
        }
        bytes += (size_t)n->klen + n->vlen;
        prev = n;
        count++;
    }
    if (count != sl->length) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "%zu nodes on level 0, length says %zu", count,
                           sl->length);
    }
    if (sl->tail != prev) {
        return tkv_err_set(err, TKV_ECORRUPT, "tail is not the last node");
    }
    if (bytes != sl->bytes) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "nodes hold %zu bytes, bytes says %zu", bytes,
                           sl->bytes);
    }
    if (top != sl->level) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "highest node has height %d, level is %d", top,
                           sl->level);
    }
    for (i = 1; i < sl->level; i++) {
        int rv = check_level(sl, i, err);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}
