/* raft/snapgate.c: the workaround for canonical/raft 0.22.1 crashing
 * (NULL dereference in legacy.c takeSnapshotCb) when an InstallSnapshot
 * message arrives while the server's own snapshot is being written.
 *
 * raft's side is played by this test over a fake raft_io, so each
 * interleaving is exact: the gate must never hand raft an install while a
 * take's snapshot_put is in flight (raft 0.22.1 would park it and then
 * crash when the put completes), must hand it over once the take is done,
 * must pass every other message and every install-side put straight
 * through, and must free what it holds when closed (LSan checks that). */
#include <raft.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft/snapgate.h"

/* ---- the fake io: remembers raft's callbacks and the nputs in flight ---- */

static raft_io_recv_cb io_recv;        /* what the io would call on a message */
static raft_io_snapshot_put_cb put_cb; /* completion of the put in flight */
static struct raft_io_snapshot_put *put_req;
static unsigned put_trailing;
static int nputs;

static int fake_start(struct raft_io *io,
                      unsigned msecs,
                      raft_io_tick_cb tick,
                      raft_io_recv_cb recv)
{
    (void)io;
    (void)msecs;
    (void)tick;
    io_recv = recv;
    return 0;
}

static int fake_snapshot_put(struct raft_io *io,
                             unsigned trailing,
                             struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot,
                             raft_io_snapshot_put_cb cb)
{
    (void)io;
    (void)snapshot;
    req->cb = cb;
    put_req = req;
    put_cb = cb;
    put_trailing = trailing;
    nputs++;
    return 0;
}

static void fake_complete_put(int status)
{
    raft_io_snapshot_put_cb cb = put_cb;
    struct raft_io_snapshot_put *req = put_req;
    put_cb = NULL;
    put_req = NULL;
    cb(req, status);
}

/* ---- raft's side --------------------------------------------------------- */

static int taking;        /* raft's r->legacy.snapshot_taking */
static int installs_seen; /* installs raft received */
static int installs_while_taking;
static int appends_seen;
static int takes_done;

static void raft_recv(struct raft_io *io, struct raft_message *m)
{
    (void)io;
    if (m->type == RAFT_INSTALL_SNAPSHOT) {
        installs_seen++;
        installs_while_taking += taking;
        /* raft owns the payload from here */
        raft_free(m->install_snapshot.data.base);
        raft_configuration_close(&m->install_snapshot.conf);
    } else {
        appends_seen++;
    }
}

static void raft_take_cb(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    (void)status;
    taking = 0; /* takeSnapshotClose() */
    takes_done++;
}

static void raft_install_cb(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    (void)status;
}

static struct raft_message install_msg(raft_index index)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_INSTALL_SNAPSHOT;
    m.server_id = 1;
    m.install_snapshot.term = 2;
    m.install_snapshot.last_index = index;
    m.install_snapshot.last_term = 2;
    raft_configuration_init(&m.install_snapshot.conf);
    assert_int_equal(
        raft_configuration_add(&m.install_snapshot.conf, 1, "a:1", RAFT_VOTER),
        0);
    m.install_snapshot.data.len = 64;
    m.install_snapshot.data.base = raft_malloc(64);
    assert_non_null(m.install_snapshot.data.base);
    memset(m.install_snapshot.data.base, 7, 64);
    return m;
}

static struct raft_message append_msg(void)
{
    struct raft_message m;
    memset(&m, 0, sizeof m);
    m.type = RAFT_APPEND_ENTRIES;
    m.server_id = 1;
    return m;
}

static void reset(struct raft_io *io)
{
    memset(io, 0, sizeof *io);
    io->start = fake_start;
    io->snapshot_put = fake_snapshot_put;
    io_recv = NULL;
    put_cb = NULL;
    put_req = NULL;
    nputs = 0;
    taking = 0;
    installs_seen = installs_while_taking = appends_seen = takes_done = 0;
}

/* raft starts a take: fsm->snapshot handed buffers over, then put. */
static void raft_take(struct raft_io *io,
                      struct raft_io_snapshot_put *req,
                      struct raft_snapshot *snap,
                      int *busy_flag)
{
    *busy_flag = 1;
    assert_int_equal(io->snapshot_put(io, 8, req, snap, raft_take_cb), 0);
    taking = 1; /* set by legacyTakeSnapshot after putSnapshot returns */
}

