/* Latency recording and the report of tuplekv-bench; see bench_stats.h.
 * The summary follows etcd v3.4 pkg/report/report.go, so the same latencies
 * give the same printed figures (one deliberate difference: with fewer than
 * ~1000 samples etcd leaves the upper percentiles at 0 and omits them; here
 * several percentiles may share one sample instead). */
#include "bench_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double bench_pctls[BENCH_NPCT] = {10, 25, 50, 75, 90, 95, 99, 99.9};

void bench_rec_init(struct bench_rec *r)
{
    memset(r, 0, sizeof *r);
}

void bench_rec_free(struct bench_rec *r)
{
    int i;
    for (i = 0; i < BENCH_MAX_TYPES; i++) {
        free(r->lat[i].v);
    }
    free(r->per_sec);
    memset(r, 0, sizeof *r);
}

static int vec_push(struct bench_vec *v, double x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap == 0 ? 4096 : v->cap * 2;
        double *nv = realloc(v->v, cap * sizeof *nv);
        if (nv == NULL) {
            return -1;
        }
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

static void errs_add(struct bench_errs *e, const char *text, long count)
{
    size_t i;
    for (i = 0; i < e->n; i++) {
        if (strcmp(e->e[i].text, text) == 0) {
            e->e[i].count += count;
            return;
        }
    }
    if (e->n == BENCH_MAX_ERRS) {
        e->other += count;
        return;
    }
    snprintf(e->e[e->n].text, sizeof e->e[e->n].text, "%s", text);
    e->e[e->n].count = count;
    e->n++;
}

void bench_errs_merge(struct bench_errs *dst, const struct bench_errs *src)
{
    size_t i;
    for (i = 0; i < src->n; i++) {
        errs_add(dst, src->e[i].text, src->e[i].count);
    }
    dst->other += src->other;
}

int bench_rec_add(struct bench_rec *r,
                  int type,
                  double at_s,
                  double lat_s,
                  const char *err_text)
{
    size_t sec = at_s > 0 ? (size_t)at_s : 0;

    if (sec >= r->nsec) {
        size_t n = sec + 16;
        long *p = realloc(r->per_sec, n * sizeof *p);
        if (p == NULL) {
            return -1;
        }
        memset(p + r->nsec, 0, (n - r->nsec) * sizeof *p);
        r->per_sec = p;
        r->nsec = n;
    }
    if (err_text != NULL) {
        r->errors[type]++;
        errs_add(&r->errs, err_text, 1);
        return 0;
    }
    r->per_sec[sec]++;
    return vec_push(&r->lat[type], lat_s);
}

/* ---- live view ------------------------------------------------------------
 */

static int live_index(double lat_s)
{
    double us = lat_s * 1e6;
    int i;
    if (us <= 1.0) {
        return 0;
    }
    i = (int)(log(us) / log(1.01));
    return i < BENCH_LIVE_BUCKETS ? i : BENCH_LIVE_BUCKETS - 1;
}

void bench_live_add(struct bench_live *l, double lat_s)
{
    atomic_fetch_add_explicit(&l->bucket[live_index(lat_s)], 1,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&l->done, 1, memory_order_relaxed);
}

double bench_live_quantile(struct bench_live *l, double q)
{
    long counts[BENCH_LIVE_BUCKETS];
    long total = 0, seen = 0, want;
    int i;

    for (i = 0; i < BENCH_LIVE_BUCKETS; i++) {
        counts[i] = atomic_load_explicit(&l->bucket[i], memory_order_relaxed);
        total += counts[i];
    }
    if (total == 0) {
        return 0;
    }
    want = (long)ceil(q * (double)total);
    for (i = 0; i < BENCH_LIVE_BUCKETS; i++) {
        seen += counts[i];
        if (seen >= want) {
            /* upper edge of the bucket */
            return pow(1.01, i + 1) / 1e6;
        }
    }
    return pow(1.01, BENCH_LIVE_BUCKETS) / 1e6;
}

/* ---- summary (etcd pkg/report) ------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void bench_summarize(double *lats,
                     size_t n,
                     long errors,
                     double total_s,
                     struct bench_summary *s)
{
    double sum = 0, dev = 0, bs;
    size_t i, j;
    int bi;

    memset(s, 0, sizeof *s);
    s->ok = (long)n;
    s->errors = errors;
    s->total_s = total_s;
    if (n == 0) {
        return;
    }
    for (i = 0; i < n; i++) {
        sum += lats[i];
    }
    s->rps = total_s > 0 ? (double)n / total_s : 0;
    s->average = sum / (double)n;
    for (i = 0; i < n; i++) {
        double d = lats[i] - s->average;
        dev += d * d;
    }
    s->stddev = sqrt(dev / (double)n);
    qsort(lats, n, sizeof *lats, cmp_double);
    s->fastest = lats[0];
    s->slowest = lats[n - 1];

    /* percentiles(): the first sample at or past each rank */
    for (i = 0, j = 0; i < n && j < BENCH_NPCT; i++) {
        double current = (double)i * 100.0 / (double)n;
        if (current >= bench_pctls[j]) {
            s->pct[j++] = lats[i];
            /* several percentiles can fall on one sample (small n) */
            while (j < BENCH_NPCT && current >= bench_pctls[j]) {
                s->pct[j++] = lats[i];
            }
        }
    }

    /* histogram(): 10 equal buckets from fastest, plus slowest */
    bs = (s->slowest - s->fastest) / 10.0;
    for (bi = 0; bi < 10; bi++) {
        s->hist_edge[bi] = s->fastest + bs * bi;
    }
    s->hist_edge[10] = s->slowest;
    for (i = 0, bi = 0; i < n;) {
        if (lats[i] <= s->hist_edge[bi]) {
            i++;
            s->hist_count[bi]++;
        } else if (bi < 10) {
            bi++;
        } else {
            /* float rounding above the last edge: count it there */
            s->hist_count[10]++;
            i++;
        }
    }
}

