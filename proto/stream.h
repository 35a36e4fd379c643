/* Frames out to a libuv stream without a write request when the socket
 * takes them at once, which it nearly always does.
 *
 * uv_write() writes at once too, but then finishes its request through
 * libuv's pending queue, and when its queue drains libuv re-arms the
 * socket's epoll interest: one epoll_ctl per write, whether anything
 * changed or not (libuv 1.44). At one request in flight that is one
 * syscall in four on the node's side and one in five on the client's.
 * Shared by the node's server, the client library and the leader's
 * confirm round (raft/confirm.c). */
#ifndef TKV_STREAM_H
#define TKV_STREAM_H

#include <uv.h>

/* Write as much of *b as the socket takes now. 0: all of it. 1: part or
 * none of it; *b is what is left, for uv_write (the caller keeps those
 * bytes alive until its write callback). Negative: a libuv error, the
 * stream is broken. Call it only with no uv_write outstanding on s (libuv
 * answers EAGAIN then, so nothing is ever written out of order). */
int tkv_stream_try_write(uv_stream_t *s, uv_buf_t *b);

#endif /* TKV_STREAM_H */
