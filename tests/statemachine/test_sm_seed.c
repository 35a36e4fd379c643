/* The seed's (shared/seed/kv-storage.md) examples, each as its own test with
 * the seed's data and expected result, run against the state machine; plus
 * the list edge cases the seed implies (prefix excludes its own key, limits,
 * cursors, totals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtest.h"

static int setup(void **state)
{
    struct smt *t = malloc(sizeof *t);
    smt_init(t);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    smt_close(*state);
    free(*state);
    return 0;
}

/* Run a list and compare the keys it returns with `expect` (JSON text). */
static void expect_list(struct smt *t, const char *prefix, const char *start,
                        const char *end, int64_t limit, int reverse,
                        const char *expect, size_t expect_total)
{
    char *keys = NULL;
    size_t total = 0;
    int rv = smt_list(t, prefix, start, end, limit, reverse, NULL, &keys,
                      &total, NULL);
    assert_int_equal(rv, 0);
    assert_string_equal(keys, expect);
    assert_int_equal(total, expect_total);
    free(keys);
}

static void expect_present(struct smt *t, const char *key)
{
    char *v = smt_get(t, key, NULL);
    assert_non_null(v);
    free(v);
}

static void put_notes_001_004(struct smt *t)
{
    smt_set(t, "[\"notes\",\"note-003\"]", "{\"title\":\"Third\"}", 0);
    smt_set(t, "[\"notes\",\"note-001\"]", "{\"title\":\"First\"}", 0);
    smt_set(t, "[\"notes\",\"note-004\"]", "{\"title\":\"Fourth\"}", 0);
    smt_set(t, "[\"notes\",\"note-002\"]", "{\"title\":\"Second\"}", 0);
}

/* "Lexicographical ordering": a < apple < b < banana. */
static void seed_order_words(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"notes\",\"banana\"]", "1", 0);
    smt_set(t, "[\"notes\",\"b\"]", "1", 0);
    smt_set(t, "[\"notes\",\"apple\"]", "1", 0);
    smt_set(t, "[\"notes\",\"a\"]", "1", 0);
    expect_list(t, "[\"notes\"]", NULL, NULL, 0, 0,
                "[[\"notes\",\"a\"],[\"notes\",\"apple\"],[\"notes\",\"b\"],"
                "[\"notes\",\"banana\"]]",
                4);
}

/* "Numbers are compared as strings": 1 < 10 < 2 < 9. */
static void seed_order_numeric_strings(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"items\",\"9\"]", "1", 0);
    smt_set(t, "[\"items\",\"2\"]", "1", 0);
    smt_set(t, "[\"items\",\"10\"]", "1", 0);
    smt_set(t, "[\"items\",\"1\"]", "1", 0);
    expect_list(t, "[\"items\"]", NULL, NULL, 0, 0,
                "[[\"items\",\"1\"],[\"items\",\"10\"],[\"items\",\"2\"],"
                "[\"items\",\"9\"]]",
                4);
}

/* The padding advice: '001' < '002' < '010'. */
static void seed_order_padded(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"items\",\"010\"]", "1", 0);
    smt_set(t, "[\"items\",\"002\"]", "1", 0);
    smt_set(t, "[\"items\",\"001\"]", "1", 0);
    expect_list(t, "[\"items\"]", NULL, NULL, 0, 0,
                "[[\"items\",\"001\"],[\"items\",\"002\"],[\"items\",\"010\"]]",
                3);
}

/* Key parts of every type: ['items', 42, true] is a key. */
static void seed_mixed_parts(void **state)
{
    struct smt *t = *state;
    uint64_t v;
    char *val;
    smt_set(t, "[\"items\",42,true]", "{\"ok\":1}", 0);
    smt_set(t, "[\"items\",\"x\"]", "2", 0);
    smt_set(t, "[\"items\",false]", "3", 0);
    smt_set(t, "[\"items\",-1.5]", "4", 0);
    /* strings < numbers < booleans */
    expect_list(t, "[\"items\"]", NULL, NULL, 0, 0,
                "[[\"items\",\"x\"],[\"items\",-1.5],[\"items\",42,true],"
                "[\"items\",false]]",
                4);
    val = smt_get(t, "[\"items\",42,true]", &v);
    assert_non_null(val);
    assert_string_equal(val, "{\"ok\":1}");
    free(val);
}

