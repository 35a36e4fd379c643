/* tuplekv-jepsen: run one test (see runner.h for the flow), or fold the
 * harness's findings into the checker's results (`merge`).
 *
 *   tuplekv-jepsen run --store DIR --net 10.77.5 --ns-prefix tkvj-5
 *                      [--workload bank] [--nemesis partition,kill] ...
 *   tuplekv-jepsen merge DIR
 *
 * `run` expects the namespaces to exist (jepsen/run makes them). Exit
 * codes of run: 0 the run happened (whatever it found: see harness.json),
 * 3 the harness could not run the test, 130 interrupted. Exit codes of
 * merge: 0 valid, 1 invalid, 2 unknown, 3 no results at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "logscan.h"
#include "merge.h"
#include "nemesis.h"
#include "runner.h"
#include "worker.h"
#include "workload.h"

#define EXIT_HARNESS 3
#define EXIT_INTERRUPTED 130

static struct tkvj_run the_run;
static struct timespec t0;

int64_t tkvj_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)(ts.tv_sec - t0.tv_sec) * 1000000000LL +
           (ts.tv_nsec - t0.tv_nsec);
}

int64_t tkvj_now_ms(void)
{
    return tkvj_now_ns() / 1000000;
}

int tkvj_sleep(struct tkvj_run *r, int64_t ms, int stop_too)
{
    int64_t end = tkvj_now_ms() + ms;
    for (;;) {
        int64_t left = end - tkvj_now_ms();
        if (atomic_load(&r->interrupt) ||
            (stop_too && atomic_load(&r->stop))) {
            return 1;
        }
        if (left <= 0) {
            return 0;
        }
        usleep((useconds_t)(left > 50 ? 50000 : left * 1000));
    }
}

void tkvj_log(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[tuplekv-jepsen %7.3fs] %s\n",
            (double)tkvj_now_ns() / 1e9, buf);
}

void tkvj_finding(struct tkvj_run *r, const char *type, json_t *detail)
{
    json_t *list;
    if (detail == NULL) {
        detail = json_object();
    }
    json_object_set_new(detail, "time", json_integer(tkvj_now_ns()));
    pthread_mutex_lock(&r->findings_mu);
    list = json_object_get(r->findings, type);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(r->findings, type, list);
    }
    json_array_append_new(list, detail);
    pthread_mutex_unlock(&r->findings_mu);
    tkvj_log("FINDING %s", type);
}

void tkvj_note(struct tkvj_run *r, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&r->findings_mu);
    json_array_append_new(r->notes, json_string(buf));
    pthread_mutex_unlock(&r->findings_mu);
}

struct tkv_client *tkvj_client(struct tkvj_run *r, const char *endpoints)
{
    struct tkv_config cfg;
    struct tkv_client *c = NULL;
    struct tkv_err err;
    tkv_config_init(&cfg);
    cfg.endpoints = endpoints;
    cfg.timeout_ms = r->o.op_timeout_ms;
    cfg.connect_timeout_ms = r->o.op_timeout_ms < 500 ? r->o.op_timeout_ms
                                                      : 500;
    cfg.txn_attempts = r->o.txn_attempts;
    if (tkv_connect(&cfg, &c, &err) != 0) {
        fprintf(stderr, "tuplekv-jepsen: tkv_connect: %s\n", err.msg);
        return NULL;
    }
    return c;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&the_run.interrupt, 1);
    atomic_store(&the_run.stop, 1);
}

/* ---- options ------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: tuplekv-jepsen run --store DIR --net A.B.C --ns-prefix "
            "NAME [options]\n"
            "       tuplekv-jepsen merge DIR\n\n"
            "Normally started by jepsen/run, which makes the network "
            "namespaces.\n\n"
            "  --workload W          bank|append|register|set|ttl (bank)\n"
            "  --nemesis LIST        partition,kill,pause,clock,member | all "
            "| none\n"
            "  --time S              main phase in seconds (60)\n"
            "  --rate R              ops per second, all processes (100)\n"
            "  --concurrency N       client processes (5)\n"
            "  --nodes N             cluster size (3)\n"
            "  --seed N              random seed (1)\n"
            "  --bin DIR             directory of tuplekv-node\n"
            "  --op-timeout MS       client timeout per call (2000)\n"
            "  --snapshot-threshold N  node snapshots every N entries (100)\n"
            "  --interval MS         mean fault period (5000)\n"
            "  --recover S           time allowed to recover after healing "
            "(30)\n"
            "  --txn-attempts N      transaction runs on conflict (5)\n"
            "  --faketime-lib PATH   libfaketime.so.1 (for clock)\n"
            "  --node-args 'ARGS'    extra tuplekv-node flags\n");
}

static int parse_opts(struct tkvj_opts *o, int argc, char **argv)
{
    static const struct option longs[] = {
        {"workload", required_argument, 0, 'w'},
        {"nemesis", required_argument, 0, 'n'},
        {"time", required_argument, 0, 't'},
        {"rate", required_argument, 0, 'r'},
        {"concurrency", required_argument, 0, 'c'},
        {"nodes", required_argument, 0, 'N'},
        {"seed", required_argument, 0, 's'},
        {"store", required_argument, 0, 'S'},
        {"bin", required_argument, 0, 'b'},
        {"net", required_argument, 0, 'a'},
        {"ns-prefix", required_argument, 0, 'p'},
        {"op-timeout", required_argument, 0, 'o'},
        {"snapshot-threshold", required_argument, 0, 'T'},
        {"interval", required_argument, 0, 'i'},
        {"recover", required_argument, 0, 'R'},
        {"txn-attempts", required_argument, 0, 'x'},
        {"faketime-lib", required_argument, 0, 'f'},
        {"node-args", required_argument, 0, 'A'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    char nemesis[256] = "partition,kill";
    int ch;

    memset(o, 0, sizeof *o);
    snprintf(o->workload, sizeof o->workload, "bank");
    o->time_s = 60;
    o->rate = 100;
    o->concurrency = 5;
    o->nodes = 3;
    o->seed = 1;
    o->op_timeout_ms = 2000;
    o->snapshot_threshold = 100;
    o->interval_ms = 5000;
    o->recover_s = 30;
    o->txn_attempts = 5;
    while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (ch) {
        case 'w':
            snprintf(o->workload, sizeof o->workload, "%s", optarg);
            break;
        case 'n':
            snprintf(nemesis, sizeof nemesis, "%s", optarg);
            break;
        case 't':
            o->time_s = atoi(optarg);
            break;
        case 'r':
            o->rate = atof(optarg);
            break;
        case 'c':
            o->concurrency = atoi(optarg);
            break;
        case 'N':
            o->nodes = atoi(optarg);
            break;
        case 's':
            o->seed = strtoull(optarg, NULL, 10);
            break;
        case 'S':
            snprintf(o->store, sizeof o->store, "%s", optarg);
            break;
        case 'b':
            snprintf(o->bin_dir, sizeof o->bin_dir, "%s", optarg);
            break;
        case 'a':
            snprintf(o->net, sizeof o->net, "%s", optarg);
            break;
        case 'p':
            snprintf(o->ns_prefix, sizeof o->ns_prefix, "%s", optarg);
            break;
        case 'o':
            o->op_timeout_ms = atoi(optarg);
            break;
        case 'T':
            o->snapshot_threshold = atoi(optarg);
            break;
        case 'i':
            o->interval_ms = atoi(optarg);
            break;
        case 'R':
            o->recover_s = atoi(optarg);
            break;
        case 'x':
            o->txn_attempts = atoi(optarg);
            break;
        case 'f':
            snprintf(o->faketime_lib, sizeof o->faketime_lib, "%s", optarg);
            break;
        case 'A':
            snprintf(o->node_args, sizeof o->node_args, "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (tkvj_nemesis_parse(nemesis, &o->nemesis) != 0) {
        return -1;
    }
    if (o->store[0] == '\0' || o->net[0] == '\0' ||
        o->ns_prefix[0] == '\0' || o->bin_dir[0] == '\0') {
        fprintf(stderr, "tuplekv-jepsen: --store, --bin, --net and "
                        "--ns-prefix are required\n");
        return -1;
    }
    if (o->nodes < 1 || o->nodes > TKVJ_MAX_NODES || o->time_s < 1 ||
        o->rate <= 0 || o->concurrency < 1 || o->concurrency > 256 ||
        o->op_timeout_ms < 100 || o->interval_ms < 1000 ||
        o->txn_attempts < 1) {
        fprintf(stderr, "tuplekv-jepsen: an option is out of range\n");
        return -1;
    }
    if ((o->nemesis & TKVJ_NEM_CLOCK) && o->faketime_lib[0] == '\0') {
        fprintf(stderr, "tuplekv-jepsen: the clock nemesis needs "
                        "--faketime-lib\n");
        return -1;
    }
    return 0;
}

/* ---- the run ------------------------------------------------------------ */

