/* The one table of error codes: names, messages and the error struct. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *tkv_strerror(int code)
{
    switch (code) {
        case 0:
            return "ok";
#define TKV__ERRNO_MSG(name, value, msg) \
    case value:                          \
        return msg;
            TKV_ERRNO_MAP(TKV__ERRNO_MSG)
#undef TKV__ERRNO_MSG
    }
    return "unknown error";
}

const char *tkv_errname(int code)
{
    switch (code) {
        case 0:
            return "OK";
#define TKV__ERRNO_NAME(name, value, msg) \
    case value:                           \
        return #name;
            TKV_ERRNO_MAP(TKV__ERRNO_NAME)
#undef TKV__ERRNO_NAME
    }
    return "ERROR";
}

int tkv_errcode(const char *name, size_t len)
{
#define TKV__ERRNO_LOOKUP(n, value, msg)                       \
    if (len == sizeof(#n) - 1 && memcmp(name, #n, len) == 0) { \
        return value;                                          \
    }
    TKV_ERRNO_MAP(TKV__ERRNO_LOOKUP)
#undef TKV__ERRNO_LOOKUP
    if (len == 2 && memcmp(name, "OK", 2) == 0) {
        return 0;
    }
    return TKV_EINTERNAL;
}

int tkv_err_set(struct tkv_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void tkv_err_clear(struct tkv_err *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
