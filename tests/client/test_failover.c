/* Cluster handling: a client given only a follower's endpoint works (it
 * follows the NOT_LEADER redirect); a client whose endpoint dies fails over
 * to the others; with every node down calls fail with TKV_EUNAVAILABLE (a
 * write never sent) within their timeout, and the same client works again
 * once the nodes are back. */
#include <signal.h>

#include "cluster.h"
#include "testutil.h"

static struct tkv_tc cl;

static void roundtrip(struct tkv_client *c, const char *id, int n)
{
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *k = json_pack("[ss]", "fo", id);
    json_t *v = json_integer(n);
    uint64_t ver = 0;
    TKV_OK(tkv_set(c, k, v, 0, NULL, &ver, &err), &err);
    TKV_OK(tkv_get(c, k, NULL, &it, &err), &err);
    assert_non_null(it);
    assert_json_eq(it->value, v);
    assert_int_equal(it->version, ver);
    tkv_item_free(it);
    json_decref(k);
    json_decref(v);
}

static void test_follower_endpoint(void **state)
{
    int leader = tkv_test_cluster_leader(&cl, 20000);
    int follower = leader % 3 + 1;
    struct tkv_client *c;
    (void)state;

    assert_true(leader > 0);
    c = tkv_test_client(cl.nodes[follower].client, 5000);
    assert_non_null(c);
    roundtrip(c, "via-follower", 1);
    tkv_close(c);
}

static void test_endpoint_dies(void **state)
{
    struct tkv_client *c = tkv_test_client(cl.endpoints, 10000);
    int leader;
    int i;
    (void)state;

    assert_non_null(c);
    roundtrip(c, "before", 1);
    /* the client talks to the leader now: kill it */
    leader = tkv_test_cluster_leader(&cl, 20000);
    assert_true(leader > 0);
    tkv_tc_kill(&cl, leader, SIGKILL);
    for (i = 0; i < 20; i++) {
        roundtrip(c, "after", i);
    }
    assert_int_equal(tkv_tc_start(&cl, leader, TKV_TC_RESTART, 0), 0);
    tkv_close(c);

    /* a client listing a dead node first still works */
    leader = tkv_test_cluster_leader(&cl, 20000);
    assert_true(leader > 0);
    {
        int dead = leader % 3 + 1;
        char eps[128];
        tkv_tc_kill(&cl, dead, SIGKILL);
        snprintf(eps, sizeof eps, "%s,%s", cl.nodes[dead].client,
                 cl.nodes[leader].client);
        c = tkv_test_client(eps, 10000);
        for (i = 0; i < 5; i++) {
            roundtrip(c, "dead-first", i);
        }
        tkv_close(c);
        assert_int_equal(tkv_tc_start(&cl, dead, TKV_TC_RESTART, 0), 0);
    }
}

static void test_all_down(void **state)
{
    struct tkv_client *c = tkv_test_client(cl.endpoints, 800);
    struct tkv_err err;
    struct tkv_item *it = NULL;
    json_t *k = json_pack("[s]", "down");
    json_t *v = json_true();
    int64_t t0;
    int i;
    (void)state;

    roundtrip(c, "up", 1);
    for (i = 1; i <= 3; i++) {
        tkv_tc_kill(&cl, i, SIGKILL);
    }
    t0 = tkv_tc_now_ms();
    TKV_FAILS(tkv_get(c, k, NULL, &it, &err), &err, TKV_EUNAVAILABLE,
              "within the timeout");
    assert_true(tkv_tc_now_ms() - t0 < 3000);
    TKV_FAILS(tkv_set(c, k, v, 0, NULL, NULL, &err), &err, TKV_EUNAVAILABLE,
              "not applied");
    for (i = 1; i <= 3; i++) {
        assert_int_equal(tkv_tc_start(&cl, i, TKV_TC_RESTART, 0), 0);
    }
    tkv_close(c);
    /* the same kind of client recovers once a leader is elected */
    c = tkv_test_client(cl.endpoints, 20000);
    roundtrip(c, "back", 2);
    tkv_close(c);
    json_decref(k);
    json_decref(v);
}

static int setup(void **state)
{
    *state = &cl; /* for tkv_tc_teardown */
    return tkv_test_cluster_start(&cl, 3, TKV_TEST_PORT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follower_endpoint),
        cmocka_unit_test(test_endpoint_dies),
        cmocka_unit_test(test_all_down),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, tkv_tc_teardown));
}
