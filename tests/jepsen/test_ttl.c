/* Tests of jepsen/checker/ttl.c: a valid history passes; a read after
 * expiry (directly, after an overwrite, with the apply time only bounded)
 * is flagged; a key found that no set explains is flagged; a key that
 * vanishes early is flagged on the state machine clock always and on the
 * wall clock only without clock faults; sm time going backwards is
 * flagged; an info set that may apply late keeps a read valid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hb.h"

#define MS 1000000LL

static int64_t set_at(struct hb *b, int p, const char *k, int ttl, int sm)
{
    hb_invoke(b, p, "set", "{\"k\": \"%s\", \"ttl_ms\": %d}", k, ttl);
    return hb_ok(b, p, "set",
                 "{\"k\": \"%s\", \"ttl_ms\": %d, \"sm_time\": %d}", k, ttl,
                 sm);
}

static int64_t read_at(struct hb *b, int p, const char *k, int found, int sm)
{
    hb_invoke(b, p, "read", "{\"k\": \"%s\"}", k);
    return hb_ok(b, p, "read",
                 "{\"k\": \"%s\", \"found\": %s, \"sm_time\": %d}", k,
                 found ? "true" : "false", sm);
}

static void test_valid(void **state)
{
    struct hb b;
    json_t *res;

    hb_init(&b);
    read_at(&b, 0, "a", 0, 900);
    set_at(&b, 0, "a", 1000, 1000);
    read_at(&b, 1, "a", 1, 1500);
    read_at(&b, 1, "a", 1, 1999); /* expires at 2000 */
    read_at(&b, 1, "a", 0, 2000);
    set_at(&b, 0, "b", 0, 2100); /* no TTL */
    read_at(&b, 1, "b", 1, 900000);
    set_at(&b, 0, "a", 5000, 900100); /* set again */
    read_at(&b, 1, "a", 1, 900200);
    res = hb_check(&b, "ttl", NULL);
    hb_assert_valid(res);
    hb_close(&b);
}

static void test_read_after_expiry(void **state)
{
    struct hb b;
    json_t *a;
    int64_t s, r;

    hb_init(&b);
    s = set_at(&b, 0, "a", 1000, 1000);
    r = read_at(&b, 1, "a", 1, 2500);
    a = hb_anomaly(hb_check(&b, "ttl", NULL), "read-after-expiry");
    assert_true(hb_has_op(a, s));
    assert_true(hb_has_op(a, r));
    assert_int_equal(json_integer_value(json_object_get(a, "expires_at_max")),
                     2000);
    hb_assert_only(b.res, (const char *const[]){"read-after-expiry", NULL});
    hb_close(&b);
}

/* A long TTL overwritten by a short one: the short one rules. */
static void test_read_after_expiry_overwritten(void **state)
{
    struct hb b;

    hb_init(&b);
    set_at(&b, 0, "a", 100000, 1000);
    set_at(&b, 0, "a", 500, 2000);
    read_at(&b, 1, "a", 1, 2400);
    hb_assert_valid(hb_check(&b, "ttl", NULL));
    read_at(&b, 1, "a", 1, 3000);
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"read-after-expiry", NULL});
    hb_close(&b);
}

/* No sm_time in the set's reply: its apply time is bounded by the reads
 * around it. */
static void test_read_after_expiry_bounded(void **state)
{
    struct hb b;

    hb_init(&b);
    read_at(&b, 1, "x", 0, 1000);
    hb_invoke(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 500}");
    hb_ok(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 500}");
    read_at(&b, 1, "a", 1, 1200); /* so the set applied in [1000, 1200] */
    read_at(&b, 1, "a", 1, 1650); /* fine if it applied after 1150 */
    hb_assert_valid(hb_check(&b, "ttl", NULL));
    read_at(&b, 1, "a", 1, 1800); /* expired whenever it applied */
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"read-after-expiry", NULL});
    hb_close(&b);
}

