/* Tests of jepsen/checker/append.c: a valid history passes (with failed
 * and info transactions); G0, G1a, G1b, G1c, G-single, G2, real-time-only
 * cycles (a stale read that is serializable but not strict, and a
 * G0-realtime), incompatible orders, duplicate elements, garbage reads and
 * internal inconsistency are each flagged, with the ops and, for cycles,
 * the edges and their reasons; malformed histories give "unknown". Then a
 * randomized test: histories generated from an in-memory list store with
 * concurrency, crashes and failures must pass, and each must be flagged
 * once one read is made stale.
 *
 * TKV_SEED=<n> replays the randomized test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hb.h"
#include "jepsen/checker/result.h"

/* A transaction that runs alone: invoke, then ok. Returns the ok index. */
static int64_t txn(struct hb *b, int p, const char *inv, const char *ok)
{
    hb_invoke(b, p, "txn", "%s", inv);
    return hb_ok(b, p, "txn", "%s", ok);
}

/* The edge types of the first cycle anomaly of `type`, e.g. "wr,rw". */
static void edge_types(const json_t *a, char *out, size_t size)
{
    size_t i;
    json_t *step;

    out[0] = '\0';
    json_array_foreach(json_object_get(a, "cycle"), i, step)
    {
        if (i > 0) {
            strncat(out, ",", size - strlen(out) - 1);
        }
        strncat(out, json_string_value(json_object_get(step, "type")),
                size - strlen(out) - 1);
    }
}

static int count_of(const char *s, const char *what)
{
    int n = 0;
    const char *p = s;

    while ((p = strstr(p, what)) != NULL) {
        n++;
        p += strlen(what);
    }
    return n;
}

static void test_valid(void **state)
{
    struct hb b;
    json_t *res;

    hb_init(&b);
    txn(&b, 0, "[[\"append\", \"x\", 1], [\"r\", \"x\", null]]",
        "[[\"append\", \"x\", 1], [\"r\", \"x\", [1]]]");
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 2], [\"append\", \"y\", 1]]");
    hb_invoke(&b, 1, "txn", "[[\"r\", \"x\", null], [\"r\", \"y\", null]]");
    hb_ok(&b, 1, "txn", "[[\"r\", \"x\", [1]], [\"r\", \"y\", null]]");
    hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 2], [\"append\", \"y\", 1]]");
    /* failed: never seen; info: seen (so it happened) and unseen */
    hb_invoke(&b, 2, "txn", "[[\"append\", \"x\", 3]]");
    hb_fail(&b, 2, "txn", "[[\"append\", \"x\", 3]]");
    hb_invoke(&b, 3, "txn", "[[\"append\", \"y\", 2], [\"r\", \"x\", null]]");
    hb_info(&b, 3, "txn", "[[\"append\", \"y\", 2], [\"r\", \"x\", null]]");
    hb_invoke(&b, 4, "txn", "[[\"append\", \"z\", 1]]");
    hb_info(&b, 4, "txn", "[[\"append\", \"z\", 1]]");
    hb_nemesis(&b, "start-partition");
    txn(&b, 1,
        "[[\"r\", \"x\", null], [\"r\", \"y\", null], [\"append\", \"x\", 4],"
        " [\"r\", \"x\", null]]",
        "[[\"r\", \"x\", [1, 2]], [\"r\", \"y\", [1, 2]], [\"append\", \"x\", "
        "4],"
        " [\"r\", \"x\", [1, 2, 4]]]");
    txn(&b, 5, "[[\"r\", \"z\", null], [\"r\", \"x\", null]]",
        "[[\"r\", \"z\", []], [\"r\", \"x\", [1, 2, 4]]]");
    res = hb_check(&b, "append", NULL);
    hb_assert_valid(res);
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(res, "stats"), "txns"), "info")),
        2);
    hb_close(&b);
}

/* Write cycle: x says T1 before T2, y says T2 before T1. */
static void test_g0(void **state)
{
    struct hb b;
    json_t *a;
    char types[64];
    int64_t t1, t2;

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"y\", 1]]");
    hb_invoke(&b, 1, "txn", "[[\"append\", \"x\", 2], [\"append\", \"y\", 2]]");
    t1 =
        hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"y\", 1]]");
    t2 =
        hb_ok(&b, 1, "txn", "[[\"append\", \"x\", 2], [\"append\", \"y\", 2]]");
    txn(&b, 0, "[[\"r\", \"x\", null], [\"r\", \"y\", null]]",
        "[[\"r\", \"x\", [1, 2]], [\"r\", \"y\", [2, 1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G0");
    hb_assert_only(b.res, (const char *const[]){"G0", NULL});
    assert_true(hb_has_op(a, t1));
    assert_true(hb_has_op(a, t2));
    edge_types(a, types, sizeof types);
    assert_string_equal(types, "ww,ww");
    hb_close(&b);
}