/* Example 1: prefix + start (inclusive). */
static void seed_range_start(void **state)
{
    struct smt *t = *state;
    put_notes_001_004(t);
    expect_list(t, "[\"notes\"]", "[\"notes\",\"note-002\"]", NULL, 0, 0,
                "[[\"notes\",\"note-002\"],[\"notes\",\"note-003\"],"
                "[\"notes\",\"note-004\"]]",
                3);
}

/* Example 2: prefix + end (exclusive). */
static void seed_range_end(void **state)
{
    struct smt *t = *state;
    put_notes_001_004(t);
    expect_list(t, "[\"notes\"]", NULL, "[\"notes\",\"note-003\"]", 0, 0,
                "[[\"notes\",\"note-001\"],[\"notes\",\"note-002\"]]", 2);
}

/* Example 3: prefix + start + end. */
static void seed_range_start_end(void **state)
{
    struct smt *t = *state;
    put_notes_001_004(t);
    expect_list(t, "[\"notes\"]", "[\"notes\",\"note-002\"]",
                "[\"notes\",\"note-004\"]", 0, 0,
                "[[\"notes\",\"note-002\"],[\"notes\",\"note-003\"]]", 2);
}

/* Example 4: start + end without prefix, "IDs starting with a through m". */
static void seed_range_no_prefix(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"notes\",\"zebra\"]", "1", 0);
    smt_set(t, "[\"notes\",\"apple\"]", "1", 0);
    smt_set(t, "[\"notes\",\"mango\"]", "1", 0);
    smt_set(t, "[\"notes\",\"n\"]", "1", 0);
    smt_set(t, "[\"notes\",\"a\"]", "1", 0);
    smt_set(t, "[\"memo\",\"b\"]", "1", 0);
    smt_set(t, "[\"users\",\"c\"]", "1", 0);
    expect_list(t, NULL, "[\"notes\",\"a\"]", "[\"notes\",\"n\"]", 0, 0,
                "[[\"notes\",\"a\"],[\"notes\",\"apple\"],"
                "[\"notes\",\"mango\"]]",
                3);
}

/* "Pagination": limit + cursor walk every page; total stays the count of
 * the whole selector; the last page's cursor is null. */
static void seed_pagination(void **state)
{
    struct smt *t = *state;
    char cursor[TKV_CURSOR_MAX] = "", key[64];
    const char *expect_pages[3] = {
        ("[[\"notes\",\"n00\"],[\"notes\",\"n01\"],[\"notes\",\"n02\"],"
        "[\"notes\",\"n03\"],[\"notes\",\"n04\"],[\"notes\",\"n05\"],"
        "[\"notes\",\"n06\"],[\"notes\",\"n07\"],[\"notes\",\"n08\"],"
        "[\"notes\",\"n09\"]]"),
        ("[[\"notes\",\"n10\"],[\"notes\",\"n11\"],[\"notes\",\"n12\"],"
        "[\"notes\",\"n13\"],[\"notes\",\"n14\"],[\"notes\",\"n15\"],"
        "[\"notes\",\"n16\"],[\"notes\",\"n17\"],[\"notes\",\"n18\"],"
        "[\"notes\",\"n19\"]]"),
        ("[[\"notes\",\"n20\"],[\"notes\",\"n21\"],[\"notes\",\"n22\"],"
         "[\"notes\",\"n23\"],[\"notes\",\"n24\"]]"),
    };
    for (int i = 24; i >= 0; i--) {
        snprintf(key, sizeof key, "[\"notes\",\"n%02d\"]", i);
        smt_set(t, key, "{\"title\":\"x\"}", 0);
    }
    smt_set(t, "[\"other\",\"z\"]", "1", 0);
    for (int page = 0; page < 3; page++) {
        char *keys;
        size_t total;
        int rv = smt_list(t, "[\"notes\"]", NULL, NULL, 10, 0,
                          page == 0 ? NULL : cursor, &keys, &total, cursor);
        assert_int_equal(rv, 0);
        assert_string_equal(keys, expect_pages[page]);
        assert_int_equal(total, 25);
        assert_true(page == 2 ? cursor[0] == '\0' : cursor[0] != '\0');
        free(keys);
    }
}

