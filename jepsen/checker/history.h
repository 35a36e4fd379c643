/* The history format of tuplekv's fault-injection harness, and its parser.
 *
 * ## history.jsonl
 *
 * One JSON object per line, one line per event, in the order the events
 * happened. The runner writes an invoke line just before it sends a request
 * and a completion line just after the reply (or the give-up) arrives, from
 * one thread or under one lock, so that THE ORDER OF LINES IS THE REAL-TIME
 * ORDER: when op A's completion line comes before op B's invoke line, A
 * finished before B started. The checkers derive real-time precedence from
 * line order alone; "time" is only for humans and for the ttl checker's
 * wall-clock rule.
 *
 *   {"index": 17, "process": 3, "type": "invoke", "f": "read",
 *    "value": {"k": 1, "v": null}, "time": 1250000000}
 *
 *   index    integer, strictly increasing from line to line (0, 1, 2, ...).
 *   process  integer >= 0 for a client process; any string (Jepsen uses
 *            "nemesis") for the fault injector. Checkers ignore non-client
 *            lines except where a checker says otherwise (ttl looks at clock
 *            faults).
 *   type     "invoke" | "ok" | "fail" | "info".
 *              ok   the op happened, and its completion value is its result;
 *              fail the op definitely did not happen (a checker may flag a
 *                   "failed" op whose effect is observed later);
 *              info the outcome is unknown: the op may take effect at any
 *                   time after its invoke, or never.
 *   f        string, the op's function; the workload says which.
 *   value    any JSON; absent means null. On an invoke: the op's arguments.
 *            On an ok: the result (reads filled in). On fail/info: usually
 *            the invoke's value again; checkers read arguments from the
 *            invoke line.
 *   time     optional integer, nanoseconds since the test started.
 *
 * Other fields are allowed and kept (a checker may read them, e.g. ttl's
 * "sm_time" and "nemesis_clock").
 *
 * Process rules, as in Jepsen: a client process has at most one op
 * outstanding (invoke, then exactly one ok/fail/info with the same f). A
 * process whose op ended in info never invokes again: the runner continues
 * that worker under a new process id. An op with no completion line by the
 * end of the history counts as info. Breaking any of these rules makes the
 * history malformed (the checker answers "unknown" with an error).
 *
 * An op is named in results by the index of its completion line, or of its
 * invoke line when it never completed.
 *
 * ## Workloads: f and value
 *
 * bank
 *   transfer  invoke {"from": a, "to": b, "amount": n}
 *   read      ok     {"<account>": balance, ...} (every account, one
 *                    snapshot; balances integers)
 *   options   {"total": n, "accounts": [a, ...]} both optional: total
 *             defaults to the sum of the first ok read; accounts default to
 *             the first ok read's accounts plus every transfer's from/to.
 *             Accounts are compared as strings (5 and "5" are one account).
 *
 * append (Elle's list-append)
 *   txn       invoke [["append", k, v], ["r", k, null], ...]
 *             ok     the same micro-ops with every read's null replaced by
 *                    the list it read (null or [] for a missing key).
 *             Keys and values are any JSON; each (k, v) is appended by at
 *             most one invoke in the whole history.
 *
 * register (linearizable registers, one per key)
 *   read      invoke {"k": k}           ok {"k": k, "v": x}  (x null: absent)
 *   write     invoke {"k": k, "v": x}
 *   cas       invoke {"k": k, "v": [expected, new]}
 *             ok = swapped; fail = not swapped (the value differed), so the
 *             op had no effect; info = unknown.
 *   options   {"initial": x (default null), "max_steps": n,
 *              "max_cache_mb": n} (search limits per key)
 *
 * set
 *   add       invoke n (any JSON, unique per add)
 *   read      ok [elements] : the final read, after the faults healed. The
 *             last ok read of the history is the one checked.
 *
 * ttl (keys that expire on the state machine's clock)
 *   set       invoke {"k": k, "ttl_ms": t}  (t null/absent/0: no expiry)
 *             ok     {"k": k, "ttl_ms": t, "sm_time": a} where a is the
 *                    state machine time the set was applied at (its log
 *                    entry's timestamp: expires_at = a + t).
 *   read      invoke {"k": k}
 *             ok     {"k": k, "found": bool, "sm_time": r} where r is the
 *                    state machine time the read was served at.
 *   When the exact time is unknown, "sm_time" is null or absent and the op
 *   may carry bounds instead: "sm_lo" <= time <= "sm_hi" (either may be
 *   left out). These fields may also sit on the completion line itself.
 *   Every client line may carry "nemesis_clock": true|false: whether a
 *   clock fault was active at any moment between this op's invoke and its
 *   completion, or since any earlier fault that moved a clock (a jump
 *   forward lingers in the state machine's time). Absent means unknown,
 *   which turns the wall-clock rule off for that op. Nemesis lines whose f
 *   contains "clock" also mark clock faults. See ttl.c for the rules.
 *   options   {"tick_ms": n} (default 500)
 *
 * Nemesis lines look like {"index": 40, "process": "nemesis", "type":
 * "info", "f": "start-partition", "value": ...}.
 *
 * ## results.json
 *
 *   {"valid": true | false | "unknown", "workload": "append",
 *    "anomaly_types": ["G-single", ...],          sorted
 *    "anomalies": {"G-single": [{"ops": [12, 40], ...details}, ...]},
 *    "anomaly_counts": {"G-single": 3},          before truncation
 *    "stats": {...}, "notes": ["..."], "error": "..." (malformed input)}
 *
 * Any anomaly makes valid false; otherwise a checker that could not decide
 * (a search limit, no final read, a malformed history) says "unknown". */
