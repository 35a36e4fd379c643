/* Tests of statemachine/skiplist.c: random put/replace/delete against a
 * sorted-array model, with and without the hash index (contents, rank, at,
 * range, seek, both iteration directions and the invariant checker, every
 * 1000 operations), the in-place update of same-size entries (and new
 * nodes when the value length or the presence of an expiry changes), the
 * index growing through many rehashes and then emptied, backward shifts
 * slot by slot (across the end of the table, past entries that stay),
 * batch prefetch leaving results unchanged, tkv_sl_prev,
 * the checker catching deliberate corruption of the list and of the index,
 * allocation failure (also while the index grows) leaving the list
 * unchanged, and deterministic shape, with or without an index.
 *
 * TKV_SEED=<n> in the environment replays a run; otherwise the seed comes
 * from the clock and is printed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "statemachine/keycodec.h"
#include "statemachine/skiplist.h"

static uint64_t seed;
static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* ---------- the model: a sorted array of entries ---------- */

#define MAX_KEY 6
#define MAX_VAL 40

struct entry {
    uint8_t key[MAX_KEY];
    size_t klen;
    uint8_t val[MAX_VAL];
    size_t vlen;
    uint64_t version;
    int64_t expires_at;
};

struct model {
    struct entry *e;
    size_t n;
    size_t cap;
    size_t bytes;
};

/* Index of the first entry >= key. */
static size_t model_lb(const struct model *m, const uint8_t *key, size_t klen)
{
    size_t lo = 0;
    size_t hi = m->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tkv_key_cmp(m->e[mid].key, m->e[mid].klen, key, klen) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int model_has(const struct model *m,
                     size_t i,
                     const uint8_t *key,
                     size_t klen)
{
    return i < m->n && tkv_key_cmp(m->e[i].key, m->e[i].klen, key, klen) == 0;
}

/* Returns 1 when it replaced an entry. */
static int model_put(struct model *m, const struct entry *x)
{
    size_t i = model_lb(m, x->key, x->klen);

    if (model_has(m, i, x->key, x->klen)) {
        m->bytes -= m->e[i].klen + m->e[i].vlen;
        m->e[i] = *x;
        m->bytes += x->klen + x->vlen;
        return 1;
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->e = realloc(m->e, m->cap * sizeof *m->e);
        assert_non_null(m->e);
    }
    memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof *m->e);
    m->e[i] = *x;
    m->n++;
    m->bytes += x->klen + x->vlen;
    return 0;
}

static int model_delete(struct model *m, const uint8_t *key, size_t klen)
{
    size_t i = model_lb(m, key, klen);

    if (!model_has(m, i, key, klen)) {
        return 0;
    }
    m->bytes -= m->e[i].klen + m->e[i].vlen;
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
    m->n--;
    return 1;
}

/* Keys over a small alphabet with NUL and 0xFF, so that prefixes and
 * equal keys are common: 4 + 16 + ... + 4^6 = 5460 of them, drawn
 * uniformly (so most are long, and the shorter ones are their prefixes). */
static void random_key(uint8_t *key, size_t *klen)
{
    static const uint8_t alphabet[] = {0x00, 0x01, 0x61, 0xFF};
    size_t idx = rnd_below(5460);
    size_t count = 4;
    size_t i;

    *klen = 1;
    while (idx >= count) {
        idx -= count;
        count *= 4;
        (*klen)++;
    }
    for (i = 0; i < *klen; i++) {
        key[i] = alphabet[idx % 4];
        idx /= 4;
    }
}

static void random_entry(struct entry *x)
{
    size_t i;

    random_key(x->key, &x->klen);
    x->vlen = rnd_below(MAX_VAL + 1);
    for (i = 0; i < MAX_VAL; i++) {
        x->val[i] = (uint8_t)rnd();
    }
    x->version = rnd();
    /* No expiry half the time: nodes with and without one differ in size. */
    x->expires_at = rnd_below(2) == 0 ? 0 : (int64_t)rnd_below(1000) + 1;
}

/* ---------- comparing list and model ---------- */

#define SL_ASSERT(cond, op)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fail_msg("%s:%d: %s (op %zu, TKV_SEED=%llu)", __FILE__, __LINE__, \
                     #cond, (size_t)(op), (unsigned long long)seed);          \
        }                                                                     \
    } while (0)

static int node_is(const struct tkv_sl_node *n, const struct entry *x)
{
    return n != NULL && n->klen == x->klen && n->vlen == x->vlen &&
           memcmp(tkv_sl_key(n), x->key, x->klen) == 0 &&
           (x->vlen == 0 || memcmp(tkv_sl_value(n), x->val, x->vlen) == 0) &&
           n->version == x->version && tkv_sl_expires(n) == x->expires_at;
}

static void compare(const struct tkv_skiplist *sl,
                    const struct model *m,
                    size_t op)
{
    const struct tkv_sl_node *n;
    struct tkv_err err;
    size_t i;

    if (tkv_sl_check(sl, &err) != 0) {
        fail_msg("check failed: %s (op %zu, TKV_SEED=%llu)", err.msg, op,
                 (unsigned long long)seed);
    }
    SL_ASSERT(sl->length == m->n, op);
    SL_ASSERT(sl->bytes == m->bytes, op);

    /* Forward, then backward. */
    for (n = tkv_sl_first(sl), i = 0; n != NULL; n = tkv_sl_next(n), i++) {
        SL_ASSERT(i < m->n && node_is(n, &m->e[i]), op);
    }
    SL_ASSERT(i == m->n, op);
    for (n = tkv_sl_last(sl), i = m->n; n != NULL; n = tkv_sl_prev(sl, n)) {
        SL_ASSERT(i > 0 && node_is(n, &m->e[i - 1]), op);
        i--;
    }
    SL_ASSERT(i == 0, op);

    /* Ranges: random starts and lengths, some running past the end. */
    for (i = 0; i < 20; i++) {
        static const struct tkv_sl_node *out[300];
        size_t r = rnd_below(m->n + 2);
        size_t want = rnd_below(300) + 1;
        size_t got = tkv_sl_range(sl, r, want, out);
        size_t j;
        SL_ASSERT(got == (r >= m->n ? 0 : (m->n - r < want ? m->n - r : want)),
                  op);
        for (j = 0; j < got; j++) {
            SL_ASSERT(node_is(out[j], &m->e[r + j]), op);
        }
    }

    /* Every present key is found, at its rank. */
    for (i = 0; i < m->n; i++) {
        const struct entry *x = &m->e[i];
        SL_ASSERT(node_is(tkv_sl_get(sl, x->key, x->klen), x), op);
        SL_ASSERT(tkv_sl_rank(sl, x->key, x->klen) == i, op);
    }
    /* Random ranks. */
    for (i = 0; i < 50 && m->n > 0; i++) {
        size_t r = rnd_below(m->n);
        SL_ASSERT(node_is(tkv_sl_at(sl, r), &m->e[r]), op);
    }
    SL_ASSERT(tkv_sl_at(sl, m->n) == NULL, op);
    SL_ASSERT(tkv_sl_at(sl, m->n + 7) == NULL, op);

    /* Random keys, present or not: rank, seek, get. */
    for (i = 0; i < 100; i++) {
        uint8_t key[MAX_KEY];
        size_t klen;
        size_t lb;
        size_t rank = 12345;
        struct tkv_sl_node *s;

        random_key(key, &klen);
        if (rnd_below(10) == 0) {
            klen = 0; /* below everything */
        }
        lb = model_lb(m, key, klen);
        s = tkv_sl_seek(sl, key, klen, &rank);
        SL_ASSERT(rank == lb, op);
        SL_ASSERT(tkv_sl_rank(sl, key, klen) == lb, op);
        SL_ASSERT(lb == m->n ? s == NULL : node_is(s, &m->e[lb]), op);
        SL_ASSERT(tkv_sl_seek(sl, key, klen, NULL) == s, op);
        SL_ASSERT(model_has(m, lb, key, klen)
                      ? tkv_sl_get(sl, key, klen) == s
                      : tkv_sl_get(sl, key, klen) == NULL,
                  op);
    }
}

