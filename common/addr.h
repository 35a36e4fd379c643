/* Network addresses as tuplekv writes them: "host:port" or "[ipv6]:port".
 * One parser for the node's flags and config, the client's endpoints and
 * the node-to-node connections of raft/confirm.c. */
#ifndef TKV_ADDR_H
#define TKV_ADDR_H

#include <stddef.h>

#include "error.h"

/* Split s (len bytes, not necessarily NUL-terminated) into host (copied
 * NUL-terminated into host[hostcap], brackets of an IPv6 literal removed)
 * and port (1..65535). 0, or TKV_EINVALID with a message naming s. The host
 * is not resolved or checked further. */
int tkv_addr_split(const char *s,
                   size_t len,
                   char *host /* OUT */,
                   size_t hostcap,
                   int *port /* OUT */,
                   struct tkv_err *err);

#endif /* TKV_ADDR_H */
