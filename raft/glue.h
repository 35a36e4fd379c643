/* Internals of raft/: the replica struct shared by replica.c (lifecycle,
 * state watch, status), batcher.c (writes, leader clock, ticks), reads.c
 * (barrier reads), membership.c and errors.c. Includes raft.h: only raft/
 * sees this header. */
#ifndef TKV_RAFT_GLUE_H
#define TKV_RAFT_GLUE_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#include "../common/buf.h"
#include "fsm.h"
#include "replica.h"
#include "snapgate.h"

struct tkv__waiter {
    tkv_write_cb cb; /* NULL: internal command (tick, member address) */
    void *data;
};

/* One proposed log entry. */
struct tkv__batch {
    struct raft_apply req; /* req.data = this */
    struct tkv_replica *rep;
    uint64_t index; /* raft index, set once proposed */
    uint64_t term;
    size_t ncmds;
    struct tkv__waiter *waiters;    /* owned, ncmds */
    struct tkv_result *results;     /* owned, ncmds, filled at apply */
    int applied;                    /* results filled */
    int delivered;                  /* waiters called */
    struct tkv__batch *prev, *next; /* in-flight list */
};

struct tkv__read_waiter {
    tkv_done_cb cb;
    void *data;
};

struct tkv__barrier {
    struct raft_barrier req; /* req.data = this */
    struct tkv_replica *rep;
    struct tkv__read_waiter *waiters; /* owned */
    size_t n;
    uint64_t term; /* leader's term when issued */
    int served;    /* waiters called */
};

/* One leader confirmation in flight (confirm.c). */
struct tkv__round {
    uint64_t seq;        /* request id of its confirm messages */
    uint64_t term;       /* leader's term when started */
    uint64_t read_index; /* commit index when started */
    uint64_t started_ms;
    struct tkv__read_waiter *waiters; /* owned */
    size_t n;
    size_t acks; /* voters that confirmed, this leader included */
    size_t need; /* majority of voters */
    int confirmed;
};

struct tkv__peer;

/* One membership change in progress (add, remove or transfer). */
struct tkv__change {
    struct tkv_replica *rep;
    int kind; /* TKV__CHANGE_* */
    uint64_t id;
    char raft_address[TKV_ADDR_MAX + 1];
    char client_address[TKV_ADDR_MAX + 1];
    tkv_done_cb cb;
    void *data;
    struct raft_change change;     /* change.data = this */
    struct raft_transfer transfer; /* transfer.data = this */
    int then_redirect;             /* self-removal: transfer, NOT_LEADER */
    int accepted; /* raft took a raft_add/remove/assign: may be applied */
};

enum {
    TKV__CHANGE_ADD = 1,
    TKV__CHANGE_REMOVE,
    TKV__CHANGE_TRANSFER,
};

struct tkv_replica {
    uv_loop_t *loop; /* not owned */
    uint64_t id;
    char *raft_address;                 /* owned */
    char *client_address;               /* owned */
    char *data_dir;                     /* owned */
    struct tkv_replica_peer *bootstrap; /* owned */
    size_t nbootstrap;
    unsigned tick_ms;
    unsigned election_timeout_ms;
    int had_state;

    struct raft_uv_transport transport;
    struct raft_io io;
    /* raft_uv's snapshot_get, wrapped by one that expands manifests */
    int (*snapshot_get)(struct raft_io *io,
                        struct raft_io_snapshot_get *req,
                        raft_io_snapshot_get_cb cb);
    struct raft raft;
    struct tkv_fsm fsm; /* owned */
    struct tkv_snapgate gate; /* over io: raft 0.22.1 install/take race */
    int raft_inited;

    uv_check_t turn;   /* end of loop turn: flush, barrier */
    uv_timer_t ticker; /* leader clock ticks */
    uv_timer_t pacer;  /* 1 ms turns while a stepped snapshot serializes */
    int handles_open;
    int handles_closing; /* handles_open counts what is left to close */
    int closing;
    void (*close_cb)(void *data);
    void *close_data;

    /* batch being filled during this loop turn */
    struct tkv_buf body;         /* owned: encoded commands */
    struct tkv_buf scratch;      /* owned: one command */
    struct tkv_buf entry;        /* owned: header + body + pad */
    struct tkv__waiter *waiters; /* owned */
    size_t nwaiters;
    size_t waiters_cap;
    struct tkv__batch *inflight; /* proposed, awaiting their callbacks */
    struct tkv__batch *inflight_tail;
    size_t ninflight;

