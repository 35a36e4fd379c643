/* Client-side benchmark of the async API: keeps K requests in flight on
 * the client's one connection (each completion submits the next one from
 * the callback) and reports throughput and latency percentiles.
 *
 *   tuplekv-client-bench [-e ENDPOINTS] [--mode write|read|eventual]
 *                        [--inflight K] [--ops N] [--keys N] [--value B]
 *
 * Prints one JSON line: mode, inflight, ops, seconds, ops_per_s, p50_ms,
 * p99_ms, max_ms, errors. The full tuplekv-bench is a later issue. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tuplekv.h"

enum mode { WRITE, READ, EVENTUAL };

struct bench {
    struct tkv_client *c;
    enum mode mode;
    long ops;
    long keys;
    json_t *value;
    long issued; /* I/O thread after start */
    long done;
    long errors;
    double *lat_ms; /* per op */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

struct slot {
    struct bench *b;
    long op;
    double t0;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void done_cb(void *arg,
                    int rc,
                    struct tkv_response *res,
                    const struct tkv_err *err);

static int issue(struct slot *s)
{
    struct bench *b = s->b;
    struct tkv_opts o = {0, b->mode == EVENTUAL ? TKV_EVENTUAL : TKV_STRONG};
    struct tkv_err err;
    json_t *key;
    int rv;

    pthread_mutex_lock(&b->mu);
    if (b->issued >= b->ops) {
        pthread_mutex_unlock(&b->mu);
        return 1;
    }
    s->op = b->issued++;
    pthread_mutex_unlock(&b->mu);
    key = json_pack("[si]", "bench", (json_int_t)(s->op % b->keys));
    s->t0 = now_s();
    if (b->mode == WRITE) {
        rv = tkv_set_async(b->c, key, b->value, 0, &o, done_cb, s, &err);
    } else {
        rv = tkv_get_async(b->c, key, &o, done_cb, s, &err);
    }
    json_decref(key);
    if (rv != 0) {
        fprintf(stderr, "submit: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

static void done_cb(void *arg,
                    int rc,
                    struct tkv_response *res,
                    const struct tkv_err *err)
{
    struct slot *s = arg;
    struct bench *b = s->b;
    (void)res;
    b->lat_ms[s->op] = (now_s() - s->t0) * 1000.0;
    pthread_mutex_lock(&b->mu);
    if (rc != 0) {
        if (b->errors++ < 5) {
            fprintf(stderr, "op failed: %s\n", err->msg);
        }
    }
    b->done++;
    if (b->done == b->ops) {
        pthread_cond_signal(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    issue(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct bench b;
    struct tkv_config cfg;
    struct tkv_err err;
    struct slot *slots;
    const char *mode = "write";
    long inflight = 16;
    long vsize = 100;
    double t0;
    double secs;
    long i;
    char *pad;

    memset(&b, 0, sizeof b);
    tkv_config_init(&cfg);
    b.ops = 100000;
    b.keys = 10000;
    for (i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "-e") == 0) {
            cfg.endpoints = v;
        } else if (strcmp(a, "--mode") == 0) {
            mode = v;
        } else if (strcmp(a, "--inflight") == 0) {
            inflight = atol(v);
        } else if (strcmp(a, "--ops") == 0) {
            b.ops = atol(v);
        } else if (strcmp(a, "--keys") == 0) {
            b.keys = atol(v);
        } else if (strcmp(a, "--value") == 0) {
            vsize = atol(v);
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    b.mode = strcmp(mode, "read") == 0       ? READ
             : strcmp(mode, "eventual") == 0 ? EVENTUAL
                                             : WRITE;
    if (inflight < 1 || b.ops < 1 || b.keys < 1 || vsize < 0 ||
        inflight > 4000) {
        fprintf(stderr, "bad numbers\n");
        return 2;
    }
    cfg.max_inflight = (int)inflight + 16;
    if (tkv_connect(&cfg, &b.c, &err) != 0) {
        fprintf(stderr, "connect: %s\n", err.msg);
        return 1;
    }
    pad = malloc((size_t)vsize + 1);
    memset(pad, 'v', (size_t)vsize);
    pad[vsize] = '\0';
    b.value = json_pack("{ss}", "v", pad);
    free(pad);
    b.lat_ms = calloc((size_t)b.ops, sizeof *b.lat_ms);
    slots = calloc((size_t)inflight, sizeof *slots);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);

    if (b.mode != WRITE) {
        /* fill the keys first so reads find values */
        for (i = 0; i < b.keys; i++) {
            json_t *k = json_pack("[si]", "bench", (json_int_t)i);
            if (tkv_set(b.c, k, b.value, 0, NULL, NULL, &err) != 0) {
                fprintf(stderr, "fill: %s\n", err.msg);
                return 1;
            }
            json_decref(k);
        }
    }
    t0 = now_s();
    for (i = 0; i < inflight; i++) {
        slots[i].b = &b;
        if (issue(&slots[i]) != 0) {
            break;
        }
    }
    pthread_mutex_lock(&b.mu);
    while (b.done < b.ops) {
        pthread_cond_wait(&b.cv, &b.mu);
    }
    pthread_mutex_unlock(&b.mu);
    secs = now_s() - t0;
    qsort(b.lat_ms, (size_t)b.ops, sizeof *b.lat_ms, cmp_double);
    printf(
        "{\"mode\":\"%s\",\"inflight\":%ld,\"ops\":%ld,\"value_bytes\":"
        "%ld,\"seconds\":%.3f,\"ops_per_s\":%.0f,\"p50_ms\":%.3f,"
        "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%ld}\n",
        b.mode == WRITE  ? "write"
        : b.mode == READ ? "read"
                         : "eventual",
        inflight, b.ops, vsize, secs, (double)b.ops / secs, b.lat_ms[b.ops / 2],
        b.lat_ms[(long)((double)b.ops * 0.99)], b.lat_ms[b.ops - 1], b.errors);
    tkv_close(b.c);
    json_decref(b.value);
    free(b.lat_ms);
    free(slots);
    return b.errors == 0 ? 0 : 1;
}
