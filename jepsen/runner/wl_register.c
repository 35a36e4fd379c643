/* register: linearizable registers, one per key, Knossos style.
 *
 * read is a strong tkv_get, write a tkv_set, cas a transaction that reads
 * the key and writes the new value only when the current value is the
 * expected one (its version check makes the swap atomic; a value that
 * differs aborts: fail, no effect). Keys come from a small pool and are
 * retired after OPS_PER_KEY ops so every key's history stays small enough
 * for the linearizability search. Values are 0..4; an absent key reads
 * null (the checker's initial value). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "workload.h"

#define POOL 3
#define OPS_PER_KEY 150
#define VALUES 5

struct reg {
    pthread_mutex_t mu;
    int64_t pool[POOL];
    int ops[POOL];
    int64_t next_key;
};

static int setup(struct tkvj_run *r, struct tkv_client *c, void **state)
{
    struct reg *g = calloc(1, sizeof *g);
    int i;
    (void)r;
    (void)c;
    if (g == NULL) {
        return -1;
    }
    pthread_mutex_init(&g->mu, NULL);
    for (i = 0; i < POOL; i++) {
        g->pool[i] = g->next_key++;
    }
    *state = g;
    return 0;
}

static void gen(void *state, struct tkvj_rng *rng, const char **f,
                json_t **value)
{
    struct reg *g = state;
    int slot = (int)tkvj_rng_below(rng, POOL);
    int kind = (int)tkvj_rng_below(rng, 4);
    json_int_t k;

    pthread_mutex_lock(&g->mu);
    k = (json_int_t)g->pool[slot];
    if (++g->ops[slot] >= OPS_PER_KEY) {
        g->pool[slot] = g->next_key++;
        g->ops[slot] = 0;
    }
    pthread_mutex_unlock(&g->mu);
    if (kind < 2) {
        *f = "read";
        *value = json_pack("{sI}", "k", k);
    } else if (kind == 2) {
        *f = "write";
        *value = json_pack("{sI sI}", "k", k, "v",
                           (json_int_t)tkvj_rng_below(rng, VALUES));
    } else {
        *f = "cas";
        *value = json_pack("{sI s[II]}", "k", k, "v",
                           (json_int_t)tkvj_rng_below(rng, VALUES),
                           (json_int_t)tkvj_rng_below(rng, VALUES));
    }
}

static json_t *reg_key(json_t *k)
{
    return json_pack("[sO]", "reg", k);
}

struct cas {
    json_t *key;
    json_t *expected;
    json_t *next;
    int fn_failed;
    char why[160];
};

static int cas_fn(struct tkv_txn *tx, void *arg)
{
    struct cas *c = arg;
    struct tkv_item *item = NULL;
    struct tkv_err err;
    json_t *cur;
    int rc;

    c->fn_failed = 0;
    rc = tkv_txn_get(tx, c->key, &item, &err);
    if (rc != 0) {
        c->fn_failed = 1;
        snprintf(c->why, sizeof c->why, "read: %.100s", err.msg);
        return rc;
    }
    cur = item != NULL ? item->value : json_null();
    if (!json_equal(cur, c->expected)) {
        char *txt = json_dumps(cur, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(c->why, sizeof c->why, "value differed: %s",
                 txt != NULL ? txt : "?");
        free(txt);
        tkv_item_free(item);
        c->fn_failed = 1;
        return 1;
    }
    tkv_item_free(item);
    rc = tkv_txn_set(tx, c->key, c->next, 0, &err);
    if (rc != 0) {
        c->fn_failed = 1;
        snprintf(c->why, sizeof c->why, "set: %.100s", err.msg);
    }
    return rc;
}

static enum tkvj_outcome invoke(void *state, struct tkvj_call *call)
{
    json_t *k = json_object_get(call->value, "k");
    json_t *key = reg_key(k);
    struct tkv_err err;
    enum tkvj_outcome out;
    int rc;
    (void)state;

    if (strcmp(call->f, "read") == 0) {
        struct tkv_item *item = NULL;
        rc = tkv_get(call->client, key, call->opts, &item, &err);
        if (rc == 0) {
            call->result = json_pack("{sO sO}", "k", k, "v",
                                     item != NULL ? item->value
                                                  : json_null());
            tkv_item_free(item);
        } else {
            tkvj_call_error(call, rc, &err);
        }
        out = tkvj_read_outcome(rc);
    } else if (strcmp(call->f, "write") == 0) {
        rc = tkv_set(call->client, key, json_object_get(call->value, "v"), 0,
                     call->opts, NULL, &err);
        if (rc != 0) {
            tkvj_call_error(call, rc, &err);
        }
        out = tkvj_write_outcome(rc);
    } else {
        struct cas c;
        json_t *v = json_object_get(call->value, "v");
        memset(&c, 0, sizeof c);
        c.key = key;
        c.expected = json_array_get(v, 0);
        c.next = json_array_get(v, 1);
        rc = tkv_transaction(call->client, cas_fn, &c, call->opts, NULL,
                             &err);
        if (rc == 0) {
            out = TKVJ_OK;
        } else {
            tkvj_call_error(call, rc, &err);
            if (c.fn_failed) {
                snprintf(call->error, sizeof call->error, "%.200s", c.why);
                out = TKVJ_FAIL;
            } else {
                out = tkvj_write_outcome(rc);
            }
        }
    }
    json_decref(key);
    return out;
}

static json_t *options(void *state)
{
    (void)state;
    return json_pack("{sn}", "initial");
}

static void destroy(void *state)
{
    struct reg *g = state;
    if (g != NULL) {
        pthread_mutex_destroy(&g->mu);
        free(g);
    }
}

const struct tkvj_workload tkvj_wl_register = {
    .name = "register",
    .setup = setup,
    .gen = gen,
    .invoke = invoke,
    .final_ops = NULL,
    .options = options,
    .destroy = destroy,
};
