/* A growable byte buffer, and the msgpack writer that appends to it.
 *
 * Used wherever tuplekv builds bytes whose final size it does not know:
 * encoded log entries, protocol frames, snapshot chunks. */
#ifndef TKV_BUF_H
#define TKV_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tkv_buf {
    uint8_t *data; /* owned, NULL until the first append */
    size_t len;
    size_t cap;
    int failed;    /* set when an append ran out of memory; sticky */
};

void tkv_buf_init(struct tkv_buf *b);
void tkv_buf_close(struct tkv_buf *b);   /* frees data */
void tkv_buf_reset(struct tkv_buf *b);   /* len = 0, keeps capacity */

/* Make room for n more bytes; 0 or TKV_ENOMEM (and b->failed set). */
int tkv_buf_reserve(struct tkv_buf *b, size_t n);
int tkv_buf_append(struct tkv_buf *b, const void *p, size_t n);

/* Append zero bytes until len is a multiple of `align`. */
int tkv_buf_pad(struct tkv_buf *b, size_t align);

/* Take the data out: returns it (owned by the caller, free with tkv_free)
 * and leaves b empty. */
uint8_t *tkv_buf_steal(struct tkv_buf *b, size_t *len /* OUT */);

/* msgpack_packer write callback: `data` is a struct tkv_buf *.
 * Usage: msgpack_packer_init(&pk, &buf, tkv_buf_msgpack_write). */
int tkv_buf_msgpack_write(void *data, const char *p, size_t n);

#endif /* TKV_BUF_H */
