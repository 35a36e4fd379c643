/* Every method and option of the seed through libtuplekv, against a real
 * three-node cluster: set/get/getMany/delete, list with every selector and
 * option (the seed's own examples), TTL, atomic batches, transactions,
 * eventual reads, the async API, administration, and the error messages. */
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "testutil.h"

static struct tkv_tc cl;
static struct tkv_client *c;

static int setup(void **state)
{
    (void)state;
    if (tkv_test_cluster_start(&cl, 3, TKV_TEST_PORT) != 0) {
        return -1;
    }
    c = tkv_test_client(cl.endpoints, 10000);
    return c != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tkv_close(c);
    return tkv_tc_destroy(&cl);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* set a key to a JSON text value */
static uint64_t put(const json_t *key, const char *value)
{
    struct tkv_err err;
    uint64_t v = 0;
    json_t *val = json_loads(value, JSON_DECODE_ANY, NULL);
    assert_non_null(val);
    TKV_OK(tkv_set(c, key, val, 0, NULL, &v, &err), &err);
    json_decref(val);
    return v;
}

/* Keys of a page as one JSON array, for comparisons. */
static json_t *page_keys(const struct tkv_page *p)
{
    json_t *a = json_array();
    size_t i;
    for (i = 0; i < p->n; i++) {
        json_array_append(a, p->items[i].key);
    }
    return a;
}

static void expect_list(const struct tkv_selector *sel,
                        const struct tkv_list_opts *lo,
                        const char *keys,
                        uint64_t total,
                        int more)
{
    struct tkv_page *p = NULL;
    struct tkv_err err;
    json_t *got;
    TKV_OK(tkv_list(c, sel, lo, NULL, &p, &err), &err);
    got = page_keys(p);
    assert_json_text(got, keys);
    json_decref(got);
    assert_int_equal(p->total, total);
    if (more) {
        assert_non_null(p->cursor);
    } else {
        assert_null(p->cursor);
    }
    tkv_page_free(p);
}

/* ------------------------------------------------------------------ */

static void test_set_get_delete(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *key = K("[ss]", "notes", "1");
    const char *values[] = {
        "{\"title\":\"My first note\",\"content\":\"Hello world!\"}",
        "[1,2.5,\"x\",true,null,{\"a\":[]}]",
        "\"a string\"",
        "42",
        "-1.25",
        "true",
        "null",
    };
    uint64_t last = 0;
    size_t i;
    (void)state;

    for (i = 0; i < sizeof values / sizeof values[0]; i++) {
        uint64_t v = put(key, values[i]);
        char hex[17];
        assert_true(v > last); /* versions grow with commit order */
        last = v;
        TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
        assert_non_null(it);
        assert_json_eq(it->key, key);
        assert_json_text(it->value, values[i]);
        assert_int_equal(it->version, v);
        tkv_version_str(v, hex);
        assert_int_equal(strlen(hex), 16);
        tkv_item_free(it);
    }
    /* absent = NULL entry, not an error */
    TKV_OK(tkv_delete(c, key, NULL, &err), &err);
    TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
    assert_null(it);
    /* deleting a missing key is not an error */
    TKV_OK(tkv_delete(c, key, NULL, &err), &err);
    json_decref(key);
}

static void test_key_parts(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *key = json_pack("[sifb]", "items", 42, 2.5, 1);
    json_t *one = json_pack("[s]", "settings");
    (void)state;
    put(key, "1");
    put(one, "{\"theme\":\"dark\"}");
    TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
    assert_non_null(it);
    assert_json_text(it->key, "[\"items\",42,2.5,true]");
    tkv_item_free(it);
    TKV_OK(tkv_get(c, one, NULL, &it, &err), &err);
    assert_json_text(it->value, "{\"theme\":\"dark\"}");
    tkv_item_free(it);
    json_decref(key);
    json_decref(one);
}

static void test_get_many(void **state)
{
    struct tkv_err err;
    struct tkv_item **items = NULL;
    size_t n = 0;
    json_t *keys;
    json_t *big;
    size_t i;
    (void)state;

    keys = json_pack("[[ss][ss][ss]]", "gm", "note-001", "gm", "note-999", "gm",
                     "note-002");
    put(json_array_get(keys, 0), "{\"title\":\"First note\"}");
    put(json_array_get(keys, 2), "{\"title\":\"Second note\"}");
    TKV_OK(tkv_get_many(c, keys, NULL, &items, &n, &err), &err);
    assert_int_equal(n, 3);
    assert_non_null(items[0]);
    assert_null(items[1]);
    assert_non_null(items[2]);
    assert_json_text(items[0]->value, "{\"title\":\"First note\"}");
    assert_json_text(items[2]->value, "{\"title\":\"Second note\"}");
    assert_json_eq(items[2]->key, json_array_get(keys, 2));
    tkv_items_free(items, n);
    json_decref(keys);

    /* 0 and 1001 keys are refused before sending */
    keys = json_array();
    TKV_FAILS(tkv_get_many(c, keys, NULL, &items, &n, &err), &err, TKV_EINVALID,
              "1 to 1000 keys");
    big = json_pack("[s]", "k");
    for (i = 0; i < 1001; i++) {
        json_array_append(keys, big);
    }
    TKV_FAILS(tkv_get_many(c, keys, NULL, &items, &n, &err), &err, TKV_EINVALID,
              "1 to 1000 keys");
    /* exactly 1000 is fine */
    json_array_remove(keys, 0);
    TKV_OK(tkv_get_many(c, keys, NULL, &items, &n, &err), &err);
    assert_int_equal(n, 1000);
    tkv_items_free(items, n);
    json_decref(big);
    json_decref(keys);

    keys = json_pack("[[s]i]", "ok", 5);
    TKV_FAILS(tkv_get_many(c, keys, NULL, &items, &n, &err), &err, TKV_EINVALID,
              "keys[1]");
    json_decref(keys);
}

static void test_list_order(void **state)
{
    struct tkv_selector sel = {0};
    json_t *k;
    const char *ids[] = {"banana", "b", "apple", "a"};
    const char *items[] = {"9", "2", "10", "1"};
    size_t i;
    (void)state;

    for (i = 0; i < 4; i++) {
        k = K("[ss]", "lo-notes", ids[i]);
        put(k, "{}");
        json_decref(k);
        k = K("[ss]", "lo-items", items[i]);
        put(k, "{}");
        json_decref(k);
    }
    sel.prefix = k = K("[s]", "lo-notes");
    expect_list(&sel, NULL,
                "[[\"lo-notes\",\"a\"],[\"lo-notes\",\"apple\"],"
                "[\"lo-notes\",\"b\"],[\"lo-notes\",\"banana\"]]",
                4, 0);
    json_decref(k);
    /* numbers in strings compare as strings */
    sel.prefix = k = K("[s]", "lo-items");
    expect_list(&sel, NULL,
                "[[\"lo-items\",\"1\"],[\"lo-items\",\"10\"],"
                "[\"lo-items\",\"2\"],[\"lo-items\",\"9\"]]",
                4, 0);
    json_decref(k);
}

static void test_list_ranges(void **state)
{
    struct tkv_selector sel = {0};
    json_t *p = K("[s]", "rq");
    json_t *s2 = K("[ss]", "rq", "note-002");
    json_t *e3 = K("[ss]", "rq", "note-003");
    json_t *e4 = K("[ss]", "rq", "note-004");
    json_t *sa = K("[ss]", "rq", "a");
    json_t *en = K("[ss]", "rq", "n");
    json_t *k;
    int i;
    (void)state;

    for (i = 1; i <= 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "note-%03d", i);
        k = K("[ss]", "rq", id);
        put(k, "{\"title\":\"x\"}");
        json_decref(k);
    }
    /* the prefix key itself is not part of its listing */
    put(p, "\"self\"");

    /* Example 1: prefix + start */
    sel.prefix = p;
    sel.start = s2;
    expect_list(&sel, NULL,
                "[[\"rq\",\"note-002\"],[\"rq\",\"note-003\"],"
                "[\"rq\",\"note-004\"]]",
                3, 0);
    /* Example 2: prefix + end */
    sel.start = NULL;
    sel.end = e3;
    expect_list(&sel, NULL, "[[\"rq\",\"note-001\"],[\"rq\",\"note-002\"]]", 2,
                0);
    /* Example 3: prefix + start + end */
    sel.start = s2;
    sel.end = e4;
    expect_list(&sel, NULL, "[[\"rq\",\"note-002\"],[\"rq\",\"note-003\"]]", 2,
                0);
    /* Example 4: start + end without prefix; IDs from a through m, so
     * "note-..." (after "n") is out */
    sel.prefix = NULL;
    sel.start = sa;
    sel.end = en;
    expect_list(&sel, NULL, "[]", 0, 0);
    k = K("[ss]", "rq", "mango");
    put(k, "1");
    json_decref(k);
    expect_list(&sel, NULL, "[[\"rq\",\"mango\"]]", 1, 0);
    /* with the prefix too, the prefix key itself stays out */
    sel.prefix = p;
    sel.start = NULL;
    sel.end = NULL;
    expect_list(&sel, NULL,
                "[[\"rq\",\"mango\"],[\"rq\",\"note-001\"],"
                "[\"rq\",\"note-002\"],[\"rq\",\"note-003\"],"
                "[\"rq\",\"note-004\"]]",
                5, 0);
    /* start only: to the end of the key space, includes later prefixes */
    json_decref(p);
    json_decref(s2);
    json_decref(e3);
    json_decref(e4);
    json_decref(sa);
    json_decref(en);
}

