/* Tests of jepsen/checker/register.c (and wgl.c under it): valid
 * concurrent histories pass; a non-linearizable read, a stale read after a
 * completed write, failed writes that show up, and a bad key among good
 * ones are flagged with a small witness; an info write that takes effect
 * late is fine; a cas chain valid in one order only is found; the search
 * limit gives "unknown"; and a randomized test: histories generated from a
 * real register model with concurrency, crashes and failures must pass,
 * and each must be flagged once one read is changed.
 *
 * TKV_SEED=<n> replays the randomized test; otherwise the seed comes from
 * the clock and is printed. */
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

#define W(b, p, k, v) hb_invoke(b, p, "write", "{\"k\": %d, \"v\": %d}", k, v)
#define WOK(b, p, k, v) hb_ok(b, p, "write", "{\"k\": %d, \"v\": %d}", k, v)
#define R(b, p, k) hb_invoke(b, p, "read", "{\"k\": %d}", k)
#define ROK(b, p, k, v) hb_ok(b, p, "read", "{\"k\": %d, \"v\": %s}", k, v)
#define CAS(b, p, k, e, n) \
    hb_invoke(b, p, "cas", "{\"k\": %d, \"v\": [%d, %d]}", k, e, n)
#define CASOK(b, p, k, e, n) \
    hb_ok(b, p, "cas", "{\"k\": %d, \"v\": [%d, %d]}", k, e, n)

static size_t nops(const json_t *anomaly)
{
    return json_array_size(json_object_get(anomaly, "ops"));
}

static void test_valid(void **state)
{
    struct hb b;

    hb_init(&b);
    R(&b, 0, 1);
    ROK(&b, 0, 1, "null");
    W(&b, 0, 1, 1);
    R(&b, 1, 1);
    W(&b, 2, 1, 2);
    ROK(&b, 1, 1, "2"); /* 2 may land before 1 */
    WOK(&b, 0, 1, 1);
    WOK(&b, 2, 1, 2);
    R(&b, 1, 1);
    ROK(&b, 1, 1, "1"); /* ...and then 1 */
    CAS(&b, 0, 1, 1, 3);
    CASOK(&b, 0, 1, 1, 3);
    CAS(&b, 0, 1, 1, 4);
    hb_fail(&b, 0, "cas", "{\"k\": 1, \"v\": [1, 4]}");
    R(&b, 2, 2);
    hb_info(&b, 2, "read", "{\"k\": 2}");
    R(&b, 1, 1);
    ROK(&b, 1, 1, "3");
    hb_assert_valid(hb_check(&b, "register", NULL));
    hb_close(&b);
}

/* Reads are concurrent with write 2 but not with each other: once one
 * saw 2, a later one cannot see 1. */
static void test_nonlinearizable_read(void **state)
{
    struct hb b;
    json_t *a;
    int64_t r2;

    hb_init(&b);
    W(&b, 0, 1, 1);
    WOK(&b, 0, 1, 1);
    W(&b, 0, 1, 2);
    R(&b, 1, 1);
    ROK(&b, 1, 1, "2");
    R(&b, 2, 1);
    r2 = ROK(&b, 2, 1, "1");
    WOK(&b, 0, 1, 2);
    a = hb_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
    assert_int_equal(json_integer_value(json_object_get(a, "key")), 1);
    assert_int_equal(json_integer_value(json_object_get(a, "op")), r2);
    assert_true(hb_has_op(a, r2));
    assert_true(nops(a) <= 4);
    hb_close(&b);
}

/* Write 1, then write 2, then (later) a read of 1; plenty of noise
 * first. The witness must be just the stale read and what it missed. */
static void test_stale_read(void **state)
{
    struct hb b;
    json_t *a;
    int64_t w2, r;
    int i;

    hb_init(&b);
    for (i = 0; i < 50; i++) {
        W(&b, 0, 1, 100 + i);
        R(&b, 1, 1);
        WOK(&b, 0, 1, 100 + i);
        hb_ok(&b, 1, "read", "{\"k\": 1, \"v\": %d}", 100 + i);
    }
    W(&b, 0, 1, 1);
    WOK(&b, 0, 1, 1);
    W(&b, 0, 1, 2);
    w2 = WOK(&b, 0, 1, 2);
    R(&b, 1, 1);
    r = ROK(&b, 1, 1, "1");
    a = hb_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
    assert_true(hb_has_op(a, r));
    assert_true(hb_has_op(a, w2));
    assert_int_equal(nops(a), 2);
    assert_string_equal(json_string_value(json_object_get(a, "start")),
                        "any value");
    hb_close(&b);
}

