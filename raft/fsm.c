/* FSM glue: apply, snapshot (stepped, or fork + memfd; + replayed tail),
 * restore.
 *
 * Happy path of a snapshot (see fsm.h for why; STEPPED: "the child" is the
 * loop's steps plus the writer thread, its exit the writer's done):
 *   snapshot() #1   start: fork a child at N1 (or serialize inline), record
 *                   the tail from now on, answer RAFT_BUSY
 *   apply()...      each entry's bytes appended to the tail
 *   snapshot() #k   child exited 0: map the memfd, hand over
 *                   [header][base][tail] as raft's buffers
 *   finalize()      unmap / free
 * Failures: fork/memfd failure or a child exiting non-zero is logged, the
 * attempt dropped, and the next one waits a second (no fork storm). A
 * restore (snapshot install) makes the running attempt stale: it is killed
 * and dropped. Apply never fails towards raft: a corrupt entry changes
 * nothing (the sm's contract) and out of memory aborts the process, since a
 * replica that skipped an entry would diverge silently.
 *
 * Snapshot bytes (little endian):
 *   whole:    "TKVSNAP1" | u64 base_len | u64 tail_len | u64 tail_count
 *             | base | tail
 *   install:  "TKVSNAPI" | as whole | u64 index | u64 term   (what a leader
 *             sends: the snapshot's own raft index and term, see
 *             tkv_fsm_install_id)
 *   manifest: "TKVSNAP2" | u64 base_len | u64 tail_len | u64 tail_count
 *             | u64 base_id | u64 base_hash | tail
 *             (base in <dir>/tkv-state-<base_id, %020llu>, tkv_hash64
 *             seed 0 = base_hash)
 *   base: tkv_sm_snapshot() stream
 *   tail: tail_count x { u64 index | u64 len | len bytes | zero pad to 8 } */
#define _GNU_SOURCE
#include "fsm.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/alloc.h"
#include "../common/diskstep.h"
#include "../common/hash.h"
#include "../common/heap.h"
#include "../common/log.h"

#define TKV__SNAP_MAGIC "TKVSNAP1"
#define TKV__INSTALL_MAGIC "TKVSNAPI"
#define TKV__SNAP_HDR 32
#define TKV__INSTALL_ID 16
#define TKV__MANIFEST_MAGIC "TKVSNAP2"
#define TKV__MANIFEST_HDR 48
#define TKV__STATE_PREFIX "tkv-state-"
#define TKV__FORK_RETRY_US 1000000

static uint64_t tkv__mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void tkv__put_u64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t tkv__get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* <dir>/tkv-state-<id>[.tmp] */
static void tkv__state_path(char *out,
                            size_t n,
                            const char *dir,
                            uint64_t id,
                            int tmp)
{
    snprintf(out, n, "%s/" TKV__STATE_PREFIX "%020llu%s", dir,
             (unsigned long long)id, tmp ? ".tmp" : "");
}

static int tkv__sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rv;
    if (fd < 0) {
        return -1;
    }
    rv = fsync(fd);
    close(fd);
    return rv;
}

static uint64_t tkv__fsm_index(struct tkv_fsm *f)
{
    return (uint64_t)raft_last_applied(f->raft);
}

static void tkv__stepper_free(struct tkv_fsm *f);

/* Drop the attempt in progress (child, memfd, stepper, buffers). */
static void tkv__snap_abort(struct tkv_fsm *f)
{
    if (f->pid > 0) {
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        f->pid = 0;
    }
    if (f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
    tkv__stepper_free(f);
    tkv_buf_close(&f->base);
    tkv_buf_close(&f->tail);
    f->tail_count = 0;
    f->active = 0;
}

/* ---- the child ---------------------------------------------------------- */

struct tkv__child_writer {
    int fd;
    size_t n;
    int failed;
    int pace;      /* a state file: each step on disk before the next */
    uint64_t off;  /* bytes written */
    struct tkv_hash hash;
};

/* The child (or the writer thread) writes a state file in paced steps
 * (common/diskstep.h), so the log's fsyncs never queue behind a whole
 * snapshot (the 140 MB file of 1M keys then takes about 1.1 s). */
#define TKV__STEP TKV_DISK_STEP

static char tkv__child_buf[TKV__STEP];

/* Put one step of a state file at *off: into the checksum, then a disk
 * step. -1 on a write error. Shared by the fork child and the writer
 * thread. */
static int tkv__state_put(int fd, const void *p, size_t n, uint64_t *off,
                          struct tkv_hash *hash)
{
    tkv_hash_update(hash, p, n);
    return tkv_disk_step(fd, p, n, off);
}

/* A state file complete: durable under its final name before raft may
 * point at it. */
static int tkv__state_seal(int fd, const char *tmp, const char *fin,
                           const char *dir)
{
    int rv = fdatasync(fd);
    if (close(fd) != 0) {
        rv = -1;
    }
    if (rv == 0 && (rename(tmp, fin) != 0 || tkv__sync_dir(dir) != 0)) {
        rv = -1;
    }
    return rv;
}

static void tkv__child_flush(struct tkv__child_writer *w)
{
    size_t off = 0;
    if (w->pace) {
        if (!w->failed &&
            tkv__state_put(w->fd, tkv__child_buf, w->n, &w->off, &w->hash) != 0) {
            w->failed = 1;
        }
        w->n = 0;
        return;
    }
    while (off < w->n && !w->failed) {
        ssize_t k = write(w->fd, tkv__child_buf + off, w->n - off);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            w->failed = 1;
            break;
        }
        off += (size_t)k;
    }
    w->off += w->n;
    w->n = 0;
}

