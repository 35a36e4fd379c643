/* tuplekv-node: main(). One struct owns the loop, the replica (raft/) and
 * the client server, as dqlite's server.c does.
 *
 * Start: flags + config file -> data dir (created, must be a writable
 * directory) -> replica (raft log, snapshot, transport) -> client listener
 * -> with --join on a fresh data dir, a thread asks the cluster to add
 * this node (member_add, following NOT_LEADER redirects) -> loop.
 * Stop (SIGTERM or SIGINT): stop accepting and reading -> wait up to 5 s
 * for in-flight requests to be answered and written -> close raft (fails
 * what is still pending) -> close connections -> exit 0.
 * Exit codes: 0 clean stop, 1 runtime failure, 2 bad flags / data dir /
 * raft start failure. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "../common/heap.h"
#include "../common/log.h"
#include "config.h"
#include "probe.h"
#include "server.h"

#define TKV_DRAIN_MS 5000

struct tkv_node {
    struct tkv_node_config cfg;
    uv_loop_t loop;
    struct tkv_replica *rep;
    struct tkv_server srv;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    uv_timer_t drain;
    uint64_t drain_deadline;
    int stopping;
    int exit_code;
    /* --join */
    uv_thread_t join_thread;
    int join_started;
    atomic_int join_stop;
};

/* ---- data dir ---------------------------------------------------------------
 */

static int tkv__mkdirs(const char *path)
{
    char tmp[1024];
    size_t i, n = strlen(path);
    if (n == 0 || n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (tmp[i] == '/' || tmp[i] == '\0') {
            char c = tmp[i];
            tmp[i] = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                return -1;
            }
            tmp[i] = c;
        }
    }
    return 0;
}

static int tkv__prepare_data_dir(const char *dir, struct tkv_err *err)
{
    struct stat st;
    if (tkv__mkdirs(dir) != 0) {
        return tkv_err_set(err, TKV_EIO, "data dir %s: cannot create: %s", dir,
                           strerror(errno));
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return tkv_err_set(err, TKV_EIO, "data dir %s: not a directory", dir);
    }
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        return tkv_err_set(err, TKV_EIO, "data dir %s: not writable: %s", dir,
                           strerror(errno));
    }
    return 0;
}

static void tkv__raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The heap on transparent huge pages. A node's memory is a million small
 * allocations made at once (restore, bulk apply) and raft's whole-file
 * snapshot buffer; on 4 KiB pages a third of a restart went to page faults.
 * glibc madvises its heap and mmapped chunks for THP under the tunable
 * glibc.malloc.hugetlb=1, which is read only at process start: so when it
 * is not set, set it and exec this binary again (same pid, same argv). A
 * fork child's copy-on-write still copies 4 KiB: a write fault on a shared
 * huge page splits it (Linux >= 5.8). Returns only when no exec happened. */
#define TKV_HUGETLB "glibc.malloc.hugetlb"

static void tkv__heap_huge_pages(int want, char **argv)
{
    const char *cur = getenv("GLIBC_TUNABLES");
    char thp[128] = "";
    char *val;
    size_t len;
    FILE *f;

    if (cur != NULL && strstr(cur, TKV_HUGETLB "=") != NULL) {
        /* an exec of /proc/self/exe named the process "exe" (ps, top) */
        const char *name = strrchr(argv[0], '/');
        (void)prctl(PR_SET_NAME, name != NULL ? name + 1 : argv[0]);
        tkv_log_info("heap: GLIBC_TUNABLES=%s", cur);
        /* glibc advises its heap for THP: put it back after each fork */
        tkv_heap_collapse_enable(strstr(cur, TKV_HUGETLB "=1") != NULL);
        return;
    }
    if (!want) {
        return;
    }
    f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f != NULL) {
        if (fgets(thp, sizeof thp, f) == NULL) {
            thp[0] = '\0';
        }
        fclose(f);
    }
    if (thp[0] == '\0' || strstr(thp, "[never]") != NULL) {
        tkv_log_info("heap: 4 KiB pages (transparent huge pages %s)",
                     thp[0] == '\0' ? "not supported" : "disabled");
        return;
    }
    len = (cur != NULL ? strlen(cur) + 1 : 0) + sizeof TKV_HUGETLB "=1";
    val = malloc(len);
    if (val == NULL) {
        return;
    }
    snprintf(val, len, "%s%s" TKV_HUGETLB "=1", cur != NULL ? cur : "",
             cur != NULL ? ":" : "");
    if (setenv("GLIBC_TUNABLES", val, 1) == 0) {
        execv("/proc/self/exe", argv);
        tkv_log_warn("heap: cannot re-exec for huge pages: %s",
                     strerror(errno));
        if (cur != NULL) {
            setenv("GLIBC_TUNABLES", cur, 1);
        } else {
            unsetenv("GLIBC_TUNABLES");
        }
    }
    free(val);
}

