/* Snapshot gate: see snapgate.h for the raft 0.22.1 bug it works around.
 *
 * The wrapped methods get only the struct raft_io pointer (io->data belongs
 * to raft), so gates are found through a small registry keyed by io. Every
 * gate lives on the loop thread of its raft instance; a process has one
 * (tuplekv-node) or a few (tests). */
#include "snapgate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"

static struct tkv_snapgate *tkv__gates;

static struct tkv_snapgate *tkv__gate_of(struct raft_io *io)
{
    struct tkv_snapgate *g;
    for (g = tkv__gates; g != NULL; g = g->next) {
        if (g->io == io) {
            return g;
        }
    }
    return NULL;
}

static void tkv__msg_free(struct raft_message *m)
{
    raft_free(m->install_snapshot.data.base);
    m->install_snapshot.data.base = NULL;
    raft_configuration_close(&m->install_snapshot.conf);
}

static uint64_t tkv__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void tkv__gate_heard(struct tkv_snapgate *g, uint64_t id)
{
    size_t i;
    for (i = 0; i < TKV_SNAPGATE_PEERS; i++) {
        if (g->heard[i].id == id || g->heard[i].id == 0) {
            g->heard[i].id = id;
            g->heard[i].at_ms = tkv__now_ms();
            return;
        }
    }
}

uint64_t tkv_snapgate_heard_ms(const struct tkv_snapgate *g, uint64_t id)
{
    size_t i;
    for (i = 0; i < TKV_SNAPGATE_PEERS && g->heard[i].id != 0; i++) {
        if (g->heard[i].id == id) {
            return tkv__now_ms() - g->heard[i].at_ms;
        }
    }
    return UINT64_MAX;
}

static void tkv__gate_recv(struct raft_io *io, struct raft_message *m)
{
    struct tkv_snapgate *g = tkv__gate_of(io);

    if (g == NULL || g->recv == NULL) {
        return; /* cannot happen: start() registered both */
    }
    tkv__gate_heard(g, m->server_id);
    if (g->on_recv != NULL) {
        g->on_recv(g->on_recv_arg, m);
    }
    if (m->type == RAFT_INSTALL_SNAPSHOT && (g->taking || g->nheld > 0)) {
        size_t i;
        /* The leader resends an install until it is answered: keep one
         * copy (losing a message is always safe in Raft). */
        for (i = 0; i < g->nheld; i++) {
            const struct raft_install_snapshot *h =
                &g->held[i].install_snapshot;
            if (g->held[i].server_id == m->server_id &&
                h->term == m->install_snapshot.term &&
                h->last_index == m->install_snapshot.last_index &&
                h->last_term == m->install_snapshot.last_term) {
                tkv__msg_free(m);
                g->held_dups++;
                return;
            }
        }
        if (g->nheld == g->held_cap) {
            size_t cap = g->held_cap == 0 ? 4 : g->held_cap * 2;
            struct raft_message *h = realloc(g->held, cap * sizeof *h);
            if (h == NULL) {
                /* Dropping is safe too: the leader sends it again. */
                tkv_log_warn(
                    "snapshot gate: out of memory, install "
                    "snapshot from %llu dropped",
                    (unsigned long long)m->server_id);
                tkv__msg_free(m);
                return;
            }
            g->held = h;
            g->held_cap = cap;
        }
        g->held[g->nheld++] = *m;
        g->held_total++;
        tkv_log_info(
            "install snapshot at %llu from %llu held back: own "
            "snapshot being written",
            (unsigned long long)m->install_snapshot.last_index,
            (unsigned long long)m->server_id);
        return;
    }
    g->recv(io, m);
}

static int tkv__gate_start(struct raft_io *io,
                           unsigned msecs,
                           raft_io_tick_cb tick,
                           raft_io_recv_cb recv)
{
    struct tkv_snapgate *g = tkv__gate_of(io);
    if (g == NULL) {
        return RAFT_INVALID;
    }
    g->recv = recv;
    return g->start(io, msecs, tick, tkv__gate_recv);
}

static void tkv__gate_take_cb(struct raft_io_snapshot_put *req, int status)
{
    raft_io_snapshot_put_cb cb;
    struct tkv_snapgate *g;

    /* req->data is raft's: the request pointer tells which gate's take
     * this is (tests run several servers in one process). */
    for (g = tkv__gates; g != NULL; g = g->next) {
        if (g->taking && g->take_req == req) {
            break;
        }
    }
    if (g == NULL) {
        return; /* cannot happen: raft closes its io before the gate */
    }
    cb = g->take_cb;
    g->taking = 0;
    g->take_cb = NULL;
    g->take_req = NULL;
    cb(req, status);
}

static int tkv__gate_snapshot_put(struct raft_io *io,
                                  unsigned trailing,
                                  struct raft_io_snapshot_put *req,
                                  const struct raft_snapshot *snapshot,
                                  raft_io_snapshot_put_cb cb)
{
    struct tkv_snapgate *g = tkv__gate_of(io);
    int take;
    int rv;

    if (g == NULL) {
        return RAFT_INVALID;
    }
    take = trailing > 0 || (g->take_flag != NULL && *g->take_flag);
    if (!take || g->taking) {
        return g->snapshot_put(io, trailing, req, snapshot, cb);
    }
    g->taking = 1;
    g->take_cb = cb;
    g->take_req = req;
    rv = g->snapshot_put(io, trailing, req, snapshot, tkv__gate_take_cb);
    if (rv != 0) {
        g->taking = 0;
        g->take_cb = NULL;
        g->take_req = NULL;
    }
    return rv;
}

void tkv_snapgate_install(struct tkv_snapgate *g,
                          struct raft_io *io,
                          const int *take_flag)
{
    memset(g, 0, sizeof *g);
    g->io = io;
    g->take_flag = take_flag;
    g->start = io->start;
    g->snapshot_put = io->snapshot_put;
    io->start = tkv__gate_start;
    io->snapshot_put = tkv__gate_snapshot_put;
    g->next = tkv__gates;
    tkv__gates = g;
}

size_t tkv_snapgate_flush(struct tkv_snapgate *g)
{
    size_t n = 0;
    while (g->nheld > 0 && !g->taking && !g->closed && g->recv != NULL) {
        struct raft_message m = g->held[0];
        g->nheld--;
        memmove(g->held, g->held + 1, g->nheld * sizeof *g->held);
        tkv_log_info("install snapshot at %llu from %llu released",
                     (unsigned long long)m.install_snapshot.last_index,
                     (unsigned long long)m.server_id);
        g->recv(g->io, &m);
        n++;
    }
    return n;
}

void tkv_snapgate_close(struct tkv_snapgate *g)
{
    struct tkv_snapgate **p;
    size_t i;

    if (g->closed) {
        return;
    }
    g->closed = 1;
    for (i = 0; i < g->nheld; i++) {
        tkv__msg_free(&g->held[i]);
    }
    free(g->held);
    g->held = NULL;
    g->nheld = 0;
    g->held_cap = 0;
    for (p = &tkv__gates; *p != NULL; p = &(*p)->next) {
        if (*p == g) {
            *p = g->next;
            break;
        }
    }
    /* Give the io its methods back, so nothing calls into a freed gate. */
    if (g->io != NULL) {
        g->io->start = g->start;
        g->io->snapshot_put = g->snapshot_put;
    }
}
