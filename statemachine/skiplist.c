/* Indexable skiplist over byte keys (Redis t_zset.c style, with spans), with
 * an optional hash index over its nodes (Redis's zset dict).
 *
 * Owns the nodes of one ordered map: key -> value, version, expiry. Every
 * search walks from the highest level of the head sentinel down, and the
 * spans it crosses add up to the rank of where it stops, which is what
 * makes rank, at-rank and the list totals O(log n). At a million nodes a
 * search compares some thirty nodes one after the other, most of them cache
 * misses, so:
 *   - exact lookups go through the index when the list has one: one miss
 *     for the slot run, one for the node;
 *   - tkv_sl_prefetch walks the searches of a batch of coming operations
 *     together, so their misses overlap, and the operations then find
 *     their nodes cached;
 *   - tkv_sl_range fetches a run of nodes along many chains at once
 *     instead of one level-0 step after the other.
 *
 * Positions are 1-based with the head at 0, and the end (past the last
 * node) at length + 1, so every span is "position of next minus position of
 * this", also for links that point to the end. That makes level 0 uniformly
 * 1, which is why level-0 spans are not stored.
 *
 * put, in steps:
 *   1. with an index, one probe says whether the key is there; a present
 *      key whose new entry has the old one's size (value length, and an
 *      expiry or none) is overwritten in place and put ends here (no
 *      search, no allocation; a list without an index gets there after the
 *      search of step 3);
 *   2. an insert that would take the index above load 0.8 grows it first
 *      (ENOMEM here leaves the list as it was);
 *   3. one search records, per level, the last node before the key
 *      (update[]) and its position (rank[]); where no rank is needed (a
 *      replace, or an insert of a height-1 node) and tkv_sl_prefetch left
 *      a path for the key that is still valid, update[] comes from that
 *      path instead, moved forward over what was inserted since;
 *   4. the new node is allocated before anything changes, so an allocation
 *      failure leaves the list (and the level generator) as it was;
 *   5. a replace copies the old node's links into a node of the same height
 *      and relinks the predecessors to it: spans do not change;
 *      an insert links the node in and fixes spans as Redis does; either
 *      way the index slot is pointed at the new node. */
#include "skiplist.h"

#include <assert.h>
#include <string.h>

#include "../common/alloc.h"
#include "../common/hash.h"
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

static size_t node_size(int height, size_t klen, size_t vlen, int64_t exp)
{
    return sizeof(struct tkv_sl_node) +
           (size_t)height * sizeof(struct tkv_sl_node *) +
           (size_t)(height - 1) * sizeof(uint32_t) + klen + vlen +
           (exp != 0 ? sizeof exp : 0);
}

/* Can node x take this value and expiry in place (same size)? */
static inline int same_size(const struct tkv_sl_node *x,
                            size_t vlen,
                            int64_t expires_at)
{
    return x->vlen == vlen && !(x->flags & TKV__SL_EXPIRES) == !expires_at;
}

/* Value, version and expiry of a node whose size fits them. */
static void node_set(struct tkv_sl_node *n,
                     const uint8_t *val,
                     size_t vlen,
                     uint64_t version,
                     int64_t expires_at)
{
    assert(same_size(n, vlen, expires_at));
    if (vlen > 0) {
        memcpy((uint8_t *)tkv_sl_value(n), val, vlen);
    }
    if (expires_at != 0) {
        memcpy((uint8_t *)tkv_sl_value(n) + vlen, &expires_at,
               sizeof expires_at);
    }
    n->version = version;
}

static struct tkv_sl_node *node_new(int height,
                                    const uint8_t *key,
                                    size_t klen,
                                    const uint8_t *val,
                                    size_t vlen,
                                    uint64_t version,
                                    int64_t expires_at)
{
    struct tkv_sl_node *n =
        tkv_malloc(node_size(height, klen, vlen, expires_at));

    if (n == NULL) {
        return NULL;
    }
    n->vlen = (uint32_t)vlen;
    n->klen = (uint16_t)klen;
    n->height = (uint8_t)height;
    n->flags = expires_at != 0 ? TKV__SL_EXPIRES : 0;
    if (klen > 0) {
        memcpy((uint8_t *)tkv_sl_key(n), key, klen);
    }
    node_set(n, val, vlen, version, expires_at);
    return n;
}

/* 8 key bytes as one integer that orders as memcmp orders them. */
static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof v);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* tkv_key_cmp's order, inlined: it is the inner loop of every search. The
 * keys of one table share their first bytes (["users", ...] encodes to 8
 * equal ones), so this compares a word at a time all the way rather than
 * only the first word before calling memcmp. */
