/* Growable byte buffer. */
#include "buf.h"

#include <string.h>

#include "alloc.h"
#include "error.h"

void tkv_buf_init(struct tkv_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->failed = 0;
}

void tkv_buf_close(struct tkv_buf *b)
{
    tkv_free(b->data);
    tkv_buf_init(b);
}

void tkv_buf_reset(struct tkv_buf *b)
{
    b->len = 0;
    b->failed = 0;
}

int tkv_buf_reserve(struct tkv_buf *b, size_t n)
{
    size_t cap;
    uint8_t *p;
    if (b->failed) {
        return TKV_ENOMEM;
    }
    if (n <= b->cap - b->len) {
        return 0;
    }
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return TKV_ENOMEM;
        }
        cap *= 2;
    }
    p = tkv_realloc(b->data, cap);
    if (p == NULL) {
        b->failed = 1;
        return TKV_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int tkv_buf_append(struct tkv_buf *b, const void *p, size_t n)
{
    int rv = tkv_buf_reserve(b, n);
    if (rv != 0) {
        return rv;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return 0;
}

int tkv_buf_pad(struct tkv_buf *b, size_t align)
{
    size_t pad = (align - b->len % align) % align;
    int rv = tkv_buf_reserve(b, pad);
    if (rv != 0) {
        return rv;
    }
    memset(b->data + b->len, 0, pad);
    b->len += pad;
    return 0;
}

uint8_t *tkv_buf_steal(struct tkv_buf *b, size_t *len)
{
    uint8_t *p = b->data;
    *len = b->len;
    tkv_buf_init(b);
    return p;
}

int tkv_buf_msgpack_write(void *data, const char *p, size_t n)
{
    return tkv_buf_append(data, p, n) == 0 ? 0 : -1;
}
