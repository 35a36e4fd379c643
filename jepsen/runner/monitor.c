/* Status pollers, the reaper and the state-machine clock checks (see
 * monitor.h). */
#include "monitor.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runner.h"

#define POLL_MS 200
#define STATUS_TIMEOUT_MS 300
#define MAX_REPORTED 20

struct poller {
    struct tkvj_monitor *m;
    int node;
};

static struct poller pollers[TKVJ_MONITOR_NODES];

static void record(struct tkvj_monitor *m, int node, int inc,
                   const struct tkv_node_status *st)
{
    int64_t t = tkvj_now_ns();
    json_t *line;
    char *text;
    long long prev;

    line = json_pack("{sI si si ss sI sI sI sI sI sI sI}", "t", (json_int_t)t,
                     "node", node, "inc", inc, "role",
                     st->role != NULL ? st->role : "?", "term",
                     (json_int_t)st->term, "leader",
                     (json_int_t)st->leader_id, "commit",
                     (json_int_t)st->commit_index, "applied",
                     (json_int_t)st->applied_index, "snapshot",
                     (json_int_t)st->snapshot_index, "sm_time",
                     (json_int_t)st->sm_time_ms, "keys",
                     (json_int_t)st->keys);
    text = line != NULL ? json_dumps(line, JSON_COMPACT) : NULL;
    json_decref(line);

    pthread_mutex_lock(&m->mu);
    if (text != NULL && m->out != NULL) {
        fputs(text, m->out);
        fputc('\n', m->out);
    }
    if (m->last_inc[node] == inc && st->sm_time_ms < m->last_sm[node]) {
        m->backwards++;
        if (m->backwards <= MAX_REPORTED) {
            tkvj_finding(
                m->run, "sm-time-backwards",
                json_pack("{si si sI sI sI sI}", "node", node, "incarnation",
                          inc, "sm_time_before", (json_int_t)m->last_sm[node],
                          "sm_time_after", (json_int_t)st->sm_time_ms,
                          "applied_before",
                          (json_int_t)m->last_applied[node], "applied_after",
                          (json_int_t)st->applied_index));
        }
    }
    m->last_inc[node] = inc;
    m->last_sm[node] = st->sm_time_ms;
    m->last_applied[node] = st->applied_index;
    if (m->nsamples == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4096;
        struct tkvj_sample *s = realloc(m->samples, cap * sizeof *s);
        if (s != NULL) {
            m->samples = s;
            m->cap = cap;
        }
    }
    if (m->nsamples < m->cap) {
        struct tkvj_sample *s = &m->samples[m->nsamples++];
        s->t_ns = t;
        s->node = node;
        s->incarnation = inc;
        s->applied = st->applied_index;
        s->sm_time = st->sm_time_ms;
    }
    pthread_mutex_unlock(&m->mu);
    free(text);

    prev = atomic_load(&m->max_sm);
    while (st->sm_time_ms > prev &&
           !atomic_compare_exchange_weak(&m->max_sm, &prev,
                                         st->sm_time_ms)) {
    }
}

static void *poll_main(void *arg)
{
    struct poller *p = arg;
    struct tkvj_monitor *m = p->m;
    struct tkvj_cluster *cl = &m->run->cluster;
    struct tkvj_node *nd = &cl->nodes[p->node];
    struct tkv_client *c = tkvj_client(m->run, nd->client);

    while (c != NULL && !atomic_load(&m->stop)) {
        struct tkv_opts opts = {.timeout_ms = STATUS_TIMEOUT_MS};
        struct tkv_node_status *st = NULL;
        struct tkv_err err;
        int inc, live, inc2;
        int64_t next = tkvj_now_ms() + POLL_MS;

        pthread_mutex_lock(&cl->mu);
        inc = nd->incarnation;
        live = nd->pid != 0 && !nd->paused;
        pthread_mutex_unlock(&cl->mu);
        if (live && tkv_node_status(c, nd->client, &opts, &st, &err) == 0) {
            pthread_mutex_lock(&cl->mu);
            inc2 = nd->incarnation;
            pthread_mutex_unlock(&cl->mu);
            if (inc2 == inc) {
                record(m, p->node, inc, st);
            }
            tkv_node_status_free(st);
        }
        while (!atomic_load(&m->stop) && tkvj_now_ms() < next) {
            usleep(20 * 1000);
        }
    }
    tkv_close(c);
    return NULL;
}

