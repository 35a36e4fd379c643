/* tuplekv-bench: load generator for a tuplekv cluster on the async client
 * API, with the command line of etcd's tools/benchmark so that both can be
 * run with the same parameters.
 *
 *   tuplekv-bench [flags] put
 *   tuplekv-bench [flags] range [KEY [END]] [--consistency l|s]
 *   tuplekv-bench [flags] txn [--txn-keys K]
 *   tuplekv-bench [flags] ycsb --workload a|b|c|d|e|f
 *
 * Model (as etcd's tool): --clients closed-loop clients, each with one
 * request in flight, spread over --conns client handles (struct
 * tkv_client: one connection per node and one I/O thread each). A client
 * issues its next request from the completion callback of the previous one,
 * on the I/O thread; with --rate the main thread paces the starts instead.
 * A run ends after --total requests or --duration, whichever comes first.
 *
 * Flow: parse flags -> connect --conns handles -> warm up (one strong read
 * per handle: connections open and the leader is found before timing) ->
 * prepare (range: write the key; ycsb: load --key-space-size records) ->
 * run (progress line on stderr after 2 s) -> print etcd's summary on stdout
 * -> --json FILE with every figure.
 *
 * Failures: an op that fails is counted in the error distribution and its
 * client goes on; setup failures (bad flags, no cluster) exit non-zero. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_keys.h"
#include "bench_stats.h"
#include "tuplekv.h"

#define DEFAULT_SCAN_MAX 100 /* YCSB's maxscanlength */
#define LOAD_MIN_CLIENTS 128 /* ycsb load: at least this many in flight */
#define PROGRESS_AFTER_S 2.0 /* runs shorter than this print no progress */
#define INFLIGHT_SLACK 16

enum cmd { CMD_PUT, CMD_RANGE, CMD_TXN, CMD_YCSB };

/* Kinds of operation, the index into bench_rec.lat. */
enum optype { T_UPDATE, T_READ, T_SCAN, T_INSERT, T_RMW, T_LOAD };
static const char *const type_names[BENCH_MAX_TYPES] = {
    "update", "read", "scan", "insert", "rmw", "load"};

struct opts {
    enum cmd cmd;
    const char *cmd_name;
    const char *endpoints;
    unsigned conns, clients;
    size_t key_size, val_size;
    long total; /* 0: no limit (only with --duration) */
    int total_set;
    long key_space;
    double rate;     /* ops/s, 0: unlimited */
    double duration; /* s, 0: none */
    enum tkv_consistency consistency;
    const char *json_path;
    const char *trace_path;
    int precise, sample, sequential, skip_load;
    char workload; /* ycsb: 'a'..'f' */
    int uniform;   /* key choice: 1 uniform, 0 zipfian */
    int dist_set;
    double theta;
    unsigned scan_max;
    unsigned txn_keys;
    unsigned txn_attempts;
    int timeout_ms, dial_timeout_ms;
    const char *range_key, *range_end;
    unsigned load_clients;
};

/* --trace: one line per op of the run phase */
struct trace_ent {
    double start_s; /* since the start of the run */
    double lat_s;
    int type;
    int rc;
};

struct conn {
    struct tkv_client *c;
    json_t *value; /* owned: the --val-size string every write stores */
    struct bench_rec rec;
    long conflicts;       /* txn: CONFLICT replies that were retried */
    struct trace_ent *tr; /* owned, --trace only */
    size_t ntr, captr;
};

struct bench;

struct worker {
    struct bench *b;
    struct conn *cn;
    uint64_t rng;
    enum optype type;
    double t0;
    unsigned attempts;
    json_t *keys; /* owned while a txn runs: its keys (array) */
    json_t *key;  /* owned while a ycsb rmw runs */
    struct worker *next_idle;
};

enum phase { PH_LOAD, PH_RUN };

struct bench {
    struct opts o;
    struct conn *conns;
    unsigned nconns;
    struct bench_zipf zipf;
    json_t *range_key; /* owned */
    json_t *range_end; /* owned, may be NULL */

    /* one phase at a time */
    enum phase phase;
    struct worker *workers;
    unsigned nworkers;
    double t_start;    /* monotonic seconds */
    double wall_start; /* the same moment, Unix time (for --trace) */
    double deadline;   /* 0: none */
    long limit;        /* ops to issue, 0: none */
    atomic_long issued;
    atomic_int stop;
    atomic_uint active; /* unpaced: workers still issuing */
    struct bench_live live;

    /* ycsb inserts */
    atomic_long inserted; /* claimed insert numbers */
    atomic_long acked;    /* inserts that completed */

    /* paced mode (--rate) and the end of a phase */
    int paced;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct worker *idle; /* paced: workers waiting for the pacer */
    unsigned nidle;
    int finished;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "tuplekv-bench: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(2);
}

/* ---- keys and values ---------------------------------------------------- */

static json_t *key_of(const struct bench *b, uint64_t k)
{
    char buf[4096 + 32];
    size_t n;
    if (b->o.cmd == CMD_YCSB) {
        n = bench_key_ycsb(k, b->o.key_size, buf);
    } else {
        n = bench_key_plain(k, b->o.key_size, buf);
    }
    return json_pack("[s%]", buf, n);
}

/* A key number for the run phase. */
static uint64_t choose(struct worker *w)
{
    struct bench *b = w->b;
    uint64_t n = (uint64_t)b->o.key_space;

    if (b->o.cmd == CMD_YCSB && b->o.workload == 'd') {
        /* read-latest: zipfian rank counted back from the newest record */
        uint64_t max = n + (uint64_t)atomic_load(&b->acked);
        uint64_t z = bench_zipf_next(&b->zipf, &w->rng);
        return z < max ? max - 1 - z : 0;
    }
    if (b->o.uniform) {
        return bench_rand_below(&w->rng, n);
    }
    return bench_zipf_scrambled(&b->zipf, &w->rng);
}

/* The value a read-modify-write stores: the first 8 characters of the old
 * value read as a hex counter, plus one, then the --val-size padding. */
