/* tuplekv-jepsen: the workload driver of tuplekv's fault-injection harness.
 *
 * One struct tkvj_run owns a whole test run; every module gets a pointer to
 * it. The flow (main.c):
 *
 *   1. options -> struct tkvj_opts; the network namespaces, the bridge and
 *      the addresses were made by jepsen/run, which passes their names;
 *   2. cluster.c starts one tuplekv-node per namespace (bootstrap) and
 *      waits until the cluster takes writes; the workload's setup writes its
 *      initial state (bank balances) outside the history;
 *   3. monitor.c polls every node's status (sm_time_ms, role, indexes)
 *      into status.jsonl and reaps nodes that die on their own;
 *   4. worker.c runs --concurrency client processes, each with its own
 *      libtuplekv client, writing invoke/completion lines to history.jsonl
 *      (history.c); nemesis.c injects faults and writes its own lines;
 *   5. at --time: workers stop, the nemesis heals everything, the cluster
 *      must recover, the workload's final reads run;
 *   6. nodes are stopped, their logs scanned (logscan.c), the state-machine
 *      clock samples checked, and harness.json written: the run's
 *      configuration and the harness's own findings (crashes, sanitizer
 *      reports, sm time going backwards, no recovery), which
 *      `tuplekv-jepsen merge` later folds into the checker's results.json.
 *
 * The workload driver never decides validity of the history: that is the
 * checker's (jepsen/checker, tuplekv-check). */
#ifndef TKVJ_RUNNER_H
#define TKVJ_RUNNER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tuplekv.h"

#include "cluster.h"
#include "history.h"
#include "monitor.h"
#include "rng.h"

/* Fault kinds (--nemesis). */
enum {
    TKVJ_NEM_PARTITION = 1 << 0,
    TKVJ_NEM_KILL = 1 << 1,
    TKVJ_NEM_PAUSE = 1 << 2,
    TKVJ_NEM_CLOCK = 1 << 3,
    TKVJ_NEM_MEMBER = 1 << 4,
};

struct tkvj_opts {
    char workload[32];
    unsigned nemesis;        /* TKVJ_NEM_* bits; 0 = none */
    int time_s;              /* main phase */
    double rate;             /* ops per second, all processes together */
    int concurrency;         /* client processes at once */
    int nodes;               /* 3 or 5 (1..TKVJ_MAX_NODES) */
    uint64_t seed;
    char store[1024];        /* this run's directory (exists) */
    char bin_dir[1024];      /* holds tuplekv-node */
    char net[32];            /* "10.77.5": node i is <net>.(10+i) */
    char ns_prefix[64];      /* "tkvj-5": node i's namespace <prefix>-n<i> */
    int op_timeout_ms;       /* per client call */
    int snapshot_threshold;  /* node --snapshot-threshold */
    int interval_ms;         /* mean time between faults */
    int recover_s;           /* time allowed to recover after healing */
    int txn_attempts;        /* client cfg.txn_attempts */
    char faketime_lib[512];  /* libfaketime.so.1; "" = clock faults off */
    char node_args[512];     /* extra tuplekv-node flags, space separated */
};

struct tkvj_workload;

struct tkvj_run {
    struct tkvj_opts o;
    struct tkvj_history hist;
    struct tkvj_cluster cluster;
    struct tkvj_monitor mon;
    const struct tkvj_workload *wl;
    void *wl_state; /* owned by the workload */

    atomic_int stop;       /* main phase over: workers finish */
    atomic_int interrupt;  /* SIGINT/SIGTERM: wind down at once */
    atomic_int clock_touched; /* a clock fault has started */
    atomic_llong next_process; /* next unused client process id */

    pthread_mutex_t findings_mu;
    json_t *findings; /* owned: type -> [finding, ...] (harness anomalies) */
    json_t *notes;    /* owned: [string] */
};

/* Nanoseconds since the run's clock started (monotonic). */
int64_t tkvj_now_ns(void);
int64_t tkvj_now_ms(void);

/* Sleep ms, waking early (returning nonzero) when the run is interrupted,
 * or, with stop_too, when the main phase is over. */
int tkvj_sleep(struct tkvj_run *r, int64_t ms, int stop_too);

/* Record a harness finding: any one makes the run invalid. Takes detail
 * (a JSON object, new reference) in every case; adds "time" (ns). */
void tkvj_finding(struct tkvj_run *r, const char *type, json_t *detail);

/* A note for results.json that does not change the verdict. */
void tkvj_note(struct tkvj_run *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A new client for the whole cluster with the run's timeouts. NULL (and a
 * message on stderr) on failure. */
struct tkv_client *tkvj_client(struct tkvj_run *r, const char *endpoints);

/* Log a line of the runner's own progress to stderr, with the run time. */
void tkvj_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* TKVJ_RUNNER_H */