static int tkv__child_write(void *data, const char *p, size_t len)
{
    struct tkv__child_writer *w = data;
    while (len > 0) {
        size_t room = sizeof tkv__child_buf - w->n;
        size_t k = len < room ? len : room;
        memcpy(tkv__child_buf + w->n, p, k);
        w->n += k;
        p += k;
        len -= k;
        if (w->n == sizeof tkv__child_buf) {
            tkv__child_flush(w);
        }
    }
    return w->failed ? -1 : 0;
}

static void tkv__child_main(struct tkv_fsm *f, int fd)
{
    struct tkv__child_writer w;
    char tmp[4096], fin[4096];
    msgpack_packer pk;
    int rv;

    memset(&w, 0, sizeof w);
    w.fd = fd;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* Serializing is background work: the nodes of a test cluster (and
     * the snapshots of all three, which fall due together) share the
     * cores with the loops that commit writes. At idle priority the child
     * takes only what they leave (write p99 during a snapshot: 14.9x the
     * baseline at normal priority, 7.5x at idle, bench/targets.sh). */
    {
        struct sched_param sp = {0};
        if (sched_setscheduler(0, SCHED_IDLE, &sp) != 0) {
            (void)setpriority(PRIO_PROCESS, 0, 19);
        }
    }
    if (f->dir != NULL) {
        tkv__state_path(tmp, sizeof tmp, f->dir, f->base_index, 1);
        tkv__state_path(fin, sizeof fin, f->dir, f->base_index, 0);
        w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (w.fd < 0) {
            _exit(2);
        }
        w.pace = 1;
        tkv_hash_init(&w.hash, 0);
    }
    msgpack_packer_init(&pk, &w, tkv__child_write);
    rv = tkv_sm_snapshot(&f->sm, &pk);
    tkv__child_flush(&w);
    if (rv != 0 || w.failed) {
        _exit(1);
    }
    if (f->dir != NULL) {
        if (tkv__state_seal(w.fd, tmp, fin, f->dir) != 0) {
            _exit(3);
        }
        f->shared[0] = w.off;
        f->shared[1] = tkv_hash_final(&w.hash);
    }
    _exit(0);
}

/* ---- stepped: the loop serializes, a thread writes ----------------------
 *
 * No fork: the loop writes the state with tkv_sm_snap_step a few keys at a
 * time, on at most 1/TKV__DUTY of its time, into a ring of buffers that a
 * thread of ours (idle priority) puts on disk in the child's paced steps.
 * A fork's child shares the heap copy-on-write, and each page the parent
 * then writes costs it a fault and a copy: on this machine's virtual CPUs
 * about 40 us each, 10-16k a second for the first seconds of every
 * snapshot under writes, which doubled the writes' p50. Stepping costs the
 * loop the serializing itself (about 0.5 s of CPU for 1M keys), spread
 * out; memory grows only by the entries that change while it runs. */
#define TKV__RING 4
#define TKV__DUTY 4        /* the loop gives it at most 1/4 of its time */
#define TKV__CREDIT_MAX 2000 /* us: what a long idle gap can save up */
#define TKV__STEP_KEYS 256 /* keys between looks at the clock (a page) */

struct tkv__stepper {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct tkv_buf buf[TKV__RING]; /* ring: [written, filled) are queued */
    unsigned filled;  /* under mu: buffers handed to the writer */
    unsigned written; /* under mu: buffers the writer has put on disk */
    int finish;       /* under mu: filled is final */
    int cancel;       /* under mu: stop now */
    int done;         /* under mu: the writer is over; failed says how */
    int failed;
    int open;         /* loop: buf[filled % RING] is being filled */
    int serialized;   /* loop: the stream is complete */
    int fd;
    uint64_t off;     /* writer: bytes on disk; then the file's length */
    struct tkv_hash hash;
    int64_t credit_us;  /* loop time it may still take; < 0: overdrawn */
    uint64_t last_us;
    const char *dir;
    char tmp[4096], fin[4096];
};

