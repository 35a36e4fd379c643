/* tkv__config_unstick (raft/membership.c): the workaround for raft 0.22.1
 * keeping an applied configuration marked uncommitted, which makes the
 * leader refuse every membership change.
 *
 * A raft_fixture cluster of three voters elects a leader; the test then
 * puts the leader in the state seen under jepsen (uncommitted index at or
 * below last_applied), checks that raft refuses a change, that the
 * workaround clears exactly that state, and that the change then commits.
 * It also checks what it must leave alone: a change really in flight, and
 * a follower. */
#include <raft.h>
#include <raft/fixture.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "quiet.h"
#include "raft/glue.h"

#define N 3

static int nop_apply(struct raft_fsm *fsm,
                     const struct raft_buffer *buf,
                     void **result)
{
    (void)fsm;
    (void)buf;
    *result = NULL;
    return 0;
}

static struct raft_fsm fsms[N];
static int change_status = -1;

static void change_cb(struct raft_change *req, int status)
{
    (void)req;
    change_status = status;
}

static void start_cluster(struct raft_fixture *f)
{
    struct raft_configuration conf;
    unsigned i;

    memset(f, 0, sizeof *f);
    assert_int_equal(raft_fixture_init(f), 0);
    for (i = 0; i < N; i++) {
        memset(&fsms[i], 0, sizeof fsms[i]);
        fsms[i].version = 1;
        fsms[i].apply = nop_apply;
        assert_int_equal(raft_fixture_grow(f, &fsms[i]), 0);
        tkv_fixture_quiet(raft_fixture_get(f, i));
    }
    assert_int_equal(raft_fixture_configuration(f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(f), 0);
    assert_true(raft_fixture_step_until_has_leader(f, 10000));
}

static void test_stale_marker_cleared(void **state)
{
    struct raft_fixture f;
    struct raft *leader, *follower;
    struct raft_change req;
    struct raft_barrier barrier;
    unsigned li;

    (void)state;
    start_cluster(&f);
    li = raft_fixture_leader_index(&f);
    leader = raft_fixture_get(&f, li);
    follower = raft_fixture_get(&f, (li + 1) % N);
    /* one entry of the leader's term, applied everywhere */
    assert_int_equal(raft_barrier(leader, &barrier, NULL), 0);
    assert_true(raft_fixture_step_until_applied(&f, N, raft_last_index(leader),
                                                10000));
    assert_int_equal(raft_state(leader), RAFT_LEADER);

    /* Healthy: nothing to clear. */
    assert_int_equal(tkv__config_unstick(leader), 0);

    /* The stuck state: the configuration of entry 1 (applied long ago)
     * still marked uncommitted. Raft refuses changes. */
    leader->configuration_uncommitted_index = 1;
    assert_int_equal(raft_add(leader, &req, 4, "4", change_cb),
                     RAFT_CANTCHANGE);

    /* A follower is never touched, stale marker or not. */
    follower->configuration_uncommitted_index = 1;
    assert_int_equal(tkv__config_unstick(follower), 0);
    assert_int_equal(follower->configuration_uncommitted_index, 1);
    follower->configuration_uncommitted_index = 0;

    assert_int_equal(tkv__config_unstick(leader), 1);
    assert_int_equal(leader->configuration_uncommitted_index, 0);
    assert_int_equal(leader->configuration_committed_index, 1);
    assert_int_equal(leader->configuration_committed.n, N);

    /* Changes go through again, and commit. */
    assert_int_equal(raft_add(leader, &req, 4, "4", change_cb), 0);
    /* A change in flight is left alone: its marker is above last_applied. */
    assert_true(leader->configuration_uncommitted_index >
                raft_last_applied(leader));
    assert_int_equal(tkv__config_unstick(leader), 0);
    assert_true(leader->configuration_uncommitted_index != 0);

    assert_true(raft_fixture_step_until_applied(
        &f, N, leader->configuration_uncommitted_index, 10000));
    raft_fixture_step_n(&f, 10);
    assert_int_equal(change_status, 0);
    assert_int_equal(leader->configuration_uncommitted_index, 0);
    assert_int_equal(leader->configuration.n, N + 1);
    assert_int_equal(leader->configuration_committed.n, N + 1);

    raft_fixture_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_marker_cleared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
