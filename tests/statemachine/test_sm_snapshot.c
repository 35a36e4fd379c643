/* Snapshot round trip on random states, and restore of truncated, corrupted
 * and foreign data: it must fail with TKV_ECORRUPT and leave the old state
 * exactly as it was (same digest). The stepped snapshot, with entries
 * applied between its steps, must write the very bytes of a whole snapshot
 * taken at its start, and leave the state as it would be without it. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "smtest.h"

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A random state: keys with and without TTL, sessions, members. */
static void fill(struct smt *t, int nkeys)
{
    char key[96], val[96];
    for (int i = 0; i < nkeys; i++) {
        snprintf(key, sizeof key, "[\"k\",%d,\"%" PRIx64 "\",%s]",
                 (int)(rnd() % 50), rnd() % 1000, rnd() % 2 ? "true" : "1.5");
        snprintf(val, sizeof val,
                 "{\"n\":%d,\"s\":\"v\\u00e9\\n\",\"a\":[1,2.5,null,false]}",
                 i);
        smt_set_s(t, key, val, rnd() % 3 == 0 ? 1 + rnd() % 100000 : 0,
                  rnd() % 4 == 0 ? 1 + rnd() % 5 : 0, (uint64_t)i + 1, 0);
        if (rnd() % 10 == 0) {
            smt_del(t, key);
        }
        if (rnd() % 20 == 0) {
            smt_tick(t, t->ts + (int64_t)(rnd() % 5000));
        }
    }
    for (uint64_t id = 1; id <= 3; id++) {
        struct tkv_cmd c;
        char addr[32];
        memset(&c, 0, sizeof c);
        c.type = TKV_CMD_MEMBER_SET;
        c.member_id = id;
        snprintf(addr, sizeof addr, "127.0.0.1:%" PRIu64, 7000 + id);
        c.addr = addr;
        c.addrlen = (uint16_t)strlen(addr);
        smt_apply_cmd(t, &c);
    }
}

static void snapshot_of(const struct tkv_sm *sm, struct tkv_buf *b)
{
    msgpack_packer pk;
    tkv_buf_init(b);
    msgpack_packer_init(&pk, b, tkv_buf_msgpack_write);
    assert_int_equal(tkv_sm_snapshot(sm, &pk), 0);
}

static void round_trip(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct smt t, u;
        struct tkv_buf b, b2;
        smt_init(&t);
        fill(&t, (int)(rnd() % 400));
        snapshot_of(&t.sm, &b);
        smt_init(&u);
        fill(&u, 10); /* restore replaces whatever was there */
        assert_int_equal(tkv_sm_restore(&u.sm, b.data, b.len, NULL), 0);
        assert_int_equal(tkv_sm_hash(&u.sm), tkv_sm_hash(&t.sm));
        assert_int_equal(u.sm.applied_index, t.sm.applied_index);
        assert_int_equal(u.sm.now, t.sm.now);
        assert_string_equal(tkv_sm_member_addr(&u.sm, 2), "127.0.0.1:7002");
        /* snapshot of the restored state is byte-identical */
        snapshot_of(&u.sm, &b2);
        assert_int_equal(b2.len, b.len);
        assert_memory_equal(b2.data, b.data, b.len);
        /* both go on identically */
        u.index = t.index;
        u.ts = t.ts;
        smt_tick(&t, t.ts + 50000);
        smt_tick(&u, u.ts + 50000);
        assert_int_equal(tkv_sm_hash(&u.sm), tkv_sm_hash(&t.sm));
        tkv_buf_close(&b);
        tkv_buf_close(&b2);
        smt_close(&t);
        smt_close(&u);
    }
}

static void expect_refused(struct smt *victim, const uint8_t *p, size_t n)
{
    uint64_t before = tkv_sm_hash(&victim->sm);
    struct tkv_err err;
    int rv = tkv_sm_restore(&victim->sm, p, n, &err);
    assert_int_equal(rv, TKV_ECORRUPT);
    assert_true(strncmp(err.msg, "snapshot: ", 10) == 0);
    assert_int_equal(tkv_sm_hash(&victim->sm), before);
}

static void truncated_and_corrupt(void **state)
{
    struct smt t, victim;
    struct tkv_buf b;
    uint8_t *copy;
    (void)state;
    smt_init(&t);
    fill(&t, 200);
    snapshot_of(&t.sm, &b);
    smt_init(&victim);
    fill(&victim, 30);

    /* every truncation point */
    for (size_t n = 0; n < b.len; n++) {
        expect_refused(&victim, b.data, n);
    }
    /* trailing garbage */
    copy = malloc(b.len + 1);
    memcpy(copy, b.data, b.len);
    copy[b.len] = 0;
    expect_refused(&victim, copy, b.len + 1);
    /* every single-byte flip before the trailer is caught (by structure or
     * by the checksum) */
    for (size_t i = 0; i + 12 < b.len; i += 1 + rnd() % 7) {
        memcpy(copy, b.data, b.len);
        copy[i] ^= (uint8_t)(1 + rnd() % 255);
        expect_refused(&victim, copy, b.len);
    }
    /* things that are not snapshots */
    expect_refused(&victim, (const uint8_t *)"\x93\x01\x02\x03", 4);
    expect_refused(&victim, (const uint8_t *)"\xdd\xff\xff\xff\xff", 5);
    free(copy);
    tkv_buf_close(&b);
    smt_close(&t);
    smt_close(&victim);
}