    /* leader clock */
    int64_t last_ts;
    uint64_t last_propose_ms; /* uv_now of the last proposal */

    /* strong reads */
    struct tkv__read_waiter *reads; /* owned: queued for the next barrier */
    size_t nreads;
    size_t reads_cap;
    struct tkv__barrier *barrier; /* the one in flight, or NULL */
    /* ... confirmed by the voters instead (confirm.c) */
    struct tkv__round *round;     /* the one in flight, or NULL */
    uint64_t round_seq;
    uint64_t lead_term;           /* term of our leadership ... */
    uint64_t lead_base;           /* ... and the last index when it began */
    uint64_t confirm_off_until;   /* uv_now: barriers only until then */
    struct tkv__peer **peers;     /* owned: connections to the voters */
    size_t npeers;
    struct tkv_buf confirm_frame; /* owned: scratch */

    struct tkv__change *change; /* the one in progress, or NULL */

    /* state watch */
    int prev_state;
    uint64_t prev_leader;
    uint64_t prev_term;
    uint64_t conf_sig;
    int leader_synced; /* member addresses checked this term */
    int sync_pending;

};

/* errors.c: raft code -> TKV_E code. */
int tkv__raft_code(int rv);

/* batcher.c */
void tkv__batcher_init(struct tkv_replica *r);
void tkv__batcher_close(struct tkv_replica *r);
void tkv__batcher_flush(struct tkv_replica *r);
void tkv__batcher_deliver(struct tkv_replica *r);
void tkv__batcher_fail_open(struct tkv_replica *r, int code);
void tkv__batcher_on_apply(struct tkv_fsm *f,
                           uint64_t index,
                           const struct tkv_result *results,
                           size_t n);
void tkv__ticker_cb(uv_timer_t *t);
int tkv__write_internal(struct tkv_replica *r,
                        const struct tkv_cmd *cmd,
                        tkv_write_cb cb,
                        void *data);

/* replica.c: one of the handles closed at shutdown is closed */
void tkv__replica_handle_closed(struct tkv_replica *r);

/* reads.c */
void tkv__reads_issue(struct tkv_replica *r);
void tkv__reads_poll(struct tkv_replica *r);
void tkv__reads_fail(struct tkv_replica *r, int code);
/* Put waiters back at the head of the queue (they arrived first). */
void tkv__reads_requeue(struct tkv_replica *r,
                        const struct tkv__read_waiter *w,
                        size_t n);

/* confirm.c */
void tkv__confirm_on_leader(struct tkv_replica *r); /* leadership began */
/* Start a round with the queued reads: 0, or non-zero when this leader
 * cannot confirm now (the reads stay queued for a barrier). */
int tkv__confirm_start(struct tkv_replica *r);
void tkv__confirm_poll(struct tkv_replica *r);
void tkv__confirm_fail(struct tkv_replica *r, int code);
/* Close every connection; returns how many close callbacks will follow,
 * each calling tkv__replica_handle_closed(). */
unsigned tkv__confirm_close(struct tkv_replica *r);
void tkv__confirm_free(struct tkv_replica *r);

/* replica.c: correct an incoming install's term from its data (raft
 * 0.22.1 can send a newer snapshot's index with an older one's term). */
void tkv__install_fix(void *arg, struct raft_message *m);

/* membership.c */
void tkv__members_leader_sync(struct tkv_replica *r);

/* raft 0.22.1 can keep a configuration marked uncommitted after its entry
 * was committed and applied (seen under jepsen's member nemesis, after
 * snapshot installs and restarts: "uncommitted at 9487" with 9716 applied),
 * and then refuses every membership change for good with RAFT_CANTCHANGE.
 * An applied entry is committed, so on a leader with no promotion running
 * a marker at or below last_applied is stale: make that configuration the
 * committed one, as raft does when it applies the entry itself. Returns the
 * index it cleared, 0 when the marker was not stale (or nothing could be
 * done). */
raft_index tkv__config_unstick(struct raft *raft);

#endif /* TKV_RAFT_GLUE_H */