static void test_list_hierarchy(void **state)
{
    struct tkv_selector sel = {0};
    struct tkv_page *pg = NULL;
    struct tkv_err err;
    json_t *k;
    (void)state;

    k = K("[ssss]", "orgs", "acme", "engineering", "alice");
    put(k, "{\"role\":\"Engineer\"}");
    json_decref(k);
    k = K("[ssss]", "orgs", "acme", "engineering", "bob");
    put(k, "{\"role\":\"Senior Engineer\"}");
    json_decref(k);
    k = K("[ssss]", "orgs", "acme", "sales", "charlie");
    put(k, "{\"role\":\"Sales Rep\"}");
    json_decref(k);
    k = K("[ssss]", "orgs", "other", "sales", "dan");
    put(k, "{\"role\":\"Sales Rep\"}");
    json_decref(k);

    sel.prefix = k = K("[ss]", "orgs", "acme");
    TKV_OK(tkv_list(c, &sel, NULL, NULL, &pg, &err), &err);
    assert_int_equal(pg->n, 3);
    assert_int_equal(pg->total, 3);
    assert_json_text(pg->items[2].value, "{\"role\":\"Sales Rep\"}");
    tkv_page_free(pg);
    json_decref(k);
    sel.prefix = k = K("[sss]", "orgs", "acme", "engineering");
    expect_list(&sel, NULL,
                "[[\"orgs\",\"acme\",\"engineering\",\"alice\"],"
                "[\"orgs\",\"acme\",\"engineering\",\"bob\"]]",
                2, 0);
    json_decref(k);
}

