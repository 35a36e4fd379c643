/* Tests of jepsen/checker/history.c, result.c and checker.c: parsing and
 * pairing, every malformed-history error, results.json's shape (sorted
 * types, counts past the output cap, "unknown" with an error), the
 * workload table, and out-of-memory at every allocation of every checker
 * (each run must fail cleanly or give the same verdict). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "hb.h"
#include "jepsen/checker/checker.h"
#include "jepsen/checker/result.h"

static int parse(const char *text, struct tkv_history *h, struct tkv_err *e)
{
    return tkv_history_parse(h, text, strlen(text), e);
}

static void test_parse(void **state)
{
    const char *text =
        "{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"read\","
        " \"time\": 5}\n"
        "\n"
        "{\"index\": 1, \"process\": \"nemesis\", \"type\": \"info\", \"f\":"
        " \"start-partition\", \"value\": [\"n1\"]}\n"
        "{\"index\": 2, \"process\": 1, \"type\": \"invoke\", \"f\": \"add\","
        " \"value\": 3}\r\n"
        "{\"index\": 3, \"process\": 0, \"type\": \"ok\", \"f\": \"read\","
        " \"value\": [3], \"extra\": true}\n"
        "{\"index\": 5, \"process\": 2, \"type\": \"invoke\", \"f\": \"add\","
        " \"value\": 4}\n"
        "{\"index\": 7, \"process\": 2, \"type\": \"fail\", \"f\": \"add\"}";
    struct tkv_history h;
    struct tkv_err e;

    assert_int_equal(parse(text, &h, &e), 0);
    assert_int_equal(h.nevents, 6);
    assert_int_equal(h.nops, 3);
    assert_int_equal(h.events[1].process, TKV_HPROCESS_NEMESIS);
    assert_int_equal(h.events[1].op, TKV_HNONE);
    assert_int_equal(h.events[0].time, 5);
    assert_int_equal(h.events[2].time, TKV_HTIME_NONE);
    assert_true(json_is_null(h.events[0].value));
    /* op 0: read, ok */
    assert_int_equal(h.ops[0].type, TKV_HOK);
    assert_int_equal(h.ops[0].invoke, 0);
    assert_int_equal(h.ops[0].complete, 3);
    assert_int_equal(tkv_hop_name(&h, 0), 3);
    assert_true(json_is_true(tkv_hop_field(&h, 0, "extra")));
    assert_int_equal(json_array_size(h.ops[0].result), 1);
    /* op 1: add 3, never completed: info, named by its invoke */
    assert_int_equal(h.ops[1].type, TKV_HINFO);
    assert_int_equal(h.ops[1].complete, TKV_HNONE);
    assert_int_equal(tkv_hop_name(&h, 1), 2);
    assert_true(json_is_null(h.ops[1].result));
    /* op 2: failed, the completion had no value */
    assert_int_equal(h.ops[2].type, TKV_HFAIL);
    assert_int_equal(tkv_hop_name(&h, 2), 7);
    assert_int_equal(json_integer_value(h.ops[2].value), 4);
    tkv_history_close(&h);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"\n",
         "line 1: bad JSON"},
        {"[1, 2]\n", "line 1: not a JSON object"},
        {"{\"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}",
         "\"index\" must be"},
        {"{\"index\": 0, \"process\": -1, \"type\": \"invoke\", \"f\": \"r\"}",
         "\"process\" must be"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"done\", \"f\": \"r\"}",
         "\"type\" must be"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": 1}",
         "\"f\" must be"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\","
         " \"time\": \"now\"}",
         "\"time\" must be"},
        {"{\"index\": 1, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}\n"
         "{\"index\": 1, \"process\": 0, \"type\": \"ok\", \"f\": \"r\"}",
         "line 2: \"index\" does not increase"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"ok\", \"f\": \"r\"}",
         "without an invoke"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}\n"
         "{\"index\": 1, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}",
         "outstanding"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}\n"
         "{\"index\": 1, \"process\": 0, \"type\": \"ok\", \"f\": \"w\"}",
         "differs"},
        {"{\"index\": 0, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}\n"
         "{\"index\": 1, \"process\": 0, \"type\": \"info\", \"f\": \"r\"}\n"
         "{\"index\": 2, \"process\": 0, \"type\": \"invoke\", \"f\": \"r\"}",
         "after an info completion"},
        {"{\"index\": 0, \"index\": 1, \"process\": 0, \"type\": \"invoke\","
         " \"f\": \"r\"}",
         "bad JSON"},
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tkv_history h;
        struct tkv_err e;
        int rv = parse(cases[i].text, &h, &e);
        if (rv != TKV_EINVALID || strstr(e.msg, cases[i].msg) == NULL) {
            print_message("case %zu: rv %d, message \"%s\"\n", i, rv, e.msg);
        }
        assert_int_equal(rv, TKV_EINVALID);
        assert_non_null(strstr(e.msg, cases[i].msg));
        assert_int_equal(h.nevents, 0);
        assert_int_equal(h.nops, 0);
    }
}