/* A read of a value nobody wrote needs the initial state to fail. */
static void test_read_from_nowhere(void **state)
{
    struct hb b;
    json_t *a;

    hb_init(&b);
    R(&b, 0, 1);
    ROK(&b, 0, 1, "7");
    a = hb_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
    assert_string_equal(json_string_value(json_object_get(a, "start")),
                        "initial value");
    hb_close(&b);

    /* with that initial value it is fine */
    hb_init(&b);
    R(&b, 0, 1);
    ROK(&b, 0, 1, "7");
    hb_assert_valid(hb_check(&b, "register", "{\"initial\": 7}"));
    hb_close(&b);
}

/* A write that ended in info may take effect late, or never. */
static void test_info_write_late(void **state)
{
    struct hb b;

    hb_init(&b);
    W(&b, 0, 1, 1);
    WOK(&b, 0, 1, 1);
    W(&b, 1, 1, 2);
    hb_info(&b, 1, "write", "{\"k\": 1, \"v\": 2}");
    R(&b, 0, 1);
    ROK(&b, 0, 1, "1"); /* not yet */
    R(&b, 0, 1);
    ROK(&b, 0, 1, "2"); /* now */
    R(&b, 0, 1);
    ROK(&b, 0, 1, "2");
    hb_assert_valid(hb_check(&b, "register", NULL));
    /* ... but not undone */
    R(&b, 0, 1);
    ROK(&b, 0, 1, "1");
    hb_assert_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
    hb_close(&b);

    /* never taking effect is fine too, as is an info cas that cannot */
    hb_init(&b);
    W(&b, 0, 1, 1);
    WOK(&b, 0, 1, 1);
    W(&b, 1, 1, 2);
    hb_info(&b, 1, "write", "{\"k\": 1, \"v\": 2}");
    CAS(&b, 2, 1, 9, 10);
    hb_info(&b, 2, "cas", "{\"k\": 1, \"v\": [9, 10]}");
    R(&b, 0, 1);
    ROK(&b, 0, 1, "1");
    hb_assert_valid(hb_check(&b, "register", NULL));
    hb_close(&b);
}

/* A failed write did not happen: seeing its value is wrong. */
static void test_failed_write_seen(void **state)
{
    struct hb b;

    hb_init(&b);
    W(&b, 0, 1, 5);
    hb_fail(&b, 0, "write", "{\"k\": 1, \"v\": 5}");
    R(&b, 0, 1);
    ROK(&b, 0, 1, "5");
    hb_assert_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
    hb_close(&b);
}

/* Three concurrent cas invoked in the reverse of the only order that
 * works; the search must find 0->1->2->3. */
static void test_cas_order(void **state)
{
    struct hb b;

    hb_init(&b);
    W(&b, 0, 1, 0);
    WOK(&b, 0, 1, 0);
    CAS(&b, 3, 1, 2, 3);
    CAS(&b, 2, 1, 1, 2);
    CAS(&b, 1, 1, 0, 1);
    CASOK(&b, 3, 1, 2, 3);
    CASOK(&b, 2, 1, 1, 2);
    CASOK(&b, 1, 1, 0, 1);
    R(&b, 0, 1);
    ROK(&b, 0, 1, "3");
    hb_assert_valid(hb_check(&b, "register", NULL));
    hb_close(&b);

    /* the last cas completed first: the chain cannot end before it */
    hb_init(&b);
    W(&b, 0, 1, 0);
    WOK(&b, 0, 1, 0);
    CAS(&b, 3, 1, 2, 3);
    CASOK(&b, 3, 1, 2, 3);
    CAS(&b, 2, 1, 1, 2);
    CAS(&b, 1, 1, 0, 1);
    CASOK(&b, 2, 1, 1, 2);
    CASOK(&b, 1, 1, 0, 1);
    hb_assert_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
    hb_close(&b);
}

/* Keys are independent: the bad one is named. */
static void test_keys(void **state)
{
    struct hb b;
    json_t *res, *a;

    hb_init(&b);
    hb_invoke(&b, 0, "write", "{\"k\": \"good\", \"v\": 1}");
    hb_ok(&b, 0, "write", "{\"k\": \"good\", \"v\": 1}");
    hb_invoke(&b, 0, "write", "{\"k\": [\"bad\", 2], \"v\": 1}");
    hb_ok(&b, 0, "write", "{\"k\": [\"bad\", 2], \"v\": 1}");
    hb_invoke(&b, 1, "read", "{\"k\": \"good\"}");
    hb_ok(&b, 1, "read", "{\"k\": \"good\", \"v\": 1}");
    hb_invoke(&b, 1, "read", "{\"k\": [\"bad\", 2]}");
    hb_ok(&b, 1, "read", "{\"k\": [\"bad\", 2], \"v\": null}");
    res = hb_check(&b, "register", NULL);
    a = hb_anomaly(res, "nonlinearizable");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(a, "key"), 0)), "bad");
    assert_int_equal(
        json_integer_value(json_object_get(
            json_object_get(res, "anomaly_counts"), "nonlinearizable")),
        1);
    hb_close(&b);
}

