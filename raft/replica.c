/* The replica's lifecycle, the per-turn work and what node/ asks about it.
 *
 * start:  copy the config -> FSM -> raft_uv_tcp transport (version 1) ->
 *         raft_uv (the data dir) -> raft_init -> settings -> bootstrap when
 *         asked and the dir is pristine -> raft_start (loads the snapshot
 *         and log) -> the turn (uv_check) and ticker (uv_timer) handles.
 *         A failure unwinds in reverse order (err_after_<step>); once
 *         raft_init succeeded only raft_close() can release raft, so a
 *         failing raft_start closes asynchronously and the caller exits.
 * turn:   after every poll phase: watch role/leader/term/configuration
 *         changes (log them; on leadership loss fail what was queued and
 *         never proposed; on election schedule the member-address sync),
 *         then flush the write batch and issue the read barrier.
 * close:  fail what is queued -> raft_close (fails what was proposed) ->
 *         raft_uv / transport release -> close our handles -> free -> cb. */
#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/alloc.h"
#include "glue.h"
#include "logfill.h"
#include "../common/log.h"

void tkv_replica_config_default(struct tkv_replica_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->tick_ms = 500;
    cfg->election_timeout_ms = 400;
    cfg->heartbeat_ms = 100;
    /* 16k entries: at 1024 a loaded node snapshotted ~every second and
     * spent half its time in them (bench/results/2026-11-27-1319.md) */
    cfg->snapshot_threshold = 16384;
    cfg->snapshot_trailing = 1024;
    cfg->snapshot_mode = TKV_SNAP_STEPPED;
    cfg->log_zero_fill = 1;
}

static const char *tkv__state_name(int state)
{
    switch (state) {
        case RAFT_LEADER:
            return "leader";
        case RAFT_FOLLOWER:
            return "follower";
        case RAFT_CANDIDATE:
            return "candidate";
        default:
            return "unavailable";
    }
}

/* ---- snapshot installs carry the state ----------------------------------
 * raft_uv's snapshot_get loads the latest stored snapshot for an install
 * (and nothing else: raft_start uses io->load); when it is
 * a manifest (the state in a file of ours, fsm.h), the file's bytes are put
 * in before raft sends it, since the receiver has no such file. This reads
 * the file on the loop (about 0.1 s at a million keys): installs are rare,
 * a new or wiped node or one far behind. */
struct tkv__snap_get {
    struct raft_io_snapshot_get req; /* ours, to raft_uv */
    struct raft_io_snapshot_get *outer;
    raft_io_snapshot_get_cb cb;
    struct tkv_replica *r;
};

static void tkv__snapshot_get_cb(struct raft_io_snapshot_get *req,
                                 struct raft_snapshot *snapshot,
                                 int status)
{
    struct tkv__snap_get *g = req->data;
    struct raft_io_snapshot_get *outer = g->outer;
    raft_io_snapshot_get_cb cb = g->cb;
    struct tkv_replica *r = g->r;

    tkv_free(g);
    if (status == 0 && snapshot->n_bufs == 1) {
        struct raft_buffer whole;
        struct tkv_err err;

        tkv_err_clear(&err);
        if (tkv_fsm_expand(r->fsm.dir, &snapshot->bufs[0], snapshot->index,
                           snapshot->term, &whole, &err) == 0) {
            raft_free(snapshot->bufs[0].base);
            snapshot->bufs[0] = whole;
        } else {
            /* raft 0.22.1's failure path here frees fields it never set,
             * so the snapshot goes as it is; the receiver refuses it. */
            tkv_log_error("snapshot at %llu for an install: %s",
                          (unsigned long long)snapshot->index, err.msg);
        }
    }
    cb(outer, snapshot, status);
}

/* The receiving side. raft 0.22.1 builds an install for the snapshot it
 * knows of, and when the disk already has a newer one (a take whose put is
 * finishing) sends that one with its index but the older one's term. The
 * receiver would then hold a wrong term at an index it counts as committed,
 * and stop at the next AppendEntries ("conflicting terms ... -> shutdown",
 * then an abort in raft's recvCb; one node of ours died so under jepsen).
 * The data names its own index and term (tkv_fsm_expand): the message is
 * corrected from them before raft sees it. */