static json_t *config_json(const struct tkvj_opts *o)
{
    json_t *nem = json_array();
    static const char *const names[] = {"partition", "kill", "pause",
                                        "clock", "member"};
    int i;
    for (i = 0; i < 5; i++) {
        if (o->nemesis & (1u << i)) {
            json_array_append_new(nem, json_string(names[i]));
        }
    }
    return json_pack(
        "{ss so si sf si si sI ss ss ss si si si si si ss}", "workload",
        o->workload, "nemesis", nem, "time_s", o->time_s, "rate", o->rate,
        "concurrency", o->concurrency, "nodes", o->nodes, "seed",
        (json_int_t)o->seed, "bin", o->bin_dir, "net", o->net, "ns_prefix",
        o->ns_prefix, "op_timeout_ms", o->op_timeout_ms,
        "snapshot_threshold", o->snapshot_threshold, "interval_ms",
        o->interval_ms, "recover_s", o->recover_s, "txn_attempts",
        o->txn_attempts, "node_args", o->node_args);
}

static int write_json(const char *dir, const char *name, json_t *j)
{
    char path[1200];
    snprintf(path, sizeof path, "%.1024s/%.100s", dir, name);
    return json_dump_file(j, path, JSON_INDENT(2) | JSON_SORT_KEYS);
}