static void test_limit_unknown(void **state)
{
    struct hb b;
    int i;

    hb_init(&b);
    for (i = 0; i < 8; i++) {
        W(&b, i, 1, i);
    }
    for (i = 0; i < 8; i++) {
        WOK(&b, i, 1, i);
    }
    R(&b, 0, 1);
    ROK(&b, 0, 1, "3");
    hb_assert_valid(hb_check(&b, "register", NULL));
    hb_assert_unknown(hb_check(&b, "register", "{\"max_steps\": 5}"));
    hb_close(&b);
}

static void test_malformed(void **state)
{
    struct hb b;

    hb_init(&b);
    hb_invoke(&b, 0, "cas", "{\"k\": 1, \"v\": 3}");
    hb_ok(&b, 0, "cas", "{\"k\": 1, \"v\": 3}");
    hb_assert_unknown(hb_check(&b, "register", NULL));
    hb_close(&b);

    hb_init(&b);
    hb_invoke(&b, 0, "incr", "{\"k\": 1}");
    hb_assert_unknown(hb_check(&b, "register", NULL));
    hb_close(&b);
}

/* ---------- randomized: generated from a register model ---------- */

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

enum { OP_READ, OP_WRITE, OP_CAS };
enum { NPROC = 5, NKEYS = 3, NOPS = 250 };

/* One line of the generated history. */
struct gline {
    int process;
    const char *type; /* invoke ok fail info */
    int op;           /* index into gops */
};

struct gop {
    int kind, key, a, b;
    int read_value; /* ok read: what it saw; 0 is null */
    int applied;
    int failed; /* cas that found another value */
    int ok;     /* completed ok */
    int invoke_line, complete_line;
};

struct gen {
    struct gline lines[4 * NOPS];
    int nlines;
    struct gop ops[NOPS];
    int nops;
};

static void generate(struct gen *g)
{
    int model[NKEYS] = {0, 0, 0};
    int pending[NPROC];
    int procid[NPROC];
    int next_value = 1, next_proc = NPROC;
    int i, done = 0;

    memset(g, 0, sizeof *g);
    for (i = 0; i < NPROC; i++) {
        pending[i] = -1;
        procid[i] = i;
    }
    while (done < NOPS) {
        int w = below(NPROC);
        int act = below(3);
        struct gop *o;

        if (pending[w] < 0) {
            if (g->nops == NOPS) {
                continue;
            }
            o = &g->ops[g->nops];
            o->kind = below(3);
            o->key = below(NKEYS);
            if (o->kind == OP_WRITE) {
                o->a = next_value++;
            } else if (o->kind == OP_CAS) {
                o->a = below(3) ? model[o->key] : below(next_value);
                o->b = next_value++;
            }
            o->invoke_line = g->nlines;
            g->lines[g->nlines++] =
                (struct gline){procid[w], "invoke", g->nops};
            pending[w] = g->nops++;
            continue;
        }
        o = &g->ops[pending[w]];
        if (!o->applied && act != 2) {
            /* the linearization point */
            o->applied = 1;
            if (o->kind == OP_READ) {
                o->read_value = model[o->key];
            } else if (o->kind == OP_WRITE) {
                model[o->key] = o->a;
            } else if (model[o->key] == o->a) {
                model[o->key] = o->b;
            } else {
                o->failed = 1;
            }
            continue;
        }
        if (!o->applied && below(8) != 0) {
            continue; /* mostly apply before completing */
        }
        /* complete: crash (info) now and then, applied or not */
        o->complete_line = g->nlines;
        if (below(12) == 0 || !o->applied) {
            g->lines[g->nlines++] =
                (struct gline){procid[w], "info", pending[w]};
            procid[w] = next_proc++;
        } else if (o->failed) {
            g->lines[g->nlines++] =
                (struct gline){procid[w], "fail", pending[w]};
        } else {
            o->ok = 1;
            g->lines[g->nlines++] = (struct gline){procid[w], "ok", pending[w]};
        }
        pending[w] = -1;
        done++;
    }
}

