/* Strong reads are served after the leader confirms its leadership with a
 * majority of voters (raft/confirm.c), without a log write. These tests
 * are the cases where that proof must fail:
 *
 *   no majority      both followers paused: a strong read on the leader is
 *                    not answered with data until one resumes. A leader
 *                    that served without a majority's answer fails here.
 *   deposed leader   the leader is paused (SIGSTOP), the others elect a new
 *                    leader and overwrite the key; a strong read sent to the
 *                    old leader while it is paused and answered after it
 *                    resumes must not return the old value. (On resume the
 *                    old leader's raft tick usually steps it down before it
 *                    reads the request, so this checks the end to end
 *                    answer more than the confirm round itself.)
 *
 * And the common case: strong reads on a healthy cluster go through
 * confirm rounds (the node logs its confirm connections) and see every
 * acknowledged write; a follower answers `confirm` with its own term. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct tkv_tc cluster;

static const char *const flags[] = {"--election-timeout-ms", "500",
                                    "--heartbeat-ms", "80", NULL};

/* Wait until a node other than `not` is leader and the third agrees. */
static int wait_other_leader(int not, int timeout_ms)
{
    int64_t deadline = tkv_tc_now_ms() + timeout_ms;
    while (tkv_tc_now_ms() < deadline) {
        int i;
        for (i = 1; i <= 3; i++) {
            struct tkv_status st, st2;
            char role[32], role2[32];
            int j = 6 - not -i;
            if (i == not ||
                hc_status(&cluster, i, &st, role, sizeof role) != 0 ||
                strcmp(role, "leader") != 0 ||
                hc_status(&cluster, j, &st2, role2, sizeof role2) != 0 ||
                st2.leader_id != (uint64_t)i) {
                continue;
            }
            return i;
        }
        tkv_tc_sleep_ms(50);
    }
    return 0;
}

