/* Simulation: three servers running the real FSM (raft/fsm.c over
 * statemachine/) inside raft_fixture's deterministic cluster, under random
 * disconnects, kills, revives and disk faults, all chosen from one seed.
 *
 * Per seed: bootstrap 3 voters with a small, seed-chosen snapshot
 * threshold (so snapshots are taken, and installed on lagging servers);
 * then STEPS rounds of "maybe do something, then one fixture step", where
 * something is: the leader proposes a batch of random commands (set with
 * and without TTL, delete, atomic with checks, ticks, sessions with
 * resends), a link goes down or up, a server is killed or revived, or a
 * disk write fails. Throughout, every time a server's applied index
 * changes, its tkv_sm_hash is compared with the hash any other server had
 * at that same index. At the end the cluster heals, one more entry is
 * committed, and all three must have applied it with equal hashes.
 *
 * Snapshots run in TKV_SNAP_INLINE or TKV_SNAP_DEFERRED mode (alternating
 * by seed): deferred hands the snapshot over a few calls later, so the
 * replayed-tail path of fsm.c is exercised too. (Fork mode depends on
 * real time, which would make a seed unrepeatable.) Every snapshot handed
 * to raft is restored into a scratch state machine right away and must
 * hash like the live state at that index.
 *
 * Two limits of raft 0.22.1's fixture shape this test (both crash inside
 * libraft, with nothing of ours on the stack, under ASan):
 *   - raft_fixture_io_fault() makes the legacy layer double-free, so "disk
 *     faults" here are slow disks and disk stalls (a server's disk latency
 *     grows; it never shrinks, since the stub would then complete a later
 *     write before an earlier one, which no disk does); TKV_SIM_IOFAULT=1
 *     turns the real failure injection on;
 *   - a snapshot install followed by a log truncation on the same server
 *     overflows the stub log's array, so by default the log keeps every
 *     entry after a snapshot (trailing = 100000) and followers catch up
 *     from the log; TKV_SIM_TRAIL=N sets another trailing count.
 * Snapshot installs are covered by tests/integration (it_restart).
 *
 *   TKV_SIM_SEEDS=N   number of seeds (default 200), from TKV_SIM_FIRST
 *   TKV_SIM_SEED=S    run only seed S (replay a failure)
 *   TKV_SIM_FAULTS=0  no disk stalls
 *   TKV_SIM_MODE=1|2  snapshot mode for every seed (inline / deferred)
 *   TKV_SIM_SKIP=A-B  skip the actions numbered A..B-1 (see run_seed)
 *   TKV_SIM_TRACE=1   keep raft's own trace of every event */
#include <raft.h>
#include <raft/fixture.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "quiet.h"
#include "raft/fsm.h"
#include "common/log.h"
#include "statemachine/command.h"

#define N 3
#define STEPS 3000
#define MAX_INDEX 8192
#define MAX_INFLIGHT 16

struct sim {
    struct raft_fixture f;
    struct tkv_fsm fsm[N];
    uint64_t rng;
    unsigned seed;
    int faults;
    int inflight;
    int64_t last_ts;
    uint64_t seq[4];             /* per session */
    uint64_t hash_at[MAX_INDEX]; /* first hash seen at each index */
    uint8_t seen_at[MAX_INDEX];
    uint64_t last_checked[N];
    char failure[256];
    int snapshot_bad;
    unsigned disk_ms[N];
    int64_t last_now[N];
    unsigned snapshots;
};

static uint32_t rnd(struct sim *s)
{
    /* xorshift64* */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (uint32_t)((s->rng * 2685821657736338717ull) >> 32);
}

static struct sim *current;
static int (*real_snapshot)(struct raft_fsm *,
                            struct raft_buffer *[],
                            unsigned *);

/* Take the snapshot as raft would, then restore it into a scratch state
 * machine: it must hash like the live state it was taken from. */
