/* Worker threads (see worker.h). */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void note_process(struct tkvj_run *r, int64_t p)
{
    long long cur = atomic_load(&r->next_process);
    while (p + 1 > cur &&
           !atomic_compare_exchange_weak(&r->next_process, &cur, p + 1)) {
    }
}

static void retire(struct tkvj_worker *w)
{
    struct tkvj_run *r = w->run;
    w->process += r->o.concurrency;
    note_process(r, w->process);
    tkv_close(w->client);
    w->client = tkvj_client(r, r->cluster.endpoints);
}

enum tkvj_outcome tkvj_worker_op(struct tkvj_worker *w, const char *f,
                                 json_t *value)
{
    struct tkvj_run *r = w->run;
    struct tkv_opts opts = {.timeout_ms = r->o.op_timeout_ms};
    struct tkvj_call call;
    enum tkvj_outcome out;
    json_t *extra;
    static const char *const names[] = {"ok", "fail", "info"};

    memset(&call, 0, sizeof call);
    call.run = r;
    call.client = w->client;
    call.opts = &opts;
    call.rng = &w->rng;
    call.f = f;
    call.value = value;
    tkvj_history_write(&r->hist, w->process, "invoke", f, value, NULL);
    if (w->client == NULL) {
        out = TKVJ_FAIL;
        snprintf(call.error, sizeof call.error, "no client");
    } else {
        out = r->wl->invoke(r->wl_state, &call);
    }
    extra = call.extra != NULL ? call.extra : json_object();
    if (out != TKVJ_OK && call.error[0] != '\0') {
        json_object_set_new(extra, "error", json_string(call.error));
    }
    tkvj_history_write(&r->hist, w->process, names[out], f,
                       call.result != NULL ? call.result : value, extra);
    json_decref(extra);
    json_decref(call.result);
    w->ops++;
    if (out == TKVJ_INFO) {
        retire(w);
    }
    return out;
}

static void *worker_main(void *arg)
{
    struct tkvj_worker *w = arg;
    struct tkvj_run *r = w->run;
    /* mean pause between one process's ops so that all of them together
     * make --rate */
    double mean_ms = 1000.0 * r->o.concurrency / r->o.rate;

    while (!atomic_load(&r->stop) && !atomic_load(&r->interrupt)) {
        const char *f = NULL;
        json_t *value = NULL;
        int64_t pause = (int64_t)(2.0 * mean_ms * tkvj_rng_double(&w->rng));
        if (tkvj_sleep(r, pause, 1)) {
            break;
        }
        r->wl->gen(r->wl_state, &w->rng, &f, &value);
        tkvj_worker_op(w, f, value);
        json_decref(value);
    }
    return NULL;
}

int tkvj_workers_start(struct tkvj_run *r, struct tkvj_worker **out)
{
    int n = r->o.concurrency, i;
    struct tkvj_worker *w = calloc((size_t)n, sizeof *w);
    if (w == NULL) {
        return -1;
    }
    atomic_store(&r->next_process, n);
    for (i = 0; i < n; i++) {
        w[i].run = r;
        w[i].slot = i;
        w[i].process = i;
        tkvj_rng_seed(&w[i].rng, r->o.seed, 100 + (uint64_t)i);
        w[i].client = tkvj_client(r, r->cluster.endpoints);
        if (w[i].client == NULL ||
            pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
            /* the ones started stop with r->stop */
            atomic_store(&r->stop, 1);
            for (n = 0; n < i; n++) {
                pthread_join(w[n].thread, NULL);
                tkv_close(w[n].client);
            }
            tkv_close(w[i].client);
            free(w);
            return -1;
        }
    }
    *out = w;
    return 0;
}

void tkvj_workers_join(struct tkvj_run *r, struct tkvj_worker *w)
{
    int i;
    long total = 0;
    if (w == NULL) {
        return;
    }
    for (i = 0; i < r->o.concurrency; i++) {
        pthread_join(w[i].thread, NULL);
        tkv_close(w[i].client);
        total += w[i].ops;
    }
    tkvj_log("workers done: %ld ops", total);
    free(w);
}

int tkvj_workers_final(struct tkvj_run *r, int timeout_ms)
{
    struct tkvj_worker w;
    json_t *ops;
    int64_t deadline = tkvj_now_ms() + timeout_ms;
    size_t i;
    int rv = 0;

    if (r->wl->final_ops == NULL) {
        return 0;
    }
    ops = r->wl->final_ops(r->wl_state);
    if (ops == NULL) {
        return 0;
    }
    memset(&w, 0, sizeof w);
    w.run = r;
    w.slot = -1;
    /* a process id no worker used: the final reads' own process */
    w.process = atomic_load(&r->next_process) + r->o.concurrency;
    note_process(r, w.process);
    tkvj_rng_seed(&w.rng, r->o.seed, 99);
    w.client = tkvj_client(r, r->cluster.endpoints);
    for (i = 0; i < json_array_size(ops); i++) {
        json_t *op = json_array_get(ops, i);
        const char *f = json_string_value(json_array_get(op, 0));
        json_t *value = json_array_get(op, 1);
        enum tkvj_outcome out = TKVJ_FAIL;
        while (!atomic_load(&r->interrupt) && tkvj_now_ms() < deadline) {
            out = tkvj_worker_op(&w, f, value);
            if (out == TKVJ_OK) {
                break;
            }
            tkvj_sleep(r, 250, 0);
        }
        if (out != TKVJ_OK) {
            tkvj_log("final op %s did not succeed", f);
            rv = -1;
        }
    }
    json_decref(ops);
    tkv_close(w.client);
    return rv;
}
