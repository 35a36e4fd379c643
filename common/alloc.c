/* Allocation wrappers with a failure-injection hook for tests. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static long fail_countdown = -1; /* < 0: never fail */

static int should_fail(void)
{
    if (fail_countdown < 0) {
        return 0;
    }
    if (fail_countdown == 0) {
        return 1;
    }
    fail_countdown--;
    return 0;
}

void *tkv_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size);
}

void *tkv_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : calloc(n, size);
}

void *tkv_realloc(void *ptr, size_t size)
{
    return should_fail() ? NULL : realloc(ptr, size);
}

void tkv_free(void *ptr)
{
    free(ptr);
}

char *tkv_strdup(const char *s)
{
    return tkv_memdup(s, strlen(s) + 1);
}

void *tkv_memdup(const void *p, size_t n)
{
    void *q = tkv_malloc(n > 0 ? n : 1);
    if (q != NULL && n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

void tkv_alloc_fail_after(long n)
{
    fail_countdown = n;
}

void tkv_alloc_fail_reset(void)
{
    fail_countdown = -1;
}