void tkv__install_fix(void *arg, struct raft_message *m)
{
    struct raft_install_snapshot *is = &m->install_snapshot;
    uint64_t index, term;

    (void)arg;
    if (m->type != RAFT_INSTALL_SNAPSHOT ||
        !tkv_fsm_install_id(&is->data, &index, &term) ||
        (index == is->last_index && term == is->last_term)) {
        return;
    }
    if (index != is->last_index) {
        tkv_log_warn("install snapshot from %llu: message says %llu^%llu, "
                     "the data %llu^%llu; left as it is",
                     (unsigned long long)m->server_id,
                     (unsigned long long)is->last_index,
                     (unsigned long long)is->last_term,
                     (unsigned long long)index, (unsigned long long)term);
        return;
    }
    tkv_log_warn("install snapshot from %llu at %llu: term %llu in the "
                 "message, %llu in the data; corrected (raft 0.22.1 sends "
                 "an older snapshot's term)",
                 (unsigned long long)m->server_id,
                 (unsigned long long)index,
                 (unsigned long long)is->last_term, (unsigned long long)term);
    is->last_term = term;
}

static int tkv__snapshot_get(struct raft_io *io,
                             struct raft_io_snapshot_get *req,
                             raft_io_snapshot_get_cb cb)
{
    struct tkv_replica *r =
        (struct tkv_replica *)((char *)io - offsetof(struct tkv_replica, io));
    struct tkv__snap_get *g = tkv_calloc(1, sizeof *g);
    int rv;

    if (g == NULL) {
        return RAFT_NOMEM;
    }
    g->outer = req;
    g->cb = cb;
    g->r = r;
    g->req.data = g;
    rv = r->snapshot_get(io, &g->req, tkv__snapshot_get_cb);
    if (rv != 0) {
        tkv_free(g);
    }
    return rv;
}

static int tkv__has_raft_state(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/metadata1", dir);
    if (stat(path, &st) == 0) {
        return 1;
    }
    snprintf(path, sizeof path, "%s/metadata2", dir);
    return stat(path, &st) == 0;
}

/* ---- per-turn work --------------------------------------------------------
 */

static void tkv__sync_read_cb(void *data, int code, const char *msg)
{
    struct tkv_replica *r = data;
    (void)msg;
    r->sync_pending = 0;
    if (code == 0 && !r->closing && raft_state(&r->raft) == RAFT_LEADER) {
        r->leader_synced = 1;
        tkv__members_leader_sync(r);
    }
}

static uint64_t tkv__conf_signature(struct tkv_replica *r)
{
    uint64_t h = 1469598103934665603ull;
    unsigned i;
    for (i = 0; i < r->raft.configuration.n; i++) {
        h = (h ^ r->raft.configuration.servers[i].id) * 1099511628211ull;
        h = (h ^ (uint64_t)r->raft.configuration.servers[i].role) *
            1099511628211ull;
    }
    return h ^ r->raft.configuration.n;
}

static void tkv__log_conf(struct tkv_replica *r)
{
    char line[512];
    size_t off = 0;
    unsigned i;
    line[0] = '\0';
    for (i = 0; i < r->raft.configuration.n && off < sizeof line - 40; i++) {
        const struct raft_server *s = &r->raft.configuration.servers[i];
        off += (size_t)snprintf(line + off, sizeof line - off, " %llu=%s",
                                (unsigned long long)s->id,
                                s->role == RAFT_VOTER     ? "voter"
                                : s->role == RAFT_STANDBY ? "standby"
                                                          : "spare");
    }
    tkv_log_info("configuration:%s", line);
}