static void *tkv__writer_main(void *arg)
{
    struct tkv__stepper *st = arg;
    struct sched_param sp = {0};
    int failed = 0;

    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    pthread_mutex_lock(&st->mu);
    for (;;) {
        struct tkv_buf *b;
        while (!st->cancel && st->written == st->filled && !st->finish) {
            pthread_cond_wait(&st->cv, &st->mu);
        }
        if (st->cancel) {
            break;
        }
        if (st->written == st->filled) { /* finished, all on disk */
            pthread_mutex_unlock(&st->mu);
            failed = tkv__state_seal(st->fd, st->tmp, st->fin, st->dir) != 0;
            st->fd = -1;
            pthread_mutex_lock(&st->mu);
            break;
        }
        b = &st->buf[st->written % TKV__RING];
        pthread_mutex_unlock(&st->mu);
        failed = tkv__state_put(st->fd, b->data, b->len, &st->off,
                                &st->hash) != 0;
        pthread_mutex_lock(&st->mu);
        if (failed) {
            break;
        }
        st->written++;
    }
    st->failed = failed;
    st->done = 1;
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

static void tkv__stepper_free(struct tkv_fsm *f)
{
    struct tkv__stepper *st = f->stepper;
    int i;

    if (st == NULL) {
        return;
    }
    pthread_mutex_lock(&st->mu);
    st->cancel = 1;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    if (st->fd >= 0) { /* cut short: the tmp file goes */
        close(st->fd);
        (void)unlink(st->tmp);
    }
    for (i = 0; i < TKV__RING; i++) {
        tkv_buf_close(&st->buf[i]);
    }
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    tkv_sm_snap_abort(&f->sm);
    tkv_free(st);
    f->stepper = NULL;
}

/* Hand the buffer being filled to the writer (the last one if final). */
static void tkv__stepper_hand(struct tkv__stepper *st, int final)
{
    pthread_mutex_lock(&st->mu);
    st->filled++;
    st->finish = final;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
    st->open = 0;
}

/* Serialize what the loop's time share allows, while the ring has room.
 * 0, or a TKV_E code when the stream is lost. */
static int tkv__stepper_run(struct tkv_fsm *f)
{
    struct tkv__stepper *st = f->stepper;
    uint64_t now = tkv__mono_us(), deadline;
    int rv = 0, done = 0;

    st->credit_us += (int64_t)((now - st->last_us) / TKV__DUTY);
    if (st->credit_us > TKV__CREDIT_MAX) {
        st->credit_us = TKV__CREDIT_MAX;
    }
    st->last_us = now;
    /* a step of 256 keys can overrun its credit: the overrun is owed, so
     * the share holds on average however short the turns are */
    deadline = now + (st->credit_us > 0 ? (uint64_t)st->credit_us : 0);
    while (!st->serialized && rv == 0 && now < deadline) {
        struct tkv_buf *b;
        msgpack_packer pk;
        unsigned queued;

        pthread_mutex_lock(&st->mu);
        queued = st->filled - st->written;
        pthread_mutex_unlock(&st->mu);
        if (queued >= TKV__RING) {
            break; /* the writer is behind: wait for it */
        }
        b = &st->buf[st->filled % TKV__RING];
        if (!st->open) {
            tkv_buf_reset(b);
            st->open = 1;
        }
        msgpack_packer_init(&pk, b, tkv_buf_msgpack_write);
        do {
            rv = tkv_sm_snap_step(&f->sm, &pk, TKV__STEP_KEYS, &done);
            now = tkv__mono_us();
        } while (rv == 0 && !done && b->len < TKV__STEP && now < deadline);
        if (rv == 0 && b->failed) {
            rv = TKV_ENOMEM;
        }
        if (rv == 0 && (done || b->len >= TKV__STEP)) {
            st->serialized = done;
            tkv__stepper_hand(st, done);
        }
    }
    now = tkv__mono_us();
    st->credit_us -= (int64_t)(now - st->last_us);
    st->last_us = now;
    return rv;
}

static int tkv__stepper_start(struct tkv_fsm *f)
{
    struct tkv__stepper *st = tkv_malloc(sizeof *st);
    msgpack_packer pk;
    int i, rv;

    if (st == NULL) {
        return RAFT_NOMEM;
    }
    memset(st, 0, sizeof *st);
    for (i = 0; i < TKV__RING; i++) {
        tkv_buf_init(&st->buf[i]);
    }
    st->dir = f->dir;
    tkv__state_path(st->tmp, sizeof st->tmp, f->dir, f->base_index, 1);
    tkv__state_path(st->fin, sizeof st->fin, f->dir, f->base_index, 0);
    tkv_hash_init(&st->hash, 0);
    st->last_us = tkv__mono_us();
    st->fd = open(st->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (st->fd < 0) {
        tkv_log_error("snapshot: %s: %s", st->tmp, strerror(errno));
        tkv_free(st);
        return RAFT_IOERR;
    }
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    st->open = 1;
    msgpack_packer_init(&pk, &st->buf[0], tkv_buf_msgpack_write);
    rv = tkv_sm_snap_begin(&f->sm, &pk);
    if (rv == 0 && pthread_create(&st->thread, NULL, tkv__writer_main, st) != 0) {
        tkv_sm_snap_abort(&f->sm);
        rv = TKV_ENOMEM;
    }
    if (rv != 0) {
        close(st->fd);
        (void)unlink(st->tmp);
        tkv_buf_close(&st->buf[0]);
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
        tkv_free(st);
        return RAFT_NOMEM;
    }
    f->stepper = st;
    return 0;
}

/* 1 the state file is complete, 0 not yet, or a RAFT_ code. */
static int tkv__stepper_poll(struct tkv_fsm *f)
{
    struct tkv__stepper *st = f->stepper;
    int rv = tkv__stepper_run(f), done, failed;

    if (rv != 0) {
        tkv_log_error("snapshot at %llu: %s", (unsigned long long)f->base_index,
                      tkv_strerror(rv));
        return rv == TKV_ENOMEM ? RAFT_NOMEM : RAFT_IOERR;
    }
    pthread_mutex_lock(&st->mu);
    done = st->done;
    failed = st->failed;
    pthread_mutex_unlock(&st->mu);
    if (!done) {
        return 0;
    }
    if (failed) {
        tkv_log_error("snapshot at %llu: writing %s failed",
                      (unsigned long long)f->base_index, st->tmp);
        return RAFT_IOERR;
    }
    f->shared[0] = st->off;
    f->shared[1] = tkv_hash_final(&st->hash);
    tkv__stepper_free(f);
    return 1;
}

void tkv_fsm_step(struct tkv_fsm *f)
{
    if (f->stepper != NULL && !f->stepper->serialized) {
        /* an error is reported by the next snapshot() call's poll */
        (void)tkv__stepper_run(f);
    }
}

int tkv_fsm_stepping(const struct tkv_fsm *f)
{
    return f->stepper != NULL && !f->stepper->serialized;
}

/* ---- starting and polling ------------------------------------------------ */

static int tkv__snap_serialize_inline(struct tkv_fsm *f)
{
    msgpack_packer pk;
    int rv;
    tkv_buf_init(&f->base);
    /* Reserve roughly what the stream will take, to avoid regrowth. */
    tkv_buf_reserve(&f->base,
                    tkv_sm_bytes(&f->sm) + tkv_sm_count(&f->sm) * 24u + 4096u);
    msgpack_packer_init(&pk, &f->base, tkv_buf_msgpack_write);
    rv = tkv_sm_snapshot(&f->sm, &pk);
    if (rv != 0 || f->base.failed) {
        tkv_buf_close(&f->base);
        return rv != 0 ? rv : TKV_ENOMEM;
    }
    return 0;
}

static int tkv__snap_start(struct tkv_fsm *f)
{
    uint64_t t0 = tkv__mono_us();
    int rv;

    f->base_index = tkv__fsm_index(f);
    f->polls = 0;
    tkv_buf_init(&f->tail);
    f->tail_count = 0;
    f->started_us = t0;

    if (f->mode == TKV_SNAP_STEPPED && f->dir != NULL) {
        rv = tkv__stepper_start(f);
        if (rv != 0) {
            return rv;
        }
        f->active = 1;
        f->last_pause_us = tkv__mono_us() - t0;
        tkv_log_info("snapshot at index %llu: started in steps (loop paused "
                     "%.2f ms to begin, %zu keys)",
                     (unsigned long long)f->base_index,
                     (double)f->last_pause_us / 1000.0, tkv_sm_count(&f->sm));
        return 0;
    }
    if (f->mode != TKV_SNAP_FORK) {
        rv = tkv__snap_serialize_inline(f);
        if (rv != 0) {
            tkv_log_error("snapshot at %llu: serialize: %s",
                          (unsigned long long)f->base_index, tkv_strerror(rv));
            return RAFT_NOMEM;
        }
        f->active = 1;
        f->last_pause_us = tkv__mono_us() - t0;
        return 0;
    }

    if (f->dir != NULL) {
        f->shared[0] = 0;
        f->shared[1] = 0;
    } else {
        f->fd = memfd_create("tkv-snapshot", MFD_CLOEXEC);
        if (f->fd < 0) {
            tkv_log_error("snapshot: memfd_create: %s", strerror(errno));
            return RAFT_IOERR;
        }
    }
    tkv_heap_collapse_stop(); /* the child would split what it rebuilds */
    f->pid = fork();
    if (f->pid < 0) {
        tkv_log_error("snapshot: fork: %s", strerror(errno));
        f->pid = 0;
        if (f->fd >= 0) {
            close(f->fd);
            f->fd = -1;
        }
        return RAFT_NOMEM;
    }
    if (f->pid == 0) {
        tkv__child_main(f, f->fd); /* never returns */
    }
    f->active = 1;
    f->last_pause_us = tkv__mono_us() - t0;
    tkv_log_info(
        "snapshot at index %llu: started child %d (loop paused %.2f ms "
        "for fork, %zu keys)",
        (unsigned long long)f->base_index, (int)f->pid,
        (double)f->last_pause_us / 1000.0, tkv_sm_count(&f->sm));
    return 0;
}

/* 1 ready, 0 not yet, or a RAFT_ code when the attempt failed. */
static int tkv__snap_poll(struct tkv_fsm *f)
{
    int status;
    pid_t p;

    if (f->stepper != NULL) {
        return tkv__stepper_poll(f);
    }
    if (f->mode == TKV_SNAP_INLINE || f->mode == TKV_SNAP_STEPPED) {
        return 1; /* STEPPED without a dir serializes inline */
    }
    if (f->mode == TKV_SNAP_DEFERRED) {
        return ++f->polls > f->deferred_polls ? 1 : 0;
    }
    p = waitpid(f->pid, &status, WNOHANG);
    if (p == 0) {
        return 0;
    }
    if (p < 0 && errno == EINTR) {
        return 0;
    }
    f->pid = 0;
    /* the child no longer shares the heap: the huge pages our writes split
     * since the fork can be rebuilt */
    tkv_heap_collapse_start();
    if (p < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        tkv_log_error("snapshot at %llu: child failed (status %d)",
                      (unsigned long long)f->base_index, status);
        return RAFT_IOERR;
    }
    return 1;
}

/* The next snapshot is due after base x [0.75, 1.25] entries: the nodes of
 * a cluster apply the same entries, and with one threshold they would all
 * fork, serialize and write their snapshots at the same moment, on what
 * may be the same cores and disk. */
static void tkv__snap_rearm(struct tkv_fsm *f)
{
    unsigned base = f->threshold_base;
    uint64_t x;
    if (base == 0 || f->raft == NULL) {
        return;
    }
    x = f->jitter;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f->jitter = x;
    raft_set_snapshot_threshold(
        f->raft, base - base / 4 + (unsigned)(x % (base / 2 + 1)));
}

void tkv_fsm_set_threshold(struct tkv_fsm *f, unsigned base, uint64_t seed)
{
    f->threshold_base = base;
    f->jitter = seed * 0x9E3779B97F4A7C15ull | 1;
    tkv__snap_rearm(f);
}

/* Move the finished attempt into out[] for raft. */
static int tkv__snap_handover(struct tkv_fsm *f,
                              struct raft_buffer *bufs[],
                              unsigned *n_bufs)
{
    const void *base = NULL;
    size_t base_len;
    unsigned n = 0;
    int manifest = (f->mode == TKV_SNAP_FORK || f->mode == TKV_SNAP_STEPPED) &&
                   f->dir != NULL;

    if (manifest) {
        base_len = f->shared[0];
        if (base_len == 0) {
            tkv_log_error("snapshot: the child wrote no state");
            return RAFT_IOERR;
        }
    } else if (f->mode == TKV_SNAP_FORK) {
        struct stat st;
        void *map;
        if (fstat(f->fd, &st) != 0 || st.st_size <= 0) {
            tkv_log_error("snapshot: empty memfd");
            return RAFT_IOERR;
        }
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, f->fd, 0);
        if (map == MAP_FAILED) {
            tkv_log_error("snapshot: mmap: %s", strerror(errno));
            return RAFT_NOMEM;
        }
        f->map = map;
        f->map_len = (size_t)st.st_size;
        f->map_fd = f->fd;
        f->fd = -1;
        base = map;
        base_len = f->map_len;
    } else {
        f->out_base = f->base;
        tkv_buf_init(&f->base);
        base = f->out_base.data;
        base_len = f->out_base.len;
    }
    f->out_tail = f->tail;
    tkv_buf_init(&f->tail);

    memcpy(f->header, manifest ? TKV__MANIFEST_MAGIC : TKV__SNAP_MAGIC, 8);
    tkv__put_u64(f->header + 8, base_len);
    tkv__put_u64(f->header + 16, f->out_tail.len);
    tkv__put_u64(f->header + 24, f->tail_count);
    f->out[n].base = f->header;
    if (manifest) {
        tkv__put_u64(f->header + 32, f->base_index);
        tkv__put_u64(f->header + 40, f->shared[1]);
        f->out[n++].len = TKV__MANIFEST_HDR;
        f->keep[0] = f->keep[1];
        f->keep[1] = f->base_index;
    } else {
        f->out[n++].len = TKV__SNAP_HDR;
        f->out[n].base = (void *)base;
        f->out[n++].len = base_len;
    }
    if (f->out_tail.len > 0) {
        f->out[n].base = f->out_tail.data;
        f->out[n++].len = f->out_tail.len;
    }
    *bufs = f->out;
    *n_bufs = n;
    f->out_busy = 1;
    f->active = 0;
    f->last_snapshot_index = tkv__fsm_index(f);
    f->snapshots_taken++;
    tkv_log_info(
        "snapshot at index %llu: %zu bytes of state at %llu + %zu "
        "replayed entries, %.1f ms after start%s",
        (unsigned long long)f->last_snapshot_index, base_len,
        (unsigned long long)f->base_index, f->tail_count,
        (double)(tkv__mono_us() - f->started_us) / 1000.0,
        manifest ? " (state written to its own file)" : "");
    f->tail_count = 0;
    tkv__snap_rearm(f);
    return 0;
}

/* ---- raft_fsm hooks ------------------------------------------------------ */

static int tkv__fsm_apply(struct raft_fsm *rf,
                          const struct raft_buffer *buf,
                          void **result)
{
    struct tkv_fsm *f = rf->data;
    uint64_t index = tkv__fsm_index(f) + 1;
    const struct tkv_result *res = NULL;
    size_t n = 0;
    struct tkv_err err;
    int rv;

    *result = NULL;
    tkv_err_clear(&err);
    rv = tkv_sm_apply(&f->sm, index, buf->base, buf->len, &res, &n, &err);
    if (rv == TKV_ECORRUPT) {
        tkv_log_warn("entry %llu is corrupt, skipped: %s",
                     (unsigned long long)index, err.msg);
        res = NULL;
        n = 0;
    } else if (rv != 0) {
        tkv_log_error("apply entry %llu: %s (%s); stopping",
                      (unsigned long long)index, tkv_strerror(rv), err.msg);
        abort();
    }
    if (f->active) {
        uint8_t hdr[16];
        tkv__put_u64(hdr, index);
        tkv__put_u64(hdr + 8, buf->len);
        if (tkv_buf_append(&f->tail, hdr, sizeof hdr) != 0 ||
            tkv_buf_append(&f->tail, buf->base, buf->len) != 0 ||
            tkv_buf_pad(&f->tail, 8) != 0) {
            tkv_log_warn("snapshot tail: out of memory; attempt dropped");
            tkv__snap_abort(f);
        } else {
            f->tail_count++;
        }
    }
    if (f->on_apply != NULL) {
        f->on_apply(f, index, res, n);
    }
    return 0;
}

static int tkv__fsm_snapshot(struct raft_fsm *rf,
                             struct raft_buffer *bufs[],
                             unsigned *n_bufs)
{
    struct tkv_fsm *f = rf->data;
    int rv;

    assert(!f->out_busy);
    if (!f->active) {
        if ((f->mode == TKV_SNAP_FORK || f->mode == TKV_SNAP_STEPPED) &&
            f->started_us != 0 &&
            tkv__mono_us() - f->started_us < TKV__FORK_RETRY_US) {
            return RAFT_BUSY; /* a recent attempt failed: back off */
        }
        rv = tkv__snap_start(f);
        if (rv != 0) {
            tkv__snap_abort(f);
            return rv;
        }
    }
    rv = tkv__snap_poll(f);
    if (rv == 0) {
        return RAFT_BUSY;
    }
    if (rv < 0 || rv > 1) {
        tkv__snap_abort(f);
        return rv;
    }
    rv = tkv__snap_handover(f, bufs, n_bufs);
    if (rv != 0) {
        tkv__snap_abort(f);
        return rv;
    }
    f->started_us = 0;
    return 0;
}

/* raft 0.22 calls this right after snapshot(), on the loop thread: the
 * buffers are complete already, nothing is left to do. */
static int tkv__fsm_snapshot_async(struct raft_fsm *rf,
                                   struct raft_buffer *bufs[],
                                   unsigned *n_bufs)
{
    (void)rf;
    (void)bufs;
    (void)n_bufs;
    return 0;
}

/* Unmapping the memfd and closing it (which frees its pages) take
 * 0.1-0.2 s at a million keys: done on a thread of their own, off the
 * loop. */
struct tkv__release {
    void *map;
    size_t len;
    int fd;
};

static void *tkv__release_main(void *arg)
{
    struct tkv__release *rel = arg;
    munmap(rel->map, rel->len);
    close(rel->fd);
    free(rel);
    return NULL;
}

static void tkv__release_map(struct tkv_fsm *f, int on_thread)
{
    struct tkv__release *rel = on_thread ? malloc(sizeof *rel) : NULL;
    pthread_attr_t attr;
    pthread_t th;
    int rv = -1;

    if (rel != NULL && pthread_attr_init(&attr) == 0) {
        rel->map = f->map;
        rel->len = f->map_len;
        rel->fd = f->map_fd;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rv = pthread_create(&th, &attr, tkv__release_main, rel);
        pthread_attr_destroy(&attr);
    }
    if (rv != 0) { /* no thread (or closing): do it here */
        free(rel);
        munmap(f->map, f->map_len);
        close(f->map_fd);
    }
    f->map = NULL;
    f->map_fd = -1;
}

static void tkv__fsm_release(struct tkv_fsm *f, int on_thread)
{
    if (f->map != NULL) {
        tkv__release_map(f, on_thread);
    }
    tkv_buf_close(&f->out_base);
    tkv_buf_close(&f->out_tail);
    f->out_busy = 0;
}

/* raft 0.22 calls this once raft_uv has written the snapshot (and deleted
 * its older ones), or when it is shutting down. */
static int tkv__fsm_snapshot_finalize(struct raft_fsm *rf,
                                      struct raft_buffer *bufs[],
                                      unsigned *n_bufs)
{
    tkv__fsm_release(rf->data, 1);
    tkv_fsm_gc(rf->data);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Restore base, then re-apply the tail; the tail's framing is checked
 * before the state is touched. */
static int tkv__restore_parts(struct tkv_sm *sm,
                              const uint8_t *base,
                              uint64_t base_len,
                              const uint8_t *tail,
                              uint64_t tail_len,
                              uint64_t tail_count,
                              struct tkv_err *err)
{
    const uint8_t *p = tail, *end = tail + tail_len;
    uint64_t i;
    int rv;

    for (i = 0; i < tail_count; i++) {
        uint64_t elen;
        if ((size_t)(end - p) < 16) {
            return tkv_err_set(err, TKV_ECORRUPT, "snapshot: short tail");
        }
        elen = tkv__get_u64(p + 8);
        /* padded entry within the tail (offsets: p never passes end) */
        if (elen > (size_t)(end - p) - 16 ||
            16 + ((elen + 7) & ~(uint64_t)7) > (size_t)(end - p)) {
            return tkv_err_set(err, TKV_ECORRUPT, "snapshot: short tail");
        }
        p += 16 + ((elen + 7) & ~(uint64_t)7);
    }
    if (p != end) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: trailing bytes");
    }

    rv = tkv_sm_restore(sm, base, base_len, err);
    if (rv != 0) {
        return rv;
    }
    p = tail;
    for (i = 0; i < tail_count; i++) {
        const struct tkv_result *res;
        size_t n;
        uint64_t index = tkv__get_u64(p);
        uint64_t elen = tkv__get_u64(p + 8);
        rv = tkv_sm_apply(sm, index, p + 16, elen, &res, &n, err);
        if (rv != 0 && rv != TKV_ECORRUPT) {
            return rv;
        }
        p += 16 + ((elen + 7) & ~(uint64_t)7);
    }
    return 0;
}

/* A whole snapshot ("TKVSNAP1", or "TKVSNAPI" with its index and term at
 * the end) split into its parts, lengths checked. */
struct tkv__whole {
    const uint8_t *base, *tail;
    uint64_t base_len, tail_len, tail_count;
};

static int tkv__whole_parse(const uint8_t *buf,
                            size_t len,
                            struct tkv__whole *w,
                            struct tkv_err *err)
{
    if (len >= TKV__SNAP_HDR + TKV__INSTALL_ID &&
        memcmp(buf, TKV__INSTALL_MAGIC, 8) == 0) {
        len -= TKV__INSTALL_ID; /* the index and term at the end */
    } else if (len < TKV__SNAP_HDR || memcmp(buf, TKV__SNAP_MAGIC, 8) != 0) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: bad header");
    }
    w->base_len = tkv__get_u64(buf + 8);
    w->tail_len = tkv__get_u64(buf + 16);
    w->tail_count = tkv__get_u64(buf + 24);
    if (w->base_len > len - TKV__SNAP_HDR ||
        w->tail_len != len - TKV__SNAP_HDR - w->base_len) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: bad lengths");
    }
    w->base = buf + TKV__SNAP_HDR;
    w->tail = w->base + w->base_len;
    return 0;
}