/* Random intents over present and absent keys, for tkv_sl_prefetch: it
 * must change nothing (and, under ASan, read only live memory). */
static void prefetch_random(const struct tkv_skiplist *sl,
                            const struct model *m,
                            size_t n)
{
    struct entry keys[64];
    struct tkv_sl_intent ops[64];
    size_t length = sl->length;
    size_t bytes = sl->bytes;
    uint64_t rng = sl->rng;
    size_t i;

    assert_true(n <= 64);
    for (i = 0; i < n; i++) {
        random_entry(&keys[i]);
        if (m->n > 0 && rnd_below(2) == 0) {
            const struct entry *old = &m->e[rnd_below(m->n)];
            memcpy(keys[i].key, old->key, old->klen);
            keys[i].klen = old->klen;
            if (rnd_below(2) == 0) {
                keys[i].vlen = old->vlen;
                keys[i].expires_at = old->expires_at;
            }
        }
        ops[i].key = keys[i].key;
        ops[i].klen = keys[i].klen;
        ops[i].op = (enum tkv_sl_op)rnd_below(3);
        ops[i].vlen = keys[i].vlen;
        ops[i].expires_at = keys[i].expires_at;
        ops[i].path = NULL;
    }
    tkv_sl_prefetch(sl, ops, n);
    assert_int_equal(sl->length, length);
    assert_int_equal(sl->bytes, bytes);
    assert_true(sl->rng == rng);
}

static void random_ops(int indexed)
{
    struct tkv_skiplist sl;
    struct model m = {NULL, 0, 0, 0};
    size_t op;
    size_t max_len = 0;
    size_t min_after_shrink = 0;
    size_t in_place = 0;
    int max_level = 0;

    rng_state = seed;
    assert_int_equal(tkv_sl_init(&sl, seed, indexed), 0);
    compare(&sl, &m, 0);
    for (op = 1; op <= 200000; op++) {
        struct entry x;
        size_t r = rnd_below(100);
        /* Grow, then shrink to (nearly) nothing, then churn. */
        int shrink = op > 100000 && op <= 140000;
        size_t put_pct = shrink ? 10 : 50;
        size_t replace_pct = shrink ? 5 : 15;

        random_entry(&x);
        if (op % 97 == 0) {
            prefetch_random(&sl, &m, 40);
        }
        if (r < replace_pct + put_pct && r >= put_pct && m.n > 0) {
            /* Replace a present key. */
            const struct entry *old = &m.e[rnd_below(m.n)];
            struct tkv_sl_node *before;
            int height;
            int same_size;
            int replaced = -1;
            memcpy(x.key, old->key, old->klen);
            x.klen = old->klen;
            if (rnd_below(2) == 0) {
                /* The in-place path, most of these times. */
                x.vlen = old->vlen;
                if (rnd_below(4) != 0) {
                    x.expires_at = old->expires_at != 0 ? x.expires_at + 1 : 0;
                }
            }
            before = tkv_sl_get(&sl, x.key, x.klen);
            SL_ASSERT(before != NULL, op);
            height = before->height;
            same_size = before->vlen == x.vlen &&
                        (tkv_sl_expires(before) != 0) == (x.expires_at != 0);
            SL_ASSERT(tkv_sl_put(&sl, x.key, x.klen, x.val, x.vlen, x.version,
                                 x.expires_at, &replaced) == 0,
                      op);
            SL_ASSERT(replaced == 1, op);
            SL_ASSERT(model_put(&m, &x) == 1, op);
            SL_ASSERT(tkv_sl_get(&sl, x.key, x.klen)->height == height, op);
            /* Same size: the very node was updated; else a new one (made
             * before the old one is freed, so at another address). */
            SL_ASSERT((tkv_sl_get(&sl, x.key, x.klen) == before) == same_size,
                      op);
            in_place += same_size;
        } else if (r < put_pct) {
            int replaced = -1;
            SL_ASSERT(tkv_sl_put(&sl, x.key, x.klen, x.val, x.vlen, x.version,
                                 x.expires_at, &replaced) == 0,
                      op);
            SL_ASSERT(replaced == model_put(&m, &x), op);
        } else {
            if (m.n > 0 && rnd_below(2) == 0) {
                const struct entry *old = &m.e[rnd_below(m.n)];
                memcpy(x.key, old->key, old->klen);
                x.klen = old->klen;
            }
            SL_ASSERT(tkv_sl_delete(&sl, x.key, x.klen) ==
                          model_delete(&m, x.key, x.klen),
                      op);
        }
        if (m.n > max_len) {
            max_len = m.n;
        }
        if (sl.level > max_level) {
            max_level = sl.level;
        }
        if (op % 1000 == 0) {
            compare(&sl, &m, op);
        }
        if (op == 140000) {
            min_after_shrink = m.n;
        }
    }
    /* The run must have reached a real size and grown levels. */
    assert_true(max_len > 2000);
    assert_true(max_level >= 5);
    /* ...and the shrink phase took it down to a few entries. */
    print_message(
        "%s: max length %zu, max level %d, length after shrink "
        "%zu, %zu in-place updates\n",
        indexed ? "indexed" : "plain", max_len, max_level, min_after_shrink,
        in_place);
    assert_true(min_after_shrink < 100);
    assert_true(in_place > 1000);
    if (indexed) {
        /* The index grew with the list (and does not shrink). */
        assert_true(sl.index.cap * 4 / 5 >= max_len);
    } else {
        assert_null(sl.index.slots);
    }
    tkv_sl_close(&sl);
    free(m.e);
}