/* Start a three-node cluster on ports from base; the leader's index. */
static int start_cluster(const char *name, int base)
{
    int leader;
    assert_int_equal(tkv_tc_init(&cluster, name, base, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    return leader;
}

static void test_reads_confirmed(void **state)
{
    struct tkv_probe p;
    int leader, i, others = 0;

    (void)state;
    leader = start_cluster("confirm", 21700);
    tkv_probe_init(&p);
    for (i = 0; i < 50; i++) {
        char key[32];
        snprintf(key, sizeof key, "[\"c\",%d]", i);
        assert_int_equal(hc_set(&cluster, &p, leader, key, "1", 0), 0);
        assert_int_equal(hc_get(&cluster, &p, leader, key, 0), 1);
    }
    /* a follower answers confirm with its term, whatever term is asked */
    {
        struct tkv_status st;
        struct tkv_req req;
        struct tkv_reply rep;
        char role[32];
        int f = leader % 3 + 1;
        assert_int_equal(hc_status(&cluster, f, &st, role, sizeof role), 0);
        tkv_req_init(&req);
        tkv_reply_init(&rep);
        req.op = TKV_OP_CONFIRM;
        req.term = 1;
        req.member_id = (uint64_t)leader;
        assert_int_equal(hc_call(&cluster, &p, f, &req, &rep), 0);
        assert_int_equal(rep.code, 0);
        assert_true(rep.status.term >= st.term && st.term >= 2);
        tkv_reply_close(&rep);
        tkv_req_close(&req);
    }
    tkv_probe_close(&p);
    /* the leader asked both voters over their client ports */
    for (i = 1; i <= 3; i++) {
        if (i != leader) {
            char text[64];
            snprintf(text, sizeof text, "confirm connection to %d ", i);
            others += tkv_tc_log_count(&cluster, leader, text) > 0;
        }
    }
    assert_int_equal(others, 2);
}

struct resume_arg {
    int node;
    int after_ms;
};

static void *resume_later(void *arg)
{
    struct resume_arg *a = arg;
    tkv_tc_sleep_ms(a->after_ms);
    tkv_tc_kill(&cluster, a->node, SIGCONT);
    return NULL;
}

/* Send a strong get of key_json to node i, resume `paused` after
 * resume_ms, and return the reply's code, or 100 + the value's first
 * byte when it came back with data, or -1 when no reply came; *ms is how
 * long the reply took. */
static int strong_get_across_resume(int i,
                                    int paused,
                                    int resume_ms,
                                    const char *key_json,
                                    int64_t *ms)
{
    uint8_t key[TKV_KEY_MAX];
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    struct tkv_err err;
    struct resume_arg ra = {paused, resume_ms};
    pthread_t th;
    uint64_t id;
    size_t klen;
    int rv;

    hc_key(key_json, key, &klen);
    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_GET;
    req.key = key;
    req.klen = klen;
    /* connect first: the kernel completes the handshake for a stopped
     * process too */
    assert_int_equal(tkv_probe_connect(&p, cluster.nodes[i].client, 2000, &err),
                     0);
    *ms = tkv_tc_now_ms();
    assert_int_equal(tkv_probe_send(&p, &req, &id, 2000, &err), 0);
    pthread_create(&th, NULL, resume_later, &ra);
    rv = tkv_probe_recv(&p, &rep, resume_ms + 5000, &err);
    *ms = tkv_tc_now_ms() - *ms;
    pthread_join(th, NULL);
    if (rv != 0) {
        rv = -1;
    } else if (rep.code != 0) {
        rv = rep.code;
    } else {
        /* a msgpack positive fixint is its own value */
        assert_int_equal(rep.nentries, 1);
        rv = rep.entries[0].present ? 100 + rep.entries[0].value[0] : 100;
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
    return rv;
}

static void test_deposed_leader(void **state)
{
    struct tkv_probe p;
    int old, leader, rv;
    int64_t ms;

    (void)state;
    old = start_cluster("confirm-deposed", 21730);
    tkv_probe_init(&p);
    assert_int_equal(hc_set(&cluster, &p, old, "[\"k\"]", "1", 0), 0);
    assert_int_equal(hc_get(&cluster, &p, old, "[\"k\"]", 0), 1);

    tkv_tc_kill(&cluster, old, SIGSTOP);
    leader = wait_other_leader(old, 10000);
    assert_int_not_equal(leader, 0);
    assert_int_equal(hc_set(&cluster, &p, leader, "[\"k\"]", "2", 0), 0);
    tkv_probe_close(&p);

    /* The old leader still believes it leads; the read reaches it before
     * it hears of the new term. */
    rv = strong_get_across_resume(old, old, 300, "[\"k\"]", &ms);
    fprintf(stderr, "strong read on the deposed leader: %d after %lld ms\n", rv,
            (long long)ms);
    assert_int_not_equal(rv, 100 + 1); /* never the overwritten value */
    assert_true(rv == TKV_ENOT_LEADER || rv == TKV_EUNAVAILABLE ||
                rv == 100 + 2);
}

static void test_no_majority(void **state)
{
    struct tkv_probe p;
    int leader, a, b, rv;
    int64_t ms;

    (void)state;
    leader = start_cluster("confirm-minority", 21760);
    tkv_probe_init(&p);
    assert_int_equal(hc_set(&cluster, &p, leader, "[\"k\"]", "3", 0), 0);
    tkv_probe_close(&p);
    a = leader % 3 + 1;
    b = a % 3 + 1;

    tkv_tc_kill(&cluster, a, SIGSTOP);
    tkv_tc_kill(&cluster, b, SIGSTOP);
    /* b resumes after 1500 ms, past the election timeout: until then the
     * leader has no majority and must not answer with data (it normally
     * steps down first, and the read fails) */
    rv = strong_get_across_resume(leader, b, 1500, "[\"k\"]", &ms);
    fprintf(stderr, "strong read without a majority: %d after %lld ms\n", rv,
            (long long)ms);
    tkv_tc_kill(&cluster, a, SIGCONT);
    if (rv == 100 + 3) {
        assert_true(ms >= 1500);
    } else {
        assert_true(rv == TKV_ENOT_LEADER || rv == TKV_EUNAVAILABLE ||
                    rv == TKV_ETIMEOUT || rv == -1);
    }

    /* with the followers back, strong reads work again */
    leader = hc_wait_leader(&cluster, 10000);
    assert_int_not_equal(leader, 0);
    tkv_probe_init(&p);
    assert_int_equal(hc_get(&cluster, &p, leader, "[\"k\"]", 0), 1);
    tkv_probe_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_reads_confirmed, NULL,
                                                 tkv_tc_teardown, &cluster),
        cmocka_unit_test_prestate_setup_teardown(test_deposed_leader, NULL,
                                                 tkv_tc_teardown, &cluster),
        cmocka_unit_test_prestate_setup_teardown(test_no_majority, NULL,
                                                 tkv_tc_teardown, &cluster),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