/* "Reverse order": newest first, limit 10, and reverse pages. */
static void seed_reverse(void **state)
{
    struct smt *t = *state;
    char cursor[TKV_CURSOR_MAX], key[64], *keys;
    size_t total;
    for (int i = 0; i < 12; i++) {
        snprintf(key, sizeof key, "[\"notes\",\"n%02d\"]", i);
        smt_set(t, key, "1", 0);
    }
    assert_int_equal(smt_list(t, "[\"notes\"]", NULL, NULL, 10, 1, NULL,
                              &keys, &total, cursor),
                     0);
    assert_string_equal(
        keys,
        "[[\"notes\",\"n11\"],[\"notes\",\"n10\"],[\"notes\",\"n09\"],"
        "[\"notes\",\"n08\"],[\"notes\",\"n07\"],[\"notes\",\"n06\"],"
        "[\"notes\",\"n05\"],[\"notes\",\"n04\"],[\"notes\",\"n03\"],"
        "[\"notes\",\"n02\"]]");
    assert_int_equal(total, 12);
    free(keys);
    assert_int_equal(smt_list(t, "[\"notes\"]", NULL, NULL, 10, 1, cursor,
                              &keys, &total, cursor),
                     0);
    assert_string_equal(keys, "[[\"notes\",\"n01\"],[\"notes\",\"n00\"]]");
    assert_string_equal(cursor, "");
    free(keys);
    /* reverse with start and end: still start inclusive, end exclusive */
    expect_list(t, "[\"notes\"]", "[\"notes\",\"n03\"]", "[\"notes\",\"n06\"]",
                0, 1,
                "[[\"notes\",\"n05\"],[\"notes\",\"n04\"],[\"notes\",\"n03\"]]",
                3);
}

/* "Hierarchical data queries": org level and department level. */
static void seed_hierarchical(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"orgs\",\"acme\",\"engineering\",\"alice\"]",
            "{\"role\":\"Engineer\"}", 0);
    smt_set(t, "[\"orgs\",\"acme\",\"engineering\",\"bob\"]",
            "{\"role\":\"Senior Engineer\"}", 0);
    smt_set(t, "[\"orgs\",\"acme\",\"sales\",\"charlie\"]",
            "{\"role\":\"Sales Rep\"}", 0);
    smt_set(t, "[\"orgs\",\"globex\",\"sales\",\"dan\"]",
            "{\"role\":\"Sales Rep\"}", 0);
    expect_list(t, "[\"orgs\",\"acme\"]", NULL, NULL, 0, 0,
                "[[\"orgs\",\"acme\",\"engineering\",\"alice\"],"
                "[\"orgs\",\"acme\",\"engineering\",\"bob\"],"
                "[\"orgs\",\"acme\",\"sales\",\"charlie\"]]",
                3);
    expect_list(t, "[\"orgs\",\"acme\",\"engineering\"]", NULL, NULL, 0, 0,
                "[[\"orgs\",\"acme\",\"engineering\",\"alice\"],"
                "[\"orgs\",\"acme\",\"engineering\",\"bob\"]]",
                2);
}

/* "Filter by date range": ISO dates sort as strings. */
static void seed_date_range(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"logs\",\"2024-01-14T23:59:59Z\",\"aaa111\"]", "1", 0);
    smt_set(t, "[\"logs\",\"2024-01-15T10:30:00Z\",\"abc123\"]", "1", 0);
    smt_set(t, "[\"logs\",\"2024-01-15T14:45:00Z\",\"def456\"]", "1", 0);
    smt_set(t, "[\"logs\",\"2024-01-16T00:00:00Z\",\"ghi789\"]", "1", 0);
    expect_list(t, "[\"logs\"]", "[\"logs\",\"2024-01-15T00:00:00Z\"]",
                "[\"logs\",\"2024-01-16T00:00:00Z\"]", 0, 0,
                "[[\"logs\",\"2024-01-15T10:30:00Z\",\"abc123\"],"
                "[\"logs\",\"2024-01-15T14:45:00Z\",\"def456\"]]",
                2);
    /* only `from` */
    expect_list(t, "[\"logs\"]", "[\"logs\",\"2024-01-15T14:00:00Z\"]", NULL,
                0, 0,
                "[[\"logs\",\"2024-01-15T14:45:00Z\",\"def456\"],"
                "[\"logs\",\"2024-01-16T00:00:00Z\",\"ghi789\"]]",
                2);
}

/* getMany semantics at the state machine: same order, missing = null;
 * delete of a missing key is fine. */
