/* Writing a large file beside the raft log without crowding its fsyncs.
 *
 * The log's writes are small and synchronous (O_DIRECT + RWF_DSYNC), and
 * every write waits on them. A large file written at full speed fills the
 * device queue in front of them: on this machine a 1 MiB step without a
 * pause halved the log fdatasyncs/s of a writer beside it and doubled their
 * p99; 256 KiB steps, each on disk before the next (sync_file_range) with
 * 1 ms between, left both as they were. Used by the snapshot state files
 * (raft/fsm.c: fork child and writer thread) and by the zero-filling of
 * log segments (raft/logfill.c). Never on the loop thread: a step blocks. */
#ifndef TKV_DISKSTEP_H
#define TKV_DISKSTEP_H

#include <stddef.h>
#include <stdint.h>

#define TKV_DISK_STEP (256u << 10)
#define TKV_DISK_STEP_GAP_NS 1000000L

/* Write n bytes (n <= TKV_DISK_STEP for the pacing to hold) at *off, whole,
 * wait until they are on disk, advance *off, then pause. 0, or -1 with
 * errno set on a write or sync error. */
int tkv_disk_step(int fd, const void *p, size_t n, uint64_t *off);

#endif /* TKV_DISKSTEP_H */
