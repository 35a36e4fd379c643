/* libFuzzer target: the snapshot framing of raft/fsm.c, the bytes around
 * the state stream (fuzz_snapshot covers the stream itself). They come
 * from peers (an install's "TKVSNAPI") and from disk (raft's snapshot
 * file: a whole "TKVSNAP1" or a "TKVSNAP2" manifest naming a state file).
 *
 * Input: one flags byte, then the snapshot bytes.
 *   bit 0  the FSM keeps a data dir: a private temp dir, made once, that
 *          holds one state file, tkv-state-<STATE_ID> (an empty state),
 *          removed at exit (a crash or a kill leaves it behind); otherwise
 *          expand and restore get no dir
 *   bit 1  before anything reads them, make the header's lengths agree
 *          with the input's size, and have a manifest name the state file
 *          (id, length and hash), so that mutations which grow or shrink the
 *          base or the tail still reach the tail's framing
 *
 * Each input goes through tkv_fsm_install_id, tkv_fsm_restore_bytes,
 * tkv_fsm_expand (then restore_bytes of what it made) and the FSM's
 * restore hook, and the answers must agree: the same bytes restore to the
 * same state whichever way they come in, expand only rewraps them, and a
 * refused snapshot leaves the state as it was. */
#include <raft.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/log.h"
#include "raft/fsm.h"
#include "statemachine/sm.h"

#include "tests/fuzz/fuzz.h"

/* The format, as the comment at the top of raft/fsm.c gives it. */
#define SNAP_HDR 32
#define INSTALL_ID 16
#define MANIFEST_HDR 48
#define STATE_ID 7
#define INDEX 1234 /* what expand is asked to stamp */
#define TERM 5