static inline int key_cmp(const uint8_t *a,
                          size_t alen,
                          const uint8_t *b,
                          size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    size_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t x = load_be64(a + i);
        uint64_t y = load_be64(b + i);
        if (x != y) {
            return x < y ? -1 : 1;
        }
    }
    for (; i < n; i++) {
        if (a[i] != b[i]) {
            return a[i] < b[i] ? -1 : 1;
        }
    }
    return (alen > blen) - (alen < blen);
}

static inline int node_cmp(const struct tkv_sl_node *n,
                           const uint8_t *key,
                           size_t klen)
{
    return key_cmp(tkv_sl_key(n), n->klen, key, klen);
}

/* A compare reads a node's header and key, which straddle two cache lines
 * for half of the usual (height 1, 16-byte aligned) nodes. Prefetching
 * never faults, NULL included (the address is computed as an integer so
 * that NULL + 64 is not pointer arithmetic). */
static inline void prefetch_node(const struct tkv_sl_node *n)
{
    __builtin_prefetch(n);
    __builtin_prefetch((const void *)((uintptr_t)n + 64));
}

/* The one search loop. Returns the last node before key (the head when
 * there is none), so its next[0] is the first node >= key. With update,
 * records per level the last node before key and its position (rank);
 * with pos, the final position. */
static inline struct tkv_sl_node *descend(const struct tkv_skiplist *sl,
                                          const uint8_t *key,
                                          size_t klen,
                                          struct tkv_sl_node **update,
                                          size_t *rank,
                                          size_t *pos)
{
    struct tkv_sl_node *x = sl->head;
    const struct tkv_sl_node *bound = NULL; /* known >= key */
    size_t traversed = 0;
    int i;

    for (i = sl->level - 1; i >= 0; i--) {
        struct tkv_sl_node *next;
        /* One level down, the walk often meets the node that stopped it
         * above: it is known to be >= key, so it needs no compare. */
        while ((next = x->next[i]) != bound) {
            if (i > 0) {
                /* If next stops this level, the walk goes on from x one
                 * level down: start fetching that node while next is
                 * compared. Only its first line: this is a guess, right
                 * about one time in four, and wrong guesses cost. */
                __builtin_prefetch(x->next[i - 1]);
            }
            if (node_cmp(next, key, klen) >= 0) {
                break;
            }
            traversed += span_of(x, i);
            x = next;
        }
        bound = next;
        if (update != NULL) {
            update[i] = x;
        }
        if (rank != NULL) {
            rank[i] = traversed;
        }
    }
    if (pos != NULL) {
        *pos = traversed;
    }
    return x;
}

/* ---------- the hash index ---------- */

#define SLOT_PTR_BITS TKV_SL_INDEX_PTR_BITS
#define SLOT_PTR_MASK ((UINT64_C(1) << SLOT_PTR_BITS) - 1)
#define INDEX_MIN_CAP 16

static inline uint64_t key_hash(const struct tkv_sl_index *ix,
                                const uint8_t *key,
                                size_t klen)
{
    return tkv_hash64(ix->seed, key, klen);
}

/* fastrange: the high bits of the hash scaled to [0, cap), no division, and
 * cap need not be a power of two (so the index can grow by 1.5x). */
static inline size_t slot_home(uint64_t h, size_t cap)
{
    return (size_t)(((unsigned __int128)h * cap) >> 64);
}

/* The tag is the low 16 bits, which the home barely depends on, so the
 * entries sharing a run of slots have independent tags. */
static inline uint64_t slot_tag(uint64_t h)
{
    return h << SLOT_PTR_BITS;
}

/* The slot value for node n of hash h: its tag and its address. */
static inline uint64_t slot_of_node(uint64_t h, const struct tkv_sl_node *n)
{
    /* The top 16 bits must be free for the tag. */
    assert(((uintptr_t)n & ~SLOT_PTR_MASK) == 0);
    return slot_tag(h) | (uintptr_t)n;
}

static inline struct tkv_sl_node *slot_node(uint64_t s)
{
    return (struct tkv_sl_node *)(uintptr_t)(s & SLOT_PTR_MASK);
}

static inline size_t slot_after(size_t i, size_t cap)
{
    return i + 1 == cap ? 0 : i + 1;
}

/* Distance from slot a forward to slot b. */
static inline size_t slot_dist(size_t a, size_t b, size_t cap)
{
    return b >= a ? b - a : b + cap - a;
}

/* The slot holding key (*found = 1), or the empty slot that ends its probe
 * run, where it would go (*found = 0). */