/* ---- --join
 * ------------------------------------------------------------------ */

static void tkv__join_main(void *arg)
{
    struct tkv_node *n = arg;
    struct tkv_probe p;
    struct tkv_req req;
    struct tkv_reply rep;
    struct tkv_err err;
    int attempt;

    tkv_probe_init(&p);
    tkv_reply_init(&rep);
    tkv_log_info("joining the cluster via %s", n->cfg.join);
    for (attempt = 0; !atomic_load(&n->join_stop); attempt++) {
        int rv;
        tkv_req_init(&req);
        req.op = TKV_OP_MEMBER_ADD;
        req.member_id = n->cfg.id;
        req.raft_address = n->cfg.raft_address;
        req.client_address = n->cfg.client_address;
        tkv_err_clear(&err);
        rv =
            tkv_probe_call_leader(&p, n->cfg.join, &req, &rep, 3, 120000, &err);
        tkv_req_close(&req);
        if (rv == 0 && rep.code == 0) {
            tkv_log_info("joined the cluster as member %llu",
                         (unsigned long long)n->cfg.id);
            break;
        }
        if (rv == 0 && rep.code == TKV_EINVALID) {
            tkv_log_error("join refused: %s", rep.message ? rep.message : "");
            break;
        }
        if (attempt % 10 == 0) {
            tkv_log_warn(
                "join: %s; retrying",
                rv != 0 ? err.msg
                        : (rep.message ? rep.message : tkv_errname(rep.code)));
        }
        tkv_probe_close(&p);
        tkv_probe_init(&p);
        usleep(300 * 1000);
    }
    tkv_reply_close(&rep);
    tkv_probe_close(&p);
}

/* ---- stop
 * --------------------------------------------------------------------- */

static void tkv__handle_closed_cb(uv_handle_t *h)
{
    (void)h;
}

static void tkv__server_closed_cb(void *data)
{
    struct tkv_node *n = data;
    if (n->join_started) {
        atomic_store(&n->join_stop, 1);
        uv_thread_join(&n->join_thread);
        n->join_started = 0;
    }
    tkv_log_info("stopped");
}

static void tkv__replica_closed_cb(void *data)
{
    struct tkv_node *n = data;
    n->rep = NULL;
    tkv_server_close(&n->srv, tkv__server_closed_cb, n);
}

static int tkv__unwritten(struct tkv_server *s)
{
    const struct tkv_conn *c;
    for (c = s->conns; c != NULL; c = c->next) {
        if (c->out.len > 0 || c->write_busy) {
            return 1;
        }
    }
    return 0;
}

static void tkv__drain_cb(uv_timer_t *t)
{
    struct tkv_node *n = t->data;
    if ((n->srv.inflight > 0 || tkv__unwritten(&n->srv)) &&
        uv_now(&n->loop) < n->drain_deadline) {
        return;
    }
    if (n->srv.inflight > 0) {
        tkv_log_warn("%zu requests still in flight after %d ms: failing them",
                     n->srv.inflight, TKV_DRAIN_MS);
    }
    uv_close((uv_handle_t *)t, tkv__handle_closed_cb);
    tkv_replica_close(n->rep, tkv__replica_closed_cb, n);
}

static void tkv__signal_cb(uv_signal_t *h, int signum)
{
    struct tkv_node *n = h->data;
    if (n->stopping) {
        return;
    }
    n->stopping = 1;
    tkv_log_info("received %s: stopping",
                 signum == SIGTERM ? "SIGTERM" : "SIGINT");
    uv_close((uv_handle_t *)&n->sigterm, tkv__handle_closed_cb);
    uv_close((uv_handle_t *)&n->sigint, tkv__handle_closed_cb);
    tkv_server_stop_accepting(&n->srv);
    n->drain_deadline = uv_now(&n->loop) + TKV_DRAIN_MS;
    uv_timer_init(&n->loop, &n->drain);
    n->drain.data = n;
    uv_timer_start(&n->drain, tkv__drain_cb, 0, 10);
}