int tkv_fsm_restore_bytes(struct tkv_sm *sm,
                          const uint8_t *buf,
                          size_t len,
                          struct tkv_err *err)
{
    struct tkv__whole w;
    int rv = tkv__whole_parse(buf, len, &w, err);
    if (rv != 0) {
        return rv;
    }
    return tkv__restore_parts(sm, w.base, w.base_len, w.tail, w.tail_len,
                              w.tail_count, err);
}

/* ---- state files (manifests) --------------------------------------------- */

struct tkv__manifest {
    uint64_t base_len, tail_len, tail_count, id, hash;
    const uint8_t *tail;
};

static int tkv__is_manifest(const uint8_t *buf, size_t len)
{
    return len >= 8 && memcmp(buf, TKV__MANIFEST_MAGIC, 8) == 0;
}

static int tkv__manifest_parse(const uint8_t *buf,
                               size_t len,
                               struct tkv__manifest *m,
                               struct tkv_err *err)
{
    if (len < TKV__MANIFEST_HDR || !tkv__is_manifest(buf, len)) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: bad manifest");
    }
    m->base_len = tkv__get_u64(buf + 8);
    m->tail_len = tkv__get_u64(buf + 16);
    m->tail_count = tkv__get_u64(buf + 24);
    m->id = tkv__get_u64(buf + 32);
    m->hash = tkv__get_u64(buf + 40);
    m->tail = buf + TKV__MANIFEST_HDR;
    if (m->base_len == 0 || m->tail_len != len - TKV__MANIFEST_HDR) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: bad manifest lengths");
    }
    return 0;
}

