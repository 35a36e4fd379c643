/* Tests of jepsen/checker/set.c: a valid history passes (with info adds
 * that do or do not show up); lost, unexpected, duplicate and
 * failed-but-present elements are flagged; adds concurrent with the final
 * read are not lost; no final read gives "unknown". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hb.h"

static int64_t stat_of(const json_t *res, const char *name)
{
    return json_integer_value(
        json_object_get(json_object_get(res, "stats"), name));
}

/* adds 0..4: 0,1,2 ok; 3 info; 4 failed. */
static void adds(struct hb *b)
{
    int i;

    for (i = 0; i < 3; i++) {
        hb_invoke(b, 0, "add", "%d", i);
        hb_ok(b, 0, "add", "%d", i);
    }
    hb_invoke(b, 0, "add", "3");
    hb_info(b, 0, "add", "3");
    hb_invoke(b, 1, "add", "4");
    hb_fail(b, 1, "add", "4");
    hb_nemesis(b, "stop-partition");
}

static void test_valid(void **state)
{
    struct hb b;
    json_t *res;

    hb_init(&b);
    adds(&b);
    hb_invoke(&b, 1, "read", NULL);
    hb_ok(&b, 1, "read", "[2, 0, 1, 3]");
    res = hb_check(&b, "set", NULL);
    hb_assert_valid(res);
    assert_int_equal(stat_of(res, "ok"), 3);
    assert_int_equal(stat_of(res, "recovered"), 1);
    assert_int_equal(stat_of(res, "attempted"), 5);
    assert_int_equal(stat_of(res, "acknowledged"), 3);
    hb_close(&b);

    /* the info add may also be missing */
    hb_init(&b);
    adds(&b);
    hb_invoke(&b, 1, "read", NULL);
    hb_ok(&b, 1, "read", "[0, 1, 2]");
    hb_assert_valid(hb_check(&b, "set", NULL));
    hb_close(&b);
}

static void test_lost(void **state)
{
    struct hb b;
    json_t *a;
    int64_t read;

    hb_init(&b);
    adds(&b);
    hb_invoke(&b, 1, "read", NULL);
    read = hb_ok(&b, 1, "read", "[0, 2]");
    a = hb_anomaly(hb_check(&b, "set", NULL), "lost");
    assert_int_equal(json_integer_value(json_object_get(a, "value")), 1);
    assert_true(hb_has_op(a, read));
    assert_true(hb_has_op(a, 3)); /* the ok of add 1 */
    assert_int_equal(stat_of(b.res, "lost"), 1);
    hb_assert_only(b.res, (const char *const[]){"lost", NULL});
    hb_close(&b);
}

static void test_unexpected(void **state)
{
    struct hb b;
    json_t *a;

    hb_init(&b);
    adds(&b);
    hb_invoke(&b, 1, "read", NULL);
    hb_ok(&b, 1, "read", "[0, 1, 2, 99]");
    a = hb_anomaly(hb_check(&b, "set", NULL), "unexpected");
    assert_int_equal(json_integer_value(json_object_get(a, "value")), 99);
    hb_assert_only(b.res, (const char *const[]){"unexpected", NULL});
    hb_close(&b);
}

static void test_duplicate_and_failed(void **state)
{
    struct hb b;

    hb_init(&b);
    adds(&b);
    hb_invoke(&b, 1, "read", NULL);
    hb_ok(&b, 1, "read", "[0, 1, 1, 2, 4]");
    hb_check(&b, "set", NULL);
    hb_assert_only(
        b.res, (const char *const[]){"duplicate", "failed-add-present", NULL});
    hb_close(&b);
}

/* Only the last ok read counts; an add still running when it started may
 * be missing. */
static void test_final_read(void **state)
{
    struct hb b;

    hb_init(&b);
    adds(&b);
    hb_invoke(&b, 1, "read", NULL);
    hb_ok(&b, 1, "read", "[]"); /* an early read: not the final one */
    hb_invoke(&b, 2, "add", "5");
    hb_invoke(&b, 1, "read", NULL);
    hb_ok(&b, 2, "add", "5");
    hb_ok(&b, 1, "read", "[0, 1, 2]");
    hb_assert_valid(hb_check(&b, "set", NULL));
    hb_close(&b);

    hb_init(&b);
    adds(&b);
    hb_assert_unknown(hb_check(&b, "set", NULL));
    hb_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_lost),
        cmocka_unit_test(test_unexpected),
        cmocka_unit_test(test_duplicate_and_failed),
        cmocka_unit_test(test_final_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