/* Leader known, a write goes through and every member caught up. */
static int wait_recovered(struct tkvj_run *r, int timeout_ms)
{
    struct tkvj_cluster *cl = &r->cluster;
    json_t *key = json_pack("[ss]", "_jepsen", "health");
    struct tkv_opts opts = {.timeout_ms = 1000};
    int64_t deadline = tkvj_now_ms() + timeout_ms;
    int64_t last_log = 0;
    int ok = 0;

    while (!ok && tkvj_now_ms() < deadline &&
           !atomic_load(&r->interrupt)) {
        struct tkv_err err;
        uint64_t version = 0, index;
        int rc = tkv_set(cl->admin, key, json_true(), 0, &opts, &version,
                         &err);
        if (rc != 0) {
            if (tkvj_now_ms() - last_log >= 2000) {
                tkvj_log("recovery: write failed: %s: %s", tkv_errname(rc),
                         err.msg);
                last_log = tkvj_now_ms();
            }
            usleep(200 * 1000);
            continue;
        }
        index = version >> 16;
        /* followers learn the commit index with the next heartbeat */
        while (!ok && tkvj_now_ms() < deadline &&
               !atomic_load(&r->interrupt)) {
            int i, behind = 0;
            for (i = 1; i <= cl->n; i++) {
                struct tkv_node_status *st = tkvj_cluster_status(cl, i, 500);
                if (st == NULL || st->applied_index < index) {
                    behind++;
                }
                tkv_node_status_free(st);
            }
            ok = behind == 0;
            if (!ok && tkvj_now_ms() - last_log >= 2000) {
                tkvj_log("recovery: %d node(s) not caught up with index %llu",
                         behind, (unsigned long long)index);
                last_log = tkvj_now_ms();
            }
            if (!ok) {
                usleep(100 * 1000);
            }
        }
    }
    json_decref(key);
    return ok;
}