/* Tests run on both kinds of list take which one from their state. */
static int kind_plain = 0;
static int kind_indexed = 1;
#define ON_KIND(f, kind)                            \
    {                                               \
        (#f "_" #kind), f, NULL, NULL, &kind_##kind \
    }

static void test_random_ops(void **state)
{
    random_ops(*(const int *)*state);
}

/* ---------- the checker catches corruption ---------- */

static void fill(struct tkv_skiplist *sl, size_t n)
{
    char key[32];
    size_t i;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%06u", (unsigned)(i * 7919 % n));
        assert_int_equal(tkv_sl_put(sl, (const uint8_t *)key, 7,
                                    (const uint8_t *)"value", 5, i, 0, NULL),
                         0);
    }
}

static void expect_corrupt(const struct tkv_skiplist *sl, const char *what)
{
    struct tkv_err err;

    tkv_err_clear(&err);
    assert_int_equal(tkv_sl_check(sl, &err), TKV_ECORRUPT);
    assert_non_null(strstr(err.msg, what));
}

static void expect_ok(const struct tkv_skiplist *sl)
{
    struct tkv_err err;

    if (tkv_sl_check(sl, &err) != 0) {
        fail_msg("check failed: %s", err.msg);
    }
}

static void test_check_detects_corruption(void **state)
{
    struct tkv_skiplist sl;
    struct tkv_sl_node *n;
    struct tkv_sl_node *tall = NULL;
    struct tkv_sl_node *saved;
    uint8_t key[7];
    uint32_t span;
    size_t rank;

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 7, 1), 0);
    fill(&sl, 1000);
    expect_ok(&sl);

    /* A span off by one, on a node in the middle. */
    for (n = tkv_sl_at(&sl, 500); n != NULL; n = tkv_sl_next(n)) {
        if (n->height >= 2) {
            tall = n;
            break;
        }
    }
    assert_non_null(tall);
    span = *tkv__sl_span(tall, 1);
    (*tkv__sl_span(tall, 1))++;
    expect_corrupt(&sl, "span");
    *tkv__sl_span(tall, 1) = span;
    expect_ok(&sl);

    /* The head's top span. */
    span = *tkv__sl_span(sl.head, sl.level - 1);
    (*tkv__sl_span(sl.head, sl.level - 1))--;
    expect_corrupt(&sl, "span");
    *tkv__sl_span(sl.head, sl.level - 1) = span;
    expect_ok(&sl);

    /* Order: give a node the key of its successor. */
    n = tkv_sl_at(&sl, 300);
    memcpy(key, tkv_sl_key(n), 7);
    memcpy((uint8_t *)tkv_sl_key(n), tkv_sl_key(tkv_sl_next(n)), 7);
    expect_corrupt(&sl, "not after");
    memcpy((uint8_t *)tkv_sl_key(n), key, 7);
    expect_ok(&sl);

    /* Order: swap two keys far apart (level 0 order breaks). */
    {
        struct tkv_sl_node *a = tkv_sl_at(&sl, 10);
        struct tkv_sl_node *b = tkv_sl_at(&sl, 900);
        uint8_t tmp[7];
        memcpy(tmp, tkv_sl_key(a), 7);
        memcpy((uint8_t *)tkv_sl_key(a), tkv_sl_key(b), 7);
        memcpy((uint8_t *)tkv_sl_key(b), tmp, 7);
        expect_corrupt(&sl, "not after");
        memcpy((uint8_t *)tkv_sl_key(b), tkv_sl_key(a), 7);
        memcpy((uint8_t *)tkv_sl_key(a), tmp, 7);
        expect_ok(&sl);
    }

    /* A higher-level link that skips a node it should stop at. */
    saved = tall->next[1];
    if (saved != NULL && saved->next[1] != NULL) {
        tall->next[1] = saved->next[1];
        expect_corrupt(&sl, "skipped");
        tall->next[1] = saved;
        expect_ok(&sl);
    }

    /* tail, length, bytes. */
    saved = sl.tail;
    sl.tail = tkv_sl_prev(&sl, sl.tail);
    expect_corrupt(&sl, "tail");
    sl.tail = saved;
    sl.length++;
    expect_corrupt(&sl, "length");
    sl.length -= 2;
    expect_corrupt(&sl, "length");
    sl.length++;
    sl.bytes--;
    expect_corrupt(&sl, "bytes");
    sl.bytes++;
    expect_ok(&sl);

    /* Still fully usable after all that. */
    assert_non_null(tkv_sl_seek(&sl, (const uint8_t *)"k000500", 7, &rank));
    assert_int_equal(rank, 500);
    tkv_sl_close(&sl);
}

/* ---------- the index ---------- */

#define PTR_MASK ((UINT64_C(1) << TKV_SL_INDEX_PTR_BITS) - 1)

/* Where the index holds n (found by scanning, not by probing). */
static size_t slot_of(const struct tkv_skiplist *sl,
                      const struct tkv_sl_node *n)
{
    size_t i;

    for (i = 0; i < sl->index.cap; i++) {
        if ((sl->index.slots[i] & PTR_MASK) == (uintptr_t)n) {
            return i;
        }
    }
    fail_msg("node not in the index");
    return 0;
}

/* An empty slot at least `away` slots after slot i (cyclically), with an
 * empty slot between them too, so that a node moved there is outside its
 * probe run. */
static size_t empty_slot_after(const struct tkv_skiplist *sl,
                               size_t i,
                               size_t away)
{
    size_t cap = sl->index.cap;
    size_t j = (i + away) % cap;
    int gap = 0;
    size_t k;

    for (k = (i + 1) % cap; k != j; k = (k + 1) % cap) {
        gap |= sl->index.slots[k] == 0;
    }
    while (!gap || sl->index.slots[j] != 0) {
        gap |= sl->index.slots[j] == 0;
        j = (j + 1) % cap;
        assert_true(j != i);
        if (gap && sl->index.slots[j] == 0) {
            break;
        }
    }
    return j;
}

static void test_check_detects_index_corruption(void **state)
{
    struct tkv_skiplist sl;
    struct tkv_sl_node *n;
    uint64_t *slots;
    uint64_t saved;
    size_t i;
    size_t e;

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 3, 1), 0);
    fill(&sl, 1000);
    expect_ok(&sl);
    slots = sl.index.slots;
    n = tkv_sl_at(&sl, 500);
    i = slot_of(&sl, n);
    saved = slots[i];

    /* A flipped tag bit: the node is still found, under the wrong tag. */
    slots[i] ^= UINT64_C(1) << 63;
    expect_corrupt(&sl, "wrong tag");
    slots[i] = saved;
    expect_ok(&sl);

    /* The slot lost. */
    slots[i] = 0;
    expect_corrupt(&sl, "index holds 999 nodes");
    slots[i] = saved;

    /* A tag without a node, and a node indexed twice. */
    e = empty_slot_after(&sl, i, sl.index.cap / 2);
    slots[e] = UINT64_C(0xbeef) << TKV_SL_INDEX_PTR_BITS;
    expect_corrupt(&sl, "tag but no node");
    slots[e] = saved;
    expect_corrupt(&sl, "index holds 1001 nodes");
    slots[e] = 0;
    expect_ok(&sl);

    /* Moved out of its probe run: the count is right, probing misses. */
    slots[i] = 0;
    slots[e] = saved;
    expect_corrupt(&sl, "not in the index");
    slots[e] = 0;
    slots[i] = saved;
    expect_ok(&sl);

    /* Bookkeeping. */
    sl.index.grow_at++;
    expect_corrupt(&sl, "index capacity");
    sl.index.grow_at--;
    expect_ok(&sl);

    assert_ptr_equal(tkv_sl_get(&sl, tkv_sl_key(n), n->klen), n);
    tkv_sl_close(&sl);
}