/* Aborted read: a failed transaction's append is seen. */
static void test_g1a(void **state)
{
    struct hb b;
    json_t *a;
    int64_t w, r;

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1]]");
    w = hb_fail(&b, 0, "txn", "[[\"append\", \"x\", 1]]");
    r = txn(&b, 1, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G1a");
    hb_assert_only(b.res, (const char *const[]){"G1a", NULL});
    assert_true(hb_has_op(a, w));
    assert_true(hb_has_op(a, r));
    hb_close(&b);
}

/* Intermediate read: T1 appends 1 then 2 to x; T2 sees [1]. */
static void test_g1b(void **state)
{
    struct hb b;
    json_t *a;
    int64_t w, r;

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"x\", 2]]");
    hb_invoke(&b, 1, "txn", "[[\"r\", \"x\", null]]");
    r = hb_ok(&b, 1, "txn", "[[\"r\", \"x\", [1]]]");
    w = hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"x\", 2]]");
    txn(&b, 1, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [1, 2]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G1b");
    assert_true(hb_has_op(a, w));
    assert_true(hb_has_op(a, r));
    /* the same read also closes a wr/rw cycle */
    hb_assert_only(b.res, (const char *const[]){"G1b", "G-single", NULL});
    hb_close(&b);
}

/* Circular information flow: each reads the other's append. */
static void test_g1c(void **state)
{
    struct hb b;
    json_t *a;
    char types[64];

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"r\", \"y\", null]]");
    hb_invoke(&b, 1, "txn", "[[\"append\", \"y\", 1], [\"r\", \"x\", null]]");
    hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"r\", \"y\", [1]]]");
    hb_ok(&b, 1, "txn", "[[\"append\", \"y\", 1], [\"r\", \"x\", [1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G1c");
    hb_assert_only(b.res, (const char *const[]){"G1c", NULL});
    edge_types(a, types, sizeof types);
    assert_string_equal(types, "wr,wr");
    hb_close(&b);
}

/* Read skew: T2 sees T1's x but not its y. */
static void test_g_single(void **state)
{
    struct hb b;
    json_t *a, *step;
    char types[64];
    size_t i;
    int64_t t1, t2;

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"y\", 1]]");
    hb_invoke(&b, 1, "txn", "[[\"r\", \"x\", null], [\"r\", \"y\", null]]");
    t2 = hb_ok(&b, 1, "txn", "[[\"r\", \"x\", [1]], [\"r\", \"y\", []]]");
    t1 =
        hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"y\", 1]]");
    txn(&b, 0, "[[\"r\", \"y\", null]]", "[[\"r\", \"y\", [1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G-single");
    hb_assert_only(b.res, (const char *const[]){"G-single", NULL});
    assert_true(hb_has_op(a, t1));
    assert_true(hb_has_op(a, t2));
    edge_types(a, types, sizeof types);
    assert_int_equal(count_of(types, "rw"), 1);
    assert_int_equal(count_of(types, "wr"), 1);
    /* the reasons: T2 read x's 1 from T1; T2 read y empty, T1 appended 1 */
    json_array_foreach(json_object_get(a, "cycle"), i, step)
    {
        const char *t = json_string_value(json_object_get(step, "type"));
        const char *k = json_string_value(json_object_get(step, "key"));
        if (strcmp(t, "wr") == 0) {
            assert_string_equal(k, "x");
            assert_int_equal(json_integer_value(json_object_get(step, "from")),
                             t1);
        } else {
            assert_string_equal(k, "y");
            assert_true(json_is_null(json_object_get(step, "value")));
            assert_int_equal(json_integer_value(json_object_get(step, "next")),
                             1);
            assert_int_equal(json_integer_value(json_object_get(step, "from")),
                             t2);
        }
    }
    hb_close(&b);
}

/* Write skew: each reads what the other then appends to. */
static void test_g2(void **state)
{
    struct hb b;
    json_t *a;
    char types[64];

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"r\", \"x\", null], [\"append\", \"y\", 1]]");
    hb_invoke(&b, 1, "txn", "[[\"r\", \"y\", null], [\"append\", \"x\", 1]]");
    hb_ok(&b, 0, "txn", "[[\"r\", \"x\", []], [\"append\", \"y\", 1]]");
    hb_ok(&b, 1, "txn", "[[\"r\", \"y\", []], [\"append\", \"x\", 1]]");
    txn(&b, 0, "[[\"r\", \"x\", null], [\"r\", \"y\", null]]",
        "[[\"r\", \"x\", [1]], [\"r\", \"y\", [1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G2");
    hb_assert_only(b.res, (const char *const[]){"G2", NULL});
    edge_types(a, types, sizeof types);
    assert_string_equal(types, "rw,rw");
    hb_close(&b);
}