static void seed_get_many_and_delete(void **state)
{
    struct smt *t = *state;
    char *v;
    smt_set(t, "[\"notes\",\"note-001\"]", "{\"title\":\"First note\"}", 0);
    smt_set(t, "[\"notes\",\"note-002\"]", "{\"title\":\"Second note\"}", 0);
    v = smt_get(t, "[\"notes\",\"note-001\"]", NULL);
    assert_string_equal(v, "{\"title\":\"First note\"}");
    free(v);
    assert_null(smt_get(t, "[\"notes\",\"note-999\"]", NULL));
    assert_int_equal(smt_del(t, "[\"notes\",\"note-999\"]").code, 0);
    assert_int_equal(smt_del(t, "[\"notes\",\"note-001\"]").code, 0);
    assert_null(smt_get(t, "[\"notes\",\"note-001\"]", NULL));
    expect_list(t, "[\"notes\"]", NULL, NULL, 0, 0,
                "[[\"notes\",\"note-002\"]]", 1);
}

/* DESIGN.md: a prefix does not select the key equal to it; a shorter key
 * sorts before the keys it prefixes; [] selects everything. */
static void list_prefix_excludes_itself(void **state)
{
    struct smt *t = *state;
    smt_set(t, "[\"notes\"]", "0", 0);
    smt_set(t, "[\"notes\",\"a\"]", "1", 0);
    smt_set(t, "[\"notes\",\"a\",\"x\"]", "2", 0);
    smt_set(t, "[\"notesX\"]", "3", 0);
    expect_list(t, "[\"notes\"]", NULL, NULL, 0, 0,
                "[[\"notes\",\"a\"],[\"notes\",\"a\",\"x\"]]", 2);
    expect_list(t, "[]", NULL, NULL, 0, 0,
                "[[\"notes\"],[\"notes\",\"a\"],[\"notes\",\"a\",\"x\"],"
                "[\"notesX\"]]",
                4);
    /* start only and end only are open ranges */
    expect_list(t, NULL, "[\"notes\",\"a\",\"x\"]", NULL, 0, 0,
                "[[\"notes\",\"a\",\"x\"],[\"notesX\"]]", 2);
    expect_list(t, NULL, NULL, "[\"notes\",\"a\"]", 0, 0, "[[\"notes\"]]", 1);
    /* start >= end: nothing, total 0 */
    expect_list(t, NULL, "[\"z\"]", "[\"a\"]", 0, 0, "[]", 0);
}

static void list_limits(void **state)
{
    struct smt *t = *state;
    char *keys;
    size_t total;
    char key[64];
    for (int i = 0; i < 150; i++) {
        snprintf(key, sizeof key, "[\"k\",%d]", i);
        smt_set(t, key, "1", 0);
    }
    /* default limit 100 */
    assert_int_equal(smt_list(t, "[\"k\"]", NULL, NULL, 0, 0, NULL, &keys,
                              &total, NULL),
                     0);
    assert_int_equal(total, 150);
    {
        json_t *a = json_loads(keys, 0, NULL);
        assert_int_equal(json_array_size(a), 100);
        json_decref(a);
    }
    free(keys);
    assert_int_equal(smt_list(t, "[\"k\"]", NULL, NULL, 1001, 0, NULL, &keys,
                              &total, NULL),
                     TKV_EINVALID);
    assert_int_equal(smt_list(t, "[\"k\"]", NULL, NULL, -1, 0, NULL, &keys,
                              &total, NULL),
                     TKV_EINVALID);
    assert_int_equal(smt_list(t, NULL, NULL, NULL, 10, 0, NULL, &keys,
                              &total, NULL),
                     TKV_EINVALID);
    /* exactly limit items left: no cursor */
    expect_list(t, "[\"k\"]", "[\"k\",140]", NULL, 10, 0,
                "[[\"k\",140],[\"k\",141],[\"k\",142],[\"k\",143],[\"k\",144],"
                "[\"k\",145],[\"k\",146],[\"k\",147],[\"k\",148],[\"k\",149]]",
                10);
}

/* A byte budget ends pages early but never loses or repeats an item, in
 * both directions. */