static void num_key(size_t i, uint8_t key[9])
{
    snprintf((char *)key, 9, "n%07u", (unsigned)i);
}

static void put_num(struct tkv_skiplist *sl, size_t i)
{
    uint8_t key[9];

    num_key(i, key);
    assert_int_equal(tkv_sl_put(sl, key, 8, key, 8, i, 0, NULL), 0);
}

static void test_index_growth(void **state)
{
    struct tkv_skiplist sl;
    const size_t n = 30000;
    size_t cap;
    size_t rehashes = 0;
    size_t i;
    uint8_t key[9];

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 11, 1), 0);
    cap = sl.index.cap;
    for (i = 0; i < n; i++) {
        put_num(&sl, i * 7919 % n);
        assert_true(sl.length <= sl.index.grow_at);
        if (sl.index.cap != cap) {
            /* 1.5x, and only when the load would pass 0.8. */
            assert_int_equal(sl.index.cap, cap + cap / 2);
            assert_int_equal(sl.length - 1, cap * 4 / 5);
            cap = sl.index.cap;
            rehashes++;
        }
        if (i % 1000 == 0) {
            expect_ok(&sl);
        }
    }
    assert_true(rehashes >= 15);
    expect_ok(&sl);
    for (i = 0; i < n; i++) {
        struct tkv_sl_node *x;
        num_key(i, key);
        x = tkv_sl_get(&sl, key, 8);
        assert_non_null(x);
        assert_int_equal(x->version, i);
    }
    assert_null(tkv_sl_get(&sl, (const uint8_t *)"n9999999", 8));

    /* Empty it again in another order: backward shifts all over, no
     * shrinking. */
    for (i = 0; i < n; i++) {
        num_key(i * 104729 % n, key);
        assert_int_equal(tkv_sl_delete(&sl, key, 8), 1);
        assert_null(tkv_sl_get(&sl, key, 8));
        if (i % 1000 == 0) {
            expect_ok(&sl);
        }
    }
    assert_int_equal(sl.length, 0);
    assert_int_equal(sl.index.cap, cap);
    expect_ok(&sl);
    tkv_sl_close(&sl);
}

/* ---------- backward shift, slot by slot ---------- */

/* Keys with a chosen home slot, found by hashing as the index does
 * (tkv_hash64 with the index's seed, scaled to the capacity). */
static size_t home_of(const struct tkv_skiplist *sl,
                      const uint8_t *key,
                      size_t klen)
{
    uint64_t h = tkv_hash64(sl->index.seed, key, klen);

    return (size_t)(((unsigned __int128)h * sl->index.cap) >> 64);
}

/* The next key after *counter whose home is `home`. */
static void key_homed(const struct tkv_skiplist *sl,
                      size_t home,
                      unsigned *counter,
                      uint8_t key[8])
{
    do {
        snprintf((char *)key, 8, "b%06u", (*counter)++);
    } while (home_of(sl, key, 7) != home);
}

/* Slots first, first + 1, ... (wrapping around) hold the nodes of keys[]
 * in turn; NULL stands for an empty slot. */
static void expect_run(const struct tkv_skiplist *sl,
                       size_t first,
                       const uint8_t *const *keys,
                       size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint64_t s = sl->index.slots[(first + i) % sl->index.cap];
        if (keys[i] == NULL) {
            assert_true(s == 0);
        } else {
            assert_true((s & PTR_MASK) ==
                        (uintptr_t)tkv_sl_get(sl, keys[i], 7));
        }
    }
    expect_ok(sl);
}

/* A deletion empties its slot and moves back each later entry of the run
 * whose home is not between the hole and where it sits: across the end of
 * the table, with homes equal to the hole, and past entries that stay. */
static void test_index_backward_shift(void **state)
{
    struct tkv_skiplist sl;
    uint8_t a[8], b[8], c[8], d[8], e[8], g[8], h[8], i[8];
    uint8_t j[8], k[8], l[8], m[8], n[8];
    unsigned counter = 0;

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 31, 1), 0);
    assert_int_equal(sl.index.cap, 16);
    key_homed(&sl, 15, &counter, a);
    key_homed(&sl, 15, &counter, b);
    key_homed(&sl, 15, &counter, c);
    key_homed(&sl, 0, &counter, d);
    key_homed(&sl, 3, &counter, e);
    key_homed(&sl, 5, &counter, g);
    key_homed(&sl, 5, &counter, h);
    key_homed(&sl, 6, &counter, i);
    key_homed(&sl, 8, &counter, j);
    key_homed(&sl, 9, &counter, k);
    key_homed(&sl, 10, &counter, l);
    key_homed(&sl, 11, &counter, m);
    key_homed(&sl, 10, &counter, n);

#define PUT(x) assert_int_equal(tkv_sl_put(&sl, x, 7, x, 7, 1, 0, NULL), 0)
#define DEL(x) assert_int_equal(tkv_sl_delete(&sl, x, 7), 1)
#define RUN(first, ...)                                      \
    expect_run(&sl, first, (const uint8_t *[]){__VA_ARGS__}, \
               sizeof((const uint8_t *[]){__VA_ARGS__}) / sizeof(uint8_t *))
    /* Runs 15..3 (wrapping) and 5..7. */
    PUT(a);
    PUT(b);
    PUT(c);
    PUT(d);
    PUT(e);
    PUT(g);
    PUT(h);
    PUT(i);
    RUN(15, a, b, c, d, e, NULL, g, h, i, NULL);

    /* b, c (home 15) and d (home 0) move back across the end; e is home. */
    DEL(a);
    RUN(15, b, c, d, NULL, e);
    assert_null(tkv_sl_get(&sl, a, 7));

    /* Home equal to the hole moves, and so does the one after it. */
    DEL(g);
    RUN(5, h, i, NULL);

    /* The hole at the start of the table. */
    DEL(c);
    RUN(15, b, d, NULL, NULL, e);

    /* An entry at its home stays... */
    PUT(j);
    PUT(k);
    DEL(j);
    RUN(8, NULL, k);

    /* ...and one behind it still moves past it into the hole. */
    PUT(l);
    PUT(m);
    PUT(n);
    RUN(10, l, m, n, NULL);
    DEL(l);
    RUN(10, n, m, NULL);
