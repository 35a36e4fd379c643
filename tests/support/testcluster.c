/* Test clusters of real tuplekv-node processes (see testcluster.h).
 *
 * Every temp root made by tkv_tc_init is recorded in a small table of this
 * process, so that tkv_tc_finish can show the node logs of a failed run
 * after the teardowns have stopped the nodes, and delete the roots last.
 *
 * Node failures. Every place that reaps a node judges its wait status:
 * after SIGTERM only exit 0 is clean (tkv__tc_reap_term); a node reaped
 * without a signal from the test, or found dead by a SIGKILL, died on its
 * own. Either goes through tkv__tc_fail, which prints it and counts it in
 * the cluster and in the process. A sanitizer report in a node (a leak at
 * exit, UB, a heap error) makes it abort or exit non-zero under the
 * sanitizer tree's options, so it fails the test that way.
 * A node sets its SIGTERM handler only once it has started (raft, the
 * listener); until then SIGTERM kills it. A test may stop a node that is
 * still starting (restarted, while the other two already answer), so a
 * stop first waits for the handler (tkv__tc_wait_handler: SigCgt in
 * /proc/<pid>/status), and a node still without one after 20 s is a
 * failure too.
 *
 * Ports. A test names a port base, but two runs of the same test at once
 * (two build trees on one machine, ctest -j with --repeat) used to take the
 * same ports: the second cluster's nodes could not listen and exited at
 * their first start ("raft start: " with raft's empty message), and the
 * second test went on with the first one's nodes, seeing keys it had never
 * written. So each cluster reserves a block of TKV__TC_BLOCK ports for the
 * life of its process: an flock on TKV__TC_LOCK_DIR/<base>, which every
 * test cluster on the machine takes, and then a bind of each port, for
 * programs that take no lock (an older test binary, a leftover node). The
 * test's base is tried first, then the next blocks of the range in turn. */
#define _GNU_SOURCE
#include "testcluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nodeargv.h"
#include "rmtree.h"

#ifndef TKV_BIN_DIR
#error "TKV_BIN_DIR must point at the build's bin directory"
#endif

#define TKV__TC_ROOTS 16      /* clusters per test process */
#define TKV__TC_TAIL_LINES 40 /* of each node log, on failure */
#define TKV__TC_FAIL_LINES 30 /* of a failed node's log, at once */
#define TKV__TC_REAP_MS 20000 /* before SIGTERM becomes SIGKILL */

/* Port blocks: node i's client port is base + i, its raft port
 * base + TKV__TC_RAFT_OFFSET + i. The range ends below Linux's ephemeral
 * ports (32768..), so no outgoing connection holds one of them. */
#define TKV__TC_BLOCK 100
#define TKV__TC_RAFT_OFFSET 50
#define TKV__TC_PORT_LO 20000
#define TKV__TC_PORT_HI 30000
#define TKV__TC_LOCK_DIR "/tmp/tkv-test-ports"

static char tkv__tc_roots[TKV__TC_ROOTS][256];
static int tkv__tc_nroots;
static int tkv__tc_failures; /* node failures of every cluster */

/* The blocks this process holds, by the base its test asked for. */
static struct {
    int asked;
    int base;
} tkv__tc_blocks[TKV__TC_ROOTS];
static int tkv__tc_nblocks;

int64_t tkv_tc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tkv_tc_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

const char *tkv_tc_bin(const char *name)
{
    static _Thread_local char path[512];
    snprintf(path, sizeof path, "%s/%s", TKV_BIN_DIR, name);
    return path;
}

static void tkv__tc_remove_roots(void)
{
    int k;
    for (k = 0; k < tkv__tc_nroots; k++) {
        if (getenv("TKV_TEST_KEEP") != NULL) {
            fprintf(stderr, "testcluster: kept %s\n", tkv__tc_roots[k]);
        } else {
            tkv_rmtree(tkv__tc_roots[k]);
        }
    }
    tkv__tc_nroots = 0;
}

/* Print the last lines of a file to stderr (from its last 16 KiB). */
static void tkv__tc_tail(const char *path, int lines)
{
    char buf[16384];
    FILE *f = fopen(path, "r");
    long size;
    size_t len, k;
    int seen = 0;

    if (f == NULL) {
        return;
    }
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    if (size > (long)sizeof buf - 1) {
        fseek(f, size - (long)sizeof buf + 1, SEEK_SET);
    } else {
        rewind(f);
    }
    len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = '\0';
    /* back from the end to just after the newline that starts the window */
    for (k = len; k > 0; k--) {
        if (buf[k - 1] == '\n' && k != len && ++seen == lines) {
            break;
        }
    }
    fprintf(stderr, "---- %s (last %d lines) ----\n%s", path, lines, buf + k);
    if (len > 0 && buf[len - 1] != '\n') {
        fputc('\n', stderr);
    }
}