#ifndef TKV_JEPSEN_HISTORY_H
#define TKV_JEPSEN_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "../../common/buf.h"
#include "../../common/error.h"

enum tkv_htype {
    TKV_HINVOKE,
    TKV_HOK,
    TKV_HFAIL,
    TKV_HINFO,
};

#define TKV_HPROCESS_NEMESIS (-1)
#define TKV_HTIME_NONE INT64_MIN
#define TKV_HNONE SIZE_MAX

/* One line. */
struct tkv_hevent {
    json_t *line; /* owned: the whole object */
    int64_t index;
    int64_t process; /* TKV_HPROCESS_NEMESIS for a non-client line */
    int64_t time;    /* TKV_HTIME_NONE when absent */
    enum tkv_htype type;
    const char *f; /* borrowed from line */
    json_t *value; /* borrowed from line; json null when absent */
    size_t op;     /* position in ops[] of its op; TKV_HNONE for nemesis */
};

/* One client op: an invoke and its completion. */
struct tkv_hop {
    size_t invoke;       /* position in events[] */
    size_t complete;     /* position in events[], TKV_HNONE if none */
    enum tkv_htype type; /* TKV_HOK, TKV_HFAIL or TKV_HINFO (incl. none) */
    int64_t process;
    const char *f;  /* borrowed */
    json_t *value;  /* borrowed: the invoke's value (json null if absent) */
    json_t *result; /* borrowed: the completion's value; json null if none */
};

struct tkv_history {
    struct tkv_hevent *events; /* owned, in line order */
    size_t nevents;
    struct tkv_hop *ops; /* owned, in invoke order */
    size_t nops;
};

void tkv_history_init(struct tkv_history *h);
void tkv_history_close(struct tkv_history *h);

/* Parse JSON-lines text. On error returns TKV_EINVALID (malformed, with the
 * line number in err) or TKV_ENOMEM, and h is left empty. */
int tkv_history_parse(struct tkv_history *h,
                      const char *text,
                      size_t len,
                      struct tkv_err *err);

/* Read a whole stream and parse it. TKV_EIO when reading fails. */
int tkv_history_load(struct tkv_history *h, FILE *in, struct tkv_err *err);

/* The index that names an op in results: its completion's, else its
 * invoke's. */
int64_t tkv_hop_name(const struct tkv_history *h, size_t op);

/* A field of an op's completion line, else of its invoke line; NULL when
 * neither has it. */
json_t *tkv_hop_field(const struct tkv_history *h, size_t op, const char *name);

/* A JSON description of an op for results: {"process", "f", "type",
 * "value", "result", "invoke", "complete"}. New reference, NULL if out of
 * memory. */
json_t *tkv_hop_describe(const struct tkv_history *h, size_t op);

const char *tkv_htype_name(enum tkv_htype t);

/* ---- helpers for values ---- */

/* Append v's canonical text to out: compact, object keys sorted, so equal
 * values give equal bytes. 0 or TKV_ENOMEM. */
int tkv_hvalue_canon(const json_t *v, struct tkv_buf *out);

/* 1 and *out set when v is an integer, or a real with an integral value
 * that fits in int64; else 0. */
int tkv_hvalue_int(const json_t *v, int64_t *out /* OUT */);

#endif /* TKV_JEPSEN_HISTORY_H */
