/* Write batching, the leader clock and tick entries.
 *
 * Flow of a write on the leader:
 *   1. tkv_replica_write(): the command is encoded (tkv_cmd_encode) into the
 *      open batch of this loop turn, and its callback is remembered;
 *   2. end of the loop turn (uv_check in replica.c) or the batch reaching
 *      TKV_BATCH_MAX_BYTES: tkv__batcher_flush() stamps the entry with the
 *      leader clock, encodes it (header + body + zero padding to 8) and
 *      proposes it with ONE raft_apply of ONE buffer (raft reports only the
 *      first result of several);
 *   3. the entry is applied (fsm.c): tkv__batcher_on_apply() copies the
 *      results of our own entry (matched by index and term) into the batch;
 *   4. at the end of that loop turn tkv__batcher_deliver() calls each
 *      command's callback with its result (raft 0.22 fires its own apply
 *      callback only on a later event, often the next heartbeat tick, so
 *      waiting for it would add up to heartbeat_ms to every write); raft's
 *      callback then only releases the batch.
 * Failures: raft_apply refusing the entry -> nothing was proposed:
 * NOT_LEADER or UNAVAILABLE; the callback firing with an error after
 * proposing (leadership lost, shutdown) -> UNKNOWN.
 *
 * Leader clock: every entry carries ts = max(wall clock, last ts, sm.now),
 * so time never goes backwards, also across leader changes (sm.now is
 * replicated). The ticker proposes a tick entry when the leader has
 * proposed nothing for tick_ms, so TTLs expire on an idle cluster. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/alloc.h"
#include "glue.h"
#include "../common/log.h"

static int64_t tkv__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tkv__batcher_init(struct tkv_replica *r)
{
    tkv_buf_init(&r->body);
    tkv_buf_init(&r->scratch);
    tkv_buf_init(&r->entry);
    r->waiters = NULL;
    r->nwaiters = 0;
    r->waiters_cap = 0;
    r->inflight = NULL;
    r->inflight_tail = NULL;
    r->ninflight = 0;
}

/* Take the open batch's waiters out and call them with code. */
void tkv__batcher_fail_open(struct tkv_replica *r, int code)
{
    struct tkv__waiter *w = r->waiters;
    size_t n = r->nwaiters;
    size_t i;

    r->waiters = NULL;
    r->nwaiters = 0;
    r->waiters_cap = 0;
    tkv_buf_reset(&r->body);
    for (i = 0; i < n; i++) {
        if (w[i].cb != NULL) {
            w[i].cb(w[i].data, code, NULL);
        }
    }
    tkv_free(w);
}

static void tkv__batch_fail(struct tkv__batch *b, int code)
{
    size_t i;
    for (i = 0; i < b->ncmds; i++) {
        if (b->waiters[i].cb != NULL) {
            b->waiters[i].cb(b->waiters[i].data, code, NULL);
        }
    }
}

static void tkv__batch_free(struct tkv__batch *b)
{
    tkv_free(b->waiters);
    tkv_free(b->results);
    tkv_free(b);
}

static void tkv__inflight_unlink(struct tkv_replica *r, struct tkv__batch *b)
{
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        r->inflight = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    } else {
        r->inflight_tail = b->prev;
    }
    b->prev = b->next = NULL;
    r->ninflight--;
}

static void tkv__apply_cb(struct raft_apply *req, int status, void *result)
{
    struct tkv__batch *b = req->data;
    struct tkv_replica *r = b->rep;
    size_t i;

    (void)result;
    tkv__inflight_unlink(r, b);
    if (b->delivered) {
        /* answered at apply time already */
    } else if (status != 0) {
        tkv_log_debug("entry %llu failed: %s", (unsigned long long)b->index,
                      raft_strerror(status));
        /* Proposed, then leadership lost or shutdown: outcome unknown. */
        tkv__batch_fail(b, TKV_EUNKNOWN);
    } else if (!b->applied) {
        /* Applied, but not as our entry (corrupt): should not happen. */
        tkv_log_error("entry %llu applied without its results",
                      (unsigned long long)b->index);
        tkv__batch_fail(b, TKV_EINTERNAL);
    } else {
        for (i = 0; i < b->ncmds; i++) {
            if (b->waiters[i].cb != NULL) {
                b->waiters[i].cb(b->waiters[i].data, 0, &b->results[i]);
            }
        }
    }
    tkv__batch_free(b);
}

void tkv__batcher_deliver(struct tkv_replica *r)
{
    struct tkv__batch *b;
    for (b = r->inflight; b != NULL; b = b->next) {
        size_t i;
        if (!b->applied || b->delivered) {
            continue;
        }
        b->delivered = 1;
        for (i = 0; i < b->ncmds; i++) {
            if (b->waiters[i].cb != NULL) {
                b->waiters[i].cb(b->waiters[i].data, 0, &b->results[i]);
            }
        }
    }
}

void tkv__batcher_on_apply(struct tkv_fsm *f,
                           uint64_t index,
                           const struct tkv_result *results,
                           size_t n)
{
    struct tkv_replica *r = f->data;
    struct tkv__batch *b;

    if (r == NULL || r->inflight == NULL ||
        raft_state(&r->raft) != RAFT_LEADER) {
        return;
    }
    for (b = r->inflight; b != NULL; b = b->next) {
        if (b->index == index) {
            if (b->term == raft_current_term(&r->raft) && n == b->ncmds) {
                memcpy(b->results, results, n * sizeof *results);
                b->applied = 1;
            }
            return;
        }
    }
}

