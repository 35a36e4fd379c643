/* The cluster under test: one tuplekv-node per network namespace.
 *
 * jepsen/run creates the namespaces <ns_prefix>-n<i> (node i, 1-based),
 * each with one veth into a bridge in the root namespace, node i at
 * <net>.(10+i); clients (this process) reach them through the bridge. This
 * module starts nodes inside their namespace (fork, setns, exec), kills,
 * pauses and restarts them, wipes their data, installs iptables DROP rules
 * inside the namespaces, and asks nodes for their status.
 *
 * Every node's stdout and stderr go to <store>/n<i>.log (appended across
 * restarts, each start marked by a "=== tuplekv-jepsen:" line); its data
 * directory is <store>/data/n<i>.
 *
 * All node state is under cl->mu. A node exit the harness did not cause
 * (found by tkvj_cluster_reap) is a "node-crash" finding. Nodes run in
 * their own session (setsid), so a ^C in the terminal reaches the runner
 * only; jepsen/run kills whatever is left in the namespaces at the end. */
#ifndef TKVJ_CLUSTER_H
#define TKVJ_CLUSTER_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "tuplekv.h"

#define TKVJ_MAX_NODES 9
#define TKVJ_CLIENT_PORT 7000
#define TKVJ_RAFT_PORT 7100
#define TKVJ_MAX_CRASHES 16
#define TKVJ_MAX_BACKTRACES 3

struct tkvj_run;

/* Which fault holds a node (so two faults never fight over one node). */
enum tkvj_owner {
    TKVJ_FREE = 0,
    TKVJ_OWNER_KILL,
    TKVJ_OWNER_PAUSE,
    TKVJ_OWNER_CLOCK,
    TKVJ_OWNER_MEMBER,
};

enum tkvj_start {
    TKVJ_START_BOOTSTRAP, /* first start, --bootstrap with every node */
    TKVJ_START_RESTART,   /* same data dir */
    TKVJ_START_JOIN,      /* fresh data dir, --join another member */
};

struct tkvj_node {
    int id;
    char ns[96];
    char ip[48];
    char client[64]; /* "ip:port" */
    char raft[64];
    char data_dir[1200];
    char log_path[1200];
    char core_dir[1200]; /* the node's cwd: cores land here */
    pid_t pid;        /* 0: not running */
    int incarnation;  /* bumped at every start */
    int paused;       /* SIGSTOPped */
    int expect_exit;  /* the harness sent the signal that ends it */
    int skew_s;       /* faketime offset of the running process */
    int removed;      /* not a member (removed by the member nemesis) */
    enum tkvj_owner owner;
    int starts;
};

struct tkvj_cluster {
    struct tkvj_run *run; /* borrowed */
    pthread_mutex_t mu;
    int n;
    struct tkvj_node nodes[TKVJ_MAX_NODES + 1]; /* 1-based */
    char endpoints[1024];  /* every client address */
    char node_bin[1100];
    char iptables[256];
    struct tkv_client *admin; /* owned: status and membership calls */
    /* owned: one client per node that talks to that node only; `members`
     * is answered from the contacted node's own view, so it must be asked
     * of the leader */
    struct tkv_client *node_client[TKVJ_MAX_NODES + 1];
    int stops_unclean;        /* nodes that did not stop on SIGTERM */
    json_t *crashes[TKVJ_MAX_CRASHES]; /* findings with a core file */
    size_t ncrashes;
};

/* Fill in addresses and paths, make the data directories. 0 or -1. */
int tkvj_cluster_init(struct tkvj_cluster *cl, struct tkvj_run *r);
void tkvj_cluster_close(struct tkvj_cluster *cl);

/* Start node i (not running) in its namespace. skew_s != 0 runs it under
 * libfaketime with its clock moved by that many seconds. 0 or -1. */
int tkvj_cluster_start(struct tkvj_cluster *cl, int i, enum tkvj_start how,
                       int skew_s);

/* Bootstrap every node and wait until the cluster takes a write (up to
 * timeout_ms). 0 or -1. */
int tkvj_cluster_bootstrap(struct tkvj_cluster *cl, int timeout_ms);

/* SIGKILL node i and reap it (expected exit). No-op when not running. */
void tkvj_cluster_kill(struct tkvj_cluster *cl, int i);

/* SIGSTOP / SIGCONT node i. */
void tkvj_cluster_pause(struct tkvj_cluster *cl, int i);
void tkvj_cluster_resume(struct tkvj_cluster *cl, int i);

/* Remove node i's data directory (node must be stopped). */
int tkvj_cluster_wipe(struct tkvj_cluster *cl, int i);

/* Check for nodes that exited on their own: each is a finding. */
void tkvj_cluster_reap(struct tkvj_cluster *cl);

/* Install a partition: drop[i][j] != 0 makes node i drop every packet
 * from node j (iptables INPUT DROP inside i's namespace). Replaces any
 * partition before it. 0 or -1. */
int tkvj_cluster_partition(struct tkvj_cluster *cl,
                           unsigned char drop[TKVJ_MAX_NODES + 1]
                                             [TKVJ_MAX_NODES + 1]);
/* Remove every DROP rule. 0 or -1. */
int tkvj_cluster_heal_net(struct tkvj_cluster *cl);

/* Status of node i now (timeout_ms), or NULL. Caller frees. */
struct tkv_node_status *tkvj_cluster_status(struct tkvj_cluster *cl, int i,
                                            int timeout_ms);

/* The node that says it is leader with the highest term, asking every
 * running node now; 0 when none answers so. */
int tkvj_cluster_leader(struct tkvj_cluster *cl, int timeout_ms);

/* Members as the leader sees them (asked of the node that says it is the
 * leader with the highest term): sets voter[i] = 1 for voters, present[i] =
 * 1 for any role. 0 or a TKV_E code (TKV_EUNAVAILABLE: no leader). */
int tkvj_cluster_members(struct tkvj_cluster *cl, int voter[],
                         int present[]);

/* A running, unpaused, member node other than `not` chosen by the caller's
 * rng value x; 0 when none. */
int tkvj_cluster_pick_live(struct tkvj_cluster *cl, int not, uint64_t x);

/* Stop every node: SIGCONT, SIGTERM, then SIGKILL after 10 s (a finding:
 * a node must stop on SIGTERM). Nonzero exit statuses are findings. */
void tkvj_cluster_stop_all(struct tkvj_cluster *cl);

/* For every crash that left a core file: gdb's backtrace next to the core
 * and its first frames in the finding. After stop_all. */
void tkvj_cluster_backtraces(struct tkvj_cluster *cl);

#endif /* TKVJ_CLUSTER_H */