static void restore_out_of_memory(void **state)
{
    struct smt t, victim;
    struct tkv_buf b;
    (void)state;
    smt_init(&t);
    fill(&t, 50);
    snapshot_of(&t.sm, &b);
    smt_init(&victim);
    fill(&victim, 20);
    for (long n = 0; n < 400; n += 7) {
        uint64_t before = tkv_sm_hash(&victim.sm);
        int rv;
        tkv_alloc_fail_after(n);
        rv = tkv_sm_restore(&victim.sm, b.data, b.len, NULL);
        tkv_alloc_fail_reset();
        if (rv == 0) {
            assert_int_equal(tkv_sm_hash(&victim.sm), tkv_sm_hash(&t.sm));
            break;
        }
        assert_int_equal(rv, TKV_ENOMEM);
        assert_int_equal(tkv_sm_hash(&victim.sm), before);
    }
    tkv_buf_close(&b);
    smt_close(&t);
    smt_close(&victim);
}

/* One random change to t and its twin u (same entries): sets over a small
 * key space (so changes hit keys the snapshot has not reached yet, and
 * keys it has), with and without TTL and session, deletes, and clock
 * ticks that expire keys. */
static void change_both(struct smt *t, struct smt *u, int i)
{
    char key[64], val[64];
    uint64_t ttl = rnd() % 4 == 0 ? 1 + rnd() % 3000 : 0;
    uint64_t session = rnd() % 5 == 0 ? 1 + rnd() % 3 : 0;
    int64_t ts;

    snprintf(key, sizeof key, "[\"k\",%d]", (int)(rnd() % 300));
    snprintf(val, sizeof val, "{\"i\":%d}", i);
    switch (rnd() % 6) {
    case 0:
        smt_del(t, key);
        smt_del(u, key);
        break;
    case 1:
        ts = t->ts + (int64_t)(rnd() % 2000);
        smt_tick(t, ts);
        smt_tick(u, ts);
        break;
    default:
        smt_set_s(t, key, val, ttl, session, (uint64_t)i + 1, 0);
        smt_set_s(u, key, val, ttl, session, (uint64_t)i + 1, 0);
        break;
    }
}

static void stepped_matches_whole(void **state)
{
    (void)state;
    for (int round = 0; round < 40; round++) {
        struct smt t, u;
        struct tkv_buf whole, stepped;
        msgpack_packer pk;
        int done = 0, i = 0, steps = 0;

        smt_init(&t);
        smt_init(&u);
        for (int k = 0; k < (int)(rnd() % 600); k++) {
            change_both(&t, &u, i++);
        }
        snapshot_of(&t.sm, &whole);
        tkv_buf_init(&stepped);
        msgpack_packer_init(&pk, &stepped, tkv_buf_msgpack_write);
        assert_int_equal(tkv_sm_snap_begin(&t.sm, &pk), 0);
        assert_true(tkv_sm_snap_running(&t.sm));
        while (!done) {
            for (int k = (int)(rnd() % 8); k > 0; k--) {
                change_both(&t, &u, i++);
            }
            assert_int_equal(
                tkv_sm_snap_step(&t.sm, &pk, 1 + rnd() % 20, &done), 0);
            steps++;
            assert_true(steps < 100000);
        }
        assert_false(tkv_sm_snap_running(&t.sm));
        assert_int_equal(stepped.len, whole.len);
        assert_memory_equal(stepped.data, whole.data, whole.len);
        /* keeping old entries changed nothing apply decides */
        assert_int_equal(tkv_sm_hash(&t.sm), tkv_sm_hash(&u.sm));
        tkv_buf_close(&whole);
        tkv_buf_close(&stepped);
        smt_close(&t);
        smt_close(&u);
    }
}

/* Begin twice, close while running, a step with none running. */
static void stepped_ends(void **state)
{
    struct smt t;
    struct tkv_buf b;
    msgpack_packer pk;
    int done;

    (void)state;
    smt_init(&t);
    fill(&t, 50);
    tkv_buf_init(&b);
    msgpack_packer_init(&pk, &b, tkv_buf_msgpack_write);
    assert_int_equal(tkv_sm_snap_step(&t.sm, &pk, 10, &done),
                     TKV_EINVALID);
    assert_int_equal(tkv_sm_snap_begin(&t.sm, &pk), 0);
    assert_int_equal(tkv_sm_snap_step(&t.sm, &pk, 3, &done), 0);
    assert_int_equal(done, 0);
    tkv_buf_reset(&b);
    assert_int_equal(tkv_sm_snap_begin(&t.sm, &pk), 0); /* starts over */
    smt_set(&t, "[\"k\",\"changed\"]", "1", 0);
    tkv_sm_snap_abort(&t.sm);
    assert_false(tkv_sm_snap_running(&t.sm));
    assert_int_equal(tkv_sm_snap_begin(&t.sm, &pk), 0);
    smt_close(&t); /* frees the running one (ASan would say) */
    tkv_buf_close(&b);
}

int main(void)
{
    const char *env = getenv("TKV_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(truncated_and_corrupt),
        cmocka_unit_test(restore_out_of_memory),
        cmocka_unit_test(stepped_matches_whole),
        cmocka_unit_test(stepped_ends),
    };
    printf("snapshot test seed: %" PRIu64 "\n", seed);
    rng = seed * 2654435761u + 7;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
