/* Fault schedule and the faults themselves (see nemesis.h). */
#include "nemesis.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "partition.h"
#include "runner.h"

#define CLOCK_TRANSFER_DELAY_MS 1500
#define MEMBER_CONFIRM_MS 10000
#define MEMBER_JOIN_MS 20000
#define HEAL_JOIN_MS 30000

static const struct {
    const char *name;
    unsigned bit;
} kinds[] = {
    {"partition", TKVJ_NEM_PARTITION}, {"kill", TKVJ_NEM_KILL},
    {"pause", TKVJ_NEM_PAUSE},         {"clock", TKVJ_NEM_CLOCK},
    {"member", TKVJ_NEM_MEMBER},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static pthread_t fault_thread, member_thread;
static int fault_started, member_started;

int tkvj_nemesis_parse(const char *list, unsigned *mask)
{
    char buf[256];
    char *save = NULL, *tok;
    *mask = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        size_t i;
        int found = 0;
        if (strcmp(tok, "none") == 0) {
            continue;
        }
        if (strcmp(tok, "all") == 0) {
            for (i = 0; i < NKINDS; i++) {
                *mask |= kinds[i].bit;
            }
            continue;
        }
        for (i = 0; i < NKINDS; i++) {
            if (strcmp(tok, kinds[i].name) == 0) {
                *mask |= kinds[i].bit;
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr,
                    "tuplekv-jepsen: unknown nemesis \"%s\" (partition, "
                    "kill, pause, clock, member, all, none)\n",
                    tok);
            return -1;
        }
    }
    return 0;
}

static void nemesis_line(struct tkvj_run *r, const char *f, json_t *value)
{
    tkvj_history_write(&r->hist, TKVJ_PROCESS_NEMESIS, "info", f, value,
                       NULL);
    tkvj_log("nemesis %s", f);
    json_decref(value);
}

/* ---- target selection ------------------------------------------------- */

/* Nodes that are running (or, with any_state, present), not removed and
 * held by no fault; n of them at most, chosen with rng. Returns count. */
static int eligible(struct tkvj_run *r, struct tkvj_rng *rng, int *out,
                    int want)
{
    struct tkvj_cluster *cl = &r->cluster;
    int cand[TKVJ_MAX_NODES];
    int nc = 0, i;
    pthread_mutex_lock(&cl->mu);
    for (i = 1; i <= cl->n; i++) {
        const struct tkvj_node *nd = &cl->nodes[i];
        if (nd->pid != 0 && !nd->paused && !nd->removed &&
            nd->owner == TKVJ_FREE) {
            cand[nc++] = i;
        }
    }
    pthread_mutex_unlock(&cl->mu);
    tkvj_rng_shuffle(rng, cand, nc);
    if (want > nc) {
        want = nc;
    }
    memcpy(out, cand, (size_t)want * sizeof *out);
    return want;
}

/* Claim nodes for a fault; drops those another fault took meanwhile. */
static int claim(struct tkvj_run *r, int *nodes, int n, enum tkvj_owner o)
{
    struct tkvj_cluster *cl = &r->cluster;
    int i, k = 0;
    pthread_mutex_lock(&cl->mu);
    for (i = 0; i < n; i++) {
        struct tkvj_node *nd = &cl->nodes[nodes[i]];
        if (nd->owner == TKVJ_FREE && !nd->removed) {
            nd->owner = o;
            nodes[k++] = nodes[i];
        }
    }
    pthread_mutex_unlock(&cl->mu);
    return k;
}

static void release(struct tkvj_run *r, const int *nodes, int n)
{
    struct tkvj_cluster *cl = &r->cluster;
    int i;
    pthread_mutex_lock(&cl->mu);
    for (i = 0; i < n; i++) {
        cl->nodes[nodes[i]].owner = TKVJ_FREE;
    }
    pthread_mutex_unlock(&cl->mu);
}

static int is_free(struct tkvj_run *r, int i)
{
    struct tkvj_cluster *cl = &r->cluster;
    int ok;
    pthread_mutex_lock(&cl->mu);
    ok = cl->nodes[i].owner == TKVJ_FREE && !cl->nodes[i].removed &&
         cl->nodes[i].pid != 0 && !cl->nodes[i].paused;
    pthread_mutex_unlock(&cl->mu);
    return ok;
}

enum { T_ONE, T_LEADER, T_MINORITY, T_MAJORITY, T_ALL };
static const char *const target_names[] = {"one", "leader", "minority",
                                           "majority", "all"};