static int checked_snapshot(struct raft_fsm *rf,
                            struct raft_buffer *bufs[],
                            unsigned *n_bufs)
{
    struct tkv_fsm *f = rf->data;
    struct tkv_sm_config cfg;
    struct tkv_sm scratch;
    struct tkv_buf all;
    unsigned i;
    int rv = real_snapshot(rf, bufs, n_bufs);
    if (rv != 0) {
        return rv;
    }
    tkv_buf_init(&all);
    for (i = 0; i < *n_bufs; i++) {
        tkv_buf_append(&all, (*bufs)[i].base, (*bufs)[i].len);
    }
    tkv_sm_config_default(&cfg);
    tkv_sm_init(&scratch, &cfg);
    if (tkv_fsm_restore_bytes(&scratch, all.data, all.len, NULL) != 0 ||
        tkv_sm_hash(&scratch) != tkv_sm_hash(&f->sm)) {
        snprintf(current->failure, sizeof current->failure,
                 "snapshot at %llu does not restore to the live state",
                 (unsigned long long)raft_last_applied(f->raft));
        current->snapshot_bad = 1;
    }
    current->snapshots++;
    tkv_sm_close(&scratch);
    tkv_buf_close(&all);
    return 0;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct sim *s = req->data;
    (void)status;
    (void)result;
    s->inflight--;
    free(req);
}

