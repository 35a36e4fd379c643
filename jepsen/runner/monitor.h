/* Watching the nodes while the test runs.
 *
 * One thread per node asks it for its status every 200 ms (role, term,
 * commit and applied index, sm_time_ms) and appends each answer to
 * status.jsonl (the report draws leaders and state-machine time from it);
 * one more thread reaps nodes that exit on their own.
 *
 * The leader-clock rule says state-machine time never goes backwards. Two
 * checks, both harness findings when broken:
 *   sm-time-backwards   one node, one process lifetime: a later poll shows
 *                       a smaller sm_time_ms than an earlier one;
 *   sm-time-log-order   across all nodes and restarts: a sample at a higher
 *                       applied index has a smaller sm_time than a sample at
 *                       a lower index (time must grow with the log), or two
 *                       samples at the same applied index disagree (the
 *                       state machine is not deterministic).
 * The first is checked as samples arrive, the second at the end
 * (tkvj_monitor_check). */
#ifndef TKVJ_MONITOR_H
#define TKVJ_MONITOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TKVJ_MONITOR_NODES 10

struct tkvj_run;

struct tkvj_sample {
    int64_t t_ns;
    int node;
    int incarnation;
    uint64_t applied;
    int64_t sm_time;
};

struct tkvj_monitor {
    struct tkvj_run *run; /* borrowed */
    pthread_t threads[TKVJ_MONITOR_NODES];
    pthread_t reaper;
    int nthreads;
    int started;
    atomic_int stop;
    pthread_mutex_t mu;
    FILE *out;                   /* owned: status.jsonl */
    struct tkvj_sample *samples; /* owned */
    size_t nsamples, cap;
    int64_t last_sm[TKVJ_MONITOR_NODES];
    uint64_t last_applied[TKVJ_MONITOR_NODES];
    int last_inc[TKVJ_MONITOR_NODES];
    atomic_llong max_sm; /* highest sm_time_ms any node reported */
    long backwards;
};

int tkvj_monitor_start(struct tkvj_monitor *m, struct tkvj_run *r,
                       const char *path);
void tkvj_monitor_stop(struct tkvj_monitor *m);

/* The log-order check over every sample; findings go to the run. Also
 * records stats into `stats` (a JSON object, borrowed). */
void tkvj_monitor_check(struct tkvj_monitor *m, void *stats);

#endif /* TKVJ_MONITOR_H */