static json_t *modified_value(const struct conn *cn, const json_t *old)
{
    const char *pad = json_string_value(cn->value);
    size_t len = json_string_length(cn->value);
    unsigned long ctr = 0;
    char head[16];
    char *buf;
    json_t *v;

    if (len < 8) {
        return json_incref(cn->value);
    }
    if (old != NULL && json_is_string(old) && json_string_length(old) >= 8) {
        memcpy(head, json_string_value(old), 8);
        head[8] = '\0';
        ctr = strtoul(head, NULL, 16);
    }
    buf = malloc(len + 1);
    if (buf == NULL) {
        return NULL;
    }
    memcpy(buf, pad, len + 1);
    snprintf(head, sizeof head, "%08lx", (ctr + 1) & 0xffffffffUL);
    memcpy(buf, head, 8);
    v = json_stringn(buf, len);
    free(buf);
    return v;
}

/* ---- running ops ----------------------------------------------------------
 */

static void next(struct worker *w);
static int start_op(struct worker *w, long seq);

/* Record one finished op of w (rc 0: success). */
static void record(struct worker *w, int rc, const struct tkv_err *err)
{
    struct bench *b = w->b;
    double t = now_s();
    double lat = t - w->t0;
    char text[160];
    const char *etext = NULL;

    if (rc != 0) {
        /* the text is cut to the recorder's width anyway */
        snprintf(
            text, sizeof text, "%s: %.100s", tkv_errname(rc),
            err != NULL && err->msg[0] != '\0' ? err->msg : tkv_strerror(rc));
        etext = text;
        atomic_fetch_add_explicit(&b->live.errors, 1, memory_order_relaxed);
    } else {
        bench_live_add(&b->live, lat);
        if (w->type == T_INSERT) {
            atomic_fetch_add(&b->acked, 1);
        }
    }
    if (bench_rec_add(&w->cn->rec, w->type, t - b->t_start, lat, etext) != 0) {
        fprintf(stderr, "tuplekv-bench: out of memory recording\n");
        exit(1);
    }
    if (b->o.trace_path != NULL && b->phase == PH_RUN) {
        struct conn *cn = w->cn;
        if (cn->ntr == cn->captr) {
            size_t cap = cn->captr == 0 ? 65536 : cn->captr * 2;
            struct trace_ent *p = realloc(cn->tr, cap * sizeof *p);
            if (p == NULL) {
                fprintf(stderr, "tuplekv-bench: out of memory tracing\n");
                exit(1);
            }
            cn->tr = p;
            cn->captr = cap;
        }
        cn->tr[cn->ntr].start_s = w->t0 - b->t_start;
        cn->tr[cn->ntr].lat_s = lat;
        cn->tr[cn->ntr].type = w->type;
        cn->tr[cn->ntr].rc = rc;
        cn->ntr++;
    }
}

static void op_done(struct worker *w, int rc, const struct tkv_err *err)
{
    json_decref(w->keys);
    w->keys = NULL;
    json_decref(w->key);
    w->key = NULL;
    record(w, rc, err);
    next(w);
}

static void done_cb(void *arg,
                    int rc,
                    struct tkv_response *res,
                    const struct tkv_err *err)
{
    (void)res;
    op_done(arg, rc, err);
}

/* Claim the right to start one more op: its sequence number, or -1 when
 * the phase is over (limit reached, deadline passed, or stopped). */
static long claim(struct bench *b)
{
    long n;
    if (atomic_load_explicit(&b->stop, memory_order_relaxed)) {
        return -1;
    }
    if (b->deadline > 0 && now_s() >= b->deadline) {
        atomic_store(&b->stop, 1);
        return -1;
    }
    n = atomic_fetch_add(&b->issued, 1);
    if (b->limit > 0 && n >= b->limit) {
        atomic_store(&b->stop, 1);
        return -1;
    }
    return n;
}

static void worker_finished(struct worker *w)
{
    struct bench *b = w->b;
    if (atomic_fetch_sub(&b->active, 1) == 1) {
        pthread_mutex_lock(&b->mu);
        b->finished = 1;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
    }
}

/* Unpaced: keep starting ops until one goes asynchronous or the phase ends
 * (an op refused at submission is recorded and the next one tried). */
static void drive(struct worker *w)
{
    for (;;) {
        long seq = claim(w->b);
        if (seq < 0) {
            worker_finished(w);
            return;
        }
        if (start_op(w, seq) == 0) {
            return;
        }
    }
}

