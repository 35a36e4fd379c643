/* Snapshots whose state is in a file of the FSM's own (raft/fsm.h): the
 * fork child, or the stepped writer, writes <dir>/tkv-state-<N1>, raft
 * gets a manifest, restore
 * reads the file, tkv_fsm_expand makes the whole snapshot an install
 * carries (with its raft index and term), and finalize deletes the files
 * no snapshot needs.
 *
 * The FSM runs on its own here, with a struct raft that only carries
 * last_applied (all the FSM reads of it): entries are applied by hand, and
 * snapshot() is called as raft would, until it stops answering RAFT_BUSY. */
#include <raft.h>
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/fsm.h"
#include "raft/glue.h"
#include "statemachine/command.h"
#include "statemachine/keycodec.h"

static struct raft fake; /* last_applied only */
static char dir[64];

/* Set key "k" + chars[0..nchars) of k in base 26, to a value of vlen
 * bytes (a msgpack string when vlen > 1, else the fixint k % 128). */
static void apply_sized(struct tkv_fsm *f, unsigned k, unsigned nchars,
                        unsigned vlen)
{
    struct tkv_buf body, entry;
    struct tkv_cmd cmd;
    struct raft_buffer buf;
    uint8_t key[8] = {TKV_KEY_TAG_STRING, 'k'};
    uint8_t val[256];
    unsigned i, x = k;
    void *result;

    assert_true(nchars <= 5 && vlen >= 1 && vlen <= sizeof val);
    for (i = 0; i < nchars; i++, x /= 26) {
        key[2 + i] = (uint8_t)('a' + x % 26);
    }
    key[2 + nchars] = 0;
    val[0] = (uint8_t)(k % 128); /* positive fixint */
    if (vlen > 1) {
        val[0] = 0xd9; /* str 8 */
        val[1] = (uint8_t)(vlen - 2);
        memset(val + 2, 'v', vlen - 2);
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.type = TKV_CMD_SET;
    cmd.mut.type = TKV_CMD_SET;
    cmd.mut.key = key;
    cmd.mut.klen = 3 + nchars;
    cmd.mut.value = val;
    cmd.mut.vlen = vlen;
    tkv_buf_init(&body);
    tkv_buf_init(&entry);
    assert_int_equal(tkv_cmd_encode(&cmd, &body), 0);
    assert_int_equal(tkv_entry_encode(1000 + k, 1, body.data, body.len, &entry),
                     0);
    buf.base = entry.data;
    buf.len = entry.len;
    assert_int_equal(f->raft_fsm.apply(&f->raft_fsm, &buf, &result), 0);
    fake.last_applied++;
    tkv_buf_close(&body);
    tkv_buf_close(&entry);
}

/* Set key "k<x>" (x from k: 26 keys) or, wide, "k<x><y>" (676 keys). */
static void apply_key(struct tkv_fsm *f, unsigned k, int wide)
{
    apply_sized(f, k, wide ? 2 : 1, 1);
}

static void apply_set(struct tkv_fsm *f, unsigned k)
{
    apply_key(f, k, 0);
}

static int exists(uint64_t id, const char *suffix)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/tkv-state-%020llu%s", dir,
             (unsigned long long)id, suffix);
    return stat(path, &st) == 0;
}

static void touch(const char *name)
{
    char path[128];
    int fd;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
}

/* Take a snapshot as raft does: snapshot() until it hands over; entries
 * applied while the child runs make the tail. Returns the whole buffer,
 * raft_malloc'd (restore() takes ownership), and finalizes. */
static struct raft_buffer take(struct tkv_fsm *f, unsigned tail_entries)
{
    struct raft_buffer *bufs, out;
    unsigned n, i, tries = 0;
    size_t off = 0;
    int rv;

    while ((rv = f->raft_fsm.snapshot(&f->raft_fsm, &bufs, &n)) == RAFT_BUSY) {
        if (tail_entries > 0) {
            apply_set(f, 1000 + tail_entries--);
        } else {
            usleep(2000);
        }
        assert_true(++tries < 5000);
    }
    assert_int_equal(rv, 0);
    out.len = 0;
    for (i = 0; i < n; i++) {
        out.len += bufs[i].len;
    }
    out.base = raft_malloc(out.len);
    for (i = 0; i < n; i++) {
        memcpy((char *)out.base + off, bufs[i].base, bufs[i].len);
        off += bufs[i].len;
    }
    assert_int_equal(f->raft_fsm.snapshot_finalize(&f->raft_fsm, &bufs, &n), 0);
    return out;
}

