/* Snapshot gate: a shim over a struct raft_io that works around a crash in
 * canonical/raft 0.22.1's legacy layer (src/legacy.c, takeSnapshotCb).
 *
 * The bug. When an InstallSnapshot message arrives while this server's own
 * snapshot is being written (r->legacy.snapshot_taking: from the
 * io->snapshot_put() of a take until its callback), legacy.c parks the
 * install in r->legacy.snapshot_pending. When the take completes,
 * takeSnapshotCb() resumes it with
 *
 *     r->legacy.snapshot_pending = NULL;
 *     persist = r->legacy.snapshot_pending;      -- always NULL
 *     rv = legacyPersistSnapshotStart(persist);  -- reads persist->r
 *
 * i.e. the two lines are swapped, and the node dies with SIGSEGV
 * (libraft.so.0+0x12175: mov 0x48(%rdi) in legacyPersistSnapshotStart,
 * called from +0x13fb9 in takeSnapshotCb, called from raft_uv's snapshot
 * put completion at +0x26163). When raft closes with an install parked,
 * the parked request itself is leaked as well. Any FSM can hit this; a
 * follower that catches up after a partition (it takes a snapshot of the
 * entries it just received while the leader decides to send it one) hits
 * it most.
 *
 * Being the one place every incoming raft message passes, the gate also
 * notes when each peer was last heard from (tkv_snapgate_heard_ms).
 *
 * The workaround. The gate wraps io->start (to see raft's recv callback)
 * and io->snapshot_put (to see when a take is in flight). While a take is
 * in flight, an incoming RAFT_INSTALL_SNAPSHOT message is held back (the
 * gate owns it) instead of reaching raft; tkv_snapgate_flush(), called once
 * per loop turn, hands held messages to raft once no take is in flight.
 * Delaying a message is always safe in Raft (the network may do it), and
 * raft then never parks an install, so the buggy path is unreachable.
 *
 * A put is a take (not an install) when `trailing > 0` or when *take_flag
 * (optional: the FSM's "snapshot handed over, not finalized" flag) is set.
 * Raft always persists an installed snapshot with trailing 0. */
#ifndef TKV_RAFT_SNAPGATE_H
#define TKV_RAFT_SNAPGATE_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>

#define TKV_SNAPGATE_PEERS 16

struct tkv_snapgate {
    struct raft_io *io;   /* wrapped, not owned */
    const int *take_flag; /* optional, see above */
    int (*start)(struct raft_io *io,
                 unsigned msecs,
                 raft_io_tick_cb tick,
                 raft_io_recv_cb recv);
    int (*snapshot_put)(struct raft_io *io,
                        unsigned trailing,
                        struct raft_io_snapshot_put *req,
                        const struct raft_snapshot *snapshot,
                        raft_io_snapshot_put_cb cb);
    raft_io_recv_cb recv;            /* raft's */
    raft_io_snapshot_put_cb take_cb; /* raft's, for the take in flight */
    struct raft_io_snapshot_put *take_req;
    int taking; /* a take's put is in flight */
    int closed;
    struct raft_message *held; /* owned, with their payloads */
    size_t nheld;
    size_t held_cap;
    unsigned long long held_total; /* figures, for logs and tests */
    unsigned long long held_dups;  /* duplicates dropped while held */
    /* When each peer was last heard from (any raft message), for the
     * strict membership check (membership.c): CLOCK_MONOTONIC ms. */
    struct {
        unsigned long long id;
        unsigned long long at_ms;
    } heard[TKV_SNAPGATE_PEERS];
    /* optional: sees every incoming message first (may edit it) */
    void (*on_recv)(void *arg, struct raft_message *m);
    void *on_recv_arg;
    struct tkv_snapgate *next; /* registry (io -> gate) */
};

/* Wrap io's start and snapshot_put. Call after the io is initialised and
 * before raft_start(). take_flag may be NULL. */
void tkv_snapgate_install(struct tkv_snapgate *g,
                          struct raft_io *io,
                          const int *take_flag);

/* Milliseconds since a raft message from server id came in, or
 * UINT64_MAX if none has (or over TKV_SNAPGATE_PEERS servers were seen). */
uint64_t tkv_snapgate_heard_ms(const struct tkv_snapgate *g, uint64_t id);

/* Deliver held messages to raft if no take is in flight. Returns how many
 * were delivered. */
size_t tkv_snapgate_flush(struct tkv_snapgate *g);

/* Free whatever is held and unregister. Call once raft is closed (its
 * close callback), or when raft never started. */
void tkv_snapgate_close(struct tkv_snapgate *g);

#endif /* TKV_RAFT_SNAPGATE_H */