/* Map the state file m names, checked against its length and hash. */
static int tkv__state_map(const char *dir,
                          const struct tkv__manifest *m,
                          void **map,
                          struct tkv_err *err)
{
    char path[4096];
    struct stat st;
    int fd;

    if (dir == NULL) {
        return tkv_err_set(err, TKV_ECORRUPT,
                           "snapshot: the state is in a file, and this node "
                           "keeps none");
    }
    tkv__state_path(path, sizeof path, dir, m->id, 0);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return tkv_err_set(err, TKV_EIO, "snapshot: open %s: %s", path,
                           strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        st.st_size = -1;
    }
    if ((uint64_t)st.st_size != m->base_len) {
        close(fd);
        return tkv_err_set(err, TKV_ECORRUPT,
                           "snapshot: %s has %lld bytes, the manifest says "
                           "%llu",
                           path, (long long)st.st_size,
                           (unsigned long long)m->base_len);
    }
    *map = mmap(NULL, (size_t)m->base_len, PROT_READ, MAP_PRIVATE | MAP_POPULATE,
                fd, 0);
    close(fd);
    if (*map == MAP_FAILED) {
        return tkv_err_set(err, TKV_ENOMEM, "snapshot: mmap %s: %s", path,
                           strerror(errno));
    }
    if (tkv_hash64(0, *map, (size_t)m->base_len) != m->hash) {
        munmap(*map, (size_t)m->base_len);
        return tkv_err_set(err, TKV_ECORRUPT,
                           "snapshot: %s does not match its hash", path);
    }
    return 0;
}