/* A stale read: T2 starts after T1 committed yet misses its append.
 * Serializable (T2 before T1), not strictly. */
static void test_realtime_stale_read(void **state)
{
    struct hb b;
    json_t *a;
    char types[64];
    int64_t t1, t2;

    hb_init(&b);
    t1 = txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    t2 = txn(&b, 1, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", []]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "G-single-realtime");
    hb_assert_only(b.res, (const char *const[]){"G-single-realtime", NULL});
    assert_true(hb_has_op(a, t1));
    assert_true(hb_has_op(a, t2));
    edge_types(a, types, sizeof types);
    assert_int_equal(count_of(types, "rt"), 1);
    assert_int_equal(count_of(types, "rw"), 1);
    hb_close(&b);

    /* the same with the reader concurrent with the writer: fine */
    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1]]");
    hb_invoke(&b, 1, "txn", "[[\"r\", \"x\", null]]");
    hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 1]]");
    hb_ok(&b, 1, "txn", "[[\"r\", \"x\", []]]");
    hb_assert_valid(hb_check(&b, "append", NULL));
    hb_close(&b);
}

/* Writes ordered against real time, and a stale read deep in a long
 * history: the cycle reported stays short. */
static void test_realtime_other(void **state)
{
    struct hb b;
    json_t *a;
    int i;

    hb_init(&b);
    txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    txn(&b, 1, "[[\"append\", \"x\", 2]]", "[[\"append\", \"x\", 2]]");
    txn(&b, 0, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [2, 1]]]");
    hb_anomaly(hb_check(&b, "append", NULL), "G0-realtime");
    hb_assert_only(b.res, (const char *const[]){"G0-realtime", NULL});
    hb_close(&b);

    hb_init(&b);
    for (i = 1; i <= 200; i++) {
        hb_invoke(&b, i % 3, "txn", "[[\"append\", \"k%d\", %d]]", i % 5, i);
        hb_ok(&b, i % 3, "txn", "[[\"append\", \"k%d\", %d]]", i % 5, i);
    }
    /* k0 holds 5, 10, ..., 200; a read missing 200 after it committed */
    {
        char list[1024] = "";
        for (i = 5; i < 200; i += 5) {
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d",
                     i > 5 ? ", " : "", i);
        }
        hb_invoke(&b, 0, "txn", "[[\"r\", \"k0\", null]]");
        hb_ok(&b, 0, "txn", "[[\"r\", \"k0\", [%s]]]", list);
    }
    a = hb_anomaly(hb_check(&b, "append", NULL), "G-single-realtime");
    assert_true(json_array_size(json_object_get(a, "cycle")) <= 3);
    hb_close(&b);
}

static void test_incompatible_order(void **state)
{
    struct hb b;
    json_t *a;
    int64_t r1, r2;

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"append\", \"x\", 1]]");
    hb_invoke(&b, 1, "txn", "[[\"append\", \"x\", 2]]");
    hb_ok(&b, 0, "txn", "[[\"append\", \"x\", 1]]");
    hb_ok(&b, 1, "txn", "[[\"append\", \"x\", 2]]");
    r1 = txn(&b, 0, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [1, 2]]]");
    r2 = txn(&b, 1, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [2, 1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "incompatible-order");
    hb_assert_only(b.res, (const char *const[]){"incompatible-order", NULL});
    assert_true(hb_has_op(a, r1));
    assert_true(hb_has_op(a, r2));
    hb_close(&b);
}

static void test_duplicate(void **state)
{
    struct hb b;
    json_t *a;

    hb_init(&b);
    txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    txn(&b, 0, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [1, 1]]]");
    a = hb_anomaly(hb_check(&b, "append", NULL), "duplicate-elements");
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(a, "duplicates"), 0)),
        1);
    hb_close(&b);
}

