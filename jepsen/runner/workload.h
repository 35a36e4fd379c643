/* Workloads: what the client processes do, as a table (one entry per
 * workload, one wl_<name>.c each).
 *
 * A workload generates ops (f and the invoke's value, following
 * jepsen/checker/history.h), runs one op against the cluster through
 * libtuplekv and says how it ended:
 *
 *   TKVJ_OK    it happened; call->result is the completion's value
 *   TKVJ_FAIL  it certainly did not happen (a read that failed, a write
 *              the client never sent, a transaction that conflicted or
 *              aborted)
 *   TKVJ_INFO  unknown (TKV_EUNKNOWN, a write that timed out): the process
 *              is retired, as in Jepsen
 *
 * State shared by the processes of one workload (key pools, counters) is
 * the workload's, behind its own lock. json_t values are never shared
 * between threads. */
#ifndef TKVJ_WORKLOAD_H
#define TKVJ_WORKLOAD_H

#include <jansson.h>

#include "rng.h"
#include "runner.h"

enum tkvj_outcome { TKVJ_OK, TKVJ_FAIL, TKVJ_INFO };

/* One op in flight. */
struct tkvj_call {
    struct tkvj_run *run;
    struct tkv_client *client;
    const struct tkv_opts *opts;
    struct tkvj_rng *rng;
    const char *f;      /* the op's f (static string) */
    json_t *value;      /* the invoke's value (owned by the caller) */
    json_t *result;     /* OUT, new reference: completion value for ok (and
                           optionally fail/info); NULL: the invoke's value */
    json_t *extra;      /* OUT, new reference or NULL: more line fields */
    char error[256];    /* OUT: why it failed / is unknown */
};

struct tkvj_workload {
    const char *name;
    /* Make the state; write the initial data (outside the history) with c.
     * 0 or -1. */
    int (*setup)(struct tkvj_run *r, struct tkv_client *c, void **state);
    /* Next op: *f a static string, *value a new reference. */
    void (*gen)(void *state, struct tkvj_rng *rng, const char **f,
                json_t **value);
    enum tkvj_outcome (*invoke)(void *state, struct tkvj_call *call);
    /* Ops to run after healing, each until it succeeds (bounded): an array
     * of [f, value] pairs (new reference), or NULL. */
    json_t *(*final_ops)(void *state);
    /* Options object for the checker (new reference), or NULL. */
    json_t *(*options)(void *state);
    void (*destroy)(void *state);
};

extern const struct tkvj_workload tkvj_wl_bank;
extern const struct tkvj_workload tkvj_wl_append;
extern const struct tkvj_workload tkvj_wl_register;
extern const struct tkvj_workload tkvj_wl_set;
extern const struct tkvj_workload tkvj_wl_ttl;

const struct tkvj_workload *tkvj_workload_find(const char *name);

/* How a finished call maps to an outcome. */
enum tkvj_outcome tkvj_read_outcome(int rc);  /* 0 ok, else fail */
enum tkvj_outcome tkvj_write_outcome(int rc); /* see workload.c */

/* Fill call->error from rc and err. */
void tkvj_call_error(struct tkvj_call *call, int rc,
                     const struct tkv_err *err);

#endif /* TKVJ_WORKLOAD_H */
