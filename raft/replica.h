/* A replica: this node's raft instance, its durable log and snapshots
 * (raft_uv), the peer transport (raft_uv_tcp) and the state machine, on the
 * caller's libuv loop. The API node/ builds on; it does not expose raft.h.
 *
 * Writes: tkv_replica_write() encodes one command into the batch of the
 * current loop turn; the batch becomes one log entry at the end of the turn
 * (uv_check), and each command's callback fires once the entry is applied
 * on this leader, with the command's tkv_result. Strong reads:
 * tkv_replica_read() waits until a majority of voters confirm this node is
 * still the leader (or, failing that, for a raft barrier), shared by every
 * read of the turn. Eventual reads use tkv_replica_sm() directly.
 *
 * Callback codes: 0; TKV_ENOT_LEADER / TKV_EUNAVAILABLE / TKV_ESHUTDOWN when
 * nothing was proposed; TKV_EUNKNOWN when the entry was proposed and then
 * leadership was lost (it may or may not be committed). A function that
 * returns non-zero has not queued anything and will not call back.
 *
 * Ownership: the replica owns everything it allocates; strings passed in
 * are copied. Pointers returned by the query functions are valid until the
 * next loop turn. */
#ifndef TKV_REPLICA_H
#define TKV_REPLICA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../common/error.h"
#include "../statemachine/command.h"
#include "../statemachine/sm.h"

#define TKV_BATCH_MAX_BYTES (1024u * 1024u)

struct tkv_replica;

struct tkv_replica_peer {
    uint64_t id;
    char raft_address[TKV_ADDR_MAX + 1];
    char client_address[TKV_ADDR_MAX + 1];
};

struct tkv_replica_config {
    uint64_t id;
    const char *raft_address;
    const char *client_address;
    const char *data_dir;
    const struct tkv_replica_peer *bootstrap; /* NULL: none */
    size_t nbootstrap;
    unsigned tick_ms; /* leader clock tick when idle */
    unsigned election_timeout_ms;
    unsigned heartbeat_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    int snapshot_mode; /* enum tkv_snap_mode (raft/fsm.h); stepped */
    /* 1: raft_uv LZ4-compresses snapshot files. Off by default: on a small
     * machine the CPU it takes while a snapshot is written costs more
     * write latency than the bigger file (bench/results, targets). */
    int snapshot_compression;
    /* 1: raft_uv's log segments are written full of zeros before use, so
     * log writes never convert unwritten extents (logfill.h). Default 1;
     * process-wide. */
    int log_zero_fill;
};

void tkv_replica_config_default(struct tkv_replica_config *cfg);

/* Create and start: opens the data dir, bootstraps when asked and the dir
 * is pristine, loads the log and snapshot (restoring the state), starts
 * the transport. 0 or a TKV_E code with a message in err. */
int tkv_replica_start(uv_loop_t *loop,
                      const struct tkv_replica_config *cfg,
                      struct tkv_replica **out /* OUT */,
                      struct tkv_err *err);

/* Fail whatever is queued, close raft and every handle; cb fires when all
 * is released (the replica is freed before cb). */
void tkv_replica_close(struct tkv_replica *r,
                       void (*cb)(void *data),
                       void *data);

/* Propose the open write batch and issue the pending read barrier now
 * (normally done at the end of each loop turn). */
void tkv_replica_flush(struct tkv_replica *r);

/* 1 when the data dir held raft state before start (a restart). */
int tkv_replica_had_state(const struct tkv_replica *r);

/* Number of proposed entries whose outcome is still pending. */
size_t tkv_replica_inflight(const struct tkv_replica *r);

typedef void (*tkv_write_cb)(void *data,
                             int code,
                             const struct tkv_result *res);
typedef void (*tkv_done_cb)(void *data, int code, const char *msg);

int tkv_replica_write(struct tkv_replica *r,
                      const struct tkv_cmd *cmd,
                      tkv_write_cb cb,
                      void *data,
                      struct tkv_err *err);
int tkv_replica_read(struct tkv_replica *r,
                     tkv_done_cb cb,
                     void *data,
                     struct tkv_err *err);

/* Membership: add joins as spare, then catches up and becomes a voter, then
 * the member's client address is recorded in the replicated state. */
int tkv_replica_member_add(struct tkv_replica *r,
                           uint64_t id,
                           const char *raft_address,
                           const char *client_address,
                           tkv_done_cb cb,
                           void *data,
                           struct tkv_err *err);
int tkv_replica_member_remove(struct tkv_replica *r,
                              uint64_t id,
                              tkv_done_cb cb,
                              void *data,
                              struct tkv_err *err);
/* id 0: the most up-to-date voter. */
int tkv_replica_transfer(struct tkv_replica *r,
                         uint64_t id,
                         tkv_done_cb cb,
                         void *data,
                         struct tkv_err *err);

const struct tkv_sm *tkv_replica_sm(const struct tkv_replica *r);
int tkv_replica_is_leader(struct tkv_replica *r);
/* This node's current raft term: the answer to a leader's `confirm`
 * (raft/confirm.c), read at the moment of asking. */
uint64_t tkv_replica_term(struct tkv_replica *r);
/* Leader id (0 when unknown) and its client address (NULL when unknown). */
uint64_t tkv_replica_leader(struct tkv_replica *r,
                            const char **client_address /* OUT */);

struct tkv_replica_status {
    uint64_t id;
    const char *role; /* "leader", "follower", "candidate", "unavailable" */
    uint64_t term;
    uint64_t leader_id;
    const char *leader_address;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t snapshot_index;
    uint64_t keys;
    uint64_t data_bytes;
    int64_t sm_time_ms;
};
void tkv_replica_status(struct tkv_replica *r,
                        struct tkv_replica_status *st /* OUT */);

struct tkv_replica_member {
    uint64_t id;
    const char *raft_address;
    const char *client_address; /* NULL when not recorded */
    const char *role;           /* "voter", "standby", "spare" */
};
/* Fills up to max members; returns the total number. */
size_t tkv_replica_members(struct tkv_replica *r,
                           struct tkv_replica_member *out,
                           size_t max);

#endif /* TKV_REPLICA_H */
