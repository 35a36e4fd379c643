/* A cluster of real tuplekv-node processes for tests: the process side,
 * shared by the integration suite (tests/integration, which talks to the
 * nodes with the probe client) and the client suite (tests/client, which
 * uses libtuplekv). Each suite keeps its own client-side helpers.
 *
 * Node i (1-based) listens for clients on base + i and for raft on
 * base + 50 + i; its data lives in <root>/d<i> and its stdout and stderr go
 * to <root>/n<i>.log, root being a fresh temp directory per cluster. Every
 * test binary asks for a port base of its own, so CTest runs them in
 * parallel; a base is a block of 100 ports in 20000..29999 that the process
 * holds (a lock in /tmp/tkv-test-ports) until it exits, so runs from other
 * build trees or repeats of the same test at once take other blocks. When
 * the asked one is taken the next free block is used: tc->base says which.
 *
 * Happy path:
 *   1. tkv_tc_init: addresses and the temp root; no process yet.
 *   2. tkv_tc_start / tkv_tc_start_all: fork and exec tuplekv-node. Every
 *      child gets PR_SET_PDEATHSIG = SIGKILL, so no node outlives its test
 *      (crash, abort, CTest timeout). The signal comes when the thread that
 *      forked ends, so start nodes from the test's main thread.
 *   3. tkv_tc_kill: SIGKILL/SIGTERM reap the node, SIGSTOP/SIGCONT pause and
 *      resume it; tkv_tc_start(TKV_TC_RESTART) brings it back on its data.
 *   4. tkv_tc_destroy, from a cmocka teardown (tkv_tc_teardown) so that it
 *      runs after a failed assertion too: stops every node (SIGTERM, then
 *      SIGKILL) and returns -1 when one of them failed (below).
 *   5. main returns tkv_tc_finish(cmocka_run_group_tests(...)): when a test
 *      or a node failed it prints the tail of every node's log, then it
 *      deletes the temp roots (kept when TKV_TEST_KEEP is set).
 * Failures: init and start print why and return -1; an atexit hook deletes
 * the roots when tkv_tc_finish is never reached.
 * A node fails when it does not exit 0 after SIGTERM (tkv_tc_kill or
 * tkv_tc_destroy: the node exits 0 on SIGTERM, so anything else is a crash,
 * a sanitizer report at exit, a leak, or a hang) or when it exits on its
 * own (seen by tkv_tc_check_running, tkv_tc_destroy, or a SIGKILL that
 * found it dead). Nodes the test SIGKILLs or pauses do not count. Each
 * failure is printed at once (node id, exit code or signal, log path and
 * the log's last lines) and counted twice: in tc->failures, which makes
 * tkv_tc_destroy (and tkv_tc_teardown, which fails the cmocka test) return
 * -1, and in the process, which makes tkv_tc_finish return non-zero (cmocka
 * 1.1 prints a failed group teardown but still returns 0). */
#ifndef TKV_TESTCLUSTER_H
#define TKV_TESTCLUSTER_H

#include <stdint.h>
#include <sys/types.h>

#define TKV_TC_MAX 8        /* node ids 1..TKV_TC_MAX */
#define TKV_TC_MAX_FLAGS 16 /* extra command line words for every node */

enum tkv_tc_mode {
    TKV_TC_BOOTSTRAP, /* --bootstrap with nodes 1..n */
    TKV_TC_JOIN,      /* --join via another node's client address */
    TKV_TC_RESTART,   /* no flag: start again from the data dir */
};

struct tkv_tc_node {
    pid_t pid;       /* 0 when not running */
    int paused;      /* stopped by SIGSTOP */
    char client[32]; /* "127.0.0.1:<port>" */
    char raft[32];
    char dir[300]; /* data dir */
    char log[300]; /* stdout + stderr */
};

