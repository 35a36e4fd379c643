/* Integration test harness (see harness.h): requests over the probe
 * client, following redirects where asked; the processes are the test
 * cluster's (tests/support). */
#include "harness.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "statemachine/keycodec.h"
#include "statemachine/value.h"

static void hc_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void hc_key(const char *json, uint8_t *out, size_t *len)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &jerr);
    struct tkv_err err;
    if (j == NULL || tkv_key_from_json(j, 1, out, len, &err) != 0) {
        hc_die("bad key %s", json);
    }
    json_decref(j);
}

void hc_value(const char *json, struct tkv_buf *out)
{
    json_error_t jerr;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &jerr);
    struct tkv_err err;
    tkv_buf_reset(out);
    if (j == NULL || tkv_value_from_json(j, out, &err) != 0) {
        hc_die("bad value %s", json);
    }
    json_decref(j);
}

int hc_call(struct tkv_tc *c,
            struct tkv_probe *p,
            int i,
            struct tkv_req *req,
            struct tkv_reply *rep)
{
    struct tkv_err err;
    int rv;
    if (p->fd < 0 || strcmp(p->addr, c->nodes[i].client) != 0) {
        rv = tkv_probe_connect(p, c->nodes[i].client, 2000, &err);
        if (rv != 0) {
            return rv;
        }
    }
    rv = tkv_probe_call(p, req, rep, 10000, &err);
    if (rv != 0) {
        tkv_probe_close(p);
        tkv_probe_init(p);
    }
    return rv;
}

int hc_call_leader(struct tkv_tc *c,
                   struct tkv_probe *p,
                   int i,
                   struct tkv_req *req,
                   struct tkv_reply *rep,
                   int timeout_ms)
{
    int64_t deadline = tkv_tc_now_ms() + timeout_ms;
    int target = i;
    int rv;
    for (;;) {
        rv = hc_call(c, p, target, req, rep);
        if (rv == 0 && rep->code == TKV_ENOT_LEADER && rep->leader != NULL) {
            int k;
            for (k = 1; k <= TKV_TC_MAX; k++) {
                if (strcmp(c->nodes[k].client, rep->leader) == 0) {
                    target = k;
                }
            }
        }
        if (rv == 0 && rep->code != TKV_ENOT_LEADER &&
            rep->code != TKV_EUNAVAILABLE) {
            return 0;
        }
        if (tkv_tc_now_ms() > deadline) {
            return rv != 0 ? rv : rep->code;
        }
        if (rv != 0 || rep->code == TKV_EUNAVAILABLE || rep->leader == NULL) {
            /* try the next running node */
            int k;
            for (k = 1; k <= TKV_TC_MAX; k++) {
                target = target % TKV_TC_MAX + 1;
                if (c->nodes[target].pid > 0) {
                    break;
                }
            }
            tkv_tc_sleep_ms(50);
        }
    }
}

int hc_status(struct tkv_tc *c,
              int i,
              struct tkv_status *st,
              char *role,
              size_t rolelen)
{
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    int rv;

    tkv_probe_init(&p);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_STATUS;
    rv = hc_call(c, &p, i, &req, &rep);
    if (rv == 0 && rep.code == 0) {
        *st = rep.status;
        snprintf(role, rolelen, "%s", rep.status.role);
        st->role = NULL;
        st->leader_address = NULL;
    } else if (rv == 0) {
        rv = rep.code;
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_probe_close(&p);
    return rv;
}

static int hc_leader_cb(void *arg,
                        struct tkv_tc *c,
                        int i,
                        int *is_leader,
                        uint64_t *leader_id)
{
    struct tkv_status st;
    char role[32];
    (void)arg;
    if (hc_status(c, i, &st, role, sizeof role) != 0) {
        return -1;
    }
    *is_leader = strcmp(role, "leader") == 0;
    *leader_id = st.leader_id;
    return 0;
}

int hc_wait_leader(struct tkv_tc *c, int timeout_ms)
{
    return tkv_tc_wait_leader(c, timeout_ms, hc_leader_cb, NULL);
}

int hc_set(struct tkv_tc *c,
           struct tkv_probe *p,
           int i,
           const char *key_json,
           const char *value_json,
           uint64_t ttl_ms)
{
    uint8_t key[TKV_KEY_MAX];
    size_t klen;
    struct tkv_buf v;
    struct tkv_req req;
    struct tkv_reply rep;
    int rv;

    hc_key(key_json, key, &klen);
    tkv_buf_init(&v);
    hc_value(value_json, &v);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_SET;
    req.key = key;
    req.klen = klen;
    req.value = v.data;
    req.vlen = v.len;
    req.ttl_ms = ttl_ms;
    rv = hc_call_leader(c, p, i, &req, &rep, 10000);
    if (rv == 0) {
        rv = rep.code;
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    tkv_buf_close(&v);
    return rv;
}

int hc_get(struct tkv_tc *c,
           struct tkv_probe *p,
           int i,
           const char *key_json,
           int eventual)
{
    uint8_t key[TKV_KEY_MAX];
    size_t klen;
    struct tkv_req req;
    struct tkv_reply rep;
    int rv;

    hc_key(key_json, key, &klen);
    tkv_req_init(&req);
    tkv_reply_init(&rep);
    req.op = TKV_OP_GET;
    req.key = key;
    req.klen = klen;
    req.eventual = eventual;
    rv = eventual ? hc_call(c, p, i, &req, &rep)
                  : hc_call_leader(c, p, i, &req, &rep, 10000);
    if (rv == 0) {
        rv = rep.code != 0 ? rep.code
                           : (rep.nentries == 1 && rep.entries[0].present);
    } else if (rv > 0) {
        rv = -rv;
    }
    tkv_reply_close(&rep);
    tkv_req_close(&req);
    return rv;
}