static void tkv__watch(struct tkv_replica *r)
{
    int state = raft_state(&r->raft);
    uint64_t term = raft_current_term(&r->raft);
    raft_id lid = 0;
    const char *laddr = NULL;
    uint64_t sig;

    raft_leader(&r->raft, &lid, &laddr);
    if (state != r->prev_state) {
        if (state == RAFT_LEADER) {
            tkv_log_info("became leader (term %llu)", (unsigned long long)term);
        } else {
            tkv_log_info("role %s -> %s (term %llu)",
                         tkv__state_name(r->prev_state), tkv__state_name(state),
                         (unsigned long long)term);
        }
    }
    if (lid != r->prev_leader && state != RAFT_LEADER) {
        if (lid != 0) {
            tkv_log_info("leader is %llu (%s), term %llu",
                         (unsigned long long)lid, laddr ? laddr : "?",
                         (unsigned long long)term);
        } else {
            tkv_log_info("no leader (term %llu)", (unsigned long long)term);
        }
    }
    if (r->prev_state == RAFT_LEADER && state != RAFT_LEADER) {
        tkv__batcher_fail_open(r, TKV_ENOT_LEADER);
        tkv__reads_fail(r, TKV_ENOT_LEADER);
    }
    if (state == RAFT_LEADER &&
        (r->prev_state != RAFT_LEADER || term != r->prev_term)) {
        r->leader_synced = 0;
        tkv__confirm_on_leader(r);
        /* A new leader starts its clock from the replicated time. */
        if (r->last_ts < r->fsm.sm.now) {
            r->last_ts = r->fsm.sm.now;
        }
        if (!r->sync_pending &&
            tkv_replica_read(r, tkv__sync_read_cb, r, NULL) == 0) {
            r->sync_pending = 1;
        }
    }
    sig = tkv__conf_signature(r);
    if (sig != r->conf_sig) {
        r->conf_sig = sig;
        tkv__log_conf(r);
    }
    r->prev_state = state;
    r->prev_leader = lid;
    r->prev_term = term;
}

static void tkv__pacer_cb(uv_timer_t *h)
{
    (void)h; /* its work is in the turn that follows */
}

static void tkv__turn_cb(uv_check_t *h)
{
    struct tkv_replica *r = h->data;
    if (r->closing) {
        return;
    }
    tkv__watch(r);
    /* Install snapshots held back while our own snapshot was written. */
    tkv_snapgate_flush(&r->gate);
    /* Answer what raft has applied before its callbacks say so: canonical
     * raft 0.22 queues request callbacks and fires them on a later event
     * (often the next heartbeat tick), which would add up to heartbeat_ms
     * to every write and strong read. */
    tkv__batcher_deliver(r);
    tkv__reads_poll(r);
    if (r->fsm.restored) {
        r->fsm.restored = 0;
        r->fsm.last_snapshot_index = raft_last_applied(&r->raft);
    }
    if (raft_state(&r->raft) == RAFT_LEADER) {
        tkv__batcher_flush(r);
        tkv__reads_issue(r);
    }
    /* A stepped snapshot serializes a little on every turn; the pacer
     * makes a turn at least every ms while it has work left. */
    tkv_fsm_step(&r->fsm);
    if (tkv_fsm_stepping(&r->fsm)) {
        if (!uv_is_active((uv_handle_t *)&r->pacer)) {
            uv_timer_start(&r->pacer, tkv__pacer_cb, 1, 1);
        }
    } else if (uv_is_active((uv_handle_t *)&r->pacer)) {
        uv_timer_stop(&r->pacer);
    }
}

void tkv_replica_flush(struct tkv_replica *r)
{
    if (!r->closing && raft_state(&r->raft) == RAFT_LEADER) {
        tkv__batcher_flush(r);
        tkv__reads_issue(r);
    }
}

/* ---- lifecycle ------------------------------------------------------------
 */

static void tkv__replica_free(struct tkv_replica *r)
{
    tkv_free(r->raft_address);
    tkv_free(r->client_address);
    tkv_free(r->data_dir);
    tkv_free(r->bootstrap);
    tkv_free(r->reads);
    tkv__confirm_free(r);
    tkv_free(r);
}

