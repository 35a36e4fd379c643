/* `members` is the leader's view (client/tuplekv.h): the leader answers it;
 * a follower answers NOT_LEADER naming the leader's client address, so a
 * client that follows redirects (libtuplekv does, for every read) gets the
 * leader's configuration, never a lagging follower's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct tkv_tc cluster;

static int setup(void **state)
{
    static const char *const flags[] = {"--election-timeout-ms", "600", NULL};
    *state = &cluster; /* for tkv_tc_teardown */
    assert_int_equal(tkv_tc_init(&cluster, "members", 21600, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    return 0;
}

static void test_members_from_leader(void **state)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    int leader, follower, i, tries;

    (void)state;
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    follower = leader % 3 + 1;

    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_MEMBERS;

    /* the leader answers, with every member's client address once its
     * first barrier has recorded them */
    for (tries = 0; tries < 100; tries++) {
        assert_int_equal(hc_call(&cluster, &p, leader, &req, &rep), 0);
        assert_int_equal(rep.code, 0);
        assert_int_equal(rep.nmembers, 3);
        for (i = 0; i < 3 && rep.members[i].client_address != NULL; i++) {
        }
        if (i == 3) {
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    for (i = 0; i < 3; i++) {
        assert_string_equal(rep.members[i].role, "voter");
        assert_non_null(rep.members[i].client_address);
    }

    /* a follower redirects to the leader (naming it once the follower has
     * applied the entry recording the leader's client address) */
    for (tries = 0; tries < 100; tries++) {
        assert_int_equal(hc_call(&cluster, &p, follower, &req, &rep), 0);
        assert_int_equal(rep.code, TKV_ENOT_LEADER);
        if (rep.leader != NULL) {
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    assert_non_null(rep.leader);
    assert_string_equal(rep.leader, cluster.nodes[leader].client);

    /* and following the redirect gets the leader's answer */
    assert_int_equal(hc_call_leader(&cluster, &p, follower, &req, &rep, 10000),
                     0);
    assert_int_equal(rep.code, 0);
    assert_int_equal(rep.nmembers, 3);

    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_from_leader),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, tkv_tc_teardown));
}
