/* A bump allocator for short-lived decoded messages: many small pieces,
 * freed all at once. Pointers stay valid until tkv_arena_close/reset. */
#ifndef TKV_ARENA_H
#define TKV_ARENA_H

#include <stddef.h>

struct tkv_arena_block;

struct tkv_arena {
    struct tkv_arena_block *blocks; /* owned, newest first */
    char inline_buf[512];           /* first allocations land here */
    size_t inline_used;
};

void tkv_arena_init(struct tkv_arena *a);
void tkv_arena_close(struct tkv_arena *a);
void tkv_arena_reset(struct tkv_arena *a); /* frees blocks, keeps arena */

/* 16-byte aligned memory, or NULL when out of memory. */
void *tkv_arena_alloc(struct tkv_arena *a, size_t size);
void *tkv_arena_memdup(struct tkv_arena *a, const void *p, size_t n);
char *tkv_arena_strndup(struct tkv_arena *a, const char *s, size_t n);

#endif /* TKV_ARENA_H */
