#include "addr.h"

#include <string.h>

int tkv_addr_split(const char *s,
                   size_t len,
                   char *host,
                   size_t hostcap,
                   int *port,
                   struct tkv_err *err)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    long p = 0;
    size_t i;

    if (len == 0) {
        return tkv_err_set(err, TKV_EINVALID, "empty endpoint");
    }
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || close + 1 >= s + len || close[1] != ':') {
            return tkv_err_set(err, TKV_EINVALID,
                               "bad endpoint '%.*s': expected [ipv6]:port",
                               (int)len, s);
        }
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = NULL;
        for (i = len; i > 0; i--) {
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        }
        if (colon == NULL) {
            return tkv_err_set(err, TKV_EINVALID,
                               "bad endpoint '%.*s': expected host:port",
                               (int)len, s);
        }
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= hostcap) {
        return tkv_err_set(err, TKV_EINVALID, "bad endpoint '%.*s': %s host",
                           (int)len, s, hlen == 0 ? "empty" : "too long");
    }
    for (i = (size_t)(colon + 1 - s); i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || p > 65535) {
            p = -1;
            break;
        }
        p = p * 10 + (s[i] - '0');
    }
    if ((size_t)(colon + 1 - s) == len || p < 1 || p > 65535) {
        return tkv_err_set(err, TKV_EINVALID,
                           "bad endpoint '%.*s': port must be 1..65535",
                           (int)len, s);
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (int)p;
    return 0;
}
