/* The heap back on huge pages after a fork: see heap.h. */
#define _GNU_SOURCE
#include "common/heap.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "common/log.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define TKV__HUGE (2u << 20)
#define TKV__MAX_REGIONS 256
/* Between 2 MiB steps: a step holds the mm's lock while it copies, so the
 * loop can fault in between (about 0.3 ms of copying per step here). */
#define TKV__GAP_US 1000u

static atomic_int tkv__enabled;
static atomic_int tkv__cancel;
static atomic_int tkv__running; /* the thread's pass is not over */
static int tkv__thread_live;    /* loop thread only: a thread to join */
static pthread_t tkv__thread;

void tkv_heap_collapse_enable(int on)
{
    atomic_store(&tkv__enabled, on ? 1 : 0);
}

int tkv_heap_collapse_enabled(void)
{
    return atomic_load(&tkv__enabled);
}

static uint64_t tkv__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct tkv__region {
    uintptr_t lo, hi;
};

/* The anonymous read-write mappings advised for huge pages, from smaps
 * (each entry: a "lo-hi perms offset dev inode [path]" line, then fields,
 * VmFlags last). Read whole before any collapse: no lock held across. */
static size_t tkv__advised(struct tkv__region *out, size_t cap)
{
    char line[512];
    size_t n = 0;
    int candidate = 0;
    struct tkv__region cur = {0, 0};
    FILE *f = fopen("/proc/self/smaps", "re");

    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi, off;
        char perms[8], path[256];
        int fields;

        path[0] = '\0';
        fields = sscanf(line, "%lx-%lx %7s %lx %*s %*s %255s", &lo, &hi,
                        perms, &off, path);
        if (fields >= 4) {
            /* a header line: anonymous (no path, or the brk heap) and rw */
            candidate = perms[0] == 'r' && perms[1] == 'w' &&
                        (fields == 4 || strcmp(path, "[heap]") == 0) &&
                        hi - lo >= TKV__HUGE;
            cur.lo = lo;
            cur.hi = hi;
            continue;
        }
        if (candidate && strncmp(line, "VmFlags:", 8) == 0) {
            candidate = 0;
            if (strstr(line, " hg") != NULL && n < cap) {
                out[n++] = cur;
            }
        }
    }
    fclose(f);
    return n;
}

int tkv_heap_collapse_run(unsigned gap_us,
                          struct tkv_heap_collapse_result *res)
{
    static struct tkv__region regions[TKV__MAX_REGIONS];
    struct timespec gap = {0, (long)gap_us * 1000L};
    uint64_t t0 = tkv__now_us();
    size_t i;
    int rv = 0;

    memset(res, 0, sizeof *res);
    res->regions = tkv__advised(regions, TKV__MAX_REGIONS);
    for (i = 0; i < res->regions && rv == 0; i++) {
        uintptr_t p = (regions[i].lo + TKV__HUGE - 1) & ~(uintptr_t)(TKV__HUGE - 1);
        for (; p + TKV__HUGE <= regions[i].hi; p += TKV__HUGE) {
            if (atomic_load(&tkv__cancel)) {
                goto out;
            }
            res->steps++;
            if (madvise((void *)p, TKV__HUGE, MADV_COLLAPSE) == 0) {
                res->collapsed++;
            } else if (errno == EINVAL && res->collapsed == 0 &&
                       res->steps == 1) {
                /* no MADV_COLLAPSE in this kernel */
                atomic_store(&tkv__enabled, 0);
                rv = ENOSYS;
                break;
            }
            if (gap_us > 0) {
                nanosleep(&gap, NULL);
            }
        }
    }
out:
    res->us = tkv__now_us() - t0;
    return rv;
}

static void *tkv__collapse_main(void *arg)
{
    struct tkv_heap_collapse_result res;
    struct sched_param sp = {0};
    int rv;

    (void)arg;
    /* background work: only what the loop leaves */
    (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    rv = tkv_heap_collapse_run(TKV__GAP_US, &res);
    if (rv == ENOSYS) {
        tkv_log_info("heap: the kernel cannot collapse huge pages "
                     "(MADV_COLLAPSE, Linux >= 6.1); khugepaged will");
    } else {
        tkv_log_info("heap: %zu of %zu MiB back on huge pages in %.1f ms%s",
                      res.collapsed * 2, res.steps * 2,
                      (double)res.us / 1000.0,
                      atomic_load(&tkv__cancel) ? " (stopped)" : "");
    }
    atomic_store(&tkv__running, 0);
    return NULL;
}

void tkv_heap_collapse_stop(void)
{
    if (tkv__thread_live) {
        atomic_store(&tkv__cancel, 1);
        pthread_join(tkv__thread, NULL);
        tkv__thread_live = 0;
    }
}

void tkv_heap_collapse_start(void)
{
    if (!atomic_load(&tkv__enabled) ||
        (tkv__thread_live && atomic_load(&tkv__running))) {
        return;
    }
    tkv_heap_collapse_stop(); /* reap a finished pass */
    atomic_store(&tkv__cancel, 0);
    atomic_store(&tkv__running, 1);
    if (pthread_create(&tkv__thread, NULL, tkv__collapse_main, NULL) == 0) {
        tkv__thread_live = 1;
    } else {
        atomic_store(&tkv__running, 0);
    }
}
