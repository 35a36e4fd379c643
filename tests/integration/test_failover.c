/* SIGKILL the leader under a stream of writes: a new leader within 3 s,
 * every acknowledged write still readable, writes resume; the killed node
 * restarts from its data dir and catches up. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_WRITES 100000

static struct tkv_tc cluster;
static atomic_int stop_writer;
static int acked[MAX_WRITES];
static int64_t acked_at[MAX_WRITES];
static atomic_int nwritten;

static void *writer_main(void *arg)
{
    struct tkv_probe p;
    int i;
    (void)arg;
    tkv_probe_init(&p);
    for (i = 0; i < MAX_WRITES && !atomic_load(&stop_writer); i++) {
        char key[64], val[64];
        int rv;
        snprintf(key, sizeof key, "[\"w\",%d]", i);
        snprintf(val, sizeof val, "{\"n\":%d}", i);
        rv = hc_set(&cluster, &p, 1 + i % 3, key, val, 0);
        acked[i] = rv == 0;
        acked_at[i] = tkv_tc_now_ms();
        atomic_store(&nwritten, i + 1);
    }
    tkv_probe_close(&p);
    return NULL;
}

static void test_kill_leader(void **state)
{
    static const char *const flags[] = {"--election-timeout-ms", "500",
                                        "--heartbeat-ms", "80", NULL};
    struct tkv_probe p;
    pthread_t writer;
    int leader, leader2, i, n, ok = 0, after = 0, missing = 0;
    int64_t t_kill, elapsed;

    (void)state;
    assert_int_equal(tkv_tc_init(&cluster, "failover", 21100, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);

    pthread_create(&writer, NULL, writer_main, NULL);
    while (atomic_load(&nwritten) < 200) {
        tkv_tc_sleep_ms(10);
    }
    t_kill = tkv_tc_now_ms();
    tkv_tc_kill(&cluster, leader, SIGKILL);
    leader2 = hc_wait_leader(&cluster, 15000);
    elapsed = tkv_tc_now_ms() - t_kill;
    fprintf(stderr, "new leader %d after %lld ms\n", leader2,
            (long long)elapsed);
    assert_int_not_equal(leader2, 0);
    assert_int_not_equal(leader2, leader);
    assert_true(elapsed < 3000);

    tkv_tc_sleep_ms(1500); /* writes go on against the new leader */
    atomic_store(&stop_writer, 1);
    pthread_join(writer, NULL);

    n = atomic_load(&nwritten);
    tkv_probe_init(&p);
    for (i = 0; i < n; i++) {
        char key[64];
        int rv;
        if (!acked[i]) {
            continue;
        }
        ok++;
        if (acked_at[i] > t_kill + (int64_t)elapsed) {
            after++;
        }
        snprintf(key, sizeof key, "[\"w\",%d]", i);
        rv = hc_get(&cluster, &p, leader2, key, 0);
        if (rv != 1) {
            fprintf(stderr, "acknowledged write %d lost (%d)\n", i, rv);
            missing++;
        }
    }
    fprintf(stderr, "%d writes, %d acknowledged, %d after failover\n", n, ok,
            after);
    assert_int_equal(missing, 0);
    assert_true(after > 0);

    /* The killed node comes back from its data dir and catches up. */
    assert_int_equal(tkv_tc_start(&cluster, leader, TKV_TC_RESTART, 0), 0);
    for (i = 0; i < 200; i++) {
        struct tkv_status st, st2;
        char role[32];
        if (hc_status(&cluster, leader, &st, role, sizeof role) == 0 &&
            hc_status(&cluster, leader2, &st2, role, sizeof role) == 0 &&
            st.applied_index >= st2.commit_index && st.keys == st2.keys) {
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    assert_true(i < 200);
    for (i = n - 1; i >= 0; i--) {
        if (acked[i]) {
            char key[64];
            snprintf(key, sizeof key, "[\"w\",%d]", i);
            assert_int_equal(hc_get(&cluster, &p, leader, key, 1), 1);
            break;
        }
    }
    tkv_probe_close(&p);
}

int main(void)
{
    /* the teardown stops the nodes also when an assertion fails half way */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_kill_leader, NULL,
                                                 tkv_tc_teardown, &cluster),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