static void test_list_pagination(void **state)
{
    struct tkv_selector sel = {0};
    struct tkv_list_opts lo = {0};
    struct tkv_page *pg = NULL;
    struct tkv_err err;
    json_t *seen = json_array();
    json_t *k;
    char *cursor = NULL;
    int i;
    int pages = 0;
    (void)state;

    for (i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "%03d", i);
        k = K("[ss]", "pg", id);
        put(k, "1");
        json_decref(k);
    }
    sel.prefix = k = K("[s]", "pg");
    lo.limit = 10;
    do {
        size_t j;
        lo.cursor = cursor;
        TKV_OK(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err);
        assert_int_equal(pg->total, 25); /* total ignores cursor and limit */
        assert_true(pg->n <= 10);
        for (j = 0; j < pg->n; j++) {
            json_array_append(seen, pg->items[j].key);
        }
        free(cursor);
        cursor = pg->cursor != NULL ? strdup(pg->cursor) : NULL;
        tkv_page_free(pg);
        pages++;
    } while (cursor != NULL);
    assert_int_equal(pages, 3);
    assert_int_equal(json_array_size(seen), 25);
    assert_json_text(json_array_get(seen, 24), "[\"pg\",\"024\"]");
    json_decref(seen);

    /* reverse, with cursor */
    lo.reverse = 1;
    lo.cursor = NULL;
    lo.limit = 10;
    TKV_OK(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err);
    assert_int_equal(pg->n, 10);
    assert_json_text(pg->items[0].key, "[\"pg\",\"024\"]");
    assert_non_null(pg->cursor);
    cursor = strdup(pg->cursor);
    tkv_page_free(pg);
    lo.cursor = cursor;
    TKV_OK(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err);
    assert_json_text(pg->items[0].key, "[\"pg\",\"014\"]");
    tkv_page_free(pg);

    /* a cursor from a reverse listing does not fit a forward one */
    lo.reverse = 0;
    TKV_FAILS(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err, TKV_EBAD_CURSOR,
              "");
    free(cursor);
    /* garbage cursor */
    lo.cursor = "not-a-cursor!!";
    TKV_FAILS(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err, TKV_EBAD_CURSOR,
              "");
    lo.cursor = "";
    TKV_FAILS(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err, TKV_EBAD_CURSOR,
              "invalid cursor");
    lo.cursor = NULL;

    /* limits: default 100, 1..1000 */
    lo.limit = 1001;
    TKV_FAILS(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err, TKV_EINVALID,
              "limit must be between 1 and 1000");
    lo.limit = 1;
    TKV_OK(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err);
    assert_int_equal(pg->n, 1);
    tkv_page_free(pg);
    json_decref(k);

    /* selector errors */
    memset(&sel, 0, sizeof sel);
    TKV_FAILS(tkv_list(c, &sel, NULL, NULL, &pg, &err), &err, TKV_EINVALID,
              "prefix, start or end");
    sel.start = k = json_array();
    TKV_FAILS(tkv_list(c, &sel, NULL, NULL, &pg, &err), &err, TKV_EINVALID,
              "start:");
    json_decref(k);
    /* prefix [] selects every key */
    memset(&sel, 0, sizeof sel);
    sel.prefix = k = json_array();
    lo.limit = 1;
    TKV_OK(tkv_list(c, &sel, &lo, NULL, &pg, &err), &err);
    assert_true(pg->total >= 25);
    tkv_page_free(pg);
    json_decref(k);
}

