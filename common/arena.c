/* Bump allocator: an inline first block, then heap blocks that grow. */
#include "arena.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

struct tkv_arena_block {
    struct tkv_arena_block *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

void tkv_arena_init(struct tkv_arena *a)
{
    a->blocks = NULL;
    a->inline_used = 0;
}

void tkv_arena_reset(struct tkv_arena *a)
{
    struct tkv_arena_block *b = a->blocks;
    while (b != NULL) {
        struct tkv_arena_block *next = b->next;
        tkv_free(b);
        b = next;
    }
    tkv_arena_init(a);
}

void tkv_arena_close(struct tkv_arena *a)
{
    tkv_arena_reset(a);
}

void *tkv_arena_alloc(struct tkv_arena *a, size_t size)
{
    struct tkv_arena_block *b;
    size_t need = ALIGN16(size > 0 ? size : 1);
    uintptr_t base = (uintptr_t)a->inline_buf;
    size_t off = ALIGN16(base + a->inline_used) - base;

    if (off + need <= sizeof a->inline_buf) {
        a->inline_used = off + need;
        return a->inline_buf + off;
    }
    b = a->blocks;
    if (b == NULL || b->size - b->used < need) {
        size_t bsize = b == NULL ? 4096 : b->size * 2;
        if (bsize > 1u << 20) {
            bsize = 1u << 20;
        }
        if (bsize < need) {
            bsize = need;
        }
        b = tkv_malloc(sizeof *b + bsize);
        if (b == NULL) {
            return NULL;
        }
        b->next = a->blocks;
        b->size = bsize;
        b->used = 0;
        a->blocks = b;
    }
    b->used += need;
    return b->data + b->used - need;
}

void *tkv_arena_memdup(struct tkv_arena *a, const void *p, size_t n)
{
    void *q = tkv_arena_alloc(a, n);
    if (q != NULL && n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

char *tkv_arena_strndup(struct tkv_arena *a, const char *s, size_t n)
{
    char *q = tkv_arena_alloc(a, n + 1);
    if (q != NULL) {
        memcpy(q, s, n);
        q[n] = '\0';
    }
    return q;
}