static int run(int argc, char **argv)
{
    struct tkvj_run *r = &the_run;
    struct tkvj_worker *workers = NULL;
    struct sigaction sa;
    char path[1200];
    json_t *harness, *stats, *opts_json;
    int rc = 0, harness_error = 0;
    int64_t t_start;

    if (parse_opts(&r->o, argc, argv) != 0) {
        return 64;
    }
    r->wl = tkvj_workload_find(r->o.workload);
    if (r->wl == NULL) {
        fprintf(stderr, "tuplekv-jepsen: unknown workload \"%s\"\n",
                r->o.workload);
        return 64;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* jepsen/run killed outright cannot tell us: the kernel does */
    {
        pid_t parent = getppid();
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            on_signal(SIGTERM);
        }
    }

    pthread_mutex_init(&r->findings_mu, NULL);
    r->findings = json_object();
    r->notes = json_array();
    snprintf(path, sizeof path, "%.1024s/history.jsonl", r->o.store);
    if (tkvj_history_open(&r->hist, path) != 0) {
        fprintf(stderr, "tuplekv-jepsen: %s: %s\n", path, strerror(errno));
        return EXIT_HARNESS;
    }
    r->hist.mark_clock = 1;
    r->hist.clock = &r->clock_touched;
    if (tkvj_cluster_init(&r->cluster, r) != 0) {
        return EXIT_HARNESS;
    }
    tkvj_log("%s, nemesis 0x%x, %d nodes, %d s, %.0f ops/s, %d processes, "
             "seed %llu",
             r->o.workload, r->o.nemesis, r->o.nodes, r->o.time_s, r->o.rate,
             r->o.concurrency, (unsigned long long)r->o.seed);
    tkvj_log("starting %d nodes (%s)", r->o.nodes, r->cluster.endpoints);
    if (tkvj_cluster_bootstrap(&r->cluster, 30000) != 0) {
        tkvj_note(r, "the cluster did not start");
        harness_error = 1;
        goto stop_nodes;
    }
    snprintf(path, sizeof path, "%.1024s/status.jsonl", r->o.store);
    if (tkvj_monitor_start(&r->mon, r, path) != 0) {
        harness_error = 1;
        goto stop_nodes;
    }
    if (r->wl->setup(r, r->cluster.admin, &r->wl_state) != 0) {
        tkvj_note(r, "the workload's setup failed");
        harness_error = 1;
        goto stop_monitor;
    }
    tkvj_log("cluster up; main phase");
    t_start = tkvj_now_ms();
    if (tkvj_workers_start(r, &workers) != 0 ||
        tkvj_nemesis_start(r) != 0) {
        harness_error = 1;
        atomic_store(&r->stop, 1);
    }
    while (!atomic_load(&r->stop) &&
           tkvj_now_ms() - t_start < (int64_t)r->o.time_s * 1000) {
        tkvj_sleep(r, 200, 1);
    }
    atomic_store(&r->stop, 1);
    tkvj_log("main phase over; waiting for the workers");
    tkvj_workers_join(r, workers);
    tkvj_log("healing");
    if (tkvj_nemesis_heal(r) != 0) {
        tkvj_note(r, "not every node is a voter again after healing");
    }
    if (!atomic_load(&r->interrupt) && !harness_error) {
        if (!wait_recovered(r, r->o.recover_s * 1000)) {
            tkvj_finding(r, "no-recovery",
                         json_pack("{ss}", "detail",
                                   "with every fault healed, the cluster "
                                   "did not take a write with every node "
                                   "caught up in time"));
        } else {
            tkvj_log("recovered; final reads");
        }
        if (tkvj_workers_final(r, 30000) != 0) {
            tkvj_note(r, "a final read did not succeed");
        }
    }
stop_monitor:
    tkvj_monitor_stop(&r->mon);
stop_nodes:
    tkvj_log("stopping nodes");
    tkvj_cluster_stop_all(&r->cluster);
    tkvj_cluster_backtraces(&r->cluster);
    tkvj_logscan(r);
    stats = json_object();
    tkvj_monitor_check(&r->mon, stats);
    json_object_set_new(stats, "invokes", json_integer(r->hist.lines[0]));
    json_object_set_new(stats, "ok", json_integer(r->hist.lines[1]));
    json_object_set_new(stats, "fail", json_integer(r->hist.lines[2]));
    json_object_set_new(stats, "info", json_integer(r->hist.lines[3]));
    {
        json_t *starts = json_object();
        int i;
        for (i = 1; i <= r->cluster.n; i++) {
            char name[16];
            snprintf(name, sizeof name, "%d", i);
            json_object_set_new(starts, name,
                                json_integer(r->cluster.nodes[i].starts));
        }
        json_object_set_new(stats, "node_starts", starts);
    }
    opts_json = r->wl->options != NULL ? r->wl->options(r->wl_state) : NULL;
    if (opts_json == NULL) {
        opts_json = json_object();
    }
    write_json(r->o.store, "checker-options.json", opts_json);
    harness = json_pack("{so so so so sb sb}", "config", config_json(&r->o),
                        "findings", r->findings, "notes", r->notes,
                        "stats", stats, "harness_error",
                        harness_error != 0, "interrupted",
                        atomic_load(&r->interrupt) != 0);
    r->findings = NULL;
    r->notes = NULL;
    write_json(r->o.store, "harness.json", harness);
    json_decref(harness);
    json_decref(opts_json);
    tkvj_history_close(&r->hist);
    if (r->wl_state != NULL) {
        r->wl->destroy(r->wl_state);
    }
    tkvj_cluster_close(&r->cluster);
    tkvj_log("done");
    if (atomic_load(&r->interrupt)) {
        rc = EXIT_INTERRUPTED;
    } else if (harness_error) {
        rc = EXIT_HARNESS;
    }
    return rc;
}