static size_t index_find(const struct tkv_sl_index *ix,
                         const uint8_t *key,
                         size_t klen,
                         uint64_t h,
                         int *found /* OUT */)
{
    uint64_t tag = slot_tag(h);
    size_t i = slot_home(h, ix->cap);
    uint64_t s;

    while ((s = ix->slots[i]) != 0) {
        if ((s & ~SLOT_PTR_MASK) == tag) {
            const struct tkv_sl_node *n = slot_node(s);
            if (n->klen == klen &&
                key_cmp(tkv_sl_key(n), klen, key, klen) == 0) {
                *found = 1;
                return i;
            }
        }
        i = slot_after(i, ix->cap);
    }
    *found = 0;
    return i;
}

/* Most entries an index of cap slots may hold: load 0.8, rounded down. */
static inline size_t index_limit(size_t cap)
{
    return cap / 5 * 4 + cap % 5 * 4 / 5;
}

/* Slot value s (hash h) into the first free slot of its run. */
static void index_place(uint64_t *slots, size_t cap, uint64_t s, uint64_t h)
{
    size_t i = slot_home(h, cap);

    while (slots[i] != 0) {
        i = slot_after(i, cap);
    }
    slots[i] = s;
}

static inline uint64_t node_hash(const struct tkv_sl_index *ix,
                                 const struct tkv_sl_node *n)
{
    return key_hash(ix, tkv_sl_key(n), n->klen);
}

/* Grow by 1.5x, all at once. Slots keep only 16 bits of the hash, so every
 * node's key is read and hashed again: a cache miss for the node and one
 * for its new slot, for each entry. They are pipelined: the node of entry
 * i + GROW_AHEAD is fetched, the new slot of entry i + GROW_AHEAD / 2 is
 * computed and fetched, and entry i, whose both have had time to arrive,
 * is placed. ENOMEM leaves the index as it was. */
#define GROW_AHEAD 16
#define GROW_HALF (GROW_AHEAD / 2)

/* The hash of the entry in slot i, and a fetch of its new slot. */
static uint64_t grow_hash(const struct tkv_sl_index *ix,
                          size_t i,
                          const uint64_t *slots,
                          size_t cap)
{
    uint64_t h;

    if (i >= ix->cap || ix->slots[i] == 0) {
        return 0;
    }
    h = node_hash(ix, slot_node(ix->slots[i]));
    __builtin_prefetch(&slots[slot_home(h, cap)], 1);
    return h;
}

static int index_grow(struct tkv_sl_index *ix)
{
    size_t cap = ix->cap + ix->cap / 2;
    uint64_t *slots = tkv_calloc(cap, sizeof *slots);
    uint64_t hashes[GROW_HALF]; /* of entries i .. i + GROW_HALF - 1 */
    size_t i;

    if (slots == NULL) {
        return TKV_ENOMEM;
    }
    for (i = 0; i < GROW_HALF; i++) {
        prefetch_node(
            slot_node(i + GROW_HALF < ix->cap ? ix->slots[i + GROW_HALF] : 0));
        hashes[i] = grow_hash(ix, i, slots, cap);
    }
    for (i = 0; i < ix->cap; i++) {
        if (i + GROW_AHEAD < ix->cap) {
            prefetch_node(slot_node(ix->slots[i + GROW_AHEAD]));
        }
        if (ix->slots[i] != 0) {
            /* Same hash, same tag: the slot value moves as it is. */
            index_place(slots, cap, ix->slots[i], hashes[i % GROW_HALF]);
        }
        hashes[i % GROW_HALF] = grow_hash(ix, i + GROW_HALF, slots, cap);
    }
    tkv_free(ix->slots);
    ix->slots = slots;
    ix->cap = cap;
    ix->grow_at = index_limit(cap);
    return 0;
}

/* Empty slot `hole` without a tombstone: shift back every later entry of
 * the run that may sit earlier, i.e. whose home is not between the hole
 * and where it is. Homes are recomputed from the keys, so the run's nodes
 * are fetched first, together. */
static void index_remove(struct tkv_sl_index *ix, size_t hole)
{
    size_t cap = ix->cap;
    size_t j;
    int k;
    uint64_t s;

    for (j = slot_after(hole, cap), k = 0; k < 16 && ix->slots[j] != 0;
         j = slot_after(j, cap), k++) {
        prefetch_node(slot_node(ix->slots[j]));
    }
    for (j = slot_after(hole, cap); (s = ix->slots[j]) != 0;
         j = slot_after(j, cap)) {
        size_t home = slot_home(node_hash(ix, slot_node(s)), cap);
        if (slot_dist(home, j, cap) >= slot_dist(hole, j, cap)) {
            ix->slots[hole] = s;
            hole = j;
        }
    }
    ix->slots[hole] = 0;
}

/* ---------- list operations ---------- */

