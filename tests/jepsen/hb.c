/* History builder for the checker tests (see hb.h). */
#include "hb.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jepsen/checker/checker.h"
#include "jepsen/checker/result.h"

void hb_init(struct hb *b)
{
    tkv_buf_init(&b->text);
    b->index = 0;
    b->time = 0;
    b->step = 1000000;
    b->extra[0] = '\0';
    tkv_history_init(&b->h);
    b->res = NULL;
}

void hb_close(struct hb *b)
{
    tkv_buf_close(&b->text);
    tkv_history_close(&b->h);
    json_decref(b->res);
    b->res = NULL;
}

static void put(struct hb *b, const char *s)
{
    assert_int_equal(tkv_buf_append(&b->text, s, strlen(s)), 0);
}

static int64_t line(struct hb *b,
                    const char *process,
                    const char *type,
                    const char *f,
                    const char *value,
                    va_list ap)
{
    char head[256];
    char *val = NULL;

    snprintf(head, sizeof head,
             "{\"index\": %lld, \"process\": %s, \"type\": \"%s\", "
             "\"f\": \"%s\", \"time\": %lld",
             (long long)b->index, process, type, f, (long long)b->time);
    put(b, head);
    if (value != NULL) {
        va_list aq;
        int n;
        va_copy(aq, ap);
        n = vsnprintf(NULL, 0, value, aq);
        va_end(aq);
        assert_true(n >= 0);
        val = malloc((size_t)n + 1);
        assert_non_null(val);
        vsnprintf(val, (size_t)n + 1, value, ap);
        put(b, ", \"value\": ");
        put(b, val);
        free(val);
    }
    if (b->extra[0] != '\0') {
        put(b, ", ");
        put(b, b->extra);
        b->extra[0] = '\0';
    }
    put(b, "}\n");
    b->time += b->step;
    return b->index++;
}

#define LINE(type)                                  \
    do {                                            \
        char proc[32];                              \
        va_list ap;                                 \
        int64_t i;                                  \
        snprintf(proc, sizeof proc, "%d", process); \
        va_start(ap, value);                        \
        i = line(b, proc, type, f, value, ap);      \
        va_end(ap);                                 \
        return i;                                   \
    } while (0)

int64_t hb_invoke(struct hb *b,
                  int process,
                  const char *f,
                  const char *value,
                  ...)
{
    LINE("invoke");
}

int64_t hb_ok(struct hb *b, int process, const char *f, const char *value, ...)
{
    LINE("ok");
}

int64_t hb_fail(struct hb *b,
                int process,
                const char *f,
                const char *value,
                ...)
{
    LINE("fail");
}

int64_t hb_info(struct hb *b,
                int process,
                const char *f,
                const char *value,
                ...)
{
    LINE("info");
}

static int64_t nemesis_line(struct hb *b, const char *f, ...)
{
    va_list ap;
    int64_t i;

    va_start(ap, f);
    i = line(b, "\"nemesis\"", "info", f, NULL, ap);
    va_end(ap);
    return i;
}

int64_t hb_nemesis(struct hb *b, const char *f)
{
    return nemesis_line(b, f);
}

void hb_extra(struct hb *b, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(b->extra, sizeof b->extra, fmt, ap);
    va_end(ap);
}

static void dump(const json_t *res)
{
    char *s = json_dumps(res, JSON_INDENT(1));
    print_message("%s\n", s != NULL ? s : "(null)");
    free(s);
}

json_t *hb_check(struct hb *b, const char *workload, const char *opts)
{
    struct tkv_err err;
    json_t *o = NULL;
    int rv;

    tkv_history_close(&b->h);
    json_decref(b->res);
    b->res = NULL;
    rv =
        tkv_history_parse(&b->h, (const char *)b->text.data, b->text.len, &err);
    if (rv != 0) {
        print_message("parse: %s\n%.*s", err.msg, (int)b->text.len,
                      (const char *)b->text.data);
    }
    assert_int_equal(rv, 0);
    if (opts != NULL) {
        o = json_loads(opts, 0, NULL);
        assert_non_null(o);
    }
    b->res = tkv_check(workload, &b->h, o, &err);
    json_decref(o);
    if (b->res == NULL) {
        print_message("check: %s\n", err.msg);
    }
    assert_non_null(b->res);
    return b->res;
}

void hb_assert_valid(const json_t *res)
{
    if (tkv_result_verdict(res) != 1) {
        dump(res);
    }
    assert_int_equal(tkv_result_verdict(res), 1);
}

void hb_assert_unknown(const json_t *res)
{
    if (tkv_result_verdict(res) != -1) {
        dump(res);
    }
    assert_int_equal(tkv_result_verdict(res), -1);
}

void hb_assert_anomaly(const json_t *res, const char *type)
{
    json_t *list = json_object_get(json_object_get(res, "anomalies"), type);
    int found = 0;
    size_t i;
    json_t *t;

    json_array_foreach(json_object_get(res, "anomaly_types"), i, t)
    {
        found |= strcmp(json_string_value(t), type) == 0;
    }
    if (tkv_result_verdict(res) != 0 || !found || json_array_size(list) == 0) {
        print_message("expected anomaly %s\n", type);
        dump(res);
    }
    assert_int_equal(tkv_result_verdict(res), 0);
    assert_true(found);
    assert_true(json_array_size(list) > 0);
}

void hb_assert_only(const json_t *res, const char *const *types)
{
    size_t n = 0, i;
    json_t *t;

    for (n = 0; types[n] != NULL; n++) {
        hb_assert_anomaly(res, types[n]);
    }
    json_array_foreach(json_object_get(res, "anomaly_types"), i, t)
    {
        size_t j;
        int known = 0;
        for (j = 0; j < n; j++) {
            known |= strcmp(json_string_value(t), types[j]) == 0;
        }
        if (!known) {
            print_message("unexpected anomaly %s\n", json_string_value(t));
            dump(res);
        }
        assert_true(known);
    }
}

json_t *hb_anomaly(const json_t *res, const char *type)
{
    hb_assert_anomaly(res, type);
    return json_array_get(
        json_object_get(json_object_get(res, "anomalies"), type), 0);
}

int hb_has_op(const json_t *anomaly, int64_t index)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(anomaly, "ops"), i, v)
    {
        if (json_integer_value(v) == index) {
            return 1;
        }
    }
    return 0;
}