static const char *kind_name(int kind)
{
    return kind == OP_READ ? "read" : kind == OP_WRITE ? "write" : "cas";
}

static void render(const struct gen *g, struct hb *b)
{
    int i;

    for (i = 0; i < g->nlines; i++) {
        const struct gline *l = &g->lines[i];
        const struct gop *o = &g->ops[l->op];
        char value[96];
        int completion = strcmp(l->type, "invoke") != 0;

        if (o->kind == OP_READ) {
            if (completion && strcmp(l->type, "ok") == 0) {
                if (o->read_value == 0) {
                    snprintf(value, sizeof value, "{\"k\": %d, \"v\": null}",
                             o->key);
                } else {
                    snprintf(value, sizeof value, "{\"k\": %d, \"v\": %d}",
                             o->key, o->read_value);
                }
            } else {
                snprintf(value, sizeof value, "{\"k\": %d}", o->key);
            }
        } else if (o->kind == OP_WRITE) {
            snprintf(value, sizeof value, "{\"k\": %d, \"v\": %d}", o->key,
                     o->a);
        } else if (o->a == 0) {
            snprintf(value, sizeof value, "{\"k\": %d, \"v\": [null, %d]}",
                     o->key, o->b);
        } else {
            snprintf(value, sizeof value, "{\"k\": %d, \"v\": [%d, %d]}",
                     o->key, o->a, o->b);
        }
        if (strcmp(l->type, "invoke") == 0) {
            hb_invoke(b, l->process, kind_name(o->kind), "%s", value);
        } else if (strcmp(l->type, "ok") == 0) {
            hb_ok(b, l->process, kind_name(o->kind), "%s", value);
        } else if (strcmp(l->type, "fail") == 0) {
            hb_fail(b, l->process, kind_name(o->kind), "%s", value);
        } else {
            hb_info(b, l->process, kind_name(o->kind), "%s", value);
        }
    }
}

/* Make one ok read wrong: a stale value when one exists (a value written
 * by an ok op that was overwritten, in real time, by another ok op that
 * completed before the read began), else a value nobody wrote. Values
 * are unique, so either is surely not linearizable. */
static int mutate(struct gen *g)
{
    int tries, i, j;

    for (tries = 0; tries < 200; tries++) {
        struct gop *r = &g->ops[below(g->nops)];
        if (r->kind != OP_READ || !r->ok) {
            continue;
        }
        for (i = 0; i < g->nops; i++) {
            struct gop *w1 = &g->ops[i];
            int v1 = w1->kind == OP_WRITE ? w1->a : w1->b;
            if (w1->kind == OP_READ || !w1->ok || w1->key != r->key ||
                v1 == r->read_value) {
                continue;
            }
            for (j = 0; j < g->nops; j++) {
                struct gop *w2 = &g->ops[j];
                if (w2->kind != OP_READ && w2->ok && w2->key == r->key &&
                    w1->complete_line < w2->invoke_line &&
                    w2->complete_line < r->invoke_line) {
                    r->read_value = v1;
                    return 1;
                }
            }
        }
    }
    for (i = 0; i < g->nops; i++) {
        if (g->ops[i].kind == OP_READ && g->ops[i].ok) {
            g->ops[i].read_value = 1000000;
            return 0;
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
    int round, stale = 0;

    assert_non_null(g);
    print_message("register random: TKV_SEED=%llu\n", (unsigned long long)seed);
    rng_state = seed;
    for (round = 0; round < 60; round++) {
        struct hb b;
        int oks = 0, i;

        generate(g);
        hb_init(&b);
        render(g, &b);
        hb_assert_valid(hb_check(&b, "register", NULL));
        hb_close(&b);

        for (i = 0; i < g->nops; i++) {
            oks += g->ops[i].kind == OP_READ && g->ops[i].ok;
        }
        if (oks == 0) {
            continue;
        }
        stale += mutate(g);
        hb_init(&b);
        render(g, &b);
        hb_assert_anomaly(hb_check(&b, "register", NULL), "nonlinearizable");
        hb_close(&b);
    }
    assert_true(stale > 20); /* most rounds test the subtle mutation */
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_nonlinearizable_read),
        cmocka_unit_test(test_stale_read),
        cmocka_unit_test(test_read_from_nowhere),
        cmocka_unit_test(test_info_write_late),
        cmocka_unit_test(test_failed_write_seen),
        cmocka_unit_test(test_cas_order),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_limit_unknown),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