/* The crash scenario: install arrives during the take's put. */
static void test_install_held_during_take(void **state)
{
    struct raft_io io;
    struct tkv_snapgate g;
    struct raft_io_snapshot_put req;
    struct raft_snapshot snap;
    struct raft_message m;
    int busy = 0;

    (void)state;
    reset(&io);
    tkv_snapgate_install(&g, &io, &busy);
    assert_int_equal(io.start(&io, 100, NULL, raft_recv), 0);
    assert_non_null(io_recv);

    memset(&snap, 0, sizeof snap);
    raft_take(&io, &req, &snap, &busy);
    assert_int_equal(nputs, 1);
    assert_int_equal(put_trailing, 8);

    /* the leader's install arrives while our snapshot is written */
    m = install_msg(1019);
    io_recv(&io, &m);
    assert_int_equal(installs_seen, 0);
    /* the leader resends it: one copy is kept, the others freed */
    m = install_msg(1019);
    io_recv(&io, &m);
    m = install_msg(1019);
    io_recv(&io, &m);
    assert_int_equal(g.nheld, 1);
    assert_int_equal(g.held_dups, 2);
    /* other traffic still flows */
    m = append_msg();
    io_recv(&io, &m);
    assert_int_equal(appends_seen, 1);
    /* a turn of the loop while the put is in flight changes nothing */
    assert_int_equal(tkv_snapgate_flush(&g), 0);
    assert_int_equal(installs_seen, 0);

    /* the take completes: raft's own callback runs first (with nothing
     * parked, so its buggy resume path is not taken) */
    busy = 0; /* snapshot_finalize */
    fake_complete_put(0);
    assert_int_equal(takes_done, 1);
    assert_int_equal(installs_seen, 0);

    /* then the next turn hands the install to raft, which is not taking */
    assert_int_equal(tkv_snapgate_flush(&g), 1);
    assert_int_equal(installs_seen, 1);
    assert_int_equal(installs_while_taking, 0);
    assert_int_equal(g.held_total, 1);
    tkv_snapgate_close(&g);
    /* the io has its own methods back */
    assert_true(io.snapshot_put == fake_snapshot_put);
}

/* A new take started before the held install was released keeps it held
 * (inline snapshots can chain), and order is kept. */
static void test_held_across_takes(void **state)
{
    struct raft_io io;
    struct tkv_snapgate g;
    struct raft_io_snapshot_put req;
    struct raft_snapshot snap;
    struct raft_message m;
    int busy = 0;

    (void)state;
    reset(&io);
    tkv_snapgate_install(&g, &io, &busy);
    assert_int_equal(io.start(&io, 100, NULL, raft_recv), 0);
    memset(&snap, 0, sizeof snap);

    raft_take(&io, &req, &snap, &busy);
    m = install_msg(100);
    io_recv(&io, &m);
    busy = 0;
    fake_complete_put(0);
    raft_take(&io, &req, &snap, &busy); /* before the loop turn */
    m = install_msg(200);
    io_recv(&io, &m); /* held too, behind the first */
    assert_int_equal(tkv_snapgate_flush(&g), 0);
    assert_int_equal(installs_seen, 0);
    busy = 0;
    fake_complete_put(0);
    assert_int_equal(tkv_snapgate_flush(&g), 2);
    assert_int_equal(installs_seen, 2);
    assert_int_equal(installs_while_taking, 0);
    tkv_snapgate_close(&g);
}

/* Without a take in flight everything passes at once, and raft's own put
 * of an installed snapshot (trailing 0) is not mistaken for a take. */
static void test_pass_through(void **state)
{
    struct raft_io io;
    struct tkv_snapgate g;
    struct raft_io_snapshot_put req;
    struct raft_snapshot snap;
    struct raft_message m;
    int busy = 0;

    (void)state;
    reset(&io);
    tkv_snapgate_install(&g, &io, &busy);
    assert_int_equal(io.start(&io, 100, NULL, raft_recv), 0);
    memset(&snap, 0, sizeof snap);

    m = install_msg(5);
    io_recv(&io, &m);
    assert_int_equal(installs_seen, 1);

    assert_int_equal(io.snapshot_put(&io, 0, &req, &snap, raft_install_cb), 0);
    assert_true(put_cb == raft_install_cb); /* not wrapped */
    m = install_msg(6);
    io_recv(&io, &m);
    assert_int_equal(installs_seen, 2);
    fake_complete_put(0);
    tkv_snapgate_close(&g);
}

/* Closing with an install held frees it (LeakSanitizer would say). */
static void test_close_frees_held(void **state)
{
    struct raft_io io;
    struct tkv_snapgate g;
    struct raft_io_snapshot_put req;
    struct raft_snapshot snap;
    struct raft_message m;
    int busy = 0;

    (void)state;
    reset(&io);
    tkv_snapgate_install(&g, &io, &busy);
    assert_int_equal(io.start(&io, 100, NULL, raft_recv), 0);
    memset(&snap, 0, sizeof snap);
    raft_take(&io, &req, &snap, &busy);
    m = install_msg(7);
    io_recv(&io, &m);
    m = install_msg(8);
    io_recv(&io, &m);
    busy = 0;
    fake_complete_put(RAFT_CANCELED); /* raft closing */
    tkv_snapgate_close(&g);
    assert_int_equal(installs_seen, 0);
    assert_int_equal(g.nheld, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_held_during_take),
        cmocka_unit_test(test_held_across_takes),
        cmocka_unit_test(test_pass_through),
        cmocka_unit_test(test_close_frees_held),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
