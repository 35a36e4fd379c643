/* How a file's blocks are allocated, for tests of the log zero-fill
 * (raft/logfill.h): FIEMAP, Linux. */
#ifndef TKV_TEST_EXTENTS_H
#define TKV_TEST_EXTENTS_H

#include <stddef.h>

struct tkv_test_extents {
    size_t extents;   /* mapped extents */
    size_t unwritten; /* of them, allocated but unwritten (fallocate) */
};

/* 0, or -1 when the file cannot be opened or its file system has no
 * FIEMAP (tmpfs, for one): the caller then has nothing to check. */
int tkv_test_extents(const char *path, struct tkv_test_extents *out);

#endif /* TKV_TEST_EXTENTS_H */
