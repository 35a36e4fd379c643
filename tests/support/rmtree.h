/* Remove a directory tree (a node's data dir, a test's scratch root), as
 * `rm -rf` would: depth first, symlinks removed rather than followed, errors
 * ignored. Shared by the test clusters (testcluster.c) and the
 * fault-injection runner (jepsen/runner/cluster.c). */
#ifndef TKV_RMTREE_H
#define TKV_RMTREE_H

void tkv_rmtree(const char *path);

#endif /* TKV_RMTREE_H */