#undef PUT
#undef DEL
#undef RUN

    assert_non_null(tkv_sl_get(&sl, b, 7));
    assert_non_null(tkv_sl_get(&sl, d, 7));
    assert_non_null(tkv_sl_get(&sl, e, 7));
    assert_non_null(tkv_sl_get(&sl, h, 7));
    assert_non_null(tkv_sl_get(&sl, i, 7));
    assert_non_null(tkv_sl_get(&sl, k, 7));
    assert_non_null(tkv_sl_get(&sl, m, 7));
    assert_non_null(tkv_sl_get(&sl, n, 7));
    assert_int_equal(sl.length, 8);
    assert_int_equal(sl.index.cap, 16);
    tkv_sl_close(&sl);
}

/* A small table churned hard: runs wrap around its end all the time. */
static void test_index_small_churn(void **state)
{
    struct tkv_skiplist sl;
    int present[40] = {0};
    size_t op;

    (void)state;
    rng_state = seed ^ 0x5eed;
    assert_int_equal(tkv_sl_init(&sl, 5, 1), 0);
    for (op = 0; op < 20000; op++) {
        size_t k = rnd_below(40);
        uint8_t key[9];
        num_key(k, key);
        if (present[k] || sl.length >= sl.index.grow_at) {
            assert_int_equal(tkv_sl_delete(&sl, key, 8), present[k]);
            present[k] = 0;
        } else {
            put_num(&sl, k);
            present[k] = 1;
        }
        assert_int_equal(sl.index.cap, 16);
        expect_ok(&sl);
    }
    tkv_sl_close(&sl);
}

/* put of key "k000042" with a 5- or 6-byte value; 1 if it replaced. */
static int put42(struct tkv_skiplist *sl,
                 const char *val,
                 uint64_t version,
                 int64_t expires_at)
{
    int replaced = -1;

    assert_int_equal(
        tkv_sl_put(sl, (const uint8_t *)"k000042", 7, (const uint8_t *)val,
                   strlen(val), version, expires_at, &replaced),
        0);
    return replaced;
}

static struct tkv_sl_node *get42(const struct tkv_skiplist *sl)
{
    return tkv_sl_get(sl, (const uint8_t *)"k000042", 7);
}

static void test_in_place_update(void **state)
{
    struct tkv_skiplist sl;
    struct tkv_sl_node *n;
    struct tkv_sl_node *m;
    size_t bytes;
    int height;
    int indexed;

    (void)state;
    for (indexed = 0; indexed <= 1; indexed++) {
        assert_int_equal(tkv_sl_init(&sl, 9, indexed), 0);
        fill(&sl, 100);
        n = get42(&sl);
        assert_non_null(n);
        bytes = sl.bytes;

        /* Same size: no allocation at all, the same node, new contents. */
        tkv_alloc_fail_after(0);
        assert_int_equal(put42(&sl, "VALUE", 777, 0), 1);
        tkv_alloc_fail_reset();
        assert_ptr_equal(get42(&sl), n);
        assert_memory_equal(tkv_sl_value(n), "VALUE", 5);
        assert_int_equal(n->version, 777);
        assert_int_equal(tkv_sl_expires(n), 0);
        assert_int_equal(sl.bytes, bytes);
        assert_int_equal(sl.length, 100);
        expect_ok(&sl);

        /* An expiry makes the node bigger: a new node, same rank and
         * height; bytes count key and value only. */
        height = n->height;
        assert_int_equal(put42(&sl, "VALUE", 778, 55), 1);
        m = get42(&sl);
        assert_non_null(m);
        assert_int_equal(m->height, height);
        assert_int_equal(tkv_sl_expires(m), 55);
        assert_ptr_equal(tkv_sl_at(&sl, 42), m);
        assert_int_equal(sl.bytes, bytes);
        expect_ok(&sl);

        /* Another expiry, same value length: in place again. */
        tkv_alloc_fail_after(0);
        assert_int_equal(put42(&sl, "vAlUe", 779, INT64_MAX), 1);
        tkv_alloc_fail_reset();
        assert_ptr_equal(get42(&sl), m);
        assert_memory_equal(tkv_sl_value(m), "vAlUe", 5);
        assert_int_equal(tkv_sl_expires(m), INT64_MAX);
        assert_int_equal(m->version, 779);
        expect_ok(&sl);

        /* Another value length (allocated before the old node is freed,
         * so it cannot reuse the address), keeping the expiry. */
        assert_int_equal(put42(&sl, "longer", 780, 56), 1);
        n = get42(&sl);
        assert_non_null(n);
        assert_true(n != m);
        assert_int_equal(n->vlen, 6);
        assert_int_equal(n->version, 780);
        assert_int_equal(tkv_sl_expires(n), 56);
        assert_ptr_equal(tkv_sl_at(&sl, 42), n);
        assert_int_equal(sl.bytes, bytes + 1);
        expect_ok(&sl);

        /* Dropping the expiry shrinks the node: a new one again. */
        assert_int_equal(put42(&sl, "LONGER", 781, 0), 1);
        m = get42(&sl);
        assert_true(m != n);
        assert_int_equal(tkv_sl_expires(m), 0);
        assert_memory_equal(tkv_sl_value(m), "LONGER", 6);
        assert_ptr_equal(tkv_sl_at(&sl, 42), m);
        assert_int_equal(sl.length, 100);
        expect_ok(&sl);

        /* Empty values take the in-place path too. */
        assert_int_equal(
            tkv_sl_put(&sl, (const uint8_t *)"e", 1, NULL, 0, 1, 0, NULL), 0);
        n = tkv_sl_get(&sl, (const uint8_t *)"e", 1);
        assert_int_equal(
            tkv_sl_put(&sl, (const uint8_t *)"e", 1, NULL, 0, 2, 0, NULL), 0);
        assert_ptr_equal(tkv_sl_get(&sl, (const uint8_t *)"e", 1), n);
        assert_int_equal(n->version, 2);
        expect_ok(&sl);
        tkv_sl_close(&sl);
    }
}

static void test_prev(void **state)
{
    struct tkv_skiplist sl;
    struct tkv_sl_node *n;
    size_t i;

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 13, 1), 0);
    fill(&sl, 3000);
    assert_null(tkv_sl_prev(&sl, tkv_sl_first(&sl)));
    for (i = 1; i < 3000; i += 7) {
        n = tkv_sl_at(&sl, i);
        assert_ptr_equal(tkv_sl_prev(&sl, n), tkv_sl_at(&sl, i - 1));
    }
    assert_ptr_equal(tkv_sl_prev(&sl, tkv_sl_last(&sl)), tkv_sl_at(&sl, 2998));
    tkv_sl_close(&sl);
}