int tkv_tc_finish(int failed)
{
    int k, i;
    if (tkv__tc_failures > 0) {
        fprintf(stderr,
                "testcluster: %d node failure(s), shown above as "
                "\"testcluster: FAILED\": the run fails\n",
                tkv__tc_failures);
        if (failed == 0) {
            failed = 1;
        }
    }
    for (k = 0; failed != 0 && k < tkv__tc_nroots; k++) {
        fprintf(stderr, "testcluster: failed run, node logs of %s:\n",
                tkv__tc_roots[k]);
        for (i = 1; i <= TKV_TC_MAX; i++) {
            char path[300];
            snprintf(path, sizeof path, "%.255s/n%d.log", tkv__tc_roots[k], i);
            tkv__tc_tail(path, TKV__TC_TAIL_LINES);
        }
    }
    tkv__tc_remove_roots();
    return failed;
}

/* 1 when each port of the block at base can be bound on 127.0.0.1 (as
 * libuv binds: SO_REUSEADDR, so TIME_WAIT leftovers do not count). */
static int tkv__tc_ports_free(int base)
{
    int i, raft, ok = 1;
    for (raft = 0; raft <= 1 && ok; raft++) {
        for (i = 1; i <= TKV_TC_MAX && ok; i++) {
            struct sockaddr_in sa;
            int one = 1;
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                return 0;
            }
            memset(&sa, 0, sizeof sa);
            sa.sin_family = AF_INET;
            sa.sin_port =
                htons((uint16_t)(base + raft * TKV__TC_RAFT_OFFSET + i));
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
            close(fd);
        }
    }
    return ok;
}

/* Take the block at base: 0, or -1 when another process holds it. */
static int tkv__tc_lock_block(int base)
{
    char path[64];
    int fd;
    snprintf(path, sizeof path, "%s/%d", TKV__TC_LOCK_DIR, base);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd >= 0) {
        fchmod(fd, 0666); /* whoever runs tests next may be another user */
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            close(fd);
            return -1;
        }
    }
    /* without a lock file (no /tmp?) the bind check alone decides */
    if (!tkv__tc_ports_free(base)) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    /* fd stays open: the lock lasts as long as this process */
    return 0;
}

/* The base of a free block for a test that asked for `asked` (the same
 * block again when this process asked for it before), or -1. */
static int tkv__tc_reserve(int asked)
{
    const int nblocks = (TKV__TC_PORT_HI - TKV__TC_PORT_LO) / TKV__TC_BLOCK;
    int first = -1, k, t;

    for (k = 0; k < tkv__tc_nblocks; k++) {
        if (tkv__tc_blocks[k].asked == asked) {
            return tkv__tc_blocks[k].base;
        }
    }
    if (tkv__tc_nblocks == TKV__TC_ROOTS) {
        return -1;
    }
    if (mkdir(TKV__TC_LOCK_DIR, 01777) == 0) {
        chmod(TKV__TC_LOCK_DIR, 01777); /* past the umask */
    }
    if (asked >= TKV__TC_PORT_LO && asked < TKV__TC_PORT_HI) {
        first = (asked - TKV__TC_PORT_LO) / TKV__TC_BLOCK;
    }
    for (t = first < 0 ? 1 : 0; t <= nblocks; t++) {
        int base = TKV__TC_PORT_LO + (first + t) % nblocks * TKV__TC_BLOCK;
        int mine = 0;
        if (t > 0 && first >= 0 && (first + t) % nblocks == first) {
            continue; /* tried first */
        }
        for (k = 0; k < tkv__tc_nblocks; k++) {
            mine |= tkv__tc_blocks[k].base == base;
        }
        if (!mine && tkv__tc_lock_block(base) == 0) {
            tkv__tc_blocks[tkv__tc_nblocks].asked = asked;
            tkv__tc_blocks[tkv__tc_nblocks++].base = base;
            return base;
        }
    }
    return -1;
}