static void print_secs(FILE *f, const char *fmt, double v)
{
    fprintf(f, fmt, v);
    fputs(" secs.\n", f);
}

void bench_print_summary(FILE *f,
                         const struct bench_summary *s,
                         const char *fmt)
{
    long max = 0;
    int i;

    if (s->ok == 0) {
        return;
    }
    fprintf(f, "\nSummary:\n");
    fprintf(f, "  Total:\t");
    print_secs(f, fmt, s->total_s);
    fprintf(f, "  Slowest:\t");
    print_secs(f, fmt, s->slowest);
    fprintf(f, "  Fastest:\t");
    print_secs(f, fmt, s->fastest);
    fprintf(f, "  Average:\t");
    print_secs(f, fmt, s->average);
    fprintf(f, "  Stddev:\t");
    print_secs(f, fmt, s->stddev);
    fprintf(f, "  Requests/sec:\t");
    fprintf(f, fmt, s->rps);
    fprintf(f, "\n");

    for (i = 0; i < 11; i++) {
        if (s->hist_count[i] > max) {
            max = s->hist_count[i];
        }
    }
    fprintf(f, "\nResponse time histogram:\n");
    for (i = 0; i < 11; i++) {
        long bar = max > 0 ? s->hist_count[i] * 40 / max : 0;
        fprintf(f, "  ");
        fprintf(f, fmt, s->hist_edge[i]);
        fprintf(f, " [%ld]\t|", s->hist_count[i]);
        while (bar-- > 0) {
            fputs("\xe2\x88\x8e", f); /* U+220E, etcd's bar */
        }
        fputc('\n', f);
    }
    fprintf(f, "\nLatency distribution:\n");
    for (i = 0; i < BENCH_NPCT; i++) {
        if (s->pct[i] > 0) {
            fprintf(f, "  %g%% in ", bench_pctls[i]);
            print_secs(f, fmt, s->pct[i]);
        }
    }
}

void bench_print_errors(FILE *f, const struct bench_errs *e)
{
    size_t i;
    if (e->n == 0 && e->other == 0) {
        return;
    }
    fprintf(f, "\nError distribution:\n");
    for (i = 0; i < e->n; i++) {
        fprintf(f, "  [%ld]\t%s\n", e->e[i].count, e->e[i].text);
    }
    if (e->other > 0) {
        fprintf(f, "  [%ld]\t(other errors)\n", e->other);
    }
}

static const char *pct_name(int i)
{
    static const char *names[BENCH_NPCT] = {"p10", "p25", "p50", "p75",
                                            "p90", "p95", "p99", "p99.9"};
    return names[i];
}

json_t *bench_summary_json(const struct bench_summary *s)
{
    json_t *o = json_object();
    json_t *hist = json_array();
    json_t *pct = json_object();
    json_t *pct_ms = json_object();
    int i;

    json_object_set_new(o, "ops", json_integer(s->ok));
    json_object_set_new(o, "errors", json_integer(s->errors));
    json_object_set_new(o, "total_s", json_real(s->total_s));
    json_object_set_new(o, "slowest_s", json_real(s->slowest));
    json_object_set_new(o, "fastest_s", json_real(s->fastest));
    json_object_set_new(o, "average_s", json_real(s->average));
    json_object_set_new(o, "stddev_s", json_real(s->stddev));
    json_object_set_new(o, "requests_per_s", json_real(s->rps));
    for (i = 0; i < 11 && s->ok > 0; i++) {
        json_array_append_new(
            hist, json_pack("{s:f,s:I}", "le_s", s->hist_edge[i], "count",
                            (json_int_t)s->hist_count[i]));
    }
    json_object_set_new(o, "histogram", hist);
    for (i = 0; i < BENCH_NPCT; i++) {
        json_object_set_new(pct, pct_name(i), json_real(s->pct[i]));
        json_object_set_new(pct_ms, pct_name(i), json_real(s->pct[i] * 1e3));
    }
    json_object_set_new(o, "percentiles_s", pct);
    json_object_set_new(o, "percentiles_ms", pct_ms);
    return o;
}
