#include "stream.h"

int tkv_stream_try_write(uv_stream_t *s, uv_buf_t *b)
{
    int rv = uv_try_write(s, b, 1);

    if (rv == (int)b->len) {
        return 0;
    }
    if (rv < 0 && rv != UV_EAGAIN) {
        return rv;
    }
    if (rv > 0) {
        b->base += rv;
        b->len -= (unsigned)rv;
    }
    return 1;
}