/* An info set may apply at any time after its invoke, or never. */
static void test_info_set_late(void **state)
{
    struct hb b;

    hb_init(&b);
    read_at(&b, 1, "x", 0, 1000);
    hb_invoke(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 500}");
    hb_info(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 500}");
    read_at(&b, 1, "a", 0, 1100);
    read_at(&b, 1, "a", 1, 5000);
    read_at(&b, 1, "a", 0, 9000);
    hb_assert_valid(hb_check(&b, "ttl", NULL));
    hb_close(&b);
}

static void test_unexpected_found(void **state)
{
    struct hb b;

    hb_init(&b);
    set_at(&b, 0, "a", 1000, 1000);
    read_at(&b, 1, "b", 1, 1100);
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"unexpected-found", NULL});
    hb_close(&b);
}

/* Gone at sm time 3000 though it lives until 11000: a state machine bug,
 * flagged whatever the clocks did. */
static void test_vanish_early_sm(void **state)
{
    struct hb b;
    json_t *a;

    hb_init(&b);
    set_at(&b, 0, "a", 10000, 1000);
    hb_nemesis(&b, "bump-clock");
    read_at(&b, 1, "a", 0, 3000);
    a = hb_anomaly(hb_check(&b, "ttl", NULL), "vanish-early");
    assert_string_equal(json_string_value(json_object_get(a, "basis")),
                        "sm_time");
    hb_assert_only(b.res, (const char *const[]){"vanish-early", NULL});
    hb_close(&b);
}

/* ... unless another set may have replaced it with a short TTL. */
static void test_vanish_explained(void **state)
{
    struct hb b;

    hb_init(&b);
    set_at(&b, 0, "a", 10000, 1000);
    hb_invoke(&b, 2, "set", "{\"k\": \"a\", \"ttl_ms\": 100}");
    hb_info(&b, 2, "set", "{\"k\": \"a\", \"ttl_ms\": 100}");
    read_at(&b, 1, "a", 0, 3000);
    hb_assert_valid(hb_check(&b, "ttl", NULL));
    hb_close(&b);
}

/* No sm_time at all: the wall clock rule, with a tick of slack. */
static struct hb *wall(struct hb *b, int64_t read_at_ms, const char *clock)
{
    hb_init(b);
    b->time = 0;
    hb_extra(b, "\"nemesis_clock\": false");
    hb_invoke(b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 10000}");
    hb_extra(b, "\"nemesis_clock\": false");
    hb_ok(b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 10000}");
    b->time = read_at_ms * MS;
    if (clock != NULL) {
        hb_extra(b, "%s", clock);
    }
    hb_invoke(b, 1, "read", "{\"k\": \"a\"}");
    if (clock != NULL) {
        hb_extra(b, "%s", clock);
    }
    hb_ok(b, 1, "read", "{\"k\": \"a\", \"found\": false}");
    return b;
}

static void test_vanish_early_wall(void **state)
{
    struct hb b;
    json_t *a;

    a = hb_anomaly(
        hb_check(wall(&b, 2000, "\"nemesis_clock\": false"), "ttl", NULL),
        "vanish-early");
    assert_string_equal(json_string_value(json_object_get(a, "basis")),
                        "real_time");
    hb_close(&b);

    /* within a tick of the expiry: fine; just outside: flagged */
    hb_assert_valid(
        hb_check(wall(&b, 9600, "\"nemesis_clock\": false"), "ttl", NULL));
    hb_close(&b);
    hb_assert_anomaly(
        hb_check(wall(&b, 9400, "\"nemesis_clock\": false"), "ttl", NULL),
        "vanish-early");
    hb_close(&b);
    /* a smaller tick makes 9600 early too */
    hb_assert_anomaly(hb_check(wall(&b, 9600, "\"nemesis_clock\": false"),
                               "ttl", "{\"tick_ms\": 100}"),
                      "vanish-early");
    hb_close(&b);

    /* a clock fault, or not knowing, turns the rule off */
    hb_assert_valid(
        hb_check(wall(&b, 2000, "\"nemesis_clock\": true"), "ttl", NULL));
    hb_close(&b);
    hb_assert_valid(hb_check(wall(&b, 2000, NULL), "ttl", NULL));
    hb_close(&b);
    /* a clock nemesis line between the set and the read */
    hb_init(&b);
    hb_extra(&b, "\"nemesis_clock\": false");
    hb_invoke(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 10000}");
    hb_extra(&b, "\"nemesis_clock\": false");
    hb_ok(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 10000}");
    hb_nemesis(&b, "strobe-clock");
    hb_extra(&b, "\"nemesis_clock\": false");
    hb_invoke(&b, 1, "read", "{\"k\": \"a\"}");
    hb_extra(&b, "\"nemesis_clock\": false");
    hb_ok(&b, 1, "read", "{\"k\": \"a\", \"found\": false}");
    hb_assert_valid(hb_check(&b, "ttl", NULL));
    hb_close(&b);
}