int tkv_tc_init(struct tkv_tc *tc,
                const char *name,
                int base,
                int n,
                const char *const *flags)
{
    static int registered;
    struct rlimit rl;
    size_t off = 0;
    int i;

    memset(tc, 0, sizeof *tc);
    if (n < 1 || n > TKV_TC_MAX) {
        fprintf(stderr, "testcluster: %d nodes (1..%d)\n", n, TKV_TC_MAX);
        return -1;
    }
    for (; flags != NULL && flags[tc->nflags] != NULL; tc->nflags++) {
        if (tc->nflags == TKV_TC_MAX_FLAGS ||
            strlen(flags[tc->nflags]) >= sizeof tc->flags[0]) {
            fprintf(stderr, "testcluster: too many or too long flags\n");
            return -1;
        }
        strcpy(tc->flags[tc->nflags], flags[tc->nflags]);
    }
    /* a node that dies mid-write must not kill the test; the abuse test
     * holds 1000 connections */
    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!registered) {
        atexit(tkv__tc_remove_roots);
        registered = 1;
    }
    if (tkv__tc_nroots == TKV__TC_ROOTS) {
        fprintf(stderr, "testcluster: more than %d clusters\n", TKV__TC_ROOTS);
        return -1;
    }
    snprintf(tc->root, sizeof tc->root, "/tmp/tkv-%s-XXXXXX", name);
    if (mkdtemp(tc->root) == NULL) {
        fprintf(stderr, "testcluster: mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    strcpy(tkv__tc_roots[tkv__tc_nroots++], tc->root);
    tc->base = tkv__tc_reserve(base);
    if (tc->base < 0) {
        fprintf(stderr, "testcluster: no free block of ports in %d..%d\n",
                TKV__TC_PORT_LO, TKV__TC_PORT_HI - 1);
        return -1;
    }
    tc->n = n;
    for (i = 1; i <= TKV_TC_MAX; i++) {
        struct tkv_tc_node *nd = &tc->nodes[i];
        snprintf(nd->client, sizeof nd->client, "127.0.0.1:%d", tc->base + i);
        snprintf(nd->raft, sizeof nd->raft, "127.0.0.1:%d",
                 tc->base + TKV__TC_RAFT_OFFSET + i);
        snprintf(nd->dir, sizeof nd->dir, "%s/d%d", tc->root, i);
        snprintf(nd->log, sizeof nd->log, "%s/n%d.log", tc->root, i);
        if (i <= n) {
            off += (size_t)snprintf(tc->endpoints + off,
                                    sizeof tc->endpoints - off, "%s%s",
                                    i > 1 ? "," : "", nd->client);
        }
    }
    if (tc->base != base) {
        fprintf(stderr, "testcluster: %s in %s, ports %d.. instead of %d..\n",
                name, tc->root, tc->base, base);
    } else {
        fprintf(stderr, "testcluster: %s in %s, ports %d..\n", name, tc->root,
                tc->base);
    }
    return 0;
}

int tkv_tc_start(struct tkv_tc *tc, int i, enum tkv_tc_mode mode, int join_from)
{
    struct tkv_tc_node *nd;
    const char *node_bin = tkv_tc_bin("tuplekv-node");
    struct tkv_nodeargv a;
    int k;
    pid_t parent = getpid(), pid;

    if (i < 1 || i > TKV_TC_MAX || tc->nodes[i].pid > 0 ||
        (mode == TKV_TC_JOIN && (join_from < 1 || join_from > TKV_TC_MAX))) {
        fprintf(stderr, "testcluster: cannot start node %d (join via %d)\n", i,
                join_from);
        return -1;
    }
    nd = &tc->nodes[i];
    tkv_nodeargv_init(&a, "tuplekv-node", i, nd->raft, nd->client, nd->dir);
    if (mode == TKV_TC_BOOTSTRAP) {
        for (k = 1; k <= tc->n; k++) {
            tkv_nodeargv_member(&a, k, tc->nodes[k].raft, tc->nodes[k].client);
        }
        tkv_nodeargv_bootstrap(&a);
    } else if (mode == TKV_TC_JOIN) {
        tkv_nodeargv_flag(&a, "--join", tc->nodes[join_from].client);
    }
    for (k = 0; k < tc->nflags; k++) {
        tkv_nodeargv_add(&a, tc->flags[k]);
    }
    if (a.overflow) {
        fprintf(stderr, "testcluster: node %d: command line too long\n", i);
        return -1;
    }

    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "testcluster: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int fd = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        /* never outlive the test, even when it crashes; the parent may have
         * died before the prctl */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(127);
        }
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(node_bin, (char *const *)a.argv);
        _exit(127);
    }
    nd->pid = pid;
    nd->paused = 0;
    return 0;
}