static struct raft_buffer copy_of(const struct raft_buffer *b)
{
    struct raft_buffer c;
    c.len = b->len;
    c.base = raft_malloc(c.len);
    memcpy(c.base, b->base, c.len);
    return c;
}

static void fsm_open(struct tkv_fsm *f, int mode, int with_dir)
{
    struct tkv_err err;
    tkv_err_clear(&err);
    assert_int_equal(tkv_fsm_init(f, mode, &err), 0);
    f->raft = &fake;
    if (with_dir) {
        assert_int_equal(tkv_fsm_set_dir(f, dir, &err), 0);
    }
}

static void flip_byte(uint64_t id, long at)
{
    char path[128];
    unsigned char c;
    int fd;
    snprintf(path, sizeof path, "%s/tkv-state-%020llu", dir,
             (unsigned long long)id);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* A new empty data dir, and raft's applied index back at 1. */
static void fresh_dir(void)
{
    memset(&fake, 0, sizeof fake);
    fake.last_applied = 1;
    snprintf(dir, sizeof dir, "/tmp/tkv-fsmfiles-XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void state_file_round_trip(int mode)
{
    struct tkv_fsm a, b, c, d;
    struct raft_buffer snap, whole, tmp;
    struct tkv_err err;
    unsigned k;

    fresh_dir();
    fsm_open(&a, mode, 1);
    for (k = 0; k < 200; k++) {
        apply_set(&a, k);
    }

    /* Snapshot 1: base at 201 in its own file, a tail of 3 entries. */
    snap = take(&a, 3);
    assert_true(snap.len > 48);
    assert_memory_equal(snap.base, "TKVSNAP2", 8);
    assert_true(exists(201, ""));
    assert_false(exists(201, ".tmp"));

    /* Restore from the manifest (what a restart does). */
    fsm_open(&b, mode, 1);
    tmp = copy_of(&snap);
    assert_int_equal(b.raft_fsm.restore(&b.raft_fsm, &tmp), 0);
    assert_int_equal(tkv_sm_count(&b.sm), tkv_sm_count(&a.sm));
    assert_true(tkv_sm_hash(&b.sm) == tkv_sm_hash(&a.sm));

    /* Expanded for an install, it names its raft index and term, and
     * restores where no file exists; a whole snapshot expands too (a
     * follower that got one by install and then leads). */
    tkv_err_clear(&err);
    assert_int_equal(tkv_fsm_expand(dir, &snap, 204, 7, &whole, &err), 0);
    assert_memory_equal(whole.base, "TKVSNAPI", 8);
    {
        uint64_t index = 0, term = 0;
        struct raft_buffer again;
        assert_int_equal(tkv_fsm_install_id(&whole, &index, &term), 1);
        assert_int_equal(index, 204);
        assert_int_equal(term, 7);
        assert_int_equal(tkv_fsm_install_id(&snap, &index, &term), 0);
        assert_int_equal(tkv_fsm_expand(NULL, &whole, 205, 8, &again, &err),
                         0);
        assert_int_equal(again.len, whole.len);
        assert_int_equal(tkv_fsm_install_id(&again, &index, &term), 1);
        assert_int_equal(index, 205);
        assert_memory_equal(again.base, whole.base, whole.len - 16);
        raft_free(again.base);
    }
    /* The receiver corrects a message with an older snapshot's term. */
    {
        struct raft_message m;
        memset(&m, 0, sizeof m);
        m.type = RAFT_INSTALL_SNAPSHOT;
        m.install_snapshot.data = whole;
        m.install_snapshot.last_index = 204;
        m.install_snapshot.last_term = 5;
        tkv__install_fix(NULL, &m);
        assert_int_equal(m.install_snapshot.last_term, 7);
        m.install_snapshot.last_index = 200; /* not this data's: left */
        m.install_snapshot.last_term = 5;
        tkv__install_fix(NULL, &m);
        assert_int_equal(m.install_snapshot.last_term, 5);
    }
    fsm_open(&c, TKV_SNAP_INLINE, 0);
    assert_int_equal(c.raft_fsm.restore(&c.raft_fsm, &whole), 0);
    assert_true(tkv_sm_hash(&c.sm) == tkv_sm_hash(&a.sm));

    /* A manifest where the FSM keeps no files, or with the file damaged:
     * refused, never restored wrong. */
    fsm_open(&d, TKV_SNAP_INLINE, 0);
    tmp = copy_of(&snap);
    assert_int_equal(d.raft_fsm.restore(&d.raft_fsm, &tmp), RAFT_CORRUPT);
    raft_free(tmp.base);
    tkv_fsm_close(&d);
    flip_byte(201, 100);
    fsm_open(&d, mode, 1);
    tmp = copy_of(&snap);
    assert_int_equal(d.raft_fsm.restore(&d.raft_fsm, &tmp), RAFT_CORRUPT);
    raft_free(tmp.base);
    tkv_fsm_close(&d);
    tkv_err_clear(&err);
    assert_int_equal(tkv_fsm_expand(dir, &snap, 204, 7, &tmp, &err),
                     TKV_ECORRUPT);
    flip_byte(201, 100);

    /* Clean-up: strays go, the file of the last snapshot stays, and so do
     * files that are not ours. */
    touch("tkv-state-00000000000000000007");
    touch("tkv-state-00000000000000000300.tmp");
    touch("other-file");
    for (k = 0; k < 20; k++) {
        apply_set(&a, 300 + k);
    }
    raft_free(snap.base);
    snap = take(&a, 0); /* snapshot 2: base at 224 */
    raft_free(snap.base);
    assert_false(exists(7, ""));
    assert_false(exists(300, ".tmp"));
    assert_true(exists(201, ""));
    assert_true(exists(224, ""));
    for (k = 0; k < 20; k++) {
        apply_set(&a, 400 + k);
    }
    snap = take(&a, 0); /* snapshot 3: raft keeps 2, so 201 goes */
    assert_false(exists(201, ""));
    assert_true(exists(224, ""));
    assert_true(exists(244, ""));

    /* A whole snapshot restored (an install) replaces the state: after
     * the next clean-up no file of the old state is kept. */
    assert_int_equal(tkv_fsm_expand(dir, &snap, 244, 7, &whole, &err), 0);
    raft_free(snap.base);
    assert_int_equal(a.raft_fsm.restore(&a.raft_fsm, &whole), 0);
    tkv_fsm_gc(&a);
    assert_false(exists(224, ""));
    assert_false(exists(244, ""));

    tkv_fsm_close(&a);
    tkv_fsm_close(&b);
    tkv_fsm_close(&c);
    {
        char path[128];
        snprintf(path, sizeof path, "%s/other-file", dir);
        unlink(path);
        assert_int_equal(rmdir(dir), 0); /* nothing else left behind */
    }
}

/* The state file written by a fork child, and by the loop in steps with
 * a writer thread: the same files, manifests and clean-up. */
static void test_state_file_fork(void **state)
{
    (void)state;
    state_file_round_trip(TKV_SNAP_FORK);
}

static void test_state_file_stepped(void **state)
{
    (void)state;
    state_file_round_trip(TKV_SNAP_STEPPED);
}

/* A STEPPED FSM with a snapshot begun and still serializing. 16000 keys
 * with 200-byte values (3.4 MB) are more than one call can serialize
 * however long the loop was kept from running before it (its time share
 * is capped at 2 ms, its ring of buffers at 1 MiB, and the writer drains
 * 256 KiB per millisecond at most). Its base. */
static uint64_t begin_stepped(struct tkv_fsm *f)
{
    struct raft_buffer *bufs;
    uint64_t base;
    unsigned n, k;

    fsm_open(f, TKV_SNAP_STEPPED, 1);
    for (k = 0; k < 16000; k++) {
        apply_sized(f, k, 3, 200);
    }
    base = fake.last_applied;
    assert_int_equal(f->raft_fsm.snapshot(&f->raft_fsm, &bufs, &n), RAFT_BUSY);
    assert_true(tkv_fsm_stepping(f));
    assert_true(exists(base, ".tmp"));
    return base;
}

/* A stepped snapshot cut short, by a restore or by close: its writer
 * thread is joined and its unfinished file deleted. */
static void test_stepped_cut_short(void **state)
{
    struct tkv_fsm a, b;
    struct raft_buffer snap;
    uint64_t base;
    unsigned k;

    (void)state;
    fresh_dir();
    fsm_open(&b, TKV_SNAP_INLINE, 0);
    for (k = 0; k < 30; k++) {
        apply_set(&b, k);
    }
    snap = take(&b, 0); /* a whole snapshot, to restore below */

    base = begin_stepped(&a);
    assert_int_equal(a.raft_fsm.restore(&a.raft_fsm, &snap), 0);
    assert_false(tkv_fsm_stepping(&a));
    assert_false(exists(base, ".tmp"));
    assert_true(tkv_sm_hash(&a.sm) == tkv_sm_hash(&b.sm));

    tkv_fsm_close(&a);

    base = begin_stepped(&a);
    tkv_fsm_close(&a);
    assert_false(exists(base, ".tmp"));
    tkv_fsm_close(&b);
    assert_int_equal(rmdir(dir), 0); /* nothing left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_file_fork),
        cmocka_unit_test(test_state_file_stepped),
        cmocka_unit_test(test_stepped_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
