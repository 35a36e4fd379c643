/* Runs every program of examples/ against a local three-node cluster
 * (TUPLEKV_ENDPOINTS set to it); each must exit 0. Also a short run of the
 * async benchmark, so it keeps working. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "testutil.h"

static struct tkv_tc cl;

static int run(const char *name, const char *const *args)
{
    const char *argv[16];
    int argc = 0;
    pid_t pid;
    int status;
    argv[argc++] = name;
    while (args != NULL && *args != NULL && argc < 15) {
        argv[argc++] = *args++;
    }
    argv[argc] = NULL;
    pid = fork();
    if (pid == 0) {
        setenv("TUPLEKV_ENDPOINTS", cl.endpoints, 1);
        execv(tkv_tc_bin(name), (char *const *)argv);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

#define EXAMPLE(fn, bin)                     \
    static void fn(void **state)             \
    {                                        \
        (void)state;                         \
        assert_int_equal(run(bin, NULL), 0); \
    }

EXAMPLE(test_notes, "tuplekv-example-notes")
EXAMPLE(test_pagination, "tuplekv-example-pagination")
EXAMPLE(test_ttl_cache, "tuplekv-example-ttl_cache")
EXAMPLE(test_bank_transfer, "tuplekv-example-bank_transfer")
EXAMPLE(test_secondary_index, "tuplekv-example-secondary_index")
EXAMPLE(test_view_counter, "tuplekv-example-view_counter")

static void test_bench_smoke(void **state)
{
    const char *w[] = {"--ops", "2000", "--inflight", "64", NULL};
    const char *r[] = {"--mode", "read", "--ops", "2000",
                       "--keys", "100",  NULL};
    const char *e[] = {"--mode", "eventual", "--ops", "2000",
                       "--keys", "100",      NULL};
    (void)state;
    assert_int_equal(run("tuplekv-client-bench", w), 0);
    assert_int_equal(run("tuplekv-client-bench", r), 0);
    assert_int_equal(run("tuplekv-client-bench", e), 0);
}

static int setup(void **state)
{
    *state = &cl; /* for tkv_tc_teardown */
    return tkv_test_cluster_start(&cl, 3, TKV_TEST_PORT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notes),
        cmocka_unit_test(test_pagination),
        cmocka_unit_test(test_ttl_cache),
        cmocka_unit_test(test_bank_transfer),
        cmocka_unit_test(test_secondary_index),
        cmocka_unit_test(test_view_counter),
        cmocka_unit_test(test_bench_smoke),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, setup, tkv_tc_teardown));
}