static void next(struct worker *w)
{
    struct bench *b = w->b;
    if (!b->paced) {
        drive(w);
        return;
    }
    pthread_mutex_lock(&b->mu);
    w->next_idle = b->idle;
    b->idle = w;
    b->nidle++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static struct tkv_opts read_opts(const struct bench *b)
{
    struct tkv_opts o = {b->o.timeout_ms, b->o.consistency};
    return o;
}

static struct tkv_opts write_opts(const struct bench *b)
{
    struct tkv_opts o = {b->o.timeout_ms, TKV_STRONG};
    return o;
}

/* Submission failed at once: record it; the caller moves on. */
static int refused(struct worker *w, int rc, const struct tkv_err *err)
{
    json_decref(w->keys);
    w->keys = NULL;
    json_decref(w->key);
    w->key = NULL;
    record(w, rc, err);
    return -1;
}

static int submit_set(struct worker *w,
                      json_t *key /* consumed */,
                      const json_t *value)
{
    struct tkv_opts o = write_opts(w->b);
    struct tkv_err err;
    int rc;

    w->t0 = now_s();
    rc = tkv_set_async(w->cn->c, key, value, 0, &o, done_cb, w, &err);
    json_decref(key);
    return rc == 0 ? 0 : refused(w, rc, &err);
}

static int submit_get(struct worker *w, json_t *key /* consumed */)
{
    struct tkv_opts o = read_opts(w->b);
    struct tkv_err err;
    int rc;

    w->t0 = now_s();
    rc = tkv_get_async(w->cn->c, key, &o, done_cb, w, &err);
    json_decref(key);
    return rc == 0 ? 0 : refused(w, rc, &err);
}

static int submit_range(struct worker *w)
{
    struct bench *b = w->b;
    struct tkv_opts o = read_opts(b);
    struct tkv_err err;
    int rc;

    w->t0 = now_s();
    if (b->range_end == NULL) {
        rc = tkv_get_async(w->cn->c, b->range_key, &o, done_cb, w, &err);
    } else {
        struct tkv_selector sel = {NULL, b->range_key, b->range_end};
        rc = tkv_list_async(w->cn->c, &sel, NULL, &o, done_cb, w, &err);
    }
    return rc == 0 ? 0 : refused(w, rc, &err);
}

static int submit_scan(struct worker *w, json_t *start /* consumed */)
{
    struct bench *b = w->b;
    struct tkv_opts o = read_opts(b);
    struct tkv_selector sel = {NULL, start, NULL};
    struct tkv_list_opts lo = {0, 0, NULL};
    struct tkv_err err;
    int rc;

    lo.limit = 1 + (unsigned)bench_rand_below(&w->rng, b->o.scan_max);
    w->t0 = now_s();
    rc = tkv_list_async(w->cn->c, &sel, &lo, &o, done_cb, w, &err);
    json_decref(start);
    return rc == 0 ? 0 : refused(w, rc, &err);
}

/* -- txn: read K keys (strong), then commit checks of their versions and
 *    the modified values as one atomic batch; on CONFLICT read again. -- */

static void txn_commit_cb(void *arg,
                          int rc,
                          struct tkv_response *res,
                          const struct tkv_err *err);

static int txn_read(struct worker *w);

static void txn_read_cb(void *arg,
                        int rc,
                        struct tkv_response *res,
                        const struct tkv_err *err)
{
    struct worker *w = arg;
    struct tkv_opts o = write_opts(w->b);
    struct tkv_atomic *a;
    struct tkv_err e;
    size_t i, n = json_array_size(w->keys);

    if (rc != 0) {
        op_done(w, rc, err);
        return;
    }
    a = tkv_atomic_new();
    if (a == NULL) {
        tkv_err_set(&e, TKV_ENOMEM, "out of memory");
        op_done(w, TKV_ENOMEM, &e);
        return;
    }
    for (i = 0; i < n && rc == 0; i++) {
        const json_t *key = json_array_get(w->keys, i);
        struct tkv_item *it =
            n == 1 ? res->item : (i < res->nitems ? res->items[i] : NULL);
        json_t *nv = modified_value(w->cn, it != NULL ? it->value : NULL);
        rc = tkv_atomic_check(a, key, it != NULL ? it->version : 0, &e);
        if (rc == 0) {
            rc = tkv_atomic_set(a, key, nv, 0, &e);
        }
        json_decref(nv);
    }
    if (rc == 0) {
        rc = tkv_atomic_commit_async(w->cn->c, a, &o, txn_commit_cb, w, &e);
    }
    tkv_atomic_free(a);
    if (rc != 0) {
        op_done(w, rc, &e);
    }
}

static void txn_commit_cb(void *arg,
                          int rc,
                          struct tkv_response *res,
                          const struct tkv_err *err)
{
    struct worker *w = arg;
    (void)res;
    if (rc == TKV_ECONFLICT && w->attempts < w->b->o.txn_attempts) {
        w->cn->conflicts++;
        if (txn_read(w) != 0) {
            next(w); /* the failure is recorded */
        }
        return;
    }
    op_done(w, rc, err);
}

static int txn_read(struct worker *w)
{
    struct tkv_opts o = {w->b->o.timeout_ms, TKV_STRONG};
    struct tkv_err err;
    int rc;

    w->attempts++;
    if (json_array_size(w->keys) == 1) {
        rc = tkv_get_async(w->cn->c, json_array_get(w->keys, 0), &o,
                           txn_read_cb, w, &err);
    } else {
        rc = tkv_get_many_async(w->cn->c, w->keys, &o, txn_read_cb, w, &err);
    }
    return rc == 0 ? 0 : refused(w, rc, &err);
}

static int start_txn(struct worker *w)
{
    struct bench *b = w->b;
    unsigned i, j;
    uint64_t picked[64];

    w->keys = json_array();
    for (i = 0; i < b->o.txn_keys; i++) {
        uint64_t k;
        int dup;
        do { /* distinct keys: a batch may not check one key twice */
            k = choose(w);
            for (dup = 0, j = 0; j < i; j++) {
                dup |= picked[j] == k;
            }
        } while (dup);
        picked[i] = k;
        json_array_append_new(w->keys, key_of(b, k));
    }
    w->attempts = 0;
    w->t0 = now_s();
    return txn_read(w);
}

/* -- ycsb read-modify-write (workload F): get, then set; not atomic, as in
 *    YCSB. -- */

static void rmw_read_cb(void *arg,
                        int rc,
                        struct tkv_response *res,
                        const struct tkv_err *err)
{
    struct worker *w = arg;
    struct tkv_opts o = write_opts(w->b);
    struct tkv_err e;
    json_t *nv;

    if (rc != 0) {
        op_done(w, rc, err);
        return;
    }
    nv = modified_value(w->cn, res->item != NULL ? res->item->value : NULL);
    rc = tkv_set_async(w->cn->c, w->key, nv, 0, &o, done_cb, w, &e);
    json_decref(nv);
    if (rc != 0) {
        op_done(w, rc, &e);
    }
}

static int start_rmw(struct worker *w, json_t *key /* consumed */)
{
    struct tkv_opts o = read_opts(w->b);
    struct tkv_err err;
    int rc;

    w->key = key;
    w->t0 = now_s();
    rc = tkv_get_async(w->cn->c, key, &o, rmw_read_cb, w, &err);
    return rc == 0 ? 0 : refused(w, rc, &err);
}

/* YCSB's core workload mixes. */
static enum optype ycsb_pick(struct worker *w)
{
    double u = bench_rand01(&w->rng);
    switch (w->b->o.workload) {
        case 'a':
            return u < 0.5 ? T_READ : T_UPDATE;
        case 'b':
            return u < 0.95 ? T_READ : T_UPDATE;
        case 'c':
            return T_READ;
        case 'd':
            return u < 0.95 ? T_READ : T_INSERT;
        case 'e':
            return u < 0.95 ? T_SCAN : T_INSERT;
        default: /* 'f' */
            return u < 0.5 ? T_READ : T_RMW;
    }
}

/* Start op number seq; 0 when it went asynchronous, -1 when it was
 * refused at once (already recorded). */
static int start_op(struct worker *w, long seq)
{
    struct bench *b = w->b;

    if (b->phase == PH_LOAD) {
        w->type = T_LOAD;
        return submit_set(w, key_of(b, (uint64_t)seq), w->cn->value);
    }
    switch (b->o.cmd) {
        case CMD_PUT:
            w->type = T_UPDATE;
            return submit_set(
                w,
                key_of(b, b->o.sequential
                              ? (uint64_t)seq % (uint64_t)b->o.key_space
                              : choose(w)),
                w->cn->value);
        case CMD_RANGE:
            w->type = T_READ;
            return submit_range(w);
        case CMD_TXN:
            w->type = T_RMW;
            return start_txn(w);
        case CMD_YCSB:
            break;
    }
    w->type = ycsb_pick(w);
    switch (w->type) {
        case T_READ:
            return submit_get(w, key_of(b, choose(w)));
        case T_UPDATE:
            return submit_set(w, key_of(b, choose(w)), w->cn->value);
        case T_INSERT: {
            long k = b->o.key_space + atomic_fetch_add(&b->inserted, 1);
            return submit_set(w, key_of(b, (uint64_t)k), w->cn->value);
        }
        case T_SCAN:
            return submit_scan(w, key_of(b, choose(w)));
        default:
            return start_rmw(w, key_of(b, choose(w)));
    }
}

/* ---- phases ------------------------------------------------------------- */

static void progress(struct bench *b, double *last_t, long *last_n, int tty)
{
    double t = now_s();
    long n = atomic_load(&b->live.done);
    long e = atomic_load(&b->live.errors);
    double rate = t > *last_t ? (double)(n - *last_n) / (t - *last_t) : 0;

    fprintf(stderr, "%s[%6.1fs] %ld ops, %.0f ops/s, p99 %.3f ms",
            tty ? "\r" : "", t - b->t_start, n, rate,
            bench_live_quantile(&b->live, 0.99) * 1e3);
    if (e > 0) {
        fprintf(stderr, ", %ld errors", e);
    }
    fputs(tty ? "   " : "\n", stderr);
    *last_t = t;
    *last_n = n;
}

static void timed_wait(struct bench *b, double secs)
{
    struct timespec ts;
    double frac;
    clock_gettime(CLOCK_REALTIME, &ts);
    frac = (double)ts.tv_nsec / 1e9 + secs;
    ts.tv_sec += (time_t)frac;
    ts.tv_nsec = (long)((frac - floor(frac)) * 1e9);
    pthread_cond_timedwait(&b->cv, &b->mu, &ts);
}

/* Run one phase with nworkers clients; returns its wall time. */
static double run_phase(struct bench *b,
                        enum phase ph,
                        unsigned nworkers,
                        long limit,
                        double duration)
{
    int tty = isatty(2);
    int shown = 0;
    double last_t, t_end, next_t;
    long last_n = 0;
    unsigned i;

    b->phase = ph;
    b->nworkers = nworkers;
    b->workers = calloc(nworkers, sizeof *b->workers);
    if (b->workers == NULL) {
        fprintf(stderr, "tuplekv-bench: out of memory\n");
        exit(1);
    }
    memset(&b->live, 0, sizeof b->live);
    atomic_store(&b->issued, 0);
    atomic_store(&b->stop, 0);
    b->limit = limit;
    b->paced = ph == PH_RUN && b->o.rate > 0;
    b->idle = NULL;
    b->nidle = 0;
    b->finished = 0;
    for (i = 0; i < nworkers; i++) {
        struct worker *w = &b->workers[i];
        w->b = b;
        w->cn = &b->conns[i % b->nconns];
        w->rng = bench_fnv64(((uint64_t)getpid() << 32) ^ (uint64_t)i ^
                             (uint64_t)(now_s() * 1e9));
    }
    b->t_start = now_s();
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        b->wall_start = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    b->deadline = duration > 0 ? b->t_start + duration : 0;
    last_t = b->t_start;

    if (!b->paced) {
        atomic_store(&b->active, nworkers);
        for (i = 0; i < nworkers; i++) {
            drive(&b->workers[i]);
        }
        pthread_mutex_lock(&b->mu);
        while (!b->finished) {
            timed_wait(b, tty ? 0.5 : 2.0);
            if (!b->finished && now_s() - b->t_start >= PROGRESS_AFTER_S) {
                progress(b, &last_t, &last_n, tty);
                shown = 1;
            }
        }
        pthread_mutex_unlock(&b->mu);
    } else {
        /* The pacer: one start every 1/rate s on a fixed schedule; a pacer
         * late by more than 20 ms (no idle client, a slow wakeup) drops
         * the missed starts instead of bursting them. */
        double interval = 1.0 / b->o.rate, last_p = b->t_start;
        for (i = 0; i < nworkers; i++) {
            b->workers[i].next_idle = b->idle;
            b->idle = &b->workers[i];
        }
        b->nidle = nworkers;
        next_t = b->t_start;
        for (;;) {
            struct worker *w;
            long seq;
            double t = now_s();
            if (t < next_t) {
                struct timespec d;
                d.tv_sec = (time_t)(next_t - t);
                d.tv_nsec = (long)((next_t - t - (double)d.tv_sec) * 1e9);
                nanosleep(&d, NULL);
            }
            next_t = fmax(next_t + interval, now_s() - 0.02);
            pthread_mutex_lock(&b->mu);
            while (b->idle == NULL) {
                timed_wait(b, 0.5);
            }
            w = b->idle;
            b->idle = w->next_idle;
            b->nidle--;
            pthread_mutex_unlock(&b->mu);
            seq = claim(b);
            if (seq < 0 || start_op(w, seq) != 0) {
                next(w); /* back to idle */
                if (seq < 0) {
                    break;
                }
            }
            if (now_s() - last_p >= (tty ? 0.5 : 2.0) &&
                now_s() - b->t_start >= PROGRESS_AFTER_S) {
                last_p = now_s();
                progress(b, &last_t, &last_n, tty);
                shown = 1;
            }
        }
        pthread_mutex_lock(&b->mu);
        while (b->nidle < nworkers) {
            timed_wait(b, 0.5);
        }
        pthread_mutex_unlock(&b->mu);
    }
    t_end = now_s();
    if (shown) {
        /* the closing line: averages over the whole phase */
        last_t = b->t_start;
        last_n = 0;
        progress(b, &last_t, &last_n, tty);
        if (tty) {
            fputc('\n', stderr);
        }
    }
    free(b->workers);
    b->workers = NULL;
    return t_end - b->t_start;
}

/* ---- flags -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs(
        "usage: tuplekv-bench [flags] put\n"
        "       tuplekv-bench [flags] range [KEY [END]] [--consistency l|s]\n"
        "       tuplekv-bench [flags] txn [--txn-keys K]\n"
        "       tuplekv-bench [flags] ycsb --workload a|b|c|d|e|f\n"
        "\n"
        "Commands (flags as etcd's tools/benchmark):\n"
        "  put     set random keys of the key space\n"
        "  range   read one key (KEY: a JSON array or a one-part string key;\n"
        "          none: write one key of --val-size bytes first and read "
        "it);\n"
        "          with END, list [KEY, END)\n"
        "  txn     read-modify-write transactions: strong read of --txn-keys\n"
        "          keys, then one atomic commit checking their versions;\n"
        "          retried on conflict (up to --txn-attempts runs)\n"
        "  ycsb    YCSB core workloads over --key-space-size records (loaded\n"
        "          first unless --skip-load): a 50/50 read/update, b 95/5,\n"
        "          c read only, d 95/5 read-latest/insert, e 95/5 scan/insert\n"
        "          (scan: list of 1..--scan-max keys), f 50/50 read/rmw\n"
        "\n"
        "Flags:\n"
        "  --endpoints H:P,...     cluster client addresses (default\n"
        "                          $TUPLEKV_ENDPOINTS or " TKV_DEFAULT_ENDPOINTS
        ")\n"
        "  --conns N               client handles (connection + I/O thread)"
        " (1)\n"
        "  --clients N             requests in flight (closed-loop clients)"
        " (1)\n"
        "  --key-size N            key bytes (8)\n"
        "  --val-size N            value bytes (8)\n"
        "  --total N               requests to issue (10000; no limit when\n"
        "                          only --duration is given)\n"
        "  --duration D            stop after D (10s, 500ms, 1m)\n"
        "  --key-space-size N      distinct keys / ycsb records (1; ycsb"
        " 100000)\n"
        "  --rate R                starts per second (0: unlimited)\n"
        "  --consistency l|s       reads: l strong (linearizable), s"
        " eventual\n"
        "  --distribution zipfian|uniform  key choice (put/range/txn:"
        " uniform,\n"
        "                          ycsb: zipfian)\n"
        "  --zipfian-constant X    zipf theta (0.99)\n"
        "  --sequential-keys       put: keys in order, not random\n"
        "  --txn-keys K            txn: keys per transaction (1)\n"
        "  --txn-attempts N        txn: runs before giving up (10)\n"
        "  --scan-max N            ycsb e: longest scan (100)\n"
        "  --skip-load             ycsb: records are loaded already\n"
        "  --load-clients N        ycsb load: in flight (max(128,"
        " clients))\n"
        "  --timeout D             per request (library default 5s)\n"
        "  --dial-timeout D        one TCP connect\n"
        "  --json FILE             write every figure as JSON\n"
        "  --trace FILE            write one line per op: start (s since the\n"
        "                          run began), latency (ms), kind, result\n"
        "  --precise               full precision (%g) in the summary\n"
        "  --sample                also print ops completed per second\n"
        "  --target-leader         accepted for etcd compatibility (the\n"
        "                          library always talks to the leader)\n",
        f);
}

/* Go-style durations: 10s, 1.5s, 250ms, 2m, 1m30s, 100us; a bare number
 * is seconds. -1 when malformed. */
static double parse_duration(const char *s)
{
    double total = 0;
    const char *p = s;
    if (*p == '\0') {
        return -1;
    }
    while (*p != '\0') {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0) {
            return -1;
        }
        p = end;
        if (strncmp(p, "ms", 2) == 0) {
            total += v / 1e3;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            total += v / 1e6;
            p += 2;
        } else if (*p == 's') {
            total += v;
            p++;
        } else if (*p == 'm') {
            total += v * 60;
            p++;
        } else if (*p == 'h') {
            total += v * 3600;
            p++;
        } else if (*p == '\0' && p == end) {
            total += v;
        } else {
            return -1;
        }
    }
    return total;
}

