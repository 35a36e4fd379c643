/* Membership while serving: a writer runs throughout while a fourth node
 * joins (spare -> voter, client address recorded), a follower is removed,
 * a removal that would leave no majority of up voters is refused,
 * leadership is transferred to a chosen voter, and the leader itself is
 * removed (it hands leadership over first and redirects). Every
 * acknowledged write stays readable. */
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
static atomic_int nwritten;
static int acked[MAX_WRITES];

static void *writer_main(void *arg)
{
    struct tkv_probe p;
    int i;
    (void)arg;
    tkv_probe_init(&p);
    for (i = 0; i < MAX_WRITES && !atomic_load(&stop_writer); i++) {
        char key[64];
        snprintf(key, sizeof key, "[\"m\",%d]", i);
        acked[i] = hc_set(&cluster, &p, 1, key, "true", 0) == 0;
        atomic_store(&nwritten, i + 1);
    }
    tkv_probe_close(&p);
    return NULL;
}

/* members as seen by node i: count voters, and check id's client address */
static int count_voters(int i, uint64_t id, int *has_addr, int *present)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    size_t k;
    int voters = -1;

    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_MEMBERS;
    *has_addr = 0;
    *present = 0;
    if (hc_call(&cluster, &p, i, &req, &rep) == 0 && rep.code == 0) {
        voters = 0;
        for (k = 0; k < rep.nmembers; k++) {
            voters += strcmp(rep.members[k].role, "voter") == 0;
            if (rep.members[k].id == id) {
                *present = 1;
                *has_addr = rep.members[k].client_address != NULL;
            }
        }
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
    return voters;
}

/* An admin op through the leader. A leadership transfer (asked for, or
 * started by removing the leader) that does not finish within the election
 * timeout answers TIMEOUT and changes nothing; on a loaded machine that
 * happens, so such an op is asked again (up to 60 s) once a leader is back.
 * A transfer that finished late counts as done. */
static int admin(int node, int op, uint64_t id)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    int64_t deadline = tkv_tc_now_ms() + 60000;
    int rv;
    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = op;
    req.member_id = id;
    for (;;) {
        rv = hc_call_leader(&cluster, &p, node, &req, &rep, 30000);
        if (rv == 0) {
            rv = rep.code;
            if (rv != 0) {
                fprintf(stderr, "admin op %d on %llu: %s\n", op,
                        (unsigned long long)id, rep.message);
            }
        }
        if (rv != TKV_ETIMEOUT || tkv_tc_now_ms() > deadline) {
            break;
        }
        if (hc_wait_leader(&cluster, 20000) == (int)id &&
            op == TKV_OP_TRANSFER) {
            rv = 0;
            break;
        }
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
    return rv;
}

static void test_membership(void **state)
{
    static const char *const flags[] = {"--election-timeout-ms", "600", NULL};
    struct tkv_probe p;
    pthread_t writer;
    int leader, victim, target, i, n, has_addr, present;

    (void)state;
    assert_int_equal(tkv_tc_init(&cluster, "membership", 21300, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    pthread_create(&writer, NULL, writer_main, NULL);

    /* add node 4 */
    assert_int_equal(tkv_tc_start(&cluster, 4, TKV_TC_JOIN, 1), 0);
    for (i = 0; i < 300; i++) {
        if (count_voters(leader, 4, &has_addr, &present) == 4 && has_addr) {
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    assert_true(i < 300);
    tkv_probe_init(&p);
    for (i = 0; i < 300; i++) {
        if (hc_get(&cluster, &p, 4, "[\"m\",0]", 1) == 1) {
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    assert_true(i < 300);

    /* remove a follower */
    leader = hc_wait_leader(&cluster, 20000);
    victim = leader % 3 + 1;
    assert_int_equal(admin(leader, TKV_OP_MEMBER_REMOVE, (uint64_t)victim), 0);
    assert_int_equal(
        count_voters(leader, (uint64_t)victim, &has_addr, &present), 3);
    assert_false(present);
    tkv_tc_kill(&cluster, victim, SIGTERM);

    /* strict reconfiguration: with one of the two other voters paused,
     * removing the third would leave no majority of up voters: refused,
     * nothing changes; once it is back, nothing stands in the way */
    {
        int other[2], k = 0;
        leader = hc_wait_leader(&cluster, 20000);
        for (i = 1; i <= 4; i++) {
            if (i != victim && i != leader) {
                other[k++] = i;
            }
        }
        struct tkv_req req;
        struct tkv_reply rep;
        tkv_tc_kill(&cluster, other[0], SIGSTOP);
        tkv_tc_sleep_ms(1500);
        tkv_req_init(&req);
        tkv_reply_init(&rep);
        req.op = TKV_OP_MEMBER_REMOVE;
        req.member_id = (uint64_t)other[1];
        assert_int_equal(hc_call(&cluster, &p, leader, &req, &rep), 0);
        assert_int_equal(rep.code, TKV_EUNAVAILABLE);
        assert_non_null(strstr(rep.message, "not a majority"));
        tkv_reply_close(&rep);
        tkv_req_close(&req);
        tkv_tc_kill(&cluster, other[0], SIGCONT);
        assert_int_equal(count_voters(leader, (uint64_t)other[1], &has_addr,
                                      &present),
                         3);
        assert_true(present);
        assert_int_not_equal(hc_wait_leader(&cluster, 20000), 0);
        tkv_tc_sleep_ms(1000);
        leader = hc_wait_leader(&cluster, 20000);
    }

    /* transfer leadership to a chosen voter */
    target = 4 == leader ? (victim % 3 + 1 == leader ? (leader % 3 + 2)
                                                     : victim % 3 + 1)
                         : 4;
    if (target == victim || target == leader) {
        for (target = 1; target <= 4; target++) {
            if (target != victim && target != leader) {
                break;
            }
        }
    }
    assert_int_equal(admin(leader, TKV_OP_TRANSFER, (uint64_t)target), 0);
    assert_int_equal(hc_wait_leader(&cluster, 20000), target);

    /* remove the leader itself: it hands over, then the new leader
     * removes it */
    assert_int_equal(admin(target, TKV_OP_MEMBER_REMOVE, (uint64_t)target), 0);
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    assert_int_not_equal(leader, target);
    assert_int_equal(
        count_voters(leader, (uint64_t)target, &has_addr, &present), 2);
    assert_false(present);

    tkv_tc_sleep_ms(500);
    atomic_store(&stop_writer, 1);
    pthread_join(writer, NULL);
    n = atomic_load(&nwritten);
    fprintf(stderr, "%d writes during membership changes\n", n);
    for (i = 0; i < n; i++) {
        char key[64];
        if (!acked[i]) {
            continue;
        }
        snprintf(key, sizeof key, "[\"m\",%d]", i);
        assert_int_equal(hc_get(&cluster, &p, leader, key, 0), 1);
    }
    tkv_probe_close(&p);
}

int main(void)
{
    /* the teardown stops the nodes also when an assertion fails half way */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_membership, NULL,
                                                 tkv_tc_teardown, &cluster),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