static void test_ttl(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    struct tkv_selector sel = {0};
    struct tkv_page *pg = NULL;
    json_t *key = K("[sss]", "cache", "weather", "london");
    json_t *keep = K("[sss]", "cache", "weather", "paris");
    json_t *val = json_pack("{sf}", "temp", 12.5);
    int i;
    (void)state;

    TKV_OK(tkv_set(c, key, val, 1, NULL, NULL, &err), &err);
    TKV_OK(tkv_set(c, keep, val, 0, NULL, NULL, &err), &err);
    TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
    assert_non_null(it);
    tkv_item_free(it);
    /* gone within a few ticks of the leader clock after one second */
    for (i = 0; i < 60; i++) {
        TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
        if (it == NULL) {
            break;
        }
        tkv_item_free(it);
        sleep_ms(100);
    }
    assert_null(it);
    assert_true(i >= 5); /* not before ~1 s */
    sel.prefix = json_pack("[ss]", "cache", "weather");
    TKV_OK(tkv_list(c, &sel, NULL, NULL, &pg, &err), &err);
    assert_int_equal(pg->total, 1); /* total counts live keys only */
    tkv_page_free(pg);
    json_decref((json_t *)sel.prefix);

    /* fractional ttl; bad ttls refused */
    TKV_OK(tkv_set(c, key, val, 0.5, NULL, NULL, &err), &err);
    TKV_FAILS(tkv_set(c, key, val, -1, NULL, NULL, &err), &err, TKV_EINVALID,
              "ttlInSeconds must be a positive number");
    TKV_FAILS(tkv_set(c, key, val, NAN, NULL, NULL, &err), &err, TKV_EINVALID,
              "ttlInSeconds");
    TKV_FAILS(tkv_set(c, key, val, INFINITY, NULL, NULL, &err), &err,
              TKV_EINVALID, "ttlInSeconds");
    json_decref(key);
    json_decref(keep);
    json_decref(val);
}

