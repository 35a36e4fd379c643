/* Stop all three nodes (SIGTERM: exit 0) and start them again without
 * bootstrap flags: all data back. Then a node whose data dir was wiped
 * rejoins with --join and catches up through a snapshot install (the
 * snapshot threshold is set low so the leader's log is compacted). */
#include <dirent.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "extents.h"
#include "harness.h"

static struct tkv_tc cluster;

static void write_range(struct tkv_probe *p, int from, int to)
{
    int i;
    for (i = from; i < to; i++) {
        char key[64], val[64];
        snprintf(key, sizeof key, "[\"r\",%d]", i);
        snprintf(val, sizeof val, "[%d,\"value\"]", i);
        assert_int_equal(hc_set(&cluster, p, 1, key, val, 0), 0);
    }
}

static void check_range(struct tkv_probe *p,
                        int node,
                        int from,
                        int to,
                        int eventual)
{
    int i;
    for (i = from; i < to; i++) {
        char key[64];
        snprintf(key, sizeof key, "[\"r\",%d]", i);
        assert_int_equal(hc_get(&cluster, p, node, key, eventual), 1);
    }
}

/* /proc/<node i's pid>/<name> into buf, NUL-terminated; its length. */
static size_t read_proc(int i, const char *name, char *buf, size_t size)
{
    char path[64];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "/proc/%d/%s", (int)cluster.nodes[i].pid,
             name);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* Node i runs with its heap on transparent huge pages: it set
 * glibc.malloc.hugetlb=1 and exec'd itself again (same pid), or said why
 * not when the kernel has THP off. */
static void check_huge_pages(int i)
{
    char thp[128] = "", env[8192];
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    size_t n, k;
    int found = 0;

    if (f != NULL) {
        if (fgets(thp, sizeof thp, f) == NULL) {
            thp[0] = '\0';
        }
        fclose(f);
    }
    if (thp[0] == '\0' || strstr(thp, "[never]") != NULL) {
        assert_true(tkv_tc_log_count(&cluster, i, "heap: 4 KiB pages") >= 1);
        return;
    }
    assert_true(tkv_tc_log_count(&cluster, i, "heap: GLIBC_TUNABLES=") >= 1);
    /* named as started, not "exe" after the exec of /proc/self/exe */
    read_proc(i, "comm", env, sizeof env);
    assert_string_equal(env, "tuplekv-node\n");
    n = read_proc(i, "environ", env, sizeof env);
    for (k = 0; k < n; k += strlen(env + k) + 1) {
        if (strncmp(env + k, "GLIBC_TUNABLES=", 15) == 0 &&
            strstr(env + k, "glibc.malloc.hugetlb=1") != NULL) {
            found = 1;
        }
    }
    assert_true(found);
}

/* Node i's log segments were written as zeros before use
 * (raft/logfill.h, --log-zero-fill 1 by default): no open segment raft_uv
 * prepared holds an unwritten extent, where the file system can tell (a
 * segment being filled right now may, for some ms: asked again for up to
 * 2 s). This is what shows libraft calls the node's posix_fallocate. */
static int unwritten_segments(int i, int *seen)
{
    DIR *d = opendir(cluster.nodes[i].dir);
    struct dirent *e;
    int unwritten = 0;

    assert_non_null(d);
    *seen = 0;
    while ((e = readdir(d)) != NULL) {
        struct tkv_test_extents ex;
        char path[sizeof cluster.nodes[i].dir + 300];

        if (strncmp(e->d_name, "open-", 5) != 0) {
            continue;
        }
        (*seen)++;
        snprintf(path, sizeof path, "%s/%s", cluster.nodes[i].dir,
                 e->d_name);
        if (tkv_test_extents(path, &ex) == 0 && ex.unwritten > 0) {
            unwritten++;
        }
    }
    closedir(d);
    return unwritten;
}

static void check_log_zero_filled(int i)
{
    int tries, seen;

    for (tries = 0; unwritten_segments(i, &seen) > 0; tries++) {
        assert_true(tries < 20);
        tkv_tc_sleep_ms(100);
    }
    assert_true(seen >= 1);
}

static void test_restart_and_rejoin(void **state)
{
    static const char *const flags[] = {"--election-timeout-ms",
                                        "600",
                                        "--snapshot-threshold",
                                        "32",
                                        "--snapshot-trailing",
                                        "8",
                                        NULL};
    struct tkv_probe p;
    struct tkv_status st, lst;
    char role[32], cmd[1024];
    int leader, victim, i, status;

    (void)state;
    assert_int_equal(tkv_tc_init(&cluster, "restart", 21200, 3, flags), 0);
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_BOOTSTRAP), 0);
    assert_int_not_equal(hc_wait_leader(&cluster, 20000), 0);
    tkv_probe_init(&p);
    for (i = 1; i <= 3; i++) {
        check_huge_pages(i);
    }
    write_range(&p, 0, 100);
    for (i = 1; i <= 3; i++) {
        check_log_zero_filled(i);
    }

    for (i = 1; i <= 3; i++) {
        status = tkv_tc_kill(&cluster, i, SIGTERM);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(tkv_tc_start_all(&cluster, TKV_TC_RESTART), 0);
    leader = hc_wait_leader(&cluster, 20000);
    assert_int_not_equal(leader, 0);
    check_range(&p, leader, 0, 100, 0);

    /* Wipe a follower and let the cluster move on without it. */
    victim = leader % 3 + 1;
    tkv_tc_kill(&cluster, victim, SIGTERM);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cluster.nodes[victim].dir);
    assert_int_equal(system(cmd), 0);
    write_range(&p, 100, 300);

    leader = hc_wait_leader(&cluster, 20000);
    assert_int_equal(tkv_tc_start(&cluster, victim, TKV_TC_JOIN, leader), 0);
    for (i = 0; i < 300; i++) {
        if (hc_status(&cluster, victim, &st, role, sizeof role) == 0 &&
            hc_status(&cluster, leader, &lst, role, sizeof role) == 0 &&
            st.keys == 300 && st.applied_index + 2 >= lst.commit_index) {
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    assert_true(i < 300);
    assert_true(tkv_tc_log_count(&cluster, victim, "restored snapshot") >= 1);
    assert_true(st.snapshot_index > 0);
    /* the leader's snapshots are made in steps, without a fork (default) */
    assert_true(tkv_tc_log_count(&cluster, leader, "started in steps") >= 1);
    assert_int_equal(tkv_tc_log_count(&cluster, leader, "started child"), 0);
    check_range(&p, victim, 0, 300, 1);
    tkv_probe_close(&p);
}

int main(void)
{
    /* the teardown stops the nodes also when an assertion fails half way */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_restart_and_rejoin, NULL,
                                                 tkv_tc_teardown, &cluster),
    };
    return tkv_tc_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