/* ---------- allocation failure and determinism ---------- */

/* Heights of the nodes in order: the shape of the list. */
static size_t shape(const struct tkv_skiplist *sl, uint8_t *out, size_t max)
{
    const struct tkv_sl_node *n;
    size_t i = 0;

    for (n = tkv_sl_first(sl); n != NULL && i < max; n = tkv_sl_next(n)) {
        out[i++] = n->height;
    }
    return i;
}

static void expect_same_shape(const struct tkv_skiplist *a,
                              const struct tkv_skiplist *b)
{
    static uint8_t shape_a[40000];
    static uint8_t shape_b[40000];
    size_t len = shape(a, shape_a, sizeof shape_a);

    assert_int_equal(shape(b, shape_b, sizeof shape_b), len);
    assert_memory_equal(shape_a, shape_b, len);
}

static void alloc_failure(int indexed)
{
    struct tkv_skiplist sl;
    struct tkv_skiplist ref;
    struct tkv_sl_node *n;
    size_t len;
    size_t bytes;
    uint64_t rng;
    int replaced = -1;

    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_sl_init(&sl, 1, indexed), TKV_ENOMEM);
    if (indexed) {
        tkv_alloc_fail_after(1); /* the head, not the index */
        assert_int_equal(tkv_sl_init(&sl, 1, indexed), TKV_ENOMEM);
    }
    tkv_alloc_fail_reset();

    assert_int_equal(tkv_sl_init(&sl, 1, indexed), 0);
    assert_int_equal(tkv_sl_init(&ref, 1, indexed), 0);
    fill(&sl, 1000);
    fill(&ref, 1000);
    len = sl.length;
    bytes = sl.bytes;
    rng = sl.rng;

    /* New key, and replacement of a present one with a value of another
     * size: both fail cleanly. */
    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_sl_put(&sl, (const uint8_t *)"new", 3,
                                (const uint8_t *)"v", 1, 1, 0, &replaced),
                     TKV_ENOMEM);
    assert_int_equal(replaced, -1);
    assert_int_equal(tkv_sl_put(&sl, (const uint8_t *)"k000001", 7,
                                (const uint8_t *)"other!", 6, 99, 5, NULL),
                     TKV_ENOMEM);
    tkv_alloc_fail_reset();
    expect_ok(&sl);
    assert_int_equal(sl.length, len);
    assert_int_equal(sl.bytes, bytes);
    assert_true(sl.rng == rng);
    assert_null(tkv_sl_get(&sl, (const uint8_t *)"new", 3));
    n = tkv_sl_get(&sl, (const uint8_t *)"k000001", 7);
    assert_non_null(n);
    assert_int_equal(n->vlen, 5);
    assert_memory_equal(tkv_sl_value(n), "value", 5);
    assert_int_equal(n->version, 679); /* 679 * 7919 % 1000 == 1 */
    assert_int_equal(tkv_sl_expires(n), 0);

    /* The failure left no trace: the same later puts give the same shape
     * as in a list that never saw it. */
    assert_int_equal(tkv_sl_put(&sl, (const uint8_t *)"new", 3,
                                (const uint8_t *)"v", 1, 1, 0, NULL),
                     0);
    assert_int_equal(tkv_sl_put(&ref, (const uint8_t *)"new", 3,
                                (const uint8_t *)"v", 1, 1, 0, NULL),
                     0);
    fill(&sl, 1500);
    fill(&ref, 1500);
    expect_same_shape(&sl, &ref);
    expect_ok(&sl);
    tkv_sl_close(&sl);
    tkv_sl_close(&ref);
}

static void test_alloc_failure(void **state)
{
    alloc_failure(*(const int *)*state);
}

/* The insert that takes the index past load 0.8 grows it first: when that
 * allocation fails, or the node's after it, the list is as it was. */
static void test_index_grow_failure(void **state)
{
    struct tkv_skiplist sl;
    struct tkv_skiplist ref;
    const uint64_t *slots;
    size_t cap;
    size_t len;
    size_t bytes;
    size_t i = 0;
    uint64_t rng;
    uint8_t key[9];

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 17, 1), 0);
    assert_int_equal(tkv_sl_init(&ref, 17, 1), 0);
    while (sl.length < 1000 || sl.length < sl.index.grow_at) {
        put_num(&sl, i);
        put_num(&ref, i);
        i++;
    }
    slots = sl.index.slots;
    cap = sl.index.cap;
    len = sl.length;
    bytes = sl.bytes;
    rng = sl.rng;
    num_key(i, key);

    /* The new table cannot be allocated. */
    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_sl_put(&sl, key, 8, key, 8, i, 0, NULL), TKV_ENOMEM);
    tkv_alloc_fail_reset();
    assert_ptr_equal(sl.index.slots, slots);
    assert_int_equal(sl.index.cap, cap);
    assert_int_equal(sl.length, len);
    assert_int_equal(sl.bytes, bytes);
    assert_true(sl.rng == rng);
    assert_null(tkv_sl_get(&sl, key, 8));
    expect_ok(&sl);

    /* Present keys still update in place at full load. */
    num_key(3, key);
    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_sl_put(&sl, key, 8, key, 8, 3, 0, NULL), 0);
    tkv_alloc_fail_reset();
    num_key(i, key);

    /* The table grows, then the node cannot be allocated: the bigger
     * index stays (it is only capacity), the list is unchanged. */
    tkv_alloc_fail_after(1);
    assert_int_equal(tkv_sl_put(&sl, key, 8, key, 8, i, 0, NULL), TKV_ENOMEM);
    tkv_alloc_fail_reset();
    assert_int_equal(sl.index.cap, cap + cap / 2);
    assert_int_equal(sl.length, len);
    assert_int_equal(sl.bytes, bytes);
    assert_true(sl.rng == rng);
    assert_null(tkv_sl_get(&sl, key, 8));
    expect_ok(&sl);

    /* And the failures left no trace in the shape. */
    put_num(&sl, i);
    put_num(&ref, i);
    for (i = i + 1; i < 3000; i++) {
        put_num(&sl, i);
        put_num(&ref, i);
    }
    expect_same_shape(&sl, &ref);
    expect_ok(&sl);
    tkv_sl_close(&sl);
    tkv_sl_close(&ref);
}

/* The index changes speed, never shape: an indexed and a plain list fed the
 * same operations are the same list. */
