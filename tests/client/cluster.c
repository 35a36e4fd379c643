/* Test clusters of real tuplekv-node processes (see cluster.h). */
#define _GNU_SOURCE
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TKV_BIN_DIR
#error "TKV_BIN_DIR must point at the build's bin directory"
#endif

const char *tkv_test_bin(const char *name)
{
    static _Thread_local char path[512];
    snprintf(path, sizeof path, "%s/%s", TKV_BIN_DIR, name);
    return path;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

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

static int spawn(struct tkv_test_cluster *cl, int i, int bootstrap)
{
    char id[16];
    char datadir[300];
    char logpath[300];
    char boot[512];
    pid_t pid;
    int j;
    size_t off = 0;

    snprintf(id, sizeof id, "%d", i);
    snprintf(datadir, sizeof datadir, "%s/node%d", cl->dir, i);
    snprintf(logpath, sizeof logpath, "%s/node%d.log", cl->dir, i);
    boot[0] = '\0';
    for (j = 1; j <= cl->n; j++) {
        off +=
            (size_t)snprintf(boot + off, sizeof boot - off, "%s%d=%s=%s",
                             j > 1 ? "," : "", j, cl->raft[j], cl->client[j]);
    }
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        if (bootstrap) {
            execl(tkv_test_bin("tuplekv-node"), "tuplekv-node", "--id", id,
                  "--raft-address", cl->raft[i], "--client-address",
                  cl->client[i], "--data-dir", datadir, "--bootstrap", boot,
                  (char *)NULL);
        } else {
            execl(tkv_test_bin("tuplekv-node"), "tuplekv-node", "--id", id,
                  "--raft-address", cl->raft[i], "--client-address",
                  cl->client[i], "--data-dir", datadir, (char *)NULL);
        }
        _exit(127);
    }
    cl->pid[i] = pid;
    return 0;
}

int tkv_test_cluster_start(struct tkv_test_cluster *cl, int n, int base)
{
    struct tkv_client *c;
    json_t *key;
    json_t *val;
    long deadline;
    int i;
    int ok = 0;
    size_t off = 0;
    struct tkv_err err;

    memset(cl, 0, sizeof *cl);
    signal(SIGPIPE, SIG_IGN);
    cl->n = n;
    cl->base = base;
    snprintf(cl->dir, sizeof cl->dir, "/tmp/tkv-client-test-XXXXXX");
    if (mkdtemp(cl->dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    for (i = 1; i <= n; i++) {
        snprintf(cl->client[i], sizeof cl->client[i], "127.0.0.1:%d", base + i);
        snprintf(cl->raft[i], sizeof cl->raft[i], "127.0.0.1:%d",
                 base + 50 + i);
        off += (size_t)snprintf(cl->endpoints + off, sizeof cl->endpoints - off,
                                "%s%s", i > 1 ? "," : "", cl->client[i]);
    }
    for (i = 1; i <= n; i++) {
        if (spawn(cl, i, 1) != 0) {
            tkv_test_cluster_stop(cl);
            return -1;
        }
    }
    c = tkv_test_client(cl->endpoints, 2000);
    key = json_pack("[s]", "__cluster_ready");
    val = json_true();
    deadline = now_ms() + 20000;
    while (c != NULL && now_ms() < deadline) {
        if (tkv_set(c, key, val, 0, NULL, NULL, &err) == 0) {
            ok = 1;
            break;
        }
        sleep_ms(100);
    }
    if (ok) {
        tkv_delete(c, key, NULL, &err);
    }
    json_decref(key);
    json_decref(val);
    tkv_close(c);
    if (!ok) {
        fprintf(stderr,
                "cluster on port base %d did not take writes in 20 s "
                "(last error: %s); logs in %s\n",
                base, err.msg, cl->dir);
        for (i = 1; i <= n; i++) {
            char cmd[400];
            snprintf(cmd, sizeof cmd, "tail -n 20 %s/node%d.log >&2", cl->dir,
                     i);
            if (system(cmd) != 0) {
                break;
            }
        }
        tkv_test_cluster_stop(cl);
        return -1;
    }
    return 0;
}

static int rm_cb(const char *path,
                 const struct stat *sb,
                 int flag,
                 struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void tkv_test_cluster_kill(struct tkv_test_cluster *cl, int i, int sig)
{
    if (i < 1 || i > cl->n || cl->pid[i] == 0) {
        return;
    }
    kill(cl->pid[i], sig);
    if (sig == SIGKILL || sig == SIGTERM) {
        int status;
        long deadline = now_ms() + 5000;
        while (waitpid(cl->pid[i], &status, WNOHANG) == 0) {
            if (now_ms() > deadline) {
                kill(cl->pid[i], SIGKILL);
                waitpid(cl->pid[i], &status, 0);
                break;
            }
            sleep_ms(10);
        }
        cl->pid[i] = 0;
    }
}

int tkv_test_cluster_restart(struct tkv_test_cluster *cl, int i)
{
    if (cl->pid[i] != 0) {
        return -1;
    }
    return spawn(cl, i, 0);
}

void tkv_test_cluster_stop(struct tkv_test_cluster *cl)
{
    int i;
    for (i = 1; i <= cl->n; i++) {
        if (cl->pid[i] != 0) {
            kill(cl->pid[i], SIGCONT);
            tkv_test_cluster_kill(cl, i, SIGTERM);
        }
    }
    if (cl->dir[0] != '\0' && getenv("TKV_TEST_KEEP") == NULL) {
        nftw(cl->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    }
    cl->dir[0] = '\0';
}

int tkv_test_cluster_leader(struct tkv_test_cluster *cl, int timeout_ms)
{
    struct tkv_client *c = tkv_test_client(cl->endpoints, 1000);
    long deadline = now_ms() + timeout_ms;
    int leader = 0;

    while (c != NULL && leader == 0) {
        int i;
        for (i = 1; i <= cl->n && leader == 0; i++) {
            struct tkv_node_status *st = NULL;
            struct tkv_err err;
            if (cl->pid[i] == 0) {
                continue;
            }
            if (tkv_node_status(c, cl->client[i], NULL, &st, &err) == 0 &&
                strcmp(st->role, "leader") == 0) {
                leader = i;
            }
            tkv_node_status_free(st);
        }
        if (leader != 0 || now_ms() > deadline) {
            break;
        }
        sleep_ms(50);
    }
    tkv_close(c);
    return leader;
}
