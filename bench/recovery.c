/* tuplekv-recovery: measures issue 6's snapshot and recovery targets on a
 * running local cluster laid out as deploy/cluster.sh lays it out (node I:
 * DIR/nodeI/{pid,log,data}, clients on 127.0.0.1:PORT+I-1).
 *
 *   load      write keys 0..--keys-1 (tuplekv-bench put's keys: one-part,
 *             the number zero-padded to --key-size; --val-size values) in
 *             atomic batches, then wait until every node holds them
 *   snapshot  a steady write load for --duration while the nodes take their
 *             snapshots; write p99 inside snapshot windows against outside
 *   restart   stop --target (follower, leader or all) with --signal, start
 *             it again with `cluster.sh start I`, time its way back
 *   failover  under a steady write load, SIGKILL the leader --repeat times;
 *             time from the kill to a new leader and to the first write
 *             acknowledged after it; restart the old leader between rounds
 *
 * The write load: --clients closed-loop writers (one request in flight
 * each) on one client handle with every endpoint; each sets a uniformly
 * chosen key of the --keys loaded ones; the library follows redirects and
 * fails over by itself.
 *
 * Clocks: every figure is CLOCK_MONOTONIC seconds. Node log lines (UTC wall
 * clock, ms) and snapshot file mtimes are moved onto it with the offset
 * between CLOCK_REALTIME and CLOCK_MONOTONIC, a process's start time
 * (/proc/PID/stat, ticks since boot) with the CLOCK_BOOTTIME offset.
 *
 * Snapshot windows come from the node logs (raft/fsm.c: "snapshot at index
 * N: started child" or "started in steps" .. "bytes of state ... after
 * start") and from raft's snapshot file in the data dir (polled every
 * 20 ms): a window runs from the fork (or first step) to the later of
 * the hand-over and the file's last write (raft writes it, LZ4-compressed,
 * on its thread pool after the hand-over).
 *
 * Output: a summary on stdout, every figure in --json FILE. Exit status 0
 * when the measurement ran (whether or not a target was met), 1 when it
 * could not (no cluster, a milestone never reached), 2 on bad flags. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_keys.h"
#include "bench_stats.h"
#include "tuplekv.h"

#define MAX_NODES 9
#define POLL_S 0.005     /* milestone polling period */
#define DIR_POLL_S 0.020 /* snapshot file polling period */
#define PROBE_TIMEOUT_MS 200
#define EXIT_WAIT_S 20.0    /* a stopped node must be gone by then */
#define MARGIN_BEFORE_S 0.2 /* around snapshot windows: neither class */
#define MARGIN_AFTER_S 1.0

extern char **environ;

struct opts {
    const char *cmd;
    const char *dir;
    int client_port;
    int nodes;
    const char *cluster_sh;
    long keys;
    size_t key_size, val_size;
    unsigned clients, batch;
    double duration, warmup, timeout, guard;
    int repeat;
    const char *target;
    int sig;
    const char *json_path;
    const char *trace_path;
};

struct ctx {
    struct opts o;
    char endpoints[MAX_NODES * 24];
    struct tkv_client *admin; /* owned: status calls and the marker */
    double real_off;          /* CLOCK_REALTIME - CLOCK_MONOTONIC */
    double boot_off;          /* CLOCK_BOOTTIME - CLOCK_MONOTONIC */
    json_t *out;              /* owned: the --json document */
};

/* ---- clocks, files, nodes ------------------------------------------------ */

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static void sleep_s(double s)
{
    struct timespec ts;
    if (s <= 0) {
        return;
    }
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "tuplekv-recovery: %s%s%s\n", what, why ? ": " : "",
            why ? why : "");
    exit(1);
}

static json_t *loadavg_json(void)
{
    double a[3] = {0, 0, 0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fscanf(f, "%lf %lf %lf", &a[0], &a[1], &a[2]) != 3) {
            a[0] = a[1] = a[2] = -1;
        }
        fclose(f);
    }
    return json_pack("[fff]", a[0], a[1], a[2]);
}

static void node_file(const struct ctx *x,
                      int i,
                      const char *name,
                      char *out,
                      size_t n)
{
    snprintf(out, n, "%s/node%d/%s", x->o.dir, i, name);
}

static void node_addr(const struct ctx *x, int i, char *out, size_t n)
{
    snprintf(out, n, "127.0.0.1:%d", x->o.client_port + i - 1);
}

/* 1 when pid is a live process (a zombie is not: nobody may reap it). */
static int pid_alive(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    char *p;
    int alive = 0;
    if (pid <= 0 || kill(pid, 0) != 0) {
        return 0;
    }
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(buf, sizeof buf, f) != NULL && (p = strrchr(buf, ')')) != NULL) {
        alive = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    }
    fclose(f);
    return alive;
}

/* Node i's pid from its pid file, 0 when it is not running. */
static pid_t node_pid(const struct ctx *x, int i)
{
    char path[4096];
    long pid = 0;
    FILE *f;
    node_file(x, i, "pid", path, sizeof path);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%ld", &pid) != 1) {
        pid = 0;
    }
    fclose(f);
    return pid_alive((pid_t)pid) ? (pid_t)pid : 0;
}

/* When process pid started, on the monotonic clock (10 ms resolution). */
static double proc_start_s(const struct ctx *x, pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ticks = 0;
    FILE *f;
    char *p;
    int field;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(buf, sizeof buf, f) == NULL || (p = strrchr(buf, ')')) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);
    /* after "comm)" come fields 3.. ; starttime is field 22 */
    for (field = 3; field <= 22 && p != NULL; field++) {
        p = strchr(p + 1, ' ');
    }
    if (p == NULL || sscanf(p, " %llu", &ticks) != 1) {
        return 0;
    }
    return (double)ticks / (double)sysconf(_SC_CLK_TCK) - x->boot_off;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Run `cluster.sh start I` for each of ids at once; pids[] gets the
 * shells, for reap_starts(). */
static void spawn_starts(const struct ctx *x,
                         const int *ids,
                         int n,
                         pid_t *pids /* OUT */)
{
    posix_spawn_file_actions_t fa;
    int k;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* its chatter to stderr */
    for (k = 0; k < n; k++) {
        char num[16];
        char *argv[4];
        snprintf(num, sizeof num, "%d", ids[k]);
        argv[0] = (char *)x->o.cluster_sh;
        argv[1] = "start";
        argv[2] = num;
        argv[3] = NULL;
        if (posix_spawn(&pids[k], x->o.cluster_sh, &fa, NULL, argv, environ) !=
            0) {
            die("cannot run", x->o.cluster_sh);
        }
    }
    posix_spawn_file_actions_destroy(&fa);
}

