/* Building results.json (format: history.h).
 *
 * A checker records what it finds into a struct tkv_result as it goes:
 * anomalies by type, numbers for "stats", and notes on why it could not
 * decide. tkv_result_json() then assembles the object. Running out of
 * memory while recording is sticky (r->failed) and reported once, by
 * tkv_result_json(), instead of at every call site. */
#ifndef TKV_JEPSEN_RESULT_H
#define TKV_JEPSEN_RESULT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Anomalies of one type kept in the output; anomaly_counts has them all. */
#define TKV_RESULT_MAX_PER_TYPE 64

struct tkv_result {
    json_t *anomalies; /* owned: type -> [anomaly, ...] */
    json_t *counts;    /* owned: type -> count */
    json_t *stats;     /* owned: object */
    json_t *notes;     /* owned: array of strings */
    int unknown;       /* the checker could not decide */
    int failed;        /* out of memory somewhere: sticky */
};

/* 0 or TKV_ENOMEM. */
int tkv_result_init(struct tkv_result *r);
void tkv_result_close(struct tkv_result *r);

/* Record an anomaly of `type`. Takes `anomaly` (a JSON object, a new
 * reference, NULL counts as out of memory) in every case. */
void tkv_result_add(struct tkv_result *r, const char *type, json_t *anomaly);

/* The number of anomalies recorded so far. */
size_t tkv_result_count(const struct tkv_result *r);

/* Mark the verdict unknown and say why. */
void tkv_result_unknown(struct tkv_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Add a note that does not change the verdict. */
void tkv_result_note(struct tkv_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* stats[name] = v; takes v (new reference) in every case. */
void tkv_result_stat(struct tkv_result *r, const char *name, json_t *v);
void tkv_result_stat_int(struct tkv_result *r, const char *name, int64_t v);

/* The results object (new reference), or NULL when out of memory (now or
 * earlier). `error`, when not NULL, is a malformed-input message: the
 * verdict is then "unknown" and anomalies are dropped. r is not closed. */
json_t *tkv_result_json(struct tkv_result *r,
                        const char *workload,
                        const char *error);

/* 1 valid, 0 invalid, -1 unknown: the verdict of a results object. */
int tkv_result_verdict(const json_t *results);

#endif /* TKV_JEPSEN_RESULT_H */