static void test_value_limits(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *key = K("[ss]", "data", "large-item");
    size_t n;
    char *s;
    json_t *v;
    char expect[128];
    (void)state;

    /* exactly 1 MB of JSON (a string of n chars serializes to n + 2) */
    n = 1024 * 1024 - 2;
    s = malloc(n + 2);
    memset(s, 'x', n + 1);
    s[n + 1] = '\0';
    v = json_stringn(s, n);
    TKV_OK(tkv_set(c, key, v, 0, NULL, NULL, &err), &err);
    TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
    assert_int_equal(json_string_length(it->value), n);
    tkv_item_free(it);
    json_decref(v);
    /* one byte more: the seed's message, with the real size */
    v = json_stringn(s, n + 1);
    snprintf(expect, sizeof expect,
             "Value size (%.2f KB) exceeds the maximum allowed size of 1 MB "
             "(1024 KB)",
             (double)(n + 3) / 1024.0);
    TKV_FAILS(tkv_set(c, key, v, 0, NULL, NULL, &err), &err, TKV_ETOO_LARGE,
              expect);
    assert_string_equal(err.msg, expect);
    json_decref(v);
    free(s);

    /* 1234.56 KB as in the seed */
    n = 1264189; /* + 2 quotes = 1264191 bytes = 1234.56 KB */
    s = malloc(n);
    memset(s, 'y', n);
    v = json_stringn(s, n);
    TKV_FAILS(tkv_set(c, key, v, 0, NULL, NULL, &err), &err, TKV_ETOO_LARGE,
              "Value size (1234.56 KB) exceeds the maximum allowed size of 1 "
              "MB (1024 KB)");
    json_decref(v);
    free(s);

    /* not JSON: invalid UTF-8 smuggled past jansson's checks */
    v = json_stringn_nocheck("\xff\xfe", 2);
    TKV_FAILS(tkv_set(c, key, v, 0, NULL, NULL, &err), &err, TKV_ENOT_JSON,
              "Value is not JSON serializable: ");
    json_decref(v);
    TKV_FAILS(tkv_set(c, key, NULL, 0, NULL, NULL, &err), &err, TKV_EINVALID,
              "value is NULL");
    json_decref(key);
}

static void test_key_errors(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *v = json_true();
    json_t *k;
    char *big;
    (void)state;

    k = json_array();
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_EINVALID, "");
    TKV_FAILS(tkv_get(c, k, NULL, &it, &err), &err, TKV_EINVALID, "");
    json_decref(k);
    k = json_pack("[so]", "a", json_object());
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_EINVALID,
              "part");
    json_decref(k);
    k = json_pack("[sn]", "a");
    TKV_FAILS(tkv_get(c, k, NULL, &it, &err), &err, TKV_EINVALID, "part");
    json_decref(k);
    k = json_string("notes");
    TKV_FAILS(tkv_delete(c, k, NULL, &err), &err, TKV_EINVALID, "");
    json_decref(k);
    TKV_FAILS(tkv_get(c, NULL, NULL, &it, &err), &err, TKV_EINVALID,
              "key is NULL");
    big = malloc(3001);
    memset(big, 'k', 3000);
    big[3000] = '\0';
    k = json_pack("[s]", big);
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_ETOO_LARGE, "");
    json_decref(k);
    free(big);
    json_decref(v);
}

