/* tuplekv-sm-bench: the state machine alone, single thread.
 *
 * Loads N keys of the form ["users", <16-char id>] with 100-byte values (the
 * msgpack of a 98-character string) and reports:
 *   set/s     applying real log entries of 64 set commands each (decode +
 *             apply, as a node does), into an empty state
 *   get/s     point reads of random existing keys
 *   list/s    list(prefix ["users"], start at a random key, limit 100) with
 *             total, i.e. 100 items per call
 *   delete/s  applying entries of 64 deletes each
 *   overhead  heap bytes per entry beyond key + value (mallinfo2 delta)
 *   snapshot  write of the whole state into memory, and restore from it;
 *             then the same in steps of 256 keys (the node's way)
 *
 * usage: tuplekv-sm-bench [N [set]]   (default 1000000; "set": stop after
 * the set and overhead lines, to profile the set path alone, e.g. under
 * valgrind --tool=callgrind --toggle-collect=tkv_sm_apply) */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "statemachine/sm.h"

#define BATCH 64
#define VALUE_LEN 100

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

struct key {
    uint8_t b[64];
    size_t len;
};

static void make_key(uint64_t i, struct key *k)
{
    char id[17];
    json_t *j;
    /* a 16-character id, spread so insertion order is not key order */
    snprintf(id, sizeof id, "%016llx",
             (unsigned long long)(i * 0x9E3779B97F4A7C15ull));
    j = json_pack("[ss]", "users", id);
    if (tkv_key_from_json(j, 0, k->b, &k->len, NULL) != 0) {
        abort();
    }
    json_decref(j);
}

static void die(const char *what)
{
    fprintf(stderr, "sm-bench: %s failed\n", what);
    exit(1);
}