void tkv__replica_handle_closed(struct tkv_replica *r)
{
    void (*cb)(void *) = r->close_cb;
    void *data = r->close_data;

    if (--r->handles_open > 0) {
        return;
    }
    tkv__batcher_close(r);
    tkv__reads_fail(r, TKV_ESHUTDOWN);
    tkv_fsm_close(&r->fsm);
    tkv__replica_free(r);
    tkv_log_info("raft closed");
    if (cb != NULL) {
        cb(data);
    }
}

static void tkv__handle_close_cb(uv_handle_t *h)
{
    tkv__replica_handle_closed(h->data);
}

static void tkv__raft_close_cb(struct raft *raft)
{
    struct tkv_replica *r = raft->data;
    tkv_snapgate_close(&r->gate);
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    r->handles_closing = 1;
    r->handles_open = 3 + (int)tkv__confirm_close(r);
    uv_close((uv_handle_t *)&r->turn, tkv__handle_close_cb);
    uv_close((uv_handle_t *)&r->ticker, tkv__handle_close_cb);
    uv_close((uv_handle_t *)&r->pacer, tkv__handle_close_cb);
}

void tkv_replica_close(struct tkv_replica *r,
                       void (*cb)(void *data),
                       void *data)
{
    assert(!r->closing);
    r->closing = 1;
    r->close_cb = cb;
    r->close_data = data;
    tkv__batcher_fail_open(r, TKV_ESHUTDOWN);
    tkv__reads_fail(r, TKV_ESHUTDOWN);
    uv_check_stop(&r->turn);
    uv_timer_stop(&r->ticker);
    uv_timer_stop(&r->pacer);
    tkv_log_info("closing raft");
    raft_close(&r->raft, tkv__raft_close_cb);
}

/* raft_close() callback used when raft_start() failed. */
static void tkv__raft_abort_cb(struct raft *raft)
{
    struct tkv_replica *r = raft->data;
    tkv_snapgate_close(&r->gate);
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    tkv_fsm_close(&r->fsm);
    tkv__batcher_close(r);
    tkv__replica_free(r);
}

/* 0 when the address can be bound (or cannot be checked); else -1 and
 * why in buf. raft 0.22 drops the errno when its listener cannot bind. */
static int tkv__bind_check(const char *address, char *buf, size_t len)
{
    struct addrinfo hints, *res, *ai;
    struct tkv_err err;
    char host[256], port[8];
    size_t n = strlen(address);
    int p, rv = 0;

    if (tkv_addr_split(address, n, host, sizeof host, &p, &err) != 0) {
        return 0;
    }
    snprintf(port, sizeof port, "%d", p);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0) {
        return 0;
    }
    for (ai = res; ai != NULL && rv == 0; ai = ai->ai_next) {
        int one = 1;
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        /* as libuv binds: a port in TIME_WAIT is free */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(buf, len, "cannot listen on %s: %s", address,
                     strerror(errno));
            rv = -1;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return rv;
}

/* Why a raft call failed with rv, never empty: raft's message, else the
 * I/O backend's, else raft_strerror(rv). raft 0.22's raft_start does not
 * pass on io->start's failure, so a raft port already taken came out as
 * "raft start: " with nothing after it: for an I/O error the bind check of
 * the raft address says what it is. */
static const char *tkv__raft_reason(struct tkv_replica *r,
                                    int rv,
                                    char *buf,
                                    size_t len)
{
    char why[300];
    if (raft_errmsg(&r->raft)[0] != '\0') {
        return raft_errmsg(&r->raft);
    }
    if (r->io.errmsg[0] != '\0') {
        return r->io.errmsg;
    }
    if (rv == RAFT_IOERR && r->raft_address != NULL &&
        tkv__bind_check(r->raft_address, why, sizeof why) != 0) {
        snprintf(buf, len, "%s: %s", raft_strerror(rv), why);
        return buf;
    }
    return raft_strerror(rv);
}

int tkv_replica_start(uv_loop_t *loop,
                      const struct tkv_replica_config *cfg,
                      struct tkv_replica **out,
                      struct tkv_err *err)
{
    struct tkv_replica *r;
    char reason[512];
    int rv;

