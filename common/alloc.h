/* The one allocation function pair of tuplekv.
 *
 * Everything tuplekv allocates goes through here so tests can make the Nth
 * allocation fail (tkv_alloc_fail_after) and check that every error path
 * unwinds cleanly. Outside tests the functions are thin wrappers. */
#ifndef TKV_ALLOC_H
#define TKV_ALLOC_H

#include <stddef.h>

void *tkv_malloc(size_t size);
void *tkv_calloc(size_t n, size_t size);
void *tkv_realloc(void *ptr, size_t size);
void tkv_free(void *ptr);
char *tkv_strdup(const char *s);
void *tkv_memdup(const void *p, size_t n);

/* Test hook: after `n` more successful allocations, every allocation fails
 * until tkv_alloc_fail_reset(). n < 0 disables failure injection. Not thread
 * safe: tests call it from one thread. */
void tkv_alloc_fail_after(long n);
void tkv_alloc_fail_reset(void);

#endif /* TKV_ALLOC_H */