static void test_index_keeps_shape(void **state)
{
    struct tkv_skiplist a;
    struct tkv_skiplist b;
    uint8_t key[9];
    size_t i;

    (void)state;
    assert_int_equal(tkv_sl_init(&a, 23, 1), 0);
    assert_int_equal(tkv_sl_init(&b, 23, 0), 0);
    for (i = 0; i < 20000; i++) {
        size_t k = i * 7919 % 10007;
        if (i % 3 == 2) {
            num_key(k, key);
            assert_int_equal(tkv_sl_delete(&a, key, 8),
                             tkv_sl_delete(&b, key, 8));
        } else {
            put_num(&a, k);
            put_num(&b, k);
        }
    }
    assert_int_equal(a.length, b.length);
    expect_same_shape(&a, &b);
    expect_ok(&a);
    expect_ok(&b);
    tkv_sl_close(&a);
    tkv_sl_close(&b);
}

/* Batches of intents larger than one prefetch round, on both kinds of
 * list, then the operations themselves: same results as without. */
static void test_prefetch_batches(void **state)
{
    struct tkv_skiplist a;
    struct tkv_skiplist b;
    struct tkv_sl_intent ops[100];
    uint8_t keys[100][9];
    int indexed;
    size_t round;
    size_t i;

    (void)state;
    for (indexed = 0; indexed <= 1; indexed++) {
        assert_int_equal(tkv_sl_init(&a, 29, indexed), 0);
        assert_int_equal(tkv_sl_init(&b, 29, indexed), 0);
        tkv_sl_prefetch(&a, ops, 0);
        for (round = 0; round < 50; round++) {
            for (i = 0; i < 100; i++) {
                size_t k = (round * 100 + i) * 7919 % 3001;
                num_key(k, keys[i]);
                ops[i].key = keys[i];
                ops[i].klen = 8;
                ops[i].op = i % 5 == 4 ? TKV_SL_DELETE
                                       : (i % 5 == 3 ? TKV_SL_GET : TKV_SL_PUT);
                ops[i].vlen = 8;
                ops[i].expires_at = 0;
                ops[i].path = NULL;
            }
            tkv_sl_prefetch(&a, ops, 100);
            for (i = 0; i < 100; i++) {
                if (ops[i].op == TKV_SL_PUT) {
                    put_num(&a, (size_t)atoi((const char *)keys[i] + 1));
                    put_num(&b, (size_t)atoi((const char *)keys[i] + 1));
                } else if (ops[i].op == TKV_SL_DELETE) {
                    assert_int_equal(tkv_sl_delete(&a, keys[i], 8),
                                     tkv_sl_delete(&b, keys[i], 8));
                } else {
                    assert_int_equal(tkv_sl_get(&a, keys[i], 8) == NULL,
                                     tkv_sl_get(&b, keys[i], 8) == NULL);
                }
            }
            expect_ok(&a);
        }
        expect_same_shape(&a, &b);
        tkv_sl_close(&a);
        tkv_sl_close(&b);
    }
}

/* Puts that follow the paths tkv_sl_prefetch recorded, among inserts,
 * replaces in place, replaces that reallocate (a node freed: later paths
 * go stale) and deletes, on both kinds of list: the same list, shape
 * included, as plain puts build. A path handed to the wrong key, or to
 * the wrong list, is not used. */
static void test_put_path(void **state)
{
    struct tkv_skiplist a;
    struct tkv_skiplist b;
    struct tkv_sl_intent ops[40];
    struct tkv_sl_path paths[40];
    uint8_t keys[40][9];
    uint8_t val[16];
    int indexed;
    size_t round;
    size_t i;

    (void)state;
    memset(val, 'v', sizeof val);
    for (indexed = 0; indexed <= 1; indexed++) {
        assert_int_equal(tkv_sl_init(&a, 31, indexed), 0);
        assert_int_equal(tkv_sl_init(&b, 31, indexed), 0);
        for (round = 0; round < 200; round++) {
            size_t vlen = 4 + round % 3;
            for (i = 0; i < 40; i++) {
                size_t k = (round * 40 + i) * 7919 % 4001;
                num_key(k, keys[i]);
                ops[i].key = keys[i];
                ops[i].klen = 8;
                ops[i].op = i % 7 == 6 ? TKV_SL_DELETE : TKV_SL_PUT;
                ops[i].vlen = vlen;
                ops[i].expires_at = 0;
                ops[i].path = &paths[i];
            }
            tkv_sl_prefetch(&a, ops, 40);
            for (i = 0; i < 40; i++) {
                int ra = -1;
                int rb = -2;
                if (ops[i].op == TKV_SL_DELETE) {
                    assert_int_equal(tkv_sl_delete(&a, keys[i], 8),
                                     tkv_sl_delete(&b, keys[i], 8));
                    continue;
                }
                /* every fifth put is handed its neighbour's path */
                assert_int_equal(
                    tkv_sl_put_path(&a, keys[i], 8, val, vlen, round, 0,
                                    &paths[i % 5 == 4 ? (i + 1) % 40 : i],
                                    &ra),
                    0);
                assert_int_equal(
                    tkv_sl_put_path(&b, keys[i], 8, val, vlen, round, 0,
                                    &paths[i], &rb),
                    0);
                assert_int_equal(ra, rb);
            }
            expect_ok(&a);
            expect_ok(&b);
        }
        expect_same_shape(&a, &b);
        tkv_sl_close(&a);
        tkv_sl_close(&b);
    }
}

/* A sorted bulk load by tkv_sl_append is the list tkv_sl_put would build
 * from the same entries in the same order: same contents, ranks, index and
 * node heights; a key not above the last is refused and changes nothing. */
static void append_matches_put(int indexed)
{
    struct tkv_skiplist a, b;
    struct model m = {0};
    struct entry x;
    size_t i;

    assert_int_equal(tkv_sl_init(&a, 7, indexed), 0);
    assert_int_equal(tkv_sl_init(&b, 7, indexed), 0);
    for (i = 0; i < 20000; i++) {
        random_entry(&x);
        (void)model_put(&m, &x); /* 1 when the key was drawn before */
    }
    for (i = 0; i < m.n; i++) {
        const struct entry *e = &m.e[i];
        assert_int_equal(tkv_sl_append(&a, e->key, e->klen, e->val, e->vlen,
                                       e->version, e->expires_at),
                         0);
        assert_int_equal(tkv_sl_put(&b, e->key, e->klen, e->val, e->vlen,
                                    e->version, e->expires_at, NULL),
                         0);
    }
    compare(&a, &m, 0);
    expect_same_shape(&a, &b);
    for (i = 0; i < m.n; i += 97) {
        assert_ptr_equal(tkv_sl_get(&a, m.e[i].key, m.e[i].klen),
                         tkv_sl_at(&a, i));
    }
    /* the last key again, and one below it */
    x = m.e[m.n - 1];
    assert_int_equal(tkv_sl_append(&a, x.key, x.klen, x.val, x.vlen, 1, 0),
                     TKV_EINVALID);
    x = m.e[0];
    assert_int_equal(tkv_sl_append(&a, x.key, x.klen, x.val, x.vlen, 1, 0),
                     TKV_EINVALID);
    compare(&a, &m, 1);
    tkv_sl_close(&a);
    tkv_sl_close(&b);
    free(m.e);
}