static void test_garbage_and_internal(void **state)
{
    struct hb b;

    hb_init(&b);
    txn(&b, 0, "[[\"r\", \"x\", null]]", "[[\"r\", \"x\", [9]]]");
    hb_assert_only(hb_check(&b, "append", NULL),
                   (const char *const[]){"garbage-read", NULL});
    hb_close(&b);

    /* a txn that does not see its own append */
    hb_init(&b);
    txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    txn(&b, 0, "[[\"append\", \"x\", 2], [\"r\", \"x\", null]]",
        "[[\"append\", \"x\", 2], [\"r\", \"x\", [1]]]");
    hb_assert_anomaly(hb_check(&b, "append", NULL), "internal");
    hb_close(&b);

    /* two reads in one txn that disagree */
    hb_init(&b);
    txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    txn(&b, 0, "[[\"r\", \"x\", null], [\"r\", \"x\", null]]",
        "[[\"r\", \"x\", [1]], [\"r\", \"x\", []]]");
    hb_assert_anomaly(hb_check(&b, "append", NULL), "internal");
    hb_close(&b);
}

static void test_malformed(void **state)
{
    struct hb b;
    json_t *res;

    /* one value appended twice: the analysis needs unique appends */
    hb_init(&b);
    txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    txn(&b, 0, "[[\"append\", \"x\", 1]]", "[[\"append\", \"x\", 1]]");
    res = hb_check(&b, "append", NULL);
    hb_assert_unknown(res);
    assert_non_null(strstr(json_string_value(json_object_get(res, "error")),
                           "already appended"));
    hb_close(&b);

    hb_init(&b);
    txn(&b, 0, "[[\"w\", \"x\", 1]]", "[[\"w\", \"x\", 1]]");
    hb_assert_unknown(hb_check(&b, "append", NULL));
    hb_close(&b);

    hb_init(&b);
    hb_invoke(&b, 0, "txn", "[[\"r\", \"x\", null]]");
    hb_ok(&b, 0, "txn", NULL);
    hb_assert_unknown(hb_check(&b, "append", NULL));
    hb_close(&b);
}

/* ---------- randomized: generated from an in-memory list store ------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static int below(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

enum { NPROC = 5, NKEYS = 4, NTXNS = 300, MAXMOPS = 4 };

struct gtxn {
    int nmops;
    int is_append[MAXMOPS];
    int key[MAXMOPS];
    int value[MAXMOPS];       /* append */
    json_t *read[MAXMOPS];    /* read, once applied: owned */
    int applied, ok, outcome; /* outcome: 'o' ok, 'f' fail, 'i' info */
    int invoke_line, complete_line;
    int process;
};

struct gline {
    int txn;
    int invoke;
    int process;
};

struct gen {
    struct gtxn txns[NTXNS];
    int ntxns;
    struct gline lines[2 * NTXNS];
    int nlines;
};

static void gen_free(struct gen *g)
{
    int i, j;

    for (i = 0; i < g->ntxns; i++) {
        for (j = 0; j < g->txns[i].nmops; j++) {
            json_decref(g->txns[i].read[j]);
        }
    }
}

static void generate(struct gen *g)
{
    json_t *model[NKEYS];
    int pending[NPROC], procid[NPROC];
    int next_value = 1, next_proc = NPROC, done = 0, i;

    memset(g, 0, sizeof *g);
    for (i = 0; i < NKEYS; i++) {
        model[i] = json_array();
    }
    for (i = 0; i < NPROC; i++) {
        pending[i] = -1;
        procid[i] = i;
    }
    while (done < NTXNS) {
        int w = below(NPROC);
        struct gtxn *t;

        if (pending[w] < 0) {
            int j;
            if (g->ntxns == NTXNS) {
                continue;
            }
            t = &g->txns[g->ntxns];
            t->nmops = 1 + below(MAXMOPS);
            for (j = 0; j < t->nmops; j++) {
                t->is_append[j] = below(2);
                t->key[j] = below(NKEYS);
                t->value[j] = next_value++;
            }
            t->process = procid[w];
            t->invoke_line = g->nlines;
            g->lines[g->nlines++] = (struct gline){g->ntxns, 1, procid[w]};
            pending[w] = g->ntxns++;
            continue;
        }
        t = &g->txns[pending[w]];
        if (!t->applied && below(3) != 0) {
            /* the commit point, unless it aborts */
            int j;
            t->applied = 1;
            if (below(10) == 0) {
                t->outcome = 'f';
                continue;
            }
            for (j = 0; j < t->nmops; j++) {
                if (t->is_append[j]) {
                    json_array_append_new(model[t->key[j]],
                                          json_integer(t->value[j]));
                } else {
                    t->read[j] = json_copy(model[t->key[j]]);
                }
            }
            t->outcome = 'o';
            continue;
        }
        if (!t->applied && below(8) != 0) {
            continue;
        }
        t->complete_line = g->nlines;
        if (!t->applied || below(12) == 0) {
            t->outcome = 'i'; /* crashed, committed or not */
            g->lines[g->nlines++] = (struct gline){pending[w], 0, procid[w]};
            procid[w] = next_proc++;
        } else {
            g->lines[g->nlines++] = (struct gline){pending[w], 0, procid[w]};
        }
        t->ok = t->outcome == 'o';
        pending[w] = -1;
        done++;
    }
    for (i = 0; i < NKEYS; i++) {
        json_decref(model[i]);
    }
}

