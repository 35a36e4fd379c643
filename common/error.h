/* Error codes and the error struct shared by every layer of tuplekv.
 *
 * Every function that can fail returns 0 or a negative TKV_E... code from the
 * one table below, and writes a human-readable message into the caller's
 * struct tkv_err (when the caller passes one; NULL is allowed everywhere).
 * The code names double as the protocol's error code words (NOT_LEADER,
 * CONFLICT, ...), so a code survives the trip node -> wire -> client intact.
 * raft's own codes are translated in raft/ only. */
#ifndef TKV_ERROR_H
#define TKV_ERROR_H

#include <stddef.h>

/* X(NAME, value, default message) */
#define TKV_ERRNO_MAP(X)                                                     \
    X(NOMEM, -1, "out of memory")                                            \
    X(INVALID, -2, "invalid argument")                                       \
    X(TOO_LARGE, -3, "too large")                                            \
    X(NOT_JSON, -4, "value is not JSON serializable")                        \
    X(CORRUPT, -5, "malformed or corrupt data")                              \
    X(CONFLICT, -6, "transaction check failed")                              \
    X(NOT_LEADER, -7, "not the leader")                                      \
    X(UNAVAILABLE, -8, "service unavailable")                                \
    X(TIMEOUT, -9, "timed out")                                              \
    X(UNKNOWN, -10, "outcome unknown")                                       \
    X(BAD_CURSOR, -11, "invalid cursor")                                     \
    X(STALE, -12, "request sequence no longer remembered")                   \
    X(BUSY, -13, "too many requests")                                        \
    X(PROTO, -14, "protocol error")                                          \
    X(SHUTDOWN, -15, "shutting down")                                        \
    X(IO, -16, "I/O error")                                                  \
    X(NOT_FOUND, -17, "not found")                                           \
    X(ABORTED, -18, "aborted")                                               \
    X(INTERNAL, -19, "internal error")

enum {
#define TKV__ERRNO_ENUM(name, value, msg) TKV_E##name = value,
    TKV_ERRNO_MAP(TKV__ERRNO_ENUM)
#undef TKV__ERRNO_ENUM
};

#define TKV_ERRMSG_SIZE 256

struct tkv_err {
    int code;                   /* last code set, 0 when none */
    char msg[TKV_ERRMSG_SIZE];  /* NUL-terminated, "" when none */
};

/* Short text for a code, e.g. "out of memory". Never NULL. */
const char *tkv_strerror(int code);

/* Stable code word for a code, e.g. "NOT_LEADER"; "OK" for 0 and "ERROR" for
 * a code outside the table. Used on the wire. */
const char *tkv_errname(int code);

/* Inverse of tkv_errname(); returns TKV_EINTERNAL for an unknown word. */
int tkv_errcode(const char *name, size_t len);

/* Fill err (if not NULL) with code and a printf-style message; returns code
 * so callers can write `return tkv_err_set(err, TKV_EINVALID, "...")`. */
int tkv_err_set(struct tkv_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reset err to "no error". */
void tkv_err_clear(struct tkv_err *err);

#endif /* TKV_ERROR_H */