static int tkv__restore_manifest(struct tkv_fsm *f,
                                 const uint8_t *buf,
                                 size_t len,
                                 struct tkv_err *err)
{
    struct tkv__manifest m;
    void *map;
    int rv;

    rv = tkv__manifest_parse(buf, len, &m, err);
    if (rv == 0) {
        rv = tkv__state_map(f->dir, &m, &map, err);
    }
    if (rv != 0) {
        return rv;
    }
    rv = tkv__restore_parts(&f->sm, map, m.base_len, m.tail, m.tail_len,
                            m.tail_count, err);
    munmap(map, (size_t)m.base_len);
    if (rv == 0) {
        f->keep[0] = 0;
        f->keep[1] = m.id;
    }
    return rv;
}

int tkv_fsm_expand(const char *dir,
                   const struct raft_buffer *in,
                   uint64_t index,
                   uint64_t term,
                   struct raft_buffer *out,
                   struct tkv_err *err)
{
    struct tkv__manifest m;
    struct tkv__whole w;
    void *map = NULL;
    uint8_t *whole;
    size_t len;
    int rv;

    if (tkv__is_manifest(in->base, in->len)) {
        rv = tkv__manifest_parse(in->base, in->len, &m, err);
        if (rv == 0) {
            rv = tkv__state_map(dir, &m, &map, err);
        }
        if (rv != 0) {
            return rv;
        }
        w.base = map;
        w.base_len = m.base_len;
        w.tail = m.tail;
        w.tail_len = m.tail_len;
        w.tail_count = m.tail_count;
    } else {
        rv = tkv__whole_parse(in->base, in->len, &w, err);
        if (rv != 0) {
            return rv;
        }
    }
    len = TKV__SNAP_HDR + (size_t)w.base_len + (size_t)w.tail_len +
          TKV__INSTALL_ID;
    whole = raft_malloc(len);
    if (whole != NULL) {
        memcpy(whole, TKV__INSTALL_MAGIC, 8);
        tkv__put_u64(whole + 8, w.base_len);
        tkv__put_u64(whole + 16, w.tail_len);
        tkv__put_u64(whole + 24, w.tail_count);
        memcpy(whole + TKV__SNAP_HDR, w.base, (size_t)w.base_len);
        memcpy(whole + TKV__SNAP_HDR + w.base_len, w.tail, (size_t)w.tail_len);
        tkv__put_u64(whole + len - 16, index);
        tkv__put_u64(whole + len - 8, term);
    }
    if (map != NULL) {
        munmap(map, (size_t)w.base_len);
    }
    if (whole == NULL) {
        return tkv_err_set(err, TKV_ENOMEM, "snapshot: out of memory");
    }
    out->base = whole;
    out->len = len;
    return 0;
}