static void test_atomic(void **state)
{
    struct tkv_err err;
    struct tkv_atomic *a;
    struct tkv_item *it = NULL;
    json_t *ka = K("[ss]", "at", "a");
    json_t *kb = K("[ss]", "at", "b");
    json_t *conflict = NULL;
    json_t *one = json_integer(1);
    uint64_t va;
    uint64_t v = 0;
    (void)state;

    /* absent check (version 0) + two sets */
    a = tkv_atomic_new();
    TKV_OK(tkv_atomic_check(a, ka, 0, &err), &err);
    TKV_OK(tkv_atomic_set(a, ka, one, 0, &err), &err);
    TKV_OK(tkv_atomic_set(a, kb, one, 60, &err), &err);
    TKV_OK(tkv_atomic_commit(c, a, NULL, &v, &conflict, &err), &err);
    assert_true(v > 0);
    assert_null(conflict);
    /* the same batch again: the absent check fails now */
    TKV_FAILS(tkv_atomic_commit(c, a, NULL, &v, &conflict, &err), &err,
              TKV_ECONFLICT, "");
    assert_json_eq(conflict, ka);
    json_decref(conflict);
    conflict = NULL;
    tkv_atomic_free(a);

    TKV_OK(tkv_get(c, ka, NULL, &it, &err), &err);
    va = it->version;
    tkv_item_free(it);

    /* version check + delete */
    a = tkv_atomic_new();
    TKV_OK(tkv_atomic_check(a, ka, va, &err), &err);
    TKV_OK(tkv_atomic_check(a, kb, 0, &err), &err); /* kb exists: fails */
    TKV_OK(tkv_atomic_delete(a, ka, &err), &err);
    TKV_FAILS(tkv_atomic_commit(c, a, NULL, &v, &conflict, &err), &err,
              TKV_ECONFLICT, "");
    assert_json_eq(conflict, kb);
    json_decref(conflict);
    conflict = NULL;
    tkv_atomic_free(a);
    /* nothing was written */
    TKV_OK(tkv_get(c, ka, NULL, &it, &err), &err);
    assert_non_null(it);
    assert_int_equal(it->version, va);
    tkv_item_free(it);

    a = tkv_atomic_new();
    TKV_OK(tkv_atomic_check(a, ka, va, &err), &err);
    TKV_OK(tkv_atomic_delete(a, ka, &err), &err);
    TKV_OK(tkv_atomic_commit(c, a, NULL, &v, NULL, &err), &err);
    tkv_atomic_free(a);
    TKV_OK(tkv_get(c, ka, NULL, &it, &err), &err);
    assert_null(it);

    /* a batch needs a mutation; bad keys are refused when added */
    a = tkv_atomic_new();
    TKV_OK(tkv_atomic_check(a, ka, 0, &err), &err);
    TKV_FAILS(tkv_atomic_commit(c, a, NULL, &v, NULL, &err), &err, TKV_EINVALID,
              "at least one mutation");
    json_decref(conflict);
    conflict = json_array();
    TKV_FAILS(tkv_atomic_set(a, conflict, one, 0, &err), &err, TKV_EINVALID,
              "");
    json_decref(conflict);
    tkv_atomic_free(a);
    json_decref(ka);
    json_decref(kb);
    json_decref(one);
}

/* ---- transactions ---- */

struct counter_arg {
    const json_t *key;
    json_int_t result;
};

static int incr_fn(struct tkv_txn *tx, void *arg)
{
    struct counter_arg *ca = arg;
    struct tkv_item *it = NULL;
    struct tkv_err err;
    json_int_t n = 0;
    json_t *v;
    int rv = tkv_txn_get(tx, ca->key, &it, &err);
    if (rv != 0) {
        return rv;
    }
    if (it != NULL) {
        n = json_integer_value(json_object_get(it->value, "count"));
        tkv_item_free(it);
    }
    v = json_pack("{sI}", "count", n + 1);
    rv = tkv_txn_set(tx, ca->key, v, 0, &err);
    json_decref(v);
    ca->result = n + 1;
    return rv;
}