static void list_byte_budget(void **state)
{
    struct smt *t = *state;
    struct tkv_list_result *res = malloc(sizeof *res);
    struct tkv_list_query q;
    uint8_t p[TKV_KEY_MAX];
    char key[32], cursor[TKV_CURSOR_MAX];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "[\"b\",%d]", i);
        smt_set(t, key, "\"0123456789012345678901234567890123456789\"", 0);
    }
    for (int reverse = 0; reverse < 2; reverse++) {
        int seen = 0, pages = 0, expect = reverse ? 39 : 0;
        memset(&q, 0, sizeof q);
        q.prefix = p;
        q.prefix_len = smt_key("[\"b\"]", p);
        q.limit = 100;
        q.reverse = reverse;
        q.max_bytes = 500; /* about 5 items of ~100 bytes */
        for (;;) {
            assert_int_equal(tkv_sm_list(&t->sm, &q, res, NULL), 0);
            assert_int_equal(res->total, 40);
            assert_true(res->n >= 1 && res->n <= 6);
            for (size_t i = 0; i < res->n; i++) {
                uint8_t k[TKV_KEY_MAX];
                snprintf(key, sizeof key, "[\"b\",%d]", expect);
                assert_int_equal(tkv_key_cmp(tkv_sl_key(res->items[i]),
                                             res->items[i]->klen, k,
                                             smt_key(key, k)),
                                 0);
                expect += reverse ? -1 : 1;
                seen++;
            }
            pages++;
            if (res->cursor[0] == '\0') {
                break;
            }
            strcpy(cursor, res->cursor);
            q.cursor = cursor;
            q.cursor_len = strlen(cursor);
        }
        assert_int_equal(seen, 40);
        assert_true(pages >= 7);
    }
    /* a budget smaller than one item still returns one item per page */
    q.cursor = NULL;
    q.max_bytes = 1;
    assert_int_equal(tkv_sm_list(&t->sm, &q, res, NULL), 0);
    assert_int_equal(res->n, 1);
    free(res);
}

static void list_bad_cursors(void **state)
{
    struct smt *t = *state;
    char cursor[TKV_CURSOR_MAX], other[TKV_CURSOR_MAX], *keys;
    size_t total;
    struct tkv_list_query q;
    struct tkv_list_result *res = malloc(sizeof *res);
    struct tkv_err err;
    uint8_t p[TKV_KEY_MAX];

    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "[\"a\",%d]", i);
        smt_set(t, key, "1", 0);
        snprintf(key, sizeof key, "[\"b\",%d]", i);
        smt_set(t, key, "1", 0);
    }
    assert_int_equal(smt_list(t, "[\"a\"]", NULL, NULL, 2, 0, NULL, &keys,
                              &total, cursor),
                     0);
    free(keys);
    assert_int_equal(smt_list(t, "[\"b\"]", NULL, NULL, 2, 0, NULL, &keys,
                              &total, other),
                     0);
    free(keys);
    /* another selector's cursor, the other direction, garbage */
    assert_int_equal(smt_list(t, "[\"a\"]", NULL, NULL, 2, 0, other, &keys,
                              &total, NULL),
                     TKV_EBAD_CURSOR);
    assert_int_equal(smt_list(t, "[\"a\"]", NULL, NULL, 2, 1, cursor, &keys,
                              &total, NULL),
                     TKV_EBAD_CURSOR);
    assert_int_equal(smt_list(t, "[\"a\"]", NULL, NULL, 2, 0, "!!!!", &keys,
                              &total, NULL),
                     TKV_EBAD_CURSOR);
    assert_int_equal(smt_list(t, "[\"a\"]", NULL, NULL, 2, 0, "AAAAAAAAAAAAAAAA",
                              &keys, &total, NULL),
                     TKV_EBAD_CURSOR);
    /* a truncated cursor */
    cursor[strlen(cursor) - 3] = '\0';
    assert_int_equal(smt_list(t, "[\"a\"]", NULL, NULL, 2, 0, cursor, &keys,
                              &total, NULL),
                     TKV_EBAD_CURSOR);
    /* message says what is wrong */
    memset(&q, 0, sizeof q);
    q.prefix = p;
    q.prefix_len = smt_key("[\"a\"]", p);
    q.cursor = other;
    q.cursor_len = strlen(other);
    assert_int_equal(tkv_sm_list(&t->sm, &q, res, &err), TKV_EBAD_CURSOR);
    assert_non_null(strstr(err.msg, "another selector"));
    free(res);
}

/* TTL: present until the clock reaches expires_at, then gone from get, list
 * and total alike. */
