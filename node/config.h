/* tuplekv-node's configuration: command-line flags and an optional JSON
 * file (--config FILE; flags given on the command line win over the file).
 *
 * Every problem is reported as one line in err and makes main() exit with
 * code 2: unknown flag or key, missing or malformed value, inconsistent
 * combination (--bootstrap without this node, --bootstrap with --join,
 * heartbeat not below the election timeout, ...). */
#ifndef TKV_NODE_CONFIG_H
#define TKV_NODE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../raft/replica.h"

#define TKV_NODE_MAX_BOOTSTRAP 16

struct tkv_node_config {
    uint64_t id;
    char raft_address[TKV_ADDR_MAX + 1];
    char client_address[TKV_ADDR_MAX + 1];
    char data_dir[1024];
    struct tkv_replica_peer bootstrap[TKV_NODE_MAX_BOOTSTRAP];
    size_t nbootstrap;
    char join[TKV_ADDR_MAX + 1]; /* "" = none */
    unsigned tick_ms;
    unsigned election_timeout_ms;
    unsigned heartbeat_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    int snapshot_mode; /* 0 fork, 1 inline */
    unsigned snapshot_compression; /* 1: LZ4 snapshot files */
    unsigned huge_pages; /* 1: glibc.malloc.hugetlb=1 (re-exec if unset) */
    unsigned log_zero_fill; /* 1: raft log segments zero-filled (logfill.h) */
    unsigned max_connections;
    int log_level;
    int help; /* --help given */
    /* --probe ADDR [OP [ARG...]]: a tiny client instead of a node */
    char probe[TKV_ADDR_MAX + 1];
    int probe_argc;
    char **probe_argv; /* points into argv */
};

/* Parse argv (and the file named by --config). 0 or TKV_EINVALID. */
int tkv_node_config_parse(struct tkv_node_config *cfg,
                          int argc,
                          char **argv,
                          struct tkv_err *err);

/* Print the --help text to stdout. */
void tkv_node_config_usage(const char *prog);

/* Parse "HOST:PORT" (IPv4 dotted quad or "localhost"). 0 or TKV_EINVALID. */
int tkv_node_parse_addr(const char *s, char *host, size_t hostlen, int *port);

#endif /* TKV_NODE_CONFIG_H */
