/* Tests of jepsen/checker/bank.c: a valid history passes; a wrong total, a
 * negative balance and an unknown account are each flagged with the read
 * that shows them; options override inference; malformed reads give
 * "unknown". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hb.h"

/* Two processes transfer between accounts 0..2 (total 30) and read. */
static void base(struct hb *b)
{
    hb_invoke(b, 0, "read", NULL);
    hb_ok(b, 0, "read", "{\"0\": 10, \"1\": 10, \"2\": 10}");
    hb_invoke(b, 1, "transfer", "{\"from\": 0, \"to\": 1, \"amount\": 5}");
    hb_invoke(b, 0, "read", NULL);
    hb_ok(b, 0, "read", "{\"0\": 5, \"1\": 15, \"2\": 10}");
    hb_ok(b, 1, "transfer", "{\"from\": 0, \"to\": 1, \"amount\": 5}");
    hb_invoke(b, 1, "transfer", "{\"from\": 2, \"to\": 0, \"amount\": 3}");
    hb_fail(b, 1, "transfer", "{\"from\": 2, \"to\": 0, \"amount\": 3}");
    hb_invoke(b, 1, "transfer", "{\"from\": 1, \"to\": 2, \"amount\": 1}");
    hb_info(b, 1, "transfer", "{\"from\": 1, \"to\": 2, \"amount\": 1}");
    hb_nemesis(b, "start-partition");
}

static void test_valid(void **state)
{
    struct hb b;
    json_t *res;

    hb_init(&b);
    base(&b);
    hb_invoke(&b, 0, "read", NULL);
    hb_ok(&b, 0, "read", "{\"0\": 5, \"1\": 14, \"2\": 11}");
    res = hb_check(&b, "bank", NULL);
    hb_assert_valid(res);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(res, "stats"), "reads")),
                     3);
    /* the same with the total and accounts given */
    res = hb_check(&b, "bank", "{\"total\": 30, \"accounts\": [0, 1, \"2\"]}");
    hb_assert_valid(res);
    hb_close(&b);
}

static void test_wrong_total(void **state)
{
    struct hb b;
    json_t *a;
    int64_t bad;

    hb_init(&b);
    base(&b);
    hb_invoke(&b, 0, "read", NULL);
    bad = hb_ok(&b, 0, "read", "{\"0\": 5, \"1\": 15, \"2\": 11}");
    a = hb_anomaly(hb_check(&b, "bank", NULL), "wrong-total");
    assert_true(hb_has_op(a, bad));
    assert_int_equal(json_integer_value(json_object_get(a, "total")), 31);
    assert_int_equal(json_integer_value(json_object_get(a, "expected")), 30);
    hb_assert_only(b.res, (const char *const[]){"wrong-total", NULL});
    hb_close(&b);
}

/* The total given in the options wins over the first read. */
static void test_wrong_total_option(void **state)
{
    struct hb b;

    hb_init(&b);
    base(&b);
    hb_assert_anomaly(hb_check(&b, "bank", "{\"total\": 100}"), "wrong-total");
    hb_close(&b);
}

static void test_negative(void **state)
{
    struct hb b;
    json_t *a;
    int64_t bad;

    hb_init(&b);
    base(&b);
    hb_invoke(&b, 0, "read", NULL);
    bad = hb_ok(&b, 0, "read", "{\"0\": -2, \"1\": 22, \"2\": 10}");
    a = hb_anomaly(hb_check(&b, "bank", NULL), "negative-balance");
    assert_true(hb_has_op(a, bad));
    assert_string_equal(json_string_value(json_object_get(a, "account")), "0");
    assert_int_equal(json_integer_value(json_object_get(a, "balance")), -2);
    hb_assert_only(b.res, (const char *const[]){"negative-balance", NULL});
    hb_close(&b);
}

static void test_unknown_account(void **state)
{
    struct hb b;
    json_t *a;
    int64_t bad;

    hb_init(&b);
    base(&b);
    hb_invoke(&b, 0, "read", NULL);
    bad = hb_ok(&b, 0, "read", "{\"0\": 5, \"1\": 14, \"2\": 11, \"zz\": 0}");
    a = hb_anomaly(hb_check(&b, "bank", NULL), "unknown-account");
    assert_true(hb_has_op(a, bad));
    assert_string_equal(json_string_value(json_object_get(a, "account")), "zz");
    hb_assert_only(b.res, (const char *const[]){"unknown-account", NULL});
    /* accounts from the options: "2" is now unknown as well */
    hb_assert_anomaly(hb_check(&b, "bank", "{\"accounts\": [0, 1]}"),
                      "unknown-account");
    hb_close(&b);
}

/* Every bad read is reported, not just the first. */
static void test_each_bad_read(void **state)
{
    struct hb b;
    json_t *res;
    int i;

    hb_init(&b);
    base(&b);
    for (i = 0; i < 3; i++) {
        hb_invoke(&b, 0, "read", NULL);
        hb_ok(&b, 0, "read", "{\"0\": 5, \"1\": 15, \"2\": %d}", 20 + i);
    }
    res = hb_check(&b, "bank", NULL);
    hb_assert_anomaly(res, "wrong-total");
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(res, "anomalies"), "wrong-total")),
                     3);
    hb_close(&b);
}

static void test_malformed(void **state)
{
    struct hb b;
    json_t *res;

    hb_init(&b);
    base(&b);
    hb_invoke(&b, 0, "read", NULL);
    hb_ok(&b, 0, "read", "{\"0\": \"five\", \"1\": 15, \"2\": 10}");
    res = hb_check(&b, "bank", NULL);
    hb_assert_unknown(res);
    assert_non_null(json_object_get(res, "error"));
    hb_close(&b);

    /* nothing read: unknown, not valid */
    hb_init(&b);
    hb_invoke(&b, 1, "transfer", "{\"from\": 0, \"to\": 1, \"amount\": 5}");
    hb_ok(&b, 1, "transfer", "{\"from\": 0, \"to\": 1, \"amount\": 5}");
    hb_assert_unknown(hb_check(&b, "bank", NULL));
    hb_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_wrong_total),
        cmocka_unit_test(test_wrong_total_option),
        cmocka_unit_test(test_negative),
        cmocka_unit_test(test_unknown_account),
        cmocka_unit_test(test_each_bad_read),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