/* Choose and claim targets; returns how many, names the choice. */
static int targets(struct tkvj_run *r, struct tkvj_rng *rng, const int *w,
                   int *out, enum tkvj_owner o, const char **how)
{
    int n = r->cluster.n;
    int t = tkvj_rng_weighted(rng, w, 5);
    int want, got;
    *how = target_names[t];
    if (t == T_LEADER) {
        int l = tkvj_cluster_leader(&r->cluster, 500);
        if (l != 0 && is_free(r, l)) {
            out[0] = l;
            return claim(r, out, 1, o);
        }
        *how = "one";
        t = T_ONE;
    }
    want = t == T_ONE        ? 1
           : t == T_MINORITY ? (n - 1) / 2
           : t == T_MAJORITY ? n / 2 + 1
                             : n;
    if (want < 1) {
        want = 1;
    }
    got = eligible(r, rng, out, want);
    return claim(r, out, got, o);
}

static json_t *int_array(const int *a, int n)
{
    json_t *j = json_array();
    int i;
    for (i = 0; i < n; i++) {
        json_array_append_new(j, json_integer(a[i]));
    }
    return j;
}

/* ---- partition -------------------------------------------------------- */

_Static_assert(TKVJ_PART_MAX == TKVJ_MAX_NODES, "one node limit");

static json_t *grudge_json(struct tkvj_run *r, tkvj_grudge_t g)
{
    json_t *o = json_object();
    int i, j;
    for (i = 1; i <= r->cluster.n; i++) {
        json_t *from = json_array();
        char name[16];
        for (j = 1; j <= r->cluster.n; j++) {
            if (g[i][j]) {
                json_array_append_new(from, json_integer(j));
            }
        }
        snprintf(name, sizeof name, "%d", i);
        if (json_array_size(from) > 0) {
            json_object_set_new(o, name, from);
        } else {
            json_decref(from);
        }
    }
    return o;
}

static void partition_start(struct tkvj_run *r, struct tkvj_rng *rng)
{
    static const char *const names[] = {"isolate-one", "isolate-leader",
                                        "halves", "majorities-ring",
                                        "bridge"};
    static const int weights[] = {2, 2, 2, 2, 2};
    int n = r->cluster.n;
    int order[TKVJ_MAX_NODES];
    tkvj_grudge_t g;
    int kind = tkvj_rng_weighted(rng, weights, 5);
    int i, x;

    for (i = 0; i < n; i++) {
        order[i] = i + 1;
    }
    tkvj_rng_shuffle(rng, order, n);
    if (kind == 1) {
        x = tkvj_cluster_leader(&r->cluster, 500);
        if (x == 0) {
            kind = 0;
        } else {
            /* put the leader first */
            for (i = 0; i < n; i++) {
                if (order[i] == x) {
                    order[i] = order[0];
                    order[0] = x;
                }
            }
        }
    }
    tkvj_grudge(kind == 0 || kind == 1 ? TKVJ_PART_ISOLATE
                : kind == 2             ? TKVJ_PART_HALVES
                : kind == 3             ? TKVJ_PART_RING
                                        : TKVJ_PART_BRIDGE,
                order, n, g);
    nemesis_line(r, "start-partition",
                 json_pack("{ss so}", "kind", names[kind], "drop",
                           grudge_json(r, g)));
    if (tkvj_cluster_partition(&r->cluster, g) != 0) {
        tkvj_note(r, "a partition could not be installed fully");
    }
}

static void partition_stop(struct tkvj_run *r)
{
    tkvj_cluster_heal_net(&r->cluster);
    nemesis_line(r, "stop-partition", json_null());
}

/* ---- kill, pause ------------------------------------------------------ */

static int kill_start(struct tkvj_run *r, struct tkvj_rng *rng, int *nodes)
{
    static const int w[] = {3, 3, 2, 1, 1};
    const char *how;
    int n = targets(r, rng, w, nodes, TKVJ_OWNER_KILL, &how), i;
    if (n == 0) {
        return 0;
    }
    nemesis_line(r, "start-kill",
                 json_pack("{ss so}", "target", how, "nodes",
                           int_array(nodes, n)));
    for (i = 0; i < n; i++) {
        tkvj_cluster_kill(&r->cluster, nodes[i]);
    }
    return n;
}

static void kill_stop(struct tkvj_run *r, const int *nodes, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        tkvj_cluster_start(&r->cluster, nodes[i], TKVJ_START_RESTART, 0);
    }
    release(r, nodes, n);
    nemesis_line(r, "stop-kill", json_pack("{so}", "restarted",
                                           int_array(nodes, n)));
}