/* Apply keys [from, to) as set (value != NULL) or delete entries. */
static void apply_range(struct tkv_sm *sm, uint64_t *index,
                        const struct key *keys, size_t from, size_t to,
                        const uint8_t *value)
{
    struct tkv_buf body, entry;
    tkv_buf_init(&body);
    tkv_buf_init(&entry);
    for (size_t i = from; i < to; i += BATCH) {
        size_t n = to - i < BATCH ? to - i : BATCH;
        const struct tkv_result *res;
        size_t nres;
        tkv_buf_reset(&body);
        tkv_buf_reset(&entry);
        for (size_t j = 0; j < n; j++) {
            struct tkv_cmd c;
            memset(&c, 0, sizeof c);
            c.type = value != NULL ? TKV_CMD_SET : TKV_CMD_DELETE;
            c.mut.type = c.type;
            c.mut.key = keys[i + j].b;
            c.mut.klen = (uint16_t)keys[i + j].len;
            c.mut.value = value;
            c.mut.vlen = value != NULL ? VALUE_LEN : 0;
            if (tkv_cmd_encode(&c, &body) != 0) {
                die("encode");
            }
        }
        if (tkv_entry_encode(1000, n, body.data, body.len, &entry) != 0 ||
            tkv_sm_apply(sm, ++*index, entry.data, entry.len, &res, &nres,
                         NULL) != 0) {
            die("apply");
        }
    }
    tkv_buf_close(&body);
    tkv_buf_close(&entry);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    size_t gets = 2000000, lists = 200000, keybytes = 0, i;
    struct key *keys = malloc(n * sizeof *keys);
    struct tkv_sm sm, copy;
    struct tkv_list_query q;
    struct tkv_list_result *res = malloc(sizeof *res);
    struct tkv_buf snap;
    msgpack_packer pk;
    struct mallinfo2 before, after;
    uint8_t value[VALUE_LEN], prefix[64];
    size_t prefix_len, found = 0, listed = 0, heap;
    uint64_t index = 0;
    double t0, t;
    json_t *pj;

    if (keys == NULL || res == NULL || n == 0) {
        die("setup");
    }
    value[0] = 0xd9; /* str8 of 98 bytes: 100 bytes of msgpack */
    value[1] = VALUE_LEN - 2;
    memset(value + 2, 'v', VALUE_LEN - 2);
    for (i = 0; i < n; i++) {
        make_key(i, &keys[i]);
        keybytes += keys[i].len;
    }
    pj = json_pack("[s]", "users");
    tkv_key_from_json(pj, 0, prefix, &prefix_len, NULL);
    json_decref(pj);

    printf("tuplekv-sm-bench: %zu keys [\"users\", <16 chars>] (%zu bytes "
           "encoded on average), %d-byte values, single thread\n",
           n, keybytes / n, VALUE_LEN);

    before = mallinfo2();
    if (tkv_sm_init(&sm, NULL) != 0) {
        die("init");
    }
    t0 = now_s();
    apply_range(&sm, &index, keys, 0, n, value);
    t = now_s() - t0;
    after = mallinfo2();
    printf("set:       %10.0f /s   (entries of %d sets, decode + apply)\n",
           (double)n / t, BATCH);
    /* uordblks misses chunks malloc serves with mmap (big tables, such
     * as a hash index): hblkhd counts those. */
    heap = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    printf("overhead:  %10.1f bytes per entry beyond key + value "
           "(%zu bytes of heap, %zu of them mmapped, for %zu bytes of keys "
           "and values)\n",
           ((double)heap - (double)(keybytes + n * VALUE_LEN)) / (double)n,
           heap, (size_t)(after.hblkhd - before.hblkhd),
           keybytes + n * VALUE_LEN);
    if (argc > 2 && strcmp(argv[2], "set") == 0) {
        tkv_sm_close(&sm);
        free(keys);
        free(res);
        return 0;
    }

    t0 = now_s();
    for (i = 0; i < gets; i++) {
        const struct key *k = &keys[rnd() % n];
        found += tkv_sm_get(&sm, k->b, k->len) != NULL;
    }
    t = now_s() - t0;
    if (found != gets) {
        die("get");
    }
    printf("get:       %10.0f /s   (random existing keys)\n",
           (double)gets / t);

    memset(&q, 0, sizeof q);
    q.prefix = prefix;
    q.prefix_len = prefix_len;
    q.limit = 100;
    t0 = now_s();
    for (i = 0; i < lists; i++) {
        const struct key *k = &keys[rnd() % n];
        q.start = k->b;
        q.start_len = k->len;
        if (tkv_sm_list(&sm, &q, res, NULL) != 0) {
            die("list");
        }
        listed += res->n;
    }
    t = now_s() - t0;
    printf("list:      %10.0f /s   (limit 100 from a random start, with "
           "total; %.1f items per call)\n",
           (double)lists / t, (double)listed / (double)lists);

    tkv_buf_init(&snap);
    msgpack_packer_init(&pk, &snap, tkv_buf_msgpack_write);
    t0 = now_s();
    if (tkv_sm_snapshot(&sm, &pk) != 0) {
        die("snapshot");
    }
    t = now_s() - t0;
    printf("snapshot:  %10.3f s    (%zu bytes, into memory)\n", t, snap.len);
    if (tkv_sm_init(&copy, NULL) != 0) {
        die("init");
    }
    t0 = now_s();
    if (tkv_sm_restore(&copy, snap.data, snap.len, NULL) != 0) {
        die("restore");
    }
    t = now_s() - t0;
    printf("restore:   %10.3f s\n", t);
    if (tkv_sm_hash(&copy) != tkv_sm_hash(&sm)) {
        die("restore digest");
    }
    tkv_sm_close(&copy);

    /* the node's way: 256 keys a step (raft/fsm.c), the same bytes */
    {
        struct tkv_buf stepped;
        size_t steps = 0;
        int done = 0;
        tkv_buf_init(&stepped);
        tkv_buf_reserve(&stepped, snap.len);
        msgpack_packer_init(&pk, &stepped, tkv_buf_msgpack_write);
        t0 = now_s();
        if (tkv_sm_snap_begin(&sm, &pk) != 0) {
            die("snapshot in steps");
        }
        while (!done) {
            if (tkv_sm_snap_step(&sm, &pk, 256, &done) != 0) {
                die("snapshot step");
            }
            steps++;
        }
        t = now_s() - t0;
        printf("stepped:   %10.3f s    (%zu steps of 256 keys, into memory)\n",
               t, steps);
        if (stepped.len != snap.len ||
            memcmp(stepped.data, snap.data, snap.len) != 0) {
            die("stepped snapshot differs");
        }
        tkv_buf_close(&stepped);
    }
    tkv_buf_close(&snap);

    t0 = now_s();
    apply_range(&sm, &index, keys, 0, n, NULL);
    t = now_s() - t0;
    if (tkv_sm_count(&sm) != 0) {
        die("delete");
    }
    printf("delete:    %10.0f /s   (entries of %d deletes, decode + apply)\n",
           (double)n / t, BATCH);

    tkv_sm_close(&sm);
    free(keys);
    free(res);
    return 0;
}
