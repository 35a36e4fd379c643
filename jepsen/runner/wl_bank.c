/* bank: money moves between accounts in transactions; reads see them all.
 *
 * Accounts ["bank", 0..7] start with 100 in all (setup, outside the
 * history). transfer runs tkv_transaction: read both balances, abort when
 * the source has less than the amount (fail, as in Jepsen), else write
 * both. read is one get_many of every account (one snapshot). The checker
 * wants the total conserved, no negative balance, no unknown account. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "workload.h"

#define ACCOUNTS 8
#define TOTAL 100
#define MAX_AMOUNT 5

struct bank {
    int dummy;
};

static json_t *account_key(int64_t a)
{
    return json_pack("[sI]", "bank", (json_int_t)a);
}

static int setup(struct tkvj_run *r, struct tkv_client *c, void **state)
{
    struct tkv_atomic *a = tkv_atomic_new();
    struct tkv_opts opts = {.timeout_ms = 2000};
    struct tkv_err err = {0};
    int64_t deadline = tkvj_now_ms() + 20000;
    int i, rc = -1;

    *state = NULL;
    for (i = 0; i < ACCOUNTS; i++) {
        json_t *k = account_key(i);
        json_t *v = json_integer(TOTAL / ACCOUNTS +
                                 (i < TOTAL % ACCOUNTS ? 1 : 0));
        tkv_atomic_set(a, k, v, 0, &err);
        json_decref(k);
        json_decref(v);
    }
    /* idempotent: every try writes the same balances */
    while (tkvj_now_ms() < deadline && !atomic_load(&r->interrupt)) {
        rc = tkv_atomic_commit(c, a, &opts, NULL, NULL, &err);
        if (rc == 0) {
            break;
        }
        usleep(200 * 1000);
    }
    tkv_atomic_free(a);
    if (rc != 0) {
        tkvj_log("bank setup failed: %s", err.msg);
        return -1;
    }
    return 0;
}

static void gen(void *state, struct tkvj_rng *rng, const char **f,
                json_t **value)
{
    (void)state;
    if (tkvj_rng_below(rng, 100) < 40) {
        *f = "read";
        *value = json_null();
    } else {
        int64_t from = (int64_t)tkvj_rng_below(rng, ACCOUNTS);
        int64_t to = (from + 1 + (int64_t)tkvj_rng_below(rng, ACCOUNTS - 1)) %
                     ACCOUNTS;
        *f = "transfer";
        *value = json_pack("{sI sI sI}", "from", (json_int_t)from, "to",
                           (json_int_t)to, "amount",
                           (json_int_t)tkvj_rng_range(rng, 1, MAX_AMOUNT));
    }
}

struct transfer {
    int64_t from, to, amount;
    int fn_failed; /* the function's own read failed or it aborted */
    char why[128];
};

static int transfer_fn(struct tkv_txn *tx, void *arg)
{
    struct transfer *t = arg;
    json_t *keys = json_pack("[oo]", account_key(t->from),
                             account_key(t->to));
    struct tkv_item **items = NULL;
    struct tkv_err err;
    size_t n = 0;
    int rc;
    json_int_t bf, bt;

    t->fn_failed = 0;
    rc = tkv_txn_get_many(tx, keys, &items, &n, &err);
    json_decref(keys);
    if (rc != 0) {
        t->fn_failed = 1;
        snprintf(t->why, sizeof t->why, "read: %.100s", err.msg);
        return rc;
    }
    if (n != 2 || items[0] == NULL || items[1] == NULL ||
        !json_is_integer(items[0]->value) ||
        !json_is_integer(items[1]->value)) {
        tkv_items_free(items, n);
        t->fn_failed = 1;
        snprintf(t->why, sizeof t->why, "account missing or not a number");
        return 1;
    }
    bf = json_integer_value(items[0]->value);
    bt = json_integer_value(items[1]->value);
    tkv_items_free(items, n);
    if (bf < t->amount) {
        t->fn_failed = 1;
        snprintf(t->why, sizeof t->why, "insufficient funds (%lld < %lld)",
                 (long long)bf, (long long)t->amount);
        return 1;
    }
    {
        json_t *kf = account_key(t->from), *kt = account_key(t->to);
        json_t *vf = json_integer(bf - t->amount);
        json_t *vt = json_integer(bt + t->amount);
        rc = tkv_txn_set(tx, kf, vf, 0, &err);
        if (rc == 0) {
            rc = tkv_txn_set(tx, kt, vt, 0, &err);
        }
        json_decref(kf);
        json_decref(kt);
        json_decref(vf);
        json_decref(vt);
    }
    if (rc != 0) {
        t->fn_failed = 1;
        snprintf(t->why, sizeof t->why, "set: %.100s", err.msg);
    }
    return rc;
}

static enum tkvj_outcome do_read(struct tkvj_call *call)
{
    json_t *keys = json_array();
    struct tkv_item **items = NULL;
    struct tkv_err err;
    size_t n = 0, i;
    int rc;

    for (i = 0; i < ACCOUNTS; i++) {
        json_array_append_new(keys, account_key((int64_t)i));
    }
    rc = tkv_get_many(call->client, keys, call->opts, &items, &n, &err);
    json_decref(keys);
    if (rc != 0) {
        tkvj_call_error(call, rc, &err);
        return tkvj_read_outcome(rc);
    }
    call->result = json_object();
    for (i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof name, "%zu", i);
        json_object_set(call->result, name,
                        items[i] != NULL ? items[i]->value : json_null());
    }
    tkv_items_free(items, n);
    return TKVJ_OK;
}

static enum tkvj_outcome do_transfer(struct tkvj_call *call)
{
    struct transfer t;
    struct tkv_err err;
    int rc;

    memset(&t, 0, sizeof t);
    t.from = json_integer_value(json_object_get(call->value, "from"));
    t.to = json_integer_value(json_object_get(call->value, "to"));
    t.amount = json_integer_value(json_object_get(call->value, "amount"));
    rc = tkv_transaction(call->client, transfer_fn, &t, call->opts, NULL,
                         &err);
    if (rc == 0) {
        return TKVJ_OK;
    }
    tkvj_call_error(call, rc, &err);
    if (t.fn_failed) {
        /* the last run never reached its commit; earlier runs ended in
         * CONFLICT: nothing was written */
        snprintf(call->error, sizeof call->error, "%.200s", t.why);
        return TKVJ_FAIL;
    }
    return tkvj_write_outcome(rc);
}

static enum tkvj_outcome invoke(void *state, struct tkvj_call *call)
{
    (void)state;
    if (strcmp(call->f, "read") == 0) {
        return do_read(call);
    }
    return do_transfer(call);
}

static json_t *final_ops(void *state)
{
    (void)state;
    return json_pack("[[sn]]", "read");
}

static json_t *options(void *state)
{
    json_t *acc = json_array();
    int i;
    (void)state;
    for (i = 0; i < ACCOUNTS; i++) {
        json_array_append_new(acc, json_integer(i));
    }
    return json_pack("{si so}", "total", TOTAL, "accounts", acc);
}

static void destroy(void *state)
{
    (void)state;
}

const struct tkvj_workload tkvj_wl_bank = {
    .name = "bank",
    .setup = setup,
    .gen = gen,
    .invoke = invoke,
    .final_ops = final_ops,
    .options = options,
    .destroy = destroy,
};