static int own_writes_fn(struct tkv_txn *tx, void *arg)
{
    struct tkv_item *it = NULL;
    struct tkv_item **items = NULL;
    size_t n = 0;
    struct tkv_err err;
    json_t *k1 = K("[ss]", "ow", "1");
    json_t *k2 = K("[ss]", "ow", "2");
    json_t *keys = json_pack("[OO]", k1, k2);
    json_t *v = json_string("mine");
    (void)arg;

    assert_int_equal(tkv_txn_set(tx, k1, v, 0, &err), 0);
    assert_int_equal(tkv_txn_get(tx, k1, &it, &err), 0);
    assert_non_null(it);
    assert_json_eq(it->value, v);
    tkv_item_free(it);
    assert_int_equal(tkv_txn_delete(tx, k2, &err), 0);
    assert_int_equal(tkv_txn_get_many(tx, keys, &items, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_non_null(items[0]);
    assert_null(items[1]); /* deleted in this transaction */
    tkv_items_free(items, n);
    json_decref(k1);
    json_decref(k2);
    json_decref(keys);
    json_decref(v);
    return 0;
}

static int abort_fn(struct tkv_txn *tx, void *arg)
{
    struct tkv_err err;
    json_t *k = K("[s]", "aborted");
    json_t *v = json_true();
    tkv_txn_set(tx, k, v, 0, &err);
    json_decref(k);
    json_decref(v);
    return *(int *)arg;
}

/* Changes the key behind the transaction's back on its first run. */
static int conflict_fn(struct tkv_txn *tx, void *arg)
{
    struct counter_arg *ca = arg;
    int rv = incr_fn(tx, arg);
    if (rv == 0 && tkv_txn_attempt(tx) == 1) {
        json_t *v = json_pack("{si}", "count", 100);
        struct tkv_err err;
        assert_int_equal(tkv_set(c, ca->key, v, 0, NULL, NULL, &err), 0);
        json_decref(v);
    }
    return rv;
}

static int bad_key_fn(struct tkv_txn *tx, void *arg)
{
    struct tkv_err err;
    json_t *k = json_array();
    json_t *v = json_true();
    (void)arg;
    /* error ignored on purpose: the commit must still refuse */
    tkv_txn_set(tx, k, v, 0, &err);
    json_decref(k);
    json_decref(v);
    return 0;
}

static void test_transactions(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    struct counter_arg ca;
    json_t *k = K("[ss]", "views", "my-article");
    uint64_t v = 0;
    int code;
    int i;
    (void)state;

    ca.key = k;
    for (i = 1; i <= 3; i++) {
        TKV_OK(tkv_transaction(c, incr_fn, &ca, NULL, &v, &err), &err);
        assert_int_equal(ca.result, i);
        assert_true(v > 0);
    }
    TKV_OK(tkv_get(c, k, NULL, &it, &err), &err);
    assert_json_text(it->value, "{\"count\":3}");
    assert_int_equal(it->version, v);
    tkv_item_free(it);

    TKV_OK(tkv_transaction(c, own_writes_fn, NULL, NULL, NULL, &err), &err);

    /* abort: positive -> TKV_EABORTED, negative -> as is; nothing written */
    code = 1;
    TKV_FAILS(tkv_transaction(c, abort_fn, &code, NULL, NULL, &err), &err,
              TKV_EABORTED, "aborted");
    code = TKV_EINVALID;
    TKV_FAILS(tkv_transaction(c, abort_fn, &code, NULL, NULL, &err), &err,
              TKV_EINVALID, "aborted");
    json_decref(k);
    k = K("[s]", "aborted");
    TKV_OK(tkv_get(c, k, NULL, &it, &err), &err);
    assert_null(it);
    json_decref(k);

    /* conflict: the function runs again and sees the other write */
    k = K("[ss]", "views", "conflicted");
    ca.key = k;
    TKV_OK(tkv_transaction(c, conflict_fn, &ca, NULL, NULL, &err), &err);
    assert_int_equal(ca.result, 101);
    json_decref(k);

    TKV_FAILS(tkv_transaction(c, bad_key_fn, NULL, NULL, NULL, &err), &err,
              TKV_EINVALID, "");
}

/* ---- eventual reads ---- */

static void test_eventual(void **state)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    struct tkv_opts o = {0, TKV_EVENTUAL};
    struct tkv_selector sel = {0};
    struct tkv_page *pg = NULL;
    json_t *k = K("[ss]", "ev", "1");
    int i;
    (void)state;

    put(k, "\"seen\"");
    for (i = 0; i < 50; i++) {
        TKV_OK(tkv_get(c, k, &o, &it, &err), &err);
        if (it != NULL) {
            break;
        }
        sleep_ms(20);
    }
    assert_non_null(it);
    assert_json_text(it->value, "\"seen\"");
    tkv_item_free(it);
    sel.prefix = json_pack("[s]", "ev");
    TKV_OK(tkv_list(c, &sel, NULL, &o, &pg, &err), &err);
    tkv_page_free(pg);
    json_decref((json_t *)sel.prefix);
    o.consistency = 7;
    TKV_FAILS(tkv_get(c, k, &o, &it, &err), &err, TKV_EINVALID, "consistency");
    json_decref(k);
}

/* ---- async ---- */

struct async_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int failed;
    int found;
    int sync_refused;
};

