/* results.json + harness.json (see merge.h). */
#include "merge.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a),
                  json_string_value(*(json_t *const *)b));
}

int tkvj_merge(const char *dir)
{
    char path[1200];
    json_error_t jerr;
    json_t *res, *harness, *findings, *anoms, *counts, *types, *v;
    const char *type;
    int code;

    snprintf(path, sizeof path, "%.1024s/results.json", dir);
    res = json_load_file(path, 0, &jerr);
    if (res == NULL || !json_is_object(res)) {
        json_decref(res);
        res = json_pack("{ss ss}", "valid", "unknown", "error",
                        "the checker wrote no results");
    }
    snprintf(path, sizeof path, "%.1024s/harness.json", dir);
    harness = json_load_file(path, 0, &jerr);
    if (harness == NULL) {
        harness = json_pack("{sb}", "harness_error", 1);
    }
    anoms = json_object_get(res, "anomalies");
    if (!json_is_object(anoms)) {
        anoms = json_object();
        json_object_set_new(res, "anomalies", anoms);
    }
    counts = json_object_get(res, "anomaly_counts");
    if (!json_is_object(counts)) {
        counts = json_object();
        json_object_set_new(res, "anomaly_counts", counts);
    }
    types = json_object_get(res, "anomaly_types");
    if (!json_is_array(types)) {
        types = json_array();
        json_object_set_new(res, "anomaly_types", types);
    }
    findings = json_object_get(harness, "findings");
    json_object_foreach(findings, type, v)
    {
        json_object_set(anoms, type, v);
        json_object_set_new(counts, type, json_integer(
                                              (json_int_t)json_array_size(v)));
        json_array_append_new(types, json_string(type));
    }
    if (json_array_size(types) > 1) {
        /* sort the names, as the checker does */
        size_t n = json_array_size(types), i;
        json_t **arr = malloc(n * sizeof *arr);
        json_t *sorted = json_array();
        for (i = 0; i < n; i++) {
            arr[i] = json_array_get(types, i);
        }
        qsort(arr, n, sizeof *arr, cmp_str);
        for (i = 0; i < n; i++) {
            if (i == 0 || strcmp(json_string_value(arr[i]),
                                 json_string_value(arr[i - 1])) != 0) {
                json_array_append(sorted, arr[i]);
            }
        }
        free(arr);
        json_object_set_new(res, "anomaly_types", sorted);
    }
    json_object_set(res, "harness", harness);
    if (json_object_size(findings) > 0) {
        json_object_set_new(res, "valid", json_false());
    } else if (json_is_true(json_object_get(harness, "harness_error")) &&
               json_is_true(json_object_get(res, "valid"))) {
        json_object_set_new(res, "valid", json_string("unknown"));
    }
    v = json_object_get(res, "valid");
    code = json_is_true(v) ? 0 : json_is_false(v) ? 1 : 2;
    snprintf(path, sizeof path, "%.1024s/results.json", dir);
    if (json_dump_file(res, path, JSON_INDENT(2)) != 0) {
        code = 3;
    }
    json_decref(res);
    json_decref(harness);
    return code;
}

