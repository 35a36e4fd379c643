/* A real three-node (or n-node) tuplekv cluster for tests: tuplekv-node
 * processes from the build's bin/ directory, bootstrapped together on
 * 127.0.0.1 with a per-test port base (so tests run in parallel), data in a
 * fresh temporary directory.
 *
 * Client port of node i (1-based): base + i; raft port: base + 50 + i.
 * Every child gets PR_SET_PDEATHSIG = SIGKILL, so a test that crashes or is
 * killed by CTest's timeout does not leave nodes behind; cluster_stop()
 * stops them (SIGTERM, then SIGKILL) and removes the directory. */
#ifndef TKV_TEST_CLUSTER_H
#define TKV_TEST_CLUSTER_H

#include <sys/types.h>

#include "tuplekv.h"

#define TKV_TEST_MAX_NODES 5

struct tkv_test_cluster {
    int n;
    int base;
    char dir[256];                     /* temporary data directory */
    pid_t pid[TKV_TEST_MAX_NODES + 1]; /* 1-based; 0 = not running */
    char client[TKV_TEST_MAX_NODES + 1][32];
    char raft[TKV_TEST_MAX_NODES + 1][32];
    char endpoints[256]; /* all client addresses */
};

/* Start n nodes and wait until the cluster takes writes (up to 20 s).
 * 0 or -1 (after printing why and cleaning up). */
int tkv_test_cluster_start(struct tkv_test_cluster *cl, int n, int base);

/* Stop every node and remove the directory. */
void tkv_test_cluster_stop(struct tkv_test_cluster *cl);

/* Send sig to node i and, for SIGKILL/SIGTERM, reap it. */
void tkv_test_cluster_kill(struct tkv_test_cluster *cl, int i, int sig);

/* Start node i again with its data directory. 0 or -1. */
int tkv_test_cluster_restart(struct tkv_test_cluster *cl, int i);

/* The node (1-based) that says it is the leader, waiting up to timeout_ms
 * for one; 0 when none. */
int tkv_test_cluster_leader(struct tkv_test_cluster *cl, int timeout_ms);

/* A client for the given endpoints (NULL: all), or NULL. */
struct tkv_client *tkv_test_client(const char *endpoints, int timeout_ms);

/* Path of a binary in the build's bin directory. */
const char *tkv_test_bin(const char *name);

#endif /* TKV_TEST_CLUSTER_H */