static json_t *txn_json(const struct gtxn *t, int with_reads)
{
    json_t *v = json_array();
    int j;

    for (j = 0; j < t->nmops; j++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", t->key[j]);
        if (t->is_append[j]) {
            json_array_append_new(
                v, json_pack("[s,s,i]", "append", key, t->value[j]));
        } else {
            json_array_append_new(
                v, json_pack("[s,s,O]", "r", key,
                             with_reads && t->read[j] != NULL ? t->read[j]
                                                              : json_null()));
        }
    }
    return v;
}

static void render(const struct gen *g, struct hb *b)
{
    int i;

    for (i = 0; i < g->nlines; i++) {
        const struct gline *l = &g->lines[i];
        const struct gtxn *t = &g->txns[l->txn];
        int ok = !l->invoke && t->ok;
        json_t *v = txn_json(t, ok);
        char *s = json_dumps(v, JSON_COMPACT);

        if (l->invoke) {
            hb_invoke(b, l->process, "txn", "%s", s);
        } else if (ok) {
            hb_ok(b, l->process, "txn", "%s", s);
        } else if (t->outcome == 'f') {
            hb_fail(b, l->process, "txn", "%s", s);
        } else {
            hb_info(b, l->process, "txn", "%s", s);
        }
        free(s);
        json_decref(v);
    }
}

/* Make one read stale: an ok read of k that holds an element appended by
 * an ok transaction W that completed before the reader was invoked loses
 * that element and everything after it. W's append then has an rw edge
 * from the reader, and W -> reader is real time: a cycle, whatever else
 * the history holds. */
static int mutate(struct gen *g)
{
    int tries;

    for (tries = 0; tries < 1000; tries++) {
        struct gtxn *t = &g->txns[below(g->ntxns)];
        int j = t->nmops > 0 ? below(t->nmops) : 0;
        size_t i;
        json_t *e;

        if (!t->ok || t->is_append[j] || t->read[j] == NULL) {
            continue;
        }
        json_array_foreach(t->read[j], i, e)
        {
            int v = (int)json_integer_value(e);
            int w;
            for (w = 0; w < g->ntxns; w++) {
                const struct gtxn *wt = &g->txns[w];
                int m;
                if (!wt->ok || wt == t || wt->complete_line > t->invoke_line) {
                    continue;
                }
                for (m = 0; m < wt->nmops; m++) {
                    if (wt->is_append[m] && wt->value[m] == v) {
                        json_t *cut = json_array();
                        size_t x;
                        for (x = 0; x < i; x++) {
                            json_array_append(cut,
                                              json_array_get(t->read[j], x));
                        }
                        json_decref(t->read[j]);
                        t->read[j] = cut;
                        return 1;
                    }
                }
            }
        }
    }
    return 0;
}

static void test_random(void **state)
{
    const char *env = getenv("TKV_SEED");
    uint64_t seed =
        env != NULL ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    struct gen *g = malloc(sizeof *g);
    int round, mutated = 0;

    assert_non_null(g);
    print_message("append random: TKV_SEED=%llu\n", (unsigned long long)seed);
    rng_state = seed;
    for (round = 0; round < 40; round++) {
        struct hb b;

        generate(g);
        hb_init(&b);
        render(g, &b);
        hb_assert_valid(hb_check(&b, "append", NULL));
        hb_close(&b);

        if (mutate(g)) {
            json_t *res;
            mutated++;
            hb_init(&b);
            render(g, &b);
            res = hb_check(&b, "append", NULL);
            if (tkv_result_verdict(res) != 0) {
                print_message("round %d: stale read not flagged\n", round);
            }
            assert_int_equal(json_is_false(json_object_get(res, "valid")), 1);
            hb_close(&b);
        }
        gen_free(g);
    }
    assert_true(mutated > 20);
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_g0),
        cmocka_unit_test(test_g1a),
        cmocka_unit_test(test_g1b),
        cmocka_unit_test(test_g1c),
        cmocka_unit_test(test_g_single),
        cmocka_unit_test(test_g2),
        cmocka_unit_test(test_realtime_stale_read),
        cmocka_unit_test(test_realtime_other),
        cmocka_unit_test(test_incompatible_order),
        cmocka_unit_test(test_duplicate),
        cmocka_unit_test(test_garbage_and_internal),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