    *out = NULL;
    r = tkv_calloc(1, sizeof *r);
    if (r == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    r->loop = loop;
    r->id = cfg->id;
    r->tick_ms = cfg->tick_ms > 0 ? cfg->tick_ms : 500;
    r->election_timeout_ms = cfg->election_timeout_ms;
    r->raft_address = tkv_strdup(cfg->raft_address);
    r->client_address = tkv_strdup(cfg->client_address);
    r->data_dir = tkv_strdup(cfg->data_dir);
    if (cfg->nbootstrap > 0) {
        r->bootstrap = tkv_memdup(cfg->bootstrap,
                                  cfg->nbootstrap * sizeof *cfg->bootstrap);
        r->nbootstrap = cfg->nbootstrap;
    }
    r->prev_state = -1;
    if (r->raft_address == NULL || r->client_address == NULL ||
        r->data_dir == NULL || (cfg->nbootstrap > 0 && r->bootstrap == NULL)) {
        rv = tkv_err_set(err, TKV_ENOMEM, "out of memory");
        goto err_after_alloc;
    }
    r->had_state = tkv__has_raft_state(cfg->data_dir);
    tkv__batcher_init(r);

    rv = tkv_fsm_init(&r->fsm, cfg->snapshot_mode, err);
    if (rv != 0) {
        goto err_after_alloc;
    }
    r->fsm.data = r;
    r->fsm.raft = &r->raft;
    r->fsm.on_apply = tkv__batcher_on_apply;
    /* State files are written in fork mode only, but read in any mode (a
     * data dir from a node that ran in fork mode). */
    rv = tkv_fsm_set_dir(&r->fsm, cfg->data_dir, err);
    if (rv != 0) {
        goto err_after_fsm_init;
    }

    r->transport.version = 1;
    r->transport.data = r;
    rv = raft_uv_tcp_init(&r->transport, loop);
    if (rv != 0) {
        rv = tkv_err_set(err, tkv__raft_code(rv), "raft transport: %s",
                         raft_strerror(rv));
        goto err_after_fsm_init;
    }
    tkv_logfill_enable(cfg->log_zero_fill); /* before raft_uv makes files */
    rv = raft_uv_init(&r->io, loop, cfg->data_dir, &r->transport);
    if (rv != 0) {
        rv = tkv_err_set(err, TKV_EIO, "data dir %s: %s", cfg->data_dir,
                         tkv__raft_reason(r, rv, reason, sizeof reason));
        goto err_after_transport_init;
    }
    raft_uv_set_connect_retry_delay(&r->io, 200);
    r->snapshot_get = r->io.snapshot_get;
    r->io.snapshot_get = tkv__snapshot_get;
    raft_uv_set_snapshot_compression(&r->io, cfg->snapshot_compression != 0);
    /* Work around raft 0.22.1 crashing when an install snapshot arrives
     * while our own snapshot is being written (see snapgate.h). */
    tkv_snapgate_install(&r->gate, &r->io, &r->fsm.out_busy);
    r->gate.on_recv = tkv__install_fix;
    r->gate.on_recv_arg = r;
    rv = raft_init(&r->raft, &r->io, &r->fsm.raft_fsm, cfg->id,
                   cfg->raft_address);
    if (rv != 0) {
        rv = tkv_err_set(err, tkv__raft_code(rv), "raft init: %s",
                         tkv__raft_reason(r, rv, reason, sizeof reason));
        goto err_after_io_init;
    }
    r->raft.data = r;
    raft_set_election_timeout(&r->raft, cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&r->raft, cfg->heartbeat_ms);
    tkv_fsm_set_threshold(&r->fsm, cfg->snapshot_threshold, cfg->id);
    raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&r->raft, true);