static void *reap_main(void *arg)
{
    struct tkvj_monitor *m = arg;
    while (!atomic_load(&m->stop)) {
        tkvj_cluster_reap(&m->run->cluster);
        usleep(100 * 1000);
    }
    return NULL;
}

int tkvj_monitor_start(struct tkvj_monitor *m, struct tkvj_run *r,
                       const char *path)
{
    int i;
    memset(m, 0, sizeof *m);
    m->run = r;
    pthread_mutex_init(&m->mu, NULL);
    m->out = fopen(path, "we");
    if (m->out == NULL) {
        return -1;
    }
    for (i = 0; i < TKVJ_MONITOR_NODES; i++) {
        m->last_inc[i] = -1;
    }
    for (i = 1; i <= r->cluster.n && i < TKVJ_MONITOR_NODES; i++) {
        pollers[i].m = m;
        pollers[i].node = i;
        if (pthread_create(&m->threads[m->nthreads], NULL, poll_main,
                           &pollers[i]) != 0) {
            return -1;
        }
        m->nthreads++;
    }
    if (pthread_create(&m->reaper, NULL, reap_main, m) != 0) {
        return -1;
    }
    m->started = 1;
    return 0;
}

void tkvj_monitor_stop(struct tkvj_monitor *m)
{
    int i;
    if (!m->started) {
        return;
    }
    atomic_store(&m->stop, 1);
    for (i = 0; i < m->nthreads; i++) {
        pthread_join(m->threads[i], NULL);
    }
    pthread_join(m->reaper, NULL);
    m->started = 0;
    if (m->out != NULL) {
        fclose(m->out);
        m->out = NULL;
    }
}

static int by_applied(const void *a, const void *b)
{
    const struct tkvj_sample *x = a, *y = b;
    if (x->applied != y->applied) {
        return x->applied < y->applied ? -1 : 1;
    }
    if (x->sm_time != y->sm_time) {
        return x->sm_time < y->sm_time ? -1 : 1;
    }
    return 0;
}

static json_t *sample_json(const struct tkvj_sample *s)
{
    return json_pack("{si si sI sI sI}", "node", s->node, "incarnation",
                     s->incarnation, "applied", (json_int_t)s->applied,
                     "sm_time", (json_int_t)s->sm_time, "time",
                     (json_int_t)s->t_ns);
}

void tkvj_monitor_check(struct tkvj_monitor *m, void *stats_arg)
{
    json_t *stats = stats_arg;
    size_t i, start = 0;
    long bad = 0, diverged = 0;
    /* the sample with the highest sm_time among lower applied indexes */
    const struct tkvj_sample *max_before = NULL;

    pthread_mutex_lock(&m->mu);
    qsort(m->samples, m->nsamples, sizeof *m->samples, by_applied);
    for (i = 0; i < m->nsamples; i++) {
        const struct tkvj_sample *s = &m->samples[i];
        size_t k;
        if (i > start && m->samples[start].applied != s->applied) {
            /* a new index: fold the previous group into max_before */
            for (k = start; k < i; k++) {
                if (max_before == NULL ||
                    m->samples[k].sm_time > max_before->sm_time) {
                    max_before = &m->samples[k];
                }
            }
            start = i;
        }
        if (s->applied == 0) {
            continue; /* nothing applied yet: no time */
        }
        if (max_before != NULL && max_before->applied > 0 &&
            s->sm_time < max_before->sm_time) {
            if (++bad <= MAX_REPORTED) {
                tkvj_finding(m->run, "sm-time-log-order",
                             json_pack("{so so ss}", "earlier_index",
                                       sample_json(max_before),
                                       "later_index", sample_json(s),
                                       "detail",
                                       "state-machine time is lower at a "
                                       "higher applied index"));
            }
        }
        if (i > start && s->sm_time != m->samples[start].sm_time) {
            if (++diverged <= MAX_REPORTED) {
                tkvj_finding(m->run, "sm-time-log-order",
                             json_pack("{so so ss}", "a",
                                       sample_json(&m->samples[start]), "b",
                                       sample_json(s), "detail",
                                       "two samples at one applied index "
                                       "disagree on state-machine time"));
            }
        }
    }
    if (stats != NULL) {
        json_object_set_new(stats, "status_samples",
                            json_integer((json_int_t)m->nsamples));
        json_object_set_new(stats, "sm_time_backwards",
                            json_integer(m->backwards));
        json_object_set_new(stats, "sm_time_log_order_violations",
                            json_integer(bad));
        json_object_set_new(stats, "sm_time_divergences",
                            json_integer(diverged));
    }
    pthread_mutex_unlock(&m->mu);
}