int tkv_fsm_install_id(const struct raft_buffer *data,
                       uint64_t *index,
                       uint64_t *term)
{
    const uint8_t *b = data->base;
    struct tkv__whole w;

    /* Only from an install whose lengths add up: the id is its last 16
     * bytes, which a damaged header could place anywhere. */
    if (data->len < TKV__SNAP_HDR + TKV__INSTALL_ID ||
        memcmp(b, TKV__INSTALL_MAGIC, 8) != 0 ||
        tkv__whole_parse(b, data->len, &w, NULL) != 0) {
        return 0;
    }
    *index = tkv__get_u64(b + data->len - 16);
    *term = tkv__get_u64(b + data->len - 8);
    return 1;
}

void tkv_fsm_gc(struct tkv_fsm *f)
{
    struct dirent *e;
    DIR *d;

    if (f->dir == NULL || (d = opendir(f->dir)) == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        unsigned long long id;
        char rest[8] = "";
        const char *name = e->d_name;
        int k;

        if (strncmp(name, TKV__STATE_PREFIX, strlen(TKV__STATE_PREFIX)) != 0) {
            continue;
        }
        k = sscanf(name + strlen(TKV__STATE_PREFIX), "%20llu%7s", &id, rest);
        if (k < 1 || (f->active && id == f->base_index)) {
            continue; /* not ours, or being written */
        }
        if (k == 1 && id != 0 && (id == f->keep[0] || id == f->keep[1])) {
            continue;
        }
        if (unlinkat(dirfd(d), name, 0) == 0) {
            tkv_log_info("snapshot: deleted %s, which no snapshot needs", name);
        }
    }
    closedir(d);
}