static void reap_starts(const pid_t *pids, int n)
{
    int k, status;
    for (k = 0; k < n; k++) {
        if (waitpid(pids[k], &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            die("cluster.sh start failed for a node", NULL);
        }
    }
}

/* ---- status -------------------------------------------------------------- */

static struct tkv_node_status *status_of(const struct ctx *x,
                                         int i,
                                         int timeout_ms)
{
    struct tkv_opts op = {timeout_ms, TKV_STRONG};
    struct tkv_node_status *st = NULL;
    char addr[32];
    node_addr(x, i, addr, sizeof addr);
    if (tkv_node_status(x->admin, addr, &op, &st, NULL) != 0) {
        return NULL;
    }
    return st;
}

/* The node that calls itself leader (of the highest term); 0 if none.
 * *term and *commit (may be NULL) get its term and commit index. */
static int find_leader(const struct ctx *x, uint64_t *term, uint64_t *commit)
{
    int i, leader = 0;
    uint64_t best = 0;
    for (i = 1; i <= x->o.nodes; i++) {
        struct tkv_node_status *st = status_of(x, i, PROBE_TIMEOUT_MS);
        if (st == NULL) {
            continue;
        }
        if (strcmp(st->role, "leader") == 0 && st->term >= best) {
            best = st->term;
            leader = i;
            if (term != NULL) {
                *term = st->term;
            }
            if (commit != NULL) {
                *commit = st->commit_index;
            }
        }
        tkv_node_status_free(st);
    }
    return leader;
}

/* Wait until every node answers and has applied what the leader had
 * committed when we started waiting. */
static int wait_caught_up(const struct ctx *x, double limit_s)
{
    double end = mono_s() + limit_s;
    uint64_t commit = 0;
    while (mono_s() < end) {
        int i, ok = 1;
        if (commit == 0 && find_leader(x, NULL, &commit) == 0) {
            sleep_s(0.05);
            continue;
        }
        for (i = 1; i <= x->o.nodes && ok; i++) {
            struct tkv_node_status *st = status_of(x, i, PROBE_TIMEOUT_MS);
            ok = st != NULL && st->applied_index >= commit;
            tkv_node_status_free(st);
        }
        if (ok) {
            return 0;
        }
        sleep_s(0.05);
    }
    return -1;
}

static json_t *key_json(const struct ctx *x, uint64_t k)
{
    char buf[1100];
    size_t n = bench_key_plain(k, x->o.key_size, buf);
    return json_pack("[s%]", buf, n);
}

static json_t *make_value(size_t n, uint64_t seed)
{
    char *s = malloc(n + 1);
    json_t *v;
    size_t i;
    if (s == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        s[i] = (char)('a' + bench_rand(&seed) % 26);
    }
    v = json_stringn(s, n);
    free(s);
    return v;
}

static double rel(double t, double from)
{
    return t > 0 ? t - from : -1.0;
}

/* ---- node logs ----------------------------------------------------------- */

/* The line's leading UTC timestamp on the monotonic clock, 0 if none. */
static double log_time(const struct ctx *x, const char *line)
{
    struct tm tm;
    int ms;
    memset(&tm, 0, sizeof tm);
    if (sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (double)timegm(&tm) + ms / 1000.0 - x->real_off;
}

typedef void (*log_line_fn)(void *arg, int node, double t, const char *msg);

/* Call fn for every line node i logged after byte `from`; msg is the text
 * after "[node I] ". */
static void scan_log(const struct ctx *x,
                     int i,
                     off_t from,
                     log_line_fn fn,
                     void *arg)
{
    char path[4096], line[2048];
    FILE *f;
    node_file(x, i, "log", path, sizeof path);
    f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    if (fseeko(f, from, SEEK_SET) == 0) {
        while (fgets(line, sizeof line, f) != NULL) {
            double t = log_time(x, line);
            char *msg = strstr(line, "] ");
            if (t > 0 && msg != NULL) {
                fn(arg, i, t, msg + 2);
            }
        }
    }
    fclose(f);
}

/* ---- the write load ------------------------------------------------------ */

struct wev {
    double t0, t1; /* submitted, completed */
    int rc;
};

struct writer;

struct wslot {
    struct writer *w;
    double t0; /* the first attempt to submit the current write */
    uint64_t rng;
    struct wslot *next_parked;
};

struct writer {
    const struct ctx *x;
    struct tkv_client *c; /* owned */
    json_t *value;        /* owned; only read once writers run */
    struct wslot *slots;  /* owned */
    unsigned nslots;
    pthread_mutex_t mu; /* guards ev and rec */
    struct wev *ev;     /* owned */
    size_t nev, cap;
    struct bench_rec rec; /* failures by text */
    struct wslot *parked; /* refused with TKV_EBUSY: to submit again */
    long busy;            /* how often that happened */
    pthread_t retry_thread;
    double t_start;
    atomic_int stop;
    atomic_uint active;
    atomic_llong last_ok_ns; /* completion of the latest success */
};

static void writer_record(struct writer *w,
                          double t0,
                          double t1,
                          int rc,
                          const char *text)
{
    pthread_mutex_lock(&w->mu);
    if (w->nev == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 65536;
        struct wev *ev = realloc(w->ev, cap * sizeof *ev);
        if (ev == NULL) {
            pthread_mutex_unlock(&w->mu);
            die("out of memory", NULL);
        }
        w->ev = ev;
        w->cap = cap;
    }
    w->ev[w->nev].t0 = t0;
    w->ev[w->nev].t1 = t1;
    w->ev[w->nev].rc = rc;
    w->nev++;
    if (rc != 0) {
        bench_rec_add(&w->rec, 0, t1 - w->t_start, t1 - t0, text);
    }
    pthread_mutex_unlock(&w->mu);
}

static void wslot_try(struct wslot *s);

static void wslot_done_cb(void *arg,
                          int rc,
                          struct tkv_response *res,
                          const struct tkv_err *err)
{
    struct wslot *s = arg;
    struct writer *w = s->w;
    double t1 = mono_s();
    (void)res;
    writer_record(w, s->t0, t1, rc, rc != 0 ? err->msg : NULL);
    if (rc == 0) {
        atomic_store(&w->last_ok_ns, (long long)(t1 * 1e9));
    }
    if (atomic_load(&w->stop)) {
        atomic_fetch_sub(&w->active, 1);
        return;
    }
    s->t0 = mono_s();
    wslot_try(s);
}

/* Submit the slot's next write. The library refuses an async write with
 * TKV_EBUSY while TKV__SEQ_WINDOW (1000) writes of the session are
 * unanswered, which happens when one write hangs in a failover while the
 * others go on: then the slot waits in `parked` and the latency counts
 * from the first attempt. */
static void wslot_try(struct wslot *s)
{
    struct writer *w = s->w;
    json_t *key = key_json(w->x, bench_rand_below(&s->rng, w->x->o.keys));
    struct tkv_err err;
    int rv;
    rv = key == NULL ? TKV_ENOMEM
                     : tkv_set_async(w->c, key, w->value, 0, NULL,
                                     wslot_done_cb, s, &err);
    json_decref(key);
    if (rv == TKV_EBUSY) {
        int stopped;
        pthread_mutex_lock(&w->mu);
        stopped = atomic_load(&w->stop); /* the retry thread may be gone */
        if (!stopped) {
            s->next_parked = w->parked;
            w->parked = s;
            w->busy++;
        }
        pthread_mutex_unlock(&w->mu);
        if (stopped) {
            atomic_fetch_sub(&w->active, 1);
        }
    } else if (rv != 0) {
        /* the callback will not run: this writer stops here */
        writer_record(w, s->t0, mono_s(), rv, tkv_strerror(rv));
        atomic_fetch_sub(&w->active, 1);
    }
}

/* Every millisecond, submit the parked slots again. */
static void *writer_retry_main(void *arg)
{
    struct writer *w = arg;
    for (;;) {
        struct wslot *s;
        int stop = atomic_load(&w->stop);
        pthread_mutex_lock(&w->mu);
        s = w->parked;
        w->parked = NULL;
        pthread_mutex_unlock(&w->mu);
        if (stop && s == NULL) {
            return NULL;
        }
        while (s != NULL) {
            struct wslot *next = s->next_parked;
            if (stop) {
                atomic_fetch_sub(&w->active, 1);
            } else {
                wslot_try(s);
            }
            s = next;
        }
        sleep_s(0.001);
    }
}

static void writer_start(struct writer *w, const struct ctx *x)
{
    struct tkv_config cfg;
    struct tkv_err err;
    unsigned i;

    memset(w, 0, sizeof *w);
    w->x = x;
    pthread_mutex_init(&w->mu, NULL);
    bench_rec_init(&w->rec);
    tkv_config_init(&cfg);
    cfg.endpoints = x->endpoints;
    cfg.max_inflight = (int)x->o.clients + 16;
    if (tkv_connect(&cfg, &w->c, &err) != 0) {
        die("connect", err.msg);
    }
    w->value = make_value(x->o.val_size, 42);
    w->nslots = x->o.clients;
    w->slots = calloc(w->nslots, sizeof *w->slots);
    if (w->value == NULL || w->slots == NULL) {
        die("out of memory", NULL);
    }
    w->t_start = mono_s();
    atomic_store(&w->active, w->nslots);
    if (pthread_create(&w->retry_thread, NULL, writer_retry_main, w) != 0) {
        die("cannot start a thread", NULL);
    }
    for (i = 0; i < w->nslots; i++) {
        w->slots[i].w = w;
        w->slots[i].rng = 0x5EED0000ull + i;
        w->slots[i].t0 = mono_s();
        wslot_try(&w->slots[i]);
    }
}

/* Stop submitting, wait for what is in flight (at most the client's
 * timeout), close the handle. The events stay for the analysis. */
static void writer_stop(struct writer *w)
{
    double end = mono_s() + 2.0 * TKV_DEFAULT_TIMEOUT_MS / 1000.0;
    atomic_store(&w->stop, 1);
    while (atomic_load(&w->active) > 0 && mono_s() < end) {
        sleep_s(0.002);
    }
    pthread_join(w->retry_thread, NULL);
    tkv_close(w->c);
    w->c = NULL;
}

static void writer_free(struct writer *w)
{
    json_decref(w->value);
    free(w->slots);
    free(w->ev);
    bench_rec_free(&w->rec);
    pthread_mutex_destroy(&w->mu);
}

/* --trace: every write in completion order, in tuplekv-bench's --trace
 * columns, to line stalls up with node logs. */
static void writer_trace(struct writer *w, const char *path)
{
    FILE *f;
    size_t k;
    if (path == NULL) {
        return;
    }
    f = fopen(path, "w");
    if (f == NULL) {
        die("cannot write", path);
    }
    fprintf(f, "# run started at Unix time %.6f\n",
            w->t_start + w->x->real_off);
    fprintf(f, "# start_s latency_ms op result\n");
    pthread_mutex_lock(&w->mu);
    for (k = 0; k < w->nev; k++) {
        fprintf(f, "%.6f %.3f set %s\n", w->ev[k].t0 - w->t_start,
                (w->ev[k].t1 - w->ev[k].t0) * 1e3, tkv_errname(w->ev[k].rc));
    }
    pthread_mutex_unlock(&w->mu);
    fclose(f);
}

static double writer_last_ok(struct writer *w)
{
    return (double)atomic_load(&w->last_ok_ns) / 1e9;
}

/* ---- statistics ---------------------------------------------------------- */

#define P50 2 /* indexes into bench_pctls */
#define P99 6

/* Summary of the latencies in lats[0..n) (sorted in place) as JSON. */
static json_t *lat_json(double *lats,
                        size_t n,
                        long errors,
                        double span_s,
                        struct bench_summary *s /* OUT */)
{
    bench_summarize(lats, n, errors, span_s, s);
    return json_pack("{sI sI sf sf sf sf sf}", "ok", (json_int_t)s->ok,
                     "errors", (json_int_t)s->errors, "ops_per_s", s->rps,
                     "p50_ms", s->pct[P50] * 1e3, "p99_ms", s->pct[P99] * 1e3,
                     "p999_ms", s->pct[7] * 1e3, "max_ms", s->slowest * 1e3);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_of(double *v, size_t n)
{
    if (n == 0) {
        return 0;
    }
    qsort(v, n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- load ---------------------------------------------------------------- */

struct loader {
    const struct ctx *x;
    struct tkv_client *c;
    json_t *value;
    atomic_long next; /* next batch number */
    atomic_long failed;
};

static void *load_main(void *arg)
{
    struct loader *l = arg;
    const struct opts *o = &l->x->o;
    long nb = (o->keys + o->batch - 1) / o->batch;
    long b;

    while ((b = atomic_fetch_add(&l->next, 1)) < nb) {
        struct tkv_atomic *a = tkv_atomic_new();
        long k, tries;
        int rv = TKV_ENOMEM;
        for (k = b * o->batch;
             a != NULL && k < (b + 1) * o->batch && k < o->keys; k++) {
            json_t *key = key_json(l->x, (uint64_t)k);
            rv = tkv_atomic_set(a, key, l->value, 0, NULL);
            json_decref(key);
            if (rv != 0) {
                break;
            }
        }
        /* sets are idempotent: a failed batch is simply sent again */
        for (tries = 0; rv == 0 && tries < 10; tries++) {
            rv = tkv_atomic_commit(l->c, a, NULL, NULL, NULL, NULL);
            if (rv == 0) {
                break;
            }
        }
        if (rv != 0) {
            atomic_fetch_add(&l->failed, 1);
        }
        tkv_atomic_free(a);
    }
    return NULL;
}

static int cmd_load(struct ctx *x)
{
    struct loader l;
    struct tkv_config cfg;
    struct tkv_err err;
    pthread_t th[64];
    unsigned i, n = x->o.clients > 64 ? 64 : x->o.clients;
    double t0, t1, t2;

    memset(&l, 0, sizeof l);
    l.x = x;
    tkv_config_init(&cfg);
    cfg.endpoints = x->endpoints;
    cfg.timeout_ms = 20000;
    if (tkv_connect(&cfg, &l.c, &err) != 0) {
        die("connect", err.msg);
    }
    l.value = make_value(x->o.val_size, 7);
    t0 = mono_s();
    for (i = 0; i < n; i++) {
        pthread_create(&th[i], NULL, load_main, &l);
    }
    for (i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
    }
    t1 = mono_s();
    tkv_close(l.c);
    json_decref(l.value);
    if (atomic_load(&l.failed) > 0) {
        fprintf(stderr, "tuplekv-recovery: %ld batches failed\n",
                atomic_load(&l.failed));
        return 1;
    }
    if (wait_caught_up(x, 120) != 0) {
        die("load", "the nodes did not catch up in 120 s");
    }
    t2 = mono_s();
    printf(
        "loaded %ld keys (%zu-byte keys, %zu-byte values) in %.1f s: "
        "%.0f keys/s, %u writers, batches of %u; all nodes applied "
        "after %.1f s more\n",
        x->o.keys, x->o.key_size, x->o.val_size, t1 - t0,
        (double)x->o.keys / (t1 - t0), n, x->o.batch, t2 - t1);
    json_object_set_new(
        x->out, "load",
        json_pack("{sI sf sf sf}", "keys", (json_int_t)x->o.keys, "seconds",
                  t1 - t0, "keys_per_s", (double)x->o.keys / (t1 - t0),
                  "catch_up_s", t2 - t1));
    return 0;
}

/* ---- snapshot: p99 inside and outside snapshot windows ------------------- */

struct snapwin {
    int node;
    uint64_t base, index; /* state forked at base; raft's index */
    double start, handover, written, put_done; /* 0: not seen */
    double pause_ms;
};

struct snapscan {
    struct snapwin w[256];
    int n;
    int elections; /* "became leader" lines: leadership changes */
};

static void snap_line(void *arg, int node, double t, const char *msg)
{
    struct snapscan *s = arg;
    unsigned long long base, idx, tail;
    size_t bytes;
    int pid, k;
    double ms;

    if (strncmp(msg, "became leader", 13) == 0) {
        s->elections++;
    } else if (sscanf(msg,
                      "snapshot at index %llu: started child %d (loop paused "
                      "%lf ms",
                      &base, &pid, &ms) == 3 ||
               sscanf(msg,
                      "snapshot at index %llu: started in steps (loop paused "
                      "%lf ms",
                      &base, &ms) == 2) {
        if (s->n < 256) {
            memset(&s->w[s->n], 0, sizeof s->w[0]);
            s->w[s->n].node = node;
            s->w[s->n].base = base;
            s->w[s->n].start = t;
            s->w[s->n].pause_ms = ms;
            s->n++;
        }
    } else if (sscanf(msg,
                      "snapshot at index %llu: %zu bytes of state at "
                      "%llu + %llu replayed",
                      &idx, &bytes, &base, &tail) == 4) {
        for (k = s->n - 1; k >= 0; k--) {
            if (s->w[k].node == node && s->w[k].base == base) {
                s->w[k].index = idx;
                s->w[k].handover = t;
                break;
            }
        }
    }
}

/* What polling the data dirs shows: each snapshot file's last write, and
 * when files vanish. raft writes the file, fsyncs it and the dir, then
 * deletes the segments and snapshots it no longer needs, all in one work
 * item: the first deletion after a snapshot file appeared ends its put. */
struct snapfile {
    int node;
    uint64_t index;
    double first_seen, written;
};

#define DIR_NAMES 512

struct dirpoll {
    struct snapfile f[512];
    int n;
    char names[MAX_NODES + 1][DIR_NAMES][48]; /* previous listing */
    int nnames[MAX_NODES + 1];
    double vanished[MAX_NODES + 1][256]; /* when a deletion was seen */
    int nvanished[MAX_NODES + 1];
};

static void note_snapshot_file(const struct ctx *x,
                               struct dirpoll *dp,
                               int i,
                               const char *dpath,
                               const char *name,
                               double now)
{
    unsigned long long term, idx, ts;
    char fpath[4400];
    struct stat st;
    int len = 0, k;

    if (sscanf(name, "snapshot-%llu-%llu-%llu%n", &term, &idx, &ts, &len) !=
            3 ||
        name[len] != '\0') {
        return; /* not a snapshot, or its .meta */
    }
    snprintf(fpath, sizeof fpath, "%s/%s", dpath, name);
    if (stat(fpath, &st) != 0) {
        return;
    }
    for (k = 0; k < dp->n; k++) {
        if (dp->f[k].node == i && dp->f[k].index == idx) {
            break;
        }
    }
    if (k == dp->n) {
        if (dp->n == 512) {
            return;
        }
        dp->n++;
        dp->f[k].node = i;
        dp->f[k].index = idx;
        dp->f[k].first_seen = now;
    }
    dp->f[k].written =
        (double)st.st_mtim.tv_sec + st.st_mtim.tv_nsec / 1e9 - x->real_off;
}

static void poll_data_dirs(const struct ctx *x, struct dirpoll *dp)
{
    static char cur[DIR_NAMES][48];
    int i;
    for (i = 1; i <= x->o.nodes; i++) {
        char dpath[4096];
        DIR *d;
        struct dirent *e;
        double now = mono_s();
        int ncur = 0, j, k, gone = 0;
        node_file(x, i, "data", dpath, sizeof dpath);
        d = opendir(dpath);
        if (d == NULL) {
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            if (ncur < DIR_NAMES && strlen(e->d_name) < 48) {
                strcpy(cur[ncur++], e->d_name);
            }
            note_snapshot_file(x, dp, i, dpath, e->d_name, now);
        }
        closedir(d);
        for (j = 0; j < dp->nnames[i] && !gone; j++) {
            for (k = 0; k < ncur && strcmp(dp->names[i][j], cur[k]) != 0; k++) {
            }
            /* open-N segments are renamed when closed: not a deletion */
            gone = k == ncur && strncmp(dp->names[i][j], "open-", 5) != 0;
        }
        if (gone && dp->nvanished[i] < 256) {
            dp->vanished[i][dp->nvanished[i]++] = now;
        }
        memcpy(dp->names[i], cur, sizeof cur[0] * (size_t)ncur);
        dp->nnames[i] = ncur;
    }
}

/* When the put of node's snapshot `index` ended, 0 if not seen. */
static double put_done(const struct dirpoll *dp, int node, uint64_t index)
{
    int k, j;
    for (k = 0; k < dp->n; k++) {
        if (dp->f[k].node != node || dp->f[k].index != index) {
            continue;
        }
        for (j = 0; j < dp->nvanished[node]; j++) {
            if (dp->vanished[node][j] >= dp->f[k].first_seen) {
                return dp->vanished[node][j];
            }
        }
    }
    return 0;
}

static double file_written(const struct dirpoll *dp, int node, uint64_t index)
{
    int k;
    for (k = 0; k < dp->n; k++) {
        if (dp->f[k].node == node && dp->f[k].index == index) {
            return dp->f[k].written;
        }
    }
    return 0;
}

struct span {
    double a, b;
};

static int cmp_span(const void *p, const void *q)
{
    const struct span *x = p, *y = q;
    return x->a < y->a ? -1 : x->a > y->a;
}

/* Merge overlapping spans in place; returns the new count. */
static int merge_spans(struct span *s, int n)
{
    int i, m = 0;
    qsort(s, (size_t)n, sizeof *s, cmp_span);
    for (i = 0; i < n; i++) {
        if (m > 0 && s[i].a <= s[m - 1].b) {
            if (s[i].b > s[m - 1].b) {
                s[m - 1].b = s[i].b;
            }
        } else {
            s[m++] = s[i];
        }
    }
    return m;
}

/* 1 when [a, b] meets a span widened by before/after. */
static int meets(const struct span *s,
                 int n,
                 double a,
                 double b,
                 double before,
                 double after)
{
    int i;
    for (i = 0; i < n; i++) {
        if (a <= s[i].b + after && b >= s[i].a - before) {
            return 1;
        }
    }
    return 0;
}

enum { C_BASE, C_SNAP, C_NEAR };

static int cmd_snapshot(struct ctx *x)
{
    struct writer w;
    struct snapscan scan;
    struct dirpoll *dp = calloc(1, sizeof *dp);
    struct span spans[256];
    off_t from[MAX_NODES + 1];
    double t_end, *lat[3], **sec_lat, *sec_p99[2];
    size_t nlat[3] = {0, 0, 0}, *sec_n, nsec, nsp99[2] = {0, 0}, k;
    long errs[3] = {0, 0, 0};
    int i, nsp = 0, cls;
    struct bench_summary sum[3];
    json_t *res, *wins, *series = json_array();
    const char *names[3] = {"baseline", "during_snapshot", "near_snapshot"};

    if (dp == NULL) {
        die("out of memory", NULL);
    }
    memset(&scan, 0, sizeof scan);
    for (i = 1; i <= x->o.nodes; i++) {
        char path[4096];
        node_file(x, i, "log", path, sizeof path);
        from[i] = file_size(path);
    }
    json_object_set_new(x->out, "loadavg_start", loadavg_json());
    writer_start(&w, x);
    t_end = w.t_start + x->o.duration;
    while (mono_s() < t_end) {
        poll_data_dirs(x, dp);
        sleep_s(DIR_POLL_S);
    }
    writer_stop(&w);
    json_object_set_new(x->out, "loadavg_end", loadavg_json());
    poll_data_dirs(x, dp);

    /* windows: fork .. the end of raft's put (or what was seen of it) */
    for (i = 1; i <= x->o.nodes; i++) {
        scan_log(x, i, from[i], snap_line, &scan);
    }
    wins = json_array();
    for (i = 0; i < scan.n; i++) {
        struct snapwin *sw = &scan.w[i];
        double end;
        sw->written = file_written(dp, sw->node, sw->index);
        sw->put_done = put_done(dp, sw->node, sw->index);
        end = sw->written > sw->handover ? sw->written : sw->handover;
        if (sw->put_done > end) {
            end = sw->put_done;
        }
        if (sw->put_done == 0) {
            end = mono_s(); /* still running when the load stopped */
        }
        spans[nsp].a = sw->start;
        spans[nsp].b = end;
        nsp++;
        json_array_append_new(
            wins,
            json_pack("{si sI sf sf sf sf sf sf}", "node", sw->node, "index",
                      (json_int_t)sw->index, "start_s", sw->start - w.t_start,
                      "fork_pause_ms", sw->pause_ms, "handover_s",
                      rel(sw->handover, sw->start), "written_s",
                      rel(sw->written, sw->start), "put_done_s",
                      rel(sw->put_done, sw->start), "length_s",
                      end - sw->start));
        printf(
            "snapshot node %d index %llu: at %6.1f s, fork pause %5.1f "
            "ms, hand-over %.2f s, file written %.2f s, put done %.2f s "
            "after the fork\n",
            sw->node, (unsigned long long)sw->index, sw->start - w.t_start,
            sw->pause_ms, rel(sw->handover, sw->start),
            rel(sw->written, sw->start), rel(sw->put_done, sw->start));
    }
    nsp = merge_spans(spans, nsp);

    /* classify every op; and per second of the run, p99 */
    nsec = (size_t)ceil(x->o.duration) + 30;
    sec_n = calloc(nsec, sizeof *sec_n);
    sec_lat = calloc(nsec, sizeof *sec_lat);
    for (cls = 0; cls < 3; cls++) {
        lat[cls] = malloc((w.nev + 1) * sizeof(double));
    }
    if (sec_n == NULL || sec_lat == NULL || !lat[0] || !lat[1] || !lat[2]) {
        die("out of memory", NULL);
    }
    for (k = 0; k < w.nev; k++) {
        const struct wev *e = &w.ev[k];
        size_t s = (size_t)(e->t0 - w.t_start);
        cls = meets(spans, nsp, e->t0, e->t1, 0, 0) ? C_SNAP
              : meets(spans, nsp, e->t0, e->t1, MARGIN_BEFORE_S, MARGIN_AFTER_S)
                  ? C_NEAR
                  : C_BASE;
        if (e->rc != 0) {
            errs[cls]++;
            continue;
        }
        lat[cls][nlat[cls]++] = e->t1 - e->t0;
        if (s < nsec) {
            sec_n[s]++;
        }
    }
    for (k = 0; k < nsec; k++) {
        sec_lat[k] = malloc((sec_n[k] + 1) * sizeof(double));
        if (sec_lat[k] == NULL) {
            die("out of memory", NULL);
        }
        sec_n[k] = 0;
    }
    for (k = 0; k < w.nev; k++) {
        size_t s = (size_t)(w.ev[k].t0 - w.t_start);
        if (w.ev[k].rc == 0 && s < nsec) {
            sec_lat[s][sec_n[s]++] = w.ev[k].t1 - w.ev[k].t0;
        }
    }
    sec_p99[0] = calloc(nsec, sizeof(double));
    sec_p99[1] = calloc(nsec, sizeof(double));
    for (k = 0; k + 1 < (size_t)x->o.duration && sec_p99[0] && sec_p99[1];
         k++) {
        struct bench_summary s1;
        double a = w.t_start + (double)k, b = a + 1.0;
        if (sec_n[k] < 100) {
            continue;
        }
        bench_summarize(sec_lat[k], sec_n[k], 0, 1.0, &s1);
        cls = meets(spans, nsp, a, b, 0, 0) ? C_SNAP
              : meets(spans, nsp, a, b, MARGIN_BEFORE_S, MARGIN_AFTER_S)
                  ? C_NEAR
                  : C_BASE;
        if (cls != C_NEAR) {
            sec_p99[cls == C_SNAP][nsp99[cls == C_SNAP]++] = s1.pct[P99];
        }
        json_array_append_new(
            series, json_pack("[i I f s]", (int)k, (json_int_t)sec_n[k],
                              s1.pct[P99] * 1e3, names[cls]));
    }

    res = json_object();
    json_object_set_new(res, "windows", wins);
    json_object_set_new(res, "merged_windows", json_integer(nsp));
    json_object_set_new(res, "leader_elections", json_integer(scan.elections));
    json_object_set_new(res, "seconds", series);
    for (cls = 0; cls < 3; cls++) {
        json_object_set_new(
            res, names[cls],
            lat_json(lat[cls], nlat[cls], errs[cls], x->o.duration, &sum[cls]));
    }
    {
        double med0 = median_of(sec_p99[0], nsp99[0]);
        double med1 = median_of(sec_p99[1], nsp99[1]);
        double max0 = nsp99[0] ? sec_p99[0][nsp99[0] - 1] : 0;
        double max1 = nsp99[1] ? sec_p99[1][nsp99[1] - 1] : 0;
        double ratio = sum[C_BASE].pct[P99] > 0
                           ? sum[C_SNAP].pct[P99] / sum[C_BASE].pct[P99]
                           : 0;
        json_object_set_new(
            res, "per_second_p99_ms",
            json_pack("{s{sI sf sf} s{sI sf sf}}", "baseline", "seconds",
                      (json_int_t)nsp99[0], "median", med0 * 1e3, "max",
                      max0 * 1e3, "during_snapshot", "seconds",
                      (json_int_t)nsp99[1], "median", med1 * 1e3, "max",
                      max1 * 1e3));
        json_object_set_new(res, "p99_ratio", json_real(ratio));
        printf(
            "\nwrites, %u in flight, %.0f s, %d snapshot windows "
            "(merged over nodes):\n",
            x->o.clients, x->o.duration, nsp);
        for (cls = 0; cls < 3; cls++) {
            printf(
                "  %-16s %8ld ok %5ld errors  p50 %7.2f ms  p99 %7.2f ms"
                "  max %7.1f ms\n",
                names[cls], sum[cls].ok, sum[cls].errors,
                sum[cls].pct[P50] * 1e3, sum[cls].pct[P99] * 1e3,
                sum[cls].slowest * 1e3);
        }
        if (nsp == 0) {
            printf(
                "  no snapshot started during the run: lengthen "
                "--duration (a node snapshots every snapshot_threshold "
                "log entries)\n");
        } else {
            printf(
                "  p99 during / baseline: %.2fx (target <= 2x: %s); "
                "leader elections during the run: %d\n",
                ratio, ratio <= 2 ? "met" : "missed", scan.elections);
        }
        printf(
            "  per-second p99: baseline median %.2f ms (max %.2f, %zu s), "
            "during snapshots median %.2f ms (max %.2f, %zu s)\n",
            med0 * 1e3, max0 * 1e3, nsp99[0], med1 * 1e3, max1 * 1e3, nsp99[1]);
    }
    bench_print_errors(stdout, &w.rec.errs);
    json_object_set_new(x->out, "snapshot", res);

    for (k = 0; k < nsec; k++) {
        free(sec_lat[k]);
    }
    free(sec_lat);
    free(sec_n);
    free(sec_p99[0]);
    free(sec_p99[1]);
    for (cls = 0; cls < 3; cls++) {
        free(lat[cls]);
    }
    writer_trace(&w, x->o.trace_path);
    writer_free(&w);
    free(dp);
    return 0;
}

/* ---- restart: a stopped node's way back ---------------------------------- */

/* Moments of one node's restart, monotonic seconds, 0 until reached. */
struct comeback {
    int node;
    pid_t old_pid, pid;
    double signalled, exited, spawned, proc_start;
    double log_starting, log_raft_started, log_leader_known;
    unsigned long long applied_at_start, keys_at_start;
    double listening;      /* first status answer */
    double eventual_any;   /* eventual read of key 0 found */
    double eventual_fresh; /* eventual read sees the marker written before */
    double caught_up;      /* applied >= the leader's commit before the stop */
    double strong_read, write; /* through this node's endpoint only */
    struct tkv_client *pinned; /* owned while watching */
};

static void comeback_line(void *arg, int node, double t, const char *msg)
{
    struct comeback *cb = arg;
    (void)node;
    if (strncmp(msg, "starting:", 9) == 0) {
        cb->log_starting = t;
    } else if (sscanf(msg,
                      "raft started: restarted from the data dir, "
                      "applied index %llu, %llu keys",
                      &cb->applied_at_start, &cb->keys_at_start) == 2) {
        cb->log_raft_started = t;
    } else if (cb->log_leader_known == 0 &&
               (strncmp(msg, "leader is ", 10) == 0 ||
                strncmp(msg, "became leader", 13) == 0)) {
        cb->log_leader_known = t;
    }
}

static json_t *comeback_json(const struct comeback *c)
{
    double t0 = c->proc_start;
    return json_pack(
        "{si sf sf sf sf sf sf sf sf sf sf sI sI}", "node", c->node, "stop_s",
        rel(c->exited, c->signalled), "spawn_to_proc_start_s",
        rel(c->proc_start, c->spawned), "raft_started_s",
        rel(c->log_raft_started, t0), "listening_s", rel(c->listening, t0),
        "leader_known_s", rel(c->log_leader_known, t0), "eventual_any_s",
        rel(c->eventual_any, t0), "eventual_fresh_s",
        rel(c->eventual_fresh, t0), "caught_up_s", rel(c->caught_up, t0),
        "strong_read_s", rel(c->strong_read, t0), "write_s", rel(c->write, t0),
        "applied_at_start", (json_int_t)c->applied_at_start, "keys_at_start",
        (json_int_t)c->keys_at_start);
}

static void comeback_print(const struct comeback *c)
{
    double t0 = c->proc_start;
    printf(
        "  node %d: stopped in %.3f s; from process start: raft started "
        "(snapshot + log loaded: applied %llu, %llu keys) %.3f s, "
        "answering %.3f s, leader known %.3f s, eventual read found "
        "%.3f s, sees pre-stop write %.3f s, caught up %.3f s",
        c->node, rel(c->exited, c->signalled), c->applied_at_start,
        c->keys_at_start, rel(c->log_raft_started, t0), rel(c->listening, t0),
        rel(c->log_leader_known, t0), rel(c->eventual_any, t0),
        rel(c->eventual_fresh, t0), rel(c->caught_up, t0));
    if (c->strong_read > 0 || c->write > 0) {
        printf(", strong read %.3f s, write %.3f s", rel(c->strong_read, t0),
               rel(c->write, t0));
    }
    printf("\n");
}

/* Write the marker key through the cluster: *version its versionstamp. */
static void write_marker(struct ctx *x, uint64_t *version)
{
    json_t *k = json_pack("[ss]", "tuplekv-recovery", "marker");
    json_t *v = json_real(mono_s());
    struct tkv_err err;
    if (tkv_set(x->admin, k, v, 0, NULL, version, &err) != 0) {
        die("marker write", err.msg);
    }
    json_decref(k);
    json_decref(v);
}

/* Signal the nodes and wait until each process is gone. */
static void stop_nodes(const struct ctx *x, struct comeback *cb, int n, int sig)
{
    int k;
    for (k = 0; k < n; k++) {
        cb[k].old_pid = node_pid(x, cb[k].node);
        if (cb[k].old_pid == 0) {
            die("a node to stop is not running", NULL);
        }
    }
    for (k = 0; k < n; k++) {
        cb[k].signalled = mono_s();
        kill(cb[k].old_pid, sig);
    }
    for (;;) {
        int left = 0;
        for (k = 0; k < n; k++) {
            if (cb[k].exited == 0 && !pid_alive(cb[k].old_pid)) {
                cb[k].exited = mono_s();
            }
            left += cb[k].exited == 0;
        }
        if (left == 0) {
            return;
        }
        if (mono_s() - cb[0].signalled > EXIT_WAIT_S) {
            die("a node did not exit", NULL);
        }
        sleep_s(0.001);
    }
}

/* Start the nodes again and poll each until every moment is reached or
 * --timeout passes. marker: version of the write made before the stop;
 * commit: the leader's commit index then. with_cluster_ops: also time a
 * strong read and a write through each node's endpoint. */
static void restart_and_watch(struct ctx *x,
                              struct comeback *cb,
                              int n,
                              off_t *log_from,
                              uint64_t marker,
                              uint64_t commit,
                              int with_cluster_ops)
{
    int ids[MAX_NODES], k, pending = 1;
    pid_t shells[MAX_NODES];
    double spawned, deadline;
    json_t *key0 = key_json(x, 0);
    json_t *mk = json_pack("[ss]", "tuplekv-recovery", "marker");
    json_t *val = json_string("tuplekv-recovery probe");
    json_t *wk = json_pack("[ss]", "tuplekv-recovery", "probe");

    for (k = 0; k < n; k++) {
        struct tkv_config cfg;
        char addr[32];
        ids[k] = cb[k].node;
        node_addr(x, cb[k].node, addr, sizeof addr);
        tkv_config_init(&cfg);
        cfg.endpoints = addr;
        cfg.connect_timeout_ms = PROBE_TIMEOUT_MS;
        if (tkv_connect(&cfg, &cb[k].pinned, NULL) != 0) {
            die("connect", addr);
        }
    }
    spawned = mono_s();
    spawn_starts(x, ids, n, shells);
    deadline = spawned + x->o.timeout;
    while (pending && mono_s() < deadline) {
        pending = 0;
        for (k = 0; k < n; k++) {
            struct comeback *c = &cb[k];
            struct tkv_opts ev = {PROBE_TIMEOUT_MS, TKV_EVENTUAL};
            struct tkv_opts st = {PROBE_TIMEOUT_MS, TKV_STRONG};
            struct tkv_item *it = NULL;
            double now;
            if (c->pid == 0) {
                pid_t p = node_pid(x, c->node);
                c->spawned = spawned;
                if (p == 0 || p == c->old_pid) {
                    pending = 1;
                    continue;
                }
                c->pid = p;
                c->proc_start = proc_start_s(x, p);
                if (c->proc_start == 0) {
                    c->proc_start = spawned;
                }
            }
            if (c->listening == 0 || c->caught_up == 0) {
                struct tkv_node_status *s = status_of(x, c->node, 100);
                now = mono_s();
                if (s != NULL && c->listening == 0) {
                    c->listening = now;
                }
                if (s != NULL && s->applied_index >= commit) {
                    c->caught_up = now;
                }
                tkv_node_status_free(s);
            }
            if (c->listening == 0) {
                pending = 1;
                continue;
            }
            if (c->eventual_any == 0 &&
                tkv_get(c->pinned, key0, &ev, &it, NULL) == 0 && it != NULL) {
                c->eventual_any = mono_s();
            }
            tkv_item_free(it);
            it = NULL;
            if (c->eventual_fresh == 0 &&
                tkv_get(c->pinned, mk, &ev, &it, NULL) == 0 && it != NULL &&
                it->version >= marker) {
                c->eventual_fresh = mono_s();
            }
            tkv_item_free(it);
            it = NULL;
            if (with_cluster_ops && c->strong_read == 0 &&
                tkv_get(c->pinned, mk, &st, &it, NULL) == 0) {
                c->strong_read = mono_s();
            }
            tkv_item_free(it);
            if (with_cluster_ops && c->write == 0 &&
                tkv_set(c->pinned, wk, val, 0, &st, NULL, NULL) == 0) {
                c->write = mono_s();
            }
            if (c->eventual_any == 0 || c->eventual_fresh == 0 ||
                c->caught_up == 0 ||
                (with_cluster_ops && (c->strong_read == 0 || c->write == 0))) {
                pending = 1;
            }
        }
        if (pending) {
            sleep_s(POLL_S);
        }
    }
    reap_starts(shells, n);
    for (k = 0; k < n; k++) {
        scan_log(x, cb[k].node, log_from[k], comeback_line, &cb[k]);
        tkv_close(cb[k].pinned);
        cb[k].pinned = NULL;
    }
    json_decref(key0);
    json_decref(mk);
    json_decref(val);
    json_decref(wk);
    if (pending) {
        fprintf(stderr,
                "tuplekv-recovery: some moments not reached within "
                "--timeout (reported as -1)\n");
    }
}

static int cmd_restart(struct ctx *x)
{
    struct comeback cb[MAX_NODES];
    off_t from[MAX_NODES];
    uint64_t marker = 0, commit = 0, term = 0;
    int n = 0, k, leader;
    struct tkv_node_status *ls;
    json_t *arr;

    memset(cb, 0, sizeof cb);
    if (wait_caught_up(x, 60) != 0) {
        die("restart", "the cluster is not healthy");
    }
    write_marker(x, &marker);
    leader = find_leader(x, &term, &commit);
    if (leader == 0) {
        die("restart", "no leader");
    }
    if (strcmp(x->o.target, "all") == 0) {
        for (k = 1; k <= x->o.nodes; k++) {
            cb[n++].node = k;
        }
    } else if (strcmp(x->o.target, "leader") == 0) {
        cb[n++].node = leader;
    } else { /* follower: the highest-numbered one */
        for (k = x->o.nodes; k >= 1; k--) {
            if (k != leader) {
                cb[n++].node = k;
                break;
            }
        }
    }
    ls = status_of(x, leader, PROBE_TIMEOUT_MS);
    printf("restart %s (node%s", x->o.target, n > 1 ? "s" : "");
    for (k = 0; k < n; k++) {
        printf(" %d", cb[k].node);
    }
    printf(
        ") with SIG%s; leader %d, commit %llu, last snapshot at %llu, "
        "%llu keys\n",
        x->o.sig == SIGKILL ? "KILL" : "TERM", leader,
        (unsigned long long)commit,
        ls ? (unsigned long long)ls->snapshot_index : 0ull,
        ls ? (unsigned long long)ls->keys : 0ull);
    json_object_set_new(
        x->out, "before",
        json_pack("{si sI sI sI}", "leader", leader, "commit_index",
                  (json_int_t)commit, "snapshot_index",
                  (json_int_t)(ls ? ls->snapshot_index : 0), "keys",
                  (json_int_t)(ls ? ls->keys : 0)));
    tkv_node_status_free(ls);
    for (k = 0; k < n; k++) {
        char path[4096];
        node_file(x, cb[k].node, "log", path, sizeof path);
        from[k] = file_size(path);
    }
    json_object_set_new(x->out, "loadavg_start", loadavg_json());
    stop_nodes(x, cb, n, x->o.sig);
    restart_and_watch(x, cb, n, from, marker, commit, 1);
    json_object_set_new(x->out, "loadavg_end", loadavg_json());
    arr = json_array();
    for (k = 0; k < n; k++) {
        comeback_print(&cb[k]);
        json_array_append_new(arr, comeback_json(&cb[k]));
    }
    json_object_set_new(x->out, "nodes", arr);
    return 0;
}

/* ---- failover: SIGKILL of the leader under writes ------------------------ */

struct elected {
    uint64_t term;
    double t;
};

static void elected_line(void *arg, int node, double t, const char *msg)
{
    struct elected *e = arg;
    unsigned long long term;
    (void)node;
    if (e->t == 0 && sscanf(msg, "became leader (term %llu)", &term) == 1 &&
        term > e->term) {
        e->t = t;
    }
}

static int cmd_failover(struct ctx *x)
{
    struct writer w;
    double *to_ack, *to_leader;
    int r, nok = 0;
    json_t *rounds = json_array();

    to_ack = calloc((size_t)x->o.repeat, sizeof(double));
    to_leader = calloc((size_t)x->o.repeat, sizeof(double));
    if (to_ack == NULL || to_leader == NULL) {
        die("out of memory", NULL);
    }
    if (wait_caught_up(x, 60) != 0) {
        die("failover", "the cluster is not healthy");
    }
    json_object_set_new(x->out, "loadavg_start", loadavg_json());
    writer_start(&w, x);
    sleep_s(x->o.warmup);
    for (r = 0; r < x->o.repeat; r++) {
        struct comeback cb;
        struct elected el;
        off_t from[MAX_NODES + 1];
        uint64_t term = 0, commit = 0, marker = 0;
        int leader, i, newl = 0, stragglers = 0, failed = 0;
        double t_kill, t_seen = 0, t_ack = 0, end, worst = 0;
        size_t k;

        if (wait_caught_up(x, 120) != 0) {
            die("failover", "the cluster did not recover");
        }
        sleep_s(1.0); /* a second of steady load before the kill */
        leader = find_leader(x, &term, &commit);
        if (leader == 0) {
            die("failover", "no leader");
        }
        for (i = 1; i <= x->o.nodes; i++) {
            char path[4096];
            node_file(x, i, "log", path, sizeof path);
            from[i] = file_size(path);
        }
        memset(&cb, 0, sizeof cb);
        cb.node = leader;
        stop_nodes(x, &cb, 1, SIGKILL);
        t_kill = cb.signalled;
        end = t_kill + x->o.timeout;
        while (mono_s() < end &&
               (t_seen == 0 || writer_last_ok(&w) <= t_kill + x->o.guard)) {
            for (i = 1; i <= x->o.nodes && t_seen == 0; i++) {
                struct tkv_node_status *s;
                if (i == leader) {
                    continue;
                }
                s = status_of(x, i, 50);
                if (s != NULL && strcmp(s->role, "leader") == 0 &&
                    s->term > term) {
                    t_seen = mono_s();
                    newl = i;
                }
                tkv_node_status_free(s);
            }
            sleep_s(0.002);
        }
        sleep_s(0.5);
        /* the first write acknowledged after the kill; acks within --guard
         * of it were answered by the old leader before it died */
        pthread_mutex_lock(&w.mu);
        for (k = 0; k < w.nev; k++) {
            const struct wev *e = &w.ev[k];
            if (e->t1 <= t_kill) {
                continue;
            }
            if (e->rc != 0) {
                failed++;
            } else if (e->t1 <= t_kill + x->o.guard) {
                stragglers++;
            } else if (t_ack == 0 || e->t1 < t_ack) {
                t_ack = e->t1;
            }
            if (e->t0 <= t_kill && e->t1 - e->t0 > worst) {
                worst = e->t1 - e->t0;
            }
        }
        pthread_mutex_unlock(&w.mu);
        el.term = term;
        el.t = 0;
        for (i = 1; i <= x->o.nodes; i++) {
            if (i != leader) {
                scan_log(x, i, from[i], elected_line, &el);
            }
        }
        to_ack[r] = t_ack > 0 ? t_ack - t_kill : -1;
        to_leader[r] = el.t > 0 ? el.t - t_kill : -1;
        if (t_ack > 0) {
            nok++;
        }
        printf(
            "round %d: killed leader %d (term %llu, commit %llu); new "
            "leader %d: elected after %.3f s (log), seen %.3f s; first "
            "write acked %.3f s after the kill (%d acks from before it "
            "within %.0f ms, %d failed); slowest write across the kill "
            "%.3f s\n",
            r + 1, leader, (unsigned long long)term, (unsigned long long)commit,
            newl, to_leader[r], t_seen > 0 ? t_seen - t_kill : -1.0, to_ack[r],
            stragglers, x->o.guard * 1e3, failed, worst);
        /* bring the old leader back and time that too (a SIGKILLed node
         * with the whole data set, restarted under load) */
        write_marker(x, &marker);
        find_leader(x, NULL, &commit);
        {
            char path[4096];
            off_t lf;
            node_file(x, leader, "log", path, sizeof path);
            lf = file_size(path);
            restart_and_watch(x, &cb, 1, &lf, marker, commit, 0);
        }
        comeback_print(&cb);
        json_array_append_new(
            rounds,
            json_pack("{si si sI sf sf sf si si sf so}", "killed", leader,
                      "new_leader", newl, "term", (json_int_t)term, "elected_s",
                      to_leader[r], "leader_seen_s",
                      t_seen > 0 ? t_seen - t_kill : -1.0, "first_ack_s",
                      to_ack[r], "stragglers", stragglers, "failed", failed,
                      "slowest_write_s", worst, "restart", comeback_json(&cb)));
    }
    writer_stop(&w);
    json_object_set_new(x->out, "loadavg_end", loadavg_json());
    {
        double a[64], l[64];
        int m = 0, n = 0;
        for (r = 0; r < x->o.repeat && r < 64; r++) {
            if (to_ack[r] >= 0) {
                a[m++] = to_ack[r];
            }
            if (to_leader[r] >= 0) {
                l[n++] = to_leader[r];
            }
        }
        qsort(a, (size_t)m, sizeof a[0], cmp_dbl);
        qsort(l, (size_t)n, sizeof l[0], cmp_dbl);
        if (m > 0) {
            printf(
                "\nkill -> first write acked, %d rounds: min %.3f s, "
                "median %.3f s, max %.3f s (target <= 1.5 s: %s)\n",
                m, a[0], median_of(a, (size_t)m), a[m - 1],
                a[m - 1] <= 1.5 ? "met every time" : "missed");
        }
        if (n > 0) {
            printf(
                "kill -> new leader elected: min %.3f s, median %.3f s, "
                "max %.3f s\n",
                l[0], median_of(l, (size_t)n), l[n - 1]);
        }
        json_object_set_new(
            x->out, "failover",
            json_pack("{so s{sf sf sf} s{sf sf sf}}", "rounds", rounds,
                      "first_ack_s", "min", m ? a[0] : -1.0, "median",
                      m ? median_of(a, (size_t)m) : -1.0, "max",
                      m ? a[m - 1] : -1.0, "elected_s", "min", n ? l[0] : -1.0,
                      "median", n ? median_of(l, (size_t)n) : -1.0, "max",
                      n ? l[n - 1] : -1.0));
    }
    printf(
        "writes held back by the client's session window (TKV_EBUSY, "
        "resubmitted): %ld\n",
        w.busy);
    json_object_set_new(x->out, "busy_resubmits", json_integer(w.busy));
    bench_print_errors(stdout, &w.rec.errs);
    writer_trace(&w, x->o.trace_path);
    writer_free(&w);
    free(to_ack);
    free(to_leader);
    return nok == x->o.repeat ? 0 : 1;
}

/* ---- flags and main ------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tuplekv-recovery [flags] load|snapshot|restart|failover\n"
            "  --cluster-dir DIR    cluster.sh's dir: nodeI/{pid,log,data} "
            "(required)\n"
            "  --client-port P      node I serves clients on "
            "127.0.0.1:P+I-1 (7001)\n"
            "  --nodes N            cluster size (3)\n"
            "  --cluster-sh PATH    deploy/cluster.sh, run as `PATH start "
            "I` (restart, failover)\n"
            "  --keys N             keys loaded / written (1000000)\n"
            "  --key-size B --val-size B   (25, 100)\n"
            "  --clients C          writers in flight (32); load: threads "
            "(16)\n"
            "  --batch N            load: sets per atomic batch (500)\n"
            "  --duration S         snapshot: length of the write load (60)\n"
            "  --target follower|leader|all   restart: what to stop "
            "(follower)\n"
            "  --signal KILL|TERM   restart: how (KILL)\n"
            "  --repeat N           failover: rounds (5)\n"
            "  --warmup S           failover: writes before the first kill "
            "(2)\n"
            "  --guard-ms MS        failover: acks this soon after the kill "
            "came from the old leader (100)\n"
            "  --timeout S          give up on a moment after this long "
            "(60)\n"
            "  --json FILE          every figure as JSON\n"
            "  --trace FILE         snapshot, failover: one line per write "
            "(start s, latency ms)\n");
}

static double num_arg(const char *flag, const char *v, double min, double max)
{
    char *end;
    double d = strtod(v, &end);
    if (*v == '\0' || *end != '\0' || d < min || d > max) {
        fprintf(stderr, "tuplekv-recovery: bad %s '%s'\n", flag, v);
        exit(2);
    }
    return d;
}

static void parse_flags(int argc, char **argv, struct opts *o)
{
    int i;
    int clients_set = 0;
    memset(o, 0, sizeof *o);
    o->client_port = 7001;
    o->nodes = 3;
    o->keys = 1000000;
    o->key_size = 25;
    o->val_size = 100;
    o->clients = 32;
    o->batch = 500;
    o->duration = 60;
    o->warmup = 2;
    o->timeout = 60;
    o->guard = 0.1;
    o->repeat = 5;
    o->target = "follower";
    o->sig = SIGKILL;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        char flag[64];
        const char *eq = strchr(a, '=');
        if (strncmp(a, "--", 2) != 0) {
            if (o->cmd != NULL) {
                usage(stderr);
                exit(2);
            }
            o->cmd = a;
            continue;
        }
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (eq != NULL) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
            v = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", a);
            if (i + 1 >= argc) {
                fprintf(stderr, "tuplekv-recovery: %s needs a value\n", a);
                exit(2);
            }
            v = argv[++i];
        }
        if (strcmp(flag, "--cluster-dir") == 0) {
            o->dir = v;
        } else if (strcmp(flag, "--client-port") == 0) {
            o->client_port = (int)num_arg(flag, v, 1, 65535 - MAX_NODES);
        } else if (strcmp(flag, "--nodes") == 0) {
            o->nodes = (int)num_arg(flag, v, 1, MAX_NODES);
        } else if (strcmp(flag, "--cluster-sh") == 0) {
            o->cluster_sh = v;
        } else if (strcmp(flag, "--keys") == 0) {
            o->keys = (long)num_arg(flag, v, 1, 1e9);
        } else if (strcmp(flag, "--key-size") == 0) {
            o->key_size = (size_t)num_arg(flag, v, 1, 1024);
        } else if (strcmp(flag, "--val-size") == 0) {
            o->val_size = (size_t)num_arg(flag, v, 1, 1000000);
        } else if (strcmp(flag, "--clients") == 0) {
            o->clients = (unsigned)num_arg(flag, v, 1, 4096);
            clients_set = 1;
        } else if (strcmp(flag, "--batch") == 0) {
            o->batch = (unsigned)num_arg(flag, v, 1, TKV_MAX_BATCH);
        } else if (strcmp(flag, "--duration") == 0) {
            o->duration = num_arg(flag, v, 1, 3600);
        } else if (strcmp(flag, "--warmup") == 0) {
            o->warmup = num_arg(flag, v, 0, 600);
        } else if (strcmp(flag, "--timeout") == 0) {
            o->timeout = num_arg(flag, v, 1, 3600);
        } else if (strcmp(flag, "--guard-ms") == 0) {
            o->guard = num_arg(flag, v, 0, 10000) / 1e3;
        } else if (strcmp(flag, "--repeat") == 0) {
            o->repeat = (int)num_arg(flag, v, 1, 64);
        } else if (strcmp(flag, "--target") == 0) {
            o->target = v;
        } else if (strcmp(flag, "--signal") == 0) {
            o->sig = strcmp(v, "TERM") == 0   ? SIGTERM
                     : strcmp(v, "KILL") == 0 ? SIGKILL
                                              : -1;
        } else if (strcmp(flag, "--json") == 0) {
            o->json_path = v;
        } else if (strcmp(flag, "--trace") == 0) {
            o->trace_path = v;
        } else {
            fprintf(stderr, "tuplekv-recovery: unknown flag %s\n", flag);
            exit(2);
        }
    }
    if (o->cmd == NULL || o->dir == NULL || o->sig < 0 ||
        (strcmp(o->target, "follower") != 0 &&
         strcmp(o->target, "leader") != 0 && strcmp(o->target, "all") != 0)) {
        usage(stderr);
        exit(2);
    }
    if (strcmp(o->cmd, "load") == 0 && !clients_set) {
        o->clients = 16;
    }
    if ((strcmp(o->cmd, "restart") == 0 || strcmp(o->cmd, "failover") == 0) &&
        o->cluster_sh == NULL) {
        fprintf(stderr, "tuplekv-recovery: %s needs --cluster-sh\n", o->cmd);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    struct ctx x;
    struct tkv_config cfg;
    struct tkv_err err;
    size_t off = 0;
    int i, rv;

    memset(&x, 0, sizeof x);
    parse_flags(argc, argv, &x.o);
    signal(SIGPIPE, SIG_IGN);
    x.real_off = clock_s(CLOCK_REALTIME) - mono_s();
    x.boot_off = clock_s(CLOCK_BOOTTIME) - mono_s();
    for (i = 1; i <= x.o.nodes; i++) {
        char addr[32];
        node_addr(&x, i, addr, sizeof addr);
        off += (size_t)snprintf(x.endpoints + off, sizeof x.endpoints - off,
                                "%s%s", i > 1 ? "," : "", addr);
    }
    tkv_config_init(&cfg);
    cfg.endpoints = x.endpoints;
    cfg.connect_timeout_ms = PROBE_TIMEOUT_MS;
    if (tkv_connect(&cfg, &x.admin, &err) != 0) {
        die("connect", err.msg);
    }
    x.out = json_pack("{ss ss si sI si si si}", "command", x.o.cmd, "endpoints",
                      x.endpoints, "clients", (int)x.o.clients, "keys",
                      (json_int_t)x.o.keys, "key_size", (int)x.o.key_size,
                      "val_size", (int)x.o.val_size, "nproc",
                      (int)sysconf(_SC_NPROCESSORS_ONLN));
    if (strcmp(x.o.cmd, "load") == 0) {
        rv = cmd_load(&x);
    } else if (strcmp(x.o.cmd, "snapshot") == 0) {
        json_object_set_new(x.out, "duration_s", json_real(x.o.duration));
        rv = cmd_snapshot(&x);
    } else if (strcmp(x.o.cmd, "restart") == 0) {
        json_object_set_new(x.out, "target", json_string(x.o.target));
        json_object_set_new(x.out, "signal",
                            json_string(x.o.sig == SIGKILL ? "KILL" : "TERM"));
        rv = cmd_restart(&x);
    } else if (strcmp(x.o.cmd, "failover") == 0) {
        rv = cmd_failover(&x);
    } else {
        usage(stderr);
        return 2;
    }
    if (x.o.json_path != NULL &&
        json_dump_file(x.out, x.o.json_path, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "tuplekv-recovery: cannot write %s\n", x.o.json_path);
        rv = 1;
    }
    json_decref(x.out);
    tkv_close(x.admin);
    return rv;
}
