/* ttl: keys written with short TTLs while time moves; reads say whether
 * the key is still there, and at what state-machine time.
 *
 * The checker (jepsen/checker/ttl.c) wants the state-machine time a set
 * was applied at and a read was served at. The client does not return it,
 * so the op is bracketed by two status calls to the leader: before the
 * request (t1) and after the answer (t2), from the same node in the same
 * term. The leader's sm time only grows, the set's entry (or the read's
 * barrier) lies between, so its time is in [t1, t2]; when t1 == t2 it is
 * exact and goes out as "sm_time". Otherwise sm_time is null and the
 * bounds go out as "sm_lo"/"sm_hi" (the checker then bounds it from other
 * ops). Keys come from a small pool, so sets overwrite each other; 10% of
 * sets carry no TTL. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "workload.h"

#define KEYS 10
#define STATUS_TIMEOUT_MS 500

struct ttl {
    pthread_mutex_t mu;
    int leader; /* last node seen as leader, 0: unknown */
};

static int setup(struct tkvj_run *r, struct tkv_client *c, void **state)
{
    struct ttl *t = calloc(1, sizeof *t);
    (void)r;
    (void)c;
    if (t == NULL) {
        return -1;
    }
    pthread_mutex_init(&t->mu, NULL);
    *state = t;
    return 0;
}

static void gen(void *state, struct tkvj_rng *rng, const char **f,
                json_t **value)
{
    int64_t k = (int64_t)tkvj_rng_below(rng, KEYS);
    uint64_t x = tkvj_rng_below(rng, 100);
    (void)state;
    if (x < 50) {
        *f = "read";
        *value = json_pack("{sI}", "k", (json_int_t)k);
    } else {
        *f = "set";
        if (x < 55) {
            *value = json_pack("{sI sn}", "k", (json_int_t)k, "ttl_ms");
        } else {
            *value = json_pack("{sI sI}", "k", (json_int_t)k, "ttl_ms",
                               (json_int_t)tkvj_rng_range(rng, 200, 3000));
        }
    }
}

struct mark {
    int node;
    uint64_t term;
    int64_t sm;
};

/* The leader's sm time now: 0 and *m filled, or -1. */
static int leader_mark(struct ttl *t, struct tkvj_run *r, struct mark *m)
{
    int tries;
    for (tries = 0; tries < 2; tries++) {
        int node;
        struct tkv_node_status *st;
        pthread_mutex_lock(&t->mu);
        node = t->leader;
        pthread_mutex_unlock(&t->mu);
        if (node == 0) {
            node = tkvj_cluster_leader(&r->cluster, STATUS_TIMEOUT_MS);
            if (node == 0) {
                return -1;
            }
        }
        st = tkvj_cluster_status(&r->cluster, node, STATUS_TIMEOUT_MS);
        if (st != NULL && st->role != NULL &&
            strcmp(st->role, "leader") == 0) {
            m->node = node;
            m->term = st->term;
            m->sm = st->sm_time_ms;
            tkv_node_status_free(st);
            pthread_mutex_lock(&t->mu);
            t->leader = node;
            pthread_mutex_unlock(&t->mu);
            return 0;
        }
        tkv_node_status_free(st);
        pthread_mutex_lock(&t->mu);
        t->leader = 0;
        pthread_mutex_unlock(&t->mu);
    }
    return -1;
}

/* Put sm_time (exact or null) and the bounds into obj. */
static void put_time(json_t *obj, int have1, const struct mark *m1,
                     int have2, const struct mark *m2)
{
    int same = have1 && have2 && m1->node == m2->node &&
               m1->term == m2->term && m2->sm >= m1->sm;
    if (same && m1->sm == m2->sm) {
        json_object_set_new(obj, "sm_time", json_integer(m1->sm));
    } else {
        json_object_set_new(obj, "sm_time", json_null());
    }
    if (same) {
        json_object_set_new(obj, "sm_lo", json_integer(m1->sm));
        json_object_set_new(obj, "sm_hi", json_integer(m2->sm));
    }
}

static enum tkvj_outcome invoke(void *state, struct tkvj_call *call)
{
    struct ttl *t = state;
    json_t *k = json_object_get(call->value, "k");
    json_t *key = json_pack("[sO]", "ttl", k);
    struct mark m1, m2;
    struct tkv_err err;
    int have1, have2, rc;
    enum tkvj_outcome out;

    have1 = leader_mark(t, call->run, &m1) == 0;
    if (strcmp(call->f, "read") == 0) {
        struct tkv_item *item = NULL;
        rc = tkv_get(call->client, key, call->opts, &item, &err);
        out = tkvj_read_outcome(rc);
        if (rc == 0) {
            have2 = leader_mark(t, call->run, &m2) == 0;
            call->result = json_pack("{sO sb}", "k", k, "found",
                                     item != NULL);
            put_time(call->result, have1, &m1, have2, &m2);
            tkv_item_free(item);
        }
    } else {
        json_t *ttl = json_object_get(call->value, "ttl_ms");
        double secs = json_is_integer(ttl)
                          ? (double)json_integer_value(ttl) / 1000.0
                          : 0;
        json_t *val = json_integer(tkvj_now_ms());
        rc = tkv_set(call->client, key, val, secs, call->opts, NULL, &err);
        json_decref(val);
        out = tkvj_write_outcome(rc);
        if (rc == 0) {
            have2 = leader_mark(t, call->run, &m2) == 0;
            call->result = json_pack("{sO sO}", "k", k, "ttl_ms", ttl);
            put_time(call->result, have1, &m1, have2, &m2);
        }
    }
    if (rc != 0) {
        tkvj_call_error(call, rc, &err);
    }
    json_decref(key);
    return out;
}

static json_t *options(void *state)
{
    (void)state;
    return json_pack("{si}", "tick_ms", 500);
}

static void destroy(void *state)
{
    struct ttl *t = state;
    if (t != NULL) {
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

const struct tkvj_workload tkvj_wl_ttl = {
    .name = "ttl",
    .setup = setup,
    .gen = gen,
    .invoke = invoke,
    .final_ops = NULL,
    .options = options,
    .destroy = destroy,
};
