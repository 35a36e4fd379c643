/* FSM glue: apply, snapshot (fork + memfd + replayed tail), restore.
 *
 * Happy path of a snapshot (see fsm.h for why):
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
 *   "TKVSNAP1" | u64 base_len | u64 tail_len | u64 tail_count
 *   base: tkv_sm_snapshot() stream
 *   tail: tail_count x { u64 index | u64 len | len bytes | zero pad to 8 } */
#define _GNU_SOURCE
#include "fsm.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
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
#include "../common/log.h"

#define TKV__SNAP_MAGIC "TKVSNAP1"
#define TKV__SNAP_HDR 32
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

static uint64_t tkv__fsm_index(struct tkv_fsm *f)
{
    return (uint64_t)raft_last_applied(f->raft);
}

/* Drop the attempt in progress (child, memfd, buffers). */
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
};

static char tkv__child_buf[1 << 20];

static void tkv__child_flush(struct tkv__child_writer *w)
{
    size_t off = 0;
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
    struct tkv__child_writer w = {fd, 0, 0};
    msgpack_packer pk;
    int rv;

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
    msgpack_packer_init(&pk, &w, tkv__child_write);
    rv = tkv_sm_snapshot(&f->sm, &pk);
    tkv__child_flush(&w);
    _exit(rv == 0 && !w.failed ? 0 : 1);
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

    f->fd = memfd_create("tkv-snapshot", MFD_CLOEXEC);
    if (f->fd < 0) {
        tkv_log_error("snapshot: memfd_create: %s", strerror(errno));
        return RAFT_IOERR;
    }
    f->pid = fork();
    if (f->pid < 0) {
        tkv_log_error("snapshot: fork: %s", strerror(errno));
        f->pid = 0;
        close(f->fd);
        f->fd = -1;
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

    if (f->mode == TKV_SNAP_INLINE) {
        return 1;
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
    const void *base;
    size_t base_len;
    unsigned n = 0;

    if (f->mode == TKV_SNAP_FORK) {
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

    memcpy(f->header, TKV__SNAP_MAGIC, 8);
    tkv__put_u64(f->header + 8, base_len);
    tkv__put_u64(f->header + 16, f->out_tail.len);
    tkv__put_u64(f->header + 24, f->tail_count);
    f->out[n].base = f->header;
    f->out[n++].len = TKV__SNAP_HDR;
    f->out[n].base = (void *)base;
    f->out[n++].len = base_len;
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
        "replayed entries, %.1f ms after start",
        (unsigned long long)f->last_snapshot_index, base_len,
        (unsigned long long)f->base_index, f->tail_count,
        (double)(tkv__mono_us() - f->started_us) / 1000.0);
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
        if (f->mode == TKV_SNAP_FORK && f->started_us != 0 &&
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

static int tkv__fsm_snapshot_finalize(struct raft_fsm *rf,
                                      struct raft_buffer *bufs[],
                                      unsigned *n_bufs)
{
    tkv__fsm_release(rf->data, 1);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

int tkv_fsm_restore_bytes(struct tkv_sm *sm,
                          const uint8_t *buf,
                          size_t len,
                          struct tkv_err *err)
{
    uint64_t base_len, tail_len, tail_count, i;
    const uint8_t *p, *end;
    int rv;

    if (len < TKV__SNAP_HDR || memcmp(buf, TKV__SNAP_MAGIC, 8) != 0) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: bad header");
    }
    base_len = tkv__get_u64(buf + 8);
    tail_len = tkv__get_u64(buf + 16);
    tail_count = tkv__get_u64(buf + 24);
    if (base_len > len - TKV__SNAP_HDR ||
        tail_len != len - TKV__SNAP_HDR - base_len) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: bad lengths");
    }
    /* Check the tail's framing before touching the state. */
    p = buf + TKV__SNAP_HDR + base_len;
    end = p + tail_len;
    for (i = 0; i < tail_count; i++) {
        uint64_t elen;
        if ((size_t)(end - p) < 16) {
            return tkv_err_set(err, TKV_ECORRUPT, "snapshot: short tail");
        }
        elen = tkv__get_u64(p + 8);
        if (elen > (size_t)(end - p) - 16) {
            return tkv_err_set(err, TKV_ECORRUPT, "snapshot: short tail");
        }
        p += 16 + ((elen + 7) & ~(uint64_t)7);
        if (p > end) {
            return tkv_err_set(err, TKV_ECORRUPT, "snapshot: short tail");
        }
    }
    if (p != end) {
        return tkv_err_set(err, TKV_ECORRUPT, "snapshot: trailing bytes");
    }

    rv = tkv_sm_restore(sm, buf + TKV__SNAP_HDR, base_len, err);
    if (rv != 0) {
        return rv;
    }
    p = buf + TKV__SNAP_HDR + base_len;
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
    rv = tkv_fsm_restore_bytes(&f->sm, buf->base, buf->len, &err);
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
    if (f->out_busy) {
        tkv__fsm_release(f, 0);
    }
    tkv_sm_close(&f->sm);
}