static long parse_long(const char *flag, const char *v, long min, long max)
{
    char *end;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max) {
        fprintf(stderr, "tuplekv-bench: %s: bad number '%s' (%ld..%ld)\n", flag,
                v, min, max);
        exit(2);
    }
    return x;
}

static void parse_flags(int argc, char **argv, struct opts *o)
{
    const char *pos[4];
    int npos = 0;
    int i;

    memset(o, 0, sizeof *o);
    o->conns = 1;
    o->clients = 1;
    o->key_size = 8;
    o->val_size = 8;
    o->total = 10000;
    o->key_space = 1;
    o->consistency = TKV_STRONG;
    o->theta = 0.99;
    o->scan_max = DEFAULT_SCAN_MAX;
    o->txn_keys = 1;
    o->txn_attempts = 10;
    o->workload = 0;
    int key_space_set = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        char name[64];
        const char *v = NULL;
        const char *eq;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            if (npos == 4) {
                die("too many arguments at '%s'", a);
            }
            pos[npos++] = a;
            continue;
        }
        eq = strchr(a, '=');
        snprintf(name, sizeof name, "%.*s",
                 (int)(eq != NULL ? (size_t)(eq - a) : strlen(a)), a);
        /* boolean flags */
        if (strcmp(name, "--precise") == 0) {
            o->precise = 1;
            continue;
        } else if (strcmp(name, "--sample") == 0) {
            o->sample = 1;
            continue;
        } else if (strcmp(name, "--target-leader") == 0) {
            continue;
        } else if (strcmp(name, "--sequential-keys") == 0) {
            o->sequential = 1;
            continue;
        } else if (strcmp(name, "--skip-load") == 0) {
            o->skip_load = 1;
            continue;
        }
        if (eq != NULL) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            die("%s needs a value", name);
        }
        if (strcmp(name, "--endpoints") == 0) {
            o->endpoints = v;
        } else if (strcmp(name, "--conns") == 0) {
            o->conns = (unsigned)parse_long(name, v, 1, 256);
        } else if (strcmp(name, "--clients") == 0) {
            o->clients = (unsigned)parse_long(name, v, 1, 100000);
        } else if (strcmp(name, "--key-size") == 0) {
            o->key_size = (size_t)parse_long(name, v, 1, 2000);
        } else if (strcmp(name, "--val-size") == 0) {
            o->val_size = (size_t)parse_long(name, v, 0, 1000000);
        } else if (strcmp(name, "--total") == 0) {
            o->total = parse_long(name, v, 1, 1L << 40);
            o->total_set = 1;
        } else if (strcmp(name, "--key-space-size") == 0) {
            o->key_space = parse_long(name, v, 1, 1L << 40);
            key_space_set = 1;
        } else if (strcmp(name, "--rate") == 0) {
            o->rate = (double)parse_long(name, v, 0, 1L << 30);
        } else if (strcmp(name, "--duration") == 0) {
            o->duration = parse_duration(v);
            if (o->duration <= 0) {
                die("--duration: bad duration '%s'", v);
            }
        } else if (strcmp(name, "--consistency") == 0) {
            if (strcmp(v, "l") == 0) {
                o->consistency = TKV_STRONG;
            } else if (strcmp(v, "s") == 0) {
                o->consistency = TKV_EVENTUAL;
            } else {
                die("--consistency: l or s, not '%s'", v);
            }
        } else if (strcmp(name, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(name, "--trace") == 0) {
            o->trace_path = v;
        } else if (strcmp(name, "--workload") == 0) {
            if (strlen(v) != 1 || strchr("abcdefABCDEF", v[0]) == NULL) {
                die("--workload: one of a b c d e f, not '%s'", v);
            }
            o->workload = (char)(v[0] | 0x20);
        } else if (strcmp(name, "--distribution") == 0) {
            if (strcmp(v, "uniform") == 0) {
                o->uniform = 1;
            } else if (strcmp(v, "zipfian") == 0) {
                o->uniform = 0;
            } else {
                die("--distribution: zipfian or uniform, not '%s'", v);
            }
            o->dist_set = 1;
        } else if (strcmp(name, "--zipfian-constant") == 0) {
            o->theta = strtod(v, NULL);
            if (!(o->theta > 0 && o->theta < 1)) {
                die("--zipfian-constant: in (0, 1), not '%s'", v);
            }
        } else if (strcmp(name, "--txn-keys") == 0) {
            o->txn_keys = (unsigned)parse_long(name, v, 1, 64);
        } else if (strcmp(name, "--txn-attempts") == 0) {
            o->txn_attempts = (unsigned)parse_long(name, v, 1, 1000);
        } else if (strcmp(name, "--scan-max") == 0) {
            o->scan_max = (unsigned)parse_long(name, v, 1, TKV_MAX_BATCH);
        } else if (strcmp(name, "--load-clients") == 0) {
            o->load_clients = (unsigned)parse_long(name, v, 1, 100000);
        } else if (strcmp(name, "--timeout") == 0) {
            double d = parse_duration(v);
            if (d <= 0) {
                die("--timeout: bad duration '%s'", v);
            }
            o->timeout_ms = (int)(d * 1e3 + 0.5);
        } else if (strcmp(name, "--dial-timeout") == 0) {
            double d = parse_duration(v);
            if (d <= 0) {
                die("--dial-timeout: bad duration '%s'", v);
            }
            o->dial_timeout_ms = (int)(d * 1e3 + 0.5);
        } else {
            die("unknown flag %s (see --help)", name);
        }
    }
    if (npos == 0) {
        usage(stderr);
        exit(2);
    }
    o->cmd_name = pos[0];
    if (strcmp(pos[0], "put") == 0) {
        o->cmd = CMD_PUT;
    } else if (strcmp(pos[0], "range") == 0) {
        o->cmd = CMD_RANGE;
        o->range_key = npos > 1 ? pos[1] : NULL;
        o->range_end = npos > 2 ? pos[2] : NULL;
    } else if (strcmp(pos[0], "txn") == 0) {
        o->cmd = CMD_TXN;
    } else if (strcmp(pos[0], "ycsb") == 0) {
        o->cmd = CMD_YCSB;
        if (o->workload == 0) {
            die("%s needs --workload a|b|c|d|e|f", "ycsb");
        }
        if (!key_space_set) {
            o->key_space = 100000;
        }
        if (!o->dist_set) {
            o->uniform = 0;
        }
    } else {
        die("unknown command '%s' (put, range, txn, ycsb)", pos[0]);
    }
    if (o->cmd != CMD_YCSB && !o->dist_set) {
        o->uniform = 1;
    }
    if ((o->cmd == CMD_RANGE && npos > 3) ||
        (o->cmd != CMD_RANGE && npos > 1)) {
        die("too many arguments for %s", pos[0]);
    }
    if (o->duration > 0 && !o->total_set) {
        o->total = 0; /* the duration alone ends the run */
    }
    if (o->cmd == CMD_TXN && o->txn_keys > o->key_space) {
        die("%s", "--txn-keys must not exceed --key-space-size");
    }
}