static void ttl_expiry(void **state)
{
    struct smt *t = *state;
    char *keys;
    size_t total;
    t->ts = 10000;
    smt_set(t, "[\"cache\",\"weather\",\"london\"]", "{\"t\":12}", 1800);
    smt_set(t, "[\"cache\",\"weather\",\"paris\"]", "{\"t\":15}", 0);
    smt_tick(t, 11799);
    expect_present(t, "[\"cache\",\"weather\",\"london\"]");
    smt_tick(t, 11800);
    assert_null(smt_get(t, "[\"cache\",\"weather\",\"london\"]", NULL));
    assert_int_equal(smt_list(t, "[\"cache\"]", NULL, NULL, 0, 0, NULL, &keys,
                              &total, NULL),
                     0);
    assert_string_equal(keys, "[[\"cache\",\"weather\",\"paris\"]]");
    assert_int_equal(total, 1);
    free(keys);
    assert_int_equal(t->sm.expiry.length, 0);
    /* overwrite without TTL clears the expiry; with TTL moves it */
    smt_set(t, "[\"x\"]", "1", 100);
    smt_set(t, "[\"x\"]", "2", 0);
    smt_tick(t, 20000);
    expect_present(t, "[\"x\"]");
    assert_int_equal(t->sm.expiry.length, 0);
    /* the clock never goes backwards */
    smt_tick(t, 5000);
    assert_int_equal(t->sm.now, 20000);
}

static void atomic_checks(void **state)
{
    struct smt *t = *state;
    uint8_t k1[TKV_KEY_MAX], k2[TKV_KEY_MAX];
    struct tkv_check checks[2];
    struct tkv_mutation muts[2];
    struct tkv_cmd c;
    struct tkv_result r;
    uint64_t v1;
    char *val;

    smt_set(t, "[\"accounts\",\"alice\"]", "{\"balance\":100}", 0);
    free(smt_get(t, "[\"accounts\",\"alice\"]", &v1));
    memset(&c, 0, sizeof c);
    c.type = TKV_CMD_ATOMIC;
    checks[0].key = k1;
    checks[0].klen = (uint16_t)smt_key("[\"accounts\",\"alice\"]", k1);
    checks[0].version = v1;
    checks[1].key = k2;
    checks[1].klen = (uint16_t)smt_key("[\"accounts\",\"bob\"]", k2);
    checks[1].version = 0; /* must be absent */
    muts[0] = (struct tkv_mutation){.type = TKV_CMD_SET,
                                    .key = k1,
                                    .klen = checks[0].klen,
                                    .value = (const uint8_t *)"\x32",
                                    .vlen = 1};
    muts[1] = (struct tkv_mutation){.type = TKV_CMD_SET,
                                    .key = k2,
                                    .klen = checks[1].klen,
                                    .value = (const uint8_t *)"\x33",
                                    .vlen = 1};
    c.checks = checks;
    c.nchecks = 2;
    c.muts = muts;
    c.nmuts = 2;
    r = smt_apply_cmd(t, &c);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.version, t->index << 16);
    /* replay: alice's version changed and bob exists -> conflict on the
     * first failed check, and nothing is written */
    r = smt_apply_cmd(t, &c);
    assert_int_equal(r.code, TKV_ECONFLICT);
    assert_int_equal(r.conflict, 0);
    val = smt_get(t, "[\"accounts\",\"alice\"]", NULL);
    assert_string_equal(val, "50");
    free(val);
    /* first check passes, second fails: conflict index 1, nothing applied */
    free(smt_get(t, "[\"accounts\",\"alice\"]", &checks[0].version));
    muts[0].value = (const uint8_t *)"\x07";
    r = smt_apply_cmd(t, &c);
    assert_int_equal(r.code, TKV_ECONFLICT);
    assert_int_equal(r.conflict, 1);
    val = smt_get(t, "[\"accounts\",\"alice\"]", NULL);
    assert_string_equal(val, "50");
    free(val);
}

/* A write retried with the same (session, seq) is applied once and answered
 * with the first result; acknowledged results are forgotten. */
