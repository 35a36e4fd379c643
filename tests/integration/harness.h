/* Integration test harness: real tuplekv-node processes on 127.0.0.1, with
 * a temp data root per test (deleted at the end) and a port base per test
 * (so tests can run in parallel), plus helpers over the blocking probe
 * client (node/probe.h) that speak the shared proto codec.
 *
 * Node i (1-based) listens for clients on base + i and for raft on
 * base + 50 + i; its stderr goes to <root>/n<i>.log. */
#ifndef TKV_TEST_HARNESS_H
#define TKV_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "node/probe.h"

#define HC_MAX 8

struct hc_node {
    pid_t pid; /* 0 when not running */
    char client[32];
    char raft[32];
    char dir[512];
    char log[512];
};

struct hc {
    char root[256];
    int base;
    int n; /* nodes in the bootstrap set */
    struct hc_node nodes[HC_MAX + 1];
    const char *extra[16]; /* extra flags for every node */
    int nextra;
};

/* Set up n nodes' addresses and a fresh temp root; no process yet. */
void hc_init(struct hc *c, const char *name, int base, int n);
/* Kill what runs and delete the root. */
void hc_destroy(struct hc *c);

/* Start node i: mode 'b' bootstrap (all n nodes), 'j' join via node
 * join_from's client address, 'r' plain restart. */
void hc_start(struct hc *c, int i, int mode, int join_from);
void hc_start_all(struct hc *c, int mode);
/* Signal node i; with sig SIGTERM/SIGKILL also wait for it and return
 * its exit status (as waitpid's), else 0. */
int hc_stop(struct hc *c, int i, int sig);

/* Index (1-based) of the node reporting role "leader", whose leadership
 * every other running node agrees on; 0 when none within timeout_ms. */
int hc_wait_leader(struct hc *c, int timeout_ms);

/* Status of node i (0 on success). */
int hc_status(struct hc *c,
              int i,
              struct tkv_status *st,
              char *role,
              size_t rolelen);

/* Encode a JSON key / value. */
void hc_key(const char *json, uint8_t *out, size_t *len);
void hc_value(const char *json, struct tkv_buf *out);

/* One request to node i, without following redirects. rep is reset. */
int hc_call(struct hc *c,
            struct tkv_probe *p,
            int i,
            struct tkv_req *req,
            struct tkv_reply *rep);
/* Same, following NOT_LEADER and retrying UNAVAILABLE for up to
 * timeout_ms. */
int hc_call_leader(struct hc *c,
                   struct tkv_probe *p,
                   int i,
                   struct tkv_req *req,
                   struct tkv_reply *rep,
                   int timeout_ms);

/* set key_json = value_json on the cluster (via node i); the reply code. */
int hc_set(struct hc *c,
           struct tkv_probe *p,
           int i,
           const char *key_json,
           const char *value_json,
           uint64_t ttl_ms);
/* Read key_json from node i. Returns 1 present, 0 absent, <0 error code;
 * eventual: local read on node i. */
int hc_get(struct hc *c,
           struct tkv_probe *p,
           int i,
           const char *key_json,
           int eventual);

/* Count lines of node i's log containing text. */
int hc_log_count(struct hc *c, int i, const char *text);

int64_t hc_now_ms(void);
void hc_sleep_ms(int ms);

#endif /* TKV_TEST_HARNESS_H */
