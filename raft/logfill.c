/* raft_uv's log segments written full of zeros: see logfill.h. */
#define _GNU_SOURCE
#include "logfill.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/diskstep.h"

typedef int (*tkv__fallocate_fn)(int fd, off_t offset, off_t len);

/* An unpaced fill writes this much at a time. */
#define TKV__BURST (2u << 20)

static atomic_int tkv__on;
static atomic_uint_fast64_t tkv__filled;
static pthread_t tkv__loop_thread;
_Alignas(4096) static const char tkv__zeros[TKV__BURST];

void tkv_logfill_enable(int on)
{
    tkv__loop_thread = pthread_self();
    atomic_store(&tkv__on, on != 0);
}

int tkv_logfill_enabled(void)
{
    return atomic_load(&tkv__on);
}

uint64_t tkv_logfill_count(void)
{
    return (uint64_t)atomic_load(&tkv__filled);
}

/* libc's posix_fallocate, the next definition after ours. */
static int tkv__libc_fallocate(int fd, off_t offset, off_t len)
{
    static _Atomic(tkv__fallocate_fn) libc_fn;
    tkv__fallocate_fn fn = atomic_load(&libc_fn);

    if (fn == NULL) {
        /* POSIX's way to turn dlsym's answer into a function pointer. */
        *(void **)&fn = dlsym(RTLD_NEXT, "posix_fallocate");
        if (fn == NULL) {
            return ENOSYS;
        }
        atomic_store(&libc_fn, fn);
    }
    return fn(fd, offset, len);
}

/* Zeros over [0, len) of fd, then durable. An errno.
 *
 * Paced (common/diskstep.h) when called from libuv's threadpool: raft_uv
 * prepares the next segments there while the log is being written. From
 * the loop thread, raft_uv is starting (it prepares its first two
 * segments inline, before any log write), and the node is not serving
 * yet: then at full speed, 2 MiB at a time (8 MiB: about 12 ms here,
 * against 55-80 ms paced).
 *
 * Direct I/O where the file system has it (raft_uv turns it on for its
 * own writes later anyway): no page cache to fill and write back, which on
 * two cores cost the loops CPU at high write rates. */
static int tkv__fill(int fd, off_t len)
{
    uint64_t off = 0;
    int flags = fcntl(fd, F_GETFL);
    int direct = flags >= 0 && len % 4096 == 0 &&
                 fcntl(fd, F_SETFL, flags | O_DIRECT) == 0;
    int paced = !pthread_equal(pthread_self(), tkv__loop_thread);
    size_t step = paced ? TKV_DISK_STEP : TKV__BURST;
    int rv = 0;

    while (off < (uint64_t)len) {
        uint64_t left = (uint64_t)len - off;
        size_t n = left < step ? (size_t)left : step;
        ssize_t k;

        if (paced) {
            if (tkv_disk_step(fd, tkv__zeros, n, &off) != 0) {
                rv = errno;
                break;
            }
            continue;
        }
        k = pwrite(fd, tkv__zeros, n, (off_t)off);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) {
                continue;
            }
            rv = k < 0 ? errno : EIO;
            break;
        }
        off += (uint64_t)k;
    }
    if (direct) {
        (void)fcntl(fd, F_SETFL, flags);
    }
    if (rv == 0 && fdatasync(fd) != 0) {
        rv = errno;
    }
    /* Buffered: the zeros are on disk, and raft_uv's O_DIRECT writes never
     * read them back through the page cache. */
    if (rv == 0 && !direct) {
        (void)posix_fadvise(fd, 0, len, POSIX_FADV_DONTNEED);
    }
    return rv;
}

/* Stands in for libc's (see logfill.h). Same contract: 0 or an errno
 * value. libc's allocates first, so the file has its full size from the
 * start, as raft_uv expects: one cut short by a crash is all zeros of that
 * size, which raft_uv removes at start as never written. */
int posix_fallocate(int fd, off_t offset, off_t len)
{
    struct stat st;
    int fresh;
    int rv;

    fresh = atomic_load(&tkv__on) && offset == 0 && len > 0 &&
            fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0;
    rv = tkv__libc_fallocate(fd, offset, len);
    if (rv != 0 || !fresh) {
        return rv;
    }
    rv = tkv__fill(fd, len);
    if (rv == 0) {
        atomic_fetch_add(&tkv__filled, 1);
    }
    return rv;
}