void tkv__batcher_flush(struct tkv_replica *r)
{
    struct tkv__batch *b;
    struct raft_buffer buf;
    int64_t ts;
    int rv;

    if (r->nwaiters == 0) {
        return;
    }
    ts = tkv__wall_ms();
    if (ts < r->last_ts) {
        ts = r->last_ts;
    }
    if (ts < r->fsm.sm.now) {
        ts = r->fsm.sm.now;
    }
    r->last_ts = ts;
    r->last_propose_ms = uv_now(r->loop);

    tkv_buf_reset(&r->entry);
    rv =
        tkv_entry_encode(ts, r->nwaiters, r->body.data, r->body.len, &r->entry);
    b = tkv_calloc(1, sizeof *b);
    if (rv != 0 || b == NULL) {
        tkv_free(b);
        tkv__batcher_fail_open(r, TKV_ENOMEM);
        return;
    }
    assert(r->entry.len % 8 == 0);
    b->rep = r;
    b->ncmds = r->nwaiters;
    b->waiters = r->waiters;
    b->results = tkv_calloc(b->ncmds, sizeof *b->results);
    r->waiters = NULL;
    r->nwaiters = 0;
    r->waiters_cap = 0;
    tkv_buf_reset(&r->body);
    buf.len = r->entry.len;
    buf.base = raft_malloc(buf.len);
    if (b->results == NULL || buf.base == NULL) {
        raft_free(buf.base);
        tkv__batch_fail(b, TKV_ENOMEM);
        tkv__batch_free(b);
        return;
    }
    memcpy(buf.base, r->entry.data, buf.len);
    b->req.data = b;
    rv = raft_apply(&r->raft, &b->req, &buf, 1, tkv__apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        tkv__batch_fail(
            b, rv == RAFT_NOTLEADER ? TKV_ENOT_LEADER : TKV_EUNAVAILABLE);
        tkv__batch_free(b);
        return;
    }
    b->index = b->req.index;
    b->term = raft_current_term(&r->raft);
    b->prev = r->inflight_tail;
    if (r->inflight_tail != NULL) {
        r->inflight_tail->next = b;
    } else {
        r->inflight = b;
    }
    r->inflight_tail = b;
    r->ninflight++;
}

/* Encode one command into the open batch. */
static int tkv__enqueue(struct tkv_replica *r,
                        const struct tkv_cmd *cmd,
                        tkv_write_cb cb,
                        void *data,
                        struct tkv_err *err)
{
    int rv;

    tkv_buf_reset(&r->scratch);
    rv = tkv_cmd_encode(cmd, &r->scratch);
    if (rv != 0) {
        return tkv_err_set(err, rv, "encode command: %s", tkv_strerror(rv));
    }
    if (r->nwaiters > 0 &&
        (r->body.len + r->scratch.len > TKV_BATCH_MAX_BYTES ||
         r->nwaiters >= TKV_ENTRY_MAX_CMDS)) {
        tkv__batcher_flush(r); /* a larger command goes alone */
    }
    if (r->nwaiters == r->waiters_cap) {
        size_t cap = r->waiters_cap == 0 ? 64 : r->waiters_cap * 2;
        struct tkv__waiter *w = tkv_realloc(r->waiters, cap * sizeof *w);
        if (w == NULL) {
            return tkv_err_set(err, TKV_ENOMEM, "out of memory");
        }
        r->waiters = w;
        r->waiters_cap = cap;
    }
    if (tkv_buf_append(&r->body, r->scratch.data, r->scratch.len) != 0) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    r->waiters[r->nwaiters].cb = cb;
    r->waiters[r->nwaiters].data = data;
    r->nwaiters++;
    if (r->body.len >= TKV_BATCH_MAX_BYTES) {
        tkv__batcher_flush(r);
    }
    return 0;
}

int tkv__write_internal(struct tkv_replica *r,
                        const struct tkv_cmd *cmd,
                        tkv_write_cb cb,
                        void *data)
{
    return tkv__enqueue(r, cmd, cb, data, NULL);
}

int tkv_replica_write(struct tkv_replica *r,
                      const struct tkv_cmd *cmd,
                      tkv_write_cb cb,
                      void *data,
                      struct tkv_err *err)
{
    if (r->closing) {
        return tkv_err_set(err, TKV_ESHUTDOWN, "node is shutting down");
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        return tkv_err_set(err, TKV_ENOT_LEADER, "not the leader");
    }
    return tkv__enqueue(r, cmd, cb, data, err);
}

void tkv__ticker_cb(uv_timer_t *t)
{
    struct tkv_replica *r = t->data;
    struct tkv_cmd cmd;

    if (r->closing || raft_state(&r->raft) != RAFT_LEADER) {
        return;
    }
    if (uv_now(r->loop) - r->last_propose_ms < r->tick_ms || r->nwaiters > 0) {
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = TKV_CMD_TICK;
    if (tkv__write_internal(r, &cmd, NULL, NULL) == 0) {
        tkv__batcher_flush(r);
    }
}

void tkv__batcher_close(struct tkv_replica *r)
{
    struct tkv__batch *b;
    tkv__batcher_fail_open(r, TKV_ESHUTDOWN);
    /* raft_close() has failed every proposal; anything left is freed. */
    while ((b = r->inflight) != NULL) {
        tkv__inflight_unlink(r, b);
        if (!b->delivered) {
            tkv__batch_fail(b, TKV_EUNKNOWN);
        }
        tkv__batch_free(b);
    }
    tkv_buf_close(&r->body);
    tkv_buf_close(&r->scratch);
    tkv_buf_close(&r->entry);
}
