/* The checkers of tuplekv's fault-injection harness: one per workload, in
 * one table, and the entry point that runs one over a history.
 *
 * Every checker reads a parsed history (history.h documents the format and
 * each workload's ops) plus an options object, records what it finds into a
 * struct tkv_result, and returns 0, TKV_EINVALID when the history does not
 * fit the workload (err says where), or TKV_ENOMEM. */
#ifndef TKV_JEPSEN_CHECKER_H
#define TKV_JEPSEN_CHECKER_H

#include <jansson.h>

#include "../../common/error.h"
#include "history.h"
#include "result.h"

typedef int (*tkv_check_fn)(const struct tkv_history *h,
                            const json_t *opts,
                            struct tkv_result *res,
                            struct tkv_err *err);

struct tkv_checker {
    const char *name; /* the workload */
    tkv_check_fn check;
    const char *summary; /* one line, for usage messages */
};

/* The table, ended by an entry with name NULL. */
extern const struct tkv_checker tkv_checkers[];

/* The checker of a workload, NULL if none. */
const struct tkv_checker *tkv_checker_find(const char *workload);

/* Check h as a history of `workload` with `opts` (NULL: none) and return
 * the results object (history.h, "results.json"): a new reference. A
 * history that does not fit the workload gives valid "unknown" and an
 * "error". NULL only for an unknown workload (TKV_EINVALID) or out of
 * memory (TKV_ENOMEM), with err set. */
json_t *tkv_check(const char *workload,
                  const struct tkv_history *h,
                  const json_t *opts,
                  struct tkv_err *err);

/* The checkers themselves, one module each. */
int tkv_check_bank(const struct tkv_history *h,
                   const json_t *opts,
                   struct tkv_result *res,
                   struct tkv_err *err);
int tkv_check_append(const struct tkv_history *h,
                     const json_t *opts,
                     struct tkv_result *res,
                     struct tkv_err *err);
int tkv_check_register(const struct tkv_history *h,
                       const json_t *opts,
                       struct tkv_result *res,
                       struct tkv_err *err);
int tkv_check_set(const struct tkv_history *h,
                  const json_t *opts,
                  struct tkv_result *res,
                  struct tkv_err *err);
int tkv_check_ttl(const struct tkv_history *h,
                  const json_t *opts,
                  struct tkv_result *res,
                  struct tkv_err *err);

/* Option helpers shared by the checkers: the integer option `name`, or
 * `def` when absent or null. TKV_EINVALID when present but not an
 * integer. */
int tkv_opt_int(const json_t *opts,
                const char *name,
                int64_t def,
                int64_t *out /* OUT */,
                struct tkv_err *err);

#endif /* TKV_JEPSEN_CHECKER_H */
