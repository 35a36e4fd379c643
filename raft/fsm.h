/* The raft FSM around the state machine (statemachine/sm.h).
 *
 * How a snapshot is made, by mode (the node's --snapshot-mode):
 *   STEPPED (default): no fork. The loop serializes the state as it was at
 *     N1 with tkv_sm_snap_step (statemachine/sm.h), a few keys per loop
 *     turn on at most a quarter of its time, and a writer thread puts it
 *     into <dir>/tkv-state-<N1> in the paced steps described below. The
 *     tail, the manifest and restore are as for FORK with a data dir.
 *   FORK: a child serializes a copy-on-write view, as described below. On
 *     this machine's virtual CPUs each page the parent then writes cost a
 *     ~40 us fault; with 1M keys under writes that doubled write p50 for
 *     the first seconds of every snapshot (write p99 during a snapshot
 *     1.8-3.0x the baseline against 1.5x stepped, bench/targets.sh).
 *   INLINE / DEFERRED: synchronous, for the simulation (end of comment).
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
 * With a data dir (tkv_fsm_set_dir, the replica's), the fork child writes
 * the state to a file of its own, <dir>/tkv-state-<N1>, instead of the
 * memfd: in 256 KiB steps, each waited for on disk (sync_file_range) and
 * followed by a 1 ms pause, then fsynced and renamed in place. raft then gets only a
 * manifest, [header naming the file, its length and hash][tail], and
 * writes that. Writing 140 MB in one go and fsyncing it (what raft_uv does
 * with the buffers it is handed) queues every log fdatasync of the node,
 * and of any node sharing the disk, behind the whole file: write p99
 * during that phase was 105-138 ms against 10 ms outside. restore() reads
 * the file a manifest names (mmap); tkv_fsm_expand() turns a manifest back
 * into the whole snapshot for a snapshot install, which carries the bytes.
 * snapshot_finalize() deletes the files no snapshot of raft's names any
 * more: raft keeps two, so the last two handed over stay.
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
    TKV_SNAP_STEPPED = 3,  /* no fork: the loop serializes in steps, a
                            * thread writes the state file (production) */
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

    struct tkv__stepper *stepper; /* STEPPED: owned while running */

    /* FORK with a data dir: the state goes to a file (see above) */
    char *dir;          /* owned; NULL: the state goes into raft's file */
    uint64_t *shared;   /* page shared with the child: length, hash */
    uint64_t keep[2];   /* files of the last two snapshots raft has (0 none) */

    /* snapshot handed to raft, released by finalize */
    struct raft_buffer out[3];
    uint8_t header[48];
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
/* Fork mode: write the state of each snapshot to a file in dir (see
 * above). 0 or a TKV_E code. */
int tkv_fsm_set_dir(struct tkv_fsm *f, const char *dir, struct tkv_err *err);
/* Delete the state files in the dir that no snapshot needs: neither the
 * last two handed to raft (or the one restored), nor the one being
 * written. */
void tkv_fsm_gc(struct tkv_fsm *f);
/* A snapshot as raft stored it (whole, or a manifest whose state is in a
 * file of dir) -> the bytes a snapshot install carries, in a raft_malloc'd
 * buffer: the whole snapshot, plus the raft index and term it was taken at
 * (see tkv_fsm_install_id). 0, or TKV_ECORRUPT / TKV_EIO / TKV_ENOMEM with
 * err set. */
int tkv_fsm_expand(const char *dir,
                   const struct raft_buffer *in,
                   uint64_t index,
                   uint64_t term,
                   struct raft_buffer *out,
                   struct tkv_err *err);
/* The raft index and term an install's data was taken at (1), or 0 when
 * the data does not say (not an install, or its lengths do not add up). raft 0.22.1 can send a snapshot with the index of
 * the newest one on disk but the term of an older one; the receiver
 * corrects the message with these before raft sees it (replica.c). */
int tkv_fsm_install_id(const struct raft_buffer *data,
                       uint64_t *index,
                       uint64_t *term);
/* Kill a running snapshot child and free everything. */
void tkv_fsm_close(struct tkv_fsm *f);

/* STEPPED: serialize what the loop's share of time allows (the owner calls
 * it on every loop turn; snapshot() calls it too), and whether there is
 * serializing left (the owner then keeps the loop turning, e.g. with a
 * 1 ms timer). */
void tkv_fsm_step(struct tkv_fsm *f);
int tkv_fsm_stepping(const struct tkv_fsm *f);

/* The snapshot wire format, exposed for tests: decode and restore into sm. */
int tkv_fsm_restore_bytes(struct tkv_sm *sm,
                          const uint8_t *buf,
                          size_t len,
                          struct tkv_err *err);

#endif /* TKV_RAFT_FSM_H */
