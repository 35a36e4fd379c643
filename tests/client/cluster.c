/* The client suite's helpers over a test cluster (see cluster.h): readiness
 * and leadership as libtuplekv sees them. */
#include "cluster.h"

#include <stdio.h>
#include <string.h>

struct tkv_client *tkv_test_client(const char *endpoints, int timeout_ms)
{
    struct tkv_config cfg;
    struct tkv_client *c = NULL;
    struct tkv_err err;
    tkv_config_init(&cfg);
    cfg.endpoints = endpoints;
    cfg.timeout_ms = timeout_ms;
    if (tkv_connect(&cfg, &c, &err) != 0) {
        fprintf(stderr, "tkv_connect: %s\n", err.msg);
        return NULL;
    }
    return c;
}

int tkv_test_cluster_start(struct tkv_tc *cl, int n, int base)
{
    struct tkv_client *c;
    struct tkv_err err;
    json_t *key, *val;
    int64_t deadline;
    int ok = 0, died = 0;

    if (tkv_tc_init(cl, "client", base, n, NULL) != 0 ||
        tkv_tc_start_all(cl, TKV_TC_BOOTSTRAP) != 0) {
        return -1;
    }
    /* generous: the machine may be busy with other builds and benchmarks */
    c = tkv_test_client(cl->endpoints, 2000);
    key = json_pack("[s]", "__cluster_ready");
    val = json_true();
    deadline = tkv_tc_now_ms() + 60000;
    snprintf(err.msg, sizeof err.msg, "no client");
    while (c != NULL && !died && tkv_tc_now_ms() < deadline) {
        died = tkv_tc_check_running(cl) != 0;
        if (!died && tkv_set(c, key, val, 0, NULL, NULL, &err) == 0) {
            ok = 1;
            tkv_delete(c, key, NULL, &err);
            break;
        }
        tkv_tc_sleep_ms(100);
    }
    json_decref(key);
    json_decref(val);
    tkv_close(c);
    /* a node that could not start fails the setup: the test must not go on
     * with whatever else answers on its ports */
    if (died || tkv_tc_check_running(cl) != 0) {
        snprintf(err.msg, sizeof err.msg, "a node exited at its start");
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "cluster on port base %d did not take writes: %s\n",
                cl->base, err.msg);
        return -1;
    }
    return 0;
}

static int tkv_test_leader_cb(void *arg,
                              struct tkv_tc *cl,
                              int i,
                              int *is_leader,
                              uint64_t *leader_id)
{
    struct tkv_node_status *st = NULL;
    struct tkv_err err;
    if (tkv_node_status(arg, cl->nodes[i].client, NULL, &st, &err) != 0) {
        return -1;
    }
    *is_leader = strcmp(st->role, "leader") == 0;
    *leader_id = st->leader_id;
    tkv_node_status_free(st);
    return 0;
}

int tkv_test_cluster_leader(struct tkv_tc *cl, int timeout_ms)
{
    struct tkv_client *c = tkv_test_client(cl->endpoints, 1000);
    int leader = 0;
    if (c != NULL) {
        leader = tkv_tc_wait_leader(cl, timeout_ms, tkv_test_leader_cb, c);
        tkv_close(c);
    }
    return leader;
}
