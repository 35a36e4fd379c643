/* The raft FSM around the state machine (statemachine/sm.h).
 *
 * Owns the tkv_sm of this replica and the snapshot machinery. Internal to
 * raft/ (it includes raft.h); tests/raft drives it under raft_fixture.
 *
 * Apply: raft hands a committed RAFT_COMMAND entry; its index is
 * raft_last_applied() + 1 (raft bumps last_applied right after apply, and
 * barrier / configuration entries never reach the FSM). tkv_sm_apply()
 * produces one result per command; the on_apply hook gets them at once
 * (they are only valid until the next apply), so the batcher can copy the
 * results of its own entries. The raft `result` is always NULL: nothing is
 * allocated per entry, so followers, which have no request, leak nothing.
 *
 * Snapshots. canonical/raft 0.22 calls fsm->snapshot and then
 * fsm->snapshot_async back to back on the loop thread (its legacy layer has
 * no thread pool), so "async" alone would still stop the loop for the whole
 * serialization. Instead, Redis-style, with a replayed tail:
 *   1. raft calls snapshot() at index N1 (= last applied): we fork() a child
 *      that streams the state (copy-on-write view at N1) into a memfd and
 *      exits; we answer RAFT_BUSY, so raft simply asks again later;
 *   2. while the child runs, every applied entry (index, bytes) after N1 is
 *      copied into a tail buffer;
 *   3. raft asks again at N2 >= N1: once the child has exited, snapshot()
 *      hands raft [header][memfd mapped read-only][tail]: the state at N1
 *      plus the entries N1+1..N2, i.e. exactly the state at N2;
 *   4. snapshot_finalize() unmaps and frees.
 * restore() restores the base with tkv_sm_restore() and re-applies the tail
 * with the same indexes, so every replica reaches the same bytes. The loop
 * pause is the fork() plus the page-table copy, not the serialization.
 * TKV_SNAP_INLINE serializes synchronously instead (deterministic: used by
 * the simulation), and TKV_SNAP_DEFERRED serializes synchronously but holds
 * the result back for a number of snapshot() calls, so the simulation also
 * exercises the tail. */
#ifndef TKV_RAFT_FSM_H
#define TKV_RAFT_FSM_H

#include <raft.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/buf.h"
#include "../statemachine/sm.h"

enum tkv_snap_mode {
    TKV_SNAP_FORK = 0,     /* fork + memfd + replayed tail (production) */
    TKV_SNAP_INLINE = 1,   /* serialize on the spot */
    TKV_SNAP_DEFERRED = 2, /* serialize on the spot, hand over later */
};

struct tkv_fsm;

/* Called after each applied entry with its results (valid during the call
 * only); n is 0 for a corrupt entry. */
typedef void (*tkv_fsm_apply_cb)(struct tkv_fsm *f,
                                 uint64_t index,
                                 const struct tkv_result *results,
                                 size_t n);

struct tkv_fsm {
    struct raft_fsm raft_fsm; /* handed to raft_init(); data = this */
    struct raft *raft;        /* set before raft_start(); not owned */
    struct tkv_sm sm;         /* owned */
    tkv_fsm_apply_cb on_apply;
    void *data;
    int mode;                /* enum tkv_snap_mode */
    unsigned deferred_polls; /* TKV_SNAP_DEFERRED: calls before ready */

    /* snapshot being produced */
    int active;
    uint64_t base_index; /* state of the base (N1) */
    pid_t pid;           /* FORK: child, 0 when reaped */
    int fd;              /* FORK: memfd, -1 when none */
    struct tkv_buf base; /* INLINE/DEFERRED: serialized state; owned */
    unsigned polls;
    struct tkv_buf tail; /* entries applied since base_index; owned */
    size_t tail_count;
    uint64_t started_us;
    unsigned threshold_base; /* 0: raft's threshold is left alone */
    uint64_t jitter;         /* xorshift state for the next threshold */

    /* snapshot handed to raft, released by finalize */
    struct raft_buffer out[3];
    uint8_t header[32];
    void *map; /* FORK: mmap of the memfd */
    size_t map_len;
    int map_fd;
    struct tkv_buf out_base; /* INLINE/DEFERRED: base moved here; owned */
    struct tkv_buf out_tail; /* owned */
    int out_busy;

    /* figures for status and logs */
    uint64_t last_snapshot_index; /* taken or restored */
    int restored;                 /* set by restore(); cleared by owner */
    uint64_t last_pause_us;       /* loop time spent starting a snapshot */
    uint64_t snapshots_taken;
};

/* Set up the FSM with an empty state machine. 0 or a TKV_E code. */
int tkv_fsm_init(struct tkv_fsm *f, int mode, struct tkv_err *err);
/* Take snapshots every base x [0.75, 1.25] entries, drawn again after each
 * one (seed: e.g. the node id, so nodes differ); sets raft's threshold.
 * f->raft must be set. */
void tkv_fsm_set_threshold(struct tkv_fsm *f, unsigned base, uint64_t seed);
/* Kill a running snapshot child and free everything. */
void tkv_fsm_close(struct tkv_fsm *f);

/* The snapshot wire format, exposed for tests: decode and restore into sm. */
int tkv_fsm_restore_bytes(struct tkv_sm *sm,
                          const uint8_t *buf,
                          size_t len,
                          struct tkv_err *err);

#endif /* TKV_RAFT_FSM_H */