static void async_cb(void *arg,
                     int rc,
                     struct tkv_response *res,
                     const struct tkv_err *err)
{
    struct async_state *st = arg;
    pthread_mutex_lock(&st->mu);
    if (rc != 0) {
        st->failed++;
        print_message("async failed: %s\n", err->msg);
    }
    if (res->item != NULL) {
        st->found++;
    }
    st->done++;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static void sync_in_cb(void *arg,
                       int rc,
                       struct tkv_response *res,
                       const struct tkv_err *err)
{
    struct async_state *st = arg;
    struct tkv_item *it = NULL;
    struct tkv_err e;
    json_t *k = K("[s]", "x");
    (void)rc;
    (void)res;
    (void)err;
    if (tkv_get(c, k, NULL, &it, &e) == TKV_EINVALID) {
        st->sync_refused = 1;
    }
    json_decref(k);
    async_cb(arg, 0, res, err);
}

static void wait_done(struct async_state *st, int n)
{
    pthread_mutex_lock(&st->mu);
    while (st->done < n) {
        pthread_cond_wait(&st->cv, &st->mu);
    }
    pthread_mutex_unlock(&st->mu);
}

static void test_async(void **state)
{
    struct async_state st;
    struct tkv_err err;
    json_t *v = json_pack("{ss}", "payload", "0123456789");
    int i;
    const int N = 500;
    (void)state;

    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    pthread_cond_init(&st.cv, NULL);
    for (i = 0; i < N; i++) {
        json_t *k = json_pack("[si]", "async", i);
        TKV_OK(tkv_set_async(c, k, v, 0, NULL, async_cb, &st, &err), &err);
        json_decref(k);
    }
    wait_done(&st, N);
    assert_int_equal(st.failed, 0);
    for (i = 0; i < N; i++) {
        json_t *k = json_pack("[si]", "async", i);
        TKV_OK(tkv_get_async(c, k, NULL, async_cb, &st, &err), &err);
        json_decref(k);
    }
    wait_done(&st, 2 * N);
    assert_int_equal(st.failed, 0);
    assert_int_equal(st.found, N);
    /* a sync call inside a callback is refused, not a deadlock */
    {
        json_t *k = K("[s]", "x");
        TKV_OK(tkv_get_async(c, k, NULL, sync_in_cb, &st, &err), &err);
        json_decref(k);
    }
    wait_done(&st, 2 * N + 1);
    assert_true(st.sync_refused);
    /* invalid input is refused at submit and the callback never runs */
    {
        json_t *k = json_array();
        TKV_FAILS(tkv_set_async(c, k, v, 0, NULL, async_cb, &st, &err), &err,
                  TKV_EINVALID, "");
        TKV_FAILS(tkv_get_async(c, k, NULL, NULL, &st, &err), &err,
                  TKV_EINVALID, "callback");
        json_decref(k);
    }
    json_decref(v);
    pthread_cond_destroy(&st.cv);
    pthread_mutex_destroy(&st.mu);
}

/* ---- administration ---- */

static void test_admin(void **state)
{
    struct tkv_err err;
    struct tkv_member_info *m = NULL;
    struct tkv_node_status *st = NULL;
    size_t n = 0;
    int i;
    int leaders = 0;
    (void)state;

    TKV_OK(tkv_members(c, NULL, &m, &n, &err), &err);
    assert_int_equal(n, 3);
    for (i = 0; i < 3; i++) {
        assert_string_equal(m[i].role, "voter");
    }
    tkv_members_free(m, n);
    for (i = 1; i <= 3; i++) {
        TKV_OK(tkv_node_status(c, cl.nodes[i].client, NULL, &st, &err), &err);
        assert_int_equal(st->node_id, (uint64_t)i);
        leaders += strcmp(st->role, "leader") == 0;
        tkv_node_status_free(st);
    }
    assert_int_equal(leaders, 1);
    TKV_FAILS(tkv_node_status(c, "127.0.0.1:1", NULL, &st, &err), &err,
              TKV_EUNAVAILABLE, "127.0.0.1:1");
    TKV_FAILS(tkv_member_remove(c, 0, NULL, &err), &err, TKV_EINVALID,
              "member id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_delete),
        cmocka_unit_test(test_key_parts),
        cmocka_unit_test(test_get_many),
        cmocka_unit_test(test_list_order),
        cmocka_unit_test(test_list_ranges),
        cmocka_unit_test(test_list_hierarchy),
        cmocka_unit_test(test_list_pagination),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_value_limits),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_atomic),
        cmocka_unit_test(test_transactions),
        cmocka_unit_test(test_eventual),
        cmocka_unit_test(test_async),
        cmocka_unit_test(test_admin),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, teardown));
}