int tkv_tc_start_all(struct tkv_tc *tc, enum tkv_tc_mode mode)
{
    int i;
    for (i = 1; i <= tc->n; i++) {
        if (tkv_tc_start(tc, i, mode, 0) != 0) {
            return -1;
        }
    }
    return 0;
}

/* How a node ended, for a failure message. */
static void tkv__tc_describe(int status, char *buf, size_t size)
{
    if (status < 0) {
        snprintf(buf, size, "still running %d s after SIGTERM, SIGKILLed",
                 TKV__TC_REAP_MS / 1000);
    } else if (WIFEXITED(status)) {
        snprintf(buf, size, "exit code %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(buf, size, "killed by signal %d (%s)%s%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "",
                 WTERMSIG(status) == SIGTERM
                     ? ": it never set its handler (had not started)"
                     : "");
    } else {
        snprintf(buf, size, "wait status 0x%x", status);
    }
}

/* Node i failed (what: how the test saw it): print which, how it ended,
 * its log and the log's last lines; count it for tkv_tc_destroy and
 * tkv_tc_finish. */
static void tkv__tc_fail(struct tkv_tc *tc, int i, const char *what, int status)
{
    char how[128];
    tkv__tc_describe(status, how, sizeof how);
    fprintf(stderr, "testcluster: FAILED: node %d %s: %s; log %s\n", i, what,
            how, tc->nodes[i].log);
    tkv__tc_tail(tc->nodes[i].log, TKV__TC_FAIL_LINES);
    tc->failures++;
    tkv__tc_failures++;
}

/* Wait for a signalled node until deadline, then SIGKILL it: its waitpid
 * status, or -1 when it had to be killed. */
static int tkv__tc_reap(struct tkv_tc_node *nd, int64_t deadline)
{
    int status = 0;
    while (waitpid(nd->pid, &status, WNOHANG) == 0) {
        if (tkv_tc_now_ms() > deadline) {
            kill(nd->pid, SIGKILL);
            waitpid(nd->pid, &status, 0);
            status = -1;
            break;
        }
        tkv_tc_sleep_ms(10);
    }
    nd->pid = 0;
    nd->paused = 0;
    return status;
}

/* When running node i has died (the test did not stop it): reap it, fail
 * it, and 1 with *status its waitpid status; else 0. */
static int tkv__tc_died(struct tkv_tc *tc, int i, int *status /* OUT */)
{
    struct tkv_tc_node *nd = &tc->nodes[i];
    if (nd->pid <= 0 || waitpid(nd->pid, status, WNOHANG) != nd->pid) {
        return 0;
    }
    tkv__tc_fail(tc, i, "died on its own (the test did not stop it)", *status);
    nd->pid = 0;
    nd->paused = 0;
    return 1;
}

/* 1 when process pid catches SIGTERM: its SigCgt mask has the bit. */
static int tkv__tc_catches_term(pid_t pid)
{
    char path[64], line[256];
    unsigned long long mask = 0;
    int found = 0;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    while (!found && fgets(line, sizeof line, f) != NULL) {
        found = sscanf(line, "SigCgt: %llx", &mask) == 1;
    }
    fclose(f);
    return found && (mask & (1ULL << (SIGTERM - 1))) != 0;
}

/* Wait until running node i has set its SIGTERM handler, or deadline (the
 * SIGTERM that follows then kills it, and it fails). 0, or -1 when it died
 * meanwhile: reaped, failed, *status its waitpid status. */
static int tkv__tc_wait_handler(struct tkv_tc *tc,
                                int i,
                                int64_t deadline,
                                int *status /* OUT */)
{
    while (!tkv__tc_catches_term(tc->nodes[i].pid) &&
           tkv_tc_now_ms() < deadline) {
        if (tkv__tc_died(tc, i, status)) {
            return -1;
        }
        tkv_tc_sleep_ms(10);
    }
    return 0;
}

/* tkv__tc_reap for node i after a SIGTERM: anything but exit 0 fails. */
static int tkv__tc_reap_term(struct tkv_tc *tc, int i, int64_t deadline)
{
    int status = tkv__tc_reap(&tc->nodes[i], deadline);
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        tkv__tc_fail(tc, i, "did not exit 0 on SIGTERM", status);
    }
    return status;
}

