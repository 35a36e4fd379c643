/* Log segments written as zeros before use (raft/logfill.h): the
 * posix_fallocate() that stands in for libc's fills a new, empty file with
 * zeros on disk (no unwritten extents left, where the file system can tell)
 * and leaves every other call, and every call while turned off, to libc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/logfill.h"
#include "extents.h"

#define SEGMENT (8u << 20) /* raft_uv's segment size */

static char dir[64];
static char path[128];
static int nfile;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tkv-logfill-XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    tkv_logfill_enable(0);
    return rmdir(dir);
}

/* A new file, as raft_uv makes one: O_EXCL, write-only. */
static int new_file(void)
{
    int fd;
    snprintf(path, sizeof path, "%s/open-%d", dir, ++nfile);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    return fd;
}

static void assert_zeros(const char *p, off_t from, off_t size)
{
    static char buf[1 << 16];
    int fd = open(p, O_RDONLY);
    off_t off = from;

    assert_true(fd >= 0);
    while (off < size) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        ssize_t i;
        assert_true(n > 0);
        for (i = 0; i < n; i++) {
            assert_int_equal(buf[i], 0);
        }
        off += n;
    }
    close(fd);
}

static off_t size_of(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    return st.st_size;
}

/* ext4 and XFS leave fallocated ranges unwritten. */
static int fs_has_unwritten(void)
{
    struct statfs fs;
    assert_int_equal(statfs(dir, &fs), 0);
    return fs.f_type == 0xEF53 || fs.f_type == 0x58465342;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void *fill_in_thread(void *arg)
{
    int *fd_rv = arg;
    fd_rv[1] = posix_fallocate(fd_rv[0], 0, SEGMENT);
    return NULL;
}

/* A segment filled where raft_uv fills them: from the thread that turned
 * the fill on (raft_uv starting on the loop: at full speed) or from
 * another (its threadpool: paced). Both leave the same file. */
static void fill_and_check(int from_other_thread)
{
    struct tkv_test_extents ex;
    struct timespec t0;
    uint64_t before = tkv_logfill_count();
    int fd_rv[2] = {new_file(), -1};

    tkv_logfill_enable(1);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (from_other_thread) {
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, fill_in_thread, fd_rv), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
    } else {
        fill_in_thread(fd_rv);
    }
    print_message("8 MiB segment filled %s in %.1f ms\n",
                  from_other_thread ? "paced" : "at full speed",
                  ms_since(&t0));
    assert_int_equal(fd_rv[1], 0);
    assert_int_equal(tkv_logfill_count(), before + 1);
    assert_int_equal(size_of(fd_rv[0]), SEGMENT);
    close(fd_rv[0]);
    assert_zeros(path, 0, SEGMENT);
    if (tkv_test_extents(path, &ex) == 0) {
        assert_true(ex.extents > 0);
        assert_int_equal(ex.unwritten, 0);
    } else {
        print_message("no FIEMAP here: extents not checked\n");
    }
    assert_int_equal(unlink(path), 0);
}

static void test_new_file_filled(void **state)
{
    (void)state;
    fill_and_check(0);
    fill_and_check(1);
}

/* Turned off: libc's, so the check above can tell the two apart. */
static void test_off_is_libc(void **state)
{
    struct tkv_test_extents ex;
    uint64_t before = tkv_logfill_count();
    int fd = new_file();

    (void)state;
    tkv_logfill_enable(0);
    assert_false(tkv_logfill_enabled());
    assert_int_equal(posix_fallocate(fd, 0, 1 << 20), 0);
    assert_int_equal(tkv_logfill_count(), before);
    assert_int_equal(size_of(fd), 1 << 20);
    close(fd);
    if (fs_has_unwritten() && tkv_test_extents(path, &ex) == 0) {
        assert_true(ex.unwritten > 0);
    }
    assert_zeros(path, 0, 1 << 20);
    assert_int_equal(unlink(path), 0);
}

/* A file with data in it, or a range not from 0: libc's, data kept. */
static void test_other_calls_are_libc(void **state)
{
    static const char hello[] = "hello";
    char got[sizeof hello];
    uint64_t before;
    int fd = new_file();
    int rd;

    (void)state;
    tkv_logfill_enable(1);
    before = tkv_logfill_count();
    assert_int_equal(write(fd, hello, sizeof hello), (ssize_t)sizeof hello);
    assert_int_equal(posix_fallocate(fd, 0, 1 << 20), 0);
    assert_int_equal(size_of(fd), 1 << 20);
    close(fd);
    rd = open(path, O_RDONLY);
    assert_int_equal(read(rd, got, sizeof got), (ssize_t)sizeof got);
    close(rd);
    assert_memory_equal(got, hello, sizeof hello);
    assert_zeros(path, sizeof hello, 1 << 20);
    assert_int_equal(unlink(path), 0);

    fd = new_file();
    assert_int_equal(posix_fallocate(fd, 4096, 8192), 0);
    assert_int_equal(size_of(fd), 4096 + 8192);
    close(fd);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(tkv_logfill_count(), before);
}

/* Errors are libc's answers, whatever the switch says. */
static void test_errors(void **state)
{
    int fd = new_file();
    int rd;

    (void)state;
    tkv_logfill_enable(1);
    assert_int_equal(posix_fallocate(-1, 0, 4096), EBADF);
    assert_int_equal(posix_fallocate(fd, 0, 0), EINVAL);
    assert_int_equal(posix_fallocate(fd, -1, 4096), EINVAL);
    rd = open(path, O_RDONLY);
    assert_int_equal(posix_fallocate(rd, 0, 4096), EBADF);
    close(rd);
    assert_int_equal(size_of(fd), 0);
    close(fd);
    assert_int_equal(unlink(path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file_filled),
        cmocka_unit_test(test_off_is_libc),
        cmocka_unit_test(test_other_calls_are_libc),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
