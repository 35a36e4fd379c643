/* Tests of statemachine/skiplist.c: random put/replace/delete against a
 * sorted-array model (contents, rank, at, seek, both iteration directions
 * and the invariant checker, every 1000 operations), the checker catching
 * deliberate corruption, allocation failure leaving the list unchanged, and
 * deterministic shape.
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
    for (i = 0; i < x->vlen; i++) {
        x->val[i] = (uint8_t)rnd();
    }
    x->version = rnd();
    x->expires_at = (int64_t)rnd_below(1000);
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
           n->version == x->version && n->expires_at == x->expires_at;
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
    for (n = tkv_sl_last(sl), i = m->n; n != NULL; n = tkv_sl_prev(n)) {
        SL_ASSERT(i > 0 && node_is(n, &m->e[i - 1]), op);
        i--;
    }
    SL_ASSERT(i == 0, op);

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

static void test_random_ops(void **state)
{
    struct tkv_skiplist sl;
    struct model m = {NULL, 0, 0, 0};
    size_t op;
    size_t max_len = 0;
    size_t min_after_shrink = 0;
    int max_level = 0;

    (void)state;
    rng_state = seed;
    assert_int_equal(tkv_sl_init(&sl, seed), 0);
    compare(&sl, &m, 0);
    for (op = 1; op <= 200000; op++) {
        struct entry x;
        size_t r = rnd_below(100);
        /* Grow, then shrink to (nearly) nothing, then churn. */
        int shrink = op > 100000 && op <= 140000;
        size_t put_pct = shrink ? 10 : 50;
        size_t replace_pct = shrink ? 5 : 15;

        random_entry(&x);
        if (r < replace_pct + put_pct && r >= put_pct && m.n > 0) {
            /* Replace a present key. */
            const struct entry *old = &m.e[rnd_below(m.n)];
            struct tkv_sl_node *before;
            int height;
            int replaced = -1;
            memcpy(x.key, old->key, old->klen);
            x.klen = old->klen;
            before = tkv_sl_get(&sl, x.key, x.klen);
            SL_ASSERT(before != NULL, op);
            height = before->height;
            SL_ASSERT(tkv_sl_put(&sl, x.key, x.klen, x.val, x.vlen, x.version,
                                 x.expires_at, &replaced) == 0,
                      op);
            SL_ASSERT(replaced == 1, op);
            SL_ASSERT(model_put(&m, &x) == 1, op);
            SL_ASSERT(tkv_sl_get(&sl, x.key, x.klen)->height == height, op);
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
    print_message("max length %zu, max level %d, length after shrink %zu\n",
                  max_len, max_level, min_after_shrink);
    assert_true(min_after_shrink < 100);
    tkv_sl_close(&sl);
    free(m.e);
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
    assert_int_equal(tkv_sl_init(&sl, 7), 0);
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

    /* prev link, tail, length, bytes. */
    n = tkv_sl_at(&sl, 42);
    saved = n->prev;
    n->prev = tkv_sl_at(&sl, 40);
    expect_corrupt(&sl, "prev");
    n->prev = saved;
    saved = sl.tail;
    sl.tail = tkv_sl_prev(sl.tail);
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

static void test_alloc_failure(void **state)
{
    struct tkv_skiplist sl;
    struct tkv_skiplist ref;
    struct tkv_sl_node *n;
    uint8_t shape_a[2000];
    uint8_t shape_b[2000];
    size_t len;
    size_t bytes;
    uint64_t rng;
    int replaced = -1;

    (void)state;
    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_sl_init(&sl, 1), TKV_ENOMEM);
    tkv_alloc_fail_reset();

    assert_int_equal(tkv_sl_init(&sl, 1), 0);
    assert_int_equal(tkv_sl_init(&ref, 1), 0);
    fill(&sl, 1000);
    fill(&ref, 1000);
    len = sl.length;
    bytes = sl.bytes;
    rng = sl.rng;

    /* New key, and replacement of a present one: both fail cleanly. */
    tkv_alloc_fail_after(0);
    assert_int_equal(tkv_sl_put(&sl, (const uint8_t *)"new", 3,
                                (const uint8_t *)"v", 1, 1, 0, &replaced),
                     TKV_ENOMEM);
    assert_int_equal(replaced, -1);
    assert_int_equal(tkv_sl_put(&sl, (const uint8_t *)"k000001", 7,
                                (const uint8_t *)"other", 5, 99, 5, NULL),
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
    assert_int_equal(n->expires_at, 0);

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
    assert_int_equal(shape(&sl, shape_a, sizeof shape_a),
                     shape(&ref, shape_b, sizeof shape_b));
    assert_memory_equal(shape_a, shape_b, sl.length);
    expect_ok(&sl);
    tkv_sl_close(&sl);
    tkv_sl_close(&ref);
}

static void test_empty_and_edges(void **state)
{
    struct tkv_skiplist sl;
    size_t rank = 99;
    struct tkv_sl_node *n;
    int replaced = -1;

    (void)state;
    assert_int_equal(tkv_sl_init(&sl, 0), 0);
    expect_ok(&sl);
    assert_null(tkv_sl_first(&sl));
    assert_null(tkv_sl_last(&sl));
    assert_null(tkv_sl_at(&sl, 0));
    assert_null(tkv_sl_seek(&sl, (const uint8_t *)"a", 1, &rank));
    assert_int_equal(rank, 0);
    assert_int_equal(tkv_sl_delete(&sl, (const uint8_t *)"a", 1), 0);

    /* Empty value; key that is a prefix of another. */
    assert_int_equal(
        tkv_sl_put(&sl, (const uint8_t *)"ab", 2, NULL, 0, 1, 0, &replaced), 0);
    assert_int_equal(replaced, 0);
    assert_int_equal(
        tkv_sl_put(&sl, (const uint8_t *)"a", 1, NULL, 0, 2, 0, NULL), 0);
    n = tkv_sl_first(&sl);
    assert_int_equal(n->klen, 1);
    assert_int_equal(tkv_sl_rank(&sl, (const uint8_t *)"ab", 2), 1);
    assert_ptr_equal(tkv_sl_last(&sl), tkv_sl_at(&sl, 1));
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

    assert_int_equal(tkv_sl_delete(&sl, (const uint8_t *)"a", 1), 1);
    assert_int_equal(tkv_sl_delete(&sl, (const uint8_t *)"ab", 2), 1);
    assert_int_equal(sl.length, 0);
    assert_int_equal(sl.level, 1);
    assert_int_equal(sl.bytes, 0);
    expect_ok(&sl);
    tkv_sl_close(&sl);
}

int main(void)
{
    const char *env = getenv("TKV_SEED");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops),
        cmocka_unit_test(test_check_detects_corruption),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_empty_and_edges),
    };

    seed = env != NULL ? strtoull(env, NULL, 10)
                       : (uint64_t)time(NULL) ^ (uint64_t)clock();
    printf("test_skiplist: TKV_SEED=%llu\n", (unsigned long long)seed);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