static void test_append(void **state)
{
    (void)state;
    append_matches_put(0);
    append_matches_put(1);
}

/* A bulk load with the index suspended, then rebuilt in one pass: the same
 * index as inserts one at a time would make (checked slot by slot by
 * tkv_sl_check), at every size around the pipeline's depth and beyond. */
static void test_index_rebuild(void **state)
{
    static const size_t sizes[] = {0, 1, 2, 7, 8, 9, 15, 16, 17, 1000, 30000};
    size_t s, i;
    (void)state;
    for (s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        struct tkv_skiplist a;
        struct model m = {0};
        struct entry x;
        assert_int_equal(tkv_sl_init(&a, 3, 1), 0);
        while (m.n < sizes[s]) { /* keys: m.n in 3 bytes, big endian */
            random_entry(&x);
            x.klen = 3;
            x.key[0] = (uint8_t)(m.n >> 16);
            x.key[1] = (uint8_t)(m.n >> 8);
            x.key[2] = (uint8_t)m.n;
            assert_int_equal(model_put(&m, &x), 0);
        }
        tkv_sl_index_suspend(&a);
        assert_null(a.index.slots);
        for (i = 0; i < m.n; i++) {
            const struct entry *e = &m.e[i];
            assert_int_equal(tkv_sl_append(&a, e->key, e->klen, e->val,
                                           e->vlen, e->version, e->expires_at),
                             0);
        }
        compare(&a, &m, s); /* unindexed meanwhile: lookups search */
        assert_int_equal(tkv_sl_index_resume(&a), 0);
        assert_non_null(a.index.slots);
        compare(&a, &m, s);
        for (i = 0; i < m.n; i++) {
            assert_ptr_equal(tkv_sl_get(&a, m.e[i].key, m.e[i].klen),
                             tkv_sl_at(&a, i));
        }
        /* and it goes on as an index: an insert, a delete */
        random_entry(&x);
        x.klen = 4;
        memset(x.key, 0xFF, 4);
        assert_int_equal(model_put(&m, &x), 0);
        assert_int_equal(tkv_sl_put(&a, x.key, x.klen, x.val, x.vlen,
                                    x.version, x.expires_at, NULL),
                         0);
        compare(&a, &m, s);
        tkv_sl_close(&a);
        free(m.e);
    }
}

static void test_empty_and_edges(void **state)
{
    struct tkv_skiplist sl;
    const struct tkv_sl_node *out[4];
    size_t rank = 99;
    struct tkv_sl_node *n;
    int replaced = -1;
    int indexed;

    (void)state;
    for (indexed = 0; indexed <= 1; indexed++) {
        assert_int_equal(tkv_sl_init(&sl, 0, indexed), 0);
        expect_ok(&sl);
        assert_null(tkv_sl_first(&sl));
        assert_null(tkv_sl_last(&sl));
        assert_null(tkv_sl_at(&sl, 0));
        assert_int_equal(tkv_sl_range(&sl, 0, 4, out), 0);
        assert_null(tkv_sl_get(&sl, (const uint8_t *)"a", 1));
        assert_null(tkv_sl_seek(&sl, (const uint8_t *)"a", 1, &rank));
        assert_int_equal(rank, 0);
        assert_int_equal(tkv_sl_delete(&sl, (const uint8_t *)"a", 1), 0);

        /* Empty value; key that is a prefix of another. */
        assert_int_equal(
            tkv_sl_put(&sl, (const uint8_t *)"ab", 2, NULL, 0, 1, 0, &replaced),
            0);
        assert_int_equal(replaced, 0);
        assert_int_equal(
            tkv_sl_put(&sl, (const uint8_t *)"a", 1, NULL, 0, 2, 0, NULL), 0);
        n = tkv_sl_first(&sl);
        assert_int_equal(n->klen, 1);
        assert_null(tkv_sl_prev(&sl, n));
        assert_ptr_equal(tkv_sl_prev(&sl, tkv_sl_last(&sl)), n);
        assert_int_equal(tkv_sl_rank(&sl, (const uint8_t *)"ab", 2), 1);
        assert_ptr_equal(tkv_sl_last(&sl), tkv_sl_at(&sl, 1));
        assert_int_equal(tkv_sl_range(&sl, 0, 4, out), 2);
        assert_ptr_equal(out[0], n);
        assert_ptr_equal(out[1], tkv_sl_last(&sl));
        assert_int_equal(tkv_sl_range(&sl, 1, 0, out), 0);
        assert_int_equal(sl.bytes, 3);
        expect_ok(&sl);

        /* Replace the last node: tail follows. */
        assert_int_equal(tkv_sl_put(&sl, (const uint8_t *)"ab", 2,
                                    (const uint8_t *)"xyz", 3, 3, 0, &replaced),
                         0);
        assert_int_equal(replaced, 1);
        assert_int_equal(tkv_sl_last(&sl)->version, 3);
        assert_int_equal(sl.bytes, 6);
        expect_ok(&sl);

        /* Delete the last node: tail goes back. */
        assert_int_equal(tkv_sl_delete(&sl, (const uint8_t *)"ab", 2), 1);
        assert_ptr_equal(tkv_sl_last(&sl), n);
        expect_ok(&sl);
        assert_int_equal(tkv_sl_delete(&sl, (const uint8_t *)"a", 1), 1);
        assert_null(tkv_sl_last(&sl));
        assert_int_equal(sl.length, 0);
        assert_int_equal(sl.level, 1);
        assert_int_equal(sl.bytes, 0);
        expect_ok(&sl);
        tkv_sl_close(&sl);
    }
}

int main(void)
{
    const char *env = getenv("TKV_SEED");
    const struct CMUnitTest tests[] = {
        ON_KIND(test_random_ops, plain),
        ON_KIND(test_random_ops, indexed),
        cmocka_unit_test(test_check_detects_corruption),
        cmocka_unit_test(test_check_detects_index_corruption),
        cmocka_unit_test(test_index_growth),
        cmocka_unit_test(test_index_backward_shift),
        cmocka_unit_test(test_index_small_churn),
        cmocka_unit_test(test_in_place_update),
        cmocka_unit_test(test_prev),
        ON_KIND(test_alloc_failure, plain),
        ON_KIND(test_alloc_failure, indexed),
        cmocka_unit_test(test_index_grow_failure),
        cmocka_unit_test(test_index_keeps_shape),
        cmocka_unit_test(test_prefetch_batches),
        cmocka_unit_test(test_put_path),
        cmocka_unit_test(test_empty_and_edges),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_index_rebuild),
    };

    seed = env != NULL ? strtoull(env, NULL, 10)
                       : (uint64_t)time(NULL) ^ (uint64_t)clock();
    printf("test_skiplist: TKV_SEED=%llu\n", (unsigned long long)seed);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