/* ---- setup -------------------------------------------------------------- */

static json_t *parse_key_arg(const char *s)
{
    json_t *k;
    if (s[0] == '[') {
        json_error_t je;
        k = json_loads(s, 0, &je);
        if (k == NULL || !json_is_array(k)) {
            die("KEY '%s' is not a JSON array", s);
        }
        return k;
    }
    return json_pack("[s]", s);
}

static json_t *make_value(size_t n, uint64_t *rng)
{
    static const char alnum[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    char *buf = malloc(n + 1);
    json_t *v;
    size_t i;
    if (buf == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        buf[i] = alnum[bench_rand_below(rng, sizeof alnum - 1)];
    }
    buf[n] = '\0';
    v = json_stringn(buf, n);
    free(buf);
    return v;
}

static void connect_all(struct bench *b, unsigned max_clients)
{
    unsigned i;
    uint64_t rng = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull;

    b->nconns = b->o.conns;
    b->conns = calloc(b->nconns, sizeof *b->conns);
    if (b->conns == NULL) {
        die("%s", "out of memory");
    }
    for (i = 0; i < b->nconns; i++) {
        struct tkv_config cfg;
        struct tkv_err err;
        tkv_config_init(&cfg);
        cfg.endpoints = b->o.endpoints;
        cfg.max_inflight =
            (int)((max_clients + b->nconns - 1) / b->nconns + INFLIGHT_SLACK);
        if (b->o.timeout_ms > 0) {
            cfg.timeout_ms = b->o.timeout_ms;
        }
        if (b->o.dial_timeout_ms > 0) {
            cfg.connect_timeout_ms = b->o.dial_timeout_ms;
        }
        if (tkv_connect(&cfg, &b->conns[i].c, &err) != 0) {
            die("connect: %s", err.msg);
        }
        /* one value per handle: a json_t is not shared across I/O threads */
        b->conns[i].value = make_value(b->o.val_size, &rng);
        bench_rec_init(&b->conns[i].rec);
    }
}

/* One strong read per handle: its connections open and it learns the
 * leader before the clock starts. */
static void warm_up(struct bench *b)
{
    json_t *k = json_pack("[s]", "tuplekv-bench-warmup");
    unsigned i;
    for (i = 0; i < b->nconns; i++) {
        struct tkv_item *it = NULL;
        struct tkv_err err;
        if (tkv_get(b->conns[i].c, k, NULL, &it, &err) != 0) {
            fprintf(stderr, "tuplekv-bench: cluster not ready: %s\n", err.msg);
            exit(1);
        }
        tkv_item_free(it);
    }
    json_decref(k);
}

/* ---- report ------------------------------------------------------------- */

static void add_args_json(const struct bench *b, json_t *root)
{
    const struct opts *o = &b->o;
    json_t *a = json_object();
    json_object_set_new(
        a, "endpoints",
        json_string(o->endpoints != NULL ? o->endpoints
                                         : (getenv("TUPLEKV_ENDPOINTS")
                                                ? getenv("TUPLEKV_ENDPOINTS")
                                                : TKV_DEFAULT_ENDPOINTS)));
    json_object_set_new(a, "conns", json_integer(o->conns));
    json_object_set_new(a, "clients", json_integer(o->clients));
    json_object_set_new(a, "key_size", json_integer((json_int_t)o->key_size));
    json_object_set_new(a, "val_size", json_integer((json_int_t)o->val_size));
    json_object_set_new(a, "total", json_integer(o->total));
    json_object_set_new(a, "duration_s", json_real(o->duration));
    json_object_set_new(a, "key_space_size", json_integer(o->key_space));
    json_object_set_new(a, "rate", json_real(o->rate));
    json_object_set_new(a, "consistency",
                        json_string(o->consistency == TKV_STRONG ? "l" : "s"));
    json_object_set_new(a, "distribution",
                        json_string(o->uniform ? "uniform" : "zipfian"));
    if (!o->uniform) {
        json_object_set_new(a, "zipfian_constant", json_real(o->theta));
    }
    if (o->cmd == CMD_YCSB) {
        char w[2] = {o->workload, 0};
        json_object_set_new(a, "workload", json_string(w));
        json_object_set_new(a, "scan_max", json_integer(o->scan_max));
    }
    if (o->cmd == CMD_TXN) {
        json_object_set_new(a, "txn_keys", json_integer(o->txn_keys));
        json_object_set_new(a, "txn_attempts", json_integer(o->txn_attempts));
    }
    if (o->cmd == CMD_RANGE) {
        json_object_set_new(a, "key", json_deep_copy(b->range_key));
        if (b->range_end != NULL) {
            json_object_set_new(a, "end", json_deep_copy(b->range_end));
        }
    }
    json_object_set_new(root, "args", a);
}

static int report(struct bench *b, double wall, json_t *load_json)
{
    const char *fmt = b->o.precise ? "%g" : "%4.4f";
    struct bench_errs errs;
    struct bench_summary all, by[BENCH_MAX_TYPES];
    size_t n_all = 0, pos = 0, nsec = 0;
    long err_all = 0, conflicts = 0;
    long errs_by[BENCH_MAX_TYPES] = {0};
    double *lats;
    long *per_sec;
    int t, kinds = 0;
    unsigned i;
    json_t *root, *by_json, *ts, *ej;
    size_t k;

    memset(&errs, 0, sizeof errs);
    for (i = 0; i < b->nconns; i++) {
        struct bench_rec *r = &b->conns[i].rec;
        for (t = 0; t < BENCH_MAX_TYPES; t++) {
            n_all += r->lat[t].n;
            errs_by[t] += r->errors[t];
            err_all += r->errors[t];
        }
        if (r->nsec > nsec) {
            nsec = r->nsec;
        }
        bench_errs_merge(&errs, &r->errs);
        conflicts += b->conns[i].conflicts;
    }
    lats = malloc((n_all > 0 ? n_all : 1) * sizeof *lats);
    per_sec = calloc(nsec > 0 ? nsec : 1, sizeof *per_sec);
    if (lats == NULL || per_sec == NULL) {
        die("%s", "out of memory");
    }
    /* per kind first (each sorted in its own slice), then all together */
    for (t = 0; t < BENCH_MAX_TYPES; t++) {
        size_t start = pos;
        for (i = 0; i < b->nconns; i++) {
            struct bench_vec *v = &b->conns[i].rec.lat[t];
            memcpy(lats + pos, v->v, v->n * sizeof *lats);
            pos += v->n;
        }
        bench_summarize(lats + start, pos - start, errs_by[t], wall, &by[t]);
        if (pos > start || errs_by[t] > 0) {
            kinds++;
        }
    }
    for (i = 0; i < b->nconns; i++) {
        for (k = 0; k < b->conns[i].rec.nsec; k++) {
            per_sec[k] += b->conns[i].rec.per_sec[k];
        }
    }
    while (nsec > 0 && per_sec[nsec - 1] == 0 && (double)nsec > wall + 1) {
        nsec--;
    }
    bench_summarize(lats, n_all, err_all, wall, &all);

    if (b->o.cmd == CMD_RANGE) {
        printf("bench with %s range\n", b->o.consistency == TKV_STRONG
                                            ? "linearizable"
                                            : "serializable");
    }
    bench_print_summary(stdout, &all, fmt);
    if (kinds > 1) {
        for (t = 0; t < BENCH_MAX_TYPES; t++) {
            if (by[t].ok == 0 && by[t].errors == 0) {
                continue;
            }
            printf(
                "\n[%s] ops %ld, errors %ld, %.1f/s, average %.3f ms, "
                "p50 %.3f ms, p99 %.3f ms, slowest %.3f ms\n",
                type_names[t], by[t].ok, by[t].errors, by[t].rps,
                by[t].average * 1e3, by[t].pct[2] * 1e3, by[t].pct[6] * 1e3,
                by[t].slowest * 1e3);
        }
    }
    if (b->o.cmd == CMD_TXN) {
        printf("\nTransactions: %ld committed, %ld conflicts retried\n", all.ok,
               conflicts);
    }
    if (b->o.sample) {
        printf("\nOps per second:\n");
        for (k = 0; k < nsec; k++) {
            printf("  %zu\t%ld\n", k, per_sec[k]);
        }
    }
    bench_print_errors(stdout, &errs);
    fflush(stdout);

    if (b->o.json_path != NULL) {
        root = json_object();
        json_object_set_new(root, "tool", json_string("tuplekv-bench"));
        json_object_set_new(root, "command", json_string(b->o.cmd_name));
        add_args_json(b, root);
        json_object_set_new(root, "summary", bench_summary_json(&all));
        by_json = json_object();
        for (t = 0; t < BENCH_MAX_TYPES; t++) {
            if (by[t].ok > 0 || by[t].errors > 0) {
                json_object_set_new(by_json, type_names[t],
                                    bench_summary_json(&by[t]));
            }
        }
        json_object_set_new(root, "by_op", by_json);
        ts = json_array();
        for (k = 0; k < nsec; k++) {
            json_array_append_new(ts, json_integer(per_sec[k]));
        }
        json_object_set_new(root, "ops_per_second", ts);
        ej = json_array();
        for (k = 0; k < errs.n; k++) {
            json_array_append_new(
                ej, json_pack("{s:s,s:I}", "error", errs.e[k].text, "count",
                              (json_int_t)errs.e[k].count));
        }
        if (errs.other > 0) {
            json_array_append_new(
                ej, json_pack("{s:s,s:I}", "error", "other", "count",
                              (json_int_t)errs.other));
        }
        json_object_set_new(root, "error_distribution", ej);
        if (b->o.cmd == CMD_TXN) {
            json_object_set_new(root, "conflicts_retried",
                                json_integer(conflicts));
        }
        if (load_json != NULL) {
            json_object_set(root, "load", load_json);
        }
        if (json_dump_file(root, b->o.json_path,
                           JSON_INDENT(1) | JSON_SORT_KEYS) != 0) {
            fprintf(stderr, "tuplekv-bench: cannot write %s\n", b->o.json_path);
            json_decref(root);
            free(lats);
            free(per_sec);
            return 1;
        }
        json_decref(root);
    }
    free(lats);
    free(per_sec);
    return 0;
}

static int cmp_trace(const void *a, const void *b)
{
    const struct trace_ent *x = a, *y = b;
    return x->start_s < y->start_s ? -1 : x->start_s > y->start_s;
}

static int write_trace(struct bench *b)
{
    struct trace_ent *all;
    size_t n = 0, i, k;
    FILE *f;

    for (i = 0; i < b->nconns; i++) {
        n += b->conns[i].ntr;
    }
    all = malloc((n > 0 ? n : 1) * sizeof *all);
    f = fopen(b->o.trace_path, "w");
    if (all == NULL || f == NULL) {
        fprintf(stderr, "tuplekv-bench: cannot write %s\n", b->o.trace_path);
        free(all);
        if (f != NULL) {
            fclose(f);
        }
        return 1;
    }
    for (i = 0, k = 0; i < b->nconns; i++) {
        memcpy(all + k, b->conns[i].tr, b->conns[i].ntr * sizeof *all);
        k += b->conns[i].ntr;
    }
    qsort(all, n, sizeof *all, cmp_trace);
    fprintf(f, "# run started at Unix time %.6f\n", b->wall_start);
    fprintf(f, "# start_s latency_ms op result\n");
    for (i = 0; i < n; i++) {
        fprintf(f, "%.6f %.3f %s %s\n", all[i].start_s, all[i].lat_s * 1e3,
                type_names[all[i].type], tkv_errname(all[i].rc));
    }
    free(all);
    return fclose(f) == 0 ? 0 : 1;
}

/* ---- main --------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct bench b;
    unsigned load_clients, i;
    json_t *load_json = NULL;
    double wall;
    int rc;

    memset(&b, 0, sizeof b);
    parse_flags(argc, argv, &b.o);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    setvbuf(stderr, NULL, _IOLBF, 0);

    if (!b.o.uniform || (b.o.cmd == CMD_YCSB && b.o.workload == 'd')) {
        bench_zipf_init(&b.zipf, (uint64_t)b.o.key_space, b.o.theta);
    }
    load_clients =
        b.o.load_clients > 0
            ? b.o.load_clients
            : (b.o.clients > LOAD_MIN_CLIENTS ? b.o.clients : LOAD_MIN_CLIENTS);
    connect_all(&b, b.o.cmd == CMD_YCSB && load_clients > b.o.clients
                        ? load_clients
                        : b.o.clients);
    warm_up(&b);

    if (b.o.cmd == CMD_RANGE) {
        struct tkv_err err;
        if (b.o.range_key != NULL) {
            b.range_key = parse_key_arg(b.o.range_key);
            if (b.o.range_end != NULL) {
                b.range_end = parse_key_arg(b.o.range_end);
            }
        } else {
            b.range_key = key_of(&b, 0);
            if (tkv_set(b.conns[0].c, b.range_key, b.conns[0].value, 0, NULL,
                        NULL, &err) != 0) {
                fprintf(stderr, "tuplekv-bench: writing the range key: %s\n",
                        err.msg);
                return 1;
            }
        }
    }
    if (b.o.cmd == CMD_YCSB && !b.o.skip_load) {
        double secs;
        long ok = 0, bad = 0;
        fprintf(stderr, "loading %ld records (%u in flight)...\n",
                b.o.key_space, load_clients);
        secs = run_phase(&b, PH_LOAD, load_clients, b.o.key_space, 0);
        for (i = 0; i < b.nconns; i++) {
            ok += (long)b.conns[i].rec.lat[T_LOAD].n;
            bad += b.conns[i].rec.errors[T_LOAD];
            bench_rec_free(&b.conns[i].rec);
            bench_rec_init(&b.conns[i].rec);
        }
        fprintf(stderr, "loaded %ld records in %.2f s (%.0f/s), %ld errors\n",
                ok, secs, (double)ok / secs, bad);
        load_json = json_pack("{s:I,s:I,s:f,s:f}", "records", (json_int_t)ok,
                              "errors", (json_int_t)bad, "seconds", secs,
                              "per_s", (double)ok / secs);
        if (bad > 0) {
            fprintf(stderr, "tuplekv-bench: load failed\n");
            return 1;
        }
    }

    wall = run_phase(&b, PH_RUN, b.o.clients, b.o.total, b.o.duration);
    rc = report(&b, wall, load_json);
    if (b.o.trace_path != NULL && write_trace(&b) != 0) {
        rc = 1;
    }

    for (i = 0; i < b.nconns; i++) {
        tkv_close(b.conns[i].c);
        json_decref(b.conns[i].value);
        bench_rec_free(&b.conns[i].rec);
        free(b.conns[i].tr);
    }
    free(b.conns);
    json_decref(b.range_key);
    json_decref(b.range_end);
    json_decref(load_json);
    return rc;
}