static void encode_key(uint8_t *out, size_t *len, unsigned k)
{
    /* ["k", k] : string part "k", number part k */
    double d = (double)k;
    uint64_t bits;
    int i;
    out[0] = TKV_KEY_TAG_STRING;
    out[1] = 'k';
    out[2] = 0x00;
    out[3] = TKV_KEY_TAG_NUMBER;
    memcpy(&bits, &d, sizeof bits);
    bits ^= 0x8000000000000000ull; /* positive: flip the sign bit */
    for (i = 0; i < 8; i++) {
        out[4 + i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    *len = 12;
}

static void propose(struct sim *s)
{
    unsigned li = raft_fixture_leader_index(&s->f);
    struct raft *r;
    struct tkv_buf body, entry;
    struct raft_buffer buf;
    struct raft_apply *req;
    uint8_t keys[8][16];
    size_t klen[8];
    uint8_t val[2];
    struct tkv_check checks[2];
    struct tkv_mutation muts[2];
    unsigned ncmds, i;
    int64_t ts;

    if (li >= N || !raft_fixture_alive(&s->f, li) ||
        s->inflight >= MAX_INFLIGHT) {
        return;
    }
    r = raft_fixture_get(&s->f, li);
    if (raft_state(r) != RAFT_LEADER) {
        return;
    }
    tkv_buf_init(&body);
    tkv_buf_init(&entry);
    ncmds = 1 + rnd(s) % 4;
    val[0] = (uint8_t)(rnd(s) % 128); /* positive fixint */
    for (i = 0; i < ncmds; i++) {
        struct tkv_cmd cmd;
        unsigned kind = rnd(s) % 10;
        memset(&cmd, 0, sizeof cmd);
        encode_key(keys[i], &klen[i], rnd(s) % 40);
        if (rnd(s) % 3 == 0) {
            unsigned sess = 1 + rnd(s) % 3;
            cmd.session = sess;
            /* sometimes resend the previous seq (dedup path) */
            if (s->seq[sess] > 0 && rnd(s) % 4 == 0) {
                cmd.seq = s->seq[sess];
            } else {
                cmd.seq = ++s->seq[sess];
            }
            cmd.ack = cmd.seq > 2 ? cmd.seq - 2 : 0;
        }
        if (kind < 5) {
            cmd.type = TKV_CMD_SET;
            cmd.mut.type = TKV_CMD_SET;
            cmd.mut.key = keys[i];
            cmd.mut.klen = (uint16_t)klen[i];
            cmd.mut.value = val;
            cmd.mut.vlen = 1;
            cmd.mut.ttl_ms = rnd(s) % 3 == 0 ? 50 + rnd(s) % 3000 : 0;
        } else if (kind < 7) {
            cmd.type = TKV_CMD_DELETE;
            cmd.mut.type = TKV_CMD_DELETE;
            cmd.mut.key = keys[i];
            cmd.mut.klen = (uint16_t)klen[i];
        } else if (kind < 9) {
            const struct tkv_sl_node *node;
            node = tkv_sm_get(&s->fsm[li].sm, keys[i], klen[i]);
            checks[0].key = keys[i];
            checks[0].klen = (uint16_t)klen[i];
            /* the current version (usually holds by apply time) or a
             * wrong one */
            checks[0].version = node != NULL && rnd(s) % 4 != 0
                                    ? node->version
                                    : (rnd(s) % 2 ? 0 : 12345);
            muts[0].type = TKV_CMD_SET;
            muts[0].key = keys[i];
            muts[0].klen = (uint16_t)klen[i];
            muts[0].value = val;
            muts[0].vlen = 1;
            muts[0].ttl_ms = 0;
            cmd.type = TKV_CMD_ATOMIC;
            cmd.checks = checks;
            cmd.nchecks = 1;
            cmd.muts = muts;
            cmd.nmuts = 1;
        } else {
            cmd.type = TKV_CMD_TICK;
        }
        if (tkv_cmd_encode(&cmd, &body) != 0) {
            fail_msg("seed %u: encode command", s->seed);
        }
    }
    /* The leader clock: fixture time, never below the replicated clock. */
    ts = 1000000 + (int64_t)raft_fixture_time(&s->f);
    if (ts < s->last_ts) {
        ts = s->last_ts;
    }
    if (ts < s->fsm[li].sm.now) {
        ts = s->fsm[li].sm.now;
    }
    s->last_ts = ts;
    if (tkv_entry_encode(ts, ncmds, body.data, body.len, &entry) != 0) {
        fail_msg("seed %u: encode entry", s->seed);
    }
    assert_int_equal(entry.len % 8, 0);
    buf.len = entry.len;
    buf.base = raft_malloc(buf.len);
    memcpy(buf.base, entry.data, buf.len);
    req = malloc(sizeof *req);
    req->data = s;
    if (raft_apply(r, req, &buf, 1, apply_cb) != 0) {
        raft_free(buf.base);
        free(req);
    } else {
        s->inflight++;
    }
    tkv_buf_close(&body);
    tkv_buf_close(&entry);
}

/* Compare each server's hash with the first one seen at its index. */
static int check_hashes(struct sim *s)
{
    unsigned i;
    for (i = 0; i < N; i++) {
        uint64_t idx = raft_last_applied(raft_fixture_get(&s->f, i));
        uint64_t h;
        if (s->fsm[i].sm.now < s->last_now[i]) {
            snprintf(s->failure, sizeof s->failure,
                     "server %u: state machine time went back", i + 1);
            return -1;
        }
        s->last_now[i] = s->fsm[i].sm.now;
        if (idx == s->last_checked[i] || idx >= MAX_INDEX) {
            continue;
        }
        s->last_checked[i] = idx;
        h = tkv_sm_hash(&s->fsm[i].sm);
        if (!s->seen_at[idx]) {
            s->seen_at[idx] = 1;
            s->hash_at[idx] = h;
        } else if (s->hash_at[idx] != h) {
            snprintf(s->failure, sizeof s->failure,
                     "server %u has hash %016llx at index %llu, another "
                     "had %016llx",
                     i + 1, (unsigned long long)h, (unsigned long long)idx,
                     (unsigned long long)s->hash_at[idx]);
            return -1;
        }
    }
    return 0;
}

static unsigned long total_snapshots;

static int run_seed(unsigned seed, int faults)
{
    struct sim *s = calloc(1, sizeof *s);
    struct raft_configuration conf;
    unsigned i, j, step;
    int rv = 0;

    s->seed = seed;
    s->faults = faults;
    current = s;
    s->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)seed * 0x100000001B3ull);
    rnd(s);
    assert_int_equal(raft_fixture_init(&s->f), 0);
    for (i = 0; i < N; i++) {
        struct raft *r;
        assert_int_equal(
            tkv_fsm_init(&s->fsm[i],
                         getenv("TKV_SIM_MODE") ? atoi(getenv("TKV_SIM_MODE"))
                         : seed % 2             ? TKV_SNAP_DEFERRED
                                                : TKV_SNAP_INLINE,
                         NULL),
            0);
        s->fsm[i].deferred_polls = 1 + rnd(s) % 5;
        real_snapshot = s->fsm[i].raft_fsm.snapshot;
        assert_int_equal(raft_fixture_grow(&s->f, &s->fsm[i].raft_fsm), 0);
        r = raft_fixture_get(&s->f, i);
        s->fsm[i].raft = r;
        tkv_fixture_quiet(r);
        raft_set_snapshot_threshold(r, 8 + rnd(s) % 40);
        s->disk_ms[i] = 5 + rnd(s) % 100;
        raft_fixture_set_disk_latency(&s->f, i, s->disk_ms[i]);
        raft_set_snapshot_trailing(
            r, getenv("TKV_SIM_TRAIL") ? (unsigned)atoi(getenv("TKV_SIM_TRAIL"))
                                       : 100000);
        s->fsm[i].raft_fsm.snapshot = checked_snapshot;
    }
    assert_int_equal(raft_fixture_configuration(&s->f, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&s->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&s->f), 0);

    for (step = 0; step < STEPS && rv == 0; step++) {
        unsigned a = rnd(s) % 1000;
        if (getenv("TKV_SIM_SKIP") != NULL) {
            unsigned lo, hi;
            sscanf(getenv("TKV_SIM_SKIP"), "%u-%u", &lo, &hi);
            if (a >= lo && a < hi) {
                a = 999;
            }
        }
        i = rnd(s) % N;
        j = (i + 1 + rnd(s) % (N - 1)) % N;
        if (a < 300) {
            propose(s);
        } else if (a < 315) {
            /* a partition: messages between i and j are dropped */
            if (!raft_fixture_saturated(&s->f, i, j)) {
                raft_fixture_saturate(&s->f, i, j);
            }
            if (rnd(s) % 2 && !raft_fixture_saturated(&s->f, j, i)) {
                raft_fixture_saturate(&s->f, j, i); /* or one way only */
            }
        } else if (a < 340) {
            if (raft_fixture_alive(&s->f, i) && raft_fixture_alive(&s->f, j)) {
                if (raft_fixture_saturated(&s->f, i, j)) {
                    raft_fixture_desaturate(&s->f, i, j);
                }
                if (raft_fixture_saturated(&s->f, j, i)) {
                    raft_fixture_desaturate(&s->f, j, i);
                }
            }
        } else if (a < 345) {
            unsigned k, dead = 0;
            for (k = 0; k < N; k++) {
                dead += !raft_fixture_alive(&s->f, k);
            }
            if (dead == 0) {
                raft_fixture_kill(&s->f, i);
            }
        } else if (a < 360) {
            if (!raft_fixture_alive(&s->f, i)) {
                raft_fixture_revive(&s->f, i);
            }
        } else if (a < 370 && s->faults) {
            if (getenv("TKV_SIM_IOFAULT") != NULL) {
                raft_fixture_io_fault(&s->f, i, (int)(rnd(s) % 5), 1);
            } else if (s->disk_ms[i] < 1000) {
                /* a stall: this server's disk gets slower. Never faster:
                 * the fixture would complete a later write before an
                 * earlier one, which no real disk (nor raft_uv) does. */
                s->disk_ms[i] += 20 + rnd(s) % 200;
                raft_fixture_set_disk_latency(&s->f, i, s->disk_ms[i]);
            }
        } else if (a < 380) {
            raft_fixture_set_network_latency(&s->f, i, 5 + rnd(s) % 200);
        }
        raft_fixture_step(&s->f);
        rv = s->snapshot_bad ? -1 : check_hashes(s);
    }

    /* Heal, commit one more entry everywhere, compare. */
    if (rv == 0) {
        raft_index target = 0;
        unsigned li;
        for (i = 0; i < N; i++) {
            if (!raft_fixture_alive(&s->f, i)) {
                raft_fixture_revive(&s->f, i);
            }
            raft_fixture_set_network_latency(&s->f, i, 15);
            for (j = 0; j < N; j++) {
                if (i != j) {
                    if (raft_fixture_saturated(&s->f, i, j)) {
                        raft_fixture_desaturate(&s->f, i, j);
                    }
                }
            }
        }
        for (i = 0; i < 20 && target == 0; i++) {
            if (!raft_fixture_step_until_has_leader(&s->f, 10000)) {
                continue;
            }
            li = raft_fixture_leader_index(&s->f);
            s->inflight = 0; /* let the final entry through */
            propose(s);
            target = raft_last_index(raft_fixture_get(&s->f, li));
        }
        if (target == 0 ||
            !raft_fixture_step_until_applied(&s->f, N, target, 60000)) {
            snprintf(s->failure, sizeof s->failure,
                     "cluster did not converge after healing (target %llu)",
                     (unsigned long long)target);
            rv = -1;
            for (i = 0; i < N; i++) {
                struct raft *r = raft_fixture_get(&s->f, i);
                fprintf(stderr,
                        "  server %u: %s term %llu last %llu commit %llu "
                        "applied %llu alive %d\n",
                        i + 1, raft_state_name(raft_state(r)),
                        raft_current_term(r), raft_last_index(r),
                        raft_commit_index(r), raft_last_applied(r),
                        raft_fixture_alive(&s->f, i));
            }
        }
        if (rv == 0) {
            rv = check_hashes(s);
        }
        for (i = 0; rv == 0 && i < N; i++) {
            struct raft *r = raft_fixture_get(&s->f, i);
            if (tkv_sm_hash(&s->fsm[i].sm) != tkv_sm_hash(&s->fsm[0].sm) &&
                raft_last_applied(r) ==
                    raft_last_applied(raft_fixture_get(&s->f, 0))) {
                snprintf(s->failure, sizeof s->failure,
                         "server %u differs from server 1 after healing",
                         i + 1);
                rv = -1;
            }
        }
    }
    total_snapshots += s->snapshots;
    if (rv != 0) {
        fprintf(stderr,
                "sim: seed %u FAILED: %s\n  replay: TKV_SIM_SEED=%u %s\n", seed,
                s->failure, seed, "tests/raft/test_sim");
    }
    raft_fixture_close(&s->f);
    for (i = 0; i < N; i++) {
        tkv_fsm_close(&s->fsm[i]);
    }
    free(s);
    return rv;
}

static void test_sim(void **state)
{
    const char *one = getenv("TKV_SIM_SEED");
    const char *count = getenv("TKV_SIM_SEEDS");
    const char *first = getenv("TKV_SIM_FIRST");
    const char *faults = getenv("TKV_SIM_FAULTS");
    unsigned n = count ? (unsigned)atoi(count) : 200;
    unsigned from = first ? (unsigned)atoi(first) : 1;
    int with_faults = faults ? atoi(faults) : 1;
    unsigned seed, failed = 0;

    (void)state;
    tkv_log_set_level(TKV_LOG_ERROR);
    if (one != NULL) {
        from = (unsigned)atoi(one);
        n = 1;
    }
    for (seed = from; seed < from + n; seed++) {
        if (run_seed(seed, with_faults) != 0) {
            failed++;
        }
    }
    fprintf(stderr, "sim: %u seeds from %u, %u failed, %lu snapshots checked\n",
            n, from, failed, total_snapshots);
    assert_true(total_snapshots > 0);
    assert_int_equal(failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