static void session_dedup(void **state)
{
    struct smt *t = *state;
    struct tkv_result r1, r2, r3;
    uint64_t v;
    r1 = smt_set_s(t, "[\"c\"]", "1", 0, 77, 1, 1);
    r2 = smt_set_s(t, "[\"c\"]", "2", 0, 77, 1, 1);
    assert_int_equal(r1.code, 0);
    assert_int_equal(r2.code, 0);
    assert_int_equal(r2.version, r1.version);
    free(smt_get(t, "[\"c\"]", &v));
    assert_int_equal(v, r1.version);
    r3 = smt_set_s(t, "[\"c\"]", "3", 0, 77, 2, 2);
    assert_true(r3.version > r1.version);
    /* seq 1 was acknowledged (ack = 2): a late duplicate is refused */
    r2 = smt_set_s(t, "[\"c\"]", "4", 0, 77, 1, 2);
    assert_int_equal(r2.code, TKV_ESTALE);
    /* another session is independent */
    r2 = smt_set_s(t, "[\"c\"]", "5", 0, 78, 1, 1);
    assert_int_equal(r2.code, 0);
    assert_true(r2.version > r3.version);
    /* idle sessions are forgotten by the state machine clock */
    smt_tick(t, t->ts + t->sm.cfg.session_idle_ms + 1);
    assert_int_equal(t->sm.sess_count, 0);
}

/* A pipelining client: 6000 writes of one session, sent in shuffled
 * groups, acknowledged late by a varying amount (sometimes beyond the
 * window), some sent again later. The oracle keeps what the window should
 * hold: a retry is answered with the first result while its seq is
 * remembered, and STALE once it is below what was acknowledged or pushed
 * out of the window. */
enum { SW_N = 6000 };
static uint64_t sw_version[SW_N + 1]; /* first result of each seq */
static int sw_applied[SW_N + 1];
static uint64_t sw_floor;

static void sw_write(struct smt *t, uint64_t seq, uint64_t ack) {
  size_t window = t->sm.cfg.session_window;
  struct tkv_result r = smt_set_s(t, "[\"w\"]", "1", 0, 9, seq, ack);
  size_t live = 0;
  uint64_t k;

  if (ack > sw_floor) {
    sw_floor = ack;
  }
  if (seq < sw_floor) {
    assert_int_equal(r.code, TKV_ESTALE);
    return;
  }
  assert_int_equal(r.code, 0);
  if (sw_applied[seq]) { /* a retry */
    assert_int_equal(r.version, sw_version[seq]);
    return;
  }
  sw_applied[seq] = 1;
  sw_version[seq] = r.version;
  for (k = sw_floor; k <= SW_N; k++) {
    live += (size_t)sw_applied[k];
  }
  while (live > window) { /* the oldest remembered is forgotten */
    while (!sw_applied[sw_floor]) {
      sw_floor++;
    }
    sw_floor++;
    live--;
  }
}

static uint64_t sw_rand(uint64_t *rng) {
  *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
  return *rng >> 33;
}

static void session_window(void **state) {
  struct smt *t = *state;
  uint64_t rng = 42, ack = 1, next = 1;

  memset(sw_applied, 0, sizeof sw_applied);
  sw_floor = 0;
  while (next <= SW_N) {
    uint64_t group[8], i, n = 1 + sw_rand(&rng) % 8;
    for (i = 0; i < n && next <= SW_N; i++) {
      group[i] = next++;
    }
    n = i;
    for (i = n; i > 1; i--) { /* shuffled */
      uint64_t j = sw_rand(&rng) % i, tmp = group[i - 1];
      group[i - 1] = group[j];
      group[j] = tmp;
    }
    for (i = 0; i < n; i++) {
      uint64_t seq = group[i];
      /* the ack lags by 0..1500 (the window is 1024) */
      if (seq > 1500 && sw_rand(&rng) % 4 == 0) {
        uint64_t a = seq - sw_rand(&rng) % 1500;
        ack = a > ack ? a : ack;
      }
      sw_write(t, seq, ack);
      if (seq > 3 && sw_rand(&rng) % 3 == 0) { /* a retry */
        uint64_t back = sw_rand(&rng) % (seq < 1200 ? seq - 1 : 1200);
        sw_write(t, seq - 1 - back, ack);
      }
    }
  }
  assert_true(sw_floor > 1000); /* the window did move */
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(seed_order_words, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_order_numeric_strings, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(seed_order_padded, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_mixed_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_range_start, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_range_end, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_range_start_end, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_range_no_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_pagination, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_reverse, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_hierarchical, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_date_range, setup, teardown),
        cmocka_unit_test_setup_teardown(seed_get_many_and_delete, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(list_prefix_excludes_itself, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(list_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(list_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(list_bad_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(atomic_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(session_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(session_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
