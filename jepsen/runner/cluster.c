/* Nodes in network namespaces: start, kill, pause, wipe, partition, ask.
 *
 * Starting node i:
 *   1. append a "=== tuplekv-jepsen: start ..." marker to its log;
 *   2. build argv and the environment (libfaketime for a skewed clock)
 *      before fork, since the child of a threaded process may only make
 *      async-signal-safe calls;
 *   3. child: setsid, setns into the node's namespace, log as stdout and
 *      stderr, exec tuplekv-node. A failed setns or exec exits 126/127,
 *      which the reaper reports like any other unexpected exit.
 * Partitions replace the filter table of each namespace with
 * iptables-restore (one exec per namespace, atomic per namespace). */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nodeargv.h"
#include "rmtree.h"
#include "runner.h"

extern char **environ;

#define MAX_ENV 512

static const char *find_exe(const char *name, char *out, size_t len)
{
    static const char *dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin",
                                 "/usr/local/sbin"};
    size_t i;
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(out, len, "%s/%s", dirs[i], name);
        if (access(out, X_OK) == 0) {
            return out;
        }
    }
    out[0] = '\0';
    return NULL;
}

int tkvj_cluster_init(struct tkvj_cluster *cl, struct tkvj_run *r)
{
    const struct tkvj_opts *o = &r->o;
    char path[1200];
    size_t off = 0;
    int i;

    memset(cl, 0, sizeof *cl);
    cl->run = r;
    cl->n = o->nodes;
    pthread_mutex_init(&cl->mu, NULL);
    snprintf(cl->node_bin, sizeof cl->node_bin, "%s/tuplekv-node",
             o->bin_dir);
    if (access(cl->node_bin, X_OK) != 0) {
        fprintf(stderr, "tuplekv-jepsen: %s: %s\n", cl->node_bin,
                strerror(errno));
        return -1;
    }
    if (find_exe("iptables", cl->iptables, sizeof cl->iptables) == NULL) {
        fprintf(stderr, "tuplekv-jepsen: iptables not found\n");
        return -1;
    }
    snprintf(path, sizeof path, "%s/data", o->store);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "tuplekv-jepsen: mkdir %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/cores", o->store);
    mkdir(path, 0755);
    for (i = 1; i <= cl->n; i++) {
        struct tkvj_node *nd = &cl->nodes[i];
        nd->id = i;
        snprintf(nd->ns, sizeof nd->ns, "%s-n%d", o->ns_prefix, i);
        snprintf(nd->ip, sizeof nd->ip, "%s.%d", o->net, 10 + i);
        /* from the option, not nd->ip: gcc's -Wrestrict (sanitizer
         * builds) cannot tell that two members do not overlap */
        snprintf(nd->client, sizeof nd->client, "%s.%d:%d", o->net, 10 + i,
                 TKVJ_CLIENT_PORT);
        snprintf(nd->raft, sizeof nd->raft, "%s.%d:%d", o->net, 10 + i,
                 TKVJ_RAFT_PORT);
        snprintf(nd->data_dir, sizeof nd->data_dir, "%s/data/n%d", o->store,
                 i);
        snprintf(nd->log_path, sizeof nd->log_path, "%s/n%d.log", o->store,
                 i);
        snprintf(nd->core_dir, sizeof nd->core_dir, "%s/cores/n%d", o->store,
                 i);
        off += (size_t)snprintf(cl->endpoints + off,
                                sizeof cl->endpoints - off, "%s%s",
                                i > 1 ? "," : "", nd->client);
        mkdir(nd->core_dir, 0755);
    }
    cl->admin = tkvj_client(r, cl->endpoints);
    if (cl->admin == NULL) {
        return -1;
    }
    for (i = 1; i <= cl->n; i++) {
        cl->node_client[i] = tkvj_client(r, cl->nodes[i].client);
        if (cl->node_client[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

void tkvj_cluster_close(struct tkvj_cluster *cl)
{
    int i;
    tkv_close(cl->admin);
    cl->admin = NULL;
    for (i = 1; i <= cl->n; i++) {
        tkv_close(cl->node_client[i]);
        cl->node_client[i] = NULL;
    }
}

static void log_marker(struct tkvj_node *nd, const char *what)
{
    FILE *f = fopen(nd->log_path, "ae");
    if (f != NULL) {
        fprintf(f, "=== tuplekv-jepsen: %s node %d at t=%.3fs ===\n", what,
                nd->id, (double)tkvj_now_ns() / 1e9);
        fclose(f);
    }
}

/* fork + setns + exec: argv[0] is the program path. stdin_fd >= 0 becomes
 * the child's stdin; out_path (may be NULL: /dev/null) its stdout/err. */
static pid_t spawn_in_ns(const char *ns, char *const argv[],
                         char *const envp[], int stdin_fd,
                         const char *out_path, const char *cwd)
{
    char nspath[256];
    int nsfd;
    int outfd;
    pid_t pid;

    snprintf(nspath, sizeof nspath, "/run/netns/%s", ns);
    nsfd = open(nspath, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
        tkvj_log("open %s: %s", nspath, strerror(errno));
        return -1;
    }
    outfd = open(out_path != NULL ? out_path : "/dev/null",
                 O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (outfd < 0) {
        close(nsfd);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        setsid();
        if (setns(nsfd, CLONE_NEWNET) != 0) {
            _exit(126);
        }
        if (stdin_fd >= 0) {
            dup2(stdin_fd, 0);
        } else {
            int devnull = open("/dev/null", O_RDONLY);
            if (devnull >= 0) {
                dup2(devnull, 0);
            }
        }
        dup2(outfd, 1);
        dup2(outfd, 2);
        if (cwd != NULL) {
            /* a crash leaves its core here (core_pattern "core") */
            struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
            if (chdir(cwd) == 0) {
                setrlimit(RLIMIT_CORE, &rl);
            }
        }
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(nsfd);
    close(outfd);
    return pid;
}

/* Split node_args on spaces and append the words to a (modifies buf). */
static void split_args(char *buf, struct tkv_nodeargv *a)
{
    char *save = NULL;
    char *tok;
    for (tok = strtok_r(buf, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save)) {
        tkv_nodeargv_add(a, tok);
    }
}

int tkvj_cluster_start(struct tkvj_cluster *cl, int i, enum tkvj_start how,
                       int skew_s)
{
    const struct tkvj_opts *o = &cl->run->o;
    struct tkvj_node *nd = &cl->nodes[i];
    struct tkv_nodeargv args;
    char *envp[MAX_ENV];
    char snap[16], trailing[16], extra[512];
    char preload[700], faketime[32], asan[600], what[128];
    int envc = 0, j;
    pid_t pid;

    pthread_mutex_lock(&cl->mu);
    if (nd->pid != 0) {
        pthread_mutex_unlock(&cl->mu);
        return 0;
    }
    snprintf(snap, sizeof snap, "%d", o->snapshot_threshold);
    snprintf(trailing, sizeof trailing, "%d",
             o->snapshot_threshold / 2 > 0 ? o->snapshot_threshold / 2 : 1);
    tkv_nodeargv_init(&args, cl->node_bin, i, nd->raft, nd->client,
                      nd->data_dir);
    if (o->snapshot_threshold > 0) {
        tkv_nodeargv_flag(&args, "--snapshot-threshold", snap);
        tkv_nodeargv_flag(&args, "--snapshot-trailing", trailing);
    }
    if (how == TKVJ_START_BOOTSTRAP) {
        for (j = 1; j <= cl->n; j++) {
            tkv_nodeargv_member(&args, j, cl->nodes[j].raft,
                                cl->nodes[j].client);
        }
        tkv_nodeargv_bootstrap(&args);
    } else if (how == TKVJ_START_JOIN) {
        /* any other member; the node follows NOT_LEADER redirects */
        int via = 0;
        for (j = 1; j <= cl->n; j++) {
            if (j != i && !cl->nodes[j].removed) {
                via = j;
                if (cl->nodes[j].pid != 0 && !cl->nodes[j].paused) {
                    break;
                }
            }
        }
        if (via == 0) {
            pthread_mutex_unlock(&cl->mu);
            return -1;
        }
        tkv_nodeargv_flag(&args, "--join", cl->nodes[via].client);
    }
    snprintf(extra, sizeof extra, "%s", o->node_args);
    split_args(extra, &args);

    for (j = 0; environ[j] != NULL && envc < MAX_ENV - 8; j++) {
        if (skew_s != 0 && (strncmp(environ[j], "LD_PRELOAD=", 11) == 0 ||
                            strncmp(environ[j], "FAKETIME", 8) == 0 ||
                            strncmp(environ[j], "ASAN_OPTIONS=", 13) == 0)) {
            continue;
        }
        envp[envc++] = environ[j];
    }
    if (skew_s != 0) {
        const char *a = getenv("ASAN_OPTIONS");
        snprintf(preload, sizeof preload, "LD_PRELOAD=%s", o->faketime_lib);
        snprintf(faketime, sizeof faketime, "FAKETIME=%+d", skew_s);
        /* libfaketime is preloaded ahead of an ASan runtime */
        snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
                 a != NULL ? a : "", a != NULL && *a ? ":" : "");
        envp[envc++] = preload;
        envp[envc++] = faketime;
        envp[envc++] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
        envp[envc++] = asan;
    }
    envp[envc] = NULL;

    snprintf(what, sizeof what, "%s%s",
             how == TKVJ_START_BOOTSTRAP ? "bootstrap"
             : how == TKVJ_START_JOIN    ? "join (wiped)"
                                         : "restart",
             skew_s != 0 ? " (faketime)" : "");
    if (skew_s != 0) {
        char w2[160];
        snprintf(w2, sizeof w2, "%s %+ds", what, skew_s);
        log_marker(nd, w2);
    } else {
        log_marker(nd, what);
    }
    pid = spawn_in_ns(nd->ns, (char *const *)args.argv, envp, -1, nd->log_path,
                      nd->core_dir);
    if (pid < 0) {
        pthread_mutex_unlock(&cl->mu);
        return -1;
    }
    nd->pid = pid;
    nd->incarnation++;
    nd->starts++;
    nd->paused = 0;
    nd->expect_exit = 0;
    nd->skew_s = skew_s;
    pthread_mutex_unlock(&cl->mu);
    return 0;
}

int tkvj_cluster_bootstrap(struct tkvj_cluster *cl, int timeout_ms)
{
    json_t *key = json_pack("[ss]", "_jepsen", "ready");
    json_t *val = json_true();
    struct tkv_opts opts = {.timeout_ms = 1000};
    struct tkv_err err = {0};
    int64_t deadline = tkvj_now_ms() + timeout_ms;
    int i, ok = 0;

    for (i = 1; i <= cl->n; i++) {
        if (tkvj_cluster_start(cl, i, TKVJ_START_BOOTSTRAP, 0) != 0) {
            json_decref(key);
            return -1;
        }
    }
    while (tkvj_now_ms() < deadline &&
           !atomic_load(&cl->run->interrupt)) {
        if (tkv_set(cl->admin, key, val, 0, &opts, NULL, &err) == 0) {
            ok = 1;
            break;
        }
        tkvj_cluster_reap(cl);
        usleep(100 * 1000);
    }
    if (!ok) {
        tkvj_log("cluster did not take a write in %d ms: %s", timeout_ms,
                 err.msg);
    }
    json_decref(key);
    return ok ? 0 : -1;
}

static void describe_status(int status, char *out, size_t len)
{
    if (WIFEXITED(status)) {
        snprintf(out, len, "exit %d", WEXITSTATUS(status));
    } else if (WIFSIGNALED(status)) {
        snprintf(out, len, "signal %d (%s)%s", WTERMSIG(status),
                 strsignal(WTERMSIG(status)),
                 WCOREDUMP(status) ? ", core dumped" : "");
    } else {
        snprintf(out, len, "status 0x%x", status);
    }
}

/* Caller holds cl->mu. */
static void unexpected_exit(struct tkvj_cluster *cl, struct tkvj_node *nd,
                            int status)
{
    char desc[128];
    char core[1300], kept[1300];
    json_t *f;
    describe_status(status, desc, sizeof desc);
    tkvj_log("node %d exited on its own: %s (see %s)", nd->id, desc,
             nd->log_path);
    f = json_pack("{si si ss ss}", "node", nd->id, "incarnation",
                  nd->incarnation, "status", desc, "log", nd->log_path);
    snprintf(core, sizeof core, "%s/core", nd->core_dir);
    snprintf(kept, sizeof kept, "%s/core.%d", nd->core_dir, nd->incarnation);
    if (rename(core, kept) == 0 && cl->ncrashes < TKVJ_MAX_CRASHES) {
        json_object_set_new(f, "core", json_string(kept));
        json_incref(f);
        cl->crashes[cl->ncrashes++] = f;
    }
    tkvj_finding(cl->run, "node-crash", f);
}

/* Frames in a library without symbols ("0x7f.. in ?? () from LIB") get
 * " [LIB+0xOFFSET]" from the core's mappings, an address that stays the same
 * from run to run (so one crash site is recognisable) and that the
 * library's debug symbols resolve. */
static void annotate_offsets(const char *gdb_out, json_t *bt)
{
    struct {
        char path[256];
        unsigned long long base;
    } maps[64];
    int nmaps = 0, i;
    size_t k;
    char line[512];
    FILE *p = fopen(gdb_out, "r");

    if (p == NULL) {
        return;
    }
    while (fgets(line, sizeof line, p) != NULL && nmaps < 64) {
        unsigned long long start, end, size, off;
        char path[256];
        if (sscanf(line, " 0x%llx 0x%llx 0x%llx 0x%llx %255s", &start, &end,
                   &size, &off, path) == 5 &&
            off == 0) {
            char real[PATH_MAX];
            const char *name = realpath(path, real) != NULL ? real : path;
            for (i = 0; i < nmaps; i++) {
                if (strcmp(maps[i].path, name) == 0) {
                    break;
                }
            }
            if (i == nmaps) {
                snprintf(maps[nmaps].path, sizeof maps[nmaps].path, "%.255s",
                         name);
                maps[nmaps].base = start;
                nmaps++;
            }
        }
    }
    fclose(p);
    for (k = 0; k < json_array_size(bt); k++) {
        const char *fr = json_string_value(json_array_get(bt, k));
        const char *from = strstr(fr, " from ");
        unsigned long long pc;
        int n;
        char real[PATH_MAX], buf[700];
        if (from == NULL || sscanf(fr, "#%d 0x%llx", &n, &pc) != 2 ||
            realpath(from + 6, real) == NULL) {
            continue;
        }
        for (i = 0; i < nmaps; i++) {
            if (strcmp(maps[i].path, real) == 0 && pc >= maps[i].base) {
                const char *name = strrchr(from + 6, '/');
                snprintf(buf, sizeof buf, "%s [%s+0x%llx]", fr,
                         name != NULL ? name + 1 : from + 6,
                         pc - maps[i].base);
                json_array_set_new(bt, k, json_string(buf));
                break;
            }
        }
    }
}

void tkvj_cluster_backtraces(struct tkvj_cluster *cl)
{
    char gdb[256];
    size_t k;
    if (find_exe("gdb", gdb, sizeof gdb) == NULL) {
        return;
    }
    for (k = 0; k < cl->ncrashes; k++) {
        json_t *f = cl->crashes[k];
        if (k >= TKVJ_MAX_BACKTRACES) {
            /* bounded time: the first few tell the story */
            json_decref(f);
            cl->crashes[k] = NULL;
            continue;
        }
        const char *core = json_string_value(json_object_get(f, "core"));
        char out[1400], cmd[4200], line[512];
        json_t *bt = json_array();
        FILE *p;
        snprintf(out, sizeof out, "%s.backtrace.txt", core);
        snprintf(cmd, sizeof cmd,
                 "timeout 30 %s -batch -nx -ex 'bt' -ex 'info sharedlibrary' "
                 "-ex 'info proc mappings' -ex 'thread apply all bt' "
                 "'%s' '%s' >'%s' 2>&1",
                 gdb, cl->node_bin, core, out);
        if (system(cmd) != 0) {
            tkvj_log("gdb on %s failed", core);
        }
        p = fopen(out, "r");
        while (p != NULL && fgets(line, sizeof line, p) != NULL &&
               json_array_size(bt) < 40) {
            line[strcspn(line, "\n")] = '\0';
            size_t nb = json_array_size(bt);
            if (line[0] == '#') {
                /* gdb shows the crashing frame once on load, then in bt */
                if (nb == 0 || strcmp(json_string_value(json_array_get(
                                          bt, nb - 1)),
                                      line) != 0) {
                    json_array_append_new(bt, json_string(line));
                }
            } else if (nb > 0 && (strncmp(line, "From", 4) == 0 ||
                                  strncmp(line, "Thread", 6) == 0)) {
                break; /* the end of the first bt */
            }
        }
        if (p != NULL) {
            fclose(p);
        }
        annotate_offsets(out, bt);
        json_object_set_new(f, "backtrace", bt);
        json_object_set_new(f, "backtrace_file", json_string(out));
        json_decref(f);
        cl->crashes[k] = NULL;
    }
    cl->ncrashes = 0;
}

void tkvj_cluster_reap(struct tkvj_cluster *cl)
{
    int i;
    pthread_mutex_lock(&cl->mu);
    for (i = 1; i <= cl->n; i++) {
        struct tkvj_node *nd = &cl->nodes[i];
        int status;
        if (nd->pid == 0) {
            continue;
        }
        if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
            if (!nd->expect_exit) {
                unexpected_exit(cl, nd, status);
            }
            nd->pid = 0;
            nd->paused = 0;
        }
    }
    pthread_mutex_unlock(&cl->mu);
}

void tkvj_cluster_kill(struct tkvj_cluster *cl, int i)
{
    struct tkvj_node *nd = &cl->nodes[i];
    int status;
    pthread_mutex_lock(&cl->mu);
    if (nd->pid != 0) {
        nd->expect_exit = 1;
        kill(nd->pid, SIGKILL);
        waitpid(nd->pid, &status, 0);
        nd->pid = 0;
        nd->paused = 0;
        log_marker(nd, "SIGKILL");
    }
    pthread_mutex_unlock(&cl->mu);
}

void tkvj_cluster_pause(struct tkvj_cluster *cl, int i)
{
    struct tkvj_node *nd = &cl->nodes[i];
    pthread_mutex_lock(&cl->mu);
    if (nd->pid != 0 && !nd->paused) {
        kill(nd->pid, SIGSTOP);
        nd->paused = 1;
    }
    pthread_mutex_unlock(&cl->mu);
}

void tkvj_cluster_resume(struct tkvj_cluster *cl, int i)
{
    struct tkvj_node *nd = &cl->nodes[i];
    pthread_mutex_lock(&cl->mu);
    if (nd->pid != 0 && nd->paused) {
        kill(nd->pid, SIGCONT);
        nd->paused = 0;
    }
    pthread_mutex_unlock(&cl->mu);
}

int tkvj_cluster_wipe(struct tkvj_cluster *cl, int i)
{
    struct tkvj_node *nd = &cl->nodes[i];
    int rv = 0;
    pthread_mutex_lock(&cl->mu);
    if (nd->pid != 0) {
        rv = -1;
    } else {
        tkv_rmtree(nd->data_dir);
        log_marker(nd, "wiped the data dir of");
    }
    pthread_mutex_unlock(&cl->mu);
    return rv;
}

/* Replace the filter table of node i's namespace: DROP from each j with
 * drop_from[j]. */
static int load_rules(struct tkvj_cluster *cl, int i,
                      const unsigned char *drop_from)
{
    char restore[300];
    char rules[4096];
    size_t off = 0;
    char *argv[] = {restore, "-w", "5", NULL};
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    int fds[2];
    int status = 0;
    pid_t pid;
    int j;
    ssize_t w;

    snprintf(restore, sizeof restore, "%s-restore", cl->iptables);
    off += (size_t)snprintf(rules + off, sizeof rules - off,
                            "*filter\n:INPUT ACCEPT [0:0]\n"
                            ":FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for (j = 1; j <= cl->n; j++) {
        if (drop_from != NULL && drop_from[j]) {
            off += (size_t)snprintf(rules + off, sizeof rules - off,
                                    "-A INPUT -s %s/32 -j DROP\n",
                                    cl->nodes[j].ip);
        }
    }
    off += (size_t)snprintf(rules + off, sizeof rules - off, "COMMIT\n");
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    pid = spawn_in_ns(cl->nodes[i].ns, argv, envp, fds[0], NULL, NULL);
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        return -1;
    }
    w = write(fds[1], rules, off);
    close(fds[1]);
    waitpid(pid, &status, 0);
    if (w != (ssize_t)off || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        tkvj_log("iptables-restore in %s failed (status 0x%x)",
                 cl->nodes[i].ns, status);
        return -1;
    }
    return 0;
}

int tkvj_cluster_partition(struct tkvj_cluster *cl,
                           unsigned char drop[TKVJ_MAX_NODES + 1]
                                             [TKVJ_MAX_NODES + 1])
{
    int i, rv = 0;
    for (i = 1; i <= cl->n; i++) {
        if (load_rules(cl, i, drop[i]) != 0) {
            rv = -1;
        }
    }
    return rv;
}

int tkvj_cluster_heal_net(struct tkvj_cluster *cl)
{
    int i, rv = 0;
    for (i = 1; i <= cl->n; i++) {
        if (load_rules(cl, i, NULL) != 0) {
            rv = -1;
        }
    }
    return rv;
}

struct tkv_node_status *tkvj_cluster_status(struct tkvj_cluster *cl, int i,
                                            int timeout_ms)
{
    struct tkv_opts opts = {.timeout_ms = timeout_ms};
    struct tkv_node_status *st = NULL;
    struct tkv_err err;
    if (tkv_node_status(cl->admin, cl->nodes[i].client, &opts, &st, &err) !=
        0) {
        return NULL;
    }
    return st;
}

int tkvj_cluster_leader(struct tkvj_cluster *cl, int timeout_ms)
{
    uint64_t best_term = 0;
    int best = 0;
    int i;
    for (i = 1; i <= cl->n; i++) {
        struct tkv_node_status *st;
        int live;
        pthread_mutex_lock(&cl->mu);
        live = cl->nodes[i].pid != 0 && !cl->nodes[i].paused;
        pthread_mutex_unlock(&cl->mu);
        if (!live) {
            continue;
        }
        st = tkvj_cluster_status(cl, i, timeout_ms);
        if (st != NULL && st->role != NULL &&
            strcmp(st->role, "leader") == 0 && st->term >= best_term) {
            best_term = st->term;
            best = i;
        }
        tkv_node_status_free(st);
    }
    return best;
}

int tkvj_cluster_members(struct tkvj_cluster *cl, int voter[],
                         int present[])
{
    struct tkv_opts opts = {.timeout_ms = 3000};
    struct tkv_member_info *m = NULL;
    struct tkv_err err;
    size_t n = 0, k;
    int i, rv;

    int leader;

    for (i = 0; i <= cl->n; i++) {
        voter[i] = 0;
        present[i] = 0;
    }
    leader = tkvj_cluster_leader(cl, 1000);
    if (leader == 0) {
        return TKV_EUNAVAILABLE;
    }
    rv = tkv_members(cl->node_client[leader], &opts, &m, &n, &err);
    if (rv != 0) {
        return rv;
    }
    for (k = 0; k < n; k++) {
        if (m[k].id >= 1 && m[k].id <= (uint64_t)cl->n) {
            present[m[k].id] = 1;
            voter[m[k].id] = m[k].role != NULL &&
                             strcmp(m[k].role, "voter") == 0;
        }
    }
    tkv_members_free(m, n);
    return 0;
}

int tkvj_cluster_pick_live(struct tkvj_cluster *cl, int not, uint64_t x)
{
    int cand[TKVJ_MAX_NODES];
    int nc = 0, i, pick = 0;
    pthread_mutex_lock(&cl->mu);
    for (i = 1; i <= cl->n; i++) {
        const struct tkvj_node *nd = &cl->nodes[i];
        if (i != not && nd->pid != 0 && !nd->paused && !nd->removed) {
            cand[nc++] = i;
        }
    }
    if (nc > 0) {
        pick = cand[x % (uint64_t)nc];
    }
    pthread_mutex_unlock(&cl->mu);
    return pick;
}

void tkvj_cluster_stop_all(struct tkvj_cluster *cl)
{
    int64_t deadline;
    int i, left;

    pthread_mutex_lock(&cl->mu);
    for (i = 1; i <= cl->n; i++) {
        struct tkvj_node *nd = &cl->nodes[i];
        if (nd->pid != 0) {
            nd->expect_exit = 1;
            kill(nd->pid, SIGCONT);
            kill(nd->pid, SIGTERM);
        }
    }
    pthread_mutex_unlock(&cl->mu);
    deadline = tkvj_now_ms() + 10000;
    do {
        left = 0;
        pthread_mutex_lock(&cl->mu);
        for (i = 1; i <= cl->n; i++) {
            struct tkvj_node *nd = &cl->nodes[i];
            int status;
            if (nd->pid == 0) {
                continue;
            }
            if (waitpid(nd->pid, &status, WNOHANG) == nd->pid) {
                /* dying of the SIGTERM itself is fine: a node still
                 * starting has no handler yet */
                int clean = WIFEXITED(status) ? WEXITSTATUS(status) == 0
                                              : WIFSIGNALED(status) &&
                                                    WTERMSIG(status) ==
                                                        SIGTERM;
                if (!clean) {
                    char desc[128];
                    describe_status(status, desc, sizeof desc);
                    tkvj_finding(cl->run, "node-unclean-stop",
                                 json_pack("{si ss ss}", "node", nd->id,
                                           "status", desc, "log",
                                           nd->log_path));
                }
                nd->pid = 0;
            } else {
                left++;
            }
        }
        pthread_mutex_unlock(&cl->mu);
        if (left > 0) {
            usleep(20 * 1000);
        }
    } while (left > 0 && tkvj_now_ms() < deadline);
    pthread_mutex_lock(&cl->mu);
    for (i = 1; i <= cl->n; i++) {
        struct tkvj_node *nd = &cl->nodes[i];
        int status;
        if (nd->pid != 0) {
            kill(nd->pid, SIGKILL);
            waitpid(nd->pid, &status, 0);
            tkvj_finding(cl->run, "node-stop-hung",
                         json_pack("{si ss ss}", "node", nd->id, "detail",
                                   "still running 10 s after SIGTERM; "
                                   "killed",
                                   "log", nd->log_path));
            nd->pid = 0;
        }
        log_marker(nd, "stopped");
    }
    pthread_mutex_unlock(&cl->mu);
}