static void test_canon(void **state)
{
    json_t *a =
        json_loads("{\"b\": [1, {\"d\": 1, \"c\": 2}], \"a\": null}", 0, NULL);
    json_t *b =
        json_loads("{\"a\": null, \"b\": [1, {\"c\": 2, \"d\": 1}]}", 0, NULL);
    struct tkv_buf x, y;
    int64_t n;

    tkv_buf_init(&x);
    tkv_buf_init(&y);
    assert_int_equal(tkv_hvalue_canon(a, &x), 0);
    assert_int_equal(tkv_hvalue_canon(b, &y), 0);
    assert_int_equal(x.len, y.len);
    assert_memory_equal(x.data, y.data, x.len);
    tkv_buf_close(&x);
    tkv_buf_close(&y);
    json_decref(a);
    json_decref(b);

    a = json_real(3.0);
    assert_true(tkv_hvalue_int(a, &n));
    assert_int_equal(n, 3);
    json_decref(a);
    a = json_real(3.5);
    assert_false(tkv_hvalue_int(a, &n));
    json_decref(a);
    a = json_string("3");
    assert_false(tkv_hvalue_int(a, &n));
    json_decref(a);
}

static void test_results_shape(void **state)
{
    struct tkv_result r;
    json_t *out;
    int i;

    assert_int_equal(tkv_result_init(&r), 0);
    out = tkv_result_json(&r, "w", NULL);
    assert_int_equal(tkv_result_verdict(out), 1);
    assert_int_equal(json_array_size(json_object_get(out, "anomaly_types")), 0);
    assert_null(json_object_get(out, "notes"));
    json_decref(out);

    tkv_result_unknown(&r, "limit %d", 7);
    out = tkv_result_json(&r, "w", NULL);
    assert_int_equal(tkv_result_verdict(out), -1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(out, "notes"), 0)),
        "limit 7");
    json_decref(out);

    /* anomalies beat unknown; types come out sorted; the output keeps at
     * most TKV_RESULT_MAX_PER_TYPE of a type and counts them all */
    for (i = 0; i < TKV_RESULT_MAX_PER_TYPE + 10; i++) {
        tkv_result_add(&r, "zeta", json_pack("{s:[i]}", "ops", i));
    }
    tkv_result_add(&r, "alpha", json_pack("{s:[i]}", "ops", 1));
    assert_int_equal(tkv_result_count(&r), TKV_RESULT_MAX_PER_TYPE + 11);
    out = tkv_result_json(&r, "w", NULL);
    assert_int_equal(tkv_result_verdict(out), 0);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(out, "anomaly_types"), 0)),
                        "alpha");
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(out, "anomaly_types"), 1)),
                        "zeta");
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(out, "anomalies"), "zeta")),
                     TKV_RESULT_MAX_PER_TYPE);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(out, "anomaly_counts"), "zeta")),
                     TKV_RESULT_MAX_PER_TYPE + 10);
    assert_string_equal(json_string_value(json_object_get(out, "workload")),
                        "w");
    json_decref(out);

    /* a malformed history: unknown, anomalies dropped */
    out = tkv_result_json(&r, "w", "bad line");
    assert_int_equal(tkv_result_verdict(out), -1);
    assert_string_equal(json_string_value(json_object_get(out, "error")),
                        "bad line");
    assert_int_equal(json_array_size(json_object_get(out, "anomaly_types")), 0);
    json_decref(out);
    tkv_result_close(&r);
}

static void test_workloads(void **state)
{
    static const char *const names[] = {"bank", "append", "register", "set",
                                        "ttl"};
    struct tkv_history h;
    struct tkv_err e;
    json_t *out, *bad;
    size_t i;

    for (i = 0; i < 5; i++) {
        assert_non_null(tkv_checker_find(names[i]));
    }
    assert_null(tkv_checker_find("nope"));
    tkv_history_init(&h);
    assert_null(tkv_check("nope", &h, NULL, &e));
    assert_int_equal(e.code, TKV_EINVALID);
    bad = json_array();
    assert_null(tkv_check("set", &h, bad, &e));
    json_decref(bad);
    /* an empty history: nothing wrong, but bank and set have nothing to
     * judge */
    for (i = 0; i < 5; i++) {
        out = tkv_check(names[i], &h, NULL, &e);
        assert_non_null(out);
        assert_int_equal(tkv_result_verdict(out), (i == 0 || i == 3) ? -1 : 1);
        json_decref(out);
    }
    /* a bad option */
    bad = json_pack("{s:s}", "max_steps", "many");
    out = tkv_check("register", &h, bad, &e);
    assert_int_equal(tkv_result_verdict(out), -1);
    assert_non_null(
        strstr(json_string_value(json_object_get(out, "error")), "max_steps"));
    json_decref(out);
    json_decref(bad);
}