int tkv_tc_kill(struct tkv_tc *tc, int i, int sig)
{
    struct tkv_tc_node *nd;
    if (i < 1 || i > TKV_TC_MAX || tc->nodes[i].pid <= 0) {
        return 0;
    }
    nd = &tc->nodes[i];
    if (nd->paused && sig != SIGSTOP) {
        kill(nd->pid, SIGCONT);
        nd->paused = 0;
    }
    if (sig == SIGTERM) {
        int status;
        int64_t deadline = tkv_tc_now_ms() + TKV__TC_REAP_MS;
        if (tkv__tc_wait_handler(tc, i, deadline, &status) != 0) {
            return status;
        }
    }
    kill(nd->pid, sig);
    if (sig == SIGSTOP) {
        nd->paused = 1;
    }
    if (sig == SIGTERM) {
        return tkv__tc_reap_term(tc, i, tkv_tc_now_ms() + TKV__TC_REAP_MS);
    }
    if (sig == SIGKILL) {
        int status = tkv__tc_reap(nd, tkv_tc_now_ms() + TKV__TC_REAP_MS);
        if (status >= 0 &&
            !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
            tkv__tc_fail(tc, i, "had died on its own before the test's SIGKILL",
                         status);
        }
        return status;
    }
    return 0;
}

int tkv_tc_destroy(struct tkv_tc *tc)
{
    int64_t deadline;
    int i;

    tkv_tc_check_running(tc); /* fails the nodes that died */
    /* all at once, so slow shutdowns overlap */
    deadline = tkv_tc_now_ms() + TKV__TC_REAP_MS;
    for (i = 1; i <= TKV_TC_MAX; i++) {
        struct tkv_tc_node *nd = &tc->nodes[i];
        int status;
        if (nd->pid <= 0) {
            continue;
        }
        if (nd->paused) {
            kill(nd->pid, SIGCONT);
        }
        if (tkv__tc_wait_handler(tc, i, deadline, &status) == 0) {
            kill(nd->pid, SIGTERM);
        }
    }
    deadline = tkv_tc_now_ms() + TKV__TC_REAP_MS;
    for (i = 1; i <= TKV_TC_MAX; i++) {
        if (tc->nodes[i].pid > 0) {
            tkv__tc_reap_term(tc, i, deadline);
        }
    }
    return tc->failures == 0 ? 0 : -1;
}

int tkv_tc_teardown(void **state)
{
    return *state != NULL ? tkv_tc_destroy(*state) : 0;
}

int tkv_tc_check_running(struct tkv_tc *tc)
{
    int i, status, rv = 0;
    for (i = 1; i <= TKV_TC_MAX; i++) {
        if (tkv__tc_died(tc, i, &status)) {
            rv = -1;
        }
    }
    return rv;
}

int tkv_tc_wait_leader(struct tkv_tc *tc,
                       int timeout_ms,
                       tkv_tc_status_cb status_cb,
                       void *arg)
{
    int64_t deadline = tkv_tc_now_ms() + timeout_ms;
    do {
        int i, leader = 0, agree = 1;
        uint64_t agreed_id = 0;
        if (tkv_tc_check_running(tc) != 0) {
            return 0;
        }
        for (i = 1; i <= TKV_TC_MAX; i++) {
            int is_leader = 0;
            uint64_t leader_id = 0;
            if (tc->nodes[i].pid <= 0 || tc->nodes[i].paused) {
                continue;
            }
            if (status_cb(arg, tc, i, &is_leader, &leader_id) != 0) {
                agree = 0;
                continue;
            }
            if (is_leader) {
                leader = i;
            }
            if (leader_id == 0 || (agreed_id != 0 && leader_id != agreed_id)) {
                agree = 0;
            }
            agreed_id = leader_id;
        }
        if (leader != 0 && agree && agreed_id == (uint64_t)leader) {
            return leader;
        }
        tkv_tc_sleep_ms(50);
    } while (tkv_tc_now_ms() < deadline);
    fprintf(stderr, "testcluster: no agreed leader within %d ms\n", timeout_ms);
    return 0;
}

int tkv_tc_log_count(const struct tkv_tc *tc, int i, const char *text)
{
    char line[2048];
    int count = 0;
    FILE *f = fopen(tc->nodes[i].log, "r");
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
