/* Strong reads. Reads queued in a loop turn are served together, after
 * either of two proofs that the leader's state is current:
 *
 *   confirm   (confirm.c, the usual one) a majority of voters answer that
 *             they are in no later term; no log write, one round trip.
 *   barrier   (here) a raft barrier entry is committed and applied: a log
 *             write on a majority. Used when confirm cannot be: before the
 *             new leader has committed in its term, when a majority of
 *             voters have no known client address, or for a while after a
 *             round went unanswered.
 *
 *   tkv_replica_read()   leader only; the waiter joins r->reads
 *   tkv__reads_issue()   end of loop turn (replica.c): when no round is in
 *                        flight, the queued reads start one; if confirm is
 *                        not possible and no barrier is in flight, they
 *                        move into a new barrier and raft_barrier() is
 *                        called
 *   barrier callback     status 0: the barrier entry is applied, so every
 *                        write committed before the reads arrived is in the
 *                        state machine and this node was still leader:
 *                        callbacks get 0 and serve from the local state.
 *                        Otherwise they get NOT_LEADER / SHUTDOWN.
 * Reads arriving while a barrier is in flight wait for the next one, which
 * is issued at the end of the loop turn in which the first completes.
 * raft 0.22 fires the barrier callback late (on a later event, often the
 * next heartbeat tick), so tkv__reads_poll() serves a barrier's reads as
 * soon as raft has applied its index while this node is still leader in
 * the barrier's term (so the entry at that index is our barrier); raft's
 * callback then only frees it. */
#include <string.h>

#include "../common/alloc.h"
#include "glue.h"

static void tkv__waiters_fail(const struct tkv__read_waiter *w,
                              size_t n,
                              int code,
                              const char *msg)
{
    size_t i;
    for (i = 0; i < n; i++) {
        w[i].cb(w[i].data, code, msg);
    }
}

void tkv__reads_fail(struct tkv_replica *r, int code)
{
    struct tkv__read_waiter *w;
    size_t n;

    tkv__confirm_fail(r, code);
    w = r->reads;
    n = r->nreads;
    r->reads = NULL;
    r->nreads = 0;
    r->reads_cap = 0;
    tkv__waiters_fail(w, n, code, tkv_strerror(code));
    tkv_free(w);
}

/* Room for n more queued reads; 0 or TKV_ENOMEM. */
static int tkv__reads_reserve(struct tkv_replica *r, size_t n)
{
    size_t cap = r->reads_cap == 0 ? 64 : r->reads_cap;
    struct tkv__read_waiter *w;
    while (cap < r->nreads + n) {
        cap *= 2;
    }
    if (cap == r->reads_cap) {
        return 0;
    }
    w = tkv_realloc(r->reads, cap * sizeof *w);
    if (w == NULL) {
        return TKV_ENOMEM;
    }
    r->reads = w;
    r->reads_cap = cap;
    return 0;
}

void tkv__reads_requeue(struct tkv_replica *r,
                        const struct tkv__read_waiter *w,
                        size_t n)
{
    if (tkv__reads_reserve(r, n) != 0) {
        tkv__waiters_fail(w, n, TKV_ENOMEM, "out of memory");
        return;
    }
    memmove(r->reads + n, r->reads, r->nreads * sizeof *w);
    memcpy(r->reads, w, n * sizeof *w);
    r->nreads += n;
}

int tkv_replica_read(struct tkv_replica *r,
                     tkv_done_cb cb,
                     void *data,
                     struct tkv_err *err)
{
    if (r->closing) {
        return tkv_err_set(err, TKV_ESHUTDOWN, "node is shutting down");
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        return tkv_err_set(err, TKV_ENOT_LEADER, "not the leader");
    }
    if (tkv__reads_reserve(r, 1) != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    r->reads[r->nreads].cb = cb;
    r->reads[r->nreads].data = data;
    r->nreads++;
    return 0;
}

void tkv__reads_poll(struct tkv_replica *r)
{
    struct tkv__barrier *b = r->barrier;
    tkv__confirm_poll(r);
    if (b == NULL || raft_state(&r->raft) != RAFT_LEADER ||
        raft_current_term(&r->raft) != b->term ||
        raft_last_applied(&r->raft) < b->req.index) {
        return;
    }
    b->served = 1;
    r->barrier = NULL;
    tkv__waiters_fail(b->waiters, b->n, 0, "");
}

static void tkv__barrier_cb(struct raft_barrier *req, int status)
{
    struct tkv__barrier *b = req->data;
    struct tkv_replica *r = b->rep;
    int code = 0;

    if (b->served) {
        tkv_free(b->waiters);
        tkv_free(b);
        return;
    }
    r->barrier = NULL;
    if (status != 0) {
        code = r->closing ? TKV_ESHUTDOWN : TKV_ENOT_LEADER;
    }
    tkv__waiters_fail(b->waiters, b->n, code,
                      code == 0 ? "" : raft_strerror(status));
    tkv_free(b->waiters);
    tkv_free(b);
}

void tkv__reads_issue(struct tkv_replica *r)
{
    struct tkv__barrier *b;
    int rv;

    if (r->nreads == 0 || r->round != NULL || tkv__confirm_start(r) == 0 ||
        r->barrier != NULL) {
        return;
    }
    b = tkv_calloc(1, sizeof *b);
    if (b == NULL) {
        tkv__reads_fail(r, TKV_ENOMEM);
        return;
    }
    b->rep = r;
    b->waiters = r->reads;
    b->n = r->nreads;
    r->reads = NULL;
    r->nreads = 0;
    r->reads_cap = 0;
    b->req.data = b;
    b->term = raft_current_term(&r->raft);
    r->barrier = b;
    rv = raft_barrier(&r->raft, &b->req, tkv__barrier_cb);
    if (rv != 0) {
        r->barrier = NULL;
        tkv__waiters_fail(
            b->waiters, b->n,
            rv == RAFT_NOTLEADER ? TKV_ENOT_LEADER : tkv__raft_code(rv),
            raft_errmsg(&r->raft));
        tkv_free(b->waiters);
        tkv_free(b);
    }
}