static int pause_start(struct tkvj_run *r, struct tkvj_rng *rng, int *nodes)
{
    static const int w[] = {3, 3, 2, 1, 0};
    const char *how;
    int n = targets(r, rng, w, nodes, TKVJ_OWNER_PAUSE, &how), i;
    if (n == 0) {
        return 0;
    }
    nemesis_line(r, "start-pause",
                 json_pack("{ss so}", "target", how, "nodes",
                           int_array(nodes, n)));
    for (i = 0; i < n; i++) {
        tkvj_cluster_pause(&r->cluster, nodes[i]);
    }
    return n;
}

static void pause_stop(struct tkvj_run *r, const int *nodes, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        tkvj_cluster_resume(&r->cluster, nodes[i]);
    }
    release(r, nodes, n);
    nemesis_line(r, "stop-pause", json_pack("{so}", "resumed",
                                            int_array(nodes, n)));
}

/* ---- clock ------------------------------------------------------------ */

static int clock_start(struct tkvj_run *r, struct tkvj_rng *rng, int *nodes)
{
    static const int w[] = {1, 1, 0, 0, 0};
    const char *how;
    int n = targets(r, rng, w, nodes, TKVJ_OWNER_CLOCK, &how);
    int skew, x, rc;
    struct tkv_opts opts = {.timeout_ms = 3000};
    struct tkv_err err;

    if (n == 0) {
        return 0;
    }
    x = nodes[0];
    skew = (int)tkvj_rng_range(rng, 5, 60);
    if (tkvj_rng_below(rng, 2) == 0) {
        skew = -skew;
    }
    /* before the line: ops from now on may see a moved clock */
    atomic_store(&r->clock_touched, 1);
    nemesis_line(r, "start-clock", json_pack("{ss si si}", "target", how,
                                             "node", x, "skew_s", skew));
    tkvj_cluster_kill(&r->cluster, x);
    tkvj_cluster_start(&r->cluster, x, TKVJ_START_RESTART, skew);
    /* let it catch up, then make it the leader so its clock is the one
     * that stamps entries */
    if (tkvj_sleep(r, CLOCK_TRANSFER_DELAY_MS, 1) == 0) {
        int tries, leader = 0;
        rc = -1;
        for (tries = 0; tries < 3 && leader != x && !atomic_load(&r->stop);
             tries++) {
            rc = tkv_transfer(r->cluster.admin, (uint64_t)x, &opts, &err);
            tkvj_sleep(r, 500, 1);
            leader = tkvj_cluster_leader(&r->cluster, 500);
        }
        nemesis_line(r, "clock-transfer",
                     json_pack("{si ss si}", "node", x, "result",
                               rc == 0 ? "ok" : err.msg, "leader_after",
                               leader));
    }
    return 1;
}

static void clock_stop(struct tkvj_run *r, const int *nodes, int n)
{
    if (n > 0) {
        tkvj_cluster_kill(&r->cluster, nodes[0]);
        tkvj_cluster_start(&r->cluster, nodes[0], TKVJ_START_RESTART, 0);
        release(r, nodes, n);
        nemesis_line(r, "stop-clock", json_pack("{si}", "node", nodes[0]));
    }
}

/* ---- the fault thread ------------------------------------------------- */

static void *fault_main(void *arg)
{
    struct tkvj_run *r = arg;
    struct tkvj_rng rng;
    unsigned enabled = r->o.nemesis & ~(unsigned)TKVJ_NEM_MEMBER;
    unsigned list[4];
    int nlist = 0;
    int iv = r->o.interval_ms;
    size_t i;

    tkvj_rng_seed(&rng, r->o.seed, 7);
    for (i = 0; i < NKINDS; i++) {
        if (enabled & kinds[i].bit) {
            list[nlist++] = kinds[i].bit;
        }
    }
    if (nlist == 0) {
        return NULL;
    }
    /* a quiet start, so the first ops see a healthy cluster */
    if (tkvj_sleep(r, tkvj_rng_range(&rng, iv / 4, iv / 2), 1)) {
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        unsigned kind = list[tkvj_rng_below(&rng, (uint64_t)nlist)];
        int nodes[TKVJ_MAX_NODES];
        int n = 0;
        int64_t window = tkvj_rng_range(&rng, iv / 2, iv);

        switch (kind) {
        case TKVJ_NEM_PARTITION:
            partition_start(r, &rng);
            break;
        case TKVJ_NEM_KILL:
            n = kill_start(r, &rng, nodes);
            break;
        case TKVJ_NEM_PAUSE:
            n = pause_start(r, &rng, nodes);
            break;
        case TKVJ_NEM_CLOCK:
            n = clock_start(r, &rng, nodes);
            break;
        }
        tkvj_sleep(r, window, 1);
        if (atomic_load(&r->interrupt)) {
            break;
        }
        switch (kind) {
        case TKVJ_NEM_PARTITION:
            partition_stop(r);
            break;
        case TKVJ_NEM_KILL:
            kill_stop(r, nodes, n);
            break;
        case TKVJ_NEM_PAUSE:
            pause_stop(r, nodes, n);
            break;
        case TKVJ_NEM_CLOCK:
            clock_stop(r, nodes, n);
            break;
        }
        tkvj_sleep(r, tkvj_rng_range(&rng, iv / 5, iv / 2), 1);
    }
    return NULL;
}

