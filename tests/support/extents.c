#include "extents.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define TKV__EXTENTS_BATCH 64

int tkv_test_extents(const char *path, struct tkv_test_extents *out)
{
    struct fiemap *fm;
    __u64 start = 0;
    int fd;
    int rv = 0;

    memset(out, 0, sizeof *out);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    fm = calloc(1, sizeof *fm +
                       TKV__EXTENTS_BATCH * sizeof(struct fiemap_extent));
    if (fm == NULL) {
        close(fd);
        return -1;
    }
    for (;;) {
        unsigned i;
        int last = 0;

        memset(fm, 0, sizeof *fm);
        fm->fm_start = start;
        fm->fm_length = FIEMAP_MAX_OFFSET - start;
        fm->fm_flags = FIEMAP_FLAG_SYNC;
        fm->fm_extent_count = TKV__EXTENTS_BATCH;
        if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) {
            rv = -1;
            break;
        }
        for (i = 0; i < fm->fm_mapped_extents; i++) {
            const struct fiemap_extent *e = &fm->fm_extents[i];
            out->extents++;
            if (e->fe_flags & FIEMAP_EXTENT_UNWRITTEN) {
                out->unwritten++;
            }
            if (e->fe_flags & FIEMAP_EXTENT_LAST) {
                last = 1;
            }
            start = e->fe_logical + e->fe_length;
        }
        if (last || fm->fm_mapped_extents == 0) {
            break;
        }
    }
    free(fm);
    close(fd);
    return rv;
}
