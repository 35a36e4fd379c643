/* Tests of common/heap.c: a region on huge pages, split by the writes of a
 * fork's parent, is put back on huge pages by a collapse pass with its
 * bytes unchanged; a pass finds only mappings advised for huge pages; the
 * background thread starts only when enabled and stops on request. Skipped
 * where the kernel has transparent huge pages off or no MADV_COLLAPSE. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/heap.h"

#define HUGE (2u << 20)
#define REGION (8u * HUGE)

/* AnonHugePages (KiB) of the mapping that holds p, from smaps; -1 if none. */
static long anon_huge_kib(const void *p)
{
    char line[512];
    long kib = -1;
    int inside = 0;
    FILE *f = fopen("/proc/self/smaps", "re");

    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a header */
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (inside && sscanf(line, "AnonHugePages: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

/* An 8 huge-page region, aligned, advised and filled; NULL when the
 * kernel gives it no huge pages (THP off). */
static uint8_t *huge_region(void **map)
{
    uint8_t *p;
    size_t i;

    *map = mmap(NULL, REGION + HUGE, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(*map != MAP_FAILED);
    p = (uint8_t *)(((uintptr_t)*map + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (madvise(p, REGION, MADV_HUGEPAGE) != 0) {
        return NULL;
    }
    for (i = 0; i < REGION; i++) {
        p[i] = (uint8_t)(i * 7 + i / 4096);
    }
    if (anon_huge_kib(p) <= 0) {
        return NULL;
    }
    return p;
}

static void test_split_then_collapse(void **state)
{
    struct tkv_heap_collapse_result res;
    void *map;
    uint8_t *p = huge_region(&map);
    int go[2];
    pid_t child;
    size_t i;
    int rv;
    char c = 0;

    (void)state;
    if (p == NULL) {
        munmap(map, REGION + HUGE);
        skip();
    }
    /* a child shares every page; the parent's writes split them */
    assert_int_equal(pipe(go), 0);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(go[1]);
        (void)read(go[0], &c, 1); /* hold the pages until told */
        _exit(0);
    }
    close(go[0]);
    for (i = 0; i < REGION; i += 4096) {
        p[i] ^= 0x5a;
    }
    assert_int_equal(anon_huge_kib(p), 0);
    assert_int_equal(write(go[1], &c, 1), 1);
    close(go[1]);
    assert_int_equal(waitpid(child, NULL, 0), child);

    rv = tkv_heap_collapse_run(0, &res);
    if (rv == ENOSYS) {
        munmap(map, REGION + HUGE);
        skip();
    }
    assert_int_equal(rv, 0);
    assert_true(res.regions >= 1);
    assert_true(res.collapsed >= REGION / HUGE);
    assert_true(anon_huge_kib(p) >= (long)(REGION >> 10));
    for (i = 0; i < REGION; i++) {
        uint8_t want = (uint8_t)(i * 7 + i / 4096);
        if (i % 4096 == 0) {
            want ^= 0x5a;
        }
        if (p[i] != want) {
            fail_msg("byte %zu changed by the collapse", i);
        }
    }
    munmap(map, REGION + HUGE);
}

/* A mapping not advised for huge pages is left as it is. */
static void test_unadvised_left_alone(void **state)
{
    struct tkv_heap_collapse_result res;
    void *map = mmap(NULL, REGION + HUGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *p;

    (void)state;
    assert_true(map != MAP_FAILED);
    p = (uint8_t *)(((uintptr_t)map + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    assert_int_equal(madvise(p, REGION, MADV_NOHUGEPAGE), 0);
    memset(p, 1, REGION);
    if (tkv_heap_collapse_run(0, &res) == ENOSYS) {
        munmap(map, REGION + HUGE);
        skip();
    }
    assert_int_equal(anon_huge_kib(p), 0);
    munmap(map, REGION + HUGE);
}

/* The background pass: nothing while disabled; when enabled it runs and a
 * stop joins it (twice is harmless). */
static void test_background(void **state)
{
    (void)state;
    tkv_heap_collapse_enable(0);
    tkv_heap_collapse_start();
    tkv_heap_collapse_stop();
    tkv_heap_collapse_enable(1);
    assert_int_equal(tkv_heap_collapse_enabled(), 1);
    tkv_heap_collapse_start();
    tkv_heap_collapse_start(); /* one is running, or done: no second */
    tkv_heap_collapse_stop();
    tkv_heap_collapse_stop();
    tkv_heap_collapse_enable(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_then_collapse),
        cmocka_unit_test(test_unadvised_left_alone),
        cmocka_unit_test(test_background),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
