/* Integration test harness (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "statemachine/keycodec.h"
#include "statemachine/value.h"

#ifndef TKV_NODE_BIN
#error "TKV_NODE_BIN must point to tuplekv-node"
#endif

int64_t hc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void hc_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

void hc_init(struct hc *c, const char *name, int base, int n)
{
    struct rlimit rl;
    int i;

    memset(c, 0, sizeof *c);
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    snprintf(c->root, sizeof c->root, "/tmp/tkv-it-%s-XXXXXX", name);
    if (mkdtemp(c->root) == NULL) {
        hc_die("mkdtemp: %s", strerror(errno));
    }
    c->base = base;
    c->n = n;
    for (i = 1; i <= HC_MAX; i++) {
        struct hc_node *nd = &c->nodes[i];
        snprintf(nd->client, sizeof nd->client, "127.0.0.1:%d", base + i);
        snprintf(nd->raft, sizeof nd->raft, "127.0.0.1:%d", base + 50 + i);
        snprintf(nd->dir, sizeof nd->dir, "%s/d%d", c->root, i);
        snprintf(nd->log, sizeof nd->log, "%s/n%d.log", c->root, i);
    }
    fprintf(stderr, "harness: %s in %s, ports %d..\n", name, c->root, base);
}

void hc_destroy(struct hc *c)
{
    char cmd[512];
    int i;
    for (i = 1; i <= HC_MAX; i++) {
        if (c->nodes[i].pid > 0) {
            kill(c->nodes[i].pid, SIGKILL);
            waitpid(c->nodes[i].pid, NULL, 0);
            c->nodes[i].pid = 0;
        }
    }
    if (getenv("TKV_KEEP") == NULL) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->root);
        if (system(cmd) != 0) {
            fprintf(stderr, "harness: could not remove %s\n", c->root);
        }
    }
}

void hc_start(struct hc *c, int i, int mode, int join_from)
{
    struct hc_node *nd = &c->nodes[i];
    char id[16], boot[1024];
    const char *argv[64];
    size_t off = 0;
    int argc = 0, k;
    pid_t pid;

    snprintf(id, sizeof id, "%d", i);
    boot[0] = '\0';
    for (k = 1; k <= c->n; k++) {
        off += (size_t)snprintf(boot + off, sizeof boot - off, "%s%d=%s=%s",
                                k > 1 ? "," : "", k, c->nodes[k].raft,
                                c->nodes[k].client);
    }
    argv[argc++] = TKV_NODE_BIN;
    argv[argc++] = "--id";
    argv[argc++] = id;
    argv[argc++] = "--raft-address";
    argv[argc++] = nd->raft;
    argv[argc++] = "--client-address";
    argv[argc++] = nd->client;
    argv[argc++] = "--data-dir";
    argv[argc++] = nd->dir;
    if (mode == 'b') {
        argv[argc++] = "--bootstrap";
        argv[argc++] = boot;
    } else if (mode == 'j') {
        argv[argc++] = "--join";
        argv[argc++] = c->nodes[join_from].client;
    }
    for (k = 0; k < c->nextra; k++) {
        argv[argc++] = c->extra[k];
    }
    argv[argc] = NULL;

    pid = fork();
    if (pid < 0) {
        hc_die("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        /* never outlive the test, even when it crashes */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(TKV_NODE_BIN, (char *const *)argv);
        _exit(127);
    }
    nd->pid = pid;
}

void hc_start_all(struct hc *c, int mode)
{
    int i;
    for (i = 1; i <= c->n; i++) {
        hc_start(c, i, mode, 0);
    }
}

int hc_stop(struct hc *c, int i, int sig)
{
    int status = 0;
    if (c->nodes[i].pid <= 0) {
        return 0;
    }
    kill(c->nodes[i].pid, sig);
    if (sig == SIGTERM || sig == SIGKILL) {
        int64_t deadline = hc_now_ms() + 20000;
        for (;;) {
            pid_t p = waitpid(c->nodes[i].pid, &status, WNOHANG);
            if (p == c->nodes[i].pid) {
                break;
            }
            if (hc_now_ms() > deadline) {
                kill(c->nodes[i].pid, SIGKILL);
                waitpid(c->nodes[i].pid, &status, 0);
                status = -1;
                break;
            }
            hc_sleep_ms(10);
        }
        c->nodes[i].pid = 0;
    }
    return status;
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

int hc_call(struct hc *c,
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

int hc_call_leader(struct hc *c,
                   struct tkv_probe *p,
                   int i,
                   struct tkv_req *req,
                   struct tkv_reply *rep,
                   int timeout_ms)
{
    int64_t deadline = hc_now_ms() + timeout_ms;
    int target = i;
    int rv;
    for (;;) {
        rv = hc_call(c, p, target, req, rep);
        if (rv == 0 && rep->code == TKV_ENOT_LEADER && rep->leader != NULL) {
            int k;
            for (k = 1; k <= HC_MAX; k++) {
                if (strcmp(c->nodes[k].client, rep->leader) == 0) {
                    target = k;
                }
            }
        }
        if (rv == 0 && rep->code != TKV_ENOT_LEADER &&
            rep->code != TKV_EUNAVAILABLE) {
            return 0;
        }
        if (hc_now_ms() > deadline) {
            return rv != 0 ? rv : rep->code;
        }
        if (rv != 0 || rep->code == TKV_EUNAVAILABLE || rep->leader == NULL) {
            /* try the next running node */
            int k;
            for (k = 1; k <= HC_MAX; k++) {
                target = target % HC_MAX + 1;
                if (c->nodes[target].pid > 0) {
                    break;
                }
            }
            hc_sleep_ms(50);
        }
    }
}

int hc_status(struct hc *c,
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

int hc_wait_leader(struct hc *c, int timeout_ms)
{
    int64_t deadline = hc_now_ms() + timeout_ms;
    while (hc_now_ms() < deadline) {
        int i, leader = 0, agree = 1;
        uint64_t leader_id = 0;
        for (i = 1; i <= HC_MAX; i++) {
            struct tkv_status st;
            char role[32];
            if (c->nodes[i].pid <= 0) {
                continue;
            }
            if (hc_status(c, i, &st, role, sizeof role) != 0) {
                agree = 0;
                continue;
            }
            if (strcmp(role, "leader") == 0) {
                leader = i;
            }
            if (st.leader_id == 0 ||
                (leader_id != 0 && st.leader_id != leader_id)) {
                agree = 0;
            }
            leader_id = st.leader_id;
        }
        if (leader != 0 && agree && leader_id == (uint64_t)leader) {
            return leader;
        }
        hc_sleep_ms(50);
    }
    return 0;
}

int hc_set(struct hc *c,
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

int hc_get(struct hc *c,
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

int hc_log_count(struct hc *c, int i, const char *text)
{
    char line[2048];
    int count = 0;
    FILE *f = fopen(c->nodes[i].log, "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, text) != NULL) {
            count++;
        }
    }
    fclose(f);
    return count;
}
