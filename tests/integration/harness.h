/* Integration test harness: the client side of the integration tests.
 * The nodes are a tests/support test cluster (testcluster.h: processes,
 * ports, temp data, logs); these helpers talk to them over the blocking
 * probe client (node/probe.h), which speaks the shared proto codec, so a
 * test can send any request, well formed or not, to any node. */
#ifndef TKV_TEST_HARNESS_H
#define TKV_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "node/probe.h"
#include "testcluster.h"

/* Wait for a leader all running nodes agree on (tkv_tc_wait_leader,
 * asking with the probe client); 0 when none within timeout_ms. */
int hc_wait_leader(struct tkv_tc *c, int timeout_ms);

/* Status of node i (0 on success). */
int hc_status(struct tkv_tc *c,
              int i,
              struct tkv_status *st,
              char *role,
              size_t rolelen);

/* Encode a JSON key / value. */
void hc_key(const char *json, uint8_t *out, size_t *len);
void hc_value(const char *json, struct tkv_buf *out);

/* One request to node i, without following redirects. rep is reset. */
int hc_call(struct tkv_tc *c,
            struct tkv_probe *p,
            int i,
            struct tkv_req *req,
            struct tkv_reply *rep);
/* Same, following NOT_LEADER and retrying UNAVAILABLE for up to
 * timeout_ms. */
int hc_call_leader(struct tkv_tc *c,
                   struct tkv_probe *p,
                   int i,
                   struct tkv_req *req,
                   struct tkv_reply *rep,
                   int timeout_ms);

/* set key_json = value_json on the cluster (via node i); the reply code. */
int hc_set(struct tkv_tc *c,
           struct tkv_probe *p,
           int i,
           const char *key_json,
           const char *value_json,
           uint64_t ttl_ms);
/* Read key_json from node i. Returns 1 present, 0 absent, <0 error code;
 * eventual: local read on node i. */
int hc_get(struct tkv_tc *c,
           struct tkv_probe *p,
           int i,
           const char *key_json,
           int eventual);

#endif /* TKV_TEST_HARNESS_H */