int tkv_fsm_set_dir(struct tkv_fsm *f, const char *dir, struct tkv_err *err)
{
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
        return tkv_err_set(err, TKV_ENOMEM, "snapshot: mmap: %s",
                           strerror(errno));
    }
    f->dir = tkv_strdup(dir);
    if (f->dir == NULL) {
        munmap(page, 4096);
        return tkv_err_set(err, TKV_ENOMEM, "out of memory");
    }
    f->shared = page;
    return 0;
}

static int tkv__fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct tkv_fsm *f = rf->data;
    struct tkv_err err;
    int rv;

    tkv_err_clear(&err);
    if (f->active) {
        tkv_log_info("snapshot attempt at %llu dropped: state replaced",
                     (unsigned long long)f->base_index);
        tkv__snap_abort(f);
    }
    if (tkv__is_manifest(buf->base, buf->len)) {
        rv = tkv__restore_manifest(f, buf->base, buf->len, &err);
    } else {
        rv = tkv_fsm_restore_bytes(&f->sm, buf->base, buf->len, &err);
        f->keep[0] = f->keep[1] = 0; /* older state files: replaced */
    }
    if (rv != 0) {
        tkv_log_error("restore snapshot: %s", err.msg);
        if (rv == TKV_ENOMEM) {
            abort(); /* the state may be half replayed */
        }
        return RAFT_CORRUPT;
    }
    tkv_log_info("restored snapshot: %zu keys, %zu bytes, sm time %lld",
                 tkv_sm_count(&f->sm), tkv_sm_bytes(&f->sm),
                 (long long)f->sm.now);
    raft_free(buf->base);
    f->restored = 1;
    return 0;
}

int tkv_fsm_init(struct tkv_fsm *f, int mode, struct tkv_err *err)
{
    struct tkv_sm_config cfg;
    int rv;

    memset(f, 0, sizeof *f);
    tkv_sm_config_default(&cfg);
    rv = tkv_sm_init(&f->sm, &cfg);
    if (rv != 0) {
        return tkv_err_set(err, rv, "state machine: %s", tkv_strerror(rv));
    }
    f->mode = mode;
    f->deferred_polls = 3;
    f->fd = -1;
    f->map_fd = -1;
    tkv_buf_init(&f->base);
    tkv_buf_init(&f->tail);
    tkv_buf_init(&f->out_base);
    tkv_buf_init(&f->out_tail);
    f->raft_fsm.version = 3;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = tkv__fsm_apply;
    f->raft_fsm.snapshot = tkv__fsm_snapshot;
    f->raft_fsm.restore = tkv__fsm_restore;
    f->raft_fsm.snapshot_finalize = tkv__fsm_snapshot_finalize;
    f->raft_fsm.snapshot_async = tkv__fsm_snapshot_async;
    return 0;
}

void tkv_fsm_close(struct tkv_fsm *f)
{
    tkv__snap_abort(f);
    tkv_heap_collapse_stop();
    if (f->out_busy) {
        tkv__fsm_release(f, 0);
    }
    tkv_sm_close(&f->sm);
    if (f->shared != NULL) {
        munmap(f->shared, 4096);
        f->shared = NULL;
    }
    tkv_free(f->dir);
    f->dir = NULL;
}
