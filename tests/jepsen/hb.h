/* A history builder for the checker tests: write lines one call at a time
 * (indices and times filled in), then parse and check them.
 *
 *   struct hb b;
 *   hb_init(&b);
 *   hb_invoke(&b, 0, "read", "{\"k\": 1}");
 *   hb_ok(&b, 0, "read", "{\"k\": 1, \"v\": %d}", 3);
 *   res = hb_check(&b, "register", NULL);
 *   hb_assert_valid(res);
 *   hb_close(&b);
 */
#ifndef TKV_TEST_HB_H
#define TKV_TEST_HB_H

#include <stdint.h>

#include <jansson.h>

#include "common/buf.h"
#include "jepsen/checker/history.h"

struct hb {
    struct tkv_buf text;
    int64_t index;   /* of the next line */
    int64_t time;    /* of the next line, ns */
    int64_t step;    /* time added after each line (default 1 ms) */
    char extra[256]; /* fields for the next line only, e.g. "\"a\": 1" */
    struct tkv_history h;
    json_t *res; /* the last results */
};

void hb_init(struct hb *b);
void hb_close(struct hb *b);

/* Each adds one line and returns its index. value is printf-style JSON
 * text; NULL leaves the value out. */
int64_t hb_invoke(struct hb *b,
                  int process,
                  const char *f,
                  const char *value,
                  ...) __attribute__((format(printf, 4, 5)));
int64_t hb_ok(struct hb *b, int process, const char *f, const char *value, ...)
    __attribute__((format(printf, 4, 5)));
int64_t hb_fail(struct hb *b,
                int process,
                const char *f,
                const char *value,
                ...) __attribute__((format(printf, 4, 5)));
int64_t hb_info(struct hb *b,
                int process,
                const char *f,
                const char *value,
                ...) __attribute__((format(printf, 4, 5)));
int64_t hb_nemesis(struct hb *b, const char *f);

/* Extra fields for the next line. */
void hb_extra(struct hb *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parse the lines (asserting they parse) and run the checker; the results
 * stay owned by b (valid until the next check or close). */
json_t *hb_check(struct hb *b, const char *workload, const char *opts);

/* Assertions on results; they print the results when they fail. */
void hb_assert_valid(const json_t *res);
void hb_assert_unknown(const json_t *res);
void hb_assert_anomaly(const json_t *res, const char *type);
/* Only these anomaly types (a NULL-terminated list), and invalid. */
void hb_assert_only(const json_t *res, const char *const *types);
/* The first anomaly of `type`, asserting there is one. */
json_t *hb_anomaly(const json_t *res, const char *type);
/* 1 when anomaly's "ops" holds index. */
int hb_has_op(const json_t *anomaly, int64_t index);

#endif /* TKV_TEST_HB_H */