int tkv_sl_init(struct tkv_skiplist *sl, uint64_t seed, int indexed)
{
    int i;

    memset(&sl->index, 0, sizeof sl->index);
    sl->head = node_new(TKV_SKIPLIST_MAXLEVEL, NULL, 0, NULL, 0, 0, 0);
    if (sl->head == NULL) {
        goto err;
    }
    for (i = 0; i < TKV_SKIPLIST_MAXLEVEL; i++) {
        sl->head->next[i] = NULL;
        if (i > 0) {
            *tkv__sl_span(sl->head, i) = 1; /* empty: the end is at 1 */
        }
    }
    if (indexed) {
        sl->index.slots = tkv_calloc(INDEX_MIN_CAP, sizeof(uint64_t));
        if (sl->index.slots == NULL) {
            goto err_after_head;
        }
        sl->index.cap = INDEX_MIN_CAP;
        sl->index.grow_at = index_limit(INDEX_MIN_CAP);
        /* Any seed works (the index is never iterated); a different one
         * from the level generator's keeps the two streams unrelated. It
         * is not secret: keys crafted to share a home slot make long probe
         * runs (slow, never wrong). */
        sl->index.seed = ~seed;
    }
    sl->tail = NULL;
    sl->length = 0;
    sl->level = 1;
    sl->rng = seed;
    sl->bytes = 0;
    sl->frees = 0;
    return 0;

err_after_head:
    tkv_free(sl->head);
    sl->head = NULL;
err:
    return TKV_ENOMEM;
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
    tkv_free(sl->index.slots);
    memset(&sl->index, 0, sizeof sl->index);
    sl->head = NULL;
    sl->tail = NULL;
    sl->length = 0;
    sl->bytes = 0;
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
    for (i = 0; i < old->height; i++) {
        assert(update[i]->next[i] == old);
        update[i]->next[i] = n;
    }
    if (sl->tail == old) {
        sl->tail = n;
    }
    sl->bytes = sl->bytes - old->klen - old->vlen + n->klen + n->vlen;
    sl->frees++;
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
    if (x->next[0] == NULL) {
        sl->tail = x;
    }
    sl->length++;
    sl->bytes += (size_t)x->klen + x->vlen;
}

/* update[] for key from a path tkv_sl_prefetch walked: each level's node
 * before the key then, moved forward over the nodes inserted before the
 * key since. Returns 0 when the path cannot be used (another key or list,
 * a node freed or a level added since), and then update[] is not set. */
static int path_follow(const struct tkv_skiplist *sl,
                       const struct tkv_sl_path *path,
                       const uint8_t *key,
                       size_t klen,
                       struct tkv_sl_node **update)
{
    int i;

    if (path == NULL || path->sl != sl || path->key != key ||
        path->klen != klen || path->frees != sl->frees ||
        path->level != sl->level) {
        return 0;
    }
    /* With nothing freed, every node of the path is still linked on its
     * level, and still before the key. */
    for (i = sl->level - 1; i >= 0; i--) {
        struct tkv_sl_node *x = path->update[i];
        struct tkv_sl_node *next;
        while ((next = x->next[i]) != NULL && node_cmp(next, key, klen) < 0) {
            x = next;
        }
        update[i] = x;
    }
    return 1;
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
    return tkv_sl_put_path(sl, key, klen, val, vlen, version, expires_at,
                           NULL, replaced);
}

int tkv_sl_put_path(struct tkv_skiplist *sl,
                    const uint8_t *key,
                    size_t klen,
                    const uint8_t *val,
                    size_t vlen,
                    uint64_t version,
                    int64_t expires_at,
                    const struct tkv_sl_path *path,
                    int *replaced)
{
    struct tkv_sl_node *update[TKV_SKIPLIST_MAXLEVEL];
    size_t rank[TKV_SKIPLIST_MAXLEVEL];
    struct tkv_sl_index *ix = &sl->index;
    struct tkv_sl_node *x = NULL;
    struct tkv_sl_node *n;
    uint64_t rng_saved = sl->rng;
    uint64_t h = 0;
    size_t slot = 0;
    int found = 0;
    int height = 0; /* 0: not drawn yet */

    assert(klen <= UINT16_MAX);
    assert(vlen <= UINT32_MAX);
    if (ix->slots != NULL) {
        h = key_hash(ix, key, klen);
        slot = index_find(ix, key, klen, h, &found);
        if (found) {
            x = slot_node(ix->slots[slot]);
        } else if (sl->length + 1 > ix->grow_at) {
            if (index_grow(ix) != 0) {
                return TKV_ENOMEM;
            }
            slot = index_find(ix, key, klen, h, &found);
        }
    }
    if (ix->slots == NULL || !found || !same_size(x, vlen, expires_at)) {
        struct tkv_sl_node *ge;
        /* A path serves where no rank is needed: a replace (same height,
         * same spans) and an insert of a height-1 node (no span of its
         * own; those above it grow by one). With an index, found is known
         * before the search, so the height can be drawn first: one draw
         * per insert either way. */
        int from_path = 0;
        if (ix->slots != NULL && path != NULL) {
            if (!found) {
                height = random_level(&sl->rng);
            }
            from_path = (found || height == 1) &&
                        path_follow(sl, path, key, klen, update);
        }
        if (from_path) {
            ge = update[0]->next[0];
        } else {
            ge = descend(sl, key, klen, update, rank, NULL)->next[0];
        }
        if (ix->slots == NULL) {
            x = ge;
            found = x != NULL && node_cmp(x, key, klen) == 0;
        }
        assert(found ? ge == x : ge == NULL || node_cmp(ge, key, klen) > 0);
    }
    if (found && same_size(x, vlen, expires_at)) {
        /* Links, spans, bytes and the index slot all stay as they are. */
        node_set(x, val, vlen, version, expires_at);
        goto done;
    }
    if (height == 0) {
        height = found ? x->height : random_level(&sl->rng);
    }
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
    if (ix->slots != NULL) {
        ix->slots[slot] = slot_of_node(h, n);
    }
done:
    if (replaced != NULL) {
        *replaced = found;
    }
    return 0;
}