static void test_sm_time_regression(void **state)
{
    struct hb b;

    hb_init(&b);
    read_at(&b, 0, "a", 0, 2000);
    read_at(&b, 1, "a", 0, 1500);
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"sm-time-regression", NULL});
    hb_close(&b);
}

/* Bounds instead of exact times: sm_lo/sm_hi on the ops themselves. */
static void test_bounds(void **state)
{
    struct hb b;

    hb_init(&b);
    hb_invoke(&b, 0, "set", "{\"k\": \"a\", \"ttl_ms\": 500}");
    hb_ok(&b, 0, "set",
          "{\"k\": \"a\", \"ttl_ms\": 500, \"sm_time\": null, "
          "\"sm_lo\": 1000, \"sm_hi\": 1100}");
    hb_invoke(&b, 1, "read", "{\"k\": \"a\"}");
    hb_ok(&b, 1, "read",
          "{\"k\": \"a\", \"found\": true, \"sm_lo\": 1550, "
          "\"sm_hi\": 1700}");
    hb_assert_valid(hb_check(&b, "ttl", NULL)); /* maybe served at 1550 */
    hb_invoke(&b, 1, "read", "{\"k\": \"a\"}");
    hb_extra(&b, "\"sm_lo\": 1650, \"sm_hi\": 1700");
    hb_ok(&b, 1, "read", "{\"k\": \"a\", \"found\": true}");
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"read-after-expiry", NULL});
    hb_close(&b);

    /* a long TTL, missing at some time in [3000, 3500] */
    hb_init(&b);
    set_at(&b, 0, "a", 10000, 1000);
    hb_invoke(&b, 1, "read", "{\"k\": \"a\"}");
    hb_ok(&b, 1, "read",
          "{\"k\": \"a\", \"found\": false, \"sm_lo\": 3000, "
          "\"sm_hi\": 3500}");
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"vanish-early", NULL});
    hb_close(&b);
}

/* A read without any time of its own is bounded by its neighbours: it
 * began after a read served at 1600, so it was served at 1600 or later. */
static void test_bounds_from_neighbours(void **state)
{
    struct hb b;

    hb_init(&b);
    set_at(&b, 0, "a", 500, 1000);
    read_at(&b, 1, "b", 0, 1600);
    hb_invoke(&b, 1, "read", "{\"k\": \"a\"}");
    hb_ok(&b, 1, "read", "{\"k\": \"a\", \"found\": true}");
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"read-after-expiry", NULL});
    hb_close(&b);

    /* a time going backwards is flagged even with bounds */
    hb_init(&b);
    read_at(&b, 1, "b", 0, 1600);
    hb_invoke(&b, 1, "read", "{\"k\": \"b\"}");
    hb_ok(&b, 1, "read",
          "{\"k\": \"b\", \"found\": false, \"sm_lo\": 1000, "
          "\"sm_hi\": 1500}");
    hb_assert_only(hb_check(&b, "ttl", NULL),
                   (const char *const[]){"sm-time-regression", NULL});
    hb_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_read_after_expiry),
        cmocka_unit_test(test_read_after_expiry_overwritten),
        cmocka_unit_test(test_read_after_expiry_bounded),
        cmocka_unit_test(test_info_set_late),
        cmocka_unit_test(test_unexpected_found),
        cmocka_unit_test(test_vanish_early_sm),
        cmocka_unit_test(test_vanish_explained),
        cmocka_unit_test(test_vanish_early_wall),
        cmocka_unit_test(test_sm_time_regression),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_bounds_from_neighbours),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