/* ---- membership ------------------------------------------------------- */

/* Wait until node x is absent from (want_present 0) or a voter in
 * (want_present 1) the leader's configuration. 1 when it happened. */
static int wait_member(struct tkvj_run *r, int x, int want_voter,
                       int64_t timeout_ms)
{
    int64_t deadline = tkvj_now_ms() + timeout_ms;
    int voter[TKVJ_MAX_NODES + 1], present[TKVJ_MAX_NODES + 1];
    while (!atomic_load(&r->interrupt)) {
        if (tkvj_cluster_members(&r->cluster, voter, present) == 0) {
            if (want_voter ? voter[x] : !present[x]) {
                return 1;
            }
        }
        if (tkvj_now_ms() >= deadline) {
            return 0;
        }
        usleep(200 * 1000);
    }
    return 0;
}

/* Start node x again, wiped, with --join, and wait for it to be a voter
 * (timeout_ms). Adds it by hand if its own join did not. */
static int rejoin(struct tkvj_run *r, int x, int64_t timeout_ms)
{
    struct tkvj_cluster *cl = &r->cluster;
    struct tkvj_node *nd = &cl->nodes[x];
    int ok;
    tkvj_cluster_kill(cl, x);
    tkvj_cluster_wipe(cl, x);
    pthread_mutex_lock(&cl->mu);
    nd->removed = 0;
    pthread_mutex_unlock(&cl->mu);
    tkvj_cluster_start(cl, x, TKVJ_START_JOIN, 0);
    ok = wait_member(r, x, 1, timeout_ms / 2);
    if (!ok) {
        struct tkv_opts opts = {.timeout_ms = 5000};
        struct tkv_err err;
        int voter[TKVJ_MAX_NODES + 1], present[TKVJ_MAX_NODES + 1];
        if (tkvj_cluster_members(cl, voter, present) == 0 && !present[x]) {
            tkv_member_add(cl->admin, (uint64_t)x, nd->raft, nd->client,
                           &opts, &err);
        }
        ok = wait_member(r, x, 1, timeout_ms / 2);
    }
    return ok;
}

static void *member_main(void *arg)
{
    struct tkvj_run *r = arg;
    struct tkvj_cluster *cl = &r->cluster;
    struct tkvj_rng rng;
    int iv = r->o.interval_ms;

    tkvj_rng_seed(&rng, r->o.seed, 8);
    if (tkvj_sleep(r, tkvj_rng_range(&rng, iv / 2, iv), 1)) {
        return NULL;
    }
    while (!atomic_load(&r->stop)) {
        struct tkv_opts opts = {.timeout_ms = 5000};
        struct tkv_err err;
        int x, rc, gone, voter;

        if (eligible(r, &rng, &x, 1) == 0 ||
            claim(r, &x, 1, TKVJ_OWNER_MEMBER) == 0) {
            tkvj_sleep(r, 1000, 1);
            continue;
        }
        nemesis_line(r, "start-member", json_pack("{si}", "remove", x));
        rc = tkv_member_remove(cl->admin, (uint64_t)x, &opts, &err);
        gone = wait_member(r, x, 0, MEMBER_CONFIRM_MS);
        if (!gone) {
            /* never wipe a node that may still be a voter */
            nemesis_line(r, "stop-member",
                         json_pack("{si ss sb}", "remove", x, "result",
                                   rc == 0 ? "ok but still listed"
                                           : err.msg,
                                   "removed", 0));
            release(r, &x, 1);
            tkvj_sleep(r, tkvj_rng_range(&rng, iv / 2, iv), 1);
            continue;
        }
        tkvj_cluster_kill(cl, x);
        tkvj_cluster_wipe(cl, x);
        pthread_mutex_lock(&cl->mu);
        cl->nodes[x].removed = 1;
        pthread_mutex_unlock(&cl->mu);
        nemesis_line(r, "member-removed", json_pack("{si}", "node", x));
        tkvj_sleep(r, tkvj_rng_range(&rng, 1000, 3000), 1);
        if (atomic_load(&r->interrupt)) {
            break;
        }
        voter = rejoin(r, x, MEMBER_JOIN_MS);
        nemesis_line(r, "stop-member",
                     json_pack("{si sb}", "add", x, "voter", voter));
        release(r, &x, 1);
        tkvj_sleep(r, tkvj_rng_range(&rng, iv / 2, iv), 1);
    }
    return NULL;
}

