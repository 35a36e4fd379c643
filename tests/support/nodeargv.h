/* The command line of one tuplekv-node start: --id, the two addresses, the
 * data dir, then --bootstrap with the members or --join, then whatever the
 * caller adds. Shared by the test clusters (testcluster.c) and the
 * fault-injection runner (jepsen/runner/cluster.c), so that both start
 * nodes the same way.
 *
 * Built before fork (the runner forks from a threaded process, whose child
 * may only make async-signal-safe calls). The words point into the struct
 * (the id, the member list) or at the caller's strings, which must live
 * until the exec; nothing is allocated. */
#ifndef TKV_NODEARGV_H
#define TKV_NODEARGV_H

#include <stddef.h>

#define TKV_NODEARGV_MAX 64 /* words, argv[0] included */

struct tkv_nodeargv {
    const char *argv[TKV_NODEARGV_MAX + 1]; /* NULL-terminated */
    int argc;
    int overflow;       /* set when a word or a member was dropped */
    char id[16];        /* the value of --id */
    char members[1024]; /* the value of --bootstrap: id=raft=client,... */
    size_t members_len;
};

/* argv = program --id <id> --raft-address <raft> --client-address <client>
 * --data-dir <data_dir>. */
void tkv_nodeargv_init(struct tkv_nodeargv *a,
                       const char *program,
                       int id,
                       const char *raft,
                       const char *client,
                       const char *data_dir);

/* Append one word (not copied); dropped, with overflow set, when full. */
void tkv_nodeargv_add(struct tkv_nodeargv *a, const char *word);

/* Append a flag and its value (neither copied). */
void tkv_nodeargv_flag(struct tkv_nodeargv *a,
                       const char *flag,
                       const char *value);

/* Add a member to the bootstrap list; tkv_nodeargv_bootstrap appends
 * --bootstrap with the list. */
void tkv_nodeargv_member(struct tkv_nodeargv *a,
                         int id,
                         const char *raft,
                         const char *client);
void tkv_nodeargv_bootstrap(struct tkv_nodeargv *a);

#endif /* TKV_NODEARGV_H */
