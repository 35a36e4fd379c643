/* The bank invariant through transactions: 8 threads make 200 random
 * transfers each between 10 accounts while a reader checks, with one
 * get_many of all accounts at a time, that the balances always sum to the
 * total and none is below zero. */
#include <pthread.h>
#include <stdlib.h>

#include "cluster.h"
#include "testutil.h"

#define ACCOUNTS 10
#define THREADS 8
#define TRANSFERS 200
#define START_BALANCE 100
#define TOTAL (ACCOUNTS * START_BALANCE)

static struct tkv_tc cl;
static struct tkv_client *c;
static json_t *all_keys;
static volatile int writers_done;

struct transfer {
    int from;
    int to;
    json_int_t amount;
};

static json_t *account_key(int i)
{
    return json_pack("[si]", "accounts", i);
}

/* The seed's transfer: read both, refuse an overdraft, write both. */
static int transfer_fn(struct tkv_txn *tx, void *arg)
{
    struct transfer *t = arg;
    struct tkv_item **items = NULL;
    size_t n = 0;
    struct tkv_err err;
    json_t *keys = json_pack("[oo]", account_key(t->from), account_key(t->to));
    json_int_t fb;
    json_int_t tb;
    json_t *v;
    int rv = tkv_txn_get_many(tx, keys, &items, &n, &err);
    if (rv != 0) {
        json_decref(keys);
        return rv;
    }
    fb = json_integer_value(json_object_get(items[0]->value, "balance"));
    tb = json_integer_value(json_object_get(items[1]->value, "balance"));
    tkv_items_free(items, n);
    if (fb < t->amount) {
        json_decref(keys);
        return 1; /* insufficient balance: abort */
    }
    v = json_pack("{sIsi}", "balance", fb - t->amount, "owner", t->from);
    rv = tkv_txn_set(tx, json_array_get(keys, 0), v, 0, &err);
    json_decref(v);
    if (rv == 0) {
        v = json_pack("{sIsi}", "balance", tb + t->amount, "owner", t->to);
        rv = tkv_txn_set(tx, json_array_get(keys, 1), v, 0, &err);
        json_decref(v);
    }
    json_decref(keys);
    return rv;
}

static int committed;
static int aborted;
static int gave_up;
static int other_errors;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *writer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    int i;
    for (i = 0; i < TRANSFERS; i++) {
        struct transfer t;
        struct tkv_err err;
        int rv;
        t.from = (int)(rand_r(&seed) % ACCOUNTS);
        do {
            t.to = (int)(rand_r(&seed) % ACCOUNTS);
        } while (t.to == t.from);
        t.amount = 1 + (json_int_t)(rand_r(&seed) % 40);
        rv = tkv_transaction(c, transfer_fn, &t, NULL, NULL, &err);
        pthread_mutex_lock(&mu);
        if (rv == 0) {
            committed++;
        } else if (rv == TKV_EABORTED) {
            aborted++;
        } else if (rv == TKV_ECONFLICT) {
            gave_up++;
        } else {
            other_errors++;
            print_message("transfer: %s: %s\n", tkv_errname(rv), err.msg);
        }
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static int reads;
static int bad_reads;

static void check_snapshot(void)
{
    struct tkv_item **items = NULL;
    size_t n = 0;
    struct tkv_err err;
    json_int_t sum = 0;
    size_t i;
    int rv = tkv_get_many(c, all_keys, NULL, &items, &n, &err);
    if (rv != 0) {
        print_message("get_many: %s\n", err.msg);
        bad_reads++;
        return;
    }
    for (i = 0; i < n; i++) {
        json_int_t b =
            json_integer_value(json_object_get(items[i]->value, "balance"));
        if (b < 0) {
            print_message("account %zu below zero: %lld\n", i, (long long)b);
            bad_reads++;
        }
        sum += b;
    }
    if (sum != TOTAL) {
        print_message("sum %lld != %d\n", (long long)sum, TOTAL);
        bad_reads++;
    }
    reads++;
    tkv_items_free(items, n);
}

static void *reader(void *arg)
{
    (void)arg;
    while (!writers_done) {
        check_snapshot();
    }
    return NULL;
}

static void test_bank(void **state)
{
    pthread_t w[THREADS];
    pthread_t r;
    struct tkv_err err;
    int i;
    (void)state;

    for (i = 0; i < ACCOUNTS; i++) {
        json_t *k = account_key(i);
        json_t *v = json_pack("{sisi}", "balance", START_BALANCE, "owner", i);
        TKV_OK(tkv_set(c, k, v, 0, NULL, NULL, &err), &err);
        json_array_append_new(all_keys, k);
        json_decref(v);
    }
    pthread_create(&r, NULL, reader, NULL);
    for (i = 0; i < THREADS; i++) {
        pthread_create(&w[i], NULL, writer, (void *)(uintptr_t)i);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(w[i], NULL);
    }
    writers_done = 1;
    pthread_join(r, NULL);
    check_snapshot();
    print_message(
        "transfers: %d committed, %d refused (overdraft), %d "
        "gave up after conflicts; %d snapshots read\n",
        committed, aborted, gave_up, reads);
    assert_int_equal(bad_reads, 0);
    assert_int_equal(other_errors, 0);
    assert_int_equal(committed + aborted + gave_up, THREADS * TRANSFERS);
    assert_true(committed > THREADS * TRANSFERS / 2);
    assert_true(reads > 1);
}

static int setup(void **state)
{
    struct tkv_config cfg;
    struct tkv_err err;
    (void)state;
    if (tkv_test_cluster_start(&cl, 3, TKV_TEST_PORT) != 0) {
        return -1;
    }
    tkv_config_init(&cfg);
    cfg.endpoints = cl.endpoints;
    cfg.timeout_ms = 10000;
    cfg.txn_attempts = 100;
    all_keys = json_array();
    return tkv_connect(&cfg, &c, &err);
}

static int teardown(void **state)
{
    (void)state;
    tkv_close(c);
    json_decref(all_keys);
    return tkv_tc_destroy(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bank),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, teardown));
}