    if (cfg->nbootstrap > 0 && !r->had_state) {
        struct raft_configuration conf;
        size_t i;
        raft_configuration_init(&conf);
        for (i = 0; i < cfg->nbootstrap; i++) {
            rv = raft_configuration_add(&conf, cfg->bootstrap[i].id,
                                        cfg->bootstrap[i].raft_address,
                                        RAFT_VOTER);
            if (rv != 0) {
                raft_configuration_close(&conf);
                rv = tkv_err_set(err, TKV_EINVALID, "bootstrap member %llu: %s",
                                 (unsigned long long)cfg->bootstrap[i].id,
                                 raft_strerror(rv));
                goto err_after_raft_init;
            }
        }
        rv = raft_bootstrap(&r->raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
            rv = tkv_err_set(err, tkv__raft_code(rv), "bootstrap: %s",
                             tkv__raft_reason(r, rv, reason, sizeof reason));
            goto err_after_raft_init;
        }
        tkv_log_info("bootstrapped a cluster of %zu members", cfg->nbootstrap);
    }
    rv = raft_start(&r->raft);
    if (rv != 0) {
        rv = tkv_err_set(err, tkv__raft_code(rv), "raft start: %s",
                         tkv__raft_reason(r, rv, reason, sizeof reason));
        goto err_after_raft_init;
    }
    tkv_fsm_gc(&r->fsm); /* state files of older snapshots, or cut short */
    tkv_log_info("raft started: %s, applied index %llu, %zu keys",
                 r->had_state ? "restarted from the data dir" : "new data dir",
                 (unsigned long long)raft_last_applied(&r->raft),
                 tkv_sm_count(&r->fsm.sm));

    uv_check_init(loop, &r->turn);
    r->turn.data = r;
    uv_check_start(&r->turn, tkv__turn_cb);
    uv_timer_init(loop, &r->ticker);
    r->ticker.data = r;
    uv_timer_init(loop, &r->pacer);
    r->pacer.data = r;
    {
        unsigned period = r->tick_ms / 4;
        uv_timer_start(&r->ticker, tkv__ticker_cb, period > 5 ? period : 5,
                       period > 5 ? period : 5);
    }
    r->last_propose_ms = uv_now(loop);
    *out = r;
    return 0;

err_after_raft_init:
    r->closing = 1;
    raft_close(&r->raft, tkv__raft_abort_cb);
    return rv;
err_after_io_init:
    tkv_snapgate_close(&r->gate);
    raft_uv_close(&r->io);
err_after_transport_init:
    raft_uv_tcp_close(&r->transport);
err_after_fsm_init:
    tkv_fsm_close(&r->fsm);
err_after_alloc:
    tkv__batcher_close(r);
    tkv__replica_free(r);
    return rv;
}

/* ---- queries ---------------------------------------------------------------
 */

int tkv_replica_had_state(const struct tkv_replica *r)
{
    return r->had_state;
}

size_t tkv_replica_inflight(const struct tkv_replica *r)
{
    return r->ninflight + r->nwaiters + r->nreads +
           (r->barrier != NULL ? r->barrier->n : 0);
}

const struct tkv_sm *tkv_replica_sm(const struct tkv_replica *r)
{
    return &r->fsm.sm;
}

uint64_t tkv_replica_term(struct tkv_replica *r)
{
    return raft_current_term(&r->raft);
}

int tkv_replica_is_leader(struct tkv_replica *r)
{
    return raft_state(&r->raft) == RAFT_LEADER;
}

uint64_t tkv_replica_leader(struct tkv_replica *r, const char **client_address)
{
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &id, &addr);
    *client_address = id != 0 ? tkv_sm_member_addr(&r->fsm.sm, id) : NULL;
    if (id == r->id && *client_address == NULL) {
        *client_address = r->client_address;
    }
    return id;
}

void tkv_replica_status(struct tkv_replica *r, struct tkv_replica_status *st)
{
    memset(st, 0, sizeof *st);
    st->id = r->id;
    st->role = tkv__state_name(raft_state(&r->raft));
    st->term = raft_current_term(&r->raft);
    st->leader_id = tkv_replica_leader(r, &st->leader_address);
    st->commit_index = raft_commit_index(&r->raft);
    st->applied_index = raft_last_applied(&r->raft);
    st->snapshot_index = r->fsm.last_snapshot_index;
    st->keys = tkv_sm_count(&r->fsm.sm);
    st->data_bytes = tkv_sm_bytes(&r->fsm.sm);
    st->sm_time_ms = r->fsm.sm.now;
}