void tkv_sl_index_suspend(struct tkv_skiplist *sl)
{
    struct tkv_sl_index *ix = &sl->index;
    if (ix->slots != NULL) {
        tkv_free(ix->slots);
        ix->slots = NULL;
        ix->cap = 0;
        ix->grow_at = 0;
        ix->suspended = 1;
    }
}

int tkv_sl_index_resume(struct tkv_skiplist *sl)
{
    struct tkv_sl_index *ix = &sl->index;
    /* node and hash of the next GROW_HALF nodes, their slots fetched */
    const struct tkv_sl_node *node[GROW_HALF];
    uint64_t hash[GROW_HALF];
    const struct tkv_sl_node *ahead = tkv_sl_first(sl);
    size_t cap = INDEX_MIN_CAP;
    size_t i, queued = 0;
    uint64_t *slots;

    if (!ix->suspended) {
        return 0;
    }
    /* The size growth one insert at a time would have reached. */
    while (index_limit(cap) < sl->length) {
        cap += cap / 2;
    }
    slots = tkv_calloc(cap, sizeof *slots);
    if (slots == NULL) {
        return TKV_ENOMEM;
    }
    for (i = 0;; i++) {
        size_t k = i % GROW_HALF;
        if (i >= GROW_HALF) {
            if (queued == 0) {
                break;
            }
            index_place(slots, cap, slot_of_node(hash[k], node[k]), hash[k]);
            queued--;
        }
        if (ahead != NULL) {
            node[k] = ahead;
            hash[k] = node_hash(ix, ahead);
            __builtin_prefetch(&slots[slot_home(hash[k], cap)], 1);
            ahead = tkv_sl_next(ahead);
            queued++;
        } else if (i < GROW_HALF && queued == 0) {
            break; /* empty list */
        }
    }
    ix->slots = slots;
    ix->cap = cap;
    ix->grow_at = index_limit(cap);
    ix->suspended = 0;
    return 0;
}

int tkv_sl_append(struct tkv_skiplist *sl,
                  const uint8_t *key,
                  size_t klen,
                  const uint8_t *val,
                  size_t vlen,
                  uint64_t version,
                  int64_t expires_at)
{
    struct tkv_sl_node *update[TKV_SKIPLIST_MAXLEVEL];
    size_t rank[TKV_SKIPLIST_MAXLEVEL];
    struct tkv_sl_index *ix = &sl->index;
    struct tkv_sl_node *x = sl->head;
    struct tkv_sl_node *n;
    uint64_t rng_saved = sl->rng;
    uint64_t h = 0;
    size_t slot = 0;
    size_t r = 0;
    int i;

    assert(klen <= UINT16_MAX);
    assert(vlen <= UINT32_MAX);
    if (sl->tail != NULL &&
        key_cmp(tkv_sl_key(sl->tail), sl->tail->klen, key, klen) >= 0) {
        return TKV_EINVALID;
    }
    if (ix->slots != NULL) {
        int found;
        if (sl->length + 1 > ix->grow_at && index_grow(ix) != 0) {
            return TKV_ENOMEM;
        }
        h = key_hash(ix, key, klen);
        slot = index_find(ix, key, klen, h, &found);
        assert(!found);
    }
    /* The right edge: at each level, the last node. */
    for (i = sl->level - 1; i >= 0; i--) {
        while (x->next[i] != NULL) {
            r += span_of(x, i);
            x = x->next[i];
        }
        update[i] = x;
        rank[i] = r;
    }
    n = node_new(random_level(&sl->rng), key, klen, val, vlen, version,
                 expires_at);
    if (n == NULL) {
        sl->rng = rng_saved;
        return TKV_ENOMEM;
    }
    insert_node(sl, update, rank, n);
    if (ix->slots != NULL) {
        ix->slots[slot] = slot_of_node(h, n);
    }
    return 0;
}

