/* results.json assembly (see result.h). */
#include "result.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/alloc.h"
#include "../../common/error.h"

int tkv_result_init(struct tkv_result *r)
{
    r->anomalies = json_object();
    r->counts = json_object();
    r->stats = json_object();
    r->notes = json_array();
    r->unknown = 0;
    r->failed = 0;
    if (r->anomalies == NULL || r->counts == NULL || r->stats == NULL ||
        r->notes == NULL) {
        tkv_result_close(r);
        return TKV_ENOMEM;
    }
    return 0;
}

void tkv_result_close(struct tkv_result *r)
{
    json_decref(r->anomalies);
    json_decref(r->counts);
    json_decref(r->stats);
    json_decref(r->notes);
    r->anomalies = r->counts = r->stats = r->notes = NULL;
}

void tkv_result_add(struct tkv_result *r, const char *type, json_t *anomaly)
{
    json_t *list = json_object_get(r->anomalies, type);
    json_t *count = json_object_get(r->counts, type);
    json_int_t n = count != NULL ? json_integer_value(count) : 0;

    if (anomaly == NULL) {
        r->failed = 1;
        return;
    }
    if (list == NULL) {
        list = json_array();
        if (json_object_set_new(r->anomalies, type, list) != 0) {
            r->failed = 1;
            json_decref(anomaly);
            return;
        }
    }
    if (json_object_set_new(r->counts, type, json_integer(n + 1)) != 0) {
        r->failed = 1;
    }
    if (json_array_size(list) < TKV_RESULT_MAX_PER_TYPE) {
        if (json_array_append_new(list, anomaly) != 0) {
            r->failed = 1;
        }
    } else {
        json_decref(anomaly);
    }
}

size_t tkv_result_count(const struct tkv_result *r)
{
    const char *type;
    json_t *v;
    size_t n = 0;

    json_object_foreach(r->counts, type, v)
    {
        n += (size_t)json_integer_value(v);
    }
    return n;
}

static void add_note(struct tkv_result *r, const char *fmt, va_list ap)
{
    char msg[512];

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (json_array_append_new(r->notes, json_string(msg)) != 0) {
        r->failed = 1;
    }
}

void tkv_result_unknown(struct tkv_result *r, const char *fmt, ...)
{
    va_list ap;

    r->unknown = 1;
    va_start(ap, fmt);
    add_note(r, fmt, ap);
    va_end(ap);
}

void tkv_result_note(struct tkv_result *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    add_note(r, fmt, ap);
    va_end(ap);
}

void tkv_result_stat(struct tkv_result *r, const char *name, json_t *v)
{
    if (v == NULL || json_object_set_new(r->stats, name, v) != 0) {
        r->failed = 1;
    }
}

void tkv_result_stat_int(struct tkv_result *r, const char *name, int64_t v)
{
    tkv_result_stat(r, name, json_integer(v));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *tkv_result_json(struct tkv_result *r,
                        const char *workload,
                        const char *error)
{
    json_t *out;
    json_t *types;
    const char **names;
    const char *type;
    json_t *v;
    size_t n = 0;
    size_t i;

    if (r->failed) {
        return NULL;
    }
    out = json_object();
    types = json_array();
    names = tkv_calloc(json_object_size(r->anomalies) + 1, sizeof *names);
    if (out == NULL || types == NULL || names == NULL) {
        goto err_after_alloc;
    }
    if (error == NULL) {
        json_object_foreach(r->anomalies, type, v)
        {
            names[n++] = type;
        }
        qsort(names, n, sizeof *names, cmp_str);
        for (i = 0; i < n; i++) {
            if (json_array_append_new(types, json_string(names[i])) != 0) {
                goto err_after_alloc;
            }
        }
    }
    if (json_object_set_new(out, "valid",
                            n > 0 ? json_false()
                            : (r->unknown || error != NULL)
                                ? json_string("unknown")
                                : json_true()) != 0 ||
        json_object_set_new(out, "workload", json_string(workload)) != 0 ||
        json_object_set(out, "anomaly_types", types) != 0 ||
        json_object_set_new(
            out, "anomalies",
            error != NULL ? json_object() : json_copy(r->anomalies)) != 0 ||
        json_object_set_new(
            out, "anomaly_counts",
            error != NULL ? json_object() : json_copy(r->counts)) != 0 ||
        json_object_set(out, "stats", r->stats) != 0) {
        goto err_after_alloc;
    }
    if (json_array_size(r->notes) > 0 &&
        json_object_set(out, "notes", r->notes) != 0) {
        goto err_after_alloc;
    }
    if (error != NULL &&
        json_object_set_new(out, "error", json_string(error)) != 0) {
        goto err_after_alloc;
    }
    json_decref(types);
    tkv_free(names);
    return out;

err_after_alloc:
    json_decref(out);
    json_decref(types);
    tkv_free(names);
    return NULL;
}

int tkv_result_verdict(const json_t *results)
{
    json_t *v = json_object_get(results, "valid");

    if (json_is_true(v)) {
        return 1;
    }
    if (json_is_false(v)) {
        return 0;
    }
    return -1;
}
