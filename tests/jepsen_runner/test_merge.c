/* Folding harness findings into results.json: verdicts and exit codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "jepsen/runner/merge.h"

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (text == NULL) {
        unlink(path);
        return;
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static json_t *results(void)
{
    char path[128];
    json_error_t jerr;
    json_t *r;
    snprintf(path, sizeof path, "%s/results.json", dir);
    r = json_load_file(path, 0, &jerr);
    assert_non_null(r);
    return r;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tkvj-merge-XXXXXX");
    return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    put("results.json", NULL);
    put("harness.json", NULL);
    rmdir(dir);
    return 0;
}

static void test_valid_stays_valid(void **state)
{
    json_t *r;
    (void)state;
    put("results.json", "{\"valid\": true, \"workload\": \"bank\"}");
    put("harness.json", "{\"findings\": {}, \"harness_error\": false}");
    assert_int_equal(tkvj_merge(dir), 0);
    r = results();
    assert_true(json_is_true(json_object_get(r, "valid")));
    assert_non_null(json_object_get(r, "harness"));
    json_decref(r);
}

static void test_findings_invalidate(void **state)
{
    json_t *r, *types;
    (void)state;
    put("results.json",
        "{\"valid\": false, \"anomaly_types\": [\"G1c\"], "
        "\"anomalies\": {\"G1c\": [{\"ops\": [1, 2]}]}, "
        "\"anomaly_counts\": {\"G1c\": 1}}");
    put("harness.json",
        "{\"findings\": {\"node-crash\": [{\"node\": 2}], "
        "\"sm-time-backwards\": [{\"node\": 1}, {\"node\": 3}]}}");
    assert_int_equal(tkvj_merge(dir), 1);
    r = results();
    assert_true(json_is_false(json_object_get(r, "valid")));
    types = json_object_get(r, "anomaly_types");
    assert_int_equal(json_array_size(types), 3);
    assert_string_equal(json_string_value(json_array_get(types, 0)), "G1c");
    assert_string_equal(json_string_value(json_array_get(types, 1)),
                        "node-crash");
    assert_string_equal(json_string_value(json_array_get(types, 2)),
                        "sm-time-backwards");
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(r, "anomaly_counts"),
                         "sm-time-backwards")),
                     2);
    json_decref(r);
    /* merging twice changes nothing */
    assert_int_equal(tkvj_merge(dir), 1);
    r = results();
    assert_int_equal(json_array_size(json_object_get(r, "anomaly_types")),
                     3);
    json_decref(r);

    put("results.json", "{\"valid\": true}");
    assert_int_equal(tkvj_merge(dir), 1);
}

static void test_no_results_is_unknown(void **state)
{
    json_t *r;
    (void)state;
    put("results.json", NULL);
    put("harness.json", "{\"findings\": {}}");
    assert_int_equal(tkvj_merge(dir), 2);
    r = results();
    assert_string_equal(json_string_value(json_object_get(r, "valid")),
                        "unknown");
    json_decref(r);
    /* a harness failure makes a valid verdict unknown */
    put("results.json", "{\"valid\": true}");
    put("harness.json", "{\"findings\": {}, \"harness_error\": true}");
    assert_int_equal(tkvj_merge(dir), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_valid_stays_valid, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_findings_invalidate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_results_is_unknown, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
