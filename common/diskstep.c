#define _GNU_SOURCE
#include "diskstep.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

int tkv_disk_step(int fd, const void *p, size_t n, uint64_t *off)
{
    struct timespec gap = {0, TKV_DISK_STEP_GAP_NS};
    size_t done = 0;

    while (done < n) {
        ssize_t k = pwrite(fd, (const char *)p + done, n - done,
                           (off_t)(*off + done));
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        done += (size_t)k;
    }
    /* On disk before returning: the device queue then never holds more than
     * one step of ours in front of the log's writes. */
    if (n > 0 && sync_file_range(fd, (off64_t)*off, (off64_t)n,
                                 SYNC_FILE_RANGE_WAIT_BEFORE |
                                     SYNC_FILE_RANGE_WRITE |
                                     SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
        return -1;
    }
    *off += n;
    nanosleep(&gap, NULL);
    return 0;
}