int tkv_sl_delete(struct tkv_skiplist *sl, const uint8_t *key, size_t klen)
{
    struct tkv_sl_node *update[TKV_SKIPLIST_MAXLEVEL];
    struct tkv_sl_index *ix = &sl->index;
    struct tkv_sl_node *x = NULL;
    struct tkv_sl_node *ge;
    size_t slot = 0;
    int i;

    if (ix->slots != NULL) {
        /* An absent key costs one probe, not a search. */
        int found;
        slot = index_find(ix, key, klen, key_hash(ix, key, klen), &found);
        if (!found) {
            return 0;
        }
        x = slot_node(ix->slots[slot]);
    }
    /* The search is still needed: for the links and spans to fix. */
    ge = descend(sl, key, klen, update, NULL, NULL)->next[0];
    if (ix->slots == NULL) {
        if (ge == NULL || node_cmp(ge, key, klen) != 0) {
            return 0;
        }
        x = ge;
    }
    assert(ge == x);
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
    if (x->next[0] == NULL) {
        sl->tail = update[0] == sl->head ? NULL : update[0];
    }
    while (sl->level > 1 && sl->head->next[sl->level - 1] == NULL) {
        sl->level--;
    }
    if (ix->slots != NULL) {
        index_remove(ix, slot);
    }
    sl->length--;
    sl->bytes -= (size_t)x->klen + x->vlen;
    sl->frees++;
    tkv_free(x);
    return 1;
}

struct tkv_sl_node *tkv_sl_seek(const struct tkv_skiplist *sl,
                                const uint8_t *key,
                                size_t klen,
                                size_t *rank)
{
    return descend(sl, key, klen, NULL, NULL, rank)->next[0];
}

struct tkv_sl_node *tkv_sl_get(const struct tkv_skiplist *sl,
                               const uint8_t *key,
                               size_t klen)
{
    const struct tkv_sl_index *ix = &sl->index;
    struct tkv_sl_node *x;

    if (ix->slots != NULL) {
        int found;
        size_t slot =
            index_find(ix, key, klen, key_hash(ix, key, klen), &found);
        return found ? slot_node(ix->slots[slot]) : NULL;
    }
    x = descend(sl, key, klen, NULL, NULL, NULL)->next[0];
    return x != NULL && node_cmp(x, key, klen) == 0 ? x : NULL;
}

