/* Latency recording and the report of tuplekv-bench.
 *
 * Each I/O thread records into its own struct bench_rec (no locks); the
 * progress line reads struct bench_live, a log-scale histogram of relaxed
 * atomic counters any thread may add to; at the end the main thread merges
 * the recorders and computes the exact figures etcd's tools/benchmark prints
 * (pkg/report): Total, Slowest, Fastest, Average, Stddev, Requests/sec, the
 * 10-bucket response time histogram and the p10..p99.9 distribution, in the
 * same layout, so outputs of the two tools can be read side by side. */
#ifndef BENCH_STATS_H
#define BENCH_STATS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

#define BENCH_MAX_TYPES 6 /* operation kinds one run can mix (ycsb) */
#define BENCH_MAX_ERRS 32 /* distinct error texts kept; the rest: "other" */
#define BENCH_NPCT 8

/* A growable array of latencies in seconds. */
struct bench_vec {
    double *v; /* owned */
    size_t n, cap;
};

struct bench_errs {
    struct {
        char text[120];
        long count;
    } e[BENCH_MAX_ERRS];
    size_t n;
    long other;
};

/* One recorder per recording thread. */
struct bench_rec {
    struct bench_vec lat[BENCH_MAX_TYPES]; /* successful ops, by kind */
    long errors[BENCH_MAX_TYPES];
    struct bench_errs errs; /* by text, all kinds */
    long *per_sec;          /* owned: completions by second since start */
    size_t nsec;
};

void bench_rec_init(struct bench_rec *r);
void bench_rec_free(struct bench_rec *r);
/* Record one op of kind `type` finishing at `at_s` seconds after the start
 * with latency lat_s; err_text NULL for a success. 0, or -1 when out of
 * memory. */
int bench_rec_add(struct bench_rec *r,
                  int type,
                  double at_s,
                  double lat_s,
                  const char *err_text);

/* Live, approximate view: 1% wide log buckets from 1 us to ~100 s. */
#define BENCH_LIVE_BUCKETS 1900
struct bench_live {
    atomic_long done;
    atomic_long errors;
    atomic_long bucket[BENCH_LIVE_BUCKETS];
};

void bench_live_add(struct bench_live *l, double lat_s);
/* Quantile q in (0, 1] of what was added so far, in seconds; 0 when none. */
double bench_live_quantile(struct bench_live *l, double q);

/* The figures of one kind of operation, or of all together. */
struct bench_summary {
    long ok;
    long errors;
    double total_s; /* wall time of the whole run */
    double slowest, fastest, average, stddev, rps;
    double hist_edge[11];
    long hist_count[11];
    double pct[BENCH_NPCT]; /* at bench_pctls[] */
};

extern const double bench_pctls[BENCH_NPCT];

/* Sort lats (n of them, seconds) in place and compute s from them, as
 * etcd's pkg/report does; errors is carried into s as is. */
void bench_summarize(double *lats,
                     size_t n,
                     long errors,
                     double total_s,
                     struct bench_summary *s /* OUT */);

/* etcd's layout; fmt is etcd's precision, "%4.4f" or "%g" (--precise). */
void bench_print_summary(FILE *f,
                         const struct bench_summary *s,
                         const char *fmt);
void bench_print_errors(FILE *f, const struct bench_errs *e);

/* A new JSON object with every figure of s (seconds, and ms for the
 * percentiles too). */
json_t *bench_summary_json(const struct bench_summary *s);

/* Merge src's error texts into dst. */
void bench_errs_merge(struct bench_errs *dst, const struct bench_errs *src);

#endif /* BENCH_STATS_H */
