/* Three nodes elect one leader; a write sent to a follower is answered
 * NOT_LEADER with the leader's client address; the basic ops work end to
 * end through the leader (set, get, get_many, list, delete, atomic with a
 * conflict naming its key, dedup by session), and status / members report
 * what the protocol promises. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "statemachine/keycodec.h"

static struct tkv_tc cluster;

static int setup(void **state)
{
    static const char *const flags[] = {"--election-timeout-ms", "600", NULL};
    *state = &cluster; /* for tkv_tc_teardown */
    assert_int_equal(tkv_tc_init(&cluster, "election", 21000, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    return 0;
}

static void test_one_leader_and_redirect(void **state)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    struct tkv_buf v;
    uint8_t key[TKV_KEY_MAX];
    size_t klen;
    int leader, follower, i, leaders = 0;

    (void)state;
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    for (i = 1; i <= 3; i++) {
        struct tkv_status st;
        char role[32];
        assert_int_equal(hc_status(&cluster, i, &st, role, sizeof role), 0);
        leaders += strcmp(role, "leader") == 0;
        assert_int_equal(st.node_id, (uint64_t)i);
        assert_int_equal(st.leader_id, (uint64_t)leader);
    }
    assert_int_equal(leaders, 1);

    follower = leader % 3 + 1;
    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    tkv_buf_init(&v);
    hc_key("[\"k\",1]", key, &klen);
    hc_value("{\"a\":1}", &v);
    req.op = TKV_OP_SET;
    req.key = key;
    req.klen = klen;
    req.value = v.data;
    req.vlen = v.len;
    /* The leader records members' client addresses shortly after its
     * election: retry until the redirect names it. */
    for (i = 0; i < 100; i++) {
        assert_int_equal(hc_call(&cluster, &p, follower, &req, &rep), 0);
        if (rep.code == TKV_ENOT_LEADER && rep.leader != NULL) {
            break;
        }
        tkv_tc_sleep_ms(50);
    }
    assert_int_equal(rep.code, TKV_ENOT_LEADER);
    assert_non_null(rep.leader);
    assert_string_equal(rep.leader, cluster.nodes[leader].client);

    /* The same request on the leader succeeds. */
    assert_int_equal(hc_call(&cluster, &p, leader, &req, &rep), 0);
    assert_int_equal(rep.code, 0);
    assert_true(rep.version > 0);

    /* Strong reads on a follower are redirected too; eventual ones are
     * served locally (once replicated). */
    req.op = TKV_OP_GET;
    assert_int_equal(hc_call(&cluster, &p, follower, &req, &rep), 0);
    assert_int_equal(rep.code, TKV_ENOT_LEADER);
    req.eventual = 1;
    for (i = 0; i < 100; i++) {
        assert_int_equal(hc_call(&cluster, &p, follower, &req, &rep), 0);
        assert_int_equal(rep.code, 0);
        if (rep.entries[0].present) {
            break;
        }
        tkv_tc_sleep_ms(20);
    }
    assert_true(rep.entries[0].present);

    tkv_buf_close(&v);
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
}

static void test_ops(void **state)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    struct tkv_buf v;
    uint8_t k1[TKV_KEY_MAX], k2[TKV_KEY_MAX], pre[TKV_KEY_MAX];
    size_t k1len, k2len, prelen;
    struct tkv_keyref keys[3];
    struct tkv_check checks[1];
    struct tkv_mutation muts[1];
    uint64_t version;
    int i;

    (void)state;
    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    tkv_buf_init(&v);
    for (i = 0; i < 5; i++) {
        char key[64];
        snprintf(key, sizeof key, "[\"list\",%d]", i);
        assert_int_equal(hc_set(&cluster, &p, 1, key, "\"x\"", 0), 0);
    }
    hc_key("[\"list\"]", pre, &prelen);
    req.op = TKV_OP_LIST;
    req.list.prefix = pre;
    req.list.prefix_len = prelen;
    req.list.limit = 2;
    assert_int_equal(hc_call_leader(&cluster, &p, 1, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, 0);
    assert_int_equal(rep.nentries, 2);
    assert_int_equal(rep.total, 5);
    assert_non_null(rep.cursor);

    hc_key("[\"list\",1]", k1, &k1len);
    hc_key("[\"absent\"]", k2, &k2len);
    keys[0].key = k1;
    keys[0].klen = k1len;
    keys[1].key = k2;
    keys[1].klen = k2len;
    keys[2].key = k1;
    keys[2].klen = k1len;
    tkv_req_close(&req);
    tkv_req_init(&req);
    req.op = TKV_OP_GET_MANY;
    req.keys = keys;
    req.nkeys = 3;
    assert_int_equal(hc_call_leader(&cluster, &p, 1, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, 0);
    assert_int_equal(rep.nentries, 3);
    assert_true(rep.entries[0].present);
    assert_false(rep.entries[1].present);
    assert_true(rep.entries[2].present);
    version = rep.entries[0].version;

    /* atomic: a check on a stale version conflicts and names its key */
    hc_value("\"new\"", &v);
    checks[0].key = k1;
    checks[0].klen = (uint16_t)k1len;
    checks[0].version = version + 1;
    muts[0].type = TKV_CMD_SET;
    muts[0].key = k1;
    muts[0].klen = (uint16_t)k1len;
    muts[0].value = v.data;
    muts[0].vlen = (uint32_t)v.len;
    muts[0].ttl_ms = 0;
    tkv_req_close(&req);
    tkv_req_init(&req);
    req.op = TKV_OP_ATOMIC;
    req.checks = checks;
    req.nchecks = 1;
    req.muts = muts;
    req.nmuts = 1;
    assert_int_equal(hc_call_leader(&cluster, &p, 1, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, TKV_ECONFLICT);
    assert_non_null(rep.conflict);
    assert_int_equal(rep.conflict_len, k1len);
    assert_memory_equal(rep.conflict, k1, k1len);
    checks[0].version = version;
    assert_int_equal(hc_call_leader(&cluster, &p, 1, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, 0);
    assert_true(rep.version > version);

    /* a write resent with the same (session, seq) gets the first result */
    tkv_req_close(&req);
    tkv_req_init(&req);
    req.op = TKV_OP_DELETE;
    req.key = k1;
    req.klen = k1len;
    req.session = 77;
    req.seq = 1;
    assert_int_equal(hc_call_leader(&cluster, &p, 1, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, 0);
    version = rep.version;
    assert_int_equal(hc_call_leader(&cluster, &p, 1, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, 0);
    assert_int_equal(rep.version, version);
    assert_int_equal(hc_get(&cluster, &p, 1, "[\"list\",1]", 0), 0);

    tkv_req_close(&req);
    tkv_req_init(&req);
    req.op = TKV_OP_MEMBERS;
    /* members is the leader's view: node 2 answers or redirects */
    assert_int_equal(hc_call_leader(&cluster, &p, 2, &req, &rep, 10000), 0);
    assert_int_equal(rep.code, 0);
    assert_int_equal(rep.nmembers, 3);
    for (i = 0; i < 3; i++) {
        assert_string_equal(rep.members[i].role, "voter");
        assert_non_null(rep.members[i].client_address);
    }

    tkv_buf_close(&v);
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_leader_and_redirect),
        cmocka_unit_test(test_ops),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, tkv_tc_teardown));
}