size_t tkv_sl_rank(const struct tkv_skiplist *sl,
                   const uint8_t *key,
                   size_t klen)
{
    size_t rank;

    descend(sl, key, klen, NULL, NULL, &rank);
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

struct tkv_sl_node *tkv_sl_prev(const struct tkv_skiplist *sl,
                                const struct tkv_sl_node *n)
{
    struct tkv_sl_node *x =
        descend(sl, tkv_sl_key(n), n->klen, NULL, NULL, NULL);

    assert(x->next[0] == n);
    return x == sl->head ? NULL : x;
}

/* ---------- ranges and batches: overlapping the cache misses ---------- */

/* A range walk follows many chains of links at once: a chain walks one
 * level from a node, claiming each node it reaches, until it reaches a
 * node already claimed or leaves the range. A node claimed on level i
 * then starts chains on its other levels, so that every gap between
 * known nodes is walked by someone, and each node is fetched once. The
 * chains are independent: advancing them in turn makes their cache misses
 * overlap, and the longest serial run is a path down the levels (some
 * twenty nodes for a range of 100) rather than the whole range. */
struct chain {
    const struct tkv_sl_node *x;
    size_t pos; /* of x */
    int level;
    /* The level x was claimed on, while its other levels are still to be
     * started (its chain on that level goes on by itself); -1 for a
     * chain that starts from a node it did not claim. */
    int skip;
};

/* Chains advanced in turn: each node one fetches is read again that many
 * steps later, when it has arrived. */
#define RANGE_CHAINS 32
/* Nodes per walk: bounds the pending list; longer ranges take turns. */
#define RANGE_SLICE 256

static size_t range_slice(const struct tkv_skiplist *sl,
                          size_t rank,
                          size_t n,
                          const struct tkv_sl_node **out)
{
    struct chain act[RANGE_CHAINS];
    struct chain pend[RANGE_SLICE]; /* claimed tall nodes, levels to go */
    const struct tkv_sl_node *x = sl->head;
    size_t first = rank + 1; /* positions [first, first + n) */
    size_t pos = 0;
    size_t nact = 0;
    size_t npend = 0;
    int i;

    assert(n > 0 && n <= RANGE_SLICE && rank + n <= sl->length);
    memset(out, 0, n * sizeof *out);
    /* tkv_sl_at's walk, stopping one short of the first position: per
     * level, the last node before the range starts a chain. */
    for (i = sl->level - 1; i >= 0; i--) {
        while (x->next[i] != NULL && pos + span_of(x, i) < first) {
            pos += span_of(x, i);
            x = x->next[i];
        }
        if (pos + span_of(x, i) < first + n) {
            act[nact].x = x;
            act[nact].pos = pos;
            act[nact].level = i;
            act[nact].skip = -1;
            nact++;
        }
    }
    while (nact > 0 || npend > 0) {
        size_t j = 0;
        /* Fill free places from the pending levels of claimed nodes. */
        while (nact < RANGE_CHAINS && npend > 0) {
            struct chain *c = &pend[npend - 1];
            if (c->level != c->skip) {
                act[nact] = *c;
                act[nact].skip = -1;
                nact++;
            }
            if (--c->level < 0) {
                npend--;
            }
        }
        while (j < nact) {
            struct chain *c = &act[j];
            const struct tkv_sl_node *y = c->x->next[c->level];
            size_t p = c->pos + span_of(c->x, c->level);
            if (c->x->height > 1 && c->skip >= 0) {
                /* Claimed by this chain, now arrived: its other levels. */
                assert(npend < RANGE_SLICE);
                pend[npend].x = c->x;
                pend[npend].pos = c->pos;
                pend[npend].level = c->x->height - 1;
                pend[npend].skip = c->skip;
                npend++;
            }
            if (y == NULL || p >= first + n || out[p - first] != NULL) {
                *c = act[--nact];
                continue;
            }
            out[p - first] = y;
            prefetch_node(y);
            c->x = y;
            c->pos = p;
            c->skip = c->level; /* marks y as newly claimed */
            j++;
        }
    }
    return n;
}

size_t tkv_sl_range(const struct tkv_skiplist *sl,
                    size_t rank,
                    size_t n,
                    const struct tkv_sl_node **out)
{
    size_t done = 0;

    if (rank >= sl->length) {
        return 0;
    }
    if (n > sl->length - rank) {
        n = sl->length - rank;
    }
    while (done < n) {
        size_t m = n - done < RANGE_SLICE ? n - done : RANGE_SLICE;
        done += range_slice(sl, rank + done, m, out + done);
    }
    return n;
}

/* One search of a batch in progress: descend's walk, resumable. */
struct walker {
    const struct tkv_sl_node *x;
    const struct tkv_sl_node *bound;
    const uint8_t *key;
    size_t klen;
    int level;
    struct tkv_sl_path *path; /* or NULL */
};

/* Up to this many searches are walked together. More overlap more misses,
 * but their nodes must all stay cached until the operations run: 32 paths
 * of ~30 nodes are ~120 KB. */
#define WARM_BATCH 32

/* Does the operation need a search (not just the index)? */
static int needs_path(const struct tkv_sl_index *ix,
                      const struct tkv_sl_intent *op,
                      uint64_t h)
{
    const struct tkv_sl_node *x;
    size_t slot;
    int found;

    slot = index_find(ix, op->key, op->klen, h, &found);
    x = found ? slot_node(ix->slots[slot]) : NULL;
    switch (op->op) {
        case TKV_SL_PUT:
            return x == NULL || !same_size(x, op->vlen, op->expires_at);
        case TKV_SL_DELETE:
            return x != NULL;
        default:
            return 0;
    }
}

static void warm_batch(const struct tkv_skiplist *sl,
                       const struct tkv_sl_intent *ops,
                       size_t n)
{
    const struct tkv_sl_index *ix = &sl->index;
    struct walker w[WARM_BATCH];
    uint64_t hash[WARM_BATCH];
    size_t nw = 0;
    size_t k;

    assert(n <= WARM_BATCH);
    if (ix->slots != NULL) {
        /* Round 1: every key's slot run. Round 2: the nodes there that
         * the operation will read: those under the key's tag, and for a
         * delete all of them (the backward shift hashes their keys).
         * needs_path's probes then hit the cache. */
        for (k = 0; k < n; k++) {
            hash[k] = key_hash(ix, ops[k].key, ops[k].klen);
            __builtin_prefetch(&ix->slots[slot_home(hash[k], ix->cap)]);
        }
        for (k = 0; k < n; k++) {
            size_t i = slot_home(hash[k], ix->cap);
            uint64_t tag = slot_tag(hash[k]);
            uint64_t s;
            while ((s = ix->slots[i]) != 0) {
                if ((s & ~SLOT_PTR_MASK) == tag || ops[k].op == TKV_SL_DELETE) {
                    prefetch_node(slot_node(s));
                }
                i = slot_after(i, ix->cap);
            }
        }
    }
    for (k = 0; k < n; k++) {
        struct tkv_sl_path *path = ops[k].path;
        if (path != NULL) {
            path->sl = NULL;
        }
        if (ix->slots == NULL || needs_path(ix, &ops[k], hash[k])) {
            w[nw].x = sl->head;
            w[nw].bound = NULL;
            w[nw].key = ops[k].key;
            w[nw].klen = ops[k].klen;
            w[nw].level = sl->level - 1;
            w[nw].path = path;
            if (path != NULL) {
                path->sl = sl;
                path->key = ops[k].key;
                path->klen = ops[k].klen;
                path->frees = sl->frees;
                path->level = sl->level;
            }
            nw++;
        }
    }
    /* Each step compares the node the walker's previous step fetched, and
     * fetches the one it will compare next. */
    while (nw > 0) {
        size_t j = 0;
        while (j < nw) {
            struct walker *v = &w[j];
            const struct tkv_sl_node *next = v->x->next[v->level];
            if (next != v->bound && node_cmp(next, v->key, v->klen) < 0) {
                v->x = next;
                prefetch_node(next->next[v->level]);
                j++;
                continue;
            }
            v->bound = next;
            do {
                if (v->path != NULL) {
                    v->path->update[v->level] = (struct tkv_sl_node *)v->x;
                }
                v->level--;
            } while (v->level >= 0 && v->x->next[v->level] == v->bound);
            if (v->level < 0) {
                w[j] = w[--nw];
                continue;
            }
            prefetch_node(v->x->next[v->level]);
            j++;
        }
    }
}

void tkv_sl_prefetch(const struct tkv_skiplist *sl,
                     const struct tkv_sl_intent *ops,
                     size_t n)
{
    while (n > 0) {
        size_t m = n < WARM_BATCH ? n : WARM_BATCH;
        warm_batch(sl, ops, m);
        ops += m;
        n -= m;
    }
}

/* ---------- the checker ---------- */

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

/* The index against level 0 (already checked): it holds exactly the
 * nodes, each in the probe run from its home and under its own tag. Each
 * node is found in a slot of its own, so with the count equal to the
 * length nothing else can be in the index. */
static int check_index(const struct tkv_skiplist *sl, struct tkv_err *err)
{
    const struct tkv_sl_index *ix = &sl->index;
    const struct tkv_sl_node *n;
    size_t used = 0;
    size_t pos = 0;
    size_t i;

    if (ix->slots == NULL) {
        if (ix->cap != 0 || ix->grow_at != 0) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "index has no slots but a capacity of %zu",
                               ix->cap);
        }
        return 0;
    }
    if (ix->cap < INDEX_MIN_CAP || ix->grow_at != index_limit(ix->cap) ||
        sl->length > ix->grow_at) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "index capacity %zu (grows at %zu) cannot hold "
                           "%zu nodes",
                           ix->cap, ix->grow_at, sl->length);
    }
    for (i = 0; i < ix->cap; i++) {
        if (ix->slots[i] != 0) {
            if (slot_node(ix->slots[i]) == NULL) {
                return tkv_err_set(err, TKV_ECORRUPT,
                                   "index slot %zu has a tag but no node", i);
            }
            used++;
        }
    }
    if (used != sl->length) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "index holds %zu nodes, length is %zu", used,
                           sl->length);
    }
    for (n = sl->head->next[0]; n != NULL; n = n->next[0]) {
        uint64_t h = node_hash(ix, n);
        size_t steps = 0;
        pos++;
        i = slot_home(h, ix->cap);
        while (ix->slots[i] != 0 && slot_node(ix->slots[i]) != n &&
               steps < ix->cap) {
            i = slot_after(i, ix->cap);
            steps++;
        }
        if (ix->slots[i] == 0 || slot_node(ix->slots[i]) != n) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "node at position %zu is not in the index "
                               "run of its key",
                               pos);
        }
        if ((ix->slots[i] & ~SLOT_PTR_MASK) != slot_tag(h)) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "index slot %zu has a wrong tag for the node "
                               "at position %zu",
                               i, pos);
        }
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
        if (n->flags & ~TKV__SL_EXPIRES) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "node at position %zu has unknown flags %#x",
                               count + 1, (unsigned)n->flags);
        }
        if (n->height < 1 || n->height > sl->level) {
            return tkv_err_set(err, TKV_ECORRUPT,
                               "node at position %zu has height %d, level "
                               "is %d",
                               count + 1, n->height, sl->level);
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
    return check_index(sl, err);
}
