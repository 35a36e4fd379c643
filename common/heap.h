/* The heap back on huge pages after a fork.
 *
 * A node's heap lives on transparent huge pages (glibc.malloc.hugetlb=1,
 * node/main.c). A snapshot forks a child; the parent's first write to each
 * huge page the child still shares splits it into 4 KiB pages (Linux >=
 * 5.8), so one snapshot under writes leaves the whole heap on 4 KiB pages.
 * khugepaged puts it back at 16 MB per 10 s by default: a 400 MB heap takes
 * minutes, longer than the gap between snapshots under load. Measured with
 * 1M keys and 32 writers: AnonHugePages 386 MB -> 64 MB within a second of
 * the fork, each node's CPU +20-70% for the same writes afterwards, and the
 * next fork 10-16 ms instead of 2-4 ms.
 *
 * A collapse pass asks the kernel (madvise MADV_COLLAPSE, Linux >= 6.1) to
 * rebuild huge pages over every mapping advised for them, 2 MiB at a time
 * with a pause between, in a thread of its own at idle priority: the loop
 * only ever waits for the one 2 MiB step it faults into. Nothing here
 * changes what memory holds, only how it is mapped. */
#ifndef TKV_HEAP_H
#define TKV_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct tkv_heap_collapse_result {
    size_t regions;   /* mappings advised for huge pages */
    size_t steps;     /* 2 MiB steps asked for */
    size_t collapsed; /* steps the kernel answered with success */
    uint64_t us;      /* wall time of the pass */
};

/* Turn background passes on or off (off by default: a process without
 * huge pages for its heap has nothing to put back). */
void tkv_heap_collapse_enable(int on);
int tkv_heap_collapse_enabled(void);

/* One pass in the calling thread over every anonymous mapping whose
 * VmFlags carry "hg", pausing gap_us between steps. Returns 0, or ENOSYS
 * when the kernel has no MADV_COLLAPSE (passes are then turned off). A
 * stop (below) ends the pass at its next step. */
int tkv_heap_collapse_run(unsigned gap_us,
                          struct tkv_heap_collapse_result *res);

/* Start a pass in a background thread; nothing when turned off or one is
 * running. Loop thread only, like stop. */
void tkv_heap_collapse_start(void);
/* End a running pass at its next step and join its thread, if any: before
 * a fork (the child would split what it collapses), at shutdown. */
void tkv_heap_collapse_stop(void);

#endif /* TKV_HEAP_H */
