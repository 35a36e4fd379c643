/* 8 threads x 100 counter increments by transaction = exactly 800: once
 * on a healthy cluster, once with the leader SIGKILLed in the middle (and
 * restarted), where retried commits must not count twice. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "cluster.h"
#include "testutil.h"

#define THREADS 8
#define INCREMENTS 100

static struct tkv_tc cl;
static struct tkv_client *c;
static atomic_int successes;
static atomic_int unknowns;
static atomic_int failures;

struct run {
    json_t *key;
};

static int incr_fn(struct tkv_txn *tx, void *arg)
{
    struct run *r = arg;
    struct tkv_item *it = NULL;
    struct tkv_err err;
    json_int_t n = 0;
    json_t *v;
    int rv = tkv_txn_get(tx, r->key, &it, &err);
    if (rv != 0) {
        return rv;
    }
    if (it != NULL) {
        n = json_integer_value(json_object_get(it->value, "count"));
        tkv_item_free(it);
    }
    v = json_pack("{sI}", "count", n + 1);
    rv = tkv_txn_set(tx, r->key, v, 0, &err);
    json_decref(v);
    return rv;
}

static void *worker(void *arg)
{
    struct run *r = arg;
    int done = 0;
    while (done < INCREMENTS) {
        struct tkv_err err;
        int rv = tkv_transaction(c, incr_fn, r, NULL, NULL, &err);
        if (rv == 0) {
            done++;
            atomic_fetch_add(&successes, 1);
        } else if (rv == TKV_EUNKNOWN) {
            /* cannot be counted either way: the test fails */
            atomic_fetch_add(&unknowns, 1);
            print_message("unknown outcome: %s\n", err.msg);
            done++;
        } else if (rv != TKV_ECONFLICT) {
            atomic_fetch_add(&failures, 1);
            print_message("increment: %s: %s\n", tkv_errname(rv), err.msg);
            if (atomic_load(&failures) > 50) {
                break;
            }
        }
    }
    return NULL;
}

static json_int_t read_count(json_t *key)
{
    struct tkv_item *it = NULL;
    struct tkv_err err;
    json_int_t n;
    TKV_OK(tkv_get(c, key, NULL, &it, &err), &err);
    assert_non_null(it);
    n = json_integer_value(json_object_get(it->value, "count"));
    tkv_item_free(it);
    return n;
}

static void run_counter(const char *name, int kill_leader)
{
    pthread_t t[THREADS];
    struct run r;
    int i;
    int killed = 0;

    atomic_store(&successes, 0);
    atomic_store(&unknowns, 0);
    atomic_store(&failures, 0);
    r.key = json_pack("[ss]", "views", name);
    for (i = 0; i < THREADS; i++) {
        pthread_create(&t[i], NULL, worker, &r);
    }
    if (kill_leader) {
        struct timespec ts = {0, 20 * 1000000L};
        while (atomic_load(&successes) < THREADS * INCREMENTS / 3) {
            nanosleep(&ts, NULL);
        }
        killed = tkv_test_cluster_leader(&cl, 20000);
        assert_true(killed > 0);
        print_message("SIGKILL leader node %d at %d increments\n", killed,
                      atomic_load(&successes));
        tkv_tc_kill(&cl, killed, SIGKILL);
        ts.tv_sec = 1;
        ts.tv_nsec = 0;
        nanosleep(&ts, NULL);
        assert_int_equal(tkv_tc_start(&cl, killed, TKV_TC_RESTART, 0), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(atomic_load(&unknowns), 0);
    assert_int_equal(atomic_load(&failures), 0);
    assert_int_equal(atomic_load(&successes), THREADS * INCREMENTS);
    assert_int_equal(read_count(r.key), THREADS * INCREMENTS);
    json_decref(r.key);
}

static void test_counter(void **state)
{
    (void)state;
    run_counter("healthy", 0);
}

static void test_counter_leader_killed(void **state)
{
    (void)state;
    run_counter("leader-killed", 1);
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
    cfg.timeout_ms = 15000;
    cfg.txn_attempts = 1000;
    return tkv_connect(&cfg, &c, &err);
}

static int teardown(void **state)
{
    (void)state;
    tkv_close(c);
    return tkv_tc_destroy(&cl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_counter_leader_killed),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, teardown));
}