static char state_dir[64];
static char state_path[128];
static struct tkv_buf state; /* the state file's bytes */
static uint64_t state_hash;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_u64(uint8_t *p, uint64_t v)
{
    int i;
    for (i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    int i;
    for (i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* A whole snapshot's header (len bytes, any install id left out): base
 * and tail lengths fill the rest exactly. */
static int lengths_add_up(const uint8_t *b, size_t len)
{
    uint64_t base_len = get_u64(b + 8), tail_len = get_u64(b + 16);
    return base_len <= len - SNAP_HDR && tail_len == len - SNAP_HDR - base_len;
}

static int has_magic(const uint8_t *b, size_t len, const char *magic)
{
    return len >= 8 && memcmp(b, magic, 8) == 0;
}

static void remove_state_dir(void)
{
    unlink(state_path);
    rmdir(state_dir);
    tkv_buf_close(&state);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct tkv_sm sm;
    msgpack_packer pk;
    FILE *fp;

    (void)argc;
    (void)argv;
    /* A refused snapshot logs an error line: below the lowest level, the
     * log says nothing. */
    tkv_log_set_level(TKV_LOG_ERROR - 1);

    snprintf(state_dir, sizeof state_dir, "/tmp/tkv-fuzz-framing-XXXXXX");
    REQUIRE(mkdtemp(state_dir) != NULL);
    snprintf(state_path, sizeof state_path, "%s/tkv-state-%020llu", state_dir,
             (unsigned long long)STATE_ID);
    REQUIRE(tkv_sm_init(&sm, NULL) == 0);
    tkv_buf_init(&state);
    msgpack_packer_init(&pk, &state, tkv_buf_msgpack_write);
    REQUIRE(tkv_sm_snapshot(&sm, &pk) == 0 && !state.failed);
    tkv_sm_close(&sm);
    state_hash = tkv_hash64(0, state.data, state.len);
    fp = fopen(state_path, "wb");
    REQUIRE(fp != NULL);
    REQUIRE(fwrite(state.data, 1, state.len, fp) == state.len);
    REQUIRE(fclose(fp) == 0);
    atexit(remove_state_dir);
    return 0;
}

/* Flags bit 1 (see the top of the file). */
static void fix_header(uint8_t *b, size_t len)
{
    size_t body;
    uint64_t base_len;

    if (len >= MANIFEST_HDR && has_magic(b, len, "TKVSNAP2")) {
        put_u64(b + 8, state.len);
        put_u64(b + 16, len - MANIFEST_HDR);
        put_u64(b + 32, STATE_ID);
        put_u64(b + 40, state_hash);
        return;
    }
    if (len < SNAP_HDR) {
        return;
    }
    body = len - SNAP_HDR;
    if (has_magic(b, len, "TKVSNAPI")) {
        if (body < INSTALL_ID) {
            return;
        }
        body -= INSTALL_ID;
    } else if (!has_magic(b, len, "TKVSNAP1")) {
        return;
    }
    base_len = get_u64(b + 8);
    if (base_len > body) {
        base_len = body;
        put_u64(b + 8, base_len);
    }
    put_u64(b + 16, body - base_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct raft_buffer in, out;
    struct tkv_sm whole, expanded;
    struct tkv_fsm f;
    const char *dir;
    const uint8_t *o;
    uint64_t empty, index, term, want_hash = 0;
    int manifest, install, rv, rv_whole, rv_expand, want_rv;

    if (size < 1) {
        return 0;
    }
    dir = (data[0] & 1) ? state_dir : NULL;
    in.len = size - 1;
    in.base = raft_malloc(in.len > 0 ? in.len : 1); /* the hook frees it */
    REQUIRE(in.base != NULL);
    memcpy(in.base, data + 1, in.len);
    if (data[0] & 2) {
        fix_header(in.base, in.len);
    }
    manifest = has_magic(in.base, in.len, "TKVSNAP2");
    install = in.len >= SNAP_HDR + INSTALL_ID &&
              has_magic(in.base, in.len, "TKVSNAPI");

    /* The id of an install is its last 16 bytes; anything else, and an
     * install whose lengths do not add up, has none. */
    rv = tkv_fsm_install_id(&in, &index, &term);
    REQUIRE(rv == (install && lengths_add_up(in.base, in.len - INSTALL_ID)));
    if (rv) {
        o = (const uint8_t *)in.base + in.len - INSTALL_ID;
        REQUIRE(index == get_u64(o) && term == get_u64(o + 8));
    }

    /* Whole snapshots restore; a refused one changes nothing. */
    REQUIRE(tkv_sm_init(&whole, NULL) == 0);
    empty = tkv_sm_hash(&whole);
    rv_whole = tkv_fsm_restore_bytes(&whole, in.base, in.len, NULL);
    REQUIRE(rv_whole == 0 || rv_whole == TKV_ECORRUPT);
    REQUIRE(rv_whole != 0 || !manifest);
    if (rv_whole != 0) {
        REQUIRE(tkv_sm_hash(&whole) == empty);
    }
    want_rv = rv_whole;
    want_hash = tkv_sm_hash(&whole);

    /* Expand rewraps the same base and tail (a manifest's base read from
     * its file) as an install stamped INDEX, TERM, which restores to what
     * the input restores to. */
    REQUIRE(tkv_sm_init(&expanded, NULL) == 0);
    rv_expand = tkv_fsm_expand(dir, &in, INDEX, TERM, &out, NULL);
    if (rv_expand == 0) {
        REQUIRE(tkv_fsm_install_id(&out, &index, &term) == 1);
        REQUIRE(index == INDEX && term == TERM);
        o = out.base;
        if (manifest) {
            REQUIRE(out.len == SNAP_HDR + state.len + (in.len - MANIFEST_HDR) +
                                   INSTALL_ID);
            REQUIRE(get_u64(o + 8) == state.len);
            REQUIRE(memcmp(o + 16, (uint8_t *)in.base + 16, 16) == 0);
            REQUIRE(memcmp(o + SNAP_HDR, state.data, state.len) == 0);
            REQUIRE(memcmp(o + SNAP_HDR + state.len,
                           (uint8_t *)in.base + MANIFEST_HDR,
                           in.len - MANIFEST_HDR) == 0);
        } else {
            REQUIRE(out.len == in.len + (install ? 0 : INSTALL_ID));
            REQUIRE(memcmp(o + 8, (uint8_t *)in.base + 8,
                           out.len - INSTALL_ID - 8) == 0);
        }
        rv = tkv_fsm_restore_bytes(&expanded, out.base, out.len, NULL);
        raft_free(out.base);
        REQUIRE(rv == 0 || rv == TKV_ECORRUPT);
        if (manifest) {
            want_rv = rv;
            want_hash = tkv_sm_hash(&expanded);
        } else {
            REQUIRE(rv == rv_whole);
            REQUIRE(tkv_sm_hash(&expanded) == tkv_sm_hash(&whole));
        }
    } else {
        REQUIRE(rv_expand == TKV_ECORRUPT ||
                (manifest && dir != NULL && rv_expand == TKV_EIO));
        REQUIRE(rv_whole != 0); /* a manifest too: want_rv is non-zero */
    }
    tkv_sm_close(&expanded);
    tkv_sm_close(&whole);

    /* raft's restore hook: a manifest's state comes from the dir. It takes
     * the buffer on success only. */
    REQUIRE(tkv_fsm_init(&f, TKV_SNAP_INLINE, NULL) == 0);
    if (dir != NULL) {
        REQUIRE(tkv_fsm_set_dir(&f, dir, NULL) == 0);
    }
    rv = f.raft_fsm.restore(&f.raft_fsm, &in);
    if (rv == 0) {
        REQUIRE(want_rv == 0);
        REQUIRE(tkv_sm_hash(&f.sm) == want_hash);
    } else {
        REQUIRE(rv == RAFT_CORRUPT && want_rv != 0);
        REQUIRE(tkv_sm_hash(&f.sm) == empty);
        raft_free(in.base);
    }
    tkv_fsm_close(&f);
    return 0;
}
