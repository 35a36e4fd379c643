/* The client suite's side of a test cluster: the nodes are a tests/support
 * test cluster (testcluster.h: processes, ports, temp data, logs); these
 * helpers reach them through libtuplekv, the library under test.
 *
 * A test starts three nodes on its own port base in its group setup
 * (tkv_test_cluster_start), kills and restarts them with tkv_tc_kill and
 * tkv_tc_start, and stops them in its group teardown, which returns what
 * tkv_tc_destroy does (-1: a node failed, testcluster.h). */
#ifndef TKV_TEST_CLUSTER_H
#define TKV_TEST_CLUSTER_H

#include "testcluster.h"
#include "tuplekv.h"

/* Init (ports from base, or the next free block: cl->base), bootstrap n
 * nodes and wait until the cluster takes writes (up to 60 s). 0, or -1
 * after printing why, also when a node exited meanwhile; the caller's
 * teardown still calls tkv_tc_destroy. */
int tkv_test_cluster_start(struct tkv_tc *cl, int n, int base);

/* The node (1-based) that is the leader all running nodes agree on, asked
 * through libtuplekv, waiting up to timeout_ms; 0 when none. */
int tkv_test_cluster_leader(struct tkv_tc *cl, int timeout_ms);

/* A client for the given endpoints (NULL: all), or NULL. */
struct tkv_client *tkv_test_client(const char *endpoints, int timeout_ms);

#endif /* TKV_TEST_CLUSTER_H */