/* ---- main
 * --------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static struct tkv_node node;
    struct tkv_node *n = &node;
    struct tkv_replica_config rc;
    struct tkv_err err;
    char prefix[64];
    int rv;

    signal(SIGPIPE, SIG_IGN);
    tkv_err_clear(&err);
    if (tkv_node_config_parse(&n->cfg, argc, argv, &err) != 0) {
        fprintf(stderr, "tuplekv-node: %s\n", err.msg);
        return 2;
    }
    if (n->cfg.help) {
        tkv_node_config_usage(argv[0]);
        return 0;
    }
    if (n->cfg.probe[0] != '\0') {
        return tkv_probe_main(n->cfg.probe, n->cfg.probe_argc,
                              n->cfg.probe_argv);
    }
    tkv_log_set_level(n->cfg.log_level);
    snprintf(prefix, sizeof prefix, "node %llu", (unsigned long long)n->cfg.id);
    tkv_log_set_prefix(prefix);
    tkv__heap_huge_pages((int)n->cfg.huge_pages, argv);
    if (tkv__prepare_data_dir(n->cfg.data_dir, &err) != 0) {
        fprintf(stderr, "tuplekv-node: %s\n", err.msg);
        return 2;
    }
    tkv__raise_nofile();

    uv_loop_init(&n->loop);
    tkv_replica_config_default(&rc);
    rc.id = n->cfg.id;
    rc.raft_address = n->cfg.raft_address;
    rc.client_address = n->cfg.client_address;
    rc.data_dir = n->cfg.data_dir;
    rc.bootstrap = n->cfg.nbootstrap > 0 ? n->cfg.bootstrap : NULL;
    rc.nbootstrap = n->cfg.nbootstrap;
    rc.tick_ms = n->cfg.tick_ms;
    rc.election_timeout_ms = n->cfg.election_timeout_ms;
    rc.heartbeat_ms = n->cfg.heartbeat_ms;
    rc.snapshot_threshold = n->cfg.snapshot_threshold;
    rc.snapshot_trailing = n->cfg.snapshot_trailing;
    rc.snapshot_mode = n->cfg.snapshot_mode;
    rc.snapshot_compression = (int)n->cfg.snapshot_compression;
    rc.log_zero_fill = (int)n->cfg.log_zero_fill;
    tkv_log_info("starting: raft %s, clients %s, data %s", n->cfg.raft_address,
                 n->cfg.client_address, n->cfg.data_dir);
    rv = tkv_replica_start(&n->loop, &rc, &n->rep, &err);
    if (rv != 0) {
        fprintf(stderr, "tuplekv-node: %s\n", err.msg);
        return 2;
    }
    rv = tkv_server_start(&n->srv, &n->loop, n->rep, n->cfg.client_address,
                          n->cfg.max_connections, &err);
    if (rv != 0) {
        fprintf(stderr, "tuplekv-node: %s\n", err.msg);
        return 1;
    }
    uv_signal_init(&n->loop, &n->sigterm);
    uv_signal_init(&n->loop, &n->sigint);
    n->sigterm.data = n;
    n->sigint.data = n;
    uv_signal_start(&n->sigterm, tkv__signal_cb, SIGTERM);
    uv_signal_start(&n->sigint, tkv__signal_cb, SIGINT);

    if (n->cfg.join[0] != '\0') {
        if (tkv_replica_had_state(n->rep)) {
            tkv_log_info(
                "--join ignored: the data dir holds raft state "
                "already (a restart)");
        } else if (uv_thread_create(&n->join_thread, tkv__join_main, n) == 0) {
            n->join_started = 1;
        } else {
            tkv_log_error("cannot start the join thread");
        }
    }

    uv_run(&n->loop, UV_RUN_DEFAULT);
    if (n->join_started) {
        atomic_store(&n->join_stop, 1);
        uv_thread_join(&n->join_thread);
    }
    rv = uv_loop_close(&n->loop);
    if (rv != 0) {
        tkv_log_warn("loop closed with handles open: %s", uv_strerror(rv));
    }
    return n->exit_code;
}