/* ---- start / heal ----------------------------------------------------- */

int tkvj_nemesis_start(struct tkvj_run *r)
{
    if (r->o.nemesis & ~(unsigned)TKVJ_NEM_MEMBER) {
        if (pthread_create(&fault_thread, NULL, fault_main, r) != 0) {
            return -1;
        }
        fault_started = 1;
    }
    if (r->o.nemesis & TKVJ_NEM_MEMBER) {
        if (pthread_create(&member_thread, NULL, member_main, r) != 0) {
            return -1;
        }
        member_started = 1;
    }
    return 0;
}

int tkvj_nemesis_heal(struct tkvj_run *r)
{
    struct tkvj_cluster *cl = &r->cluster;
    json_t *did = json_object();
    json_t *restarted = json_array(), *resumed = json_array();
    json_t *rejoined = json_array();
    int i, ok = 1;

    if (fault_started) {
        pthread_join(fault_thread, NULL);
        fault_started = 0;
    }
    if (member_started) {
        pthread_join(member_thread, NULL);
        member_started = 0;
    }
    if (r->o.nemesis == 0) {
        json_decref(did);
        json_decref(restarted);
        json_decref(resumed);
        json_decref(rejoined);
        return 0;
    }
    tkvj_cluster_heal_net(cl);
    for (i = 1; i <= cl->n; i++) {
        struct tkvj_node *nd = &cl->nodes[i];
        int paused, down, skewed, removed;
        pthread_mutex_lock(&cl->mu);
        paused = nd->pid != 0 && nd->paused;
        down = nd->pid == 0 && !nd->removed;
        skewed = nd->pid != 0 && nd->skew_s != 0;
        removed = nd->removed;
        nd->owner = TKVJ_FREE;
        pthread_mutex_unlock(&cl->mu);
        if (paused) {
            tkvj_cluster_resume(cl, i);
            json_array_append_new(resumed, json_integer(i));
        }
        if (skewed) {
            tkvj_cluster_kill(cl, i);
            down = 1;
        }
        if (down) {
            tkvj_cluster_start(cl, i, TKVJ_START_RESTART, 0);
            json_array_append_new(restarted, json_integer(i));
        }
        if (removed && !atomic_load(&r->interrupt)) {
            if (!rejoin(r, i, HEAL_JOIN_MS)) {
                ok = 0;
            }
            json_array_append_new(rejoined, json_integer(i));
        }
    }
    /* a removal whose outcome was unknown may have happened since: such a
     * node is running but no longer a member; wipe it and add it back */
    if ((r->o.nemesis & TKVJ_NEM_MEMBER) && !atomic_load(&r->interrupt)) {
        int voter[TKVJ_MAX_NODES + 1], present[TKVJ_MAX_NODES + 1];
        int64_t deadline = tkvj_now_ms() + 10000;
        int known = 0;
        for (;;) {
            known = tkvj_cluster_members(cl, voter, present) == 0;
            if (known || tkvj_now_ms() >= deadline) {
                break;
            }
            usleep(200 * 1000);
        }
        if (!known) {
            tkvj_note(r, "heal: the members list could not be read");
        }
        for (i = 1; i <= cl->n && known; i++) {
            if (!present[i]) {
                if (!rejoin(r, i, HEAL_JOIN_MS)) {
                    ok = 0;
                }
                json_array_append_new(rejoined, json_integer(i));
            }
        }
    }
    json_object_set_new(did, "restarted", restarted);
    json_object_set_new(did, "resumed", resumed);
    json_object_set_new(did, "rejoined", rejoined);
    json_object_set_new(did, "network", json_string("healed"));
    nemesis_line(r, "heal", did);
    /* every node must be a voter again before the final reads */
    if (r->o.nemesis & TKVJ_NEM_MEMBER) {
        for (i = 1; i <= cl->n && ok; i++) {
            ok = wait_member(r, i, 1, HEAL_JOIN_MS / 2);
        }
    }
    return ok ? 0 : -1;
}