/* The verdict in a few lines, for the terminal. */
static void summarize(const char *dir)
{
    char path[1200];
    json_error_t jerr;
    json_t *r, *types, *stats;
    size_t i;

    snprintf(path, sizeof path, "%.1024s/results.json", dir);
    r = json_load_file(path, 0, &jerr);
    if (r == NULL) {
        return;
    }
    {
        char *v = json_dumps(json_object_get(r, "valid"), JSON_ENCODE_ANY);
        printf("valid: %s\n", v != NULL ? v : "?");
        free(v);
    }
    types = json_object_get(r, "anomaly_types");
    if (json_array_size(types) > 0) {
        printf("anomalies:");
        for (i = 0; i < json_array_size(types); i++) {
            const char *t = json_string_value(json_array_get(types, i));
            printf("%s %s (%lld)", i > 0 ? "," : "", t,
                   (long long)json_integer_value(json_object_get(
                       json_object_get(r, "anomaly_counts"), t)));
        }
        printf("\n");
    }
    if (json_is_string(json_object_get(r, "error"))) {
        printf("error: %s\n",
               json_string_value(json_object_get(r, "error")));
    }
    stats = json_object_get(json_object_get(r, "harness"), "stats");
    if (stats != NULL) {
        printf("ops: %lld ok, %lld fail, %lld info\n",
               (long long)json_integer_value(json_object_get(stats, "ok")),
               (long long)json_integer_value(json_object_get(stats, "fail")),
               (long long)json_integer_value(json_object_get(stats, "info")));
    }
    json_decref(r);
}

int main(int argc, char **argv)
{
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (argc >= 2 && strcmp(argv[1], "run") == 0) {
        return run(argc - 1, argv + 1);
    }
    if (argc == 3 && strcmp(argv[1], "merge") == 0) {
        int code = tkvj_merge(argv[2]);
        summarize(argv[2]);
        return code;
    }
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 64;
}
