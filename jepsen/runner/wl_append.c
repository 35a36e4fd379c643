/* append: Elle's list-append, on tkv_transaction.
 *
 * A txn is 1-4 micro-ops over a small pool of keys: ["r", k, null] reads
 * the JSON list stored at ["append", k]; ["append", k, v] reads it and
 * writes it back with v added (the transaction's checks make that atomic).
 * Every v is unique in the run. A key is retired from the pool after
 * APPENDS_PER_KEY appends, so lists stay short and Elle's search cheap.
 * After healing, every key used is read once more. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "workload.h"

#define POOL 5
#define APPENDS_PER_KEY 100
#define FINAL_READS_PER_TXN 4

struct append {
    pthread_mutex_t mu;
    int64_t pool[POOL];
    int appends[POOL];
    int64_t next_key;
    int64_t next_value;
};

static int setup(struct tkvj_run *r, struct tkv_client *c, void **state)
{
    struct append *a = calloc(1, sizeof *a);
    int i;
    (void)r;
    (void)c;
    if (a == NULL) {
        return -1;
    }
    pthread_mutex_init(&a->mu, NULL);
    for (i = 0; i < POOL; i++) {
        a->pool[i] = a->next_key++;
    }
    a->next_value = 1;
    *state = a;
    return 0;
}

static void gen(void *state, struct tkvj_rng *rng, const char **f,
                json_t **value)
{
    struct append *a = state;
    int n = (int)tkvj_rng_range(rng, 1, 4), i;
    json_t *txn = json_array();

    pthread_mutex_lock(&a->mu);
    for (i = 0; i < n; i++) {
        int slot = (int)tkvj_rng_below(rng, POOL);
        int64_t k = a->pool[slot];
        if (tkvj_rng_below(rng, 2) == 0) {
            json_array_append_new(txn, json_pack("[sIn]", "r", (json_int_t)k));
        } else {
            json_array_append_new(txn,
                                  json_pack("[sII]", "append", (json_int_t)k,
                                            (json_int_t)a->next_value++));
            if (++a->appends[slot] >= APPENDS_PER_KEY) {
                a->pool[slot] = a->next_key++;
                a->appends[slot] = 0;
            }
        }
    }
    pthread_mutex_unlock(&a->mu);
    *f = "txn";
    *value = txn;
}

struct run {
    const json_t *mops; /* the invoke's micro-ops */
    json_t *result;     /* owned: this run's completed micro-ops */
    int fn_failed;
    char why[200];
};

static int txn_fn(struct tkv_txn *tx, void *arg)
{
    struct run *ru = arg;
    size_t i;

    json_decref(ru->result);
    ru->result = json_array();
    ru->fn_failed = 0;
    for (i = 0; i < json_array_size(ru->mops); i++) {
        json_t *mop = json_array_get(ru->mops, i);
        const char *op = json_string_value(json_array_get(mop, 0));
        json_t *k = json_array_get(mop, 1);
        json_t *key = json_pack("[sO]", "append", k);
        struct tkv_item *item = NULL;
        struct tkv_err err;
        json_t *cur;
        int rc = tkv_txn_get(tx, key, &item, &err);
        if (rc != 0) {
            json_decref(key);
            ru->fn_failed = 1;
            snprintf(ru->why, sizeof ru->why, "read: %.100s", err.msg);
            return rc;
        }
        cur = item != NULL ? item->value : NULL;
        if (cur != NULL && !json_is_array(cur)) {
            char *txt = json_dumps(cur, JSON_ENCODE_ANY | JSON_COMPACT);
            snprintf(ru->why, sizeof ru->why, "value at key is not a list: %.100s",
                     txt != NULL ? txt : "?");
            free(txt);
            tkv_item_free(item);
            json_decref(key);
            ru->fn_failed = 1;
            return 1;
        }
        if (strcmp(op, "r") == 0) {
            json_array_append_new(
                ru->result,
                json_pack("[sOO]", "r", k,
                          cur != NULL ? cur : json_null()));
        } else {
            json_t *next = cur != NULL ? json_deep_copy(cur) : json_array();
            json_array_append(next, json_array_get(mop, 2));
            rc = tkv_txn_set(tx, key, next, 0, &err);
            json_decref(next);
            json_array_append(ru->result, mop);
            if (rc != 0) {
                tkv_item_free(item);
                json_decref(key);
                ru->fn_failed = 1;
                snprintf(ru->why, sizeof ru->why, "set: %.100s", err.msg);
                return rc;
            }
        }
        tkv_item_free(item);
        json_decref(key);
    }
    return 0;
}

static enum tkvj_outcome invoke(void *state, struct tkvj_call *call)
{
    struct run ru;
    struct tkv_err err;
    int rc;
    (void)state;

    memset(&ru, 0, sizeof ru);
    ru.mops = call->value;
    rc = tkv_transaction(call->client, txn_fn, &ru, call->opts, NULL, &err);
    if (rc == 0) {
        call->result = ru.result;
        return TKVJ_OK;
    }
    json_decref(ru.result);
    tkvj_call_error(call, rc, &err);
    if (ru.fn_failed) {
        snprintf(call->error, sizeof call->error, "%.200s", ru.why);
        return TKVJ_FAIL;
    }
    return tkvj_write_outcome(rc);
}

static json_t *final_ops(void *state)
{
    struct append *a = state;
    json_t *ops = json_array();
    json_t *txn = NULL;
    int64_t k, last;

    pthread_mutex_lock(&a->mu);
    last = a->next_key;
    pthread_mutex_unlock(&a->mu);
    for (k = 0; k < last; k++) {
        if (txn == NULL) {
            txn = json_array();
        }
        json_array_append_new(txn, json_pack("[sIn]", "r", (json_int_t)k));
        if (json_array_size(txn) == FINAL_READS_PER_TXN || k == last - 1) {
            json_array_append_new(ops, json_pack("[so]", "txn", txn));
            txn = NULL;
        }
    }
    return ops;
}

static json_t *options(void *state)
{
    (void)state;
    return NULL;
}

static void destroy(void *state)
{
    struct append *a = state;
    if (a != NULL) {
        pthread_mutex_destroy(&a->mu);
        free(a);
    }
}

const struct tkvj_workload tkvj_wl_append = {
    .name = "append",
    .setup = setup,
    .gen = gen,
    .invoke = invoke,
    .final_ops = final_ops,
    .options = options,
    .destroy = destroy,
};
