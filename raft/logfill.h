/* raft_uv's log segments, written full of zeros before they are used.
 *
 * raft_uv prepares each open segment (8 MiB) ahead of use, in libuv's
 * threadpool, with posix_fallocate(), and then appends entries to it with
 * O_DIRECT writes carrying RWF_DSYNC, submitted with RWF_NOWAIT (io_submit).
 * On ext4 and XFS, fallocate leaves the range as "unwritten" extents: the
 * first write into each block must convert its extent, a metadata change
 * that RWF_DSYNC has to commit to the journal, and that RWF_NOWAIT refuses
 * (EAGAIN), so raft_uv resubmits that write blocking from the threadpool.
 * One log write in 13 took that path at 1 write in flight, and nearly one
 * in two at 16 (strace of three nodes; 256-byte values): each such write
 * costs a journal commit and two thread hand-offs, on the leader and on
 * the followers alike, in the commit path of every write waiting on it.
 *
 * When turned on, tkv's posix_fallocate() (logfill.c) stands in for libc's:
 * libraft calls it through its PLT, and a definition in the executable is
 * found first. For a new, empty file allocated from offset 0 (how raft_uv
 * creates segments and its I/O probe file) it allocates with libc's, then
 * writes the range full of zeros in paced steps (common/diskstep.h) and
 * syncs it, so every later log write overwrites written blocks: data only, nothing for the
 * journal. PostgreSQL zero-fills new WAL segments for the same reason
 * (wal_init_zero). Every other call, and every call while turned off, is
 * libc's. What a file reads back is the same either way: zeros.
 *
 * Cost: each segment is written twice, once as zeros ahead of use. On a
 * copy-on-write file system (btrfs, ZFS) overwriting never happens in
 * place, so the zeros buy nothing there: --log-zero-fill 0. */
#ifndef TKV_LOGFILL_H
#define TKV_LOGFILL_H

#include <stdint.h>

/* Process-wide; off until turned on (the node turns it on unless
 * --log-zero-fill 0). Call it on the loop thread before raft_uv starts:
 * that thread is then the one whose fills run at full speed (raft_uv
 * starting), every other thread's are paced (its threadpool). */
void tkv_logfill_enable(int on);
int tkv_logfill_enabled(void);

/* Files zero-filled so far by this process. */
uint64_t tkv_logfill_count(void);

#endif /* TKV_LOGFILL_H */
