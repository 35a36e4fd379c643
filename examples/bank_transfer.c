/* Bank transfer with a transaction, the seed's kv.transaction example: read
 * both accounts, refuse an overdraft by aborting, write both balances
 * atomically. The transaction reruns by itself when another client changed
 * an account in between. */
#include <stdio.h>
#include <string.h>

#include "tuplekv.h"

struct transfer {
    const char *from;
    const char *to;
    json_int_t amount;
    json_int_t from_balance; /* OUT */
};

#define INSUFFICIENT 1

static int transfer_fn(struct tkv_txn *tx, void *arg)
{
    struct transfer *t = arg;
    struct tkv_err err;
    struct tkv_item *from = NULL;
    struct tkv_item *to = NULL;
    json_t *kf = json_pack("[ss]", "accounts", t->from);
    json_t *kt = json_pack("[ss]", "accounts", t->to);
    json_int_t fb;
    json_int_t tb;
    json_t *v;
    int rv;

    rv = tkv_txn_get(tx, kf, &from, &err);
    if (rv == 0) {
        rv = tkv_txn_get(tx, kt, &to, &err);
    }
    if (rv == 0 && (from == NULL || to == NULL)) {
        rv = TKV_ENOT_FOUND; /* 'One or both accounts not found' */
    }
    if (rv == 0) {
        fb = json_integer_value(json_object_get(from->value, "balance"));
        tb = json_integer_value(json_object_get(to->value, "balance"));
        if (fb < t->amount) {
            rv = INSUFFICIENT; /* 'Insufficient balance': abort */
        }
    }
    if (rv == 0) {
        v = json_deep_copy(from->value);
        json_object_set_new(v, "balance", json_integer(fb - t->amount));
        rv = tkv_txn_set(tx, kf, v, 0, &err);
        json_decref(v);
    }
    if (rv == 0) {
        v = json_deep_copy(to->value);
        json_object_set_new(v, "balance", json_integer(tb + t->amount));
        rv = tkv_txn_set(tx, kt, v, 0, &err);
        json_decref(v);
        t->from_balance = fb - t->amount;
    }
    tkv_item_free(from);
    tkv_item_free(to);
    json_decref(kf);
    json_decref(kt);
    return rv;
}

static int put_account(struct tkv_client *kv,
                       const char *id,
                       const char *name,
                       int balance)
{
    struct tkv_err err;
    json_t *k = json_pack("[ss]", "accounts", id);
    json_t *v = json_pack("{sssi}", "name", name, "balance", balance);
    int rv = tkv_set(kv, k, v, 0, NULL, NULL, &err);
    json_decref(k);
    json_decref(v);
    return rv;
}

int main(void)
{
    struct tkv_client *kv;
    struct tkv_err err;
    struct transfer t = {"alice", "bob", 50, 0};
    int rv;

    if (tkv_connect(NULL, &kv, &err) != 0) {
        fprintf(stderr, "connect: %s\n", err.msg);
        return 1;
    }
    if (put_account(kv, "alice", "Alice", 80) != 0 ||
        put_account(kv, "bob", "Bob", 20) != 0) {
        return 1;
    }
    rv = tkv_transaction(kv, transfer_fn, &t, NULL, NULL, &err);
    if (rv != 0) {
        fprintf(stderr, "transfer: %s\n", err.msg);
        return 1;
    }
    printf("transferred 50: alice now has %lld\n", (long long)t.from_balance);
    /* a second transfer of 50 would overdraw alice (30 left): aborted */
    rv = tkv_transaction(kv, transfer_fn, &t, NULL, NULL, &err);
    printf("second transfer: %s (%s)\n", tkv_errname(rv), err.msg);
    tkv_close(kv);
    return rv == TKV_EABORTED ? 0 : 1;
}