/* A history with anomalies for `workload`, as text. */
static void anomalous(struct hb *b, const char *workload)
{
    if (strcmp(workload, "append") == 0) {
        hb_invoke(b, 0, "txn",
                  "[[\"append\", \"x\", 1], [\"append\", \"y\", 1]]");
        hb_invoke(b, 1, "txn",
                  "[[\"append\", \"x\", 2], [\"append\", \"y\", 2]]");
        hb_ok(b, 0, "txn", "[[\"append\", \"x\", 1], [\"append\", \"y\", 1]]");
        hb_ok(b, 1, "txn", "[[\"append\", \"x\", 2], [\"append\", \"y\", 2]]");
        hb_invoke(b, 0, "txn", "[[\"r\", \"x\", null], [\"r\", \"y\", null]]");
        hb_ok(b, 0, "txn", "[[\"r\", \"x\", [1, 2]], [\"r\", \"y\", [2, 1]]]");
        hb_invoke(b, 0, "txn", "[[\"r\", \"x\", null]]");
        hb_ok(b, 0, "txn", "[[\"r\", \"x\", [1, 2, 3]]]");
        hb_invoke(b, 1, "txn", "[[\"r\", \"y\", null]]");
        hb_ok(b, 1, "txn", "[[\"r\", \"y\", []]]");
    } else if (strcmp(workload, "register") == 0) {
        hb_invoke(b, 0, "write", "{\"k\": 1, \"v\": 1}");
        hb_ok(b, 0, "write", "{\"k\": 1, \"v\": 1}");
        hb_invoke(b, 0, "write", "{\"k\": 1, \"v\": 2}");
        hb_ok(b, 0, "write", "{\"k\": 1, \"v\": 2}");
        hb_invoke(b, 1, "cas", "{\"k\": 1, \"v\": [2, 3]}");
        hb_invoke(b, 0, "read", "{\"k\": 1}");
        hb_ok(b, 0, "read", "{\"k\": 1, \"v\": 1}");
        hb_ok(b, 1, "cas", "{\"k\": 1, \"v\": [2, 3]}");
    } else if (strcmp(workload, "bank") == 0) {
        hb_invoke(b, 0, "read", NULL);
        hb_ok(b, 0, "read", "{\"a\": 5, \"b\": 5}");
        hb_invoke(b, 0, "read", NULL);
        hb_ok(b, 0, "read", "{\"a\": -1, \"b\": 5, \"c\": 0}");
    } else if (strcmp(workload, "set") == 0) {
        hb_invoke(b, 0, "add", "1");
        hb_ok(b, 0, "add", "1");
        hb_invoke(b, 0, "read", NULL);
        hb_ok(b, 0, "read", "[2]");
    } else {
        hb_invoke(b, 0, "set", "{\"k\": 1, \"ttl_ms\": 10}");
        hb_ok(b, 0, "set", "{\"k\": 1, \"ttl_ms\": 10, \"sm_time\": 10}");
        hb_invoke(b, 0, "read", "{\"k\": 1}");
        hb_ok(b, 0, "read", "{\"k\": 1, \"found\": true, \"sm_time\": 30}");
        hb_invoke(b, 0, "read", "{\"k\": 1}");
        hb_ok(b, 0, "read", "{\"k\": 1, \"found\": true, \"sm_time\": 20}");
    }
}

static void test_alloc_failure(void **state)
{
    static const char *const names[] = {"bank", "append", "register", "set",
                                        "ttl"};
    size_t w;

    for (w = 0; w < 5; w++) {
        struct hb b;
        struct tkv_history h;
        struct tkv_err e;
        json_t *good, *out;
        char *want;
        long n;

        hb_init(&b);
        anomalous(&b, names[w]);
        good = hb_check(&b, names[w], NULL);
        assert_int_equal(tkv_result_verdict(good), 0);
        want = json_dumps(good, JSON_SORT_KEYS | JSON_COMPACT);
        for (n = 0;; n++) {
            int rv;
            tkv_alloc_fail_after(n);
            rv = tkv_history_parse(&h, (const char *)b.text.data, b.text.len,
                                   &e);
            if (rv != 0) {
                tkv_alloc_fail_reset();
                assert_int_equal(rv, TKV_ENOMEM);
                continue;
            }
            out = tkv_check(names[w], &h, NULL, &e);
            tkv_alloc_fail_reset();
            tkv_history_close(&h);
            if (out == NULL) {
                assert_int_equal(e.code, TKV_ENOMEM);
                continue;
            }
            {
                char *got = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
                if (strcmp(got, want) != 0) {
                    print_message("%s, failing after %ld:\n%s\nvs\n%s\n",
                                  names[w], n, got, want);
                }
                assert_string_equal(got, want);
                free(got);
            }
            json_decref(out);
            break;
        }
        free(want);
        hb_close(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),     cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_canon),     cmocka_unit_test(test_results_shape),
        cmocka_unit_test(test_workloads), cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
