/* Client processes: --concurrency threads, each running ops of the
 * workload one at a time through its own libtuplekv client, at a combined
 * --rate. An op ending in info retires the process: the thread goes on
 * under process id + concurrency with a fresh client (a new session), as
 * Jepsen does. */
#ifndef TKVJ_WORKER_H
#define TKVJ_WORKER_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "rng.h"
#include "runner.h"
#include "workload.h"

struct tkvj_worker {
    struct tkvj_run *run;  /* borrowed */
    int slot;
    int64_t process;
    struct tkv_client *client; /* owned */
    struct tkvj_rng rng;
    pthread_t thread;
    long ops;
};

/* Start r->o.concurrency workers; *out gets the array. 0 or -1. */
int tkvj_workers_start(struct tkvj_run *r, struct tkvj_worker **out);
/* Wait for every worker (they stop at r->stop) and free them. */
void tkvj_workers_join(struct tkvj_run *r, struct tkvj_worker *w);

/* Run one op as w's process and write its two history lines; retires the
 * process on info. value is borrowed. */
enum tkvj_outcome tkvj_worker_op(struct tkvj_worker *w, const char *f,
                                 json_t *value);

/* The final phase: run the workload's final ops, each until ok, for at
 * most timeout_ms in all. 0 when every one succeeded, else -1. */
int tkvj_workers_final(struct tkvj_run *r, int timeout_ms);

#endif /* TKVJ_WORKER_H */