struct tkv_tc {
    char root[256];                           /* temp directory */
    int base;                                 /* port base, as reserved */
    int n;                                    /* nodes in the bootstrap set */
    char endpoints[TKV_TC_MAX * 32];          /* clients of nodes 1..n */
    struct tkv_tc_node nodes[TKV_TC_MAX + 1]; /* 1-based */
    char flags[TKV_TC_MAX_FLAGS][64];         /* copied from init */
    int nflags;
    int failures; /* nodes that failed since init (see the top) */
};

/* Reserve a block of ports (base first; the same block for the same base
 * again in this process), set up n nodes' addresses and a fresh temp root
 * named after the test; flags (NULL-terminated, may be NULL) are passed to
 * every node and are copied. No process yet. 0, or -1 after printing
 * why. */
int tkv_tc_init(struct tkv_tc *tc,
                const char *name,
                int base,
                int n,
                const char *const *flags);

/* Stop every running node (SIGTERM once it has started; SIGKILL 20 s
 * later); may be called again. 0, or -1 when a node of this cluster failed
 * since tkv_tc_init: here (not exit 0 after SIGTERM, exited before it) or
 * earlier. The temp root stays until tkv_tc_finish (or exit), so that its logs
 * can still be shown. */
int tkv_tc_destroy(struct tkv_tc *tc);

/* A cmocka teardown whose state is a struct tkv_tc: tkv_tc_destroy, whose
 * -1 fails the test. Give it the cluster with
 * cmocka_unit_test_prestate_setup_teardown(test, NULL, tkv_tc_teardown,
 * &cluster), or set *state in the group setup. */
int tkv_tc_teardown(void **state);

/* Print the tail of every node log of every cluster of this process when
 * failed != 0 or a node failed, then delete the temp roots. Returns
 * failed, or 1 when it was 0 but a node failed. */
int tkv_tc_finish(int failed);

/* Start node i (not running); join_from is the node whose client address
 * TKV_TC_JOIN goes through (ignored otherwise). 0, or -1 after printing
 * why. */
int tkv_tc_start(struct tkv_tc *tc,
                 int i,
                 enum tkv_tc_mode mode,
                 int join_from);
/* Start nodes 1..n. 0 or -1. */
int tkv_tc_start_all(struct tkv_tc *tc, enum tkv_tc_mode mode);

/* Send sig to node i (a no-op when it does not run). SIGTERM and SIGKILL
 * also reap it (a paused node is resumed first) and return its waitpid
 * status, or -1 when it had to be SIGKILLed after 20 s; other signals
 * return 0. SIGTERM first waits (up to 20 s) for a node still starting to
 * set its handler. A node that does not exit 0 after SIGTERM, or that
 * SIGKILL finds already dead, fails (see the top). */
int tkv_tc_kill(struct tkv_tc *tc, int i, int sig);

/* Ask node i for its view: 0 and *is_leader, *leader_id (0: unknown), or
 * non-zero when it did not answer. The suite's client does the asking. */
typedef int (*tkv_tc_status_cb)(void *arg,
                                struct tkv_tc *tc,
                                int i,
                                int *is_leader /* OUT */,
                                uint64_t *leader_id /* OUT */);

/* 0 when every node started (and not killed since) still runs; else -1
 * after printing which exited: a node exits on its own only when it failed
 * (at its start: a port taken, a bad data dir; later: a crash). It is
 * reaped, counts as not running from then on, and fails (see the top). */
int tkv_tc_check_running(struct tkv_tc *tc);

/* Index (1-based) of the node that says it is the leader and whose
 * leadership every other running node agrees on, polling up to
 * timeout_ms; 0 when none, or at once when a node exited on its own
 * (tkv_tc_check_running). */
int tkv_tc_wait_leader(struct tkv_tc *tc,
                       int timeout_ms,
                       tkv_tc_status_cb status_cb,
                       void *arg);

/* Count lines of node i's log that contain text. */
int tkv_tc_log_count(const struct tkv_tc *tc, int i, const char *text);

/* Path of a program in the build's bin directory (per thread buffer). */
const char *tkv_tc_bin(const char *name);

int64_t tkv_tc_now_ms(void);
void tkv_tc_sleep_ms(int ms);

#endif /* TKV_TESTCLUSTER_H */
