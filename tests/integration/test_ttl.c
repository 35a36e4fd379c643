/* TTL: a key set with ttl 1 s is readable at once and gone within
 * 1 s + 2 ticks on every node, also across a leader change; the state
 * machine time reported by every node never decreases (sampled throughout
 * by a background thread). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define TICK_MS 200
/* Scheduling slack for a loaded 2-core machine (loopback replication). */
#define SLACK_MS 250

static struct tkv_tc cluster;
static atomic_int stop_sampler;
static atomic_int clock_went_back;
static atomic_int samples;

static void *sampler_main(void *arg)
{
    int64_t last[4] = {0, 0, 0, 0};
    (void)arg;
    while (!atomic_load(&stop_sampler)) {
        int i;
        for (i = 1; i <= 3; i++) {
            struct tkv_status st;
            char role[32];
            if (hc_status(&cluster, i, &st, role, sizeof role) != 0) {
                continue;
            }
            if (st.sm_time_ms < last[i]) {
                fprintf(stderr, "node %d: sm time went back %lld -> %lld\n", i,
                        (long long)last[i], (long long)st.sm_time_ms);
                atomic_store(&clock_went_back, 1);
            }
            last[i] = st.sm_time_ms;
            atomic_fetch_add(&samples, 1);
        }
        tkv_tc_sleep_ms(20);
    }
    return NULL;
}

/* Set key with ttl; optionally transfer leadership right after; check it
 * is readable at once and gone everywhere in time. */
static void check_expiry(struct tkv_probe *p,
                         const char *key,
                         int ttl_ms,
                         int transfer)
{
    int64_t t_sent, gone_at[4] = {0, 0, 0, 0};
    int applied[4] = {0, 0, 0, 0};
    struct tkv_status st;
    char role[32];
    uint64_t set_index;
    int i, leader, all_gone = 0;

    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    t_sent = tkv_tc_now_ms();
    assert_int_equal(
        hc_set(&cluster, p, leader, key, "\"soon gone\"", (uint64_t)ttl_ms), 0);
    assert_int_equal(hc_get(&cluster, p, leader, key, 0), 1);
    /* the write's index or later: a follower learns of the commit with the
     * next heartbeat, and until it has applied that far an absent key only
     * says it has not got there yet */
    assert_int_equal(hc_status(&cluster, leader, &st, role, sizeof role), 0);
    set_index = st.commit_index;
    if (transfer) {
        struct tkv_req req;
        struct tkv_reply rep;
        tkv_req_init(&req);
        tkv_reply_init(&rep);
        req.op = TKV_OP_TRANSFER;
        assert_int_equal(hc_call_leader(&cluster, p, leader, &req, &rep, 10000),
                         0);
        assert_int_equal(rep.code, 0);
        tkv_reply_close(&rep);
        tkv_req_close(&req);
        assert_int_not_equal(hc_wait_leader(&cluster, 20000), leader);
    }
    while (!all_gone && tkv_tc_now_ms() < t_sent + ttl_ms + 5000) {
        all_gone = 1;
        for (i = 1; i <= 3; i++) {
            int rv;
            if (gone_at[i] != 0) {
                continue;
            }
            /* status first: the get then reads a state at least as new */
            if (!applied[i] &&
                (hc_status(&cluster, i, &st, role, sizeof role) != 0 ||
                 st.applied_index < set_index)) {
                all_gone = 0;
                continue;
            }
            applied[i] = 1;
            rv = hc_get(&cluster, p, i, key, 1);
            if (rv == 0) {
                gone_at[i] = tkv_tc_now_ms();
            } else {
                all_gone = 0;
            }
        }
        tkv_tc_sleep_ms(10);
    }
    for (i = 1; i <= 3; i++) {
        fprintf(stderr, "%s: gone on node %d after %lld ms\n", key, i,
                (long long)(gone_at[i] - t_sent));
        assert_true(gone_at[i] != 0);
        assert_true(gone_at[i] - t_sent <= ttl_ms + 2 * TICK_MS + SLACK_MS);
        /* and never before its time */
        assert_true(gone_at[i] - t_sent >= ttl_ms - 50);
    }
    assert_int_equal(hc_get(&cluster, p, leader, key, 0), 0);
}

static void test_ttl(void **state)
{
    struct tkv_probe p;
    pthread_t sampler;
    char tick[16];
    const char *flags[] = {"--tick-ms", tick, "--election-timeout-ms", "600",
                           NULL};

    (void)state;
    snprintf(tick, sizeof tick, "%d", TICK_MS);
    assert_int_equal(tkv_tc_init(&cluster, "ttl", 21400, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    assert_int_not_equal(hc_wait_leader(&cluster, 20000), 0);
    pthread_create(&sampler, NULL, sampler_main, NULL);
    tkv_probe_init(&p);

    check_expiry(&p, "[\"ttl\",1]", 1000, 0);
    check_expiry(&p, "[\"ttl\",2]", 1000, 1);
    check_expiry(&p, "[\"ttl\",3]", 1500, 1);

    atomic_store(&stop_sampler, 1);
    pthread_join(sampler, NULL);
    fprintf(stderr, "%d clock samples\n", atomic_load(&samples));
    assert_true(atomic_load(&samples) > 30);
    assert_int_equal(atomic_load(&clock_went_back), 0);
    tkv_probe_close(&p);
}

int main(void)
{
    /* the teardown stops the nodes also when an assertion fails half way */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_ttl, NULL,
                                                 tkv_tc_teardown, &cluster),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
